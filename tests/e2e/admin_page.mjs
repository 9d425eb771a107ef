#!/usr/bin/env node
// End-to-end test of the admin console's web page (GET /admin) in a real
// browser: a front `bulwark` with an admin token (BULWARK_ADMIN_TOKEN) whose
// one service ("fx") is a `bulwark --stdio --fixtures` child, and Debian's
// chromium driven by playwright-core.
//
//   node tests/e2e/admin_page.mjs --bulwark build/bulwark
//
// Checks: the page is served as written and is self-contained; without the
// token it shows an authorization error; a token in the address fragment is
// used and removed from the address bar; the live actor tree; killing an
// actor from the page brings it back with one more restart; degraded mode
// forced on and back to automatic; a breaker opened and closed; a held
// tool definition change shown with what differs and approved; every
// section renders (a view this Bulwark lacks shows "not available"); the
// configuration's generation, and a reload from the page; the traffic charts
// (inline SVG from /admin/api/history) after calls that fail and calls that
// succeed, overall and for the service; idle times in one unit; a
// screenshot. The browser is closed on every path and every process
// (bulwark and chromium) is killed by pid.

import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { adminRequest, assert, callTool, harness, openSession, scaled, until } from './harness.mjs';

const CHROMIUM = process.env.BULWARK_CHROMIUM ?? '/usr/bin/chromium';
const source = resolve(dirname(fileURLToPath(import.meta.url)), '../../actors/admin_page.html');

const run = harness({ scratch: 'bulwark-admin-page-', watchdogMs: 160_000 });
const { bulwark, dir, check, startBulwark } = run;
const screenshot = join(dirname(bulwark), 'admin-page.png');
const trafficShot = join(dirname(bulwark), 'admin-traffic.png');

const token = 'admin-page-token-for-the-test';
let port;
let base;
let cfgPath;
let frontConfig;

const admin = (method, path, body) => adminRequest(port, token, method, path, body);

let server; // the browser process, started by playwright-core
let browser;
const pageErrors = [];

/// A page in a fresh context (its own sessionStorage), reporting script errors.
async function openPage(url) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(scaled(10_000));
  page.on('pageerror', (e) => pageErrors.push(String(e?.stack ?? e)));
  await page.goto(url, { timeout: scaled(15_000) });
  return page;
}

const textOf = (page, sel) => page.evaluate((s) => document.querySelector(s)?.textContent.trim() ?? null, sel);
const row = (name) => `tr[data-actor="${name}"]`;

/// The actor rows as the page shows them, in document order.
const actorRows = (page) =>
  page.$$eval('tr[data-actor]', (rows) => rows.map((r, index) => ({
    index,
    name: r.dataset.actor,
    parent: r.dataset.parent ?? null,
    depth: Number(r.dataset.depth),
    state: r.querySelector('[data-field="state"]')?.textContent.trim(),
    restarts: r.querySelector('[data-field="restarts"]')?.textContent.trim(),
    kill: !!r.querySelector(`button[data-kill="${CSS.escape(r.dataset.actor)}"]`),
  })));

async function closeBrowser() {
  const bounded = (p) => Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, scaled(10_000)))]);
  if (browser) await bounded(browser.close());
  if (server) await bounded(server.close());
  browser = server = undefined;
}

await run.main(async () => {
  process.env.BULWARK_ADMIN_TOKEN = token;
  cfgPath = join(dir, 'front.json');
  frontConfig = {
    http: { port: 0 },
    mcpServers: {
      fx: { command: bulwark, args: ['--stdio', '--no-http', '--fixtures', '--no-builtin-tools', '--log-level', 'warning'] },
    },
    // Pinned with an older definition of one of fx's tools: the change is
    // held from the start, for the Tool definitions panel.
    gateway: { prefix: 'never', pinning: { mode: 'keep', file: join(dir, 'pins.json') } },
    health: { intervalMs: 100, exitAfterMs: 300, historyStepMs: 500 },
  };
  writeFileSync(join(dir, 'pins.json'), JSON.stringify({ version: 1, services: { fx: { test_simple_text: {
    hash: '0'.repeat(64), approvedAt: '2026-01-01T00:00:00.000Z',
    definition: { name: 'test_simple_text', description: 'An older description.', inputSchema: { type: 'object' } },
  } } } }));
  writeFileSync(cfgPath, JSON.stringify(frontConfig));
  port = await startBulwark(['--config', cfgPath], 'front');
  base = `http://127.0.0.1:${port}`;
  await until('ready', async () => {
    const res = await fetch(`${base}/ready`, { signal: AbortSignal.timeout(scaled(2000)) }).catch(() => null);
    return res?.status === 200;
  }, 20_000);

  assert(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: tools/install-deps.sh --tests installs Debian's chromium`);
  // Started as a server so that its pid is known and killed with the rest.
  server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'], timeout: scaled(30_000) });
  run.pids.push(server.process().pid);
  browser = await chromium.connect(server.wsEndpoint(), { timeout: scaled(20_000) });
  console.log(`chromium ${browser.version()}`);

  try {
    await check('GET /admin serves the page as written, self-contained', async () => {
      const res = await fetch(`${base}/admin`, { signal: AbortSignal.timeout(scaled(5000)) });
      assert(res.status === 200, `status ${res.status}`);
      assert(/^text\/html/.test(res.headers.get('content-type') ?? ''), `content-type ${res.headers.get('content-type')}`);
      const html = await res.text();
      const file = readFileSync(source, 'utf8');
      assert(html === file, `the served page differs from actors/admin_page.html (${html.length} vs ${file.length} bytes)`);
      // The SVG namespace is a name, never fetched.
      const urls = file.replace(/<!doctype[^>]*>/i, '').replaceAll("'http://www.w3.org/2000/svg'", '');
      assert(!/https?:\/\//i.test(urls), 'no external URL');
      assert(!/\b(src|href)\s*=\s*["']?(?!data:|#)[^"'\s>]/i.test(file), 'no external resource');
      assert(!/innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(file), 'no HTML built from strings');
      assert(!/@[A-Za-z0-9_.+-]+@/.test(file), 'nothing CMake would substitute');
    });

    await check('without the token the page shows an authorization error; typing it in shows the console', async () => {
      const page = await openPage(`${base}/admin`);
      try {
        const status = await until('an authorization error', async () => {
          const t = await textOf(page, '#status');
          return /401/.test(t ?? '') && /token/i.test(t) ? t : null;
        });
        assert(/not authorized/i.test(status), `status line: ${status}`);
        assert(await page.getAttribute('#status', 'data-kind') === 'error', 'the status line is marked as an error');
        assert((await page.$$('tr[data-actor]')).length === 0, 'no actor shown without the token');
        await page.fill('#token', 'not-the-token');
        await until('the wrong token refused', async () => /token was refused/.test((await textOf(page, '#status')) ?? ''));
        assert((await page.$$('tr[data-actor]')).length === 0, 'no actor shown with a wrong token');
        await page.fill('#token', token);
        await until('actors shown once the token is typed', async () => (await page.$$('tr[data-actor]')).length > 0);
        assert(!/401/.test(await textOf(page, '#status')), 'the error is gone');
      } finally {
        await page.context().close();
      }
    });

    const page = await openPage(`${base}/admin#token=${encodeURIComponent(token)}`);

    await check('the token in the address fragment is used, kept and removed from the address bar', async () => {
      await until('actor rows', async () => (await page.$$('tr[data-actor]')).length > 0);
      assert(!page.url().includes('token'), `address: ${page.url()}`);
      assert(await page.evaluate(() => sessionStorage.getItem('bulwark.adminToken')) === token, 'kept in sessionStorage');
      assert(await page.inputValue('#token') === token, 'shown in the token field');
      const status = await until('a refresh time', async () => {
        const t = await textOf(page, '#status');
        return /refreshed \d\d:\d\d:\d\d/.test(t ?? '') ? t : null;
      });
      assert(!/401/.test(status), `status line: ${status}`);
    });

    await check('the page shows the live actor tree', async () => {
      const api = (await admin('GET', 'actors')).body.actors;
      const rows = await until('every actor', async () => {
        const r = await actorRows(page);
        return api.every((a) => r.some((x) => x.name === a.name)) ? r : null;
      });
      const by = Object.fromEntries(rows.map((r) => [r.name, r]));
      for (const n of ['session-supervisor', 'stateless-session', 'queue', 'breaker/fx', 'connector/fx', 'limiter', 'cache', 'health'])
        assert(by[n], `a row for ${n}: ${rows.map((r) => r.name)}`);
      for (const a of api) {
        const r = by[a.name];
        assert((r.parent ?? null) === (a.parent ?? null), `${a.name}'s parent ${r.parent}, the API says ${a.parent}`);
        assert(r.state === a.state, `${a.name}: ${r.state}`);
        assert(r.restarts === String(a.restarts), `${a.name}'s restarts ${r.restarts}`);
        assert(r.kill === !!a.parent, `a kill button for ${a.name} unless it is the root`);
      }
      // Nesting: each row directly inside its parent's subtree, one level in.
      for (const r of rows) {
        if (!r.parent) {
          assert(r.depth === 0, `a root at depth 0: ${JSON.stringify(r)}`);
          continue;
        }
        const p = by[r.parent];
        assert(p, `${r.parent} (the parent of ${r.name}) has a row`);
        assert(r.depth === p.depth + 1 && r.index > p.index, `${r.name} one level under ${p.name}: ${JSON.stringify({ p, r })}`);
        assert(rows.slice(p.index + 1, r.index).every((x) => x.depth > p.depth), `${r.name} inside ${p.name}'s subtree`);
      }
      const root = by['root-supervisor'];
      assert(root && root.depth === 0 && rows[0].name === 'root-supervisor', `the root supervisor heads the tree: ${JSON.stringify(rows[0])}`);
      assert(by['stateless-session'].parent === 'session-supervisor', 'the stateless session under the session supervisor');
      assert(by['breaker/fx'].depth >= 1 && by.queue.depth >= 1, 'the breaker and the queue are supervised');
      const kinds = await page.$$eval('#kill-kind option', (o) => o.map((x) => x.value));
      assert(kinds.includes('queue') && kinds.includes('session'), `kill by kind offers the kinds: ${kinds}`);
    });

    await check('killing an actor from the page brings it back with one more restart', async () => {
      const before = Number(await textOf(page, `${row('queue')} [data-field="restarts"]`));
      const apiBefore = (await admin('GET', 'actors')).body.actors.find((a) => a.name === 'queue');
      assert(before === apiBefore.restarts, `the page shows the API's count: ${before} vs ${apiBefore.restarts}`);
      await page.click(`button[data-kill="queue"]`);
      await until('the kill reported', async () => /killed queue/i.test((await textOf(page, '#status')) ?? ''));
      const after = await until('the queue back on the page', async () => {
        const r = (await actorRows(page)).find((x) => x.name === 'queue');
        return r && r.state === 'running' && Number(r.restarts) === before + 1 ? r : null;
      }, 15_000);
      assert(after.parent === apiBefore.parent, `still under ${apiBefore.parent}: ${JSON.stringify(after)}`);
      const exit = await textOf(page, `${row('queue')} [data-field="lastExit"]`);
      assert(exit && exit !== '—', `the last exit is shown: ${exit}`);
      const api = (await admin('GET', 'actors')).body.actors.find((a) => a.name === 'queue');
      assert(api.restarts === before + 1 && api.state === 'running', `the API agrees: ${JSON.stringify(api)}`);
    });

    await check('forcing degraded mode from the page shows in the health section and the API', async () => {
      const degraded = `#health [data-field="degraded"]`;
      await page.click('button[data-degraded="on"]');
      const shown = await until('degraded on shown', async () => {
        const t = await textOf(page, degraded);
        return /^on \(forced\)/.test(t ?? '') ? t : null;
      });
      const h = (await admin('GET', 'health')).body;
      assert(h.degraded === true && h.degradedForced === true, `the API: degraded ${h.degraded}, forced ${h.degradedForced}`);
      assert(await page.getAttribute('button[data-degraded="on"]', 'aria-pressed') === 'true', 'the "on" button is pressed');
      assert(/degraded mode forced on/i.test(await textOf(page, '#status')), `status: ${await textOf(page, '#status')}`);
      await page.click('button[data-degraded="auto"]');
      await until('back to automatic on the page', async () => /^off \(automatic\)/.test((await textOf(page, degraded)) ?? ''));
      const back = (await admin('GET', 'health')).body;
      assert(!back.degraded && back.degradedForced === null, `the API: ${JSON.stringify({ d: back.degraded, f: back.degradedForced })}`);
      assert(shown, 'shown');
    });

    await check('holding a breaker open from the page shows it open and held; Auto releases it; closing it shows it closed', async () => {
      const state = `#breakers tr[data-service="fx"] [data-field="state"]`;
      assert(await textOf(page, state) === 'closed', `closed at first: ${await textOf(page, state)}`);
      await page.click('#breakers button[data-breaker="fx"][data-state="open"]');
      await until('the breaker shown open', async () => /^open held by an operator$/.test((await textOf(page, state)) ?? ''));
      const b = (await admin('GET', 'health')).body.components.breakers.fx;
      assert(b.state === 'open', `the API: ${JSON.stringify(b)}`);
      assert(b.forced === true, `held: ${JSON.stringify(b)}`);
      assert(/breaker fx held open/i.test(await textOf(page, '#status')), `status: ${await textOf(page, '#status')}`);
      const held = `#breakers tr[data-service="fx"] [data-field="state"][data-forced="true"]`;
      await until('shown held', async () => (await page.$(held)) !== null);
      await page.click('#breakers button[data-breaker="fx"][data-state="auto"]');
      await until('released on the page', async () => (await page.$(held)) === null);
      assert(/breaker fx released/i.test(await textOf(page, '#status')), `status: ${await textOf(page, '#status')}`);
      await until('released in the API', async () => (await admin('GET', 'health')).body.components.breakers.fx.forced === false);
      await page.click('#breakers button[data-breaker="fx"][data-state="closed"]');
      await until('the breaker shown closed', async () => /^closed held by an operator$/.test((await textOf(page, state)) ?? ''));
      await page.click('#breakers button[data-breaker="fx"][data-state="auto"]');
      await until('the breaker shown closed, released', async () => (await textOf(page, state)) === 'closed');
    });

    await check('every section renders; a view this Bulwark lacks shows as not available', async () => {
      for (const id of ['health', 'traffic', 'actors', 'breakers', 'queue', 'cache', 'limits', 'sessions', 'alerts', 'tools']) {
        const body = await until(`#${id} filled`, async () => {
          const t = await textOf(page, `#${id} [data-body]`);
          return t && !/Loading…/.test(t) ? t : null;
        });
        assert(body.length > 10, `#${id}: ${body}`);
      }
      assert(/critical/.test(await textOf(page, '#queue')), 'queue depth by priority');
      assert(await page.$('#cache button[data-invalidate="fx"]'), 'an Invalidate button for the service');
      assert(await page.$('#alerts tr[data-rule="breaker_open"]'), 'the alert rules');
      assert(/free/.test(await textOf(page, '#limits')), 'the limiter tiers');
      const sessions = await admin('GET', 'sessions');
      const text = await textOf(page, '#sessions');
      if (sessions.status === 404) assert(/not available/i.test(text), `sessions: ${text}`);
      else assert(text.includes(`${sessions.body.count} sessions`), `sessions: ${text}`);
      const status = await textOf(page, '#status');
      assert(/^Live · refreshed/.test(status), `a missing view is not an error: ${status}`);
    });

    await check('the traffic charts draw requests, errors and latency from the history, overall and per service', async () => {
      // Failures first (the breaker held open refuses them), then answers.
      assert((await admin('POST', 'breakers', { service: 'fx', state: 'open' })).status === 200, 'breaker held open');
      for (let i = 0; i < 6; i++) {
        const r = await callTool(port, 'test_simple_text');
        assert(r.error, `refused while open: ${JSON.stringify(r)}`);
      }
      assert((await admin('POST', 'breakers', { service: 'fx', state: 'auto' })).status === 200, 'breaker released');
      for (let i = 0; i < 30; i++) {
        const r = await callTool(port, 'test_simple_text');
        assert(r.result, `answered: ${JSON.stringify(r)}`);
      }
      // The server's history: points a step apart, with those calls in them.
      const max = (xs) => Math.max(0, ...xs.filter((x) => typeof x === 'number'));
      const history = await until('the calls in the history', async () => {
        const r = await admin('GET', 'history');
        assert(r.status === 200, `history: ${r.status}`);
        const fx = r.body.services?.fx;
        return fx && max(fx.requestsPerSecond) > 0 && max(fx.errorsPerSecond) > 0 && max(r.body.overall.errorsPerSecond) > 0
          && r.body.overall.p50Seconds.some((x) => typeof x === 'number') ? r.body : null;
      });
      assert(history.stepSeconds === 0.5 && history.spanSeconds === 900, `step and span: ${history.stepSeconds} ${history.spanSeconds}`);
      const t = history.overall.t;
      assert(t.length >= 2 && t.every((x, i) => i === 0 || x > t[i - 1]), `times ascend: ${t}`);
      for (const k of ['requestsPerSecond', 'errorsPerSecond', 'p50Seconds', 'p99Seconds'])
        assert(history.overall[k].length === t.length, `${k}: one value per time`);
      const p = history.overall.p50Seconds.map((x, i) => [x, history.overall.p99Seconds[i]]).filter(([a]) => a !== null);
      assert(p.every(([a, b]) => a > 0 && b >= a), `p99 >= p50 > 0: ${JSON.stringify(p)}`);
      // The page draws them: lines above the zero line, for the service too.
      const lineTops = (chart, series) => page.evaluate(([c, s]) => {
        const path = document.querySelector(`[data-chart="${c}"] path[data-series="${s}"]`);
        if (!path) return null;
        const ys = [...path.getAttribute('d').matchAll(/[ML][\d.]+ ([\d.]+)/g)].map((m) => Number(m[1]));
        return { points: Number(path.dataset.points), top: Math.min(...ys), svg: path.closest('svg').namespaceURI };
      }, [chart, series]);
      // Above the zero line (y 106 of 120): a positive value sits above it.
      // p50 is only required drawn: beside a p99 hundreds of times larger
      // it may round onto the line (the API check above has it > 0).
      const zeroLine = 106;
      for (const [chart, series, above] of [['overall:rate', 'requests', true], ['overall:rate', 'errors', true],
        ['overall:latency', 'p50', false], ['overall:latency', 'p99', true], ['service:fx:rate', 'requests', true],
        ['service:fx:rate', 'errors', true], ['service:fx:latency', 'p99', true]]) {
        const line = await until(`${chart} ${series} drawn${above ? ' above zero' : ''}`, async () => {
          const l = await lineTops(chart, series);
          return l && l.points >= 1 && (!above || l.top < zeroLine) ? l : null;
        });
        assert(line.svg === 'http://www.w3.org/2000/svg', `${chart} is inline SVG`);
      }
      const legend = await textOf(page, '[data-chart="overall:rate"] .title');
      assert(/requests [\d.,]+\/s/.test(legend) && /errors [\d.,]+\/s/.test(legend), `legend: ${legend}`);
      assert(/a point every 0\.5 s/.test(await textOf(page, '#traffic [data-meta]')), 'the step is shown');
      await (await page.$('#traffic')).screenshot({ path: trafficShot, timeout: scaled(20_000) });
      console.log(`charts: ${trafficShot}`);
    });

    await check('idle times in the sessions view are in seconds, one decimal, whatever their size', async () => {
      // A session just opened has been idle for less than a second when the
      // page first shows it; one idle for minutes reads the same way.
      const sid = await openSession(port, {});
      const idle = await until('the session shown', async () =>
        page.evaluate((id) => document.querySelector(`tr[data-session="${id}"] td:last-child`)?.textContent.trim() ?? null, sid));
      assert(/^\d[\d,]*\.\d s$/.test(idle), `idle: ${idle}`);
      const header = await page.$$eval('#sessions th', (cells) => cells.map((c) => c.textContent.trim()));
      assert(header[header.length - 1] === 'Idle seconds' || /idle/i.test(header[header.length - 1]), `header: ${header}`);
    });

    await check('a held tool definition change is shown with what differs, and approved from the page', async () => {
      const entry = '#tools [data-held="fx:test_simple_text"]';
      await until('the held change shown', async () => (await page.$(entry)) !== null);
      assert(/pinning keep · 1 held/.test(await textOf(page, '#tools [data-meta]')), `meta: ${await textOf(page, '#tools [data-meta]')}`);
      const before = await textOf(page, `${entry} tr[data-field="description"] pre.before`);
      const after = await textOf(page, `${entry} tr[data-field="description"] pre.after`);
      assert(before === 'An older description.' && after === 'Returns a simple text response.', `diff: ${before} -> ${after}`);
      await page.click(`${entry} button[data-approve="fx"][data-tool="test_simple_text"]`);
      await until('approval said', async () => /Approved the new definition of test_simple_text of fx/.test(await textOf(page, '#status')));
      await until('nothing held in the API', async () => (await admin('GET', 'tools')).body?.held?.length === 0);
      await until('nothing held on the page', async () => /No held change/.test((await textOf(page, '#tools')) ?? ''));
      const book = JSON.parse(readFileSync(join(dir, 'pins.json'), 'utf8'));
      assert(book.services.fx.test_simple_text.definition.description === 'Returns a simple text response.', 'the pin file holds the approved definition');
    });

    await check('the configuration section shows the generation; Reload applies a changed file', async () => {
      const gen = '#config [data-field="generation"]';
      await until('the configuration shown', async () => (await textOf(page, gen)) === '1');
      assert((await textOf(page, '#config [data-field="source"]')) === cfgPath, 'the file it came from');
      await page.click('#reload-button');
      await until('unchanged said', async () => /Configuration unchanged \(generation 1\)/.test(await textOf(page, '#status')));
      writeFileSync(cfgPath, JSON.stringify({ ...frontConfig, health: { ...frontConfig.health, enterChecks: 2 } }));
      await page.click('#reload-button');
      await until('applied said', async () => /generation 2 applied: \$\.health\.enterChecks/.test(await textOf(page, '#status')));
      await until('generation 2 shown', async () => (await textOf(page, gen)) === '2');
      assert(/"enterChecks": 2/.test(await textOf(page, '#config [data-field="document"]')), 'the file as reloaded');
    });

    await check('pause stops the refreshes and resume restarts them', async () => {
      await page.click('#pause');
      const paused = await until('paused', async () => {
        const t = await textOf(page, '#status');
        return /^Paused/.test(t ?? '') ? t : null;
      });
      const uptime = () => textOf(page, `${row('health')} [data-field="uptime"]`);
      await new Promise((r) => setTimeout(r, 500)); // a refresh under way when paused lands first
      const frozen = await uptime();
      await new Promise((r) => setTimeout(r, 1500));
      assert(await uptime() === frozen, 'no refresh while paused');
      await page.click('#pause');
      await until('refreshing again', async () => (await uptime()) !== frozen);
      assert(paused, 'paused');
    });

    await check('a screenshot of the page is written', async () => {
      await page.screenshot({ path: screenshot, fullPage: true, timeout: scaled(20_000) });
      const png = readFileSync(screenshot);
      assert(png.subarray(1, 4).toString() === 'PNG', 'a PNG file');
      assert(statSync(screenshot).size > 30_000, `a real picture: ${statSync(screenshot).size} bytes`);
      console.log(`screenshot: ${screenshot}`);
    });

    await check('no script error in the page', async () => {
      assert(pageErrors.length === 0, pageErrors.join('\n'));
    });
  } finally {
    await closeBrowser();
  }
});
