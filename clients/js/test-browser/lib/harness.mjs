// Shared harness of the browser end-to-end tests: the real roomsync binary
// serving the demo (`--web`, a web root built by scripts/build-web.mjs into
// a temporary directory) on a free port, Debian's Chromium driven by
// playwright-core (never a downloaded browser), and helpers that read the
// demo's state through its test hook (window.__roomsync) and its DOM.
//
// ROOMSYNC_BIN: the roomsync binary (ctest sets it; default: the build tree's).
// ROOMSYNC_TEST_CHROMIUM: the browser (default /usr/bin/chromium).
// ROOMSYNC_TEST_BREAK=name[,name]: applies the named breaks below to the
//   copied web root, to check that a test fails without its feature.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../../../', import.meta.url));
const jsDir = join(repo, 'clients', 'js');
process.env.ROOMSYNC_BIN ||= join(repo, 'build', 'services', 'node', 'roomsync');
export const CHROMIUM = process.env.ROOMSYNC_TEST_CHROMIUM || '/usr/bin/chromium';

// Fail, never skip, when something the tests need is missing.
if (!existsSync(process.env.ROOMSYNC_BIN)) {
  throw new Error(`roomsync binary ${process.env.ROOMSYNC_BIN} does not exist: build it ` +
    '(cmake --build build --target roomsync) or set ROOMSYNC_BIN');
}
if (!existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} does not exist: install Debian's chromium (apt-get install chromium; ` +
    'scripts/install-deps.sh does) or set ROOMSYNC_TEST_CHROMIUM');
}
let chromium;
try {
  ({ chromium } = createRequire(join(jsDir, 'package.json'))('playwright-core'));
} catch {
  throw new Error(`playwright-core is not installed in ${jsDir}: run (cd clients/js && npm ci --no-audit --no-fund)`);
}

const e2e = await import(new URL('../../../../tests/e2e/lib/roomsync.mjs', import.meta.url));
export const { tempDir, uniqueRoom, withDatabase, psql } = e2e;

// ---------------------------------------------------------------- breaks

// Each names one feature and removes it from the served copy of the
// package or the demo; every test lists the breaks it must fail under.
export const BREAKS = {
  // tabs: follower tabs' writes never reach the leader tab
  'no-broadcast': ['lib/roomsync/tabs.js', "this.channel.postMessage({ t: 'changes', changes });", ''],
  // replication: live changes from the stream are ignored
  'no-stream': ['lib/roomsync/room.js', 'if (generation !== this.streamGeneration) return;\n      this.#enqueue', 'return;\n      this.#enqueue'],
  // a local write shows as synced at once (no pending mark)
  'no-pending-mark': ['lib/roomsync/room.js', "{ ...fields, _ts: ts, _state: 'pending',", "{ ...fields, _ts: ts, _state: 'synced',"],
  // nothing is loaded from IndexedDB on open
  'no-persisted-load': ['lib/roomsync/persister.js', 'const records = await db.readRoom(room);', 'const records = [];'],
  // the demo's app-shell service worker is not registered
  'no-service-worker': ['sw-register.js', "if ('serviceWorker' in navigator && window.isSecureContext) {", 'if (false) {'],
  // no pruning: every message is kept locally
  'no-prune': ['lib/roomsync/room.js', "if (collection !== 'messages') return;\n    const ids", "return;\n    const ids"],
  // no scroll-back
  'no-load-older': ['lib/roomsync/room.js', "async loadOlder(collection = 'messages', limit = 50) {", "async loadOlder(collection = 'messages', limit = 50) {\n    return 0;"],
  // a waiting tab never takes over the leader's lock
  'no-handover': ['lib/roomsync/tabs.js', '{ signal: this.abort.signal }, () => {', '{ ifAvailable: true }, (lock) => {\n        if (!lock) return undefined;'],
  // the stream has no watchdog: a silent dead stream stays open forever
  'no-watchdog': ['lib/roomsync/sse_stream.js', 'if (!(this.staleMs > 0)) return;', 'return;'],
  // conflicts are not reported to the app
  'no-conflict-event': ['lib/roomsync/room.js', "this.#emit('conflict', {", "void ({"],
  // the server's answer does not replace a local write (no resolution)
  'no-conflict-resolution': [
    ['lib/roomsync/room.js', 'if (pending.ts !== undefined && pending.ts > doc.timestamp && !pending.failed) return;', 'if (pending.ts !== undefined) return;'],
    ['lib/roomsync/room.js', 'if (server) merges.push(', 'if (false) merges.push('],
  ],
  // documents go to the server with their plaintext next to the ciphertext
  'no-e2ee': ['lib/roomsync/crypto.js', 'doc.kv = KEY_VERSION;', 'doc.kv = KEY_VERSION;\n  doc.debug = body;'],
  // IndexedDB records hold the plaintext instead of the sealed bytes
  'no-seal': ['lib/roomsync/crypto.js', 'return { iv, data };', 'return { iv, data: utf8(JSON.stringify(value)).buffer };'],
};

function applyBreaks(webRoot, names) {
  for (const name of names) {
    const edits = BREAKS[name];
    assert.ok(edits, `unknown ROOMSYNC_TEST_BREAK ${name} (known: ${Object.keys(BREAKS).join(', ')})`);
    for (const [file, from, to] of Array.isArray(edits[0]) ? edits : [edits]) {
      const path = join(webRoot, file);
      const text = readFileSync(path, 'utf8');
      assert.ok(text.includes(from), `break ${name}: ${file} no longer contains ${JSON.stringify(from)}`);
      writeFileSync(path, text.replace(from, to));
    }
    process.stderr.write(`harness: break ${name} applied\n`);
  }
}

// ---------------------------------------------------------------- server

/** Builds the demo's web root into a temporary directory (scripts/build-web.mjs). */
export function buildWebRoot({ breaks = [] } = {}) {
  const dir = tempDir('roomsync-browser-web-');
  const out = join(dir, 'web');
  execFileSync(process.execPath, [join(jsDir, 'scripts', 'build-web.mjs'), out], { stdio: ['ignore', 'ignore', 'inherit'] });
  const envBreaks = (process.env.ROOMSYNC_TEST_BREAK ?? '').split(',').filter(Boolean);
  applyBreaks(out, [...breaks, ...envBreaks]);
  return { dir, webRoot: out };
}

/**
 * roomsync on a free port serving the demo: `--store sqlite:<tmp>/roomsync.db`
 * (or `store`, e.g. a PostgreSQL URL), `--auth off`, `--web <tmp>/web`,
 * meta=server-wins. Returns startNode's handle ({url, storePath, stop, log})
 * and webRoot; halt() stops it and keeps its files, stop() removes them.
 */
export async function startServer({ store, args = [] } = {}) {
  const { dir, webRoot } = buildWebRoot();
  const extra = ['--web', webRoot, '--collection_policies', 'meta=server-wins', ...args];
  if (store) extra.push('--store', store); // the last --store wins
  const node = await e2e.startNode({ dir, args: extra });
  const stop = node.stop;
  return {
    ...node,
    webRoot,
    // Stops the process and keeps its files (the store) for inspection.
    async halt() {
      await stop();
    },
    async stop() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------- browser

/** The suite's server and browser, set by useServerAndBrowser's hooks (live bindings). */
export let server;
export let browser;

/**
 * Registers the hooks every browser test file needs: one roomsync serving
 * the demo (startServer(options)) and one Chromium for the file's tests,
 * stopped after them. Read them as `server` and `browser` (imported).
 */
export function useServerAndBrowser(options) {
  before(async () => {
    server = await startServer(options);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

const NAME_KEY = 'roomsync.demo.name';

/** A browser profile of its own (its own IndexedDB, locks, channels): one "device". */
export async function newDevice(browser, { name, ...options } = {}) {
  const context = await browser.newContext(options);
  if (name) await context.addInitScript(([key, value]) => localStorage.setItem(key, value), [NAME_KEY, name]);
  return context;
}

/**
 * Opens the demo in a new tab of `context` at `#room=room[&max=N][&stale=MS]`; answers
 * the password prompt if there is one. Resolves to the page once the chat
 * shows. `page.errors` collects uncaught page errors.
 */
export async function openChat(context, server, { room, password = 'correct horse', max, stale, query = '', expectPrompt } = {}) {
  const page = await context.newPage();
  watch(page);
  let hash = `room=${encodeURIComponent(room)}`;
  if (max) hash += `&max=${max}`;
  if (stale) hash += `&stale=${stale}`;
  await page.goto(`${server.url}/${query}#${hash}`);
  const phase = await waitForPhase(page, ['password', 'chat']);
  if (expectPrompt !== undefined) assert.equal(phase === 'password', expectPrompt, `password prompt expected: ${expectPrompt}`);
  if (phase === 'password') {
    await page.fill('#password-input', password);
    await page.click('#password-submit');
    await waitForPhase(page, ['chat']);
  }
  return page;
}

export function watch(page) {
  page.errors ??= [];
  page.on('pageerror', (error) => page.errors.push(error.message));
  return page;
}

export async function waitForPhase(page, phases, timeout = 20000) {
  const handle = await page.waitForFunction(
    (wanted) => {
      const phase = window.__roomsync?.phase;
      return wanted.includes(phase) ? phase : phase === 'error' ? `error: ${window.__roomsync.errors.join('; ')}` : false;
    },
    phases,
    { timeout, polling: 20 },
  );
  const phase = await handle.jsonValue();
  assert.ok(phases.includes(phase), `demo phase ${phase}, expected one of ${phases}`);
  return phase;
}

/** Types `text` into the composer and sends it; resolves to the new message's id. */
export async function send(page, text) {
  const before = new Set(await domIds(page));
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  const handle = await page.waitForFunction(
    ([known, wanted]) => {
      for (const li of document.querySelectorAll('#messages li')) {
        if (!known.includes(li.dataset.id) && li.querySelector('.text')?.textContent === wanted) return li.dataset.id;
      }
      return false;
    },
    [[...before], text],
    { polling: 20 },
  );
  return handle.jsonValue();
}

/** Edits own message `id` through the UI (edit, type, save). */
export async function edit(page, id, text) {
  await page.click(`#messages li[data-id="${id}"] button.edit`);
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** The rendered list: [{id, text, state, name}] in order. */
export function domMessages(page) {
  return page.$$eval('#messages li', (items) =>
    items.map((li) => ({
      id: li.dataset.id,
      text: li.querySelector('.text')?.textContent,
      state: li.dataset.state,
      name: li.querySelector('.name')?.textContent,
    })),
  );
}

export async function domIds(page) {
  return (await domMessages(page)).map((m) => m.id);
}

/** The room's messages table, read from the store through the test hook. */
export function storeMessages(page) {
  return page.evaluate(() => window.__roomsync.room.store.getTable('messages'));
}

export function roomStatus(page) {
  return page.evaluate(() => ({ ...window.__roomsync.room.status }));
}

/**
 * Waits until the page shows exactly `texts` (any order; each once), all
 * `state` (default synced) in the DOM, and the store agrees.
 */
export async function waitForTexts(page, texts, { state = 'synced', timeout = 20000 } = {}) {
  const wanted = [...texts].sort();
  try {
    await page.waitForFunction(
      ([wantedTexts, wantedState]) => {
        const items = [...document.querySelectorAll('#messages li')];
        const shown = items.map((li) => li.querySelector('.text')?.textContent).sort();
        if (JSON.stringify(shown) !== JSON.stringify(wantedTexts)) return false;
        if (wantedState && items.some((li) => li.dataset.state !== wantedState)) return false;
        const rows = Object.values(window.__roomsync.room.store.getTable('messages'));
        return JSON.stringify(rows.map((r) => r.text).sort()) === JSON.stringify(wantedTexts);
      },
      [wanted, state],
      { timeout, polling: 25 },
    );
  } catch (error) {
    const shown = await domMessages(page).catch(() => []);
    throw new Error(`waiting for ${JSON.stringify(wanted)} (${state}): the page shows ${JSON.stringify(shown)}\n${error.message}`);
  }
}

/** Asserts each id appears once in the DOM and once in the store, and they agree. */
export async function assertNoDuplicates(page) {
  const ids = await domIds(page);
  assert.equal(new Set(ids).size, ids.length, `an id shows twice in the DOM: ${ids}`);
  const rows = await storeMessages(page);
  assert.deepEqual([...ids].sort(), Object.keys(rows).sort(), 'the DOM shows exactly the store\'s rows');
}

export function assertNoPageErrors(...pages) {
  for (const page of pages) assert.deepEqual(page.errors ?? [], [], 'uncaught errors in the page');
}

/** A word nobody else typed: what the plaintext checks look for. */
let wordCounter = 0;
export function word(prefix = 'word') {
  wordCounter += 1;
  return `${prefix}${process.pid}x${wordCounter}${Math.random().toString(36).slice(2, 8)}`;
}

/** Every record of IndexedDB 'roomsync'/'records' as {key, iv, data (latin1 text), fields}. */
export function indexedDbRecords(page) {
  return page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('roomsync');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const tx = db.transaction('records', 'readonly');
    const store = tx.objectStore('records');
    const get = (req) => new Promise((resolve, reject) => {
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const [keys, values] = await Promise.all([get(store.getAllKeys()), get(store.getAll())]);
    db.close();
    const latin1 = (x) => {
      const bytes = x instanceof ArrayBuffer ? new Uint8Array(x) : new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
      let text = '';
      for (const b of bytes) text += String.fromCharCode(b);
      return text;
    };
    return keys.map((key, i) => {
      const v = values[i];
      const isBytes = (x) => x instanceof ArrayBuffer || ArrayBuffer.isView(x);
      return {
        key,
        fields: Object.keys(v ?? {}).sort(),
        ivIsBytes: isBytes(v?.iv),
        dataIsBytes: isBytes(v?.data),
        iv: isBytes(v?.iv) ? latin1(v.iv) : JSON.stringify(v?.iv),
        data: isBytes(v?.data) ? latin1(v.data) : JSON.stringify(v?.data),
      };
    });
  });
}
