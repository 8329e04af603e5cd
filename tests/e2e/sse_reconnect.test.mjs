// The live stream with a real EventSource (the `eventsource` package, v2:
// Node's implementation of the browser API, with automatic reconnects that
// send Last-Event-ID): catch-up then live, and reconnects that lose nothing
// when the connection is cut or the server restarts on the same store.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import EventSource from 'eventsource';

import {
  doc, pushWithRetry, roomApi, sleep, startNode, startProxy, uniqueRoom, waitFor,
} from './lib/roomsync.mjs';

// A client that keeps what the stream gave it, as an app would.
class StreamClient {
  constructor(url, { lastEventId, reconnectMs = 200 } = {}) {
    this.events = [];
    this.docs = new Map();
    this.opens = 0;
    this.errors = 0;
    this.resyncs = 0;
    this.es = new EventSource(url, lastEventId ? { headers: { 'Last-Event-ID': lastEventId } } : {});
    this.es.reconnectInterval = reconnectMs;
    this.es.onopen = () => {
      this.opens += 1;
    };
    this.es.onerror = () => {
      this.errors += 1;
    };
    this.es.onmessage = (e) => {
      const payload = JSON.parse(e.data);
      if (payload === 'RESYNC') {
        this.resyncs += 1;
        return;
      }
      assert.deepEqual(JSON.parse(e.lastEventId), payload.checkpoint, 'id: is the checkpoint');
      this.events.push(payload);
      for (const d of payload.documents) this.docs.set(d.id, d);
    };
  }

  get seqs() {
    return this.events.map((p) => p.checkpoint.seq);
  }

  get lastSeq() {
    return this.events.length ? this.events.at(-1).checkpoint.seq : 0;
  }

  close() {
    this.es.close();
  }
}

// What the client holds must be exactly what a full pull gives, with every
// event's seq strictly increasing (no duplicate, no reordering).
async function assertConverged(client, api, { collection = 'messages', since } = {}) {
  const full = await api.pullAll({ collection, checkpoint: since });
  await waitFor(() => client.lastSeq >= full.checkpoint.seq, {
    timeoutMs: 30000, what: `stream to reach seq ${full.checkpoint.seq} (at ${client.lastSeq})`,
  });
  // Within one event, too, documents are in order and each id once.
  for (const p of client.events) {
    const ids = p.documents.map((d) => d.id);
    assert.equal(new Set(ids).size, ids.length, 'a document twice in one event');
  }
  const expected = new Map(full.documents.map((d) => [d.id, d]));
  assert.equal(client.docs.size, expected.size, 'documents held by the client vs a full pull');
  assert.deepEqual(new Map([...client.docs].sort()), new Map([...expected].sort()));
  assert.equal(client.resyncs, 0, 'no RESYNC expected for small catch-ups');
  // Nothing was lost (above); nothing may come twice either. A failure here
  // with "seq N after N" is the server's catch-up → live handover bug that
  // sse_handover.test.mjs reproduces deterministically.
  const seqs = client.seqs;
  for (let i = 1; i < seqs.length; i += 1) {
    assert.ok(seqs[i] > seqs[i - 1], `seq ${seqs[i]} after ${seqs[i - 1]}: duplicate or out of order ` +
      '(see the SERVER BUG in sse_handover.test.mjs)');
  }
  return full;
}

// Pushes `count` changes, one per request, a quarter of them updates of
// earlier documents (a changed document must come once, newest).
async function pushChanges(api, count, { prefix, pauseMs = 5, onEach = async () => {} }) {
  for (let i = 0; i < count; i += 1) {
    const id = i % 4 === 3 ? `${prefix}-${i - 3}` : `${prefix}-${i}`;
    const r = await pushWithRetry(api, 'messages', [doc(id, { n: i }, Date.now() + i)]);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.conflicts, []);
    await onEach(i);
    if (pauseMs) await sleep(pauseMs);
  }
}

test('EventSource: catch-up from Last-Event-ID, then live, no gap no duplicate', async () => {
  const node = await startNode();
  try {
    const api = roomApi(node.url, uniqueRoom('catchup'));
    await api.push('messages', [doc('a1'), doc('a2'), doc('a3')]);
    await api.push('messages', [doc('a4')]);
    await api.push('messages', [doc('a5')]);
    const cp = (await api.pull({ collection: 'messages', batchSize: 2 })).body.checkpoint;
    assert.equal(cp.seq, 2);

    const client = new StreamClient(api.streamUrl({ collection: 'messages' }), { lastEventId: JSON.stringify(cp) });
    try {
      await waitFor(() => client.docs.size === 3, { what: 'catch-up of a3..a5' });
      assert.deepEqual([...client.docs.keys()], ['a3', 'a4', 'a5']);
      // Live changes, also while other changes are being committed.
      await Promise.all([api.push('messages', [doc('b1')]), api.push('messages', [doc('b2')])]);
      await api.push('messages', [doc('b3'), doc('a1', {}, Date.now() + 1)]);
      const full = await assertConverged(client, api, { since: cp });
      assert.equal(full.checkpoint.seq, 9);
      assert.ok(!client.docs.has('a2'), 'a2 was before the checkpoint');
      assert.equal(client.opens, 1);
    } finally {
      client.close();
    }

    // Without a checkpoint: only what is committed after the stream opened.
    const fresh = new StreamClient(api.streamUrl({}));
    try {
      await waitFor(() => fresh.opens === 1, { what: 'open' });
      await api.push('threads', [doc('t1')]);
      await waitFor(() => fresh.docs.size === 1, { what: 'live t1' });
      assert.deepEqual([...fresh.docs.values()][0]._collection, 'threads');
    } finally {
      fresh.close();
    }
  } finally {
    await node.stop();
  }
});

test('EventSource reconnects with Last-Event-ID after the connection is cut, losing nothing', async () => {
  const node = await startNode();
  const proxy = await startProxy(node.port);
  try {
    const direct = roomApi(node.url, uniqueRoom('cut'));
    const room = direct.base.split('/').pop();
    await direct.push('messages', [doc('before-1'), doc('before-2')]);
    const viaProxy = roomApi(proxy.url, room);
    const client = new StreamClient(viaProxy.streamUrl({ collection: 'messages' }), {
      lastEventId: JSON.stringify({ seq: 0, epoch: (await direct.pull({})).body.checkpoint.epoch }),
    });
    try {
      await waitFor(() => client.docs.size === 2, { what: 'catch-up from seq 0' });
      let drops = 0;
      await pushChanges(direct, 240, {
        prefix: 'cut',
        onEach: async (i) => {
          // Cut every connection a few times while changes keep coming.
          if (i % 40 === 20) {
            proxy.dropAll();
            drops += 1;
          }
        },
      });
      await assertConverged(client, direct);
      assert.equal(drops, 6);
      assert.ok(client.opens >= 2, `the client reconnected (${client.opens} opens, ${client.errors} errors)`);
      console.log(`measured: ${client.opens} stream opens, ${client.events.length} events, ` +
        `${drops} connection cuts, final seq ${client.lastSeq}`);
    } finally {
      client.close();
    }
  } finally {
    await proxy.close();
    await node.stop();
  }
});

test('EventSource reconnects across server restarts (kill -9 and SIGTERM) on the same store and port', async () => {
  let node = await startNode();
  const { dir, port } = node;
  try {
    const api = roomApi(node.url, uniqueRoom('restart'));
    const client = new StreamClient(api.streamUrl({ collection: 'messages' }), { reconnectMs: 300 });
    try {
      await waitFor(() => client.opens === 1, { what: 'open' });
      const restarts = [];
      let pushing = true;
      const pusher = pushChanges(api, 300, { prefix: 'rs', pauseMs: 3 }).finally(() => {
        pushing = false;
      });
      for (const how of ['kill', 'stop', 'kill']) {
        await waitFor(() => client.lastSeq >= 40 * (restarts.length + 1) || !pushing, { timeoutMs: 30000, what: 'progress' });
        if (!pushing) break;
        if (how === 'kill') await node.kill();
        else await node.stop(15000);
        await sleep(150);  // pushes fail (and are retried) while the server is down
        node = await startNode({ dir, port });
        restarts.push(how);
      }
      await pusher;
      const full = await assertConverged(client, api);
      assert.equal(restarts.length, 3, 'all restarts happened while pushing');
      assert.ok(client.opens >= 4, `reconnected after each restart (${client.opens} opens)`);
      console.log(`measured: restarts ${restarts.join(',')}, ${client.opens} stream opens, ` +
        `${client.events.length} events, ${full.documents.length} documents, final seq ${full.checkpoint.seq}`);
    } finally {
      client.close();
    }
  } finally {
    await node.stop();
  }
});
