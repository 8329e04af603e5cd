// One room on this device: a TinyBase store that the app reads and writes
// synchronously, sealed into IndexedDB, replicated with roomsync in the
// background, and shared between the tabs of this origin.
//
// Store layout:
//   tables   one per collection; row id = document id; cells = the app's
//            fields plus _ts (last-write time), _state ('pending' | 'synced'
//            | 'failed'), _mts (timestamp of the server state this row was
//            based on, -1: none), _seq (upper bound of its server seq, for
//            scroll-back), _tampered, _history (scroll-back rows, memory only)
//   _outbox  one row per document with an unacknowledged local write:
//            {c, id, ts, del, mts, failed}; the document's current state is
//            encrypted when it is pushed, so a document written ten times
//            while offline is pushed once.
//   _digests one row per server document with a live state (any collection,
//            pruned or not): {h}, its contribution to the room digest
//            (digest.js), so that the replica can check itself against the
//            digest a checkpoint at the room's head carries
//   values   checkpoint (the server's, JSON), kdf (the room's meta/kdf doc)
//
// A local write changes its row and its outbox entry in one transaction,
// which the persister writes in one IndexedDB transaction, as it does the
// rows of a pulled page with the checkpoint that follows them: a reload
// never resumes from a checkpoint whose documents were not stored, and
// never forgets a write it did not get acknowledged.

import { DEFAULT_STALE_MS, FetchEventSource } from './sse_stream.js';
import { createStore } from 'tinybase/store';
import { Backoff } from './backoff.js';
import { toBase64, fromBase64 } from './bytes.js';
import {
  KDF_ITERATIONS,
  TamperedError,
  WrongPasswordError,
  decryptDocument,
  deriveRoomKey,
  encryptDocument,
  generateDeviceKey,
  importRoomKey,
  makeKeyCheck,
  newSalt,
  verifyKeyCheck,
} from './crypto.js';
import { ReplicaDigest, documentDigest, rawDocumentTexts, storedJsonOf } from './digest.js';
import { ApiError, RoomApi } from './http_api.js';
import { IndexedDbLocalDb, MemoryLocalDb } from './local_db.js';
import { collectRoomState, decryptSnapshot, encryptSnapshot, snapshotText } from './snapshot.js';
import { createSealedPersister } from './persister.js';
import { TabCoordinator } from './tabs.js';

export const DEFAULT_COLLECTIONS = ['messages', 'threads', 'channels', 'pins'];
const OUTBOX = '_outbox';
const DIGESTS = '_digests';
const META = 'meta';
const KDF_ID = 'kdf';
const PULL_BATCH = 1000;
const PUSH_BATCH = 100;
const ROOM_NAME = /^[A-Za-z0-9._~-]{1,128}$/;
const COLLECTION_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/** openRoom could not get a room key: no password given and none remembered. */
export class PasswordRequiredError extends Error {
  constructor(room) {
    super(`room ${room} needs its password`);
    this.name = 'PasswordRequiredError';
  }
}

const outboxKey = (collection, id) => `${collection}:${id}`;
const appFields = (row) => {
  const fields = {};
  for (const [k, v] of Object.entries(row)) if (!k.startsWith('_')) fields[k] = v;
  return fields;
};
// Deep equality of JSON values, whatever the order of object keys.
const sameValue = (x, y) => {
  if (x === y) return true;
  if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
  if (Array.isArray(x) !== Array.isArray(y)) return false;
  const kx = Object.keys(x);
  if (kx.length !== Object.keys(y).length) return false;
  return kx.every((k) => Object.hasOwn(y, k) && sameValue(x[k], y[k]));
};
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * Opens `room` on this device. Resolves once the cached state is in
 * `room.store` and the room key is known; replication runs in the
 * background from there (see the package README for the options).
 */
export async function openRoom(options) {
  const room = new Room(options);
  try {
    await room.start();
  } catch (error) {
    await room.close();
    throw error;
  }
  return room;
}

export class Room {
  constructor({
    room,
    password,
    rawKey,
    baseUrl = '',
    token,
    collections = DEFAULT_COLLECTIONS,
    maxMessages = 1000,
    onConflict,
    persist = 'indexeddb',
    db,
    tabs = true,
    rememberKey = true,
    fetch,
    requestTimeoutMs,
    EventSource: EventSourceImpl,
    streamStaleMs = DEFAULT_STALE_MS,
    backoff,
    now = () => Date.now(),
    joinFromSnapshot = true,
  }) {
    if (!ROOM_NAME.test(room ?? '') || room === '.' || room === '..') throw new TypeError(`invalid room name: ${room}`);
    for (const c of collections) {
      if (!COLLECTION_NAME.test(c) || c === META || c.startsWith('_')) throw new TypeError(`invalid collection name: ${c}`);
    }
    this.room = room;
    this.password = password;
    this.rawKey = rawKey;
    this.collections = new Set(collections);
    this.maxMessages = maxMessages;
    this.limit = maxMessages; // lowered when the origin's quota runs out
    this.onConflict = onConflict;
    this.db = db ?? (persist === 'memory' ? new MemoryLocalDb() : new IndexedDbLocalDb());
    this.rememberKey = rememberKey && persist !== 'memory';
    this.useTabs = tabs;
    this.api = new RoomApi({ room, baseUrl, token, fetch, timeoutMs: requestTimeoutMs });
    // The stream: over fetch where the platform can read a response body
    // as it arrives (every current browser, Node 20), so keep-alive
    // comments count and a dead stream is noticed; an EventSource when the
    // caller gives one or nothing else exists.
    if (EventSourceImpl) this.EventSource = EventSourceImpl;
    else if (typeof ReadableStream === 'function' && typeof (fetch ?? globalThis.fetch) === 'function') {
      const fetchImpl = fetch ?? globalThis.fetch.bind(globalThis);
      this.EventSource = class extends FetchEventSource {
        constructor(url) {
          super(url, { fetch: fetchImpl, staleMs: streamStaleMs });
        }
      };
    } else this.EventSource = globalThis.EventSource;
    this.pushBackoff = backoff?.() ?? new Backoff();
    this.streamBackoff = backoff?.() ?? new Backoff({ baseMs: 250, maxMs: 15_000 });
    this.now = now;
    // An empty replica starts from the room's newest encrypted snapshot
    // (docs/api.md, "Snapshots") and pulls only what came after it.
    this.joinFromSnapshot = joinFromSnapshot;
    /** The snapshot this replica started from: {seq, documents}, or null. */
    this.joinedFrom = null;
    this.store = createStore();
    this.digest = null; // ReplicaDigest of the _digests table, once needed
    this.listeners = { status: new Set(), conflict: new Set(), error: new Set() };
    this.status = {
      online: globalThis.navigator?.onLine ?? true,
      leader: false,
      streaming: false,
      pending: 0,
      failed: 0,
      lastError: null,
      wrongPassword: false,
      keyChanged: false,
      quotaPruned: false,
      // true: the replica matched the last digest the server sent; false:
      // it did not, even after pulling the room again from the beginning.
      verified: undefined,
    };
    this.closed = false;
    this.abort = new AbortController();
    this.serial = Promise.resolve(); // server changes apply one batch at a time, in order
    this.pushRunning = null;
    this.pushTimer = null;
    this.isolate = false; // push one document per request to find a refused one
    this.historyCursor = new Map(); // collection → next `before`, null: no more
    this.stream = null;
    this.streamGeneration = 0;
    this.localOnly = 0; // >0 while a transaction must not reach other tabs
  }

  // ---- public API -------------------------------------------------------

  /**
   * Uploads an encrypted snapshot of the room's current state for new
   * devices to start from (docs/api.md, "Snapshots"). The state is the
   * server's documents byte for byte, read by a pull from the beginning:
   * this replica keeps decrypted, pruned rows, not those bytes, and the
   * joining device needs them for the room digest. `compact` also asks the
   * server to remove the tombstones the snapshot covers. Resolves to the
   * server's {seq, epoch, bytes, created, compacted?}.
   */
  async uploadSnapshot({ compact = false } = {}) {
    if (!this.key) throw new Error('the room key is not open');
    const state = await collectRoomState(this.api);
    if (state.checkpoint.seq < 1) throw new Error('the room has no documents to snapshot');
    const bytes = await encryptSnapshot(this.key, this.room, state.checkpoint, snapshotText(state.raws, state.checkpoint));
    return this.api.putSnapshot(state.checkpoint, bytes, { compact });
  }

  /** Writes `fields` (the app's cells) to `collection/id`; returns at once. */
  put(collection, id, fields) {
    this.#checkCollection(collection);
    if (typeof id !== 'string' || id.length === 0) throw new TypeError('a document id is a non-empty string');
    for (const k of Object.keys(fields)) if (k.startsWith('_')) throw new TypeError(`field names starting with _ are reserved: ${k}`);
    const old = this.store.getRow(collection, id);
    const ts = this.#nextTimestamp(old._ts);
    const mts = this.#masterTimestamp(collection, id, old);
    this.store.transaction(() => {
      this.store.setRow(collection, id, { ...fields, _ts: ts, _state: 'pending', _mts: mts, _seq: old._seq ?? 0 });
      this.store.setRow(OUTBOX, outboxKey(collection, id), { c: collection, id, ts, del: false, mts, failed: false });
    });
    this.#prune(collection);
    return ts;
  }

  /** Deletes `collection/id`: a tombstone that replicates. */
  remove(collection, id) {
    this.#checkCollection(collection);
    const old = this.store.getRow(collection, id);
    const ts = this.#nextTimestamp(old._ts);
    const mts = this.#masterTimestamp(collection, id, old);
    this.store.transaction(() => {
      this.store.delRow(collection, id);
      this.store.setRow(OUTBOX, outboxKey(collection, id), { c: collection, id, ts, del: true, mts, failed: false });
    });
  }

  /** Queues a write that the server refused again (after the app fixed it). */
  retry(collection, id) {
    const key = outboxKey(collection, id);
    if (!this.store.hasRow(OUTBOX, key)) return;
    this.store.transaction(() => {
      this.store.setCell(OUTBOX, key, 'failed', false);
      if (this.store.hasRow(collection, id)) this.store.setCell(collection, id, '_state', 'pending');
    });
  }

  /**
   * Scroll-back: fetches up to `limit` documents of `collection` older than
   * what the store holds from /history into the store, marked _history and
   * never persisted. Resolves to the number added (0: nothing older).
   */
  async loadOlder(collection = 'messages', limit = 50) {
    this.#checkCollection(collection);
    if (!this.key) throw new PasswordRequiredError(this.room);
    let before = this.historyCursor.get(collection);
    if (before === null) return 0;
    if (before === undefined) before = this.#oldestCheckpoint(collection);
    let added = 0;
    while (added < limit) {
      const page = await this.api.history(before, Math.min(1000, Math.max(limit, 50)), collection);
      const fresh = page.documents.filter((d) => !this.store.hasRow(collection, d.id) && d._deleted !== true);
      const decoded = await Promise.all(fresh.map((d) => this.#decrypt(collection, d)));
      const seqHint = before?.seq ?? page.next?.seq ?? 0;
      this.localOnly++;
      try {
        this.store.transaction(() => {
          for (const doc of decoded) {
            if (this.store.hasRow(collection, doc.id)) continue;
            this.store.setRow(collection, doc.id, { ...this.#rowOf(doc, seqHint), _history: true });
            added++;
          }
        });
      } finally {
        this.localOnly--;
      }
      before = page.next;
      if (!before) break;
    }
    this.historyCursor.set(collection, before ?? null);
    return added;
  }

  /** Resolves when nothing is left to push (or `timeoutMs` passes: rejects). */
  async flush(timeoutMs = 30_000) {
    const deadline = Date.now() + timeoutMs;
    while (this.#pushable().length > 0 || this.pushRunning) {
      if (Date.now() > deadline) throw new Error('flush timed out');
      await sleep(20);
    }
  }

  /** Subscribes to 'status', 'conflict' or 'error'; returns the unsubscribe. */
  on(event, fn) {
    this.listeners[event].add(fn);
    return () => this.listeners[event].delete(fn);
  }

  /** The room's sync state per message, for the UI: 'pending' | 'synced' | 'failed'. */
  stateOf(collection, id) {
    return this.store.getCell(collection, id, '_state');
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.#closeStream();
    clearTimeout(this.pushTimer);
    this.tabs?.close();
    await this.pushRunning?.catch(() => {});
    await this.serial.catch(() => {});
    this.persister?.stopAutoSave();
    // Let the last scheduled save reach the database.
    await this.persister?.schedule?.(async () => {});
    this.persister?.destroy();
    for (const off of this.cleanups ?? []) off();
  }

  // ---- start-up ---------------------------------------------------------

  async start() {
    await this.db.open();
    this.deviceKey = await this.db.putKeyIfAbsent('device', await generateDeviceKey());
    this.persister = createSealedPersister(this.store, {
      db: this.db,
      room: this.room,
      deviceKey: this.deviceKey,
      isTransient: (_table, row) => row._history === true,
      onQuotaExceeded: () => this.#pruneHarder(),
      onError: (error) => this.#emit('error', error),
    });
    await this.persister.load();
    await this.persister.startAutoSave();
    this.#updateCounts();
    this.cleanups = [];
    this.store.addTableListener(OUTBOX, () => {
      this.#updateCounts();
      if (this.status.leader) this.#schedulePush(0);
    });
    if (globalThis.addEventListener) {
      const online = () => this.#setOnline(true, true);
      const offline = () => this.#setOnline(false);
      globalThis.addEventListener('online', online);
      globalThis.addEventListener('offline', offline);
      this.cleanups.push(() => globalThis.removeEventListener('online', online));
      this.cleanups.push(() => globalThis.removeEventListener('offline', offline));
    }
    await this.#openKey();
    this.#requestPersistentStorage();
    this.tabs = new TabCoordinator(`roomsync:${this.room}`, {
      enabled: this.useTabs,
      store: this.store,
      isLocalOnly: () => this.localOnly > 0,
      onLeader: () => this.#becomeLeader(),
      onStatus: (status) => this.#mergeStatus(status),
      onRemoteChanges: (changes) => {
        for (const c of Object.keys(changes[0] ?? {})) if (this.collections.has(c)) this.#prune(c);
      },
    });
    this.tabs.start();
  }

  async #openKey() {
    const keyName = `room:${this.room}`;
    const kdfText = this.store.getValue('kdf');
    let kdf = kdfText ? JSON.parse(kdfText) : undefined;
    if (!this.password && !this.rawKey) {
      const remembered = this.rememberKey ? await this.db.getKey(keyName) : undefined;
      if (!remembered || !kdf) throw new PasswordRequiredError(this.room);
      this.key = remembered;
      return;
    }
    if (!kdf) kdf = await this.#fetchOrCreateKdf();
    this.key = await this.#keyFor(kdf);
    await verifyKeyCheck(this.key, this.room, kdf.salt, kdf.check);
    this.store.setValue('kdf', JSON.stringify(kdf));
    if (this.rememberKey) await this.db.putKey(keyName, this.key);
  }

  #keyFor(kdf) {
    if (kdf.alg === 'raw') {
      if (!this.rawKey) throw new WrongPasswordError();
      return importRoomKey(this.rawKey);
    }
    if (kdf.alg !== 'PBKDF2-SHA-256') throw new Error(`unknown key derivation ${kdf.alg}`);
    if (!this.password) throw new PasswordRequiredError(this.room);
    return deriveRoomKey(this.password, fromBase64(kdf.salt), kdf.iterations);
  }

  // The room's salt and key check live in meta/kdf, public. The first
  // client creates it; with `meta=server-wins` on the server the first
  // writer wins, with lww the fixed timestamp makes every client adopt the
  // same one (the server's tie-break), before any document is encrypted.
  async #fetchOrCreateKdf() {
    const page = await this.api.pull(null, 10, META);
    const found = page.documents.find((d) => d.id === KDF_ID && d._deleted !== true);
    if (found) return found;
    const salt = newSalt();
    const raw = !this.password;
    const doc = { id: KDF_ID, timestamp: 1, alg: raw ? 'raw' : 'PBKDF2-SHA-256' };
    if (!raw) doc.iterations = KDF_ITERATIONS;
    doc.salt = toBase64(salt);
    const key = raw ? await importRoomKey(this.rawKey) : await deriveRoomKey(this.password, salt, KDF_ITERATIONS);
    doc.check = await makeKeyCheck(key, this.room, doc.salt);
    const answer = await this.api.push(META, [{ newDocumentState: doc, assumedMasterState: null }]);
    const winner = answer.conflicts?.find((d) => d.id === KDF_ID);
    return winner ?? doc;
  }

  #requestPersistentStorage() {
    const storage = globalThis.navigator?.storage;
    if (!storage?.persist || this.db instanceof MemoryLocalDb) return;
    storage.persisted?.().then((already) => already || storage.persist()).catch(() => {});
    this.#checkQuota();
    const timer = setInterval(() => this.#checkQuota(), 60_000);
    this.cleanups.push(() => clearInterval(timer));
  }

  async #checkQuota() {
    const estimate = await globalThis.navigator?.storage?.estimate?.().catch(() => null);
    if (estimate?.quota && estimate.usage / estimate.quota > 0.9) this.#pruneHarder();
  }

  // ---- leadership: the tab that replicates ------------------------------

  async #becomeLeader() {
    if (this.closed) return;
    this.#setStatus({ leader: true });
    // Another tab may have led until now; its last writes reached this
    // store through the channel and IndexedDB holds the same.
    this.#schedulePush(0);
    this.#startStream();
  }

  // Pull until caught up, then follow the stream; on RESYNC or a stream
  // that cannot reconnect, pull from the checkpoint and open a new one.
  async #startStream() {
    if (this.closed || !this.status.leader) return;
    this.#closeStream();
    const generation = ++this.streamGeneration;
    try {
      await this.#enqueue(() => this.#pullUntilCaughtUp());
    } catch (error) {
      this.#noteFailure(error);
      if (generation === this.streamGeneration) this.#retryStream(generation, error);
      return;
    }
    if (this.closed || generation !== this.streamGeneration) return;
    const url = await this.api.streamUrl(this.#checkpoint());
    if (this.closed || generation !== this.streamGeneration) return;
    const es = new this.EventSource(url);
    this.stream = es;
    es.onopen = () => {
      this.streamBackoff.reset();
      this.#setOnline(true);
      this.#setStatus({ streaming: true });
    };
    es.onmessage = (event) => {
      if (generation !== this.streamGeneration) return;
      this.#enqueue(() => this.#onStreamEvent(generation, event.data)).catch((error) => {
        this.#noteFailure(error);
        if (generation === this.streamGeneration) this.#retryStream(generation, error);
      });
    };
    es.onerror = () => {
      if (generation !== this.streamGeneration) return;
      this.#setStatus({ streaming: false });
      // CONNECTING: EventSource retries by itself with Last-Event-ID.
      if (es.readyState === 2 /* CLOSED */) this.#retryStream(generation);
    };
  }

  async #onStreamEvent(generation, data) {
    if (generation !== this.streamGeneration) return;
    const message = JSON.parse(data);
    if (message === 'RESYNC') {
      this.#closeStream();
      setTimeout(() => this.#startStream(), 0);
      return;
    }
    const cp = message.checkpoint;
    const current = this.#checkpoint();
    // After a pull the stream may repeat what the pull brought.
    if (current && cp && cp.epoch === current.epoch && cp.seq <= current.seq) return;
    if (current && cp && cp.epoch !== current.epoch) {
      this.#closeStream();
      setTimeout(() => this.#startStream(), 0);
      return;
    }
    await this.#applyServerPage(message.documents ?? [], cp, false, data);
  }

  #retryStream(generation, error) {
    this.#closeStream();
    const delay = this.streamBackoff.next(error?.retryAfterMs);
    setTimeout(() => {
      if (generation === this.streamGeneration && !this.closed) this.#startStream();
    }, delay);
  }

  #closeStream() {
    this.streamGeneration++;
    if (this.stream) {
      this.stream.onopen = this.stream.onmessage = this.stream.onerror = null;
      this.stream.close();
      this.stream = null;
    }
    if (this.status.streaming) this.#setStatus({ streaming: false });
  }

  async #pullUntilCaughtUp({ fromBeginning = false } = {}) {
    let start = fromBeginning ? null : this.#checkpoint();
    // A full pull after a digest mismatch never trusts a snapshot.
    if (!start && !fromBeginning && this.joinFromSnapshot) start = await this.#loadSnapshot();
    let checkpoint = start;
    // ids seen during a rebuild (after an epoch change, a reset, or a
    // digest that did not match)
    let seen = fromBeginning ? new Set() : null;
    if (fromBeginning) {
      this.store.transaction(() => this.store.delTable(DIGESTS));
      this.digest = null;
    }
    for (;;) {
      const page = await this.api.pull(checkpoint, PULL_BATCH);
      this.#setOnline(true);
      if (start && page.checkpoint && page.checkpoint.epoch !== start.epoch && !seen) seen = new Set();
      // The server could not continue our checkpoint (its tombstones were
      // compacted): this page starts the room over, and so does the set.
      if (page.reset) seen = new Set();
      if (seen) for (const d of page.documents) seen.add(outboxKey(d._collection, d.id));
      await this.#applyServerPage(page.documents, page.checkpoint, true, page.rawText, !!seen);
      checkpoint = page.checkpoint;
      if (page.documents.length < PULL_BATCH) break;
    }
    if (seen) this.#dropRowsNotIn(seen);
    await this.#verify(checkpoint, fromBeginning);
  }

  // An empty replica's start: the newest snapshot, decrypted and applied as
  // pulled pages of its documents (their server text gives the digest), its
  // checkpoint stored with the last one. Null (a full pull) when the room
  // has none or it does not open: a forged or foreign snapshot is reported
  // and ignored, never applied.
  async #loadSnapshot() {
    const snapshot = await this.api.latestSnapshot();
    if (!snapshot) return null;
    let opened;
    try {
      opened = await decryptSnapshot(this.key, this.room, snapshot.checkpoint, snapshot.bytes);
    } catch (error) {
      if (!(error instanceof TamperedError)) throw error;
      this.#emit('error', error);
      return null;
    }
    const { documents, raws } = opened;
    const pruned = this.#prunedOnArrival(documents);
    for (let k = 0; k === 0 || k < documents.length; k += PULL_BATCH) {
      const last = k + PULL_BATCH >= documents.length;
      const text = `{"documents":[${raws.slice(k, k + PULL_BATCH).join(',')}]}`;
      const digestOnly = new Set();
      for (let i = k; i < Math.min(documents.length, k + PULL_BATCH); i++) if (pruned.has(i)) digestOnly.add(i - k);
      await this.#applyServerPage(documents.slice(k, k + PULL_BATCH), snapshot.checkpoint, true, text, true, last, digestOnly);
    }
    this.joinedFrom = { seq: snapshot.checkpoint.seq, documents: documents.length };
    return snapshot.checkpoint;
  }

  // Indexes of the snapshot's messages that pruning would drop as soon as
  // they were applied (all but the newest `limit` by timestamp, as #prune
  // orders them) and that no local write is pending on: they count in the
  // digest, but are neither decrypted nor stored. A pull cannot know this
  // in advance (its pages come oldest first); a snapshot holds them all.
  #prunedOnArrival(documents) {
    const messages = [];
    documents.forEach((d, k) => {
      if (d._collection === 'messages' && d._deleted !== true) messages.push([d.timestamp, d.id, k]);
    });
    const pruned = new Set();
    if (messages.length <= this.limit || !this.collections.has('messages')) return pruned;
    messages.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
    for (const [, id, k] of messages.slice(0, messages.length - this.limit)) {
      if (!this.store.hasRow(OUTBOX, outboxKey('messages', id)) && !this.store.hasRow('messages', id)) pruned.add(k);
    }
    return pruned;
  }

  // Compares the replica with the digest of the server's checkpoint, when
  // it carries one (at the room's head). A mismatch means this device holds
  // documents the server does not, or other states: it pulls the room from
  // the beginning once; a mismatch after that is reported, not retried.
  async #verify(checkpoint, afterFullPull) {
    const match = this.#replicaDigest().matches(checkpoint);
    if (match === undefined) return;
    if (match) {
      if (this.status.verified !== true) this.#setStatus({ verified: true });
      return;
    }
    if (!afterFullPull) {
      await this.#pullUntilCaughtUp({ fromBeginning: true });
      return;
    }
    if (this.status.verified !== false) {
      this.#setStatus({ verified: false, lastError: 'the replica does not match the room digest' });
      this.#emit('error', new Error(`replica digest ${this.#replicaDigest().hex()} differs from the server's ${checkpoint.digest}`));
    }
  }

  // Kept in memory and changed with the table; rebuilt from the table
  // (persisted, or left by another tab's leadership) when unknown.
  #replicaDigest() {
    if (!this.digest) {
      const table = this.store.getTable(DIGESTS);
      this.digest = new ReplicaDigest(Object.entries(table).map(([key, row]) => [key, row.h]));
    }
    return this.digest;
  }

  // Each server document's contribution to the room digest, from the
  // response's own text of it (null for a tombstone).
  async #digestParts(documents, rawText) {
    const raws = rawText ? rawDocumentTexts(rawText) : [];
    if (raws.length !== documents.length) return null; // cannot tell: drop the index
    return Promise.all(documents.map(async (d, k) => {
      return documentDigest(d._collection, d.id, d.timestamp, d._deleted === true, storedJsonOf(raws[k]));
    }));
  }

  // The room's history changed (re-created, restored, or compacted past
  // our checkpoint): keep only what the server has now, and our unacknowledged writes, based on nothing.
  #dropRowsNotIn(seen) {
    this.store.transaction(() => {
      for (const c of this.collections) {
        for (const id of this.store.getRowIds(c)) {
          const pending = this.store.hasRow(OUTBOX, outboxKey(c, id));
          if (!pending && !seen.has(outboxKey(c, id))) this.store.delRow(c, id);
        }
      }
      for (const key of this.store.getRowIds(OUTBOX)) this.store.setCell(OUTBOX, key, 'mts', -1);
      for (const key of this.store.getRowIds(DIGESTS)) if (!seen.has(key)) this.store.delRow(DIGESTS, key);
      this.digest = null;
    });
  }

  // Decrypts a page of server documents, then applies it and its checkpoint
  // in one transaction (one IndexedDB write).
  // `storeCheckpoint` false: a snapshot's page before its last one, whose
  // checkpoint holds only once every page is applied.
  // `digestOnly`: indexes of documents that only count in the digest.
  async #applyServerPage(documents, checkpoint, fromPull, rawText, rebuilding = false, storeCheckpoint = true,
    digestOnly = null) {
    const parts = await this.#digestParts(documents, rawText);
    const decoded = await Promise.all(
      documents.map(async (d, k) => {
        if (digestOnly?.has(k)) return null;
        const collection = d._collection;
        if (collection === META) return { meta: d };
        if (!this.collections.has(collection)) return null;
        return { collection, doc: await this.#decrypt(collection, d) };
      }),
    );
    const seqHint = checkpoint?.seq ?? 0;
    const superseded = [];
    this.store.transaction(() => {
      for (const item of decoded) {
        if (!item) continue;
        if (item.meta) this.#onMeta(item.meta);
        else this.#applyServerDoc(item.collection, item.doc, seqHint, superseded);
      }
      if (parts === null) {
        this.store.delTable(DIGESTS);
        this.digest = null;
      } else {
        const digest = this.#replicaDigest();
        documents.forEach((d, k) => {
          const key = outboxKey(d._collection, d.id);
          const hex = digest.set(key, parts[k]);
          if (hex === null) this.store.delRow(DIGESTS, key);
          else this.store.setRow(DIGESTS, key, { h: hex });
        });
      }
      if (checkpoint && storeCheckpoint) this.store.setValue('checkpoint', JSON.stringify(checkpoint));
    });
    if (!fromPull && !rebuilding) await this.#verify(checkpoint, false);
    for (const { collection, doc, local } of superseded) this.#reportConflict(collection, doc.id, local, doc)?.();
    for (const c of new Set(decoded.filter((i) => i?.collection).map((i) => i.collection))) this.#prune(c);
    if (!fromPull) this.#setOnline(true);
  }

  #onMeta(doc) {
    if (doc.id !== KDF_ID) return;
    const local = JSON.parse(this.store.getValue('kdf') ?? 'null');
    if (local && !doc._deleted && doc.salt !== local.salt) {
      // Someone re-keyed the room: our key cannot read new documents and
      // nothing may be pushed under it.
      this.#setStatus({ keyChanged: true, lastError: 'the room key changed: re-open the room with its password' });
    }
  }

  // Server state wins unless this device holds a newer unacknowledged write
  // (then that write is pushed and the server decides: its assumed master
  // stays the state it was based on, so server-wins can refuse it). A
  // pending write that a newer server state replaces is a conflict too: it
  // goes into `superseded` for the app to hear about.
  #applyServerDoc(collection, doc, seqHint, superseded) {
    const key = outboxKey(collection, doc.id);
    const pending = this.store.getRow(OUTBOX, key);
    // This device's own write coming back: same time, same content. Another
    // device's write at the same millisecond is not ours: the push decides
    // (the server's tie-break or policy), as for a newer local write.
    const ownEcho = pending.ts === doc.timestamp && this.#sameAsLocal(collection, doc, pending);
    if (pending.ts !== undefined && pending.ts >= doc.timestamp && !ownEcho && !pending.failed) return;
    if (pending.ts !== undefined) {
      if (!ownEcho && superseded) {
        superseded.push({ collection, doc, local: pending.del ? null : appFields(this.store.getRow(collection, doc.id)) });
      }
      this.store.delRow(OUTBOX, key);
    }
    if (doc.deleted) this.store.delRow(collection, doc.id);
    else this.store.setRow(collection, doc.id, this.#rowOf(doc, seqHint));
  }

  // Whether the server's `doc` holds what this device's pending write holds.
  #sameAsLocal(collection, doc, pending) {
    if (doc.tampered || !!doc.deleted !== !!pending.del) return false;
    if (doc.deleted) return true;
    return sameValue(doc.fields, appFields(this.store.getRow(collection, doc.id)));
  }

  #rowOf(doc, seqHint) {
    if (doc.tampered) return { _ts: doc.timestamp, _state: 'synced', _mts: doc.timestamp, _seq: seqHint, _tampered: true };
    return { ...doc.fields, _ts: doc.timestamp, _state: 'synced', _mts: doc.timestamp, _seq: seqHint };
  }

  async #decrypt(collection, d) {
    try {
      return await decryptDocument(this.key, this.room, collection, d);
    } catch (error) {
      if (!(error instanceof TamperedError)) throw error;
      this.#emit('error', error);
      return { id: d.id, timestamp: d.timestamp, deleted: false, tampered: true };
    }
  }

  // ---- push -------------------------------------------------------------

  #pushable() {
    const table = this.store.getTable(OUTBOX);
    return Object.entries(table).filter(([, e]) => !e.failed);
  }

  #schedulePush(delay) {
    if (this.closed || !this.status.leader || this.status.keyChanged) return;
    if (this.pushTimer) {
      if (delay > 0) return;
      clearTimeout(this.pushTimer);
    }
    this.pushTimer = setTimeout(() => {
      this.pushTimer = null;
      this.#pushLoop();
    }, delay);
  }

  #pushLoop() {
    if (this.pushRunning) {
      this.pushAgain = true;
      return;
    }
    const run = (async () => {
      await null; // so that `finally` below runs after the assignment
      try {
        do {
          this.pushAgain = false;
          while (!this.closed && this.status.leader && this.#pushable().length) {
            await this.#pushOnce();
            this.pushBackoff.reset();
          }
        } while (this.pushAgain && !this.closed);
      } catch (error) {
        this.#noteFailure(error);
        this.#schedulePush(this.pushBackoff.next(error?.retryAfterMs));
      } finally {
        if (this.pushRunning === run) this.pushRunning = null;
      }
    })();
    this.pushRunning = run;
  }

  async #pushOnce() {
    const entries = this.#pushable()
      .map(([, e]) => e)
      .sort((a, b) => a.ts - b.ts);
    const collection = entries[0].c;
    const batch = entries.filter((e) => e.c === collection).slice(0, this.isolate ? 1 : PUSH_BATCH);
    const rows = (await Promise.all(batch.map((e) => this.#pushRow(e)))).filter(Boolean);
    if (!rows.length) return;
    let answer;
    try {
      answer = await this.api.push(collection, rows);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 400 || error.status === 413)) {
        if (batch.length > 1) {
          this.isolate = true; // find the one the server refuses
          return;
        }
        this.#markFailed(batch[0], error);
        this.isolate = false;
        return;
      }
      throw error;
    }
    this.isolate = false;
    this.#setOnline(true);
    this.#setStatus({ lastError: null });
    const conflicts = new Map((answer.conflicts ?? []).map((d) => [d.id, d]));
    const decoded = new Map(
      await Promise.all([...conflicts.values()].map(async (d) => [d.id, await this.#decrypt(collection, d)])),
    );
    const merges = [];
    this.store.transaction(() => {
      for (const e of batch) {
        const server = decoded.get(e.id);
        if (server) merges.push(this.#resolveConflict(collection, e, server));
        else this.#acknowledge(collection, e);
      }
    });
    for (const merge of merges) merge?.();
  }

  async #pushRow(e) {
    const row = this.store.getRow(e.c, e.id);
    if (!e.del && row._ts === undefined) {
      this.store.delRow(OUTBOX, outboxKey(e.c, e.id)); // nothing left to send
      return null;
    }
    const doc = await encryptDocument(this.key, {
      room: this.room,
      collection: e.c,
      id: e.id,
      timestamp: e.ts,
      deleted: e.del,
      fields: e.del ? {} : appFields(row),
    });
    return { newDocumentState: doc, assumedMasterState: e.mts >= 0 ? { id: e.id, timestamp: e.mts } : null };
  }

  #acknowledge(collection, e) {
    const key = outboxKey(collection, e.id);
    // A newer write made while this push was out stays queued.
    if (this.store.getCell(OUTBOX, key, 'ts') === e.ts) this.store.delRow(OUTBOX, key);
    if (this.store.getCell(collection, e.id, '_ts') === e.ts) {
      this.store.setPartialRow(collection, e.id, { _state: 'synced', _mts: e.ts });
    }
  }

  // The server's document is authoritative; an onConflict hook may merge,
  // and the merge is pushed as a new write based on the server's state.
  #resolveConflict(collection, e, server) {
    const localFields = e.del ? null : appFields(this.store.getRow(collection, e.id));
    this.store.delRow(OUTBOX, outboxKey(collection, e.id));
    this.#applyServerDoc(collection, server, this.store.getCell(collection, e.id, '_seq') ?? 0);
    return this.#reportConflict(collection, e.id, localFields, server);
  }

  // Tells the app; returns the write of its merge (run after the
  // transaction that adopted the server state), or null.
  #reportConflict(collection, id, localFields, server) {
    const serverFields = server.tampered || server.deleted ? null : server.fields;
    let merged;
    if (this.onConflict && !server.tampered) {
      try {
        merged = this.onConflict(localFields, serverFields, { collection, id });
      } catch (error) {
        this.#emit('error', error);
      }
    }
    this.#emit('conflict', { collection, id, local: localFields, server: serverFields, merged: merged ?? null });
    if (merged && typeof merged === 'object') return () => this.put(collection, id, merged);
    return null;
  }

  #markFailed(e, error) {
    this.store.transaction(() => {
      this.store.setCell(OUTBOX, outboxKey(e.c, e.id), 'failed', true);
      if (this.store.hasRow(e.c, e.id)) this.store.setCell(e.c, e.id, '_state', 'failed');
    });
    this.#setStatus({ lastError: `${e.c}/${e.id}: ${error.code}: ${error.message}` });
    this.#emit('error', error);
  }

  // ---- pruning ----------------------------------------------------------

  // Keeps the newest `limit` synced messages; pending writes and scroll-back
  // rows are not counted and never dropped. Local only: nothing is pushed.
  #prune(collection) {
    if (collection !== 'messages') return;
    const ids = this.store.getRowIds(collection);
    if (ids.length <= this.limit) return;
    const kept = [];
    for (const id of ids) {
      const row = this.store.getRow(collection, id);
      if (row._history !== true && row._state === 'synced') kept.push([row._ts, id]);
    }
    const excess = kept.length - this.limit;
    if (excess <= 0) return;
    kept.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
    // Other tabs apply the same deletions, so their saves do not bring the
    // pruned rows back into IndexedDB.
    this.store.transaction(() => {
      for (let i = 0; i < excess; i++) this.store.delRow(collection, kept[i][1]);
    });
    this.historyCursor.delete(collection);
  }

  #pruneHarder() {
    this.limit = Math.max(50, Math.floor(this.limit / 2));
    this.#setStatus({ quotaPruned: true });
    for (const c of this.collections) this.#prune(c);
  }

  // `before` for scroll-back: below every seq this store holds (an upper
  // bound per row; rows at or above it come back and are skipped).
  #oldestCheckpoint(collection) {
    const cp = this.#checkpoint();
    if (!cp) return undefined;
    let min = Infinity;
    for (const id of this.store.getRowIds(collection)) {
      const seq = this.store.getCell(collection, id, '_seq');
      if (typeof seq === 'number' && seq > 0 && seq < min) min = seq;
    }
    return Number.isFinite(min) ? { seq: min, epoch: cp.epoch } : undefined;
  }

  // ---- helpers ----------------------------------------------------------

  #checkCollection(collection) {
    if (!this.collections.has(collection)) throw new TypeError(`unknown collection ${collection}`);
  }

  #checkpoint() {
    const text = this.store.getValue('checkpoint');
    return text ? JSON.parse(text) : null;
  }

  // Strictly after the previous write of this document, so an edit always
  // wins over the state it edits, even with a clock that went back.
  #nextTimestamp(previous) {
    const now = this.now();
    return typeof previous === 'number' && previous >= now ? previous + 1 : now;
  }

  #masterTimestamp(collection, id, row) {
    const pending = this.store.getRow(OUTBOX, outboxKey(collection, id));
    if (pending.mts !== undefined) return pending.mts;
    return typeof row._mts === 'number' ? row._mts : -1;
  }

  #enqueue(fn) {
    const run = this.serial.then(fn);
    this.serial = run.catch(() => {});
    return run;
  }

  #updateCounts() {
    let pending = 0;
    let failed = 0;
    for (const e of Object.values(this.store.getTable(OUTBOX))) e.failed ? failed++ : pending++;
    if (pending !== this.status.pending || failed !== this.status.failed) this.#setStatus({ pending, failed });
  }

  #noteFailure(error) {
    if (error instanceof ApiError && error.status === 0) this.#setOnline(false);
    this.#setStatus({ lastError: error?.message ?? String(error) });
  }

  #setOnline(online, retryNow = false) {
    if (online !== this.status.online) this.#setStatus({ online });
    if (online && retryNow && this.status.leader) {
      this.pushBackoff.reset();
      this.streamBackoff.reset();
      this.#schedulePush(0);
      if (!this.status.streaming) this.#startStream();
    }
  }

  #setStatus(patch) {
    Object.assign(this.status, patch);
    if (this.status.leader) this.tabs?.shareStatus(this.status);
    this.#emit('status', { ...this.status });
  }

  // Followers show the leader's view of the network.
  #mergeStatus(shared) {
    if (this.status.leader) return;
    const { online, streaming, lastError, keyChanged } = shared;
    this.#setStatus({ online, streaming, lastError, keyChanged });
  }

  #emit(event, payload) {
    for (const fn of this.listeners[event]) {
      try {
        fn(payload);
      } catch {
        // a listener's failure is the app's, not replication's
      }
    }
  }
}
