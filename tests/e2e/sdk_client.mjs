#!/usr/bin/env node
// End-to-end test: the official MCP TypeScript SDK client against the real
// bulwark binary, over one transport per run.
//
//   node tests/e2e/sdk_client.mjs --bulwark build/bulwark --transport http
//   node tests/e2e/sdk_client.mjs --bulwark build/bulwark --transport stdio
//
// Each check prints "PASS <name>" or "FAIL <name>: <why>"; the last line is
// "N passed, M failed" and the exit code is 0 only when nothing failed.
// Everything is bounded: each request has a timeout, and a global watchdog
// fails the run if the whole thing hangs. The spawned server is always killed
// by its pid, whatever happens.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ErrorCode,
  LoggingMessageNotificationSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';

import { scaled } from './harness.mjs';

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
  const opts = { bulwark: null, transport: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--bulwark') opts.bulwark = argv[++i];
    else if (a === '--transport') opts.transport = argv[++i];
    else {
      console.error(`unknown argument: ${a}`);
      process.exit(2);
    }
  }
  if (!opts.bulwark || !['http', 'stdio'].includes(opts.transport)) {
    console.error('usage: node sdk_client.mjs --bulwark PATH --transport http|stdio');
    process.exit(2);
  }
  opts.bulwark = resolve(opts.bulwark);
  if (!existsSync(opts.bulwark)) {
    console.error(`bulwark binary not found: ${opts.bulwark}`);
    process.exit(2);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

// Bounds. REQUEST_TIMEOUT_MS caps every single SDK request so one stuck call
// fails its own check instead of eating the global budget.
const WATCHDOG_MS = scaled(60_000);
const STARTUP_TIMEOUT_MS = scaled(10_000);
const REQUEST_TIMEOUT_MS = scaled(10_000);
const CANCEL_AFTER_MS = 200;
const CANCEL_DEADLINE_MS = scaled(3_000);
const ABORT_REASON = 'e2e-abort-sleep';
// sleep reports progress every tenth of its time: 2000 ms for 20000 ms. If the
// server kept running a cancelled sleep, its first progress would come by then.
const SLEEP_FIRST_PROGRESS_MS = 2_000;

// The fixed answer our sampling handler gives; the server must relay it.
const SAMPLED_TEXT = 'bulwark-e2e sampled answer 314159';

// ---------------------------------------------------------------- reporting

let passed = 0;
let failed = 0;
let summaryPrinted = false;

function printSummary() {
  if (summaryPrinted) return;
  summaryPrinted = true;
  console.log(`${passed} passed, ${failed} failed`);
}

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`PASS [${opts.transport}] ${name}`);
  } catch (err) {
    failed++;
    const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
    console.log(`FAIL [${opts.transport}] ${name}: ${why}`);
  }
}

// ---------------------------------------------------------------- server process

// The child we spawned (HTTP: by us; stdio: by the SDK transport), so that the
// finally block and the watchdog can both kill it by pid.
let serverPid = null;
// Last server log lines, shown when something goes wrong during startup.
const serverLog = [];

function rememberLog(line) {
  serverLog.push(line);
  if (serverLog.length > 200) serverLog.shift();
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// SIGTERM by default: bulwark stops cleanly on it. The watchdog uses SIGKILL,
// since it exits right away and a wedged (or stopped) server may ignore TERM.
function killServer(signal = 'SIGTERM') {
  if (serverPid == null) return;
  try {
    process.kill(serverPid, signal);
  } catch {
    // already gone
  }
}

// Spawns bulwark serving HTTP on an ephemeral loopback port and resolves with
// that port, read from the "listening" log line on stderr.
function startHttpServer() {
  const child = spawn(
    opts.bulwark,
    ['--fixtures', '--address', '127.0.0.1', '--port', '0', '--log-level', 'info'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  serverPid = child.pid;
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "listening" line within ${STARTUP_TIMEOUT_MS} ms:\n${serverLog.join('\n')}`)),
      STARTUP_TIMEOUT_MS,
    );
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`bulwark exited early (code ${code}, signal ${signal}):\n${serverLog.join('\n')}`));
    });
    // Keep reading stderr for the whole run: an undrained pipe would
    // eventually block the server's logging.
    createInterface({ input: child.stderr }).on('line', (line) => {
      rememberLog(line);
      let rec;
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      if (rec.msg === 'listening' && Number.isInteger(rec.port) && rec.port > 0) {
        clearTimeout(timer);
        resolvePort(rec.port);
      }
    });
  });
}

// ---------------------------------------------------------------- client

// Collected by the handlers installed before connecting.
const logMessages = [];
const sampleRequests = [];
// Protocol-level complaints from the SDK (client.onerror), e.g. a response or
// progress notification for a request it no longer tracks.
const clientErrors = [];
// Every message the server sent after initialization, in wire order.
const wire = [];

function makeClient() {
  // Declaring sampling is what lets test_sampling ask us for a completion.
  const client = new Client(
    { name: 'bulwark-sdk-e2e', version: '1.0.0' },
    { capabilities: { sampling: {} } },
  );
  client.onerror = (err) => clientErrors.push(err?.message ?? String(err));
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logMessages.push(n.params);
  });
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    sampleRequests.push(req.params);
    return {
      role: 'assistant',
      content: { type: 'text', text: SAMPLED_TEXT },
      model: 'e2e-fixed-model',
      stopReason: 'endTurn',
    };
  });
  return client;
}

// Wraps the handler the SDK installed on the transport, for two reasons:
//  1. record the wire order, so checks can assert what the server actually
//     sent and in which order;
//  2. work around an SDK 1.x race: Protocol runs notification handlers in a
//     microtask but settles responses synchronously, so a progress
//     notification that arrives in the same read chunk as its response (stdio
//     does this routinely) is dropped as "unknown token" even though the
//     server sent it first. Delivering responses one macrotask later lets the
//     SDK see messages in wire order. Must be called after connect().
function tapTransport(transport) {
  const deliver = transport.onmessage;
  assert.equal(typeof deliver, 'function', 'transport has no onmessage after connect');
  transport.onmessage = (msg, extra) => {
    wire.push(msg);
    const isResponse = msg.id !== undefined && msg.method === undefined;
    if (isResponse) setImmediate(() => deliver(msg, extra));
    else deliver(msg, extra);
  };
}

function textOf(result) {
  assert.ok(Array.isArray(result.content), `content is not an array: ${JSON.stringify(result)}`);
  const texts = result.content.filter((c) => c.type === 'text').map((c) => c.text);
  assert.ok(texts.length > 0, `no text content in ${JSON.stringify(result)}`);
  return texts.join('\n');
}

const reqOpts = (extra = {}) => ({ timeout: REQUEST_TIMEOUT_MS, ...extra });

// ---------------------------------------------------------------- checks

async function runChecks(client) {
  await check('listTools has echo, add, test_simple_text with object input schemas', async () => {
    const { tools } = await client.listTools(undefined, reqOpts());
    const byName = new Map(tools.map((t) => [t.name, t]));
    for (const name of ['echo', 'add', 'test_simple_text']) {
      const tool = byName.get(name);
      assert.ok(tool, `tool ${name} missing; got ${[...byName.keys()].join(', ')}`);
      assert.equal(tool.inputSchema?.type, 'object', `${name}.inputSchema.type`);
    }
  });

  await check('callTool echo returns the exact text', async () => {
    // Quotes, unicode and a newline: the text must round-trip byte for byte.
    const text = 'hello "bulwark" \u00e9\u4e16\n  tab\tend';
    const result = await client.callTool({ name: 'echo', arguments: { text } }, undefined, reqOpts());
    assert.notEqual(result.isError, true, `echo reported an error: ${JSON.stringify(result)}`);
    assert.equal(textOf(result), text);
  });

  await check('callTool add {a:2,b:40} gives structuredContent.sum === 42', async () => {
    const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } }, undefined, reqOpts());
    assert.notEqual(result.isError, true);
    assert.equal(result.structuredContent?.sum, 42, JSON.stringify(result));
  });

  await check('callTool test_error_handling gives isError: true', async () => {
    const result = await client.callTool({ name: 'test_error_handling', arguments: {} }, undefined, reqOpts());
    assert.equal(result.isError, true, JSON.stringify(result));
    assert.ok(textOf(result).length > 0, 'error result should explain itself');
  });

  await check('readResource test://static-text has the fixture text', async () => {
    const { contents } = await client.readResource({ uri: 'test://static-text' }, reqOpts());
    assert.equal(contents.length, 1, JSON.stringify(contents));
    assert.equal(contents[0].uri, 'test://static-text');
    assert.equal(contents[0].text, 'This is the content of the static text resource.');
  });

  await check('readResource test://template/7/data mentions id 7', async () => {
    const { contents } = await client.readResource({ uri: 'test://template/7/data' }, reqOpts());
    assert.ok(contents.length >= 1, JSON.stringify(contents));
    assert.equal(contents[0].uri, 'test://template/7/data');
    assert.equal(typeof contents[0].text, 'string');
    assert.ok(contents[0].text.includes('7'), `text: ${contents[0].text}`);
  });

  await check('listPrompts has test_prompt_with_arguments', async () => {
    const { prompts } = await client.listPrompts(undefined, reqOpts());
    const p = prompts.find((x) => x.name === 'test_prompt_with_arguments');
    assert.ok(p, `prompts: ${prompts.map((x) => x.name).join(', ')}`);
    const argNames = (p.arguments ?? []).map((a) => a.name).sort();
    assert.deepEqual(argNames, ['arg1', 'arg2']);
  });

  await check('getPrompt test_prompt_with_arguments echoes both arguments', async () => {
    const result = await client.getPrompt(
      { name: 'test_prompt_with_arguments', arguments: { arg1: 'alpha-111', arg2: 'beta-222' } },
      reqOpts(),
    );
    assert.ok(result.messages.length >= 1, JSON.stringify(result));
    const text = result.messages.map((m) => (m.content.type === 'text' ? m.content.text : '')).join('\n');
    assert.ok(text.includes('alpha-111'), `text: ${text}`);
    assert.ok(text.includes('beta-222'), `text: ${text}`);
  });

  await check('progress: test_tool_with_progress sends >=3 non-decreasing notifications of 100', async () => {
    const seen = [];
    clientErrors.length = 0;
    const result = await client.callTool(
      { name: 'test_tool_with_progress', arguments: {} },
      undefined,
      // Passing onprogress makes the SDK attach a _meta.progressToken.
      reqOpts({ onprogress: (p) => seen.push(p) }),
    );
    assert.notEqual(result.isError, true);
    assert.ok(
      seen.length >= 3,
      `only ${seen.length} progress notifications: ${JSON.stringify(seen)}; SDK errors: ${JSON.stringify(clientErrors)}`,
    );
    for (let i = 1; i < seen.length; i++)
      assert.ok(seen[i].progress >= seen[i - 1].progress, `progress went down: ${JSON.stringify(seen)}`);
    for (const p of seen) assert.equal(p.total, 100, JSON.stringify(p));
    assert.equal(seen.at(-1).progress, 100, 'last progress should be 100');
    // On the wire: the SDK uses the request id as progress token, so every
    // progress for this call must precede the response with that id.
    const respAt = wire.findLastIndex(
      (m) => m.id !== undefined && m.method === undefined && m.result?.content?.[0]?.text === 'Progress test completed',
    );
    assert.ok(respAt >= 0, 'response to test_tool_with_progress not seen on the wire');
    const id = wire[respAt].id;
    const progressOf = (m) => m.method === 'notifications/progress' && Number(m.params?.progressToken) === Number(id);
    const before = wire.slice(0, respAt).filter(progressOf).length;
    const after = wire.slice(respAt + 1).filter(progressOf).length;
    assert.equal(after, 0, 'server sent progress after the response');
    assert.ok(before >= 3, `only ${before} progress notifications before the response on the wire`);
  });

  await check('logging: setLoggingLevel(debug) then test_tool_with_logging sends >=3 messages', async () => {
    await client.setLoggingLevel('debug', reqOpts());
    logMessages.length = 0;
    const result = await client.callTool({ name: 'test_tool_with_logging', arguments: {} }, undefined, reqOpts());
    assert.notEqual(result.isError, true);
    // Notifications ride the same stream as the response and are sent first,
    // but give a stray late one a moment rather than racing it.
    const deadline = Date.now() + scaled(1000);
    while (logMessages.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(logMessages.length >= 3, `only ${logMessages.length} log messages: ${JSON.stringify(logMessages)}`);
    for (const m of logMessages.slice(0, 3)) {
      assert.equal(m.level, 'info', JSON.stringify(m));
      assert.ok(m.data !== undefined, JSON.stringify(m));
    }
  });

  await check('sampling: test_sampling relays our CreateMessage answer', async () => {
    sampleRequests.length = 0;
    const result = await client.callTool(
      { name: 'test_sampling', arguments: { prompt: 'hi' } },
      undefined,
      reqOpts(),
    );
    assert.notEqual(result.isError, true, JSON.stringify(result));
    assert.equal(sampleRequests.length, 1, `sampling requests: ${JSON.stringify(sampleRequests)}`);
    // The server should have forwarded the tool's prompt to us.
    const sentText = JSON.stringify(sampleRequests[0].messages);
    assert.ok(sentText.includes('hi'), `sampling messages: ${sentText}`);
    assert.ok(textOf(result).includes(SAMPLED_TEXT), `result: ${JSON.stringify(result)}`);
  });

  let cancelStartedAt = null;
  await check('cancellation: aborting sleep 20000 rejects promptly, and the session still works', async () => {
    const ac = new AbortController();
    clientErrors.length = 0;
    const started = (cancelStartedAt = Date.now());
    const call = client.callTool(
      { name: 'sleep', arguments: { ms: 20_000 } },
      undefined,
      // Longer request timeout than the sleep, so only the abort can end it
      // early. onprogress gives the call a progress token, so a sleep the
      // server failed to stop would show up as stray progress (next check).
      { signal: ac.signal, timeout: scaled(30_000), onprogress: () => {} },
    );
    const timer = setTimeout(() => ac.abort(ABORT_REASON), CANCEL_AFTER_MS);
    try {
      await assert.rejects(call, (err) => {
        // Must be our abort, not a server failure or a request timeout. The
        // SDK reports an abort as McpError(RequestTimeout, String(reason)), so
        // the abort reason in the message is what tells the two apart.
        assert.ok(err instanceof McpError, `not an McpError: ${err}`);
        assert.ok(err.message.includes(ABORT_REASON), `not our abort: ${err.message}`);
        return true;
      });
    } finally {
      clearTimeout(timer);
    }
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= CANCEL_AFTER_MS - 20, `rejected before the abort (${elapsed} ms)`);
    assert.ok(elapsed < CANCEL_DEADLINE_MS, `took ${elapsed} ms to reject`);
    // The server got notifications/cancelled; the same client must carry on.
    const after = await client.callTool({ name: 'echo', arguments: { text: 'after-cancel' } }, undefined, reqOpts());
    assert.equal(textOf(after), 'after-cancel');
  });

  await check('cancellation: the server stops the cancelled sleep (no progress after cancel)', async () => {
    assert.ok(cancelStartedAt != null, 'cancellation check did not run');
    // Wait past the point where the sleep's first progress would have come.
    const until = cancelStartedAt + SLEEP_FIRST_PROGRESS_MS + 600;
    while (Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const stray = clientErrors.filter((m) => m.includes('progress notification for an unknown token'));
    assert.deepEqual(stray, [], 'server kept reporting progress for the cancelled call');
    // The receiver of a cancellation does not answer the cancelled request
    // (2025-11-25, cancellation); Bulwark ends the exchange silently.
    const answered = clientErrors.filter((x) => x.includes('response for an unknown message ID'));
    assert.deepEqual(answered, [], 'server answered the cancelled request');
  });

  await check('unknown tool rejects with McpError -32602', async () => {
    await assert.rejects(
      client.callTool({ name: 'no_such_tool_e2e', arguments: {} }, undefined, reqOpts()),
      (err) => {
        assert.ok(err instanceof McpError, `not an McpError: ${err}`);
        assert.equal(err.code, ErrorCode.InvalidParams, `code ${err.code}: ${err.message}`);
        return true;
      },
    );
  });
}

// ---------------------------------------------------------------- main

async function main() {
  const client = makeClient();
  let transport;
  try {
    if (opts.transport === 'http') {
      const port = await startHttpServer();
      transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`));
    } else {
      transport = new StdioClientTransport({
        command: opts.bulwark,
        args: ['--fixtures', '--stdio', '--no-http', '--log-level', 'info'],
        // Pipe stderr and drain it, so logs don't clutter our output.
        stderr: 'pipe',
      });
      transport.stderr?.on('data', (d) => String(d).split('\n').filter(Boolean).forEach(rememberLog));
    }

    await check('connect (initialize handshake)', async () => {
      await client.connect(transport, reqOpts());
      tapTransport(transport);
      if (opts.transport === 'stdio') serverPid = transport.pid;
      const caps = client.getServerCapabilities();
      assert.ok(caps?.tools, `server capabilities: ${JSON.stringify(caps)}`);
      assert.ok(caps?.resources && caps?.prompts && caps?.logging, `server capabilities: ${JSON.stringify(caps)}`);
      assert.ok(client.getServerVersion()?.name, 'server reported no name');
    });

    // Without a connection none of the other checks can mean anything.
    if (failed === 0) await runChecks(client);
  } catch (err) {
    failed++;
    console.log(`FAIL [${opts.transport}] setup: ${err?.stack ?? err}`);
    if (serverLog.length) console.log(`server log tail:\n${serverLog.slice(-20).join('\n')}`);
  } finally {
    try {
      // Bounded: a hung close must not hold the run.
      await Promise.race([client.close(), new Promise((r) => setTimeout(r, scaled(5000)).unref())]);
    } catch {
      // closing is best effort; the kill below is what matters
    }
    if (opts.transport === 'stdio' && serverPid == null) serverPid = transport?.pid ?? null;
    killServer();
    if (serverPid != null) {
      // Make sure it is really gone; escalate if SIGTERM was not enough.
      const deadline = Date.now() + scaled(3000);
      while (isAlive(serverPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (isAlive(serverPid)) {
        try {
          process.kill(serverPid, 'SIGKILL');
        } catch {
          // gone after all
        }
        failed++;
        console.log(`FAIL [${opts.transport}] server pid ${serverPid} did not exit on SIGTERM`);
      }
    }
  }
}

// Global watchdog: if anything hangs, fail the run and still clean up.
const watchdog = setTimeout(() => {
  failed++;
  console.log(`FAIL [${opts.transport}] watchdog: run exceeded ${WATCHDOG_MS} ms`);
  killServer('SIGKILL');
  printSummary();
  process.exit(1);
}, WATCHDOG_MS);
// Deliberately not unref()'d: it also keeps the loop alive, so a promise that
// never settles ends as a watchdog failure rather than a silent exit 0.

main()
  .catch((err) => {
    failed++;
    console.log(`FAIL [${opts.transport}] unexpected: ${err?.stack ?? err}`);
  })
  .finally(() => {
    clearTimeout(watchdog);
    printSummary();
    // Exit explicitly: open handles (e.g. an HTTP keep-alive socket) must not
    // keep the process around after the verdict.
    process.exit(failed === 0 && passed > 0 ? 0 : 1);
  });
