import { Backoff } from '../src/backoff.js';
import { toBase64 } from '../src/bytes.js';
import { importRoomKey, makeKeyCheck, newSalt } from '../src/crypto.js';
import { MemoryLocalDb } from '../src/local_db.js';
import { openRoom } from '../src/room.js';
import { FakeServer } from './fake_server.mjs';

export const RAW_KEY = new Uint8Array(32).fill(7);

/** A room on `server` with fast retries; `db` survives a "reload". */
export function openTestRoom(server, { db = new MemoryLocalDb(), ...options } = {}) {
  return openRoom({
    room: 'r1',
    rawKey: RAW_KEY,
    baseUrl: 'http://fake.test',
    persist: 'memory',
    db,
    tabs: false,
    fetch: server.fetch,
    EventSource: server.EventSource,
    backoff: () => new Backoff({ baseMs: 5, maxMs: 20 }),
    ...options,
  });
}

export async function waitFor(condition, what = 'condition', timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export { FakeServer, MemoryLocalDb };

/** A FakeServer whose room r1 already has its meta/kdf document (seq 1). */
export async function newServer(options) {
  const server = new FakeServer(options);
  const salt = toBase64(newSalt());
  const check = await makeKeyCheck(await importRoomKey(RAW_KEY), 'r1', salt);
  server.put('meta', { id: 'kdf', timestamp: 1, alg: 'raw', salt, check });
  return server;
}
