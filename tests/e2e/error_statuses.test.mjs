// Every error status of PROTOCOL.md ("Authentication and errors") against the
// real binaries over HTTP: the status, the JSON body
// {"error":{"code","message"}} and the headers that go with it
// (WWW-Authenticate, Allow, Retry-After, CORS). Each error case has a
// control next to it (the same request made valid succeeds), so that a
// refusal for the wrong reason fails the test.
//
//   400 invalid_argument, timestamp_in_future   roomsync, auth off
//   401 unauthenticated, 403 permission_denied  roomsync --auth jwt (HS256)
//   404, 405, 413, 431, CORS preflight          roomsync (small --max_push_bytes)
//   429 rate_limited                            roomsync with a per-IP rate limit
//   503 unavailable                             roomsync-gateway, room service killed
//   504 deadline_exceeded                       roomsync-gateway --grpc_deadline_ms, in
//                                               front of a TCP server that never answers
//                                               and of a SIGSTOPped roomsync-room
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  doc, roomApi, sleep, startGateway, startNode, startRoomService, tempDir, uniqueRoom, waitFor,
} from './lib/roomsync.mjs';

// ------------------------------------------------------------------ helpers

// One HTTP request on its own connection with node:http (full control of
// the method and of headers fetch() would not send, e.g. Origin).
// Resolves with { status, headers: Headers, text, body (parsed JSON or the text) }.
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      answered = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed;
        try {
          parsed = text.length ? JSON.parse(text) : undefined;
        } catch {
          parsed = text;
        }
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve({ status: res.statusCode, headers: h, text, body: parsed });
      });
      res.on('error', reject);
    });
    // A server that refuses a request may close before it has read the
    // whole body (413): the response already arrived, the EPIPE is noise.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const pushHeaders = { 'Content-Type': 'application/json' };
const push = (url, items, headers = {}) =>
  request(url, {
    method: 'POST',
    headers: { ...pushHeaders, ...headers },
    body: typeof items === 'string' ? items : JSON.stringify(items),
  });

// Sends `text` as-is on a raw TCP connection and parses the one response
// (status line, headers, Content-Length body). For requests node:http
// would refuse to send.
function rawRequest(port, text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    socket.on('data', (c) => chunks.push(c));
    const finish = (error) => {
      const data = Buffer.concat(chunks).toString('latin1');
      const headEnd = data.indexOf('\r\n\r\n');
      if (headEnd < 0) {
        reject(error ?? new Error(`no complete response head; got ${JSON.stringify(data.slice(0, 200))}`));
        return;
      }
      const [statusLine, ...lines] = data.slice(0, headEnd).split('\r\n');
      const headers = new Headers();
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      const length = Number(headers.get('content-length') ?? 0);
      const text = Buffer.from(data.slice(headEnd + 4), 'latin1').subarray(0, length).toString('utf8');
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      resolve({ status: Number(statusLine.split(' ')[1]), statusLine, headers, text, body });
    };
    socket.on('end', () => finish());
    socket.on('error', (error) => finish(error));
    socket.on('connect', () => socket.write(text));
    socket.setTimeout(10000, () => socket.destroy(new Error('no response within 10 s')));
  });
}

// The protocol's error shape, exactly: {"error":{"code":C,"message":"…"}}.
function assertError(r, status, code, what = '') {
  const label = `${what} → ${r.status} ${r.text}`;
  assert.equal(r.status, status, label);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json\b/, `content-type of ${label}`);
  assert.equal(typeof r.body, 'object', `JSON body of ${label}`);
  assert.deepEqual(Object.keys(r.body), ['error'], label);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'message'], label);
  assert.equal(r.body.error.code, code, label);
  assert.equal(typeof r.body.error.message, 'string', label);
  assert.ok(r.body.error.message.length > 0, `non-empty message: ${label}`);
}

// Retry-After in whole seconds (RFC 9110 delay-seconds), at least 1.
function assertRetryAfter(r, what = '') {
  const value = r.headers.get('retry-after');
  assert.ok(value !== null, `Retry-After on ${what} ${r.status}`);
  assert.match(value, /^\d+$/, `Retry-After delay-seconds: ${value}`);
  assert.ok(Number(value) >= 1, `Retry-After ${value}`);
  return Number(value);
}

const tokenList = (value) => (value ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

// ---------------------------------------------------------------------- JWT

const b64u = (data) => Buffer.from(data).toString('base64url');

function jwt(claims, secret, header = { alg: 'HS256', typ: 'JWT' }) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  const signature = header.alg === 'HS256' ? createHmac('sha256', secret).update(input).digest('base64url') : '';
  return `${input}.${signature}`;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

// ================================================== single node, auth off

describe('roomsync (auth off, --max_push_bytes 4096)', () => {
  let node;
  before(async () => {
    node = await startNode({ args: ['--max_push_bytes', '4096', '--max_room_bytes', '20000'] });
  });
  after(async () => {
    await node?.stop();
  });

  test('400 invalid_argument: bad JSON body, wrong JSON shape; nothing written', async () => {
    const api = roomApi(node.url, uniqueRoom('badjson'));
    for (const [what, body] of [
      ['not JSON', '[{"id":"m1","timestamp":'],
      ['not an array', '{"not":"an array"}'],
      ['bad UTF-8', Buffer.from([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d])],
      ['document without id', JSON.stringify([{ timestamp: Date.now(), ciphertext: 'x' }])],
    ]) {
      const r = await push(api.pushUrl('messages'), body);
      assertError(r, 400, 'invalid_argument', `push ${what}`);
    }
    const pull = await request(api.pullUrl({ collection: 'messages' }));
    assert.equal(pull.status, 200, pull.text);
    assert.deepEqual(pull.body.documents, []);

    // Control: a valid body is accepted.
    const ok = await push(api.pushUrl('messages'), [doc('m1')]);
    assert.equal(ok.status, 200, ok.text);
  });

  test('400 invalid_argument: bad checkpoint, bad page size, bad names', async () => {
    const api = roomApi(node.url, uniqueRoom('badcp'));
    const pushed = await push(api.pushUrl('messages'), [doc('m1')]);
    assert.equal(pushed.status, 200, pushed.text);
    const good = await request(api.pullUrl({ collection: 'messages' }));
    assert.equal(good.status, 200, good.text);
    const { epoch } = good.body.checkpoint;

    const bad = [
      ['pull: checkpoint not JSON', api.pullUrl({ checkpoint: 'not-json' })],
      ['pull: checkpoint seq a string', api.pullUrl({ checkpoint: { seq: 'x', epoch } })],
      ['pull: checkpoint seq negative', api.pullUrl({ checkpoint: { seq: -1, epoch } })],
      ['pull: checkpoint an array', api.pullUrl({ checkpoint: [1, 2] })],
      ['history: before not JSON', api.historyUrl({ before: '{"seq":' })],
      ['stream: checkpoint not JSON', api.streamUrl({ checkpoint: '{{' })],
      ['pull: batchSize 0', api.pullUrl({ batchSize: 0 })],
      ['pull: batchSize 1001', api.pullUrl({ batchSize: 1001 })],
      ['history: limit abc', api.historyUrl({ limit: 'abc' })],
      ['pull: collection with upper case', api.pullUrl({ collection: 'Messages' })],
      ['pull: room with !', `${node.url}/v1/rooms/bad!room/replicate/pull`],
      ['pull: room of 129 characters', `${node.url}/v1/rooms/${'r'.repeat(129)}/replicate/pull`],
    ];
    for (const [what, url] of bad) {
      assertError(await request(url), 400, 'invalid_argument', what);
    }
    // Controls: the same endpoints with valid values.
    for (const url of [
      api.pullUrl({ checkpoint: { seq: 0, epoch }, batchSize: 1000 }),
      api.historyUrl({ before: good.body.checkpoint, limit: 1 }),
    ]) {
      const r = await request(url);
      assert.equal(r.status, 200, `${url}: ${r.text}`);
    }
  });

  test('400 timestamp_in_future: nothing written; 4 minutes ahead is accepted', async () => {
    const api = roomApi(node.url, uniqueRoom('future'));
    const r = await push(api.pushUrl('messages'), [doc('ok'), doc('far', {}, Date.now() + 60 * 60 * 1000)]);
    assertError(r, 400, 'timestamp_in_future', 'push 1 h ahead');
    const pull = await request(api.pullUrl({ collection: 'messages' }));
    assert.deepEqual(pull.body.documents, [], 'the whole batch was refused');

    const near = await push(api.pushUrl('messages'), [doc('near', {}, Date.now() + 4 * 60 * 1000)]);
    assert.equal(near.status, 200, near.text);
  });

  test('404 not_found: unknown paths', async () => {
    for (const path of ['/nope', '/v1/rooms', '/v1/rooms/lobby', '/v1/rooms/lobby/replicate',
      '/v1/rooms/lobby/replicate/pushh', '/api/room/lobby/unknown', '/v2/rooms/lobby/replicate/pull']) {
      assertError(await request(`${node.url}${path}`), 404, 'not_found', `GET ${path}`);
    }
    assertError(await push(`${node.url}/v1/rooms/lobby/replicate/pushh`, []), 404, 'not_found', 'POST unknown');
    // Control.
    assert.equal((await request(`${node.url}/v1/rooms/lobby/replicate/pull`)).status, 200);
  });

  test('405 method_not_allowed with Allow', async () => {
    const api = roomApi(node.url, uniqueRoom('method'));
    const cases = [
      ['GET', api.pushUrl('messages'), 'POST, OPTIONS'],
      ['PUT', api.pushUrl('messages'), 'POST, OPTIONS'],
      ['POST', api.pullUrl(), 'GET, OPTIONS'],
      ['DELETE', api.historyUrl(), 'GET, OPTIONS'],
      ['POST', api.streamUrl(), 'GET, OPTIONS'],
      ['POST', `${node.url}/healthz`, 'GET, OPTIONS'],
    ];
    for (const [method, url, allow] of cases) {
      const r = await request(url, { method, headers: pushHeaders, body: method === 'GET' ? undefined : '[]' });
      assertError(r, 405, 'method_not_allowed', `${method} ${url}`);
      assert.deepEqual(tokenList(r.headers.get('allow')).sort(), tokenList(allow).sort(),
        `Allow of ${method} ${url}: ${r.headers.get('allow')}`);
    }
  });

  test('413 payload_too_large above --max_push_bytes; below it is accepted', async () => {
    const api = roomApi(node.url, uniqueRoom('large'));
    const big = JSON.stringify([doc('big', { ciphertext: 'A'.repeat(8000) })]);
    assert.ok(Buffer.byteLength(big) > 4096);
    assertError(await push(api.pushUrl('messages'), big), 413, 'payload_too_large', 'push of 8 KB');
    const pull = await request(api.pullUrl({ collection: 'messages' }));
    assert.deepEqual(pull.body.documents, []);

    const small = JSON.stringify([doc('small', { ciphertext: 'A'.repeat(3000) })]);
    assert.ok(Buffer.byteLength(small) < 4096);
    const ok = await push(api.pushUrl('messages'), small);
    assert.equal(ok.status, 200, ok.text);
  });

  test('413 room_quota_exceeded when a push would take the room past --max_room_bytes', async () => {
    const api = roomApi(node.url, uniqueRoom('quota'));
    let refused;
    for (let i = 0; i < 10 && !refused; i++) {
      const r = await push(api.pushUrl('messages'), JSON.stringify([doc(`q${i}`, { ciphertext: 'A'.repeat(3500) })]));
      if (r.status !== 200) refused = r;
    }
    assert.ok(refused, 'some push must hit the 20000-byte quota');
    assertError(refused, 413, 'room_quota_exceeded', 'push past the room quota');
    const pull = await request(api.pullUrl({ collection: 'messages' }));
    assert.ok(pull.body.documents.length >= 4 && pull.body.documents.length <= 5, `${pull.body.documents.length} stored`);
    const other = await push(roomApi(node.url, uniqueRoom('quota-other')).pushUrl('messages'), [doc('fits')]);
    assert.equal(other.status, 200, 'another room has its own quota');
  });

  test('431 for a request head over 16 KiB; 8 KiB passes', async () => {
    const path = `/v1/rooms/${uniqueRoom('head')}/replicate/pull`;
    const head = (filler) =>
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ${filler}\r\nConnection: close\r\n\r\n`;
    const r = await rawRequest(node.port, head('x'.repeat(20 * 1024)));
    assertError(r, 431, 'invalid_argument', 'head of 20 KiB');

    const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'y'.repeat(40)}`).join('\r\n');
    const r2 = await rawRequest(node.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${many}\r\nConnection: close\r\n\r\n`);
    assertError(r2, 431, 'invalid_argument', '400 headers');

    const ok = await rawRequest(node.port, head('x'.repeat(8 * 1024)));
    assert.equal(ok.status, 200, ok.text);
  });

  test('400 invalid_argument for a malformed request line', async () => {
    const r = await rawRequest(node.port, 'GET /v1/rooms/lobby/replicate/pull HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n');
    assertError(r, 400, 'invalid_argument', 'header without colon');
  });

  test('CORS: any origin in development; errors carry Access-Control-Allow-Origin', async () => {
    const api = roomApi(node.url, uniqueRoom('corsdev'));
    const origin = 'https://anything.example';
    const pre = await request(api.pushUrl('messages'), {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
    });
    assert.equal(pre.status, 204, pre.text);
    assert.equal(pre.headers.get('access-control-allow-origin'), origin);
    // A browser reads an error only if it carries the CORS header too.
    const err = await request(api.pullUrl({ checkpoint: 'nope' }), { headers: { Origin: origin } });
    assertError(err, 400, 'invalid_argument', 'bad checkpoint with Origin');
    assert.equal(err.headers.get('access-control-allow-origin'), origin);
  });
});

// ========================================== CORS with a configured origin list

describe('roomsync --allowed_origins https://chat.example', () => {
  let node;
  before(async () => {
    node = await startNode({ args: ['--allowed_origins', 'https://chat.example,https://b.example'] });
  });
  after(async () => {
    await node?.stop();
  });

  test('preflight: allowed origin, GET, POST, OPTIONS and the three headers', async () => {
    const api = roomApi(node.url, uniqueRoom('cors'));
    for (const url of [api.pushUrl('messages'), api.pullUrl(), api.streamUrl(), api.historyUrl(),
      `${node.url}/api/room/lobby/replicate/push`]) {
      const r = await request(url, {
        method: 'OPTIONS',
        headers: {
          Origin: 'https://chat.example',
          'Access-Control-Request-Method': url.includes('push') ? 'POST' : 'GET',
          'Access-Control-Request-Headers': 'authorization, content-type, last-event-id',
        },
      });
      assert.ok(r.status === 204 || r.status === 200, `${url}: ${r.status} ${r.text}`);
      assert.equal(r.headers.get('access-control-allow-origin'), 'https://chat.example', url);
      assert.deepEqual(tokenList(r.headers.get('access-control-allow-methods')).sort(),
        ['get', 'options', 'post'], `methods of ${url}`);
      const allowed = tokenList(r.headers.get('access-control-allow-headers'));
      assert.deepEqual([...allowed].sort(), ['authorization', 'content-type', 'last-event-id'],
        `Access-Control-Allow-Headers names the three explicitly (not *): ${r.headers.get('access-control-allow-headers')}`);
      assert.match(r.headers.get('vary') ?? '', /\bOrigin\b/i, 'Vary: Origin');
    }
    // An actual request from the allowed origin.
    const get = await request(api.pullUrl(), { headers: { Origin: 'https://b.example' } });
    assert.equal(get.status, 200, get.text);
    assert.equal(get.headers.get('access-control-allow-origin'), 'https://b.example');
  });

  test('403 permission_denied for a preflight from an origin not on the list', async () => {
    const api = roomApi(node.url, uniqueRoom('cors'));
    const r = await request(api.pushUrl('messages'), {
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    assertError(r, 403, 'permission_denied', 'preflight from evil.example');
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    assert.equal(r.headers.get('access-control-allow-headers'), null);
  });
});

// ============================================================ auth: 401, 403

describe('roomsync --auth jwt --jwt_hs256_secret_file', () => {
  let node;
  let dir;
  const secret = randomBytes(32).toString('base64');
  const room = uniqueRoom('auth');
  const other = uniqueRoom('auth-other');
  const claims = (extra = {}) => ({ sub: 'alice', exp: nowSeconds() + 600, rooms: [room], scope: 'read write', ...extra });
  const bearer = (token) => ({ Authorization: `Bearer ${token}` });

  before(async () => {
    dir = tempDir();
    const secretFile = join(dir, 'hs256.secret');
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    node = await startNode({ dir, args: ['--auth', 'jwt', '--jwt_hs256_secret_file', secretFile] });
  });
  after(async () => {
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('control: a valid token pushes (header) and pulls (header and access_token)', async () => {
    const api = roomApi(node.url, room);
    const token = jwt(claims(), secret);
    const r = await push(api.pushUrl('messages'), [doc('m1')], bearer(token));
    assert.equal(r.status, 200, r.text);
    assert.equal((await request(api.pullUrl(), { headers: bearer(token) })).status, 200);
    assert.equal((await request(`${api.pullUrl()}?access_token=${token}`)).status, 200);
    // Prefix grant.
    const prefixed = jwt(claims({ rooms: [`${room.slice(0, 8)}*`] }), secret);
    assert.equal((await request(api.pullUrl(), { headers: bearer(prefixed) })).status, 200);
  });

  test('401 unauthenticated with WWW-Authenticate: Bearer', async () => {
    const api = roomApi(node.url, room);
    const valid = jwt(claims(), secret);
    const [h, p] = valid.split('.');
    const cases = [
      ['no token', {}],
      ['bad signature (other secret)', bearer(jwt(claims(), randomBytes(32).toString('base64')))],
      ['signature of other claims', bearer(`${h}.${b64u(JSON.stringify(claims({ rooms: ['*'] })))}.${valid.split('.')[2]}`)],
      ['expired 2 minutes ago', bearer(jwt(claims({ exp: nowSeconds() - 120 }), secret))],
      ['not before in 2 minutes', bearer(jwt(claims({ nbf: nowSeconds() + 120 }), secret))],
      ['no exp', bearer(jwt({ sub: 'alice', rooms: [room], scope: 'read write' }, secret))],
      ['alg none, empty signature', bearer(jwt(claims(), secret, { alg: 'none', typ: 'JWT' }))],
      ['alg none, HS256 signature', bearer(`${b64u(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.${valid.split('.')[2]}`)],
      ['alg None', bearer(jwt(claims(), secret, { alg: 'None' }))],
      ['malformed', bearer('not-a-jwt')],
      ['two parts', bearer(`${h}.${p}`)],
      ['Basic scheme', { Authorization: `Basic ${b64u('alice:pw')}` }],
    ];
    for (const [what, headers] of cases) {
      for (const [method, url] of [['POST', api.pushUrl('messages')], ['GET', api.pullUrl()], ['GET', api.historyUrl()], ['GET', api.streamUrl()]]) {
        const r = method === 'POST' ? await push(url, [doc('x')], headers) : await request(url, { headers });
        assertError(r, 401, 'unauthenticated', `${what}: ${method} ${url}`);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/i, `WWW-Authenticate on ${what}`);
        assert.match(r.headers.get('www-authenticate') ?? '', /realm="roomsync"/, `realm on ${what}`);
      }
    }
    // access_token on a POST is refused even when the token is valid.
    const r = await push(`${api.pushUrl('messages')}&access_token=${valid}`, [doc('x')]);
    assertError(r, 401, 'unauthenticated', 'access_token on POST');
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer\b/i);
    // Expired token in the query, too.
    const expired = jwt(claims({ exp: nowSeconds() - 120 }), secret);
    assertError(await request(`${api.pullUrl()}?access_token=${expired}`), 401, 'unauthenticated', 'expired access_token');
    // Nothing was written by any refused push.
    const pull = await request(api.pullUrl({ collection: 'messages' }), { headers: bearer(valid) });
    assert.ok(!pull.body.documents.some((d) => d.id === 'x'), pull.text);
  });

  test('403 permission_denied: token for another room; read-only token pushing', async () => {
    const api = roomApi(node.url, room);
    const otherRoom = jwt(claims({ rooms: [other] }), secret);
    for (const [method, url] of [['POST', api.pushUrl('messages')], ['GET', api.pullUrl()], ['GET', api.historyUrl()], ['GET', api.streamUrl()]]) {
      const r = method === 'POST' ? await push(url, [doc('y')], bearer(otherRoom)) : await request(url, { headers: bearer(otherRoom) });
      assertError(r, 403, 'permission_denied', `token for another room: ${method} ${url}`);
      assert.equal(r.headers.get('www-authenticate'), null, 'a 403 is not a challenge');
    }
    // No rooms claim at all.
    const noRooms = jwt({ sub: 'alice', exp: nowSeconds() + 600, scope: 'read write' }, secret);
    assertError(await request(api.pullUrl(), { headers: bearer(noRooms) }), 403, 'permission_denied', 'no rooms claim');

    const readOnly = jwt(claims({ scope: 'read' }), secret);
    assertError(await push(api.pushUrl('messages'), [doc('y')], bearer(readOnly)), 403, 'permission_denied',
      'read-only push');
    assertError(await push(`${node.url}/api/room/${room}/replicate/push?collection=messages`, [doc('y')], bearer(readOnly)),
      403, 'permission_denied', 'read-only push under /api/room');
    // Controls: the read-only token reads; the other room's token works there.
    assert.equal((await request(api.pullUrl(), { headers: bearer(readOnly) })).status, 200);
    const there = await push(roomApi(node.url, other).pushUrl('messages'), [doc('y')], bearer(otherRoom));
    assert.equal(there.status, 200, there.text);
    const pull = await request(api.pullUrl({ collection: 'messages' }), { headers: bearer(readOnly) });
    assert.ok(!pull.body.documents.some((d) => d.id === 'y'), 'refused pushes wrote nothing');
  });

  test('no token needed for /healthz, /metrics and preflights', async () => {
    assert.equal((await request(`${node.url}/healthz`)).status, 200);
    assert.equal((await request(`${node.url}/metrics`)).status, 200);
    const pre = await request(roomApi(node.url, room).pushUrl('messages'), {
      method: 'OPTIONS', headers: { Origin: 'https://x.example', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(pre.status, 204, pre.text);
  });
});

// ================================================================ 429

describe('roomsync --rate_limit_requests_per_ip 2 --rate_limit_burst_seconds 1', () => {
  let node;
  before(async () => {
    node = await startNode({ args: ['--rate_limit_requests_per_ip', '2', '--rate_limit_burst_seconds', '1'] });
  });
  after(async () => {
    await node?.stop();
  });

  test('429 rate_limited with Retry-After; served again after it', async () => {
    const api = roomApi(node.url, uniqueRoom('flood'));
    const results = [];
    for (let i = 0; i < 12; i += 1) results.push(await request(api.pullUrl()));
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    assert.ok(ok.length >= 1, `some requests pass: ${results.map((r) => r.status)}`);
    assert.ok(limited.length >= 8, `most of a 12-request flood is refused: ${results.map((r) => r.status)}`);
    assert.equal(ok.length + limited.length, results.length, `only 200/429: ${results.map((r) => r.status)}`);
    let retryAfter = 0;
    for (const r of limited) {
      assertError(r, 429, 'rate_limited', 'flooded pull');
      retryAfter = Math.max(retryAfter, assertRetryAfter(r, 'flooded pull'));
    }
    // A push is a request too.
    const pushed = await push(api.pushUrl('messages'), [doc('p')]);
    assertError(pushed, 429, 'rate_limited', 'flooded push');
    assertRetryAfter(pushed, 'flooded push');
    // /healthz is not limited.
    assert.equal((await request(`${node.url}/healthz`)).status, 200);

    await sleep(retryAfter * 1000 + 200);
    const again = await request(api.pullUrl());
    assert.equal(again.status, 200, `after Retry-After: ${again.text}`);
  });
});

// ======================================================== split topology: 503

describe('roomsync-gateway in front of roomsync-room', () => {
  test('413 payload_too_large when the room service has smaller limits than the gateway', async () => {
    const room = await startRoomService({ args: ['--max_push_bytes', '4096', '--max_document_bytes', '2048'] });
    let gateway;
    try {
      gateway = await startGateway({ roomServicePort: room.grpcPort });
      await waitFor(async () => (await request(`${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
      const api = roomApi(gateway.url, uniqueRoom('small-limits'));
      const bigDocument = JSON.stringify([doc('big', { ciphertext: 'A'.repeat(3000) })]);
      assertError(await push(api.pushUrl('messages'), bigDocument), 413, 'payload_too_large', 'document over 2 KiB');
      const many = JSON.stringify([1, 2, 3].map((i) => doc(`m${i}`, { ciphertext: 'A'.repeat(1500) })));
      assertError(await push(api.pushUrl('messages'), many), 413, 'payload_too_large', 'push over 4 KiB');
      const pull = await request(api.pullUrl({ collection: 'messages' }));
      assert.deepEqual(pull.body.documents, []);
      const ok = await push(api.pushUrl('messages'), [doc('fits')]);
      assert.equal(ok.status, 200, ok.text);
    } finally {
      await gateway?.stop();
      await room.kill();
      rmSync(room.dir, { recursive: true, force: true });
    }
  });

  test('503 unavailable with Retry-After when the room service is gone', async () => {
    const room = await startRoomService();
    let gateway;
    try {
      gateway = await startGateway({ roomServicePort: room.grpcPort });
      await waitFor(async () => (await request(`${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
      const api = roomApi(gateway.url, uniqueRoom('gone'));
      const ok = await push(api.pushUrl('messages'), [doc('m1')]);
      assert.equal(ok.status, 200, ok.text);

      await room.kill();
      for (const [what, send] of [
        ['push', () => push(api.pushUrl('messages'), [doc('m2')])],
        ['pull', () => request(api.pullUrl())],
        ['history', () => request(api.historyUrl())],
        ['stream', () => request(api.streamUrl())],
      ]) {
        const r = await send();
        assertError(r, 503, 'unavailable', `${what} with the room service killed`);
        assertRetryAfter(r, what);
      }
      const ready = await request(`${gateway.url}/readyz`);
      assertError(ready, 503, 'unavailable', 'readyz');
      assert.equal((await request(`${gateway.url}/healthz`)).status, 200, 'the gateway itself is alive');
    } finally {
      await gateway?.stop();
      await room.kill();
      rmSync(room.dir, { recursive: true, force: true });
    }
  });
});

// ==================================================== 504 deadline_exceeded

describe('roomsync-gateway --grpc_deadline_ms', () => {
  test('504 deadline_exceeded: the room service address accepts and never answers', async () => {
    const sockets = new Set();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
      socket.resume(); // read and drop whatever gRPC sends; answer nothing
    });
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    let gateway;
    try {
      gateway = await startGateway({ roomServicePort: silent.address().port, args: ['--grpc_deadline_ms', '200'] });
      const api = roomApi(gateway.url, uniqueRoom('silent'));
      for (const [what, send] of [
        ['push', () => push(api.pushUrl('messages'), [doc('m1')])],
        ['pull', () => request(api.pullUrl())],
        ['history', () => request(api.historyUrl())],
      ]) {
        const started = performance.now();
        const r = await send();
        const elapsed = performance.now() - started;
        assertError(r, 504, 'deadline_exceeded', `${what} against a silent room service`);
        // The flag is what bounds it (the default deadline is 10 s).
        assert.ok(elapsed >= 150 && elapsed < 5000, `${what} answered after ${elapsed.toFixed(0)} ms`);
      }
      assert.ok(sockets.size >= 1, 'the gateway did connect to the silent server');
    } finally {
      await gateway?.stop();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('504 deadline_exceeded: the room service is SIGSTOPped; served again after SIGCONT', async () => {
    const room = await startRoomService();
    let gateway;
    let stopped = false;
    try {
      gateway = await startGateway({ roomServicePort: room.grpcPort, args: ['--grpc_deadline_ms', '1000'] });
      await waitFor(async () => (await request(`${gateway.url}/readyz`)).status === 200, { what: 'gateway ready' });
      const api = roomApi(gateway.url, uniqueRoom('stopped'));
      const ok = await push(api.pushUrl('messages'), [doc('m1')]);
      assert.equal(ok.status, 200, ok.text);

      process.kill(room.pid, 'SIGSTOP');
      stopped = true;
      for (const [what, send] of [
        ['push', () => push(api.pushUrl('messages'), [doc('m2')])],
        ['pull', () => request(api.pullUrl())],
        ['history', () => request(api.historyUrl())],
      ]) {
        const started = performance.now();
        const r = await send();
        const elapsed = performance.now() - started;
        assertError(r, 504, 'deadline_exceeded', `${what} with the room service stopped`);
        assert.ok(elapsed >= 900 && elapsed < 5000, `${what} answered after ${elapsed.toFixed(0)} ms`);
      }

      process.kill(room.pid, 'SIGCONT');
      stopped = false;
      const again = await waitFor(async () => {
        const r = await push(api.pushUrl('messages'), [doc('m3')]);
        return r.status === 200 ? r : undefined;
      }, { what: 'a push after SIGCONT' });
      assert.deepEqual(again.body, { success: true, conflicts: [] });
    } finally {
      if (stopped) process.kill(room.pid, 'SIGCONT');
      await gateway?.stop();
      await room.stop();
      rmSync(room.dir, { recursive: true, force: true });
    }
  });
});
