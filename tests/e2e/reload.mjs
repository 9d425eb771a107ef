#!/usr/bin/env node
// End-to-end test of live reconfiguration: a gateway in front of three
// Streamable HTTP MCP services run by this script, reloaded 20 times while
// eight clients (four 2025-era sessions, four 2026-07-28 callers) call two
// of the services without pause.
//
//   node tests/e2e/reload.mjs --bulwark build/bulwark
//
// Checks: every call to the two steady services succeeds across the
// reloads (sessions and their GET stream stay; the stream hears
// tools/list_changed, and so does a 2026-07-28 subscriptions/listen
// stream); the reloads alternate between SIGHUP and the admin API and
// between adding the third service with a policy that hides one tool and
// removing it again, and tools/list matches each generation; an invalid
// file in the middle changes nothing; a call in flight to the removed
// service finishes within the drain time; a call to it afterwards gets a
// typed error; a change that needs a restart changes nothing (422 with the key paths, the same
// generation and tools); `--check-config` exits 0 or 2 naming the key;
// the effective configuration hides secrets; reloads are counted in
// /metrics and written to the audit log. Every process is killed by pid.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  adminRequest, assert, callTool, harness, modernRequest, openSession, readEvents, request, scaled, sessionCall, sleep,
} from './harness.mjs';

const run = harness({ scratch: 'bulwark-reload-', watchdogMs: 150_000, onFinish: () => services.close() });
const { check } = run;

const token = 'reload-admin-token';
const secret = 'Bearer downstream-s3cret';

// -- the services: /alpha, /beta and /gamma on one HTTP server ----------------------

const toolsOf = {
  alpha: ['alpha_ping', 'alpha_hidden'],
  beta: ['beta_ping'],
  gamma: ['gamma_ping', 'gamma_slow'],
};
/// Service -> tools/call requests that reached it.
const reached = { alpha: 0, beta: 0, gamma: 0 };
/// Called when gamma_slow reaches the service.
let slowArrived = () => {};

const services = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const name = req.url.slice(1);
    if (req.method !== 'POST' || !toolsOf[name]) return res.writeHead(405, { allow: 'POST' }).end();
    const msg = JSON.parse(Buffer.concat(chunks).toString());
    if (msg.id === undefined) return res.writeHead(202).end();
    const answer = (result) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    };
    switch (msg.method) {
      case 'initialize':
        return answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name, version: '1' } });
      case 'tools/list':
        return answer({ tools: toolsOf[name].map((t) => ({ name: t, inputSchema: { type: 'object' } })) });
      case 'tools/call': {
        reached[name]++;
        const text = `${msg.params.name} answered`;
        if (msg.params.name === 'gamma_slow') {
          slowArrived();
          return setTimeout(() => answer({ content: [{ type: 'text', text }] }), 600);
        }
        return answer({ content: [{ type: 'text', text }] });
      }
      default:
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'method not found' } }));
    }
  });
});

// -- configurations --------------------------------------------------------------------

let cfgPath;
let auditPath;

/// A generation's configuration: with the third service and a policy that
/// denies alpha_hidden, or without both.
function configuration(withGamma, extra = {}) {
  const url = (name) => `http://127.0.0.1:${services.address().port}/${name}`;
  const servers = { alpha: { url: url('alpha'), headers: { Authorization: secret } }, beta: { url: url('beta') } };
  if (withGamma) servers.gamma = { url: url('gamma') };
  const settings = (name) => ({ protocol: '2025-11-25', timeoutMs: scaled(5000), breaker: { consecutiveFailures: 1000 } });
  const cfg = {
    http: { port: 0, address: '127.0.0.1' },
    admin: { tokenSha256: createHash('sha256').update(token).digest('hex') },
    audit: { file: auditPath },
    shutdown: { drainSeconds: 5 },
    mcpServers: servers,
    services: Object.fromEntries(Object.keys(servers).map((n) => [n, settings(n)])),
    gateway: { prefix: 'never', policy: withGamma ? { deny: ['alpha:alpha_hidden'] } : {} },
    ...extra,
  };
  return cfg;
}

const write = (cfg) => writeFileSync(cfgPath, typeof cfg === 'string' ? cfg : JSON.stringify(cfg, null, 2));

/// The tool names a generation lists (no built-in tools run here).
function expectedTools(withGamma) {
  const names = ['alpha_ping', 'beta_ping', 'queue_status'];
  if (withGamma) names.push('gamma_ping', 'gamma_slow');
  else names.push('alpha_hidden');
  return names.sort();
}

async function listedTools(port) {
  const r = await modernRequest(port, 'tools/list', {});
  assert(r.status === 200 && r.json?.result?.tools, `tools/list: ${r.status} ${r.text}`);
  return r.json.result.tools.map((t) => t.name).sort();
}

// -- the server's log, read as it comes -------------------------------------------------

/// Resolves with the first log record after this call that `match`es.
let waiters = [];
function nextLog(what, match, ms = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no log line: ${what} within ${scaled(ms)} ms`)), scaled(ms));
    waiters.push({ match, resolve: (rec) => { clearTimeout(timer); resolve(rec); } });
  });
}

function followLog(child) {
  createInterface({ input: child.stderr }).on('line', (line) => {
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      return;
    }
    waiters = waiters.filter((w) => {
      if (!w.match(rec)) return true;
      w.resolve(rec);
      return false;
    });
  });
}

// -- steady clients ---------------------------------------------------------------------

const steady = { calls: 0, failures: [], stop: false };

async function statelessClient(port, k) {
  while (!steady.stop) {
    const tool = k % 2 ? 'alpha_ping' : 'beta_ping';
    k++;
    try {
      const r = await callTool(port, tool);
      if (r?.result?.content?.[0]?.text !== `${tool} answered`) steady.failures.push(`2026 ${tool}: ${JSON.stringify(r)}`);
    } catch (e) {
      steady.failures.push(`2026 ${tool}: ${e}`);
    }
    steady.calls++;
  }
}

async function sessionClient(port, sid, k) {
  while (!steady.stop) {
    const tool = k % 2 ? 'alpha_ping' : 'beta_ping';
    k++;
    try {
      const r = await sessionCall(port, {}, sid, tool);
      if (r.status !== 200 || r.json?.result?.content?.[0]?.text !== `${tool} answered`)
        steady.failures.push(`2025 ${tool}: ${r.status} ${r.text}`);
    } catch (e) {
      steady.failures.push(`2025 ${tool}: ${e}`);
    }
    steady.calls++;
  }
}

// -- the run ----------------------------------------------------------------------------

await run.main(async () => {
  await new Promise((r) => services.listen(0, '127.0.0.1', r));
  cfgPath = join(run.dir, 'gateway.json');
  auditPath = join(run.dir, 'audit.log');
  write(configuration(false));
  const portP = run.startBulwark(['--config', cfgPath, '--no-builtin-tools'], 'gateway');
  const child = run.started.gateway;
  followLog(child);
  const port = await portP;
  const admin = (method, path, body) => adminRequest(port, token, method, path, body);

  // Both services listed (start-up waits for them).
  assert(JSON.stringify(await listedTools(port)) === JSON.stringify(expectedTools(false)),
         `tools at start: ${await listedTools(port)}`);

  const sids = [];
  for (let i = 0; i < 4; i++) sids.push(await openSession(port, {}));
  // One session's GET stream hears the list changes and stays open.
  const stream = new AbortController();
  const heard = [];
  const get = await fetch(`http://127.0.0.1:${port}/mcp`, {
    headers: { accept: 'text/event-stream', 'mcp-session-id': sids[0], 'mcp-protocol-version': '2025-11-25' },
    signal: stream.signal,
  });
  assert(get.status === 200, `GET stream: ${get.status}`);
  readEvents(get, (m) => heard.push(m.method));

  // A 2026-07-28 caller's subscriptions/listen stream hears them too.
  const listenCtl = new AbortController();
  const listenHeard = [];
  const listenRes = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST',
    signal: listenCtl.signal,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
               'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9001, method: 'subscriptions/listen', params: {
      _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
      notifications: { toolsListChanged: true } } }),
  });
  assert(listenRes.status === 200, `subscriptions/listen: ${listenRes.status}`);
  readEvents(listenRes, (m) => listenHeard.push(m.method));

  const clients = [];
  for (let i = 0; i < 4; i++) clients.push(statelessClient(port, i), sessionClient(port, sids[i], i));

  let generation = 1;
  let slowCall = null;
  let lastRemoval = null;
  await check('20 reloads (SIGHUP and the admin API, a service added and removed, a policy changed, an invalid file in the middle) each list their generation\'s tools', async () => {
    for (let i = 1; i <= 20; i++) {
      const withGamma = i % 2 === 1;
      if (i === 11) {
        // An invalid file in the middle, while the clients call: nothing
        // changes, and the error names the key.
        const before = await listedTools(port);
        const bad = configuration(withGamma);
        bad.services.alpha.timeoutMs = 'fast';
        write(bad);
        const r = await admin('POST', 'config/reload', {});
        assert(r.status === 422 && r.body.outcome === 'refused', `refused: ${r.status} ${JSON.stringify(r.body)}`);
        assert(r.body.errors?.[0]?.path === '$.services.alpha.timeoutMs', `names the key: ${JSON.stringify(r.body.errors)}`);
        assert(r.body.generation === generation, `generation stays ${generation}: ${r.body.generation}`);
        assert(JSON.stringify(await listedTools(port)) === JSON.stringify(before), 'tools unchanged');
        const refusedLog = nextLog('SIGHUP refusal logged', (x) => x.msg === 'configuration reload refused; nothing changed');
        process.kill(child.pid, 'SIGHUP');
        const rec = await refusedLog;
        assert(rec.errors?.[0]?.path === '$.services.alpha.timeoutMs', `the log names the key: ${JSON.stringify(rec)}`);
        assert(JSON.stringify(await listedTools(port)) === JSON.stringify(before), 'tools unchanged after SIGHUP');
      }
      write(configuration(withGamma));
      // An added service lists its tools after its connector started.
      const listed = withGamma
        ? nextLog('gamma listed its tools', (r) => r.msg === 'service listed' && r.service === 'gamma' && r.method === 'tools/list')
        : null;
      if (i % 4 === 0) {
        // Removing gamma while its slow tool runs: the call finishes.
        const arrived = new Promise((r) => (slowArrived = r));
        slowCall = callTool(port, 'gamma_slow');
        await arrived;
      }
      if (i % 2 === 0) {
        const applied = nextLog(`reload ${i} applied`, (r) => r.msg === 'configuration reloaded');
        process.kill(child.pid, 'SIGHUP');
        const rec = await applied;
        assert(rec.generation === generation + 1, `SIGHUP reload ${i}: generation ${rec.generation}, wanted ${generation + 1}`);
        assert(rec.changed.includes('$.mcpServers.gamma') && rec.changed.includes('$.gateway.policy.deny'),
               `reload ${i} names the changed keys: ${JSON.stringify(rec.changed)}`);
      } else {
        const r = await admin('POST', 'config/reload', {});
        assert(r.status === 200 && r.body.outcome === 'applied', `admin reload ${i}: ${r.status} ${JSON.stringify(r.body)}`);
        assert(r.body.generation === generation + 1, `admin reload ${i}: generation ${r.body.generation}`);
      }
      generation++;
      if (listed) await listed;
      const tools = await listedTools(port);
      assert(JSON.stringify(tools) === JSON.stringify(expectedTools(withGamma)),
             `generation ${generation}: tools ${tools}, wanted ${expectedTools(withGamma)}`);
      if (!withGamma) lastRemoval = generation;
      if (slowCall && !withGamma) {
        const r = await slowCall;
        assert(r?.result?.content?.[0]?.text === 'gamma_slow answered',
               `a call in flight to a removed service finishes: ${JSON.stringify(r)}`);
        slowCall = null;
      }
      await sleep(scaled(100));
    }
  });

  await check('a call to a removed service gets a typed error', async () => {
    assert(lastRemoval === generation, 'the last reload removed gamma');
    const r = await callTool(port, 'gamma_ping');
    assert(r?.error && Number.isInteger(r.error.code) && /gamma_ping/.test(r.error.message),
           `typed error naming the tool: ${JSON.stringify(r)}`);
  });

  await check('a change that needs a restart is refused whole, naming the key', async () => {
    const next = configuration(true);
    next.http.port = 1;
    write(next);
    const r = await admin('POST', 'config/reload', {});
    assert(r.status === 422 && r.body.restartRequired?.includes('$.http.port'), `names http.port: ${JSON.stringify(r.body)}`);
    assert(r.body.generation === generation, 'generation unchanged');
    assert(!(await listedTools(port)).includes('gamma_ping'), 'the service in the same file was not added');
  });

  await check('an unchanged file is answered "unchanged" and keeps the generation', async () => {
    write(configuration(false));
    const r = await admin('POST', 'config/reload', {});
    assert(r.status === 200 && r.body.outcome === 'unchanged' && r.body.generation === generation, JSON.stringify(r.body));
  });

  steady.stop = true;
  await Promise.all(clients);

  await check('every steady call of the eight clients succeeded across the reloads', async () => {
    assert(steady.failures.length === 0, `${steady.failures.length} of ${steady.calls} failed: ${steady.failures.slice(0, 5).join(' | ')}`);
    assert(steady.calls >= 200, `the clients kept calling: ${steady.calls} calls`);
    for (const sid of sids) {
      const r = await sessionCall(port, {}, sid, 'beta_ping');
      assert(r.status === 200, `session ${sid} lives: ${r.status}`);
    }
  });

  await check('the session\'s GET stream and a subscriptions/listen stream stayed open and heard tools/list_changed', async () => {
    const n = heard.filter((m) => m === 'notifications/tools/list_changed').length;
    assert(n >= 20, `list_changed heard ${n} times on the GET stream`);
    const l = listenHeard.filter((m) => m === 'notifications/tools/list_changed').length;
    assert(l >= 20, `list_changed heard ${l} times on the listen stream`);
    assert(!stream.signal.aborted && !listenCtl.signal.aborted, 'streams open');
    stream.abort();
    listenCtl.abort();
  });

  await check('the effective configuration shows its generation and hides secrets', async () => {
    const r = await admin('GET', 'config');
    assert(r.status === 200 && r.body.generation === generation, `generation: ${JSON.stringify(r.body?.generation)}`);
    assert(r.body.config.mcpServers.alpha.headers.Authorization === '[redacted]', 'header redacted');
    assert(!JSON.stringify(r.body).includes('s3cret'), 'no secret anywhere');
    assert(r.body.source === cfgPath, `source: ${r.body.source}`);
  });

  await check('reloads are counted in /metrics and written to the audit log', async () => {
    const m = await request(port, 'GET', { path: '/metrics' });
    const count = (outcome) => Number(m.text.match(new RegExp(`bulwark_config_reloads_total\\{outcome="${outcome}"\\} (\\d+)`))?.[1]);
    assert(count('applied') === 20, `applied: ${count('applied')}`);
    assert(count('refused') === 3, `refused: ${count('refused')}`);
    assert(count('unchanged') === 1, `unchanged: ${count('unchanged')}`);
    assert(new RegExp(`bulwark_config_generation ${generation}\\b`).test(m.text), 'generation gauge');
    const entries = readFileSync(auditPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
      .filter((e) => e.event === 'config.reload');
    assert(entries.length === 24, `24 reload entries, got ${entries.length}`);
    const bySignal = entries.filter((e) => e.who?.identity === 'signal:SIGHUP').length;
    assert(bySignal === 11, `11 by SIGHUP, got ${bySignal}`);
  });

  await check('--check-config exits 0 for a valid file and 2 naming the key for an invalid one', async () => {
    write(configuration(true));
    const ok = spawnSync(run.bulwark, ['--check-config', cfgPath], { encoding: 'utf8' });
    assert(ok.status === 0, `valid: ${ok.status} ${ok.stderr}`);
    const bad = configuration(true);
    bad.gateway.prefix = 'sometimes';
    write(bad);
    const no = spawnSync(run.bulwark, ['--check-config', cfgPath], { encoding: 'utf8' });
    assert(no.status === 2 && no.stderr.includes('$.gateway.prefix'), `invalid: ${no.status} ${no.stderr}`);
  });
});
