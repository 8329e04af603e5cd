// The encrypted snapshot format (src/snapshot.js): what a server holding
// the bytes can and cannot do with them, and that the plaintext keeps each
// document's server text so that the digest can be recomputed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TamperedError, importRoomKey } from '../src/crypto.js';
import { ReplicaDigest, documentDigest, storedJsonOf } from '../src/digest.js';
import { collectRoomState, decryptSnapshot, encryptSnapshot, snapshotText } from '../src/snapshot.js';

const key = () => importRoomKey(globalThis.crypto.getRandomValues(new Uint8Array(32)));
const at = { seq: 7, epoch: 'e1' };
// Escapes and non-ASCII as a server may send them: re-encoding a parsed
// object would not give these bytes back.
const raws = [
  '{"_collection":"messages","id":"a","timestamp":1,"iv":"x","ciphertext":"\\u00e9\\/"}',
  '{"_collection":"threads","id":"é","timestamp":2,"ciphertext":"😀"}',
];

test('a snapshot opens under its room key, room and checkpoint, giving back every server text byte for byte', async () => {
  const k = await key();
  const bytes = await encryptSnapshot(k, 'room1', at, snapshotText(raws, at));
  assert.equal(bytes[0], 1);
  assert.ok(!new TextDecoder().decode(bytes).includes('ciphertext'), 'no plaintext in the bytes');
  const opened = await decryptSnapshot(k, 'room1', at, bytes);
  assert.deepEqual(opened.raws, raws);
  assert.equal(opened.documents[1].id, 'é');
});

test('a server cannot move a snapshot to another room or checkpoint, alter it, or forge one', async () => {
  const k = await key();
  const bytes = await encryptSnapshot(k, 'room1', at, snapshotText(raws, at));
  await assert.rejects(decryptSnapshot(k, 'room2', at, bytes), TamperedError);
  await assert.rejects(decryptSnapshot(k, 'room1', { seq: 8, epoch: 'e1' }, bytes), TamperedError);
  await assert.rejects(decryptSnapshot(k, 'room1', { seq: 7, epoch: 'e2' }, bytes), TamperedError);
  const flipped = bytes.slice();
  flipped[flipped.length - 1] ^= 1;
  await assert.rejects(decryptSnapshot(k, 'room1', at, flipped), TamperedError);
  await assert.rejects(decryptSnapshot(await key(), 'room1', at, bytes), TamperedError, 'another key');
  await assert.rejects(decryptSnapshot(k, 'room1', at, new Uint8Array(10)), TamperedError, 'too short');
  // Sealed correctly but claiming another position inside: refused too.
  const inner = await encryptSnapshot(k, 'room1', at, snapshotText(raws, { seq: 6, epoch: 'e1' }));
  await assert.rejects(decryptSnapshot(k, 'room1', at, inner), TamperedError);
});

// A pull API over fixed pages, as RoomApi answers them (rawText included).
function fakeApi(pages) {
  let next = 0;
  return {
    async pull() {
      const body = pages[next++];
      const text = JSON.stringify(body);
      return Object.defineProperty(JSON.parse(text), 'rawText', { value: text });
    },
  };
}

test('collectRoomState keeps each key\'s newest live state, drops tombstones, restarts on reset and checks the digest', async () => {
  const doc = (c, id, ts, extra = {}) => ({ _collection: c, id, timestamp: ts, ...extra });
  const a2 = doc('messages', 'a', 2, { ciphertext: 'two' });
  const c1 = doc('messages', 'c', 1, { ciphertext: 'c' });
  const digest = new ReplicaDigest();
  for (const d of [a2, c1]) {
    digest.set(`${d._collection}\u0000${d.id}`, await documentDigest(d._collection, d.id, d.timestamp, false, storedJsonOf(JSON.stringify(d))));
  }
  const pages = [
    { documents: [doc('messages', 'gone', 1, { ciphertext: 'x' }), doc('messages', 'a', 1, { ciphertext: 'one' })], checkpoint: { seq: 2, epoch: 'e' } },
    // The server started over (a compaction): what came before is forgotten.
    { documents: [doc('messages', 'b', 1, { ciphertext: 'b' }), doc('messages', 'a', 1, { ciphertext: 'one' })], checkpoint: { seq: 4, epoch: 'e' }, reset: true },
    { documents: [doc('messages', 'b', 3, { _deleted: true }), a2], checkpoint: { seq: 8, epoch: 'e' } },
    { documents: [c1], checkpoint: { seq: 9, epoch: 'e', digest: digest.hex() } },
  ];
  const state = await collectRoomState(fakeApi(pages), { batchSize: 2 });
  assert.deepEqual(state.checkpoint, { seq: 9, epoch: 'e' });
  assert.deepEqual(state.raws.map((r) => JSON.parse(r).id), ['a', 'c']);
  assert.equal(state.digest, digest.hex());

  pages[3].checkpoint.digest = '0000000000000001';
  await assert.rejects(collectRoomState(fakeApi(pages), { batchSize: 2 }), /changed under the snapshot/);
});
