#!/usr/bin/env node
// End-to-end test of a fleet: three `bulwark --fixtures` instances with the
// same JSON config sharing one `redis-server` (started on a free loopback
// port), behind Debian's `haproxy` started with the committed
// deploy/haproxy.cfg as is (round robin, no stickiness, health checks on
// GET /ready, L7 retries of 503s and refused connections), its addresses
// given through the environment. Each group of checks starts its own fleet
// (its own config, its own Redis key prefix, its own haproxy).
//
//   node tests/e2e/fleet.mjs --bulwark build/bulwark [--haproxy PATH] [--redis-server PATH]
//
// Checks:
// 1. 2026-07-28 input_required rounds carrying requestState
//    (test_input_required_result_request_state, and _multi_round over three
//    rounds) complete through haproxy with consecutive rounds answered by
//    different instances (the X-Bulwark-Server header haproxy adds), with
//    raw HTTP and with the official v2 client (@modelcontextprotocol/client
//    pinned to 2026-07-28, which fulfils the rounds itself); once with a key
//    file (`sessions.stateKeyFile`) and once with the key shared through
//    Redis only; and once through a fleet that is a gateway in front of a
//    2026-07-28 service, whose own requestState travels inside the fleet's.
// 2. The official v1 SDK client (@modelcontextprotocol/sdk, 2025-11-25 over
//    Streamable HTTP) through haproxy: tools, a call, a resource, a prompt
//    (answered by several instances), progress notifications, and a
//    resource subscription made through haproxy: an update announced on
//    each instance in turn (test_update_resource sent to it directly, with
//    the client's session) reaches the client's GET stream; with the GET
//    stream's instance killed, the SDK resumes it with Last-Event-ID on
//    another instance, and an update announced on the third reaches it. The
//    v2 client's tools, call, resource, prompt and progress, likewise.
// 3. With `http.sseKeepAliveSeconds: 1` and haproxy's idle timeouts at 2 s,
//    a 2025-era GET stream and a 2026-07-28 subscriptions/listen stream
//    stay open through 10 idle periods and carry `: keep-alive` comments;
//    with `http.sseKeepAliveSeconds: 0` haproxy cuts an idle GET stream
//    within a few seconds.
// 4. SIGTERM on one instance: /ready answers 503 while calls are still
//    served (shutdown.readyGraceMs), then a new request gets 503 with
//    Retry-After and its own id while a call in flight finishes, and the
//    process exits 0. Then a rolling restart under load: 8 clients (four
//    2026-07-28 callers, four 2025-era sessions) call `fault_count` with
//    unique keys through haproxy while each instance in turn gets SIGTERM
//    (shutdown.readyGraceMs 1500, drainSeconds 5), exits, is started again
//    on its port and seen UP by haproxy: no call fails, and every key is in
//    exactly one line of the instances' execution logs
//    (BULWARK_EXECUTION_LOG).
// 5. A 2025-era GET stream resumed with Last-Event-ID through haproxy after
//    its instance was killed (SIGKILL) replays the events after that id.
//
// Every process (redis-server, haproxy, each bulwark) is killed by pid.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { assert, freePort, harness, openSession, readStream, redisCommand, scaled, sleep, until } from './harness.mjs';

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const redisServer = arg('--redis-server', 'redis-server');
const haproxy = arg('--haproxy', existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy');
const haproxyCfg = resolve(dirname(fileURLToPath(import.meta.url)), '../../deploy/haproxy.cfg');

const run = harness({ scratch: 'bulwark-fleet-', watchdogMs: 150_000 });
const { check, startBulwark, logs } = run;

const V26 = '2026-07-28';
const V25 = '2025-11-25';
const meta26 = (capabilities = {}) => ({
  'io.modelcontextprotocol/protocolVersion': V26,
  'io.modelcontextprotocol/clientCapabilities': capabilities,
});

/// `n` distinct free loopback ports.
async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/// haproxy's view of the backend's servers (b1..b3): name -> status (UP,
/// DOWN...). A server haproxy has not checked yet counts as UP in its
/// statistics; here it is "UNCHECKED" until a check has passed.
async function serverStates(statsPort) {
  const res = await fetch(`http://127.0.0.1:${statsPort}/stats;csv`, { signal: AbortSignal.timeout(scaled(2000)) });
  const lines = (await res.text()).split('\n').filter(Boolean);
  const head = lines[0].replace(/^# /, '').split(',');
  const [px, sv, st, chk] = ['pxname', 'svname', 'status', 'check_status'].map((k) => head.indexOf(k));
  const out = {};
  for (const l of lines.slice(1)) {
    const f = l.split(',');
    if (f[px] === 'bulwark' && /^b\d$/.test(f[sv])) out[f[sv]] = f[st] === 'UP' && f[chk] !== 'L7OK' ? 'UNCHECKED' : f[st];
  }
  return out;
}

/// Starts haproxy in the foreground with deploy/haproxy.cfg, its addresses
/// and idle timeout from the environment; resolves with its ports once it
/// sees every instance UP.
async function startHaproxy(label, ports, timeout) {
  const [lbPort, statsPort] = await freePorts(2);
  const env = {
    ...process.env,
    BULWARK_LB_BIND: `127.0.0.1:${lbPort}`,
    BULWARK_LB_STATS: `127.0.0.1:${statsPort}`,
    BULWARK_LB_TIMEOUT: timeout,
  };
  ports.forEach((p, i) => (env[`BULWARK_LB_SERVER${i + 1}`] = `127.0.0.1:${p}`));
  const child = spawn(haproxy, ['-db', '-f', haproxyCfg], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  run.pids.push(child.pid);
  run.started[label] = child;
  const early = new Promise((_, reject) => {
    child.once('error', (e) => reject(new Error(`cannot start ${haproxy}: ${e.message}`)));
    child.once('exit', (code) => reject(new Error(`haproxy exited early with ${code}:\n${logs.slice(-10).join('\n')}`)));
  });
  early.catch(() => {});
  for (const s of [child.stdout, child.stderr])
    createInterface({ input: s }).on('line', (line) => {
      logs.push(`[${label}] ${line}`);
      if (logs.length > 400) logs.shift();
    });
  await Promise.race([early, until(`haproxy (${label}) to see b1..b3 UP`, async () => {
    try {
      const st = await serverStates(statsPort);
      return ['b1', 'b2', 'b3'].every((b) => st[b] === 'UP');
    } catch {
      return false;
    }
  }, 10_000)]);
  return { lbPort, statsPort };
}

/// Kills the process started as `label` (if still there) by pid and waits for it.
async function kill(label, signal = 'SIGKILL') {
  const child = run.started[label];
  if (!child) return;
  delete run.started[label];
  if (child.exitCode !== null || child.signalCode) return;
  const gone = new Promise((r) => child.once('exit', r));
  try {
    process.kill(child.pid, signal);
  } catch {
    return;
  }
  await gone;
}

/// Which settings this bulwark knows (from --print-config): a dotted path is
/// known when --print-config shows it.
const effective = JSON.parse(execFileSync(run.bulwark, ['--print-config'], { encoding: 'utf8' }));
const knows = (path) => path.split('.').reduce((o, k) => (o && typeof o === 'object' && k in o ? o[k] : undefined), effective) !== undefined;
const missing = ['sessions.stateKeyFile', 'http.sseKeepAliveSeconds', 'shutdown.readyGraceMs'].filter((k) => !knows(k));
if (missing.length) console.log(`NOTE this bulwark does not know ${missing.join(', ')}: the checks that use them fail on its refusal`);

let fleetNo = 0;
/// Three instances with one config (`config` plus Redis) behind haproxy
/// whose idle timeout is `timeout`; `extra(i)` are more arguments of
/// instance i. Resolves with the fleet; `fleet.stop()` kills all of it.
async function startFleet(name, config, { timeout = '30s', extra = () => [], env = () => undefined } = {}) {
  const n = ++fleetNo;
  const cfgPath = join(run.dir, `${name}.json`);
  writeFileSync(cfgPath, JSON.stringify({
    ...config,
    redis: { url: `redis://127.0.0.1:${run.redisPort}/0`, keyPrefix: `fleet-${process.pid}-${n}:`, retryMs: 200 },
  }));
  const ports = await freePorts(3);
  const fleet = { name, ports, labels: [], generation: [0, 0, 0], prefix: `fleet-${process.pid}-${n}:` };
  fleet.argv = (i) => ['--config', cfgPath, '--fixtures', '--address', '127.0.0.1', '--port', String(ports[i]), ...extra(i)];
  fleet.start = async (i) => {
    const label = `${name}-b${i + 1}${fleet.generation[i]++ ? `-${fleet.generation[i]}` : ''}`;
    fleet.labels[i] = label;
    const port = await startBulwark(fleet.argv(i), label, env(i));
    assert(port === ports[i], `${label} listens on ${port}, not ${ports[i]}`);
  };
  fleet.stop = async () => {
    await kill(`${name}-lb`);
    for (const l of fleet.labels) await kill(l);
  };
  try {
    for (let i = 0; i < 3; i++) await fleet.start(i);
    Object.assign(fleet, await startHaproxy(`${name}-lb`, ports, timeout));
  } catch (e) {
    await fleet.stop();
    throw e;
  }
  fleet.url = `http://127.0.0.1:${fleet.lbPort}/mcp`;
  return fleet;
}

/// One POST to `url`; resolves with status, the instance haproxy says
/// answered, the messages of a JSON or SSE body, the last one as `json`.
async function post(url, body, headers = {}, ms = 10_000) {
  const t0 = Date.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(scaled(ms)),
  });
  const text = await res.text();
  let messages = [];
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream'))
    messages = text.split('\n').filter((l) => l.startsWith('data:') && l.slice(5).trim()).map((l) => JSON.parse(l.slice(5)));
  else if (text) {
    try {
      messages = [JSON.parse(text)];
    } catch {
      // not JSON
    }
  }
  return { status: res.status, server: res.headers.get('x-bulwark-server'), headers: res.headers, text, messages,
           json: messages.at(-1) ?? null, ms: Date.now() - t0 };
}

let nextId = 1;
/// A 2026-07-28 request through `url`, with mirrored headers.
function modern(url, method, params, { capabilities = {}, headers = {} } = {}) {
  return post(url, { jsonrpc: '2.0', id: nextId++, method, params: { ...params, _meta: meta26(capabilities) } },
              { 'mcp-protocol-version': V26, 'mcp-method': method, ...(params.name ? { 'mcp-name': params.name } : {}), ...headers });
}

/// A 2025-era request in session `sid` through `url`.
const inSession = (url, sid, method, params) =>
  post(url, { jsonrpc: '2.0', id: nextId++, method, params }, { 'mcp-session-id': sid, 'mcp-protocol-version': V25 });

/// An SSE request through `url` read as raw text: `comments` counts the
/// `: keep-alive` lines, `events` holds {id, data}, `ended` says whether the
/// stream ended, `cut` whether it ended before `close()`, `server` is the
/// instance that answered.
async function rawStream(url, method, headers, body) {
  const ac = new AbortController();
  const res = await fetch(url, {
    method, signal: ac.signal,
    headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert(res.status === 200 && (res.headers.get('content-type') ?? '').startsWith('text/event-stream'),
         `${method}: an event stream, got HTTP ${res.status} ${res.headers.get('content-type')}: ${res.status === 200 ? '' : await res.text()}`);
  const s = { server: res.headers.get('x-bulwark-server'), comments: 0, events: [], ended: false, cut: false, endedAt: 0,
              closing: false };
  s.close = () => {
    s.closing = true;
    ac.abort();
  };
  readStream(res, {
    onEvent: (id, data) => s.events.push({ id, data }),
    onComment: (text) => {
      if (text === 'keep-alive') s.comments++;
    },
  }).then(() => {
    s.cut = !s.closing;
    s.ended = true;
    s.endedAt = Date.now();
  });
  return s;
}

const textOf = (r) => r?.result?.content?.[0]?.text ?? r?.content?.[0]?.text ?? '';

/// Consecutive rounds answered by different instances (else the check proves nothing).
function assertSpread(servers, what) {
  assert(servers.every(Boolean), `${what}: haproxy named no instance for some rounds: ${JSON.stringify(servers)}`);
  for (let i = 1; i < servers.length; i++)
    assert(servers[i] !== servers[i - 1], `${what}: rounds ${i} and ${i + 1} both went to ${servers[i]} (${servers}); the check needs different instances`);
}

/// Three rounds of the multi_round fixture `tool` through `fleet`, raw HTTP,
/// consecutive rounds on different instances.
async function multiRound(fleet, tool) {
  const servers = [];
  const call = async (extra) => {
    const r = await modern(fleet.url, 'tools/call', { name: tool, arguments: {}, ...extra }, { capabilities: { elicitation: {} } });
    servers.push(r.server);
    return r;
  };
  const r1 = await call({});
  assert(r1.json?.result?.inputRequests?.step1 && r1.json.result.requestState, `round 1: ${r1.text.slice(0, 300)}`);
  const r2 = await call({ requestState: r1.json.result.requestState, inputResponses: { step1: { action: 'accept', content: { name: 'Ada' } } } });
  assert(r2.json?.result?.inputRequests?.step2 && r2.json.result.requestState,
         `round 2 on ${r2.server} (round 1 on ${servers[0]}): HTTP ${r2.status} ${r2.text.slice(0, 300)}`);
  const r3 = await call({ requestState: r2.json.result.requestState, inputResponses: { step2: { action: 'accept', content: { color: 'teal' } } } });
  assert(textOf(r3.json) === 'Name: Ada, favorite color: teal', `round 3 on ${r3.server}: HTTP ${r3.status} ${r3.text.slice(0, 300)}`);
  assertSpread(servers, 'multi_round');
}

/// The input_required checks (1) through `fleet`, named by `variant`.
async function inputRequiredChecks(fleet, variant) {
  await check(`[${variant}] requestState round trip (test_input_required_result_request_state) across instances, raw HTTP`, async () => {
    const tool = 'test_input_required_result_request_state';
    const first = await modern(fleet.url, 'tools/call', { name: tool, arguments: {} }, { capabilities: { elicitation: {} } });
    const state = first.json?.result?.requestState;
    assert(first.json?.result?.resultType === 'input_required' && typeof state === 'string' && first.json.result.inputRequests?.confirm,
           `round 1: ${first.status} ${first.text.slice(0, 300)}`);
    const second = await modern(fleet.url, 'tools/call', {
      name: tool, arguments: {}, requestState: state, inputResponses: { confirm: { action: 'accept', content: { ok: true } } },
    }, { capabilities: { elicitation: {} } });
    assertSpread([first.server, second.server], 'request_state');
    assert(second.status === 200 && textOf(second.json) === 'state-ok: confirmed=true',
           `round 2 on ${second.server} (round 1 on ${first.server}): HTTP ${second.status} ${second.text.slice(0, 300)}`);
  });

  await check(`[${variant}] three rounds of test_input_required_result_multi_round, each on another instance, raw HTTP`,
              () => multiRound(fleet, 'test_input_required_result_multi_round'));

  await check(`[${variant}] the official v2 client pinned to ${V26}: tools, a call, a resource, a prompt and progress, on several instances`, async () => {
    const servers = [];
    const tapFetch = async (input, init) => {
      const res = await fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(scaled(10_000)) });
      servers.push(res.headers.get('x-bulwark-server'));
      return res;
    };
    const client = new ClientV2({ name: 'bulwark-fleet-e2e', version: '1.0.0' },
                                { capabilities: {}, versionNegotiation: { mode: { pin: V26 } } });
    const opts = { timeout: scaled(10_000) };
    try {
      await client.connect(new TransportV2(new URL(fleet.url), { fetch: tapFetch }), opts);
      const { tools } = await client.listTools(undefined, opts);
      assert(tools.some((t) => t.name === 'echo'), `tools: ${tools.map((t) => t.name)}`);
      const echoed = await client.callTool({ name: 'echo', arguments: { text: 'fleet v2' } }, opts);
      assert(textOf(echoed) === 'fleet v2', `echo: ${JSON.stringify(echoed)}`);
      const { contents } = await client.readResource({ uri: 'test://static-text' }, opts);
      assert(contents[0]?.text === 'This is the content of the static text resource.', `resource: ${JSON.stringify(contents)}`);
      const prompt = await client.getPrompt({ name: 'test_prompt_with_arguments', arguments: { arg1: 'alpha-2', arg2: 'beta-3' } }, opts);
      const text = prompt.messages.map((m) => m.content.text ?? '').join('\n');
      assert(text.includes('alpha-2') && text.includes('beta-3'), `prompt: ${text}`);
      const seen = [];
      const r = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, { ...opts, onprogress: (p) => seen.push(p.progress) });
      assert(textOf(r) === 'Progress test completed' && JSON.stringify(seen) === '[0,50,100]', `progress ${JSON.stringify(seen)}: ${JSON.stringify(r)}`);
      const on = new Set(servers.filter(Boolean));
      assert(on.size >= 2, `answered by ${[...on]} only: round robin should spread them`);
    } finally {
      await Promise.race([client.close().catch(() => {}), sleep(2000)]);
    }
  });

  await check(`[${variant}] the official v2 client pinned to ${V26} completes multi_round and request_state across instances`, async () => {
    // Which instance answered each tools/call round, as haproxy says.
    const rounds = [];
    const tapFetch = async (input, init) => {
      const res = await fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(scaled(10_000)) });
      try {
        const body = typeof init?.body === 'string' ? JSON.parse(init.body) : null;
        if (body?.method === 'tools/call') rounds.push({ tool: body.params.name, server: res.headers.get('x-bulwark-server') });
      } catch {
        // not a JSON body
      }
      return res;
    };
    const client = new ClientV2({ name: 'bulwark-fleet-e2e', version: '1.0.0' },
                                { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: V26 } } });
    const asked = [];
    client.setRequestHandler('elicitation/create', async (req) => {
      const message = req.params.message;
      asked.push(message);
      if (/name/i.test(message)) return { action: 'accept', content: { name: 'Grace' } };
      if (/color/i.test(message)) return { action: 'accept', content: { color: 'green' } };
      return { action: 'accept', content: { ok: true } };
    });
    const transport = new TransportV2(new URL(fleet.url), { fetch: tapFetch });
    try {
      await client.connect(transport, { timeout: scaled(10_000) });
      const multi = await client.callTool({ name: 'test_input_required_result_multi_round', arguments: {} }, { timeout: scaled(10_000) });
      const multiRounds = rounds.filter((r) => r.tool === 'test_input_required_result_multi_round').map((r) => r.server);
      assert(textOf(multi) === 'Name: Grace, favorite color: green',
             `multi_round: ${JSON.stringify(multi)} (rounds on ${multiRounds}, asked ${JSON.stringify(asked)})`);
      assert(multiRounds.length === 3, `three rounds: ${multiRounds}`);
      assertSpread(multiRounds, 'v2 multi_round');
      const state = await client.callTool({ name: 'test_input_required_result_request_state', arguments: {} }, { timeout: scaled(10_000) });
      const stateRounds = rounds.filter((r) => r.tool === 'test_input_required_result_request_state').map((r) => r.server);
      assert(textOf(state) === 'state-ok: confirmed=true', `request_state: ${JSON.stringify(state)} (rounds on ${stateRounds})`);
      assertSpread(stateRounds, 'v2 request_state');
    } catch (e) {
      throw new Error(`${e.message} (tools/call rounds on ${JSON.stringify(rounds)})`, { cause: e });
    } finally {
      await Promise.race([client.close().catch(() => {}), sleep(2000)]);
    }
  });
}

/// The v1 SDK checks (2) through `fleet`.
async function sdkV1Checks(fleet) {
  const served = [];
  const tapFetch = async (input, init) => {
    const entry = { method: init?.method ?? 'GET', server: null, lastEventId: new Headers(init?.headers).get('last-event-id') };
    served.push(entry);
    try {
      const res = await fetch(input, init);
      entry.server = res.headers.get('x-bulwark-server');
      entry.status = res.status;
      return res;
    } catch (e) {
      entry.error = String(e.message ?? e);
      throw e;
    }
  };
  const client = new ClientV1({ name: 'bulwark-fleet-sdk', version: '1.0.0' }, { capabilities: {} });
  const updates = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updates.push(n.params.uri));
  const transport = new TransportV1(new URL(fleet.url), { fetch: tapFetch });
  const opts = { timeout: scaled(10_000) };
  let connected = false;
  try {
    await check('[sdk v1] connects through haproxy (initialize on one instance, the session in Redis)', async () => {
      await client.connect(transport, opts);
      connected = true;
      assert(client.getServerCapabilities()?.tools && transport.sessionId, `capabilities ${JSON.stringify(client.getServerCapabilities())}`);
    });
    if (!connected) return;
    await check('[sdk v1] lists tools, calls echo, reads a resource, gets a prompt, on several instances', async () => {
      const from = served.length;
      const { tools } = await client.listTools(undefined, opts);
      assert(tools.some((t) => t.name === 'echo') && tools.some((t) => t.name === 'test_tool_with_progress'), `tools: ${tools.map((t) => t.name)}`);
      const echoed = await client.callTool({ name: 'echo', arguments: { text: 'fleet \u00e9' } }, undefined, opts);
      assert(textOf(echoed) === 'fleet \u00e9', `echo: ${JSON.stringify(echoed)}`);
      const { contents } = await client.readResource({ uri: 'test://static-text' }, opts);
      assert(contents[0]?.text === 'This is the content of the static text resource.', `resource: ${JSON.stringify(contents)}`);
      const prompt = await client.getPrompt({ name: 'test_prompt_with_arguments', arguments: { arg1: 'alpha-1', arg2: 'beta-2' } }, opts);
      const text = prompt.messages.map((m) => m.content.text ?? '').join('\n');
      assert(text.includes('alpha-1') && text.includes('beta-2'), `prompt: ${text}`);
      const on = new Set(served.slice(from).map((x) => x.server).filter(Boolean));
      assert(on.size >= 2, `answered by ${[...on]} only: round robin should spread them`);
    });
    await check('[sdk v1] progress notifications of test_tool_with_progress through haproxy', async () => {
      const seen = [];
      const r = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined,
                                      { ...opts, onprogress: (p) => seen.push(p.progress) });
      assert(textOf(r) === 'Progress test completed', JSON.stringify(r));
      assert(JSON.stringify(seen) === '[0,50,100]', `progress: ${JSON.stringify(seen)}`);
    });
    await check('[sdk v1] a resource subscription made through haproxy: an update triggered on each instance reaches the GET stream', async () => {
      const sid = transport.sessionId;
      const stream = (await until('the SDK\'s GET stream open', () => served.find((x) => x.method === 'GET' && x.status), 3000)).server;
      assert(stream, `the SDK's GET stream: ${JSON.stringify(served)}`);
      const from = served.length;
      await client.subscribeResource({ uri: 'test://watched-resource' }, opts);
      const subscribedOn = served.slice(from).at(-1)?.server;
      // Each instance in turn announces an update, as it would when the
      // resource changed under it; the client hears of each on its stream.
      const delivered = [];
      for (let i = 0; i < 3; i++) {
        const before = updates.length;
        const r = await inSession(`http://127.0.0.1:${fleet.ports[i]}/mcp`, sid, 'tools/call',
                                  { name: 'test_update_resource', arguments: { uri: 'test://watched-resource' } });
        assert(textOf(r.json) === 'updated test://watched-resource', `update on b${i + 1}: ${r.text}`);
        const end = Date.now() + scaled(1500);
        while (updates.length === before && Date.now() < end) await sleep(50);
        if (updates.length > before) delivered.push(`b${i + 1}`);
      }
      assert(delivered.length === 3 && updates.every((u) => u === 'test://watched-resource'),
             `GET stream on ${stream}, subscribed on ${subscribedOn}: only the updates announced on [${delivered}] of b1,b2,b3 reached the client`);
    });
    await check('[sdk v1] its GET stream\'s instance killed, the SDK resumes with Last-Event-ID on another, and the updates keep coming', async () => {
      const sid = transport.sessionId;
      const stream = served.filter((x) => x.method === 'GET' && x.status === 200).at(-1)?.server;
      const i = Number(stream?.slice(1)) - 1;
      assert(i >= 0 && i < 3, `the SDK's GET stream: ${JSON.stringify(served)}`);
      const from = served.length;
      await kill(fleet.labels[i]);
      const resumed = await until('the SDK\'s GET again, with Last-Event-ID, answered by another instance',
                                  () => served.slice(from).find((x) => x.method === 'GET' && x.lastEventId && x.status === 200), 8000);
      assert(resumed.server !== stream, `resumed on ${resumed.server}, the killed instance was ${stream}`);
      // The update is announced on the third instance, neither the killed
      // one nor the one that holds the stream now.
      const third = [0, 1, 2].find((k) => `b${k + 1}` !== stream && `b${k + 1}` !== resumed.server);
      const before = updates.length;
      const r = await inSession(`http://127.0.0.1:${fleet.ports[third]}/mcp`, sid, 'tools/call',
                                { name: 'test_update_resource', arguments: { uri: 'test://watched-resource' } });
      assert(textOf(r.json) === 'updated test://watched-resource', `update on b${third + 1}: ${r.text}`);
      await until(`the update announced on b${third + 1} on the stream resumed on ${resumed.server}`, () => updates.length > before, 3000);
    });
  } finally {
    await Promise.race([client.close().catch(() => {}), sleep(2000)]);
  }
}

/// A 2025-era GET stream and a 2026-07-28 subscriptions/listen stream
/// through `fleet`, left idle for `seconds`.
async function idleStreams(fleet, seconds) {
  const sid = await openSession(fleet.lbPort, {});
  const get = await rawStream(fleet.url, 'GET', { 'mcp-session-id': sid, 'mcp-protocol-version': V25 });
  const listen = await rawStream(fleet.url, 'POST', { 'mcp-protocol-version': V26, 'mcp-method': 'subscriptions/listen' }, {
    jsonrpc: '2.0', id: nextId++, method: 'subscriptions/listen',
    params: { _meta: meta26(), notifications: { toolsListChanged: true } },
  });
  const t0 = Date.now();
  const end = t0 + seconds * 1000;
  while (Date.now() < end && !(get.cut && listen.cut)) await sleep(100);
  get.close();
  listen.close();
  return { get, listen, t0 };
}

/// SIGTERM on `fleet`'s b1 with a call in flight (the fleet's
/// shutdown.readyGraceMs 1500): checked on b1 directly, which is started
/// again afterwards.
async function drainCheck(fleet) {
  await check('SIGTERM: /ready 503 while still serving for the grace, then new requests 503 with Retry-After and their id, the call in flight finishes', async () => {
    const direct = `http://127.0.0.1:${fleet.ports[0]}`;
    const label = fleet.labels[0];
    const child = run.started[label];
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    const inflight = modern(`${direct}/mcp`, 'tools/call', { name: 'sleep', arguments: { ms: 3000 } })
      .catch((e) => ({ text: `no answer: ${e.cause?.message ?? e.message}` }));
    let exit = null;
    try {
      await sleep(200);
      const t0 = Date.now();
      process.kill(child.pid, 'SIGTERM');
      await sleep(300);
      const ready = await fetch(`${direct}/ready`, { signal: AbortSignal.timeout(scaled(2000)) });
      assert(ready.status === 503, `/ready ${Date.now() - t0} ms after SIGTERM: ${ready.status}`);
      const served = await modern(`${direct}/mcp`, 'tools/call', { name: 'echo', arguments: { text: 'in the grace' } });
      assert(textOf(served.json) === 'in the grace', `a call ${Date.now() - t0} ms after SIGTERM, in the grace: ${served.status} ${served.text}`);
      await sleep(Math.max(0, 1500 + 500 - (Date.now() - t0)));
      const id = 424242;
      const refused = await post(`${direct}/mcp`, {
        jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text: 'in the drain' }, _meta: meta26() },
      }, { 'mcp-protocol-version': V26, 'mcp-method': 'tools/call', 'mcp-name': 'echo' });
      const at = Date.now() - t0;
      assert(refused.status === 503 && refused.headers.get('retry-after') && refused.json?.id === id && refused.json?.error,
             `a call ${at} ms after SIGTERM, in the drain: HTTP ${refused.status}, Retry-After ${refused.headers.get('retry-after')}: ${refused.text.slice(0, 300)}`);
      const done = await inflight;
      assert(done.json?.result && !done.json.error, `the call in flight: ${done.text.slice(0, 300)}`);
    } finally {
      // Whatever happened, b1 is back (started again) for the next check.
      exit = await Promise.race([exited, sleep(scaled(10_000)).then(() => null)]);
      await kill(label);
      await inflight;
      await fleet.start(0);
      await until('haproxy to see b1 UP again', async () => (await serverStates(fleet.statsPort)).b1 === 'UP', 10_000);
    }
    assert(exit && exit.code === 0, `exit after the drain: ${JSON.stringify(exit)}`);
  });
}

run.main(async () => {
  run.redisPort = await freePort();
  await run.startRedis(run.redisPort, redisServer);
  const keyFile = join(run.dir, 'state.key');
  writeFileSync(keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

  // -- 1 and 3: a fleet sealing requestState with a key file, 1 s keep-alives,
  //    haproxy idle timeouts of 2 s.
  {
    let fleet = null;
    await check('[key file] a fleet with sessions.stateKeyFile, http.sseKeepAliveSeconds 1 and shutdown.readyGraceMs 1500 starts behind haproxy', async () => {
      fleet = await startFleet('keyfile', {
        sessions: { stateKeyFile: keyFile }, http: { sseKeepAliveSeconds: 1 }, shutdown: { drainSeconds: 5, readyGraceMs: 1500 },
      }, { timeout: '2s' });
    });
    if (fleet) {
      await inputRequiredChecks(fleet, 'key file');
      await check('keep-alive 1 s, haproxy timeouts 2 s: idle GET and subscriptions/listen streams stay open 10 periods, with `: keep-alive` comments', async () => {
        const { get, listen, t0 } = await idleStreams(fleet, 10.5);
        for (const [what, s] of [['GET stream', get], ['subscriptions/listen', listen]]) {
          assert(!s.cut, `the ${what} (on ${s.server}) was cut after ${s.endedAt - t0} ms and ${s.comments} keep-alive comments`);
          assert(s.comments >= 8, `the ${what} (on ${s.server}) carried ${s.comments} keep-alive comments in 10 s`);
        }
      });
      await drainCheck(fleet);
      await fleet.stop();
    }
  }

  // -- 3 (the other half): no keep-alives, haproxy idle timeouts of 2 s.
  {
    let fleet = null;
    await check('[no keep-alive] a fleet with http.sseKeepAliveSeconds 0 starts behind haproxy', async () => {
      fleet = await startFleet('nokeepalive', { http: { sseKeepAliveSeconds: 0 } }, { timeout: '2s' });
    });
    if (fleet) {
      await check('keep-alive off, haproxy timeouts 2 s: haproxy cuts an idle GET stream within 5 s, and no comment came', async () => {
        const { get, listen, t0 } = await idleStreams(fleet, 6);
        assert(get.cut && get.endedAt - t0 <= scaled(5000), `the idle GET stream (on ${get.server}) was not cut in 5 s`);
        assert(get.endedAt - t0 >= 1500, `cut after ${get.endedAt - t0} ms, before haproxy's 2 s`);
        assert(get.comments === 0 && listen.comments === 0, `keep-alive comments with the setting at 0: ${get.comments}, ${listen.comments}`);
        assert(listen.cut, 'the idle subscriptions/listen stream was not cut either');
        console.log(`  idle GET stream cut by haproxy after ${get.endedAt - t0} ms, listen stream after ${listen.endedAt - t0} ms`);
      });
      await fleet.stop();
    }
  }

  // -- 1 (key through Redis), 2 and 5: a fleet whose only shared part is Redis.
  {
    let fleet = null;
    await check('[redis key] a fleet with Redis and no stateKeyFile starts behind haproxy', async () => {
      fleet = await startFleet('rediskey', {});
    });
    if (fleet) {
      await inputRequiredChecks(fleet, 'redis key');
      await sdkV1Checks(fleet);
      await check('Last-Event-ID through haproxy after the GET stream\'s instance is killed', async () => {
        const sid = await openSession(fleet.lbPort, {});
        const get = await rawStream(fleet.url, 'GET', { 'mcp-session-id': sid, 'mcp-protocol-version': V25 });
        const i = Number(get.server?.slice(1)) - 1;
        assert(i >= 0 && i < 3, `the GET stream's instance: ${get.server}`);
        // The subscription and the updates go to the stream's own instance
        // directly, so that this check depends only on the replay.
        const direct = `http://127.0.0.1:${fleet.ports[i]}/mcp`;
        const sub = await inSession(direct, sid, 'resources/subscribe', { uri: 'test://watched-resource' });
        assert(sub.json?.result, `subscribe: ${sub.text}`);
        for (let k = 0; k < 6; k++) {
          const r = await inSession(direct, sid, 'tools/call', { name: 'test_update_resource', arguments: { uri: 'test://watched-resource' } });
          assert(r.json?.result, `update ${k}: ${r.text}`);
        }
        await until('six updates on the GET stream', () => get.events.length >= 6, 5000);
        get.close();
        const all = get.events;
        assert(all.every((e) => e.id), `event ids: ${JSON.stringify(all)}`);
        // Events go to Redis beside the stream, not before it: a process
        // killed at once loses the last milliseconds' writes. Wait for them,
        // so that this check is about another instance's replay.
        const stream = all[0].id.split('-')[0];
        const kept = `${fleet.prefix}events:${sid}:${stream}`;
        await until('the six events in Redis', async () => (await redisCommand(run.redisPort, 'LLEN', kept)).startsWith(':6\r\n'), 5000);
        await kill(fleet.labels[i]);
        await until(`haproxy to see ${get.server} DOWN`, async () => (await serverStates(fleet.statsPort))[get.server] !== 'UP', 5000);
        const resumed = await rawStream(fleet.url, 'GET', { 'mcp-session-id': sid, 'mcp-protocol-version': V25, 'last-event-id': all[1].id });
        const end = Date.now() + scaled(3000);
        while (resumed.events.length < 4 && Date.now() < end) await sleep(50);
        resumed.close();
        const want = all.slice(2).map((e) => e.id);
        const got = resumed.events.map((e) => e.id);
        assert(JSON.stringify(got) === JSON.stringify(want),
               `resumed on ${resumed.server} after ${get.server} was killed: replayed ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      });
      await fleet.stop();
    }
  }

  // -- 1 through a gateway: the fleet fronts a 2026-07-28 service, whose
  // own requestState travels inside the fleet's sealed state.
  {
    let fleet = null;
    await check('[gateway] a fleet in front of a stateless service starts behind haproxy', async () => {
      const downPort = await startBulwark(['--fixtures', '--address', '127.0.0.1', '--port', '0'], 'downstream');
      fleet = await startFleet('gateway', { sessions: { stateKeyFile: keyFile }, mcpServers: { down: { url: `http://127.0.0.1:${downPort}/mcp` } } });
    });
    if (fleet) {
      await check('[gateway] a service\'s multi-round input, relayed by the fleet, continues on any instance', async () => {
        const tools = await modern(fleet.url, 'tools/list', {});
        const tool = 'down__test_input_required_result_multi_round';
        assert((tools.json?.result?.tools ?? []).some((t) => t.name === tool), `the service's tool is listed: ${tools.text.slice(0, 300)}`);
        await multiRound(fleet, tool);
      });
      await fleet.stop();
    }
  }

  // -- 4: a rolling restart under load.
  {
    let fleet = null;
    const execLog = (i) => join(run.dir, `executions-${i + 1}.log`);
    await check('[roll] a fleet with shutdown.readyGraceMs 1500, drainSeconds 5 and execution logs starts behind haproxy', async () => {
      fleet = await startFleet('roll', { sessions: { stateKeyFile: keyFile }, shutdown: { drainSeconds: 5, readyGraceMs: 1500 } },
                               { extra: () => ['--fault-tools'], env: (i) => ({ BULWARK_EXECUTION_LOG: execLog(i) }) });
    });
    if (!fleet) {
      await check('rolling restart under 8 clients', async () => {
        throw new Error('not run: its fleet did not start (above)');
      });
    } else {
      await check('rolling restart under 8 clients: 0 failed, every key executed exactly once', async () => {
        const calls = [];
        let stop = false;
        let rolling = false;
        const record = (client, key, r, t0) => {
          const ok = r.status === 200 && r.json?.result?.structuredContent?.key === key;
          calls.push({ client, key, ok, ms: Date.now() - t0, during: rolling,
                       why: ok ? null : `HTTP ${r.status} on ${r.server}: ${r.text.slice(0, 200)}` });
        };
        const attempt = async (client, key, fn) => {
          const t0 = Date.now();
          try {
            record(client, key, await fn(), t0);
          } catch (e) {
            calls.push({ client, key, ok: false, ms: Date.now() - t0, during: rolling, why: String(e.message ?? e) });
          }
        };
        const modernClient = async (c) => {
          for (let n = 0; !stop && n < 5000; n++) {
            const key = `m${c}-${n}`;
            await attempt(c, key, () => modern(fleet.url, 'tools/call', { name: 'fault_count', arguments: { key } }));
          }
        };
        const sessionClient = async (c) => {
          const sid = await openSession(fleet.lbPort, {});
          for (let n = 0; !stop && n < 5000; n++) {
            const key = `s${c}-${n}`;
            await attempt(c, key, () => inSession(fleet.url, sid, 'tools/call', { name: 'fault_count', arguments: { key } }));
          }
        };
        const clients = [0, 1, 2, 3].map(modernClient).concat([4, 5, 6, 7].map(sessionClient));
        const rollLog = [];
        try {
          await sleep(1000);
          rolling = true;
          for (let i = 0; i < 3; i++) {
            const label = fleet.labels[i];
            const child = run.started[label];
            const t0 = Date.now();
            const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
            process.kill(child.pid, 'SIGTERM');
            const bound = scaled(15_000);
            const e = await Promise.race([exited, sleep(bound).then(() => null)]);
            assert(e, `${label} did not exit within ${bound} ms of SIGTERM`);
            assert(e.code === 0, `${label} exited with ${e.code} (signal ${e.signal})`);
            delete run.started[label];
            const down = Date.now() - t0;
            await fleet.start(i);
            await until(`haproxy to see b${i + 1} UP again`, async () => (await serverStates(fleet.statsPort))[`b${i + 1}`] === 'UP', 10_000);
            rollLog.push(`b${i + 1}: exited ${down} ms after SIGTERM, UP again after ${Date.now() - t0} ms`);
          }
          rolling = false;
          await sleep(1000);
        } finally {
          stop = true;
          rolling = false;
          await Promise.all(clients);
        }
        const during = calls.filter((c) => c.during).map((c) => c.ms).sort((a, b) => a - b);
        const p99 = during.length ? during[Math.min(during.length - 1, Math.floor(during.length * 0.99))] : NaN;
        const failed = calls.filter((c) => !c.ok);
        const counts = new Map();
        for (let i = 0; i < 3; i++) {
          const text = existsSync(execLog(i)) ? readFileSync(execLog(i), 'utf8') : '';
          for (const line of text.split('\n').filter(Boolean)) {
            const k = JSON.parse(line).key;
            counts.set(k, (counts.get(k) ?? 0) + 1);
          }
        }
        const twice = [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k}x${n}`);
        const lost = calls.filter((c) => c.ok && !counts.has(c.key)).map((c) => c.key);
        console.log(`  ${rollLog.join('; ')}`);
        console.log(`  ${calls.length} calls (${during.length} during the roll), ${failed.length} failed, ` +
                    `${twice.length} executed twice, ${lost.length} answered but not executed; p99 during the roll ${p99} ms`);
        assert(calls.length >= 100, `only ${calls.length} calls`);
        assert(failed.length === 0, `${failed.length} failed, e.g. ${JSON.stringify(failed.slice(0, 3))}`);
        assert(twice.length === 0, `executed more than once: ${twice.slice(0, 10)}`);
        assert(lost.length === 0, `answered but in no execution log: ${lost.slice(0, 10)}`);
        const unanswered = [...counts.keys()].filter((k) => !calls.some((c) => c.key === k && c.ok));
        assert(unanswered.length === 0, `executed but not answered as success: ${unanswered.slice(0, 10)}`);
      });
      await fleet.stop();
    }
  }
});
