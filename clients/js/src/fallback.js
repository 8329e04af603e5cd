// The "before" path of the staged rollout: no local database. Opening a
// room fetches its whole history, every write waits for the server before
// it shows, and new messages arrive by polling pull. Same encryption, same
// store shape (a TinyBase store, in memory only), so an app can switch with
// shouldEnableLocalFirst() and the two can be measured side by side.

import { createStore } from 'tinybase/store';
import { fromBase64 } from './bytes.js';
import { TamperedError, decryptDocument, deriveRoomKey, encryptDocument, importRoomKey, verifyKeyCheck } from './crypto.js';
import { RoomApi } from './http_api.js';
import { DEFAULT_COLLECTIONS, PasswordRequiredError } from './room.js';

export async function openFallbackRoom(options) {
  const room = new FallbackRoom(options);
  await room.start();
  return room;
}

class FallbackRoom {
  constructor({ room, password, rawKey, key, baseUrl = '', token, collections = DEFAULT_COLLECTIONS, fetch, pollMs = 2000, now = () => Date.now() }) {
    this.room = room;
    this.password = password;
    this.rawKey = rawKey;
    this.key = key;
    this.collections = new Set(collections);
    this.api = new RoomApi({ room, baseUrl, token, fetch });
    this.pollMs = pollMs;
    this.now = now;
    this.store = createStore();
    this.checkpoint = null;
    this.status = { online: true, leader: true, streaming: false, pending: 0, failed: 0, lastError: null };
    this.listeners = { status: new Set(), conflict: new Set(), error: new Set() };
  }

  async start() {
    if (!this.key) {
      const page = await this.api.pull(null, 10, 'meta');
      const kdf = page.documents.find((d) => d.id === 'kdf');
      if (!kdf) throw new Error(`room ${this.room} has no key yet: open it once with the local-first client`);
      if (kdf.alg === 'raw') this.key = await importRoomKey(this.rawKey);
      else if (this.password) this.key = await deriveRoomKey(this.password, fromBase64(kdf.salt), kdf.iterations);
      else throw new PasswordRequiredError(this.room);
      await verifyKeyCheck(this.key, this.room, kdf.salt, kdf.check);
    }
    await this.refresh();
    if (this.pollMs > 0) this.timer = setInterval(() => this.refresh().catch((e) => this.#error(e)), this.pollMs);
  }

  /** Pulls everything after the last checkpoint (the first time: everything). */
  async refresh() {
    for (;;) {
      const page = await this.api.pull(this.checkpoint, 1000);
      const decoded = await Promise.all(
        page.documents
          .filter((d) => this.collections.has(d._collection))
          .map(async (d) => [d._collection, await this.#decrypt(d._collection, d)]),
      );
      this.store.transaction(() => {
        for (const [c, doc] of decoded) {
          if (doc.deleted) this.store.delRow(c, doc.id);
          else this.store.setRow(c, doc.id, doc.tampered ? { _ts: doc.timestamp, _state: 'synced', _tampered: true } : { ...doc.fields, _ts: doc.timestamp, _state: 'synced' });
        }
      });
      this.checkpoint = page.checkpoint;
      if (page.documents.length < 1000) return;
    }
  }

  /** Resolves once the server stored the write; only then is it shown. */
  async put(collection, id, fields) {
    const old = this.store.getRow(collection, id);
    const ts = Math.max(this.now(), (old._ts ?? 0) + 1);
    const doc = await encryptDocument(this.key, { room: this.room, collection, id, timestamp: ts, fields });
    const answer = await this.api.push(collection, [doc]);
    const conflict = answer.conflicts?.[0];
    if (conflict) {
      const server = await this.#decrypt(collection, conflict);
      if (!server.deleted && !server.tampered) this.store.setRow(collection, id, { ...server.fields, _ts: server.timestamp, _state: 'synced' });
      return server.timestamp;
    }
    this.store.setRow(collection, id, { ...fields, _ts: ts, _state: 'synced' });
    return ts;
  }

  async remove(collection, id) {
    const old = this.store.getRow(collection, id);
    const ts = Math.max(this.now(), (old._ts ?? 0) + 1);
    await this.api.push(collection, [await encryptDocument(this.key, { room: this.room, collection, id, timestamp: ts, deleted: true })]);
    this.store.delRow(collection, id);
  }

  async loadOlder() {
    return 0; // everything is already here
  }

  async flush() {}

  on(event, fn) {
    this.listeners[event].add(fn);
    return () => this.listeners[event].delete(fn);
  }

  async close() {
    clearInterval(this.timer);
  }

  async #decrypt(collection, d) {
    try {
      return await decryptDocument(this.key, this.room, collection, d);
    } catch (error) {
      if (!(error instanceof TamperedError)) throw error;
      return { id: d.id, timestamp: d.timestamp, deleted: false, tampered: true };
    }
  }

  #error(error) {
    this.status.lastError = error.message;
    for (const fn of this.listeners.error) fn(error);
  }
}
