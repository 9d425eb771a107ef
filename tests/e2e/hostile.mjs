#!/usr/bin/env node
// End-to-end test of Bulwark against hostile callers: clients that send
// what a well-behaved client never would, to make the server hold memory,
// flood its services, smuggle bytes into headers, take over another caller's
// call, or read a service's internals. Each check is the attack, asserting
// the defended outcome, against the real binary over loopback HTTP.
//
//   node tests/e2e/hostile.mjs --bulwark build/bulwark
//
// What Bulwark guarantees, and the checks that show it:
//
// - Resource URIs are at most 8192 bytes: a longer `params.uri` of
//   `resources/read` or `resources/subscribe`, or a longer URI in a
//   2026-07-28 listen request's `resourceSubscriptions`, gets -32602 saying
//   so (HTTP 400 for a 2026-07-28 request), and no stream stays open for a
//   refused listen request. Watched URIs are bounded per session or listen
//   stream (1000 URIs, 256 KiB of URI bytes), per caller over all its
//   sessions (1 MiB) and per server (16 MiB): past a bound, -32602 naming
//   it, and nothing is stored. A gateway tells a 2026-07-28 service of its
//   clients' subscriptions in coalesced changes: a burst of subscriptions
//   reopens the service's listen stream a few times, not once per URI.
// - Header values Bulwark sends its services are valid HTTP: a `Mcp-Name`
//   holding a resource URI with a control character or UTF-8 is sent as
//   `=?base64?...?=`, and such reads neither fail nor open the service's
//   breaker.
// - What a 2025-era session keeps of its client's `initialize` is bounded:
//   `capabilities` at most 16384 bytes, `clientInfo` at most 4096 (-32602
//   beyond), and a refused `initialize` holds no session slot. Without
//   authentication a bearer string names a caller only when the
//   configuration knows its SHA-256 (`rateLimits.keys`), so random bearer
//   strings do not escape `sessions.maxPerIdentity`; `sessions.max` bounds
//   the sessions of all callers together (429, -32008, `data.limit`
//   "sessionsPerIdentity" or "sessions").
// - A 2026-07-28 `requestState` Bulwark hands out is sealed (encrypted and
//   authenticated) and bound to the caller: the client cannot read it, and
//   another caller's replay of it gets -32602 (HTTP 400) without touching the
//   call, which its own caller completes.
// - In production mode (the default `errors.mode`) a service's JSON-RPC
//   error reaches the client with its code, its message redacted as log
//   lines are, and of its `data` only the members MCP defines plus a trace
//   id; the front's log line with that trace id holds the whole error. In
//   development mode the client gets the service's `data` whole.
//
// Services are `bulwark --fixtures` over Streamable HTTP (2026-07-28),
// some behind a recording proxy, and tests/e2e/error_server.mjs over stdio.
// Every process is killed by pid.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { assert, callTool, harness, openSession, request, scaled, sleep, startProxy, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-hostile-', watchdogMs: 150_000 });
const { dir, check, startBulwark } = run;
const here = dirname(fileURLToPath(import.meta.url));

const V25 = '2025-11-25';
const V26 = '2026-07-28';
const RSS_SLACK_MB = 60 + (Number(process.env.BULWARK_TEST_RSS_SLACK_MB) || 0);
const proxies = [];
let nextId = 1;

const sha256 = (s) => createHash('sha256').update(s).digest('hex');
/// A header value as the 2026-07-28 transport encodes one that is not plain ASCII.
const encodeHeader = (s) => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;
const controlChars = /[\x00-\x08\x0a-\x1f\x7f]/;

/// Writes a config file and returns its path.
function config(name, value) {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/// A `bulwark --fixtures` over HTTP, as a service; resolves with its port.
const startFixtures = (label) =>
  startBulwark(['--fixtures', '--no-builtin-tools', '--port', '0', '--address', '127.0.0.1'], label);

/// A gateway whose service `web` is at `url`; resolves with its port once it
/// is ready (the service reached).
async function startFront(label, url, extra = {}) {
  const port = await startBulwark(['--config', config(`${label}.json`, {
    http: { port: 0 },
    mcpServers: { web: { url } },
    services: { web: { retry: { attempts: 1 } } },
    gateway: { prefix: 'always', separator: '__' },
    health: { intervalMs: 200 },
    ...extra,
  }), '--no-builtin-tools'], label);
  await until(`${label} ready`, async () => (await request(port, 'GET', { path: '/ready' })).status === 200, 20_000);
  return port;
}

/// The resident memory of process `label`, in MB.
function rssMb(label) {
  const status = readFileSync(`/proc/${run.started[label].pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) / 1024;
}

/// A 2026-07-28 request whose headers are `headers` over the mirrored ones
/// (Mcp-Name is the caller's to give), with the client `capabilities`.
function modern(port, method, params, { headers = {}, capabilities = {} } = {}) {
  return request(port, 'POST', {
    body: {
      jsonrpc: '2.0', id: nextId++, method,
      params: {
        ...params,
        _meta: { 'io.modelcontextprotocol/protocolVersion': V26, 'io.modelcontextprotocol/clientCapabilities': capabilities },
      },
    },
    headers: { 'mcp-protocol-version': V26, 'mcp-method': method, ...headers },
  });
}

/// A request in the 2025-era session `sid`.
const inSession = (port, sid, method, params, headers = {}) =>
  request(port, 'POST', {
    body: { jsonrpc: '2.0', id: nextId++, method, params },
    headers: { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': V25 },
  });

/// An `initialize` with these `params` over the usual ones.
const initialize = (port, params, headers = {}) =>
  request(port, 'POST', {
    body: { jsonrpc: '2.0', id: nextId++, method: 'initialize',
            params: { protocolVersion: V25, capabilities: {}, clientInfo: { name: 'hostile', version: '1' }, ...params } },
    headers,
  });

/// Opens a 2026-07-28 listen stream and reads it until its first message:
/// resolves with the HTTP status, the content type, that message (`ack`
/// when it is the acknowledgement, `error` when it is an error response)
/// and, for an error, whether the stream then ended. The stream is closed
/// before this returns.
async function listenOnce(port, notifications) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), scaled(10_000));
  try {
    const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'POST',
      signal: ac.signal,
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-protocol-version': V26, 'mcp-method': 'subscriptions/listen',
      },
      body: JSON.stringify({
        jsonrpc: '2.0', id: nextId++, method: 'subscriptions/listen',
        params: { _meta: { 'io.modelcontextprotocol/protocolVersion': V26, 'io.modelcontextprotocol/clientCapabilities': {} }, notifications },
      }),
    });
    const type = res.headers.get('content-type') ?? '';
    const out = { status: res.status, type };
    if (!type.startsWith('text/event-stream')) {
      out.text = await res.text();
      try {
        out.error = JSON.parse(out.text).error;
      } catch {
        // not JSON
      }
      out.ended = true;
      return out;
    }
    let buf = '';
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        out.ended = true;
        return out;
      }
      buf += decoder.decode(value, { stream: true });
      const event = buf.indexOf('\n\n');
      if (event < 0) continue;
      const data = buf.slice(0, event).split('\n').find((l) => l.startsWith('data:'));
      const first = data ? JSON.parse(data.slice(5)) : null;
      out.text = data ?? buf.slice(0, event);
      if (first?.error) {
        out.error = first.error;
        // A refusal ends the stream: nothing else may come, and the body ends.
        const end = await Promise.race([reader.read(), sleep(scaled(2000)).then(() => null)]);
        out.ended = end?.done === true;
      } else {
        out.ack = first;
      }
      return out;
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

/// The requests a proxy passed on whose JSON-RPC method is `method`.
function seenCalls(proxy, method) {
  const out = [];
  for (const r of proxy.seen) {
    try {
      const body = JSON.parse(r.body);
      if (body.method === method) out.push({ ...r, json: body });
    } catch {
      // not JSON (a GET or DELETE)
    }
  }
  return out;
}

/// The health report of the server on `port` (loopback callers get it whole).
async function health(port) {
  const r = await request(port, 'GET', { path: '/health' });
  return r.json;
}

/// The log line `error answered` with `traceId` from the process `label`.
function errorLogLine(label, traceId) {
  for (const l of run.logs) {
    if (!l.startsWith(`[${label}] `)) continue;
    try {
      const rec = JSON.parse(l.slice(label.length + 3));
      if (rec.msg === 'error answered' && rec.traceId === traceId) return { rec, line: l };
    } catch {
      // not JSON
    }
  }
  return null;
}

await run.main(async () => {
  // -- 1. URI and subscription bounds ------------------------------------------------------
  {
    const down = await startFixtures('down-watch');
    const port = await startFront('front-watch', `http://127.0.0.1:${down}/mcp`);
    const sid = await openSession(port, {});

    await check('60 subscriptions to 900 KB URIs are each refused with -32602 at once, and nothing is kept', async () => {
      const baseline = rssMb('front-watch');
      const t0 = Date.now();
      const answers = [];
      for (let i = 0; i < 60; i++) {
        const uri = `test://template/${String(i).padStart(2, '0')}${'a'.repeat(900_000)}/data`;
        const r = await inSession(port, sid, 'resources/subscribe', { uri });
        answers.push(r.json?.error ?? { status: r.status, result: r.json?.result, text: r.text.slice(0, 200) });
      }
      const took = Date.now() - t0;
      await sleep(300);
      const grown = rssMb('front-watch') - baseline;
      const wrong = answers.findIndex((e) => e.code !== -32602 || !/longer than 8192 bytes/.test(e.message));
      assert(wrong < 0, `subscription ${wrong} (of 60) was not refused for its length: ${JSON.stringify(answers[wrong])}; ` +
                        `the front grew by ${grown.toFixed(1)} MB`);
      assert(took < scaled(20_000), `60 refusals took ${took} ms`);
      assert(grown < RSS_SLACK_MB, `the front grew by ${grown.toFixed(1)} MB (bound ${RSS_SLACK_MB} MB)`);
    });

    await check('subscriptions to 7 KB URIs are accepted until the session watches 256 KiB, then refused naming 262144 bytes', async () => {
      const uris = Array.from({ length: 40 }, (_, i) => `test://template/${String(i).padStart(2, '0')}${'b'.repeat(7000)}/data`);
      const fit = Math.floor(262144 / uris[0].length);
      const answers = [];
      for (const uri of uris) {
        const r = await inSession(port, sid, 'resources/subscribe', { uri });
        answers.push(r.json);
      }
      const accepted = answers.findIndex((m) => !m?.result);
      assert(accepted >= 0, `all 40 subscriptions (${40 * uris[0].length} bytes of URIs) were accepted`);
      assert(accepted >= 30 && accepted <= fit, `${accepted} accepted before the first refusal (${fit} fit in 262144 bytes)`);
      for (let i = accepted; i < answers.length; i++) {
        const e = answers[i]?.error;
        assert(e?.code === -32602 && e.message.includes('262144'), `subscription ${i}: ${JSON.stringify(answers[i])}`);
      }
    });

    await check('resources/read of a 9000-byte URI gets -32602 in both eras (HTTP 400 for 2026-07-28); an 8000-byte one is read', async () => {
      const long = `test://template/${'r'.repeat(9000)}/data`;
      const modernRead = await modern(port, 'resources/read', { uri: long }, { headers: { 'mcp-name': long } });
      assert(modernRead.status === 400 && modernRead.json?.error?.code === -32602 && /longer than 8192 bytes/.test(modernRead.json.error.message),
             `2026-07-28: ${modernRead.status} ${modernRead.text.slice(0, 300)}`);
      const sessionRead = await inSession(port, sid, 'resources/read', { uri: long });
      assert(sessionRead.json?.error?.code === -32602 && /longer than 8192 bytes/.test(sessionRead.json.error.message),
             `2025-11-25: ${sessionRead.status} ${sessionRead.text.slice(0, 300)}`);
      const fits = `test://template/${'r'.repeat(8000)}/data`;
      const ok = await modern(port, 'resources/read', { uri: fits }, { headers: { 'mcp-name': fits } });
      assert(ok.status === 200 && ok.json?.result?.contents?.[0]?.uri === fits, `an 8000-byte URI: ${ok.status} ${ok.text.slice(0, 300)}`);
    });

    const long = `test://template/${'c'.repeat(9000)}/data`;
    await check('a 2026-07-28 listen stream naming a 9000-byte URI is refused with -32602 and ends; an 8000-byte one is acknowledged', async () => {
      const r = await listenOnce(port, { resourceSubscriptions: [long] });
      assert(!r.ack, `a listen stream opened for a ${long.length}-byte URI: ${r.text?.slice(0, 200)}`);
      assert(r.error?.code === -32602 && /longer than 8192 bytes/.test(r.error.message), `${r.status} ${r.text?.slice(0, 300)}`);
      assert(r.ended, 'the refused listen stream stayed open');
      const fits = `test://template/${'c'.repeat(8000)}/data`;
      const ok = await listenOnce(port, { resourceSubscriptions: [fits] });
      assert(ok.status === 200 && ok.ack?.params?.notifications?.resourceSubscriptions?.[0] === fits,
             `an 8000-byte URI: ${ok.status} ${ok.text?.slice(0, 300)}`);
    });

    await check('that refused listen request is answered with HTTP 400 (a plain JSON error, no stream)', async () => {
      const r = await listenOnce(port, { resourceSubscriptions: [long] });
      assert(r.status === 400 && !r.type.startsWith('text/event-stream') && r.error?.code === -32602,
             `HTTP ${r.status} ${r.type}: ${r.text?.slice(0, 300)}`);
    });
  }

  // -- 1b. Coalesced subscription changes to a 2026-07-28 service --------------------------
  await check('30 subscriptions in a burst reopen the service\'s listen stream at most 10 times, the last naming all 30', async () => {
    const down = await startFixtures('down-coalesce');
    const discover = await modern(down, 'server/discover', {});
    assert(discover.json?.result?.capabilities?.resources?.subscribe === true,
           `the fixtures do not declare resources.subscribe: ${discover.text}`);
    const proxy = await startProxy(down);
    proxies.push(proxy);
    const port = await startFront('front-coalesce', `http://127.0.0.1:${proxy.port}/mcp`);
    const sid = await openSession(port, {});
    await sleep(500); // what the front asks at start-up is asked by now
    const mark = seenCalls(proxy, 'subscriptions/listen').length;
    const uris = Array.from({ length: 30 }, (_, i) => `test://template/burst-${i}/data`);
    for (const uri of uris) {
      const r = await inSession(port, sid, 'resources/subscribe', { uri });
      assert(r.json?.result, `subscribe ${uri}: ${r.text}`);
    }
    await sleep(1000);
    const listens = seenCalls(proxy, 'subscriptions/listen').slice(mark);
    assert(listens.length >= 1 && listens.length <= 10, `${listens.length} listen requests for 30 subscriptions`);
    const named = listens.at(-1).json.params?.notifications?.resourceSubscriptions ?? [];
    const missing = uris.filter((u) => !named.includes(u));
    assert(missing.length === 0, `the last listen request lacks ${missing.length} URIs: ${missing.slice(0, 3).join(', ')}`);
  });

  await check('two sessions watching 210 KB each of a service\'s URIs do not make the gateway reopen its listen stream in a loop', async () => {
    // 420 KB of watched URIs: within what one caller may watch (1 MiB), more
    // than one listen request to a Bulwark service may name (256 KiB).
    const down = await startFixtures('down-many');
    const proxy = await startProxy(down);
    proxies.push(proxy);
    const port = await startFront('front-many', `http://127.0.0.1:${proxy.port}/mcp`);
    for (let s = 0; s < 2; s++) {
      const sid = await openSession(port, {});
      for (let i = 0; i < 30; i++) {
        const uri = `test://template/s${s}-${String(i).padStart(2, '0')}${'m'.repeat(7000)}/data`;
        const r = await inSession(port, sid, 'resources/subscribe', { uri });
        assert(r.json?.result, `session ${s}, subscription ${i}: ${r.text.slice(0, 300)}`);
      }
    }
    await sleep(1000);
    const settled = seenCalls(proxy, 'subscriptions/listen').length;
    await sleep(2500);
    const more = seenCalls(proxy, 'subscriptions/listen').length - settled;
    assert(more <= 1, `${more} more listen requests to the service in the 2.5 s after the subscriptions ended`);
  });

  // -- 2. Mcp-Name is encoded ---------------------------------------------------------------
  {
    const down = await startFixtures('down-name');
    const proxy = await startProxy(down);
    proxies.push(proxy);
    const port = await startFront('front-name', `http://127.0.0.1:${proxy.port}/mcp`, {
      services: { web: { retry: { attempts: 1 }, breaker: { consecutiveFailures: 3, openMs: 60_000 } } },
    });

    /// Reads `uri` through the front, sent with an encoded Mcp-Name; returns
    /// the client's answer and what the service was sent.
    const readThrough = async (uri) => {
      const r = await modern(port, 'resources/read', { uri }, { headers: { 'mcp-name': encodeHeader(uri) } });
      const sent = seenCalls(proxy, 'resources/read').filter((s) => s.json.params?.uri === uri);
      return { r, sent };
    };
    const assertEncoded = (sent, uri) => {
      assert(sent.length >= 1, `the service was never sent resources/read of ${JSON.stringify(uri)}`);
      for (const s of sent) {
        const name = s.headers['mcp-name'] ?? '';
        const m = /^=\?base64\?([A-Za-z0-9+/=]*)\?=$/.exec(name);
        assert(m, `Mcp-Name sent to the service: ${JSON.stringify(name)}`);
        assert(Buffer.from(m[1], 'base64').toString('utf8') === uri, `Mcp-Name decodes to ${JSON.stringify(Buffer.from(m[1], 'base64').toString('utf8'))}`);
        for (const [h, v] of Object.entries(s.headers))
          assert(!controlChars.test(String(v)), `header ${h} sent with a control character: ${JSON.stringify(v)}`);
      }
    };

    await check('a resource URI with a newline reaches the service with Mcp-Name =?base64?...?=, 10 times; the breaker stays closed', async () => {
      const uri = 'test://template/x\ny/data';
      const answers = [];
      for (let i = 0; i < 10; i++) answers.push((await readThrough(uri)).r);
      for (const [i, r] of answers.entries())
        assert(r.status === 200 && r.json?.result?.contents, `read ${i}: ${r.status} ${r.text.slice(0, 300)}`);
      assertEncoded(seenCalls(proxy, 'resources/read').filter((s) => s.json.params?.uri === uri), uri);
      // A report made after the reads.
      const since = (await health(port)).checks;
      const h = await until('a fresh health report', async () => {
        const now = await health(port);
        return now.checks > since + 1 ? now : null;
      }, 5000);
      assert(h.components?.breakers?.web?.state === 'closed', `the breaker of web: ${JSON.stringify(h.components?.breakers?.web)}`);
      const normal = await callTool(port, 'web__test_simple_text');
      assert(normal.result?.content?.[0]?.text === 'This is a simple text response for testing.', `a normal call: ${JSON.stringify(normal)}`);
    });

    await check('a resource URI with UTF-8 reaches the service with Mcp-Name =?base64?...?=', async () => {
      const uri = 'test://template/é/data';
      const { r, sent } = await readThrough(uri);
      assert(r.status === 200 && r.json?.result?.contents, `${r.status} ${r.text.slice(0, 300)}`);
      assertEncoded(sent, uri);
    });
  }

  // -- 3. Stored client data bounded, sessions capped ---------------------------------------
  {
    const port = await startBulwark(['--fixtures', '--no-builtin-tools', '--port', '0', '--address', '127.0.0.1'], 'sessions');

    await check('an initialize with 1 MB of capabilities gets -32602 naming 16384 bytes, and no session', async () => {
      const r = await initialize(port, { capabilities: { experimental: { x: 'A'.repeat(1e6) } } });
      assert(r.json?.error?.code === -32602 && r.json.error.message.includes('16384'), `${r.status} ${r.text.slice(0, 300)}`);
      assert(!r.headers.get('mcp-session-id'), 'a session was made');
    });

    await check('an initialize with a 5000-byte clientInfo gets -32602 naming 4096 bytes, and no session', async () => {
      const r = await initialize(port, { clientInfo: { name: 'n'.repeat(5000), version: '1' } });
      assert(r.json?.error?.code === -32602 && r.json.error.message.includes('4096'), `${r.status} ${r.text.slice(0, 300)}`);
      assert(!r.headers.get('mcp-session-id'), 'a session was made');
    });
  }

  await check('refused initializes leave no session slot behind: after 3 of them the caller still opens a session', async () => {
    // The caller (anonymous) may hold 3 sessions. A refused initialize makes
    // no session the caller could end, so it may hold no slot.
    const port = await startBulwark(['--config', config('refused.json', { http: { port: 0 }, sessions: { maxPerIdentity: 3 } }),
                                      '--fixtures', '--no-builtin-tools'], 'sessions-refused');
    for (let i = 0; i < 3; i++) {
      const r = await initialize(port, { capabilities: 'not an object' });
      assert(r.json?.error?.code === -32602 && !r.headers.get('mcp-session-id'), `refused initialize ${i}: ${r.status} ${r.text.slice(0, 300)}`);
    }
    const r = await initialize(port, {});
    assert(r.status === 200 && r.headers.get('mcp-session-id'), `the first real initialize: ${r.status} ${r.text.slice(0, 300)}`);
  });

  await check('without authentication, random bearer strings are one caller: the 4th session gets 429, -32008 sessionsPerIdentity', async () => {
    const port = await startBulwark(['--config', config('bearers.json', { http: { port: 0 }, sessions: { maxPerIdentity: 3 } }),
                                      '--fixtures', '--no-builtin-tools'], 'sessions-bearers');
    const bearer = () => ({ authorization: `Bearer rand-${randomBytes(12).toString('hex')}` });
    for (let i = 0; i < 3; i++) await openSession(port, bearer());
    const r = await initialize(port, {}, bearer());
    assert(r.status === 429 && r.json?.error?.code === -32008 && r.json.error.data?.limit === 'sessionsPerIdentity',
           `the 4th session: ${r.status} ${r.text.slice(0, 300)}`);
    assert(!r.headers.get('mcp-session-id'), 'a refused initialize got a session id');
  });

  await check('sessions.max bounds all callers: with 3 sessions of key A and 2 of key B, the 6th gets 429, -32008 sessions', async () => {
    const [keyA, keyB] = ['hostile-key-a', 'hostile-key-b'];
    const port = await startBulwark(['--config', config('total.json', {
      http: { port: 0 },
      sessions: { maxPerIdentity: 3, max: 5 },
      rateLimits: { keys: { [sha256(keyA)]: {}, [sha256(keyB)]: {} } },
    }), '--fixtures', '--no-builtin-tools'], 'sessions-total');
    const a = { authorization: `Bearer ${keyA}` };
    const b = { authorization: `Bearer ${keyB}` };
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await openSession(port, a));
    for (let i = 0; i < 2; i++) await openSession(port, b);
    const r = await initialize(port, {}, b);
    assert(r.status === 429 && r.json?.error?.code === -32008 && r.json.error.data?.limit === 'sessions',
           `the 6th session: ${r.status} ${r.text.slice(0, 300)}`);
    // Ending one frees a slot for anyone.
    const del = await request(port, 'DELETE', { headers: { ...a, 'mcp-session-id': held[0], 'mcp-protocol-version': V25 } });
    assert(del.status === 200, `DELETE: ${del.status}`);
    await openSession(port, b);
  });

  // -- 4. requestState is sealed to its caller -------------------------------------------------
  {
    const [keyA, keyB] = ['alice-key-for-hostile', 'mallory-key-for-hostile'];
    const down = await startFixtures('down-input');
    const port = await startFront('front-input', `http://127.0.0.1:${down}/mcp`, {
      rateLimits: { keys: { [sha256(keyA)]: {}, [sha256(keyB)]: {} } },
    });
    const tool = 'web__test_input_required_result_elicitation';
    const as = (key) => ({ headers: { authorization: `Bearer ${key}`, 'mcp-name': tool }, capabilities: { elicitation: {} } });
    const first = await modern(port, 'tools/call', { name: tool, arguments: {} }, as(keyA));
    const state = first.json?.result?.requestState;

    await check('an input_required result carries a requestState that reads as nothing', async () => {
      assert(first.json?.result?.resultType === 'input_required' && typeof state === 'string',
             `the first answer: ${first.status} ${first.text.slice(0, 300)}`);
      assert(/^[A-Za-z0-9_-]+$/.test(state), `not one base64url string: ${state}`);
      const bytes = Buffer.from(state, 'base64url');
      const latin = bytes.toString('latin1');
      const hexRun = /[0-9a-fA-F]{16,}/.exec(latin);
      assert(!hexRun, `the decoded state holds a hex run: ${hexRun?.[0]}`);
      const textRun = /[\x20-\x7e]{16,}/.exec(latin);
      assert(!textRun, `the decoded state holds readable text: ${JSON.stringify(textRun?.[0])}`);
      assert(!latin.includes(tool) && !latin.includes('test_input_required'), 'the decoded state names the tool');
    });

    await check("another caller's replay of the requestState gets 400 / -32602; its own caller completes the call", async () => {
      assert(typeof state === 'string', 'no requestState to replay');
      const answer = (name) => ({ user_name: { action: 'accept', content: { name } } });
      const replay = await modern(port, 'tools/call', { name: tool, arguments: {}, inputResponses: answer('Mallory'), requestState: state }, as(keyB));
      assert(replay.status === 400 && replay.json?.error?.code === -32602 && /integrity check/.test(replay.json.error.message),
             `the replay: ${replay.status} ${replay.text.slice(0, 300)}`);
      const own = await modern(port, 'tools/call', { name: tool, arguments: {}, inputResponses: answer('Alice'), requestState: state }, as(keyA));
      assert(own.json?.result?.content?.[0]?.text === 'Hello, Alice!', `the caller's own answer: ${own.status} ${own.text.slice(0, 300)}`);
    });
  }

  // -- 5. A service's errors in production and development mode ---------------------------------
  for (const mode of ['production', 'development']) {
    await check(`${mode} mode: a service's JSON-RPC error full of internals`, async () => {
      const label = `front-errors-${mode}`;
      const port = await startBulwark(['--config', config(`${label}.json`, {
        http: { port: 0 },
        mcpServers: { err: { command: process.execPath, args: [join(here, 'error_server.mjs')] } },
        gateway: { prefix: 'always', separator: '__' },
        ...(mode === 'development' ? { errors: { mode: 'development' } } : {}),
      }), '--no-builtin-tools'], label);
      await until(`${label} ready`, async () => (await request(port, 'GET', { path: '/ready' })).status === 200, 20_000);
      const r = await modern(port, 'tools/call', { name: 'err__fail', arguments: {} }, { headers: { 'mcp-name': 'err__fail' } });
      const e = r.json?.error;
      assert(e?.code === -31999, `the service's code: ${r.status} ${r.text.slice(0, 400)}`);
      assert(e.message.includes('cannot open /srv/data/secret.db'), `the message: ${e.message}`);
      assert(e.data?.requiredCapabilities?.sampling, `data.requiredCapabilities: ${JSON.stringify(e.data)}`);
      assert(typeof e.data?.traceId === 'string' && e.data.traceId, `data.traceId: ${JSON.stringify(e.data)}`);
      if (mode === 'production') {
        assert(!r.text.includes('hunter2'), `the password reached the client: ${r.text}`);
        assert(/\[REDACTED/.test(e.message), `the message is not redacted: ${e.message}`);
        assert(!('stack' in e.data) && !('password' in e.data), `data keeps internals: ${JSON.stringify(e.data)}`);
        assert(!r.text.includes('/srv/app/x.js'), `the stack reached the client: ${r.text}`);
        const logged = await until('the log line', () => errorLogLine(label, e.data.traceId), 3000);
        assert(logged.line.includes('Error at /srv/app/x.js:1'), `the log line lacks the stack: ${logged.line}`);
        assert(!logged.line.includes('hunter2'), `the log line holds the password: ${logged.line}`);
      } else {
        assert(e.data.stack === 'Error at /srv/app/x.js:1' && e.data.password === 'hunter2',
               `development mode passes data whole: ${JSON.stringify(e.data)}`);
      }
      await run.stop(label);
    });
  }

  for (const p of proxies) p.shut();
});
