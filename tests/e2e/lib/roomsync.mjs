// Helpers for the end-to-end tests: start the real binaries on free loopback
// ports with throwaway SQLite stores, talk HTTP/SSE to them, measure them.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// ---------------------------------------------------------------- processes

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function binary(envName) {
  const path = process.env[envName];
  if (!path) {
    throw new Error(
      `${envName} is not set: ctest sets it from CMake; by hand run e.g. ` +
        `${envName}=$PWD/build-e2e/services/node/roomsync node --test tests/e2e/...`);
  }
  if (!existsSync(path)) throw new Error(`${envName}=${path} does not exist (build it first)`);
  return path;
}

export function tempDir(prefix = 'roomsync-e2e-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

// Starts `bin args`, resolves when `ready(stdoutText, stderrText)` returns a
// value (not undefined), rejects if the process exits first or after timeoutMs.
function spawnUntil(bin, args, ready, { timeoutMs = 30000, env } = {}) {
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  live.add(child);
  const log = { stdout: '', stderr: '' };
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const started = new Promise((resolve, reject) => {
    let done = false;
    const check = () => {
      if (done) return;
      const value = ready(log.stdout, log.stderr);
      if (value !== undefined) {
        done = true;
        clearTimeout(timer);
        resolve(value);
      }
    };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s) => {
      log.stdout += s;
      check();
    });
    child.stderr.on('data', (s) => {
      // Keep the log bounded: 1000 streams can log a lot.
      log.stderr = (log.stderr + s).slice(-200000);
      check();
    });
    const timer = setTimeout(() => {
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`${bin} did not start in ${timeoutMs} ms\nstdout:\n${log.stdout}\nstderr:\n${log.stderr}`));
    }, timeoutMs);
    exited.then(({ code, signal }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${bin} ${args.join(' ')} exited (code ${code}, signal ${signal}) before it was ready\n` +
        `stdout:\n${log.stdout}\nstderr:\n${log.stderr}`));
    });
  });
  return { child, log, exited, started };
}

function processHandle(child, log, exited) {
  return {
    pid: child.pid,
    log,
    exited,
    // Graceful: SIGTERM drains; SIGKILL after graceMs.
    async stop(graceMs = 15000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
    // A crash: kill -9.
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGKILL');
      return exited;
    },
  };
}

// E2E_ROOM_CALLS=grpc runs a test's single nodes with their gateway calling
// the room service over the in-process gRPC channel instead of directly
// (ctest's *_grpc_calls variants): both transports answer alike.
function roomCallsArgs() {
  const calls = process.env.E2E_ROOM_CALLS;
  return calls ? ['--room_calls', calls] : [];
}

// The single node: `roomsync --http 127.0.0.1:PORT --store sqlite:PATH --auth off`.
// Returns { url, port, pid, storePath, stop(), kill(), log }.
export async function startNode({ dir, port = 0, args = [], timeoutMs, env } = {}) {
  const bin = binary('ROOMSYNC_BIN');
  const ownDir = !dir;
  dir ??= tempDir();
  const storePath = join(dir, 'roomsync.db');
  const { child, log, exited, started } = spawnUntil(
    bin,
    ['--http', `127.0.0.1:${port}`, '--store', `sqlite:${storePath}`, '--auth', 'off',
      ...roomCallsArgs(), ...args],
    (out) => {
      const m = /roomsync is serving http:\/\/([^/:]+):(\d+)\//.exec(out);
      return m ? { host: m[1], port: Number(m[2]) } : undefined;
    },
    { timeoutMs, env });
  const where = await started;
  const handle = processHandle(child, log, exited);
  const stop = handle.stop;
  const kill = handle.kill;
  return {
    ...handle,
    dir,
    storePath,
    port: where.port,
    url: `http://${where.host}:${where.port}`,
    async stop(graceMs) {
      const r = await stop(graceMs);
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      return r;
    },
    async kill() {
      return kill();
    },
  };
}

// `roomsync-room --grpc 127.0.0.1:0 --store sqlite:PATH` (or `--store
// store`, e.g. a postgresql:// URL); resolves with its gRPC port, and its
// metrics port when args ask for one (`--metrics 127.0.0.1:0`).
export async function startRoomService({ dir, store, args = [] } = {}) {
  const bin = binary('ROOMSYNC_ROOM_BIN');
  dir ??= tempDir();
  store ??= `sqlite:${join(dir, 'room.db')}`;
  const { child, log, exited, started } = spawnUntil(
    // Development settings: plaintext loopback gRPC and no auth, explicitly.
    bin, ['--grpc', '127.0.0.1:0', '--store', store, '--auth', 'off',
          '--grpc_plaintext', ...args],
    (_out, err) => {
      for (const line of err.split('\n')) {
        if (!line.includes('room_service_started')) continue;
        try {
          const event = JSON.parse(line);
          if (event.event === 'room_service_started' && event.grpc_port > 0) return event;
        } catch {
          // a partial line: wait for the rest
        }
      }
      return undefined;
    });
  const event = await started;
  const handle = processHandle(child, log, exited);
  return { ...handle, dir, grpcPort: event.grpc_port, metricsPort: event.metrics_port };
}

// `roomsync-gateway --http 127.0.0.1:0 --room_service 127.0.0.1:N`, or
// `--room_service roomService` (e.g. a list `127.0.0.1:A,127.0.0.1:B`).
export async function startGateway({ roomServicePort, roomService, args = [] }) {
  const bin = binary('ROOMSYNC_GATEWAY_BIN');
  roomService ??= `127.0.0.1:${roomServicePort}`;
  const { child, log, exited, started } = spawnUntil(
    bin, ['--http', '127.0.0.1:0', '--room_service', roomService,
          '--auth', 'off', '--grpc_plaintext', ...args],
    (out) => {
      const m = /roomsync-gateway listening on http:\/\/\S+ \(port (\d+)\)/.exec(out);
      return m ? Number(m[1]) : undefined;
    });
  const port = await started;
  return { ...processHandle(child, log, exited), port, url: `http://127.0.0.1:${port}` };
}

// Resident set size of a process in KiB (/proc/PID/status VmRSS).
export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

// -------------------------------------------------------------------- HTTP

let roomCounter = 0;
export function uniqueRoom(name) {
  roomCounter += 1;
  return `e2e-${name}-${process.pid}-${roomCounter}`;
}

async function jsonResponse(res) {
  const text = await res.text();
  let body;
  try {
    body = text.length ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, headers: res.headers, body, text };
}

export async function getJson(url, init = {}) {
  return jsonResponse(await fetch(url, init));
}

export async function postJson(url, body, init = {}) {
  return jsonResponse(await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...init.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  }));
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined) continue;
    q.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// The replication API of one room under one path prefix
// (`/v1/rooms` or `/api/room`).
export function roomApi(baseUrl, room, prefix = '/v1/rooms') {
  const base = `${baseUrl}${prefix}/${encodeURIComponent(room)}`;
  return {
    base,
    pushUrl: (collection) => `${base}/replicate/push${query({ collection })}`,
    pullUrl: (params) => `${base}/replicate/pull${query(params)}`,
    streamUrl: (params) => `${base}/replicate/pull/stream${query(params)}`,
    historyUrl: (params) => `${base}/history${query(params)}`,
    push: (collection, items) => postJson(`${base}/replicate/push${query({ collection })}`, items),
    pull: (params) => getJson(`${base}/replicate/pull${query(params)}`),
    history: (params) => getJson(`${base}/history${query(params)}`),
    // Every document of the room (or collection), following checkpoints.
    async pullAll(params = {}) {
      const documents = [];
      let checkpoint = params.checkpoint;
      for (;;) {
        const r = await getJson(`${base}/replicate/pull${query({ ...params, checkpoint, batchSize: 1000 })}`);
        if (r.status !== 200) throw new Error(`pull: ${r.status} ${r.text}`);
        documents.push(...r.body.documents);
        checkpoint = r.body.checkpoint;
        if (r.body.documents.length === 0) return { documents, checkpoint };
      }
    },
  };
}

// Pushes until the server answers (it may be restarting): network errors
// and 503 are retried, everything else is returned.
export async function pushWithRetry(api, collection, items, { deadlineMs = 30000 } = {}) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const r = await api.push(collection, items);
      if (r.status !== 503) return r;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error('push did not succeed before the deadline');
    await sleep(50);
  }
}

// Every document of a room (api.pullAll) once the room is served: a 503
// (the room's shard between owners, a node restarting) is retried, as
// clients do.
export async function pullAllWithRetry(api, params = {}, { deadlineMs = 20000 } = {}) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await api.pullAll(params);
    } catch (error) {
      if (!/^pull: 503 /.test(error.message) || Date.now() > deadline) throw error;
    }
    await sleep(50);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor(predicate, { timeoutMs = 20000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// A document as clients push it: id, timestamp (ms), opaque ciphertext.
export function doc(id, extra = {}, timestamp = Date.now()) {
  return { id, timestamp, iv: 'AAECAwQFBgcICQoL', ciphertext: Buffer.from(`text of ${id}`).toString('base64'), ...extra };
}

// -------------------------------------------------------------------- SSE

// Incremental text/event-stream parser (the subset roomsync sends, plus
// CRLF line ends). Returns completed events { id, data, event }.
export class SseParser {
  constructor() {
    this.buffer = '';
    this.current = { data: [] };
    this.comments = 0;
  }

  feed(text) {
    this.buffer += text;
    const events = [];
    let nl;
    while ((nl = this.buffer.search(/\r\n|\n|\r/)) >= 0) {
      let line = this.buffer.slice(0, nl);
      const sepLen = this.buffer.startsWith('\r\n', nl) ? 2 : 1;
      this.buffer = this.buffer.slice(nl + sepLen);
      if (line === '') {
        if (this.current.data.length > 0) {
          events.push({ id: this.current.id, event: this.current.event, data: this.current.data.join('\n') });
        }
        this.current = { data: [], id: undefined };
        continue;
      }
      if (line.startsWith(':')) {
        this.comments += 1;
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.current.data.push(value);
      else if (field === 'id') this.current.id = value;
      else if (field === 'event') this.current.event = value;
      line = undefined;
    }
    return events;
  }
}

// A raw SSE client on node:http (cheap enough for 1,000 at once).
// onEvent(event, receivedAtMs) for each complete event. Resolves once the
// response head arrived; rejects on a non-200 or a connection error.
export function openRawStream(url, { headers = {}, onEvent = () => {}, onEnd = () => {} } = {}) {
  return new Promise((resolve, reject) => {
    const parser = new SseParser();
    const req = http.get(url, { agent: false, headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`stream ${url}: HTTP ${res.statusCode}`));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const now = performance.now();
        for (const event of parser.feed(chunk)) onEvent(event, now);
      });
      res.on('end', onEnd);
      res.on('error', () => onEnd());
      resolve({
        res,
        parser,
        headers: res.headers,
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}

// --------------------------------------------------------------- TCP proxy

// A loopback TCP proxy in front of `targetPort`, so that a test can cut
// every client connection (a network failure) without touching the server.
export async function startProxy(targetPort) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const cleanup = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', cleanup).on('close', cleanup);
    upstream.on('error', cleanup).on('close', cleanup);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => sockets.size / 2,
    // Cuts every open connection (both directions) at once.
    dropAll() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

// ------------------------------------------------------------------ numbers

// Sums a counter's samples in Prometheus text with the given labels (e.g.
// result="ok"; none: every sample).
export function counter(metricsText, name, labels) {
  let total = 0;
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

// Parses "id: {...}" of an event into the checkpoint's seq.
export function seqOfEvent(event) {
  return JSON.parse(event.id).seq;
}

// `url` (a postgresql:// URL) with its database replaced by `db`.
export function withDatabase(url, db) {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

// Runs one SQL command through psql (ON_ERROR_STOP): e.g. CREATE DATABASE.
export function psql(url, sql) {
  execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
}
