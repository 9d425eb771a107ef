// Shared by the end-to-end tests: named checks with PASS/FAIL lines, a
// watchdog, `bulwark` processes started on free ports and killed by pid.

import { spawn } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export function assert(cond, why) {
  if (!cond) throw new Error(why);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// A free loopback port (closed again before use).
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolvePort(port));
    });
  });
}

/// Sends one command to the Redis on `port` (then QUIT); resolves with the
/// raw RESP answer text.
export function redisCommand(port, ...words) {
  return redisCommands(port, words);
}

/// Sends commands (each an array of words) on one connection to the Redis
/// on `port` (then QUIT); resolves with the raw RESP answers' text.
export function redisCommands(port, ...commands) {
  const encode = (ws) => `*${ws.length}\r\n` + ws.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('');
  return new Promise((resolve, reject) => {
    let out = '';
    const s = connect(port, '127.0.0.1', () => s.write(commands.map(encode).join('') + encode(['QUIT'])));
    s.setTimeout(5000, () => s.destroy(new Error('redis: no answer in 5 s')));
    s.on('data', (d) => (out += d));
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

/// The JSON-RPC error inside an SDK client's failure. A refusal whose whole
/// answer is the error carries its HTTP status (429, 503), and the SDK
/// clients report those as HTTP errors with the body in their text: that
/// body's error, with `httpStatus` set. Anything else as it is.
export function rpcError(e) {
  if (!(e instanceof Error)) return e;
  const text = String(e.text ?? e.data?.text ?? e.message ?? '');
  const at = text.indexOf('{"jsonrpc"');
  if (at < 0) return e;
  try {
    const body = JSON.parse(text.slice(at));
    if (body.error) return { ...body.error, id: body.id, httpStatus: e.code ?? e.data?.status ?? e.status };
  } catch {
    // not a JSON-RPC body
  }
  return e;
}

/// How much slower than usual the server under test may be: the sanitizer
/// build sets BULWARK_TEST_TIME_SCALE (ctest's environment), and time bounds
/// (never counts or expected results) are multiplied by it.
export const timeScale = Math.max(1, Number(process.env.BULWARK_TEST_TIME_SCALE) || 1);
export const scaled = (ms) => ms * timeScale;

/// Reads the event stream `res` until it ends or is aborted: `onEvent` gets
/// each event's id (null when it has none) and its data parsed as JSON
/// (events without data are left out), `onComment` each comment line's
/// text. Resolves when the stream is over.
export async function readStream(res, { onEvent = () => {}, onComment = () => {} } = {}) {
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
        let id = null;
        const data = [];
        for (const line of buf.slice(0, i).split('\n')) {
          if (line.startsWith(':')) onComment(line.slice(1).trim());
          else if (line.startsWith('id:')) id = line.slice(3).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trim());
        }
        if (data.join('')) onEvent(id, JSON.parse(data.join('\n')));
      }
    }
  } catch {
    // Aborted by its owner, or cut.
  }
}

/// Polls `fn` until it returns a truthy value or `ms` pass.
/// Reads the event stream `res` in the background and calls `onMessage` with
/// the JSON of each `data:` line; ends quietly when the request is aborted.
export function readEvents(res, onMessage) {
  (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2))
          for (const line of buf.slice(0, i).split('\n'))
            if (line.startsWith('data:')) onMessage(JSON.parse(line.slice(5)));
      }
    } catch {
      // Aborted by its owner.
    }
  })();
}

export async function until(what, fn, ms = 10_000) {
  const end = Date.now() + scaled(ms);
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

let nextId = 1;
/// A 2026-07-28 tools/call to `port`; resolves with the JSON-RPC response.
export async function callTool(port, name, args = {}, headers = {}, meta = {}) {
  const body = {
    jsonrpc: '2.0',
    id: nextId++,
    method: 'tools/call',
    params: {
      name,
      arguments: args,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': {},
        ...meta,
      },
    },
  };
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': name,
      ...headers,
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(scaled(10_000)),
  });
  const text = await res.text();
  // An SSE answer carries the response as its last data line.
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
    return JSON.parse(data[data.length - 1]);
  }
  return JSON.parse(text);
}

/// One HTTP request to the server on `port`; the JSON-RPC answer is parsed
/// from a JSON body or the last event of an SSE one.
export async function request(port, method, { body, headers = {}, path = '/mcp' } = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(scaled(10_000)),
  });
  const text = await res.text();
  let json = null;
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim());
    if (data.length) json = JSON.parse(data[data.length - 1]);
  } else if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
  }
  return { status: res.status, headers: res.headers, json, text };
}

/// A 2026-07-28 (stateless) request through `request`, with its mirrored
/// headers and any extra `headers`.
export function modernRequest(port, method, params, headers = {}) {
  return request(port, 'POST', {
    body: {
      jsonrpc: '2.0', id: nextId++, method,
      params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
    },
    headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...(params.name ? { 'mcp-name': params.name } : {}), ...headers },
  });
}

/// A 2025-era session opened with `headers` (its credentials); returns its id.
export async function openSession(port, headers) {
  const init = await request(port, 'POST', {
    body: { jsonrpc: '2.0', id: nextId++, method: 'initialize',
            params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e-test', version: '1' } } },
    headers,
  });
  assert(init.status === 200, `initialize: ${init.status} ${init.text}`);
  const sid = init.headers.get('mcp-session-id');
  assert(sid, 'initialize answers with Mcp-Session-Id');
  const note = await request(port, 'POST', {
    body: { jsonrpc: '2.0', method: 'notifications/initialized' },
    headers: { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
  });
  assert(note.status === 202, `initialized: ${note.status}`);
  return sid;
}

/// A tools/call in the 2025-era session `sid`, with `headers`.
export function sessionCall(port, headers, sid, name, args = {}) {
  return request(port, 'POST', {
    body: { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name, arguments: args } },
    headers: { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
  });
}

/// An HTTP proxy on a free loopback port in front of `targetPort`, for
/// tests of what a gateway sends its services. Each request is recorded in
/// `proxy.seen` ({method, headers, body}); `intercept(record)` may answer it
/// instead ({status, body}). Resolves with the server; `proxy.port` is its
/// port, `proxy.shut()` closes it.
export async function startProxy(targetPort, intercept = () => null) {
  const seen = [];
  const proxy = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const record = { method: req.method, headers: { ...req.headers }, body: body.toString() };
      seen.push(record);
      const answer = intercept(record);
      if (answer) {
        res.writeHead(answer.status, { 'content-type': 'text/plain' });
        return res.end(answer.body);
      }
      const up = httpRequest({ host: '127.0.0.1', port: targetPort, path: req.url, method: req.method, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  proxy.seen = seen;
  proxy.port = proxy.address().port;
  proxy.shut = () => {
    proxy.closeAllConnections();
    proxy.close();
  };
  return proxy;
}

/// One request to the admin API of the server on `port`, with the admin
/// `token` (or, when given, exactly these `headers` instead of its
/// Authorization); `body` is sent as JSON unless it is a string. Resolves
/// with the status and the parsed body (null when empty).
export async function adminRequest(port, token, method, path, body, headers) {
  const res = await fetch(`http://127.0.0.1:${port}/admin/api/${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(headers ?? { authorization: `Bearer ${token}` }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(scaled(5000)),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/// An HTTP server for a Streamable HTTP MCP service written in a test:
/// POST bodies are parsed as JSON-RPC (405 for other methods, 400 for a
/// body that is no JSON); `handle(req, msg, res, answer)` does the rest,
/// where `answer(result)` sends the JSON-RPC result for `msg`.
export function jsonRpcServer(handle) {
  return createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST') return res.writeHead(405, { allow: 'POST' }).end();
      let msg;
      try {
        msg = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        return res.writeHead(400).end();
      }
      const answer = (result) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      };
      handle(req, msg, res, answer);
    });
  });
}

/// A test run: `check` counts results, `finish` kills every process started
/// through it and exits; the watchdog ends a run that takes too long.
/// `bulwark` defaults to the `--bulwark PATH` argument; `run.dir` is a
/// scratch directory (named after `scratch`) removed at the end.
export function harness({ bulwark, scratch = 'bulwark-e2e-', watchdogMs = 90_000, onFinish = () => {}, startedLine = 'bulwark started' } = {}) {
  const argv = process.argv.slice(2);
  const run = { passed: 0, failed: 0, logs: [], pids: [], started: {} };
  run.bulwark = bulwark ?? resolve(argv[argv.indexOf('--bulwark') + 1] ?? '');
  bulwark = run.bulwark;
  run.dir = mkdtempSync(join(tmpdir(), scratch));
  const watchdog = setTimeout(() => {
    console.log(`FAIL watchdog: the run took longer than ${scaled(watchdogMs) / 1000} s`);
    run.finish(1);
  }, scaled(watchdogMs));

  const killAll = () => {
    for (const pid of run.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  // However the run ends (an unhandled rejection included), nothing it
  // started outlives it.
  process.on('exit', killAll);

  run.finish = (code) => {
    // A script that ran no check proves nothing: it fails.
    if (code === 0 && run.passed === 0) {
      console.log('FAIL no check ran');
      code = 1;
    }
    clearTimeout(watchdog);
    killAll();
    onFinish();
    rmSync(run.dir, { recursive: true, force: true });
    process.exit(code);
  };

  /// Runs the checks in `body`, reports and exits (a throw outside a check
  /// fails the run).
  run.main = async (body) => {
    try {
      await body();
    } catch (e) {
      run.failed++;
      console.log(`FAIL setup: ${e?.stack ?? e}`);
    }
    if (run.failed) console.log(run.logs.slice(-40).join('\n'));
    console.log(`${run.passed} passed, ${run.failed} failed`);
    run.finish(run.failed === 0 ? 0 : 1);
  };

  run.check = async (name, fn) => {
    try {
      await fn();
      run.passed++;
      console.log(`PASS ${name}`);
    } catch (e) {
      run.failed++;
      console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    }
  };

  /// Starts bulwark with `argv` (and `env` added to the environment);
  /// resolves with the HTTP port it logs, once
  /// it has started whole ("bulwark started": a gateway's services have
  /// listed their tools or failed; HTTP is served before that, and /ready
  /// tells when it is; a host program that logs no such line passes
  /// `startedLine: null` to the harness).
  run.startBulwark = (argv, label, env = undefined) => {
    const child = spawn(bulwark, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: env && { ...process.env, ...env } });
    run.pids.push(child.pid);
    run.started[label] = child;
    return new Promise((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: no "listening" line in ${scaled(20)} s`)), scaled(20_000));
      child.once('exit', (code) => reject(new Error(`${label} exited early with ${code}:\n${run.logs.slice(-20).join('\n')}`)));
      let port;
      createInterface({ input: child.stderr }).on('line', (line) => {
        run.logs.push(`[${label}] ${line}`);
        if (run.logs.length > 400) run.logs.shift();
        try {
          const rec = JSON.parse(line);
          if (rec.msg === 'listening') port = rec.port;
          if ((startedLine === null || rec.msg === startedLine) && port !== undefined) {
            clearTimeout(timer);
            resolvePort(port);
          }
        } catch {
          // not JSON
        }
      });
    });
  };

  /// Starts `redisServer` on `port` (no persistence) as `redis`; resolves
  /// when it accepts connections. Killed by pid like the rest.
  run.startRedis = (port, redisServer = 'redis-server') => {
    const child = spawn(redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
                        { stdio: ['ignore', 'pipe', 'pipe'] });
    run.pids.push(child.pid);
    run.started.redis = child;
    return new Promise((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error('redis-server: not ready in 10 s')), 10_000);
      child.once('error', (e) => reject(new Error(`cannot start ${redisServer}: ${e.message}`)));
      child.once('exit', (code) => reject(new Error(`redis-server exited early with ${code}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        run.logs.push(`[redis] ${line}`);
        if (line.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolveReady();
        }
      });
    });
  };

  /// Kills a process started as `label` and waits for it to be gone.
  run.stop = (label) => {
    const child = run.started[label];
    delete run.started[label];
    process.kill(child.pid, 'SIGKILL');
    return new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.once('exit', r)));
  };

  return run;
}
