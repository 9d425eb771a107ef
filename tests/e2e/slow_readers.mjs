#!/usr/bin/env node
// Slow readers against the real binary: raw loopback connections ask for
// answers larger than the kernel's socket buffers take and never read them.
// The server must give each up once its write makes no progress for
// `http.writeTimeoutSeconds`, or at once when its queued answers would pass
// `http.writeQueueLimitBytes`; its memory must come back, and other clients
// must be answered throughout.
//
//   node tests/e2e/slow_readers.mjs --bulwark build/bulwark
//
// Whether the server closed a connection is read from /proc/net/tcp on the
// client's side (a reset leaves no entry, a FIN leaves CLOSE_WAIT), since a
// client that does not read learns of neither. A binary that does not know
// the two settings fails the first check, and the attacks still run against
// it with its defaults. Every wait is bounded; every process is killed by
// pid.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { assert, callTool, harness, scaled, sleep } from './harness.mjs';

const run = harness({ scratch: 'bulwark-slow-readers-', watchdogMs: 110_000 });
const { bulwark, dir, check, startBulwark } = run;

const WRITE_TIMEOUT_S = 2;
const SLACK_MS = scaled(4000); // beyond the write timeout, for a connection to be closed
/// How long the server may take to begin all the attackers' answers: it
/// builds them one after another, and a loaded machine is slow at 8 MiB.
const ANSWERING_MS = scaled(20_000);
const ATTACKERS = 24;
/// Characters echoed per attacking request: more than loopback's socket
/// buffers take (about 4 MB here), so most of each answer stays queued in
/// the server unless it gives the connection up.
const BIG = 8 << 20;
/// The queue bound of the second server, and its pipelining attack.
const QUEUE_LIMIT = 1 << 20;
const PIPELINERS = 4;
const PIPELINED = 12;
const PIPELINED_TEXT = 1_000_000;
// Allowed growth of the server's RSS over its warmed-up baseline: less
// than half of what the dropped connections held queued (24 x about
// 4.5 MB), more than the allocator's own swing (the baseline was seen from
// 37 to 77 MB for the same warm-up, as freed memory went back to the system
// sooner or later). The sanitizer build adds what ASan's quarantine of
// freed memory may take.
const RSS_MARGIN_MB = 48 + (Number(process.env.BULWARK_TEST_RSS_SLACK_MB) || 0);

const base = { port: 0, bodyLimitBytes: 16 << 20, maxConnectionsPerAddress: 1000, readTimeoutSeconds: 30, idleTimeoutSeconds: 60 };

function config(name, value) {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) / 1024;
}

/// A raw 2026-07-28 `echo` call of `text` (keep-alive unless `close`).
function echoRequest(port, text, id, close = false) {
  const body = JSON.stringify({
    jsonrpc: '2.0', id, method: 'tools/call',
    params: { name: 'echo', arguments: { text }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
  });
  return Buffer.from(
    `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
    'Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n' +
    `${close ? 'Connection: close\r\n' : ''}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/// Connects, sends `bytes` and never reads; resolves once the bytes are
/// written (or the write failed because the server already reset it).
function slowReader(port, bytes) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.pause(); // no reads: the receive window fills and closes
    let connected = false;
    sock.on('error', (e) => { if (!connected) reject(e); }); // a reset is expected later
    sock.once('connect', () => {
      connected = true;
      const c = { sock, localPort: sock.localPort, startedAt: Date.now(), sentAt: 0, closedAt: 0 };
      sock.write(bytes, () => {
        c.sentAt = Date.now();
        resolve(c);
      });
    });
  });
}

/// TCP state and unread received bytes of this machine's IPv4 connections
/// by "localPort>remotePort".
function tcpStates() {
  const states = new Map();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const key = `${parseInt(f[1].split(':')[1], 16)}>${parseInt(f[2].split(':')[1], 16)}`;
    states.set(key, { st: f[3], unread: parseInt(f[4].split(':')[1], 16) });
  }
  return states;
}

/// Polls until every connection of `conns` was closed by the server (no
/// entry: reset; 08: CLOSE_WAIT after its FIN) or `untilMs` passes; sets
/// each one's `closedAt`, and `answeredAt` when its answer's first bytes
/// were seen waiting unread (the server's write began).
async function waitClosed(conns, port, untilMs) {
  while (Date.now() < untilMs) {
    const states = tcpStates();
    for (const c of conns) {
      if (c.closedAt) continue;
      const entry = states.get(`${c.localPort}>${port}`);
      if (entry && entry.unread > 0 && !c.answeredAt) c.answeredAt = Date.now();
      if (entry === undefined || entry.st === '08' || entry.st === '07') c.closedAt = Date.now();
    }
    if (conns.every((c) => c.closedAt)) return;
    await sleep(50);
  }
}

/// Resumes reading each connection for up to `ms`; resolves with the
/// bytes each received.
function drain(conns, ms) {
  return Promise.all(conns.map((c) => new Promise((resolve) => {
    let got = 0;
    const done = () => { clearTimeout(timer); c.sock.destroy(); resolve(got); };
    const timer = setTimeout(done, ms);
    c.sock.on('data', (d) => { got += d.length; });
    c.sock.on('close', done);
    c.sock.resume();
  })));
}

/// A normal client calling `echo` every 100 ms until `stop()`; resolves
/// with its calls' outcomes.
function prober(port) {
  const calls = [];
  let stopping = false;
  const done = (async () => {
    for (let i = 0; !stopping; i++) {
      const t0 = Date.now();
      try {
        const r = await callTool(port, 'echo', { text: `probe-${i}` });
        calls.push({ ok: r.result?.content?.[0]?.text === `probe-${i}`, t0, ms: Date.now() - t0, why: JSON.stringify(r).slice(0, 200) });
      } catch (e) {
        calls.push({ ok: false, t0, ms: Date.now() - t0, why: String(e) });
      }
      await sleep(Math.max(0, 100 - (Date.now() - t0)));
    }
    return calls;
  })();
  // Stops once it has made at least `min` calls (bounded by the watchdog).
  const stop = async (min = 10) => {
    while (calls.length < min) await sleep(100);
    stopping = true;
    return done;
  };
  return { calls, stop };
}

/// The warnings `label`'s server logged about slow readers, by reason.
function slowReaderWarnings(label, reason) {
  return run.logs.filter((l) => l.startsWith(`[${label}] `)).map((l) => {
    try {
      return JSON.parse(l.slice(label.length + 3));
    } catch {
      return null;
    }
  }).filter((r) => r && r.reason === reason && /does not read/.test(r.msg ?? ''));
}

async function metric(port, reason) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(scaled(5000)) })).text();
  const m = text.match(new RegExp(`^bulwark_http_slow_readers_total\\{reason="${reason}"\\} (\\d+)`, 'm'));
  return m ? Number(m[1]) : null;
}

function assertProbes(calls, what) {
  const failed = calls.filter((c) => !c.ok);
  const slowest = Math.max(...calls.map((c) => c.ms));
  console.log(`  ${what}: ${calls.length} calls of another client, ${failed.length} failed, slowest ${slowest} ms`);
  assert(calls.length >= 10, `only ${calls.length} calls`);
  assert(failed.length === 0, `${failed.length} failed, e.g. ${failed[0]?.why}`);
  assert(slowest < scaled(2000), `slowest call took ${slowest} ms`);
}

run.main(async () => {
  const writeSettings = { writeTimeoutSeconds: WRITE_TIMEOUT_S, writeQueueLimitBytes: QUEUE_LIMIT };
  let supported = true;
  await check('the write settings are accepted, and bad ones stop start-up with their path', async () => {
    const cases = [
      [{ http: { writeTimeoutSeconds: 0 } }, '$.http.writeTimeoutSeconds'],
      [{ http: { writeTimeoutSeconds: '5' } }, '$.http.writeTimeoutSeconds'],
      [{ http: { writeQueueLimitBytes: 1024 } }, '$.http.writeQueueLimitBytes'],
      [{ http: { writeQueueLimitBytes: 2 ** 31 } }, '$.http.writeQueueLimitBytes'],
    ];
    for (const [value, path] of cases) {
      const r = spawnSync(bulwark, ['--config', config('bad.json', value), '--print-config'], { encoding: 'utf8', timeout: scaled(10_000) });
      assert(r.status === 2, `${path}: exit ${r.status}`);
      assert(r.stderr.includes(path), `${path} not named: ${r.stderr}`);
    }
    const ok = spawnSync(bulwark, ['--config', config('ok.json', { http: { ...base, ...writeSettings } }), '--print-config'],
      { encoding: 'utf8', timeout: scaled(10_000) });
    // Without them, the attacks below still run, with the server's defaults.
    supported = ok.status === 0;
    assert(supported, `valid settings: exit ${ok.status} ${ok.stderr.trim()}`);
  });
  const settings = (extra) => ({ http: { ...base, ...(supported ? extra : {}) } });

  // -- a write that makes no progress ----------------------------------------------------

  const port = await startBulwark(['--config', config('timeout.json', settings({ ...writeSettings, writeQueueLimitBytes: 64 << 20 }))], 'timeout');
  const pid = run.started.timeout.pid;
  const big = 'x'.repeat(BIG);
  // Warm up (the allocator's pools) with as many of the same answers at
  // once, read normally, then take the baseline.
  const warm = await Promise.all(Array.from({ length: ATTACKERS }, () => callTool(port, 'echo', { text: big })));
  assert(warm.every((r) => r.result?.content?.[0]?.text?.length === BIG), 'a big echo read normally comes back whole');
  for (let i = 0; i < 10; i++) await callTool(port, 'echo', { text: `warm-${i}` });
  await sleep(500);
  const rssBefore = rssMb(pid);

  const probe = prober(port);
  await sleep(300);
  // Half keep their connection open, half ask to close it after the answer.
  const keepAlive = echoRequest(port, big, 1);
  const closing = echoRequest(port, big, 1, true);
  const attackers = await Promise.all(Array.from({ length: ATTACKERS }, (_, i) => slowReader(port, i % 2 ? closing : keepAlive)));
  let rssPeak = rssMb(pid);
  const lastSent = Math.max(...attackers.map((c) => c.sentAt));
  const giveUpAt = lastSent + ANSWERING_MS + WRITE_TIMEOUT_S * 1000 + SLACK_MS;
  const watch = (async () => {
    while (!attackers.every((c) => c.closedAt) && Date.now() < giveUpAt) {
      rssPeak = Math.max(rssPeak, rssMb(pid));
      await sleep(100);
    }
  })();
  await waitClosed(attackers, port, giveUpAt);
  await watch;
  // Memory comes back while the attackers still hold their sockets, unread
  // (bounded wait).
  let rssAfter = rssMb(pid);
  for (let end = Date.now() + scaled(5000); rssAfter > rssBefore + RSS_MARGIN_MB && Date.now() < end; rssAfter = rssMb(pid))
    await sleep(200);
  const got = await drain(attackers, scaled(1500));
  const calls = await probe.stop();
  const allAnswered = Math.max(...attackers.map((c) => c.answeredAt ?? Infinity));
  // From the first bytes of its answer: the write stalls moments later,
  // once the socket buffers are full.
  const closedIn = attackers.filter((c) => c.closedAt && c.answeredAt).map((c) => c.closedAt - c.answeredAt);
  console.log(`  ${ATTACKERS} connections asked for ${BIG / (1 << 20)} MiB each and read nothing: ` +
    `${closedIn.length} closed by the server${closedIn.length ? `, after ${Math.min(...closedIn)}-${Math.max(...closedIn)} ms` : ''}; ` +
    `received ${Math.min(...got)}-${Math.max(...got)} bytes when they read at last`);
  console.log(`  RSS: ${rssBefore.toFixed(1)} MB before, peak ${rssPeak.toFixed(1)} MB, ${rssAfter.toFixed(1)} MB after (margin ${RSS_MARGIN_MB} MB)`);

  await check(`each connection that reads nothing is closed within the write timeout (${WRITE_TIMEOUT_S} s) + ${SLACK_MS} ms of its answer`, async () => {
    const unanswered = attackers.filter((c) => !c.answeredAt);
    assert(unanswered.length === 0, `${unanswered.length} of ${ATTACKERS} saw no answer begin (${unanswered.filter((c) => c.closedAt).length} of them closed)`);
    const late = attackers.filter((c) => !c.closedAt || c.closedAt - c.answeredAt > WRITE_TIMEOUT_S * 1000 + SLACK_MS);
    assert(late.length === 0, `${late.length} of ${ATTACKERS} not closed by the server within ${WRITE_TIMEOUT_S * 1000 + SLACK_MS} ms of their answer's first bytes`);
    const early = closedIn.filter((ms) => ms < WRITE_TIMEOUT_S * 1000 - 250);
    assert(early.length === 0, `${early.length} closed before the write timeout, after ${Math.min(...closedIn)} ms`);
  });

  await check('no slow reader got its whole answer', async () => {
    const whole = got.filter((n) => n >= BIG);
    assert(whole.length === 0, `${whole.length} of ${ATTACKERS} received the whole answer (${Math.max(...got)} bytes)`);
  });

  await check(`the server's memory returns to its baseline (+${RSS_MARGIN_MB} MB)`, async () => {
    assert(rssAfter <= rssBefore + RSS_MARGIN_MB, `${rssBefore.toFixed(1)} MB -> ${rssAfter.toFixed(1)} MB (peak ${rssPeak.toFixed(1)} MB)`);
  });

  // The server builds the 24 answers of 8 MiB one after another; a call
  // made meanwhile waits its turn behind that work, as it would behind any
  // client asking for that much. What is checked is that answers nobody
  // reads hold up no one once they wait on their sockets.
  await check('another client is answered normally while the answers wait unread', async () => {
    const before = calls.filter((c) => c.t0 < allAnswered);
    console.log(`  ${before.length} calls made while the answers were being built (slowest ${Math.max(0, ...before.map((c) => c.ms))} ms), not counted;` +
      ` ${before.filter((c) => !c.ok).length} failed`);
    assert(before.every((c) => c.ok), `a call made meanwhile failed: ${before.find((c) => !c.ok)?.why}`);
    assertProbes(calls.filter((c) => c.t0 >= allAnswered), 'while the answers waited unread');
  });

  await check('each closed connection is logged once as a warning and counted', async () => {
    const warnings = slowReaderWarnings('timeout', 'write_timeout');
    assert(warnings.length === ATTACKERS, `${warnings.length} warnings for ${ATTACKERS} connections`);
    assert(warnings.every((w) => w.level === 'warning'), `level ${warnings[0]?.level}`);
    const counted = await metric(port, 'write_timeout');
    assert(counted === ATTACKERS, `bulwark_http_slow_readers_total{reason="write_timeout"} is ${counted}`);
  });
  await run.stop('timeout');

  // -- answers that would queue past the bound -------------------------------------------

  const qport = await startBulwark(['--config', config('queue.json', settings({ ...writeSettings, writeTimeoutSeconds: 60, bodyLimitBytes: 2 << 20 }))], 'queue');
  const qprobe = prober(qport);
  await sleep(300);
  // Each connection pipelines requests whose answers together are far more
  // than the bound and the socket buffers; the write timeout is too long
  // to be what closes them.
  const one = echoRequest(qport, 'y'.repeat(PIPELINED_TEXT), 1);
  const pipeline = Buffer.concat(Array.from({ length: PIPELINED }, () => one));
  const pipeliners = await Promise.all(Array.from({ length: PIPELINERS }, () => slowReader(qport, pipeline)));
  const qstart = Math.min(...pipeliners.map((c) => c.startedAt));
  await waitClosed(pipeliners, qport, qstart + scaled(5000));
  const qgot = await drain(pipeliners, scaled(1500));
  const qcalls = await qprobe.stop();
  const qclosedIn = pipeliners.filter((c) => c.closedAt).map((c) => c.closedAt - c.startedAt);
  console.log(`  ${PIPELINERS} connections pipelined ${PIPELINED} answers of ${PIPELINED_TEXT} bytes each: ${qclosedIn.length} closed` +
    `${qclosedIn.length ? `, after ${Math.max(...qclosedIn)} ms at most` : ''}; received at most ${Math.max(...qgot)} bytes`);

  await check(`a connection whose answers would queue more than ${QUEUE_LIMIT} bytes is closed long before the write timeout`, async () => {
    const open = pipeliners.filter((c) => !c.closedAt);
    assert(open.length === 0, `${open.length} of ${PIPELINERS} not closed by the server within ${scaled(5000)} ms of their first byte`);
    assert(Math.max(...qgot) < PIPELINED * PIPELINED_TEXT, `one received ${Math.max(...qgot)} bytes`);
  });

  await check('the bound is logged once per connection as a warning and counted; others are answered', async () => {
    const warnings = slowReaderWarnings('queue', 'queue_limit');
    assert(warnings.length === PIPELINERS, `${warnings.length} warnings for ${PIPELINERS} connections`);
    assert(warnings.every((w) => w.level === 'warning' && w.queuedBytes <= QUEUE_LIMIT), JSON.stringify(warnings[0]));
    const counted = await metric(qport, 'queue_limit');
    assert(counted === PIPELINERS, `bulwark_http_slow_readers_total{reason="queue_limit"} is ${counted}`);
    assertProbes(qcalls, 'during the pipelining attack');
  });
  await run.stop('queue');
});
