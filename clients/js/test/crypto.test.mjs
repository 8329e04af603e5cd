import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  KDF_ITERATIONS,
  TamperedError,
  WrongPasswordError,
  decryptDocument,
  deriveRoomKey,
  encryptDocument,
  generateDeviceKey,
  importRoomKey,
  makeKeyCheck,
  seal,
  unseal,
  verifyKeyCheck,
} from '../src/crypto.js';
import { RAW_KEY } from './helpers.mjs';

const base = { room: 'lobby', collection: 'messages', id: 'm1', timestamp: 1700000000000, fields: { text: 'hello' } };

test('a document round-trips and the server form holds no plaintext', async () => {
  const key = await importRoomKey(RAW_KEY);
  const doc = await encryptDocument(key, base);
  assert.deepEqual(Object.keys(doc).sort(), ['ciphertext', 'id', 'iv', 'kv', 'timestamp']);
  assert.ok(!JSON.stringify(doc).includes('hello'));
  const out = await decryptDocument(key, 'lobby', 'messages', doc);
  assert.deepEqual(out, { id: 'm1', timestamp: base.timestamp, deleted: false, fields: { text: 'hello' } });
});

test('the AAD binds room, collection, id, timestamp and the tombstone flag', async () => {
  const key = await importRoomKey(RAW_KEY);
  const doc = await encryptDocument(key, base);
  const swaps = [
    ['another room', () => decryptDocument(key, 'other', 'messages', doc)],
    ['another collection', () => decryptDocument(key, 'lobby', 'pins', doc)],
    ['another id', () => decryptDocument(key, 'lobby', 'messages', { ...doc, id: 'm2' })],
    ['another timestamp', () => decryptDocument(key, 'lobby', 'messages', { ...doc, timestamp: doc.timestamp + 1 })],
    ['a forged tombstone', () => decryptDocument(key, 'lobby', 'messages', { ...doc, _deleted: true })],
    ['a flipped bit', () => decryptDocument(key, 'lobby', 'messages', { ...doc, ciphertext: flip(doc.ciphertext) })],
    ['no ciphertext', () => decryptDocument(key, 'lobby', 'messages', { id: 'm1', timestamp: 1, text: 'plain' })],
  ];
  for (const [what, attempt] of swaps) {
    await assert.rejects(attempt, TamperedError, what);
  }
  const tombstone = await encryptDocument(key, { ...base, deleted: true });
  assert.equal(tombstone._deleted, true);
  assert.equal((await decryptDocument(key, 'lobby', 'messages', tombstone)).deleted, true);
});

test('a fresh IV for each of 100,000 encryptions', async () => {
  const key = await importRoomKey(RAW_KEY);
  const ivs = new Set();
  const n = 100_000;
  for (let i = 0; i < n; i += 1000) {
    const docs = await Promise.all(Array.from({ length: 1000 }, (_, j) => encryptDocument(key, { ...base, id: `m${i + j}` })));
    for (const d of docs) ivs.add(d.iv);
  }
  assert.equal(ivs.size, n);
});

test('a wrong password fails the key check cleanly, the right one passes', async () => {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const saltText = Buffer.from(salt).toString('base64');
  const right = await deriveRoomKey('correct horse', salt);
  const check = await makeKeyCheck(right, 'lobby', saltText);
  await verifyKeyCheck(await deriveRoomKey('correct horse', salt), 'lobby', saltText, check);
  await assert.rejects(verifyKeyCheck(await deriveRoomKey('wrong horse', salt), 'lobby', saltText, check), WrongPasswordError);
  await assert.rejects(verifyKeyCheck(right, 'another-room', saltText, check), WrongPasswordError);
  // and a document written under the right key does not open under the wrong one
  const doc = await encryptDocument(right, base);
  await assert.rejects(decryptDocument(await deriveRoomKey('wrong horse', salt), 'lobby', 'messages', doc), TamperedError);
});

test('keys are not extractable and PBKDF2 refuses weak parameters', async () => {
  const salt = new Uint8Array(16);
  const key = await deriveRoomKey('pw', salt);
  assert.equal(key.extractable, false);
  await assert.rejects(crypto.subtle.exportKey('raw', key));
  assert.equal((await importRoomKey(RAW_KEY)).extractable, false);
  assert.equal((await generateDeviceKey()).extractable, false);
  await assert.rejects(deriveRoomKey('pw', salt, KDF_ITERATIONS - 1), RangeError);
  await assert.rejects(deriveRoomKey('', salt), TypeError);
});

test('sealed local records open only under their own key and place', async () => {
  const device = await generateDeviceKey();
  const record = await seal(device, '["lobby","messages","m1"]', { text: 'secret' });
  assert.ok(!Buffer.from(record.data).toString('latin1').includes('secret'));
  assert.deepEqual(await unseal(device, '["lobby","messages","m1"]', record), { text: 'secret' });
  await assert.rejects(unseal(device, '["lobby","messages","m2"]', record), TamperedError);
  await assert.rejects(unseal(await generateDeviceKey(), '["lobby","messages","m1"]', record), TamperedError);
});

function flip(b64) {
  const bytes = Buffer.from(b64, 'base64');
  bytes[0] ^= 1;
  return bytes.toString('base64');
}
