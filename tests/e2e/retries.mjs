#!/usr/bin/env node
// End-to-end test of the gateway's retries: a front `bulwark` in front of a
// Streamable HTTP MCP service run by this script, which counts every
// execution of each tool and fails the first one of each with HTTP 503
// (after the request reached it, so it may have acted).
//
//   node tests/e2e/retries.mjs --bulwark build/bulwark
//
// Checks: a tool with `idempotentHint: true` whose first attempt fails is
// executed twice downstream and answered once, with the second attempt's
// result; so is a tool named in the service's `idempotentTools`; a tool
// that is not idempotent is executed once and answered with the typed error
// that says it was not retried. Every process is killed by pid.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert, harness, jsonRpcServer, openSession, request, scaled, sleep } from './harness.mjs';

const run = harness({ scratch: 'bulwark-retries-', watchdogMs: 60_000, onFinish: () => service.close() });
const { check } = run;

// -- the service -------------------------------------------------------------------

/// tool name -> how many tools/call requests for it reached the service.
const executions = {};
const tools = [
  { name: 'idem', description: 'Idempotent by annotation.', inputSchema: { type: 'object' }, annotations: { idempotentHint: true } },
  { name: 'configured', description: 'Idempotent by configuration.', inputSchema: { type: 'object' } },
  { name: 'once', description: 'Not idempotent.', inputSchema: { type: 'object' }, annotations: { idempotentHint: false } },
];

const service = jsonRpcServer((req, msg, res, answer) => {
  if (msg.id === undefined) return res.writeHead(202).end(); // a notification
  switch (msg.method) {
    case 'initialize':
      return answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'counting', version: '1' } });
    case 'tools/list':
      return answer({ tools });
    case 'tools/call': {
      const name = msg.params?.name;
      const n = (executions[name] = (executions[name] ?? 0) + 1);
      // The first execution of each tool fails after it reached us.
      if (n === 1) return res.writeHead(503, { 'content-type': 'text/plain' }).end('overloaded');
      return answer({ content: [{ type: 'text', text: `${name} ran ${n}` }] });
    }
    default:
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'method not found' } }));
  }
});

/// A 2025-era session's tools/call; resolves with every JSON-RPC message of
/// the answer (one for a JSON body, each event's data for an SSE one).
async function callAll(port, sid, name, status = 200) {
  const r = await request(port, 'POST', {
    body: { jsonrpc: '2.0', id: 77, method: 'tools/call', params: { name, arguments: {} } },
    headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
  });
  assert(r.status === status, `HTTP ${r.status}: ${r.text}`);
  if ((r.headers.get('content-type') ?? '').startsWith('text/event-stream'))
    return r.text.split('\n').filter((l) => l.startsWith('data:') && l.slice(5).trim()).map((l) => JSON.parse(l.slice(5)));
  return [JSON.parse(r.text)];
}

await run.main(async () => {
  await new Promise((r) => service.listen(0, '127.0.0.1', r));
  const cfgPath = join(run.dir, 'front.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    mcpServers: { counting: { url: `http://127.0.0.1:${service.address().port}/mcp` } },
    services: {
      counting: {
        protocol: '2025-11-25',
        timeoutMs: scaled(5000),
        retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100, jitter: 0 },
        breaker: { consecutiveFailures: 100 },
        idempotentTools: ['configured'],
      },
    },
    gateway: { prefix: 'never' },
  }));
  const port = await run.startBulwark(['--config', cfgPath, '--no-builtin-tools'], 'front');
  const sid = await openSession(port, {});
  // The gateway knows the service's tools (and their annotations) once it lists them.
  const end = Date.now() + scaled(10_000);
  for (;;) {
    const l = await request(port, 'POST', {
      body: { jsonrpc: '2.0', id: 5, method: 'tools/list', params: {} },
      headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    });
    const listed = new Set((l.json?.result?.tools ?? []).map((t) => t.name));
    if (tools.every((t) => listed.has(t.name))) break;
    assert(Date.now() < end, `the service's tools were not listed: ${l.text}`);
    await sleep(50);
  }

  for (const [name, why] of [['idem', 'idempotentHint'], ['configured', 'idempotentTools']]) {
    await check(`an idempotent tool (${why}) whose first attempt fails runs twice downstream and is answered once`, async () => {
      const messages = await callAll(port, sid, name);
      const answers = messages.filter((m) => m.id === 77);
      assert(answers.length === 1, `one answer: ${JSON.stringify(messages)}`);
      assert(answers[0].result?.content?.[0]?.text === `${name} ran 2`, `the second attempt's result: ${JSON.stringify(answers[0])}`);
      await sleep(scaled(300)); // a third attempt would have come by now
      assert(executions[name] === 2, `executed twice downstream, got ${executions[name]}`);
    });
  }

  await check('a non-idempotent tool whose attempt failed runs once and is answered with the typed error', async () => {
    // 502, not 503: the service was reached, so the call may have had its
    // effect, and nothing may take the answer for a refusal to resend.
    const messages = await callAll(port, sid, 'once', 502);
    const answers = messages.filter((m) => m.id === 77);
    assert(answers.length === 1, `one answer: ${JSON.stringify(messages)}`);
    const e = answers[0].error;
    assert(e?.code === -32005, `SERVICE_UNAVAILABLE (-32005): ${JSON.stringify(answers[0])}`);
    assert(e.data?.retried === false && /not idempotent/.test(e.data?.why ?? ''), `says it was not retried: ${JSON.stringify(e)}`);
    await sleep(scaled(300)); // a retry would have come by now
    assert(executions.once === 1, `executed once downstream, got ${executions.once}`);
  });
});
