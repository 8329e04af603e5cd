// FetchEventSource against a real HTTP server on loopback: the event-stream
// parsing rules, reconnect with Last-Event-ID and the server's retry, a
// refused stream closing for good, and the watchdog that reopens a stream
// which went silent (no data, no keep-alive comment) without losing events.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { FetchEventSource } from '../src/sse_stream.js';

let server;
let base;
const handlers = new Map(); // path → (req, res) => void
const requests = []; // {path, lastEventId}

before(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    requests.push({ path, lastEventId: req.headers['last-event-id'] ?? null, accept: req.headers.accept });
    const handler = handlers.get(path);
    if (!handler) {
      res.writeHead(404).end();
      return;
    }
    handler(req, res, requests.filter((r) => r.path === path).length);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const streamHead = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };

function collect(es, count) {
  const events = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${events.length} of ${count} events: ${JSON.stringify(events)}`)), 5000);
    es.onmessage = (event) => {
      events.push({ data: event.data, lastEventId: event.lastEventId });
      if (events.length === count) {
        clearTimeout(timer);
        resolve(events);
      }
    };
  });
}

test('parses data, ids, comments, CR/LF/CRLF line ends and events split across chunks', async () => {
  handlers.set('/parse', (req, res) => {
    res.writeHead(200, streamHead);
    res.write(': keep-alive\n\n');
    res.write('id: 1\ndata: {"a":1}\n\n');
    res.write('data: line one\r\ndata: line two\r\n\r\n'); // no id: keeps 1
    res.write('id: 3\rdata: cr only\r\r');
    res.write('event: other\ndata: not a message\n\n'); // another type: not delivered
    res.write('id: 5\nda');
    setTimeout(() => res.write('ta: split\n'), 20);
    setTimeout(() => res.write('\n'), 40);
  });
  const es = new FetchEventSource(`${base}/parse`);
  let opened = false;
  es.onopen = () => (opened = true);
  const events = await collect(es, 4);
  es.close();
  assert.equal(opened, true);
  assert.equal(es.readyState, FetchEventSource.CLOSED);
  assert.deepEqual(events, [
    { data: '{"a":1}', lastEventId: '1' },
    { data: 'line one\nline two', lastEventId: '1' },
    { data: 'cr only', lastEventId: '3' },
    { data: 'split', lastEventId: '5' },
  ]);
  assert.equal(requests.find((r) => r.path === '/parse').accept, 'text/event-stream');
});

test('reconnects after the server ends the stream, with Last-Event-ID and the server\'s retry delay', async () => {
  handlers.set('/reconnect', (req, res, n) => {
    res.writeHead(200, streamHead);
    if (n === 1) res.end('retry: 50\nid: 7\ndata: first\n\n');
    else res.write(`id: 8\ndata: second after ${req.headers['last-event-id']}\n\n`);
  });
  const es = new FetchEventSource(`${base}/reconnect`);
  let errors = 0;
  es.onerror = () => {
    errors += 1;
    assert.equal(es.readyState, FetchEventSource.CONNECTING, 'a lost stream reconnects');
  };
  const events = await collect(es, 2);
  es.close();
  assert.deepEqual(events.map((e) => e.data), ['first', 'second after 7']);
  assert.equal(errors, 1);
  const made = requests.filter((r) => r.path === '/reconnect');
  assert.deepEqual(made.map((r) => r.lastEventId), [null, '7']);
});

test('a refused stream closes for good and says so', async () => {
  handlers.set('/refused', (req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{}}'));
  handlers.set('/not-a-stream', (req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  for (const path of ['/refused', '/not-a-stream']) {
    const es = new FetchEventSource(`${base}${path}`);
    const error = await new Promise((resolve) => (es.onerror = resolve));
    assert.equal(es.readyState, FetchEventSource.CLOSED, path);
    assert.equal(error.status, path === '/refused' ? 401 : 200);
    await new Promise((resolve) => setTimeout(resolve, 1200)); // past the retry delay: no new request
    assert.equal(requests.filter((r) => r.path === path).length, 1, `${path} was not retried`);
  }
});

test('a stream that goes silent is reopened with Last-Event-ID; keep-alive comments keep it open', async () => {
  let silentResponse;
  handlers.set('/silent', (req, res, n) => {
    res.writeHead(200, streamHead);
    if (n === 1) {
      res.write('id: 41\ndata: before the silence\n\n');
      silentResponse = res; // then nothing, the socket stays open
    } else {
      res.write(`id: 42\ndata: after ${req.headers['last-event-id']}\n\n`);
    }
  });
  handlers.set('/alive', (req, res) => {
    res.writeHead(200, streamHead);
    res.write('data: hello\n\n');
    const timer = setInterval(() => res.write(': keep-alive\n\n'), 100);
    res.on('close', () => clearInterval(timer));
  });
  const silent = new FetchEventSource(`${base}/silent`, { staleMs: 300, retryMs: 10 });
  const alive = new FetchEventSource(`${base}/alive`, { staleMs: 300, retryMs: 10 });
  const aliveEvents = collect(alive, 1);
  const events = await collect(silent, 2);
  assert.deepEqual(events.map((e) => e.data), ['before the silence', 'after 41']);
  await aliveEvents;
  await new Promise((resolve) => setTimeout(resolve, 1000)); // three watchdog periods
  assert.equal(requests.filter((r) => r.path === '/alive').length, 1, 'keep-alive comments keep the stream open');
  assert.equal(alive.readyState, FetchEventSource.OPEN);
  silent.close();
  alive.close();
  silentResponse.end();
});
