#!/usr/bin/env node
// A new client's join time in a large room (issue 13 item 3): the newest
// encrypted snapshot plus the tail after it, against a full pull, on the
// real single-node roomsync binary (SQLite, or --store postgresql://...).
//
// The room: `--messages` chat messages encrypted as the client encrypts
// them (~200 bytes each on the server), pushed 1,000 per request, then an
// encrypted snapshot uploaded by Room.uploadSnapshot, then `--tail` more
// messages. Each join is a fresh @roomsync/client Room (memory persistence,
// one tab, raw room key: no PBKDF2 in the figure) timed from openRoom()
// until `status.verified` is true, i.e. the replica's digest equals the
// server's at the head: the client has decrypted and checked everything.
// The two kinds alternate, `--runs` times each; medians are printed.
//
//   node bench/snapshot_join.mjs [--messages N] [--tail N] [--runs N]
//        [--store URL] [--out FILE]
//
// ROOMSYNC_BIN picks the server binary (default: the build tree's).
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { encryptDocument, importRoomKey } from '../src/crypto.js';
import { RoomApi } from '../src/http_api.js';
import { MemoryLocalDb } from '../src/local_db.js';
import { openRoom } from '../src/room.js';

const built = fileURLToPath(new URL('../../../build/services/node/roomsync', import.meta.url));
process.env.ROOMSYNC_BIN ||= existsSync(built) ? built : '';
const { startNode, uniqueRoom } = await import('../../../tests/e2e/lib/roomsync.mjs');

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    tail: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '3' },
    store: { type: 'string' },
    out: { type: 'string' },
  },
});
const MESSAGES = Number(args.messages);
const TAIL = Number(args.tail);
const RUNS = Number(args.runs);
const log = (text) => process.stderr.write(`snapshot_join: ${text}\n`);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

// 256 MiB: the snapshot of 100,000 messages is ~25 MB, well over the default.
const serverArgs = ['--max_snapshot_bytes', String(256 * 1024 * 1024)];
if (args.store) serverArgs.push('--store', args.store);
const node = await startNode({ args: serverArgs, timeoutMs: 60_000 });
const rawKey = globalThis.crypto.getRandomValues(new Uint8Array(32));
const room = uniqueRoom('snapjoin');
const opened = [];
const open = async (options) => {
  const r = await openRoom({ room, rawKey, baseUrl: node.url, persist: 'memory', db: new MemoryLocalDb(), tabs: false, ...options });
  opened.push(r);
  return r;
};

async function fill(api, key, from, count) {
  const base = Date.now() - 86_400_000;
  for (let at = from; at < from + count; at += 1000) {
    const rows = [];
    for (let k = at; k < Math.min(from + count, at + 1000); k++) {
      const doc = await encryptDocument(key, {
        room, collection: 'messages', id: `m${String(k).padStart(7, '0')}`, timestamp: base + k,
        fields: { text: `message ${k} of the benchmark room, about as long as a chat line`, author: `user${k % 50}` },
      });
      rows.push({ newDocumentState: doc });
    }
    await api.push('messages', rows);
  }
}

async function join(joinFromSnapshot) {
  const started = performance.now();
  const client = await open({ joinFromSnapshot });
  for (;;) {
    if (client.status.verified === true) break;
    if (client.status.verified === false) throw new Error('the replica did not verify');
    if (performance.now() - started > 600_000) throw new Error('no verified join in 10 minutes');
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = performance.now() - started;
  const requests = { ...client.api.requests };
  if (joinFromSnapshot && client.joinedFrom === null) throw new Error('the client did not join from the snapshot');
  await client.close();
  return { ms, requests };
}

try {
  // The room's kdf document comes from a first client (raw key: alg "raw").
  const creator = await open({});
  const key = await importRoomKey(rawKey);
  const api = new RoomApi({ room, baseUrl: node.url });
  let started = performance.now();
  await fill(api, key, 0, MESSAGES);
  log(`pushed ${MESSAGES} messages in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  started = performance.now();
  const stored = await creator.uploadSnapshot();
  const uploadMs = performance.now() - started;
  log(`snapshot at seq ${stored.seq}: ${stored.bytes} bytes, built and uploaded in ${uploadMs.toFixed(0)} ms`);
  await creator.close();
  await fill(api, key, MESSAGES, TAIL);
  const results = { snapshot: [], full: [] };
  let requests = {};
  for (let run = 0; run < RUNS; run++) {
    for (const kind of ['snapshot', 'full']) {
      const r = await join(kind === 'snapshot');
      results[kind].push(r.ms);
      requests[kind] = r.requests;
      log(`run ${run + 1} ${kind}: ${r.ms.toFixed(0)} ms, requests ${JSON.stringify(r.requests)}`);
    }
  }
  const report = {
    messages: MESSAGES, tail: TAIL, runs: RUNS, store: args.store ? 'postgresql' : 'sqlite',
    snapshot_bytes: stored.bytes, snapshot_seq: stored.seq, upload_ms: Math.round(uploadMs),
    join_ms: { snapshot: Math.round(median(results.snapshot)), full: Math.round(median(results.full)) },
    all_ms: { snapshot: results.snapshot.map(Math.round), full: results.full.map(Math.round) },
    requests,
  };
  console.log(JSON.stringify(report, null, 2));
  if (args.out) writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
} finally {
  await Promise.allSettled(opened.map((r) => r.close()));
  await node.stop();
}
