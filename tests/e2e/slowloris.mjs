#!/usr/bin/env node
// Slowloris against the real binary: Debian's `slowhttptest` opens up to 500
// connections from 127.0.0.1 that send their headers one line a second,
// while a normal client on another loopback address (127.0.0.2) keeps
// calling a tool over new connections. The client's calls must all succeed
// with bounded latency, the server must hold no more connections than its
// limits allow, close the slow ones, and be healthy afterwards.
//
//   node tests/e2e/slowloris.mjs --bulwark build/bulwark [--slowhttptest PATH]
//
// Bounded: the attack lasts 15 s (slowhttptest -l), is killed by pid after
// 25 s at the latest, and the whole run has a watchdog.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

import { assert, harness, scaled, sleep } from './harness.mjs';

const run = harness({ scratch: 'bulwark-slowloris-', watchdogMs: 75_000 });
const { dir, check, startBulwark } = run;
const argv = process.argv.slice(2);
const slowhttptest = argv.includes('--slowhttptest') ? argv[argv.indexOf('--slowhttptest') + 1] : 'slowhttptest';

const limits = { maxConnections: 256, maxConnectionsPerAddress: 64, readTimeoutSeconds: 3, idleTimeoutSeconds: 10 };
const attack = { connections: 500, rate: 200, seconds: 15 };

/// Sockets the process `pid` has open (its listener included).
function sockets(pid) {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/// A 2026-07-28 tools/call over a new connection from 127.0.0.2; resolves
/// with {ok, ms, why}.
function call(port, text) {
  const body = JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'tools/call',
    params: { name: 'echo', arguments: { text }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
  });
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request({
      host: '127.0.0.1', port, path: '/mcp', method: 'POST', localAddress: '127.0.0.2', agent: false, timeout: scaled(5000),
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body),
        'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo',
      },
    }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => {
        const ms = performance.now() - t0;
        try {
          const got = JSON.parse(t).result?.content?.[0]?.text;
          resolve({ ok: res.statusCode === 200 && got === text, ms, why: `${res.statusCode} ${t.slice(0, 120)}` });
        } catch {
          resolve({ ok: false, ms, why: `${res.statusCode} ${t.slice(0, 120)}` });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out after 5 s')));
    req.on('error', (e) => resolve({ ok: false, ms: performance.now() - t0, why: e.message }));
    req.end(body);
  });
}

let attackerOut = '';

/// Starts one slowhttptest run against `port` for `seconds`, statistics
/// under `prefix`; it is killed by pid at the latest 5 s after its end.
function slowloris(port, seconds, prefix) {
  const child = spawn(slowhttptest, [
    '-H', '-c', String(attack.connections), '-r', String(attack.rate), '-i', '1', '-l', String(seconds),
    '-x', '24', '-p', '3', '-g', '-o', prefix, '-u', `http://127.0.0.1:${port}/mcp`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  run.pids.push(child.pid);
  child.stdout.on('data', (d) => { attackerOut = (attackerOut + d).slice(-4000); });
  child.stderr.on('data', (d) => { attackerOut = (attackerOut + d).slice(-4000); });
  const killer = setTimeout(() => child.kill('SIGKILL'), seconds * 1000 + scaled(5000));
  const done = new Promise((r) => child.once('exit', r)).then(() => clearTimeout(killer));
  return { child, done };
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

run.main(async () => {
  const found = spawnSync(slowhttptest, ['-h'], { encoding: 'utf8', timeout: scaled(5000) });
  assert(!found.error, `slowhttptest is not installed (tools/install-deps.sh --tests): ${found.error?.message}`);

  const cfg = join(dir, 'slowloris.json');
  writeFileSync(cfg, JSON.stringify({ http: { port: 0, ...limits } }));
  const port = await startBulwark(['--config', cfg], 'bulwark');
  const pid = run.started.bulwark.pid;
  const idle = sockets(pid);

  // The attack, bounded in connections and time. slowhttptest stops early
  // when the server has closed all its connections, so it starts again
  // until the attack's time is up; each run is killed by pid at the latest
  // 5 s after its own end.
  const attackEnd = Date.now() + attack.seconds * 1000;
  const prefixes = [];
  const attackerDone = (async () => {
    while (Date.now() < attackEnd - 2000) {
      const prefix = join(dir, `slow-${prefixes.length}`);
      prefixes.push(prefix);
      await slowloris(port, Math.ceil((attackEnd - Date.now()) / 1000), prefix).done;
    }
  })();

  // The normal client: one call every 100 ms over a new connection, from 2 s
  // into the attack (once it has ramped up) until it ends.
  await sleep(2000);
  const results = [];
  let peak = 0;
  const until = attackEnd - 1000;
  let n = 0;
  while (Date.now() < until) {
    const tick = Date.now();
    results.push(await call(port, `during-${n++}`));
    peak = Math.max(peak, sockets(pid));
    await sleep(Math.max(0, 100 - (Date.now() - tick)));
  }
  await attackerDone;

  const lat = results.map((r) => r.ms);
  const failed = results.filter((r) => !r.ok);
  console.log(`  ${results.length} calls during the attack: ${failed.length} failed; latency p50 ${quantile(lat, 0.5).toFixed(1)} ms, ` +
    `p99 ${quantile(lat, 0.99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms; server sockets idle ${idle}, peak ${peak}`);

  // slowhttptest's statistics per run: seconds, closed, pending, connected,
  // service available.
  const runs = prefixes.filter((p) => existsSync(`${p}.csv`)).map((p) =>
    readFileSync(`${p}.csv`, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map((x) => x.trim())));
  const samples = runs.reduce((a, r) => a + r.length, 0);
  const lasts = runs.map((r) => r[r.length - 1] ?? []);
  const opened = lasts.reduce((a, l) => a + (Number(l[1]) || 0) + (Number(l[2]) || 0) + (Number(l[3]) || 0), 0);
  const closed = lasts.reduce((a, l) => a + (Number(l[1]) || 0), 0);
  const maxConnected = Math.max(0, ...runs.flat().map((r) => Number(r[3]) || 0));
  console.log(`  slowhttptest: ${prefixes.length} runs, ${samples} samples; ${opened} connections opened, ${closed} closed by the server; ` +
    `most connected at once ${maxConnected}`);

  await check('the attack ran for its whole time: slowhttptest opened its connections and reported', async () => {
    assert(samples >= attack.seconds - 3, `only ${samples} samples: ${attackerOut.slice(-400)}`);
    assert(opened >= attack.connections * 0.9, `only ${opened} connections opened`);
  });

  await check('every call of the normal client succeeded during the attack, with bounded latency', async () => {
    assert(results.length >= 50, `only ${results.length} calls`);
    assert(failed.length === 0, `${failed.length} failed, e.g. ${failed[0]?.why}`);
    assert(Math.max(...lat) < scaled(2000), `slowest call took ${Math.max(...lat).toFixed(0)} ms`);
    assert(quantile(lat, 0.5) < scaled(250), `median ${quantile(lat, 0.5).toFixed(0)} ms`);
  });

  await check('the server held no more connections than its limits allow and closed the slow ones', async () => {
    // Per address 64 admitted, at most 64 more being refused, the client's
    // and the listener.
    assert(peak <= idle + limits.maxConnectionsPerAddress + 64 + 4, `peak ${peak} sockets (idle ${idle})`);
    assert(maxConnected < attack.connections, `slowhttptest held all ${maxConnected} connections`);
    assert(closed >= opened * 0.8, `only ${closed} of ${opened} closed by the end`);
  });

  await check('healthy afterwards: health, a call, and the sockets back to idle', async () => {
    let left = sockets(pid);
    for (let i = 0; i < scaled(50) && left > idle + 2; i++) {
      await sleep(100);
      left = sockets(pid);
    }
    assert(left <= idle + 2, `${left} sockets open ${scaled(5)} s after the attack (idle ${idle})`);
    const health = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/health', agent: false, timeout: scaled(3000) }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });
    assert(health === 200, `health: ${health}`);
    const r = await call(port, 'after');
    assert(r.ok, r.why);
    assert(run.started.bulwark.exitCode === null, 'the server exited');
  });
  await run.stop('bulwark');

  // The control: the same attack against a server without a per-address
  // limit and with a long read timeout takes every connection slot, so the
  // client is turned away. This is what the limits above prevent.
  await check('control: without the per-address limit the same attack starves the client', async () => {
    const open = join(dir, 'control.json');
    writeFileSync(open, JSON.stringify({ http: { port: 0, ...limits, maxConnectionsPerAddress: 1000000, readTimeoutSeconds: 30 } }));
    const cport = await startBulwark(['--config', open], 'control');
    const a = slowloris(cport, 6, join(dir, 'control'));
    await sleep(3500);
    const during = [];
    for (let i = 0; i < 5; i++) during.push(await call(cport, `control-${i}`));
    a.child.kill('SIGKILL');
    await a.done;
    const refused = during.filter((r) => !r.ok);
    console.log(`  control: ${refused.length} of ${during.length} calls refused, e.g. ${refused[0]?.why}`);
    assert(refused.length === during.length, `only ${refused.length} of ${during.length} refused`);
    assert(/^503 .*-32004/.test(refused[0].why), refused[0].why);
    await run.stop('control');
  });
});
