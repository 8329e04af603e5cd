// Encrypted snapshots (issue 13 item 3, docs/api.md "Snapshots") against a
// real roomsync-room behind a real gateway, on SQLite and on PostgreSQL.
// Writers push; a client uploads an encrypted snapshot (clients/js/src/
// snapshot.js) at seq S; more writes, edits and deletes follow; a new
// client downloads the newest snapshot, decrypts it, pulls only from its
// checkpoint, and its room digest equals the server's at the head and its
// documents equal a full pull's. Then the limits: the size bound (413 from
// the room service and from the gateway before the body is read), bad
// checkpoints (400), keep-newest-N, compaction on request (only the
// covered tombstones go; a reader below starts over; live documents and
// the digest stay), and auth (a read token cannot upload).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes, webcrypto } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { importRoomKey } from '../../clients/js/src/crypto.js';
import { ReplicaDigest, documentDigest, rawDocumentTexts, storedJsonOf } from '../../clients/js/src/digest.js';
import { RoomApi } from '../../clients/js/src/http_api.js';
import { collectRoomState, decryptSnapshot, encryptSnapshot, snapshotText } from '../../clients/js/src/snapshot.js';
import { binary, psql, startGateway, startNode, startRoomService, tempDir, uniqueRoom, withDatabase } from './lib/roomsync.mjs';

const keyOf = (collection, id) => `${collection}\u0000${id}`;

// What a replica holds: each live document's server text, and the digest.
class Replica {
  constructor() {
    this.live = new Map();
    this.digest = new ReplicaDigest();
    this.checkpoint = null;
    this.resets = 0;
  }

  async apply(documents, raws) {
    assert.equal(raws.length, documents.length, 'every document found in the raw text');
    for (let k = 0; k < raws.length; k++) {
      const d = documents[k];
      const key = keyOf(d._collection, d.id);
      const stored = storedJsonOf(raws[k]);
      if (d._deleted === true) this.live.delete(key);
      else this.live.set(key, stored);
      this.digest.set(key, await documentDigest(d._collection, d.id, d.timestamp, d._deleted === true, stored));
    }
  }

  // Pulls from this.checkpoint until caught up; returns the pages' count.
  async pullFrom(api) {
    let pages = 0;
    for (;;) {
      const page = await api.pull(this.checkpoint, 1000);
      pages++;
      if (page.reset) {
        this.resets++;
        this.live.clear();
        this.digest.clear();
      }
      await this.apply(page.documents, rawDocumentTexts(page.rawText));
      this.checkpoint = page.checkpoint;
      if (page.documents.length < 1000) return pages;
    }
  }
}

// Everything the server holds now, by a fresh full pull.
async function fullPull(api) {
  const replica = new Replica();
  await replica.pullFrom(api);
  return replica;
}

function countTombstones(store, sqlitePath, room, throughSeq) {
  const sql = `SELECT count(*) FROM documents WHERE room = '${room}' AND deleted = true AND seq <= ${throughSeq}`;
  if (sqlitePath) return Number(execFileSync('sqlite3', [sqlitePath, sql], { encoding: 'utf8' }).trim());
  return Number(execFileSync('psql', ['-X', '-At', '-d', store, '-c', sql], { encoding: 'utf8' }).trim());
}

function countSnapshots(store, sqlitePath, room) {
  const sql = `SELECT count(*) FROM room_snapshots WHERE room = '${room}'`;
  if (sqlitePath) return Number(execFileSync('sqlite3', [sqlitePath, sql], { encoding: 'utf8' }).trim());
  return Number(execFileSync('psql', ['-X', '-At', '-d', store, '-c', sql], { encoding: 'utf8' }).trim());
}

const ROOM_LIMIT = 256 * 1024; // the room service's --max_snapshot_bytes here
const KEPT = 2;

async function scenario(t, { store, sqlitePath }) {
  const dir = tempDir('room-snapshots-');
  const node = await startRoomService({
    dir, store, args: ['--max_snapshot_bytes', String(ROOM_LIMIT), '--snapshots_kept', String(KEPT)],
  });
  const gateway = await startGateway({ roomServicePort: node.grpcPort });
  const room = uniqueRoom('snap');
  const api = new RoomApi({ room, baseUrl: gateway.url });
  const key = await importRoomKey(webcrypto.getRandomValues(new Uint8Array(32)));
  const push = async (collection, docs) => {
    const rows = docs.map((d) => ({ newDocumentState: d }));
    // Writers race on shared ids: last-write-wins may refuse an older one.
    await api.push(collection, rows);
  };
  const now = Date.now();
  const message = (id, ts, text = 'x') => ({ id, timestamp: ts, iv: randomBytes(6).toString('base64'), ciphertext: `${text}é😀` });
  const snapshotUrl = (checkpoint, extra = '') =>
    `${gateway.url}/v1/rooms/${room}/snapshots?checkpoint=${encodeURIComponent(JSON.stringify(checkpoint))}${extra}`;
  const upload = (checkpoint, body, extra) =>
    fetch(snapshotUrl(checkpoint, extra), { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body });
  let snapshotAt = null;
  let early = null; // a replica that stopped below the snapshot
  try {
    await t.test('writers push; a client uploads an encrypted snapshot of the state it pulled', async () => {
      await Promise.all([0, 1, 2].map(async (w) => {
        for (let round = 0; round < 20; round++) {
          const collection = round % 4 === 0 ? 'threads' : 'messages';
          const docs = [message(`w${w}-${round}`, now + round), message(`shared-${round % 6}`, now + round * 10 + w)];
          if (round % 5 === 4) docs.push({ id: `w${w}-${round - 2}`, timestamp: now + round + 1, _deleted: true });
          await push(collection, docs);
          if (w === 0 && round === 3) early = await fullPull(api);
        }
      }));
      const state = await collectRoomState(api);
      assert.ok(state.checkpoint.seq > 60, `seq ${state.checkpoint.seq}`);
      const bytes = await encryptSnapshot(key, room, state.checkpoint, snapshotText(state.raws, state.checkpoint));
      const stored = await api.putSnapshot(state.checkpoint, bytes);
      assert.equal(stored.seq, state.checkpoint.seq);
      assert.equal(stored.epoch, state.checkpoint.epoch);
      assert.equal(stored.bytes, bytes.length);
      assert.ok(Math.abs(stored.created - Date.now()) < 60_000, 'created is a time in ms');
      snapshotAt = state.checkpoint;
    });

    await t.test('after more writes and deletes, a new client joins from the snapshot and the tail: digest and documents equal a full pull', async () => {
      // The tail: edits and deletes of snapshotted documents, new ones.
      await push('messages', [message('shared-1', now + 10_000, 'edited'), { id: 'w1-5', timestamp: now + 10_000, _deleted: true }]);
      await push('threads', [{ id: 'w2-0', timestamp: now + 10_000, _deleted: true }, message('late', now + 10_000)]);
      const snapshot = await api.latestSnapshot();
      assert.deepEqual(snapshot.checkpoint, { seq: snapshotAt.seq, epoch: snapshotAt.epoch });
      assert.match(snapshot.etag, /^"snap-/);
      const opened = await decryptSnapshot(key, room, snapshot.checkpoint, snapshot.bytes);
      const joiner = new Replica();
      await joiner.apply(opened.documents, opened.raws);
      joiner.checkpoint = snapshot.checkpoint;
      const pullsBefore = api.requests.pull;
      await joiner.pullFrom(api);
      assert.equal(api.requests.pull - pullsBefore, 1, 'the tail fits one page');
      assert.equal(joiner.resets, 0);
      assert.equal(typeof joiner.checkpoint.digest, 'string', 'at the head: the checkpoint carries the digest');
      assert.equal(joiner.digest.matches(joiner.checkpoint), true, `${joiner.digest.hex()} vs ${joiner.checkpoint.digest}`);
      const full = await fullPull(api);
      assert.equal(full.digest.hex(), joiner.digest.hex());
      assert.deepEqual([...joiner.live.entries()].sort(), [...full.live.entries()].sort());
      assert.ok(!joiner.live.has(keyOf('messages', 'w1-5')) && joiner.live.has(keyOf('threads', 'late')));

      // The same snapshot again with If-None-Match: 304 without the bytes.
      const again = await fetch(`${gateway.url}/v1/rooms/${room}/snapshots/latest`, { headers: { 'If-None-Match': snapshot.etag } });
      assert.equal(again.status, 304);
      assert.equal((await again.arrayBuffer()).byteLength, 0);
    });

    await t.test('a joiner whose snapshot was altered or moved is told (decryption fails)', async () => {
      const snapshot = await api.latestSnapshot();
      const altered = snapshot.bytes.slice();
      altered[altered.length - 5] ^= 1;
      await assert.rejects(decryptSnapshot(key, room, snapshot.checkpoint, altered), { name: 'TamperedError' });
      await assert.rejects(decryptSnapshot(key, room, { ...snapshot.checkpoint, seq: snapshot.checkpoint.seq + 1 }, snapshot.bytes),
        { name: 'TamperedError' });
    });

    await t.test('size bound: 413 payload_too_large from the room service, and from the gateway before the body is read', async () => {
      const over = await upload(snapshotAt, new Uint8Array(ROOM_LIMIT + 1));
      const body = await over.json();
      assert.equal(over.status, 413);
      assert.equal(body.error.code, 'payload_too_large');
      assert.match(body.error.message, /at most 262144 bytes/);
      // The gateway's own bound (4 MiB by default) is checked against the
      // declared length, before any of the body is buffered.
      const huge = await upload(snapshotAt, new Uint8Array(4 * 1024 * 1024 + 1));
      assert.equal(huge.status, 413);
      assert.equal((await huge.json()).error.code, 'payload_too_large');
      // A push keeps its own, larger limit.
      const r = await fetch(`${gateway.url}/v1/rooms/${room}/replicate/push?collection=messages`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify([{ newDocumentState: { id: 'padded', timestamp: now, pad: 'p'.repeat(5 * 1024) } }]),
      });
      assert.equal(r.status, 200);
    });

    await t.test('bad checkpoints and parameters: clear 400s', async () => {
      const head = (await fullPull(api)).checkpoint;
      const cases = [
        [{ seq: head.seq + 5, epoch: head.epoch }, '', /above the room's last seq/],
        [{ seq: 3, epoch: 'not-the-epoch' }, '', /another epoch/],
        [{ seq: 0, epoch: head.epoch }, '', /needs the checkpoint/],
        [{ seq: -1, epoch: head.epoch }, '', /seq/],
        [snapshotAt, '&compact=maybe', /compact must be/],
      ];
      for (const [checkpoint, extra, message] of cases) {
        const r = await upload(checkpoint, new Uint8Array([1, 2, 3]), extra);
        const body = await r.json();
        assert.equal(r.status, 400, JSON.stringify({ checkpoint, body }));
        assert.equal(body.error.code, 'invalid_argument');
        assert.match(body.error.message, message);
      }
      const none = await fetch(`${gateway.url}/v1/rooms/${room}/snapshots`, { method: 'POST', body: 'x' });
      assert.equal(none.status, 400);
      assert.match((await none.json()).error.message, /query parameter "checkpoint"/);
      const empty = await upload(snapshotAt, new Uint8Array(0));
      assert.equal(empty.status, 400);
      const get = await fetch(`${gateway.url}/v1/rooms/${room}/snapshots`);
      assert.equal(get.status, 405);
      const missing = await fetch(`${gateway.url}/v1/rooms/${uniqueRoom('nosnap')}/snapshots/latest`);
      assert.equal(missing.status, 404);
      assert.equal((await missing.json()).error.code, 'not_found');
    });

    await t.test(`keeps the newest ${KEPT} by seq; an older upload does not become the latest`, async () => {
      const head = (await fullPull(api)).checkpoint;
      for (const seq of [head.seq - 2, head.seq - 1, head.seq]) {
        const r = await upload({ seq, epoch: head.epoch }, new Uint8Array([seq % 256]));
        assert.equal(r.status, 201, await r.text());
      }
      assert.equal(countSnapshots(store, sqlitePath, room), KEPT);
      const r = await upload({ seq: snapshotAt.seq, epoch: head.epoch }, new Uint8Array([7]));
      assert.equal(r.status, 201);
      assert.equal(countSnapshots(store, sqlitePath, room), KEPT, 'an older one is stored and trimmed at once');
      const latest = await api.latestSnapshot();
      assert.equal(latest.checkpoint.seq, head.seq);
      assert.deepEqual([...latest.bytes], [head.seq % 256]);
    });

    await t.test('compaction on request removes only the covered tombstones; a reader below starts over', async () => {
      // A fresh snapshot at S, then a tail with one more delete above it.
      const state = await collectRoomState(api);
      const S = state.checkpoint;
      await push('messages', [{ id: 'w0-10', timestamp: now + 20_000, _deleted: true }, message('after-compaction', now + 20_000)]);
      const before = await fullPull(api);
      const covered = countTombstones(store, sqlitePath, room, S.seq);
      const total = countTombstones(store, sqlitePath, room, 1e15);
      assert.ok(covered > 0 && total > covered, `covered ${covered}, total ${total}`);
      const bytes = await encryptSnapshot(key, room, S, snapshotText(state.raws, S));
      const stored = await api.putSnapshot(S, bytes, { compact: true });
      assert.equal(stored.compacted.removed, covered);
      assert.ok(stored.compacted.through > 0 && stored.compacted.through <= S.seq);
      assert.equal(countTombstones(store, sqlitePath, room, S.seq), 0);
      assert.equal(countTombstones(store, sqlitePath, room, 1e15), total - covered, 'tombstones above S stay');
      // Live documents never go: a pull from the beginning holds them all.
      const after = await fullPull(api);
      assert.deepEqual([...after.live.entries()].sort(), [...before.live.entries()].sort());
      assert.equal(after.digest.hex(), before.digest.hex());
      assert.equal(after.digest.matches(after.checkpoint), true);
      // A replica that stopped below the compaction starts over, and ends equal.
      assert.ok(early.checkpoint.seq < stored.compacted.through);
      await early.pullFrom(api);
      assert.equal(early.resets, 1, 'its checkpoint is older than the compaction');
      assert.equal(early.digest.matches(early.checkpoint), true);
      // A joiner from the compacting snapshot continues without a reset.
      const snapshot = await api.latestSnapshot();
      const opened = await decryptSnapshot(key, room, snapshot.checkpoint, snapshot.bytes);
      const joiner = new Replica();
      await joiner.apply(opened.documents, opened.raws);
      joiner.checkpoint = snapshot.checkpoint;
      await joiner.pullFrom(api);
      assert.equal(joiner.resets, 0);
      assert.equal(joiner.digest.matches(joiner.checkpoint), true);
      assert.deepEqual([...joiner.live.entries()].sort(), [...after.live.entries()].sort());
    });
  } finally {
    await gateway.stop();
    await node.stop();
  }
}

test('encrypted snapshots on SQLite', async (t) => {
  const dir = tempDir('room-snapshots-sqlite-');
  const sqlitePath = join(dir, 'room.db');
  await scenario(t, { store: `sqlite:${sqlitePath}`, sqlitePath });
});

test('encrypted snapshots on PostgreSQL', async (t) => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_snapshots_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  await scenario(t, { store: withDatabase(adminUrl, db) });
});

test('a read token cannot upload a snapshot; it can download one', async () => {
  const dir = tempDir('room-snapshots-jwt-');
  const secret = join(dir, 'hs256.secret');
  writeFileSync(secret, `${randomBytes(32).toString('hex')}\n`);
  const mint = (...extra) => {
    const r = spawnSync(binary('ROOMSYNC_CTL_BIN'), ['token', 'mint', '--jwt_hs256_secret_file', secret, ...extra], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const node = await startNode({ dir, args: ['--auth', 'jwt', '--jwt_hs256_secret_file', secret] });
  try {
    const room = uniqueRoom('snapauth');
    const writer = new RoomApi({ room, baseUrl: node.url, token: mint('--sub', 'w', '--rooms', room, '--scope', 'read write') });
    const reader = new RoomApi({ room, baseUrl: node.url, token: mint('--sub', 'r', '--rooms', room, '--scope', 'read') });
    await writer.push('messages', [{ newDocumentState: { id: 'a', timestamp: Date.now(), ciphertext: 'c' } }]);
    const { checkpoint } = await reader.pull(null);
    await assert.rejects(reader.putSnapshot(checkpoint, new Uint8Array([1])), { status: 403 });
    await assert.rejects(new RoomApi({ room, baseUrl: node.url }).putSnapshot(checkpoint, new Uint8Array([1])), { status: 401 });
    const stored = await writer.putSnapshot(checkpoint, new Uint8Array([1, 2]));
    assert.equal(stored.seq, checkpoint.seq);
    const latest = await reader.latestSnapshot();
    assert.deepEqual([...latest.bytes], [1, 2]);
    const other = new RoomApi({ room: uniqueRoom('other'), baseUrl: node.url, token: mint('--sub', 'r', '--rooms', room, '--scope', 'read write') });
    await assert.rejects(other.latestSnapshot(), { status: 403 });
  } finally {
    await node.stop();
  }
});
