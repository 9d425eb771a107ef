#!/usr/bin/env node
// End-to-end test of the audit log, against the real binary over real HTTP.
//
//   node tests/e2e/audit.mjs --bulwark build/bulwark
//
// A server with API keys, an admin token, a gateway policy over a stdio
// fixtures service and `audit.file` set to a small `maxBytes`. Drives each
// kind of event — keys created and revoked by `bulwark keys` (a separate
// process appending to the same file), authentication failures without and
// with a bad key, a policy denial, admin actions (an actor killed, a cache
// invalidated) and a refused admin action — and reads the file: one JSON
// line per event with who (identity shortened, remote address), what
// (event, target, outcome), when (RFC 3339 UTC with milliseconds) and the
// trace id the client was given. Then floods it to check rotation by size
// (file, file.1 .. file.N, none larger than maxBytes, nothing beyond N,
// every line whole), and that no key or token appears in any of the files.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { adminRequest, assert, harness, modernRequest, request, scaled, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-audit-', watchdogMs: 110_000 });
const { bulwark, dir, check, startBulwark } = run;

const auditFile = join(dir, 'audit.jsonl');
const keyFile = join(dir, 'keys.json');
const cfgPath = join(dir, 'audit.json');
const maxBytes = 4096;
const maxFiles = 3;
const adminToken = `admin-${randomBytes(12).toString('hex')}`;
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const secrets = [adminToken];

function keys(...args) {
  const r = spawnSync(bulwark, ['keys', ...args, '--config', cfgPath], { encoding: 'utf8', timeout: scaled(10_000) });
  assert(r.status === 0, `keys ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout.trim();
}

/// Every entry of the current file (and the rotated ones, oldest first).
function entries(withRotated = false) {
  const files = [];
  if (withRotated)
    for (let i = maxFiles; i >= 1; i--) if (existsSync(`${auditFile}.${i}`)) files.push(`${auditFile}.${i}`);
  if (existsSync(auditFile)) files.push(auditFile);
  return files.flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
}

const rfc3339ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const remote = /^127\.0\.0\.1:\d+$/;

await run.main(async () => {
  writeFileSync(cfgPath, JSON.stringify({
    auth: { mode: 'keys', keyFile },
    audit: { file: auditFile, maxBytes, maxFiles },
    admin: { tokenSha256: sha256(adminToken) },
    http: { port: 0 },
    rateLimits: { tiers: { roomy: { perMinute: 100000 } } },
    mcpServers: { kid: { command: bulwark, args: ['--stdio', '--no-http', '--fixtures', '--log-level', 'warning'] } },
    gateway: { prefix: 'never', policy: { deny: ['kid:test_error_handling'] } },
  }));

  let alice;
  await check('bulwark keys create and revoke append to the audit log', async () => {
    alice = keys('create', '--name', 'alice', '--tier', 'roomy');
    const doomed = keys('create', '--name', 'doomed', '--tier', 'roomy');
    keys('revoke', '--name', 'doomed');
    secrets.push(alice, doomed);
    const e = entries();
    const created = e.filter((x) => x.event === 'key.created');
    assert(created.length === 2 && created.map((x) => x.target).join() === 'alice,doomed', JSON.stringify(e));
    assert(created[0].detail.sha256Prefix === sha256(alice).slice(0, 8) && created[0].detail.tier === 'roomy', JSON.stringify(created[0]));
    assert(created.every((x) => x.outcome === 'ok' && /^cli:/.test(x.who.identity) && rfc3339ms.test(x.ts)), JSON.stringify(created));
    const revoked = e.filter((x) => x.event === 'key.revoked');
    assert(revoked.length === 1 && revoked[0].target === 'doomed', JSON.stringify(e));
  });

  const port = await startBulwark(['--config', cfgPath, '--no-builtin-tools'], 'server');
  await until('ready', async () => (await request(port, 'GET', { path: '/ready' })).status === 200, 20_000);

  await check('authentication failures: who, what, when and the trace id the client got', async () => {
    const bad = `bwk_${randomBytes(32).toString('hex')}`;
    secrets.push(bad);
    const none = await modernRequest(port, 'tools/list', {});
    const wrong = await modernRequest(port, 'tools/list', {}, { authorization: `Bearer ${bad}` });
    assert(none.status === 401 && wrong.status === 401, `${none.status} ${wrong.status}`);
    const failures = entries().filter((x) => x.event === 'auth.failure');
    assert(failures.length === 2, JSON.stringify(failures));
    const [a, b] = failures;
    for (const [x, r, presented] of [[a, none, false], [b, wrong, true]]) {
      assert(x.outcome === 'denied' && x.who.identity === 'unauthenticated' && remote.test(x.who.remote), JSON.stringify(x));
      assert(rfc3339ms.test(x.ts) && x.target === '/mcp', JSON.stringify(x));
      assert(x.traceId === r.json.error.data.traceId, `trace id ${x.traceId} vs ${r.text}`);
      assert(x.detail.presented === presented && /API key/.test(x.detail.reason) && x.detail.method === 'POST', JSON.stringify(x));
    }
  });

  await check('a gateway policy denial, with the caller and the trace id', async () => {
    const r = await modernRequest(port, 'tools/call', { name: 'test_error_handling', arguments: {} }, { authorization: `Bearer ${alice}` });
    assert(r.json?.error?.code === -32009, r.text);
    const x = entries().find((e) => e.event === 'policy.denied');
    assert(x, 'a policy.denied entry');
    assert(x.target === 'kid:test_error_handling' && x.outcome === 'denied' && x.detail.rule, JSON.stringify(x));
    assert(x.who.identity === `key:${sha256(alice).slice(0, 12)}`, `identity shortened: ${x.who.identity}`);
    assert(x.traceId === r.json.error.data.traceId, `trace id ${x.traceId} vs ${r.text}`);
  });

  await check('admin actions, an actor kill and a refused action', async () => {
    const kill = await adminRequest(port, adminToken, 'POST', 'actors/kill', { name: 'limiter' });
    assert(kill.status === 200, `kill: ${kill.status}`);
    const inval = await adminRequest(port, adminToken, 'POST', 'cache/invalidate', {});
    const refused = await adminRequest(port, 'wrong-token', 'POST', 'actors/kill', { name: 'queue' });
    assert(refused.status === 401, `refused: ${refused.status}`);
    const e = entries();
    const k = e.find((x) => x.event === 'actor.kill');
    assert(k && k.outcome === 'ok' && k.who.identity === 'admin' && remote.test(k.who.remote), JSON.stringify(k));
    assert(JSON.stringify(k.detail.result.killed) === '["limiter"]' && k.detail.request.name === 'limiter', JSON.stringify(k));
    const a = e.find((x) => x.event === 'admin.action' && x.target === 'cache/invalidate');
    assert(a && a.detail.status === inval.status && a.outcome === (inval.status < 300 ? 'ok' : 'failed'), JSON.stringify(a));
    const r = e.find((x) => x.event === 'admin.refused');
    assert(r && r.target === 'actors/kill' && r.outcome === 'denied' && remote.test(r.who.remote), JSON.stringify(r));
  });

  await check(`rotation by size: at most ${maxBytes} bytes a file, ${maxFiles} rotated files, whole lines`, async () => {
    for (let i = 0; i < 80; i++) await modernRequest(port, 'tools/list', {}, { authorization: `Bearer bwk_flood${i}` });
    // A keys command appends in its own process meanwhile.
    keys('create', '--name', 'late', '--tier', 'roomy');
    for (let i = 0; i < 20; i++) await modernRequest(port, 'tools/list', {});
    for (const f of [auditFile, ...Array.from({ length: maxFiles }, (_, i) => `${auditFile}.${i + 1}`)]) {
      assert(existsSync(f), `${f} exists`);
      assert(statSync(f).size <= maxBytes, `${f}: ${statSync(f).size} bytes`);
      assert((statSync(f).mode & 0o777) === 0o600, `${f}: mode ${(statSync(f).mode & 0o777).toString(8)}`);
    }
    assert(!existsSync(`${auditFile}.${maxFiles + 1}`), 'nothing beyond maxFiles');
    const all = entries(true); // throws on a broken line
    const last = all.slice(-20);
    assert(last.every((x) => x.event === 'auth.failure' && x.detail.presented === false), 'the newest entries are last');
    assert(all.some((x) => x.event === 'key.created' && x.target === 'late'), "the keys command's entry is kept");
    console.log(`  ${all.length} entries kept across ${maxFiles + 1} files`);
  });

  await check('no key or token appears in any audit file', async () => {
    const text = [auditFile, ...Array.from({ length: maxFiles }, (_, i) => `${auditFile}.${i + 1}`)]
      .filter(existsSync).map((f) => readFileSync(f, 'utf8')).join('\n');
    for (const s of secrets) {
      assert(!text.includes(s), 'a secret in the audit log');
      assert(!text.includes(s.slice(4, 24)), 'part of a secret in the audit log');
    }
    assert(!text.includes('bwk_flood'), 'a presented credential in the audit log');
  });
});
