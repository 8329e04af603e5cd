// roomsyncctl import-durable-object against a real roomsync-room (JWT auth)
// behind a real gateway, once on SQLite and once on PostgreSQL (a fresh
// database on $ROOMSYNC_TEST_PGURL; ctest wraps this file in
// scripts/with-postgres.sh). The dump is fixtures/workers_chat_dump.json:
// 50 messages of a Workers Chat room as the workers-chat-demo Durable Object
// keeps them (ISO-time key -> JSON.stringify({name, message, timestamp}),
// some as parsed objects, one key with a suffix, one without a timestamp).
//   - encrypted (the default) with a room password, into a new room: every
//     message arrives once through the gateway's pull, with the id derived
//     from its key and the right timestamp, and the JS client's own
//     clients/js/src/crypto.js opens the room's meta/kdf key check and
//     decrypts every document to {name, text, created}; the server's copy
//     holds no plaintext;
//   - the same dump again: nothing imported, the room's last seq unchanged;
//     a wrong password: refused, nothing written;
//   - into a room the JS client created with a raw key (its meta/kdf and a
//     message of its own): half the dump, then all of it (only the rest is
//     imported), all decrypting with that key;
//   - --plaintext: {id, timestamp, name, message} as plaintext JSON;
//   - bad dumps (not JSON, wrong shape, a non-numeric timestamp) exit 1
//     naming the problem and write nothing; a token without the write grant
//     is refused; missing flags exit 2; --help exits 0.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { fromBase64, toBase64 } from '../../clients/js/src/bytes.js';
import {
  decryptDocument,
  deriveRoomKey,
  encryptDocument,
  importRoomKey,
  makeKeyCheck,
  verifyKeyCheck,
} from '../../clients/js/src/crypto.js';
import { binary, getJson, postJson, psql, startGateway, startRoomService, tempDir, uniqueRoom, withDatabase } from './lib/roomsync.mjs';

const ctlBin = () => binary('ROOMSYNC_CTL_BIN');
const fixture = new URL('./fixtures/workers_chat_dump.json', import.meta.url);

function ctl(args, { input } = {}) {
  const r = spawnSync(ctlBin(), args, { encoding: 'utf8', input, timeout: 60000 });
  if (r.error) throw r.error;
  return r;
}

const bearer = (token) => ({ headers: { Authorization: `Bearer ${token}` } });

// What the dump should become: the documented id and timestamp rules,
// computed here independently of the tool.
function expectedMessages(dump) {
  return Object.entries(dump).map(([key, value]) => {
    const v = typeof value === 'string' ? JSON.parse(value) : value;
    const timestamp = v.timestamp ?? Date.parse(key.slice(0, key.indexOf('Z') + 1));
    const id = `do-${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 32)}`;
    return { key, id, timestamp, name: v.name, message: v.message };
  });
}

async function scenario(t, { store }) {
  const dir = tempDir('roomsyncctl-do-e2e-');
  const secret = join(dir, 'hs256.secret');
  writeFileSync(secret, `${randomBytes(32).toString('hex')}\n`);
  const auth = ['--auth', 'jwt', '--jwt_hs256_secret_file', secret];
  const node = await startRoomService({ dir, store, args: auth });
  const gateway = await startGateway({ roomServicePort: node.grpcPort, args: auth });
  const target = ['--target', `127.0.0.1:${node.grpcPort}`, '--grpc_plaintext'];
  try {
    const mint = (extra) => {
      const r = ctl(['token', 'mint', '--jwt_hs256_secret_file', secret, ...extra]);
      assert.equal(r.status, 0, r.stderr);
      const file = join(dir, `${randomBytes(4).toString('hex')}.jwt`);
      writeFileSync(file, r.stdout.trim());
      return { token: r.stdout.trim(), file };
    };
    const writer = mint(['--sub', 'migrator', '--rooms', 'e2e-*', '--scope', 'read write']);
    const reader = mint(['--sub', 'viewer', '--rooms', 'e2e-*', '--scope', 'read']);
    const admin = mint(['--sub', 'operator', '--scope', 'admin']);
    const asWriter = [...target, '--token_file', writer.file];

    const dumpText = readFileSync(fixture, 'utf8');
    const dump = JSON.parse(dumpText);
    const expected = expectedMessages(dump);
    assert.equal(expected.length, 50);
    assert.equal(new Set(expected.map((m) => m.id)).size, 50);
    const dumpFile = join(dir, 'dump.json');
    writeFileSync(dumpFile, dumpText);
    const password = 'correct horse battery staple';
    const passwordFile = join(dir, 'room.password');
    writeFileSync(passwordFile, `${password}\n`);

    const importDo = (room, file, extra, options) => ctl(['import-durable-object', room, file, ...extra, ...asWriter], options);
    const importJson = (room, file, extra) => {
      const r = importDo(room, file, [...extra, '--output', 'json']);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const pull = async (room, collection) => {
      const q = collection ? `collection=${collection}&` : '';
      const r = await getJson(`${gateway.url}/v1/rooms/${room}/replicate/pull?${q}batchSize=1000`, bearer(reader.token));
      assert.equal(r.status, 200, r.text);
      return r.body;
    };
    const lastSeq = (room) => {
      const r = ctl(['rooms', 'show', room, '--output', 'json', ...target, '--token_file', admin.file]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).last_seq;
    };
    const assertNothingWritten = async (room) => {
      const all = await pull(room);
      assert.deepEqual(all.documents, [], `${room} holds documents`);
      assert.equal(all.checkpoint.seq, 0);
    };
    // Every expected message exactly once, decrypted with the client's code.
    const assertDecrypts = async (documents, key, room) => {
      const byId = new Map(documents.map((d) => [d.id, d]));
      for (const m of expected) {
        const d = byId.get(m.id);
        assert.ok(d, `message ${m.key} (${m.id}) is missing`);
        assert.equal(d.timestamp, m.timestamp, m.key);
        assert.deepEqual(Object.keys(d).sort(), ['ciphertext', 'id', 'iv', 'kv', 'timestamp']);
        const opened = await decryptDocument(key, room, 'messages', d);
        assert.deepEqual(opened, {
          id: m.id, timestamp: m.timestamp, deleted: false,
          fields: { name: m.name, text: m.message, created: m.timestamp },
        }, m.key);
      }
    };

    await t.test('missing flags exit 2, --help exits 0', () => {
      let r = ctl(['import-durable-object', uniqueRoom('do-usage'), dumpFile, ...asWriter]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--plaintext to store the history as plaintext JSON that the server .*can read/);
      r = ctl(['import-durable-object', uniqueRoom('do-usage'), '--plaintext', ...asWriter]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /expected 2 arguments, got 1/);
      r = ctl(['import-durable-object', uniqueRoom('do-usage'), dumpFile, '--plaintext', '--room_password_file', passwordFile, ...asWriter]);
      assert.equal(r.status, 2, r.stderr);
      r = ctl(['import-durable-object', uniqueRoom('do-usage'), dumpFile, '--plaintext', '--batch_size', '1001', ...asWriter]);
      assert.equal(r.status, 2, r.stderr);
      r = ctl(['import-durable-object', uniqueRoom('do-usage'), dumpFile, '--plaintext', '--target', '127.0.0.1:1']);
      assert.equal(r.status, 2, 'neither TLS nor --grpc_plaintext');
      r = ctl(['import-durable-object', '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^usage: roomsyncctl import-durable-object ROOM FILE/);
      assert.match(r.stdout, /--plaintext/);
      assert.match(r.stdout, /--room_password_file/);
      assert.match(ctl(['--help']).stdout, /import-durable-object/);
    });

    await t.test('bad dumps exit 1 naming the problem and write nothing', async () => {
      const room = uniqueRoom('do-bad');
      const write = (name, text) => {
        const file = join(dir, name);
        writeFileSync(file, text);
        return file;
      };
      const badTimestamp = structuredClone(dump);
      const keys = Object.keys(badTimestamp);
      badTimestamp[keys[10]] = JSON.stringify({ name: 'x', message: 'y', timestamp: 'yesterday' });
      badTimestamp[keys[39]].timestamp = null;  // #39 is an object (every third is)
      const cases = [
        ['not-json.json', '{"2024-05-01T10:00:00.000Z": {"name": "a", ', /not JSON/],
        ['array.json', '[1, 2, 3]', /an array must hold \[key, value\] pairs, but item 0 is a number/],
        ['string.json', '"hello"', /expected an object mapping each storage key to a message .*got a string/],
        ['value.json', JSON.stringify({ '2024-05-01T10:00:00.000Z': 42, '2024-05-01T10:00:01.000Z': { name: 'a' } }),
          /2 of 2 entries are not Workers Chat messages:\n {2}key "2024-05-01T10:00:00.000Z": must be a message \{name, message, timestamp\} \(or its JSON text\), got a number\n {2}key "2024-05-01T10:00:01.000Z": has no "message"/],
        ['timestamp.json', JSON.stringify(badTimestamp),
          new RegExp(`2 of 50 entries are not Workers Chat messages:\\n  key "${keys[10]}": "timestamp" must be a number \\(milliseconds since the Unix epoch\\), got a string\\n  key "${keys[39]}": "timestamp" must be a number \\(milliseconds since the Unix epoch\\), got null`)],
      ];
      for (const [name, text, message] of cases) {
        for (const mode of [['--plaintext'], ['--room_password_file', passwordFile]]) {
          const r = importDo(room, write(name, text), mode);
          assert.equal(r.status, 1, `${name}: ${r.stderr}`);
          assert.match(r.stderr, /nothing was imported: INVALID_ARGUMENT/, name);
          assert.match(r.stderr, message, name);
        }
      }
      const missing = importDo(room, join(dir, 'no-such-dump.json'), ['--plaintext']);
      assert.equal(missing.status, 1, missing.stderr);
      assert.match(missing.stderr, /cannot open the dump/);
      await assertNothingWritten(room);
    });

    await t.test('encrypted with a room password: every message once, the JS client decrypts them', async () => {
      const room = uniqueRoom('do-password');
      const report = importJson(room, dumpFile, ['--room_password_file', passwordFile, '--batch_size', '7']);
      assert.deepEqual(
        { read: report.read, skipped: report.skipped_existing, imported: report.imported, conflicts: report.conflicts,
          encryption: report.encryption, kdf_created: report.kdf_created },
        { read: 50, skipped: 0, imported: 50, conflicts: 0, encryption: 'PBKDF2-SHA-256', kdf_created: true });
      assert.equal(report.checkpoint.seq, 51, 'meta/kdf, then 50 messages');

      const page = await pull(room, 'messages');
      assert.equal(page.documents.length, 50);
      assert.equal(new Set(page.documents.map((d) => d.id)).size, 50, 'each message once');
      // Pushed in key order: the seq order is the history's order.
      assert.deepEqual(page.documents.map((d) => d.id), [...expected].sort((a, b) => (a.key < b.key ? -1 : 1)).map((m) => m.id));
      const raw = JSON.stringify(page.documents);
      for (const text of ['hello everyone', '日本語', 'not html', '"name"', '"message"']) {
        assert.ok(!raw.includes(text), `the server holds plaintext: ${text}`);
      }

      const meta = await pull(room, 'meta');
      const kdf = meta.documents.find((d) => d.id === 'kdf');
      assert.equal(kdf.alg, 'PBKDF2-SHA-256');
      assert.equal(kdf.iterations, 600000);
      assert.equal(kdf.timestamp, 1);
      const key = await deriveRoomKey(password, fromBase64(kdf.salt), kdf.iterations);
      await verifyKeyCheck(key, room, kdf.salt, kdf.check);
      await assertDecrypts(page.documents, key, room);

      // Again: nothing new, the room's last seq unchanged.
      const seq = lastSeq(room);
      assert.equal(seq, 51);
      const again = importJson(room, dumpFile, ['--room_password_file', passwordFile]);
      assert.deepEqual([again.read, again.skipped_existing, again.imported, again.kdf_created, again.checkpoint],
        [50, 50, 0, false, null]);
      assert.equal(lastSeq(room), seq);
      const table = importDo(room, dumpFile, ['--room_password_file', passwordFile]);
      assert.equal(table.status, 0, table.stderr);
      assert.match(table.stdout, /^read\s+50\nskipped_existing\s+50\nimported\s+0\n/);
      assert.equal(lastSeq(room), seq);

      // A wrong password is refused before anything is written.
      const wrong = join(dir, 'wrong.password');
      writeFileSync(wrong, 'not the password\n');
      const extra = join(dir, 'extra.json');
      writeFileSync(extra, JSON.stringify({ '2024-06-01T00:00:00.000Z': { name: 'z', message: 'late', timestamp: 1717200000000 } }));
      const refused = importDo(room, extra, ['--room_password_file', wrong]);
      assert.equal(refused.status, 1, refused.stderr);
      assert.match(refused.stderr, /PERMISSION_DENIED: wrong room password/);
      assert.equal(lastSeq(room), seq);
    });

    await t.test('into a room the JS client created with a raw key: half, then all', async () => {
      const room = uniqueRoom('do-rawkey');
      const rawKey = new Uint8Array(randomBytes(32));
      const key = await importRoomKey(rawKey);
      // What room.js #fetchOrCreateKdf pushes for a raw key, and a message.
      const salt = toBase64(new Uint8Array(randomBytes(16)));
      const kdfDoc = { id: 'kdf', timestamp: 1, alg: 'raw', salt, check: await makeKeyCheck(key, room, salt) };
      let r = await postJson(`${gateway.url}/v1/rooms/${room}/replicate/push?collection=meta`, [kdfDoc], bearer(writer.token));
      assert.equal(r.status, 200, r.text);
      const own = await encryptDocument(key, { room, collection: 'messages', id: 'client-1', timestamp: Date.now(), fields: { name: 'web', text: 'before the import', created: 1 } });
      r = await postJson(`${gateway.url}/v1/rooms/${room}/replicate/push?collection=messages`, [own], bearer(writer.token));
      assert.equal(r.status, 200, r.text);

      const keyFile = join(dir, 'room.key');
      writeFileSync(keyFile, `${Buffer.from(rawKey).toString('hex')}\n`);
      const half = join(dir, 'half.json');
      writeFileSync(half, JSON.stringify(Object.fromEntries(Object.entries(dump).slice(0, 20))));
      let report = importJson(room, half, ['--room_key_file', keyFile]);
      assert.deepEqual([report.read, report.skipped_existing, report.imported, report.encryption, report.kdf_created],
        [20, 0, 20, 'raw', false]);
      report = importJson(room, dumpFile, ['--room_key_file', keyFile, '--batch_size', '1000']);
      assert.deepEqual([report.read, report.skipped_existing, report.imported], [50, 20, 30]);
      assert.equal(report.checkpoint.seq, 2 + 50);

      const page = await pull(room, 'messages');
      assert.equal(page.documents.length, 51);
      await assertDecrypts(page.documents, key, room);
      const mine = await decryptDocument(key, room, 'messages', page.documents.find((d) => d.id === 'client-1'));
      assert.equal(mine.fields.text, 'before the import');

      const passwordInstead = importDo(room, dumpFile, ['--room_password_file', passwordFile]);
      assert.equal(passwordInstead.status, 1, passwordInstead.stderr);
      assert.match(passwordInstead.stderr, /the room uses a raw 32-byte key \(meta\/kdf alg raw\): give --room_key_file/);
      const otherKey = join(dir, 'other.key');
      writeFileSync(otherKey, randomBytes(32));
      const wrongKey = importDo(room, dumpFile, ['--room_key_file', otherKey]);
      assert.equal(wrongKey.status, 1, wrongKey.stderr);
      assert.match(wrongKey.stderr, /wrong room key/);
      assert.equal(lastSeq(room), 52);
    });

    await t.test('--plaintext stores {id, timestamp, name, message} readable by the server', async () => {
      const room = uniqueRoom('do-plain');
      const empty = importDo(room, '-', ['--plaintext'], { input: '' });
      assert.equal(empty.status, 1, 'an empty stdin is not JSON');
      assert.match(empty.stderr, /not JSON/);
      const viaStdin = ctl(['import-durable-object', room, '-', '--plaintext', '--batch_size', '16', '--output', 'json', ...asWriter], { input: dumpText });
      assert.equal(viaStdin.status, 0, viaStdin.stderr);
      const report = JSON.parse(viaStdin.stdout);
      assert.deepEqual([report.read, report.skipped_existing, report.imported, report.encryption, report.checkpoint.seq],
        [50, 0, 50, 'plaintext', 50]);
      const page = await pull(room, 'messages');
      assert.equal(page.documents.length, 50);
      const byId = new Map(page.documents.map((d) => [d.id, d]));
      for (const m of expected) {
        assert.deepEqual(byId.get(m.id), { id: m.id, timestamp: m.timestamp, name: m.name, message: m.message }, m.key);
      }
      const again = importJson(room, dumpFile, ['--plaintext']);
      assert.deepEqual([again.read, again.skipped_existing, again.imported], [50, 50, 0]);
      assert.equal(lastSeq(room), 50);
    });

    await t.test('a token without the write grant, or none, is refused', async () => {
      const room = uniqueRoom('do-denied');
      let r = ctl(['import-durable-object', room, dumpFile, '--plaintext', ...target, '--token_file', reader.file]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /PERMISSION_DENIED/);
      r = ctl(['import-durable-object', room, dumpFile, '--plaintext', ...target]);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /UNAUTHENTICATED/);
      await assertNothingWritten(room);
    });
  } finally {
    await gateway.stop();
    await node.stop();
  }
}

test('roomsyncctl import-durable-object on SQLite', async (t) => {
  const dir = tempDir('roomsyncctl-do-sqlite-');
  await scenario(t, { store: `sqlite:${join(dir, 'room.db')}` });
});

test('roomsyncctl import-durable-object on PostgreSQL', async (t) => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_do_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  await scenario(t, { store: withDatabase(adminUrl, db) });
});
