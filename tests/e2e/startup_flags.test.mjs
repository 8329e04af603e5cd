// Environment variables are flags (ROOMSYNC_NAME = --name): one that names
// no flag is a typo and stops the start, with the name shown; the scripts'
// own variables (ROOMSYNC_TEST_*, ROOMSYNC_*_BIN, ...) are left alone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { binary, startNode, tempDir } from './lib/roomsync.mjs';

const run = (bin, env, args) =>
  spawnSync(bin, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20000 });

test('a misspelt ROOMSYNC_ variable is a start-up error naming it, for every binary', () => {
  const dir = tempDir();
  for (const name of ['ROOMSYNC_BIN', 'ROOMSYNC_ROOM_BIN', 'ROOMSYNC_GATEWAY_BIN']) {
    const bin = binary(name);
    const r = run(bin, { ROOMSYNC_STROE: `sqlite:${join(dir, 'x.db')}` }, ['--auth', 'off']);
    assert.equal(r.status, 2, `${bin}: exit status`);
    assert.match(r.stderr, /unknown environment variable ROOMSYNC_STROE/);
  }
});

test('flags from the environment still apply, and script variables are ignored', async () => {
  const dir = tempDir();
  // ROOMSYNC_MAX_PUSH_DOCUMENTS would refuse a 3-document push if applied.
  const node = await startNode({ args: [], env: { ROOMSYNC_TEST_SOMETHING: '1', ROOMSYNC_E2E_X: '1', ROOMSYNC_MAX_PUSH_DOCUMENTS: '2' }, dir });
  try {
    const docs = [1, 2, 3].map((i) => ({ id: `d${i}`, timestamp: Date.now() }));
    const res = await fetch(`${node.url}/v1/rooms/env/replicate/push?collection=messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(docs),
    });
    assert.notEqual(res.status, 200, 'ROOMSYNC_MAX_PUSH_DOCUMENTS applied');
  } finally {
    await node.stop();
  }
});
