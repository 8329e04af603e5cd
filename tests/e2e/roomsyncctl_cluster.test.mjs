// roomsyncctl against a cluster (issue 12): two `roomsync-room
// --shard_leases` nodes (JWT auth) on one PostgreSQL behind a gateway.
//   - `shards` shows the 256 leases split between the two members, and a
//     node without leases answers FAILED_PRECONDITION (exit 1);
//   - `rooms list` names each room's owner as the lease table does, and a
//     room with an open SSE stream shows 1 subscriber whichever node is
//     asked (the tool asks the owner);
//   - `check --all` finds a lease row with epoch 0 outside the shard map;
//   - `drain NODE_A` leaves A with no shard and B with all 256 within a
//     few seconds while writers keep pushing through the gateway: every
//     acknowledged push is pulled back afterwards, without a seq gap; the
//     drained node's metrics show the hand-over;
//   - admin calls without an admin token are refused, and a drain sent to
//     the wrong node (a stale membership row) is refused by that node.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { binary, counter, doc, getJson, openRawStream, postJson, psql, roomApi, sleep, startGateway, startRoomService, tempDir, uniqueRoom, waitFor, withDatabase } from './lib/roomsync.mjs';

function ctl(args) {
  const r = spawnSync(binary('ROOMSYNC_CTL_BIN'), args, { encoding: 'utf8', timeout: 60000 });
  if (r.error) throw r.error;
  return r;
}

// As ctl, without blocking the event loop (the writers go on meanwhile).
function ctlAsync(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary('ROOMSYNC_CTL_BIN'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s) => { stderr += s; });
    child.on('error', reject);
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

const bearer = (token) => ({ headers: { Authorization: `Bearer ${token}` } });

// cluster/shard_map.h: FNV-1a 64 of the room name's bytes, mod 256.
function shardOf(room) {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(room, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(h % 256n);
}

// Every document of the room's messages, with the token; 503 (a shard
// between owners) is retried as clients do.
async function pullAll(url, room, token) {
  const documents = [];
  let checkpoint;
  const deadline = Date.now() + 20000;
  for (;;) {
    const q = new URLSearchParams({ collection: 'messages', batchSize: '1000' });
    if (checkpoint) q.set('checkpoint', JSON.stringify(checkpoint));
    const r = await getJson(`${url}/v1/rooms/${room}/replicate/pull?${q}`, bearer(token));
    if (r.status === 503 && Date.now() < deadline) {
      await sleep(50);
      continue;
    }
    assert.equal(r.status, 200, r.text);
    documents.push(...r.body.documents);
    checkpoint = r.body.checkpoint;
    if (r.body.documents.length === 0) return { documents, checkpoint };
  }
}

const heldBy = (table, nodeId) => table.leases.filter((l) => !l.expired && l.owner_node === nodeId).length;

test('roomsyncctl shards, rooms, check and drain on two leasing nodes', async (t) => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_ctl_cluster_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  const store = withDatabase(adminUrl, db);
  const dir = tempDir('roomsyncctl-cluster-');
  const secret = join(dir, 'hs256.secret');
  writeFileSync(secret, `${randomBytes(32).toString('hex')}\n`);
  const auth = ['--auth', 'jwt', '--jwt_hs256_secret_file', secret];
  const mint = (extra) => {
    const r = ctl(['token', 'mint', '--jwt_hs256_secret_file', secret, ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  const adminFile = join(dir, 'admin.jwt');
  const userFile = join(dir, 'user.jwt');
  const upstreamFile = join(dir, 'upstream.jwt');
  const userToken = mint(['--sub', 'alice', '--rooms', '*', '--scope', 'read write']);
  writeFileSync(adminFile, mint(['--sub', 'operator', '--scope', 'admin', '--ttl', '10m']));
  writeFileSync(userFile, userToken);
  writeFileSync(upstreamFile, mint(['--sub', 'gateway', '--rooms', '*', '--scope', 'read', '--ttl', '1h']));

  const ids = { a: `node-a-${process.pid}`, b: `node-b-${process.pid}` };
  const nodes = {};
  let gateway;
  let loner;
  try {
    for (const name of ['a', 'b']) {
      nodes[name] = await startRoomService({
        dir,
        store,
        // 2 s leases keep hand-overs short, as in room_leases.test.mjs.
        args: [...auth, '--shard_leases', '--lease_ttl', '2s', '--node_id', ids[name], '--metrics', '127.0.0.1:0'],
      });
    }
    const address = (name) => `127.0.0.1:${nodes[name].grpcPort}`;
    gateway = await startGateway({
      roomService: `${address('a')},${address('b')}`,
      args: [...auth, '--upstream_token_file', upstreamFile],
    });
    await waitFor(async () => (await getJson(`${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
    const on = (name) => ['--target', address(name), '--grpc_plaintext', '--token_file', adminFile];
    const shards = (name = 'a') => {
      const r = ctl(['shards', '--output', 'json', ...on(name)]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    await waitFor(() => {
      const table = shards();
      return table.members.length === 2 && heldBy(table, ids.a) === 128 && heldBy(table, ids.b) === 128;
    }, { what: 'the shards split 128/128', intervalMs: 200 });

    await t.test('shards: 256 leases split between the two members', () => {
      const table = shards('b');
      assert.equal(table.node_id, ids.b, 'the answering node');
      assert.equal(table.shard_count, 256);
      assert.equal(table.leases.length, 256);
      assert.deepEqual(table.leases.map((l) => l.shard), Array.from({ length: 256 }, (_, i) => i));
      assert.equal(table.free, 0);
      assert.deepEqual(table.problems, []);
      assert.deepEqual(table.members.map((m) => [m.node_id, m.address, m.shards]).sort(),
        [[ids.a, address('a'), 128], [ids.b, address('b'), 128]]);
      for (const lease of table.leases) {
        assert.ok(lease.epoch >= 1, `shard ${lease.shard}: epoch ${lease.epoch}`);
        assert.equal(lease.owner_address, lease.owner_node === ids.a ? address('a') : address('b'));
        assert.ok(lease.expires_at_ms > Date.now() - 5000, `shard ${lease.shard} expiry`);
      }
      const r = ctl(['shards', ...on('a')]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^MEMBER\s+ADDRESS\s+SHARDS\n/);
      assert.match(r.stdout, new RegExp(`\\n${ids.a}\\s+127\\.0\\.0\\.1:${nodes.a.grpcPort}\\s+128\\n`));
      assert.match(r.stdout, new RegExp(`\\n${ids.b}\\s+127\\.0\\.0\\.1:${nodes.b.grpcPort}\\s+128\\n`));
      assert.match(r.stdout, /\nOWNER\s+ADDRESS\s+SHARDS\s+RANGES\n/);
      assert.match(r.stdout, /\n256 shards: 256 held by 2 nodes, 0 free/);
    });

    await t.test('shards and drain on a node without leases: FAILED_PRECONDITION, exit 1', async () => {
      loner = await startRoomService({ dir: tempDir('roomsyncctl-loner-'), args: auth });
      const target = ['--target', `127.0.0.1:${loner.grpcPort}`, '--grpc_plaintext', '--token_file', adminFile];
      for (const args of [['shards'], ['drain', ids.a]]) {
        const r = ctl([...args, ...target]);
        assert.equal(r.status, 1, `${args}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /FAILED_PRECONDITION: this node does not lease shards \(--shard_leases is off\)/);
      }
      await loner.stop();
      loner = undefined;
    });

    const rooms = Array.from({ length: 16 }, () => uniqueRoom('cluster'));
    // 503 is the contract's "retry": a lease renewal that came late on a
    // loaded machine (2 s leases) makes the owner refuse for a moment.
    for (const room of rooms) {
      const deadline = Date.now() + 10000;
      let r;
      do {
        r = await postJson(`${gateway.url}/v1/rooms/${room}/replicate/push?collection=messages`, [doc(`${room}-0`)], bearer(userToken));
      } while (r.status === 503 && Date.now() < deadline && (await sleep(50), true));
      assert.equal(r.status, 200, r.text);
    }

    await t.test('rooms list: each room\'s owner as the lease table says', () => {
      const table = shards();
      const lease = new Map(table.leases.map((l) => [l.shard, l]));
      for (const name of ['a', 'b']) {
        const r = ctl(['rooms', 'list', '--all', '--output', 'json', ...on(name)]);
        assert.equal(r.status, 0, r.stderr);
        const listed = JSON.parse(r.stdout).rooms.filter((x) => rooms.includes(x.room));
        assert.equal(listed.length, rooms.length);
        for (const room of listed) {
          const owner = lease.get(shardOf(room.room));
          assert.equal(room.owner_node, owner.owner_node, room.room);
          assert.equal(room.owner_address, owner.owner_address, room.room);
          assert.equal(room.subscribers, 0, `${room.room}: nobody subscribed`);
        }
        assert.deepEqual([...new Set(listed.map((x) => x.owner_node))].sort(), [ids.a, ids.b].sort(),
          'both nodes own some of the 16 rooms');
      }
      const r = ctl(['rooms', 'list', '--all', ...on('a')]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^ROOM\s+DOCS\s+LIVE\s+DELETED\s+BYTES\s+LAST_SEQ\s+LAST_WRITE\s+SUBSCRIBERS\s+OWNER\s+EPOCH\n/);
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${rooms[0]} `));
      assert.match(line, new RegExp(`\\s0\\s+(${ids.a}|${ids.b})\\s+[0-9a-f]{32}$`));
    });

    await t.test('a room with an open SSE stream shows one subscriber, asked on either node', async () => {
      const room = rooms[1];
      const stream = await openRawStream(roomApi(gateway.url, room).streamUrl({ collection: 'messages' }),
        { headers: { Authorization: `Bearer ${userToken}` } });
      try {
        for (const name of ['a', 'b']) {
          const shown = await waitFor(() => {
            const r = ctl(['rooms', 'show', room, '--output', 'json', ...on(name)]);
            assert.equal(r.status, 0, r.stderr);
            const info = JSON.parse(r.stdout);
            return info.subscribers === 1 ? info : undefined;
          }, { what: `subscribers=1 asked on ${name}`, intervalMs: 100, timeoutMs: 10000 });
          assert.equal(shown.owner_node, shards().leases[shardOf(room)].owner_node);
          const table = ctl(['rooms', 'show', room, ...on(name)]);
          assert.match(table.stdout, /\nsubscribers\s+1\n/);
          assert.match(table.stdout, new RegExp(`\\nowner\\s+${shown.owner_node} \\(${shown.owner_address.replace(/\./g, '\\.')}\\)\\n`));
        }
        const listed = JSON.parse(ctl(['rooms', 'list', '--all', '--output', 'json', ...on('a')]).stdout).rooms;
        for (const r of listed.filter((x) => rooms.includes(x.room))) {
          assert.equal(r.subscribers, r.room === room ? 1 : 0, r.room);
        }
      } finally {
        stream.close();
      }
      await waitFor(() => JSON.parse(ctl(['rooms', 'show', room, '--output', 'json', ...on('b')]).stdout).subscribers === 0,
        { what: 'the subscriber to go', intervalMs: 100, timeoutMs: 10000 });
    });

    await t.test('check --all: clean, then a lease row with epoch 0 outside the shard map', () => {
      let r = ctl(['check', '--all', ...on('a')]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /\n\d+ rooms and 256 shard leases checked, 0 problems\n$/);
      // The schema's CHECKs refuse such a row: a hand edit.
      psql(store, 'ALTER TABLE shard_leases DROP CONSTRAINT shard_leases_epoch_check, DROP CONSTRAINT shard_leases_shard_check');
      psql(store, "INSERT INTO shard_leases VALUES (300, 'ghost', '127.0.0.1:1', 0, now() - interval '1 hour')");
      try {
        r = ctl(['check', '--all', ...on('b')]);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stdout, /shards: PROBLEM: shard 300 \(held by ghost\) is outside 0\.\.255/);
        assert.match(r.stdout, /shards: PROBLEM: shard 300: the lease of ghost has epoch 0; lease epochs start at 1/);
        assert.match(r.stdout, /\n\d+ rooms and 257 shard leases checked, 2 problems\n$/);
        r = ctl(['check', '--all', '--output', 'json', ...on('a')]);
        assert.equal(r.status, 1);
        const report = JSON.parse(r.stdout);
        assert.equal(report.shards.checked, true);
        assert.equal(report.shards.problems.length, 2);
        assert.equal(report.problems, 2);
        assert.ok(JSON.parse(ctl(['shards', '--output', 'json', ...on('a')]).stdout).problems.length === 2);
      } finally {
        psql(store, 'DELETE FROM shard_leases WHERE shard = 300');
      }
      assert.equal(ctl(['check', '--all', ...on('a')]).status, 0);
    });

    await t.test('admin calls without an admin token are refused', () => {
      const user = ['--target', address('a'), '--grpc_plaintext', '--token_file', userFile];
      const none = ['--target', address('a'), '--grpc_plaintext'];
      for (const args of [['shards'], ['drain', ids.a], ['rooms', 'list'], ['rooms', 'show', rooms[0]]]) {
        let r = ctl([...args, ...user]);
        assert.equal(r.status, 1, `${args}: ${r.stderr}`);
        assert.match(r.stderr, /PERMISSION_DENIED: the token's scope does not include admin/);
        r = ctl([...args, ...none]);
        assert.equal(r.status, 1, `${args}: ${r.stderr}`);
        assert.match(r.stderr, /UNAUTHENTICATED/);
      }
      assert.equal(heldBy(shards(), ids.a), 128, 'nothing was drained');
      assert.equal(ctl(['drain', ...on('a')]).status, 2, 'NODE_ID is required');
      assert.equal(ctl(['drain', '--help']).status, 0);
      assert.equal(ctl(['shards', '--help']).status, 0);
    });

    await t.test('drain NODE_A while writers push through the gateway: nothing acknowledged is lost', async () => {
      const writers = rooms.slice(2, 10).map((room) => ({ room, acknowledged: [], attempted: new Set() }));
      let stop = false;
      let duringDrain = 0;
      let draining = false;
      const write = async (w) => {
        for (let i = 1; !stop; i += 1) {
          const id = `${w.room}-w${i}`;
          w.attempted.add(id);
          for (;;) {
            let r;
            try {
              r = await postJson(`${gateway.url}/v1/rooms/${w.room}/replicate/push?collection=messages`, [doc(id)], bearer(userToken));
            } catch {
              r = { status: 0 };
            }
            if (r.status === 200) {
              w.acknowledged.push(id);
              if (draining) duringDrain += 1;
              break;
            }
            assert.ok(r.status === 503 || r.status === 0, `${w.room}: ${r.status} ${r.text}`);
            if (stop) break;
            await sleep(20);
          }
        }
      };
      const running = writers.map(write);
      await sleep(500);
      draining = true;
      const started = Date.now();
      const drained = await ctlAsync(['drain', ids.a, '--timeout', '20s', ...on('b')]);
      const tookMs = Date.now() - started;
      assert.equal(drained.status, 0, drained.stdout + drained.stderr);
      assert.match(drained.stdout, new RegExp(`^drained ${ids.a} \\(127\\.0\\.0\\.1:${nodes.a.grpcPort}\\): handed over 128 shards in [0-9.]+m?s`));
      // B takes them in its next round (a third of the 2 s lease).
      const settled = await waitFor(() => {
        const table = shards('b');
        return heldBy(table, ids.a) === 0 && heldBy(table, ids.b) === 256 ? table : undefined;
      }, { what: 'B to hold every shard', intervalMs: 100, timeoutMs: 5000 });
      assert.deepEqual(settled.members.map((m) => m.node_id), [ids.b], 'A left the membership');
      draining = false;
      await sleep(500);  // pushes to the moved rooms on B
      stop = true;
      await Promise.all(running);
      assert.ok(tookMs < 10000, `drain took ${tookMs} ms`);
      assert.ok(duringDrain > 0, 'pushes were acknowledged while draining');

      for (const w of writers) {
        assert.ok(w.acknowledged.length > 0, w.room);
        const { documents, checkpoint } = await pullAll(gateway.url, w.room, userToken);
        const got = documents.map((d) => d.id);
        const present = new Set(got);
        for (const id of w.acknowledged) assert.ok(present.has(id), `${w.room}: acknowledged ${id} is missing`);
        for (const id of got) assert.ok(id === `${w.room}-0` || w.attempted.has(id), `${w.room}: ${id} was never pushed`);
        assert.equal(checkpoint.seq, got.length, `${w.room}: seqs without gaps`);
      }

      // The drained node's metrics: it handed its 128 shards over and holds none.
      const metricsOf = async (name) => (await getJson(`http://127.0.0.1:${nodes[name].metricsPort}/metrics`)).text;
      const a = await metricsOf('a');
      const b = await metricsOf('b');
      assert.equal(counter(a, 'roomsync_shard_leases_held'), 0);
      assert.equal(counter(b, 'roomsync_shard_leases_held'), 256);
      assert.ok(counter(a, 'roomsync_shard_lease_changes_total', 'change="released"') >= 128, a);
      assert.ok(counter(b, 'roomsync_shard_lease_changes_total', 'change="acquired"') >= 256, b);
      assert.equal(counter(a, 'roomsync_store_errors_total'), 0);

      // Again: A is no member and holds nothing.
      const again = ctl(['drain', ids.a, ...on('b')]);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /NOT_FOUND: no live member or lease holder is named/);
      // The same node serves on, through B.
      const r = await postJson(`${gateway.url}/v1/rooms/${rooms[0]}/replicate/push?collection=messages`, [doc('after-drain')], bearer(userToken));
      assert.equal(r.status, 200, r.text);
    });

    await t.test('a drain that reaches the wrong node is refused there (INVALID_ARGUMENT)', () => {
      // A stale membership row that names B's address.
      psql(store, `INSERT INTO cluster_nodes VALUES ('impostor', '${address('b')}', now() + interval '1 minute')`);
      try {
        const r = ctl(['drain', 'impostor', ...on('b')]);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, new RegExp(`INVALID_ARGUMENT: this is node "${ids.b}", not "impostor": nothing was drained`));
        assert.ok(JSON.parse(ctl(['shards', '--output', 'json', ...on('b')]).stdout).members.some((m) => m.node_id === ids.b),
          'B is still a member');
      } finally {
        psql(store, "DELETE FROM cluster_nodes WHERE node_id = 'impostor'");
      }
    });
  } finally {
    await loner?.stop();
    await gateway?.stop();
    for (const node of Object.values(nodes)) await node.stop();
    try {
      psql(adminUrl, `DROP DATABASE IF EXISTS ${db}`);
    } catch {
      // the server goes away with the test run anyway
    }
  }
});
