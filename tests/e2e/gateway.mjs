#!/usr/bin/env node
// End-to-end test of Bulwark as a gateway: a front `bulwark` whose
// downstreams are a `bulwark --fixtures --fault-tools` child over stdio
// ("fx") and another one over Streamable HTTP, spoken to statelessly ("web",
// 2026-07-28) and through our own session ("web25", 2025-11-25), and over
// TLS ("webtls", https through a TLS terminator whose certificate is made
// here with the openssl command), driven by the official TypeScript SDK
// client.
//
//   node tests/e2e/gateway.mjs --bulwark build/bulwark
//
// Checks: aggregated, prefixed tool lists; calls routed to every service;
// progress and log notifications passed through; completions asked of the
// service that owns the prompt or template; the breaker opening on
// timeouts, failing fast while open and closing after a half-open probe; the
// static fallback message; a downstream writing garbage; a killed child
// restarted; a non-idempotent call that timed out executed exactly once;
// resource reads cached per URI and dropped on resources/updated (that URI)
// and resources/list_changed (all); a stdio child that keeps crashing
// (crashing_server.mjs) restarted childMaxRestarts times, then reported
// down with -32005 answered at once. Every process is killed by pid.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { assert, callTool, harness, readEvents, request, rpcError, scaled, until } from './harness.mjs';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

const args = process.argv.slice(2);
const bulwark = resolve(args[args.indexOf('--bulwark') + 1] ?? '');
const run = harness({ bulwark });
const { check, startBulwark, logs, pids } = run;
const started = new Proxy({}, { get: (_, label) => run.started[label]?.pid });

const dir = mkdtempSync(join(tmpdir(), 'bulwark-gw-'));
const here = dirname(fileURLToPath(import.meta.url));
const modules = resolve(here, '../node_modules/@modelcontextprotocol');

/// A self-signed certificate for localhost and 127.0.0.1 (its own CA).
function makeCertificate(stem) {
  const key = join(dir, `${stem}.key`);
  const cert = join(dir, `${stem}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key, cert };
}

/// Terminates TLS on a loopback port and relays the bytes to `targetPort`.
async function startTlsTerminator(targetPort, { key, cert }) {
  const server = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (tls) => {
    const plain = netConnect(targetPort, '127.0.0.1');
    tls.pipe(plain).pipe(tls);
    tls.on('error', () => plain.destroy());
    plain.on('error', () => tls.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  server.unref();
  return server.address().port;
}

/// A 2026-07-28 listen stream on `port`: `messages` fills as they arrive.
async function listen(port, notifications) {
  const ac = new AbortController();
  const id = 9001;
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST',
    signal: ac.signal,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'subscriptions/listen',
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id, method: 'subscriptions/listen',
      params: {
        _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
        notifications,
      },
    }),
  });
  assert(res.ok && res.headers.get('content-type')?.startsWith('text/event-stream'), `listen: HTTP ${res.status}`);
  const messages = [];
  readEvents(res, (m) => messages.push(m));
  return { id, messages, close: () => ac.abort() };
}

try {
  const webPort = await startBulwark(
    ['--fixtures', '--fault-tools', '--no-builtin-tools', '--port', '0', '--address', '127.0.0.1'],
    'web',
  );
  const tlsCert = makeCertificate('webtls');
  const tlsPort = await startTlsTerminator(webPort, tlsCert);
  const config = {
    mcpServers: {
      fx: { command: bulwark, args: ['--stdio', '--no-http', '--fixtures', '--fault-tools', '--no-builtin-tools', '--log-level', 'warning'] },
      web: { url: `http://127.0.0.1:${webPort}/mcp` },
      web25: { url: `http://127.0.0.1:${webPort}/mcp` },
      webtls: { url: `https://localhost:${tlsPort}/mcp` },
      // Real servers from npm, over stdio.
      everything: { command: process.execPath, args: [join(modules, 'server-everything/dist/index.js'), 'stdio'] },
      memory: {
        command: process.execPath,
        args: [join(modules, 'server-memory/dist/index.js')],
        env: { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') },
      },
      // A prompt without the completions capability.
      plain: { command: process.execPath, args: [join(here, 'plain_prompt_server.mjs')] },
    },
    gateway: {
      prefix: 'always',
      separator: '__',
      gatewayTools: true,
      policy: { deny: ['memory:delete_*'] },
      agents: { 'restricted-agent': { allow: ['everything:echo'] } },
    },
    services: {
      fx: {
        timeoutMs: 400,
        retry: { attempts: 1 },
        breaker: { consecutiveFailures: 2, openMs: 800, halfOpenProbes: 1, successesToClose: 1 },
        cache: { ttlMs: 100, maxStaleMs: 60000, tools: ['test_simple_text'] },
      },
      web: { timeoutMs: 400, retry: { attempts: 3, baseDelayMs: 10 }, cache: { ttlMs: 5000, tools: ['test_simple_text'] } },
      web25: { protocol: '2025-11-25' },
      webtls: { protocol: '2025-11-25', tls: { caFile: tlsCert.cert } },
    },
  };
  const configPath = join(dir, 'gateway.json');
  writeFileSync(configPath, JSON.stringify(config));
  const frontPort = await startBulwark(['--config', configPath, '--no-builtin-tools', '--port', '0'], 'front');

  const client = new Client({ name: 'bulwark-gateway-e2e', version: '1.0.0' }, { capabilities: { sampling: {} } });
  const logMessages = [];
  const sampleRequests = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logMessages.push(n.params));
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    sampleRequests.push(req.params);
    return { role: 'assistant', content: { type: 'text', text: 'gateway sampled 2718' }, model: 'e2e', stopReason: 'endTurn' };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${frontPort}/mcp`)));
  const call = (name, a = {}, extra = {}) =>
    client.callTool({ name, arguments: a }, undefined, { timeout: scaled(10_000), ...extra });
  const text = (r) => r.content?.[0]?.text;
  const allTools = async (c) => {
    const names = [];
    let cursor;
    do {
      const page = await c.listTools(cursor ? { cursor } : {});
      names.push(...page.tools.map((t) => t.name));
      cursor = page.nextCursor;
    } while (cursor);
    return names;
  };

  await check('tools of every service are listed with their prefixes', async () => {
    const names = await allTools(client);
    for (const n of ['fx__test_simple_text', 'web__test_simple_text', 'fx__fault_hang', 'web__fault_count'])
      assert(names.includes(n), `${n} missing from ${names.length} tools`);
    assert(!names.includes('test_simple_text'), 'an unprefixed name leaked in prefix mode "always"');
  });

  await check('calls are routed to the stdio service and to HTTP services of both eras, https included', async () => {
    for (const svc of ['fx', 'web', 'web25', 'webtls'])
      assert(text(await call(`${svc}__test_simple_text`)) === 'This is a simple text response for testing.', svc);
  });

  await check('a cacheable result is answered fresh from the cache, marked, without the service', async () => {
    const r = await call('web__test_simple_text');
    const mark = r._meta?.['io.bulwark/cache'];
    assert(mark?.stale === false && mark.service === 'web', `marking: ${JSON.stringify(r._meta)}`);
    const counted = await call('web__fault_count', { key: 'uncached' });
    const again = await call('web__fault_count', { key: 'uncached' });
    assert(again.structuredContent.executions === counted.structuredContent.executions + 1, 'a non-cacheable tool was cached');
  });

  for (const svc of ['web', 'web25']) {
    await check(`list_changed of the HTTP service ${svc} refreshes our list (and drops its cached results)`, async () => {
      const until = async (what, pred) => {
        for (let i = 0; i < 60; i++) {
          if (await pred()) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`timed out waiting for ${what}`);
      };
      if (svc === 'web')
        assert((await call('web__test_simple_text'))._meta?.['io.bulwark/cache'], 'cached before the change');
      await call(`${svc}__test_trigger_tool_change`);
      await until('the dynamic tool', async () => (await allTools(client)).includes(`${svc}__test_dynamic_tool`));
      if (svc === 'web')
        await until('an uncached answer', async () => !(await call('web__test_simple_text'))._meta?.['io.bulwark/cache']);
      await call(`${svc}__test_trigger_tool_change`);
      await until('the dynamic tool gone', async () => !(await allTools(client)).includes(`${svc}__test_dynamic_tool`));
    });
  }

  for (const svc of ['fx', 'web', 'web25', 'webtls']) {
    await check(`progress notifications of ${svc} reach the client`, async () => {
      const seen = [];
      const r = await call(`${svc}__test_tool_with_progress`, {}, { onprogress: (p) => seen.push(p) });
      assert(!r.isError, 'the call failed');
      assert(seen.length >= 3, `only ${seen.length} progress notifications`);
      for (let i = 1; i < seen.length; i++) assert(seen[i].progress >= seen[i - 1].progress, 'progress went back');
    });
  }

  await client.setLoggingLevel('debug');
  for (const svc of ['fx', 'web', 'web25']) {
    await check(`log notifications of ${svc} reach the client`, async () => {
      const before = logMessages.length;
      const r = await call(`${svc}__test_tool_with_logging`);
      assert(!r.isError, 'the call failed');
      await until('the log messages', () => logMessages.length - before >= 3, 1000).catch(() => {});
      assert(logMessages.length - before >= 3, `only ${logMessages.length - before} log messages`);
    });
  }

  for (const svc of ['fx', 'web', 'web25', 'webtls']) {
    await check(`a sampling request of ${svc} is relayed to the client and its answer back`, async () => {
      sampleRequests.length = 0;
      const r = await call(`${svc}__test_sampling`, { prompt: 'relay me' });
      assert(!r.isError, `the call failed: ${JSON.stringify(r)}`);
      assert(sampleRequests.length === 1, `sampling requests seen: ${sampleRequests.length}`);
      assert(JSON.stringify(sampleRequests[0].messages).includes('relay me'), 'the prompt was not relayed');
      assert(JSON.stringify(r.content).includes('gateway sampled 2718'), `result: ${JSON.stringify(r)}`);
    });
  }

  // A 2026-07-28 client has no session to be asked in: a stateful service's
  // request comes to it as an input_required result, and its answer comes
  // in its next call, which the downstream call reports to from then on.
  for (const svc of ['fx', 'web25']) {
    await check(`a sampling request of ${svc} reaches a 2026-07-28 client as input_required, and its next call gets the answer`, async () => {
      const tool = `${svc}__test_sampling`;
      const send = (extra) => request(frontPort, 'POST', {
        body: {
          jsonrpc: '2.0', id: 9000 + Math.floor(Math.random() * 1000), method: 'tools/call',
          params: {
            name: tool, arguments: { prompt: 'ask me later' }, ...extra,
            _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { sampling: {} } },
          },
        },
        headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool },
      });
      const first = await send({});
      const result = first.json?.result;
      assert(first.status === 200 && result?.resultType === 'input_required', `first answer: ${first.status} ${first.text}`);
      const [key, asked] = Object.entries(result.inputRequests ?? {})[0] ?? [];
      assert(asked?.method === 'sampling/createMessage' && JSON.stringify(asked.params).includes('ask me later'),
             `the input request: ${JSON.stringify(result.inputRequests)}`);
      const answer = { role: 'assistant', content: { type: 'text', text: 'answered later 1618' }, model: 'e2e', stopReason: 'endTurn' };
      const second = await send({ inputResponses: { [key]: answer }, requestState: result.requestState });
      assert(second.status === 200 && !second.json?.result?.isError, `second answer: ${second.status} ${second.text}`);
      assert(JSON.stringify(second.json.result.content).includes('answered later 1618'), `result: ${second.text}`);
    });
  }

  await check('server-everything: tools are called through the gateway', async () => {
    assert(text(await call('everything__echo', { message: 'through bulwark' })).includes('through bulwark'), 'echo');
    assert(text(await call('everything__get-sum', { a: 20, b: 22 })).includes('42'), 'get-sum');
  });

  await check('server-everything: progress of a long operation and a relayed sampling request', async () => {
    const seen = [];
    const r = await call('everything__trigger-long-running-operation', { duration: 1, steps: 3 },
                         { onprogress: (p) => seen.push(p) });
    assert(!r.isError, `the call failed: ${JSON.stringify(r)}`);
    assert(seen.length >= 2, `only ${seen.length} progress notifications`);
    sampleRequests.length = 0;
    const s2 = await call('everything__trigger-sampling-request', { prompt: 'from everything' });
    assert(sampleRequests.length === 1, `sampling requests seen: ${sampleRequests.length}`);
    assert(JSON.stringify(s2.content).includes('gateway sampled 2718'), `result: ${JSON.stringify(s2)}`);
  });

  await check('server-everything: a resource subscription is passed on, and its updates come back', async () => {
    // A URI of one of its templates: the gateway finds the service by it.
    const uri = 'demo://resource/dynamic/text/7';
    const updates = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updates.push(n.params.uri));
    await client.subscribeResource({ uri });
    // The tool sends one update for each subscribed URI at once, then every 5 s.
    const on = await call('everything__toggle-subscriber-updates');
    assert(!on.isError, `toggle: ${JSON.stringify(on)}`);
    try {
      // The service may take the toggle before the subscription (it handles
      // both at once): then the next round, 5 s later, brings the update.
      await until('the update', () => updates.includes(uri), 8000);
    } finally {
      await call('everything__toggle-subscriber-updates');
      await client.unsubscribeResource({ uri });
    }
  });

  await check("a proxied call's time is split into the service's share and Bulwark's own", async () => {
    const res = await fetch(`http://127.0.0.1:${frontPort}/metrics.json`, { signal: AbortSignal.timeout(scaled(5000)) });
    const m = await res.json();
    const series = (family) => m[family]?.series.find((s) => s.labels.service === 'everything');
    const up = series('bulwark_upstream_duration_seconds');
    const own = series('bulwark_gateway_overhead_seconds');
    assert(up && own, `no series for the service: ${JSON.stringify(Object.keys(m))}`);
    // echo, get-sum, the long operation and the sampling request so far.
    assert(up.count === own.count && up.count >= 4, `counts: upstream ${up.count}, own ${own.count}`);
    assert(up.sum >= 1, `the 1 s operation is the service's time: ${up.sum} s`);
    assert(own.sum < 0.25 * up.sum, `Bulwark's own share is small beside it: ${own.sum} s of ${up.sum} s`);
    assert(up.p99 >= up.p50 && own.p99 >= own.p50, 'percentiles');
  });

  await check('completion of a prompt or template argument is asked of the service that owns it', async () => {
    const values = async (ref, name, value, context) => {
      const r = await client.complete({ ref, argument: { name, value }, ...(context ? { context } : {}) });
      return r.completion.values;
    };
    const same = (got, want, what) => assert(JSON.stringify(got) === JSON.stringify(want), `${what}: ${JSON.stringify(got)}`);
    // Prompts by their exposed names; the services know them unprefixed.
    for (const svc of ['web', 'web25', 'fx'])
      same(await values({ type: 'ref/prompt', name: `${svc}__test_prompt_with_arguments` }, 'arg1', 'pa'),
           ['paris', 'park', 'party'], svc);
    same(await values({ type: 'ref/resource', uri: 'test://template/{id}/data' }, 'id', '12'), ['123'], 'fixtures template');
    // server-everything narrows the second argument by the first, which
    // travels in the request's context.
    const prompt = { type: 'ref/prompt', name: 'everything__completable-prompt' };
    same(await values(prompt, 'department', 'S'), ['Sales', 'Support'], 'department');
    same(await values(prompt, 'name', '', { arguments: { department: 'Sales' } }), ['David', 'Eve', 'Frank'], 'by context');
    same(await values({ type: 'ref/resource', uri: 'demo://resource/dynamic/text/{resourceId}' }, 'resourceId', '42'),
         ['42'], 'everything template');
    // A service without the capability would answer "method not found":
    // it is not asked, and the client gets no values rather than an error.
    same(await values({ type: 'ref/prompt', name: 'plain__greeting' }, 'who', 'a'), [], 'no completions capability');
  });

  await check('server-memory: an entity created through the gateway is read back', async () => {
    const made = await call('memory__create_entities', {
      entities: [{ name: 'Bulwark', entityType: 'gateway', observations: ['keeps answering'] }],
    });
    assert(!made.isError, `create failed: ${JSON.stringify(made)}`);
    const graph = await call('memory__read_graph');
    assert(JSON.stringify(graph).includes('keeps answering'), `graph: ${JSON.stringify(graph).slice(0, 300)}`);
  });

  await check('policy: denied tools are hidden from lists and refused by name', async () => {
    const names = await allTools(client);
    assert(names.includes('memory__read_graph'), 'an allowed memory tool is missing');
    assert(!names.some((n) => n.startsWith('memory__delete_')), 'a denied tool is listed');
    const err = await call('memory__delete_entities', { entityNames: ['Bulwark'] }).then(() => null, (e) => e);
    assert(err && err.code === -32009, `expected -32009, got ${err?.code} ${err?.message}`);
    assert(err.data?.rule === 'deny memory:delete_*' && /DENIED_BY_POLICY/.test(err.message), JSON.stringify(err.data));
  });

  await check('gateway tools: list_servers, get_server_tools, execute_tool (under the same policy)', async () => {
    const servers = (await call('list_servers')).structuredContent.servers;
    assert(servers.map((s) => s.name).join() === 'fx,web,web25,webtls,everything,memory,plain', JSON.stringify(servers));
    const mem = (await call('get_server_tools', { server: 'memory' })).structuredContent.tools.map((t) => t.name);
    assert(mem.includes('read_graph') && !mem.includes('delete_entities'), mem.join());
    const echoed = await call('execute_tool', { server: 'everything', tool: 'echo', arguments: { message: 'lazy' } });
    assert(text(echoed).includes('lazy'), JSON.stringify(echoed));
    const err = await call('execute_tool', { server: 'memory', tool: 'delete_entities', arguments: {} })
      .then(() => null, (e) => e);
    assert(err && err.code === -32009, `expected -32009, got ${err?.code}`);
    const unknown = await call('execute_tool', { server: 'nope', tool: 'x' }).then(() => null, (e) => e);
    assert(unknown && unknown.code === -32602, `expected -32602 for an unknown server, got ${unknown?.code}`);
    // The call runs as the tool called by name would: its input schema is
    // checked here, its cache answers, and unknown tools are named.
    const invalid = await call('execute_tool', { server: 'everything', tool: 'echo', arguments: { message: 7 } })
      .then(() => null, (e) => e);
    assert(invalid?.code === -32602 && invalid.data?.tool === 'everything__echo'
           && invalid.data.errors?.some((e) => e.path === '/message'), `schema: ${JSON.stringify(invalid)}`);
    const noTool = await call('execute_tool', { server: 'web', tool: 'no_such_tool' }).then(() => null, (e) => e);
    assert(noTool?.code === -32602 && /no tool named 'no_such_tool'/.test(noTool.message), `unknown tool: ${noTool?.message}`);
    await call('web__test_simple_text');
    const cached = await call('execute_tool', { server: 'web', tool: 'test_simple_text' });
    assert(cached._meta?.['io.bulwark/cache']?.service === 'web', `from the cache: ${JSON.stringify(cached)}`);
  });

  await check('policy per agent: a client named restricted-agent sees and calls only what it is allowed', async () => {
    const agent = new Client({ name: 'restricted-agent', version: '1.0.0' }, { capabilities: {} });
    await agent.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${frontPort}/mcp`)));
    try {
      const names = (await allTools(agent)).filter((n) => n.includes('__'));
      assert(names.join() === 'everything__echo', `restricted agent sees ${names.join()}`);
      const ok = await agent.callTool({ name: 'everything__echo', arguments: { message: 'ok' } });
      assert(text(ok).includes('ok'), 'the allowed tool failed');
      const err = await agent.callTool({ name: 'fx__test_simple_text', arguments: {} }).then(() => null, (e) => e);
      assert(err && err.code === -32009 && err.data?.rule === 'not in the allow list', `got ${err?.code} ${JSON.stringify(err?.data)}`);
    } finally {
      await agent.close();
    }
  });

  await check('the breaker opens after two timeouts and then fails fast without the service', async () => {
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      const err = await call('fx__fault_hang').then(() => null, (e) => e);
      assert(err && err.code === -32001, `timeout ${i}: expected -32001, got ${err?.code} ${err?.message}`);
      assert(Date.now() - t0 < scaled(3000), 'the timeout took too long');
    }
    const t0 = Date.now();
    const err = await call('fx__fault_count', { key: 'open' }).then(() => null, rpcError);
    assert(err && err.code === -32005 && err.httpStatus === 503,
           `expected -32005 with HTTP 503 while open, got ${err?.code} (HTTP ${err?.httpStatus}) ${err?.message}`);
    assert(err.data?.breaker === 'open', `breaker state in data: ${JSON.stringify(err.data)}`);
    assert(err.data?.retry_after_seconds > 0, 'retry_after missing');
    assert(Date.now() - t0 < scaled(200), `failing fast took ${Date.now() - t0} ms`);
  });

  await check('while the breaker is open a stale cached result answers, marked with its age', async () => {
    const r = await call('fx__test_simple_text');
    assert(text(r) === 'This is a simple text response for testing.', `result: ${JSON.stringify(r)}`);
    const mark = r._meta?.['io.bulwark/cache'];
    assert(mark?.stale === true && mark.ageMs > 0, `marking: ${JSON.stringify(r._meta)}`);
  });

  await check("the service's metrics count its timeouts, the breaker's refusals and transitions, and the stale fallback", async () => {
    const series = async () => {
      const res = await fetch(`http://127.0.0.1:${frontPort}/metrics`, { signal: AbortSignal.timeout(scaled(5000)) });
      const text = await res.text();
      const value = (name, labels) => {
        const re = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm');
        const m = re.exec(text);
        return m ? Number(m[1]) : 0;
      };
      return {
        timeouts: value('bulwark_service_timeouts_total', 'service="fx"'),
        fastFailures: value('bulwark_service_fast_failures_total', 'service="fx"'),
        transitions: value('bulwark_breaker_transitions_total', 'service="fx"'),
        calls: value('bulwark_service_calls_total', 'service="fx"'),
        stale: value('bulwark_fallbacks_total', 'service="fx",source="stale"'),
      };
    };
    // The breaker's counts reach the metrics with the next health check.
    const m = await until('the breaker counts in the metrics', async () => {
      const m = await series();
      return m.timeouts >= 2 && m.fastFailures >= 1 && m.transitions >= 1 ? m : null;
    }, scaled(5000));
    assert(m.calls >= m.timeouts + m.fastFailures, `calls count them all: ${JSON.stringify(m)}`);
    assert(m.stale >= 1, `the stale copy served is counted: ${JSON.stringify(m)}`);
  });

  // test_simple_text is cached (and kept stale) for fx and web: an answer
  // proves the live path only without the cache's mark.
  const live = (r) => !r.isError && !r._meta?.['io.bulwark/cache'];

  await check('after the open duration a half-open probe succeeds and closes the breaker', async () => {
    await new Promise((r) => setTimeout(r, 900));
    const probe = await call('fx__test_simple_text');
    assert(live(probe) && text(probe) === 'This is a simple text response for testing.', `probe: ${JSON.stringify(probe)}`);
    // Closed, not half-open: two calls at once both go through (half-open
    // admits one probe at a time and refuses the other with -32005).
    const both = await Promise.all([1, 2].map((i) => call('fx__fault_count', { key: `closed${i}-${Date.now()}`, hangMs: 150 })
      .catch((e) => ({ isError: true, error: `${e.code} ${e.message}` }))));
    for (const after of both)
      assert(live(after) && after.structuredContent?.executions === 1, `closed again: ${JSON.stringify(after)}`);
  });

  await check('garbage on a stdio service affects nothing else', async () => {
    assert(text(await call('fx__fault_garbage')) === 'wrote garbage', 'the garbage tool answered');
    const fx = await call('fx__fault_count', { key: `garbage${Date.now()}` });
    assert(live(fx) && fx.structuredContent?.executions === 1, `fx works: ${JSON.stringify(fx)}`);
    const web = await call('web__fault_count', { key: `garbage${Date.now()}` });
    assert(live(web) && web.structuredContent?.executions === 1, `web works: ${JSON.stringify(web)}`);
  });

  await check('a killed child fails its call with a clear error and is restarted', async () => {
    const err = await call('fx__fault_exit').then(() => null, (e) => e);
    assert(err && /exited|stopped/.test(err.message), `expected an exit error, got ${err?.code} ${err?.message}`);
    // Bounded: the restart takes the first back-off step (100 ms) and a start.
    const deadline = Date.now() + scaled(8000);
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = await call('fx__fault_count', { key: `restart${Date.now()}` }).then(live, () => false);
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    assert(ok, 'fx did not answer a live call within 8 s');
  });

  await check('a non-idempotent call that timed out ran exactly once', async () => {
    const key = `k${Date.now()}`;
    const err = await call('web__fault_count', { key, hangMs: 700 }).then(() => null, (e) => e);
    assert(err && err.code === -32001, `expected a timeout, got ${err?.code} ${err?.message}`);
    await new Promise((r) => setTimeout(r, 500));
    const r = await call('web__fault_count', { key });
    assert(r.structuredContent?.executions === 2, `executions ${JSON.stringify(r.structuredContent)}`);
  });

  await check('a 2025-era service that forgot our session (404) is initialized again and the call resent', async () => {
    process.kill(started.web, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    await startBulwark(['--fixtures', '--fault-tools', '--no-builtin-tools', '--port', String(webPort), '--address', '127.0.0.1'],
                       'web-again');
    const r = await call('web25__test_simple_text', {}, {});
    assert(text(r) === 'This is a simple text response for testing.', `after the restart: ${JSON.stringify(r)}`);
  });

  await client.close();

  // Resource subscriptions through a front whose only service is the HTTP
  // fixtures server, spoken to in either era: the front subscribes the
  // service while a client watches, and no longer once none does.
  const downCount = async (method) => {
    const res = await fetch(`http://127.0.0.1:${webPort}/metrics.json`, { signal: AbortSignal.timeout(scaled(5000)) });
    const m = await res.json();
    return (m.bulwark_requests_total?.series ?? [])
      .filter((x) => x.labels.method === method)
      .reduce((n, x) => n + x.value, 0);
  };
  const watched = 'test://watched-resource';
  for (const era of ['2026-07-28', '2025-11-25']) {
    await check(`resource subscriptions reach a ${era} service and its updates the client; the last watcher's end unsubscribes`, async () => {
      const cfg = join(dir, `watch-${era}.json`);
      writeFileSync(cfg, JSON.stringify({
        mcpServers: { web: { url: `http://127.0.0.1:${webPort}/mcp` } },
        services: { web: { protocol: era } },
        gateway: { prefix: 'never' },
      }));
      const port = await startBulwark(['--config', cfg, '--no-builtin-tools', '--port', '0'], `watch-${era}`);
      const touch = () => callTool(port, 'test_update_resource', { uri: watched });
      if (era === '2026-07-28') {
        // A 2026-07-28 client: a listen stream naming the resource.
        const listens = await downCount('subscriptions/listen');
        const stream = await listen(port, { resourceSubscriptions: [watched] });
        let after;
        try {
          await until('the acknowledgement', () => stream.messages.length >= 1, 5000);
          // The front opens its listen stream on the service again, now naming the resource.
          await until('a listen stream naming the resource', async () => (await downCount('subscriptions/listen')) > listens, 5000);
          let got = [];
          await until('the update', async () => {
            await touch();
            got = stream.messages.filter((x) => x.method === 'notifications/resources/updated');
            return got.length > 0;
          }, 5000);
          assert(got[0].params.uri === watched, JSON.stringify(got[0]));
          assert(got[0].params._meta?.['io.modelcontextprotocol/subscriptionId'] === stream.id, JSON.stringify(got[0]));
          // Counted before the close: the front may reopen its stream before
          // a count read afterwards would arrive.
          after = await downCount('subscriptions/listen');
        } finally {
          stream.close();
        }
        // No watcher left: the front's stream is opened once more, without it.
        await until('a listen stream without the resource', async () => (await downCount('subscriptions/listen')) > after, 5000);
      } else {
        // A 2025-era client of the SDK: resources/subscribe on both legs.
        const c = new Client({ name: 'bulwark-watch-e2e', version: '1.0.0' }, { capabilities: {} });
        const updates = [];
        c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updates.push(n.params.uri));
        await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
        try {
          const subs = await downCount('resources/subscribe');
          const unsubs = await downCount('resources/unsubscribe');
          await c.subscribeResource({ uri: watched });
          await until('the subscription passed on', async () => (await downCount('resources/subscribe')) === subs + 1, 5000);
          await until('the update', async () => {
            await touch();
            return updates.includes(watched);
          }, 5000);
          // An update of a resource nobody watches is not passed on.
          await callTool(port, 'test_update_resource', { uri: 'test://static-text' });
          await c.unsubscribeResource({ uri: watched });
          await until('the unsubscription passed on', async () => (await downCount('resources/unsubscribe')) === unsubs + 1, 5000);
          assert(!updates.includes('test://static-text'), `updates: ${updates}`);
        } finally {
          await c.close();
        }
      }
    });
  }

  await check('the static fallback answers a tool call; a prompt and a completion get the typed error', async () => {
    const cfg = join(dir, 'static.json');
    writeFileSync(cfg, JSON.stringify({
      mcpServers: { web: { url: `http://127.0.0.1:${webPort}/mcp` } },
      services: {
        web: {
          timeoutMs: 300,
          retry: { attempts: 1 },
          breaker: { consecutiveFailures: 1, openMs: 60000 },
          fallback: 'static',
          fallbackMessage: 'web is resting, try later',
        },
      },
      gateway: { prefix: 'never' },
    }));
    const port = await startBulwark(['--config', cfg, '--no-builtin-tools', '--port', '0'], 'static');
    const c = new Client({ name: 'bulwark-static-e2e', version: '1.0.0' }, { capabilities: {} });
    await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
    try {
      // The hung call times out (and opens the breaker): the message answers.
      const r = await c.callTool({ name: 'fault_hang', arguments: {} }, undefined, { timeout: scaled(10_000) });
      assert(r.isError === true && r.content?.[0]?.text === 'web is resting, try later', JSON.stringify(r));
      assert(r._meta?.['io.bulwark/fallback']?.service === 'web', JSON.stringify(r._meta));
      // A prompt or a completion cannot be answered by a tool result.
      for (const [what, attempt] of [
        ['prompt', () => c.getPrompt({ name: 'test_simple_prompt' })],
        ['completion', () => c.complete({ ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'p' } })],
      ]) {
        const err = await attempt().then((x) => ({ answered: x }), rpcError);
        assert(err.code === -32005 && err.httpStatus === 503 && err.data?.retry_after_seconds > 0, `${what}: ${JSON.stringify(err)}`);
      }
    } finally {
      await c.close();
    }
  });

  await check("a service's rate budget counts every call to it: tools, prompts, reads, completions, execute_tool", async () => {
    const cfg = join(dir, 'budget.json');
    writeFileSync(cfg, JSON.stringify({
      mcpServers: {
        web: { url: `http://127.0.0.1:${webPort}/mcp` },
        plain: { command: process.execPath, args: [join(here, 'plain_prompt_server.mjs')] },
      },
      services: { web: { ratePerMinute: 6 }, plain: { ratePerMinute: 1 } },
      gateway: { prefix: 'never', gatewayTools: true, policy: { deny: ['web:fault_*'] } },
    }));
    const port = await startBulwark(['--config', cfg, '--no-builtin-tools', '--port', '0'], 'budget');
    const c = new Client({ name: 'bulwark-budget-e2e', version: '1.0.0' }, { capabilities: {} });
    await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
    try {
      const tool = (name, args = {}) => c.callTool({ name, arguments: args }, undefined, { timeout: scaled(10_000) });
      // A denied call does not reach the service, so it costs no budget.
      for (let i = 0; i < 3; ++i) {
        const denied = await tool('fault_hang').then(() => null, (e) => e);
        assert(denied?.code === -32009, `denied: ${denied?.code} ${denied?.message}`);
      }
      const calls = [
        ['tools/call', () => tool('test_simple_text')],
        ['prompts/get', () => c.getPrompt({ name: 'test_simple_prompt' })],
        ['resources/read', () => c.readResource({ uri: 'test://static-text' })],
        ['resources/read by template', () => c.readResource({ uri: 'test://template/7/data' })],
        ['completion/complete', () => c.complete({ ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'p' } })],
        ['execute_tool', () => tool('execute_tool', { server: 'web', tool: 'test_simple_text' })],
      ];
      for (const [what, attempt] of calls) {
        const r = await attempt().then((x) => x, (e) => e);
        assert(!(r instanceof Error) && !r.isError, `${what} within the budget: ${r?.message ?? JSON.stringify(r)}`);
      }
      // Six spent: the next call of any kind is refused without the service.
      for (const [what, attempt] of calls) {
        const err = await attempt().then((x) => ({ answered: x }), rpcError);
        assert(err.code === -32010 && err.httpStatus === 429 && err.data?.limit === 'service' && err.data.retry_after_seconds > 0,
               `${what} over the budget: ${JSON.stringify(err)}`);
      }
      // Another service has its own budget. A completion it cannot offer is
      // answered without it and costs nothing; its one prompt call does.
      for (let i = 0; i < 3; ++i) {
        const r = await c.complete({ ref: { type: 'ref/prompt', name: 'greeting' }, argument: { name: 'who', value: 'a' } });
        assert(r.completion.values.length === 0, JSON.stringify(r));
      }
      const greeting = await c.getPrompt({ name: 'greeting', arguments: { who: 'you' } });
      assert(greeting.messages[0].content.text === 'Hello, you', JSON.stringify(greeting));
      const again = await c.getPrompt({ name: 'greeting', arguments: { who: 'you' } }).then((x) => ({ answered: x }), rpcError);
      assert(again.code === -32010 && again.data?.limit === 'service', JSON.stringify(again));
    } finally {
      await c.close();
    }
  });

  await check('an https service whose certificate is not trusted is refused, and the log says why', async () => {
    const untrusted = join(dir, 'untrusted.json');
    const other = makeCertificate('other');
    writeFileSync(untrusted, JSON.stringify({
      mcpServers: { webtls: { url: `https://127.0.0.1:${tlsPort}/mcp` } },
      services: { webtls: { tls: { caFile: other.cert } } },
      gateway: { prefix: 'never' },
    }));
    // It waits for its services before it listens: read its log instead.
    const proc = spawn(bulwark, ['--config', untrusted, '--no-builtin-tools', '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    pids.push(proc.pid);
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const line = /"service unreachable","service":"webtls","url":"https:\/\/127\.0\.0\.1:\d+\/mcp","error":"TLS handshake with https:\/\/127\.0\.0\.1:\d+ failed: certificate verification failed: self-signed certificate"/;
    for (let i = 0; i < 200 && !line.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    proc.kill('SIGKILL');
    assert(line.test(stderr), `no verification failure logged:\n${stderr.slice(-1500)}`);
  });

  await check('HTTP is served at once while a service starts; /ready names it until its tools appear', async () => {
    const slowCfg = join(dir, 'slow-start.json');
    // The service answers only after 2 s (a slow npx download, say).
    const slow = {
      mcpServers: { slow: { command: '/bin/sh', args: ['-c', `sleep ${2 * Math.ceil(scaled(1))}; exec "$0" --stdio --no-http --log-level error`, bulwark] } },
      health: { intervalMs: 100 },
    };
    writeFileSync(slowCfg, JSON.stringify(slow));
    /// Starts bulwark with `cfg`; resolves once it logs its port (not once
    /// it has started whole: that is what this check is about).
    const listening = async (cfg) => {
      const proc = spawn(bulwark, ['--config', cfg, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
      pids.push(proc.pid);
      const server = { proc, stderr: '' };
      proc.stderr.on('data', (d) => (server.stderr += d));
      await until('the "listening" line', () => (server.port = Number((server.stderr.match(/"msg":"listening".*?"port":(\d+)/) || [])[1])), 5000);
      return server;
    };
    const t0 = Date.now();
    const s = await listening(slowCfg);
    try {
      const listenedAfter = Date.now() - t0;
      assert(listenedAfter < scaled(1500), `listening only after ${listenedAfter} ms`);
      const early = await request(s.port, 'GET', { path: '/ready' });
      assert(early.status === 503, `/ready while the service starts: ${early.status} ${early.text}`);
      const health = await request(s.port, 'GET', { path: '/health' });
      assert(health.status === 200 || health.status === 503, `/health answers: ${health.status}`);
      const before = await callTool(s.port, 'echo', { text: 'core' });
      assert(before.result?.content?.[0]?.text === 'core', `the built-ins are served meanwhile: ${JSON.stringify(before)}`);
      await until('GET /ready answering 200', async () => (await request(s.port, 'GET', { path: '/ready' })).status === 200, 8000);
      const list = await request(s.port, 'POST', { body: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } },
                                                   headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' } });
      const names = (list.json?.result?.tools ?? []).map((t) => t.name);
      assert(names.includes('slow__echo') && names.includes('slow__add'), `the service's tools once it is ready: ${names.join(',')}`);
    } finally {
      s.proc.kill('SIGKILL');
    }
    // With health.readiness "core", /ready does not wait for the service.
    const coreCfg = join(dir, 'slow-start-core.json');
    writeFileSync(coreCfg, JSON.stringify({ ...slow, health: { intervalMs: 100, readiness: 'core' } }));
    const core = await listening(coreCfg);
    try {
      await until('GET /ready answering 200 while the service starts', async () => (await request(core.port, 'GET', { path: '/ready' })).status === 200, 1500);
      assert(!/"msg":"service listed","service":"slow"/.test(core.stderr), 'ready before the service listed its tools');
    } finally {
      core.proc.kill('SIGKILL');
    }
  });

  await check('a name clash in prefix mode never stops start-up, naming both services', async () => {
    const clash = join(dir, 'clash.json');
    const child = ['--stdio', '--no-http', '--log-level', 'error'];
    writeFileSync(clash, JSON.stringify({
      mcpServers: { one: { command: bulwark, args: child }, two: { command: bulwark, args: child } },
      gateway: { prefix: 'never' },
    }));
    const proc = spawn(bulwark, ['--config', clash, '--port', '0', '--no-builtin-tools'], { stdio: ['ignore', 'ignore', 'pipe'] });
    pids.push(proc.pid);
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => {
      const t = setTimeout(() => r('timeout'), 20_000);
      proc.once('exit', (c) => {
        clearTimeout(t);
        r(c);
      });
    });
    assert(code === 1, `exit code ${code}; its log:\n${stderr.slice(-2000)}`);
    assert(/gateway refused to start.*name clash \(prefix mode never\): tool '\w+' is offered by both service one and service two/.test(stderr), stderr.slice(-400));
  });

  await check('resource reads are cached per URI; resources/updated drops that URI only, list_changed every read', async () => {
    const cfg = join(dir, 'notes.json');
    writeFileSync(cfg, JSON.stringify({
      mcpServers: { notes: { command: process.execPath, args: [join(here, 'resource_server.mjs')] } },
      services: { notes: { cache: { ttlMs: 60000 } } },
      gateway: { prefix: 'never' },
    }));
    const port = await startBulwark(['--config', cfg, '--no-builtin-tools', '--port', '0'], 'notes');
    const c = new Client({ name: 'bulwark-notes-e2e', version: '1.0.0' }, { capabilities: {} });
    await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
    try {
      const read = async (uri) => {
        const r = await c.readResource({ uri }, { timeout: 10_000 });
        return { text: r.contents?.[0]?.text, cached: r._meta?.['io.bulwark/cache'] };
      };
      const tool = (name, args = {}) => c.callTool({ name, arguments: args }, undefined, { timeout: 10_000 });
      for (const uri of ['note://a', 'note://b']) {
        const first = await read(uri);
        assert(first.text === `${uri} v1` && !first.cached, `first read of ${uri} from the service: ${JSON.stringify(first)}`);
      }
      // A change the service does not tell of stays unseen until the TTL ends.
      await tool('bump_quietly', { uri: 'note://a' });
      const kept = await read('note://a');
      assert(kept.text === 'note://a v1' && kept.cached?.stale === false, `the read is answered from the cache: ${JSON.stringify(kept)}`);
      // The service says note://a changed (before answering the tool): its copy goes, note://b's stays.
      await tool('bump', { uri: 'note://a' });
      const fresh = await read('note://a');
      assert(fresh.text === 'note://a v3' && !fresh.cached, `after resources/updated the read is fresh: ${JSON.stringify(fresh)}`);
      const again = await read('note://a');
      assert(again.text === 'note://a v3' && again.cached?.stale === false, `and cached again: ${JSON.stringify(again)}`);
      await tool('bump_quietly', { uri: 'note://b' });
      const other = await read('note://b');
      assert(other.text === 'note://b v1' && other.cached?.stale === false, `another URI's copy is kept: ${JSON.stringify(other)}`);
      // A changed resource list drops every read of the service.
      await tool('relist');
      const relisted = await read('note://b');
      assert(relisted.text === 'note://b v2' && !relisted.cached, `after list_changed the read is fresh: ${JSON.stringify(relisted)}`);
    } finally {
      await c.close();
      await run.stop('notes');
    }
  });

  await check('a stdio child that keeps crashing is restarted childMaxRestarts times, then reported down: -32005 at once, degraded', async () => {
    const starts = join(dir, 'crashing-starts');
    writeFileSync(starts, '');
    const restarts = 2;
    const cfg = join(dir, 'crashing.json');
    writeFileSync(cfg, JSON.stringify({
      mcpServers: { crashing: { command: process.execPath, args: [join(here, 'crashing_server.mjs'), starts] } },
      services: { crashing: { timeoutMs: 20000, breaker: { consecutiveFailures: 1000 } } },
      gateway: { prefix: 'never', gatewayTools: true, childMaxRestarts: restarts, childRestartWindowSeconds: 600 },
      health: { intervalMs: 100 },
    }));
    const port = await startBulwark(['--config', cfg, '--no-builtin-tools', '--port', '0'], 'crashing');
    const count = (what) => readFileSync(starts, 'utf8').split('\n').filter((l) => l.startsWith(what)).length;
    // Restarts back off 100, 200 ms...: all are spent within a few seconds.
    await until(`${restarts + 1} exits`, async () => count('exit') === restarts + 1, 10_000);
    const servers = await until('crashing reported unavailable', async () => {
      const r = await callTool(port, 'list_servers');
      const s = (r.result?.structuredContent?.servers ?? []).find((x) => x.name === 'crashing');
      return s?.status === 'unavailable' ? s : null;
    }, 5000);
    assert(/exit status 7/.test(servers.reason ?? ''), `list_servers says how it exited: ${JSON.stringify(servers)}`);
    // /health is the last check's (every 100 ms here); between the last exit
    // and the connector giving up it shows the restart under way
    // ("starting"), already degraded.
    let h;
    await until('health degraded naming the service, its connector down', async () => {
      h = await (await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(scaled(5000)) })).json();
      return h.status === 'degraded' && (h.reasons ?? []).some((r) => /crashing.*exit status 7/.test(r))
        && h.components?.connectors?.crashing?.phase === 'down';
    }, 5000).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(h).slice(0, 600)}`);
    });
    for (const [name, args] of [['wobbly', {}], ['execute_tool', { server: 'crashing', tool: 'wobbly' }]]) {
      const t0 = Date.now();
      const r = await callTool(port, name, args);
      const took = Date.now() - t0;
      assert(r.error?.code === -32005 && /unavailable/.test(r.error.message) && /exit status 7/.test(r.error.message),
             `${name}: -32005 saying why: ${JSON.stringify(r)}`);
      assert(r.error.data?.retry_after_seconds > 500 && r.error.data.reachedService === false,
             `${name}: retry after the rest of the 600 s window: ${JSON.stringify(r.error.data)}`);
      assert(took < scaled(2000), `${name} answered in ${took} ms, not after the service timeout`);
    }
    // No further start while the restarts are spent.
    await new Promise((r) => setTimeout(r, scaled(1500)));
    assert(count('start') === restarts + 1, `started ${count('start')} times, expected ${restarts + 1}`);
    await run.stop('crashing');
  });
} catch (e) {
  run.failed++;
  console.log(`FAIL setup: ${e?.stack ?? e}\n${logs.slice(-30).join('\n')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (run.failed) console.log(logs.slice(-40).join('\n'));
console.log(`${run.passed} passed, ${run.failed} failed`);
run.finish(run.failed ? 1 : 0);
