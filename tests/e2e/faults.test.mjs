// The reliability checker (DESIGN.md, Reliability bars): writers push
// without pause through a gateway to a room node on PostgreSQL while the
// test restarts PostgreSQL, kills the gateway with SIGKILL and starts a new
// one, then kills the room node with SIGKILL and starts a new one. A
// writer pushes its documents one after the other and retries a document
// until it is acknowledged, as a client's replication loop does. At the
// end a pull must hold exactly the acknowledged documents: none lost, none
// duplicated, and each writer's in the order it pushed them. A follower per
// room keeps an SSE stream open through all of it, as a client's live
// replication does (reconnect with Last-Event-ID; on RESYNC pull from its
// checkpoint): it must have seen every document exactly once, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startPostgres } from './lib/postgres.mjs';
import { doc, getJson, openRawStream, psql, roomApi, sleep, startGateway, startRoomService, uniqueRoom, waitFor, withDatabase } from './lib/roomsync.mjs';

const WRITERS = 8;
const ROOMS = 3;

// Follows one room's changes like a client's live replication: a stream
// from its checkpoint; reconnects with Last-Event-ID when the stream ends
// or cannot be opened; on RESYNC, pulls from its checkpoint and reopens.
// `ids` is every document id it was given, in the order given.
function follow(api) {
  const follower = { ids: [], checkpoint: undefined, reconnects: 0, resyncs: 0, stopped: false, error: undefined };
  let stream;
  const catchUp = async () => {
    const { documents, checkpoint } = await api.pullAll({ collection: 'messages', checkpoint: follower.checkpoint });
    follower.ids.push(...documents.map((d) => d.id));
    if (checkpoint) follower.checkpoint = checkpoint;
  };
  const run = async () => {
    while (!follower.stopped) {
      try {
        let ended;
        const done = new Promise((resolve) => { ended = resolve; });
        let resync = false;
        stream = await openRawStream(api.streamUrl({ collection: 'messages' }), {
          headers: follower.checkpoint ? { 'Last-Event-ID': JSON.stringify(follower.checkpoint) } : {},
          onEvent: (event) => {
            const data = JSON.parse(event.data);
            if (data === 'RESYNC') {
              resync = true;
              stream?.close();
              ended();
              return;
            }
            if (follower.checkpoint && data.checkpoint.seq <= follower.checkpoint.seq) {
              follower.error ??= `seq ${data.checkpoint.seq} after ${follower.checkpoint.seq}`;
            }
            follower.ids.push(...data.documents.map((d) => d.id));
            follower.checkpoint = data.checkpoint;
          },
          onEnd: () => ended(),
        });
        await done;
        if (resync) {
          follower.resyncs += 1;
          await catchUp();
        }
      } catch {
        // the gateway is down or the room unavailable: retry below
      }
      if (!follower.stopped) {
        follower.reconnects += 1;
        await sleep(50);
      }
    }
  };
  follower.start = async () => {
    await catchUp();
    follower.running = run();
  };
  follower.stop = async () => {
    follower.stopped = true;
    stream?.close();
    await follower.running;
  };
  return follower;
}

test('no acknowledged push is lost or reordered across PostgreSQL restart, gateway kill -9 and room kill -9', async () => {
  const pg = await startPostgres();
  let room;
  let gateway;
  let followers;
  try {
    psql(pg.url, 'CREATE DATABASE roomsync');
    const store = withDatabase(pg.url, 'roomsync');
    room = await startRoomService({ store });
    const grpcPort = room.grpcPort;
    gateway = await startGateway({ roomServicePort: grpcPort });
    // Restarted processes take the same ports: clients and the gateway keep
    // their addresses, as behind a Service.
    const httpPort = gateway.port;
    const baseUrl = gateway.url;
    await waitFor(async () => (await getJson(`${baseUrl}/readyz`)).status === 200, { what: 'gateway ready' });

    const rooms = Array.from({ length: ROOMS }, () => uniqueRoom('faults'));
    followers = new Map(rooms.map((name) => [name, follow(roomApi(baseUrl, name))]));
    for (const follower of followers.values()) await follower.start();
    const writers = Array.from({ length: WRITERS }, (_, w) => ({
      room: rooms[w % ROOMS], acknowledged: [], failedAttempts: 0, lastFailure: '',
    }));
    let running = true;
    const write = async (w) => {
      const writer = writers[w];
      const api = roomApi(baseUrl, writer.room);
      for (let n = 0; running; n += 1) {
        const id = `w${w}-${n}`;
        // Retried until acknowledged, even after `running` turns false: a
        // client does not drop a change it could not sync.
        for (;;) {
          try {
            const r = await api.push('messages', [doc(id, {}, 1700000000000 + n)]);
            if (r.status === 200) {
              // A retry of a push that was committed but not acknowledged
              // is exactly the stored state: a no-op, not a conflict.
              assert.deepEqual(r.body, { success: true, conflicts: [] }, id);
              break;
            }
            assert.ok(r.status === 503 || r.status === 502 || r.status === 504,
              `${id}: a fault must answer 502, 503 or 504, got ${r.status} ${r.text}`);
            writer.lastFailure = `${r.status} ${r.text}`;
          } catch (error) {
            if (error instanceof assert.AssertionError) throw error;
            writer.lastFailure = String(error.cause ?? error);  // connection refused or reset
          }
          writer.failedAttempts += 1;
          await sleep(20);
        }
        writer.acknowledged.push(id);
      }
    };
    const writing = writers.map((_, w) => write(w));
    const acknowledgedSoFar = () => writers.reduce((sum, w) => sum + w.acknowledged.length, 0);
    // Each fault must be followed by progress: the service recovers by itself.
    const phases = [];
    const runPhase = async (name, fault) => {
      await fault();
      const before = acknowledgedSoFar();
      await waitFor(() => acknowledgedSoFar() >= before + 50, { timeoutMs: 30000, what: `pushes after ${name}` });
      await sleep(500);
      phases.push({ name, acknowledged: acknowledgedSoFar() });
    };

    await runPhase('start', async () => {});
    await runPhase('PostgreSQL restart', async () => pg.restart());
    await runPhase('gateway kill -9', async () => {
      await gateway.kill();
      gateway = await startGateway({ roomServicePort: grpcPort, args: ['--http', `127.0.0.1:${httpPort}`] });
    });
    await runPhase('room kill -9', async () => {
      await room.kill();
      room = await startRoomService({ store, args: ['--grpc', `127.0.0.1:${grpcPort}`] });
    });
    running = false;
    await Promise.all(writing);

    const failed = writers.reduce((sum, w) => sum + w.failedAttempts, 0);
    console.log(`faults: ${JSON.stringify(phases)}; ${failed} failed attempts, retried`);
    assert.ok(failed > 0, 'the faults were not felt: no attempt failed');

    for (const name of rooms) {
      // Pull lists documents in seq order: a position is a seq rank.
      const { documents, checkpoint } = await roomApi(baseUrl, name).pullAll({ collection: 'messages' });
      const seqOf = new Map();
      for (const d of documents) {
        assert.ok(!seqOf.has(d.id), `${name}: ${d.id} twice`);
        seqOf.set(d.id, seqOf.size);
      }
      // Retried pushes took no new seq, so seqs have no gap.
      assert.equal(checkpoint.seq, documents.length, `${name}: seqs 1..n without gaps`);

      const follower = followers.get(name);
      await waitFor(() => follower.checkpoint?.seq >= checkpoint.seq, { what: `${name}'s follower to catch up` });
      await follower.stop();
      assert.equal(follower.error, undefined, name);
      assert.ok(follower.reconnects > 0, `${name}: the follower's stream never broke`);
      assert.deepEqual(follower.ids, documents.map((d) => d.id), `${name}: the follower saw every change once, in order`);
      console.log(`${name}: follower reconnected ${follower.reconnects} times, RESYNC ${follower.resyncs} times`);
      const expected = writers.filter((w) => w.room === name).flatMap((w) => w.acknowledged);
      const missing = expected.filter((id) => !seqOf.has(id));
      assert.deepEqual(missing, [], `${name}: acknowledged pushes missing`);
      assert.equal(documents.length, expected.length, `${name}: documents nobody pushed`);
      for (const writer of writers.filter((w) => w.room === name)) {
        const positions = writer.acknowledged.map((id) => seqOf.get(id));
        for (let i = 1; i < positions.length; i += 1) {
          assert.ok(positions[i] > positions[i - 1],
            `${name}: ${writer.acknowledged[i]} is before ${writer.acknowledged[i - 1]}`);
        }
      }
    }
  } finally {
    for (const follower of followers?.values() ?? []) await follower.stop();
    await gateway?.stop();
    await room?.stop();
    await pg.stop();
  }
});
