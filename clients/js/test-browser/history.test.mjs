// Pruning and scroll-back in a real browser: a client that keeps the newest
// N messages shows and stores only those, scrolling up fetches older pages
// from /history (shown, not persisted past the limit), and a reload is back
// to the newest N.
//
// Fails without its features (ROOMSYNC_TEST_BREAK=...): no-prune (every
// message is kept), no-load-older (scrolling up fetches nothing).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertNoDuplicates,
  assertNoPageErrors,
  browser,
  domMessages,
  indexedDbRecords,
  newDevice,
  openChat,
  send,
  server,
  uniqueRoom,
  useServerAndBrowser,
  waitForPhase,
  waitForTexts,
} from './lib/harness.mjs';

useServerAndBrowser();

const KEEP = 5;

test('a pruned client keeps the newest messages and scrolls back into history', async () => {
  const room = uniqueRoom('prune');
  const bob = await newDevice(browser, { name: 'bob' });
  const b = await openChat(bob, server, { room });
  const texts = [];
  for (let i = 1; i <= 14; i += 1) {
    texts.push(`message ${String(i).padStart(2, '0')}`);
    await send(b, texts.at(-1));
  }
  await waitForTexts(b, texts);

  const alice = await newDevice(browser, { name: 'alice' });
  const a = await openChat(alice, server, { room, max: KEEP });
  const newest = texts.slice(-KEEP);
  await waitForTexts(a, newest);
  const stored = () => indexedDbRecords(a).then((records) => records.filter((r) => r.key[1] === 'messages'));
  await a.waitForFunction((keep) => Object.keys(window.__roomsync.room.store.getTable('messages')).length === keep, KEEP);

  // Scroll to the top: the demo asks for an older page.
  await a.evaluate(() => {
    document.getElementById('scroller').scrollTop = 0;
    document.getElementById('scroller').dispatchEvent(new Event('scroll'));
  });
  await a.waitForFunction((keep) => document.querySelectorAll('#messages li').length > keep, KEEP, { polling: 20, timeout: 10000 });
  // Until everything is there (the demo's page is 50: one more call at most).
  await a.evaluate(() => window.__roomsync.loadOlder());
  await waitForTexts(a, texts, { state: null });
  const shown = await domMessages(a);
  assert.deepEqual(shown.map((m) => m.text), texts, 'history comes in order, above the newest');
  const older = shown.slice(0, texts.length - KEEP);
  assert.ok(older.every((m) => m.state === 'synced'), 'history rows are synced server state');
  assert.equal(await a.$$eval('#messages li.history', (items) => items.length), texts.length - KEEP, 'older rows are marked as history');
  await assertNoDuplicates(a);

  // Only the newest KEEP are in IndexedDB; a reload is back to them.
  const records = await stored();
  assert.equal(records.length, KEEP, `IndexedDB holds ${records.length} messages, expected the newest ${KEEP}`);
  await a.reload();
  await waitForPhase(a, ['chat']);
  await waitForTexts(a, newest);

  // A new message pushes the oldest kept one out.
  await send(b, 'message 15');
  await waitForTexts(a, [...texts.slice(-KEEP + 1), 'message 15']);
  assertNoPageErrors(a, b);
  await alice.close();
  await bob.close();
});
