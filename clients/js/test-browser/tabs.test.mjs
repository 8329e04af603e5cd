// Multi-tab in a real browser: two tabs of one profile share one local
// store and one replicating leader (Web Locks + BroadcastChannel), a second
// profile is another device; when the leader tab closes, the other tab
// takes the stream over without losing or repeating a message.
//
// Fails without its features (ROOMSYNC_TEST_BREAK=...): no-broadcast (the
// follower's write never leaves its tab), no-stream (live changes are
// ignored), no-handover (the waiting tab never becomes leader).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assertNoDuplicates,
  assertNoPageErrors,
  browser,
  newDevice,
  openChat,
  roomStatus,
  send,
  server,
  uniqueRoom,
  useServerAndBrowser,
  waitForTexts,
} from './lib/harness.mjs';

useServerAndBrowser();

/** Resolves to [leader, follower] of two tabs, waiting until one leads. */
async function leaderAndFollower(tab1, tab2) {
  for (let i = 0; i < 200; i += 1) {
    const [s1, s2] = await Promise.all([roomStatus(tab1), roomStatus(tab2)]);
    assert.ok(!(s1.leader && s2.leader), 'two tabs of one profile both replicate');
    if (s1.leader) return [tab1, tab2];
    if (s2.leader) return [tab2, tab1];
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('neither tab became the leader');
}

test('two tabs of one profile and a second profile converge on every message', async () => {
  const room = uniqueRoom('tabs');
  const alice = await newDevice(browser, { name: 'alice' });
  const bob = await newDevice(browser, { name: 'bob' });
  const a1 = await openChat(alice, server, { room, expectPrompt: true });
  // The second tab of the same profile finds the remembered key: no prompt.
  const a2 = await openChat(alice, server, { room, expectPrompt: false });
  const b = await openChat(bob, server, { room, expectPrompt: true });
  const [leader, follower] = await leaderAndFollower(a1, a2);

  const texts = [];
  texts.push('from the leader tab');
  await send(leader, texts.at(-1));
  texts.push('from the follower tab');
  await send(follower, texts.at(-1));
  texts.push('from the other profile');
  await send(b, texts.at(-1));
  texts.push('follower again');
  await send(follower, texts.at(-1));

  for (const page of [a1, a2, b]) {
    await waitForTexts(page, texts);
    await assertNoDuplicates(page);
  }
  // The follower never opened a stream of its own.
  assert.equal((await roomStatus(follower)).leader, false);
  assertNoPageErrors(a1, a2, b);
  await alice.close();
  await bob.close();
});

test('closing the leader tab hands the stream to the other tab, losing and repeating nothing', async () => {
  const room = uniqueRoom('handover');
  const alice = await newDevice(browser, { name: 'alice' });
  const bob = await newDevice(browser, { name: 'bob' });
  const a1 = await openChat(alice, server, { room });
  const a2 = await openChat(alice, server, { room, expectPrompt: false });
  const b = await openChat(bob, server, { room });
  const [leader, follower] = await leaderAndFollower(a1, a2);

  const texts = ['before the handover'];
  await send(b, texts[0]);
  await waitForTexts(follower, texts);
  // The leader's last write goes out as its tab closes.
  texts.push('last words of the leader tab');
  await send(leader, texts.at(-1));
  const closedAt = Date.now();
  await leader.close({ runBeforeUnload: true });
  await follower.waitForFunction(() => window.__roomsync.room.status.leader === true, null, { timeout: 10000, polling: 10 });
  const handoverMs = Date.now() - closedAt;
  process.stderr.write(`handover: the follower tab leads ${handoverMs} ms after the leader tab closed\n`);

  // The new leader streams: the other profile's writes arrive live, and
  // its own writes reach the other profile.
  texts.push('after the handover, from bob');
  await send(b, texts.at(-1));
  texts.push('after the handover, from the new leader');
  await send(follower, texts.at(-1));
  for (const page of [follower, b]) {
    await waitForTexts(page, texts);
    await assertNoDuplicates(page);
  }
  const status = await roomStatus(follower);
  assert.equal(status.pending, 0);
  assert.equal(status.streaming, true, 'the new leader holds the stream');
  assertNoPageErrors(follower, b);
  await alice.close();
  await bob.close();
});
