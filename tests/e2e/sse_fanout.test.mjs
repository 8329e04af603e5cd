// 1,000 concurrent SSE clients on one room: every client receives every
// change, in order. Measures the server's RSS per idle stream and the
// push → delivery latency with 1,000 subscribers (printed, loosely bounded).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  doc, getJson, openRawStream, percentile, roomApi, rssKiB, sleep, startNode, uniqueRoom, waitFor,
} from './lib/roomsync.mjs';

const CLIENTS = Number(process.env.ROOMSYNC_E2E_FANOUT_CLIENTS ?? 1000);
const PUSHES = 100;
const sanitized = process.env.ROOMSYNC_E2E_SANITIZED === '1';

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

test(`${CLIENTS} concurrent SSE clients on one room receive every change in order`, async () => {
  const started = performance.now();
  const node = await startNode();
  const streams = [];
  try {
    const api = roomApi(node.url, uniqueRoom('fanout'));
    // Warm up the room and one stream so the baseline holds the room's
    // own state (store, fan-out, caches), not only the idle process.
    await api.push('messages', [doc('warm-up')]);
    const warm = await openRawStream(api.streamUrl({ collection: 'messages' }));
    await api.push('messages', [doc('warm-up-2')]);
    await sleep(200);
    warm.close();
    await waitFor(async () => (await metric(node.url, 'roomsync_gateway_sse_sessions')) === 0, { what: 'warm-up stream gone' });
    await sleep(300);
    const rssBefore = rssKiB(node.pid);

    // Open the streams, 100 at a time.
    const received = Array.from({ length: CLIENTS }, () => ({ seqs: [], ids: [], at: new Map(), ended: false }));
    for (let start = 0; start < CLIENTS; start += 100) {
      const batch = [];
      for (let i = start; i < Math.min(CLIENTS, start + 100); i += 1) {
        const r = received[i];
        batch.push(openRawStream(api.streamUrl({ collection: 'messages' }), {
          onEvent: (event, now) => {
            const payload = JSON.parse(event.data);
            if (payload === 'RESYNC') {
              r.resync = true;
              return;
            }
            r.seqs.push(payload.checkpoint.seq);
            for (const d of payload.documents) {
              r.ids.push(d.id);
              r.at.set(d.id, now);
            }
          },
          onEnd: () => {
            r.ended = true;
          },
        }));
      }
      streams.push(...(await Promise.all(batch)));
    }
    const openedMs = performance.now() - started;
    await waitFor(async () => (await metric(node.url, 'roomsync_gateway_sse_sessions')) === CLIENTS, {
      what: `${CLIENTS} SSE sessions in the server's metrics`,
    });
    await sleep(500);
    const rssIdle = rssKiB(node.pid);
    const perConnKiB = (rssIdle - rssBefore) / CLIENTS;
    console.log(`measured: server RSS ${rssBefore} KiB before, ${rssIdle} KiB with ${CLIENTS} idle SSE streams: ` +
      `${perConnKiB.toFixed(1)} KiB (${Math.round(perConnKiB * 1024)} bytes) per idle connection`);

    // Pushes, one document each, spaced out; latency = first byte of the
    // event at a subscriber minus the moment the push request was sent.
    const sentAt = new Map();
    for (let i = 0; i < PUSHES; i += 1) {
      const id = `live-${i}`;
      sentAt.set(id, performance.now());
      const r = await api.push('messages', [doc(id)]);
      assert.equal(r.status, 200, r.text);
      await sleep(10);
    }
    await waitFor(() => received.every((r) => r.ids.length >= PUSHES || r.ended), {
      timeoutMs: 30000,
      intervalMs: 50,
      what: `every client to receive ${PUSHES} documents`,
    });

    const pulled = (await api.pullAll({ collection: 'messages' })).documents
      .map((d) => d.id).filter((id) => id.startsWith('live-'));
    assert.equal(pulled.length, PUSHES);
    const latencies = [];
    for (const [i, r] of received.entries()) {
      assert.ok(!r.ended, `client ${i}: stream ended early`);
      assert.ok(!r.resync, `client ${i}: RESYNC`);
      assert.deepEqual(r.ids, pulled, `client ${i}: every change, in order`);
      for (let k = 1; k < r.seqs.length; k += 1) assert.ok(r.seqs[k] > r.seqs[k - 1], `client ${i}: seq order`);
      for (const [id, t] of r.at) latencies.push(t - sentAt.get(id));
    }
    latencies.sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);
    console.log(`measured: push → delivery latency with ${CLIENTS} subscribers over ${latencies.length} deliveries: ` +
      `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${latencies.at(-1).toFixed(1)} ms`);
    const rssLive = rssKiB(node.pid);
    console.log(`measured: server RSS ${rssLive} KiB after ${PUSHES} pushes to ${CLIENTS} streams`);

    // Generous sanity bounds only: this runs on shared 2-core machines.
    assert.ok(perConnKiB < (sanitized ? 512 : 64), `RSS per idle SSE connection ${perConnKiB.toFixed(1)} KiB`);
    assert.ok(p50 < 1000, `p50 ${p50} ms`);

    // Closing the clients ends the sessions on the server.
    for (const s of streams) s.close();
    streams.length = 0;
    await waitFor(async () => (await metric(node.url, 'roomsync_gateway_sse_sessions')) === 0, {
      timeoutMs: 20000, what: 'sessions to end after the clients closed',
    });
    assert.equal((await getJson(`${node.url}/healthz`)).status, 200);
    console.log(`measured: ${CLIENTS} streams opened in ${openedMs.toFixed(0)} ms; whole test ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    for (const s of streams) s.close();
    await node.stop();
  }
});
