// Where a device keeps its rooms: IndexedDB in browsers, a Map in tests.
// Both hold only what the caller gives them; the persister seals every row
// with the device key before it gets here, and CryptoKeys are stored as
// structured clones (non-extractable keys stay non-extractable).
//
// Records are keyed [room, table, rowId]; a room's values use table ''.

const DB_NAME = 'roomsync';
const DB_VERSION = 1;
const RECORDS = 'records';
const KEYS = 'keys';

const roomRange = (room) => IDBKeyRange.bound([room], [room, []]);

const request = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

const done = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
  });

/** IndexedDB-backed store of sealed records and keys. */
export class IndexedDbLocalDb {
  /** @param {string} [name] database name (tests use their own) */
  constructor(name = DB_NAME) {
    this.name = name;
    this.db = null;
  }

  async open() {
    if (this.db) return this;
    const req = indexedDB.open(this.name, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(RECORDS)) db.createObjectStore(RECORDS);
      if (!db.objectStoreNames.contains(KEYS)) db.createObjectStore(KEYS);
    };
    this.db = await request(req);
    // Another tab upgrading the schema must not be blocked by us.
    this.db.onversionchange = () => this.db.close();
    return this;
  }

  async getKey(name) {
    const tx = this.db.transaction(KEYS, 'readonly');
    return request(tx.objectStore(KEYS).get(name));
  }

  /** Stores `key` under `name` unless one is there; returns the stored one. */
  async putKeyIfAbsent(name, key) {
    const tx = this.db.transaction(KEYS, 'readwrite');
    const store = tx.objectStore(KEYS);
    const existing = await request(store.get(name));
    if (existing === undefined) store.put(key, name);
    await done(tx);
    return existing ?? key;
  }

  async putKey(name, key) {
    const tx = this.db.transaction(KEYS, 'readwrite');
    tx.objectStore(KEYS).put(key, name);
    await done(tx);
  }

  async deleteKey(name) {
    const tx = this.db.transaction(KEYS, 'readwrite');
    tx.objectStore(KEYS).delete(name);
    await done(tx);
  }

  /** Every record of `room` as [table, rowId, value]. */
  async readRoom(room) {
    const tx = this.db.transaction(RECORDS, 'readonly');
    const store = tx.objectStore(RECORDS);
    const [keys, values] = await Promise.all([
      request(store.getAllKeys(roomRange(room))),
      request(store.getAll(roomRange(room))),
    ]);
    return keys.map((k, i) => [k[1], k[2], values[i]]);
  }

  /**
   * One transaction: `puts` ([table, rowId, value]) and `deletes`
   * ([table, rowId]); `clear` first empties the room. Rejects with the
   * browser's error (QuotaExceededError when the origin is full).
   */
  async writeRoom(room, puts, deletes, clear = false) {
    const tx = this.db.transaction(RECORDS, 'readwrite');
    const store = tx.objectStore(RECORDS);
    if (clear) store.delete(roomRange(room));
    for (const [table, rowId] of deletes) store.delete([room, table, rowId]);
    for (const [table, rowId, value] of puts) store.put(value, [room, table, rowId]);
    await done(tx);
  }

  close() {
    this.db?.close();
    this.db = null;
  }
}

/** The same contract in memory: Node tests and `persist: 'memory'`. */
export class MemoryLocalDb {
  constructor() {
    this.keys = new Map();
    this.rooms = new Map();
    /** Set by tests to make the next write fail like a full disk. */
    this.failNextWrite = null;
  }

  async open() {
    return this;
  }

  async getKey(name) {
    return this.keys.get(name);
  }

  async putKeyIfAbsent(name, key) {
    if (!this.keys.has(name)) this.keys.set(name, key);
    return this.keys.get(name);
  }

  async putKey(name, key) {
    this.keys.set(name, key);
  }

  async deleteKey(name) {
    this.keys.delete(name);
  }

  #room(room) {
    let records = this.rooms.get(room);
    if (!records) this.rooms.set(room, (records = new Map()));
    return records;
  }

  async readRoom(room) {
    return [...this.#room(room)].map(([k, v]) => [...JSON.parse(k), v]);
  }

  async writeRoom(room, puts, deletes, clear = false) {
    if (this.failNextWrite) {
      const error = this.failNextWrite;
      this.failNextWrite = null;
      throw error;
    }
    const records = this.#room(room);
    if (clear) records.clear();
    for (const [table, rowId] of deletes) records.delete(JSON.stringify([table, rowId]));
    for (const [table, rowId, value] of puts) records.set(JSON.stringify([table, rowId]), value);
  }

  close() {}
}
