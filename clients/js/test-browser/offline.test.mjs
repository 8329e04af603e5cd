// Offline and reload in a real browser: a write made offline shows as
// pending, syncs on reconnect and reaches the other device; a reload shows
// the room from IndexedDB before any API request is answered; a reload
// with no network at all still opens the chat (the app-shell service
// worker) and shows the cached room.
//
// Fails without its features (ROOMSYNC_TEST_BREAK=...): no-pending-mark (an
// offline write shows as synced), no-persisted-load (nothing is read from
// IndexedDB on open), no-service-worker (an offline reload has no page).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertNoDuplicates,
  assertNoPageErrors,
  browser,
  domMessages,
  newDevice,
  openChat,
  roomStatus,
  send,
  server,
  uniqueRoom,
  useServerAndBrowser,
  waitForPhase,
  waitForTexts,
  watch,
} from './lib/harness.mjs';

useServerAndBrowser();

test('a write made offline is pending, then syncs on reconnect and reaches the other device', async () => {
  const room = uniqueRoom('offline');
  const alice = await newDevice(browser, { name: 'alice' });
  const bob = await newDevice(browser, { name: 'bob' });
  const a = await openChat(alice, server, { room });
  const b = await openChat(bob, server, { room });
  await send(a, 'while online');
  await waitForTexts(b, ['while online']);

  await alice.setOffline(true);
  await a.waitForFunction(() => window.__roomsync.room.status.online === false || !navigator.onLine, null, { polling: 20 });
  const id = await send(a, 'written offline');
  await send(a, 'also offline');
  // Shown at once, marked pending, and not on the other device.
  await waitForTexts(a, ['while online', 'written offline', 'also offline'], { state: null });
  const shown = await domMessages(a);
  assert.equal(shown.find((m) => m.id === id).state, 'pending', 'an offline write is marked pending');
  assert.equal((await roomStatus(a)).pending, 2);
  assert.match(await a.textContent('#badge'), /offline/);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual((await domMessages(b)).map((m) => m.text), ['while online'], 'nothing left the offline device');

  await alice.setOffline(false);
  const texts = ['while online', 'written offline', 'also offline'];
  await waitForTexts(a, texts);
  await waitForTexts(b, texts);
  assert.equal((await roomStatus(a)).pending, 0);
  await assertNoDuplicates(a);
  await assertNoDuplicates(b);
  assertNoPageErrors(a, b);
  await alice.close();
  await bob.close();
});

test('a reload shows the cached room before any API request is answered', async () => {
  const room = uniqueRoom('reload');
  const alice = await newDevice(browser, { name: 'alice' });
  const a = await openChat(alice, server, { room });
  const texts = ['one', 'two', 'three'];
  for (const text of texts) await send(a, text);
  await waitForTexts(a, texts);

  // Hold every API request of the reloaded page: none is answered until
  // the cached room is on screen.
  const held = [];
  await a.route('**/v1/**', (route) => held.push(route));
  await a.reload();
  await waitForPhase(a, ['chat']);
  await waitForTexts(a, texts);
  // The room is on screen with nothing answered; the page's first request
  // may leave only after that (it opens the stored key first), so wait
  // for it rather than expect it already.
  for (const deadline = Date.now() + 10000; held.length === 0 && Date.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(held.length >= 1, 'the reloaded page did ask the server (its requests are held)');
  await a.unroute('**/v1/**');
  for (const route of held) await route.continue().catch(() => {});
  await assertNoDuplicates(a);
  assertNoPageErrors(a);
  await alice.close();
});

test('a reload with no network opens the chat from the service worker and shows the cached room', async () => {
  const room = uniqueRoom('offline-reload');
  const alice = await newDevice(browser, { name: 'alice' });
  const a = await openChat(alice, server, { room });
  // The app-shell worker has a copy of the page and its modules (the
  // first visit tells it what it loaded).
  await a.waitForFunction(
    async () => !!(await caches.match('/')) && !!(await caches.match('/app.js')) && !!(await caches.match('/lib/roomsync/room.js')),
    null,
    { polling: 50, timeout: 10000 },
  );
  const texts = ['cached for the road'];
  await send(a, texts[0]);
  await waitForTexts(a, texts);

  await alice.setOffline(true);
  await a.reload();
  await waitForPhase(a, ['chat']);
  await waitForTexts(a, texts);
  // A write offline after the offline reload queues as usual.
  await send(a, 'typed on the train');
  await waitForTexts(a, [...texts, 'typed on the train'], { state: null });
  await alice.setOffline(false);
  await waitForTexts(a, [...texts, 'typed on the train']);

  // Another device sees both.
  const bob = await newDevice(browser, { name: 'bob' });
  const b = watch(await openChat(bob, server, { room }));
  await waitForTexts(b, [...texts, 'typed on the train']);
  assertNoPageErrors(a, b);
  await alice.close();
  await bob.close();
});
