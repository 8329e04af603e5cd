// Encrypted room snapshots (docs/api.md, "Snapshots"): the room's live
// documents at a checkpoint, as the server stores them, sealed under the
// room key, so that a new device downloads one object and pulls only what
// came after instead of the room's whole history.
//
// The plaintext has the shape of a pull response,
//   {"documents":[<each document's text exactly as the server sent it>],
//    "checkpoint":{"seq":S,"epoch":"E"}}
// so the joining device computes the room digest (digest.js) from the very
// bytes the server stores, and its `status.verified` at the head proves the
// snapshot plus the tail equals a full pull. The server never sees it: the
// bytes are 0x01 || iv (12) || AES-256-GCM(plaintext) with the room, epoch
// and seq as additional data, so a server that serves a snapshot under
// another room or checkpoint, or alters one byte, makes decryption fail.

import { fromUtf8, utf8 } from './bytes.js';
import { TamperedError } from './crypto.js';
import { ReplicaDigest, documentDigest, rawDocumentTexts, storedJsonOf } from './digest.js';

const FORMAT = 'roomsync/snapshot/v1';
const VERSION = 1;
const IV_BYTES = 12;
const PULL_BATCH = 1000;

const snapshotAad = (room, checkpoint) => utf8(JSON.stringify([FORMAT, room, checkpoint.epoch, checkpoint.seq]));

/** The plaintext of a snapshot of `raws` (documents' server texts, with _collection) at `checkpoint`. */
export function snapshotText(raws, checkpoint) {
  const position = JSON.stringify({ seq: checkpoint.seq, epoch: checkpoint.epoch });
  return `{"documents":[${raws.join(',')}],"checkpoint":${position}}`;
}

/** The bytes to upload: `text` sealed under the room key, bound to room and checkpoint. */
export async function encryptSnapshot(key, room, checkpoint, text) {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(
    await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: snapshotAad(room, checkpoint) }, key, utf8(text)),
  );
  const bytes = new Uint8Array(1 + IV_BYTES + sealed.length);
  bytes[0] = VERSION;
  bytes.set(iv, 1);
  bytes.set(sealed, 1 + IV_BYTES);
  return bytes;
}

/**
 * Opens a downloaded snapshot that the server says holds the room at
 * `checkpoint`: {text, documents, raws}. TamperedError when it does not
 * authenticate under this room key, room and checkpoint, or is malformed.
 */
export async function decryptSnapshot(key, room, checkpoint, bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length < 1 + IV_BYTES + 16 || bytes[0] !== VERSION) {
    throw new TamperedError('the room snapshot is not one this client reads');
  }
  let text;
  try {
    const plain = await globalThis.crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: bytes.subarray(1, 1 + IV_BYTES), additionalData: snapshotAad(room, checkpoint) },
      key,
      bytes.subarray(1 + IV_BYTES),
    );
    text = fromUtf8(plain);
  } catch {
    throw new TamperedError(`the room snapshot at seq ${checkpoint.seq} failed authentication`);
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new TamperedError('the room snapshot has an unreadable body');
  }
  const raws = rawDocumentTexts(text);
  if (!Array.isArray(body?.documents) || raws.length !== body.documents.length ||
      body.checkpoint?.seq !== checkpoint.seq || body.checkpoint?.epoch !== checkpoint.epoch) {
    throw new TamperedError('the room snapshot does not hold what its checkpoint says');
  }
  return { text, documents: body.documents, raws };
}

const keyOf = (collection, id) => `${collection}\u0000${id}`;

/**
 * The room's live documents as the server stores them now, by a pull from
 * the beginning: {raws, checkpoint, digest}. `checkpoint` is where they
 * are the room's state; `digest` is their room digest (hex), checked
 * against the server's when the last page carries one (a mismatch throws:
 * such a state must not become a snapshot).
 */
export async function collectRoomState(api, { batchSize = PULL_BATCH } = {}) {
  const live = new Map(); // key -> {raw, collection, id, timestamp}
  let checkpoint = null;
  for (;;) {
    const page = await api.pull(checkpoint, batchSize);
    if (page.reset) live.clear(); // the server started the room over
    const raws = rawDocumentTexts(page.rawText ?? '');
    if (raws.length !== page.documents.length) throw new Error('the pull response could not be read document by document');
    page.documents.forEach((d, k) => {
      const key = keyOf(d._collection, d.id);
      live.delete(key); // a newer state moves to the end: seq order is kept
      if (d._deleted !== true) live.set(key, { raw: raws[k], collection: d._collection, id: d.id, timestamp: d.timestamp });
    });
    checkpoint = page.checkpoint;
    if (page.documents.length < batchSize) break;
  }
  const digest = new ReplicaDigest();
  for (const [key, d] of live) digest.set(key, await documentDigest(d.collection, d.id, d.timestamp, false, storedJsonOf(d.raw)));
  if (digest.matches(checkpoint) === false) {
    throw new Error(`the room changed under the snapshot's pull (digest ${digest.hex()} vs ${checkpoint.digest}): try again`);
  }
  return { raws: [...live.values()].map((d) => d.raw), checkpoint: { seq: checkpoint?.seq ?? 0, epoch: checkpoint?.epoch ?? '' }, digest: digest.hex() };
}
