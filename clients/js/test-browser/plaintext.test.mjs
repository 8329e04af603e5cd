// Zero knowledge, checked on the bytes: after a chat session in a real
// browser (messages, an edit, a delete, display names, the room password),
// neither the server's SQLite files nor the browser's IndexedDB hold any of
// the words typed. The positive controls (the message ids are in both) show
// the checks read the right data. The same check on PostgreSQL is
// plaintext_postgres.test.mjs.
//
// Fails without its features (ROOMSYNC_TEST_BREAK=...): no-e2ee (the
// plaintext goes to the server next to the ciphertext), no-seal (IndexedDB
// records hold the plaintext).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  assertNoPageErrors,
  browser,
  indexedDbRecords,
  server,
  uniqueRoom,
  useServerAndBrowser,
} from './lib/harness.mjs';
import { chatWithSecrets, wordsIn } from './lib/chat_session.mjs';

useServerAndBrowser();

/** The SQLite database and its -wal / -shm / -journal files, concatenated. */
function storeBytes(storePath) {
  const dir = dirname(storePath);
  const files = readdirSync(dir).filter((f) => f.startsWith(basename(storePath)));
  assert.ok(files.includes(basename(storePath)), `no ${storePath}`);
  return Buffer.concat(files.map((f) => readFileSync(join(dir, f))));
}

test('the SQLite store and IndexedDB hold no word typed in the chat', async () => {
  const room = uniqueRoom('plaintext');
  const session = await chatWithSecrets(browser, server, room);

  const onServer = storeBytes(server.storePath);
  for (const id of session.ids) assert.ok(onServer.includes(id), `positive control: message id ${id} is in the store`);
  assert.deepEqual(wordsIn(onServer, session.words), [], 'plaintext in the server\'s SQLite files');

  for (const page of session.pages) {
    const records = await indexedDbRecords(page);
    const messages = records.filter((r) => r.key[0] === room && r.key[1] === 'messages');
    assert.ok(messages.length >= session.ids.length - 1, `positive control: ${messages.length} message records in IndexedDB`);
    for (const r of records) {
      assert.ok(r.ivIsBytes && r.dataIsBytes, `record ${JSON.stringify(r.key)} is {iv, data} bytes: ${r.fields}`);
      const found = wordsIn(Buffer.from(`${JSON.stringify(r.key)} ${r.data} ${r.iv}`, 'latin1'), session.words);
      assert.deepEqual(found, [], `plaintext in IndexedDB record ${JSON.stringify(r.key)}`);
    }
  }
  assertNoPageErrors(...session.pages);
  await session.close();

  // And once the server has stopped (WAL checkpointed into the database).
  await server.halt();
  const afterStop = storeBytes(server.storePath);
  assert.deepEqual(wordsIn(afterStop, session.words), [], 'plaintext in the stopped server\'s SQLite file');
});
