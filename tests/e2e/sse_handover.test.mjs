// The stream's catch-up → live handover under concurrent pushes: PROTOCOL.md
// promises "everything after [the checkpoint] (catch-up), then live changes,
// with no gap and no duplicate between the two".
//
// SERVER BUG (found by this test, not fixed here): when the catch-up pull
// reads a change from the store before the room's Subscribe stream has
// delivered that change to the gateway's RoomFanout, RoomFanout::
// FinishCatchUp switches the session to live, and the later live batch is
// sent again in full (RoomFanout::Publish filters live subscribers with
// seq 0, not with the catch-up's last seq): the client sees the same
// checkpoint twice, e.g. `145[p137 … p143] | 145[p143]`. It shows most when
// the stream is the room's only one (a fresh upstream Subscribe whose Live
// head lags the store the catch-up pull reads).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { doc, openRawStream, roomApi, sleep, startNode, uniqueRoom } from './lib/roomsync.mjs';

test('stream catch-up then live: no duplicate and no gap while pushes keep committing', async () => {
  const node = await startNode();
  let stop = false;
  let pusher;
  try {
    const api = roomApi(node.url, uniqueRoom('handover'));
    await api.push('messages', [doc('p0')]);
    // Each trial's stream is the only one on the room (a client
    // reconnecting to a room nobody else watches): the gateway opens a new
    // upstream Subscribe for it while pushes keep committing.
    let n = 1;
    pusher = (async () => {
      while (!stop) {
        const r = await api.push('messages', [doc(`p${n}`)]);
        assert.equal(r.status, 200, r.text);
        n += 1;
      }
    })();
    const failures = [];
    const trials = 150;
    for (let t = 0; t < trials && failures.length === 0; t += 1) {
      const head = (await api.pull({ collection: 'messages', batchSize: 1 })).body.checkpoint;
      const latest = (await api.pullAll({ collection: 'messages', checkpoint: head })).checkpoint;
      const from = { seq: Math.max(0, latest.seq - (t % 6) * 2), epoch: latest.epoch };
      const events = [];
      const stream = await openRawStream(api.streamUrl({ collection: 'messages' }), {
        headers: { 'Last-Event-ID': JSON.stringify(from) },
        onEvent: (e) => events.push(JSON.parse(e.data)),
      });
      await sleep(40);
      stream.close();
      // Documents are p<k> pushed one per request: seq k+1 is document p<k>.
      const seqs = events.filter((e) => e !== 'RESYNC').flatMap((e) => e.documents.map((d) => Number(d.id.slice(1)) + 1));
      const expected = seqs.length ? Array.from({ length: seqs.length }, (_, i) => from.seq + 1 + i) : [];
      if (JSON.stringify(seqs) !== JSON.stringify(expected) || events.includes('RESYNC')) {
        failures.push(`trial ${t}, from seq ${from.seq}: events ` +
          events.slice(0, 6).map((e) => (e === 'RESYNC' ? 'RESYNC'
            : `${e.checkpoint.seq}[${e.documents.map((d) => d.id).join(' ')}]`)).join(' | '));
      }
    }
    assert.deepEqual(failures, [], 'catch-up → live handover duplicated or lost documents');
  } finally {
    stop = true;
    await pusher?.catch(() => {});
    await node.stop();
  }
});
