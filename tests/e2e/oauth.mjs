#!/usr/bin/env node
// End-to-end test of `auth.mode: "oauth"` (Bulwark as an OAuth 2.1 resource
// server), against the real binary over real HTTP.
//
//   node tests/e2e/oauth.mjs --bulwark build/bulwark
//
// The test is its own authorization server: it makes RSA and P-256 key
// pairs with node:crypto, writes their public halves as a JWK Set file and
// signs access tokens itself. Checks: the RFC 9728 metadata document (at
// the resource's path and at the root); 401 with `WWW-Authenticate: Bearer
// resource_metadata=...` without a token; valid RS256 and ES256 tokens
// admitted (audience as a string or in an array, in either letter case);
// wrong issuer, wrong audience, expired, not yet valid, tampered, alg
// "none", HS256, an unknown kid, an algorithm that does not match its key
// and malformed tokens each refused with 401, error="invalid_token" and
// -32011, without echoing the token; the clock-skew boundaries; a session
// bound to the token's subject (another subject gets 404, a fresh token of
// the same subject goes on); a key added to the JWK Set file is taken up
// without a restart; a gateway never passes the client's token to an HTTP
// downstream (a recording proxy sits in front of it); no token in the log.
// Scopes (`auth.oauth.requiredScopes`, `claimScopes`), as the official
// TypeScript SDK client sees them: lists show what the token may use, and a
// call without a needed scope gets HTTP 403 with an insufficient_scope
// challenge, -32012 and an audit entry; a claim's value grants scopes.

import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { assert, harness, modernRequest, openSession, request, rpcError, scaled, sessionCall, startProxy, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-oauth-', watchdogMs: 110_000 });
const { dir, check, startBulwark } = run;

const issuer = 'https://auth.test.example';
const resource = 'https://mcp.test.example/mcp';
const jwksFile = join(dir, 'jwks.json');
const skew = 60;

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
const late = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = (pair, kid) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig' });
const jwks = (...keys) => writeFileSync(jwksFile, JSON.stringify({ keys }));

/// A compact JWS over `claims` (merged into valid defaults), signed with
/// `pair` as `alg`; `header` overrides header members.
function token(claims = {}, { alg = 'RS256', kid = 'rsa-1', pair = rsa, header = {} } = {}) {
  const t = now();
  const body = { iss: issuer, aud: resource, sub: 'alice', iat: t, exp: t + 600, ...claims };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  const input = `${b64url({ alg, typ: 'at+jwt', kid, ...header })}.${b64url(body)}`;
  const sig = alg === 'ES256' ? sign('sha256', Buffer.from(input), { key: pair.privateKey, dsaEncoding: 'ieee-p1363' })
                              : sign('sha256', Buffer.from(input), pair.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}
const es = (claims = {}) => token(claims, { alg: 'ES256', kid: 'ec-1', pair: ec });

const bearer = (t) => ({ authorization: `Bearer ${t}` });
const call = (port, t, text) => modernRequest(port, 'tools/call', { name: 'echo', arguments: { text } }, t ? bearer(t) : {});
const textOf = (r) => r.json?.result?.content?.[0]?.text;
const metadataUrl = 'https://mcp.test.example/.well-known/oauth-protected-resource/mcp';
const sentTokens = new Set();

/// Asserts a refusal as RFC 6750 and the MCP authorization spec describe.
function refused(r, t, what) {
  assert(r.status === 401, `${what}: status ${r.status} ${r.text}`);
  const challenge = r.headers.get('www-authenticate') ?? '';
  assert(challenge.startsWith(`Bearer resource_metadata="${metadataUrl}"`) && challenge.includes('error="invalid_token"'),
         `${what}: challenge ${challenge}`);
  assert(r.json?.error?.code === -32011, `${what}: body ${r.text}`);
  assert(typeof r.json.error.data?.traceId === 'string', `${what}: a trace id`);
  if (t) {
    for (const part of t.split('.').filter((p) => p.length > 8))
      assert(!r.text.includes(part) && !challenge.includes(part), `${what}: the token is echoed`);
  }
  return r.json.error.message;
}

await run.main(async () => {
  jwks(jwk(rsa, 'rsa-1'), jwk(ec, 'ec-1'), { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac-ignored' });
  const cfg = join(dir, 'oauth.json');
  writeFileSync(cfg, JSON.stringify({
    auth: { mode: 'oauth', oauth: { issuer, resource, jwksFile, clockSkewSeconds: skew, scopesSupported: ['mcp:tools'] } },
    http: { port: 0 },
  }));
  const port = await startBulwark(['--config', cfg], 'server');

  await check('protected resource metadata (RFC 9728) at the resource path and at the root, without a token', async () => {
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const r = await request(port, 'GET', { path });
      assert(r.status === 200 && (r.headers.get('content-type') ?? '').startsWith('application/json'), `${path}: ${r.status}`);
      assert(r.json.resource === resource, `resource: ${r.text}`);
      assert(JSON.stringify(r.json.authorization_servers) === JSON.stringify([issuer]), `authorization_servers: ${r.text}`);
      assert(JSON.stringify(r.json.bearer_methods_supported) === '["header"]', `bearer methods: ${r.text}`);
      assert(JSON.stringify(r.json.scopes_supported) === '["mcp:tools"]', `scopes: ${r.text}`);
    }
  });

  await check('no token: 401 with resource_metadata (and scope), without error=', async () => {
    const r = await call(port, null, 'x');
    assert(r.status === 401 && r.json?.error?.code === -32011, `${r.status} ${r.text}`);
    assert(r.headers.get('www-authenticate') === `Bearer resource_metadata="${metadataUrl}", scope="mcp:tools"`,
           `challenge: ${r.headers.get('www-authenticate')}`);
  });

  await check('valid RS256 and ES256 tokens are admitted', async () => {
    const a = await call(port, token(), 'rs256 hello');
    assert(a.status === 200 && textOf(a) === 'rs256 hello', `RS256: ${a.status} ${a.text}`);
    const b = await call(port, es(), 'es256 hello');
    assert(b.status === 200 && textOf(b) === 'es256 hello', `ES256: ${b.status} ${b.text}`);
    const arr = await call(port, token({ aud: ['https://other.example', resource] }), 'array aud');
    assert(textOf(arr) === 'array aud', `aud as an array: ${arr.text}`);
    const upper = await call(port, es({ aud: 'HTTPS://MCP.Test.Example/mcp/' }), 'canonical');
    assert(textOf(upper) === 'canonical', `aud in another letter case, trailing slash: ${upper.text}`);
    const list = await modernRequest(port, 'tools/list', {}, bearer(token()));
    assert(list.json?.result?.tools?.some((t) => t.name === 'echo'), `tools/list: ${list.text}`);
  });

  await check('bad tokens are refused with 401, error="invalid_token", -32011 and a clear message', async () => {
    const t = now();
    const good = token();
    const [h, p, s] = good.split('.');
    const cases = {
      'wrong issuer': [token({ iss: 'https://evil.example' }), /issuer/],
      'wrong audience': [token({ aud: 'https://other.example/mcp' }), /audience/],
      'no audience': [token({ aud: undefined }), /audience/],
      expired: [token({ exp: t - skew - 30 }), /expired/],
      'not yet valid': [es({ nbf: t + skew + 30 }), /not valid yet/],
      'no exp': [token({ exp: undefined }), /expiry/],
      'no sub': [token({ sub: undefined }), /subject/],
      'tampered payload': [`${h}.${b64url({ iss: issuer, aud: resource, sub: 'mallory', exp: t + 600 })}.${s}`, /signature/],
      'tampered signature': [`${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`, /signature/],
      'signed by a stranger with a known kid': [token({}, { pair: stranger }), /signature/],
      'alg none': [`${b64url({ alg: 'none', kid: 'rsa-1' })}.${p}.`, /alg "none"|unsigned/],
      'alg None, with a signature': [`${b64url({ alg: 'None', kid: 'rsa-1' })}.${p}.${s}`, /unsigned/],
      'HS256 keyed with the public key': [(() => {
        const input = `${b64url({ alg: 'HS256', kid: 'rsa-1' })}.${p}`;
        const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
        return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
      })(), /shared secret/],
      'unknown kid': [token({}, { kid: 'nobody' }), /unknown key/],
      'no kid with two keys': [token({}, { kid: undefined, header: { kid: undefined } }), /kid/],
      'ES256 header on the RSA key': [token({}, { alg: 'ES256', pair: ec }), /does not match/],
      'RS512': [token({}, { header: { alg: 'RS512' } }), /not supported/],
      'crit header': [token({}, { header: { crit: ['exp'] } }), /critical/],
      'two parts': [`${h}.${p}`, /malformed/],
      'not base64': [`${h}.${p}.***`, /malformed/],
      'header not JSON': [`${b64url('not json')}.${p}.${s}`, /malformed/],
      garbage: ['abc', /malformed/],
    };
    for (const [what, [t2, pattern]] of Object.entries(cases)) {
      sentTokens.add(t2);
      const message = refused(await call(port, t2, 'x'), t2, what);
      assert(pattern.test(message), `${what}: message ${message}`);
    }
    console.log(`  ${Object.keys(cases).length} kinds of bad token refused`);
  });

  await check(`clock skew (${skew} s): inside the window admitted, outside refused`, async () => {
    const t = now();
    assert(textOf(await call(port, token({ exp: t - skew + 15 }), 'late ok')) === 'late ok', 'expired 45 s ago: admitted');
    assert(textOf(await call(port, es({ nbf: t + skew - 15 }), 'early ok')) === 'early ok', 'valid in 45 s: admitted');
    refused(await call(port, token({ exp: t - skew - 5 }), 'x'), null, 'expired 65 s ago');
    refused(await call(port, es({ nbf: t + skew + 5 }), 'x'), null, 'valid in 65 s');
  });

  await check("a session is bound to the token's subject: another subject gets 404", async () => {
    const sid = await openSession(port, bearer(token({ sub: 'alice' })));
    const mine = await sessionCall(port, bearer(es({ sub: 'alice' })), sid, 'echo', { text: 'fresh token, same subject' });
    assert(mine.status === 200 && textOf(mine) === 'fresh token, same subject', `alice with a new token: ${mine.status} ${mine.text}`);
    const bob = await sessionCall(port, bearer(token({ sub: 'bob' })), sid, 'echo', { text: 'stolen' });
    assert(bob.status === 404 && !bob.text.includes('stolen'), `bob: ${bob.status} ${bob.text}`);
    const otherIss = await sessionCall(port, bearer(token({ sub: 'alice', iss: 'https://evil.example' })), sid, 'echo', { text: 'x' });
    assert(otherIss.status === 401, `another issuer's alice: ${otherIss.status}`);
    const none = await sessionCall(port, {}, sid, 'echo', { text: 'x' });
    assert(none.status === 401, `no token: ${none.status}`);
  });

  await check('a key added to the JWK Set file is used without a restart', async () => {
    const lateToken = () => token({}, { alg: 'ES256', kid: 'ec-late', pair: late });
    refused(await call(port, lateToken(), 'x'), null, 'before the key is added');
    jwks(jwk(rsa, 'rsa-1'), jwk(ec, 'ec-1'), jwk(late, 'ec-late'));
    const t0 = Date.now();
    await until('the new key accepted', async () => textOf(await call(port, lateToken(), 'late key')) === 'late key', 5000);
    console.log(`  accepted ${Date.now() - t0} ms after the file changed`);
    assert(textOf(await call(port, token(), 'old key')) === 'old key', 'the old keys still work');
  });

  await check('no token appears in the log; refusals are logged with their trace id', async () => {
    const lines = run.logs.join('\n');
    for (const t of sentTokens)
      for (const part of t.split('.').filter((x) => x.length > 16))
        assert(!lines.includes(part), 'a token part in the log');
    assert(run.logs.some((l) => l.includes('error answered') && l.includes('-32011') || l.includes('"code":-32011')),
           'the refusals are logged');
  });

  await run.stop('server');

  await check("a gateway does not pass the client's token on to an HTTP downstream", async () => {
    const downstream = await startBulwark(['--fixtures', '--no-builtin-tools', '--port', '0'], 'downstream');
    // A proxy in front of the downstream records every request's headers.
    const proxy = await startProxy(downstream);
    const seen = proxy.seen;
    try {
      const gwCfg = join(dir, 'gateway.json');
      writeFileSync(gwCfg, JSON.stringify({
        auth: { mode: 'oauth', oauth: { issuer, resource, jwksFile } },
        http: { port: 0 },
        mcpServers: { web: { url: `http://127.0.0.1:${proxy.port}/mcp` } },
        gateway: { prefix: 'never' },
      }));
      const gw = await startBulwark(['--config', gwCfg, '--no-builtin-tools'], 'gateway');
      await until('ready', async () => (await request(gw, 'GET', { path: '/ready' })).status === 200, 20_000);
      const t = token({ sub: 'carol' });
      const r = await modernRequest(gw, 'tools/call', { name: 'test_simple_text', arguments: {} }, bearer(t));
      assert(r.json?.result?.content?.length > 0, `served through the downstream: ${r.text}`);
      const calls = seen.filter((x) => x.method === 'POST');
      assert(calls.length > 0, 'the proxy saw the downstream requests');
      for (const x of seen) {
        assert(!('authorization' in x.headers), `an Authorization header reached the downstream: ${JSON.stringify(x.headers)}`);
        for (const v of Object.values(x.headers))
          assert(!String(v).includes(t.split('.')[2]), 'the token reached the downstream');
      }
      console.log(`  ${seen.length} downstream requests, none with the client's token`);
      await run.stop('gateway');
    } finally {
      proxy.shut();
      await run.stop('downstream');
    }
  });

  await check('scopes: lists show what the token may use; a call without a needed scope is 403 insufficient_scope', async () => {
    const auditFile = join(dir, 'scopes-audit.jsonl');
    const scoped = join(dir, 'scoped.json');
    writeFileSync(scoped, JSON.stringify({
      auth: {
        mode: 'oauth',
        oauth: {
          issuer, resource, jwksFile,
          requiredScopes: { tools: { '*': ['mcp:tools'], 'echo': ['mcp:echo'] } },
          claimScopes: { 'groups=echoers': ['mcp:echo'] },
        },
      },
      audit: { file: auditFile },
      http: { port: 0 },
    }));
    const sport = await startBulwark(['--config', scoped], 'scoped');
    const sdk = async (t) => {
      const c = new Client({ name: 'scope-test', version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${sport}/mcp`),
                                                         { requestInit: { headers: { authorization: `Bearer ${t}` } } }));
      return c;
    };
    const plain = token({ scope: 'mcp:tools' });
    const a = await sdk(plain);
    const names = (await a.listTools()).tools.map((t) => t.name);
    assert(names.includes('add') && !names.includes('echo'), `without mcp:echo: ${names}`);
    let refusal;
    try {
      await a.callTool({ name: 'echo', arguments: { text: 'x' } });
    } catch (e) {
      refusal = rpcError(e);
    }
    assert(refusal?.code === -32012 && refusal.httpStatus === 403, `the SDK client's error: ${JSON.stringify(refusal)}`);
    assert(JSON.stringify(refusal.data?.missingScopes) === '["mcp:echo"]', JSON.stringify(refusal.data));
    const raw = await call(sport, plain, 'x');
    assert(raw.status === 403 && raw.json?.error?.code === -32012, `${raw.status} ${raw.text}`);
    const challenge = raw.headers.get('www-authenticate') ?? '';
    assert(challenge === `Bearer error="insufficient_scope", scope="mcp:tools mcp:echo", resource_metadata="${metadataUrl}"`,
           `challenge: ${challenge}`);
    const audit = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert(audit.some((e) => e.event === 'scope.denied' && e.target === 'tool:echo' && e.outcome === 'denied'), 'an audit entry');
    await a.close();

    for (const [what, t] of [['the scope', token({ scope: 'mcp:tools mcp:echo' })],
                             ['a claim that grants it', token({ scope: 'mcp:tools', groups: ['staff', 'echoers'] })]]) {
      const b = await sdk(t);
      assert((await b.listTools()).tools.some((x) => x.name === 'echo'), `${what}: echo listed`);
      const r = await b.callTool({ name: 'echo', arguments: { text: 'scoped' } });
      assert(r.content?.[0]?.text === 'scoped', `${what}: ${JSON.stringify(r)}`);
      await b.close();
    }
    const none = await modernRequest(sport, 'tools/list', {}, bearer(token({ scope: undefined })));
    assert(none.status === 200 && none.json?.result?.tools?.length === 0 && none.json.result.cacheScope === 'private',
           `no scopes, no tools: ${none.text}`);
    await run.stop('scoped');
  });

  await check('bad oauth settings and an unusable JWK Set refuse to start, naming the key', async () => {
    const { spawnSync } = await import('node:child_process');
    const start = (oauth) => {
      const p = join(dir, 'bad.json');
      writeFileSync(p, JSON.stringify({ auth: { mode: 'oauth', oauth }, http: { port: 0 } }));
      return spawnSync(run.bulwark, ['--config', p], { encoding: 'utf8', timeout: scaled(10_000) });
    };
    const noIssuer = start({ resource, jwksFile });
    assert(noIssuer.status === 2 && /\$\.auth\.oauth\.issuer/.test(noIssuer.stderr), `no issuer: ${noIssuer.status} ${noIssuer.stderr}`);
    const relative = start({ issuer, resource: 'mcp.test.example', jwksFile });
    assert(relative.status === 2 && /\$\.auth\.oauth\.resource/.test(relative.stderr), `relative resource: ${relative.stderr}`);
    const unknown = start({ issuer, resource, jwksFile, audience: 'x' });
    assert(unknown.status === 2 && /\$\.auth\.oauth\.audience: unknown key/.test(unknown.stderr), `unknown key: ${unknown.stderr}`);
    const badJwks = join(dir, 'bad-jwks.json');
    writeFileSync(badJwks, JSON.stringify({ keys: [{ kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA', kid: 'short' }] }));
    const short = start({ issuer, resource, jwksFile: badJwks });
    assert(short.status === 2 && /keys\[0\]/.test(short.stderr), `bad JWK: ${short.status} ${short.stderr}`);
    const missing = start({ issuer, resource, jwksFile: join(dir, 'nope.json') });
    assert(missing.status === 2 && /jwksFile/.test(missing.stderr), `missing file: ${missing.status} ${missing.stderr}`);
  });
});
