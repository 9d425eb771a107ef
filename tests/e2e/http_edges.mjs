// Hostile and malformed HTTP against the real bulwark binary, over raw
// sockets: every case gets a clear status and typed error, and the server
// keeps answering afterwards.
//   node http_edges.mjs --bulwark PATH
import { spawn } from 'node:child_process';
import net from 'node:net';
import assert from 'node:assert/strict';

import { scaled } from './harness.mjs';

const bulwark = process.argv[process.argv.indexOf('--bulwark') + 1];
const watchdog = setTimeout(() => { console.error('watchdog: test took too long'); finish(1); }, scaled(60000));
let server;
let passed = 0;
let failed = 0;

function finish(code) {
  // A run that made no check proves nothing: it fails.
  if (code === 0 && passed === 0) {
    console.log('FAIL no check ran');
    code = 1;
  }
  clearTimeout(watchdog);
  if (server && server.exitCode === null) process.kill(server.pid);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code);
}

function start() {
  return new Promise((resolve, reject) => {
    server = spawn(bulwark, ['--port', '0', '--fixtures'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    server.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/"msg":"listening".*?"port":(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`bulwark exited with ${code}: ${err}`)));
  });
}

/** Sends raw bytes; resolves with {status, headers, body} of the first response. */
function raw(port, bytes, { timeoutMs = scaled(3000) } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no answer within ' + timeoutMs + ' ms')); }, timeoutMs);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      const len = Number((head.match(/content-length:\s*(\d+)/i) || [])[1] || 0);
      if (buf.length - end - 4 < len) return;
      clearTimeout(timer);
      sock.destroy();
      resolve({ status: Number(head.split(' ')[1]), head, body: buf.slice(end + 4, end + 4 + len) });
    });
    // A server may refuse before reading everything we send (413): a
    // broken pipe on our side is fine as long as its answer arrives.
    sock.on('error', (e) => {
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') return;
      clearTimeout(timer);
      reject(e);
    });
    sock.write(bytes);
  });
}

function post(port, body, extra = '') {
  return `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    `Accept: application/json, text/event-stream\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${e.message}`);
  }
}

const init = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}';

try {
  const port = await start();
  const jsonError = (r, status, code) => {
    assert.equal(r.status, status, r.head);
    if (code !== undefined) assert.equal(JSON.parse(r.body).error.code, code, r.body);
  };
  await check('malformed JSON -> 400 / -32700', async () => jsonError(await raw(port, post(port, '{"jsonrpc":')), 400, -32700));
  await check('batch array -> 400 / -32600 saying batch', async () => {
    const r = await raw(port, post(port, '[' + init + ']'));
    jsonError(r, 400, -32600);
    assert.match(JSON.parse(r.body).error.message, /batch/);
  });
  await check('not JSON-RPC -> -32600 naming the field', async () => {
    const r = await raw(port, post(port, '{"id":1,"method":"ping"}'));
    jsonError(r, 400, -32600);
    assert.match(JSON.parse(r.body).error.message, /jsonrpc/);
  });
  await check('body over the limit -> 413', async () => {
    const big = '{"jsonrpc":"2.0","id":1,"method":"x","params":{"p":"' + 'a'.repeat(1100000) + '"}}';
    jsonError(await raw(port, post(port, big)), 413);
  });
  await check('wrong Content-Type -> 415', async () => {
    const r = await raw(port, `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${init.length}\r\n\r\n${init}`);
    jsonError(r, 415);
  });
  await check('Accept without the required types -> 406', async () => {
    const r = await raw(port, `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: text/html\r\nContent-Length: ${init.length}\r\n\r\n${init}`);
    jsonError(r, 406);
  });
  await check('Transfer-Encoding with Content-Length -> 400', async () => {
    const r = await raw(port, `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`);
    jsonError(r, 400);
  });
  await check('obs-folded header -> 400', async () => {
    const r = await raw(port, `POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n  b\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${init.length}\r\n\r\n${init}`);
    jsonError(r, 400);
    assert.match(JSON.parse(r.body).error.message, /fold/);
  });
  await check('two Content-Length headers -> 400', async () => {
    const r = await raw(port, `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${init.length}\r\nContent-Length: ${init.length}\r\n\r\n${init}`);
    jsonError(r, 400);
  });
  await check('unknown transfer coding -> 400', async () => {
    const r = await raw(port, `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: gzip\r\n\r\n`);
    jsonError(r, 400);
  });
  await check('foreign Origin -> 403', async () => jsonError(await raw(port, post(port, init, 'Origin: http://evil.example\r\n')), 403));
  await check('foreign Host -> 403', async () => {
    const r = await raw(port, post(port, init).replace(`Host: 127.0.0.1:${port}`, 'Host: evil.example'));
    jsonError(r, 403);
  });
  await check('request without session id -> 400', async () =>
    jsonError(await raw(port, post(port, '{"jsonrpc":"2.0","id":2,"method":"tools/list"}')), 400, -32600));
  await check('unknown session id -> 404', async () =>
    jsonError(await raw(port, post(port, '{"jsonrpc":"2.0","id":2,"method":"tools/list"}', 'Mcp-Session-Id: nope\r\n')), 404));
  await check('GET without a session -> 405', async () => {
    const r = await raw(port, `GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n`);
    assert.equal(r.status, 405);
  });
  await check('2026 header mismatch -> 400 / -32020', async () => {
    const body = '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}';
    jsonError(await raw(port, post(port, body, 'MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: prompts/list\r\n')), 400, -32020);
  });
  await check('header block one byte at a time still parses', async () => {
    const bytes = post(port, init);
    const r = await new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let i = 0;
      let buf = '';
      const timer = setInterval(() => { if (i < bytes.length) sock.write(bytes[i++]); }, 1);
      sock.on('data', (d) => { buf += d; if (buf.includes('\r\n\r\n') && buf.includes('}}')) { clearInterval(timer); sock.destroy(); resolve(buf); } });
      sock.on('error', reject);
      setTimeout(() => { clearInterval(timer); reject(new Error('no answer')); }, scaled(20000));
    });
    assert.match(r, /^HTTP\/1\.1 200/);
    assert.match(r, /Mcp-Session-Id: [0-9a-f]{32}/);
  });
  await check('the server still answers after all of the above', async () => {
    const r = await raw(port, post(port, init));
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).result.protocolVersion, '2025-11-25');
  });
  finish(failed === 0 ? 0 : 1);
} catch (e) {
  console.error(e);
  failed++;
  finish(1);
}
