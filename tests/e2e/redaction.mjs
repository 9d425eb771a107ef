#!/usr/bin/env node
// End-to-end test of log redaction: secrets of every shape sent through
// every path that writes to the log, then a search of the whole log output.
//
//   node tests/e2e/redaction.mjs --bulwark build/bulwark
//
// A front `bulwark` at log level debug, with an admin token, a configured
// extra secret name and pattern, and a stdio service whose process prints
// secrets on its stderr (which the front logs line by line). Requests carry
// secrets in headers, client info, tool names and arguments, malformed
// bodies, session ids, admin requests and refused admin requests. Checks
// that none of the secrets appears in any log line, and that the lines that
// carried them are there, redacted (so the test sees what it claims to).
// Every process is killed by pid.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { adminRequest, assert, callTool, harness, scaled, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-redaction-' });
const { bulwark, dir, check, startBulwark, logs } = run;

const secrets = {
  bearer: 'tok_7f3a9c2e5b8d4f1a6c0e9b7d',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.Zm9vYmFyYmF6cXV4',
  apiKey: 'bwk_4e1d8c7b6a5f4e3d2c1b0a9f8e7d6c5b',
  openai: 'sk-live0123456789abcdefABCDEF',
  email: 'alice.cooper+mcp@example.org',
  password: 'Hunter2-Corr3ct-Horse',
  custom: 'ACCT-99887766',
  admin: 'admin-token-for-redaction',
};

let port;
const post = async (body, headers = {}) => {
  const res = await fetch(`http://127.0.0.1:${port}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(scaled(10_000)),
  });
  return { status: res.status, text: await res.text() };
};
const admin = (path, body, token = secrets.admin) => adminRequest(port, token, 'POST', path, body);

await run.main(async () => {
  // The service's process tells its stderr every kind of secret first.
  const noisy = join(dir, 'noisy.sh');
  writeFileSync(noisy, `#!/bin/sh
echo "connecting with Authorization: Bearer ${secrets.bearer}" >&2
echo '{"level":"debug","password":"${secrets.password}","user":"${secrets.email}"}' >&2
echo "retrying with key ${secrets.apiKey} and ${secrets.openai}, id_token=${secrets.jwt}" >&2
echo "account ${secrets.custom} ready" >&2
exec "${bulwark}" --stdio --no-http --fixtures --no-builtin-tools --log-level debug
`, { mode: 0o755 });
  const cfg = join(dir, 'front.json');
  writeFileSync(cfg, JSON.stringify({
    http: { port: 0 },
    mcpServers: { fx: { command: noisy } },
    gateway: { prefix: 'never' },
    admin: { tokenSha256: createHash('sha256').update(secrets.admin).digest('hex') },
    log: { level: 'debug', redactKeys: ['account_number'], redactPatterns: ['ACCT-[0-9]{8}'] },
  }));
  port = await startBulwark(['--config', cfg], 'front');
  await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200, 20_000);
  await until('the service stderr logged', async () => logs.some((l) => l.includes('account ')));

  await check('requests carrying secrets go through every error path', async () => {
    const auth = { authorization: `Bearer ${secrets.bearer}` };
    // A session whose client info carries secrets.
    const init = await post({ jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {},
                clientInfo: { name: `agent of ${secrets.email}`, version: secrets.jwt, password: secrets.password } } }, auth);
    assert(init.status === 200, `initialize: ${init.status}`);
    // Malformed JSON and a bad envelope, with secrets inside.
    assert((await post(`{"password":"${secrets.password}", broken`, auth)).status === 400, 'malformed JSON');
    assert((await post({ jsonrpc: '1.0', id: 2, method: secrets.apiKey }, auth)).status === 400, 'bad envelope');
    // Unknown tool and unknown session, named by secrets.
    const unknown = await callTool(port, `tool-${secrets.openai}`, { password: secrets.password }, auth);
    assert(unknown.error?.code === -32602, JSON.stringify(unknown));
    assert((await post({ jsonrpc: '2.0', id: 3, method: 'ping' },
      { 'mcp-session-id': secrets.apiKey, 'mcp-protocol-version': '2025-11-25' })).status === 404, 'unknown session');
    // Header mismatch with a secret in the header.
    const mismatch = await post({ jsonrpc: '2.0', id: 4, method: 'tools/call',
      params: { name: 'echo', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': {} } } },
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': secrets.openai });
    assert(mismatch.status === 400, `header mismatch: ${mismatch.status}`);
    // Invalid arguments to a gateway tool, and a valid call with secrets in them.
    const invalid = await callTool(port, 'test_simple_text', { password: secrets.password, n: secrets.jwt }, auth);
    assert(invalid.result || invalid.error, JSON.stringify(invalid));
    // Admin: a refused request with a secret token, and an audited action with secrets in its body.
    assert((await admin('degraded', { mode: 'on' }, secrets.bearer)).status === 401, 'wrong admin token');
    const audited = await admin('cache/invalidate', { service: 'fx', apiKey: secrets.apiKey, note: `for ${secrets.email}`,
      account_number: '12345', password: secrets.password });
    assert(audited.status === 200 || audited.status === 503, `admin action: ${audited.status} ${JSON.stringify(audited.body)}`);
  });

  await check('no secret appears in any log line', async () => {
    await until('the audit line', async () => logs.some((l) => l.includes('"msg":"admin action"')));
    const leaks = [];
    for (const [what, value] of Object.entries(secrets))
      for (const line of logs)
        if (line.includes(value)) leaks.push(`${what}: ${line.slice(0, 300)}`);
    assert(leaks.length === 0, `leaked:\n${leaks.slice(0, 10).join('\n')}`);
  });

  await check('the lines that carried secrets are in the log, redacted', async () => {
    const has = (re) => logs.some((l) => re.test(l));
    assert(has(/service stderr.*Authorization: \[REDACTED\]/), 'the bearer token in a service stderr line');
    assert(has(/service stderr.*password.*\[REDACTED\]/) && has(/\[REDACTED:email\]/), 'a JSON line and an e-mail address');
    assert(has(/\[REDACTED:key\].*\[REDACTED:key\]/) && has(/id_token=\[REDACTED/), 'API keys and a JWT');
    assert(has(/account \[REDACTED\] ready/), 'the configured pattern');
    const audit = logs.find((l) => l.includes('"msg":"admin action"') && l.includes('cache/invalidate'));
    assert(audit && /"apiKey":"\[REDACTED\]"/.test(audit) && /"password":"\[REDACTED\]"/.test(audit)
      && /"account_number":"\[REDACTED\]"/.test(audit) && /for \[REDACTED:email\]/.test(audit), `the audit line: ${audit}`);
    assert(has(/session initialized.*\[REDACTED:email\]/), 'client info in the session line');
  });
});
