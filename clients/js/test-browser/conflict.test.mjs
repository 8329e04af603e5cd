// A conflict between two devices in a real browser: both edit the same
// message while offline; the later edit (last-write-wins by timestamp, the
// server decides) ends up on both, the device whose edit lost adopts the
// server's and hears about it as a conflict (the demo's toast and the
// package's 'conflict' event).
//
// Fails without its features (ROOMSYNC_TEST_BREAK=...):
// no-conflict-resolution (the losing device keeps its own edit),
// no-conflict-event (the app is never told).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertNoDuplicates,
  assertNoPageErrors,
  browser,
  domMessages,
  edit,
  newDevice,
  openChat,
  send,
  server,
  uniqueRoom,
  useServerAndBrowser,
  waitForTexts,
} from './lib/harness.mjs';

useServerAndBrowser();

test('concurrent offline edits of one message resolve the same way on both devices', async () => {
  const room = uniqueRoom('conflict');
  // One user on two devices: both may edit the message (the demo lets a
  // user edit their own messages).
  const laptop = await newDevice(browser, { name: 'carol' });
  const phone = await newDevice(browser, { name: 'carol' });
  const a = await openChat(laptop, server, { room });
  const b = await openChat(phone, server, { room });
  const id = await send(a, 'draft');
  await waitForTexts(a, ['draft']);
  await waitForTexts(b, ['draft']);

  await laptop.setOffline(true);
  await phone.setOffline(true);
  // The phone edits first, the laptop later: the laptop's edit is the last
  // write and must win everywhere.
  await edit(b, id, 'edit on the phone (earlier)');
  await waitForTexts(b, ['edit on the phone (earlier)'], { state: 'pending' });
  await new Promise((resolve) => setTimeout(resolve, 50));
  await edit(a, id, 'edit on the laptop (later)');
  await waitForTexts(a, ['edit on the laptop (later)'], { state: 'pending' });

  // The laptop reconnects first and its edit lands; then the phone, whose
  // older edit the server refuses (or whose stream brings the newer one
  // before its push: the same conflict, found on the way in).
  await laptop.setOffline(false);
  await waitForTexts(a, ['edit on the laptop (later)']);
  await phone.setOffline(false);
  for (const page of [a, b]) {
    await waitForTexts(page, ['edit on the laptop (later)']);
    await assertNoDuplicates(page);
  }
  const [onA, onB] = await Promise.all([domMessages(a), domMessages(b)]);
  assert.deepEqual(onA, onB, 'both devices show the same');

  const conflicts = await b.evaluate(() => window.__roomsync.conflicts.map(({ collection, id, local, server }) => ({ collection, id, local, server })));
  assert.equal(conflicts.length, 1, `the phone heard of one conflict: ${JSON.stringify(conflicts)}`);
  assert.equal(conflicts[0].id, id);
  assert.equal(conflicts[0].local?.text, 'edit on the phone (earlier)');
  assert.equal(conflicts[0].server?.text, 'edit on the laptop (later)');
  assert.match(await b.textContent('#toasts'), /kept “edit on the laptop \(later\)”/);
  assert.deepEqual(await a.evaluate(() => window.__roomsync.conflicts.length), 0, 'the winner had no conflict');
  assertNoPageErrors(a, b);
  await laptop.close();
  await phone.close();
});
