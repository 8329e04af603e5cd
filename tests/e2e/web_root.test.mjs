// The web root: clients/js/scripts/build-web.mjs assembles one (run on a
// throwaway copy of the repository's layout, so that the test needs neither
// the real demo nor clients/js/node_modules), and both binaries serve it
// with --web or ROOMSYNC_WEB next to the API. The details of serving
// (traversal, ETags, HEAD, ...) are tests/gateway/gateway_static_test.cc.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { binary, startGateway, startNode, startRoomService, tempDir, uniqueRoom } from './lib/roomsync.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(repo, 'clients', 'js', 'scripts', 'build-web.mjs');

const INDEX = '<!doctype html><script type="importmap">{"imports":{}}</script><p>demo</p>';

function write(path, text) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

// A copy of the layout build-web.mjs reads: clients/demo, clients/js/src,
// clients/js/node_modules/tinybase/min (when `withTinybase`).
function fakeRepo({ withTinybase = true } = {}) {
  const root = tempDir('roomsync-e2e-web-');
  const copy = join(root, 'clients/js/scripts/build-web.mjs');
  mkdirSync(dirname(copy), { recursive: true });
  copyFileSync(script, copy);
  write(join(root, 'clients/demo/index.html'), INDEX);
  write(join(root, 'clients/demo/app.js'), 'import "@roomsync/client";\n');
  write(join(root, 'clients/demo/icons/chat.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  write(join(root, 'clients/js/src/index.js'), 'export * from "./room.js";\n');
  write(join(root, 'clients/js/src/room.js'), 'export const room = 1;\n');
  if (withTinybase) {
    write(join(root, 'clients/js/node_modules/tinybase/min/store/index.js'), 'export const store = 1;\n');
    write(join(root, 'clients/js/node_modules/tinybase/min/persisters/index.js'), 'export const persisters = 1;\n');
  }
  return { root, script: copy };
}

function buildWeb(scriptPath, out) {
  return spawnSync(process.execPath, [scriptPath, out], { encoding: 'utf8', timeout: 30000 });
}

test('build-web.mjs assembles the demo, the client and TinyBase where the import map expects them', () => {
  const { root, script: copy } = fakeRepo();
  try {
    const out = join(root, 'out', 'web');
    const r = buildWeb(copy, out);
    assert.equal(r.status, 0, r.stderr);
    const read = (p) => readFileSync(join(out, p), 'utf8');
    assert.equal(read('index.html'), INDEX);
    assert.equal(read('app.js'), 'import "@roomsync/client";\n');
    assert.equal(read('icons/chat.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    assert.equal(read('lib/roomsync/index.js'), 'export * from "./room.js";\n');
    assert.equal(read('lib/roomsync/room.js'), 'export const room = 1;\n');
    assert.equal(read('vendor/tinybase/store.js'), 'export const store = 1;\n');
    assert.equal(read('vendor/tinybase/persisters.js'), 'export const persisters = 1;\n');
    assert.ok(existsSync(join(out, '.roomsync-web')), 'the marker');

    // A second run starts from empty: a file it did not copy is gone.
    write(join(out, 'stale.js'), 'old');
    rmSync(join(root, 'clients/demo/app.js'));
    assert.equal(buildWeb(copy, out).status, 0);
    assert.ok(!existsSync(join(out, 'stale.js')));
    assert.ok(!existsSync(join(out, 'app.js')));
    assert.equal(read('index.html'), INDEX);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('build-web.mjs never empties a directory it did not make', () => {
  const { root, script: copy } = fakeRepo();
  try {
    const mine = join(root, 'mine');
    write(join(mine, 'precious.txt'), 'keep');
    const r = buildWeb(copy, mine);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not made by this script/);
    assert.equal(readFileSync(join(mine, 'precious.txt'), 'utf8'), 'keep');
    // An empty one is fine.
    mkdirSync(join(root, 'empty'));
    assert.equal(buildWeb(copy, join(root, 'empty')).status, 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('build-web.mjs without node_modules says to run npm ci', () => {
  const { root, script: copy } = fakeRepo({ withTinybase: false });
  try {
    const r = buildWeb(copy, join(root, 'web'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /npm ci/);
    assert.ok(!existsSync(join(root, 'web')), 'nothing made');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

// Checks the web root and the API side by side on one server.
async function assertServesBoth(url, label) {
  const index = await fetch(`${url}/`);
  assert.equal(index.status, 200, label);
  assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8', label);
  assert.match(index.headers.get('content-security-policy'), /script-src 'self' 'sha256-/, label);
  assert.equal(await index.text(), INDEX, label);
  const store = await fetch(`${url}/vendor/tinybase/store.js`);
  assert.equal(store.headers.get('content-type'), 'text/javascript; charset=utf-8', label);
  assert.equal(await store.text(), 'export const store = 1;\n', label);
  assert.equal((await fetch(`${url}/.roomsync-web`)).status, 404, label);
  const room = uniqueRoom('web');
  const push = await fetch(`${url}/v1/rooms/${room}/replicate/push?collection=messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify([{ id: 'm1', timestamp: Date.now() }]),
  });
  assert.equal(push.status, 200, `${label}: ${await push.text()}`);
  const pull = await (await fetch(`${url}/v1/rooms/${room}/replicate/pull`)).json();
  assert.deepEqual(pull.documents.map((d) => d.id), ['m1'], label);
}

test('roomsync and roomsync-gateway serve the web root with --web and ROOMSYNC_WEB', async () => {
  const { root, script: copy } = fakeRepo();
  const web = join(root, 'web');
  assert.equal(buildWeb(copy, web).status, 0);
  const started = [];
  try {
    const flag = await startNode({ args: ['--web', web] });
    started.push(flag);
    await assertServesBoth(flag.url, 'roomsync --web');

    const env = await startNode({ env: { ROOMSYNC_WEB: web } });
    started.push(env);
    await assertServesBoth(env.url, 'roomsync with ROOMSYNC_WEB');

    const room = await startRoomService();
    started.push(room);
    const gateway = await startGateway({ roomServicePort: room.grpcPort, args: ['--web', web] });
    started.push(gateway);
    await assertServesBoth(gateway.url, 'roomsync-gateway --web');

    // Without it, as before: no file is served.
    const plain = await startNode();
    started.push(plain);
    const index = await fetch(`${plain.url}/`);
    assert.equal(index.status, 404);
    assert.equal((await index.json()).error.message, 'no such endpoint');
  } finally {
    for (const server of started.reverse()) await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a --web that is not a directory stops the start, naming the flag', () => {
  const dir = tempDir();
  try {
    const missing = join(dir, 'missing');
    const runs = {
      ROOMSYNC_BIN: ['--store', `sqlite:${join(dir, 'x.db')}`],
      ROOMSYNC_GATEWAY_BIN: ['--grpc_plaintext'],
    };
    for (const [name, args] of Object.entries(runs)) {
      const r = spawnSync(binary(name), ['--http', '127.0.0.1:0', '--auth', 'off', ...args, '--web', missing],
        { encoding: 'utf8', timeout: 20000 });
      assert.notEqual(r.status, 0, `${name}: exit status`);
      assert.match(r.stderr, /--web: web root .*missing is not a readable directory/, name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
