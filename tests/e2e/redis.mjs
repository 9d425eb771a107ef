#!/usr/bin/env node
// End-to-end test of several instances sharing state through Redis: a
// `redis-server` on a free loopback port, a downstream `bulwark --fixtures
// --fault-tools` ("web"), and three front instances with the same config
// and `redis.url`.
//
//   node tests/e2e/redis.mjs --bulwark build/bulwark [--redis-server PATH]
//
// Checks: an ACL user signs in with a percent-encoded password, and a wrong
// password is reported without being shown; a per-key limit of L per minute
// admits at most L calls across all
// instances together; a result cached through one instance is a hit on the
// others, and an invalidation through one reaches all (without touching
// another service's 2,000 copies in Redis); made-up session ids are
// answered 404 and, repeated, not looked up in Redis again for a while; a 2025-era session
// created on one instance is served by another (and its owner is enforced
// there), also after the instance that created it is gone, and keeps the
// log level and resource subscriptions set there; a breaker
// opened or closed through one instance is opened or closed on all, and the
// others list the degraded peer, and an instance started later takes it;
// killing Redis amid calls keeps every instance answering (degraded, with the
// reason), and after Redis is started again they share state again without
// a restart; a hung Redis (SIGSTOP) delays no call by more than
// commandTimeoutMs plus a slack, makes every instance degraded, and after
// SIGCONT they share state again. Every process is killed by pid (Redis
// is sent SIGCONT first).

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { adminRequest, assert, callTool as call, freePort, harness, redisCommand, scaled, sleep, until } from './harness.mjs';

const args = process.argv.slice(2);
const redisServer = args.includes('--redis-server') ? args[args.indexOf('--redis-server') + 1] : 'redis-server';
const run = harness({ scratch: 'bulwark-redis-', watchdogMs: 150_000 });
const { check, startBulwark, stop, logs } = run;

/// How often Redis ran each command so far (INFO commandstats), by lower-case name.
async function commandCalls() {
  const out = {};
  for (const m of (await redisCommand(run.redisPort, 'INFO', 'commandstats')).matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g))
    out[m[1]] = Number(m[2]);
  return out;
}

/// How many keys match `pattern`.
async function countKeys(pattern) {
  return Number((await redisCommand(run.redisPort, 'KEYS', pattern)).split('\r\n')[0].slice(1));
}

async function health(port) {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(scaled(5000)) });
  return res.json();
}

/// Waits (bounded) until `port`'s health is degraded, and checks that Redis
/// is the reason; resolves with the health.
async function degradedByRedis(port) {
  const h = await until(`degraded on :${port}`, async () => {
    const h = await health(port);
    return h.degraded ? h : null;
  }, 5000);
  assert(h.status === 'degraded' && h.reasons.some((x) => x.includes('redis unreachable')),
         `reasons on :${port}: ${JSON.stringify(h.reasons)}`);
  return h;
}

const text = (r) => r.result?.content?.[0]?.text ?? '';
const cacheMark = (r) => r.result?._meta?.['io.bulwark/cache'];

/// A 2025-era JSON-RPC request to `port`; resolves with status, session id
/// and the parsed response (or null without a body).
async function post2025(port, body, sessionId, headers = {}) {
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(sessionId ? { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(scaled(10_000)),
  });
  const raw = await res.text();
  let messages = [];
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    messages = raw.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5).trim()));
  } else if (raw) {
    messages = [JSON.parse(raw)];
  }
  // The answer comes last; `messages` holds the notifications before it too.
  const json = messages.length ? messages[messages.length - 1] : null;
  return { status: res.status, session: res.headers.get('mcp-session-id'), json, messages };
}

/// A 2025-era session's GET event stream on `port`: collects its messages
/// until closed.
function openStream(port, sessionId) {
  const ac = new AbortController();
  const messages = [];
  (async () => {
    const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      signal: ac.signal,
    });
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2))
        for (const line of buf.slice(0, i).split('\n'))
          if (line.startsWith('data:') && line.slice(5).trim()) messages.push(JSON.parse(line.slice(5).trim()));
    }
  })().catch(() => {}); // ended by close()
  return { messages, close: () => ac.abort() };
}

run.main(async () => {
  const redisPort = await freePort();
  run.redisPort = redisPort;
  await run.startRedis(redisPort, redisServer);
  const downPort = await startBulwark(['--port', '0', '--fixtures', '--fault-tools', '--no-builtin-tools'], 'down');
  const adminToken = 'admin-token-for-the-redis-test';
  const keyBefore = 'key-limited-before-the-outage';
  const keyAfter = 'key-limited-after-the-outage';
  const keyHang = 'key-limited-during-the-hang';
  const keyResumed = 'key-limited-after-the-hang';
  const sha = (s) => createHash('sha256').update(s).digest('hex');
  const limit = 6;
  // A limit whose sixteenth is 10: each round trip leases ten tokens.
  const wideLimit = 160;
  const keyWide = 'key-with-a-wide-limit';
  const commandTimeoutMs = 1000;
  const prefix = `e2e-${process.pid}:`;
  const cfgPath = join(run.dir, 'front.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0 },
    mcpServers: { web: { url: `http://127.0.0.1:${downPort}/mcp` }, other: { url: `http://127.0.0.1:${downPort}/mcp` } },
    services: {
      web: {
        timeoutMs: 2000,
        retry: { attempts: 1 },
        cache: { ttlMs: 60000, maxStaleMs: 60000, tools: ['fault_count'], scope: 'public' },
      },
      // The same tools under other names: a second service's cache entries.
      other: {
        prefix: 'always',
        timeoutMs: 2000,
        cache: { ttlMs: 60000, maxStaleMs: 60000, tools: ['fault_count'], scope: 'public' },
      },
    },
    gateway: { prefix: 'never' },
    rateLimits: {
      tiers: { tiny: { perMinute: limit }, wide: { perHour: wideLimit } },
      // Without authentication only known keys name a caller.
      keys: { [sha(keyBefore)]: { tier: 'tiny' }, [sha(keyAfter)]: { tier: 'tiny' }, [sha('someone-else')]: { tier: 'tiny' },
             [sha(keyHang)]: { tier: 'tiny' }, [sha(keyResumed)]: { tier: 'tiny' }, [sha(keyWide)]: { tier: 'wide' } },
    },
    health: { intervalMs: 100, exitAfterMs: 300 },
    admin: { tokenSha256: sha(adminToken) },
    redis: { url: `redis://127.0.0.1:${redisPort}/0`, keyPrefix: prefix, retryMs: 200,
             commandTimeoutMs },
  }));
  const ports = [];
  for (const name of ['a', 'b', 'c']) ports.push(await startBulwark(['--config', cfgPath], name));

  const shared = async () => {
    for (const p of ports) {
      const h = await health(p);
      if (!h.components?.redis?.available || !h.components.redis.subscribed || h.degraded) return false;
    }
    return true;
  };

  await check('every instance reaches Redis and reports it in /health', async () => {
    await until('shared state on every instance', shared, 10_000);
    const h = await health(ports[0]);
    assert(h.components.redis.breaker === 'closed', `redis component: ${JSON.stringify(h.components.redis)}`);
    assert(h.components.redis.endpoint === `127.0.0.1:${redisPort}/0`, 'names the endpoint');
  });

  await check('a Redis ACL user signs in with a percent-encoded password; a wrong one is refused, with the reason', async () => {
    const ok = await redisCommand(redisPort, 'ACL', 'SETUSER', 'bw-acl', 'on', '>p@ss:w/rd', '~*', '&*', '+@all');
    assert(ok.startsWith('+OK'), `ACL SETUSER: ${ok}`);
    const instance = async (name, password) => {
      const path = join(run.dir, `${name}.json`);
      writeFileSync(path, JSON.stringify({
        http: { port: 0 },
        redis: { url: `redis://bw-acl:${password}@127.0.0.1:${redisPort}/0`, keyPrefix: prefix, retryMs: 200 },
      }));
      return startBulwark(['--config', path], name);
    };
    try {
      const good = await instance('acl', encodeURIComponent('p@ss:w/rd'));
      await until('the ACL user connected', async () => (await health(good)).components?.redis?.available === true, 10_000);
      const clients = await redisCommand(redisPort, 'CLIENT', 'LIST');
      assert(/ user=bw-acl /.test(clients), `no connection of bw-acl: ${clients}`);
      const bad = await instance('acl-wrong', 'not-it');
      const h = await until('the refusal reported', async () => {
        const h = await health(bad);
        return h.reasons?.some((x) => x.includes('WRONGPASS')) ? h : null;
      }, 10_000);
      assert(h.status === 'degraded' && !h.components.redis.available, JSON.stringify(h.components.redis));
      assert(!JSON.stringify(h).includes('not-it'), 'the password is not shown');
    } finally {
      for (const name of ['acl', 'acl-wrong']) if (run.started[name]) await stop(name);
    }
  });

  /// Calls round-robin over the instances with `key`; returns admitted and
  /// refused counts (anything else fails).
  const spread = async (key, calls) => {
    let admitted = 0, refused = 0;
    for (let i = 0; i < calls; i++) {
      const r = await call(ports[i % ports.length], 'test_simple_text', {}, { authorization: `Bearer ${key}` });
      if (r.result) admitted++;
      else if (r.error?.code === -32010 && r.error.data.limit === 'user_quota') refused++;
      else throw new Error(`unexpected answer: ${JSON.stringify(r)}`);
    }
    return { admitted, refused };
  };

  await check(`a per-key limit of ${limit} per minute admits ${limit} calls across three instances`, async () => {
    const { admitted, refused } = await spread(keyBefore, 3 * limit);
    assert(admitted === limit, `admitted ${admitted} of ${3 * limit} (limit ${limit} in total)`);
    assert(refused === 2 * limit, `refused ${refused}`);
  });

  await check(`a limit of ${wideLimit} per hour: tokens leased ten at a time, none beyond the limit, none lost`, async () => {
    const scripts = async () => {
      const c = await commandCalls();
      return (c.evalsha ?? 0) + (c.eval ?? 0);
    };
    const before = await scripts();
    const first = await spread(keyWide, wideLimit);
    const trips = (await scripts()) - before;
    // Another instance may hold the last tokens of its lease for a moment:
    // at most ten each of the other two.
    assert(first.admitted <= wideLimit && first.admitted >= wideLimit - 2 * 10,
           `admitted ${first.admitted} of ${wideLimit} calls (limit ${wideLimit})`);
    // 16 leases of ten, a few smaller ones near the end, the refusals: far
    // fewer than one script per call.
    assert(trips <= wideLimit / 3, `${trips} scripts for ${wideLimit} calls`);
    // A lease lasts a second; what it did not spend goes back, and no more.
    await sleep(scaled(1500));
    const then = await spread(keyWide, 45);
    console.log(`  ${first.admitted} of ${wideLimit} calls admitted with ${trips} scripts; ${then.admitted} more once the leases ended`);
    assert(first.admitted + then.admitted === wideLimit,
           `admitted ${first.admitted} + ${then.admitted} after the leases ended, limit ${wideLimit}`);
  });

  await check('a result cached through one instance is a hit on the others', async () => {
    const first = await call(ports[0], 'fault_count', { key: 'shared-1' });
    assert(text(first).includes('1') && cacheMark(first) === undefined, `first call ran: ${JSON.stringify(first)}`);
    // The copy is written to Redis beside the answer.
    await until('the copy in Redis', async () => (await redisCommand(redisPort, 'KEYS', `${prefix}cache:*`)).includes('shared-1'));
    for (const p of ports.slice(1)) {
      const r = await call(p, 'fault_count', { key: 'shared-1' });
      assert(cacheMark(r)?.stale === false, `a cache hit on :${p}: ${JSON.stringify(r)}`);
      assert(text(r) === text(first), `the same result: ${text(r)} vs ${text(first)}`);
    }
  });

  const others = 2000;
  await check(`${others} results of another service are cached in Redis`, async () => {
    let next = 0;
    const worker = async () => {
      while (next < others) {
        const i = next++;
        const r = await call(ports[0], 'other__fault_count', { key: `o-${i}` });
        assert(r.result && !r.result.isError, `other__fault_count o-${i}: ${JSON.stringify(r)}`);
      }
    };
    await Promise.all(Array.from({ length: 25 }, worker));
    await until(`${others} copies in Redis`, async () => (await countKeys(`${prefix}cache:*other\n*`)) === others, 10_000);
  });

  await check('an invalidation through one instance reaches every instance', async () => {
    const before = await commandCalls();
    const r = await adminRequest(ports[0], adminToken, 'POST', 'cache/invalidate', { service: 'web' });
    assert(r.status === 200, `invalidate: ${JSON.stringify(r)}`);
    // Instance b kept the copy in memory; the published invalidation drops it.
    const after = await until('a fresh answer on b', async () => {
      const x = await call(ports[1], 'fault_count', { key: 'shared-1' });
      return cacheMark(x) === undefined ? x : null;
    }, 5000);
    assert(text(after).includes('2'), `the service ran again: ${text(after)}`);
    // The other service's copies are untouched, and still hits elsewhere; no
    // invalidation walks or deletes keys.
    assert((await countKeys(`${prefix}cache:*other\n*`)) === others, 'the other service keeps its copies in Redis');
    for (const i of [0, 777, others - 1]) {
      const x = await call(ports[2], 'other__fault_count', { key: `o-${i}` });
      assert(cacheMark(x)?.stale === false && text(x) === '1', `o-${i} a hit on c: ${JSON.stringify(x)}`);
    }
    const calls = await commandCalls();
    for (const cmd of ['scan', 'unlink', 'del'])
      assert((calls[cmd] ?? 0) === (before[cmd] ?? 0), `${cmd}: ${before[cmd] ?? 0} -> ${calls[cmd] ?? 0}`);
    // A tool's prefix (one method of one service), through another instance.
    const m = await adminRequest(ports[2], adminToken, 'POST', 'cache/invalidate', { prefix: 'other\ntools/call\n' });
    assert(m.status === 200, `invalidate a prefix: ${JSON.stringify(m)}`);
    const again = await until('a fresh answer of o-777 on a', async () => {
      const x = await call(ports[0], 'other__fault_count', { key: 'o-777' });
      return cacheMark(x) === undefined ? x : null;
    }, 5000);
    assert(text(again) === '2', `the other service ran again: ${text(again)}`);
  });

  await check('a 2025-era session created on one instance is served by another', async () => {
    const init = await post2025(ports[0], {
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e', version: '1' } },
    });
    assert(init.status === 200 && init.session, `initialize: ${init.status} ${JSON.stringify(init.json)}`);
    const sid = init.session;
    const inited = await post2025(ports[0], { jsonrpc: '2.0', method: 'notifications/initialized' }, sid);
    assert(inited.status === 202, `initialized: ${inited.status}`);
    const listed = await post2025(ports[1], { jsonrpc: '2.0', id: 2, method: 'tools/list' }, sid);
    assert(listed.status === 200 && Array.isArray(listed.json?.result?.tools), `tools/list on b: ${listed.status} ${JSON.stringify(listed.json)}`);
    const called = await post2025(ports[2], { jsonrpc: '2.0', id: 3, method: 'tools/call',
                                              params: { name: 'test_simple_text', arguments: {} } }, sid);
    assert(called.json?.result, `tools/call on c: ${JSON.stringify(called.json)}`);
    // The session belongs to whoever created it: another identity gets 404.
    const other = await post2025(ports[1], { jsonrpc: '2.0', id: 4, method: 'tools/list' }, sid,
                                 { authorization: 'Bearer someone-else' });
    assert(other.status === 404, `another identity on b: ${other.status}`);
    const unknown = await post2025(ports[2], { jsonrpc: '2.0', id: 5, method: 'tools/list' }, 'no-such-session');
    assert(unknown.status === 404, `an unknown session on c: ${unknown.status}`);
    // It outlives the instance that created it.
    const dPort = await startBulwark(['--config', cfgPath], 'd');
    const made = await post2025(dPort, {
      jsonrpc: '2.0', id: 7, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e-d', version: '1' } },
    });
    assert(made.status === 200 && made.session, `initialize on d: ${made.status}`);
    await stop('d');
    const orphan = await post2025(ports[0], { jsonrpc: '2.0', id: 8, method: 'tools/list' }, made.session);
    assert(orphan.status === 200 && orphan.json?.result?.tools, `d's session on a after d died: ${orphan.status}`);
    // Ended through one instance, it is gone on all.
    const del = await fetch(`http://127.0.0.1:${ports[1]}/mcp`, {
      method: 'DELETE', headers: { 'mcp-session-id': sid }, signal: AbortSignal.timeout(scaled(5000)),
    });
    assert(del.status === 200 || del.status === 204, `DELETE on b: ${del.status}`);
    await until('the session gone on a', async () =>
      (await post2025(ports[0], { jsonrpc: '2.0', id: 6, method: 'tools/list' }, sid)).status === 404, 5000);
  });

  await check("a session taken over keeps the client's log level and resource subscriptions", async () => {
    const fPort = await startBulwark(['--config', cfgPath], 'f');
    const init = await post2025(fPort, {
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e-f', version: '1' } },
    });
    const sid = init.session;
    assert(init.status === 200 && sid, `initialize on f: ${init.status}`);
    assert((await post2025(fPort, { jsonrpc: '2.0', method: 'notifications/initialized' }, sid)).status === 202, 'initialized');
    for (const [id, method, params] of [[2, 'logging/setLevel', { level: 'error' }],
                                        [3, 'resources/subscribe', { uri: 'test://static-text' }]]) {
      const r = await post2025(fPort, { jsonrpc: '2.0', id, method, params }, sid);
      assert(r.json?.result, `${method} on f: ${JSON.stringify(r.json)}`);
    }
    await stop('f');
    // The client goes on at a: the service's info-level logs stay below its level.
    const logged = await post2025(ports[0], { jsonrpc: '2.0', id: 4, method: 'tools/call',
                                              params: { name: 'test_tool_with_logging', arguments: {} } }, sid);
    assert(logged.json?.result, `the logging tool on a: ${JSON.stringify(logged.json)}`);
    const logs = logged.messages.filter((m) => m.method === 'notifications/message');
    assert(logs.length === 0, `log messages below the level set on f reached the client: ${JSON.stringify(logs)}`);
    // The subscription made on f brings updates on a's stream.
    const stream = openStream(ports[0], sid);
    try {
      let id = 5;
      await until('the update of the resource subscribed on f', async () => {
        const r = await post2025(ports[0], { jsonrpc: '2.0', id: id++, method: 'tools/call',
                                             params: { name: 'test_update_resource', arguments: { uri: 'test://static-text' } } }, sid);
        assert(r.json?.result, `test_update_resource on a: ${JSON.stringify(r.json)}`);
        await sleep(150);
        return stream.messages.some((m) => m.method === 'notifications/resources/updated' && m.params?.uri === 'test://static-text');
      }, 5000);
      // And the unsubscription made on a is what the next instance sees.
      const unsub = await post2025(ports[0], { jsonrpc: '2.0', id: 50, method: 'resources/unsubscribe',
                                               params: { uri: 'test://static-text' } }, sid);
      assert(unsub.json?.result, `unsubscribe on a: ${JSON.stringify(unsub.json)}`);
      const stored = () => redisCommand(redisPort, 'HGET', `${prefix}session:${sid}`, 'subscriptions');
      await until('no subscriptions in the directory entry', async () => (await stored()).startsWith('$2\r\n[]\r\n'), 5000);
    } finally {
      stream.close();
    }
  });

  await check('made-up session ids: each a 404, and repeated ones are not asked of Redis again for a while', async () => {
    const distinct = 25, requests = 500;
    const ids = Array.from({ length: distinct }, (_, i) => `made-up-${process.pid}-${i}`);
    const before = (await commandCalls()).hmget ?? 0;
    // Rounds of every id at once: the first asks Redis, the others find the
    // id remembered as unknown.
    for (let round = 0; round < requests / distinct; round++) {
      const answers = await Promise.all(ids.map((sid, i) =>
        post2025(ports[1], { jsonrpc: '2.0', id: round * distinct + i, method: 'tools/list' }, sid)));
      answers.forEach((a, i) => {
        assert(a.status === 404 && a.json?.error?.code === -32600 && /session not found/.test(a.json.error.message)
               && a.json.id === round * distinct + i, `${ids[i]}: ${a.status} ${JSON.stringify(a.json)}`);
      });
    }
    const lookups = ((await commandCalls()).hmget ?? 0) - before;
    assert(lookups >= distinct && lookups <= 2 * distinct, `${lookups} directory lookups for ${requests} requests`);
    // A session created meanwhile on another instance is served here at once.
    const init = await post2025(ports[0], {
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e-flood', version: '1' } },
    });
    assert(init.status === 200 && init.session, `initialize on a: ${init.status}`);
    const listed = await post2025(ports[1], { jsonrpc: '2.0', id: 2, method: 'tools/list' }, init.session);
    assert(listed.status === 200 && listed.json?.result?.tools, `a's new session on b: ${listed.status}`);
    // After a few seconds an id is asked about again (once).
    await sleep(5500);
    const mid = (await commandCalls()).hmget ?? 0;
    for (let i = 0; i < 3; i++) {
      const late = await post2025(ports[1], { jsonrpc: '2.0', id: 3, method: 'tools/list' }, ids[0]);
      assert(late.status === 404, `${ids[0]} later: ${late.status}`);
    }
    const again = ((await commandCalls()).hmget ?? 0) - mid;
    assert(again === 1, `asked again once the memory expired: ${again} lookups`);
  });

  await check('a breaker opened on one instance opens on all, and closes on all', async () => {
    const state = async (p) => (await health(p)).components?.breakers?.web?.state;
    let r = await adminRequest(ports[0], adminToken, 'POST', 'breakers', { service: 'web', state: 'open' });
    assert(r.status === 200, `force open on a: ${JSON.stringify(r)}`);
    for (const p of ports.slice(1)) await until(`breaker open on :${p}`, async () => (await state(p)) === 'open', 5000);
    // The others learn that a is degraded, and why. (Another peer may be
    // listed too, for a moment, with reasons of its own: a health check
    // that went unanswered while the check before loaded it.)
    let peers = {};
    await until('a peer degraded by the breaker of web, on b', async () => {
      peers = (await health(ports[1])).components.redis.degradedPeers ?? {};
      return Object.values(peers).some((why) => why.some((x) => x.includes('breaker of web')));
    }, 5000).catch((e) => {
      throw new Error(`${e.message}; peer reasons: ${JSON.stringify(peers)}`);
    });
    // An instance started now takes the published state.
    const ePort = await startBulwark(['--config', cfgPath], 'e');
    await until('breaker open on e', async () => (await state(ePort)) === 'open', 5000);
    r = await adminRequest(ports[0], adminToken, 'POST', 'breakers', { service: 'web', state: 'closed' });
    assert(r.status === 200, `force closed on a: ${JSON.stringify(r)}`);
    for (const p of [...ports.slice(1), ePort])
      await until(`breaker closed on :${p}`, async () => (await state(p)) === 'closed', 5000);
    await stop('e');
    await until('no longer degraded', shared, 5000);
  });

  await check('every key in Redis carries the prefix and a TTL, but the fleet\'s sealing key', async () => {
    // Bulk strings of a RESP array answer (keys hold no CR LF of their own
    // here: the cache keys' newlines are bare LF).
    const lines = (await redisCommand(redisPort, 'KEYS', '*')).split('\r\n');
    const keys = lines.filter((_, i) => i > 0 && lines[i - 1].startsWith('$'));
    for (const kind of ['rl:', 'cache:', 'session:', 'breaker:', 'state-key'])
      assert(keys.some((k) => k.startsWith(prefix + kind)), `a ${kind} key among ${JSON.stringify(keys)}`);
    for (const k of keys) {
      assert(k.startsWith(prefix), `unprefixed key ${JSON.stringify(k)}`);
      // One key per prefix that must outlive every instance: were it to
      // expire, rounds begun before would not open on instances started after.
      if (k === `${prefix}state-key`) continue;
      const ttl = Number((await redisCommand(redisPort, 'PTTL', k)).split('\r\n')[0].slice(1));
      assert(ttl > 0, `${JSON.stringify(k)} has a TTL (PTTL ${ttl})`);
    }
  });

  await check('with Redis killed every instance keeps answering, degraded, with the reason', async () => {
    // Calls in flight on every instance while Redis dies.
    const during = [];
    for (let i = 0; i < 30; i++) {
      during.push(sleep(i * 10).then(() => call(ports[i % ports.length], 'fault_count', { key: `outage-${i % 4}` },
                                                  { authorization: `Bearer ${keyAfter}-${i}` })));
      if (i === 10) await stop('redis');
    }
    for (const r of await Promise.all(during))
      assert(r.result && !r.result.isError, `a call during the outage: ${JSON.stringify(r)}`);
    for (const p of ports) {
      const r = await call(p, 'fault_count', { key: 'during-outage' });
      assert(r.result && !r.result.isError, `:${p} answers during the outage: ${JSON.stringify(r)}`);
    }
    for (const p of ports) {
      const h = await degradedByRedis(p);
      assert(h.components.redis.breaker === 'open', 'the Redis breaker is open');
    }
    const r = await call(ports[1], 'test_simple_text', {}, { authorization: `Bearer ${keyAfter}` });
    assert(r.result, `a limited key is decided locally: ${JSON.stringify(r)}`);
  });

  await check('after Redis is started again the instances share state again', async () => {
    await run.startRedis(redisPort, redisServer);
    await until('shared state on every instance', shared, 15_000);
    // Redis came back empty: keyAfter's single local call is not counted there.
    const { admitted } = await spread(keyAfter, 3 * limit);
    assert(admitted === limit, `admitted ${admitted} of ${3 * limit} after the restart (limit ${limit} in total)`);
    const first = await call(ports[2], 'fault_count', { key: 'after-restart' });
    assert(cacheMark(first) === undefined, 'first call ran');
    await until('the copy in Redis', async () => (await redisCommand(redisPort, 'KEYS', `${prefix}cache:*`)).includes('after-restart'));
    const second = await call(ports[0], 'fault_count', { key: 'after-restart' });
    assert(cacheMark(second)?.stale === false && text(second) === text(first), `a hit on a: ${JSON.stringify(second)}`);
  });

  await check('instances that make no calls notice a lost Redis at once, and /metrics has the Redis series', async () => {
    const metric = async (port, line) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(scaled(5000)) })).text();
      const m = text.match(new RegExp(`^${line} (\\S+)$`, 'm'));
      return m ? Number(m[1]) : undefined;
    };
    for (const p of ports) {
      assert(await metric(p, 'bulwark_redis_up') === 1, `:${p} bulwark_redis_up 1`);
      const commands = await metric(p, 'bulwark_redis_commands_total');
      assert(commands > 0, `:${p} counts its Redis commands`);
      // Every answered command's round trip is in the histogram, and a
      // loopback Redis answers most within 10 ms.
      const trips = await metric(p, 'bulwark_redis_round_trip_seconds_count');
      const fast = await metric(p, 'bulwark_redis_round_trip_seconds_bucket\\{le="0\\.01"\\}');
      assert(trips > 0 && trips <= commands, `:${p} round trips ${trips} of ${commands} commands`);
      assert(fast > trips / 2, `:${p} ${fast} of ${trips} round trips within 10 ms`);
    }
    const outagesBefore = await metric(ports[0], 'bulwark_redis_outages_total');
    // No calls from here on: only the lost connection tells.
    await sleep(scaled(300));
    const t0 = Date.now();
    await stop('redis');
    const noticed = await until('every quiet instance degraded by Redis', async () => {
      for (const p of ports)
        if (!(await health(p)).reasons?.some((x) => x.includes('redis unreachable'))) return false;
      return Date.now() - t0;
    }, 5000);
    // The health check runs every 100 ms here; a second is its slack.
    assert(noticed < scaled(1000), `noticed after ${noticed} ms`);
    for (const p of ports) assert(await metric(p, 'bulwark_redis_up') === 0, `:${p} bulwark_redis_up 0`);
    assert(await metric(ports[0], 'bulwark_redis_outages_total') === outagesBefore + 1, 'the outage is counted');
    await run.startRedis(redisPort, redisServer);
    await until('shared state on every instance', shared, 15_000);
  });

  // A Redis that hangs (SIGSTOP: connections stay open, nothing answers) is
  // worse than one that is gone: every command waits its commandTimeoutMs.
  const slackMs = 500;
  await check(`with Redis hung every call is answered within commandTimeoutMs + ${slackMs} ms; degraded; shared again after SIGCONT`, async () => {
    const redis = run.started.redis;
    process.kill(redis.pid, 'SIGSTOP');
    try {
      // Calls in flight on every instance while Redis hangs: limited keys
      // (their buckets are in Redis) and cached tools (their copies too).
      const during = [];
      for (let i = 0; i < 24; i++) {
        const t0 = Date.now();
        const headers = i % 2 ? { authorization: `Bearer ${keyHang}` } : {};
        during.push((i % 3 ? call(ports[i % ports.length], 'fault_count', { key: `hang-${i % 4}` }, headers)
                       : call(ports[i % ports.length], 'test_simple_text', {}, headers))
          .then((r) => ({ r, took: Date.now() - t0 })));
      }
      const answers = await Promise.all(during);
      for (const { r, took } of answers) {
        assert(r.result || r.error?.code === -32010, `a call while Redis hangs: ${JSON.stringify(r)}`);
        assert(took <= scaled(commandTimeoutMs + slackMs), `answered after ${took} ms (bound ${scaled(commandTimeoutMs + slackMs)} ms)`);
      }
      assert(answers.filter(({ r }) => r.result).length >= 12, `most calls are served: ${JSON.stringify(answers.map(({ r }) => r.error?.code ?? 'ok'))}`);
      for (const p of ports) {
        const h = await degradedByRedis(p);
        assert(h.components.redis.available === false, `Redis is not available on :${p}`);
      }
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await until('shared state on every instance', shared, 15_000);
    const { admitted } = await spread(keyResumed, 3 * limit);
    assert(admitted === limit, `admitted ${admitted} of ${3 * limit} after SIGCONT (limit ${limit} in total)`);
    const first = await call(ports[1], 'fault_count', { key: 'after-hang' });
    assert(cacheMark(first) === undefined, 'first call ran');
    await until('the copy in Redis', async () => (await redisCommand(redisPort, 'KEYS', `${prefix}cache:*`)).includes('after-hang'));
    const second = await call(ports[2], 'fault_count', { key: 'after-hang' });
    assert(cacheMark(second)?.stale === false && text(second) === text(first), `a hit on c: ${JSON.stringify(second)}`);
  });

  await check('a new instance is not ready until its first connection to Redis has ended, then ready degraded', async () => {
    const redis = run.started.redis;
    const keyFile = join(run.dir, 'state.key');
    writeFileSync(keyFile, 'k'.repeat(64));
    const lateCfg = join(run.dir, 'late.json');
    writeFileSync(lateCfg, JSON.stringify({
      http: { port: 0 }, sessions: { stateKeyFile: keyFile }, health: { intervalMs: 100 },
      redis: { url: `redis://127.0.0.1:${redisPort}/0`, keyPrefix: prefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 },
    }));
    // A hung Redis: the first connection attempt takes its whole timeout.
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const port = await startBulwark(['--config', lateCfg], 'late');
      await sleep(scaled(400)); // a few health checks
      const early = await fetch(`http://127.0.0.1:${port}/ready`);
      assert(early.status === 503, `/ready before Redis answered or failed: ${early.status}`);
      await until('/ready 200 once the attempt failed', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200, 8000);
      const h = await health(port);
      assert(h.reasons?.some((x) => x.includes('redis unreachable')), `ready, degraded by Redis: ${JSON.stringify(h.reasons)}`);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
      await stop('late');
    }
  });
});
