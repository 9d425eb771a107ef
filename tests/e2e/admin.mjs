#!/usr/bin/env node
// End-to-end test of the admin API: a front `bulwark` with an admin token
// whose service ("web") is a `bulwark --fixtures --fault-tools` over HTTP.
//
//   node tests/e2e/admin.mjs --bulwark build/bulwark
//
// Checks: the token is required (and a wrong one refused); the actor list;
// killing an actor brings it back restarted; forcing degraded mode on and
// back to automatic; opening a breaker makes calls fail fast and closing it
// lets them through; invalidating a service's cached results; bad requests
// get clear 4xx answers; every action is in the audit log. Every process is
// killed by pid.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';

import { adminRequest, assert, callTool, harness, modernRequest, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-admin-' });
const { bulwark, dir } = run;
const { check, startBulwark, logs } = run;

let port;
const token = 'admin-token-for-the-test';
const auth = { authorization: `Bearer ${token}` };

const admin = (method, path, body, headers = auth) => adminRequest(port, token, method, path, body, headers);

const call = (name, args = {}) => callTool(port, name, args);

await run.main(async () => {
  const downPort = await startBulwark(['--port', '0', '--fixtures', '--fault-tools', '--no-builtin-tools'], 'down');
  const cfgPath = join(dir, 'front.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0 },
    mcpServers: { web: { url: `http://127.0.0.1:${downPort}/mcp` } },
    services: { web: { cache: { ttlMs: 60000, tools: ['fault_count'], scope: 'public' }, fallback: 'none', breaker: { openMs: 200 } } },
    gateway: { prefix: 'never' },
    admin: { tokenSha256: createHash('sha256').update(token).digest('hex') },
    health: { intervalMs: 100, exitAfterMs: 300 },
    // Room for this test's kills: the escalation path has its unit tests.
    supervision: { maxRestarts: 30, windowSeconds: 10, backoffInitialMs: 10 },
  }));
  port = await startBulwark(['--config', cfgPath], 'front');
  await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200);

  await check('the admin API needs the admin token', async () => {
    assert((await admin('GET', 'actors', undefined, {})).status === 401, 'no token: 401');
    assert((await admin('GET', 'actors', undefined, { authorization: 'Bearer wrong' })).status === 401, 'wrong token: 401');
    assert((await admin('POST', 'degraded', { mode: 'on' }, {})).status === 401, 'an action without the token: 401');
    const r = await admin('GET', 'actors');
    assert(r.status === 200, `with the token: ${r.status}`);
    const names = r.body.actors.map((a) => a.name);
    for (const n of ['limiter', 'queue', 'cache', 'health', 'alerts', 'breaker/web', 'connector/web', 'session-supervisor'])
      assert(names.includes(n), `${n} listed: ${names}`);
    const breaker = r.body.actors.find((a) => a.name === 'breaker/web');
    assert(breaker.kind === 'breaker' && breaker.parent === 'service/web' && breaker.restarts === 0
      && breaker.state === 'running' && breaker.uptimeSeconds > 0, `tree entry: ${JSON.stringify(breaker)}`);
    const stateless = r.body.actors.find((a) => a.name === 'stateless-session');
    assert(stateless?.parent === 'session-supervisor' && stateless.kind === 'session', `a session under its supervisor: ${JSON.stringify(stateless)}`);
    const root = r.body.actors.find((a) => a.name === 'root-supervisor');
    assert(root && root.parent === null && root.kind === 'supervisor', `the root heads the tree: ${JSON.stringify(root)}`);
    for (const n of ['limiter', 'queue', 'alerts', 'cache'])
      assert(r.body.actors.find((a) => a.name === n).parent === 'operations-supervisor', `${n} under the operations supervisor`);
    const sups = Object.fromEntries(r.body.supervisors.map((s) => [s.name, s]));
    assert(sups['service/web']?.strategy === 'rest-for-one'
      && JSON.stringify(sups['service/web'].children) === JSON.stringify(['connector/web', 'breaker/web'])
      && sups['service/web'].parent === 'root-supervisor', `the service's supervisor: ${JSON.stringify(sups['service/web'])}`);
    assert(sups['root-supervisor']?.strategy === 'one-for-one' && sups['root-supervisor'].maxRestarts === 30
      && sups['root-supervisor'].windowSeconds === 10 && sups['root-supervisor'].parent === null, `the root: ${JSON.stringify(sups['root-supervisor'])}`);
    assert(sups['operations-supervisor']?.children.includes('queue'), 'the operations supervisor lists its children');
    assert(sups['session-supervisor']?.children.includes('stateless-session'),
           `the session supervisor lists its sessions: ${JSON.stringify(sups['session-supervisor'])}`);
    // Mailbox sizes come from the actors themselves (the health checks ask them).
    const withMailbox = await until('mailbox sizes', async () => {
      const a = (await admin('GET', 'actors')).body.actors;
      return ['queue', 'limiter', 'breaker/web', 'connector/web', 'cache', 'health'].every(
        (n) => Number.isInteger(a.find((x) => x.name === n)?.mailbox)) ? a : null;
    });
    assert(withMailbox.find((x) => x.name === 'queue').mailbox >= 0, 'a count');
  });

  await check('the console page may not be framed; admin answers are not cached', async () => {
    const page = await fetch(`http://127.0.0.1:${port}/admin`);
    const html = await page.text();
    assert(page.status === 200 && page.headers.get('content-type').startsWith('text/html') && html.includes('<html'), 'the page');
    assert(/frame-ancestors 'none'/.test(page.headers.get('content-security-policy') ?? ''), 'CSP forbids framing');
    assert(page.headers.get('x-frame-options') === 'DENY', 'X-Frame-Options');
    const api = await fetch(`http://127.0.0.1:${port}/admin/api/actors`, { headers: auth });
    await api.text();
    assert(api.headers.get('cache-control') === 'no-store', `API answers: ${api.headers.get('cache-control')}`);
  });

  await check('views of breakers, connectors, cache, limits and sessions', async () => {
    const b = await admin('GET', 'breakers');
    assert(b.status === 200 && b.body.web?.state === 'closed', `breakers: ${JSON.stringify(b.body)}`);
    const c = await admin('GET', 'connectors');
    assert(c.status === 200 && c.body.web?.phase === 'ready', `connectors: ${JSON.stringify(c.body)}`);
    const cache = await admin('GET', 'cache');
    assert(cache.status === 200 && Number.isInteger(cache.body.entries) && Number.isInteger(cache.body.misses), `cache: ${JSON.stringify(cache.body)}`);
    const limits = await admin('GET', 'limits');
    assert(limits.status === 200 && limits.body.refusals && 'user_quota' in limits.body.refusals, `limits: ${JSON.stringify(limits.body)}`);
    // A 2025-era session shows up in the sessions view.
    const init = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'admin-view', version: '1' } } }),
    });
    const sid = init.headers.get('mcp-session-id');
    await init.text();
    assert(sid, 'a session id');
    const s = await admin('GET', 'sessions');
    const mine = s.body.sessions?.find((x) => x.id === sid);
    assert(s.status === 200 && s.body.count >= 1 && mine?.client === 'admin-view' && mine.protocolVersion === '2025-11-25'
      && mine.identity === 'anonymous', `sessions: ${JSON.stringify(s.body)}`);
  });

  await check('killing an actor brings it back restarted', async () => {
    const before = (await admin('GET', 'actors')).body.restarts;
    const r = await admin('POST', 'actors/kill', { name: 'limiter' });
    assert(r.status === 200 && JSON.stringify(r.body.killed) === '["limiter"]', JSON.stringify(r));
    const after = await until('the limiter back', async () => {
      const a = (await admin('GET', 'actors')).body;
      return a.actors.some((x) => x.name === 'limiter') && a.restarts > before ? a : null;
    });
    assert(after.restarts === before + 1, `one restart: ${before} -> ${after.restarts}`);
    const limiter = after.actors.find((x) => x.name === 'limiter');
    assert(limiter.restarts === 1 && /kill/.test(limiter.lastExit) && limiter.state === 'running'
      && limiter.parent === 'operations-supervisor' && limiter.uptimeSeconds < 5, `the limiter's entry: ${JSON.stringify(limiter)}`);
    assert((await call('test_simple_text')).result, 'calls still work');
  });

  await check('a killed gateway router comes back and rebuilds the catalog from the connectors', async () => {
    const before = (await admin('GET', 'actors')).body.actors.find((x) => x.name === 'gateway-router');
    assert(before?.parent === 'operations-supervisor' && before.kind === 'gateway-router', `the router's entry: ${JSON.stringify(before)}`);
    const r = await admin('POST', 'actors/kill', { name: 'gateway-router' });
    assert(r.status === 200 && JSON.stringify(r.body.killed) === '["gateway-router"]', JSON.stringify(r));
    const rebuilt = await until('the catalog rebuilt', async () => {
      const line = logs.find((l) => l.startsWith('[front]') && l.includes('"msg":"gateway catalog rebuilt'));
      return line ? JSON.parse(line.slice('[front] '.length)) : null;
    });
    assert(JSON.stringify(rebuilt.unreported) === '[]', `every connector reported: ${JSON.stringify(rebuilt)}`);
    const after = (await admin('GET', 'actors')).body.actors.find((x) => x.name === 'gateway-router');
    assert(after.restarts === before.restarts + 1 && after.state === 'running', `restarted once: ${JSON.stringify(after)}`);
    // The service's tools are listed and routed by the new router's entries.
    const listed = await modernRequest(port, 'tools/list', {});
    const list = (listed.json?.result?.tools ?? []).map((t) => t.name);
    assert(list.includes('test_simple_text') && list.includes('fault_count'), `web's tools listed: ${list}`);
    assert((await call('test_simple_text')).result, 'calls still work');
  });

  await check('killing by kind, and rest-for-one: a connector takes its breaker along', async () => {
    const tree = async () => Object.fromEntries((await admin('GET', 'actors')).body.actors.map((a) => [a.name, a]));
    const before = await tree();
    const k = await admin('POST', 'actors/kill', { kind: 'breaker' });
    assert(k.status === 200 && JSON.stringify(k.body.killed) === '["breaker/web"]', `by kind: ${JSON.stringify(k)}`);
    const mid = await until('the breaker back', async () => {
      const t = await tree();
      return t['breaker/web']?.state === 'running' && t['breaker/web'].restarts === before['breaker/web'].restarts + 1 ? t : null;
    });
    assert(mid['connector/web'].restarts === before['connector/web'].restarts, 'the breaker goes alone: the connector stays');
    assert((await admin('POST', 'actors/kill', { name: 'connector/web' })).status === 200, 'connector killed');
    const after = await until('both back', async () => {
      const t = await tree();
      const up = (n) => t[n]?.state === 'running';
      return up('connector/web') && up('breaker/web') && t['connector/web'].restarts === before['connector/web'].restarts + 1 ? t : null;
    });
    assert(after['breaker/web'].restarts === before['breaker/web'].restarts + 2
      && /rest-for-one/.test(after['breaker/web'].lastExit), `the breaker restarted with it: ${JSON.stringify(after['breaker/web'])}`);
    const ok = await until('calls through the new pair', async () => {
      const r = await call('test_simple_text');
      return r.result ? r : null;
    });
    assert(ok.result.content[0].text, 'a result');
    // Health judges the answers of the previous round: wait for rounds that
    // started after the probe closed the breaker.
    const checks = (await admin('GET', 'health')).body.checks;
    await until('healthy again', async () => {
      const h = (await admin('GET', 'health')).body;
      return h.status === 'healthy' && h.checks >= checks + 3;
    });
  });

  await check('degraded mode can be forced on and returned to automatic', async () => {
    assert((await admin('POST', 'degraded', { mode: 'on' })).status === 200, 'forced on');
    const h = await until('degraded', async () => {
      const b = (await admin('GET', 'health')).body;
      return b.degraded && b.degradedForced === true ? b : null;
    });
    assert(h.status === 'healthy', `forcing the mode does not make the components unhealthy: ${JSON.stringify(h.reasons)}`);
    assert((await admin('POST', 'degraded', { mode: 'auto' })).status === 200, 'automatic');
    await until('degraded mode off', async () => !(await admin('GET', 'health')).body.degraded);
  });

  await check('a breaker held open fails calls fast past its open time; auto releases it; closing it lets calls through', async () => {
    assert((await admin('POST', 'breakers', { service: 'web', state: 'open' })).status === 200, 'opened');
    const err = await until('a fast failure', async () => {
      const r = await call('fault_count', { key: 'breaker' });
      return r.error ? r : null;
    });
    assert(err.error.code === -32005 && err.error.data.breaker === 'open' && err.error.data.forced === true,
           `fails fast: ${JSON.stringify(err)}`);
    // Held open: it does not half-open after its open time (200 ms).
    await new Promise((r) => setTimeout(r, 600));
    const still = await call('fault_count', { key: 'breaker' });
    assert(still.error?.code === -32005 && still.error.data.breaker === 'open', `still open: ${JSON.stringify(still)}`);
    // Released, it half-opens: the next call probes the service, and closes it.
    assert((await admin('POST', 'breakers', { service: 'web', state: 'auto' })).status === 200, 'released');
    const probe = await call('fault_count', { key: 'breaker-probe' });
    assert(probe.result?.structuredContent?.executions === 1, `the probe reached the service: ${JSON.stringify(probe)}`);
    // The breakers view is the health supervisor's latest check.
    await until('the view showing it closed by the probe', async () => {
      const b = (await admin('GET', 'breakers')).body.web;
      return b.state === 'closed' && b.forced === false;
    });
    assert((await admin('POST', 'breakers', { service: 'web', state: 'closed' })).status === 200, 'closed');
    const ok = await until('a call through', async () => {
      const r = await call('fault_count', { key: 'breaker' });
      return r.result ? r : null;
    });
    assert(ok.result.structuredContent.executions === 1, 'the open breaker kept the call from the service');
  });

  await check("invalidating a service's cache makes the next call reach the service", async () => {
    await call('fault_count', { key: 'inv' });
    const cached = await call('fault_count', { key: 'inv' });
    assert(cached.result._meta?.['io.bulwark/cache'], 'cached');
    const r = await admin('POST', 'cache/invalidate', { service: 'web' });
    assert(r.status === 200 && r.body.invalidated === 'web\n', JSON.stringify(r));
    const fresh = await until('an uncached answer', async () => {
      const x = await call('fault_count', { key: 'inv' });
      return x.result && !x.result._meta?.['io.bulwark/cache'] ? x : null;
    });
    assert(fresh.result.structuredContent.executions === 2, 'executed again by the service');
  });

  await check('bulwark-chaos kills the chosen actors at its rate, for its time, and says what it did', async () => {
    const before = (await admin('GET', 'actors')).body.restarts;
    const chaos = join(dirname(bulwark), 'bulwark-chaos');
    const out = await new Promise((resolveRun, reject) => {
      const child = spawn(chaos, ['--url', `http://127.0.0.1:${port}`, '--rate', '4', '--duration', '1',
        '--kind', 'queue', '--name', 'limiter', '--seed', '7'], { env: { ...process.env, BULWARK_ADMIN_TOKEN: token } });
      run.pids.push(child.pid);
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.on('error', reject);
      child.on('exit', (code) => resolveRun({ code, text }));
    });
    assert(out.code === 0, `exit status ${out.code}:\n${out.text}`);
    const kills = out.text.split('\n').filter((l) => / kill (queue|limiter) -> HTTP 200$/.test(l));
    const summary = out.text.match(/summary: kills=(\d+) refused=0/);
    assert(summary && Number(summary[1]) === kills.length, `summary agrees with the lines:\n${out.text}`);
    assert(kills.length >= 3 && kills.length <= 5, `about 4 per second for 1 s (within the restart intensity of 5): ${kills.length}`);
    const after = await until('both back', async () => {
      const a = (await admin('GET', 'actors')).body;
      const up = (n) => a.actors.find((x) => x.name === n)?.state === 'running';
      return up('queue') && up('limiter') && a.restarts >= before + kills.length ? a : null;
    });
    assert(after.restarts === before + kills.length, `one restart per kill: ${before} + ${kills.length} vs ${after.restarts}`);
    assert((await call('fault_count', { key: 'after-chaos' })).result, 'calls work after the chaos');
  });

  await check('bad admin requests get clear 4xx answers', async () => {
    const cases = [
      ['POST', 'degraded', { mode: 'maybe' }, 400],
      ['POST', 'actors/kill', { name: 'no-such-actor' }, 404],
      ['POST', 'actors/kill', {}, 400],
      ['POST', 'actors/kill', { name: 'queue', kind: 'queue' }, 400],
      ['POST', 'actors/kill', { kind: 'no-such-kind' }, 404],
      ['POST', 'actors/kill', { name: 'root-supervisor' }, 409],
      ['POST', 'breakers', { service: 'nope', state: 'open' }, 404],
      ['POST', 'breakers', { service: 'web', state: 'ajar' }, 400],
      ['POST', 'cache/invalidate', {}, 400],
      ['POST', 'cache/invalidate', { service: 'nope' }, 404],
      ['POST', 'degraded', 'not json', 400],
      ['POST', 'reboot', {}, 404],
      ['GET', 'nothing-here', undefined, 404],
      ['DELETE', 'actors', undefined, 405],
    ];
    for (const [method, path, body, want] of cases) {
      const r = await admin(method, path, body);
      assert(r.status === want, `${method} ${path} ${JSON.stringify(body)}: ${r.status}, wanted ${want}`);
      assert(typeof r.body?.error === 'string' && r.body.error.length > 0, `an error text for ${method} ${path}`);
    }
  });

  await check('the admin API on its own port, and not on the MCP port', async () => {
    const cfg2 = join(dir, 'separate.json');
    writeFileSync(cfg2, JSON.stringify({
      http: { port: 0 },
      admin: { tokenSha256: createHash('sha256').update(token).digest('hex'), port: 0 },
    }));
    const mcpPort = await startBulwark(['--config', cfg2, '--no-builtin-tools'], 'separate');
    const line = logs.find((l) => l.startsWith('[separate]') && l.includes('"msg":"admin listening"'));
    assert(line, 'the admin port is logged');
    const adminPort = JSON.parse(line.slice('[separate] '.length)).port;
    assert(adminPort !== mcpPort, 'two ports');
    const onAdmin = await fetch(`http://127.0.0.1:${adminPort}/admin/api/actors`, { headers: auth });
    assert(onAdmin.status === 200 && (await onAdmin.json()).actors.length > 0, 'served on the admin port');
    const onMcp = await fetch(`http://127.0.0.1:${mcpPort}/admin/api/actors`, { headers: auth });
    assert(onMcp.status === 404, `not on the MCP port: ${onMcp.status}`);
    await onMcp.text();
    const noMcp = await fetch(`http://127.0.0.1:${adminPort}/mcp`, { method: 'POST', body: '{}',
      headers: { 'content-type': 'application/json' } });
    assert(noMcp.status === 404, `no MCP endpoint on the admin port: ${noMcp.status}`);
    await noMcp.text();
    const health = await fetch(`http://127.0.0.1:${adminPort}/health/live`);
    assert(health.status === 200, 'health beside the admin API');
    await run.stop('separate');
  });

  await check('every action is in the audit log', async () => {
    const audit = logs.filter((l) => l.includes('"msg":"admin action"'));
    for (const a of ['actors/kill', 'degraded', 'breakers', 'cache/invalidate'])
      assert(audit.some((l) => l.includes(`"action":"${a}"`)), `${a} audited`);
    assert(logs.some((l) => l.includes('"msg":"admin action refused"')), 'refused actions are logged too');
    assert(!logs.some((l) => l.includes(token)), 'the token never appears in the log');
  });
});
