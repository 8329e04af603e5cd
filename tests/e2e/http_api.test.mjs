// Push → pull → stream → history with plain fetch against the real
// `roomsync` binary, under both path prefixes of PROTOCOL.md.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { doc, getJson, postJson, roomApi, SseParser, startNode, uniqueRoom } from './lib/roomsync.mjs';

let node;
before(async () => {
  node = await startNode();
});
after(async () => {
  await node?.stop();
});

// Reads SSE events from a fetch() response body until `count` arrived.
async function readEvents(response, count, timeoutMs = 10000) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  const events = [];
  const timer = setTimeout(() => reader.cancel(new Error('timeout')), timeoutMs);
  try {
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      events.push(...parser.feed(decoder.decode(value, { stream: true })));
    }
  } finally {
    clearTimeout(timer);
  }
  assert.ok(events.length >= count, `expected ${count} SSE events, got ${events.length}`);
  return { events, reader };
}

for (const prefix of ['/v1/rooms', '/api/room']) {
  describe(`replication API under ${prefix}/{room}/`, () => {
    test('push → pull (per collection and all collections) → checkpoints', async () => {
      const api = roomApi(node.url, uniqueRoom('pushpull'), prefix);
      const docs = [doc('m1'), doc('m2', { nested: { a: [1, 2, { b: 'ü✓' }] } }), doc('m3')];
      const push = await api.push('messages', docs);
      assert.equal(push.status, 200, push.text);
      assert.match(push.headers.get('content-type'), /application\/json/);
      assert.deepEqual(push.body, { success: true, conflicts: [] });
      const threadPush = await api.push('threads', [doc('t1')]);
      assert.deepEqual(threadPush.body, { success: true, conflicts: [] });

      const pull = await api.pull({ collection: 'messages' });
      assert.equal(pull.status, 200, pull.text);
      assert.deepEqual(pull.body.documents, docs);
      // Opaque members come back byte for byte (the server may only strip
      // insignificant whitespace, and JSON.stringify produced none).
      for (const d of docs) assert.ok(pull.text.includes(JSON.stringify(d)), `bytes of ${d.id}`);
      const cp = pull.body.checkpoint;
      assert.equal(typeof cp.epoch, 'string');
      assert.equal(cp.seq, 3);

      // Nothing newer: empty, the same checkpoint back.
      const empty = await api.pull({ collection: 'messages', checkpoint: cp });
      assert.deepEqual(empty.body, { documents: [], checkpoint: cp });

      // All collections: `_collection` is spliced in as the first member.
      const all = await api.pull({});
      assert.equal(all.status, 200);
      assert.deepEqual(all.body.documents.map((d) => [d._collection, d.id]),
        [['messages', 'm1'], ['messages', 'm2'], ['messages', 'm3'], ['threads', 't1']]);
      for (const d of docs) {
        assert.ok(all.text.includes(`{"_collection":"messages",${JSON.stringify(d).slice(1)}`), `splice of ${d.id}`);
      }
      assert.equal(all.body.checkpoint.seq, 4);

      // batchSize pages through in sequence order; each page's checkpoint
      // starts the next.
      const seen = [];
      let checkpoint;
      for (let i = 0; i < 10; i += 1) {
        const page = await api.pull({ batchSize: 3, checkpoint });
        assert.equal(page.status, 200);
        assert.ok(page.body.documents.length <= 3);
        seen.push(...page.body.documents.map((d) => d.id));
        if (page.body.documents.length === 0) break;
        checkpoint = page.body.checkpoint;
      }
      assert.deepEqual(seen, ['m1', 'm2', 'm3', 't1']);
    });

    test('a document changed twice is pulled once, at its newest state', async () => {
      const api = roomApi(node.url, uniqueRoom('twice'), prefix);
      const t = Date.now();
      await api.push('messages', [doc('a', {}, t), doc('b', {}, t)]);
      await api.push('messages', [doc('a', { ciphertext: 'bmV3' }, t + 1)]);
      const pull = await api.pull({ collection: 'messages' });
      assert.deepEqual(pull.body.documents.map((d) => [d.id, d.ciphertext]), [['b', doc('b').ciphertext], ['a', 'bmV3']]);
      assert.equal(pull.body.checkpoint.seq, 3);
    });

    test('last-write-wins: the older write gets the server document ("Hey" loses to "Hi")', async () => {
      const api = roomApi(node.url, uniqueRoom('lww'), prefix);
      const t = Date.now();
      const hi = { id: 'msg-1', timestamp: t, iv: 'AAEC', ciphertext: 'Hi' };
      const hey = { id: 'msg-1', timestamp: t - 1000, iv: 'AAEC', ciphertext: 'Hey' };
      assert.deepEqual((await api.push('messages', [hi])).body, { success: true, conflicts: [] });

      // The older write, as a plain document and as an RxDB push row.
      const plain = await api.push('messages', [hey]);
      assert.equal(plain.status, 200);
      assert.deepEqual(plain.body, { success: true, conflicts: [hi] });
      const row = await api.push('messages', [{ newDocumentState: hey, assumedMasterState: null }]);
      assert.deepEqual(row.body, { success: true, conflicts: [hi] });

      let pull = await api.pull({ collection: 'messages' });
      assert.deepEqual(pull.body.documents, [hi]);
      assert.equal(pull.body.checkpoint.seq, 1);

      // A newer write wins, whatever the assumed master state says.
      const hey2 = { ...hey, timestamp: t + 1 };
      const newer = await api.push('messages', [{ newDocumentState: hey2, assumedMasterState: null }]);
      assert.deepEqual(newer.body, { success: true, conflicts: [] });
      pull = await api.pull({ collection: 'messages' });
      assert.deepEqual(pull.body.documents, [hey2]);

      // Equal timestamps: the greater bytes win, in either push order.
      const x = { id: 'tie', timestamp: t, ciphertext: 'AAAA' };
      const y = { id: 'tie', timestamp: t, ciphertext: 'BBBB' };
      const other = roomApi(node.url, uniqueRoom('lww-tie'), prefix);
      await api.push('messages', [x]);
      assert.deepEqual((await api.push('messages', [y])).body.conflicts, []);
      await other.push('messages', [y]);
      assert.deepEqual((await other.push('messages', [x])).body.conflicts, [y]);
      const a = (await api.pull({ collection: 'messages' })).body.documents.find((d) => d.id === 'tie');
      const b = (await other.pull({ collection: 'messages' })).body.documents.find((d) => d.id === 'tie');
      assert.deepEqual(a, y);
      assert.deepEqual(b, y);
    });

    test('re-pushing the stored state is a no-op (idempotent)', async () => {
      const api = roomApi(node.url, uniqueRoom('idem'), prefix);
      const d = doc('m1', { _deleted: false });
      await api.push('messages', [d]);
      const first = await api.pull({ collection: 'messages' });
      for (const items of [[d], [d, d], [{ newDocumentState: d, assumedMasterState: d }],
        [{ newDocumentState: d, assumedMasterState: null }]]) {
        const again = await api.push('messages', items);
        assert.equal(again.status, 200, again.text);
        assert.deepEqual(again.body, { success: true, conflicts: [] });
      }
      const newer = await api.pull({ collection: 'messages', checkpoint: first.body.checkpoint });
      assert.deepEqual(newer.body, { documents: [], checkpoint: first.body.checkpoint });

      // A tombstone replicates (and re-pushing it is a no-op too).
      const tomb = { ...d, timestamp: d.timestamp + 1, _deleted: true };
      assert.deepEqual((await api.push('messages', [tomb])).body.conflicts, []);
      assert.deepEqual((await api.push('messages', [tomb])).body.conflicts, []);
      const after = await api.pull({ collection: 'messages', checkpoint: first.body.checkpoint });
      assert.deepEqual(after.body.documents, [tomb]);
      assert.equal(after.body.checkpoint.seq, first.body.checkpoint.seq + 1);
    });

    test('history pages newest first and ends with next: null', async () => {
      const api = roomApi(node.url, uniqueRoom('history'), prefix);
      const t = Date.now() - 100000;
      const docs = Array.from({ length: 25 }, (_, i) => doc(`h${String(i).padStart(2, '0')}`, {}, t + i));
      await api.push('messages', docs.slice(0, 12));
      await api.push('threads', [doc('thread-1', {}, t)]);
      await api.push('messages', docs.slice(12));

      const ids = [];
      let before;
      let pages = 0;
      for (;;) {
        const page = await api.history({ collection: 'messages', limit: 10, before });
        assert.equal(page.status, 200, page.text);
        assert.ok(page.body.documents.length <= 10);
        for (const d of page.body.documents) assert.equal(d._collection, undefined);
        ids.push(...page.body.documents.map((d) => d.id));
        pages += 1;
        if (page.body.next === null) break;
        assert.equal(typeof page.body.next.epoch, 'string');
        before = page.body.next;
        assert.ok(pages < 10, 'history does not end');
      }
      assert.deepEqual(ids, docs.map((d) => d.id).reverse());
      assert.ok(pages >= 3);

      // Without a collection: every collection, tagged, newest first.
      const all = await api.history({ limit: 1000 });
      assert.equal(all.body.documents.length, 26);
      assert.equal(all.body.next, null);
      assert.deepEqual(all.body.documents.slice(12, 15).map((d) => [d._collection, d.id]),
        [['messages', 'h12'], ['threads', 'thread-1'], ['messages', 'h11']]);
      const fromPull = (await api.pullAll()).documents.map((d) => d.id);
      assert.deepEqual(all.body.documents.map((d) => d.id), fromPull.reverse());
    });

    test('stream: live changes after the head, catch-up from a checkpoint (fetch)', async () => {
      const api = roomApi(node.url, uniqueRoom('stream'), prefix);
      await api.push('messages', [doc('old-1'), doc('old-2')]);
      const cp1 = (await api.pull({ collection: 'messages', batchSize: 1 })).body.checkpoint;

      // Without a checkpoint: only changes committed after the head.
      const controller = new AbortController();
      const live = await fetch(api.streamUrl({ collection: 'messages' }), { signal: controller.signal });
      assert.equal(live.status, 200);
      assert.match(live.headers.get('content-type'), /^text\/event-stream/);
      const pushed = doc('new-1');
      await api.push('messages', [pushed]);
      await api.push('threads', [doc('thread-x')]);  // another collection: not on this stream
      const pushed2 = doc('new-2');
      await api.push('messages', [pushed2]);
      const { events } = await readEvents(live, 2);
      controller.abort();
      const payloads = events.map((e) => JSON.parse(e.data));
      assert.deepEqual(payloads.flatMap((p) => p.documents), [pushed, pushed2]);
      for (const [i, e] of events.entries()) {
        assert.deepEqual(JSON.parse(e.id), payloads[i].checkpoint, 'id: is the checkpoint');
      }
      assert.deepEqual(payloads.map((p) => p.checkpoint.seq), [3, 5]);

      // With a checkpoint in the query: catch-up then live.
      const c2 = new AbortController();
      const catchUp = await fetch(api.streamUrl({ collection: 'messages', checkpoint: cp1 }), { signal: c2.signal });
      assert.equal(catchUp.status, 200);
      const got = await readEvents(catchUp, 1);
      const docsSoFar = got.events.flatMap((e) => JSON.parse(e.data).documents.map((d) => d.id));
      let rest = [];
      if (docsSoFar.length < 3) {
        const more = await readEvents(catchUp, 3 - docsSoFar.length);
        rest = more.events.flatMap((e) => JSON.parse(e.data).documents.map((d) => d.id));
      }
      c2.abort();
      assert.deepEqual([...docsSoFar, ...rest].slice(0, 3), ['old-2', 'new-1', 'new-2']);

      // Last-Event-ID takes precedence over the query, all collections tagged.
      const c3 = new AbortController();
      const byHeader = await fetch(api.streamUrl({ checkpoint: cp1 }), {
        signal: c3.signal,
        headers: { 'Last-Event-ID': JSON.stringify({ seq: 4, epoch: cp1.epoch }) },
      });
      const fromHeader = await readEvents(byHeader, 1);
      c3.abort();
      const first = JSON.parse(fromHeader.events[0].data).documents[0];
      assert.deepEqual(first, { _collection: 'messages', ...pushed2 });
    });

    test('a checkpoint of another epoch: pull restarts, the stream answers RESYNC', async () => {
      const api = roomApi(node.url, uniqueRoom('epoch'), prefix);
      await api.push('messages', [doc('e1')]);
      const stale = { seq: 1, epoch: 'not-the-epoch' };
      const pull = await api.pull({ collection: 'messages', checkpoint: stale });
      assert.deepEqual(pull.body.documents.map((d) => d.id), ['e1']);
      const res = await fetch(api.streamUrl({ collection: 'messages', checkpoint: stale }));
      assert.equal(res.status, 200);
      const { events } = await readEvents(res, 1);
      assert.equal(JSON.parse(events[0].data), 'RESYNC');
      await res.body.cancel().catch(() => {});
    });

    test('errors are JSON with the right status, and a bad batch writes nothing', async () => {
      const room = uniqueRoom('errors');
      const api = roomApi(node.url, room, prefix);
      const expectError = async (promise, status, code) => {
        const r = await promise;
        assert.equal(r.status, status, r.text);
        assert.match(r.headers.get('content-type'), /application\/json/);
        assert.equal(r.body.error.code, code, r.text);
        assert.equal(typeof r.body.error.message, 'string');
        return r;
      };
      // One malformed item rejects the whole batch.
      await expectError(api.push('messages', [doc('ok-1'), { id: 'bad', timestamp: 'yesterday' }]), 400, 'invalid_argument');
      await expectError(api.push('messages', [doc('ok-2'), { timestamp: Date.now() }]), 400, 'invalid_argument');
      await expectError(api.push('messages', [doc('ok-3'), doc('c', { _collection: 'threads' })]), 400, 'invalid_argument');
      await expectError(api.push('messages', [doc('ok-4'), doc('f', {}, Date.now() + 3600_000)]), 400, 'timestamp_in_future');
      await expectError(postJson(api.pushUrl('messages'), '[{"id":"x","timestamp":1'), 400, 'invalid_argument');
      await expectError(postJson(api.pushUrl('messages'), { not: 'an array' }), 400, 'invalid_argument');
      await expectError(api.push(undefined, [doc('no-collection')]), 400, 'invalid_argument');
      await expectError(api.push('Bad-Name', [doc('x')]), 400, 'invalid_argument');
      await expectError(api.pull({ checkpoint: '{not json' }), 400, 'invalid_argument');
      await expectError(api.pull({ batchSize: 0 }), 400, 'invalid_argument');
      await expectError(api.pull({ batchSize: 1001 }), 400, 'invalid_argument');
      await expectError(api.history({ limit: 0 }), 400, 'invalid_argument');
      await expectError(getJson(`${node.url}${prefix}/bad%20room/replicate/pull`), 400, 'invalid_argument');
      await expectError(getJson(api.pushUrl('messages')), 405, 'method_not_allowed');
      await expectError(getJson(`${api.base}/replicate/nope`), 404, 'not_found');
      const pull = await api.pullAll();
      assert.deepEqual(pull.documents, [], 'nothing of a rejected batch was written');
    });

    test('CORS preflight names Authorization, Content-Type and Last-Event-ID', async () => {
      const api = roomApi(node.url, uniqueRoom('cors'), prefix);
      const res = await fetch(api.pushUrl('messages'), {
        method: 'OPTIONS',
        headers: { Origin: 'https://chat.example', 'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization, content-type' },
      });
      assert.ok(res.status === 200 || res.status === 204, `preflight status ${res.status}`);
      assert.ok(['https://chat.example', '*'].includes(res.headers.get('access-control-allow-origin')));
      const methods = res.headers.get('access-control-allow-methods').split(/,\s*/);
      for (const m of ['GET', 'POST', 'OPTIONS']) assert.ok(methods.includes(m), m);
      const allowed = res.headers.get('access-control-allow-headers').toLowerCase().split(/,\s*/);
      for (const h of ['authorization', 'content-type', 'last-event-id']) assert.ok(allowed.includes(h), h);
      const get = await fetch(api.pullUrl({}), { headers: { Origin: 'https://chat.example' } });
      assert.ok(get.headers.get('access-control-allow-origin'));
      await get.text();
    });
  });
}

test('healthz, readyz and metrics', async () => {
  assert.equal((await getJson(`${node.url}/healthz`)).status, 200);
  assert.equal((await getJson(`${node.url}/readyz`)).status, 200);
  const metrics = await fetch(`${node.url}/metrics`);
  assert.equal(metrics.status, 200);
  const text = await metrics.text();
  assert.match(text, /roomsync_gateway_requests_total/);
  assert.match(text, /roomsync_gateway_sse_sessions/);
});
