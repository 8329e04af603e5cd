import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rolloutBucket, shouldEnableLocalFirst, stableHash } from '../src/rollout.js';

test('the hash is FNV-1a 32 and pinned: a user never changes bucket between releases', () => {
  assert.equal(stableHash(''), 0x811c9dc5);
  assert.equal(stableHash('a'), 0xe40c292c);
  assert.equal(stableHash('foobar'), 0xbf9cf968);
  assert.equal(rolloutBucket('user-1'), rolloutBucket('user-1'));
});

test('percent rolls out to about that share of users, monotonically', () => {
  const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
  const share = (p) => users.filter((u) => shouldEnableLocalFirst(u, { percent: p, url: 'https://chat.example/' })).length / users.length;
  assert.equal(share(0), 0);
  assert.equal(share(100), 1);
  assert.ok(Math.abs(share(10) - 0.1) < 0.02, `10% got ${share(10)}`);
  assert.ok(Math.abs(share(50) - 0.5) < 0.03, `50% got ${share(50)}`);
  // a user in at 10% stays in at 50%
  for (const u of users) if (shouldEnableLocalFirst(u, { percent: 10, url: 'https://x/' })) assert.ok(shouldEnableLocalFirst(u, { percent: 50, url: 'https://x/' }));
});

test('beta users and the URL override', () => {
  assert.equal(shouldEnableLocalFirst('ana', { percent: 0, betaUsers: ['ana'], url: 'https://x/' }), true);
  assert.equal(shouldEnableLocalFirst('bob', { percent: 0, url: 'https://x/?localFirst=true' }), true);
  assert.equal(shouldEnableLocalFirst('ana', { percent: 100, betaUsers: ['ana'], url: 'https://x/?localFirst=false' }), false);
  assert.equal(shouldEnableLocalFirst('bob', { percent: 0, urlFlag: true }), true);
  assert.equal(shouldEnableLocalFirst('bob', { percent: 100, urlFlag: 'false' }), false);
});
