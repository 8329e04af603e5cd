// Two RxDB databases (in-memory storage) replicate a `messages` collection
// through the real roomsync node with RxDB's own replication plugin: pull
// handler → GET replicate/pull, push handler → POST replicate/push,
// pull.stream$ ← EventSource on replicate/pull/stream.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import EventSource from 'eventsource';
import { createRxDatabase } from 'rxdb';
import { replicateRxCollection } from 'rxdb/plugins/replication';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { Subject } from 'rxjs';

import { roomApi, startNode, uniqueRoom, waitFor } from './lib/roomsync.mjs';

const messageSchema = {
  title: 'encrypted chat message',
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 256 },
    timestamp: { type: 'integer', minimum: 0, maximum: 1e15, multipleOf: 1 },
    iv: { type: 'string' },
    ciphertext: { type: 'string' },
  },
  required: ['id', 'timestamp', 'iv', 'ciphertext'],
};

// RxDB's internal members never go to the server; `_deleted` does (it is
// the protocol's tombstone), `_collection` must not.
function toServer(d) {
  if (!d) return null;
  const { _meta, _rev, _attachments, _collection, ...rest } = d;
  return { ...rest, _deleted: Boolean(d._deleted) };
}
function fromServer(d) {
  const { _collection, ...rest } = d;
  return { ...rest, _deleted: Boolean(d._deleted) };
}

let node;
before(async () => {
  node = await startNode();
});
after(async () => {
  await node?.stop();
});

async function createClient(name, api) {
  const db = await createRxDatabase({ name: `${name}-${process.pid}-${Date.now()}`, storage: getRxStorageMemory() });
  await db.addCollections({ messages: { schema: messageSchema } });
  const pushedRows = [];
  const stream$ = new Subject();
  const es = new EventSource(api.streamUrl({ collection: 'messages' }));
  es.reconnectInterval = 200;
  es.onmessage = (e) => {
    const payload = JSON.parse(e.data);
    if (payload === 'RESYNC') {
      stream$.next('RESYNC');
      return;
    }
    stream$.next({ documents: payload.documents.map(fromServer), checkpoint: payload.checkpoint });
  };
  // After a (re)connect without a checkpoint, changes may have been missed:
  // RxDB then pulls from its own checkpoint.
  es.onopen = () => stream$.next('RESYNC');

  const replication = replicateRxCollection({
    collection: db.messages,
    replicationIdentifier: `roomsync-${api.base}`,
    live: true,
    retryTime: 200,
    waitForLeadership: false,
    pull: {
      batchSize: 50,
      async handler(checkpoint, batchSize) {
        const r = await api.pull({ collection: 'messages', checkpoint: checkpoint ?? undefined, batchSize });
        if (r.status !== 200) throw new Error(`pull: HTTP ${r.status} ${r.text}`);
        return { documents: r.body.documents.map(fromServer), checkpoint: r.body.checkpoint };
      },
      stream$: stream$.asObservable(),
    },
    push: {
      batchSize: 50,
      async handler(rows) {
        pushedRows.push(...rows);
        const body = rows.map((row) => ({
          newDocumentState: toServer(row.newDocumentState),
          assumedMasterState: toServer(row.assumedMasterState),
        }));
        const r = await api.push('messages', body);
        if (r.status !== 200) throw new Error(`push: HTTP ${r.status} ${r.text}`);
        return r.body.conflicts.map(fromServer);
      },
    },
  });
  const errors = [];
  replication.error$.subscribe((e) => errors.push(e));
  await replication.awaitInitialReplication();
  return {
    db,
    replication,
    pushedRows,
    errors,
    async docs() {
      const all = await db.messages.find().exec();
      return new Map(all.map((d) => [d.id, d.toJSON()]).sort());
    },
    async close() {
      es.close();
      await replication.cancel();
      await db.close();
    },
  };
}

const plain = ({ id, timestamp, iv, ciphertext }) => ({ id, timestamp, iv, ciphertext });

test('RxDB: a document inserted on client A appears on client B (and deletes replicate)', async () => {
  const api = roomApi(node.url, uniqueRoom('rxdb'));
  const a = await createClient('a', api);
  const b = await createClient('b', api);
  try {
    const t = Date.now();
    await a.db.messages.insert({ id: 'msg-1', timestamp: t, iv: 'aXY=', ciphertext: 'SGk=' });
    await waitFor(async () => (await b.db.messages.findOne('msg-1').exec()) !== null, { what: 'msg-1 on B' });
    assert.deepEqual(plain((await b.db.messages.findOne('msg-1').exec()).toJSON()),
      { id: 'msg-1', timestamp: t, iv: 'aXY=', ciphertext: 'SGk=' });

    // What RxDB sent, and what the server stored: no RxDB internals.
    assert.ok(a.pushedRows.length >= 1);
    const row = a.pushedRows[0];
    assert.equal(row.assumedMasterState, undefined);
    assert.equal(row.newDocumentState.id, 'msg-1');
    const stored = await api.pull({ collection: 'messages' });
    assert.equal(stored.body.documents.length, 1);
    assert.deepEqual(Object.keys(stored.body.documents[0]).sort(), ['_deleted', 'ciphertext', 'id', 'iv', 'timestamp']);

    // B writes a batch; A receives it live.
    await b.db.messages.bulkInsert(Array.from({ length: 20 }, (_, i) => (
      { id: `b-${i}`, timestamp: t + i, iv: 'aXY=', ciphertext: `Yi0${i}` })));
    await waitFor(async () => (await a.db.messages.count().exec()) === 21, { what: '21 messages on A' });

    // An update and a delete on A reach B.
    const m = await a.db.messages.findOne('b-3').exec();
    await m.patch({ ciphertext: 'ZWRpdGVk', timestamp: t + 1000 });
    await (await a.db.messages.findOne('b-4').exec()).remove();
    await waitFor(async () => {
      const docB3 = await b.db.messages.findOne('b-3').exec();
      return docB3?.ciphertext === 'ZWRpdGVk' && (await b.db.messages.findOne('b-4').exec()) === null;
    }, { what: 'update and delete on B' });

    await a.replication.awaitInSync();
    await b.replication.awaitInSync();
    const [docsA, docsB] = [await a.docs(), await b.docs()];
    assert.deepEqual([...docsA.values()].map(plain), [...docsB.values()].map(plain));
    const server = (await api.pullAll({ collection: 'messages' })).documents;
    assert.equal(server.find((d) => d.id === 'b-4')._deleted, true, 'the tombstone is on the server');
    assert.deepEqual(server.filter((d) => !d._deleted).map(plain).sort((x, y) => x.id.localeCompare(y.id)),
      [...docsA.values()].map(plain));
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  } finally {
    await a.close();
    await b.close();
  }
});

test('RxDB: concurrent offline edits of one message resolve the same on both clients (LWW)', async () => {
  const api = roomApi(node.url, uniqueRoom('rxdb-conflict'));
  const a = await createClient('a', api);
  const b = await createClient('b', api);
  try {
    const t = Date.now() - 60000;
    await a.db.messages.insert({ id: 'msg-1', timestamp: t, iv: 'aXY=', ciphertext: 'SGVsbG8=' });
    await waitFor(async () => (await b.db.messages.findOne('msg-1').exec()) !== null, { what: 'msg-1 on B' });
    await a.replication.awaitInSync();
    await b.replication.awaitInSync();

    // Both go offline and edit the same message; B's edit is the later one
    // ("Hi"), A's the earlier ("Hey"). B comes back first, then A.
    await a.replication.pause();
    await b.replication.pause();
    await (await a.db.messages.findOne('msg-1').exec()).patch({ ciphertext: 'SGV5', timestamp: t + 1000 });
    await (await b.db.messages.findOne('msg-1').exec()).patch({ ciphertext: 'SGk=', timestamp: t + 2000 });
    await b.replication.start();
    await b.replication.awaitInSync();
    await a.replication.start();
    await a.replication.awaitInSync();

    const winner = { id: 'msg-1', timestamp: t + 2000, iv: 'aXY=', ciphertext: 'SGk=' };
    await waitFor(async () => (await a.db.messages.findOne('msg-1').exec())?.ciphertext === 'SGk=', { what: 'A adopts "Hi"' });
    await waitFor(async () => (await b.db.messages.findOne('msg-1').exec())?.ciphertext === 'SGk=', { what: 'B keeps "Hi"' });
    assert.deepEqual(plain((await a.db.messages.findOne('msg-1').exec()).toJSON()), winner);
    assert.deepEqual(plain((await b.db.messages.findOne('msg-1').exec()).toJSON()), winner);
    const server = (await api.pull({ collection: 'messages' })).body.documents;
    assert.deepEqual(server.map(plain), [winner]);
    // A's push was answered with the server's document as a conflict.
    const aRow = a.pushedRows.find((r) => r.newDocumentState.ciphertext === 'SGV5');
    assert.ok(aRow, 'A pushed its edit');
    assert.equal(aRow.assumedMasterState.ciphertext, 'SGVsbG8=');

    // The other order: the later edit comes back last and wins on both.
    await a.replication.pause();
    await b.replication.pause();
    await (await a.db.messages.findOne('msg-1').exec()).patch({ ciphertext: 'QQ==', timestamp: t + 4000 });
    await (await b.db.messages.findOne('msg-1').exec()).patch({ ciphertext: 'Qg==', timestamp: t + 3000 });
    await a.replication.start();
    await a.replication.awaitInSync();
    await b.replication.start();
    await b.replication.awaitInSync();
    await waitFor(async () => (await b.db.messages.findOne('msg-1').exec())?.ciphertext === 'QQ==', { what: 'B adopts A\'s later edit' });
    assert.equal((await a.db.messages.findOne('msg-1').exec()).ciphertext, 'QQ==');
    assert.deepEqual((await api.pull({ collection: 'messages' })).body.documents.map((d) => d.ciphertext), ['QQ==']);
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  } finally {
    await a.close();
    await b.close();
  }
});
