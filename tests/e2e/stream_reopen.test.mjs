// A room's stream closed and opened again at once, as a client does when it
// reconnects or a page reloads: the second stream must go live. Its room's
// fan-out is replaced while the first one's unsubscribe is still on its
// way up the gateway's Watch call; each stream answers its head within a
// few seconds or the test counts it as stuck. Found as a rare hang of
// http_api (the two fan-outs' subscriptions shared a generation number and
// the first one's unsubscribe ended the second one's).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { doc, roomApi, SseParser, startNode, uniqueRoom } from './lib/roomsync.mjs';

let node;
before(async () => {
  node = await startNode();
});
after(async () => {
  await node?.stop();
});

function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stuck: ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function firstEvent(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before its first event');
      const events = parser.feed(decoder.decode(value, { stream: true }));
      if (events.length > 0) return JSON.parse(events[0].data);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

test('a stream reopened right after its room\'s last stream closed goes live', async () => {
  const rounds = 200;
  const stuck = [];
  for (let i = 0; i < rounds; i++) {
    const api = roomApi(node.url, uniqueRoom(`reopen-${i}`));
    const first = new AbortController();
    try {
      const live = await within(fetch(api.streamUrl({}), { signal: first.signal }), 5000, 'first head');
      await api.push('messages', [doc('a')]);
      const event = await within(firstEvent(live), 5000, 'first event');
      assert.deepEqual(event.documents.map((d) => d.id), ['a']);
      first.abort();
      // At once: the gateway may not even have seen the first one close.
      const second = new AbortController();
      const again = await within(
        fetch(api.streamUrl({ checkpoint: { seq: 0, epoch: event.checkpoint.epoch } }),
          { signal: second.signal }),
        5000, 'second head');
      const caughtUp = await within(firstEvent(again), 5000, 'second event');
      assert.deepEqual(caughtUp.documents.map((d) => d.id), ['a']);
      second.abort();
    } catch (error) {
      first.abort();
      if (!String(error.message).startsWith('stuck')) throw error;
      stuck.push(`${i}: ${error.message}`);
    }
  }
  assert.deepEqual(stuck, [], `${stuck.length} of ${rounds} reopened streams never went live`);
});
