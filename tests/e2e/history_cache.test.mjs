// Cacheable history pages (issue 13, docs/api.md "History pages") behind a
// real caching proxy: Debian's nginx with proxy_cache (and proxy_cache_lock,
// the request collapsing a CDN does) in front of a real roomsync. 120
// clients scroll back through a 550-message room at once; the gateway must
// see each complete page once, not once per client, while the page at the
// head is never cached. Then: 304s, new writes (the head page completes and
// is served fresh), an edit (a cached page still holds the old state; the
// scroll-back order makes the new one win), and on a JWT-protected node with
// --public_history_cache a compaction, after which the walk uses new URLs
// and never meets a removed tombstone.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { binary, counter, doc, getJson, postJson, sleep, startGateway, startNode, startRoomService, tempDir, uniqueRoom } from './lib/roomsync.mjs';

const NGINX = '/usr/sbin/nginx';
const nginxMissing = !existsSync(NGINX) &&
  `${NGINX} is absent: scripts/install-deps.sh installs nginx-light (Debian 12)`;

const CLIENTS = 120;
const PAGE_ROUTE = 'route="/v1/rooms/{room}/history/pages/{page}"';

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('connect', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

// nginx as the test user: everything (pid, temp files, logs, cache) under
// `dir`, in the foreground, one access-log line per request with the cache
// status and whether it went upstream.
async function startNginx(dir, upstreamPort) {
  const port = await freePort();
  for (const d of ['tmp', 'cache', 'logs']) mkdirSync(join(dir, d), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  // As root nginx would run its workers as nobody, who cannot enter the
  // test's private temp dir; as anyone else there is no other user to be.
  const user = process.getuid() === 0 ? `user ${userInfo().username};` : '';
  writeFileSync(conf, `
${user}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 2048; }
http {
  log_format cache '$request_uri $status $upstream_cache_status $upstream_addr';
  access_log ${dir}/logs/access.log cache;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=history:10m max_size=256m inactive=1h use_temp_path=off;
  upstream gateway { server 127.0.0.1:${upstreamPort}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://gateway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache history;
      # Only what the gateway marks cacheable is stored: no proxy_cache_valid.
      proxy_cache_lock on;
      proxy_cache_lock_timeout 30s;
      proxy_cache_revalidate on;
    }
  }
}
`);
  const child = spawn(NGINX, ['-p', dir, '-c', conf, '-e', join(dir, 'logs', 'error.log'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (s) => { stderr += s; });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  for (let i = 0; !(await canConnect(port)); i++) {
    if (child.exitCode !== null || i > 200) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start: ${stderr}\n${readFileSync(join(dir, 'logs', 'error.log'), 'utf8')}`);
    }
    await sleep(25);
  }
  const logPath = join(dir, 'logs', 'access.log');
  let consumed = 0;
  return {
    url: `http://127.0.0.1:${port}`,
    // The access-log lines since the previous call: {uri, status, cache, upstream}.
    takeLog() {
      const lines = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').filter(Boolean) : [];
      const fresh = lines.slice(consumed);
      consumed = lines.length;
      return fresh.map((line) => {
        const [uri, status, cache, upstream] = line.split(' ');
        return { uri, status: Number(status), cache, upstream: upstream !== '-' };
      });
    },
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// Scrolls back from the head as PROTOCOL.md's history reader should when
// pages may come from a cache: newest first, the first state met of each id
// wins (tombstones included). Returns the documents by id and the page URLs.
async function scrollBack(base, room, { headers = {}, limit = 20 } = {}) {
  const first = new Map();
  const take = (documents) => {
    for (const d of documents) if (!first.has(d.id)) first.set(d.id, d);
  };
  const head = await getJson(`${base}/v1/rooms/${room}/history?collection=messages&limit=${limit}`, { headers });
  assert.equal(head.status, 200, head.text);
  assert.equal(head.headers.get('cache-control'), 'no-store');
  take(head.body.documents);
  const urls = [];
  for (let url = head.body.older; url; ) {
    urls.push(url);
    const page = await getJson(`${base}${url}`, { headers });
    assert.equal(page.status, 200, `${url}: ${page.text}`);
    take(page.body.documents);
    url = page.body.older;
  }
  return { first, urls, live: [...first.values()].filter((d) => !d._deleted) };
}

const blockOf = (uri) => /\/(\d+)-(\d+)(\?|$)/.exec(uri)?.slice(1, 3).map(Number);
const isPage = (line) => line.uri.includes('/history/pages/');

test(`${CLIENTS} clients scrolling back cost one read per page behind nginx`, { skip: nginxMissing }, async (t) => {
  const dir = tempDir('history-cache-');
  const node = await startNode();
  const nginx = await startNginx(dir, node.port);
  try {
    const room = uniqueRoom('cache');
    const push = async (docs) => {
      const r = await postJson(`${node.url}/v1/rooms/${room}/replicate/push?collection=messages`, docs);
      assert.equal(r.status, 200, r.text);
    };
    const message = (i, text = `ciphertext-${i}`) => doc(`m${i}`, { iv: 'AAEC', ciphertext: text });
    await push(Array.from({ length: 500 }, (_, i) => message(i)));
    await push(Array.from({ length: 50 }, (_, i) => message(500 + i)));  // head 550: 501-600 open
    const metrics = async () => (await fetch(`${node.url}/metrics`)).text();
    const pageReads = async () => counter(await metrics(), 'roomsync_gateway_requests_total', PAGE_ROUTE);
    const readsBefore = await pageReads();

    await t.test(`${CLIENTS} concurrent clients scroll back through every page`, async () => {
      const walks = await Promise.all(Array.from({ length: CLIENTS }, () => scrollBack(nginx.url, room)));
      for (const walk of walks) {
        assert.equal(walk.live.length, 550);
        assert.deepEqual(walk.urls.map(blockOf), [[501, 600], [401, 500], [301, 400], [201, 300], [101, 200], [1, 100]]);
      }
      const log = nginx.takeLog().filter(isPage);
      assert.equal(log.length, CLIENTS * 6);
      const complete = log.filter((l) => blockOf(l.uri)[0] <= 401);
      const open = log.filter((l) => blockOf(l.uri)[0] === 501);
      const upstream = complete.filter((l) => l.upstream).length;
      const pages = 5;
      t.diagnostic(`complete pages: ${upstream} upstream reads for ${pages} pages x ${CLIENTS} clients ` +
        `(${complete.length} requests); head page: ${open.filter((l) => l.upstream).length} of ${open.length} upstream`);
      assert.ok(upstream <= pages, `upstream reads ${upstream} > pages ${pages}`);
      assert.ok(complete.filter((l) => l.cache === 'HIT').length >= complete.length - pages);
      // The page at the head is never served from the cache.
      assert.equal(open.filter((l) => l.upstream && l.cache !== 'HIT').length, CLIENTS);
      // The gateway agrees: it answered 5 complete pages and every head page.
      assert.equal((await pageReads()) - readsBefore, upstream + CLIENTS);
    });

    await t.test('If-None-Match is a 304 from the gateway and from the cache', async () => {
      const url = `/v1/rooms/${room}/history/pages/${(await getJson(`${node.url}/v1/rooms/${room}/history?limit=1`)).body.next.epoch}/0/1-100?collection=messages`;
      const full = await fetch(`${node.url}${url}`);
      assert.equal(full.status, 200);
      assert.equal(full.headers.get('cache-control'), 'public, max-age=86400, immutable');
      const etag = full.headers.get('etag');
      assert.match(etag, /^"hp-[0-9a-f]{32}"$/);
      await full.arrayBuffer();
      for (const base of [node.url, nginx.url]) {
        const again = await fetch(`${base}${url}`, { headers: { 'If-None-Match': etag } });
        assert.equal(again.status, 304, base);
        assert.equal(again.headers.get('etag'), etag);
        assert.equal((await again.text()), '');
      }
      const log = nginx.takeLog();
      assert.equal(log.length, 1);
      assert.equal(log[0].status, 304);
      assert.equal(log[0].upstream, false, 'nginx answers the 304 from its copy');
    });

    await t.test('new writes complete the head page, which is then read fresh once', async () => {
      await push(Array.from({ length: 50 }, (_, i) => message(550 + i)));  // head 600
      const walks = await Promise.all(Array.from({ length: 20 }, () => scrollBack(nginx.url, room)));
      for (const walk of walks) assert.equal(walk.live.length, 600);
      const log = nginx.takeLog().filter(isPage);
      const headBlock = log.filter((l) => blockOf(l.uri)[0] === 501);
      assert.equal(headBlock.filter((l) => l.upstream).length, 1, 'one read, then cached');
      assert.equal(log.filter((l) => l.upstream).length, 1, 'the older pages come from the cache');
    });

    await t.test('an edited message: its cached old state loses to the new one', async () => {
      await push([message(5, 'edited')]);  // m5 moves to seq 601
      const walk = await scrollBack(nginx.url, room);
      assert.equal(walk.first.get('m5').ciphertext, 'edited');
      assert.equal(walk.live.length, 600);
      const log = nginx.takeLog().filter(isPage);
      const oldest = log.find((l) => blockOf(l.uri)[0] === 1);
      // Documented (docs/api.md): a cached page may still hold the old m5.
      assert.equal(oldest.cache, 'HIT');
      const fresh = await getJson(`${node.url}${walk.urls.at(-1)}`);
      assert.equal(fresh.body.documents.some((d) => d.id === 'm5'), false);
    });
  } finally {
    await nginx.stop();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

function ctl(args) {
  const r = spawnSync(binary('ROOMSYNC_CTL_BIN'), args, { encoding: 'utf8', timeout: 30000 });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `roomsyncctl ${args[0]}: ${r.stderr}`);
  return r.stdout.trim();
}

test('after a compaction the walk uses new URLs and no removed tombstone', { skip: nginxMissing }, async (t) => {
  const dir = tempDir('history-cache-jwt-');
  const secret = join(dir, 'hs256.secret');
  writeFileSync(secret, `${randomBytes(32).toString('hex')}\n`);
  const auth = ['--auth', 'jwt', '--jwt_hs256_secret_file', secret];
  const mint = (...extra) => ctl(['token', 'mint', '--jwt_hs256_secret_file', secret, ...extra]);
  const upstreamFile = join(dir, 'upstream.jwt');
  writeFileSync(upstreamFile, mint('--sub', 'gateway', '--rooms', '*', '--scope', 'read', '--ttl', '1h'));
  const adminFile = join(dir, 'admin.jwt');
  writeFileSync(adminFile, mint('--sub', 'operator', '--scope', 'admin', '--ttl', '10m'));
  const headers = { Authorization: `Bearer ${mint('--sub', 'alice', '--rooms', '*', '--scope', 'read write')}` };

  const roomNode = await startRoomService({ dir, args: auth });
  const gateway = await startGateway({
    roomServicePort: roomNode.grpcPort,
    args: [...auth, '--upstream_token_file', upstreamFile, '--public_history_cache'],
  });
  const nginx = await startNginx(join(dir, 'nginx'), gateway.port);
  try {
    const room = uniqueRoom('compacted');
    const push = async (docs) => {
      const r = await postJson(`${gateway.url}/v1/rooms/${room}/replicate/push?collection=messages`, docs, { headers });
      assert.equal(r.status, 200, r.text);
    };
    const hour = 3600 * 1000;
    const old = Date.now() - 3 * hour;
    await push(Array.from({ length: 300 }, (_, i) => doc(`m${i}`, {}, old + i)));
    // Ten deleted two hours ago: tombstones at seqs 301-310.
    await push(Array.from({ length: 10 }, (_, i) => ({ id: `m${10 + i}`, timestamp: old + hour + i, _deleted: true })));
    await push(Array.from({ length: 95 }, (_, i) => doc(`n${i}`)));  // head 405

    const before = await scrollBack(nginx.url, room, { headers, limit: 2 });
    await scrollBack(nginx.url, room, { headers, limit: 2 });  // the complete pages are cached now
    assert.equal(before.live.length, 385);
    assert.equal([...before.first.values()].filter((d) => d._deleted).length, 10);
    assert.ok(before.urls.every((u) => u.includes('/0/')), before.urls.join(' '));
    let log = nginx.takeLog().filter(isPage);
    assert.equal(log.filter((l) => l.upstream && blockOf(l.uri)[0] <= 301).length, 4, 'four complete pages, read once');
    assert.equal(log.filter((l) => l.upstream && blockOf(l.uri)[0] === 401).length, 2, 'the head page, every time');

    const compacted = JSON.parse(ctl(['compact', room, '--older-than', '1h', '--output', 'json',
      '--target', `127.0.0.1:${roomNode.grpcPort}`, '--grpc_plaintext', '--token_file', adminFile]));
    assert.equal(compacted.rooms[0].compacted_through, 310);

    const after = await scrollBack(nginx.url, room, { headers, limit: 2 });
    assert.equal(after.live.length, 385);
    assert.equal([...after.first.values()].filter((d) => d._deleted).length, 0, 'no removed tombstone is served');
    assert.ok(after.urls.every((u) => u.includes('/310/')), after.urls.join(' '));
    log = nginx.takeLog().filter(isPage);
    assert.ok(log.every((l) => l.upstream && l.cache !== 'HIT'), 'every page of the new compaction is read fresh');
    t.diagnostic(`after compaction: ${log.length} page URLs, all new, all read upstream`);

    // An old URL the gateway still gets is answered as the room is now,
    // never cached, and links into the current compaction's pages.
    const stale = await getJson(`${gateway.url}${before.urls.find((u) => blockOf(u)[0] === 301)}`, { headers });
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get('cache-control'), 'no-store');
    assert.equal(stale.headers.get('etag'), null);
    assert.equal(stale.body.documents.some((d) => d._deleted), false);
    assert.match(stale.body.older, /\/310\/201-300/);
    // Without a token the gateway refuses; only the cache (public by flag) shares.
    assert.equal((await getJson(`${gateway.url}${after.urls.at(-1)}`)).status, 401);
  } finally {
    await nginx.stop();
    await gateway.stop();
    await roomNode.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
