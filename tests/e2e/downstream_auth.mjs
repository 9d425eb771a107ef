#!/usr/bin/env node
// End-to-end test of a downstream service's credentials: a front `bulwark`
// in front of a Streamable HTTP MCP service run by this script that takes
// only tokens from this script's OAuth token endpoint, and an API key header
// read from a file.
//
//   node tests/e2e/downstream_auth.mjs --bulwark build/bulwark
//
// Checks: the client-credentials request's form (grant type, scope,
// resource, HTTP Basic with the secret from an environment reference); the
// token reaches the service and is renewed before it expires, with no call
// refused; 50 concurrent calls that find the token refused cause one token
// request and all succeed; a 401 is answered by one new token and one
// resend, and a second 401 is not resent; the endpoint down gives a typed
// error that the breaker counts until it opens, and recovery after; the
// key file is read again when it changes; neither token nor secret is
// logged; --print-config redacts the secret and --check-config refuses a
// bad reference with its path. Then, behind a front with `auth.mode`
// "oauth" (this script signs the callers' tokens): token exchange (RFC 8693)
// with the caller's token as the subject, cached per caller, a refused
// exchange as the caller's error that the breaker does not count;
// `passthrough` passing the caller's token on verbatim, and no other
// service ever seeing it; a call without a caller token refused before it
// reaches a service that acts for the caller. Every process is killed by
// pid.

import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert, callTool, harness, jsonRpcServer, modernRequest, request, scaled, sleep } from './harness.mjs';

const run = harness({
  scratch: 'bulwark-downstream-auth-',
  watchdogMs: 120_000,
  onFinish: () => {
    endpoint.close();
    service.close();
  },
});
const { check } = run;

const clientId = 'bulwark gateway';
const clientSecret = 'zq9-s3cr3t/+=';
const lifetimeSeconds = 4;

// -- the token endpoint ------------------------------------------------------------

const issued = new Map(); // token -> the time it stops being valid
const tokenRequests = []; // { form, basic }
let endpointMode = 'ok'; // ok | down
let endpointDelayMs = 0;
let tokenSerial = 0;
const exchanges = []; // { form, sub }
const exchangedFor = new Map(); // exchanged token -> the subject it acts for
/// The `sub` of a JWT access token (unverified: the front verified it).
const subjectOf = (jwt) => {
  try {
    return JSON.parse(Buffer.from(String(jwt).split('.')[1], 'base64url').toString()).sub;
  } catch {
    return undefined;
  }
};

const endpoint = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
    const auth = req.headers.authorization ?? '';
    const basic = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : null;
    // When the newest token still had left (ms) as this request came.
    const newest = [...issued.values()].pop();
    tokenRequests.push({ form, basic, contentType: req.headers['content-type'], left: newest === undefined ? null : newest - Date.now() });
    if (endpointDelayMs) await sleep(endpointDelayMs);
    if (endpointMode === 'down') return res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable"}');
    const [id, secret] = (basic ?? ':').split(':').map((s) => decodeURIComponent(s.replace(/\+/g, ' ')));
    if (id !== clientId || secret !== clientSecret)
      return res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
    if (form.grant_type === 'urn:ietf:params:oauth:grant-type:token-exchange') {
      const sub = subjectOf(form.subject_token);
      exchanges.push({ form, sub });
      if (!sub || sub === 'mallory')
        return res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
      const exchanged = `xtok-${sub}-${++tokenSerial}`;
      issued.set(exchanged, Date.now() + 60_000);
      exchangedFor.set(exchanged, sub);
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ access_token: exchanged, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 60 }));
    }
    const token = `tok-${++tokenSerial}-${Math.random().toString(36).slice(2)}`;
    issued.set(token, Date.now() + lifetimeSeconds * 1000);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: lifetimeSeconds }));
  });
});

// -- the service -------------------------------------------------------------------

const revoked = new Set();
let refuseAll = false;
const seen = []; // { path, method, token, key, status, id }
let executions = 0;

const service = jsonRpcServer((req, msg, res, answer) => {
  const auth = req.headers.authorization ?? '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
  // /mcp-pass takes whatever comes (it records the caller's own token).
  const passing = req.url === '/mcp-pass';
  const valid = passing || (token && issued.has(token) && issued.get(token) > Date.now() && !revoked.has(token) && !refuseAll);
  const record = { path: req.url, method: msg.method, token, key: req.headers['x-api-key'], status: valid ? 200 : 401, id: msg.params?.arguments?.n };
  seen.push(record);
  if (!valid) {
    res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'application/json' });
    return res.end('{"error":"invalid_token"}');
  }
  if (msg.id === undefined) return res.writeHead(202).end();
  switch (msg.method) {
    case 'initialize':
      return answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'secure', version: '1' } });
    case 'tools/list': {
      const name = { '/mcp': 'work', '/mcp-x': 'act', '/mcp-pass': 'pass' }[req.url];
      return answer({ tools: [{ name, description: 'Counts its runs.', inputSchema: { type: 'object' }, annotations: { idempotentHint: false } }] });
    }
    case 'tools/call':
      executions++;
      return answer({ content: [{ type: 'text', text: `ran ${executions} key=${req.headers['x-api-key']}` }] });
    default:
      return answer({});
  }
});

const metric = async (port, line) => {
  const r = await request(port, 'GET', { path: '/metrics' });
  const m = r.text.split('\n').find((l) => l.startsWith(line + ' '));
  return m ? Number(m.slice(line.length + 1)) : 0;
};

await run.main(async () => {
  await new Promise((r) => endpoint.listen(0, '127.0.0.1', r));
  await new Promise((r) => service.listen(0, '127.0.0.1', r));
  const serviceUrl = `http://127.0.0.1:${service.address().port}/mcp`;
  const keyPath = join(run.dir, 'api-key');
  writeFileSync(keyPath, 'key-one\n');
  const config = (secretRef) => ({
    http: { port: 0, address: '127.0.0.1' },
    mcpServers: {
      secure: {
        url: serviceUrl,
        headers: { 'X-Api-Key': `\${file:${keyPath}}` },
        auth: {
          type: 'clientCredentials',
          tokenUrl: `http://127.0.0.1:${endpoint.address().port}/token`,
          clientId,
          clientSecret: secretRef,
          scopes: ['mcp:tools', 'read'],
        },
      },
      passing: { url: `http://127.0.0.1:${service.address().port}/mcp-pass`, passthrough: true },
    },
    services: {
      secure: {
        protocol: '2025-11-25',
        timeoutMs: scaled(5000),
        retry: { attempts: 1 },
        breaker: { consecutiveFailures: 3, openMs: 1000 },
      },
    },
    gateway: { prefix: 'never' },
  });
  const cfgPath = join(run.dir, 'front.json');
  writeFileSync(cfgPath, JSON.stringify(config('${env:BW_TEST_CLIENT_SECRET}')));
  const env = { BW_TEST_CLIENT_SECRET: clientSecret };

  await check('--print-config redacts the client secret and the header, --check-config refuses an unknown reference by its path', async () => {
    const printed = spawnSync(run.bulwark, ['--config', cfgPath, '--print-config'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert(printed.status === 0, `--print-config exit ${printed.status}: ${printed.stderr}`);
    const shown = JSON.parse(printed.stdout).mcpServers.secure;
    assert(shown.auth.clientSecret === '[redacted]', `clientSecret shown: ${JSON.stringify(shown.auth)}`);
    assert(shown.headers === '[redacted]' || shown.headers['X-Api-Key'] === '[redacted]', `headers shown: ${JSON.stringify(shown.headers)}`);
    assert(shown.auth.clientId === clientId, `clientId: ${JSON.stringify(shown.auth)}`);
    const badPath = join(run.dir, 'bad.json');
    writeFileSync(badPath, JSON.stringify(config('${vault:x}')));
    const bad = spawnSync(run.bulwark, ['--check-config', badPath], { encoding: 'utf8' });
    assert(bad.status === 2, `--check-config exit ${bad.status}: ${bad.stdout}${bad.stderr}`);
    assert(/mcpServers\.secure\.auth\.clientSecret.*unknown kind/.test(bad.stdout + bad.stderr), `the path and reason: ${bad.stdout}${bad.stderr}`);
    const unset = spawnSync(run.bulwark, ['--check-config', cfgPath], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert(unset.status === 2 && /auth\.clientSecret.*BW_TEST_CLIENT_SECRET is not set/.test(unset.stdout + unset.stderr),
           `an unset variable: ${unset.status} ${unset.stdout}${unset.stderr}`);
  });

  const port = await run.startBulwark(['--config', cfgPath, '--no-builtin-tools'], 'front', env);

  await check('the token request is a client-credentials form with scope, resource and HTTP Basic from the secret reference', async () => {
    assert(tokenRequests.length === 1, `one token request at start, got ${tokenRequests.length}`);
    const { form, basic, contentType } = tokenRequests[0];
    assert(contentType === 'application/x-www-form-urlencoded', `content type ${contentType}`);
    assert(form.grant_type === 'client_credentials', `grant_type ${form.grant_type}`);
    assert(form.scope === 'mcp:tools read', `scope ${form.scope}`);
    assert(form.resource === serviceUrl, `resource ${form.resource}`);
    assert(form.client_secret === undefined, 'the secret is not in the body with Basic');
    const [id, secret] = basic.split(':').map((s) => decodeURIComponent(s.replace(/\+/g, ' ')));
    assert(id === clientId && secret === clientSecret, `Basic credentials ${basic}`);
  });

  await check('calls reach the service with the token and the key file\'s value', async () => {
    const r = await callTool(port, 'work', { n: 'first' });
    assert(r.result?.content?.[0]?.text?.endsWith('key=key-one'), JSON.stringify(r));
    const rec = seen.find((s) => s.id === 'first');
    assert(rec && issued.has(rec.token) && rec.status === 200, `the service saw ${JSON.stringify(rec)}`);
  });

  await check('the token is renewed before it expires: steady calls for three lifetimes, none refused', async () => {
    const before = tokenRequests.length;
    const from = seen.length;
    const end = Date.now() + lifetimeSeconds * 3000;
    let n = 0;
    while (Date.now() < end) {
      const r = await callTool(port, 'work', { n: `steady-${n++}` });
      assert(r.result, `call ${n}: ${JSON.stringify(r)}`);
      await sleep(50);
    }
    const refused = seen.slice(from).filter((s) => s.status !== 200);
    assert(refused.length === 0, `the service refused ${refused.length}: ${JSON.stringify(refused.slice(0, 3))}`);
    const renewals = tokenRequests.length - before;
    const late = tokenRequests.slice(before).filter((t) => t.left < 100);
    assert(late.length === 0, `renewals asked for with ${late.map((t) => t.left).join(', ')} ms left (a tenth of the lifetime ahead is 400)`);
    assert(renewals >= 2 && renewals <= 4, `${renewals} renewals in ${3 * lifetimeSeconds} s of ${lifetimeSeconds} s tokens`);
    const tokens = new Set(seen.slice(from).map((s) => s.token));
    assert(tokens.size >= 3, `calls went with ${tokens.size} tokens`);
  });

  await check('50 concurrent calls that find the token refused cause one token request, and all succeed', async () => {
    for (const t of issued.keys()) revoked.add(t);
    const before = tokenRequests.length;
    const ran = executions;
    endpointDelayMs = scaled(300);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => callTool(port, 'work', { n: `burst-${i}` })));
    endpointDelayMs = 0;
    const failed = answers.filter((a) => !a.result);
    assert(failed.length === 0, `${failed.length} failed: ${JSON.stringify(failed[0])}`);
    assert(tokenRequests.length - before === 1, `${tokenRequests.length - before} token requests`);
    assert(executions - ran === 50, `the tool ran ${executions - ran} times`);
    for (let i = 0; i < 50; i++) {
      const tries = seen.filter((s) => s.id === `burst-${i}`);
      assert(tries.length <= 2 && tries[tries.length - 1].status === 200, `burst-${i}: ${JSON.stringify(tries)}`);
    }
  });

  await check('a refused token is renewed once and the call sent once more; a second refusal is not resent', async () => {
    for (const t of issued.keys()) revoked.add(t);
    const before = tokenRequests.length;
    const ok = await callTool(port, 'work', { n: 'refused-once' });
    assert(ok.result, JSON.stringify(ok));
    const tries = seen.filter((s) => s.id === 'refused-once').map((s) => s.status);
    assert(JSON.stringify(tries) === '[401,200]', `the service saw ${JSON.stringify(tries)}`);
    assert(tokenRequests.length - before === 1, `${tokenRequests.length - before} token requests`);

    refuseAll = true;
    const ran = executions;
    const no = await callTool(port, 'work', { n: 'refused-twice' });
    refuseAll = false;
    assert(no.error, `an error: ${JSON.stringify(no)}`);
    const twice = seen.filter((s) => s.id === 'refused-twice').map((s) => s.status);
    assert(JSON.stringify(twice) === '[401,401]', `the service saw ${JSON.stringify(twice)}`);
    assert(executions === ran, 'nothing ran');
  });

  await check('the token endpoint down: a typed error for each call, counted by the breaker until it opens; recovery after', async () => {
    // A success first: the breaker counts failures in a row from here.
    const fine = await callTool(port, 'work', { n: 'before-down' });
    assert(fine.result, JSON.stringify(fine));
    endpointMode = 'down';
    for (const t of issued.keys()) revoked.add(t);
    const failedBefore = await metric(port, 'bulwark_service_token_requests_total{grant="client_credentials",outcome="failed",service="secure"}');
    for (let i = 0; i < 3; i++) {
      const r = await callTool(port, 'work', { n: `down-${i}` });
      assert(r.error?.code === -32005, `call ${i}: ${JSON.stringify(r)}`);
      assert(/could not get a token/.test(r.error.message), `the reason: ${r.error.message}`);
      assert(r.error.data?.retry_after_seconds >= 1, `retry_after_seconds: ${JSON.stringify(r.error.data)}`);
    }
    const requested = tokenRequests.length;
    const open = await callTool(port, 'work', { n: 'down-open' });
    assert(open.error?.code === -32005 && /circuit breaker is open/.test(open.error.message), `the open breaker refused it: ${JSON.stringify(open)}`);
    assert(tokenRequests.length === requested, 'the open breaker asked for no token');
    const failed = await metric(port, 'bulwark_service_token_requests_total{grant="client_credentials",outcome="failed",service="secure"}');
    assert(failed > failedBefore, `failed token requests counted: ${failedBefore} -> ${failed}`);
    assert(!seen.some((s) => String(s.id).startsWith('down-') && s.status === 200), 'no call ran');

    endpointMode = 'ok';
    await sleep(scaled(1200)); // the breaker's openMs, then a probe
    const back = await callTool(port, 'work', { n: 'recovered' });
    assert(back.result, `recovered: ${JSON.stringify(back)}`);
  });

  await check('the key file is read again when it changes', async () => {
    writeFileSync(keyPath, 'key-two\n');
    await sleep(1100); // a file is looked at again at most once a second
    const r = await callTool(port, 'work', { n: 'rotated' });
    assert(r.result?.content?.[0]?.text?.endsWith('key=key-two'), JSON.stringify(r));
  });

  await check('a call without a caller token to a passthrough service is refused before it reaches the service', async () => {
    const r = await callTool(port, 'pass', { n: 'no-caller-token' }, { authorization: 'Bearer not-an-oauth-token' });
    assert(r.error?.code === -32011 && /acts for the calling user, and this call carries no OAuth access token/.test(r.error.message),
           JSON.stringify(r));
    assert(!seen.some((x) => x.id === 'no-caller-token'), 'the service saw it');
  });

  await check('neither a token nor the client secret appears in the log', async () => {
    const logs = run.logs.join('\n');
    assert(!logs.includes('tok-'), 'a token was logged');
    assert(!logs.includes(clientSecret) && !logs.includes('zq9'), 'the secret was logged');
    assert(logs.includes('service token obtained'), 'the log tells of tokens');
  });

  // -- a front that acts for its callers -----------------------------------------------

  const issuer = 'https://auth.test.example';
  const resource = 'https://gateway.test.example/mcp';
  const jwksFile = join(run.dir, 'jwks.json');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...rsa.publicKey.export({ format: 'jwk' }), kid: 'k1', use: 'sig' }] }));
  const b64url = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const jwt = (sub) => {
    const t = Math.floor(Date.now() / 1000);
    const input = `${b64url({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' })}.${b64url({ iss: issuer, aud: resource, sub, iat: t, exp: t + 600, jti: `${sub}-${Math.random()}` })}`;
    return `${input}.${sign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url')}`;
  };
  const base = `http://127.0.0.1:${service.address().port}`;
  const actingPath = join(run.dir, 'acting.json');
  writeFileSync(actingPath, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    auth: { mode: 'oauth', oauth: { issuer, resource, jwksFile } },
    mcpServers: {
      acting: {
        url: `${base}/mcp-x`,
        auth: { type: 'tokenExchange', tokenUrl: `http://127.0.0.1:${endpoint.address().port}/token`, clientId, clientSecret: '${env:BW_TEST_CLIENT_SECRET}', audience: 'crm-api' },
      },
      passing: { url: `${base}/mcp-pass`, passthrough: true },
      secure: config('${env:BW_TEST_CLIENT_SECRET}').mcpServers.secure,
    },
    services: {
      acting: { protocol: '2025-11-25', retry: { attempts: 1 }, breaker: { consecutiveFailures: 3, openMs: 60_000 } },
      passing: { protocol: '2025-11-25' },
      secure: { protocol: '2025-11-25' },
    },
    gateway: { prefix: 'never' },
  }));
  const front = await run.startBulwark(['--config', actingPath, '--no-builtin-tools'], 'acting', env);
  const act = (who, n, name = 'act') =>
    modernRequest(front, 'tools/call', { name, arguments: { n } }, { authorization: `Bearer ${who}` });
  const alice = jwt('alice');
  const bob = jwt('bob');

  await check('token exchange: the caller\'s token is the subject, the call goes with the exchanged token, one exchange per caller', async () => {
    const before = exchanges.length;
    for (const [who, n] of [[alice, 'x-alice-1'], [alice, 'x-alice-2'], [bob, 'x-bob-1']]) {
      const r = await act(who, n);
      assert(r.json?.result, `${n}: ${r.text}`);
    }
    const made = exchanges.slice(before);
    assert(made.length === 2, `${made.length} exchanges for two callers`);
    const { form } = made[0];
    assert(form.subject_token === alice && form.subject_token_type === 'urn:ietf:params:oauth:token-type:access_token',
           `subject: ${JSON.stringify(form).slice(0, 200)}`);
    assert(form.resource === `${base}/mcp-x` && form.audience === 'crm-api', `resource and audience: ${form.resource} ${form.audience}`);
    for (const [n, sub] of [['x-alice-1', 'alice'], ['x-alice-2', 'alice'], ['x-bob-1', 'bob']]) {
      const rec = seen.find((x) => x.id === n);
      assert(rec && exchangedFor.get(rec.token) === sub, `${n} went with ${rec?.token}`);
    }
    const own = seen.filter((x) => x.path === '/mcp-x' && x.method === 'tools/list');
    assert(own.length > 0 && own.every((x) => x.token.startsWith('tok-')), 'Bulwark\'s own requests go with its own token');
  });

  await check('an exchanged token the service refuses is exchanged again once and the call sent once more', async () => {
    const rec = seen.find((x) => x.id === 'x-alice-2');
    revoked.add(rec.token);
    const before = exchanges.length;
    const r = await act(alice, 'x-alice-3');
    assert(r.json?.result, r.text);
    const tries = seen.filter((x) => x.id === 'x-alice-3').map((x) => x.status);
    assert(JSON.stringify(tries) === '[401,200]', `the service saw ${JSON.stringify(tries)}`);
    assert(exchanges.length - before === 1, `${exchanges.length - before} exchanges`);
  });

  await check('an exchange the endpoint refuses is the caller\'s error (-32011), not counted by the breaker', async () => {
    const mallory = jwt('mallory');
    for (let i = 0; i < 4; i++) {
      const r = await act(mallory, `x-mallory-${i}`);
      assert(r.json?.error?.code === -32011 && /would not exchange the caller's token/.test(r.json.error.message), r.text);
      await sleep(1100); // past the second a failed exchange is remembered
    }
    assert(!seen.some((x) => String(x.id).startsWith('x-mallory')), 'the service saw a refused caller');
    const r = await act(bob, 'x-bob-after');
    assert(r.json?.result, `the breaker stayed closed: ${r.text}`);
  });

  await check('passthrough: the caller\'s own token reaches that service verbatim, and no other service', async () => {
    const r = await act(alice, 'p-alice', 'pass');
    assert(r.json?.result, r.text);
    const rec = seen.find((x) => x.id === 'p-alice');
    assert(rec?.token === alice, `the service got ${rec?.token?.slice(0, 20)}`);
    const s = await act(bob, 'secure-bob', 'work');
    assert(s.json?.result, s.text);
    const leaked = seen.filter((x) => x.path !== '/mcp-pass' && x.token && x.token.startsWith('eyJ'));
    assert(leaked.length === 0, `a caller's token reached ${leaked.map((x) => x.path).join(', ')}`);
    const logs = run.logs.join('\n');
    assert(!logs.includes(alice.split('.')[2]) && !logs.includes('xtok-'), 'a caller\'s or exchanged token was logged');
  });
});

