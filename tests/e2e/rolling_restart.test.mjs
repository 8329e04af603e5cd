// A rolling restart under load on deploy/local/topology.sh (issue 12):
// `--detach --rooms 3 --gateways 2` with 6 s shard leases. WRITERS writers
// push continuously, one document per push, over ROOMS rooms through
// gateway 0 on keep-alive connections; one SSE follower per room reads
// through gateway 1. Then `topology.sh restart-room DIR 0`, 1 and 2 (each
// node gets SIGTERM, drains, hands its shards over, starts again on the
// same ports and takes its share back), then `restart-gateway DIR 0` and
// 1, then a few more seconds of writes.
//
// Writers. A push is retried as the same document (same bytes, so a retry
// of a push that was committed but not answered is a no-op, not a new
// change) until it is answered 200: a 503 or a connection error is
// retried after RETRY_PAUSE_MS; another 5xx is retried too but fails the
// test at the end (a rolling restart should answer 503, Retry-After), a
// 4xx or a 200 with a conflict fails it at once. A document
// is "acknowledged" when its push was answered 200 with no conflict. Its
// "ack wait" is from the first attempt to that answer.
//
// Followers. A follower first pulls its room from the beginning, then
// opens the stream with `Last-Event-ID: <its checkpoint>` (PROTOCOL.md:
// the header is the checkpoint; the server sends everything after it,
// then live changes). When the stream ends or the connection fails (a
// gateway restarting, a refused connection) it reconnects the same way
// with the checkpoint of the last delivery it kept. On `data: "RESYNC"`
// it closes the stream, pulls from that checkpoint until a page comes
// back empty (retrying 503s), then reconnects from the pull's checkpoint.
//
// "Exactly once" across reconnects and RESYNCs: a follower keeps every
// document of every delivery (a stream event, or a page of a pull it
// made at the start or after a RESYNC) in arrival order, and never
// de-duplicates. Its record must equal the final full pull of its room:
// the same documents in the same (seq) order, none twice, none missing.
// Every delivery carrying documents must have a checkpoint seq strictly
// above the one before (so a pull after a RESYNC that returned something
// the stream had already sent, or a stream that replays the pull, fails),
// no two stream events may carry the same id, and an event's id must be
// its checkpoint. The RESYNC frame itself is not a delivery.
//
// Drain and hand-off: with them, a node's shards reach the other nodes
// within ~250 ms of its SIGTERM and the gateways follow within their
// 1 s lease-table refresh; without hand-off the shards wait for their
// leases to expire (up to --lease_ttl). So the longest ack wait of any
// push in flight during a room-node restart must stay under half the
// lease ttl. (Measured: see the numbers the test prints; with
// `leases_->Stop(/*release=*/false)` in RoomServer::Drain it fails here.)
//
// A request the gateway sends to a room node that is shutting down can
// come back as gRPC CANCELLED (the node's server cancels it); the gateway
// answers it 503 unavailable with Retry-After, as any retryable failure.
// This test found it answering 500 in 2 of 5 runs; TOLERATE_CANCELLED_500
// (false) would let that old answer pass during room-node restarts.
//
// The binaries are ROOMSYNC_ROOM_BIN and ROOMSYNC_GATEWAY_BIN (ctest sets
// them), passed to topology.sh as --room-bin and --gateway-bin, so a
// roomsync-room of another build can run against this gateway.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';

import { alive, leases, readState, request, shardOf, startFollower, topology, topologyScript } from './lib/cluster.mjs';
import { binary, doc, roomApi, pullAllWithRetry, sleep, tempDir } from './lib/roomsync.mjs';

const NODES = 3;
const GATEWAYS = 2;
const ROOMS = 12;
const WRITERS = 4;
const LEASE_TTL_MS = 6000;
const RETRY_PAUSE_MS = 50;
const WRITE_PAUSE_MS = 5;  // between a writer's pushes: load, not a CPU hog on a shared machine
const WARM_UP_MS = 3000;
const COOL_DOWN_MS = 4000;
// SERVER BUG (found by this test, not fixed here): see the header.
// false makes those answers fail the test like any other 5xx.
const TOLERATE_CANCELLED_500 = false;

// ------------------------------------------------------------------ writers

function startWriter(index, gatewayUrl, rooms, stats) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const writer = { index, stop: false, acknowledged: 0, retries: 0, errors: [] };
  writer.done = (async () => {
    let n = 0;
    while (!writer.stop && writer.errors.length === 0) {
      const room = rooms[n % rooms.length];
      const id = `w${index}-${n}`;
      n += 1;
      const item = doc(id);
      const body = JSON.stringify([item]);
      const url = room.api.pushUrl('messages');
      const start = performance.now();
      for (;;) {
        let outcome;
        try {
          outcome = await request(agent, url, { method: 'POST', body });
        } catch (error) {
          outcome = { error };
        }
        if (outcome.status === 200) {
          const answer = JSON.parse(outcome.text);
          if (answer.success !== true || answer.conflicts.length !== 0) {
            writer.errors.push(`${room.name}/${id}: 200 with conflicts: ${outcome.text}`);
            break;
          }
          const end = performance.now();
          room.acknowledged.set(id, item);
          stats.pushes.push({ start, end, wait: end - start, room: room.name });
          writer.acknowledged += 1;
          break;
        }
        if (outcome.status !== undefined && outcome.status < 500) {
          writer.errors.push(`${room.name}/${id}: HTTP ${outcome.status} ${outcome.text}`);
          break;
        }
        // Any other 5xx is retried too (clients do), but is a failure:
        // a rolling restart should answer 503 with Retry-After.
        if (outcome.status !== undefined && outcome.status !== 503) {
          stats.unexpected.push({ t: performance.now(), what: `push ${room.name}/${id}: HTTP ${outcome.status} ${outcome.text}` });
        }
        writer.retries += 1;
        const reason = outcome.error ? (outcome.error.code ?? outcome.error.message) : String(outcome.status);
        stats.retryReasons[reason] = (stats.retryReasons[reason] ?? 0) + 1;
        await sleep(RETRY_PAUSE_MS);
      }
      await sleep(WRITE_PAUSE_MS);
    }
    agent.destroy();
  })();
  return writer;
}


// ------------------------------------------------------------------- test

test('rolling restart of 3 room nodes and 2 gateways under load: nothing acknowledged is lost, followers see each change once, pushes wait < ttl/2', async () => {
  const dir = tempDir('roomsync-rolling-');
  let started = false;
  const writers = [];
  const followers = [];
  try {
    const up = await topology(['--detach', '--rooms', String(NODES), '--gateways', String(GATEWAYS), '--http-port', '0',
      '--dir', dir, '--room-bin', binary('ROOMSYNC_ROOM_BIN'), '--gateway-bin', binary('ROOMSYNC_GATEWAY_BIN'),
      `--room-arg=--lease_ttl=${LEASE_TTL_MS / 1000}s`]);
    started = true;
    assert.match(up.stdout, /ready: 3 room node\(s\) holding 256 shards/);
    const state = readState(dir);
    const gatewayUrls = state.GATEWAY_URLS.split(' ');
    assert.equal(gatewayUrls.length, GATEWAYS);
    assert.equal(state.GATEWAY_URL, gatewayUrls[0]);
    assert.equal(state.ROOM_PIDS.split(' ').length, NODES);
    const [writeUrl, followUrl] = gatewayUrls;

    const tag = `e2e-rolling-${process.pid}-${Date.now().toString(36)}`;
    const rooms = Array.from({ length: ROOMS }, (_, i) => {
      const name = `${tag}-${i}`;
      return { name, api: roomApi(writeUrl, name), acknowledged: new Map() };
    });
    // A first document in each room, so that every follower starts from a
    // checkpoint (a stream without one would only see what comes after it
    // opened).
    await Promise.all(rooms.map(async (room) => {
      const first = doc(`${room.name}-first`);
      const r = await request(undefined, room.api.pushUrl('messages'), { method: 'POST', body: JSON.stringify([first]) });
      assert.equal(r.status, 200, r.text);
      room.acknowledged.set(first.id, first);
    }));
    const stats = { pushes: [], retryReasons: {}, unexpected: [] };
    for (const room of rooms) followers.push(startFollower(room, followUrl, stats.unexpected, { retryPauseMs: RETRY_PAUSE_MS, tolerated: [503] }));

    const perWriter = Math.ceil(ROOMS / WRITERS);
    for (let w = 0; w < WRITERS; w += 1) {
      writers.push(startWriter(w, writeUrl, rooms.slice(w * perWriter, (w + 1) * perWriter), stats));
    }
    const testStart = performance.now();
    await sleep(WARM_UP_MS);

    // The rolling restart, one process at a time.
    const windows = [];
    for (let i = 0; i < NODES; i += 1) {
      const owners = new Map([...leases(state.STORE_URL)].map(([shard, lease]) => [shard, lease.owner]));
      const owned = rooms.filter((room) => owners.get(shardOf(room.name)) === `room-${i}`).length;
      const start = performance.now();
      const r = await topology(['restart-room', dir, String(i)]);
      windows.push({ what: `room-${i}`, start, end: performance.now(), ms: r.ms, roomsOwned: owned });
      assert.match(r.stdout, new RegExp(`room-${i} drained: .*"pushes_answered":true`), r.stdout);
    }
    for (let g = 0; g < GATEWAYS; g += 1) {
      const start = performance.now();
      const r = await topology(['restart-gateway', dir, String(g)]);
      windows.push({ what: `gateway-${g}`, start, end: performance.now(), ms: r.ms });
    }
    await sleep(COOL_DOWN_MS);
    for (const writer of writers) writer.stop = true;
    await Promise.all(writers.map((w) => w.done));
    const testEnd = performance.now();

    // The restarted processes are in topology.env.
    const after = readState(dir);
    assert.notEqual(after.ROOM_PIDS, state.ROOM_PIDS);
    assert.equal(after.ROOM_PIDS.split(' ').length, NODES);
    for (const [i, pid] of after.ROOM_PIDS.split(' ').entries()) {
      assert.notEqual(pid, state.ROOM_PIDS.split(' ')[i], `room-${i} has a new pid`);
    }
    for (const [g, pid] of after.GATEWAY_PIDS.split(' ').entries()) {
      assert.notEqual(pid, state.GATEWAY_PIDS.split(' ')[g], `gateway ${g} has a new pid`);
    }
    assert.equal(after.GATEWAY_URLS, state.GATEWAY_URLS, 'gateways on the same ports');
    assert.equal(after.ROOM_GRPC, state.ROOM_GRPC, 'room nodes on the same ports');

    // The numbers.
    const overlapping = (w) => stats.pushes.filter((p) => p.end >= w.start && p.start <= w.end);
    const report = windows.map((w) => {
      const pushes = overlapping(w);
      const maxWait = Math.max(0, ...pushes.map((p) => p.wait));
      return { ...w, pushes: pushes.length, maxWait };
    });
    const acknowledged = rooms.reduce((n, room) => n + room.acknowledged.size, 0);
    const seconds = (testEnd - testStart) / 1000;
    console.log(`rolling restart: ${acknowledged} documents acknowledged (${stats.pushes.length} pushes in ` +
      `${seconds.toFixed(1)} s, ${(stats.pushes.length / seconds).toFixed(0)}/s), retries ${JSON.stringify(stats.retryReasons)}`);
    for (const w of report) {
      console.log(`  ${w.what.padEnd(10)} restart ${(w.ms / 1000).toFixed(1)} s, ${w.pushes} pushes in flight or answered, ` +
        `max ack wait ${w.maxWait.toFixed(0)} ms${w.roomsOwned === undefined ? '' : `, owned ${w.roomsOwned}/${ROOMS} rooms`}`);
    }
    console.log(`  max ack wait overall ${Math.max(...stats.pushes.map((p) => p.wait)).toFixed(0)} ms; ` +
      `RESYNCs seen by followers: ${followers.reduce((n, f) => n + f.resyncs, 0)} ` +
      `(${followers.map((f) => f.resyncs).join(' ')}), stream reconnects: ${followers.reduce((n, f) => n + f.reconnects, 0)}`);

    // Each unexpected answer with the restart it came during.
    const during = (t) => windows.find((w) => t >= w.start && t <= w.end + 1000)?.what ?? 'no restart';
    const all = stats.unexpected.map((u) => ({ ...u, during: during(u.t) }));
    const known = all.filter((u) => TOLERATE_CANCELLED_500 && u.during.startsWith('room-') &&
      / HTTP 500 \{"error":\{"code":"internal","message":"CANCELLED"\}\}$/.test(u.what));
    const unexpected = all.filter((u) => !known.includes(u)).map((u) => `${u.what} (during ${u.during})`);
    const summary = (list) => [...new Set(list.map((u) => u.replace(/^(\w+) \S+/, '$1')))].join('; ');
    console.log(`  known bug, 500 CANCELLED during a room-node restart (retried): ${known.length}` +
      (known.length ? ` (${known.map((u) => `${u.what.split(' ')[0]} during ${u.during}`).join(', ')})` : ''));
    console.log(`  other unexpected 5xx answers (retried): ${unexpected.length}` +
      (unexpected.length ? `: ${summary(unexpected)}` : ''));

    // Every check runs and every failure is reported together, the
    // timing one first: a run without hand-off fails on it, whatever
    // else it breaks.
    const failures = [];
    const check = (what, fn) => {
      try {
        fn();
      } catch (error) {
        failures.push(`${what}: ${error.message.slice(0, 1500)}`);
      }
    };

    // Drain and hand-off: no push waited half a lease ttl during a room-node restart.
    for (const w of report.filter((r) => r.what.startsWith('room-'))) {
      check(`${w.what} max ack wait`, () => assert.ok(w.maxWait < LEASE_TTL_MS / 2,
        `${w.what} restart: a push waited ${w.maxWait.toFixed(0)} ms to be acknowledged ` +
        `(>= ${LEASE_TTL_MS / 2} ms, half the lease ttl: its shards waited for their leases to expire?)`));
      check(`${w.what} restart`, () => assert.ok(w.roomsOwned > 0,
        `${w.what} owned none of the ${ROOMS} rooms when it restarted: the restart proves nothing`));
    }
    for (const writer of writers) check(`writer ${writer.index}`, () => assert.deepEqual(writer.errors, []));
    check('answers other than 200 and 503', () => assert.deepEqual(unexpected.slice(0, 10), []));

    // Every acknowledged document is stored, with the acknowledged content.
    const finals = new Map();
    for (const room of rooms) {
      const { documents, checkpoint } = await pullAllWithRetry(roomApi(writeUrl, room.name), { collection: 'messages' });
      finals.set(room.name, { documents, checkpoint });
      const stored = new Map(documents.map((d) => [d.id, d]));
      check(room.name, () => {
        assert.equal(stored.size, documents.length, `${room.name}: a document twice in a full pull`);
        for (const [id, item] of room.acknowledged) {
          assert.deepEqual(stored.get(id), item, `${room.name}: acknowledged ${id}`);
        }
        // Writers retry until answered: nothing stored was left unacknowledged.
        assert.equal(documents.length, room.acknowledged.size,
          `${room.name}: stored ${documents.length}, acknowledged ${room.acknowledged.size}`);
      });
    }

    // Each follower caught up, then saw every change exactly once, in order.
    for (const f of followers) {
      const final = finals.get(f.room.name);
      const deadline = Date.now() + 15000;
      while ((f.checkpoint?.seq ?? 0) < final.checkpoint.seq && Date.now() < deadline) await sleep(50);
    }
    for (const f of followers) await f.close();
    for (const f of followers) {
      const final = finals.get(f.room.name);
      check(`follower of ${f.room.name}`, () => {
        assert.deepEqual(f.violations, []);
        const seen = new Set(f.record);
        assert.equal(seen.size, f.record.length, `${f.record.length - seen.size} documents delivered twice`);
        assert.deepEqual(f.record, final.documents.map((d) => d.id), 'every document once, in seq order');
        assert.deepEqual(f.documents, final.documents, 'the stored content');
        assert.equal(f.checkpoint.seq, final.checkpoint.seq);
      });
    }
    assert.deepEqual(failures, [], `${failures.length} check(s) failed`);

    const stop = await topology(['stop', dir], 90000);
    started = false;
    assert.match(stop.stdout, /stopped/);
    for (const pid of [...after.ROOM_PIDS.split(' '), ...after.GATEWAY_PIDS.split(' ')]) {
      assert.ok(!alive(pid), `pid ${pid} still runs after stop`);
    }
  } finally {
    for (const writer of writers) writer.stop = true;
    await Promise.all(writers.map((w) => w.done.catch(() => {})));
    await Promise.all(followers.map((f) => f.close().catch(() => {})));
    if (started && existsSync(join(dir, 'topology.env'))) {
      try {
        execFileSync('bash', [topologyScript, 'stop', dir], { stdio: 'inherit', timeout: 90000 });
      } catch {
        // reported by the assertion that failed first
      }
    }
    if (process.env.ROOMSYNC_E2E_KEEP_DIR) {
      console.log(`kept ${dir}`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
