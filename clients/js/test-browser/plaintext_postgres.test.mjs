// Zero knowledge on PostgreSQL: after a chat session in a real browser
// against roomsync on a fresh PostgreSQL database, a pg_dump of that
// database holds none of the words typed (and does hold the message ids,
// the positive control). Needs ROOMSYNC_TEST_PGURL (ctest runs this file
// under scripts/with-postgres.sh); without it the test fails, never skips.
//
// Fails without its feature: ROOMSYNC_TEST_BREAK=no-e2ee.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { assertNoPageErrors, launchBrowser, psql, startServer, uniqueRoom, withDatabase } from './lib/harness.mjs';
import { chatWithSecrets, wordsIn } from './lib/chat_session.mjs';

const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
const db = `roomsync_browser_${process.pid}`;
let server;
let browser;

before(async () => {
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  psql(adminUrl, `CREATE DATABASE ${db}`);
  server = await startServer({ store: withDatabase(adminUrl, db) });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (adminUrl) psql(adminUrl, `DROP DATABASE IF EXISTS ${db}`);
});

test('the PostgreSQL database holds no word typed in the chat', async () => {
  const room = uniqueRoom('plaintext-pg');
  const session = await chatWithSecrets(browser, server, room);
  const text = execFileSync('pg_dump', ['--no-owner', '--data-only', '-d', withDatabase(adminUrl, db)], { maxBuffer: 256 << 20 });
  // bytea columns are dumped as \\x<hex>: search their bytes too.
  const hexRuns = [...text.toString('latin1').matchAll(/\\x((?:[0-9a-f]{2})+)/g)];
  assert.ok(hexRuns.length > 0, 'positive control: the dump has bytea values (the documents)');
  const dump = Buffer.concat([text, ...hexRuns.map((m) => Buffer.from(m[1], 'hex'))]);
  for (const id of session.ids) assert.ok(dump.includes(id), `positive control: message id ${id} is in the dump`);
  assert.ok(dump.includes(room), 'positive control: the room is in the dump');
  assert.deepEqual(wordsIn(dump, session.words), [], 'plaintext in the PostgreSQL database');
  assertNoPageErrors(...session.pages);
  await session.close();
});
