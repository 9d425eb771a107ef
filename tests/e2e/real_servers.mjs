#!/usr/bin/env node
// End-to-end test of Bulwark in front of the real MCP servers from npm
// (`@modelcontextprotocol/server-everything` and `server-memory`, stdio
// children of the gateway), driven by the official SDK clients: the v1 SDK
// (2025-era sessions) and the v2 client (`@modelcontextprotocol/client`,
// 2026-07-28, stateless). Built-in tools are on and the gateway tools too.
//
//   node tests/e2e/real_servers.mjs --bulwark build/bulwark
//
// Checks:
// - a sampling or elicitation request a service makes while serving one
//   client's call reaches that client and no other, under concurrent calls;
// - over stdio, a client without the roots capability can call a tool of
//   server-everything right after connecting;
// - a stdio service's environment holds its own `env`, PATH and the
//   variables named in its `inheritEnv`, never Bulwark's secrets
//   (BULWARK_ADMIN_TOKEN, BULWARK_REDIS) or other variables of Bulwark's;
// - no tool, prompt, resource or template is listed twice: a service tool
//   named like a built-in is prefixed in mode "conditional", and refused at
//   start-up in mode "never", with a log line naming both sides;
// - execute_tool relays a service's sampling request to the calling client;
// - server-memory written and read through the v2 client: a resource read
//   carries ttlMs 0 and cacheScope "private" (the service gives no hints),
//   and a 2025-era client never sees the 2026-only result fields;
// - a service whose command does not exist, and an HTTP service answering
//   404, beside a working one: the gateway is ready and degraded, says why,
//   and answers calls to the broken service with a typed error.
// Every process is killed by pid.

import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { assert, callTool, harness, modernRequest, openSession, request, scaled, timeScale, until } from './harness.mjs';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernHTTPClientTransport,
} from '@modelcontextprotocol/client';

const run = harness({ scratch: 'bulwark-real-', watchdogMs: 220_000 });
const { bulwark, dir, check, startBulwark } = run;

const here = dirname(fileURLToPath(import.meta.url));
const modules = resolve(here, '../node_modules/@modelcontextprotocol');
const everything = { command: process.execPath, args: [join(modules, 'server-everything/dist/index.js'), 'stdio'] };
const memory = (file) => ({
  command: process.execPath,
  args: [join(modules, 'server-memory/dist/index.js')],
  env: { MEMORY_FILE_PATH: file },
});

const CALL_TIMEOUT = scaled(15_000);
const textOf = (r) => (r?.content ?? []).map((c) => c.text ?? '').join('\n');
const secret = () => randomBytes(12).toString('hex');

let configs = 0;
/// Writes `config` to a file in the scratch directory; returns its path.
function writeConfig(config) {
  const file = join(dir, `config-${++configs}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/// Starts a front on a free port with `config`, and `env` added to the
/// environment it inherits; resolves with its port.
function startFront(config, label, env = {}) {
  const argv = ['--config', writeConfig(config), '--port', '0', '--address', '127.0.0.1'];
  // spawn() copies the environment at once: set it around the call only.
  const saved = {};
  for (const k of Object.keys(env)) {
    saved[k] = process.env[k];
    process.env[k] = env[k];
  }
  try {
    return startBulwark(argv, label);
  } finally {
    for (const k of Object.keys(env)) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

/// A 2025-era SDK client connected to the front on `port`.
async function legacyClient(port, name, capabilities = {}) {
  const c = new Client({ name, version: '1.0.0' }, { capabilities });
  await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)), { timeout: CALL_TIMEOUT });
  return c;
}

const call = (c, name, args = {}) => c.callTool({ name, arguments: args }, undefined, { timeout: CALL_TIMEOUT });

/// Every page of a list method of `c`; returns the concatenated items.
async function allPages(c, method, key) {
  const items = [];
  let cursor;
  for (let page = 0; page < 100; page++) {
    const r = await c[method](cursor ? { cursor } : {}, { timeout: CALL_TIMEOUT });
    items.push(...r[key]);
    cursor = r.nextCursor;
    if (!cursor) return items;
  }
  throw new Error(`${method}: more than 100 pages`);
}

const duplicates = (xs) => [...new Set(xs.filter((x, i) => xs.indexOf(x) !== i))];

/// Waits at most `ms` for `child` to exit; resolves with its code, or
/// 'timeout'.
function exitWithin(child, ms) {
  return new Promise((r) => {
    if (child.exitCode !== null) return r(child.exitCode);
    const t = setTimeout(() => r('timeout'), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      r(code ?? signal);
    });
  });
}

await run.main(async () => {
  // ---------------------------------------------------------------- 1
  await check('sampling and elicitation requests reach the client whose call caused them, 20 concurrent rounds each', async () => {
    const port = await startFront({ mcpServers: { everything }, gateway: { gatewayTools: true } }, 'concurrent');
    const seen = { A: { sampling: 0, elicitation: 0 }, B: { sampling: 0, elicitation: 0 } };
    const clients = {};
    for (const who of ['A', 'B']) {
      const c = new Client({ name: `real-servers-${who}`, version: '1.0.0' },
                           { capabilities: { sampling: {}, elicitation: {} } });
      c.setRequestHandler(CreateMessageRequestSchema, async () => {
        seen[who].sampling++;
        return { role: 'assistant', content: { type: 'text', text: `answer from ${who}` }, model: `model-${who}`, stopReason: 'endTurn' };
      });
      // The schema requires `name` only; the tool prints it back.
      c.setRequestHandler(ElicitRequestSchema, async () => {
        seen[who].elicitation++;
        return { action: 'accept', content: { name: `client ${who}` } };
      });
      await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)), { timeout: CALL_TIMEOUT });
      clients[who] = c;
    }
    try {
      const names = (await allPages(clients.A, 'listTools', 'tools')).map((t) => t.name);
      for (const t of ['trigger-sampling-request', 'trigger-elicitation-request'])
        assert(names.includes(t), `${t} is listed unprefixed: ${names.join(' ')}`);
      const rounds = [
        ['sampling', 'trigger-sampling-request', (who) => ({ prompt: `question of ${who}`, maxTokens: 20 }),
         (who) => `answer from ${who}`],
        ['elicitation', 'trigger-elicitation-request', () => ({}), (who) => `Name: client ${who}`],
      ];
      for (const [kind, tool, args, mark] of rounds) {
        for (let round = 1; round <= 20; round++) {
          for (const who of ['A', 'B']) seen[who][kind] = 0;
          const settled = await Promise.allSettled(['A', 'B'].map((who) => call(clients[who], tool, args(who))));
          settled.forEach((s, i) => {
            const who = ['A', 'B'][i];
            const other = who === 'A' ? 'B' : 'A';
            assert(s.status === 'fulfilled', `${kind} round ${round}: client ${who}'s call failed: ${s.reason?.message ?? s.reason}`);
            const text = textOf(s.value);
            assert(!s.value.isError, `${kind} round ${round}: client ${who} got an error result: ${JSON.stringify(text.slice(0, 300))}`);
            assert(text.includes(mark(who)), `${kind} round ${round}: client ${who}'s result lacks its own answer: ${JSON.stringify(text.slice(0, 300))}`);
            assert(!text.includes(mark(other)), `${kind} round ${round}: client ${who}'s result holds client ${other}'s answer`);
          });
          for (const who of ['A', 'B'])
            assert(seen[who][kind] === 1, `${kind} round ${round}: client ${who}'s handler ran ${seen[who][kind]} times`);
        }
      }
    } finally {
      await Promise.allSettled(Object.values(clients).map((c) => c.close()));
      await run.stop('concurrent');
    }
  });

  // ---------------------------------------------------------------- 2
  await check('over stdio, a client without roots calls a tool of server-everything right after connecting (3 fresh starts)', async () => {
    const cfg = writeConfig({ mcpServers: { everything }, gateway: { gatewayTools: true } });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const transport = new StdioClientTransport({
        command: bulwark,
        args: ['--stdio', '--no-http', '--config', cfg],
        stderr: 'pipe',
      });
      let stderr = '';
      transport.stderr?.on('data', (d) => (stderr += d));
      const c = new Client({ name: 'real-servers-desktop', version: '1.0.0' }, { capabilities: {} });
      try {
        await c.connect(transport, { timeout: CALL_TIMEOUT });
        // server-everything asks its client (Bulwark) for roots/list some
        // 350 ms after it is initialized, so this 1 s call is in flight then.
        const r = await c.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } },
                                   undefined, { timeout: CALL_TIMEOUT })
          .catch((e) => ({ thrown: e }));
        assert(!r.thrown, `start ${attempt}: the call failed with ${r.thrown?.code} ${r.thrown?.message}; log tail: ${JSON.stringify(stderr.slice(-600))}`);
        assert(!r.isError, `start ${attempt}: an error result: ${JSON.stringify(textOf(r))}`);
        assert(/Long running operation completed/.test(textOf(r)), `start ${attempt}: ${JSON.stringify(textOf(r))}`);
      } finally {
        if (transport.pid) run.pids.push(transport.pid);
        await c.close().catch(() => {});
        await transport.close().catch(() => {});
      }
    }
  });

  // ---------------------------------------------------------------- 3
  const adminToken = secret();
  const redisPassword = secret();
  const otherSecret = secret();
  const secretEnv = {
    BULWARK_ADMIN_TOKEN: adminToken,
    BULWARK_REDIS: `redis://:${redisPassword}@127.0.0.1:1`,
    SOME_OTHER_SECRET: otherSecret,
  };
  /// get-env of server-everything behind a front with `config` and `env`:
  /// the result text and the parsed environment.
  const childEnv = async (config, label, env) => {
    const port = await startFront(config, label, env);
    const c = await legacyClient(port, `real-servers-${label}`);
    try {
      const r = await call(c, 'get-env');
      assert(!r.isError, `get-env: ${JSON.stringify(textOf(r).slice(0, 300))}`);
      const text = textOf(r);
      return { text, vars: JSON.parse(text) };
    } finally {
      await c.close();
      await run.stop(label);
    }
  };

  await check("a stdio service's environment has its own env and PATH, but none of Bulwark's secrets", async () => {
    const { text, vars } = await childEnv(
      { mcpServers: { everything: { ...everything, env: { VISIBLE_TO_CHILD: 'yes' } } }, gateway: { gatewayTools: true } },
      'env', secretEnv);
    const leaks = [['the admin token', adminToken], ['the Redis password', redisPassword], ['SOME_OTHER_SECRET', otherSecret],
                   ['the name BULWARK_ADMIN_TOKEN', 'BULWARK_ADMIN_TOKEN'], ['the name BULWARK_REDIS', 'BULWARK_REDIS']]
      .filter(([, v]) => text.includes(v)).map(([what]) => what);
    assert(leaks.length === 0, `the child's environment holds ${leaks.join(', ')}`);
    assert(vars.VISIBLE_TO_CHILD === 'yes', `the service's own env: VISIBLE_TO_CHILD=${vars.VISIBLE_TO_CHILD}`);
    assert(vars.PATH && vars.PATH.length > 0, 'PATH reaches the child');
  });

  await check("a variable named in the service's inheritEnv reaches the child", async () => {
    const { vars } = await childEnv(
      { mcpServers: { everything: { ...everything, inheritEnv: ['PASSED_ON'] } }, gateway: { gatewayTools: true } },
      'inherit', { ...secretEnv, PASSED_ON: 'xyz' });
    assert(vars.PASSED_ON === 'xyz', `PASSED_ON=${vars.PASSED_ON}`);
    assert(vars.SOME_OTHER_SECRET === undefined, 'a variable not named is not passed on');
  });

  // ---------------------------------------------------------------- 4
  await check('with the built-ins on, no tool, prompt, resource or template is listed twice; a clashing echo is prefixed', async () => {
    const port = await startFront({ mcpServers: { everything }, gateway: { gatewayTools: true } }, 'names');
    const c = await legacyClient(port, 'real-servers-names');
    try {
      const lists = [
        ['tool name', (await allPages(c, 'listTools', 'tools')).map((t) => t.name)],
        ['prompt name', (await allPages(c, 'listPrompts', 'prompts')).map((p) => p.name)],
        ['resource URI', (await allPages(c, 'listResources', 'resources')).map((r) => r.uri)],
        ['template', (await allPages(c, 'listResourceTemplates', 'resourceTemplates')).map((t) => t.uriTemplate)],
      ];
      for (const [what, xs] of lists) {
        const twice = duplicates(xs);
        assert(twice.length === 0, `${what}s listed twice: ${twice.join(', ')}`);
      }
      const tools = lists[0][1];
      assert(tools.includes('everything__echo'), `everything__echo is listed: ${tools.join(' ')}`);
      assert(tools.includes('echo'), "the built-in echo is listed");
      const theirs = await call(c, 'everything__echo', { message: 'to the service' });
      assert(!theirs.isError && textOf(theirs) === 'Echo: to the service', `everything__echo: ${JSON.stringify(theirs)}`);
      const ours = await call(c, 'echo', { text: 'to bulwark' });
      assert(!ours.isError && textOf(ours) === 'to bulwark', `built-in echo: ${JSON.stringify(ours)}`);
    } finally {
      await c.close();
      await run.stop('names');
    }
  });

  await check('in prefix mode "never" a service tool named like a built-in stops start-up, naming both sides', async () => {
    const cfg = writeConfig({ mcpServers: { everything }, gateway: { gatewayTools: true, prefix: 'never' } });
    const proc = spawn(bulwark, ['--config', cfg, '--port', '0', '--address', '127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    run.pids.push(proc.pid);
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const code = await exitWithin(proc, scaled(15_000));
    if (code === 'timeout') proc.kill('SIGKILL');
    assert(code !== 'timeout' && code !== 0, `exit status ${code} within ${scaled(15)} s (expected a refusal to start, non-zero); log tail: ${JSON.stringify(stderr.slice(-600))}`);
    const line = stderr.split('\n').find((l) => /\becho\b/.test(l) && /everything/.test(l) && /built-?in|Bulwark's own/i.test(l));
    assert(line, `no log line names echo, the service everything and the built-in; log tail: ${JSON.stringify(stderr.slice(-600))}`);
  });

  // ---------------------------------------------------------------- 5
  await check("execute_tool relays the service's sampling request to the calling client (5 times), breaker stays closed", async () => {
    const port = await startFront({ mcpServers: { everything }, gateway: { gatewayTools: true } }, 'execute');
    let sampled = 0;
    const c = new Client({ name: 'real-servers-execute', version: '1.0.0' }, { capabilities: { sampling: {} } });
    c.setRequestHandler(CreateMessageRequestSchema, async () => {
      sampled++;
      return { role: 'assistant', content: { type: 'text', text: 'answer via execute_tool' }, model: 'e2e', stopReason: 'endTurn' };
    });
    await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)), { timeout: CALL_TIMEOUT });
    try {
      for (let i = 1; i <= 5; i++) {
        const before = sampled;
        const r = await call(c, 'execute_tool', {
          server: 'everything', tool: 'trigger-sampling-request', arguments: { prompt: `execute ${i}`, maxTokens: 20 },
        }).catch((e) => ({ thrown: e }));
        assert(!r.thrown, `call ${i} failed: ${r.thrown?.code} ${r.thrown?.message}`);
        assert(!r.isError, `call ${i}: an error result: ${JSON.stringify(textOf(r).slice(0, 300))}`);
        assert(sampled === before + 1, `call ${i}: the sampling handler ran ${sampled - before} times`);
        assert(textOf(r).includes('answer via execute_tool'), `call ${i}: ${JSON.stringify(textOf(r).slice(0, 300))}`);
      }
      const sum = await call(c, 'get-sum', { a: 20, b: 22 }).catch((e) => ({ thrown: e }));
      assert(!sum.thrown && !sum.isError && textOf(sum).includes('42'),
             `a plain call afterwards: ${sum.thrown?.message ?? JSON.stringify(textOf(sum))}`);
    } finally {
      await c.close();
      await run.stop('execute');
    }
  });

  // ---------------------------------------------------------------- 6
  await check('server-memory through the v2 client: a write is seen by the next read; no invented freshness; no 2026 fields for 2025', async () => {
    const uri = 'memory://knowledge-graph';
    const port = await startFront({ mcpServers: { memory: memory(join(dir, 'memory.jsonl')) }, gateway: { gatewayTools: true } },
                                  'memory');
    const c = new ModernClient({ name: 'real-servers-v2', version: '1.0.0' },
                               { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await c.connect(new ModernHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)), { timeout: CALL_TIMEOUT });
    try {
      const entity = `entity-${secret()}`;
      const first = await c.readResource({ uri }, { timeout: CALL_TIMEOUT });
      assert(!JSON.stringify(first.contents).includes(entity), 'the new entity is there before it is made');
      const made = await c.callTool({ name: 'create_entities', arguments: {
        entities: [{ name: entity, entityType: 'test', observations: ['made through bulwark'] }],
      } }, { timeout: CALL_TIMEOUT });
      assert(!made.isError, `create_entities: ${JSON.stringify(textOf(made))}`);
      const second = await c.readResource({ uri }, { timeout: CALL_TIMEOUT });
      assert(JSON.stringify(second.contents).includes(entity),
             `the second read does not show the new entity: ${JSON.stringify(second).slice(0, 300)}`);

      const raw = await modernRequest(port, 'resources/read', { uri }, { 'mcp-name': uri });
      const res = raw.json?.result;
      assert(res, `raw resources/read: ${raw.status} ${raw.text.slice(0, 300)}`);
      assert(res.ttlMs === 0 && res.cacheScope === 'private',
             `2026-07-28 resources/read carries ttlMs ${res.ttlMs}, cacheScope ${JSON.stringify(res.cacheScope)} (expected 0, "private")`);

      const sid = await openSession(port, {});
      const legacy = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      const read = await request(port, 'POST', { body: { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri } }, headers: legacy });
      const tool = await request(port, 'POST', {
        body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'read_graph', arguments: {} } }, headers: legacy,
      });
      for (const [what, r] of [['resources/read', read], ['tools/call', tool]]) {
        assert(r.json?.result, `2025-era ${what}: ${r.status} ${r.text.slice(0, 300)}`);
        const extra = ['resultType', 'ttlMs', 'cacheScope'].filter((k) => k in r.json.result);
        assert(extra.length === 0, `2025-era ${what} result carries ${extra.join(', ')}`);
      }
    } finally {
      await c.close();
      await run.stop('memory');
    }
  });

  // ---------------------------------------------------------------- 7
  await check('a missing command and a 404 endpoint beside a working service: ready, degraded, and typed errors saying why', async () => {
    const notFound = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      });
    });
    await new Promise((r) => notFound.listen(0, '127.0.0.1', r));
    try {
      const deadline = Date.now() + scaled(20_000);
      const started = Date.now();
      const port = await startFront({
        mcpServers: {
          broken: { command: '/nonexistent/bulwark-no-such-command' },
          badpath: { url: `http://127.0.0.1:${notFound.address().port}/` },
          // Starts, then exits before it answers, until its restarts are spent.
          crashing: { command: '/bin/sh', args: ['-c', 'exit 3'] },
          everything,
        },
        gateway: { gatewayTools: true, childMaxRestarts: 2 },
      }, 'broken');
      // Start-up waits for the services to list their tools, but not for
      // one whose start failed.
      const took = Date.now() - started;
      assert(took < scaled(8000), `listening only after ${took} ms`);
      let ready;
      await until('GET /ready answering 200', async () => (ready = await request(port, 'GET', { path: '/ready' })).status === 200,
                  Math.max(1000, deadline - Date.now()) / timeScale)
        .catch((e) => {
          throw new Error(`${e.message} within ${scaled(20)} s of the start: last ${ready?.status} ${JSON.stringify(ready?.text.slice(0, 300))}`);
        });

      const health = await request(port, 'GET', { path: '/health' });
      assert(health.json?.status === 'degraded', `/health status: ${health.text.slice(0, 500)}`);
      const reasons = (health.json.reasons ?? []).map((r) => (typeof r === 'string' ? r : JSON.stringify(r)));
      assert(reasons.some((r) => /broken/.test(r) && /No such file or directory/i.test(r)),
             `no reason names broken and its start failure: ${JSON.stringify(reasons)}`);
      assert(reasons.some((r) => /badpath/.test(r) && /404/.test(r) && /\bpath\b/i.test(r)),
             `no reason names badpath, 404 and the path: ${JSON.stringify(reasons)}`);
      assert(reasons.some((r) => /crashing/.test(r) && /exit status 3/.test(r)),
             `no reason names crashing and how it exited: ${JSON.stringify(reasons)}`);

      const listed = await callTool(port, 'list_servers');
      const servers = listed.result?.structuredContent?.servers ?? [];
      const byName = Object.fromEntries(servers.map((s) => [s.name, s]));
      assert(byName.broken?.status === 'unavailable' && byName.broken.reason,
             `list_servers, broken: ${JSON.stringify(byName.broken)}`);
      assert(byName.everything?.status === 'ready', `list_servers, everything: ${JSON.stringify(byName.everything)}`);

      assert(byName.crashing?.status === 'unavailable' && /exit status 3/.test(byName.crashing.reason),
             `list_servers, crashing: ${JSON.stringify(byName.crashing)}`);
      const crashed = await callTool(port, 'execute_tool', { server: 'crashing', tool: 'x' });
      assert(crashed.error?.code === -32005 && crashed.error.message.includes(byName.crashing.reason),
             `execute_tool on crashing: ${JSON.stringify(crashed.error ?? crashed.result).slice(0, 300)}`);
      for (const [tool, args] of [['get_server_tools', { server: 'broken' }], ['execute_tool', { server: 'broken', tool: 'x' }]]) {
        const r = await callTool(port, tool, args);
        assert(r.error?.code === -32005, `${tool}: expected error -32005, got ${JSON.stringify(r.error ?? r.result).slice(0, 300)}`);
        assert(/unavailable/i.test(r.error.message) && r.error.message.includes(byName.broken.reason),
               `${tool}: the message names the service unavailable and why: ${r.error.message}`);
        assert(!/has no tool named/.test(r.error.message), `${tool}: ${r.error.message}`);
      }
      const sum = await callTool(port, 'get-sum', { a: 20, b: 22 });
      assert(!sum.error && !sum.result?.isError && textOf(sum.result).includes('42'),
             `everything's get-sum: ${JSON.stringify(sum).slice(0, 300)}`);
    } finally {
      notFound.closeAllConnections();
      notFound.close();
      if (run.started.broken) await run.stop('broken');
    }
  });
});
