#!/usr/bin/env node
// End-to-end test of `errors.mode` ("production" by default, "development"
// with --dev), against the real binary over real HTTP.
//
//   node tests/e2e/errors.mjs --bulwark build/bulwark
//
// A front `bulwark` with the fault tools (`fault_throw` throws an exception
// naming a file path) and one HTTP service behind a proxy run by the test,
// which passes everything on to a fixtures server except tools/call, which
// it answers with HTTP 502 and a body full of internal details. Started once
// in each mode. Production: the client gets the typed error or an isError
// result with a trace id, and no exception text, path, service address or
// transport error; the log line with the same trace id has them. Development:
// the same answers carry them (`data.detail`, or the tool result's text).
// A deliberate tool error (`tool_error`) reads the same in both modes, and
// no response ever holds the downstream's body.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { assert, harness, modernRequest, openSession, request, sessionCall, startProxy, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-errors-', watchdogMs: 110_000 });
const { dir, check, startBulwark } = run;

const bodySecret = 'Traceback /srv/internal/handler.py line 42: db password rejected';
const pathSecret = '/var/lib/bulwark/internal/state.db';

const call = (port, name) => modernRequest(port, 'tools/call', { name, arguments: {} });
const textOf = (r) => r.json?.result?.content?.[0]?.text ?? '';

/// The log line `error answered` with `traceId` from the process `label`.
function logLine(label, traceId) {
  for (const l of run.logs) {
    if (!l.startsWith(`[${label}] `)) continue;
    try {
      const rec = JSON.parse(l.slice(label.length + 3));
      if (rec.msg === 'error answered' && rec.traceId === traceId) return rec;
    } catch {
      // not JSON
    }
  }
  return null;
}

await run.main(async () => {
  const fixtures = await startBulwark(['--fixtures', '--no-builtin-tools', '--port', '0'], 'fixtures');
  // tools/call gets HTTP 502 and a body of internal details; the rest passes.
  const proxy = await startProxy(fixtures, ({ body }) => {
    let method = '';
    try {
      method = JSON.parse(body).method;
    } catch {
      // not JSON: pass it on
    }
    return method === 'tools/call' ? { status: 502, body: bodySecret } : null;
  });
  const proxyAddress = `127.0.0.1:${proxy.port}`;
  const cfg = join(dir, 'errors.json');
  writeFileSync(cfg, JSON.stringify({
    http: { port: 0 },
    tools: { faultTools: true, conformanceFixtures: true, builtin: false },
    mcpServers: { web: { url: `http://${proxyAddress}/mcp` } },
    services: { web: { retry: { attempts: 1 } } },
    gateway: { prefix: 'always', separator: '__' },
  }));

  try {
    for (const mode of ['production', 'development']) {
      const label = `front-${mode}`;
      const port = await startBulwark(['--config', cfg, ...(mode === 'development' ? ['--dev'] : [])], label);
      await until('ready', async () => (await request(port, 'GET', { path: '/ready' })).status === 200, 20_000);
      const dev = mode === 'development';

      await check(`${mode}: a tool that throws`, async () => {
        const r = await call(port, 'fault_throw');
        assert(r.status === 200 && r.json?.result?.isError === true, `isError result: ${r.text}`);
        const trace = /trace id ([0-9a-f]{32})/.exec(textOf(r))?.[1];
        assert(trace, `a trace id in the text: ${textOf(r)}`);
        assert(/internal error/.test(textOf(r)), textOf(r));
        assert(r.text.includes(pathSecret) === dev, `the exception text ${dev ? 'shown' : 'hidden'}: ${r.text}`);
        // The log line comes on stderr, a moment after the answer.
        const line = await until('the log line', () => logLine(label, trace), 3000);
        assert(line.detail?.includes(pathSecret) && line.code === -32603, `the log line has the detail: ${JSON.stringify(line)}`);
        // It names the call: method, tool, caller, address and duration.
        assert(line.method === 'tools/call' && line.tool === 'fault_throw' && line.identity === 'anonymous'
               && /^127\.0\.0\.1:\d+$/.test(line.remote) && Number.isInteger(line.durationUs) && line.durationUs >= 0
               && !('session' in line), `the call's context: ${JSON.stringify(line)}`);
        // A 2025-era session's error names the session.
        const sid = await openSession(port, {});
        const inSession = await sessionCall(port, {}, sid, 'fault_throw', {});
        const sessionTrace = /trace id ([0-9a-f]{32})/.exec(JSON.stringify(inSession.json))?.[1];
        assert(sessionTrace, `a trace id: ${inSession.text}`);
        const sessionLine = await until('the session call\'s log line', () => logLine(label, sessionTrace), 3000);
        assert(sessionLine.session === sid && sessionLine.tool === 'fault_throw', `the session named: ${JSON.stringify(sessionLine)}`);
      });

      await check(`${mode}: a service that answers HTTP 502 with an error body`, async () => {
        const r = await call(port, 'web__test_simple_text');
        const err = r.json?.error;
        assert(err && typeof err.data?.traceId === 'string', `a typed error with a trace id: ${r.text}`);
        assert(/service web/.test(err.message) && /HTTP 502/.test(err.message), `a summary: ${err.message}`);
        assert(!r.text.includes(bodySecret) && !r.text.includes('/srv/internal'), "the service's body never reaches the client");
        assert(!err.message.includes(proxyAddress), `no address in the message: ${err.message}`);
        if (dev) assert(err.data.detail?.includes('HTTP status 502'), `data.detail in development: ${r.text}`);
        else assert(!('detail' in err.data), `no data.detail in production: ${r.text}`);
        const line = await until('the log line', () => logLine(label, err.data.traceId), 3000);
        assert(line.detail?.includes('HTTP status 502'), `the log line has the detail: ${JSON.stringify(line)}`);
        assert(line.service === 'web' && line.tool === 'web__test_simple_text' && line.method === 'tools/call',
               `the log line names the service and the tool: ${JSON.stringify(line)}`);
      });

      await check(`${mode}: a deliberate tool error (tool_error) reads the same`, async () => {
        const r = await call(port, 'test_error_handling');
        assert(r.json?.result?.isError === true && textOf(r) === 'This tool intentionally returns an error for testing',
               `the tool's own message: ${r.text}`);
      });

      await run.stop(label);
    }
  } finally {
    proxy.shut();
  }
});
