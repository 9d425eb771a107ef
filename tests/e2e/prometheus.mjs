#!/usr/bin/env node
// End-to-end test of the monitoring files under deploy/: Debian's
// `promtool` and `prometheus` against deploy/prometheus/ and a real Bulwark,
// and the Grafana dashboard deploy/grafana/bulwark.json against that
// Bulwark's /metrics.
//
//   node tests/e2e/prometheus.mjs --bulwark build/bulwark [--prometheus PATH] [--promtool PATH]
//
// Checks:
// 1. `promtool check config` accepts deploy/prometheus/prometheus.yml (and
//    the rules file it names), `promtool check rules` the rules, and
//    `promtool test rules` passes bulwark-rules.test.yml.
// 2. A Bulwark gateway in front of a stdio service ("fx", a `bulwark
//    --fixtures --fault-tools` child) gets some calls (cached ones, a tool
//    that fails, one that times out, one of an unknown tool); a
//    `prometheus` started here
//    on a free port, with its own storage in a scratch directory and the
//    committed prometheus.yml with only the target and the intervals (1 s)
//    changed, scrapes it: the target is up (`up{job="bulwark"} == 1`), the
//    request and error counters, the latency histogram and fx's series read
//    back through /api/v1/query, and /api/v1/rules lists every group and
//    alert of the rules file, each evaluated with health "ok".
// 3. Every metric name in the dashboard's panel targets and variables, and
//    in the rules' expressions, is a family Bulwark's /metrics declares
//    (histograms' _bucket/_sum/_count map to their family), and label
//    matchers name labels those families carry; each dashboard expression
//    is valid PromQL to that prometheus, and the panels an operator needs
//    (request rate, errors by class, p50/p95/p99, breaker per service, cache
//    hit rate, queue depth, restarts) are there and show data.
//
// Without promtool and prometheus the test fails: tools/install-deps.sh
// --tests installs them. Every process is killed by pid.

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { assert, callTool, freePort, harness, scaled, until } from './harness.mjs';

const args = process.argv.slice(2);
const arg = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const promDir = join(root, 'deploy/prometheus');
const promConfig = join(promDir, 'prometheus.yml');
const rulesFile = join(promDir, 'bulwark-rules.yml');
const rulesTest = join(promDir, 'bulwark-rules.test.yml');
const dashboardFile = join(root, 'deploy/grafana/bulwark.json');

const run = harness({ scratch: 'bulwark-prometheus-', watchdogMs: 100_000 });
const { check } = run;

/// `name` on the PATH (or /usr/bin, where Debian puts it), or undefined.
function which(name) {
  for (const d of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin'])
    if (d && existsSync(join(d, name))) return join(d, name);
  return undefined;
}
const promtool = arg('--promtool') ?? which('promtool');
const prometheus = arg('--prometheus') ?? which('prometheus');
const installHint = 'install them with tools/install-deps.sh --tests (Debian package "prometheus")';

/// Runs promtool with `argv`; resolves with its exit code and output.
function runPromtool(argv) {
  const r = spawnSync(promtool, argv, { cwd: run.dir, encoding: 'utf8', timeout: scaled(30_000) });
  if (r.error) throw new Error(`promtool ${argv.join(' ')}: ${r.error.message}`);
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

// -- PromQL, read just far enough to find metric and label names --

const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values',
                              'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio']);
// Followed by a parenthesized list of label names.
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'offset', 'bool', 'atan2', 'inf', 'nan']);

/// The metric selectors of the PromQL expression `expr` (Grafana variables
/// allowed): [{name, labels}] with the label names of each one's matchers,
/// and `grouping`: every label named by by/without/on/ignoring/group_*.
/// Identifiers followed by "(" are functions, aggregation operators and
/// keywords are not names, and strings, durations, numbers and ranges are
/// skipped.
function promqlNames(expr) {
  const selectors = [];
  const grouping = [];
  const n = expr.length;
  let i = 0;
  const isIdStart = (c) => /[A-Za-z_:]/.test(c);
  const isId = (c) => /[A-Za-z0-9_:]/.test(c);
  const skipSpace = () => {
    while (i < n && /\s/.test(expr[i])) i++;
  };
  const skipString = () => {
    const q = expr[i++];
    while (i < n && expr[i] !== q) i += expr[i] === '\\' && q !== '`' ? 2 : 1;
    if (i >= n) throw new Error(`unterminated string in ${JSON.stringify(expr)}`);
    i++;
  };
  const readId = () => {
    const start = i;
    while (i < n && isId(expr[i])) i++;
    return expr.slice(start, i);
  };
  // At "{": the matchers' label names, and the value of a __name__="x" one.
  const readMatchers = () => {
    const labels = [];
    let name;
    i++;
    for (;;) {
      skipSpace();
      if (i >= n) throw new Error(`unterminated {...} in ${JSON.stringify(expr)}`);
      if (expr[i] === '}') {
        i++;
        return { labels, name };
      }
      if (expr[i] === ',') {
        i++;
        continue;
      }
      if (!isIdStart(expr[i])) throw new Error(`a label name expected at ${i} in ${JSON.stringify(expr)}`);
      const label = readId();
      skipSpace();
      const op = /^(=~|!~|!=|=)/.exec(expr.slice(i))?.[0];
      if (!op) throw new Error(`a matcher operator expected after ${label} in ${JSON.stringify(expr)}`);
      i += op.length;
      skipSpace();
      const valueStart = i;
      if (!`"'\``.includes(expr[i])) throw new Error(`a quoted value expected after ${label}${op} in ${JSON.stringify(expr)}`);
      skipString();
      if (label === '__name__' && op === '=') name = JSON.parse(`"${expr.slice(valueStart + 1, i - 1)}"`);
      else labels.push(label);
    }
  };
  while (i < n) {
    const c = expr[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < n && expr[i] !== '\n') i++;
    } else if (`"'\``.includes(c)) {
      skipString();
    } else if (c === '$') {
      // A Grafana variable: $name, ${name}, ${name:format}.
      i++;
      if (expr[i] === '{') i = expr.indexOf('}', i) + 1 || n;
      else while (i < n && /\w/.test(expr[i])) i++;
    } else if (c === '[' && expr.startsWith('[[', i)) {
      i = expr.indexOf(']]', i) + 2 || n; // the old [[variable]] syntax
    } else if (c === '[') {
      i = expr.indexOf(']', i) + 1 || n; // a range or subquery: durations and variables
    } else if (c === '{') {
      const m = readMatchers(); // a selector without a leading name
      if (m.name) selectors.push({ name: m.name, labels: m.labels });
    } else if (/[0-9.]/.test(c)) {
      // A number (1, 0.95, 1e-3, 0x1f, Inf) or a duration (5m, 1h30m).
      const m = /^(0x[0-9a-f]+|(?:\d+(?:ms|[smhdwy]))+|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)/i.exec(expr.slice(i));
      i += m ? m[0].length : 1;
    } else if (isIdStart(c)) {
      const id = readId();
      const word = id.toLowerCase();
      skipSpace();
      if (LABEL_LISTS.has(word)) {
        if (expr[i] === '(') {
          const close = expr.indexOf(')', i);
          if (close < 0) throw new Error(`unterminated ${id} (...) in ${JSON.stringify(expr)}`);
          grouping.push(...expr.slice(i + 1, close).split(',').map((s) => s.trim()).filter(Boolean));
          i = close + 1;
        }
      } else if (KEYWORDS.has(word) || AGGREGATIONS.has(word) || expr[i] === '(') {
        // an operator, a keyword or a function
      } else {
        const labels = expr[i] === '{' ? readMatchers().labels : [];
        selectors.push({ name: id, labels });
      }
    } else {
      i++;
    }
  }
  return { selectors, grouping };
}

/// The PromQL inside a Grafana query variable's query: label_values(EXPR,
/// label) and query_result(EXPR) hold one; label_values(label) none.
function variableExpr(query) {
  const q = String(typeof query === 'object' ? query?.query ?? '' : query ?? '').trim();
  let m;
  if ((m = /^label_values\(\s*(.*)\s*,\s*[A-Za-z_]\w*\s*\)$/s.exec(q))) return m[1];
  if ((m = /^query_result\(\s*(.*)\s*\)$/s.exec(q))) return m[1];
  if (/^(label_values|label_names|metrics)\(/.test(q)) return '';
  return q;
}

// -- Bulwark's /metrics --

/// The families of a Prometheus text exposition: name -> {type, labels (a
/// Set of the label names its samples carry), samples}.
function exposition(text) {
  const families = new Map();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) families.set(t[1], { type: t[2], labels: new Set(), samples: 0 });
  }
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const s = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s/.exec(line);
    if (!s) continue;
    const fam = familyOf(families, s[1]);
    if (!fam) continue;
    const f = families.get(fam);
    f.samples++;
    for (const m of (s[2] ?? '').matchAll(/([A-Za-z_]\w*)="(?:[^"\\]|\\.)*"/g)) f.labels.add(m[1]);
  }
  return families;
}

/// The family a series name belongs to in `families`, or undefined.
function familyOf(families, name) {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const type = families.get(base)?.type;
    if (type === 'histogram' || (type === 'summary' && suffix !== '_bucket')) return base;
  }
  return undefined;
}

/// Problems of `expr` (named `where`) against `families`: names that are no
/// family, matchers and groupings with labels its families do not carry
/// (judged only where /metrics shows samples of every family named), an
/// expression that names no metric at all.
function exprProblems(families, where, expr) {
  const problems = [];
  let parsed;
  try {
    parsed = promqlNames(expr);
  } catch (e) {
    return [`${where}: ${e.message}`];
  }
  if (parsed.selectors.length === 0) problems.push(`${where}: names no metric: ${expr}`);
  // Labels Prometheus itself adds to every scraped series.
  const targetLabels = ['job', 'instance'];
  const named = new Set();
  let allSampled = true;
  const union = new Set(targetLabels);
  for (const { name, labels } of parsed.selectors) {
    const fam = familyOf(families, name);
    if (!fam) {
      problems.push(`${where}: "${name}" is not a metric family of Bulwark's /metrics`);
      allSampled = false;
      continue;
    }
    named.add(name);
    const f = families.get(fam);
    if (f.samples === 0) {
      allSampled = false;
      continue;
    }
    const own = new Set([...f.labels, ...targetLabels]);
    if (name.endsWith('_bucket')) own.add('le');
    for (const l of own) union.add(l);
    for (const l of labels) if (!own.has(l)) problems.push(`${where}: ${name} has no label "${l}" (it has ${[...own].join(', ')})`);
  }
  if (allSampled && named.size)
    for (const l of parsed.grouping) if (!union.has(l)) problems.push(`${where}: groups by "${l}", which no metric of the expression carries`);
  return problems;
}

// -- the dashboard --

/// Every panel of the dashboard, those inside rows included.
function allPanels(dashboard) {
  const out = [];
  const walk = (ps) => {
    for (const p of ps ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/// The panels an operator needs: a title pattern, the families its targets
/// must use, and what else its expressions must say.
const requiredPanels = [
  { title: /request rate/i, uses: ['bulwark_requests_total'] },
  {
    title: /error rate/i, uses: ['bulwark_errors_total'],
    also: ['split by class (caller / server)', (exprs) => exprs.some((e) => promqlNames(e).grouping.includes('class'))
            || (exprs.some((e) => /class\s*=\s*"caller"/.test(e)) && exprs.some((e) => /class\s*=\s*"server"/.test(e)))],
  },
  {
    title: /latency/i, uses: ['bulwark_request_duration_seconds_bucket'],
    also: ['p50, p95 and p99 by histogram_quantile', (exprs) => ['0.5', '0.95', '0.99'].every((q) =>
      exprs.some((e) => new RegExp(`histogram_quantile\\s*\\(\\s*${q.replace('.', '\\.')}0*\\s*,`).test(e)))],
  },
  {
    title: /breaker/i, uses: ['bulwark_breaker_state'],
    also: ['per service', (exprs) => exprs.some((e) => promqlNames(e).grouping.includes('service') || /\{\{\s*service\s*\}\}/.test(e))],
  },
  { title: /cache hit/i, uses: ['bulwark_cache_events_total'] },
  { title: /queue depth/i, uses: ['bulwark_queue_depth'] },
  { title: /restart/i, uses: ['bulwark_actor_restarts_total'] },
];

/// A dashboard expression as Prometheus can run it: the variables filled
/// in (every job and instance, a one-minute rate window).
const runnable = (expr) => expr
  .replaceAll('$__rate_interval', '1m').replaceAll('${__rate_interval}', '1m')
  .replaceAll('$__interval', '15s').replaceAll('$__range', '5m')
  .replace(/\$\{?job\}?/g, 'bulwark').replace(/\$\{?instance(:\w+)?\}?/g, '.*');

// -- Prometheus --

/// An instant query to the prometheus on `port`; resolves with its data
/// (throws on an error status).
async function query(port, q) {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`,
                          { signal: AbortSignal.timeout(scaled(5000)) });
  const body = await res.json();
  if (body.status !== 'success') throw new Error(`query ${q}: ${body.errorType}: ${body.error}`);
  return body.data;
}
/// The numbers an instant vector query answers.
const values = async (port, q) => (await query(port, q)).result.map((r) => Number(r.value[1]));

/// Starts prometheus with `configFile` on a free port; resolves with the
/// port once /-/ready answers 200.
async function startPrometheus(configFile) {
  const port = await freePort();
  const child = spawn(prometheus, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(run.dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { cwd: run.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  run.pids.push(child.pid);
  run.started.prometheus = child;
  for (const s of [child.stdout, child.stderr])
    createInterface({ input: s }).on('line', (line) => {
      run.logs.push(`[prometheus] ${line}`);
      if (run.logs.length > 400) run.logs.shift();
    });
  const early = new Promise((_, reject) => {
    child.once('error', (e) => reject(new Error(`cannot start ${prometheus}: ${e.message}`)));
    child.once('exit', (code) => reject(new Error(`prometheus exited early with ${code}:\n${run.logs.slice(-10).join('\n')}`)));
  });
  early.catch(() => {});
  await Promise.race([early, until('prometheus /-/ready', async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/-/ready`, { signal: AbortSignal.timeout(scaled(1000)) })).status === 200;
    } catch {
      return false;
    }
  }, 20_000)]);
  return port;
}

/// Group and alert names of the rules file, read from its text.
function ruleFileNames() {
  const text = readFileSync(rulesFile, 'utf8');
  return {
    groups: [...text.matchAll(/^\s*-\s*name:\s*["']?([\w.-]+)/gm)].map((m) => m[1]),
    alerts: [...text.matchAll(/^\s*-\s*alert:\s*["']?([\w.-]+)/gm)].map((m) => m[1]),
  };
}

await run.main(async () => {
  await check('the PromQL reader finds metric names, not functions, keywords, labels or variables', async () => {
    const { selectors, grouping } = promqlNames(
      'histogram_quantile(0.95, sum by (le, service) (rate(a_seconds_bucket{job=~"$job", x="by(y)"}[$__rate_interval])))\n' +
      '/ on (instance) group_left(service) max without (z) (b_total offset 5m) > bool 1e-3 and {__name__="c"} or sum(d) by (w)');
    const names = selectors.map((s) => s.name);
    assert(JSON.stringify(names) === '["a_seconds_bucket","b_total","c","d"]', `names: ${names}`);
    assert(JSON.stringify(selectors[0].labels) === '["job","x"]', `labels: ${selectors[0].labels}`);
    assert(JSON.stringify(grouping) === '["le","service","instance","service","z","w"]', `grouping: ${grouping}`);
  });

  let installed = false;
  await check('promtool and prometheus are installed', async () => {
    for (const [name, path] of [['promtool', promtool], ['prometheus', prometheus]]) {
      const r = path && spawnSync(path, ['--version'], { encoding: 'utf8', timeout: scaled(10_000) });
      assert(r && r.status === 0, `${name} (${path ?? 'not on the PATH'}) does not run${r?.error ? `: ${r.error.message}` : ''}; ${installHint}`);
    }
    installed = true;
  });
  if (!installed) return;

  await check('promtool check config accepts deploy/prometheus/prometheus.yml and its rule file', async () => {
    const r = runPromtool(['check', 'config', promConfig]);
    assert(r.code === 0, `exit ${r.code}:\n${r.out}`);
    assert(/bulwark-rules\.yml/.test(r.out), `it checked the rules file too:\n${r.out}`);
  });

  await check('promtool check rules accepts deploy/prometheus/bulwark-rules.yml', async () => {
    const r = runPromtool(['check', 'rules', rulesFile]);
    assert(r.code === 0, `exit ${r.code}:\n${r.out}`);
    const n = Number(/SUCCESS: (\d+) rules found/.exec(r.out)?.[1]);
    assert(n === ruleFileNames().alerts.length, `every alert of the file is a rule: ${r.out}`);
  });

  await check('promtool test rules passes deploy/prometheus/bulwark-rules.test.yml', async () => {
    const r = runPromtool(['test', 'rules', rulesTest]);
    assert(r.code === 0 && /SUCCESS/.test(r.out), `exit ${r.code}:\n${r.out}`);
  });

  // -- a gateway with one stdio service, and some traffic --
  const cfgPath = join(run.dir, 'gateway.json');
  writeFileSync(cfgPath, JSON.stringify({
    http: { port: 0, address: '127.0.0.1' },
    health: { intervalMs: 200 },
    mcpServers: {
      fx: { command: run.bulwark, args: ['--stdio', '--no-http', '--fixtures', '--fault-tools', '--no-builtin-tools', '--log-level', 'warning'] },
    },
    services: { fx: { timeoutMs: scaled(500), cache: { ttlMs: 60_000, tools: ['test_simple_text'] } } },
  }));
  const port = await run.startBulwark(['--config', cfgPath, '--no-builtin-tools'], 'bulwark');
  for (let i = 0; i < 3; i++) {
    const r = await callTool(port, 'test_simple_text');
    assert(r.result?.content?.[0]?.text === 'This is a simple text response for testing.', `test_simple_text: ${JSON.stringify(r)}`);
  }
  const failed = await callTool(port, 'fault_throw');
  assert(failed.result?.isError === true, `fault_throw fails: ${JSON.stringify(failed)}`);
  // A service that does not answer in time: a failure on the server's side.
  const hung = await callTool(port, 'fault_hang');
  assert(hung.error?.code === -32001, `fault_hang times out: ${JSON.stringify(hung)}`);
  const unknown = await callTool(port, 'no_such_tool');
  assert(unknown.error?.code === -32602, `an unknown tool is the caller's mistake: ${JSON.stringify(unknown)}`);
  // The per-service counters follow with the next health check.
  const metricsText = await until('fx\'s calls in /metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(scaled(5000)) })).text();
    return /^bulwark_service_calls_total\{service="fx"\} [1-9]/m.test(text) ? text : null;
  }, 10_000);
  const families = exposition(metricsText);

  // -- prometheus scraping it, with the committed configuration --
  const template = readFileSync(promConfig, 'utf8');
  const substitutions = [
    [/^(\s*-\s*)localhost:8080\s*$/m, `$1127.0.0.1:${port}`],
    [/^(\s*scrape_interval:\s*)\S+/m, '$11s'],
    [/^(\s*evaluation_interval:\s*)\S+/m, '$11s'],
  ];
  let derived = template;
  for (const [pattern, replacement] of substitutions) {
    assert(pattern.test(derived), `deploy/prometheus/prometheus.yml has no line matching ${pattern} to adapt`);
    derived = derived.replace(pattern, replacement);
  }
  const derivedPath = join(run.dir, 'prometheus.yml');
  writeFileSync(derivedPath, derived);
  // rule_files are relative to the configuration's directory.
  copyFileSync(rulesFile, join(run.dir, 'bulwark-rules.yml'));
  const promPort = await startPrometheus(derivedPath);
  /// [alert, expression] of each rule prometheus loaded.
  let ruleQueries = [];

  await check('prometheus scrapes Bulwark: the bulwark target is up', async () => {
    await until('the bulwark target up', async () => {
      const body = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`, { signal: AbortSignal.timeout(scaled(5000)) })).json();
      return body.data?.activeTargets?.some((t) => t.labels?.job === 'bulwark' && t.health === 'up');
    }, 15_000);
    const up = await values(promPort, 'up{job="bulwark"}');
    assert(up.length === 1 && up[0] === 1, `up{job="bulwark"}: ${up}`);
  });

  await check('Bulwark\'s series read back through the query API: requests, errors by class, latency, per service', async () => {
    const expect = [
      ['sum(bulwark_requests_total{job="bulwark", method="tools/call"})', (v) => v >= 5],
      ['sum(bulwark_requests_total{job="bulwark", tool="fault_throw", outcome="tool_error"})', (v) => v === 1],
      ['sum(bulwark_errors_total{job="bulwark", class="server"})', (v) => v >= 1],
      ['sum(bulwark_errors_total{job="bulwark", class="caller"})', (v) => v >= 1],
      ['sum(bulwark_request_duration_seconds_count{job="bulwark", method="tools/call"})', (v) => v >= 5],
      ['histogram_quantile(0.95, sum by (le) (bulwark_request_duration_seconds_bucket{job="bulwark", method="tools/call"}))', (v) => v > 0],
      ['bulwark_service_calls_total{job="bulwark", service="fx"}', (v) => v >= 1],
      ['bulwark_breaker_state{job="bulwark", service="fx"}', (v) => v === 0],
      ['sum(bulwark_cache_events_total{job="bulwark", event="hits"})', (v) => v >= 2],
    ];
    for (const [q, ok] of expect) {
      await until(`${q} in prometheus`, async () => {
        const v = await values(promPort, q);
        return v.length === 1 && ok(v[0]);
      }, 10_000).catch(async (e) => {
        throw new Error(`${e.message}; it answers ${JSON.stringify(await values(promPort, q))}`);
      });
    }
  });

  await check('prometheus loaded every rule group and alert of bulwark-rules.yml, each evaluated healthy', async () => {
    const { groups, alerts } = ruleFileNames();
    assert(groups.length >= 1 && alerts.length >= 6, `the rules file's groups ${groups} and alerts ${alerts}`);
    const loaded = await until('every rule evaluated', async () => {
      const body = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`, { signal: AbortSignal.timeout(scaled(5000)) })).json();
      const gs = body.data?.groups ?? [];
      return gs.length && gs.every((g) => g.rules.every((r) => r.health !== 'unknown')) ? gs : null;
    }, 15_000);
    const names = loaded.map((g) => g.name);
    assert(JSON.stringify([...names].sort()) === JSON.stringify([...groups].sort()), `groups loaded ${names}, in the file ${groups}`);
    const rules = loaded.flatMap((g) => g.rules);
    const loadedAlerts = rules.map((r) => r.name);
    assert(JSON.stringify([...loadedAlerts].sort()) === JSON.stringify([...alerts].sort()), `alerts loaded ${loadedAlerts}, in the file ${alerts}`);
    for (const r of rules) {
      assert(r.type === 'alerting', `${r.name} is an alerting rule`);
      assert(r.health === 'ok', `${r.name}: health ${r.health} ${r.lastError ?? ''}`);
    }
    // Nothing is wrong with this instance: no alert fires.
    const firing = rules.flatMap((r) => r.alerts ?? []).filter((a) => a.state === 'firing');
    assert(firing.length === 0, `firing: ${JSON.stringify(firing.map((a) => a.labels))}`);
    ruleQueries = rules.map((r) => [r.name, r.query]);
  });

  await check('every metric the rules use is a family of Bulwark\'s /metrics, with labels it carries', async () => {
    assert(ruleQueries.length, 'the rules were read from prometheus');
    const problems = ruleQueries.flatMap(([name, q]) => exprProblems(families, `rule ${name}`, q));
    assert(problems.length === 0, problems.join('\n'));
  });

  const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8'));
  const panels = allPanels(dashboard);
  const targets = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr, ref: t.refId })));

  await check('the Grafana dashboard is a schema-38 dashboard on a Prometheus data source variable', async () => {
    assert(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 40, `schemaVersion ${dashboard.schemaVersion}`);
    assert(typeof dashboard.title === 'string' && dashboard.uid, 'a title and a uid');
    const vars = dashboard.templating?.list ?? [];
    const ds = vars.find((v) => v.type === 'datasource' && v.query === 'prometheus');
    const input = (dashboard.__inputs ?? []).find((v) => v.type === 'datasource' && v.pluginId === 'prometheus');
    assert(ds || input, 'a Prometheus data source variable or import input');
    const dsRef = ds ? `\${${ds.name}}` : `\${${input.name}}`;
    const ids = new Set();
    for (const p of panels) {
      assert(!ids.has(p.id), `panel ids are unique: ${p.id}`);
      ids.add(p.id);
      assert(p.gridPos && Number.isInteger(p.gridPos.w) && Number.isInteger(p.gridPos.h), `${p.title}: a gridPos`);
      if (p.type === 'row') continue;
      assert(p.targets?.length, `${p.title}: has targets`);
      for (const t of [p, ...p.targets])
        assert(t.datasource?.uid === dsRef, `${p.title}: the data source is ${dsRef}, not ${JSON.stringify(t.datasource)}`);
      for (const t of p.targets) assert(typeof t.expr === 'string' && t.expr.trim() && t.refId, `${p.title}: each target has an expr and a refId`);
    }
  });

  await check('the dashboard has the panels: request rate, errors by class, p50/p95/p99, breaker per service, cache hit rate, queue depth, restarts', async () => {
    for (const need of requiredPanels) {
      const p = panels.find((x) => x.type !== 'row' && need.title.test(x.title ?? ''));
      assert(p, `no panel titled like ${need.title}; the panels: ${panels.map((x) => x.title).join(', ')}`);
      const exprs = p.targets.map((t) => t.expr);
      const used = new Set(exprs.flatMap((e) => promqlNames(e).selectors.map((s) => s.name)));
      for (const u of need.uses) assert(used.has(u), `"${p.title}" uses ${u} (it uses ${[...used].join(', ')})`);
      if (need.also) assert(need.also[1](exprs), `"${p.title}" is ${need.also[0]}: ${exprs.join(' | ')}`);
    }
  });

  await check('every metric in the dashboard\'s targets and variables is a family of Bulwark\'s /metrics, with labels it carries', async () => {
    const problems = targets.flatMap((t) => exprProblems(families, `panel "${t.panel}" ${t.ref}`, t.expr));
    for (const v of dashboard.templating?.list ?? []) {
      if (v.type !== 'query') continue;
      const e = variableExpr(v.query ?? v.definition);
      if (e) problems.push(...exprProblems(families, `variable ${v.name}`, e));
    }
    assert(targets.length >= requiredPanels.length, `${targets.length} targets`);
    assert(problems.length === 0, problems.join('\n'));
    // Families without samples yet (nothing was refused, no fallback
    // answered) are checked by name only.
    const unsampled = new Set(targets.flatMap((t) => promqlNames(t.expr).selectors.map((x) => familyOf(families, x.name)))
      .filter((f) => f && families.get(f).samples === 0));
    if (unsampled.size) console.log(`NOTE labels not checked (no samples in this run): ${[...unsampled].join(', ')}`);
  });

  await check('every dashboard expression runs in prometheus, and the needed panels show data', async () => {
    const needed = new Set(requiredPanels.map((need) => panels.find((x) => x.type !== 'row' && need.title.test(x.title ?? ''))?.title));
    for (const t of targets) {
      const q = runnable(t.expr);
      if (!needed.has(t.panel)) {
        await query(promPort, q); // valid PromQL
        continue;
      }
      // A rate needs two scrapes inside its window.
      await until(`data for panel "${t.panel}" ${t.ref}: ${q}`, async () => (await query(promPort, q)).result.length > 0, 10_000);
    }
  });
});
