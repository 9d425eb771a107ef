#!/usr/bin/env node
// End-to-end test of tasks (the 2026-07-28 tasks extension,
// `io.modelcontextprotocol/tasks`) as Bulwark serves them, beyond what the
// conformance suite's tasks scenarios check (conformance.sh requires those
// too): a `bulwark --fixtures` with small task bounds, spoken to over raw
// HTTP by two callers (two bearer keys), and a gateway in front of it.
//
//   node tests/e2e/tasks.mjs --bulwark build/bulwark
//
// Checks: a task belongs to the caller that created it (another caller's
// tasks/get, tasks/update and tasks/cancel get what an unknown id gets, and
// change nothing); a caller holds at most tasks.maxPerIdentity tasks that
// have not ended (the next is refused with HTTP 429, -32008 and
// Retry-After), and one that ends makes room; the metrics count created and
// refused tasks and those kept by status, and the admin API lists them; a killed task store comes back with its tasks; killing the
// actor that runs a task fails it with a typed error that tasks/get shows;
// a task is kept for its ttlMs and not longer; task notifications on
// subscriptions/listen need the extension; through a gateway, a call
// answered before gateway.taskAfterMs is answered on its request (the
// service is never told the caller takes tasks), and one that outlasts it
// becomes the gateway's task, working until the service answers, then
// completed with the service's result. Every process is killed by pid.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { adminRequest, assert, harness, request, scaled, sleep, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-tasks-', watchdogMs: 90_000 });
const { check } = run;

const TASKS = 'io.modelcontextprotocol/tasks';
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const alice = 'tasks-test-key-alice';
const bob = 'tasks-test-key-bob';
const adminToken = 'tasks-test-admin-token';
const ttlMs = scaled(3000);
let nextId = 1;

/// A 2026-07-28 request from the caller with bearer `key` that declares the
/// tasks extension (unless `ext` is false).
function call(port, method, params, key, ext = true) {
  const name = params.name ?? params.taskId;
  return request(port, 'POST', {
    body: {
      jsonrpc: '2.0', id: nextId++, method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientCapabilities': ext ? { extensions: { [TASKS]: {} } } : {},
        },
      },
    },
    headers: {
      'mcp-protocol-version': '2026-07-28', 'mcp-method': method,
      ...(name ? { 'mcp-name': name } : {}),
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
  });
}

const slow = (port, key, seconds, label) => call(port, 'tools/call', { name: 'slow_compute', arguments: { seconds, label } }, key);
const taskGet = (port, key, taskId) => call(port, 'tasks/get', { taskId }, key);

/// A slow_compute task of the caller with `key`; its id.
async function newTask(port, key, seconds, label) {
  const created = await slow(port, key, seconds, label);
  const id = created.json?.result?.taskId;
  assert(id, `a task: ${created.text}`);
  return id;
}

/// The task once it has `status` (tasks/get's result); `check` looks at
/// each answer on the way.
const reaches = (port, key, id, status, check = () => {}) =>
  until(`task ${status}`, async () => {
    const r = await taskGet(port, key, id);
    check(r);
    return r.json?.result?.status === status ? r.json.result : null;
  });

await run.main(async () => {
  const cfgPath = join(run.dir, 'tasks.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    admin: { tokenSha256: sha256(adminToken) },
    tasks: { maxPerIdentity: 2, ttlMs, pollIntervalMs: 250 },
    rateLimits: { tiers: { roomy: { perMinute: 100000 } }, keys: { [sha256(alice)]: { tier: 'roomy' }, [sha256(bob)]: { tier: 'roomy' } } },
  }));
  const port = await run.startBulwark(['--config', cfgPath, '--fixtures'], 'server');
  const kill = async (name) => {
    const killed = await adminRequest(port, adminToken, 'POST', 'actors/kill', { name });
    assert(killed.status === 200, `kill ${name}: ${killed.status} ${JSON.stringify(killed.body)}`);
  };

  let aliceTask;
  await check('a task belongs to the caller that created it: another caller gets what an unknown id gets', async () => {
    const created = await slow(port, alice, 30, 'owned');
    aliceTask = created.json?.result?.taskId;
    assert(created.status === 200 && created.json.result.resultType === 'task' && aliceTask, `create: ${created.text}`);
    assert(created.json.result.pollIntervalMs === 250 && created.json.result.ttlMs === ttlMs, `the settings: ${created.text}`);
    const unknown = await taskGet(port, bob, 'no-such-task-0123');
    assert(unknown.json?.error?.code === -32602, `unknown: ${unknown.text}`);
    for (const [method, params] of [['tasks/get', {}], ['tasks/update', { inputResponses: {} }], ['tasks/cancel', {}]]) {
      const r = await call(port, method, { taskId: aliceTask, ...params }, bob);
      assert(r.json?.error?.code === -32602 && r.json.error.message === unknown.json.error.message.replace('no-such-task-0123', aliceTask),
             `${method} by another caller: ${r.text}`);
    }
    const mine = await taskGet(port, alice, aliceTask);
    assert(mine.json?.result?.status === 'working' && mine.json.result.resultType === 'complete', `the owner's: ${mine.text}`);
  });

  await check('a caller holds at most tasks.maxPerIdentity tasks that have not ended: 429, -32008, Retry-After; an ended one makes room', async () => {
    const second = await slow(port, alice, 30, 'second');
    const secondId = second.json?.result?.taskId;
    assert(secondId, `the second: ${second.text}`);
    const third = await slow(port, alice, 30, 'third');
    assert(third.status === 429 && third.json?.error?.code === -32008 && third.headers.get('retry-after') === '1',
           `the third: ${third.status} ${third.headers.get('retry-after')} ${third.text}`);
    assert(third.json.error.data?.limit === 'tasks' && third.json.error.data.max === 2, JSON.stringify(third.json.error));
    // Another caller is not bound by it.
    const bobs = await slow(port, bob, 30, 'bob');
    assert(bobs.json?.result?.taskId, `another caller: ${bobs.text}`);
    const cancel = await call(port, 'tasks/cancel', { taskId: secondId }, alice);
    assert(cancel.json?.result?.resultType === 'complete', `cancel: ${cancel.text}`);
    await reaches(port, alice, secondId, 'cancelled');
    const again = await slow(port, alice, 30, 'again');
    assert(again.json?.result?.taskId, `after one ended: ${again.text}`);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert(/bulwark_tasks_total\{outcome="created"\} [4-9]/.test(metrics) && /bulwark_tasks_total\{outcome="refused"\} 1\b/.test(metrics),
           `metrics: ${metrics.split('\n').filter((l) => l.startsWith('bulwark_tasks')).join('; ')}`);
    assert(/bulwark_tasks_ended_total\{status="cancelled"\} 1\b/.test(metrics), 'the cancelled task is counted');
    // Kept now: two of alice's working and bob's; the cancelled one made room.
    assert(/bulwark_tasks\{status="working"\} 3\b/.test(metrics) && /bulwark_tasks\{status="cancelled"\} 0\b/.test(metrics),
           `the tasks kept by status: ${metrics.split('\n').filter((l) => l.startsWith('bulwark_tasks{')).join('; ')}`);
    // The admin API lists them (as the health supervisor last saw them).
    const view = await until('the admin view of the tasks', async () => {
      const v = await adminRequest(port, adminToken, 'GET', 'tasks');
      return v.body?.byStatus?.working === 3 ? v.body : null;
    });
    const listed = view.latest.find((t) => t.taskId === again.json.result.taskId);
    assert(listed?.status === 'working' && listed.identity === `key:${sha256(alice)}`, `listed: ${JSON.stringify(view.latest)}`);
  });

  await check('a task store that is killed comes back with its tasks, which go on to the end', async () => {
    const id = await newTask(port, bob, 1, 'across-a-restart');
    await kill('tasks');
    // (While the store restarts, tasks/get says so: -32003, retry.)
    const done = await reaches(port, bob, id, 'completed',
                               (r) => assert(r.json?.error?.code !== -32602, `the task is known after the restart: ${r.text}`));
    assert(done.result?.content?.[0]?.text === 'computed across-a-restart', JSON.stringify(done));
  });

  await check('killing the actor that runs a task fails it with a typed error that tasks/get shows', async () => {
    const id = await newTask(port, bob, 30, 'to-be-killed');
    await kill('stateless-session');
    const failed = await reaches(port, bob, id, 'failed');
    assert(failed.error?.code === -32003 && /stopped before the task ended/.test(failed.error.message) && failed.statusMessage,
           `the error: ${JSON.stringify(failed)}`);
    assert(!('result' in failed), 'no result');
  });

  await check('a task is kept for its ttlMs and not longer', async () => {
    const id = await newTask(port, bob, 0.05, 'short-lived');
    const born = Date.now();
    await reaches(port, bob, id, 'completed');
    await sleep(Math.max(0, ttlMs / 2 - (Date.now() - born)));
    const kept = await taskGet(port, bob, id);
    assert(kept.json?.result?.status === 'completed', `within its ttlMs: ${kept.text}`);
    await until('gone after its ttlMs', async () => (await taskGet(port, bob, id)).json?.error?.code === -32602, ttlMs + scaled(5000));
    assert(Date.now() - born >= ttlMs - 50, `gone after ${Date.now() - born} ms of ${ttlMs}`);
  });

  await check('task notifications on subscriptions/listen need the extension (-32021 naming it)', async () => {
    const r = await call(port, 'subscriptions/listen', { notifications: { taskIds: ['x'] } }, bob, false);
    assert(r.json?.error?.code === -32021 && r.json.error.data?.requiredCapabilities?.extensions?.[TASKS],
           `listen without the extension: ${r.text}`);
  });

  const frontPath = join(run.dir, 'front.json');
  writeFileSync(frontPath, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    mcpServers: { fx: { url: `http://127.0.0.1:${port}/mcp` } },
    services: { fx: { protocol: '2026-07-28' } },
    gateway: { prefix: 'never', taskAfterMs: scaled(400) },
  }));
  const front = await run.startBulwark(['--config', frontPath, '--no-builtin-tools'], 'front');

  await check('through a gateway, a call answered before gateway.taskAfterMs is answered on its request, never as the service\'s task', async () => {
    const r = await slow(front, undefined, 0.05, 'through');
    assert(r.json?.result?.resultType === 'complete' && !r.json.result.taskId, `through the gateway: ${r.text}`);
    assert(r.json.result.content?.[0]?.text === 'computed through', r.text);
  });

  await check('a gateway call that outlasts gateway.taskAfterMs becomes the gateway\'s task, and its result lands there', async () => {
    const r = await slow(front, undefined, scaled(1500) / 1000, 'gateway-task');
    const id = r.json?.result?.taskId;
    assert(r.json?.result?.resultType === 'task' && id, `a task of the gateway's: ${r.text}`);
    const first = await taskGet(front, undefined, id);
    assert(first.json?.result?.status === 'working', `the service has not answered yet: ${first.text}`);
    const done = await reaches(front, undefined, id, 'completed');
    assert(done.result?.content?.[0]?.text === 'computed gateway-task', JSON.stringify(done));
  });
});
