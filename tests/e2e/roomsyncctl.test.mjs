// roomsyncctl against a real roomsync-room (with JWT auth) behind a real
// gateway, once on SQLite and once on PostgreSQL (a fresh database on
// $ROOMSYNC_TEST_PGURL; ctest wraps this file in scripts/with-postgres.sh):
//   - token mint / token inspect round trip (and inspect refuses a token
//     signed with another secret);
//   - documents pushed through the public HTTP API (new, replaced,
//     deleted) are exported, imported into a new room and exported again:
//     the document lines are byte-identical and the header keeps epoch and
//     seq; a second import into the now non-empty room is refused; the
//     imported room serves the same documents through the public API;
//   - check is clean, then a seq moved by hand in the database (sqlite3 /
//     psql) makes it exit 1 naming the gap;
//   - admin calls with a non-admin token, or none, are refused.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { binary, doc, getJson, postJson, psql, startGateway, startRoomService, tempDir, uniqueRoom, withDatabase } from './lib/roomsync.mjs';

const ctlBin = () => binary('ROOMSYNC_CTL_BIN');

function ctl(args, { input } = {}) {
  const r = spawnSync(ctlBin(), args, { encoding: 'utf8', input, timeout: 30000 });
  if (r.error) throw r.error;
  return r;
}

function bearer(token) {
  return { headers: { Authorization: `Bearer ${token}` } };
}

async function scenario(t, { store, corruptSeq }) {
  const dir = tempDir('roomsyncctl-e2e-');
  const secret = join(dir, 'hs256.secret');
  writeFileSync(secret, `${randomBytes(32).toString('hex')}\n`);
  const auth = ['--auth', 'jwt', '--jwt_hs256_secret_file', secret];
  const node = await startRoomService({ dir, store, args: auth });
  const gateway = await startGateway({ roomServicePort: node.grpcPort, args: auth });
  const target = ['--target', `127.0.0.1:${node.grpcPort}`, '--grpc_plaintext'];
  try {
    // ---- tokens
    const mint = (extra) => {
      const r = ctl(['token', 'mint', '--jwt_hs256_secret_file', secret, ...extra]);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    const adminToken = mint(['--sub', 'operator', '--scope', 'admin', '--ttl', '10m']);
    const userToken = mint(['--sub', 'alice', '--rooms', '*', '--scope', 'read write']);
    const adminFile = join(dir, 'admin.jwt');
    const userFile = join(dir, 'user.jwt');
    writeFileSync(adminFile, adminToken);
    writeFileSync(userFile, userToken);
    const admin = [...target, '--token_file', adminFile];

    await t.test('token mint then token inspect round trip', () => {
      const r = ctl(['token', 'inspect', '--token_file', adminFile, '--jwt_hs256_secret_file', secret, '--output', 'json']);
      assert.equal(r.status, 0, r.stderr);
      const claims = JSON.parse(r.stdout);
      assert.equal(claims.valid, true);
      assert.equal(claims.alg, 'HS256');
      assert.equal(claims.sub, 'operator');
      assert.equal(claims.admin, true);
      assert.equal(claims.write, false);
      assert.ok(claims.expires_in_s > 500 && claims.expires_in_s <= 600, `expires_in_s ${claims.expires_in_s}`);
      const user = ctl(['token', 'inspect', '--jwt_hs256_secret_file', secret], { input: userToken });
      assert.equal(user.status, 0, user.stderr);
      assert.match(user.stdout, /sub\s+alice/);
      assert.match(user.stdout, /rooms\s+\*/);
      assert.match(user.stdout, /grants\s+read write\n/);
      const other = join(dir, 'other.secret');
      writeFileSync(other, randomBytes(32).toString('hex'));
      const bad = ctl(['token', 'inspect', '--token_file', adminFile, '--jwt_hs256_secret_file', other]);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /does not verify: UNAUTHENTICATED/);
    });

    // ---- documents through the public API
    const source = uniqueRoom('ctl-src');
    const copy = uniqueRoom('ctl-copy');
    const push = async (docs, collection = 'messages') => {
      const r = await postJson(`${gateway.url}/v1/rooms/${source}/replicate/push?collection=${collection}`, docs, bearer(userToken));
      assert.equal(r.status, 200, r.text);
    };
    const t0 = Date.now() - 60000;
    await push(Array.from({ length: 20 }, (_, i) => doc(`m${i}`, { text: `héllo "${i}"\n\t✓` }, t0 + i)));
    await push([doc('m3', { edited: true }, t0 + 100), { id: 'm5', timestamp: t0 + 101, _deleted: true }]);
    await push([doc('u1', { name: 'ünïcode' }, t0 + 5)], 'users');
    await push(Array.from({ length: 5 }, (_, i) => doc(`n${i}`, {}, t0 + 200 + i)));
    const pulled = await getJson(`${gateway.url}/v1/rooms/${source}/replicate/pull?batchSize=1000`, bearer(userToken));
    assert.equal(pulled.status, 200, pulled.text);
    assert.equal(pulled.body.documents.length, 26);

    const exportA = join(dir, 'a.jsonl');
    const exportB = join(dir, 'b.jsonl');

    await t.test('export, import into a new room, export again: byte-identical', async () => {
      let r = ctl(['export', source, '--file', exportA, ...admin]);
      assert.equal(r.status, 0, r.stderr);
      const a = readFileSync(exportA, 'utf8').split('\n');
      assert.equal(a.pop(), '', 'the file ends with a newline');
      const header = JSON.parse(a[0]);
      assert.equal(header.room, source);
      assert.equal(header.seq, 28);  // 20 + 2 + 1 + 5 seqs assigned
      assert.equal(a.length, 1 + 26);
      const seqs = a.slice(1).map((line) => JSON.parse(line).seq);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'documents in seq order');
      const tombstone = a.slice(1).map((line) => JSON.parse(line)).find((d) => d.id === 'm5');
      assert.equal(tombstone.deleted, true);
      // stdout is the same file
      r = ctl(['export', source, ...admin]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, readFileSync(exportA, 'utf8'));

      r = ctl(['import', copy, exportA, ...admin]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /imported 26 documents/);
      r = ctl(['export', copy, '--file', exportB, ...admin]);
      assert.equal(r.status, 0, r.stderr);
      const b = readFileSync(exportB, 'utf8').split('\n');
      const headerB = JSON.parse(b[0]);
      assert.equal(headerB.room, copy);
      assert.equal(headerB.epoch, header.epoch);
      assert.equal(headerB.seq, header.seq);
      assert.equal(b.slice(1).join('\n'), readFileSync(exportA, 'utf8').split('\n').slice(1).join('\n'));

      // The imported room serves the same documents, byte for byte in JSON.
      const pulledCopy = await getJson(`${gateway.url}/v1/rooms/${copy}/replicate/pull?batchSize=1000`, bearer(userToken));
      assert.equal(pulledCopy.status, 200, pulledCopy.text);
      assert.deepEqual(pulledCopy.body.documents, pulled.body.documents);
      // And it continues from the imported seq.
      const more = await postJson(`${gateway.url}/v1/rooms/${copy}/replicate/push?collection=messages`, [doc('after-import')], bearer(userToken));
      assert.equal(more.status, 200, more.text);
      const shown = JSON.parse(ctl(['rooms', 'show', copy, '--output', 'json', ...admin]).stdout);
      assert.equal(shown.last_seq, 29);

      r = ctl(['import', copy, exportA, ...admin]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /FAILED_PRECONDITION/);
    });

    await t.test('rooms list and rooms show', () => {
      const r = ctl(['rooms', 'list', '--all', '--output', 'json', ...admin]);
      assert.equal(r.status, 0, r.stderr);
      const rooms = JSON.parse(r.stdout).rooms;
      const src = rooms.find((x) => x.room === source);
      assert.ok(src, r.stdout);
      assert.equal(src.documents, 26);
      assert.equal(src.deleted_documents, 1);
      assert.equal(src.live_documents, 25);
      assert.equal(src.last_seq, 28);
      assert.equal(src.stored_bytes, src.document_bytes);
      assert.equal(src.last_write_ms, t0 + 204);
      assert.ok(rooms.some((x) => x.room === copy));
      const table = ctl(['rooms', 'list', ...admin]);
      assert.equal(table.status, 0, table.stderr);
      assert.match(table.stdout, /^ROOM\s+DOCS\s+LIVE\s+DELETED\s+BYTES\s+LAST_SEQ\s+LAST_WRITE\s+SUBSCRIBERS\s+OWNER\s+EPOCH\n/);
      const missing = ctl(['rooms', 'show', 'never-opened', ...admin]);
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /NOT_FOUND/);
    });

    await t.test('check: clean, then a seq gap made by hand exits 1 naming it', () => {
      let r = ctl(['check', source, ...admin]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /: ok \(last_seq 28, 26 documents\)/);
      r = ctl(['check', '--all', ...admin]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      corruptSeq(source);
      r = ctl(['check', source, ...admin]);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /PROBLEM: seq gap: the room's last_seq is 28 but documents hold seqs up to 33 \(messages\/n4@33\)/);
      assert.match(r.stdout, /PROBLEM: seq gap: no document holds the room's last_seq 28/);
      r = ctl(['check', '--all', '--output', 'json', ...admin]);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      const report = JSON.parse(r.stdout);
      assert.equal(report.problems, 2);
      assert.deepEqual(report.rooms.find((x) => x.room === copy).problems, []);
    });

    await t.test('admin calls without admin rights are refused', () => {
      const user = [...target, '--token_file', userFile];
      for (const args of [['rooms', 'list'], ['rooms', 'show', source], ['export', source], ['check', source]]) {
        let r = ctl([...args, ...user]);
        assert.equal(r.status, 1, `${args}: ${r.stderr}`);
        assert.match(r.stderr, /PERMISSION_DENIED: the token's scope does not include admin/);
        r = ctl([...args, ...target]);
        assert.equal(r.status, 1, `${args}: ${r.stderr}`);
        assert.match(r.stderr, /UNAUTHENTICATED/);
      }
      const r = ctl(['import', uniqueRoom('ctl-denied'), exportA, ...user]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /PERMISSION_DENIED/);
    });

    await t.test('usage errors exit 2, --help exits 0', () => {
      assert.equal(ctl([]).status, 2);
      assert.equal(ctl(['bogus']).status, 2);
      assert.equal(ctl(['export', ...admin]).status, 2);
      assert.equal(ctl(['export', source, '--nope', ...admin]).status, 2);
      assert.equal(ctl(['export', source, '--output', 'xml', ...admin]).status, 2);
      assert.equal(ctl(['check', ...admin]).status, 2);
      assert.equal(ctl(['rooms', 'list', '--target', '127.0.0.1:1']).status, 2, 'neither TLS nor --grpc_plaintext');
      for (const cmd of [['token', 'mint'], ['token', 'inspect'], ['rooms', 'list'], ['rooms', 'show'], ['export'], ['import'], ['check']]) {
        const r = ctl([...cmd, '--help']);
        assert.equal(r.status, 0, cmd.join(' '));
        assert.match(r.stdout, /^usage: roomsyncctl /);
      }
    });
  } finally {
    await gateway.stop();
    await node.stop();
  }
}

test('roomsyncctl on SQLite', async (t) => {
  const dir = tempDir('roomsyncctl-sqlite-');
  const path = join(dir, 'room.db');
  await scenario(t, {
    store: `sqlite:${path}`,
    corruptSeq: (room) => execFileSync('sqlite3', [path,
      `UPDATE documents SET seq = seq + 5 WHERE room = '${room}' AND seq = (SELECT max(seq) FROM documents WHERE room = '${room}')`]),
  });
});

test('roomsyncctl on PostgreSQL', async (t) => {
  const adminUrl = process.env.ROOMSYNC_TEST_PGURL;
  assert.ok(adminUrl, 'ROOMSYNC_TEST_PGURL is not set: run under scripts/with-postgres.sh (ctest does)');
  const db = `roomsync_e2e_ctl_${process.pid}_${randomBytes(3).toString('hex')}`;
  psql(adminUrl, `CREATE DATABASE ${db}`);
  const store = withDatabase(adminUrl, db);
  await scenario(t, {
    store,
    corruptSeq: (room) => psql(store,
      `UPDATE documents SET seq = seq + 5 WHERE room = '${room}' AND seq = (SELECT max(seq) FROM documents WHERE room = '${room}')`),
  });
});
