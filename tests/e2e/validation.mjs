#!/usr/bin/env node
// End-to-end test of argument validation: a front `bulwark` with its
// built-in tools and a gateway service "fx" (a stdio `bulwark --fixtures
// --fault-tools` that counts executions).
//
//   node tests/e2e/validation.mjs --bulwark build/bulwark
//
// Checks: arguments that break a tool's input schema are refused with
// -32602 listing every failing field, in both eras, before the tool runs
// and before a gateway call is forwarded (the downstream never executes
// it); valid arguments pass; strings lose control characters; a server with
// `tools.validateArguments: false` lets the handler judge; every error
// carries a trace id that its log line carries too. Every process is
// killed by pid.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { assert, callTool, harness, scaled, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-validation-' });
const { bulwark, dir, check, startBulwark, logs } = run;
let port;

/// A 2025-era session: initialize, then calls with its session id.
async function session(p) {
  const post = async (body, sid) => {
    const res = await fetch(`http://127.0.0.1:${p}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
                 ...(sid ? { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(scaled(10_000)),
    });
    const text = await res.text();
    const ct = res.headers.get('content-type') ?? '';
    const msg = ct.startsWith('text/event-stream')
      ? JSON.parse(text.split('\n').filter((l) => l.startsWith('data:')).pop().slice(5))
      : text ? JSON.parse(text) : null;
    return { res, msg };
  };
  const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'validation', version: '1' } } });
  const sid = init.res.headers.get('mcp-session-id');
  await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, sid);
  let id = 1;
  return async (name, args) => (await post({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name, arguments: args } }, sid)).msg;
}

const fields = (r) => (r.error?.data?.errors ?? []).map((e) => e.path).sort();

await run.main(async () => {
  const cfg = join(dir, 'front.json');
  writeFileSync(cfg, JSON.stringify({
    http: { port: 0 },
    mcpServers: { fx: { command: bulwark, args: ['--stdio', '--no-http', '--fixtures', '--fault-tools', '--no-builtin-tools'] } },
    gateway: { prefix: 'never' },
  }));
  port = await startBulwark(['--config', cfg], 'front');
  await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200, 20_000);

  await check('arguments that break the schema get -32602 listing every failing field (2026-07-28)', async () => {
    const r = await callTool(port, 'add', { a: 'one' });
    assert(r.error?.code === -32602, JSON.stringify(r));
    assert(JSON.stringify(fields(r)) === JSON.stringify(['/a', '/b']), `fields: ${JSON.stringify(r.error.data)}`);
    assert(/invalid arguments for tool add/.test(r.error.message) && /\/a/.test(r.error.message) && /\/b/.test(r.error.message),
      `the message names the tool and the fields: ${r.error.message}`);
    assert(r.error.data.tool === 'add', 'the tool is named in data');
    const ok = await callTool(port, 'add', { a: 2, b: 3 });
    assert(ok.result?.structuredContent?.sum === 5, `valid arguments pass: ${JSON.stringify(ok)}`);
  });

  await check('the same in a 2025-era session', async () => {
    const call = await session(port);
    const r = await call('echo', { text: 7 });
    assert(r.error?.code === -32602 && JSON.stringify(fields(r)) === '["/text"]', JSON.stringify(r));
    const missing = await call('echo', {});
    assert(missing.error?.code === -32602 && JSON.stringify(fields(missing)) === '["/text"]', JSON.stringify(missing));
    const ok = await call('echo', { text: 'fine' });
    assert(ok.result?.content?.[0]?.text === 'fine', JSON.stringify(ok));
  });

  await check('a gateway call with bad arguments is refused before it is forwarded', async () => {
    const bad = await callTool(port, 'fault_count', { key: 'v1', hangMs: 'soon' });
    assert(bad.error?.code === -32602 && JSON.stringify(fields(bad)) === '["/hangMs"]', JSON.stringify(bad));
    const ok = await callTool(port, 'fault_count', { key: 'v1' });
    assert(ok.result?.structuredContent?.executions === 1, `the refused call never ran downstream: ${JSON.stringify(ok)}`);
    // The downstream's own schema features (a $ref, if/then/else) are checked too.
    const schemaTool = 'json_schema_2020_12_tool';
    const refused = await callTool(port, schemaTool, { name: 'x', contactMethod: 'phone', email: 'a@b.c' });
    assert(refused.error?.code === -32602 && fields(refused).includes('/phone'), `if/then: ${JSON.stringify(refused)}`);
    const extra = await callTool(port, schemaTool, { name: 'x', email: 'a@b.c', nickname: 'n' });
    assert(extra.error?.code === -32602 && fields(extra).includes('/nickname'), `additionalProperties: ${JSON.stringify(extra)}`);
    const accepted = await callTool(port, schemaTool, { name: 'x', email: 'a@b.c', address: { city: 'Paris' } });
    assert(accepted.result && !accepted.result.isError, `valid: ${JSON.stringify(accepted)}`);
  });

  await check('strings lose control characters', async () => {
    const r = await callTool(port, 'echo', { text: 'a\u0001b\u001bc\u007fd\te\nf' });
    assert(r.result?.content?.[0]?.text === 'abcd\te\nf', JSON.stringify(r));
  });

  await check('every error carries a trace id, and the log line of that error the same one', async () => {
    const traced = async (r) => {
      const trace = r.error?.data?.traceId;
      assert(typeof trace === 'string' && /^[0-9a-f]{32}$/.test(trace), `a trace id: ${JSON.stringify(r)}`);
      await until(`the log line of ${trace}`, async () =>
        logs.some((l) => l.includes('"msg":"error answered"') && l.includes(`"traceId":"${trace}"`)
          && l.includes(`"code":${r.error.code}`)));
      return trace;
    };
    const a = await traced(await callTool(port, 'add', { a: 'x', b: 1 }));
    const b = await traced(await callTool(port, 'no_such_tool', {}));
    // Errors the HTTP layer answers (an unknown session) are traced as well.
    const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
                 'mcp-session-id': 'f'.repeat(32), 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
    });
    const c = await traced(await res.json());
    assert(new Set([a, b, c]).size === 3, 'a fresh id per error');
  });

  await check('validation can be switched off: then the handler judges', async () => {
    const cfg2 = join(dir, 'off.json');
    writeFileSync(cfg2, JSON.stringify({ http: { port: 0 }, tools: { validateArguments: false } }));
    const p = await startBulwark(['--config', cfg2], 'off');
    const r = await callTool(p, 'add', { a: 'one', b: 2 });
    assert(r.error?.code === -32602 && r.error.message === 'arguments.a must be a number' && !r.error.data?.errors,
      `the handler's own answer: ${JSON.stringify(r)}`);
    await run.stop('off');
  });
});
