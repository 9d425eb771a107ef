#!/usr/bin/env node
// End-to-end test of where Bulwark's alerts go: a webhook receiver run by
// this script that answers every delivery with HTTP 500, and two 2025-era
// sessions with open GET streams, one of a key listed in `alerts.adminKeys`
// and one of another key. The `p95_latency` rule with threshold 0 fires as
// soon as a request was served, again after each cooldown.
//
//   node tests/e2e/alerts.mjs --bulwark build/bulwark
//
// Checks: a failing delivery is tried `attempts` times with growing gaps
// (base delay, then twice that); after three failures the webhook's breaker
// opens and later alerts are not sent (the receiver sees no more attempts;
// the admin API reports the breaker open and the alerts dropped; the log
// says so); alerts reach, as log notifications, the GET stream of the admin
// key's session and not that of the other key's session; a webhook header
// written as a file reference is read again when the file changes. Every
// process is killed by pid.

import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adminRequest, assert, harness, openSession, readEvents, scaled, sessionCall, sleep, until } from './harness.mjs';

/// Attempts the receiver saw: when each arrived (ms, monotonic) and what it held.
const attempts = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    attempts.push({ at: performance.now(), body });
    res.writeHead(500, { 'content-type': 'text/plain' }).end('receiver broken');
  });
});

const run = harness({ scratch: 'bulwark-alerts-', watchdogMs: 60_000, onFinish: () => receiver.close() });
const { check } = run;

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const adminKey = 'alerts-test-admin-key';
const userKey = 'alerts-test-user-key';
// Large against the jitter of a delivery's round trip, also in a slow build.
const baseDelayMs = scaled(150);
const cooldownMs = scaled(1000);

/// A session's GET stream; `alerts` fills with the alert log notifications on it.
async function alertStream(port, headers, sid) {
  const ac = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'GET',
    signal: ac.signal,
    headers: { accept: 'text/event-stream', ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
  });
  assert(res.status === 200, `GET stream: HTTP ${res.status}`);
  const alerts = [];
  readEvents(res, (m) => {
    if (m.method === 'notifications/message' && m.params?.logger === 'bulwark.alerts') alerts.push(m);
  });
  return { alerts, close: () => ac.abort() };
}

await run.main(async () => {
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const cfgPath = join(run.dir, 'alerts.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    health: { intervalMs: 100 },
    rateLimits: { tiers: { roomy: { perMinute: 10000 } }, keys: { [sha256(adminKey)]: { tier: 'roomy' }, [sha256(userKey)]: { tier: 'roomy' } } },
    alerts: {
      rules: {
        p95_latency: { threshold: 0, cooldownSeconds: cooldownMs / 1000 },
        error_rate: { threshold: 0.3, minCount: 20, cooldownSeconds: 600 },
      },
      webhook: { url: `http://127.0.0.1:${receiver.address().port}/alerts`, attempts: 3, baseDelayMs, timeoutMs: scaled(2000) },
      adminKeys: [sha256(adminKey)],
    },
  }));
  const port = await run.startBulwark(['--config', cfgPath, '--fault-tools'], 'server');

  // Both streams are open before the first alert: the rule fires only once
  // a call was served.
  const user = { authorization: `Bearer ${userKey}` };
  const admin = { authorization: `Bearer ${adminKey}` };
  const userSid = await openSession(port, user);
  const userStream = await alertStream(port, user, userSid);
  const adminSid = await openSession(port, admin);
  const adminStream = await alertStream(port, admin, adminSid);
  // A call that takes a while: the latency the rule sees is above 0.
  const slept = await sessionCall(port, user, userSid, 'sleep', { ms: 20 });
  assert(slept.json?.result, `sleep: ${slept.text}`);

  await check('a failing webhook delivery is tried three times, the gaps growing from the base delay', async () => {
    await until('three attempts', () => attempts.length >= 3, 5000 + 3 * baseDelayMs);
    const [a, b, c] = attempts;
    assert(a.body === b.body && b.body === c.body, 'each attempt carries the same alert');
    const payload = JSON.parse(a.body);
    assert(payload.alert?.rule === 'p95_latency' && payload.alert.status === 'firing', `the alert: ${a.body}`);
    // It names the instance that sent it.
    assert(typeof payload.instance?.host === 'string' && payload.instance.host.length > 0
           && payload.instance.pid === run.started.server.pid, `the instance: ${JSON.stringify(payload.instance)}`);
    const gap1 = b.at - a.at;
    const gap2 = c.at - b.at;
    // Lower bounds are the back-off itself; timers may only be late.
    assert(gap1 >= baseDelayMs * 0.9, `first gap at least the base delay ${baseDelayMs} ms: ${gap1.toFixed(0)} ms`);
    assert(gap2 >= 2 * baseDelayMs * 0.9, `second gap at least twice the base delay: ${gap2.toFixed(0)} ms`);
    assert(gap2 > gap1 * 1.4, `the gaps grow: ${gap1.toFixed(0)} ms, then ${gap2.toFixed(0)} ms`);
  });

  await check('after three failures the webhook breaker opens: later alerts are not sent, and that is reported', async () => {
    // Two more alerts fire (one per cooldown) while the breaker stays open (30 s).
    // The first alert, which failed three times, is dropped too.
    const status = await until('two later alerts dropped', async () => {
      const r = await adminRequest(port, '', 'GET', 'alerts', undefined, {});
      return r.body?.webhook?.dropped >= 3 ? r.body : null;
    }, 3 * cooldownMs + 5000);
    assert(status.webhook.breaker === 'open', `the breaker is open: ${JSON.stringify(status.webhook)}`);
    assert(status.webhook.failed === 1, `one delivery failed: ${JSON.stringify(status.webhook)}`);
    // The webhook got none of the alerts that fired: each is counted dropped.
    assert(status.webhook.dropped === status.fired, `dropped ${status.webhook.dropped} of ${status.fired} fired`);
    assert(status.fired >= 3, `the rule fired again: ${status.fired}`);
    await sleep(scaled(200));
    assert(attempts.length === 3, `the receiver saw no attempt after the third: ${attempts.length}`);
    assert(run.logs.some((l) => l.includes('alert webhook breaker is open')), 'the log says the breaker is open');
  });

  await check('alert notifications reach the admin key\'s session and not another key\'s', async () => {
    await until('two alerts on the admin stream', () => adminStream.alerts.length >= 2, 3 * cooldownMs + 5000);
    const n = adminStream.alerts[0];
    assert(n.params.data?.rule === 'p95_latency' && n.params.level === 'warning', `an alert as a log notification: ${JSON.stringify(n)}`);
    await sleep(scaled(200)); // anything sent to the other session is there by now
    assert(userStream.alerts.length === 0, `the other key's session got none: ${JSON.stringify(userStream.alerts)}`);
  });
  await check("callers' mistakes do not count toward error_rate; failures of a tool do, and are counted with its name", async () => {
    // 30 calls with bad arguments: alone they are far above 30 % of the
    // requests so far.
    for (let i = 0; i < 30; i++) {
      const r = await sessionCall(port, user, userSid, 'sleep', { ms: 'soon' });
      assert(r.json?.error?.code === -32602, `bad arguments: ${r.text}`);
    }
    for (let i = 0; i < 30; i++) {
      const r = await sessionCall(port, user, userSid, 'fault_throw', {});
      assert(r.json?.result?.isError === true && /internal error/.test(JSON.stringify(r.json.result.content)), `a throwing tool: ${r.text}`);
    }
    const a = await until('an error_rate alert', () => adminStream.alerts.find((n) => n.params.data?.rule === 'error_rate'), 5000);
    const [, failures, requests] = /\((\d+) failures in (\d+) requests/.exec(a.params.data.message) ?? [];
    assert(failures && requests, `the alert's counts: ${a.params.data.message}`);
    // Counted as failures, the bad arguments would have fired it before the
    // tool threw: with at most 3 other requests in the window.
    assert(Number(requests) - Number(failures) >= 30, `the 30 mistakes are requests, not failures: ${a.params.data.message}`);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert(/bulwark_errors_total\{[^}]*code="-32602"[^}]*class="caller"[^}]*\} 30\b/.test(text) ||
           /bulwark_errors_total\{[^}]*class="caller"[^}]*code="-32602"[^}]*\} 30\b/.test(text),
           `bad arguments counted as the caller's: ${text.split('\n').filter((l) => l.startsWith('bulwark_errors_total')).join('; ')}`);
    assert(/bulwark_errors_total\{[^}]*-32603[^}]*"server"[^}]*\} 30\b|bulwark_errors_total\{[^}]*"server"[^}]*-32603[^}]*\} 30\b/.test(text),
           'the tool\'s internal failures counted as the server\'s (-32603)');
    assert(/bulwark_requests_total\{[^}]*tool="fault_throw"[^}]*\} 30\b/.test(text), 'the failures carry the tool name');
    assert(/bulwark_requests_total\{(?=[^}]*tool="sleep")(?=[^}]*outcome="error")[^}]*\} 30\b/.test(text),
           `refused calls of a known tool carry its name: ${text.split('\n').filter((l) => l.startsWith('bulwark_requests_total')).join('; ')}`);
  });
  userStream.close();
  adminStream.close();
  await run.stop('server');

  await check('the webhook\'s header file is read again when it changes, without a reload', async () => {
    // A receiver that accepts every delivery and notes its Authorization.
    const seen = [];
    const accepting = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push(req.headers.authorization);
        res.writeHead(200).end();
      });
    });
    await new Promise((r) => accepting.listen(0, '127.0.0.1', r));
    try {
      const tokenFile = join(run.dir, 'webhook-token');
      writeFileSync(tokenFile, 'Bearer webhook-first\n');
      const path = join(run.dir, 'rotating.json');
      writeFileSync(path, JSON.stringify({
        http: { port: 0, address: '127.0.0.1' },
        health: { intervalMs: 100 },
        alerts: {
          rules: { p95_latency: { threshold: 0, cooldownSeconds: 1 } },
          webhook: { url: `http://127.0.0.1:${accepting.address().port}/alerts`, headers: { authorization: `\${file:${tokenFile}}` } },
        },
      }));
      const p2 = await run.startBulwark(['--config', path, '--fault-tools'], 'rotating');
      const sid = await openSession(p2, {});
      const slept = await sessionCall(p2, {}, sid, 'sleep', { ms: 20 });
      assert(slept.json?.result, `sleep: ${slept.text}`);
      await until('a delivery', () => seen.length > 0, 5000);
      assert(seen[0] === 'Bearer webhook-first', `the first delivery's header: ${seen[0]}`);
      writeFileSync(tokenFile, 'Bearer webhook-second-value\n');
      // The rule fires again each second; the file is looked at at most once a second.
      await until('a delivery with the new value', () => seen.includes('Bearer webhook-second-value'), 8000);
      const after = seen.slice(seen.indexOf('Bearer webhook-second-value'));
      assert(after.every((a) => a === 'Bearer webhook-second-value'), `the old value after the new one: ${after}`);
    } finally {
      accepting.close();
    }
  });
});
