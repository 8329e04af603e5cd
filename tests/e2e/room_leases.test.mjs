// Room nodes with shard leases behind one gateway (DESIGN.md, Sharding):
// two `roomsync-room --shard_leases` on one PostgreSQL share the 256
// shards; the gateway routes by the lease table (RoomCluster.ShardOwners)
// and follows wrong-owner answers. Then one node is killed with SIGKILL:
// once its leases expire the other node takes its shards (new epochs), the
// gateway finds them, and every acknowledged push is there, in order, with
// no gap.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { doc, getJson, psql, pushWithRetry, roomApi, startGateway, startRoomService, uniqueRoom, waitFor, withDatabase } from './lib/roomsync.mjs';

const ROOMS = 20;

test('leased shards move to the surviving node after a kill -9, losing nothing', async () => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_leases_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  const store = withDatabase(adminUrl, db);
  const nodes = [];
  let gateway;
  try {
    for (let i = 0; i < 2; i += 1) {
      nodes.push(await startRoomService({ store, args: ['--shard_leases', '--lease_ttl', '1s'] }));
    }
    gateway = await startGateway({ roomService: nodes.map((n) => `127.0.0.1:${n.grpcPort}`).join(',') });
    await waitFor(async () => (await getJson(`${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });

    const rooms = Array.from({ length: ROOMS }, () => {
      const name = uniqueRoom('leases');
      return { name, api: roomApi(gateway.url, name), acknowledged: [] };
    });
    const pushRound = async (round) => {
      await Promise.all(rooms.map(async (room) => {
        const id = `${room.name}-${round}`;
        const r = await pushWithRetry(room.api, 'messages', [doc(id)], { deadlineMs: 20000 });
        assert.equal(r.status, 200, `${room.name} round ${round}: ${r.text}`);
        room.acknowledged.push(id);
      }));
    };
    // While the two nodes balance their shards, and after.
    for (let round = 0; round < 5; round += 1) await pushRound(round);

    await nodes[0].kill();
    for (let round = 5; round < 10; round += 1) await pushRound(round);

    for (const room of rooms) {
      const { documents } = await room.api.pullAll({ collection: 'messages' });
      assert.deepEqual(documents.map((d) => d.id), room.acknowledged, room.name);
      const pulled = await room.api.pull({ collection: 'messages', batchSize: 100 });
      assert.equal(pulled.body.checkpoint.seq, room.acknowledged.length, `${room.name}: seqs without gaps`);
    }
  } finally {
    await gateway?.stop();
    for (const node of nodes) await node.stop();
    try {
      psql(adminUrl, `DROP DATABASE IF EXISTS ${db}`);
    } catch {
      // the server is going away with the test run anyway
    }
  }
});
