#!/usr/bin/env node
// Limits and hostile HTTP against the real binary, over real sockets.
//
//   node tests/e2e/limits.mjs --bulwark build/bulwark
//
// Checks: invalid limit settings stop start-up with their path; connections
// over `http.maxConnectionsPerAddress` get 503 with a typed error while
// another address is served; a caller (a key of priority low) that holds
// its whole share of connections (`http.maxConnectionsPerIdentity`, as
// many as the address guard allows) gets 503 for one more, while another
// caller (priority high) from the same address is served; the read timeout bounds a whole request (a
// header sent a byte at a time, a body that stops) with 408; sessions per
// identity (-32008, a DELETE frees the slot at once, another key has its
// own); concurrent requests per session (-32008 with a retry hint); SSE
// streams per session (a GET over the limit gets 429, a POST over it is
// answered as plain JSON); CORS preflight and response headers for allowed
// origins only; framing cases (conflicting Content-Lengths, stacked or
// unknown transfer codings, folded headers, an oversized header block) get
// 400/431 and the connection closes; an idle keep-alive connection closes
// when the idle timeout ends, one that keeps asking stays open. Every
// process is killed by pid.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';

import { assert, harness, scaled, sleep } from './harness.mjs';

const run = harness({ scratch: 'bulwark-limits-', watchdogMs: 100_000 });
const { bulwark, dir, check, startBulwark } = run;

const allowed = 'http://app.example';
const settings = {
  http: {
    port: 0,
    maxConnections: 64,
    maxConnectionsPerAddress: 4,
    maxConnectionsPerIdentity: 4,
    readTimeoutSeconds: 2,
    idleTimeoutSeconds: 3,
    allowedOrigins: [allowed],
    corsMaxAgeSeconds: 300,
  },
  sessions: { maxPerIdentity: 2, maxConcurrentRequests: 3, maxStreams: 2 },
  // Without authentication a bearer key names a caller only when it is known.
  rateLimits: {
    keys: {
      [createHash('sha256').update('limits-test-key').digest('hex')]: { tier: 'paid' },
      [createHash('sha256').update('limits-low-key').digest('hex')]: { tier: 'paid', priority: 'low' },
      [createHash('sha256').update('limits-high-key').digest('hex')]: { tier: 'paid', priority: 'high' },
    },
  },
};

/// Writes a config file and returns its path.
function config(name, value) {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/// Sends raw bytes (from `localAddress`); resolves with the first response
/// and whether the server then closed the connection (with `keep`, at once
/// with the still open socket as `sock`).
function raw(port, bytes, { localAddress = '127.0.0.1', timeoutMs = scaled(5000), waitClose = false, keep = false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    let buf = '';
    let answer = null;
    const timer = setTimeout(() => {
      sock.destroy();
      if (answer) resolve({ ...answer, closed: false });
      else reject(new Error(`no answer within ${timeoutMs} ms: ${JSON.stringify(buf.slice(0, 200))}`));
    }, timeoutMs);
    const done = (closed) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...answer, closed });
    };
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (answer) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      const len = Number((head.match(/content-length:\s*(\d+)/i) || [])[1] || 0);
      if (buf.length - end - 4 < len) return;
      answer = { status: Number(head.split(' ')[1]), head, body: buf.slice(end + 4, end + 4 + len) };
      if (keep) {
        clearTimeout(timer);
        resolve({ ...answer, closed: false, sock });
      } else if (!waitClose) done(false);
    });
    sock.on('end', () => { if (answer) done(true); });
    sock.on('close', () => { if (answer) done(true); });
    sock.on('error', (e) => {
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') return;
      clearTimeout(timer);
      reject(e);
    });
    if (bytes) sock.write(bytes);
  });
}

/// A socket that connected and sends nothing (holds a connection slot).
function hold(port, localAddress = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(sock));
    sock.on('error', reject);
  });
}

/// One HTTP request from `localAddress` (no connection reuse); resolves
/// with status, headers and body text.
function request(port, method, { body, headers = {}, localAddress = '127.0.0.1', timeoutMs = scaled(10_000) } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request({
      host: '127.0.0.1', port, path: '/mcp', method, localAddress, agent: false,
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers,
        ...(data === undefined ? {} : { 'content-length': Buffer.byteLength(data) }),
      },
      timeout: timeoutMs,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} timed out`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

/// The JSON-RPC message of a JSON body, or the last one of an SSE body.
function message(r) {
  if ((r.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    const data = r.text.split('\n').filter((l) => l.startsWith('data:'));
    return JSON.parse(data[data.length - 1].slice(5));
  }
  return JSON.parse(r.text);
}

const V = '2025-11-25';
let nextId = 1;

/// Opens and initializes a 2025-era session; resolves with its id (or the
/// refused answer when `expectRefusal`).
async function openSession(port, headers = {}, expectRefusal = false) {
  const r = await request(port, 'POST', {
    headers,
    body: { jsonrpc: '2.0', id: nextId++, method: 'initialize', params: { protocolVersion: V, capabilities: {}, clientInfo: { name: 'limits', version: '1' } } },
  });
  if (expectRefusal) return r;
  assert(r.status === 200, `initialize: ${r.status} ${r.text}`);
  const sid = r.headers['mcp-session-id'];
  const n = await request(port, 'POST', { headers: { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': V }, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
  assert(n.status === 202, `initialized: ${n.status}`);
  return sid;
}

/// A tools/call in a session; `progress` asks for progress notifications.
function sessionCall(port, sid, name, args, { progress = false, headers = {} } = {}) {
  const params = { name, arguments: args };
  if (progress) params._meta = { progressToken: `p${nextId}` };
  return request(port, 'POST', {
    headers: { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': V },
    body: { jsonrpc: '2.0', id: nextId++, method: 'tools/call', params },
  });
}

const endSession = (port, sid, headers = {}) =>
  request(port, 'DELETE', { headers: { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': V } });

function assertLimitError(r, status, limit) {
  assert(r.status === status, `status ${r.status}, expected ${status}: ${r.text}`);
  const m = message(r);
  assert(m.error?.code === -32008, `code: ${r.text}`);
  assert(m.error.data?.limit === limit, `limit: ${r.text}`);
  return m;
}

const post = (port, body, extra = '') =>
  `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
  `Accept: application/json, text/event-stream\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const health = 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
/// A 2026-07-28 tools/call of `echo` as `key`, over a raw keep-alive
/// connection; resolves with the answer and the socket, still open.
const keptCall = (port, key, text) =>
  raw(port, post(port, JSON.stringify({
    jsonrpc: '2.0', id: nextId++, method: 'tools/call',
    params: { name: 'echo', arguments: { text },
              _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
  }), `Authorization: Bearer ${key}\r\nMcp-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n`),
  { keep: true, timeoutMs: scaled(5000) });
const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: V, capabilities: {} } });

run.main(async () => {
  await check('invalid limit settings stop start-up with their path', async () => {
    const cases = [
      [{ http: { maxConnectionsPerAddress: 0 } }, '$.http.maxConnectionsPerAddress'],
      [{ http: { maxConnectionsPerIdentity: 0 } }, '$.http.maxConnectionsPerIdentity'],
      [{ http: { corsMaxAgeSeconds: -1 } }, '$.http.corsMaxAgeSeconds'],
      [{ sessions: { maxPerIdentity: 0 } }, '$.sessions.maxPerIdentity'],
      [{ sessions: { maxConcurrentRequests: 'many' } }, '$.sessions.maxConcurrentRequests'],
      [{ sessions: { maxStreams: 1.5 } }, '$.sessions.maxStreams'],
    ];
    for (const [value, path] of cases) {
      const r = spawnSync(bulwark, ['--config', config('bad.json', value), '--print-config'], { encoding: 'utf8', timeout: scaled(10_000) });
      assert(r.status === 2, `${path}: exit ${r.status}`);
      assert(r.stderr.includes(path), `${path} not named: ${r.stderr}`);
    }
    const ok = spawnSync(bulwark, ['--config', config('ok.json', settings), '--print-config'], { encoding: 'utf8', timeout: scaled(10_000) });
    assert(ok.status === 0, `valid settings: ${ok.status} ${ok.stderr}`);
  });

  const port = await startBulwark(['--config', config('limits.json', settings), '--fixtures'], 'limits');

  await check('connections over the per-address limit get 503 with a typed error; other addresses are served', async () => {
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await hold(port));
    try {
      await sleep(100);
      const r = await raw(port, health, { waitClose: true });
      assert(r.status === 503, `over the limit: ${r.status} ${r.head}`);
      assert(/retry-after: 1/i.test(r.head), `Retry-After: ${r.head}`);
      const m = JSON.parse(r.body);
      assert(m.error.code === -32004 && m.error.data.limit === 'connectionsPerAddress' && m.error.data.max === 4, r.body);
      assert(r.closed, 'the refused connection stays open');
      const other = await raw(port, health, { localAddress: '127.0.0.2' });
      assert(other.status === 200, `from 127.0.0.2: ${other.status}`);
      held.pop().destroy();
      await sleep(100);
      const again = await raw(port, health);
      assert(again.status === 200, `after one closed: ${again.status}`);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  await check('a caller holding its share of connections is refused one more; another caller from its address is served', async () => {
    // LOW opens as many connections as the address guard allows and asks on
    // each, so each counts for LOW from then on, not for the address.
    const held = [];
    try {
      for (let i = 0; i < 4; i++) {
        const r = await keptCall(port, 'limits-low-key', `low ${i}`);
        held.push(r.sock);
        assert(r.status === 200 && r.body.includes(`low ${i}`), `LOW call ${i}: ${r.status} ${r.body}`);
      }
      // HIGH, from the same address while LOW keeps its connections, is
      // served, and so is a second HIGH connection beside the first.
      for (let i = 0; i < 2; i++) {
        const r = await keptCall(port, 'limits-high-key', `high ${i}`);
        held.push(r.sock);
        assert(r.status === 200 && r.body.includes(`high ${i}`), `HIGH call ${i} beside LOW's 4 connections: ${r.status} ${r.body}`);
      }
      const over = await keptCall(port, 'limits-low-key', 'low, one too many');
      held.push(over.sock);
      assert(over.status === 503, `LOW over its share: ${over.status} ${over.head}`);
      assert(/retry-after: 1/i.test(over.head) && /connection: close/i.test(over.head), over.head);
      const m = JSON.parse(over.body);
      assert(m.error.code === -32004 && m.error.data.limit === 'connectionsPerIdentity' && m.error.data.max === 4, over.body);
      // LOW's share frees when one of its connections closes.
      held.shift().destroy();
      let again;
      for (let i = 0; i < 20; i++) {
        await sleep(scaled(50));
        again = await keptCall(port, 'limits-low-key', 'low again');
        held.push(again.sock);
        if (again.status === 200) break;
      }
      assert(again.status === 200, `LOW after one of its connections closed: ${again.status} ${again.body}`);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  await check('a header sent a byte at a time gets 408 when the read timeout ends, not later', async () => {
    const t0 = Date.now();
    const r = await new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      const bytes = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n` + 'X-Slow: ' + 'a'.repeat(2000);
      let i = 0;
      let buf = '';
      const tick = setInterval(() => { if (i < bytes.length) sock.write(bytes[i++]); }, 50);
      sock.on('data', (d) => { buf += d; });
      sock.on('close', () => { clearInterval(tick); resolve({ buf, sent: i }); });
      sock.on('error', () => {});
      setTimeout(() => { clearInterval(tick); sock.destroy(); reject(new Error(`still open after ${scaled(8)} s`)); }, scaled(8000));
    });
    const took = Date.now() - t0;
    assert(/^HTTP\/1\.1 408/.test(r.buf), `answer: ${r.buf.slice(0, 80)}`);
    assert(took >= 1800 && took < scaled(5000), `closed after ${took} ms (read timeout 2 s, ${r.sent} bytes sent)`);
  });

  await check('a body that stops coming gets 408 within the read timeout', async () => {
    const t0 = Date.now();
    const r = await raw(port, `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{"jsonrpc"`, { timeoutMs: scaled(6000), waitClose: true });
    assert(r.status === 408 && r.closed, `status ${r.status}, closed ${r.closed}`);
    assert(Date.now() - t0 < scaled(4500), `took ${Date.now() - t0} ms`);
  });

  await check('a keep-alive connection that keeps asking stays open; idle, it closes when the idle timeout ends', async () => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    let closedAt = 0;
    sock.on('data', (d) => { buf += d; });
    sock.on('close', () => { closedAt = Date.now(); });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    const ask = () => sock.write('GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const answers = () => (buf.match(/HTTP\/1\.1 404/g) ?? []).length;
    let serverClosed = false;
    let idle = 0;
    let lastAsk = 0;
    try {
      // A request every 800 ms for 4.8 s: longer than the idle timeout (3 s)
      // and the read timeout (2 s) together, so a deadline that is not moved
      // later would close the connection on the way.
      for (let i = 1; i <= 6; i++) {
        ask();
        lastAsk = Date.now();
        await sleep(800);
        assert(!closedAt, `closed after ${i} requests`);
        assert(answers() === i, `${answers()} answers to ${i} requests`);
      }
      while (!closedAt && Date.now() - lastAsk < scaled(7000)) await sleep(50);
      serverClosed = closedAt !== 0;
      idle = (closedAt || Date.now()) - lastAsk;
    } finally {
      sock.destroy();
    }
    assert(serverClosed, 'still open 7 s after the last request');
    assert(idle >= 2800 && idle < 3000 + scaled(1500), `closed ${idle} ms after the last request (idle timeout 3 s)`);
  });

  await check('sessions per identity: the third gets -32008, a DELETE frees a slot at once, another key has its own', async () => {
    const a = await openSession(port);
    const b = await openSession(port);
    const refused = await openSession(port, {}, true);
    const m = assertLimitError(refused, 429, 'sessionsPerIdentity');
    assert(m.error.data.max === 2 && typeof m.error.data.traceId === 'string', refused.text);
    assert(!refused.headers['mcp-session-id'], 'a refused initialize got a session id');
    const keyed = { authorization: 'Bearer limits-test-key' };
    const k = await openSession(port, keyed);
    const del = await endSession(port, a);
    assert(del.status === 200, `DELETE: ${del.status}`);
    const c = await openSession(port);
    for (const [sid, h] of [[b, {}], [c, {}], [k, keyed]]) await endSession(port, sid, h);
  });

  await check('concurrent requests per session: the fourth gets -32008 with a retry hint', async () => {
    const sid = await openSession(port);
    const slow = [0, 1, 2].map(() => sessionCall(port, sid, 'sleep', { ms: 1200 }));
    await sleep(300);
    const refused = await sessionCall(port, sid, 'echo', { text: 'one too many' });
    const m = assertLimitError(refused, 429, 'concurrentRequests');
    assert(m.error.data.max === 3 && m.error.data.retry_after_seconds >= 1, refused.text);
    const done = await Promise.all(slow);
    for (const r of done) assert(r.status === 200 && !message(r).error, `slow call: ${r.status} ${r.text}`);
    const after = await sessionCall(port, sid, 'echo', { text: 'room again' });
    assert(message(after).result?.content?.[0]?.text === 'room again', after.text);
    await endSession(port, sid);
  });

  await check('SSE streams per session: a GET over the limit gets 429, a POST over it is answered as JSON', async () => {
    const sid = await openSession(port);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': V };
    // Two calls whose answers become streams (progress) fill the limit.
    const streaming = [0, 1].map(() => sessionCall(port, sid, 'sleep', { ms: 1500 }, { progress: true }));
    await sleep(500);
    const get = await request(port, 'GET', { headers: { ...headers, accept: 'text/event-stream' }, timeoutMs: scaled(3000) });
    assertLimitError(get, 429, 'streams');
    const third = await sessionCall(port, sid, 'sleep', { ms: 300 }, { progress: true });
    assert(third.status === 200 && third.headers['content-type'].startsWith('application/json'), `third: ${third.headers['content-type']}`);
    assert(message(third).result, third.text);
    for (const r of await Promise.all(streaming)) {
      assert(r.headers['content-type'].startsWith('text/event-stream'), `streamed: ${r.headers['content-type']}`);
      assert(r.text.includes('notifications/progress') && message(r).result, r.text.slice(0, 200));
    }
    // With the streams ended, a GET stream opens.
    const open = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/mcp', method: 'GET', agent: false, headers: { ...headers, accept: 'text/event-stream' } }, (res) => {
        resolve(res.statusCode);
        req.destroy();
      });
      req.on('error', (e) => (e.code === 'ECONNRESET' ? null : reject(e)));
      req.end();
    });
    assert(open === 200, `GET after: ${open}`);
    await endSession(port, sid);
  });

  await check('CORS preflight: 204 with the CORS headers for an allowed origin', async () => {
    const r = await request(port, 'OPTIONS', {
      headers: { origin: allowed, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, mcp-session-id, mcp-param-region' },
    });
    assert(r.status === 204, `status ${r.status}`);
    assert(r.headers['access-control-allow-origin'] === allowed, JSON.stringify(r.headers));
    assert(/origin/i.test(r.headers.vary ?? ''), `Vary: ${r.headers.vary}`);
    const methods = r.headers['access-control-allow-methods'] ?? '';
    for (const m of ['POST', 'GET', 'DELETE', 'OPTIONS']) assert(methods.includes(m), `methods: ${methods}`);
    const allowHeaders = (r.headers['access-control-allow-headers'] ?? '').toLowerCase();
    for (const h of ['content-type', 'authorization', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'accept', 'mcp-method', 'mcp-name', 'mcp-param-region'])
      assert(allowHeaders.split(/,\s*/).includes(h), `${h} missing from ${allowHeaders}`);
    assert(r.headers['access-control-max-age'] === '300', `max-age: ${r.headers['access-control-max-age']}`);
  });

  await check('CORS preflight from an origin not in the list gets 403 without CORS headers', async () => {
    for (const origin of ['http://evil.example', 'http://localhost:5173']) {
      const r = await request(port, 'OPTIONS', { headers: { origin, 'access-control-request-method': 'POST' } });
      assert(r.status === 403, `${origin}: ${r.status}`);
      assert(!Object.keys(r.headers).some((h) => h.startsWith('access-control-')), `${origin}: ${JSON.stringify(r.headers)}`);
    }
  });

  await check('CORS on actual answers: allowed origin gets Allow-Origin and Expose-Headers, others none', async () => {
    const r = await request(port, 'POST', { headers: { origin: allowed }, body: init });
    assert(r.status === 200, `status ${r.status}`);
    assert(r.headers['access-control-allow-origin'] === allowed, JSON.stringify(r.headers));
    assert(/mcp-session-id/i.test(r.headers['access-control-expose-headers'] ?? ''), JSON.stringify(r.headers));
    assert(/origin/i.test(r.headers.vary ?? ''), `Vary: ${r.headers.vary}`);
    await endSession(port, r.headers['mcp-session-id']);
    const local = await request(port, 'POST', { headers: { origin: 'http://localhost:5173' }, body: init });
    assert(local.status === 200 && !local.headers['access-control-allow-origin'], `loopback origin: ${local.status} ${JSON.stringify(local.headers)}`);
    await endSession(port, local.headers['mcp-session-id']);
    const foreign = await request(port, 'POST', { headers: { origin: 'http://evil.example' }, body: init });
    assert(foreign.status === 403 && !foreign.headers['access-control-allow-origin'], `foreign: ${foreign.status}`);
  });

  const framing = [
    ['two different Content-Lengths', `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${init.length}\r\nContent-Length: 5\r\n\r\n${init}`, 400],
    ['a Content-Length list', `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${init.length}, 5\r\n\r\n${init}`, 400],
    ['Content-Length then Transfer-Encoding, with a request smuggled in the body', `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: localhost\r\n\r\n`, 400],
    ['an unknown coding before chunked', `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 400],
    ['two Transfer-Encoding headers', `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`, 400],
    ['a folded Transfer-Encoding', `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n0\r\n\r\n`, 400],
    ['a header block over the limit', `POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'b'.repeat(20000)}\r\nContent-Length: 2\r\n\r\n{}`, 431],
  ];
  for (const [what, bytes, status] of framing) {
    await check(`${what} -> ${status}, one answer, connection closed`, async () => {
      const r = await raw(port, bytes, { waitClose: true, timeoutMs: scaled(4000) });
      assert(r.status === status, `status ${r.status}: ${r.head}`);
      assert(/connection: close/i.test(r.head), `no Connection: close: ${r.head}`);
      assert(r.closed, 'the connection stayed open');
      assert(!r.body.includes('HTTP/1.1') && JSON.parse(r.body).error.code === -32600, r.body);
    });
  }

  await check('the server still answers after all of the above', async () => {
    const r = await raw(port, post(port, init));
    assert(r.status === 200, `status ${r.status}`);
    const h = await raw(port, 'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert(h.status === 200, `health ${h.status}`);
  });

  await check('an idle session expires after sessions.idleTimeoutSeconds (404 afterwards); one in use does not', async () => {
    const idlePort = await startBulwark(['--config', config('idle.json', { http: { port: 0 }, sessions: { idleTimeoutSeconds: 1 } }),
                                         '--fixtures'], 'idle');
    const idle = await openSession(idlePort);
    const busy = await openSession(idlePort);
    // `busy` is used every 400 ms for 2.4 s, past the timeout twice over;
    // `idle` is not touched.
    const until = Date.now() + scaled(2400);
    while (Date.now() < until) {
      const r = await sessionCall(idlePort, busy, 'echo', { text: 'still here' });
      assert(r.status === 200, `the busy session: ${r.status} ${r.text}`);
      await sleep(400);
    }
    const gone = await sessionCall(idlePort, idle, 'echo', { text: 'anyone?' });
    assert(gone.status === 404, `the idle session after ${scaled(2400)} ms: ${gone.status} ${gone.text}`);
    const alive = await sessionCall(idlePort, busy, 'echo', { text: 'still here' });
    assert(alive.status === 200, `the busy session at the end: ${alive.status}`);
  });
});
