// Multiplexed Watch (issue 11): a gateway carries every room it serves
// from one room node on ONE Watch call, and a room's subscription follows
// the room when its shard moves, without RESYNC for its SSE sessions.
// Two `roomsync-room --shard_leases` nodes (2 s leases) on one PostgreSQL,
// a gateway with the default --upstream_streams=watch and one with
// per_room (the design before Watch) for comparison:
//   - 24 rooms with an SSE stream on each gateway: the Watch gateway holds
//     one upstream call per room node that owns some of them, the per-room
//     gateway one per room; both report 24 subscribed rooms;
//   - drain node A while writers push to every room: every follower on the
//     Watch gateway receives every acknowledged change exactly once, in
//     order, and none gets RESYNC (its subscription continued on B from
//     its last checkpoint);
//   - kill -9 of the node now holding everything (B), after A is back: the
//     same, once A has taken the shards over (lease expiry).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { startFollower } from './lib/cluster.mjs';
import { binary, counter, doc, getJson, postJson, psql, sleep, startGateway, startRoomService, tempDir, uniqueRoom, waitFor, withDatabase } from './lib/roomsync.mjs';

const ROOMS = 24;

async function metricsText(url) {
  const r = await getJson(url);
  assert.equal(r.status, 200);
  return r.text;
}

// Every answer other than 200 the writers got, by phase.
const refusals = [];

// Pushes one document to the room until it is acknowledged (503 and a
// refused connection are the contract's "retry"); returns its id.
async function pushAcknowledged(gatewayUrl, room, id, phase = '') {
  const deadline = Date.now() + 30000;
  for (;;) {
    let r;
    try {
      r = await postJson(`${gatewayUrl}/v1/rooms/${room}/replicate/push?collection=messages`, [doc(id)]);
    } catch {
      r = { status: 0 };
    }
    if (r.status === 200) return id;
    refusals.push({ phase, status: r.status });
    assert.ok([0, 502, 503, 504].includes(r.status), `${room}: push ${id}: ${r.status} ${r.text}`);
    assert.ok(Date.now() < deadline, `${room}: push ${id} not acknowledged within 30 s`);
    await sleep(25);
  }
}

// Writers: each pushes to its room in turn while `during` runs; resolves
// with the acknowledged ids per room.
async function pushWhile(gatewayUrl, rooms, phase, during) {
  const acknowledged = new Map(rooms.map((r) => [r, []]));
  let stop = false;
  const writers = rooms.map(async (room, w) => {
    for (let i = 1; !stop; i += 1) {
      acknowledged.get(room).push(await pushAcknowledged(gatewayUrl, room, `${room}-${Date.now()}-${w}-${i}`, phase));
      await sleep(20);
    }
  });
  try {
    await during();
    await sleep(500);  // pushes after the move
  } finally {
    stop = true;
    await Promise.all(writers);
  }
  return acknowledged;
}

// Every acknowledged id reached the follower exactly once, in the order
// of its seq; nothing was resynced.
async function assertExactlyOnce(followers, acknowledged, what) {
  for (const f of followers) {
    const want = acknowledged.get(f.room.name);
    await waitFor(() => want.every((id) => f.record.includes(id)), {
      what: `${what}: ${f.room.name} to receive ${want.length} acknowledged changes`, timeoutMs: 15000,
    });
  }
  for (const f of followers) {
    assert.deepEqual(f.violations, [], `${what}: ${f.room.name}`);
    assert.equal(f.resyncs, 0, `${what}: ${f.room.name} got RESYNC`);
    // startFollower notes any delivery whose checkpoint does not rise and
    // any event id seen twice: every change once, in order. (An id may
    // come twice as two states: a writer that lost its answer pushed it
    // again.)
  }
}

test('Watch: one upstream call per room node; subscriptions move with their rooms without RESYNC', async (t) => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_watch_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  const store = withDatabase(adminUrl, db);
  const dir = tempDir('roomsync-watch-');
  const ids = { a: `watch-a-${process.pid}`, b: `watch-b-${process.pid}` };
  const nodes = {};
  const gateways = {};
  const followers = [];
  const unexpected = [];
  const startNodeNamed = async (name, grpcPort = 0) => {
    nodes[name] = await startRoomService({
      dir,
      store,
      args: ['--grpc', `127.0.0.1:${grpcPort}`, '--shard_leases', '--lease_ttl', '2s', '--node_id', ids[name],
             '--metrics', '127.0.0.1:0'],
    });
  };
  try {
    await startNodeNamed('a');
    await startNodeNamed('b');
    const list = `127.0.0.1:${nodes.a.grpcPort},127.0.0.1:${nodes.b.grpcPort}`;
    gateways.watch = await startGateway({ roomService: list });
    gateways.perRoom = await startGateway({ roomService: list, args: ['--upstream_streams', 'per_room'] });
    // Both nodes hold shards before the rooms are opened.
    await waitFor(() => {
      const r = spawnSync(binary('ROOMSYNC_CTL_BIN'), ['shards', '--output', 'json', '--target',
        `127.0.0.1:${nodes.a.grpcPort}`, '--grpc_plaintext'], { encoding: 'utf8' });
      if (r.status !== 0) return false;
      const table = JSON.parse(r.stdout);
      return table.members.length === 2 && table.free === 0 &&
        table.leases.every((l) => !l.expired);
    }, { what: 'both nodes to hold shards', intervalMs: 200 });

    const rooms = Array.from({ length: ROOMS }, () => uniqueRoom('watch'));
    for (const room of rooms) await pushAcknowledged(gateways.watch.url, room, `${room}-0`);

    await t.test('one upstream call per room node (Watch) against one per room (per_room)', async () => {
      const perRoomStreams = [];
      for (const room of rooms) {
        followers.push(startFollower({ name: room }, gateways.watch.url, unexpected, { label: 'watch' }));
        perRoomStreams.push(startFollower({ name: room }, gateways.perRoom.url, unexpected, { label: 'per_room' }));
      }
      await Promise.all([...followers, ...perRoomStreams].map((f) => f.pulled));
      for (const [name, streams] of [['watch', 2], ['perRoom', ROOMS]]) {
        await waitFor(async () => {
          const text = await metricsText(`${gateways[name].url}/metrics`);
          return counter(text, 'roomsync_gateway_upstream_subscriptions') === ROOMS &&
            counter(text, 'roomsync_gateway_upstream_streams') === streams;
        }, { what: `${name}: ${ROOMS} rooms on ${streams} upstream calls`, timeoutMs: 10000 });
      }
      // Each node counts one subscriber per room per gateway.
      await waitFor(async () => {
        let subscribers = 0;
        for (const name of ['a', 'b']) {
          subscribers += counter(await metricsText(`http://127.0.0.1:${nodes[name].metricsPort}/metrics`), 'roomsync_room_subscribers');
        }
        return subscribers === 2 * ROOMS;
      }, { what: `${2 * ROOMS} subscribers on the room nodes`, timeoutMs: 10000 });
      await Promise.all(perRoomStreams.map((f) => f.close()));
      await waitFor(async () => counter(await metricsText(`${gateways.perRoom.url}/metrics`), 'roomsync_gateway_upstream_streams') === 0,
        { what: 'the per-room gateway to close its calls', timeoutMs: 10000 });
    });

    await t.test('drain A under writes: every change once, in order, no RESYNC', async () => {
      const acknowledged = await pushWhile(gateways.watch.url, rooms, 'drain', async () => {
        await sleep(300);
        const r = spawnSync(binary('ROOMSYNC_CTL_BIN'), ['drain', ids.a, '--timeout', '20s', '--target',
          `127.0.0.1:${nodes.b.grpcPort}`, '--grpc_plaintext'], { encoding: 'utf8', timeout: 30000 });
        assert.equal(r.status, 0, r.stdout + r.stderr);
      });
      await assertExactlyOnce(followers, acknowledged, 'drain');
      // A planned move answers no error: the gateway holds a push the
      // room's old node refused until the new one serves it.
      assert.deepEqual(refusals.filter((x) => x.phase === 'drain'), [], 'pushes refused during the drain');
      // The call to A closes once it carries no room.
      await waitFor(async () => counter(await metricsText(`${gateways.watch.url}/metrics`), 'roomsync_gateway_upstream_streams') === 1,
        { what: 'every room on B\'s Watch call', timeoutMs: 5000 });
      const text = await metricsText(`${gateways.watch.url}/metrics`);
      assert.equal(counter(text, 'roomsync_gateway_upstream_subscriptions'), ROOMS);
      assert.equal(counter(text, 'roomsync_gateway_sse_resyncs_total'), 0);
    });

    await t.test('kill -9 of the node holding every room: the rooms continue on the other', async () => {
      // A again (a drained node takes no shard), then B dies.
      const port = nodes.a.grpcPort;
      await nodes.a.stop();
      await startNodeNamed('a', port);
      const acknowledged = await pushWhile(gateways.watch.url, rooms, 'kill', async () => {
        await sleep(300);
        await nodes.b.kill();
        // A takes the shards once B's leases expire (2 s).
        await waitFor(async () => counter(await metricsText(`http://127.0.0.1:${nodes.a.metricsPort}/metrics`), 'roomsync_shard_leases_held') === 256,
          { what: 'A to hold every shard', timeoutMs: 15000, intervalMs: 100 });
      });
      await assertExactlyOnce(followers, acknowledged, 'kill -9');
      const text = await metricsText(`${gateways.watch.url}/metrics`);
      assert.equal(counter(text, 'roomsync_gateway_upstream_streams'), 1, 'every room on A\'s Watch call');
      assert.equal(counter(text, 'roomsync_gateway_sse_resyncs_total'), 0);
    });
    assert.deepEqual(unexpected, []);
  } finally {
    if (process.env.WATCH_DEBUG) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync('/tmp/watch-gw.log', gateways.watch?.log.stderr ?? '');
      writeFileSync('/tmp/watch-a.log', nodes.a?.log.stderr ?? '');
      writeFileSync('/tmp/watch-b.log', nodes.b?.log.stderr ?? '');
      writeFileSync('/tmp/watch-followers.json', JSON.stringify(followers.map((f) => ({ room: f.room.name, record: f.record, resyncs: f.resyncs, reconnects: f.reconnects, violations: f.violations })), null, 1));
    }
    await Promise.all(followers.map((f) => f.close()));
    for (const g of Object.values(gateways)) await g.stop();
    for (const n of Object.values(nodes)) await n.stop().catch(() => {});
    psql(adminUrl, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
});
