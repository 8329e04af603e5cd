#!/usr/bin/env node
// The browser client's benchmark: the demo chat on the real roomsync binary
// in Debian's Chromium, local-first (@roomsync/client: TinyBase over
// IndexedDB, SSE) next to the "before" path (`?localFirst=false`: no local
// store, every write waits for the server, opening fetches the whole room,
// new messages by polling) in the same run, on the same server:
//
//   1. local write → render (p50/p99), in the page: submit → the row in the DOM
//   2. first render of a room with 1,000 messages after a reload (median)
//   3. sync latency between two browser profiles: write in one → rendered in
//      the other (p50/p99; the clocks are the same machine's)
//   4. API bytes over 10 reloads of a 500-message room (Chrome's own count
//      of encoded bytes received, CDP Network events, /v1/ requests only)
//   5. API requests per active user per minute: one writer (a message every
//      10 s) and one reader in a room, counted over a window
//
//   node bench/run.mjs [--quick] [--window-seconds S] [--out FILE]
//
// Prints a markdown report; --out (default build/client-bench.json at the
// repository root) gets the numbers as JSON. ROOMSYNC_BIN picks the server
// binary (default: the build tree's). Exits non-zero when anything fails to
// render: numbers are only printed for runs that worked.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchBrowser, newDevice, startServer, uniqueRoom, waitForPhase } from '../test-browser/lib/harness.mjs';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'window-seconds': { type: 'string' },
    out: { type: 'string', default: join(repo, 'build', 'client-bench.json') },
  },
});
const QUICK = args.quick;
const SETTINGS = {
  writes: { 'local-first': QUICK ? 50 : 200, fallback: QUICK ? 20 : 100 },
  firstRenderMessages: QUICK ? 300 : 1000,
  firstRenderReloads: QUICK ? 2 : 5,
  syncMessages: { 'local-first': QUICK ? 15 : 50, fallback: QUICK ? 6 : 20 },
  reloadRoomMessages: QUICK ? 200 : 500,
  reloads: QUICK ? 3 : 10,
  windowSeconds: Number(args['window-seconds'] ?? (QUICK ? 12 : 40)),
  writeEverySeconds: 10,
};
const PASSWORD = 'bench password';
const PATHS = ['local-first', 'fallback'];

const log = (text) => process.stderr.write(`bench: ${text}\n`);
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};
const median = (values) => percentile(values, 50);

// Counts what a page and its workers receive on /v1/ (Chrome's encoded
// bytes: what crossed the network, headers included once a response ends).
async function countApi(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const api = new Map(); // requestId → {bytes, finished}
  const totals = { requests: 0, bytes: 0 };
  cdp.on('Network.requestWillBeSent', (e) => {
    if (!new URL(e.request.url).pathname.startsWith('/v1/')) return;
    if (!api.has(e.requestId)) totals.requests += 1;
    api.set(e.requestId, { bytes: 0 });
  });
  cdp.on('Network.dataReceived', (e) => {
    const r = api.get(e.requestId);
    if (!r) return;
    r.bytes += e.encodedDataLength;
    totals.bytes += e.encodedDataLength;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = api.get(e.requestId);
    if (!r) return;
    // The finished total includes the headers; replace the partial sum.
    totals.bytes += e.encodedDataLength - r.bytes;
    r.bytes = e.encodedDataLength;
  });
  return totals;
}

function chatUrl(server, room, path, hash = '') {
  return `${server.url}/${path === 'fallback' ? '?localFirst=false' : ''}#room=${encodeURIComponent(room)}${hash}`;
}

// Records, from navigation start (performance.now()), when the password
// prompt showed and was answered, and when the demo's first render of the
// room ended (its 'demo:rendered' User Timing mark; the rows are rendered
// in one go, so all `count` are on screen then, which is checked). Cheap
// on purpose: a probe that walked the DOM every millisecond would slow
// down what it measures.
function installRenderClock(context, count) {
  return context.addInitScript((wanted) => {
    const marks = (window.__benchMarks = {});
    // The user's part of the wait: the prompt on screen until submitted
    // (key derivation and loading come after, and count).
    document.addEventListener('submit', (event) => {
      if (event.target?.id === 'password-form' && marks.answered === undefined) marks.answered = performance.now();
    }, true);
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (entry.name !== 'demo:rendered' || marks.rendered !== undefined) continue;
        marks.rendered = entry.startTime;
        marks.rows = document.querySelectorAll('#messages li').length;
        marks.complete = marks.rows >= wanted;
      }
    }).observe({ type: 'mark', buffered: true });
    const tick = () => {
      if (window.__roomsync?.phase === 'password' && marks.prompt === undefined) marks.prompt = performance.now();
      if (marks.rendered === undefined) setTimeout(tick, 5);
    };
    tick();
  }, count);
}

/** Opens the chat at `url` (a new document load), answering the password prompt if one shows. */
async function openAt(page, url) {
  // A goto that changes only the hash would not load the page again: go
  // through another document of the origin (not about:blank, where the
  // device's init script cannot reach localStorage).
  if (page.url() !== 'about:blank') await page.goto(new URL('/healthz', url).href);
  await page.goto(url);
  const phase = await waitForPhase(page, ['password', 'chat'], 60000);
  if (phase === 'password') {
    await page.fill('#password-input', PASSWORD);
    await page.click('#password-submit');
    await waitForPhase(page, ['chat'], 60000);
  }
}

async function openChat(context, server, room, path, hash) {
  const page = await context.newPage();
  page.on('pageerror', (error) => {
    throw new Error(`page error: ${error.message}`);
  });
  await openAt(page, chatUrl(server, room, path, hash));
  return page;
}

/** Writes `count` messages through the package (local-first page) and waits until the server has them. */
async function seed(page, count) {
  await page.evaluate(async (n) => {
    const room = window.__roomsync.room;
    const start = Date.now() - n;
    for (let i = 0; i < n; i += 1) {
      room.put('messages', `seed${String(i).padStart(5, '0')}`, { name: 'seeder', text: `seeded message ${i}`, created: start + i });
    }
    await room.flush(120000);
  }, count);
}

// ---------------------------------------------------------------- 1

async function writeToRender(browser, server) {
  const result = {};
  for (const path of PATHS) {
    const context = await newDevice(browser, { name: 'writer' });
    const room = uniqueRoom(`bench-write-${path}`);
    if (path === 'fallback') {
      // The before path cannot create a room's key: open it once local-first.
      await (await openChat(context, server, room, 'local-first')).close();
    }
    const page = await openChat(context, server, room, path);
    const samples = await page.evaluate(async (n) => {
      const list = document.getElementById('messages');
      const input = document.getElementById('text');
      const form = document.getElementById('composer');
      const shown = (text) => [...list.querySelectorAll('li .text')].some((p) => p.textContent === text);
      const out = [];
      for (let i = 0; i < n; i += 1) {
        const text = `write ${i} ${Math.random().toString(36).slice(2)}`;
        const rendered = new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`"${text}" never rendered`)), 30000);
          const observer = new MutationObserver(() => {
            if (shown(text)) {
              observer.disconnect();
              clearTimeout(timer);
              resolve(performance.now());
            }
          });
          observer.observe(list, { childList: true, subtree: true, characterData: true });
        });
        const t0 = performance.now();
        input.value = text;
        form.requestSubmit();
        out.push((await rendered) - t0);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return out;
    }, SETTINGS.writes[path]);
    result[path] = { samples: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99), max: Math.max(...samples) };
    log(`write→render ${path}: p50 ${result[path].p50.toFixed(2)} ms, p99 ${result[path].p99.toFixed(2)} ms`);
    await context.close();
  }
  return result;
}

// ---------------------------------------------------------------- 2

async function firstRender(browser, server) {
  const n = SETTINGS.firstRenderMessages;
  const room = uniqueRoom('bench-first-render');
  const context = await newDevice(browser, { name: 'reader' });
  await installRenderClock(context, n);
  const hash = `&max=${n * 2}`;
  const seeder = await openChat(context, server, room, 'local-first', hash);
  await seed(seeder, n);
  await seeder.waitForFunction((wanted) => document.querySelectorAll('#messages li').length >= wanted, n, { timeout: 60000 });
  await seeder.close();
  const result = { mobile: {} };
  // Loopback, then a mobile link emulated by Chrome for the page's requests
  // (DevTools' throttling: 75 ms latency, 12 Mbit/s down, 6 up), where the
  // before path's full fetch costs what it costs on a phone.
  const networks = [
    ['loopback', null, SETTINGS.firstRenderReloads, result],
    ['mobile', { offline: false, latency: 75, downloadThroughput: 1.5e6, uploadThroughput: 0.75e6 }, QUICK ? 1 : 3, result.mobile],
  ];
  for (const [network, conditions, reloads, into] of networks) {
    for (const path of PATHS) {
      const runs = [];
      const page = await context.newPage();
      if (conditions) {
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.emulateNetworkConditions', conditions);
      }
      // A warm-up load, not counted: the seeding tab may have closed before
      // its last rows reached IndexedDB; this one pulls them and stores all.
      await openAt(page, chatUrl(server, room, path, hash));
      await page.waitForFunction((wanted) => document.querySelectorAll('#messages li').length >= wanted, n, { timeout: 60000 });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (let i = 0; i < reloads; i += 1) {
        await openAt(page, chatUrl(server, room, path, hash));
        await page.waitForFunction(() => window.__benchMarks.rendered !== undefined, null, { timeout: 60000 });
        const marks = await page.evaluate(() => window.__benchMarks);
        if (!marks.complete) throw new Error(`${path}: the first render showed ${marks.rows} of ${n} messages`);
        const userWait = marks.prompt !== undefined ? marks.answered - marks.prompt : 0;
        runs.push(marks.rendered - userWait);
        log(`  ${network} ${path} run ${i}: ${n} rows at ${marks.rendered.toFixed(0)} ms, password on screen ${userWait.toFixed(0)} ms`);
      }
      await page.close();
      into[path] = { messages: n, reloads: runs.length, median: median(runs), min: Math.min(...runs), max: Math.max(...runs) };
      log(`first render of ${n}, ${network}, ${path}: median ${into[path].median.toFixed(0)} ms (runs ${runs.map((r) => r.toFixed(0)).join(', ')})`);
    }
  }
  // What the before path spends deriving the key from the password (it has
  // no local store to remember the key in), measured on its own.
  const probe = await context.newPage();
  await probe.goto(`${server.url}/`);
  result.fallback.keyDerivationMs = await probe.evaluate(async () => {
    const { deriveRoomKey } = await import('/lib/roomsync/crypto.js');
    const t0 = performance.now();
    await deriveRoomKey('bench password', new Uint8Array(16), 600000);
    return performance.now() - t0;
  });
  await context.close();
  return result;
}

// ---------------------------------------------------------------- 3

async function syncLatency(browser, server) {
  const result = {};
  for (const path of PATHS) {
    const room = uniqueRoom(`bench-sync-${path}`);
    const alice = await newDevice(browser, { name: 'alice' });
    const bob = await newDevice(browser, { name: 'bob' });
    const a = await openChat(alice, server, room, 'local-first');
    if (path === 'fallback') await openAt(a, chatUrl(server, room, path));
    const b = await openChat(bob, server, room, path);
    await b.evaluate(() => {
      window.__arrivals = new Map();
      const list = document.getElementById('messages');
      new MutationObserver(() => {
        const now = performance.timeOrigin + performance.now();
        for (const p of list.querySelectorAll('li .text')) if (!window.__arrivals.has(p.textContent)) window.__arrivals.set(p.textContent, now);
      }).observe(list, { childList: true, subtree: true, characterData: true });
    });
    const sent = [];
    for (let i = 0; i < SETTINGS.syncMessages[path]; i += 1) {
      const text = `sync ${path} ${i} ${Math.random().toString(36).slice(2)}`;
      const at = await a.evaluate((t) => {
        const input = document.getElementById('text');
        input.value = t;
        const at = performance.timeOrigin + performance.now();
        document.getElementById('composer').requestSubmit();
        return at;
      }, text);
      sent.push([text, at]);
      await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 100));
    }
    const texts = sent.map(([t]) => t);
    await b.waitForFunction((wanted) => wanted.every((t) => window.__arrivals.has(t)), texts, { timeout: 30000, polling: 50 });
    const arrivals = new Map(await b.evaluate(() => [...window.__arrivals]));
    const samples = sent.map(([t, at]) => arrivals.get(t) - at);
    result[path] = { samples: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99) };
    log(`sync ${path}: p50 ${result[path].p50.toFixed(1)} ms, p99 ${result[path].p99.toFixed(1)} ms`);
    await alice.close();
    await bob.close();
  }
  return result;
}

// ---------------------------------------------------------------- 4

async function reloadBytes(browser, server) {
  const n = SETTINGS.reloadRoomMessages;
  const room = uniqueRoom('bench-reloads');
  const seederContext = await newDevice(browser, { name: 'seeder' });
  const seeder = await openChat(seederContext, server, room, 'local-first');
  await seed(seeder, n);
  await seederContext.close();
  const result = {};
  for (const path of PATHS) {
    const context = await newDevice(browser, { name: 'reader' });
    await installRenderClock(context, n);
    const page = await context.newPage();
    await openAt(page, chatUrl(server, room, path));
    await page.waitForFunction(() => window.__benchMarks.rendered !== undefined, null, { timeout: 60000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const totals = await countApi(page); // from here: the reloads only
    for (let i = 0; i < SETTINGS.reloads; i += 1) {
      await page.reload();
      await waitForPhase(page, ['password', 'chat'], 60000);
      if ((await page.evaluate(() => window.__roomsync.phase)) === 'password') {
        await page.fill('#password-input', PASSWORD);
        await page.click('#password-submit');
      }
      await page.waitForFunction(() => window.__benchMarks.rendered !== undefined, null, { timeout: 60000 });
      await new Promise((resolve) => setTimeout(resolve, 500)); // the stream opens, the first poll answers
    }
    result[path] = { messages: n, reloads: SETTINGS.reloads, bytes: totals.bytes, requests: totals.requests };
    log(`${SETTINGS.reloads} reloads ${path}: ${totals.bytes} bytes in ${totals.requests} API requests`);
    await context.close();
  }
  result.savedPercent = 100 * (1 - result['local-first'].bytes / result.fallback.bytes);
  return result;
}

// ---------------------------------------------------------------- 5

async function requestsPerMinute(browser, server) {
  const windowMs = SETTINGS.windowSeconds * 1000;
  const runs = await Promise.all(
    PATHS.map(async (path) => {
      const room = uniqueRoom(`bench-requests-${path}`);
      const writer = await newDevice(browser, { name: 'writer' });
      const reader = await newDevice(browser, { name: 'reader' });
      const w = await openChat(writer, server, room, 'local-first');
      if (path === 'fallback') await openAt(w, chatUrl(server, room, path));
      const r = await openChat(reader, server, room, path);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const counts = [await countApi(w), await countApi(r)];
      const started = Date.now();
      let i = 0;
      while (Date.now() - started < windowMs) {
        await w.evaluate((t) => {
          document.getElementById('text').value = t;
          document.getElementById('composer').requestSubmit();
        }, `every ten seconds ${i++}`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(SETTINGS.writeEverySeconds * 1000, windowMs - (Date.now() - started))));
      }
      const minutes = (Date.now() - started) / 60000;
      const perUser = (counts[0].requests + counts[1].requests) / 2 / minutes;
      await writer.close();
      await reader.close();
      return [path, { users: 2, windowSeconds: SETTINGS.windowSeconds, writes: i, requestsPerUserPerMinute: perUser, writerRequests: counts[0].requests, readerRequests: counts[1].requests }];
    }),
  );
  const result = Object.fromEntries(runs);
  for (const path of PATHS) log(`requests ${path}: ${result[path].requestsPerUserPerMinute.toFixed(1)} per user per minute`);
  result.fewerPercent = 100 * (1 - result['local-first'].requestsPerUserPerMinute / result.fallback.requestsPerUserPerMinute);
  return result;
}

// ---------------------------------------------------------------- report

function report(r) {
  const f = (x, d = 1) => (x === undefined ? '—' : x.toFixed(d));
  const lf = 'local-first';
  const fb = 'fallback';
  const lines = [
    `| measure | local-first (\`@roomsync/client\`) | before (\`?localFirst=false\`) | ratio |`,
    '| --- | --- | --- | --- |',
    `| write → render, p50 / p99 (${r.write[lf].samples} / ${r.write[fb].samples} writes) | ${f(r.write[lf].p50, 2)} / ${f(r.write[lf].p99, 2)} ms | ${f(r.write[fb].p50, 2)} / ${f(r.write[fb].p99, 2)} ms | ${f(r.write[fb].p50 / r.write[lf].p50)}× faster (p50) |`,
    `| first render of ${r.firstRender[lf].messages} messages after a reload, median of ${r.firstRender[lf].reloads} | ${f(r.firstRender[lf].median, 0)} ms (from IndexedDB) | ${f(r.firstRender[fb].median, 0)} ms (fetch everything; ${f(r.firstRender[fb].keyDerivationMs, 0)} ms of it key derivation) | ${f(r.firstRender[fb].median / r.firstRender[lf].median)}× faster |`,
    `| the same on an emulated mobile link (75 ms, 12 Mbit/s), median of ${r.firstRender.mobile[lf].reloads} | ${f(r.firstRender.mobile[lf].median, 0)} ms | ${f(r.firstRender.mobile[fb].median, 0)} ms | ${f(r.firstRender.mobile[fb].median / r.firstRender.mobile[lf].median)}× faster |`,
    `| sync between two browsers, p50 / p99 (${r.sync[lf].samples} / ${r.sync[fb].samples} messages) | ${f(r.sync[lf].p50)} / ${f(r.sync[lf].p99)} ms (SSE) | ${f(r.sync[fb].p50)} / ${f(r.sync[fb].p99)} ms (2 s poll) | ${f(r.sync[fb].p50 / r.sync[lf].p50)}× faster (p50) |`,
    `| API bytes over ${r.reloads[lf].reloads} reloads of a ${r.reloads[lf].messages}-message room | ${r.reloads[lf].bytes.toLocaleString('en')} B in ${r.reloads[lf].requests} requests | ${r.reloads[fb].bytes.toLocaleString('en')} B in ${r.reloads[fb].requests} requests | ${f(r.reloads.savedPercent)}% less |`,
    `| API requests per active user per minute (writer every ${SETTINGS.writeEverySeconds} s + reader, ${r.requests[lf].windowSeconds} s window) | ${f(r.requests[lf].requestsPerUserPerMinute)} | ${f(r.requests[fb].requestsPerUserPerMinute)} | ${f(r.requests.fewerPercent)}% fewer |`,
  ];
  return lines.join('\n');
}

const server = await startServer();
const browser = await launchBrowser();
let results;
try {
  const started = Date.now();
  results = { settings: SETTINGS, quick: QUICK };
  results.write = await writeToRender(browser, server);
  results.firstRender = await firstRender(browser, server);
  results.sync = await syncLatency(browser, server);
  results.reloads = await reloadBytes(browser, server);
  results.requests = await requestsPerMinute(browser, server);
  results.seconds = (Date.now() - started) / 1000;
  results.chromium = browser.version();
  results.date = new Date().toISOString();
} finally {
  await browser.close();
  await server.stop();
}
mkdirSync(dirname(args.out), { recursive: true });
writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`${report(results)}\n\n(${results.seconds.toFixed(0)} s; Chromium ${results.chromium}; JSON in ${args.out})\n`);
