// Helpers for the e2e tests that drive deploy/local/topology.sh: its
// state file, its subcommands, the lease table, keep-alive HTTP requests,
// and a follower that keeps an SSE stream through faults the way a client
// does (the follower of rolling_restart.test.mjs, shared here).
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { roomApi, SseParser, sleep } from './roomsync.mjs';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const topologyScript = join(repo, 'deploy', 'local', 'topology.sh');
export const PSQL = '/usr/lib/postgresql/15/bin/psql';

// topology.env is shell syntax (printf %q): let bash read it.
export function readState(dir, keys = ['STATE', 'STORE_URL', 'PG_PID', 'PG_PORT', 'ROOMS', 'ROOM_PIDS', 'ROOM_GRPC',
  'ROOM_METRICS', 'GATEWAY_PIDS', 'GATEWAY_URLS', 'GATEWAY_URL', 'GATEWAY_PID']) {
  const out = execFileSync('bash', ['-c', 'source "$1"; shift; for k; do printf "%s=%s\\n" "$k" "${!k}"; done',
    '_', join(dir, 'topology.env'), ...keys], { encoding: 'utf8' });
  return Object.fromEntries(out.trimEnd().split('\n').map((line) => {
    const eq = line.indexOf('=');
    return [line.slice(0, eq), line.slice(eq + 1)];
  }));
}

// Running and not a zombie (detached processes are reaped by init).
export function alive(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

// `topology.sh ARGS...`; resolves { stdout, stderr, ms }.
export async function topology(args, timeout = 150000) {
  const started = performance.now();
  const result = await run('bash', [topologyScript, ...args], { timeout }).catch((error) => {
    throw new Error(`topology.sh ${args.join(' ')} failed (code ${error.code}):\n${error.stdout}\n${error.stderr}`);
  });
  return { ...result, ms: performance.now() - started };
}

// The stable room hash of cluster/shard_map.cc (FNV-1a 64) % 256.
export function shardOf(room) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(room, 'utf8')) {
    hash ^= BigInt(byte);
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return Number(hash % 256n);
}

// psql -At on the topology's store; rows as arrays of fields (tab-separated).
export function sql(storeUrl, query) {
  const out = execFileSync(PSQL, ['-X', '-q', '-t', '-A', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-d', storeUrl, '-c', query],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return out.split('\n').filter((line) => line.length > 0).map((line) => line.split('\t'));
}

// Every unexpired lease: shard -> { owner, epoch }.
export function leases(storeUrl) {
  return new Map(sql(storeUrl, 'SELECT shard, owner, epoch FROM shard_leases WHERE expires_at > now()')
    .map(([shard, owner, epoch]) => [Number(shard), { owner, epoch: Number(epoch) }]));
}

// One HTTP request on a keep-alive agent; resolves { status, text } or
// rejects on a connection error or after timeoutMs.
export function request(agent, url, { method = 'GET', body, timeoutMs = 15000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const req = http.request(url, {
      method,
      agent,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolvePromise({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

// A follower of one room's collection `messages` through `gatewayUrl`, as a
// client's live replication: it pulls from the beginning, then opens the
// stream with `Last-Event-ID: <its checkpoint>`; when the stream ends or
// cannot be opened it reconnects the same way; on `data: "RESYNC"` it
// closes the stream, pulls from its checkpoint until a page is empty
// (retrying 5xx), then reopens the stream from the pull's checkpoint.
// It keeps every document of every delivery in arrival order, never
// de-duplicated (record, documents), and notes violations: a delivery
// whose checkpoint seq is not above the previous one, an event id seen
// twice, an event id that is not its checkpoint, a pull that answers
// reset. `unexpected` collects 5xx answers other than `tolerated` (a
// rolling restart should answer only 503).
export function startFollower(room, gatewayUrl, unexpected,
  { label = 'follower', retryPauseMs = 50, tolerated = [502, 503, 504] } = {}) {
  const api = roomApi(gatewayUrl, room.name);
  const f = {
    room,
    label,
    checkpoint: null,
    record: [],
    documents: [],
    deliveries: 0,
    eventIds: new Set(),
    violations: [],
    resyncs: 0,
    reconnects: 0,
    stop: false,
    current: null,
  };
  const keep = (kind, documents, checkpoint) => {
    if (documents.length === 0) return;
    if (f.checkpoint) {
      if (checkpoint.epoch !== f.checkpoint.epoch) {
        f.violations.push(`${kind}: epoch ${checkpoint.epoch} after ${f.checkpoint.epoch}`);
      }
      if (!(checkpoint.seq > f.checkpoint.seq)) {
        f.violations.push(`${kind}: checkpoint seq ${checkpoint.seq} not above ${f.checkpoint.seq} (the ${f.lastKind}'s; ` +
          `ids ${documents.map((d) => d.id).join(',')} after ${f.record.slice(-3).join(',')})`);
      }
    }
    f.deliveries += 1;
    f.lastKind = kind;
    for (const d of documents) {
      f.record.push(d.id);
      f.documents.push(d);
    }
    f.checkpoint = checkpoint;
  };
  const pullFromCheckpoint = async () => {
    for (;;) {
      if (f.stop) return;
      let r;
      try {
        r = await fetch(api.pullUrl({ collection: 'messages', checkpoint: f.checkpoint ?? undefined, batchSize: 1000 }));
      } catch {
        await sleep(retryPauseMs);
        continue;
      }
      const text = await r.text();
      if (r.status >= 500) {
        if (!tolerated.includes(r.status)) unexpected.push({ t: performance.now(), what: `pull ${room.name}: HTTP ${r.status} ${text}` });
        await sleep(retryPauseMs);
        continue;
      }
      if (r.status !== 200) {
        f.violations.push(`pull: HTTP ${r.status} ${text}`);
        f.stop = true;
        return;
      }
      const page = JSON.parse(text);
      if (page.reset) f.violations.push(`pull answered reset: ${text.slice(0, 200)}`);
      if (page.documents.length === 0) {
        if (!f.checkpoint) f.checkpoint = page.checkpoint;
        return;
      }
      keep('pull', page.documents, page.checkpoint);
    }
  };
  const streamOnce = () => new Promise((resolvePromise) => {
    const parser = new SseParser();
    let settled = false;
    const settle = (how) => {
      if (settled) return;
      settled = true;
      f.current = null;
      req.destroy();
      resolvePromise(how);
    };
    const req = http.get(api.streamUrl({ collection: 'messages' }), {
      agent: false,
      headers: { Accept: 'text/event-stream', 'Last-Event-ID': JSON.stringify(f.checkpoint) },
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        if (res.statusCode >= 500 && !tolerated.includes(res.statusCode)) {
          unexpected.push({ t: performance.now(), what: `stream ${room.name}: HTTP ${res.statusCode}` });
        }
        settle(res.statusCode >= 500 ? 'ended' : `HTTP ${res.statusCode}`);
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        for (const event of parser.feed(chunk)) {
          if (settled) return;
          const data = JSON.parse(event.data);
          if (data === 'RESYNC') {
            f.resyncs += 1;
            settle('resync');
            return;
          }
          if (f.eventIds.has(event.id)) f.violations.push(`event id ${event.id} twice`);
          f.eventIds.add(event.id);
          if (event.id !== JSON.stringify(data.checkpoint)) {
            f.violations.push(`event id ${event.id} is not its checkpoint ${JSON.stringify(data.checkpoint)}`);
          }
          keep('event', data.documents, data.checkpoint);
        }
      });
      res.on('end', () => settle('ended'));
      res.on('error', () => settle('ended'));
    });
    req.on('error', () => settle('ended'));
    f.current = { close: () => settle('stopped') };
  });
  // Resolves once the first pull is done (the stream is being opened).
  let pulled;
  f.pulled = new Promise((r) => { pulled = r; });
  f.done = (async () => {
    await pullFromCheckpoint();
    pulled();
    while (!f.stop) {
      const how = await streamOnce();
      if (f.stop) break;
      if (how === 'resync') {
        await pullFromCheckpoint();
      } else if (how === 'ended') {
        f.reconnects += 1;
        await sleep(retryPauseMs);
      } else {
        f.violations.push(`stream: ${how}`);
        break;
      }
    }
  })();
  f.close = async () => {
    f.stop = true;
    f.current?.close();
    await f.done;
  };
  return f;
}
