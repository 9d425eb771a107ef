#!/usr/bin/env node
// End-to-end test of embedding: the example host program (examples/host),
// built against the installed Bulwark package, serves tools answered by its
// own inventory actor. The official TypeScript SDK client calls them; the
// host's actor is killed (SIGUSR1) and restarted (SIGUSR2) to show the
// typed errors, the breaker failing fast, half-opening and closing again;
// SIGTERM stops Bulwark while the host's actor keeps running.
//
//   node tests/e2e/embed.mjs --host build/embed/host/host
//
// Every wait is bounded; the host is killed by its pid whatever happens.

import { resolve } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

import { assert, harness, rpcError, scaled, sleep, until } from './harness.mjs';

const argv = process.argv.slice(2);
const hostPath = resolve(argv[argv.indexOf('--host') + 1] ?? '');
const run = harness({ bulwark: hostPath, scratch: 'bulwark-embed-', watchdogMs: 90_000, startedLine: null });
const { check, logs } = run;

const REQUEST_TIMEOUT_MS = scaled(10_000);
const reqOpts = { timeout: REQUEST_TIMEOUT_MS };
// What the host configures for each tool's breaker.
const FAILURES_TO_OPEN = 3;
const OPEN_SECONDS = 2;
// The codes of messages/errors.hpp.
const SERVICE_UNAVAILABLE = -32005;

/// Host log records (parsed) whose msg is `msg`.
const records = (msg) =>
  logs
    .map((l) => l.replace(/^\[host\] /, ''))
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    })
    .filter((r) => r.msg === msg);

/// Calls `name` and expects a JSON-RPC error; resolves with the McpError.
async function callFails(client, name, args) {
  try {
    const result = await client.callTool({ name, arguments: args }, undefined, reqOpts);
    throw new Error(`${name} answered instead of failing: ${JSON.stringify(result)}`);
  } catch (err) {
    // An error that is the whole HTTP answer comes with its status (503
    // for -32005), which the SDK reports as an HTTP error around it.
    const e = rpcError(err);
    if (!(e instanceof McpError) && e.httpStatus === undefined) throw err;
    return e;
  }
}

async function metrics(port) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(scaled(5000)) });
  return res.text();
}

run.main(async () => {
  const port = await run.startBulwark(['--port', '0'], 'host');
  const host = run.started.host;
  const exited = new Promise((r) => host.once('exit', (code, signal) => r({ code, signal })));

  const client = new Client({ name: 'bulwark-embed-e2e', version: '1.0.0' }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`));
  await client.connect(transport, reqOpts);

  await check('tools/list shows the actor-backed tools stock and reserve', async () => {
    const { tools } = await client.listTools(undefined, reqOpts);
    const byName = new Map(tools.map((t) => [t.name, t]));
    assert(byName.has('stock') && byName.has('reserve'), `tools: ${[...byName.keys()].join(', ')}`);
    assert(byName.get('stock').annotations?.readOnlyHint === true, 'stock is not marked read-only');
    const required = byName.get('reserve').inputSchema?.required ?? [];
    assert(required.includes('item') && required.includes('quantity'), `reserve requires ${required}`);
  });

  await check('reserve is answered by the host actor, which keeps its stock', async () => {
    const r = await client.callTool({ name: 'reserve', arguments: { item: 'widget', quantity: 3 } }, undefined, reqOpts);
    assert(!r.isError, `isError: ${JSON.stringify(r)}`);
    const s = r.structuredContent;
    assert(s?.item === 'widget' && s.reserved === 3 && s.available === 7 && s.incarnation === 1,
      `structuredContent: ${JSON.stringify(s)}`);
    const stock = await client.callTool({ name: 'stock', arguments: { item: 'widget' } }, undefined, reqOpts);
    assert(stock.structuredContent?.available === 7, `stock after reserve: ${JSON.stringify(stock)}`);
  });

  await check("the actor's own refusal reaches the client as a tool error", async () => {
    const r = await client.callTool({ name: 'reserve', arguments: { item: 'widget', quantity: 50 } }, undefined, reqOpts);
    assert(r.isError === true, `not isError: ${JSON.stringify(r)}`);
    assert(r.content?.[0]?.text === 'only 7 widget left', `text: ${JSON.stringify(r.content)}`);
  });

  // -- the host kills its actor --------------------------------------------------

  process.kill(host.pid, 'SIGUSR1');
  await until('the host to kill its actor', () => records('inventory actor killed').some((r) => r.gone), 8000);
  let openedAt = 0;
  let openFor = 0;

  await check(`calls fail with -32005 actor_down until the breaker opens after ${FAILURES_TO_OPEN}`, async () => {
    for (let i = 1; i <= FAILURES_TO_OPEN; i++) {
      const err = await callFails(client, 'stock', {});
      const d = err.data ?? {};
      assert(err.code === SERVICE_UNAVAILABLE && err.httpStatus === 503, `call ${i}: code ${err.code} (HTTP ${err.httpStatus}): ${err.message}`);
      assert(err.message.includes('the actor of tool stock is down'), `call ${i}: message ${err.message}`);
      assert(d.tool === 'stock' && d.reason === 'actor_down', `call ${i}: data ${JSON.stringify(d)}`);
      assert(typeof d.retry_after_seconds === 'number' && d.retry_after_seconds > 0, `call ${i}: retry_after ${d.retry_after_seconds}`);
      const last = i === FAILURES_TO_OPEN;
      assert(d.breaker === (last ? 'open' : 'closed'), `call ${i}: breaker ${d.breaker}`);
      if (last) {
        assert(d.retry_after_seconds === OPEN_SECONDS, `retry_after ${d.retry_after_seconds} on opening`);
        openedAt = Date.now();
        openFor = d.retry_after_seconds;
      }
    }
    const opened = records('breaker transition').filter((r) => r.tool === 'stock' && r.to === 'open');
    assert(opened.length === 1, `breaker transitions to open: ${JSON.stringify(opened)}`);
  });

  await check('while open the breaker fails fast without asking the actor', async () => {
    const started = Date.now();
    const err = await callFails(client, 'stock', {});
    const took = Date.now() - started;
    const d = err.data ?? {};
    assert(err.code === SERVICE_UNAVAILABLE, `code ${err.code}: ${err.message}`);
    assert(d.reason === 'breaker_open' && d.breaker === 'open', `data ${JSON.stringify(d)}`);
    assert(err.message.includes('circuit breaker is open'), `message ${err.message}`);
    assert(d.retry_after_seconds > 0 && d.retry_after_seconds <= OPEN_SECONDS, `retry_after ${d.retry_after_seconds}`);
    assert(took < scaled(1000), `the fast failure took ${took} ms`);
    const text = await metrics(port);
    assert(/bulwark_actor_tool_breaker_state\{tool="stock"\} 1\b/.test(text), 'metrics: stock breaker not open');
    assert(/bulwark_actor_tool_failures_total\{reason="breaker_open",tool="stock"\} [1-9]/.test(text),
      'metrics: no breaker_open failure counted');
    assert(/bulwark_actor_tool_failures_total\{reason="actor_down",tool="stock"\} 3\b/.test(text),
      'metrics: actor_down failures not 3');
  });

  await check('each tool has its own breaker: reserve still asks the (dead) actor', async () => {
    const err = await callFails(client, 'reserve', { item: 'widget', quantity: 1 });
    assert(err.code === SERVICE_UNAVAILABLE, `code ${err.code}`);
    assert(err.data?.reason === 'actor_down' && err.data?.breaker === 'closed', `data ${JSON.stringify(err.data)}`);
  });

  // -- the host starts a new actor ---------------------------------------------------

  process.kill(host.pid, 'SIGUSR2');
  await until('the new inventory actor', () => records('inventory actor started').some((r) => r.incarnation === 2), 5000);

  await check('after the open duration a probe half-opens the breaker and closes it', async () => {
    // Still open until the open duration has passed (when the machine was quick enough to tell).
    if (Date.now() - openedAt < (openFor * 1000) / 2) {
      const err = await callFails(client, 'stock', {});
      assert(err.data?.reason === 'breaker_open', `before the open duration: ${JSON.stringify(err.data)}`);
    }
    await sleep(Math.max(0, openedAt + openFor * 1000 + 100 - Date.now()));
    const r = await client.callTool({ name: 'stock', arguments: {} }, undefined, reqOpts);
    assert(!r.isError, `isError: ${JSON.stringify(r)}`);
    const s = r.structuredContent;
    assert(s?.incarnation === 2 && s.available?.widget === 10 && s.available?.gadget === 4,
      `the new actor's stock: ${JSON.stringify(s)}`);
    const moves = records('breaker transition').filter((x) => x.tool === 'stock').map((x) => `${x.from}>${x.to}`);
    assert(moves.join(' ') === 'closed>open open>half_open half_open>closed', `transitions: ${moves.join(' ')}`);
    const text = await metrics(port);
    assert(/bulwark_actor_tool_breaker_state\{tool="stock"\} 0\b/.test(text), 'metrics: stock breaker not closed');
  });

  await check('the tools work again against the new actor', async () => {
    const r = await client.callTool({ name: 'reserve', arguments: { item: 'gadget', quantity: 1 } }, undefined, reqOpts);
    assert(r.structuredContent?.available === 3 && r.structuredContent?.incarnation === 2,
      `reserve: ${JSON.stringify(r.structuredContent)}`);
  });

  await check('/health of the embedded runtime answers', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(scaled(5000)) });
    const body = await res.json();
    assert(res.status === 200 && ['healthy', 'degraded', 'starting'].includes(body.status), `health: ${JSON.stringify(body)}`);
  });

  await Promise.race([client.close(), sleep(5000)]);

  // -- SIGTERM: Bulwark stops, the host's actor system does not ------------------------

  await check('SIGTERM stops Bulwark, the host actor outlives it, exit 0', async () => {
    process.kill(host.pid, 'SIGTERM');
    const end = await Promise.race([exited, sleep(15_000).then(() => null)]);
    assert(end, 'the host did not exit within 15 s');
    assert(end.code === 0 && end.signal === null, `exit ${JSON.stringify(end)}`);
    const health = records('bulwark health at stop');
    assert(health.length === 1 && typeof health[0].status === 'string', `health log: ${JSON.stringify(health)}`);
    const stopped = logs.findIndex((l) => l.includes('"msg":"bulwark stopped"'));
    const reporting = logs.findIndex((l) => l.includes('"msg":"inventory actor reporting"'));
    assert(stopped >= 0, 'no "bulwark stopped" line');
    assert(reporting > stopped, 'the host actor did not answer after Bulwark stopped');
    const after = records('inventory actor still running after bulwark stopped');
    assert(after.length === 1, 'no report from the host actor after the stop');
    const report = after[0].report;
    assert(report.incarnation === 2 && report.calls >= 2 && report.available.gadget === 3,
      `report: ${JSON.stringify(report)}`);
  });
});
