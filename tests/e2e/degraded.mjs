#!/usr/bin/env node
// End-to-end test of admission control and degraded mode: a front `bulwark`
// whose only service ("web") is a `bulwark --fixtures --fault-tools` over
// Streamable HTTP, a webhook receiver run by this test, and plain 2026-07-28
// requests.
//
//   node tests/e2e/degraded.mjs --bulwark build/bulwark
//
// Steps: a per-key rate limit refuses with RATE_LIMITED and names the limit;
// a cacheable call is cached; the downstream is killed; the breaker opens;
// degraded mode switches on; the cached call is answered stale and marked;
// an alert reaches the webhook; the downstream comes back on its port; the
// breaker closes; degraded mode switches off. Forced on through the admin
// API, degraded mode sheds LOW calls and halves the rate budgets, and
// leaving it undoes both; `rateLimits.maxTrackedCallers` bounds the callers
// the limiter keeps. `/health`, `/ready` and
// `/metrics` are read at each step, and `/metrics` is parsed line by line as
// Prometheus text. Every process is killed by pid.

import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { adminRequest, assert, callTool as call, harness, scaled, sleep, until } from './harness.mjs';

const args = process.argv.slice(2);
const bulwark = resolve(args[args.indexOf('--bulwark') + 1] ?? '');
let webhook;
const dir = mkdtempSync(join(tmpdir(), 'bulwark-degraded-'));
const run = harness({
  bulwark,
  onFinish: () => {
    webhook?.close();
    rmSync(dir, { recursive: true, force: true });
  },
});
const { check, startBulwark, stop, logs } = run;

async function get(port, path) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(scaled(5000)) });
  return { status: res.status, text: await res.text() };
}

async function health(port) {
  const r = await get(port, '/health');
  return { status: r.status, body: JSON.parse(r.text) };
}

/// Parses Prometheus text format 0.0.4 strictly; returns name{labels} -> value.
function parsePrometheus(text) {
  const samples = new Map();
  const typed = new Map();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    const t = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/);
    if (t) {
      assert(!typed.has(t[1]), `TYPE of ${t[1]} given twice`);
      typed.set(t[1], t[2]);
      continue;
    }
    assert(!line.startsWith('#'), `unexpected comment: ${line}`);
    const m = line.match(sample);
    assert(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    assert(typed.has(m[1]) || typed.get(family) === 'histogram', `sample before its TYPE: ${line}`);
    samples.set(m[1] + (m[2] ?? ''), Number(m[3].replace('+Inf', 'Infinity')));
  }
  return samples;
}

function metric(samples, name, labels = {}) {
  for (const [key, v] of samples) {
    if (!key.startsWith(name + '{') && key !== name) continue;
    if (Object.entries(labels).every(([k, val]) => key.includes(`${k}="${val}"`))) return v;
  }
  return undefined;
}

try {
  // The webhook receiver.
  const alerts = [];
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      try {
        alerts.push(JSON.parse(body));
      } catch {
        alerts.push({ unparsable: body });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((r) => webhook.listen(0, '127.0.0.1', r));
  const hookPort = webhook.address().port;

  const downPort = await startBulwark(['--port', '0', '--fixtures', '--fault-tools', '--no-builtin-tools'], 'down');
  const secret = 'test-key-that-is-limited';
  const hash = createHash('sha256').update(secret).digest('hex');
  const cfgPath = join(dir, 'front.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0 },
    mcpServers: { web: { url: `http://127.0.0.1:${downPort}/mcp` } },
    services: {
      web: {
        timeoutMs: 1000,
        retry: { attempts: 1 },
        breaker: { consecutiveFailures: 2, openMs: 800 },
        cache: { ttlMs: 300, maxStaleMs: 60000, tools: ['fault_count'], scope: 'public' },
        fallback: 'stale',
      },
    },
    gateway: { prefix: 'never' },
    rateLimits: { tiers: { tiny: { perMinute: 3 } }, keys: { [hash]: { tier: 'tiny' } } },
    health: { intervalMs: 100, exitAfterMs: 800 },
    alerts: { webhook: { url: `http://127.0.0.1:${hookPort}/alerts`, attempts: 2, baseDelayMs: 100 } },
  }));
  const port = await startBulwark(['--config', cfgPath], 'front');

  await check('/ready turns 200 once the service was reached; /health is healthy', async () => {
    await until('ready', async () => (await get(port, '/ready')).status === 200);
    const h = await until('a healthy report', async () => {
      const h = await health(port);
      return h.body.status === 'healthy' ? h : null;
    });
    assert(h.status === 200, `health status ${h.status}`);
    assert(h.body.components.breakers.web.state === 'closed', 'the breaker is closed');
    assert(typeof h.body.uptimeSeconds === 'number' && h.body.version, 'version and uptime are reported');
    assert((await get(port, '/health/live')).status === 200, 'live');
    const q = JSON.parse((await get(port, '/admin/api/queue')).text);
    assert(q.capacity === 1000 && Array.isArray(q.entries), `queue status: ${JSON.stringify(q)}`);
  });

  await check('queue_status shows the caller\'s queued calls and the depth per priority', async () => {
    const r = await call(port, 'queue_status');
    const s = r.result?.structuredContent;
    assert(s && Array.isArray(s.queued) && s.queued.length === 0, `nothing of ours waits: ${JSON.stringify(r)}`);
    assert(['critical', 'high', 'normal', 'low'].every((p) => typeof s.depth[p] === 'number'), 'depth per priority');
  });

  await check('a per-key limit refuses the fourth call with RATE_LIMITED naming user_quota', async () => {
    const auth = { authorization: `Bearer ${secret}` };
    for (let i = 0; i < 3; i++) {
      const r = await call(port, 'test_simple_text', {}, auth);
      assert(r.result, `call ${i + 1} was admitted: ${JSON.stringify(r)}`);
    }
    const refused = await call(port, 'test_simple_text', {}, auth);
    assert(refused.error?.code === -32010, `refused with -32010: ${JSON.stringify(refused)}`);
    assert(refused.error.data.limit === 'user_quota', 'names the level');
    assert(refused.error.data.retry_after_seconds > 0 && refused.error.data.retry_after_seconds <= 60, 'carries retry_after_seconds');
    // Anonymous callers have no per-key tier by default.
    const anon = await call(port, 'test_simple_text');
    assert(anon.result, 'an anonymous call is admitted');
  });

  await check('a cacheable result is cached and carries ttlMs/cacheScope', async () => {
    const first = await call(port, 'fault_count', { key: 'cached' });
    assert(first.result?.content?.[0]?.text?.includes('1'), `first count: ${JSON.stringify(first)}`);
    assert(first.result.cacheScope === 'public' && first.result.ttlMs === 300, `hints: ${JSON.stringify(first.result)}`);
    const second = await call(port, 'fault_count', { key: 'cached' });
    assert(second.result._meta?.['io.bulwark/cache']?.stale === false, `served from the cache: ${JSON.stringify(second.result)}`);
  });

  await check('the downstream fails: the breaker opens and degraded mode switches on', async () => {
    await stop('down');
    await sleep(350); // the cached copy is stale now
    for (let i = 0; i < 2; i++) await call(port, 'fault_count', { key: `miss-${i}` });
    const h = await until('degraded mode', async () => {
      const h = await health(port);
      return h.body.degraded ? h : null;
    });
    assert(h.status === 200 && h.body.status === 'degraded', `degraded answers 200: ${JSON.stringify(h.body)}`);
    assert(h.body.components.breakers.web.state !== 'closed', 'the breaker is not closed');
    assert(h.body.reasons.some((r) => r.includes('web')), `reasons name the service: ${h.body.reasons}`);
    const m = parsePrometheus((await get(port, '/metrics')).text);
    assert(metric(m, 'bulwark_degraded_mode') === 1, 'bulwark_degraded_mode 1');
    assert(metric(m, 'bulwark_breaker_state', { service: 'web' }) >= 1, 'breaker state gauge is open or half-open');
  });

  await check('the cached call is answered stale and marked', async () => {
    const r = await call(port, 'fault_count', { key: 'cached' });
    const mark = r.result?._meta?.['io.bulwark/cache'];
    assert(mark?.stale === true && mark.ageMs >= 300, `stale answer: ${JSON.stringify(r)}`);
    assert(r.result.content[0].text.includes('1'), 'the stale copy is the cached result');
  });

  await check('an alert about the open breaker reaches the webhook', async () => {
    const a = await until('a webhook alert', async () => alerts.find((x) => x.alert?.rule === 'breaker_open'));
    assert(a.alert.subject === 'web' && a.alert.severity === 'critical', `alert: ${JSON.stringify(a)}`);
    const kept = await until('the alert in the history', async () => {
      const h = JSON.parse((await get(port, '/admin/api/alerts')).text);
      return h.history?.find((x) => x.rule === 'breaker_open') && h.webhook?.delivered >= 1 ? h : null;
    });
    assert(kept.webhook.delivered >= 1, `webhook delivery counted: ${JSON.stringify(kept.webhook)}`);
  });

  await check('the downstream recovers: the breaker closes and degraded mode switches off', async () => {
    await startBulwark(['--port', String(downPort), '--fixtures', '--fault-tools', '--no-builtin-tools'], 'down');
    await until('a successful call', async () => (await call(port, 'fault_count', { key: 'after' })).result?.isError !== true
      && (await health(port)).body.components.breakers.web?.state === 'closed', 15_000);
    const h = await until('degraded mode off', async () => {
      const h = await health(port);
      return !h.body.degraded && h.body.status === 'healthy' ? h : null;
    }, 15_000);
    assert(h.status === 200, 'healthy');
    // The open breaker's alert resolves, and the webhook hears so.
    const resolved = await until('a resolved breaker_open alert', async () =>
      alerts.find((x) => x.alert?.rule === 'breaker_open' && x.alert.status === 'resolved'));
    assert(resolved.alert.subject === 'web' && /^resolved: /.test(resolved.alert.message), `resolved: ${JSON.stringify(resolved)}`);
    const m = parsePrometheus((await get(port, '/metrics')).text);
    assert(metric(m, 'bulwark_degraded_mode') === 0, 'bulwark_degraded_mode 0');
    assert(metric(m, 'bulwark_degraded_switches_total', { to: 'on' }) >= 1, 'switch on counted');
    assert(metric(m, 'bulwark_degraded_switches_total', { to: 'off' }) >= 1, 'switch off counted');
    assert(metric(m, 'bulwark_rate_limit_refusals_total', { limit: 'user_quota' }) === 1, 'one refusal counted');
    assert(metric(m, 'bulwark_requests_total', { method: 'tools/call', tool: 'fault_count', outcome: 'ok' }) >= 3, 'requests counted');
    assert(metric(m, 'bulwark_errors_total', { code: '-32010', class: 'caller' }) === 1, 'errors counted by code and class');
    // The standard process metrics.
    const cpu = metric(m, 'process_cpu_seconds_total');
    assert(cpu > 0 && cpu < 600 && !Number.isInteger(cpu), `process_cpu_seconds_total: ${cpu}`);
    assert(metric(m, 'process_resident_memory_bytes') > 1e6, 'process_resident_memory_bytes');
    assert(metric(m, 'process_virtual_memory_bytes') >= metric(m, 'process_resident_memory_bytes'), 'process_virtual_memory_bytes');
    const fds = metric(m, 'process_open_fds');
    assert(fds >= 5 && fds <= metric(m, 'process_max_fds'), `process_open_fds ${fds} of ${metric(m, 'process_max_fds')}`);
    const started = metric(m, 'process_start_time_seconds');
    assert(started <= Date.now() / 1000 && started > Date.now() / 1000 - 600, `process_start_time_seconds: ${started}`);
    assert(metric(m, 'bulwark_request_duration_seconds_count', { method: 'tools/call' }) >= 8, 'latency histogram');
    assert(metric(m, 'bulwark_cache_events_total', { event: 'staleHits' }) >= 1, 'stale hit counted');
    const j = JSON.parse((await get(port, '/metrics.json')).text);
    const hist = j.bulwark_request_duration_seconds.series.find((s) => s.labels.method === 'tools/call');
    assert(hist.p50 > 0 && hist.p95 >= hist.p50 && hist.p99 >= hist.p95, 'percentiles in /metrics.json');
  });

  await check('onLimit "queue" parks limited calls until their tokens are due instead of refusing', async () => {
    const parkPath = join(dir, 'park.json');
    writeFileSync(parkPath, JSON.stringify({
      http: { port: 0 },
      mcpServers: { web: { url: `http://127.0.0.1:${downPort}/mcp` } },
      gateway: { prefix: 'never' },
      rateLimits: { tiers: { slow: { perSecond: 2 } }, anonymousTier: 'slow', onLimit: 'queue', maxQueueWaitMs: 3000 },
    }));
    const parkPort = await startBulwark(['--config', parkPath], 'park');
    await until('ready', async () => (await get(parkPort, '/ready')).status === 200);
    // Two tokens, then one every 500 ms: four calls at once end after ~1 s,
    // none refused; a built-in tool waits in its session, a service call in
    // the priority queue.
    const t0 = Date.now();
    const answers = await Promise.all([
      call(parkPort, 'fault_count', { key: 'p1' }), call(parkPort, 'fault_count', { key: 'p2' }),
      call(parkPort, 'echo', { text: 'p3' }), call(parkPort, 'fault_count', { key: 'p4' }),
    ]);
    const took = Date.now() - t0;
    assert(answers.every((a) => a.result && !a.error), `all admitted: ${JSON.stringify(answers)}`);
    assert(took >= 900 && took < scaled(3000), `parked for about a second, took ${took} ms`);
    // Beyond maxQueueWaitMs the call is refused after all.
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => call(parkPort, 'echo', { text: `m${i}` })));
    const refused = many.filter((a) => a.error?.code === -32010);
    assert(refused.length >= 1 && refused.every((a) => a.error.data.limit === 'user_quota'),
      `the ones past the wait bound are refused: ${JSON.stringify(many.map((a) => a.error?.code ?? 'ok'))}`);
    await stop('park');
  });

  await check('a client may lower its priority but not raise it; queue_status shows where its calls wait', async () => {
    const prioPath = join(dir, 'prio.json');
    writeFileSync(prioPath, JSON.stringify({
      http: { port: 0 },
      mcpServers: { web: { url: `http://127.0.0.1:${downPort}/mcp` } },
      services: { web: { priority: 'normal' } },
      gateway: { prefix: 'never' },
      queue: { maxConcurrentPerService: 1 },
    }));
    const prioPort = await startBulwark(['--config', prioPath], 'prio');
    await until('ready', async () => (await get(prioPort, '/ready')).status === 200);
    const busy = call(prioPort, 'fault_count', { key: 'busy', hangMs: 1500 });
    await sleep(100);
    const lowered = call(prioPort, 'fault_count', { key: 'lowered' }, {}, { 'io.bulwark/priority': 'low' });
    const raised = call(prioPort, 'fault_count', { key: 'raised' }, {}, { 'io.bulwark/priority': 'critical' });
    const status = await until('both calls queued', async () => {
      const s = (await call(prioPort, 'queue_status')).result?.structuredContent;
      return s?.queued?.length === 2 ? s : null;
    });
    const byTool = Object.fromEntries(status.queued.map((q) => [q.position, q.priority]));
    assert(byTool[0] === 'normal' && byTool[1] === 'low',
      `the raised call stays normal and runs first, the lowered one waits: ${JSON.stringify(status.queued)}`);
    assert(status.queued.every((q) => q.estimatedWaitMs >= 0 && q.service === 'web'), 'estimated wait and service');
    const done = await Promise.all([busy, lowered, raised]);
    assert(done.every((d) => d.result && !d.result.isError), `all three ran: ${JSON.stringify(done)}`);
    await stop('prio');
  });

  await check("cached results are kept per caller; a service's tools/list_changed drops them", async () => {
    const invPath = join(dir, 'inv.json');
    writeFileSync(invPath, JSON.stringify({
      http: { port: 0 },
      mcpServers: { kid: { command: bulwark, args: ['--stdio', '--no-http', '--fixtures', '--log-level', 'warning'] } },
      services: { kid: { cache: { ttlMs: 60000, tools: ['test_simple_text'] } } },
      gateway: { prefix: 'never' },
      // Without authentication a bearer key names a caller only when it is known.
      rateLimits: { keys: Object.fromEntries(['alice-key', 'bob-key'].map(
        (k) => [createHash('sha256').update(k).digest('hex'), { tier: 'paid' }])) },
    }));
    const invPort = await startBulwark(['--config', invPath, '--no-builtin-tools'], 'inv');
    await until('ready', async () => (await get(invPort, '/ready')).status === 200);
    // Private results (the default scope) are kept per caller.
    const alice = { authorization: 'Bearer alice-key' };
    const bob = { authorization: 'Bearer bob-key' };
    await call(invPort, 'test_simple_text', {}, alice);
    const mine = await call(invPort, 'test_simple_text', {}, alice);
    assert(mine.result?._meta?.['io.bulwark/cache']?.stale === false, `alice's second call is cached: ${JSON.stringify(mine)}`);
    assert(mine.result.cacheScope === 'private', `cacheScope private: ${JSON.stringify(mine.result)}`);
    const theirs = await call(invPort, 'test_simple_text', {}, bob);
    assert(theirs.result && !theirs.result._meta?.['io.bulwark/cache'], `bob never sees alice's copy: ${JSON.stringify(theirs)}`);
    await call(invPort, 'test_simple_text');
    const cached = await call(invPort, 'test_simple_text');
    assert(cached.result?._meta?.['io.bulwark/cache']?.stale === false, `cached: ${JSON.stringify(cached)}`);
    await call(invPort, 'test_trigger_tool_change');
    const fresh = await until('an answer from the service again', async () => {
      const r = await call(invPort, 'test_simple_text');
      return r.result && !r.result._meta?.['io.bulwark/cache'] ? r : null;
    }, 5000);
    assert(fresh.result.content[0].text.includes('simple text'), 'the service answered');
    await stop('inv');
  });

  // Degraded mode forced on and back to automatic through the admin API, on
  // a front of its own: what it changes, and that leaving it undoes that.
  const adminToken = 'admin-token-of-the-degraded-test';
  const shedKeys = ['during-key', 'after-key'];
  const shedPath = join(dir, 'shed.json');
  writeFileSync(shedPath, JSON.stringify({
    http: { port: 0 },
    mcpServers: { web: { url: `http://127.0.0.1:${downPort}/mcp` } },
    gateway: { prefix: 'never' },
    rateLimits: { tiers: { four: { perMinute: 4 } },
                  keys: Object.fromEntries(shedKeys.map((k) => [createHash('sha256').update(k).digest('hex'), { tier: 'four' }])) },
    health: { intervalMs: 100, exitAfterMs: 300, degradedBudgetScale: 0.5 },
    admin: { tokenSha256: createHash('sha256').update(adminToken).digest('hex') },
  }));
  const shedPort = await startBulwark(['--config', shedPath], 'shed');
  const admin = (method, path, body) => adminRequest(shedPort, adminToken, method, path, body);
  const low = { 'io.bulwark/priority': 'low' };
  const degradedNow = async (want) => {
    if (want !== undefined)
      assert((await admin('POST', 'degraded', { mode: want ? 'on' : 'auto' })).status === 200, 'the admin API switches');
    return until(`degraded mode ${want ? 'on' : 'off'}`, async () => {
      const h = await health(shedPort);
      return h.body.degraded === !!want ? h : null;
    });
  };
  // /admin/api/limits is the limiter as the last health check saw it.
  const scale = (want) => until(`budgets at ${want}`, async () => (await admin('GET', 'limits')).body.scale === want, 5000);
  await until('ready', async () => (await get(shedPort, '/ready')).status === 200);

  await check('degraded mode sheds LOW calls (-32004) and runs NORMAL ones; leaving it runs LOW calls again', async () => {
    await degradedNow(false);
    const before = await call(shedPort, 'fault_count', { key: 'low-before' }, {}, low);
    assert(before.result && !before.result.isError, `a LOW call runs while healthy: ${JSON.stringify(before)}`);
    await degradedNow(true);
    const shed = await call(shedPort, 'fault_count', { key: 'low-during' }, {}, low);
    assert(shed.error?.code === -32004 && /low-priority work is shed/.test(shed.error.message)
           && shed.error.data?.priority === 'low' && shed.error.data.retry_after_seconds >= 1,
           `a LOW call is shed while degraded: ${JSON.stringify(shed)}`);
    const normal = await call(shedPort, 'fault_count', { key: 'normal-during' });
    assert(normal.result && !normal.result.isError, `a NORMAL call still runs: ${JSON.stringify(normal)}`);
    await degradedNow(false);
    const after = await call(shedPort, 'fault_count', { key: 'low-after' }, {}, low);
    assert(after.result && !after.result.isError, `a LOW call runs again: ${JSON.stringify(after)}`);
  });

  await check('degraded mode halves the rate budgets (4/min admits 2); leaving it restores them (4)', async () => {
    /// Calls test_simple_text as `key` until one is refused (at most 8);
    /// returns how many were admitted and the refusal.
    const budget = async (key) => {
      for (let i = 0; i < 8; i++) {
        const r = await call(shedPort, 'test_simple_text', {}, { authorization: `Bearer ${key}` });
        if (r.error) return { admitted: i, refusal: r.error };
        assert(r.result && !r.result.isError, `call ${i + 1} of ${key}: ${JSON.stringify(r)}`);
      }
      return { admitted: 8, refusal: null };
    };
    await scale(1);
    await degradedNow(true);
    await scale(0.5);
    const during = await budget(shedKeys[0]);
    assert(during.admitted === 2 && during.refusal?.code === -32010 && during.refusal.data.limit === 'user_quota'
           && /50% while degraded/.test(during.refusal.data.description ?? ''),
           `4/min at half: 2 admitted, then refused naming the scale: ${JSON.stringify(during)}`);
    await degradedNow(false);
    await scale(1);
    const full = await budget(shedKeys[1]);
    assert(full.admitted === 4 && full.refusal?.code === -32010 && !/degraded/.test(full.refusal.data.description ?? ''),
           `4/min in full again: ${JSON.stringify(full)}`);
  });
  await stop('shed');

  await check('rateLimits.maxTrackedCallers: a caller past the cap is refused as global; tracked ones go on; idle ones make room', async () => {
    const cap = 5;
    const keys = Array.from({ length: 12 }, (_, i) => `tracked-caller-${i}`);
    const capPath = join(dir, 'cap.json');
    writeFileSync(capPath, JSON.stringify({
      http: { port: 0 },
      health: { intervalMs: 50 },
      rateLimits: { tiers: { quick: { perMinute: 6 } }, maxTrackedCallers: cap,
                    keys: Object.fromEntries(keys.map((k) => [createHash('sha256').update(k).digest('hex'), { tier: 'quick' }])) },
    }));
    const capPort = await startBulwark(['--config', capPath], 'cap');
    const as = (k) => call(capPort, 'echo', { text: k }, { authorization: `Bearer ${k}` });
    // The limiter as the last health check (every 50 ms) saw it.
    const tracked = async () => {
      await sleep(scaled(150));
      return JSON.parse((await get(capPort, '/admin/api/limits')).text).keys;
    };
    for (const k of keys.slice(0, cap)) {
      const r = await as(k);
      assert(r.result && !r.result.isError, `${k} is admitted below the cap: ${JSON.stringify(r)}`);
    }
    assert(await tracked() === cap, `${cap} callers tracked`);
    // Their buckets are not full yet (6/min refills the token a call took in
    // 10 s): nobody can be forgotten, so newcomers wait.
    for (const k of keys.slice(cap)) {
      const r = await as(k);
      assert(r.error?.code === -32010 && r.error.data.limit === 'global'
             && r.error.data.description?.includes(`too many distinct callers at once (${cap})`)
             && r.error.data.retry_after_seconds >= 1,
             `${k} past the cap is refused as global: ${JSON.stringify(r)}`);
    }
    assert(await tracked() === cap, `still ${cap} callers tracked after ${keys.length - cap} newcomers`);
    const known = await as(keys[0]);
    assert(known.result && !known.result.isError, `a tracked caller goes on: ${JSON.stringify(known)}`);
    // Full again (10 s after each one's last call) and at the sweep after
    // that, idle callers are forgotten and a newcomer gets a place.
    let newcomer;
    await until('a newcomer admitted once idle callers are forgotten', async () => {
      newcomer = await as(keys[cap]);
      return newcomer.result && !newcomer.result.isError;
    }, 20_000).catch(() => {});
    assert(newcomer.result && !newcomer.result.isError, `a newcomer after idle callers are forgotten: ${JSON.stringify(newcomer)}`);
    const now = await tracked();
    assert(now >= 1 && now <= cap, `at most ${cap} callers tracked: ${now}`);
    await stop('cap');
  });
} catch (e) {
  run.failed++;
  console.log(`FAIL setup: ${e?.stack ?? e}`);
}
if (run.failed) console.log(logs.slice(-40).join('\n'));
console.log(`${run.passed} passed, ${run.failed} failed`);
run.finish(run.failed === 0 ? 0 : 1);
