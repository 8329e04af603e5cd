// The room digest (issue 13 item 1, docs/api.md "Room digest") against a
// real roomsync-room behind a real gateway, on SQLite and on PostgreSQL.
// Replicas built with the JS client's digest module (clients/js/src/
// digest.js) follow the room through pulls and the SSE stream while
// concurrent writers insert, update and delete in two collections: every
// checkpoint that carries a digest equals the replica's own, also after a
// tombstone compaction and across a reset. A replica missing one document
// or holding one altered byte is told apart, and a full re-pull repairs
// it. Reads of one collection carry no digest. roomsyncctl shows the
// digest and `check` finds one changed by hand in the database.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';

import { ReplicaDigest, documentDigest, rawDocumentTexts, storedJsonOf } from '../../clients/js/src/digest.js';
import { binary, openRawStream, postJson, psql, startGateway, startRoomService, tempDir, uniqueRoom, waitFor, withDatabase } from './lib/roomsync.mjs';

function ctl(args) {
  const r = spawnSync(binary('ROOMSYNC_CTL_BIN'), args, { encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  return r;
}

const keyOf = (collection, id) => `${collection}\u0000${id}`;

// Applies a response body's documents (its raw text, as received) to a
// replica's digest; returns the parsed body.
async function applyBody(digest, text) {
  const body = JSON.parse(text);
  const raws = rawDocumentTexts(text);
  assert.equal(raws.length, body.documents.length, 'every document found in the raw text');
  for (let k = 0; k < raws.length; k++) {
    const d = body.documents[k];
    const stored = storedJsonOf(raws[k]);
    digest.set(keyOf(d._collection, d.id), await documentDigest(d._collection, d.id, d.timestamp, d._deleted === true, stored));
  }
  return body;
}

class Replica {
  constructor(roomUrl) {
    this.roomUrl = roomUrl;
    this.digest = new ReplicaDigest();
    this.checkpoint = null;
    this.verified = 0; // checkpoints with a digest that matched
    this.resets = 0;
  }

  // Pulls until caught up; returns the last checkpoint. Every checkpoint
  // with a digest must match, unless `expectMismatch`.
  async pull({ batchSize = 7, expectMismatch = false } = {}) {
    let seen = null;
    let mismatches = 0;
    for (;;) {
      const q = new URLSearchParams({ batchSize: String(batchSize) });
      if (this.checkpoint) q.set('checkpoint', JSON.stringify(this.checkpoint));
      const res = await fetch(`${this.roomUrl}/replicate/pull?${q}`);
      const text = await res.text();
      assert.equal(res.status, 200, text);
      if (JSON.parse(text).reset) {
        this.resets++;
        seen = new Set();
      }
      const body = await applyBody(this.digest, text);
      for (const d of body.documents) seen?.add(keyOf(d._collection, d.id));
      this.checkpoint = body.checkpoint;
      if (body.documents.length < batchSize) break;
    }
    if (seen) for (const key of [...this.digest.parts.keys()]) if (!seen.has(key)) this.digest.set(key, 0n);
    const match = this.digest.matches(this.checkpoint);
    if (match === false) mismatches++;
    if (match === true) this.verified++;
    if (!expectMismatch) assert.equal(mismatches, 0, `digest ${this.digest.hex()} vs the server's ${this.checkpoint.digest}`);
    return { checkpoint: this.checkpoint, match };
  }

  // The protocol's answer to a mismatch: start over from the beginning.
  async repull() {
    this.digest.clear();
    this.checkpoint = null;
    return this.pull();
  }
}

async function scenario(t, { store, sqlitePath }) {
  const dir = tempDir('room-digest-');
  const node = await startRoomService({ dir, store });
  const gateway = await startGateway({ roomServicePort: node.grpcPort });
  const admin = ['--target', `127.0.0.1:${node.grpcPort}`, '--grpc_plaintext'];
  const room = uniqueRoom('digest');
  const roomUrl = `${gateway.url}/v1/rooms/${room}`;
  const push = async (collection, docs) => {
    const r = await postJson(`${roomUrl}/replicate/push?collection=${collection}`, docs);
    assert.equal(r.status, 200, r.text);
    return r.body;
  };
  const hour = 3600 * 1000;
  try {
    // A follower on the stream from the beginning, checking every event.
    const follower = new ReplicaDigest();
    let followerChecked = 0;
    let followerMismatch = null;
    let chain = Promise.resolve();
    // The room is new: live from now is everything.
    const stream = await openRawStream(`${roomUrl}/replicate/pull/stream`, {
      onEvent: (e) => {
        if (!e.data || !e.data.startsWith('{"documents"')) return;
        chain = chain.then(async () => {
          const body = await applyBody(follower, e.data);
          const match = follower.matches(body.checkpoint);
          if (match === true) followerChecked++;
          if (match === false) followerMismatch ??= `${follower.hex()} vs ${body.checkpoint.digest} at ${body.checkpoint.seq}`;
        });
      },
    });

    await t.test('concurrent writers: every digest a checkpoint carries is the replica\'s', async () => {
      const old = Date.now() - 3 * hour;
      // Four writers, each its own ids plus a shared set they fight over.
      const writer = async (w) => {
        for (let round = 0; round < 25; round++) {
          const collection = round % 3 === 0 ? 'threads' : 'messages';
          const docs = [];
          for (let k = 0; k < 1 + (round % 4); k++) {
            const id = k === 0 ? `shared-${round % 5}` : `w${w}-${(round * 7 + k) % 9}`;
            if (docs.some((d) => d.id === id)) continue;
            const deleted = (round + k + w) % 5 === 0;
            docs.push(deleted
              ? { id, timestamp: old + round * 10 + w, _deleted: true }
              : { id, timestamp: old + round * 10 + w, iv: randomBytes(6).toString('base64'), ciphertext: `é${'x'.repeat(round)}\ud83d\ude00` });
          }
          await push(collection, docs);
        }
      };
      const replica = new Replica(roomUrl);
      // A replica pulling while they write: pages in the middle may carry
      // no digest (not at the head), and every one that does must match.
      const writers = Promise.all([0, 1, 2, 3].map(writer));
      while (await Promise.race([writers.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))]) === false) {
        await replica.pull();
      }
      const { match } = await replica.pull();
      assert.equal(match, true, 'caught up: the checkpoint carries the digest and it matches');
      // A fresh replica in one pass, in big pages.
      const fresh = new Replica(roomUrl);
      assert.equal((await fresh.pull({ batchSize: 1000 })).match, true);
      assert.equal(fresh.digest.hex(), replica.digest.hex());
      await waitFor(() => followerChecked > 0 && follower.hex() === replica.digest.hex(), { what: 'follower at the head' });
      assert.equal(followerMismatch, null);
      const show = JSON.parse(ctl(['rooms', 'show', room, '--output', 'json', ...admin]).stdout);
      assert.equal(show.digest, replica.digest.hex());
      const check = ctl(['check', room, ...admin]);
      assert.equal(check.status, 0, check.stdout + check.stderr);
    });

    await t.test('a read of one collection carries no digest', async () => {
      const res = await fetch(`${roomUrl}/replicate/pull?collection=messages&batchSize=1000`);
      const body = await res.json();
      assert.equal(res.status, 200);
      assert.equal(body.checkpoint.digest, undefined);
    });

    await t.test('a replica missing one document, or holding one altered byte, is told apart', async () => {
      const missing = new Replica(roomUrl);
      await missing.pull({ batchSize: 1000 });
      const [someKey] = [...missing.digest.parts.keys()];
      missing.digest.set(someKey, 0n);
      const stillAtHead = await missing.pull({ expectMismatch: true });
      assert.equal(stillAtHead.match, false, 'missing document detected');
      assert.equal((await missing.repull()).match, true, 'a full re-pull repairs it');

      const altered = new Replica(roomUrl);
      await altered.pull({ batchSize: 1000 });
      const res = await fetch(`${roomUrl}/replicate/pull?batchSize=1000`);
      const text = await res.text();
      const live = JSON.parse(text).documents.findIndex((doc) => !doc._deleted);
      const d = JSON.parse(text).documents[live];
      const stored = storedJsonOf(rawDocumentTexts(text)[live]);
      const tweaked = stored.replace(/"ciphertext":"./, (m) => `${m.slice(0, -1)}${m.at(-1) === 'y' ? 'z' : 'y'}`);
      assert.notEqual(tweaked, stored);
      altered.digest.set(keyOf(d._collection, d.id), await documentDigest(d._collection, d.id, d.timestamp, false, tweaked));
      assert.equal((await altered.pull({ expectMismatch: true })).match, false, 'altered document detected');
      assert.equal((await altered.repull()).match, true);
    });

    await t.test('compaction keeps the digest; a replica reset by it ends equal', async () => {
      await push('messages', [{ id: 'gone', timestamp: Date.now() - 3 * hour, ciphertext: 'soon deleted' }]);
      const stale = new Replica(roomUrl);
      await stale.pull();
      const before = stale.checkpoint.digest;
      // Delete it, so that the stale replica misses a tombstone that goes.
      await push('messages', [{ id: 'gone', timestamp: Date.now() - 2 * hour, _deleted: true }]);
      const r = ctl(['compact', room, '--older-than', '1h', '--output', 'json', ...admin]);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(JSON.parse(r.stdout).removed > 0, 'tombstones removed');
      const current = new Replica(roomUrl);
      const { checkpoint } = await current.pull({ batchSize: 1000 });
      assert.notEqual(checkpoint.digest, before, 'the delete changed it');
      // Compaction itself changes nothing: the head's digest is the one of
      // the live documents.
      const showAfter = JSON.parse(ctl(['rooms', 'show', room, '--output', 'json', ...admin]).stdout);
      assert.equal(showAfter.digest, checkpoint.digest);
      assert.equal(showAfter.digest, showAfter.document_digest);
      await stale.pull();
      assert.equal(stale.resets, 1, 'its checkpoint predates the compaction');
      assert.equal(stale.digest.hex(), checkpoint.digest);
    });

    await t.test('check finds a digest changed by hand', () => {
      if (sqlitePath) {
        const r = spawnSync('sqlite3', [sqlitePath, `UPDATE rooms SET digest = 12345 WHERE room = '${room}'`], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      } else {
        psql(store, `UPDATE rooms SET digest = 12345 WHERE room = '${room}'`);
      }
      const check = ctl(['check', room, ...admin]);
      assert.equal(check.status, 1, check.stdout + check.stderr);
      assert.match(check.stdout + check.stderr, /digest is 0000000000003039 but the live documents digest to [0-9a-f]{16}/);
    });

    stream.close();
    await chain;
    assert.equal(followerMismatch, null, 'no stream event disagreed');
    assert.ok(followerChecked >= 10, `stream events with a digest: ${followerChecked}`);
  } finally {
    await gateway.stop();
    await node.stop();
  }
}

test('room digest on SQLite', async (t) => {
  const dir = tempDir('room-digest-sqlite-');
  const sqlitePath = join(dir, 'room.db');
  await scenario(t, { store: `sqlite:${sqlitePath}`, sqlitePath });
});

test('room digest on PostgreSQL', async (t) => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_digest_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  await scenario(t, { store: withDatabase(adminUrl, db) });
});

// --unsafe_skip_room_digest (benchmarks only: what docs/benchmarks.md's
// same-run comparison turns off) leaves the digest at 0; without it the
// same push gives the documents' digest.
test('--unsafe_skip_room_digest: commits leave the room digest alone', async () => {
  for (const [args, skipped] of [[[], false], [['--unsafe_skip_room_digest'], true]]) {
    const room = await startRoomService({ args });
    const gateway = await startGateway({ roomServicePort: room.grpcPort });
    try {
      const name = uniqueRoom('skip-digest');
      const pushed = await postJson(`${gateway.url}/v1/rooms/${name}/replicate/push?collection=messages`,
        [{ id: 'a', timestamp: Date.now(), text: 'x' }]);
      assert.equal(pushed.status, 200, pushed.text);
      const pulled = await (await fetch(`${gateway.url}/v1/rooms/${name}/replicate/pull`)).json();
      assert.equal(pulled.documents.length, 1);
      if (skipped) {
        assert.equal(pulled.checkpoint.digest, '0000000000000000');
        assert.match(room.log.stderr, /"event":"room_digest_skipped"/);
      } else {
        assert.notEqual(pulled.checkpoint.digest, '0000000000000000');
      }
    } finally {
      await gateway.stop();
      await room.stop();
    }
  }
});
