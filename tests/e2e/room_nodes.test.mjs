// A gateway in front of several room nodes: two `roomsync-room` processes
// on one PostgreSQL (a fresh database on $ROOMSYNC_TEST_PGURL; ctest wraps
// this test in scripts/with-postgres.sh, which starts a throwaway server
// when the variable is unset) and one `roomsync-gateway --room_service A,B`.
// Each room must reach only the node of its shard (cluster/shard_map.h:
// FNV-1a 64 of the room name, mod 256 shards, shard s on node s % N), for
// pushes, pulls, history, the shared live Subscribe and a stream's
// catch-up; each node's roomsync_room_pushes_total shows it got exactly
// its own rooms' pushes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import EventSource from 'eventsource';

import { counter, doc, getJson, psql, roomApi, startGateway, startRoomService, uniqueRoom, waitFor, withDatabase } from './lib/roomsync.mjs';

const NODES = 2;
// Unequal, so that per-node push counts tell the nodes apart (a gateway
// with the list the other way round would fail the metrics check).
const ROOMS_PER_NODE = [12, 8];
const SHARDS = 256n;

// The same hash as cluster/shard_map.cc, written again here: the gateway
// (C++) and this test (JavaScript) must agree on where a room lives.
function nodeOf(room, nodes) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(room, 'utf8')) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number((hash % SHARDS) % BigInt(nodes));
}

async function metricsOf(node) {
  const res = await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

test('a gateway routes each room to the node of its shard (2 room nodes, one PostgreSQL)', async () => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_nodes_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  const store = withDatabase(adminUrl, db);

  const nodes = [];
  let gateway;
  const streams = [];
  try {
    for (let i = 0; i < NODES; i += 1) {
      nodes.push(await startRoomService({ store, args: ['--metrics', '127.0.0.1:0'] }));
      assert.ok(nodes[i].metricsPort > 0);
    }
    gateway = await startGateway({ roomService: nodes.map((n) => `127.0.0.1:${n.grpcPort}`).join(',') });
    const ready = await waitFor(async () => {
      const r = await getJson(`${gateway.url}/readyz`);
      return r.status === 200 && r.body.room_nodes_serving === NODES ? r : undefined;
    }, { what: 'gateway ready with every node serving' });
    assert.deepEqual(ready.body, { status: 'ready', room_nodes: NODES, room_nodes_serving: NODES });

    // Room names until node i has ROOMS_PER_NODE[i] of them.
    const rooms = Array.from({ length: NODES }, () => []);
    while (rooms.some((r, i) => r.length < ROOMS_PER_NODE[i])) {
      const room = uniqueRoom('nodes');
      const owner = nodeOf(room, NODES);
      if (rooms[owner].length < ROOMS_PER_NODE[owner]) rooms[owner].push(room);
    }
    const all = rooms.flatMap((names, owner) => names.map((name) => ({ name, owner, api: roomApi(gateway.url, name) })));

    // Two pushes per room (one of two documents, one of one).
    const pushes = new Array(NODES).fill(0);
    const t = Date.now();
    await Promise.all(all.map(async (room) => {
      const first = await room.api.push('messages', [doc(`${room.name}-1`, {}, t), doc(`${room.name}-2`, {}, t)]);
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.body, { success: true, conflicts: [] });
      const second = await room.api.push('messages', [doc(`${room.name}-3`, {}, t)]);
      assert.equal(second.status, 200, second.text);
      pushes[room.owner] += 2;
    }));

    // Pull and history back through the gateway.
    for (const room of all) {
      const { documents, checkpoint } = await room.api.pullAll({ collection: 'messages' });
      assert.deepEqual(documents.map((d) => d.id), [1, 2, 3].map((n) => `${room.name}-${n}`), room.name);
      assert.equal(checkpoint.seq, 3);
      const history = await room.api.history({ collection: 'messages', limit: 10 });
      assert.equal(history.status, 200, history.text);
      assert.deepEqual(history.body.documents.map((d) => d.id), [3, 2, 1].map((n) => `${room.name}-${n}`));
    }

    // SSE on one room of each node: catch-up from seq 1 (the gateway's
    // Pull), then live (its shared Subscribe), each from the room's node.
    const received = [];
    for (let owner = 0; owner < NODES; owner += 1) {
      const room = all.find((r) => r.owner === owner);
      const pull = await room.api.pull({ collection: 'messages' });
      const got = [];
      received.push({ room, got });
      const es = new EventSource(room.api.streamUrl({ collection: 'messages' }), {
        headers: { 'Last-Event-ID': JSON.stringify({ seq: 1, epoch: pull.body.checkpoint.epoch }) },
      });
      streams.push(es);
      es.onmessage = (e) => {
        const payload = JSON.parse(e.data);
        assert.notEqual(payload, 'RESYNC');
        got.push(...payload.documents.map((d) => [payload.checkpoint.seq, d.id]));
      };
      await waitFor(() => got.length === 2, { what: `catch-up on ${room.name}` });
    }
    for (const { room, got } of received) {
      const live = await room.api.push('messages', [doc(`${room.name}-live`)]);
      assert.equal(live.status, 200, live.text);
      pushes[room.owner] += 1;
      await waitFor(() => got.length === 3, { what: `live delivery on ${room.name}` });
      // One catch-up page (checkpoint seq 3), then the live change.
      assert.deepEqual(got, [[3, `${room.name}-2`], [3, `${room.name}-3`], [4, `${room.name}-live`]]);
    }
    for (const es of streams) es.close();

    // Each node answered exactly the pushes of its own rooms, and some.
    for (let i = 0; i < NODES; i += 1) {
      const text = await metricsOf(nodes[i]);
      assert.ok(pushes[i] > 0);
      assert.equal(counter(text, 'roomsync_room_pushes_total', 'result="ok"'), pushes[i], `node ${i} pushes`);
      assert.equal(counter(text, 'roomsync_room_pushes_total', 'result="error"'), 0, `node ${i} failed pushes`);
    }

    // One node down: the gateway stays ready (the other serves), the rooms
    // of the stopped node answer 503 and the others still work.
    await nodes[1].stop();
    const partly = await waitFor(async () => {
      const r = await getJson(`${gateway.url}/readyz`);
      return r.status === 200 && r.body.room_nodes_serving === 1 ? r : undefined;
    }, { what: 'readyz with one node serving' });
    assert.deepEqual(partly.body, { status: 'ready', room_nodes: NODES, room_nodes_serving: 1 });
    const downRoom = all.find((r) => r.owner === 1);
    const refused = await downRoom.api.push('messages', [doc(`${downRoom.name}-down`)]);
    assert.equal(refused.status, 503, refused.text);
    const upRoom = all.find((r) => r.owner === 0);
    const accepted = await upRoom.api.push('messages', [doc(`${upRoom.name}-still`)]);
    assert.equal(accepted.status, 200, accepted.text);
    await nodes[0].stop();
    await waitFor(async () => (await getJson(`${gateway.url}/readyz`)).status === 503,
      { what: 'readyz 503 with no node serving' });
  } finally {
    for (const es of streams) es.close();
    await gateway?.stop();
    for (const node of nodes) await node.stop();
    try {
      psql(adminUrl, `DROP DATABASE IF EXISTS ${db}`);
    } catch {
      // the server may be gone already; with-postgres removes it anyway
    }
  }
});
