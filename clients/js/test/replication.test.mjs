// The replication state machine against FakeServer: checkpoints, RESYNC,
// epoch changes, retries, the persisted outbox, conflicts and pruning.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encryptDocument, importRoomKey } from '../src/crypto.js';
import { MemoryLocalDb, RAW_KEY, newServer, openTestRoom, waitFor } from './helpers.mjs';

const key = await importRoomKey(RAW_KEY);
const serverDoc = (id, timestamp, fields, collection = 'messages') => encryptDocument(key, { room: 'r1', collection, id, timestamp, fields });
const checkpointOf = (url) => {
  const cp = new URL(url).searchParams.get('checkpoint');
  return cp ? JSON.parse(cp) : null;
};

async function seed(server, n, from = 0) {
  for (let i = from; i < from + n; i++) server.put('messages', await serverDoc(`m${String(i).padStart(5, '0')}`, 1000 + i, { text: `t${i}` }));
}

test('pull is batched until caught up, then the stream follows from the checkpoint', async () => {
  const server = await newServer();
  await seed(server, 2500);
  const room = await openTestRoom(server, { maxMessages: 10_000 });
  await waitFor(() => room.status.streaming, 'stream');
  const pulls = server.pulls().filter((r) => !r.url.includes('collection=meta'));
  assert.equal(pulls.length, 3, 'three pages of 1000');
  assert.deepEqual(pulls.map((r) => checkpointOf(r.url)?.seq ?? 0), [0, 1000, 2000]);
  assert.equal(room.store.getRowCount('messages'), 2500);
  const stream = server.requests.find((r) => r.url.includes('/pull/stream'));
  assert.equal(checkpointOf(stream.url).seq, server.seq);
  server.put('messages', await serverDoc('live', 9999, { text: 'live' }));
  await waitFor(() => room.store.hasRow('messages', 'live'), 'live change');
  await room.close();
});

test('the checkpoint is persisted with its rows: a reload pulls only what is new', async () => {
  const server = await newServer();
  const db = new MemoryLocalDb();
  await seed(server, 5);
  let room = await openTestRoom(server, { db });
  await waitFor(() => room.status.streaming, 'stream');
  await room.close();
  await seed(server, 3, 5);
  server.requests.length = 0;
  room = await openTestRoom(server, { db });
  assert.equal(room.store.getRowCount('messages'), 5, 'cached rows before any network answer');
  await waitFor(() => room.store.getRowCount('messages') === 8, 'new rows');
  const first = server.pulls().find((r) => !r.url.includes('collection=meta'));
  assert.equal(checkpointOf(first.url).seq, 6);
  await room.close();
});

test('RESYNC makes the client pull from its last checkpoint and reopen the stream', async () => {
  const server = await newServer();
  await seed(server, 3);
  const room = await openTestRoom(server);
  await waitFor(() => room.status.streaming, 'stream');
  server.requests.length = 0;
  server.resync();
  await waitFor(() => server.requests.some((r) => r.url.includes('/pull/stream')), 'a new stream');
  const pull = server.pulls()[0];
  assert.equal(checkpointOf(pull.url).seq, 4, 'pulled from the last checkpoint');
  await room.close();
});

test('an epoch change pulls from the beginning, drops what the new history lacks, keeps pending writes', async () => {
  const server = await newServer();
  await seed(server, 4);
  const room = await openTestRoom(server);
  await waitFor(() => room.status.streaming, 'stream');
  server.failNext((url, init) => init?.method === 'POST', 0, 'network', 100); // the pending write stays pending
  room.put('messages', 'mine', { text: 'pending' });
  server.recreate('e2');
  server.put('messages', await serverDoc('m00001', 5000, { text: 'restored' }));
  server.requests.length = 0;
  server.resync();
  await waitFor(() => !room.store.hasRow('messages', 'm00002'), 'dropped rows');
  assert.equal(checkpointOf(server.pulls()[0].url).epoch, 'e1', 'asked with the old checkpoint');
  assert.equal(room.store.getCell('messages', 'm00001', 'text'), 'restored');
  assert.equal(room.store.getCell('messages', 'mine', '_state'), 'pending');
  assert.equal(JSON.parse(room.store.getValue('checkpoint')).epoch, 'e2');
  server.failures.length = 0;
  room.put('messages', 'poke', { text: 'x' });
  await room.flush();
  assert.ok(server.docs.has('messages:mine'), 'pending write pushed into the new epoch');
  await room.close();
});

test('a checkpoint older than a tombstone compaction starts over and drops the deleted rows', async () => {
  const server = await newServer();
  const db = new MemoryLocalDb();
  await seed(server, 4);
  let room = await openTestRoom(server, { db });
  await waitFor(() => room.status.streaming, 'stream');
  assert.ok(room.store.hasRow('messages', 'm00002'));
  const before = JSON.parse(room.store.getValue('checkpoint')).seq;
  await room.close();
  // Offline, m00002 is deleted and its tombstone compacted away.
  server.put('messages', { id: 'm00002', timestamp: 9000, _deleted: true });
  await seed(server, 1, 4);
  server.compact();
  server.requests.length = 0;
  room = await openTestRoom(server, { db });
  await waitFor(() => room.store.hasRow('messages', 'm00004'), 'new row');
  await waitFor(() => !room.store.hasRow('messages', 'm00002'), 'deleted row dropped');
  const first = server.pulls().find((r) => !r.url.includes('collection=meta'));
  assert.equal(checkpointOf(first.url).seq, before, 'asked with the old checkpoint');
  assert.deepEqual(room.store.getRowIds('messages').sort(), ['m00000', 'm00001', 'm00003', 'm00004']);
  assert.equal(JSON.parse(room.store.getValue('checkpoint')).compacted, server.compactedThrough);
  await room.close();
});

test('pushes retry with backoff through network errors and 503, and each write lands once', async () => {
  const server = await newServer();
  const room = await openTestRoom(server);
  await waitFor(() => room.status.streaming, 'stream');
  server.failNext((url, init) => init?.method === 'POST', 0);
  server.failNext((url, init) => init?.method === 'POST', 503);
  room.put('messages', 'a', { text: 'one' });
  await waitFor(() => !room.status.online, 'offline status after a network error');
  await room.flush();
  assert.equal(room.stateOf('messages', 'a'), 'synced');
  assert.equal(server.pushes().length, 3);
  assert.equal(server.docs.get('messages:a').seq, 2);
  assert.equal(room.status.online, true);
  await room.close();
});

test('the outbox survives a reload: unacknowledged writes are pushed once, acknowledged ones never again', async () => {
  const server = await newServer();
  const db = new MemoryLocalDb();
  let room = await openTestRoom(server, { db });
  await waitFor(() => room.status.streaming, 'stream');
  room.put('messages', 'acked', { text: 'one' });
  await room.flush();
  server.failNext((url, init) => init?.method === 'POST', 0, 'network', 1000);
  room.put('messages', 'queued', { text: 'two' });
  room.put('messages', 'queued', { text: 'two, edited' }); // coalesced: one entry
  await new Promise((r) => setTimeout(r, 50));
  await room.close();
  server.failures.length = 0;
  server.requests.length = 0;
  room = await openTestRoom(server, { db });
  assert.equal(room.stateOf('messages', 'queued'), 'pending');
  await room.flush();
  const pushed = server.pushes().flatMap((r) => JSON.parse(r.body).map((row) => row.newDocumentState.id));
  assert.deepEqual(pushed, ['queued']);
  assert.equal(room.stateOf('messages', 'queued'), 'synced');
  await room.close();
});

test('a refused document is isolated and marked failed; the rest of the batch lands', async () => {
  const server = await newServer();
  const room = await openTestRoom(server);
  await waitFor(() => room.status.streaming, 'stream');
  server.failNext((url, init) => init?.method === 'POST' && JSON.parse(init.body).length > 1, 400, 'invalid_argument');
  server.failNext((url, init) => init?.method === 'POST' && init.body.includes('"bad"'), 400, 'timestamp_in_future');
  room.store.transaction(() => {
    room.put('messages', 'good', { text: 'ok' });
    room.put('messages', 'bad', { text: 'refused' });
  });
  await room.flush();
  assert.equal(room.stateOf('messages', 'good'), 'synced');
  assert.equal(room.stateOf('messages', 'bad'), 'failed');
  assert.equal(room.status.failed, 1);
  assert.match(room.status.lastError, /timestamp_in_future/);
  room.retry('messages', 'bad');
  await room.flush();
  assert.equal(room.stateOf('messages', 'bad'), 'synced');
  await room.close();
});

test('conflicts: the server state replaces the local row (lww) and a merge hook pushes its result on top', async () => {
  const server = await newServer({ policies: { pins: 'server-wins' } });
  const conflicts = [];
  const room = await openTestRoom(server, { now: () => 1000 });
  room.on('conflict', (c) => conflicts.push(c));
  await waitFor(() => room.status.streaming, 'stream');
  server.failNext((url, init) => init?.method === 'POST', 0, 'network', 5);
  room.put('messages', 'x', { text: 'Hey' }); // ts 1000
  server.put('messages', await serverDoc('x', 2000, { text: 'Hi' })); // a newer write elsewhere
  await waitFor(() => room.store.getCell('messages', 'x', 'text') === 'Hi', 'server state adopted');
  assert.equal(room.stateOf('messages', 'x'), 'synced');
  await room.close();

  const merging = await openTestRoom(server, {
    db: new MemoryLocalDb(),
    now: () => 1500,
    onConflict: (local, remote) => ({ text: `${remote.text} + ${local.text}` }),
  });
  merging.on('conflict', (c) => conflicts.push(c));
  await waitFor(() => merging.status.streaming, 'stream');
  server.put('pins', await serverDoc('p', 1400, { text: 'server pin' }, 'pins'));
  await waitFor(() => merging.store.hasRow('pins', 'p'), 'server pin');
  server.failNext((url, init) => init?.method === 'POST', 0, 'network', 1);
  // written as if the server's pin were not known: server-wins refuses it
  merging.store.transaction(() => {
    merging.store.delRow('pins', 'p');
  });
  merging.put('pins', 'p', { text: 'local pin' });
  merging.store.setCell('_outbox', 'pins:p', 'mts', -1);
  await waitFor(() => server.docs.get('pins:p')?.timestamp > 1400, 'merged write pushed');
  await merging.flush();
  assert.equal(merging.store.getCell('pins', 'p', 'text'), 'server pin + local pin');
  const pushedMerge = JSON.parse(server.pushes().at(-1).body)[0];
  assert.deepEqual(pushedMerge.assumedMasterState, { id: 'p', timestamp: 1400 });
  assert.ok(conflicts.some((c) => c.collection === 'pins' && c.merged?.text === 'server pin + local pin'));
  await merging.close();
});

test('a document that fails authentication is shown as tampered, never as text', async () => {
  const server = await newServer();
  const good = await serverDoc('a', 1000, { text: 'mine' });
  server.put('messages', good);
  server.put('messages', { ...good, id: 'b' }); // replayed under another id
  const room = await openTestRoom(server);
  await waitFor(() => room.store.hasRow('messages', 'b'), 'rows');
  assert.equal(room.store.getCell('messages', 'a', 'text'), 'mine');
  assert.equal(room.store.getCell('messages', 'b', '_tampered'), true);
  assert.equal(room.store.getCell('messages', 'b', 'text'), undefined);
  await room.close();
});

test('pruning keeps the newest N messages and scrolls back through history', async () => {
  const server = await newServer();
  await seed(server, 30);
  const db = new MemoryLocalDb();
  const room = await openTestRoom(server, { db, maxMessages: 10 });
  await waitFor(() => room.status.streaming, 'stream');
  const ids = room.store.getRowIds('messages').sort();
  assert.equal(ids.length, 10);
  assert.equal(ids[0], 'm00020');
  assert.equal(server.docs.size, 31, 'nothing pruned on the server');
  const added = await room.loadOlder('messages', 5);
  assert.ok(added >= 5);
  assert.ok(room.store.hasRow('messages', 'm00019'));
  assert.equal(room.store.getCell('messages', 'm00019', '_history'), true);
  let more;
  while ((more = await room.loadOlder('messages', 50)) > 0);
  assert.equal(room.store.getRowCount('messages'), 30);
  assert.equal(more, 0);
  await room.close();
  // scroll-back rows are not persisted
  const stored = (await db.readRoom('r1')).filter(([t]) => t === 'messages');
  assert.equal(stored.length, 10);
});

test('a full disk prunes harder instead of losing the write', async () => {
  const server = await newServer();
  await seed(server, 40);
  const db = new MemoryLocalDb();
  const room = await openTestRoom(server, { db, maxMessages: 200 });
  await waitFor(() => room.status.streaming, 'stream');
  await new Promise((r) => setTimeout(r, 20));
  db.failNextWrite = new DOMException('full', 'QuotaExceededError');
  server.failNext((url, init) => init?.method === 'POST', 0, 'network', 1000);
  room.put('messages', 'zz-new', { text: 'must not be lost' });
  await waitFor(() => room.status.quotaPruned, 'pruned');
  await new Promise((r) => setTimeout(r, 50));
  await room.close();
  const reopened = await openTestRoom(await newServer(), { db });
  assert.equal(reopened.store.getCell('messages', 'zz-new', 'text'), 'must not be lost');
  assert.ok(reopened.store.hasRow('_outbox', 'messages:zz-new'));
  await reopened.close();
});

test('a request that never answers times out and is retried', async () => {
  const server = await newServer();
  const room = await openTestRoom(server, { requestTimeoutMs: 100 });
  await waitFor(() => room.status.streaming, 'stream');
  server.failNext((url, init) => init?.method === 'POST', -1);
  room.put('messages', 'a', { text: 'one' });
  await room.flush(5000);
  assert.equal(room.stateOf('messages', 'a'), 'synced');
  assert.equal(server.pushes().length, 2);
  await room.close();
});
