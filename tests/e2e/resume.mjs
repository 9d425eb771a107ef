#!/usr/bin/env node
// End-to-end test of `Last-Event-ID` resumption of 2025-11-25 SSE streams,
// with raw HTTP so that every event id is seen: a POST's response stream
// (a `sleep` call that reports progress ten times) and the session's GET
// stream (resource-updated notifications).
//
//   node tests/e2e/resume.mjs --bulwark build/bulwark
//
// Checks: a GET with the id of an event in the middle of a finished POST
// stream replays exactly the events after it (none of another stream), the
// response last, none twice and none missing, and ends (at once when the client had the response); a client that loses the POST stream while the call runs
// gets the rest of it, the response included, on the GET that resumes it,
// which ends after the response;
// a GET stream resumed from an event in its middle replays exactly the
// events after it. Every process is killed by pid.

import { assert, harness, openSession, readStream, request, scaled, sleep, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-resume-', watchdogMs: 60_000 });
const { check } = run;

let nextId = 1000;
const session = (sid) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });

/// One SSE request; `events` fills with {id, data} as they arrive (data
/// parsed; comment-only and data-less events left out), `ended` resolves
/// when the server ends the stream, `close()` drops the connection.
async function sse(port, method, headers, body) {
  const ac = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method,
    signal: ac.signal,
    headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert(res.status === 200 && (res.headers.get('content-type') ?? '').startsWith('text/event-stream'),
         `${method}: an SSE stream, got HTTP ${res.status} ${res.headers.get('content-type')}: ${res.status === 200 ? '' : await res.text()}`);
  const events = [];
  let ended = false;
  const done = readStream(res, { onEvent: (id, data) => events.push({ id, data }) }).then(() => {
    ended = true;
  });
  return { events, done, ended: () => ended, close: () => ac.abort() };
}

/// Resolves once `s` holds `n` events; fails after `ms`.
async function collect(s, n, what, ms = 10_000) {
  const end = Date.now() + scaled(ms);
  while (s.events.length < n) {
    assert(Date.now() < end, `${what}: ${s.events.length} of ${n} events in ${scaled(ms)} ms: ${JSON.stringify(s.events)}`);
    await sleep(20);
  }
  return s.events;
}

/// A tools/call of `sleep` for `ms` that asks for progress.
const sleepCall = (id, ms) => ({
  jsonrpc: '2.0', id, method: 'tools/call',
  params: { name: 'sleep', arguments: { ms }, _meta: { progressToken: `p${id}` } },
});

/// `got` are exactly the events of `all` after the one with `lastId`, in order.
function assertReplay(got, all, lastId) {
  const from = all.findIndex((e) => e.id === lastId);
  assert(from >= 0, `${lastId} is one of the stream's ids`);
  const want = all.slice(from + 1);
  const ids = got.map((e) => e.id);
  assert(new Set(ids).size === ids.length, `no event twice: ${ids}`);
  assert(JSON.stringify(ids) === JSON.stringify(want.map((e) => e.id)),
         `the events after ${lastId}, in order: want ${want.map((e) => e.id)}, got ${ids}`);
  for (let i = 0; i < want.length; i++)
    assert(JSON.stringify(got[i].data) === JSON.stringify(want[i].data), `event ${ids[i]} replayed as sent`);
}

await run.main(async () => {
  const port = await run.startBulwark(['--port', '0', '--address', '127.0.0.1', '--fixtures'], 'server');

  await check('Last-Event-ID in the middle of a finished POST stream replays exactly the events after it', async () => {
    const sid = await openSession(port, {});
    const id = nextId++;
    const post = await sse(port, 'POST', session(sid), sleepCall(id, 200));
    await post.done;
    const all = post.events;
    assert(all.length === 11, `ten progress notifications and the response: ${JSON.stringify(all)}`);
    assert(all.every((e) => e.id) && new Set(all.map((e) => e.id)).size === 11, `each event has its own id: ${all.map((e) => e.id)}`);
    assert(all[10].data.id === id && all[10].data.result, 'the response comes last');
    // Another stream of the same session, whose events must not be replayed.
    const other = await sse(port, 'POST', session(sid), sleepCall(nextId++, 100));
    await other.done;
    assert(other.events.length === 11 && other.events[0].id.split('-')[0] !== all[0].id.split('-')[0],
           `another stream: ${other.events.map((e) => e.id)}`);
    const last = all[3].id;
    const resumed = await sse(port, 'GET', { ...session(sid), 'last-event-id': last });
    await collect(resumed, 7, 'the replay');
    // Nothing follows the response: the resumed stream ends with it.
    await until('the resumed stream to end after the response', () => resumed.ended(), 2000);
    assertReplay(resumed.events, all, last);
    const again = await sse(port, 'GET', { ...session(sid), 'last-event-id': all[10].id });
    await until('a stream resumed after its response to end at once', () => again.ended(), 2000);
    assert(again.events.length === 0, `nothing after the response: ${JSON.stringify(again.events)}`);
  });

  await check('a POST stream lost while its call runs is resumed by GET with the rest, the response included', async () => {
    const sid = await openSession(port, {});
    const id = nextId++;
    const post = await sse(port, 'POST', session(sid), sleepCall(id, 1000));
    const seen = (await collect(post, 3, 'the first progress notifications')).slice(0, 3);
    post.close();
    const last = seen[2].id;
    const resumed = await sse(port, 'GET', { ...session(sid), 'last-event-id': last });
    const got = await collect(resumed, 8, 'the rest of the stream', 10_000);
    await until('the resumed stream to end after the response', () => resumed.ended(), 2000);
    resumed.close();
    const ids = got.map((e) => e.id);
    assert(new Set([...seen.map((e) => e.id), ...ids]).size === 3 + ids.length, `no event twice: ${seen.map((e) => e.id)} then ${ids}`);
    const progress = [...seen, ...got].filter((e) => e.data.method === 'notifications/progress').map((e) => e.data.params.progress);
    assert(JSON.stringify(progress) === JSON.stringify([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]),
           `every progress notification once, in order: ${progress}`);
    assert(got.length === 8 && got[7].data.id === id && got[7].data.result, `the response last: ${JSON.stringify(got)}`);
  });

  await check('Last-Event-ID in the middle of a GET stream replays exactly the events after it', async () => {
    const sid = await openSession(port, {});
    const sub = await request(port, 'POST', {
      body: { jsonrpc: '2.0', id: nextId++, method: 'resources/subscribe', params: { uri: 'test://watched-resource' } },
      headers: session(sid),
    });
    assert(sub.json?.result, `subscribed: ${sub.text}`);
    const get = await sse(port, 'GET', session(sid));
    for (let i = 0; i < 6; i++) {
      const r = await request(port, 'POST', {
        body: { jsonrpc: '2.0', id: nextId++, method: 'tools/call',
                params: { name: 'test_update_resource', arguments: { uri: 'test://watched-resource' } } },
        headers: session(sid),
      });
      assert(r.json?.result, `update ${i}: ${r.text}`);
    }
    const all = await collect(get, 6, 'the updates');
    get.close();
    assert(all.every((e) => e.id && e.data.method === 'notifications/resources/updated'), `updates with ids: ${JSON.stringify(all)}`);
    assert(new Set(all.map((e) => e.id)).size === 6, `each event has its own id: ${all.map((e) => e.id)}`);
    const last = all[1].id;
    const resumed = await sse(port, 'GET', { ...session(sid), 'last-event-id': last });
    await collect(resumed, 4, 'the replay');
    await sleep(scaled(200));
    resumed.close();
    assertReplay(resumed.events, all, last);
  });
});
