// Room nodes with shard leases behind one gateway (DESIGN.md, Sharding):
// two `roomsync-room --shard_leases` on one PostgreSQL share the 256
// shards; the gateway routes by the lease table (RoomCluster.ShardOwners)
// and follows wrong-owner answers. Then one node is killed with SIGKILL:
// once its leases expire the other node takes its shards (new epochs), the
// gateway finds them, and every acknowledged push is there, in order, with
// no gap.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';

import { counter, doc, getJson, psql, pullAllWithRetry, pushWithRetry, roomApi, sleep, startGateway, startRoomService, uniqueRoom, waitFor, withDatabase } from './lib/roomsync.mjs';

const ROOMS = 20;

// Both nodes hold leases, all 256 shards are held, and neither holds more
// than half.
function sharedEvenly(store) {
  const [owners, held, most] = execFileSync('psql', ['-At', '-F', ' ', '-d', store, '-c',
    'SELECT count(*), coalesce(sum(n), 0), coalesce(max(n), 0) FROM (SELECT count(*) AS n '
    + 'FROM shard_leases WHERE expires_at > now() GROUP BY owner) o'],
  { encoding: 'utf8' }).trim().split(' ').map(Number);
  return owners === 2 && held === 256 && most <= 128;
}

// Two `--shard_leases` room nodes on a database of their own, and a gateway
// in front of `gatewayNodes(nodes)` (a --room_service list), ready. 2 s
// leases: short keeps the test short, and a node starved of CPU by
// parallel tests still renews in time. Stops everything afterwards.
async function withLeasingNodes(name, { nodeArgs = [], gatewayNodes }, body) {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_${name}_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  const store = withDatabase(adminUrl, db);
  const nodes = [];
  let gateway;
  try {
    for (let i = 0; i < 2; i += 1) {
      nodes.push(await startRoomService({ store, args: ['--shard_leases', '--lease_ttl', '2s', ...nodeArgs] }));
    }
    gateway = await startGateway({ roomService: gatewayNodes(nodes) });
    await waitFor(async () => (await getJson(`${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
    await body({ store, nodes, gateway });
  } finally {
    await gateway?.stop();
    for (const node of nodes) await node.stop();
    try {
      psql(adminUrl, `DROP DATABASE IF EXISTS ${db}`);
    } catch {
      // the server is going away with the test run anyway
    }
  }
}

const address = (node) => `127.0.0.1:${node.grpcPort}`;

test('leased shards move to the surviving node after a kill -9, losing nothing', async () => {
  await withLeasingNodes('leases', { gatewayNodes: (nodes) => nodes.map(address).join(',') },
    async ({ nodes, gateway }) => {
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
        const { documents, checkpoint } = await pullAllWithRetry(room.api, { collection: 'messages' });
        assert.deepEqual(documents.map((d) => d.id), room.acknowledged, room.name);
        assert.equal(checkpoint.seq, room.acknowledged.length, `${room.name}: seqs without gaps`);
      }
    });
});

test('a gateway given one leasing node finds the others through the lease table', async () => {
  // Only the first node is configured: the second is discovered.
  await withLeasingNodes('discovery', { nodeArgs: ['--metrics', '127.0.0.1:0'], gatewayNodes: (nodes) => address(nodes[0]) },
    async ({ store, nodes, gateway }) => {
      // The second node takes its share from the first within a few rounds;
      // the gateway reads the lease table each second and follows it.
      const discovered = new RegExp(`"event":"room_node_discovered","address":"127\\.0\\.0\\.1:${nodes[1].grpcPort}"`);
      await waitFor(() => discovered.test(gateway.log.stderr), { what: 'the gateway to discover the second node' });
      // Until the balancing ends (two owners, 128 shards each), then a
      // second for the gateway to read the settled table.
      await waitFor(() => sharedEvenly(store), { what: 'shards shared by the two nodes' });
      await sleep(1200);
      const rooms = Array.from({ length: ROOMS }, () => uniqueRoom('discovery'));
      for (const name of rooms) {
        const r = await pushWithRetry(roomApi(gateway.url, name), 'messages', [doc(`${name}-0`)], { deadlineMs: 20000 });
        assert.equal(r.status, 200, `${name}: ${r.text}`);
      }
      // Both nodes served pushes: each owns about half of the shards.
      const pushesOf = async (node) => counter(
        (await getJson(`http://127.0.0.1:${node.metricsPort}/metrics`)).text, 'roomsync_room_pushes_total', 'result="ok"');
      const counts = await Promise.all(nodes.map(pushesOf));
      assert.ok(counts[0] > 0 && counts[1] > 0, `pushes per node: ${counts}`);
      assert.equal(counts[0] + counts[1], ROOMS);
      for (const name of rooms) {
        const { documents } = await pullAllWithRetry(roomApi(gateway.url, name), { collection: 'messages' });
        assert.deepEqual(documents.map((d) => d.id), [`${name}-0`]);
      }
    });
});
