// Shared by the end-to-end tests: named checks with PASS/FAIL lines, a
// watchdog, `bulwark` processes started on free ports and killed by pid.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export function assert(cond, why) {
  if (!cond) throw new Error(why);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// A test run: `check` counts results, `finish` kills every process started
/// through it and exits; the watchdog ends a run that takes too long.
export function harness({ bulwark, watchdogMs = 90_000, onFinish = () => {} }) {
  const run = { passed: 0, failed: 0, logs: [], pids: [], started: {} };
  const watchdog = setTimeout(() => {
    console.log(`FAIL watchdog: the run took longer than ${watchdogMs / 1000} s`);
    run.finish(1);
  }, watchdogMs);

  run.finish = (code) => {
    clearTimeout(watchdog);
    for (const pid of run.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    onFinish();
    process.exit(code);
  };

  run.check = async (name, fn) => {
    try {
      await fn();
      run.passed++;
      console.log(`PASS ${name}`);
    } catch (e) {
      run.failed++;
      console.log(`FAIL ${name}: ${e?.stack ?? e}`);
    }
  };

  /// Starts bulwark with `argv`; resolves with the HTTP port it logs.
  run.startBulwark = (argv, label) => {
    const child = spawn(bulwark, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    run.pids.push(child.pid);
    run.started[label] = child;
    return new Promise((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: no "listening" line in 20 s`)), 20_000);
      child.once('exit', (code) => reject(new Error(`${label} exited early with ${code}:\n${run.logs.slice(-20).join('\n')}`)));
      createInterface({ input: child.stderr }).on('line', (line) => {
        run.logs.push(`[${label}] ${line}`);
        if (run.logs.length > 400) run.logs.shift();
        try {
          const rec = JSON.parse(line);
          if (rec.msg === 'listening') {
            clearTimeout(timer);
            resolvePort(rec.port);
          }
        } catch {
          // not JSON
        }
      });
    });
  };

  /// Kills a process started as `label` and waits for it to be gone.
  run.stop = (label) => {
    const child = run.started[label];
    delete run.started[label];
    process.kill(child.pid, 'SIGKILL');
    return new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.once('exit', r)));
  };

  return run;
}
