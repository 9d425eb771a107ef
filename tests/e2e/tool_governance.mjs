#!/usr/bin/env node
// End-to-end test of how a service's tools reach clients through the
// gateway: operator overrides (`services.<name>.tools`), as the official
// TypeScript SDK client sees them, in front of a Streamable HTTP MCP
// service run by this script that records what reaches it.
//
//   node tests/e2e/tool_governance.mjs --bulwark build/bulwark --console build/bulwark-console
//
// Checks: a renamed tool is listed under its new name with the new title,
// description and hints merged over the service's annotations, and a call
// by that name reaches the service under its own name; a hidden tool is
// neither listed nor callable, also through get_server_tools and
// execute_tool; an idempotentHint set by the operator makes a failed
// attempt be retried; bad overrides are refused with their paths. Then
// pinning (`gateway.pinning`), in front of a stdio service that redefines a
// tool and says so with list_changed: the approved definition keeps being
// served, across a restart too, while the change is held (log, audit
// entry, the tool_changed alert, the admin view with what differs); a
// held change is shown (what differs) and approved with bulwark-console,
// the admin API refusing a wrong token or nothing held, and clients see the
// new definition; a broken pin file is refused at start. Then a fleet: two
// instances sharing a redis-server (started here) keep their pins there with
// no pin file; an instance that starts after a change, its service showing
// the changed definition first, serves the approved one and shows the held
// change; Redis's password rotates in the file redis.url refers to and both
// instances connect again with it; an approval through one instance is
// served by both. Every process is killed by pid.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { adminRequest, assert, freePort, harness, jsonRpcServer, redisCommand, redisCommands, rpcError, scaled, sleep, until } from './harness.mjs';

const arg = (name, fallback) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : fallback);
const consoleBin = arg('--console', '');
const redisServer = arg('--redis-server', 'redis-server');

/// Sends AUTH, then one command, to the Redis on `port`; the raw answer of
/// the command.
async function redisCommandsAuthed(port, password, words) {
  const raw = await redisCommands(port, ['AUTH', password], words);
  assert(raw.startsWith('+OK\r\n'), `AUTH: ${raw}`);
  return raw.slice(5);
}
const run = harness({ scratch: 'bulwark-tool-governance-', watchdogMs: 140_000, onFinish: () => service.close() });
const { check } = run;

// -- the service -------------------------------------------------------------------

const calls = []; // the names of tools/call requests that reached the service
const executions = {};
const tools = [
  { name: 'search', title: 'Search', description: 'Searches.', inputSchema: { type: 'object' }, annotations: { readOnlyHint: false, openWorldHint: false } },
  { name: 'delete_all', description: 'Deletes everything.', inputSchema: { type: 'object' }, annotations: { destructiveHint: true } },
  { name: 'flaky', description: 'Fails its first run after it began.', inputSchema: { type: 'object' } },
  { name: 'plain', description: 'As the service has it.', inputSchema: { type: 'object' } },
];

const service = jsonRpcServer((req, msg, res, answer) => {
  if (msg.id === undefined) return res.writeHead(202).end();
  switch (msg.method) {
    case 'initialize':
      return answer({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'crm', version: '1' } });
    case 'tools/list':
      return answer({ tools });
    case 'tools/call': {
      const name = msg.params?.name;
      calls.push(name);
      const n = (executions[name] = (executions[name] ?? 0) + 1);
      if (name === 'flaky' && n === 1) return res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
      return answer({ content: [{ type: 'text', text: `${name} ran ${n}` }] });
    }
    default:
      return answer({});
  }
});

const overrides = {
  search: { name: 'find_customer', title: 'Find a customer', description: 'Finds customers by name.', annotations: { readOnlyHint: true } },
  delete_all: { hidden: true },
  flaky: { annotations: { idempotentHint: true } },
};

await run.main(async () => {
  await new Promise((r) => service.listen(0, '127.0.0.1', r));
  const config = (tools) => ({
    http: { port: 0, address: '127.0.0.1' },
    mcpServers: { crm: { url: `http://127.0.0.1:${service.address().port}/mcp` } },
    services: { crm: { protocol: '2025-11-25', retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50, jitter: 0 }, tools } },
    gateway: { prefix: 'never', gatewayTools: true },
  });

  await check('bad overrides are refused with their paths', async () => {
    for (const [tools, path, why] of [
      [{ search: { annotations: { safeHint: true } } }, '$.services.crm.tools.search.annotations.safeHint', 'unknown hint'],
      [{ search: { name: 'has space' } }, '$.services.crm.tools.search.name', 'must be 1 to 128'],
      [{ search: { name: 'x' }, plain: { name: 'x' } }, '$.services.crm.tools.search.name', 'also the new name of plain'],
      [{ search: { hidden: 'yes' } }, '$.services.crm.tools.search.hidden', 'true or false'],
      [{ search: { colour: 'red' } }, '$.services.crm.tools.search.colour', 'unknown key'],
    ]) {
      const path0 = join(run.dir, 'bad.json');
      writeFileSync(path0, JSON.stringify(config(tools)));
      const r = spawnSync(run.bulwark, ['--check-config', path0], { encoding: 'utf8' });
      const out = r.stdout + r.stderr;
      assert(r.status === 2 && out.includes(path) && out.includes(why), `${JSON.stringify(tools)}: ${r.status} ${out}`);
    }
  });

  const cfgPath = join(run.dir, 'front.json');
  writeFileSync(cfgPath, JSON.stringify(config(overrides)));
  const port = await run.startBulwark(['--config', cfgPath, '--no-builtin-tools'], 'front');
  const client = new Client({ name: 'governance-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));

  await check('the SDK client lists a renamed tool with its new title, description and merged hints; a hidden one not at all', async () => {
    const { tools: listed } = await client.listTools();
    const names = listed.map((t) => t.name).sort();
    for (const name of ['find_customer', 'flaky', 'plain', 'get_server_tools', 'execute_tool'])
      assert(names.includes(name), `${name} is not listed: ${names}`);
    assert(!names.includes('search') && !names.includes('delete_all'), `listed: ${names}`);
    const found = listed.find((t) => t.name === 'find_customer');
    assert(found.title === 'Find a customer' && found.description === 'Finds customers by name.', JSON.stringify(found));
    assert(found.annotations?.readOnlyHint === true && found.annotations?.openWorldHint === false, `hints: ${JSON.stringify(found.annotations)}`);
    const flaky = listed.find((t) => t.name === 'flaky');
    assert(flaky.annotations?.idempotentHint === true, JSON.stringify(flaky));
    const plain = listed.find((t) => t.name === 'plain');
    assert(plain.description === 'As the service has it.' && plain.annotations === undefined, JSON.stringify(plain));
  });

  await check('a call by the new name reaches the service under its own name', async () => {
    const before = calls.length;
    const r = await client.callTool({ name: 'find_customer', arguments: {} });
    assert(r.content?.[0]?.text === 'search ran 1', JSON.stringify(r));
    assert(JSON.stringify(calls.slice(before)) === '["search"]', `the service saw ${calls.slice(before)}`);
  });

  await check('a hidden tool cannot be called, by its name or through execute_tool, and the old name is gone', async () => {
    const before = calls.length;
    for (const name of ['delete_all', 'search']) {
      let e;
      try {
        const r = await client.callTool({ name, arguments: {} });
        e = r.isError ? r : null;
      } catch (err) {
        e = rpcError(err);
      }
      assert(e && (e.code === -32602 || e.isError), `${name}: ${JSON.stringify(e)}`);
    }
    const viaGateway = await client.callTool({ name: 'execute_tool', arguments: { server: 'crm', tool: 'delete_all', arguments: {} } })
      .catch((err) => rpcError(err));
    assert(viaGateway.code === -32602 || viaGateway.isError, `execute_tool: ${JSON.stringify(viaGateway)}`);
    assert(calls.length === before, `the service saw ${calls.slice(before)}`);
    const ok = await client.callTool({ name: 'execute_tool', arguments: { server: 'crm', tool: 'find_customer', arguments: {} } });
    assert(ok.content?.[0]?.text?.startsWith('search ran'), `execute_tool by the shown name: ${JSON.stringify(ok)}`);
  });

  await check('get_server_tools shows the tools as clients see them', async () => {
    const r = await client.callTool({ name: 'get_server_tools', arguments: { server: 'crm' } });
    const text = r.content?.[0]?.text ?? '';
    const shown = JSON.parse(text);
    const names = (shown.tools ?? shown).map((t) => t.name);
    assert(names.includes('find_customer') && !names.includes('delete_all') && !names.includes('search'), text.slice(0, 400));
  });

  await check('an idempotentHint set by the operator lets a failed attempt be retried', async () => {
    const r = await client.callTool({ name: 'flaky', arguments: {} });
    assert(r.content?.[0]?.text === 'flaky ran 2', JSON.stringify(r));
    assert(executions.flaky === 2, `ran ${executions.flaky} times`);
  });

  await client.close();
  await run.stop('front');

  // -- pinning -----------------------------------------------------------------------

  const adminToken = 'governance-admin-token';
  const pinFile = join(run.dir, 'pins.json');
  const auditFile = join(run.dir, 'audit.jsonl');
  const pinned = join(run.dir, 'pinned.json');
  writeFileSync(pinned, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    admin: { tokenSha256: createHash('sha256').update(adminToken).digest('hex') },
    audit: { file: auditFile },
    health: { intervalMs: 200 },
    mcpServers: {
      words: {
        command: process.execPath,
        args: [join(dirname(fileURLToPath(import.meta.url)), 'redefining_server.mjs')],
        env: { REDEFINING_STATE: join(run.dir, 'words-state.json') },
      },
    },
    gateway: { prefix: 'never', pinning: { mode: 'keep', file: pinFile } },
  }));
  let pport = await run.startBulwark(['--config', pinned, '--no-builtin-tools'], 'pinned');
  const connect = async (port) => {
    const c = new Client({ name: 'pinning-test', version: '1' });
    await c.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
    return c;
  };
  const lookupOf = async (c) => (await c.listTools()).tools.find((t) => t.name === 'lookup');
  let pc = await connect(pport);

  await check('a tool is pinned as first seen, in the pin file', async () => {
    const t = await lookupOf(pc);
    assert(t?.description === 'Looks a word up.', JSON.stringify(t));
    const book = JSON.parse(readFileSync(pinFile, 'utf8'));
    assert(book.services?.words?.lookup?.definition?.description === 'Looks a word up.', JSON.stringify(book).slice(0, 300));
    assert(/^[0-9a-f]{64}$/.test(book.services.words.lookup.hash), 'a SHA-256');
  });

  await check('a redefined tool keeps its approved definition while the change is held: log, audit, admin view, alert', async () => {
    await pc.callTool({ name: 'redefine', arguments: { description: 'Looks a word up and forwards it.' } });
    const view = await until('the held change in the admin view', async () => {
      const r = await adminRequest(pport, adminToken, 'GET', 'tools');
      return r.body?.held?.length ? r.body : null;
    });
    const held = view.held[0];
    assert(held.service === 'words' && held.tool === 'lookup', JSON.stringify(held));
    const fields = held.changes.map((c) => c.field).sort();
    assert(JSON.stringify(fields) === '["description","inputSchema"]', `changes: ${JSON.stringify(held.changes)}`);
    const d = held.changes.find((c) => c.field === 'description');
    assert(d.before === 'Looks a word up.' && d.after === 'Looks a word up and forwards it.', JSON.stringify(d));
    const t = await lookupOf(pc);
    assert(t.description === 'Looks a word up.' && !t.inputSchema.properties.forward_to, `served: ${JSON.stringify(t)}`);
    assert(run.logs.some((l) => l.includes('tool definition changed; the change is held')), 'the log says so');
    const audit = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert(audit.some((e) => e.event === 'tool.held' && e.target === 'words:lookup'), 'an audit entry');
    await until('the tool_changed alert', async () => {
      const a = await adminRequest(pport, adminToken, 'GET', 'alerts');
      return a.body?.rules?.find((r) => r.name === 'tool_changed')?.fired >= 1;
    });
  });

  await check('the change stays held across a restart (the service lists it from its start on)', async () => {
    await pc.close();
    await run.stop('pinned');
    const auditBefore = readFileSync(auditFile, 'utf8').split('\n').filter((l) => l.includes('"tool.held"')).length;
    pport = await run.startBulwark(['--config', pinned, '--no-builtin-tools'], 'pinned');
    pc = await connect(pport);
    const t = await lookupOf(pc);
    assert(t.description === 'Looks a word up.' && !t.inputSchema.properties.forward_to, `served: ${JSON.stringify(t)}`);
    await until('the held change after the restart', async () => {
      const r = await adminRequest(pport, adminToken, 'GET', 'tools');
      return r.body?.held?.[0]?.pending?.description === 'Looks a word up and forwards it.';
    });
    const auditAfter = readFileSync(auditFile, 'utf8').split('\n').filter((l) => l.includes('"tool.held"')).length;
    assert(auditAfter === auditBefore, 'a change already held is not held anew');
  });

  await check('an operator approves the held change; clients then see the new definition', async () => {
    const refused = await adminRequest(pport, 'wrong', 'POST', 'tools/approve', { service: 'words', tool: 'lookup' });
    assert(refused.status === 401, `without the token: ${refused.status}`);
    const none = await adminRequest(pport, adminToken, 'POST', 'tools/approve', { service: 'words', tool: 'nothing' });
    assert(none.status === 404, `nothing held: ${none.status}`);
    // The operator's console shows the difference and approves.
    const shown = spawnSync(consoleBin, ['--url', `http://127.0.0.1:${pport}`, '--token', adminToken, '-c', 'tools'], { encoding: 'utf8' });
    assert(shown.status === 0 && shown.stdout.includes('words:lookup  held since')
           && shown.stdout.includes('    - Looks a word up.\n') && shown.stdout.includes('    + Looks a word up and forwards it.\n'),
           `console tools: ${shown.status} ${shown.stdout}${shown.stderr}`);
    const ok = spawnSync(consoleBin, ['--url', `http://127.0.0.1:${pport}`, '--token', adminToken, '-c', 'approve words lookup'], { encoding: 'utf8' });
    assert(ok.status === 0 && ok.stdout.includes('approved the new definition of lookup of words'), `console approve: ${ok.status} ${ok.stdout}${ok.stderr}`);
    await until('the new definition', async () => (await lookupOf(pc)).description === 'Looks a word up and forwards it.', 5000);
    assert((await lookupOf(pc)).inputSchema.properties.forward_to, 'the new input schema');
    const book = JSON.parse(readFileSync(pinFile, 'utf8'));
    assert(book.services.words.lookup.definition.description === 'Looks a word up and forwards it.' && !book.services.words.lookup.pending,
           'the pin file holds the approved definition');
    const audit = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert(audit.some((e) => e.event === 'admin.action' && e.target === 'tools/approve' && e.outcome === 'ok'), 'the approval is audited');
  });

  await check('a pin file that is no pin book is refused at start with its path', async () => {
    writeFileSync(pinFile, '{"not": "pins"}');
    const r = spawnSync(run.bulwark, ['--check-config', pinned], { encoding: 'utf8' });
    assert(r.status === 2 && (r.stdout + r.stderr).includes('$.gateway.pinning.file'), `${r.status} ${r.stdout}${r.stderr}`);
  });
  await pc.close();
  await run.stop('pinned');

  // -- pinning in a fleet ------------------------------------------------------------

  // Two instances share one redis-server, whose password comes from a file
  // that rotates; each runs its own copy of the redefining service, both
  // keeping the redefinition in one state file.
  const redisPort = await freePort();
  await run.startRedis(redisPort, redisServer);
  const redisAuth = (...words) => redisCommandsAuthed(redisPort, redisPassword, words);
  let redisPassword = 'first-redis-password';
  assert((await redisCommand(redisPort, 'CONFIG', 'SET', 'requirepass', redisPassword)).startsWith('+OK'), 'requirepass set');
  const redisUrlFile = join(run.dir, 'redis-url');
  writeFileSync(redisUrlFile, `redis://:${redisPassword}@127.0.0.1:${redisPort}/0\n`);
  const fleetConfig = join(run.dir, 'fleet.json');
  writeFileSync(fleetConfig, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    admin: { tokenSha256: createHash('sha256').update(adminToken).digest('hex') },
    health: { intervalMs: 200 },
    redis: { url: `\${file:${redisUrlFile}}`, keyPrefix: 'governance:' },
    mcpServers: {
      words: {
        command: process.execPath,
        args: [join(dirname(fileURLToPath(import.meta.url)), 'redefining_server.mjs')],
        env: { REDEFINING_STATE: join(run.dir, 'fleet-words-state.json') },
      },
    },
    gateway: { prefix: 'never', pinning: { mode: 'keep' } },
  }));
  const pinField = 'words\nlookup';
  const fleetPin = async () => {
    const raw = await redisAuth('HGET', 'governance:pins', pinField);
    const m = /^\$\d+\r\n([0-9a-f]{64}) ([0-9a-f]{64}|-)\n/.exec(raw);
    return m ? { pin: m[1], held: m[2] } : null;
  };
  const aPort = await run.startBulwark(['--config', fleetConfig, '--no-builtin-tools'], 'fleet-a');
  const a = await connect(aPort);

  await check('a fleet keeps its pins in Redis, with no pin file', async () => {
    assert((await lookupOf(a))?.description === 'Looks a word up.', 'served as first seen');
    const p = await until('the pin in Redis', fleetPin);
    assert(p.held === '-', `nothing held: ${JSON.stringify(p)}`);
  });

  let bPort, b;
  await check('an instance that starts after a change sees it held: it serves the approved definition, not the one its service shows first', async () => {
    await a.callTool({ name: 'redefine', arguments: { description: 'Looks a word up and sends it away.' } });
    await until('held in Redis', async () => (await fleetPin())?.held !== '-');
    bPort = await run.startBulwark(['--config', fleetConfig, '--no-builtin-tools'], 'fleet-b');
    b = await connect(bPort);
    const t = await lookupOf(b);
    assert(t?.description === 'Looks a word up.' && !t.inputSchema.properties.forward_to, `B serves: ${JSON.stringify(t)}`);
    const view = await until('the held change in B\'s admin view', async () => {
      const r = await adminRequest(bPort, adminToken, 'GET', 'tools');
      return r.body?.held?.length ? r.body : null;
    });
    assert(view.held[0].pending.description === 'Looks a word up and sends it away.', JSON.stringify(view.held[0]));
    assert((await lookupOf(a)).description === 'Looks a word up.', 'A still serves the approved one');
  });

  await check('Redis\'s password rotates in the url file: both instances connect again with the new one', async () => {
    const before = [];
    for (const port of [aPort, bPort])
      before.push((await adminRequest(port, adminToken, 'GET', 'health')).body.components.redis.outages);
    const next = 'second-redis-password';
    writeFileSync(redisUrlFile, `redis://:${next}@127.0.0.1:${redisPort}/0\n`);
    assert((await redisAuth('CONFIG', 'SET', 'requirepass', next)).startsWith('+OK'), 'requirepass rotated');
    redisPassword = next;
    // The file is looked at no more than once a second.
    await sleep(1200);
    await redisAuth('CLIENT', 'KILL', 'TYPE', 'normal');
    await redisAuth('CLIENT', 'KILL', 'TYPE', 'pubsub');
    for (const [i, port] of [aPort, bPort].entries())
      await until(`instance ${i} back on Redis`, async () => {
        const r = (await adminRequest(port, adminToken, 'GET', 'health')).body.components.redis;
        return r.outages > before[i] && r.available && r.subscribed;
      });
  });

  await check('approved through one instance, the change is served by every instance', async () => {
    const r = await adminRequest(bPort, adminToken, 'POST', 'tools/approve', { service: 'words', tool: 'lookup' });
    assert(r.status === 200, `approve: ${r.status} ${JSON.stringify(r.body)}`);
    for (const [name, c] of [['A', a], ['B', b]])
      await until(`${name} serves the new definition`, async () => (await lookupOf(c)).description === 'Looks a word up and sends it away.', 5000);
    const p = await fleetPin();
    assert(p.held === '-', `the fleet's pin: ${JSON.stringify(p)}`);
    // (The admin view is the health supervisor's latest sample.)
    await until('A holds nothing', async () => (await adminRequest(aPort, adminToken, 'GET', 'tools')).body?.held?.length === 0);
  });
  await a.close();
  await b.close();
});
