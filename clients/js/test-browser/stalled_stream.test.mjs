// A stream that dies silently (a laptop that slept, a NAT that dropped the
// mapping: the socket stays open, no byte arrives, no error fires) in a
// real browser: one device reaches the server through a loopback proxy
// that can freeze every open connection; after the freeze, the client's
// watchdog (no byte, not even a keep-alive comment, for `stale` ms) reopens
// the stream with Last-Event-ID and the other device's messages arrive.
//
// Fails without its feature: ROOMSYNC_TEST_BREAK=no-watchdog.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, test } from 'node:test';
import {
  assertNoDuplicates,
  assertNoPageErrors,
  newDevice,
  openChat,
  roomStatus,
  send,
  uniqueRoom,
  browser,
  server,
  useServerAndBrowser,
  waitForTexts,
} from './lib/harness.mjs';

// Keep-alive comments come every 15 s; 3 s without a byte means dead here.
const STALE_MS = 3000;

/**
 * A TCP proxy whose open stream connections can be frozen: kept open,
 * relaying nothing (what a proxy or NAT that dropped a long-lived
 * connection looks like). A connection counts as a stream's when the last
 * request it carried was one.
 */
async function startFreezableProxy(targetPort) {
  const pairs = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, frozen: false, stream: false };
    pairs.add(pair);
    client.on('data', (chunk) => {
      const line = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS) (\S+)/.exec(chunk.toString('latin1'));
      if (line) pair.stream = line[2].includes('/replicate/pull/stream');
    });
    const relay = (from, to) =>
      from.on('data', (chunk) => {
        if (!pair.frozen) to.write(chunk);
      });
    relay(client, upstream);
    relay(upstream, client);
    const cleanup = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', cleanup).on('close', cleanup);
    upstream.on('error', cleanup).on('close', cleanup);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Freezes every stream connection open now; the others and new ones relay as usual. */
    freezeStreams() {
      let frozen = 0;
      for (const pair of pairs) {
        if (pair.stream) {
          pair.frozen = true;
          frozen += 1;
        }
      }
      return frozen;
    },
    close: () =>
      new Promise((resolve) => {
        for (const { client, upstream } of pairs) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

useServerAndBrowser();
let proxy; // started by the test: the server is there by then

after(async () => {
  await proxy?.close();
});

test('a stream that goes silent is reopened and catches up', async () => {
  proxy = await startFreezableProxy(server.port);
  const room = uniqueRoom('stalled');
  const alice = await newDevice(browser, { name: 'alice' });
  const bob = await newDevice(browser, { name: 'bob' });
  const a = await openChat(alice, { url: proxy.url }, { room, stale: STALE_MS });
  const b = await openChat(bob, server, { room });
  await send(b, 'before the freeze');
  await waitForTexts(a, ['before the freeze']);
  assert.equal((await roomStatus(a)).streaming, true);

  const frozen = proxy.freezeStreams();
  assert.equal(frozen, 1, 'the stream was open through the proxy');
  const frozenAt = Date.now();
  await send(b, 'during the freeze');
  await send(b, 'and another one');
  const texts = ['before the freeze', 'during the freeze', 'and another one'];
  await waitForTexts(a, texts, { timeout: STALE_MS * 5 });
  process.stderr.write(`stalled stream: caught up ${Date.now() - frozenAt} ms after the freeze (stale after ${STALE_MS} ms)\n`);
  await assertNoDuplicates(a);
  assertNoPageErrors(a, b);
  await alice.close();
  await bob.close();
});
