#!/usr/bin/env node
// Chaos test: clients keep calling while every kind of actor is killed over
// and over, and the downstream process too; then the books are checked.
//
//   node tests/e2e/chaos.mjs --bulwark build/bulwark [--clients 8] [--seconds 10]
//
// A front `bulwark` (admin token, generous restart intensity) serves its own
// tools and a gateway service "fx": a stdio `bulwark --fixtures --fault-tools`
// that appends every execution of `fault_count` to an execution log. CLIENTS
// clients (half 2025-era sessions, half 2026-07-28 stateless) call in a loop,
// in turn: a built-in tool (`echo`), a cached tool (`test_simple_text`) and
// a non-idempotent gateway call (`fault_count` with a key of its own).
// Meanwhile `bulwark-chaos --cycle` kills actors kind by kind, and the test
// kills the downstream child every few seconds.
//
// Checks: every request got a result or a typed JSON-RPC error before its
// deadline (no client-side timeout, no transport failure); every successful
// `fault_count` ran exactly once downstream and none ran twice, and a failed
// one whose error says it never reached the service did not run; every kind
// was killed at least twice and restarts stayed within the intensity (no
// escalation); after the kills stop, every actor is back and calls succeed
// within one second; the front's RSS stays within a margin. The figures are
// printed at the end. Every process is killed by pid.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';

import { adminRequest, assert, harness, scaled, sleep, until } from './harness.mjs';

const argv = process.argv.slice(2);
const option = (name, fallback) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback);
const CLIENTS = option('--clients', 8);
const SECONDS = option('--seconds', 10);
const DEADLINE_MS = scaled(8000); // a client gives up on a request after this
// Allowed growth of the front's RSS; the sanitizer build adds what ASan's
// quarantine of freed memory may take (BULWARK_TEST_RSS_SLACK_MB).
const RSS_MARGIN_MB = 16 + (Number(process.env.BULWARK_TEST_RSS_SLACK_MB) || 0);
const EXPECTED_KINDS = ['session', 'session-supervisor', 'supervisor', 'limiter', 'queue', 'alerts', 'cache',
  'connector', 'breaker', 'health'];

const run = harness({ scratch: 'bulwark-chaos-', watchdogMs: 60_000 + SECONDS * 1000 * 3 });
const { bulwark, dir, check, startBulwark } = run;
const token = 'chaos-admin-token';
const execLog = join(dir, 'executions.jsonl');
let port;

const admin = (method, path, body) => adminRequest(port, token, method, path, body);

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) / 1024;
}

/// The JSON-RPC message in a response body (plain JSON or the last SSE data line).
function message(contentType, text) {
  if ((contentType ?? '').startsWith('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
    return data.length ? JSON.parse(data[data.length - 1]) : null;
  }
  return text ? JSON.parse(text) : null;
}

/// One POST; classifies what came back: ok, tool_error, error (typed, with
/// its code), timeout or failure (anything else: a transport error, a body
/// that is not a JSON-RPC answer).
async function post(headers, body) {
  const started = Date.now();
  try {
    const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(DEADLINE_MS),
    });
    const text = await res.text();
    const ms = Date.now() - started;
    let msg;
    try {
      msg = message(res.headers.get('content-type'), text);
    } catch {
      return { outcome: 'failure', ms, why: `HTTP ${res.status}, not JSON: ${text.slice(0, 200)}` };
    }
    if (msg?.error && Number.isInteger(msg.error.code) && typeof msg.error.message === 'string')
      return { outcome: 'error', code: msg.error.code, ms, status: res.status, msg, session: res.headers.get('mcp-session-id') };
    if (msg?.result)
      return { outcome: msg.result.isError ? 'tool_error' : 'ok', ms, msg, session: res.headers.get('mcp-session-id') };
    return { outcome: 'failure', ms, why: `HTTP ${res.status}: ${text.slice(0, 200)}` };
  } catch (e) {
    const ms = Date.now() - started;
    return { outcome: e.name === 'TimeoutError' ? 'timeout' : 'failure', ms, why: String(e) };
  }
}

const modernMeta = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
};

/// A client of either era; `call` returns the classified outcome.
function client(index) {
  const modern = index % 2 === 1;
  let sid = null;
  let id = 0;
  const open = async () => {
    const r = await post({}, { jsonrpc: '2.0', id: ++id, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: `chaos-${index}`, version: '1' } } });
    if (r.outcome !== 'ok') return r;
    sid = r.session;
    await post({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
      { jsonrpc: '2.0', method: 'notifications/initialized' });
    return r;
  };
  return {
    modern,
    async call(name, args) {
      const body = { jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name, arguments: args } };
      if (modern) {
        body.params._meta = modernMeta;
        return post({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name }, body);
      }
      if (!sid) {
        const o = await open();
        if (o.outcome !== 'ok') return { ...o, during: 'initialize' };
      }
      const r = await post({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body);
      // A session that crashed too often is gone (404, typed): start another.
      if (r.outcome === 'error' && r.status === 404) sid = null;
      return r;
    },
  };
}

await run.main(async () => {
  const cfgPath = join(dir, 'front.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0 },
    mcpServers: {
      fx: { command: bulwark, args: ['--stdio', '--no-http', '--fixtures', '--fault-tools', '--no-builtin-tools'],
            env: { BULWARK_EXECUTION_LOG: execLog } },
    },
    services: {
      fx: {
        timeoutMs: 3000,
        retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 200, jitter: 0.2 },
        breaker: { consecutiveFailures: 5, openMs: 300, halfOpenProbes: 1, successesToClose: 1 },
        cache: { ttlMs: 60000, maxStaleMs: 600000, tools: ['test_simple_text'], scope: 'public' },
        fallback: 'stale',
      },
    },
    gateway: { prefix: 'never', childMaxRestarts: 1000, childRestartWindowSeconds: 10 },
    admin: { tokenSha256: createHash('sha256').update(token).digest('hex') },
    // Generous: the kills are deliberate, and escalation has its own tests.
    supervision: { maxRestarts: 400, windowSeconds: 10, backoffInitialMs: 5, backoffMaxMs: 100 },
    health: { intervalMs: 200 },
  }));
  port = await startBulwark(['--config', cfgPath], 'front');
  // Every downstream process the front starts, in order, from its log as it
  // is written (the harness keeps only the last lines, and the chaos's
  // error lines push a start out of them within a second).
  const servicePids = [];
  let pending = '';
  run.started.front.stderr.on('data', (chunk) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop();
    for (const line of lines) {
      if (!line.includes('"msg":"service started"')) continue;
      try {
        servicePids.push(JSON.parse(line).pid);
      } catch {
        // not JSON
      }
    }
  });
  const front = run.started.front.pid;
  await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200, 20_000);

  // -- warm up under full load (allocator caches, pools), then the baseline RSS ----------
  const records = [];
  const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
  let seq = 0;
  const op = async (c, i, phase) => {
    const kind = i % 3;
    const key = `k${++seq}`;
    const started = Date.now();
    const r = kind === 0 ? await c.call('echo', { text: key })
      : kind === 1 ? await c.call('test_simple_text', {})
        : await c.call('fault_count', { key });
    records.push({ phase, tool: ['echo', 'test_simple_text', 'fault_count'][kind], key, started, ...r });
    return r;
  };
  // Scaled: under ASan the warm-up also fills the quarantine of freed memory
  // (BULWARK_TEST_RSS_SLACK_MB), so the baseline below is taken with it full.
  const warmEnd = Date.now() + scaled(2000);
  await Promise.all(clients.map(async (c, n) => {
    for (let i = n; Date.now() < warmEnd; ++i) await op(c, i, 'warmup');
  }));
  const warm = records.filter((r) => r.outcome !== 'ok');
  assert(warm.length === 0, `warm-up calls all succeed: ${JSON.stringify(warm.slice(0, 3))}`);
  const rssBefore = rssMb(front);

  // -- chaos: actor kills, downstream kills, clients calling ----------------------------
  const chaosBin = join(dirname(bulwark), 'bulwark-chaos');
  const chaos = await new Promise((resolveRun, reject) => {
    const child = spawn(chaosBin, ['--url', `http://127.0.0.1:${port}`, '--rate', '8', '--duration', String(SECONDS),
      '--cycle', '--seed', '11'], { env: { ...process.env, BULWARK_ADMIN_TOKEN: token } });
    run.pids.push(child.pid);
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.on('error', reject);
    const stop = Date.now() + SECONDS * 1000;
    let downstreamKills = 0;
    const childPids = new Set();
    // The downstream dies every 2.5 s, until 3 s before the end.
    const killer = (async () => {
      while (Date.now() < stop - 3000) {
        await sleep(2500);
        const pid = servicePids.at(-1);
        if (!pid || childPids.has(pid)) continue;
        childPids.add(pid);
        run.pids.push(pid);
        try {
          process.kill(pid, 'SIGKILL');
          downstreamKills++;
        } catch {
          // already gone
        }
      }
    })();
    const calling = Promise.all(clients.map(async (c, n) => {
      for (let i = n; Date.now() < stop; ++i) await op(c, i, 'chaos');
    }));
    child.on('exit', async (code) => {
      await Promise.all([killer, calling]);
      resolveRun({ code, text, downstreamKills, ended: Date.now() });
    });
  });

  // -- recovery: every actor back and calls succeeding ------------------------------------------
  const recoveryStart = Date.now();
  let recoveredMs = null;
  let lastTree = null;
  const probe = client(1);
  for (let round = 0; round < 200 && Date.now() - recoveryStart < scaled(10_000); ++round) {
    lastTree = (await admin('GET', 'actors')).body;
    const allUp = lastTree.actors.every((a) => a.state === 'running');
    if (allUp) {
      const rs = [await probe.call('echo', { text: 'after' }), await probe.call('test_simple_text', {}),
        await probe.call('fault_count', { key: `after-${round}` })];
      if (rs.every((r) => r.outcome === 'ok')) {
        recoveredMs = Date.now() - recoveryStart;
        break;
      }
    }
    await sleep(20);
  }
  await sleep(300);
  const rssAfter = rssMb(front);

  // -- the books -----------------------------------------------------------------------------------
  const executions = new Map();
  if (existsSync(execLog))
    for (const line of readFileSync(execLog, 'utf8').split('\n').filter(Boolean)) {
      const { key } = JSON.parse(line);
      executions.set(key, (executions.get(key) ?? 0) + 1);
    }
  const during = records.filter((r) => r.phase === 'chaos');
  const byOutcome = {};
  const byCode = {};
  for (const r of during) {
    byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
    if (r.outcome === 'error') byCode[r.code] = (byCode[r.code] ?? 0) + 1;
  }
  const kinds = Object.fromEntries((chaos.text.match(/^by kind:(.*)$/m)?.[1] ?? '').trim().split(/\s+/)
    .filter(Boolean).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
  const kills = Number(chaos.text.match(/summary: kills=(\d+)/)?.[1] ?? 0);
  const counted = records.filter((r) => r.tool === 'fault_count');
  const okCalls = counted.filter((r) => r.outcome === 'ok');
  const maybe = counted.filter((r) => r.outcome !== 'ok' && executions.get(r.key) === 1);
  // What failed gateway calls said about having reached the service.
  const reached = (r) => r.msg?.error?.data?.reachedService;
  const saidNotReached = counted.filter((r) => r.outcome === 'error' && reached(r) === false);
  const saidReached = counted.filter((r) => r.outcome === 'error' && reached(r) === true);

  console.log('--- chaos figures ---');
  console.log(`clients=${CLIENTS} seconds=${SECONDS} requests=${during.length} (${(during.length / SECONDS).toFixed(0)}/s)`);
  console.log(`outcomes: ${JSON.stringify(byOutcome)}`);
  console.log(`errors by code: ${JSON.stringify(byCode)}`);
  console.log(`slowest answer: ${Math.max(...during.map((r) => r.ms))} ms (deadline ${DEADLINE_MS} ms)`);
  console.log(`actor kills=${kills} by kind ${JSON.stringify(kinds)}; downstream kills=${chaos.downstreamKills}`);
  console.log(`restarts=${lastTree.restarts} escalations=${lastTree.escalations}`);
  console.log(`fault_count: ${okCalls.length} succeeded, ${counted.length - okCalls.length} failed `
    + `(${maybe.length} of those ran downstream before the failure); executions logged=${[...executions.values()].reduce((a, b) => a + b, 0)}`);
  console.log(`failed gateway calls: ${saidNotReached.length} said "not reached", ${saidReached.length} said "reached" `
    + `(${saidReached.filter((r) => executions.get(r.key) === 1).length} of those ran), `
    + `${counted.length - okCalls.length - saidNotReached.length - saidReached.length} said neither (cut off in the session)`);
  console.log(`recovery: ${recoveredMs === null ? `not within ${scaled(10)} s` : `${recoveredMs} ms`}`);
  console.log(`RSS: ${rssBefore.toFixed(1)} MB before, ${rssAfter.toFixed(1)} MB after (margin ${RSS_MARGIN_MB} MB)`);
  console.log('---------------------');

  await check('the chaos ran: every kind of actor killed at least twice, and the downstream too', async () => {
    assert(chaos.code === 0, `bulwark-chaos exit status ${chaos.code}:\n${chaos.text.slice(-2000)}`);
    for (const k of EXPECTED_KINDS)
      assert((kinds[k] ?? 0) >= 2, `${k} killed ${kinds[k] ?? 0} times: ${JSON.stringify(kinds)}`);
    assert(chaos.downstreamKills >= 2, `downstream killed ${chaos.downstreamKills} times`);
    assert(during.length >= CLIENTS * SECONDS, `enough traffic: ${during.length} requests`);
  });

  await check('no silent drop: every request got a result or a typed error before its deadline', async () => {
    const bad = records.filter((r) => r.outcome === 'timeout' || r.outcome === 'failure');
    assert(bad.length === 0, `${bad.length} without a typed answer, e.g. ${JSON.stringify(bad.slice(0, 3))}`);
    const late = records.filter((r) => r.ms >= DEADLINE_MS);
    assert(late.length === 0, `${late.length} answered after the deadline`);
    const untyped = records.filter((r) => r.outcome === 'error' && !(r.code <= -32000 && r.code >= -32768));
    assert(untyped.length === 0, `error codes outside JSON-RPC's range: ${JSON.stringify(untyped.slice(0, 3))}`);
  });

  await check('no lost acknowledgement, no duplicate: each successful call ran exactly once', async () => {
    const wrong = okCalls.filter((r) => executions.get(r.key) !== 1
      || r.msg.result.structuredContent?.key !== r.key);
    assert(wrong.length === 0, `${wrong.length} successes not executed exactly once: `
      + JSON.stringify(wrong.slice(0, 3).map((r) => [r.key, executions.get(r.key)])));
    const twice = [...executions].filter(([, n]) => n > 1);
    assert(twice.length === 0, `executed more than once: ${JSON.stringify(twice.slice(0, 5))}`);
    assert(okCalls.length > 0, 'some gateway calls succeeded during the chaos');
    // A failure that says the call never reached the service is true.
    const ran = saidNotReached.filter((r) => executions.has(r.key));
    assert(ran.length === 0, `${ran.length} calls said "not reached" but ran: ${JSON.stringify(ran.slice(0, 3).map((r) => r.msg.error))}`);
  });

  await check(`bounded restarts and recovery: every actor back and calls working within ${scaled(1000)} ms`, async () => {
    assert(lastTree.escalations === 0, `no supervisor exceeded its intensity: ${lastTree.escalations}`);
    assert(lastTree.restarts >= kills, `a restart per kill: ${lastTree.restarts} restarts, ${kills} kills`);
    const down = lastTree.actors.filter((a) => a.state !== 'running');
    assert(down.length === 0, `all running: ${JSON.stringify(down)}`);
    for (const k of EXPECTED_KINDS)
      assert(lastTree.actors.some((a) => a.kind === k), `a ${k} in the tree`);
    assert(recoveredMs !== null && recoveredMs <= scaled(1000), `recovered in ${recoveredMs} ms`);
  });

  await check('bounded memory: RSS after the run within the margin of before', async () => {
    assert(rssAfter <= rssBefore + RSS_MARGIN_MB, `${rssBefore.toFixed(1)} MB -> ${rssAfter.toFixed(1)} MB`);
  });
});
