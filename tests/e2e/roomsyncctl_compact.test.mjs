// roomsyncctl compact against a real roomsync-room (JWT auth) behind a real
// gateway, on SQLite and on PostgreSQL (issue 12): tombstones older than
// the window go, every live document and every newer tombstone stays; a
// client whose checkpoint predates the compaction is told to start over
// (pull answers from the beginning with "reset": true, the stream sends
// RESYNC) and, applying the protocol as the JS client does, ends with
// exactly the server's documents, where an incremental pull would have
// left it holding documents the server deleted. A client whose checkpoint
// is past the compaction goes on incrementally. The room shows
// compacted_through, check stays clean, export and import keep it, and
// compact needs an admin token.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { binary, doc, getJson, openRawStream, postJson, psql, startGateway, startRoomService, tempDir, uniqueRoom, waitFor, withDatabase } from './lib/roomsync.mjs';

function ctl(args) {
  const r = spawnSync(binary('ROOMSYNC_CTL_BIN'), args, { encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  return r;
}

const bearer = (token) => ({ headers: { Authorization: `Bearer ${token}` } });

// A replica as a local-first client keeps it: documents by id and the
// server's checkpoint. pull() follows PROTOCOL.md and docs/api.md: a page
// with "reset" starts the room over, and once caught up the replica drops
// what that full pass did not bring back.
class Replica {
  constructor(url, token) {
    this.url = url;
    this.token = token;
    this.docs = new Map();
    this.checkpoint = null;
    this.resets = 0;
  }

  async pull() {
    let seen = null;
    for (;;) {
      const q = new URLSearchParams({ collection: 'messages', batchSize: '3' });
      if (this.checkpoint) q.set('checkpoint', JSON.stringify(this.checkpoint));
      const r = await getJson(`${this.url}/replicate/pull?${q}`, bearer(this.token));
      assert.equal(r.status, 200, r.text);
      if (r.body.reset) {
        this.resets++;
        seen = new Set();
      }
      for (const d of r.body.documents) {
        seen?.add(d.id);
        if (d._deleted) this.docs.delete(d.id);
        else this.docs.set(d.id, d);
      }
      this.checkpoint = r.body.checkpoint;
      if (r.body.documents.length < 3) break;
    }
    if (seen) for (const id of [...this.docs.keys()]) if (!seen.has(id)) this.docs.delete(id);
  }

  ids() {
    return [...this.docs.keys()].sort();
  }
}

async function scenario(t, { store }) {
  const dir = tempDir('roomsyncctl-compact-');
  const secret = join(dir, 'hs256.secret');
  writeFileSync(secret, `${randomBytes(32).toString('hex')}\n`);
  const auth = ['--auth', 'jwt', '--jwt_hs256_secret_file', secret];
  const mint = (extra) => {
    const r = ctl(['token', 'mint', '--jwt_hs256_secret_file', secret, ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  // The gateway's shared per-room Subscribe carries its own read token.
  const upstreamFile = join(dir, 'upstream.jwt');
  writeFileSync(upstreamFile, mint(['--sub', 'gateway', '--rooms', '*', '--scope', 'read', '--ttl', '1h']));
  const node = await startRoomService({ dir, store, args: auth });
  const gateway = await startGateway({ roomServicePort: node.grpcPort, args: [...auth, '--upstream_token_file', upstreamFile] });
  const target = ['--target', `127.0.0.1:${node.grpcPort}`, '--grpc_plaintext'];
  try {
    const adminFile = join(dir, 'admin.jwt');
    const userFile = join(dir, 'user.jwt');
    const userToken = mint(['--sub', 'alice', '--rooms', '*', '--scope', 'read write']);
    writeFileSync(adminFile, mint(['--sub', 'operator', '--scope', 'admin', '--ttl', '10m']));
    writeFileSync(userFile, userToken);
    const admin = [...target, '--token_file', adminFile];

    const room = uniqueRoom('compact');
    const roomUrl = `${gateway.url}/v1/rooms/${room}`;
    const push = async (docs) => {
      const r = await postJson(`${roomUrl}/replicate/push?collection=messages`, docs, bearer(userToken));
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.conflicts, [], 'no conflicts');
    };
    const hour = 3600 * 1000;
    const old = Date.now() - 3 * hour;
    // Ten messages; the stale client syncs now and then goes offline.
    await push(Array.from({ length: 10 }, (_, i) => doc(`m${i}`, {}, old + i)));
    const stale = new Replica(roomUrl, userToken);
    await stale.pull();
    assert.equal(stale.docs.size, 10);
    const staleCheckpoint = stale.checkpoint;

    // Five of them are deleted two hours ago, one a minute ago; one more
    // message arrives. A current client follows all of it.
    await push([1, 3, 5, 7, 9].map((i) => ({ id: `m${i}`, timestamp: old + hour + i, _deleted: true })));
    await push([{ id: 'm2', timestamp: Date.now() - 60000, _deleted: true }]);
    await push([doc('m10', {}, Date.now())]);
    const current = new Replica(roomUrl, userToken);
    await current.pull();
    assert.deepEqual(current.ids(), ['m0', 'm10', 'm4', 'm6', 'm8']);

    await t.test('compact needs an admin token and a window', () => {
      let r = ctl(['compact', room, '--older-than', '1h', ...target, '--token_file', userFile]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /PERMISSION_DENIED/);
      r = ctl(['compact', room, ...admin]);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--older-than/);
      r = ctl(['compact', ...admin, '--older-than', '1h']);
      assert.equal(r.status, 2, 'ROOM or --all');
      r = ctl(['compact', 'never-used-room', '--older-than', '1h', ...admin]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /NOT_FOUND/);
    });

    let compactedThrough = 0;
    await t.test('removes the tombstones older than the window, nothing else', async () => {
      const r = ctl(['compact', room, '--older-than', '1h', '--output', 'json', ...admin]);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.removed, 5);
      assert.equal(out.rooms[0].removed, 5);
      // The highest removed seq: the tombstone of m9 (seq 10 + 5).
      compactedThrough = out.rooms[0].compacted_through;
      assert.equal(compactedThrough, 15);
      assert.equal(out.rooms[0].last_seq, 17);
      const show = JSON.parse(ctl(['rooms', 'show', room, '--output', 'json', ...admin]).stdout);
      assert.equal(show.compacted_through, 15);
      assert.equal(show.live_documents, 5);
      assert.equal(show.deleted_documents, 1, 'the recent tombstone (m2) stays');
      assert.equal(show.stored_bytes, show.document_bytes);
      const check = ctl(['check', room, ...admin]);
      assert.equal(check.status, 0, check.stdout + check.stderr);
      // Everything the server still has, from the beginning.
      const fresh = new Replica(roomUrl, userToken);
      await fresh.pull();
      assert.deepEqual(fresh.ids(), current.ids());
      assert.equal(fresh.resets, 0, 'no checkpoint: nothing to reset');
      // Again: nothing left that old.
      const again = JSON.parse(ctl(['compact', room, '--older-than', '1h', '--output', 'json', ...admin]).stdout);
      assert.equal(again.removed, 0);
      assert.equal(again.rooms[0].compacted_through, 15);
    });

    await t.test('a checkpoint older than the compaction starts over and ends with the server\'s documents', async () => {
      // What an incremental read from the stale checkpoint would now give:
      // no tombstone for m1, m3, ..., so the client would keep them.
      const q = new URLSearchParams({ checkpoint: JSON.stringify(staleCheckpoint), batchSize: '100' });
      const r = await getJson(`${roomUrl}/replicate/pull?${q}`, bearer(userToken));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.reset, true);
      assert.deepEqual(r.body.documents.map((d) => d.id).sort(), ['m0', 'm10', 'm2', 'm4', 'm6', 'm8']);
      await stale.pull();
      assert.equal(stale.resets, 1);
      assert.deepEqual(stale.ids(), current.ids(), 'exactly the server\'s live documents');
      // From the new checkpoint it is incremental again.
      await stale.pull();
      assert.equal(stale.resets, 1);
    });

    await t.test('a checkpoint past the compaction goes on incrementally', async () => {
      await push([doc('m11', {}, Date.now())]);
      const before = current.checkpoint.seq;
      assert.ok(before >= compactedThrough);
      const q = new URLSearchParams({ checkpoint: JSON.stringify(current.checkpoint) });
      const r = await getJson(`${roomUrl}/replicate/pull?${q}`, bearer(userToken));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.reset, undefined, 'no reset member unless it started over');
      assert.deepEqual(r.body.documents.map((d) => d.id), ['m11']);
    });

    await t.test('a stream from a checkpoint older than the compaction answers RESYNC', async () => {
      const events = [];
      const headers = { Authorization: `Bearer ${userToken}`, 'Last-Event-ID': JSON.stringify(staleCheckpoint) };
      const stream = await openRawStream(`${roomUrl}/replicate/pull/stream`, { headers, onEvent: (e) => events.push(e) });
      try {
        await waitFor(() => events.some((e) => e.data === '"RESYNC"'), { what: 'RESYNC', timeoutMs: 10000 });
        assert.ok(!events.some((e) => e.data && e.data.includes('"documents"')), 'no documents before RESYNC');
      } finally {
        stream.close();
      }
      // From a checkpoint past the compaction it catches up and stays live.
      const live = [];
      const ok = await openRawStream(`${roomUrl}/replicate/pull/stream`, {
        headers: { Authorization: `Bearer ${userToken}`, 'Last-Event-ID': JSON.stringify(current.checkpoint) },
        onEvent: (e) => live.push(e),
      });
      try {
        await waitFor(() => live.some((e) => e.data && e.data.includes('"m11"')), { what: 'catch-up with m11' });
        assert.ok(!live.some((e) => e.data === '"RESYNC"'));
      } finally {
        ok.close();
      }
    });

    await t.test('export and import keep compacted_through', () => {
      const file = join(dir, 'compacted.jsonl');
      let r = ctl(['export', room, '--file', file, ...admin]);
      assert.equal(r.status, 0, r.stderr);
      const header = JSON.parse(readFileSync(file, 'utf8').split('\n')[0]);
      assert.equal(header.compacted_through, 15);
      const copy = uniqueRoom('compact-copy');
      r = ctl(['import', copy, file, ...admin]);
      assert.equal(r.status, 0, r.stderr);
      const show = JSON.parse(ctl(['rooms', 'show', copy, '--output', 'json', ...admin]).stdout);
      assert.equal(show.compacted_through, 15);
      assert.equal(ctl(['check', copy, ...admin]).status, 0);
    });

    await t.test('compact --all compacts every room', () => {
      const r = ctl(['compact', '--all', '--older-than', '0s', ...admin]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /rooms compacted, \d+ tombstones removed/);
      const show = JSON.parse(ctl(['rooms', 'show', room, '--output', 'json', ...admin]).stdout);
      assert.equal(show.deleted_documents, 0, 'the recent tombstone goes with a 0s window');
      assert.equal(show.live_documents, 6);
    });
  } finally {
    await gateway.stop();
    await node.stop();
  }
}

test('roomsyncctl compact on SQLite', async (t) => {
  const dir = tempDir('roomsyncctl-compact-sqlite-');
  await scenario(t, { store: `sqlite:${join(dir, 'room.db')}` });
});

test('roomsyncctl compact on PostgreSQL', async (t) => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_compact_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  await scenario(t, { store: withDatabase(adminUrl, db) });
});
