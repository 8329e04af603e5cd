// deploy/local/topology.sh, for real: `--detach --rooms 2` starts its own
// PostgreSQL, two `roomsync-room --shard_leases` and a gateway on free
// loopback ports and returns once they are ready. Documents pushed to
// many rooms through the gateway must come back from pulls, be stored in
// that PostgreSQL, and have been served by both room nodes (the shards are
// shared). Then `topology.sh stop DIR` must end every process it started.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { binary, counter, doc, getJson, roomApi, tempDir, uniqueRoom } from './lib/roomsync.mjs';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(repo, 'deploy', 'local', 'topology.sh');
const ROOMS = 24;
const NODES = 2;

// The build directory the e2e binaries come from (ctest sets the paths).
function buildDir() {
  const gateway = binary('ROOMSYNC_GATEWAY_BIN');
  const dir = dirname(dirname(gateway));
  assert.equal(join(dir, 'services', 'room', 'roomsync-room'), binary('ROOMSYNC_ROOM_BIN'),
    'roomsync-room and roomsync-gateway of one build directory');
  return dir;
}

// topology.env is shell syntax (printf %q): let bash read it.
function readState(dir) {
  const keys = ['STATE', 'PG_PID', 'PG_PORT', 'STORE_URL', 'ROOM_BIN', 'ROOM_PIDS', 'ROOM_GRPC',
    'ROOM_METRICS', 'GATEWAY_BIN', 'GATEWAY_PID', 'GATEWAY_URL'];
  const out = execFileSync('bash', ['-c', 'source "$1"; shift; for k; do printf "%s=%s\\n" "$k" "${!k}"; done',
    '_', join(dir, 'topology.env'), ...keys], { encoding: 'utf8' });
  return Object.fromEntries(out.trimEnd().split('\n').map((line) => {
    const eq = line.indexOf('=');
    return [line.slice(0, eq), line.slice(eq + 1)];
  }));
}

// Running and not a zombie (detached processes are reaped by init).
function alive(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

function exeOf(pid) {
  return readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
}

test('deploy/local/topology.sh: PostgreSQL, 2 room nodes and a gateway that serve pushes and pulls, then stop', async () => {
  const dir = tempDir('roomsync-topology-e2e-');
  let started = false;
  try {
    const start = await run('bash', [script, '--detach', '--rooms', String(NODES), '--http-port', '0',
      '--dir', dir, '--build-dir', buildDir()], { timeout: 150000 }).catch((error) => {
      throw new Error(`topology.sh failed (code ${error.code}):\n${error.stdout}\n${error.stderr}`);
    });
    started = true;
    assert.match(start.stdout, /ready: 2 room node\(s\) holding 256 shards/);

    const state = readState(dir);
    assert.equal(state.STATE, 'running');
    const roomPids = state.ROOM_PIDS.split(' ').map(Number);
    const pids = [Number(state.GATEWAY_PID), ...roomPids, Number(state.PG_PID)];
    assert.equal(roomPids.length, NODES);
    for (const pid of pids) assert.ok(alive(pid), `pid ${pid} runs`);
    assert.equal(exeOf(state.GATEWAY_PID), binary('ROOMSYNC_GATEWAY_BIN'));
    for (const pid of roomPids) assert.equal(exeOf(pid), binary('ROOMSYNC_ROOM_BIN'));
    assert.equal(exeOf(state.PG_PID), '/usr/lib/postgresql/15/bin/postgres');

    // Ready as the script promised: every node serving, no retry needed.
    const ready = await getJson(`${state.GATEWAY_URL}/readyz`);
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(ready.body, { status: 'ready', room_nodes: NODES, room_nodes_serving: NODES });

    // Two pushes per room (two collections), all at once.
    const t = Date.now();
    const rooms = Array.from({ length: ROOMS }, () => {
      const name = uniqueRoom('topology');
      return { name, api: roomApi(state.GATEWAY_URL, name) };
    });
    await Promise.all(rooms.map(async (room) => {
      const first = await room.api.push('messages', [doc(`${room.name}-1`, {}, t), doc(`${room.name}-2`, {}, t)]);
      assert.equal(first.status, 200, `${room.name}: ${first.text}`);
      assert.deepEqual(first.body, { success: true, conflicts: [] });
      const second = await room.api.push('threads', [doc(`${room.name}-t`, {}, t)]);
      assert.equal(second.status, 200, `${room.name}: ${second.text}`);
    }));

    // Every document back, in push order, through the gateway.
    for (const room of rooms) {
      const { documents, checkpoint } = await room.api.pullAll();
      assert.deepEqual(documents.map((d) => [d._collection, d.id]),
        [['messages', `${room.name}-1`], ['messages', `${room.name}-2`], ['threads', `${room.name}-t`]], room.name);
      assert.equal(checkpoint.seq, 3, room.name);
      const messages = await room.api.pullAll({ collection: 'messages' });
      assert.deepEqual(messages.documents.map((d) => d.id), [`${room.name}-1`, `${room.name}-2`]);
    }

    // Stored in the topology's own PostgreSQL.
    const stored = execFileSync('/usr/lib/postgresql/15/bin/psql', ['-X', '-t', '-A', '-d', state.STORE_URL,
      '-c', `SELECT count(*) FROM documents WHERE room LIKE 'e2e-topology-${process.pid}-%'`], { encoding: 'utf8' });
    assert.equal(Number(stored.trim()), ROOMS * 3);

    // Both nodes committed some of the rooms (each holds half the shards),
    // and together exactly all of the pushes.
    const perNode = [];
    for (const address of state.ROOM_METRICS.split(',')) {
      const res = await fetch(`http://${address}/metrics`);
      assert.equal(res.status, 200);
      const text = await res.text();
      perNode.push(counter(text, 'roomsync_room_pushes_total', 'result="ok"'));
      assert.equal(counter(text, 'roomsync_room_pushes_total', 'result="error"'), 0);
    }
    assert.equal(perNode.length, NODES);
    for (const n of perNode) assert.ok(n > 0, `every node served pushes: ${perNode}`);
    assert.equal(perNode.reduce((a, b) => a + b, 0), ROOMS * 2);

    // Stop: every process ends, the gateway's port closes, the directory
    // (named by us) stays with its logs.
    const stop = await run('bash', [script, 'stop', dir], { timeout: 90000 }).catch((error) => {
      throw new Error(`topology.sh stop failed (code ${error.code}):\n${error.stdout}\n${error.stderr}`);
    });
    started = false;
    assert.match(stop.stdout, /stopped/);
    for (const pid of pids) assert.ok(!alive(pid), `pid ${pid} still runs after stop`);
    await assert.rejects(fetch(`${state.GATEWAY_URL}/readyz`), 'the gateway port is closed');
    assert.equal(readState(dir).STATE, 'stopped');
    // Each room node drained (SIGTERM), not killed.
    for (let i = 0; i < NODES; i += 1) {
      const log = readFileSync(join(dir, `room-${i}.log`), 'utf8');
      assert.match(log, /"event":"room_service_drained","pushes_answered":true/, `room-${i} drained`);
    }
    assert.match(readFileSync(join(dir, 'gateway.log'), 'utf8'), /"event":"gateway_draining"/);
  } finally {
    if (started && existsSync(join(dir, 'topology.env'))) {
      try {
        execFileSync('bash', [script, 'stop', dir], { stdio: 'inherit', timeout: 90000 });
      } catch {
        // reported by the assertion that failed first
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
