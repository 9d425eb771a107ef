#!/usr/bin/env node
// End-to-end test of API keys and authentication, against the real binary
// over real HTTP.
//
//   node tests/e2e/auth.mjs --bulwark build/bulwark
//
// Checks: `bulwark keys create` prints a key once and the key file (mode
// 0600) holds only its hash; list and revoke, with their exit statuses; a
// server with `auth.mode: "keys"` answers 401 with WWW-Authenticate to a
// request without a key or with a wrong one, serves a good key in both
// eras, stops accepting a revoked key within a bounded time without a
// restart, accepts a key created after start, keeps its keys when the file
// turns malformed, and applies the key's tier (-32010 on the third call at 2
// per minute) and its gateway policy; health and metrics stay open; a
// non-loopback bind without authentication refuses to start unless
// overridden; a session answers 404 to another key (POST, GET, DELETE) while
// its owner goes on; concurrent callers with different keys only ever see
// their own results; a reload (SIGHUP) switches to another key file and new
// tier limits without a restart. Every process is killed by pid, every wait
// is bounded.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  assert,
  harness,
  modernRequest as modern,
  openSession as openSessionWith,
  request,
  scaled,
  sessionCall as sessionCallWith,
  sleep,
  until,
} from './harness.mjs';

const run = harness({ scratch: 'bulwark-auth-', watchdogMs: 110_000 });
const { bulwark, dir, check, startBulwark } = run;

const keyFile = join(dir, 'keys.json');
const cfgPath = join(dir, 'auth.json');
const tiers = { roomy: { perMinute: 100000 }, tiny: { perMinute: 2 } };
const sha256 = (s) => createHash('sha256').update(s).digest('hex');

/// `bulwark keys ...` with the test's config; bounded.
function keys(...args) {
  const r = spawnSync(bulwark, ['keys', ...args, '--config', cfgPath], { encoding: 'utf8', timeout: scaled(10_000) });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/// Creates a key and returns it (the one line on stdout).
function createKey(name, tier, ...extra) {
  const r = keys('create', '--name', name, '--tier', tier, ...extra);
  assert(r.status === 0, `keys create ${name}: status ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

const bearer = (key) => ({ authorization: `Bearer ${key}` });

const call = (port, key, name, args = {}) => modern(port, 'tools/call', { name, arguments: args }, key ? bearer(key) : {});
const textOf = (r) => r.json?.result?.content?.[0]?.text;

/// A 2025-era session opened with `key`; returns its id.
const openSession = (port, key) => openSessionWith(port, bearer(key));

const sessionCall = (port, key, sid, name, args = {}) => sessionCallWith(port, key ? bearer(key) : {}, sid, name, args);

/// Opens the session's GET stream; resolves with the status (the stream is
/// closed again at once).
async function openStream(port, key, sid) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10_000);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
      method: 'GET',
      headers: { accept: 'text/event-stream', ...bearer(key), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
      signal: ac.signal,
    });
    return res.status;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

await run.main(async () => {
  writeFileSync(cfgPath, JSON.stringify({
    auth: { mode: 'keys', keyFile },
    http: { port: 0 },
    rateLimits: { tiers },
  }));

  const k = {};
  await check('keys create prints the key once; the file (mode 0600) holds only its hash', async () => {
    const r = keys('create', '--name', 'alice', '--tier', 'roomy');
    assert(r.status === 0, `status ${r.status}: ${r.stderr}`);
    const lines = r.stdout.split('\n').filter(Boolean);
    assert(lines.length === 1, `one line on stdout: ${JSON.stringify(r.stdout)}`);
    k.alice = lines[0];
    assert(/^bwk_[0-9a-f]{64}$/.test(k.alice), `a recognizable key: ${k.alice}`);
    assert(/not be shown again|shown only this once/.test(r.stderr) && !r.stderr.includes(k.alice),
           `stderr says it is shown once and does not repeat it: ${r.stderr}`);
    const text = readFileSync(keyFile, 'utf8');
    assert(!text.includes(k.alice) && !text.includes(k.alice.slice(4)), 'the key is not in the file');
    assert(text.includes(sha256(k.alice)), 'its SHA-256 is');
    assert((statSync(keyFile).mode & 0o777) === 0o600, `mode 0600, got ${(statSync(keyFile).mode & 0o777).toString(8)}`);
    const entry = JSON.parse(text).keys[0];
    assert(entry.name === 'alice' && entry.tier === 'roomy' && /^\d{4}-\d\d-\d\dT/.test(entry.created), JSON.stringify(entry));
    k.bob = createKey('bob', 'roomy');
    k.tight = createKey('tight', 'tiny');
    k.doomed = createKey('doomed', 'roomy', '--priority', 'low');
    k.limited = createKey('limited', 'roomy', '--deny', 'kid:test_simple_text');
    assert(new Set(Object.values(k)).size === 5, 'every key is new');
    const after = readFileSync(keyFile, 'utf8');
    for (const key of Object.values(k)) assert(!after.includes(key.slice(4)), 'no key is in the file');
  });

  await check('keys: duplicate names, unknown tiers and bad usage are refused with one-line errors', async () => {
    const dup = keys('create', '--name', 'alice', '--tier', 'roomy');
    assert(dup.status === 1 && dup.stdout === '' && /already exists/.test(dup.stderr), `duplicate: ${dup.status} ${dup.stderr}`);
    const tier = keys('create', '--name', 'carol', '--tier', 'gold');
    assert(tier.status === 2 && /gold/.test(tier.stderr) && tier.stderr.trim().split('\n').length === 1, `tier: ${tier.status} ${tier.stderr}`);
    const missing = keys('create', '--tier', 'roomy');
    assert(missing.status === 2 && /--name/.test(missing.stderr), `no name: ${missing.status} ${missing.stderr}`);
    const unknown = keys('revoke', '--name', 'nobody');
    assert(unknown.status === 1 && /nobody/.test(unknown.stderr), `unknown name: ${unknown.status} ${unknown.stderr}`);
    const cmd = keys('rotate');
    assert(cmd.status === 2, `unknown command: ${cmd.status}`);
    assert(!JSON.parse(readFileSync(keyFile, 'utf8')).keys.some((e) => e.name === 'carol'), 'nothing was added');
  });

  await check('keys list shows names, tiers and hash prefixes, never whole hashes', async () => {
    const r = keys('list');
    assert(r.status === 0, `status ${r.status}: ${r.stderr}`);
    for (const name of ['alice', 'bob', 'tight', 'doomed', 'limited']) assert(r.stdout.includes(name), `lists ${name}`);
    assert(r.stdout.includes('roomy') && r.stdout.includes('tiny') && r.stdout.includes('low'), r.stdout);
    for (const key of Object.values(k)) {
      assert(!r.stdout.includes(sha256(key)), 'no whole hash');
      assert(r.stdout.includes(sha256(key).slice(0, 8)), 'a hash prefix');
    }
    const j = keys('list', '--json');
    const rows = JSON.parse(j.stdout);
    assert(rows.length === 5 && rows.every((row) => row.revoked === null && row.sha256Prefix.length === 8), j.stdout);
    assert(rows.find((row) => row.name === 'limited').policy === true, 'the policy is shown as present');
  });

  const port = await startBulwark(['--config', cfgPath], 'server');

  await check('no key: 401 with WWW-Authenticate and a JSON-RPC error (POST, GET, DELETE)', async () => {
    const r = await call(port, null, 'echo', { text: 'x' });
    assert(r.status === 401, `status ${r.status}`);
    assert(r.headers.get('www-authenticate') === 'Bearer realm="bulwark"', `challenge: ${r.headers.get('www-authenticate')}`);
    assert(r.json?.jsonrpc === '2.0' && r.json.error?.code === -32011, `body: ${r.text}`);
    const get = await request(port, 'GET', { headers: { accept: 'text/event-stream', 'mcp-session-id': 'abc' } });
    assert(get.status === 401 && get.headers.get('www-authenticate'), `GET: ${get.status}`);
    const del = await request(port, 'DELETE', { headers: { 'mcp-session-id': 'abc' } });
    assert(del.status === 401 && del.headers.get('www-authenticate'), `DELETE: ${del.status}`);
    const init = await request(port, 'POST', {
      body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {} } },
    });
    assert(init.status === 401 && !init.headers.get('mcp-session-id'), `initialize: ${init.status}`);
  });

  await check('a wrong key: 401 with error="invalid_token"', async () => {
    for (const bad of ['bwk_' + randomBytes(32).toString('hex'), sha256(k.alice), k.alice.slice(0, -1), `${k.alice} x`]) {
      const r = await call(port, bad, 'echo', { text: 'x' });
      assert(r.status === 401, `status ${r.status} for ${bad}`);
      assert(r.headers.get('www-authenticate') === 'Bearer realm="bulwark", error="invalid_token"',
             `challenge: ${r.headers.get('www-authenticate')}`);
      assert(r.json?.error?.code === -32011, r.text);
    }
    const basic = await request(port, 'POST', { body: {}, headers: { authorization: 'Basic YWxpY2U6cHc=' } });
    assert(basic.status === 401 && basic.headers.get('www-authenticate') === 'Bearer realm="bulwark"', `Basic: ${basic.status}`);
  });

  await check('health and metrics stay open without a key', async () => {
    assert((await request(port, 'GET', { path: '/health' })).status === 200, '/health');
    assert((await request(port, 'GET', { path: '/health/live' })).status === 200, '/health/live');
    assert((await request(port, 'GET', { path: '/metrics' })).status === 200, '/metrics');
  });

  await check('a good key works in both eras', async () => {
    const r = await call(port, k.alice, 'echo', { text: 'modern hello' });
    assert(r.status === 200 && textOf(r) === 'modern hello', `2026: ${r.status} ${r.text}`);
    const sid = await openSession(port, k.alice);
    const s = await sessionCall(port, k.alice, sid, 'echo', { text: 'session hello' });
    assert(s.status === 200 && textOf(s) === 'session hello', `2025: ${s.status} ${s.text}`);
    const list = await modern(port, 'tools/list', {}, bearer(k.alice));
    assert(list.json?.result?.tools?.some((t) => t.name === 'echo'), `tools/list: ${list.text}`);
  });

  await check("the key's tier applies: 2 per minute refuses the third call with -32010", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await call(port, k.tight, 'echo', { text: `t${i}` });
      assert(textOf(r) === `t${i}`, `call ${i + 1} passes: ${r.text}`);
    }
    const third = await call(port, k.tight, 'echo', { text: 't2' });
    assert(third.json?.error?.code === -32010, `third call: ${third.status} ${third.text}`);
    assert(third.json.error.data?.limit === 'user_quota', `the caller's own quota: ${third.text}`);
    const other = await call(port, k.alice, 'echo', { text: 'unaffected' });
    assert(textOf(other) === 'unaffected', 'another key is not limited by it');
  });

  await check('a session answers 404 to another key (POST, GET, DELETE); its owner goes on', async () => {
    const sid = await openSession(port, k.alice);
    const post = await sessionCall(port, k.bob, sid, 'echo', { text: 'stolen' });
    assert(post.status === 404, `bob's POST: ${post.status} ${post.text}`);
    assert(!post.text.includes('stolen'), 'nothing ran for bob');
    // Exactly as an unknown session: same status and same message.
    const unknown = await sessionCall(port, k.bob, 'f'.repeat(32), 'echo', { text: 'x' });
    assert(unknown.status === 404 && unknown.json?.error?.message === post.json?.error?.message,
           `same answer as an unknown session: ${unknown.text} vs ${post.text}`);
    assert(await openStream(port, k.bob, sid) === 404, "bob's GET");
    const del = await request(port, 'DELETE', { headers: { ...bearer(k.bob), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
    assert(del.status === 404, `bob's DELETE: ${del.status}`);
    const mine = await sessionCall(port, k.alice, sid, 'echo', { text: 'still mine' });
    assert(mine.status === 200 && textOf(mine) === 'still mine', `alice goes on: ${mine.status} ${mine.text}`);
    assert(await openStream(port, k.alice, sid) === 200, "alice's GET");
    const noKey = await sessionCall(port, null, sid, 'echo', { text: 'x' });
    assert(noKey.status === 401, `without a key: ${noKey.status}`);
    const end = await request(port, 'DELETE', { headers: { ...bearer(k.alice), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
    assert(end.status === 200, `alice's DELETE: ${end.status}`);
    const gone = await sessionCall(port, k.alice, sid, 'echo', { text: 'x' });
    assert(gone.status === 404, `after DELETE: ${gone.status}`);
  });

  await check('concurrent callers with different keys never see each other\'s results', async () => {
    const tag = randomBytes(4).toString('hex');
    const who = [['alice', k.alice], ['bob', k.bob]];
    // Stateless: 2 × 100 calls at once, interleaved.
    const calls = [];
    for (let i = 0; i < 100; i++)
      for (const [name, key] of who) {
        const text = `${name}-${tag}-${i}`;
        calls.push(call(port, key, 'echo', { text }).then((r) => ({ text, got: textOf(r), r })));
      }
    // Sessions: one per key, 2 × 50 calls at once.
    const sids = await Promise.all(who.map(([, key]) => openSession(port, key)));
    for (let i = 0; i < 50; i++)
      who.forEach(([name, key], n) => {
        const text = `${name}-session-${tag}-${i}`;
        calls.push(sessionCall(port, key, sids[n], 'echo', { text }).then((r) => ({ text, got: textOf(r), r })));
      });
    const results = await Promise.all(calls);
    const wrong = results.filter((x) => x.got !== x.text);
    assert(wrong.length === 0, `${wrong.length} of ${results.length} wrong, e.g. ${JSON.stringify(wrong[0]?.r?.json)}`);
    console.log(`  ${results.length} concurrent calls, each answered with its own text`);
  });

  await check('a malformed key file on reload keeps the previous keys and is logged', async () => {
    const good = readFileSync(keyFile, 'utf8');
    writeFileSync(keyFile, '{"keys": [ {"name": "broken"');
    await sleep(1200);
    const r = await call(port, k.alice, 'echo', { text: 'still here' });
    assert(textOf(r) === 'still here', `alice still works: ${r.text}`);
    await until('the reload error in the log',
                () => run.logs.some((l) => l.includes('key file not reloaded') && l.includes('"level":"error"')), 5000);
    // Restore it the way the keys command writes: a whole file, renamed.
    writeFileSync(`${keyFile}.restore`, good, { mode: 0o600 });
    renameSync(`${keyFile}.restore`, keyFile);
  });

  await check('a key created after start works without a restart', async () => {
    const late = createKey('late', 'roomy');
    const t0 = Date.now();
    await until('the new key accepted', async () => textOf(await call(port, late, 'echo', { text: 'late' })) === 'late', 5000);
    console.log(`  accepted ${Date.now() - t0} ms after creation`);
  });

  await check('a revoked key stops working within a bounded time, without a restart', async () => {
    const ok = await call(port, k.doomed, 'echo', { text: 'alive' });
    assert(textOf(ok) === 'alive', `before: ${ok.text}`);
    const sid = await openSession(port, k.doomed);
    const r = keys('revoke', '--name', 'doomed');
    assert(r.status === 0, `revoke: ${r.status} ${r.stderr}`);
    const t0 = Date.now();
    const refused = await until('the revoked key refused', async () => {
      const x = await call(port, k.doomed, 'echo', { text: 'x' });
      return x.status === 401 ? x : null;
    }, 5000);
    const took = Date.now() - t0;
    assert(took < scaled(3000), `refused after ${took} ms`);
    assert(refused.headers.get('www-authenticate').includes('error="invalid_token"'), 'as an invalid token');
    const inSession = await sessionCall(port, k.doomed, sid, 'echo', { text: 'x' });
    assert(inSession.status === 401, `its session too: ${inSession.status}`);
    const entry = JSON.parse(readFileSync(keyFile, 'utf8')).keys.find((e) => e.name === 'doomed');
    assert(typeof entry.revoked === 'string' && entry.revoked.length > 0, `revoked in the file: ${JSON.stringify(entry)}`);
    const again = keys('revoke', '--name', 'doomed');
    assert(again.status === 0 && /already revoked/.test(again.stdout), `again: ${again.status} ${again.stdout}`);
    const alice = await call(port, k.alice, 'echo', { text: 'others unaffected' });
    assert(textOf(alice) === 'others unaffected', 'other keys still work');
    console.log(`  refused ${took} ms after the revocation`);
  });

  await check('a reload switches to another key file and to new tier limits, without a restart', async () => {
    // A second key file with a key of its own, made by `keys create`.
    const otherKeys = join(dir, 'other-keys.json');
    const otherCfg = join(dir, 'other.json');
    writeFileSync(otherCfg, JSON.stringify({ auth: { mode: 'keys', keyFile: otherKeys }, http: { port: 0 }, rateLimits: { tiers } }));
    const made = spawnSync(bulwark, ['keys', 'create', '--name', 'bob', '--tier', 'tiny', '--config', otherCfg],
                           { encoding: 'utf8', timeout: scaled(10_000) });
    assert(made.status === 0, `keys create bob: ${made.stderr}`);
    const bob = made.stdout.trim();
    assert((await call(port, bob, 'echo', { text: 'x' })).status === 401, 'bob is unknown before the reload');
    const tight = await call(port, k.tight, 'echo', { text: 'x' });
    assert(tight.json?.error?.code === -32010, `tight is still limited before the reload: ${tight.text}`);
    writeFileSync(cfgPath, JSON.stringify({
      auth: { mode: 'keys', keyFile: otherKeys },
      http: { port: 0 },
      rateLimits: { tiers: { ...tiers, tiny: { perMinute: 600000 } } },
    }));
    const seen = run.logs.length;
    process.kill(run.started.server.pid, 'SIGHUP');
    await until('the reload applied', () => run.logs.slice(seen).some((l) => l.includes('"msg":"configuration reloaded"')), 5000);
    const r = await call(port, bob, 'echo', { text: 'bob here' });
    assert(textOf(r) === 'bob here', `bob works after the reload: ${r.text}`);
    const old = await call(port, k.alice, 'echo', { text: 'x' });
    assert(old.status === 401, `a key of the previous file is refused: ${old.status}`);
    // bob's tier is tiny, now 600000 a minute: ten calls in a row pass.
    for (let i = 0; i < 10; i++) {
      const x = await call(port, bob, 'echo', { text: `b${i}` });
      assert(textOf(x) === `b${i}`, `call ${i + 1} under the new tier limit: ${x.text}`);
    }
    // The configuration the checks below start servers with.
    writeFileSync(cfgPath, JSON.stringify({ auth: { mode: 'keys', keyFile }, http: { port: 0 }, rateLimits: { tiers } }));
  });

  await run.stop('server');

  await check('a key\'s policy applies at the gateway', async () => {
    const gwCfg = join(dir, 'gateway.json');
    writeFileSync(gwCfg, JSON.stringify({
      auth: { mode: 'keys', keyFile },
      http: { port: 0 },
      rateLimits: { tiers },
      mcpServers: { kid: { command: bulwark, args: ['--stdio', '--no-http', '--fixtures', '--log-level', 'warning'] } },
      gateway: { prefix: 'never' },
    }));
    const gw = await startBulwark(['--config', gwCfg, '--no-builtin-tools'], 'gateway');
    await until('ready', async () => (await request(gw, 'GET', { path: '/ready' })).status === 200, 20_000);
    const names = async (key) => (await modern(gw, 'tools/list', {}, bearer(key))).json?.result?.tools?.map((t) => t.name) ?? [];
    assert((await names(k.alice)).includes('test_simple_text'), 'alice sees the tool');
    assert(!(await names(k.limited)).includes('test_simple_text'), 'limited does not');
    const denied = await call(gw, k.limited, 'test_simple_text');
    assert(denied.json?.error?.code === -32009, `limited is refused: ${denied.text}`);
    const allowed = await call(gw, k.alice, 'test_simple_text');
    assert(allowed.json?.result?.content?.length > 0, `alice is served: ${allowed.text}`);
    await run.stop('gateway');
  });

  await check('a non-loopback bind without authentication refuses to start, naming the setting', async () => {
    const r = spawnSync(bulwark, ['--address', '0.0.0.0', '--port', '0'], { encoding: 'utf8', timeout: scaled(10_000) });
    assert(r.status !== 0 && r.status !== null, `exit status ${r.status} (signal ${r.signal})`);
    assert(/auth\.mode/.test(r.stderr) && /allowUnauthenticated|--allow-unauthenticated/.test(r.stderr), `message: ${r.stderr}`);
  });

  await check('... starts with the explicit override (and warns), or with keys', async () => {
    const open = await startBulwark(['--address', '0.0.0.0', '--port', '0', '--allow-unauthenticated'], 'open');
    assert(run.logs.some((l) => l.startsWith('[open]') && l.includes('"level":"warning"') && l.includes('without authentication')),
           'a warning at start');
    const r = await call(open, null, 'echo', { text: 'open' });
    assert(textOf(r) === 'open', `served: ${r.text}`);
    await run.stop('open');
    const keyed = await startBulwark(['--config', cfgPath, '--address', '0.0.0.0', '--port', '0'], 'keyed');
    assert((await call(keyed, null, 'echo', { text: 'x' })).status === 401, 'no key: 401');
    assert(textOf(await call(keyed, k.alice, 'echo', { text: 'keyed' })) === 'keyed', 'a key: served');
    await run.stop('keyed');
  });
});
