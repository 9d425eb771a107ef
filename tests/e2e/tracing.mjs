#!/usr/bin/env node
// End-to-end test of traces and the access log. An OTLP/HTTP receiver run
// by this script collects the spans of three Bulwarks: a front gateway in
// front of (1) a Streamable HTTP service run by this script whose first
// execution of each tool fails with HTTP 503, (2) a Bulwark over HTTP
// spoken to in the 2026-07-28 era, and (3) a Bulwark over stdio.
//
//   node tests/e2e/tracing.mjs --bulwark build/bulwark
//
// Checks: every export is OTLP/JSON of the right shape; a gateway call with
// one retry is one trace under the caller's span (request -> gateway
// handler -> queue wait and one span per attempt -> one client span per
// exchange), and each attempt reaches the service with a `traceparent`
// (header and `_meta`) naming its exchange span; the trace goes on, with
// its tracestate, inside the Bulwarks behind the gateway over HTTP and over
// stdio; an error's `data.traceId` is the caller's trace id and so is its
// log line's; a request without a trace starts one; an unsampled trace is
// passed on unsampled and exported nowhere. The access log has one line per
// request with the fields operators need (retries, cache, bytes, status),
// writes errors even when successes are sampled out, and per-service cache
// and per-tool latency metrics count. A collector that is down, or that
// holds every export for seconds, costs no failed call: its spans are
// dropped and counted. The exporter's header, a file reference, is read
// again when the file changes. Every process is killed by pid.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert, callTool, freePort, harness, openSession, request, scaled, sleep, until } from './harness.mjs';

const servers = [];
const run = harness({ scratch: 'bulwark-tracing-', watchdogMs: 150_000, onFinish: () => servers.forEach((s) => s.close()) });
const { check } = run;

const hex = (bytes) => randomBytes(bytes).toString('hex');

// -- the OTLP receiver ------------------------------------------------------------

/// Every span received: the OTLP span plus `service` (its resource's
/// service.name) and `auth` (the export's Authorization header).
const spans = [];
/// What was wrong with the shape of an export.
const shapeErrors = [];
const attrValueKeys = new Set(['stringValue', 'intValue', 'boolValue', 'doubleValue']);

function checkShape(req, body) {
  const bad = (why) => shapeErrors.push(why);
  if (req.url !== '/v1/traces') bad(`POST to ${req.url}`);
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) bad(`content-type ${req.headers['content-type']}`);
  if (!Array.isArray(body.resourceSpans)) return bad('no resourceSpans array');
  for (const rs of body.resourceSpans) {
    const attrs = rs.resource?.attributes;
    if (!Array.isArray(attrs)) bad('resource without attributes');
    for (const ss of rs.scopeSpans ?? []) {
      if (typeof ss.scope?.name !== 'string') bad('scope without a name');
      for (const s of ss.spans ?? []) {
        if (!/^[0-9a-f]{32}$/.test(s.traceId)) bad(`traceId ${s.traceId}`);
        if (!/^[0-9a-f]{16}$/.test(s.spanId)) bad(`spanId ${s.spanId}`);
        if (s.parentSpanId !== undefined && !/^[0-9a-f]{16}$/.test(s.parentSpanId)) bad(`parentSpanId ${s.parentSpanId}`);
        if (typeof s.name !== 'string' || !s.name) bad('a span without a name');
        if (![1, 2, 3, 4, 5].includes(s.kind)) bad(`kind ${s.kind}`);
        for (const t of ['startTimeUnixNano', 'endTimeUnixNano'])
          if (typeof s[t] !== 'string' || !/^\d{19}$/.test(s[t])) bad(`${t} ${s[t]}`);
        if (BigInt(s.endTimeUnixNano ?? 0) < BigInt(s.startTimeUnixNano ?? 0)) bad(`${s.name} ends before it starts`);
        if (!Array.isArray(s.attributes)) bad(`${s.name}: attributes`);
        for (const a of s.attributes ?? []) {
          const keys = Object.keys(a.value ?? {});
          if (typeof a.key !== 'string' || keys.length !== 1 || !attrValueKeys.has(keys[0])) bad(`attribute ${JSON.stringify(a)}`);
          if (keys[0] === 'intValue' && !/^-?\d+$/.test(a.value.intValue)) bad(`intValue ${a.value.intValue}`);
        }
        if (![0, 1, 2].includes(s.status?.code)) bad(`status ${JSON.stringify(s.status)}`);
      }
    }
  }
}

/// A collector; `hold` ms before each answer (0: at once).
function collector(hold = 0) {
  const c = { exports: 0, holding: 0 };
  c.server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', async () => {
      c.exports++;
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        shapeErrors.push('an export that is not JSON');
        return res.writeHead(400).end();
      }
      checkShape(req, body);
      for (const rs of body.resourceSpans ?? []) {
        const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value?.stringValue;
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? []) spans.push({ ...s, service, auth: req.headers.authorization });
      }
      if (hold) {
        c.holding++;
        await sleep(hold);
        c.holding--;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  servers.push(c.server);
  return c;
}

const of = (trace, service) => spans.filter((s) => s.traceId === trace && (!service || s.service === service));
const attr = (s, key) => {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  return v && Object.values(v)[0];
};

// -- the flaky service (fails the first execution of each tool) --------------------

/// Each tools/call that reached it: the traceparent of its header and of its _meta.
const flakyCalls = [];
let flakyExecutions = 0;
const flaky = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST') return res.writeHead(405, { allow: 'POST' }).end();
    const msg = JSON.parse(Buffer.concat(chunks).toString());
    if (msg.id === undefined) return res.writeHead(202).end();
    const answer = (result) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    switch (msg.method) {
      case 'initialize':
        return answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'flaky', version: '1' } });
      case 'tools/list':
        return answer({ tools: [{ name: 'idem', inputSchema: { type: 'object' }, annotations: { idempotentHint: true } }] });
      case 'tools/call': {
        flakyCalls.push({ header: req.headers.traceparent, meta: msg.params?._meta?.traceparent, state: req.headers.tracestate });
        if (++flakyExecutions % 2 === 1) return res.writeHead(503, { 'content-type': 'text/plain' }).end('overloaded');
        return answer({ content: [{ type: 'text', text: `ran ${flakyExecutions}` }] });
      }
      default:
        return res.writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'method not found' } }));
    }
  });
});
servers.push(flaky);

const metricValue = async (port, pattern) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => pattern.test(l));
  return line ? Number(line.split(' ').pop()) : 0;
};

await run.main(async () => {
  const main = collector();
  await new Promise((r) => main.server.listen(0, '127.0.0.1', r));
  await new Promise((r) => flaky.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${main.server.address().port}`;
  const telemetry = (serviceName) => ({ otlp: { endpoint, intervalMs: 50 }, serviceName });

  // The Bulwarks behind the gateway.
  const backPath = join(run.dir, 'back.json');
  writeFileSync(backPath, JSON.stringify({ http: { port: 0, address: '127.0.0.1' }, telemetry: telemetry('back') }));
  const backPort = await run.startBulwark(['--config', backPath], 'back');
  const stdioPath = join(run.dir, 'stdio.json');
  writeFileSync(stdioPath, JSON.stringify({ telemetry: telemetry('back-stdio') }));

  // The front's exports carry a credential from a file that rotates.
  const otlpToken = join(run.dir, 'otlp-token');
  writeFileSync(otlpToken, 'Bearer otlp-first\n');
  const accessPath = join(run.dir, 'access.log');
  const frontPath = join(run.dir, 'front.json');
  writeFileSync(frontPath, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    mcpServers: {
      flaky: { url: `http://127.0.0.1:${flaky.address().port}/mcp` },
      back: { url: `http://127.0.0.1:${backPort}/mcp` },
      kid: { command: run.bulwark, args: ['--config', stdioPath, '--stdio', '--no-http', '--fixtures', '--no-builtin-tools', '--log-level', 'warning'] },
    },
    services: {
      flaky: { protocol: '2025-11-25', timeoutMs: scaled(5000), retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 100, jitter: 0 },
               breaker: { consecutiveFailures: 100 } },
      back: { protocol: '2026-07-28', cache: { ttlMs: 60000, tools: ['add'] } },
    },
    gateway: { prefix: 'never' },
    telemetry: { ...telemetry('front'), otlp: { endpoint, intervalMs: 50, headers: { authorization: `\${file:${otlpToken}}` } } },
    log: { access: accessPath },
  }));
  const port = await run.startBulwark(['--config', frontPath, '--no-builtin-tools'], 'front');
  await until('the services\' tools listed', async () => {
    const l = await request(port, 'POST', {
      body: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } },
      headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
    });
    const names = new Set((l.json?.result?.tools ?? []).map((t) => t.name));
    return ['idem', 'echo', 'add', 'test_simple_text'].every((n) => names.has(n));
  });

  const retried = { trace: hex(16), parent: hex(8) };
  await check('a gateway call with one retry is one trace: request, handler, queue wait, two attempts, two exchanges', async () => {
    const r = await callTool(port, 'idem', {}, { traceparent: `00-${retried.trace}-${retried.parent}-01` });
    assert(r.result?.content?.[0]?.text === 'ran 2', `the second attempt's result: ${JSON.stringify(r)}`);
    await until('the front\'s spans of the call', () => of(retried.trace, 'front').filter((s) => s.kind === 3).length >= 2
                                                     && of(retried.trace, 'front').some((s) => s.kind === 2));
    const mine = of(retried.trace, 'front');
    const request = mine.find((s) => s.kind === 2);
    assert(request.parentSpanId === retried.parent, `the request span is the caller's child: ${JSON.stringify(request)}`);
    assert(request.name === 'tools/call idem' && attr(request, 'mcp.method.name') === 'tools/call', JSON.stringify(request));
    const handler = mine.find((s) => s.parentSpanId === request.spanId && s.name === 'gateway flaky');
    assert(handler, `a gateway span under the request: ${JSON.stringify(mine.map((s) => s.name))}`);
    const queue = mine.find((s) => s.name === 'queue wait');
    assert(queue?.parentSpanId === handler.spanId, `the queue wait under the handler: ${JSON.stringify(queue)}`);
    const attempts = mine.filter((s) => s.name.startsWith('attempt ')).sort((a, b) => a.name.localeCompare(b.name));
    assert(attempts.length === 2 && attempts.every((a) => a.parentSpanId === handler.spanId),
           `two attempts under the handler: ${JSON.stringify(attempts)}`);
    assert(attempts[0].name === 'attempt 1' && attempts[0].status.code === 2 && attempts[1].status.code !== 2,
           `the first failed, the second did not: ${JSON.stringify(attempts.map((a) => [a.name, a.status]))}`);
    const exchanges = mine.filter((s) => s.kind === 3);
    assert(exchanges.length === 2 && new Set(exchanges.map((e) => e.parentSpanId)).size === 2
           && exchanges.every((e) => attempts.some((a) => a.spanId === e.parentSpanId)),
           `one exchange under each attempt: ${JSON.stringify(exchanges)}`);
    for (const s of mine)
      assert(BigInt(s.startTimeUnixNano) >= BigInt(request.startTimeUnixNano) && BigInt(s.endTimeUnixNano) <= BigInt(request.endTimeUnixNano),
             `${s.name} lies within the request`);
    const seen = flakyCalls.filter((c) => c.header?.includes(retried.trace));
    assert(seen.length === 2, `both attempts carried the trace: ${JSON.stringify(flakyCalls)}`);
    for (const c of seen) {
      assert(c.header === c.meta, `header and _meta agree: ${JSON.stringify(c)}`);
      const [version, trace, parent, flags] = c.header.split('-');
      assert(version === '00' && trace === retried.trace && flags === '01', c.header);
      assert(exchanges.some((e) => e.spanId === parent), `the service's parent is an exchange span: ${c.header}`);
    }
    assert(new Set(seen.map((c) => c.header)).size === 2, 'each attempt names its own exchange');
  });

  await check('the trace goes on, with its tracestate, inside a Bulwark behind the gateway over HTTP (2026-07-28)', async () => {
    const trace = hex(16);
    const r = await callTool(port, 'echo', { text: 'x' }, {}, { traceparent: `00-${trace}-${hex(8)}-01`, tracestate: 'bw=1' });
    assert(r.result?.content?.[0]?.text === 'x', JSON.stringify(r));
    await until('the back\'s server span', () => of(trace, 'back').some((s) => s.kind === 2)
                                              && of(trace, 'front').some((s) => s.kind === 3));
    const exchange = of(trace, 'front').find((s) => s.kind === 3);
    const served = of(trace, 'back').find((s) => s.kind === 2);
    assert(served.parentSpanId === exchange.spanId, `back's request under front's exchange: ${JSON.stringify([exchange, served])}`);
    assert(served.traceState === 'bw=1' && exchange.traceState === 'bw=1', `the tracestate travels: ${JSON.stringify(served)}`);
  });

  await check('the trace goes on inside a Bulwark behind the gateway over stdio (2025 era, _meta)', async () => {
    const sid = await openSession(port, {});
    const trace = hex(16);
    const r = await request(port, 'POST', {
      body: { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'test_simple_text', arguments: {} } },
      headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', traceparent: `00-${trace}-${hex(8)}-01` },
    });
    assert(r.json?.result, r.text);
    // The front's request span leaves with its session's next batch, after
    // the connector's exchange span: wait for all three.
    await until('the stdio child\'s server span', () => of(trace, 'back-stdio').some((s) => s.kind === 2)
                                                        && of(trace, 'front').some((s) => s.kind === 3)
                                                        && of(trace, 'front').some((s) => s.kind === 2));
    const exchange = of(trace, 'front').find((s) => s.kind === 3);
    const served = of(trace, 'back-stdio').find((s) => s.kind === 2);
    assert(served.parentSpanId === exchange.spanId, `kid's request under front's exchange: ${JSON.stringify([exchange, served])}`);
    assert(of(trace, 'front').find((s) => s.kind === 2)?.attributes.some((a) => a.key === 'mcp.session.id'), 'the session is named');
  });

  const failedTrace = hex(16);
  await check('an error\'s traceId is the caller\'s trace id, in its answer and its log line', async () => {
    const r = await callTool(port, 'nope', {}, { traceparent: `00-${failedTrace}-${hex(8)}-01` });
    assert(r.error?.data?.traceId === failedTrace, `data.traceId: ${JSON.stringify(r)}`);
    await until('the log line', () => run.logs.find((l) => l.startsWith('[front]') && l.includes('"error answered"') && l.includes(failedTrace)));
    await until('the failed request span', () => of(failedTrace, 'front').find((s) => s.kind === 2));
    assert(of(failedTrace, 'front').find((s) => s.kind === 2).status.code === 2, 'the request span failed');
  });

  await check('a request without a trace starts one: a root span under the trace id its error names', async () => {
    const r = await callTool(port, 'nope', {});
    const trace = r.error?.data?.traceId;
    assert(/^[0-9a-f]{32}$/.test(trace ?? ''), `a W3C trace id: ${JSON.stringify(r)}`);
    const root = await until('its span', () => of(trace, 'front').find((s) => s.kind === 2));
    assert(root.parentSpanId === undefined, `a root span: ${JSON.stringify(root)}`);
  });

  await check('an unsampled trace is passed on unsampled and exported nowhere', async () => {
    const quiet = hex(16);
    const before = flakyExecutions;
    const r = await callTool(port, 'idem', {}, { traceparent: `00-${quiet}-${hex(8)}-00` });
    assert(r.result, JSON.stringify(r));
    const passed = flakyCalls.slice(before).map((c) => c.header);
    assert(passed.length > 0 && passed.every((h) => h.startsWith(`00-${quiet}-`) && h.endsWith('-00')), `passed on unsampled: ${passed}`);
    const e = await callTool(port, 'echo', { text: 'y' }, { traceparent: `00-${quiet}-${hex(8)}-00` });
    assert(e.result, JSON.stringify(e));
    // Exports leave each process in order: once a later sampled call's
    // spans arrived from both, nothing of the quiet trace is on its way.
    const marker = hex(16);
    await callTool(port, 'echo', { text: 'z' }, { traceparent: `00-${marker}-${hex(8)}-01` });
    await until('the marker\'s spans', () => of(marker, 'back').length > 0 && of(marker, 'front').some((s) => s.kind === 2));
    assert(of(quiet).length === 0, `no span of the unsampled trace: ${JSON.stringify(of(quiet))}`);
  });

  await check('the exporter\'s header file is read again when it changes, without a reload', async () => {
    const front = spans.filter((s) => s.service === 'front');
    assert(front.length > 0 && front.every((s) => s.auth === 'Bearer otlp-first'), `before: ${[...new Set(front.map((s) => s.auth))]}`);
    assert(spans.filter((s) => s.service === 'back').every((s) => s.auth === undefined), 'only the front sends it');
    writeFileSync(otlpToken, 'Bearer otlp-second-value\n');
    await sleep(1100); // the file is looked at no more than once a second
    const marker = hex(16);
    await callTool(port, 'echo', { text: 'rotated' }, { traceparent: `00-${marker}-${hex(8)}-01` });
    await until('the marker\'s front spans', () => of(marker, 'front').length > 0);
    const auths = new Set(of(marker, 'front').map((s) => s.auth));
    assert(auths.size === 1 && auths.has('Bearer otlp-second-value'), `after: ${[...auths]}`);
  });

  await check('every export is OTLP/JSON of the right shape', async () => {
    assert(main.exports > 0 && spans.length > 0, 'exports arrived');
    assert(shapeErrors.length === 0, shapeErrors.slice(0, 10).join('; '));
    const services = new Set(spans.map((s) => s.service));
    assert(['front', 'back', 'back-stdio'].every((s) => services.has(s)), `service.name of each: ${[...services]}`);
  });

  await check('the access log has one line per request, with trace id, outcome, status, retries, cache and bytes', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await callTool(port, 'add', { a: 2, b: 3 });
      assert(r.result, JSON.stringify(r));
    }
    const lines = () => (existsSync(accessPath) ? readFileSync(accessPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    await until('the access lines', () => lines().filter((l) => l.name === 'add').length === 2);
    const all = lines();
    const retry = all.find((l) => l.traceId === retried.trace);
    assert(retry, `the retried call's line: ${JSON.stringify(all.slice(0, 3))}`);
    for (const [k, v] of Object.entries({ method: 'tools/call', name: 'idem', service: 'flaky', outcome: 'result', status: 200, retries: 1,
                                          era: '2026-07-28', identity: 'anonymous' }))
      assert(retry[k] === v, `${k} is ${JSON.stringify(v)}: ${JSON.stringify(retry)}`);
    assert(retry.durationUs > 0 && retry.bytesIn > 100 && retry.bytesOut > 20 && /^\d{4}-\d\d-\d\dT/.test(retry.ts), JSON.stringify(retry));
    const failed = all.find((l) => l.traceId === failedTrace);
    assert(failed?.outcome === 'error' && failed.code === -32602 && failed.status >= 400 && failed.name === 'nope', JSON.stringify(failed));
    const adds = all.filter((l) => l.name === 'add');
    assert(adds[0].cache === 'miss' && adds[1].cache === 'fresh' && adds.every((l) => l.service === 'back'),
           `the cache's answers: ${JSON.stringify(adds)}`);
    const session = all.find((l) => l.name === 'test_simple_text');
    assert(session?.era === '2025-11-25' && session.service === 'kid', JSON.stringify(session));
  });

  await check('per-service cache hits and misses and a per-tool latency histogram are exported', async () => {
    assert(await metricValue(port, /^bulwark_service_cache_hits_total\{service="back"\}/) >= 1, 'a hit');
    assert(await metricValue(port, /^bulwark_service_cache_misses_total\{service="back"\}/) >= 1, 'a miss');
    assert(await metricValue(port, /^bulwark_tool_duration_seconds_count\{tool="idem"\}/) >= 2, 'idem timed');
    assert(await metricValue(port, /^bulwark_trace_spans_exported_total/) > 0, 'spans exported');
  });

  // -- collectors that fail ------------------------------------------------------------
  for (const [what, makeEndpoint] of [
    ['down', async () => `http://127.0.0.1:${await freePort()}`],
    ['holding every export for 5 s', async () => {
      const slow = collector(scaled(5000));
      await new Promise((r) => slow.server.listen(0, '127.0.0.1', r));
      run.slow = slow;
      return `http://127.0.0.1:${slow.server.address().port}`;
    }],
  ]) {
    await check(`a collector that is ${what} costs no failed call: spans are dropped and counted`, async () => {
      const label = what.split(' ')[0];
      const cfgPath = join(run.dir, `${label}.json`);
      const access = join(run.dir, `${label}-access.log`);
      writeFileSync(cfgPath, JSON.stringify({
        http: { port: 0, address: '127.0.0.1' },
        telemetry: { otlp: { endpoint: await makeEndpoint(), intervalMs: 20, maxQueueSpans: 8, maxBatchSpans: 4, timeoutMs: scaled(20000) } },
        log: { access, accessSampleRatio: 0 },
      }));
      const p = await run.startBulwark(['--config', cfgPath], label);
      if (label === 'holding') {
        // The first export is under way and held before the burst starts.
        await callTool(p, 'echo', { text: 'first' });
        await until('an export held', () => run.slow.holding > 0);
      }
      const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => callTool(p, 'echo', { text: `${i}` })));
      const failed = answers.filter((a) => a.result?.content?.[0]?.text === undefined);
      assert(failed.length === 0, `every call answered: ${JSON.stringify(failed.slice(0, 3))}`);
      if (label === 'holding') assert(run.slow.holding > 0, 'the calls were answered while an export was held');
      const reason = label === 'down' ? 'export_failed' : 'queue_full';
      await until('the drops counted', async () => (await metricValue(p, new RegExp(`^bulwark_trace_spans_dropped_total\\{reason="${reason}"\\}`))) > 0);
      await until('the admin view\'s drops', async () => {
        const v = await (await fetch(`http://127.0.0.1:${p}/admin/api/telemetry`)).json();
        return (label === 'down' ? v.droppedExportFailed : v.droppedQueueFull) > 0 && v.exporting === true;
      });
      // Successes are sampled out of this access log; errors never are.
      const e = await callTool(p, 'nope', {});
      await until('the error\'s access line', () => existsSync(access) && readFileSync(access, 'utf8').includes(e.error?.data?.traceId));
      const lines = readFileSync(access, 'utf8').split('\n').filter(Boolean);
      assert(lines.length === 1, `only the error: ${lines.length} lines`);
      await run.stop(label);
    });
  }
});
