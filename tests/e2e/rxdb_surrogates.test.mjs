// Issue 14 (2): JSON.stringify of a JavaScript string holding a lone UTF-16
// surrogate (an emoji sliced at a code-unit index) writes an escape such as
// "\ud83c". That is valid JSON text (RFC 8259's grammar), and RxDB pushes it
// as is. Two RxDB databases replicate through the real roomsync node: client
// A writes such a document, then more documents; all of them arrive at
// client B, and the bytes the server returns (pull and stream) are the bytes
// A pushed, escapes unchanged. Raw invalid UTF-8 is still refused, with a
// 400 that names the item.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import EventSource from 'eventsource';
import { createRxDatabase } from 'rxdb';
import { replicateRxCollection } from 'rxdb/plugins/replication';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';
import { Subject } from 'rxjs';

import { roomApi, startNode, uniqueRoom, waitFor } from './lib/roomsync.mjs';

const messageSchema = {
  title: 'chat message with opaque members',
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 256 },
    timestamp: { type: 'integer', minimum: 0, maximum: 1e15, multipleOf: 1 },
    text: { type: 'string' },
    meta: { type: 'object' },
  },
  required: ['id', 'timestamp', 'text'],
};

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

// An RxDB client of the room's `messages`. It keeps what went over the wire
// as text: the exact JSON of every document it pushed (by id, latest state)
// and every raw pull body and stream `data:` it received.
async function createClient(name, api) {
  const db = await createRxDatabase({ name: `${name}-${process.pid}-${Date.now()}`, storage: getRxStorageMemory() });
  await db.addCollections({ messages: { schema: messageSchema } });
  const pushedJson = new Map();
  const pushStatuses = [];
  const rawReceived = [];
  const stream$ = new Subject();
  const es = new EventSource(api.streamUrl({ collection: 'messages' }));
  es.reconnectInterval = 200;
  es.onmessage = (e) => {
    rawReceived.push(e.data);
    const payload = JSON.parse(e.data);
    if (payload === 'RESYNC') {
      stream$.next('RESYNC');
      return;
    }
    stream$.next({ documents: payload.documents.map(fromServer), checkpoint: payload.checkpoint });
  };
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
        rawReceived.push(r.text);
        return { documents: r.body.documents.map(fromServer), checkpoint: r.body.checkpoint };
      },
      stream$: stream$.asObservable(),
    },
    push: {
      batchSize: 50,
      async handler(rows) {
        const body = rows.map((row) => ({
          newDocumentState: toServer(row.newDocumentState),
          assumedMasterState: toServer(row.assumedMasterState),
        }));
        const r = await api.push('messages', body);
        pushStatuses.push(r.status);
        if (r.status !== 200) throw new Error(`push: HTTP ${r.status} ${r.text}`);
        // What JSON.stringify wrote for each document is what the server
        // must hand back (it is already minified).
        for (const item of body) pushedJson.set(item.newDocumentState.id, JSON.stringify(item.newDocumentState));
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
    pushedJson,
    pushStatuses,
    rawReceived,
    errors,
    async docs() {
      const all = await db.messages.find().exec();
      return new Map(all.map((d) => [d.id, plain(d.toJSON())]).sort());
    },
    async close() {
      es.close();
      await replication.cancel();
      await db.close();
    },
  };
}

const plain = ({ id, timestamp, text, meta }) => (meta === undefined ? { id, timestamp, text } : { id, timestamp, text, meta });

test('RxDB: a document with lone-surrogate escapes and the documents after it arrive byte-identical at client B', async () => {
  const api = roomApi(node.url, uniqueRoom('rxdb-surrogates'));
  const a = await createClient('a', api);
  const b = await createClient('b', api);
  try {
    const t = Date.now();
    const pizza = '\u{1F355}'; // one code point, two UTF-16 code units
    const sliced = `x${pizza}`.slice(0, 2); // 'x' + a lone high surrogate
    assert.equal(sliced, 'x\ud83c');
    assert.equal(JSON.stringify(sliced), '"x\\ud83c"', 'JSON.stringify writes the escape');

    // The document of the issue, with lone surrogates also in nested
    // opaque members (a lone low surrogate, a high one at the end, a
    // reversed pair).
    await a.db.messages.insert({
      id: 'lone-1',
      timestamp: t,
      text: '\ud83c',
      meta: { parts: [sliced, 'a\udf55b', { k: 'z\udbff' }], reversed: '\udf55\ud83c', whole: pizza },
    });
    // Then more documents, in separate writes (separate pushes behind it).
    for (let i = 0; i < 5; i++) {
      await a.db.messages.insert({ id: `after-${i}`, timestamp: t + 1 + i, text: `message ${i} ${pizza}` });
    }
    await a.db.messages.bulkInsert(Array.from({ length: 10 }, (_, i) => (
      { id: `bulk-${i}`, timestamp: t + 10 + i, text: i % 2 ? `odd ${sliced}` : 'even' })));

    const ids = ['lone-1', ...Array.from({ length: 5 }, (_, i) => `after-${i}`),
      ...Array.from({ length: 10 }, (_, i) => `bulk-${i}`)].sort();
    await waitFor(async () => (await b.db.messages.count().exec()) === ids.length,
      { what: `all ${ids.length} documents on client B`, timeoutMs: 15000 })
      .catch((error) => {
        // Say why (a refused push is retried forever, blocking the rest).
        throw new Error(`${error.message}; A's push statuses: ${[...new Set(a.pushStatuses)]}; ` +
          `A's last push error: ${a.errors.at(-1)?.parameters?.errors?.[0]?.message ?? a.errors.at(-1)?.message}`);
      });
    await a.replication.awaitInSync();
    await b.replication.awaitInSync();

    // B holds the same strings, lone surrogates included.
    const [docsA, docsB] = [await a.docs(), await b.docs()];
    assert.deepEqual([...docsB.keys()], ids);
    assert.deepEqual(docsB, docsA);
    assert.equal(docsB.get('lone-1').text, '\ud83c');
    assert.equal(docsB.get('lone-1').meta.parts[2].k, 'z\udbff');

    // Byte-identical: the raw pull body holds each pushed document's JSON
    // exactly as A's JSON.stringify wrote it, escapes unchanged.
    assert.equal(a.pushedJson.size, ids.length);
    const raw = await api.pull({ collection: 'messages', batchSize: 1000 });
    assert.equal(raw.status, 200);
    for (const [id, json] of a.pushedJson) {
      assert.ok(raw.text.includes(json), `pull returns ${id} byte for byte: ${json}`);
    }
    const lone = a.pushedJson.get('lone-1');
    assert.ok(lone.includes('"text":"\\ud83c"'), lone);
    assert.ok(lone.includes('"k":"z\\udbff"'), lone);
    assert.ok(raw.text.includes('"text":"\\ud83c"'));
    assert.ok(raw.text.includes('"reversed":"\\udf55\\ud83c"'));
    // What B received over the wire (its pulls and its stream) carried the
    // same bytes.
    const receivedByB = b.rawReceived.join('\n');
    for (const [id, json] of a.pushedJson) {
      assert.ok(receivedByB.includes(json), `client B received ${id} byte for byte`);
    }

    assert.ok(a.pushStatuses.every((s) => s === 200), `push statuses: ${a.pushStatuses}`);
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  } finally {
    await a.close();
    await b.close();
  }
});

async function postBytes(url, bytes) {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: bytes });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) };
}

test('push: raw invalid UTF-8 and an id with a lone surrogate are refused with a 400 naming the item', async () => {
  const api = roomApi(node.url, uniqueRoom('surrogates-refused'));
  const t = Date.now();
  const good = `{"id":"ok","timestamp":${t},"s":"\\ud83c"}`;

  // A raw byte 0xFF in item 1's opaque member: not UTF-8 at all.
  const invalid = Buffer.concat([Buffer.from(`[${good},{"id":"bad","timestamp":${t},"s":"`),
    Buffer.from([0xff]), Buffer.from('"}]')]);
  let r = await postBytes(api.pushUrl('messages'), invalid);
  assert.equal(r.status, 400, r.text);
  assert.equal(r.body.error.code, 'invalid_argument');
  assert.match(r.body.error.message, /^item 1: /);
  assert.match(r.body.error.message, /UTF-8/);

  // A surrogate encoded in UTF-8 (CESU-style ED A0 BC) is not UTF-8 either.
  const cesu = Buffer.concat([Buffer.from(`[{"id":"c","timestamp":${t},"s":"`),
    Buffer.from([0xed, 0xa0, 0xbc]), Buffer.from('"}]')]);
  r = await postBytes(api.pushUrl('messages'), cesu);
  assert.equal(r.status, 400, r.text);
  assert.match(r.body.error.message, /^item 0: .*UTF-8/);

  // An id is compared on its decoded form, which must be Unicode text.
  r = await api.push('messages', `[${good},{"id":"x\\udc00","timestamp":${t}}]`);
  assert.equal(r.status, 400, r.text);
  assert.equal(r.body.error.code, 'invalid_argument');
  assert.match(r.body.error.message, /^item 1: .*"id".*surrogate/);

  // Nothing of those batches was written; the good document alone is.
  assert.deepEqual((await api.pull({ collection: 'messages' })).body.documents, []);
  r = await api.push('messages', `[${good}]`);
  assert.equal(r.status, 200, r.text);
  const pulled = await api.pull({ collection: 'messages' });
  assert.ok(pulled.text.includes(good), pulled.text);
});
