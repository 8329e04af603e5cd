// The client against the real roomsync binary (ROOMSYNC_BIN, else the
// build tree's): what the protocol fake cannot show, such as the server's
// own checkpoints, conflict policies and a restart under a live stream.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import EventSource from 'eventsource';
import { Backoff } from '../src/backoff.js';
import { MemoryLocalDb } from '../src/local_db.js';
import { openRoom } from '../src/room.js';
import { waitFor } from './helpers.mjs';

const built = fileURLToPath(new URL('../../../build/services/node/roomsync', import.meta.url));
process.env.ROOMSYNC_BIN ||= existsSync(built) ? built : '';
const { startNode, uniqueRoom } = await import('../../../tests/e2e/lib/roomsync.mjs');

const POLICIES = ['--collection_policies', 'meta=server-wins,pins=server-wins'];
let node;
before(async () => {
  node = await startNode({ args: POLICIES });
});
// Rooms a failed test left open would keep the process alive: all are
// closed at the end whatever happened.
const opened = [];
after(async () => {
  await Promise.allSettled(opened.map((room) => room.close()));
  await node?.stop();
});

// A fetch that fails like a dropped network while `offline.value` is set.
function flakyFetch(offline) {
  return (url, init) => (offline.value ? Promise.reject(new TypeError('offline')) : fetch(url, init));
}

function client(room, { password = 'pw', offline = { value: false }, ...options } = {}) {
  return openRoom({
    room,
    password,
    baseUrl: node.url,
    persist: 'memory',
    db: new MemoryLocalDb(),
    tabs: false,
    EventSource,
    fetch: flakyFetch(offline),
    backoff: () => new Backoff({ baseMs: 20, maxMs: 200 }),
    ...options,
  }).then((room) => {
    opened.push(room);
    return room;
  });
}

const texts = (room) =>
  Object.entries(room.store.getTable('messages'))
    .map(([id, row]) => `${id}=${row.text}`)
    .sort();

test('two clients converge through the server, deletes included, and the store holds no plaintext', async () => {
  const name = uniqueRoom('converge');
  const [a, b] = await Promise.all([client(name), client(name)]);
  assert.equal(a.store.getValue('kdf'), b.store.getValue('kdf'), 'both adopted one salt');
  for (let i = 0; i < 20; i++) (i % 2 ? a : b).put('messages', `m${i}`, { text: `zebra-${i}` });
  a.remove('messages', 'm1');
  await Promise.all([a.flush(), b.flush()]);
  await waitFor(() => texts(a).join() === texts(b).join() && texts(a).length === 19, 'convergence');
  assert.ok(!a.store.hasRow('messages', 'm1') && !b.store.hasRow('messages', 'm1'));
  const bytes = readFileSync(node.storePath).toString('latin1') + (existsSync(`${node.storePath}-wal`) ? readFileSync(`${node.storePath}-wal`).toString('latin1') : '');
  assert.ok(bytes.includes('ciphertext'), 'documents are in the file');
  assert.ok(!bytes.includes('zebra'), 'no plaintext in the server store');
  await Promise.all([a.close(), b.close()]);
});

test('a wrong password is refused before anything is written', async () => {
  const name = uniqueRoom('password');
  const a = await client(name, { password: 'right' });
  a.put('messages', 'x', { text: 'hello' });
  await a.flush();
  await assert.rejects(client(name, { password: 'wrong' }), { name: 'WrongPasswordError' });
  await a.close();
});

test('server-wins: both edit offline, the first push wins on both replicas and the loser is told', async () => {
  const name = uniqueRoom('serverwins');
  const offA = { value: false };
  const offB = { value: false };
  const a = await client(name, { offline: offA });
  const b = await client(name, { offline: offB });
  a.put('pins', 'p', { text: 'first' });
  await a.flush();
  await waitFor(() => b.store.getCell('pins', 'p', 'text') === 'first', 'b has the pin');
  const conflicts = [];
  b.on('conflict', (c) => conflicts.push(c));
  offA.value = offB.value = true;
  a.put('pins', 'p', { text: 'edit by a' });
  b.put('pins', 'p', { text: 'edit by b' });
  offA.value = false;
  await a.flush();
  offB.value = false;
  await b.flush();
  await waitFor(() => a.store.getCell('pins', 'p', 'text') === 'edit by a' && b.store.getCell('pins', 'p', 'text') === 'edit by a', 'both hold a\'s edit');
  assert.equal(conflicts.length, 1);
  assert.equal(conflicts[0].local.text, 'edit by b');
  assert.equal(b.stateOf('pins', 'p'), 'synced');
  await Promise.all([a.close(), b.close()]);
});

test('server-wins: two devices edit in the same millisecond; one edit wins on both and the other device is told', async () => {
  // Same clock on both devices: an echo of the same timestamp is not
  // necessarily this device's own write.
  const clock = { t: Date.now() };
  const name = uniqueRoom('sametime');
  const a = await client(name, { now: () => clock.t });
  const b = await client(name, { now: () => clock.t });
  a.put('pins', 'p', { text: 'first' });
  await a.flush();
  await waitFor(() => b.store.getCell('pins', 'p', 'text') === 'first', 'b has the pin');
  const conflicts = [];
  a.on('conflict', (c) => conflicts.push(['a', c]));
  b.on('conflict', (c) => conflicts.push(['b', c]));
  clock.t += 1000;
  // Both push at once (each write schedules its push): either may land
  // first; the other must hear of it and adopt the winner's edit.
  a.put('pins', 'p', { text: 'edit by a' });
  b.put('pins', 'p', { text: 'edit by b' });
  await Promise.all([a.flush(), b.flush()]);
  const text = (room) => room.store.getCell('pins', 'p', 'text');
  await waitFor(() => text(a) === text(b) && text(a).startsWith('edit by') && conflicts.length === 1, 'both hold one edit', 20000);
  const winner = text(a) === 'edit by a' ? 'a' : 'b';
  const loser = winner === 'a' ? 'b' : 'a';
  assert.deepEqual(conflicts.map(([who, c]) => [who, c.local?.text, c.server?.text]), [[loser, `edit by ${loser}`, `edit by ${winner}`]]);
  assert.equal(a.stateOf('pins', 'p'), 'synced');
  assert.equal(b.stateOf('pins', 'p'), 'synced');
  await Promise.all([a.close(), b.close()]);
});

test('through a server restart: the stream reconnects, writes made meanwhile arrive once', async () => {
  const name = uniqueRoom('restart');
  const a = await client(name);
  const b = await client(name);
  await waitFor(() => a.status.streaming && b.status.streaming, 'streams');
  const seen = [];
  b.store.addRowListener('messages', null, (store, t, id) => store.hasRow(t, id) && seen.push(id));
  a.put('messages', 'before', { text: '1' });
  await a.flush();
  await waitFor(() => b.store.hasRow('messages', 'before'), 'before');
  const { dir, port } = node;
  await node.stop();
  a.put('messages', 'during', { text: '2' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.stateOf('messages', 'during'), 'pending');
  node = await startNode({ dir, port, args: POLICIES });
  await a.flush(20_000);
  await waitFor(() => b.store.hasRow('messages', 'during'), 'during', 20_000);
  assert.deepEqual(seen, ['before', 'during']);
  await Promise.all([a.close(), b.close()]);
});

test('the replica checks itself against the room digest; one that differs pulls the room again and matches', async () => {
  const name = uniqueRoom('digest');
  const [a, b] = await Promise.all([client(name), client(name)]);
  for (let i = 0; i < 12; i++) a.put('messages', `m${i}`, { text: `é-${i} 😀` });
  a.remove('messages', 'm3');
  await a.flush();
  await waitFor(() => texts(b).length === 11 && b.status.verified === true, 'b caught up and verified');
  await waitFor(() => a.status.verified === true, 'a verified from its own echoes');
  // A local store that lost a server state (say, a torn write before a
  // reload): b's digest index no longer holds one document.
  const [lost] = b.store.getRowIds('_digests');
  b.store.delRow('_digests', lost);
  b.digest = null;
  const pullsBefore = b.api.requests.pull;
  a.put('messages', 'm12', { text: 'after' });
  await a.flush();
  // The next event's digest differs: b pulls the room from the beginning,
  // matches again, and holds exactly what a holds.
  await waitFor(() => b.api.requests.pull > pullsBefore && texts(b).length === 12, 'b pulled again');
  await waitFor(() => b.store.getRowIds('_digests').includes(lost), 'the lost state is back');
  assert.equal(b.status.verified, true);
  assert.deepEqual(texts(b), texts(a));
  await Promise.all([a.close(), b.close()]);
});

test('a new device joins from the room\'s encrypted snapshot, pulls only the tail, and verifies against the digest', async () => {
  const name = uniqueRoom('snapshot');
  const a = await client(name);
  for (let i = 0; i < 30; i++) a.put('messages', `m${i}`, { text: `before-${i} é` });
  a.remove('messages', 'm2');
  await a.flush();
  const stored = await a.uploadSnapshot();
  assert.ok(stored.seq >= 31 && stored.bytes > 0, JSON.stringify(stored));
  // The tail: an edit, a delete of a snapshotted document, a new one.
  a.put('messages', 'm5', { text: 'edited' });
  a.remove('messages', 'm7');
  a.put('messages', 'm30', { text: 'after' });
  await a.flush();
  const b = await client(name);
  await waitFor(() => b.status.verified === true && texts(b).length === 29, 'b joined and verified');
  assert.deepEqual(b.joinedFrom, { seq: stored.seq, documents: 30 }, '29 live messages and the room\'s kdf document');
  assert.deepEqual(texts(b), texts(a));
  // A device told to ignore snapshots pulls everything and agrees.
  const c = await client(name, { joinFromSnapshot: false });
  await waitFor(() => c.status.verified === true && texts(c).length === 29, 'c pulled and verified');
  assert.equal(c.joinedFrom, null);
  assert.deepEqual(texts(c), texts(b));
  // Keeping 10 messages: the snapshot's older ones count in the digest
  // without being decrypted or stored, and the kept rows are a full pull's.
  const small = await client(name, { maxMessages: 10 });
  const smallFull = await client(name, { maxMessages: 10, joinFromSnapshot: false });
  await waitFor(() => small.status.verified === true && smallFull.status.verified === true, 'both verified');
  assert.equal(small.joinedFrom.seq, stored.seq);
  assert.equal(texts(small).length, 10);
  assert.deepEqual(texts(small), texts(smallFull));
  assert.equal(small.store.getRowCount('_digests'), smallFull.store.getRowCount('_digests'));
  // Another password is refused by the room's key check before a snapshot
  // is read (snapshot.test.mjs: another key cannot open one).
  await assert.rejects(client(name, { password: 'other' }), { name: 'WrongPasswordError' });
  await Promise.all([a.close(), b.close(), c.close(), small.close(), smallFull.close()]);
});
