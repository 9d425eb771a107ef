#!/usr/bin/env node
// End-to-end test of graceful shutdown.
//
//   node tests/e2e/shutdown.mjs --bulwark build/bulwark
//
// SIGTERM: the listener stays open and /ready answers 503; a new request,
// on an open connection or a new one, gets 503 with -32007, its own id and
// Retry-After; a call in flight finishes with its result, and the process
// exits 0. With shutdown.readyGraceMs, /ready fails first while calls are
// still served. A call that outlasts the drain deadline is answered with
// -32007 and the process still exits 0. A second signal exits at once.
// Every process is killed by pid.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { assert, callTool, harness, readEvents, request, scaled, sleep, timeScale, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-shutdown-' });
const { bulwark, dir } = run;
const { check, startBulwark, logs } = run;

const cfgPath = join(dir, 'server.json');
writeFileSync(cfgPath, JSON.stringify({ http: { port: 0 }, shutdown: { drainSeconds: 2 * timeScale } }));

// fault_count writes a line here when it starts running (before it hangs):
// a signal is sent only once the call it must find in flight runs.
const executions = join(dir, 'executions.log');
const env = { BULWARK_EXECUTION_LOG: executions };
const running = (key) => until(`the call "${key}" running`,
  () => existsSync(executions) && readFileSync(executions, 'utf8').includes(`"key":"${key}"`), 20_000);

async function server(label) {
  const port = await startBulwark(['--config', cfgPath, '--fault-tools'], label, env);
  const child = run.started[label];
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal, at: Date.now() })));
  return { port, child, exited };
}

/// Opens a keep-alive connection now; `send` later writes one request on it
/// and resolves with the status line's code and the body.
function openConnection(port) {
  return new Promise((resolveOpen, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      resolveOpen({
        send(body) {
          return new Promise((resolveSend) => {
            let buf = '';
            sock.on('data', (d) => {
              buf += d.toString();
              const end = buf.indexOf('\r\n\r\n');
              if (end < 0) return;
              const len = Number((buf.slice(0, end).match(/content-length:\s*(\d+)/i) || [])[1] || 0);
              if (buf.length - end - 4 >= len) resolveSend({ status: Number(buf.split(' ')[1]), body: buf.slice(end + 4, end + 4 + len) });
            });
            sock.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n`
              + `Accept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
          });
        },
        close: () => sock.destroy(),
      });
    });
    sock.on('error', reject);
  });
}

function connects(port) {
  return new Promise((r) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.destroy();
      r(true);
    });
    sock.on('error', () => r(false));
  });
}

await run.main(async () => {
  await check('SIGTERM lets a call in flight finish, refuses new work, and exits 0', async () => {
    const s = await server('a');
    const open = await openConnection(s.port);
    const inflight = callTool(s.port, 'fault_count', { key: 'drain', hangMs: scaled(800) });
    await running('drain');
    const t0 = Date.now();
    process.kill(s.child.pid, 'SIGTERM');
    await sleep(scaled(150));
    // The listener stays open so that a balancer's health check sees the
    // drain; MCP requests are refused unserved, with their own id.
    assert(await connects(s.port), 'the listener stays open while draining');
    const ready = await request(s.port, 'GET', { path: '/ready' });
    assert(ready.status === 503 && ready.json?.ready === false, `/ready while draining: ${ready.status} ${ready.text}`);
    const late = await open.send(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }));
    const lateBody = JSON.parse(late.body);
    assert(late.status === 503 && lateBody.error.code === -32007 && lateBody.id === 9,
           `a late request on an open connection: ${JSON.stringify(late)}`);
    const fresh = await request(s.port, 'POST', { body: { jsonrpc: '2.0', id: 'late-1', method: 'ping' } });
    assert(fresh.status === 503 && fresh.json?.error?.code === -32007 && fresh.json?.id === 'late-1'
           && fresh.headers.get('retry-after') === '1',
           `a request on a new connection: ${fresh.status} retry-after=${fresh.headers.get('retry-after')} ${fresh.text}`);
    open.close();
    const r = await inflight;
    assert(r.result?.structuredContent?.executions === 1, `the call in flight finished: ${JSON.stringify(r)}`);
    const e = await s.exited;
    assert(e.code === 0, `exit code ${e.code} (signal ${e.signal})`);
    assert(e.at - t0 < scaled(1500), `it exits once the call is done, not at the deadline: ${e.at - t0} ms`);
  });

  await check('a call past the drain deadline is answered with -32007 and the process exits 0', async () => {
    const s = await server('b');
    // Hanging well past the drain deadline.
    const hung = callTool(s.port, 'fault_count', { key: 'past-deadline', hangMs: scaled(60_000) });
    await running('past-deadline');
    const t0 = Date.now();
    process.kill(s.child.pid, 'SIGTERM');
    const r = await hung;
    assert(r.error?.code === -32007, `answered with shutting_down: ${JSON.stringify(r)}`);
    const e = await s.exited;
    assert(e.code === 0, `exit code ${e.code}`);
    assert(e.at - t0 >= scaled(1800) && e.at - t0 < scaled(5000), `it waited for the ${2 * timeScale} s deadline: ${e.at - t0} ms`);
    assert(logs.some((l) => l.startsWith('[b]') && l.includes('"msg":"draining"')), 'draining is logged');
    assert(logs.some((l) => l.startsWith('[b]') && l.includes('"unfinished_calls":1')), 'the unfinished call is logged');
  });

  await check('with readyGraceMs, /ready fails at once while calls are still served, then the drain refuses', async () => {
    const graceCfg = join(dir, 'grace.json');
    writeFileSync(graceCfg, JSON.stringify({ http: { port: 0 }, shutdown: { drainSeconds: 2 * timeScale, readyGraceMs: scaled(1000) } }));
    const port = await startBulwark(['--config', graceCfg, '--fault-tools'], 'g', env);
    const child = run.started.g;
    const exited = new Promise((r) => child.once('exit', (code) => r(code)));
    const inflight = callTool(port, 'fault_count', { key: 'grace', hangMs: scaled(1600) });
    await running('grace');
    process.kill(child.pid, 'SIGTERM');
    await sleep(scaled(200));
    const ready = await request(port, 'GET', { path: '/ready' });
    assert(ready.status === 503, `/ready during the grace: ${ready.status}`);
    const served = await callTool(port, 'fault_count', { key: 'during-grace' });
    assert(served.result?.structuredContent?.executions === 1, `a call during the grace is served: ${JSON.stringify(served)}`);
    await sleep(scaled(1000));
    const refused = await request(port, 'POST', { body: { jsonrpc: '2.0', id: 77, method: 'ping' } });
    assert(refused.status === 503 && refused.json?.id === 77, `after the grace: ${refused.status} ${refused.text}`);
    const r = await inflight;
    assert(r.result?.structuredContent?.executions === 1, `the call in flight finished: ${JSON.stringify(r)}`);
    assert((await exited) === 0, 'exit code 0');
  });

  await check('SIGTERM ends a subscriptions/listen stream with its completion result, then closes it', async () => {
    const s = await server('l');
    const ac = new AbortController();
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
    const res = await fetch(`http://127.0.0.1:${s.port}/mcp`, {
      method: 'POST', signal: ac.signal,
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
                 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'subscriptions/listen' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'sub-1', method: 'subscriptions/listen',
                             params: { _meta: meta, notifications: { toolsListChanged: true } } }),
    });
    const messages = [];
    readEvents(res, (m) => messages.push(m));
    try {
      await until('the acknowledgement', () => messages.some((m) => m.method === 'notifications/subscriptions/acknowledged'), 3000);
      process.kill(s.child.pid, 'SIGTERM');
      const done = await until('the completion result', () => messages.find((m) => m.id === 'sub-1'), 5000);
      assert(done.result?.resultType === 'complete' && done.result._meta?.['io.modelcontextprotocol/subscriptionId'] === 'sub-1',
             `the completion: ${JSON.stringify(done)}`);
      assert((await s.exited).code === 0, 'exit code 0');
    } finally {
      ac.abort();
    }
  });

  await check('a second signal exits at once', async () => {
    const s = await server('c');
    callTool(s.port, 'fault_count', { key: 'second-signal', hangMs: scaled(60_000) }).catch(() => {});
    await running('second-signal');
    process.kill(s.child.pid, 'SIGTERM');
    await sleep(scaled(100));
    const t0 = Date.now();
    process.kill(s.child.pid, 'SIGTERM');
    const e = await s.exited;
    assert(e.code === 1, `exit code ${e.code}`);
    assert(e.at - t0 < scaled(500), `at once: ${e.at - t0} ms`);
  });
});
