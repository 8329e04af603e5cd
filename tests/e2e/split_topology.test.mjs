// The split deployment: `roomsync-room` (gRPC room service over SQLite) and
// `roomsync-gateway` (HTTP/SSE) as two processes: push, pull, stream and
// history through the gateway.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';

import EventSource from 'eventsource';

import { doc, getJson, roomApi, startGateway, startRoomService, uniqueRoom, waitFor } from './lib/roomsync.mjs';

test('roomsync-gateway in front of roomsync-room: push → pull → stream → history', async () => {
  const room = await startRoomService();
  let gateway;
  let es;
  try {
    gateway = await startGateway({ roomServicePort: room.grpcPort });
    await waitFor(async () => (await getJson(`${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
    assert.equal((await getJson(`${gateway.url}/healthz`)).status, 200);

    for (const prefix of ['/v1/rooms', '/api/room']) {
      const api = roomApi(gateway.url, uniqueRoom('split'), prefix);
      const t = Date.now();
      const push = await api.push('messages', [doc('m1', {}, t), doc('m2', {}, t)]);
      assert.equal(push.status, 200, push.text);
      assert.deepEqual(push.body, { success: true, conflicts: [] });

      const pull = await api.pull({ collection: 'messages' });
      assert.deepEqual(pull.body.documents.map((d) => d.id), ['m1', 'm2']);
      assert.equal(pull.body.checkpoint.seq, 2);

      // LWW through the gateway.
      const older = await api.push('messages', [{ newDocumentState: doc('m1', { ciphertext: 'old' }, t - 1), assumedMasterState: null }]);
      assert.deepEqual(older.body, { success: true, conflicts: [doc('m1', {}, t)] });

      // Stream: catch-up from seq 1, then live.
      const received = [];
      es = new EventSource(api.streamUrl({ collection: 'messages' }), {
        headers: { 'Last-Event-ID': JSON.stringify({ seq: 1, epoch: pull.body.checkpoint.epoch }) },
      });
      es.onmessage = (e) => {
        const payload = JSON.parse(e.data);
        assert.notEqual(payload, 'RESYNC');
        received.push(...payload.documents.map((d) => [payload.checkpoint.seq, d.id]));
      };
      await waitFor(() => received.length === 1, { what: 'catch-up of m2' });
      await api.push('messages', [doc('m3')]);
      await waitFor(() => received.length === 2, { what: 'live m3' });
      assert.deepEqual(received, [[2, 'm2'], [3, 'm3']]);
      es.close();

      const history = await api.history({ collection: 'messages', limit: 2 });
      assert.deepEqual(history.body.documents.map((d) => d.id), ['m3', 'm2']);
      assert.notEqual(history.body.next, null);
      const older2 = await api.history({ collection: 'messages', limit: 2, before: history.body.next });
      assert.deepEqual(older2.body.documents.map((d) => d.id), ['m1']);
      assert.equal(older2.body.next, null);
    }
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    assert.match(metrics, /roomsync_gateway_requests_total/);
  } finally {
    es?.close();
    await gateway?.stop();
    await room.stop();
    rmSync(room.dir, { recursive: true, force: true });
  }
});

// Operators' ports: `roomsync-gateway --metrics` serves /metrics (and
// /healthz) on a port of its own and stops exposing /metrics on the public
// port; `roomsync-room --metrics` serves /metrics, /healthz and /readyz.
test('--metrics: the gateway and the room node serve metrics and health on their own ports', async () => {
  const room = await startRoomService({ args: ['--metrics', '127.0.0.1:0'] });
  let gateway;
  try {
    gateway = await startGateway({ roomServicePort: room.grpcPort, args: ['--metrics', '127.0.0.1:0'] });
    const started = gateway.log.stderr.split('\n').map((line) => {
      try {
        return JSON.parse(line);
      } catch {
        return {};
      }
    }).find((event) => event.event === 'gateway_started');
    assert.ok(started?.metrics_port > 0, `gateway_started names its metrics port: ${gateway.log.stderr}`);
    const ops = `http://127.0.0.1:${started.metrics_port}`;

    const api = roomApi(gateway.url, uniqueRoom('ops'));
    assert.equal((await api.push('messages', [doc('m1')])).status, 200);
    const metrics = await fetch(`${ops}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    assert.match(await metrics.text(), /roomsync_gateway_requests_total\{route="\/v1\/rooms\/\{room\}\/replicate\/push",status="200"\} 1/);
    assert.equal((await getJson(`${ops}/healthz`)).status, 200);
    const publicMetrics = await getJson(`${gateway.url}/metrics`);
    assert.equal(publicMetrics.status, 404, 'the public port no longer exposes /metrics');
    assert.equal(publicMetrics.body.error.code, 'not_found');
    assert.equal((await fetch(`${ops}/v1/rooms/x/replicate/pull`)).status, 404, 'no API on the metrics port');

    const roomOps = `http://127.0.0.1:${room.metricsPort}`;
    assert.deepEqual((await getJson(`${roomOps}/healthz`)).body, { status: 'alive' });
    await waitFor(async () => (await getJson(`${roomOps}/readyz`)).status === 200, { what: 'room node ready' });
    assert.deepEqual((await getJson(`${roomOps}/readyz`)).body, { status: 'ready' });
    assert.match(await (await fetch(`${roomOps}/metrics`)).text(), /roomsync_room_pushes_total/);
    assert.equal((await fetch(`${roomOps}/metrics`, { method: 'POST' })).status, 405);
  } finally {
    await gateway?.stop();
    await room.stop();
    rmSync(room.dir, { recursive: true, force: true });
  }
});
