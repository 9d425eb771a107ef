#!/usr/bin/env node
// End-to-end test of bulwark-console, driven through a real pseudo-terminal:
// util-linux `script` runs the console on a pty, this test types keystrokes
// into script's stdin and reads the screen from its stdout (escape codes
// stripped for the assertions). The server is a `bulwark` with an admin token
// whose service "fx" is a `bulwark --stdio --fixtures` child.
//
//   node tests/e2e/console.mjs --bulwark build/bulwark --console build/bulwark-console
//
// Checks: the prompt; the actor tree; TAB completion of a command and of an
// actor name; a killed actor comes back with one restart (the API agrees);
// up/down recall history; degraded mode forced on shows in `health` (the API
// agrees) and back to automatic; a forced-open breaker shows in `breakers`;
// `watch` redraws live and stops on q; Ctrl-C clears the line; unknown
// commands and wrong arguments are one-line errors and the console goes on;
// `-c` runs without a terminal and exits with the commands' status; `config`
// and `reload` show and reload the configuration; `quit` exits 0. Every wait is bounded; every process is killed by pid.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { adminRequest, assert, harness, scaled, until } from './harness.mjs';

const run = harness({ scratch: 'bulwark-console-' });
const { bulwark, dir, check, startBulwark } = run;
const argv = process.argv.slice(2);
const consoleBin = argv.includes('--console') ? resolve(argv[argv.indexOf('--console') + 1]) : '';

const token = 'console-test-admin-token';
let port;

const admin = (method, path, body) => adminRequest(port, token, method, path, body);

/// Every process below `pid`, found through /proc (script's shell, the console).
function descendants(pid) {
  const parentOf = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift();
    for (const [child, parent] of parentOf)
      if (parent === p) {
        found.push(child);
        queue.push(child);
      }
  }
  return found;
}

// Escape sequences (CSI, OSC, charset and keypad selections) and the bell.
const escapes = /\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]|\x07/g;
const strip = (s) => s.replace(escapes, '').replace(/\r\n/g, '\n');

/// The console on a pseudo-terminal: `send` types, `since(mark)` is the
/// screen output (escape codes stripped) after a `mark()`.
class Terminal {
  constructor(command, env) {
    // `script` runs the command with $SHELL -c, or /bin/sh when SHELL is
    // unset; dash then stays as the console's parent in its process group,
    // and the Ctrl-C that libedit passes on to the group (kill(0, SIGINT))
    // ends it, and `script` reports that as the console's status. `exec`
    // leaves the console alone in its group, as an interactive shell would.
    this.proc = spawn('script', ['-qfec', `exec ${command}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env });
    run.pids.push(this.proc.pid);
    this.raw = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => (this.raw += d));
    this.proc.stderr.on('data', (d) => run.logs.push(`[script] ${d}`));
    this.exited = new Promise((r) => this.proc.on('exit', (code, signal) => r({ code, signal })));
  }

  mark() {
    return this.raw.length;
  }

  since(mark) {
    return strip(this.raw.slice(mark));
  }

  send(keys) {
    this.proc.stdin.write(keys);
  }

  /// Waits (bounded) until the output after `mark` matches `re`.
  expect(what, re, mark, ms = 10_000) {
    return until(what, () => this.since(mark).match(re), ms).catch((e) => {
      throw new Error(`${e.message}; the screen said:\n${this.since(mark).slice(-1500)}`);
    });
  }

  /// Types `line` and Enter; resolves with what the console printed before
  /// its next prompt.
  async command(line, ms = 10_000) {
    const m = this.mark();
    this.send(`${line}\r`);
    await this.expect(`the prompt after '${line}'`, /\nbulwark> $/, m, ms);
    const out = this.since(m);
    return out.slice(0, out.lastIndexOf('bulwark> '));
  }
}

/// Runs the console without a terminal; resolves with its exit status and output.
function runPlain(args, env) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(consoleBin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    run.pids.push(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')}: still running after ${scaled(20)} s`)), scaled(20_000));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

const quote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
const actorLine = (out, name) => out.split('\n').find((l) => new RegExp(`^\\s*${name.replace('/', '\\/')}\\s`).test(l));
const indentOf = (line) => line.match(/^ */)[0].length;

await run.main(async () => {
  assert(consoleBin && existsSync(consoleBin), `--console PATH must name the bulwark-console binary (got '${consoleBin}')`);
  const cfgPath = join(dir, 'server.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0 },
    mcpServers: { fx: { command: bulwark, args: ['--stdio', '--no-http', '--fixtures', '--no-builtin-tools', '--log-level', 'warning'] } },
    gateway: { prefix: 'never' },
    health: { intervalMs: 100, exitAfterMs: 300 },
  }));
  // The server takes its admin token from the environment; the stdio child it
  // starts serves no HTTP, so the token does not matter there.
  process.env.BULWARK_ADMIN_TOKEN = token;
  port = await startBulwark(['--config', cfgPath], 'server');
  await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/ready`)).status === 200, 15_000);
  await until('the fx breaker in the tree', async () =>
    (await admin('GET', 'actors')).body?.actors?.some((a) => a.name === 'breaker/fx'));
  run.pids.push(...descendants(run.started.server.pid));

  // The console takes the token from the environment too; HOME is scratch,
  // though --no-history keeps it from writing anything there.
  const env = { ...process.env, HOME: dir, TERM: 'xterm', BULWARK_ADMIN_TOKEN: token };
  const term = new Terminal(`${quote(consoleBin)} --url http://127.0.0.1:${port} --no-history`, env);

  await check('the console starts on a terminal and shows its prompt', async () => {
    await term.expect('the prompt', /bulwark> $/, 0);
    assert(/Bulwark \S+ at http:\/\/127\.0\.0\.1:\d+: \w+/.test(term.since(0)), `a greeting:\n${term.since(0)}`);
    run.pids.push(...descendants(term.proc.pid));
  });

  await check('actors shows the tree: supervisors, sessions, the queue and the service breaker', async () => {
    const out = await term.command('actors');
    for (const name of ['session-supervisor', 'stateless-session', 'queue', 'breaker/fx'])
      assert(actorLine(out, name), `${name} listed:\n${out}`);
    assert(/NAME\s+KIND\s+STATE\s+MAILBOX\s+RESTARTS\s+UPTIME\s+LAST EXIT/.test(out), `column headers:\n${out}`);
    assert(indentOf(actorLine(out, 'stateless-session')) > indentOf(actorLine(out, 'session-supervisor')),
      `a session indented under its supervisor:\n${out}`);
    assert(/^\s+queue\s+queue\s+running\s+\S+\s+0\s/m.test(out), `the queue running, no restarts:\n${out}`);
  });

  let killedByCompletion = false;
  await check('TAB completes a command name and an actor name', async () => {
    let m = term.mark();
    term.send('ki\t');
    await term.expect("'ki' completed to 'kill '", /bulwark> kill (?!\S)/, m);
    m = term.mark();
    term.send('que\t');
    await term.expect("'que' completed to 'queue '", /bulwark> kill queue (?!\S)/, m);
    m = term.mark();
    term.send('\r');
    await term.expect('the kill confirmed', /killed queue\n[^]*bulwark> $/, m);
    killedByCompletion = true;
  });

  await check('a killed actor comes back restarted, in the console and in the API', async () => {
    if (!killedByCompletion) await term.command('kill queue');
    let last = '';
    await until('the queue back with one restart', async () => {
      last = await term.command('actors');
      return /^\s+queue\s+queue\s+running\s+\S+\s+1\s/m.test(last);
    }, 15_000).catch((e) => {
      throw new Error(`${e.message}:\n${last}`);
    });
    const queue = (await admin('GET', 'actors')).body.actors.find((a) => a.name === 'queue');
    assert(queue.restarts === 1 && queue.state === 'running', `the API: ${JSON.stringify(queue)}`);
  });

  await check('up and down walk the history', async () => {
    let m = term.mark();
    term.send('\x1b[A');
    await term.expect('the last command recalled', /bulwark> actors/, m);
    m = term.mark();
    term.send('\x1b[A');
    await term.expect('the one before', /bulwark> kill queue/, m);
    m = term.mark();
    term.send('\x1b[B');
    await term.expect('forward again', /bulwark> actors/, m);
    m = term.mark();
    term.send('\r');
    await term.expect('the recalled command run', /stateless-session[^]*\nbulwark> $/, m);
  });

  await check('degrade on shows in health (the API agrees); degrade auto returns to automatic', async () => {
    assert(/degraded mode: forced on/.test(await term.command('degrade on')), 'confirmed');
    let last = '';
    await until('health showing degraded', async () => {
      last = await term.command('health');
      return /^degraded\s+yes/m.test(last);
    }).catch((e) => {
      throw new Error(`${e.message}:\n${last}`);
    });
    const h = (await admin('GET', 'health')).body;
    assert(h.degraded === true && h.degradedForced === true, `the API: degraded ${h.degraded}, forced ${h.degradedForced}`);
    assert(/degraded mode: automatic/.test(await term.command('degrade auto')), 'automatic confirmed');
    await until('the API out of degraded mode', async () => !(await admin('GET', 'health')).body.degraded);
  });

  await check('breaker fx open holds it open in breakers; auto releases it; close closes it', async () => {
    assert(/breaker fx held open until 'breaker fx auto'/.test(await term.command('breaker fx open')), 'confirmed');
    let last = '';
    await until('breakers showing fx open', async () => {
      last = await term.command('breakers');
      return /^fx\s+open\s/m.test(last);
    }).catch((e) => {
      throw new Error(`${e.message}:\n${last}`);
    });
    assert(/^SERVICE\s+STATE\s+CALLS/m.test(last), `a table:\n${last}`);
    await until('held in the API', async () => (await admin('GET', 'health')).body.components.breakers.fx.forced === true);
    assert(/breaker fx released/.test(await term.command('breaker fx auto')), 'released');
    await until('released in the API', async () => (await admin('GET', 'health')).body.components.breakers.fx.forced === false);
    assert((await term.command('breaker fx close')).includes("breaker fx held closed until 'breaker fx auto'"), 'closed again');
    await until('the API showing fx closed', async () =>
      (await admin('GET', 'health')).body.components.breakers.fx.state === 'closed');
  });

  await check('watch redraws a live frame until q', async () => {
    const m = term.mark();
    term.send('watch 1\r');
    // A frame: its header, the health summary, the actor tree; then the next.
    const frame = /bulwark watch .*\(q to stop\)\n\nhealth\s+\w+, degraded[^]*stateless-session/;
    await term.expect('two frames', new RegExp(`${frame.source}[^]*${frame.source}`), m);
    assert(term.raw.slice(m).includes('\x1b[?1049h'), 'the live view takes the alternate screen');
    const q = term.mark();
    term.send('q');
    await term.expect('the prompt after q', /bulwark> $/, q, 5000);
    assert(term.raw.slice(q).includes('\x1b[?1049l'), 'and gives it back');
  });

  await check('Ctrl-C clears the line and the prompt stays', async () => {
    const m = term.mark();
    term.send('some half-typed line');
    await term.expect('the typing echoed', /half-typed line/, m);
    term.send('\x03');
    await term.expect('a fresh prompt', /\^C\nbulwark> $/, m);
    assert(/^status\s+\w+/m.test(await term.command('health')), 'the next command runs alone');
  });

  await check('unknown commands and wrong arguments are one-line errors; the console goes on', async () => {
    const unknown = await term.command('frobnicate now');
    assert(/error: unknown command 'frobnicate'/.test(unknown), `an error:\n${unknown}`);
    assert(/usage: breaker SERVICE open\|close\|half-open/.test(await term.command('breaker fx sideways')), 'usage');
    const refused = await term.command('kill no-such-actor');
    assert(/^error: kill no-such-actor: .*'no-such-actor'.* \(HTTP 404\)$/m.test(refused), `the server's error:\n${refused}`);
    assert(/size\s+0 of 1000/.test(await term.command('queue')), 'the next command works');
  });

  await check('-c runs commands without a terminal and exits with their status', async () => {
    const plainEnv = { ...process.env, HOME: dir };
    delete plainEnv.BULWARK_ADMIN_TOKEN;
    const url = `http://127.0.0.1:${port}`;
    const ok = await runPlain(['--url', url, '--token', token, '-c', 'actors'], plainEnv);
    assert(ok.code === 0, `exit ${ok.code}: ${ok.stderr}`);
    assert(/^\s+stateless-session\s+session\s+running/m.test(ok.stdout) && /^\s+breaker\/fx\s+breaker/m.test(ok.stdout),
      `the tree:\n${ok.stdout}`);
    assert(!ok.stdout.includes('\x1b') && !ok.stdout.includes('bulwark> '), 'no escape codes and no prompt');
    const bad = await runPlain(['--url', url, '--token', token, '-c', 'health', '-c', 'kill no-such-actor'], plainEnv);
    assert(bad.code === 1 && /^error: kill no-such-actor: .*\(HTTP 404\)$/m.test(bad.stderr)
      && /^status\s+\w+/m.test(bad.stdout), `a failing command: exit ${bad.code}\n${bad.stdout}\n${bad.stderr}`);
    const noToken = await runPlain(['--url', url, '-c', 'actors'], plainEnv);
    assert(noToken.code === 1 && /HTTP 401/.test(noToken.stderr), `no token: exit ${noToken.code} ${noToken.stderr}`);
    const down = await runPlain(['--url', 'http://127.0.0.1:1', '-c', 'health'], plainEnv);
    assert(down.code === 1 && /cannot reach Bulwark at http:\/\/127\.0\.0\.1:1/.test(down.stderr), `server down: ${down.stderr}`);
    const frames = await runPlain(['--url', url, '--token', token, '-c', 'watch 0.2'], plainEnv);
    assert(frames.code === 0 && (frames.stdout.match(/bulwark watch/g) ?? []).length === 3 && !frames.stdout.includes('\x1b'),
      `watch without a terminal prints three plain frames:\n${frames.stdout}`);
  });

  await check('config shows the generation; reload applies a changed file, and an invalid one is refused with its key', async () => {
    const plainEnv = { ...process.env, HOME: dir };
    delete plainEnv.BULWARK_ADMIN_TOKEN;
    const url = `http://127.0.0.1:${port}`;
    const shown = await runPlain(['--url', url, '--token', token, '-c', 'config'], plainEnv);
    assert(shown.code === 0 && /generation\s+1\b/.test(shown.stdout) && shown.stdout.includes(cfgPath),
      `config: exit ${shown.code}\n${shown.stdout}\n${shown.stderr}`);
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, health: { ...cfg.health, enterChecks: 3 } }));
    const applied = await runPlain(['--url', url, '--token', token, '-c', 'reload'], plainEnv);
    assert(applied.code === 0 && /applied/.test(applied.stdout) && applied.stdout.includes('$.health.enterChecks'),
      `reload: exit ${applied.code}\n${applied.stdout}\n${applied.stderr}`);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, health: { ...cfg.health, enterChecks: 'many' } }));
    const refused = await runPlain(['--url', url, '--token', token, '-c', 'reload'], plainEnv);
    assert(refused.code === 1 && refused.stderr.includes('$.health.enterChecks'),
      `an invalid file: exit ${refused.code}\n${refused.stdout}\n${refused.stderr}`);
    writeFileSync(cfgPath, JSON.stringify(cfg));
    assert((await admin('GET', 'config')).body.generation === 2, 'the refused reload changed nothing');
  });

  await check('with its server down the console says so and keeps its prompt', async () => {
    const down = new Terminal(`${quote(consoleBin)} --url http://127.0.0.1:1 --no-history`, env);
    await down.expect('the prompt', /cannot reach Bulwark at http:\/\/127\.0\.0\.1:1[^]*bulwark> $/, 0);
    run.pids.push(...descendants(down.proc.pid));
    const out = await down.command('actors');
    assert(/error: actors: cannot reach Bulwark at http:\/\/127\.0\.0\.1:1 \(Connection refused\)/.test(out),
      `an error:\n${out}`);
    assert(/usage: degrade on\|off\|auto/.test(await down.command('degrade')), 'still reading commands');
    const m = down.mark();
    down.send('\x04');
    const { code } = await Promise.race([
      down.exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`still running ${scaled(5)} s after Ctrl-D`)), scaled(5000))),
    ]);
    assert(code === 0, `Ctrl-D on an empty line leaves with status 0, not ${code}:\n${down.since(m)}`);
  });

  await check('quit leaves with status 0', async () => {
    term.send('quit\r');
    const { code, signal } = await Promise.race([
      term.exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`still running ${scaled(5)} s after quit`)), scaled(5000))),
    ]);
    assert(code === 0, `exit status ${code} (signal ${signal})`);
  });
});
