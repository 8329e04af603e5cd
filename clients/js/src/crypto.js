// End-to-end encryption of room documents with Web Crypto only.
//
// Layer 1 (what the server sees): each document body is AES-256-GCM under
// the room key with a fresh 96-bit random IV. The additional authenticated
// data binds the room, collection, id, timestamp and deleted flag, so a
// server that moves a ciphertext to another id, room or collection, or
// changes its timestamp or tombstone flag, makes decryption fail: the
// document shows as tampered, never as someone else's text.
//
// Layer 2 (what IndexedDB holds) is `seal`/`unseal` under a device key: a
// non-extractable AES-GCM CryptoKey that never leaves Web Crypto.

import { fromBase64, fromUtf8, toBase64, utf8 } from './bytes.js';

/** OWASP's 2023 figure for PBKDF2-HMAC-SHA-256. */
export const KDF_ITERATIONS = 600_000;
/** Written into every document as `kv`, so keys can be rotated later. */
export const KEY_VERSION = 1;
const FORMAT = 'roomsync/e2ee/v1';
const KEY_CHECK_TEXT = 'roomsync room key check';

const subtle = () => {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('Web Crypto (crypto.subtle) is not available: a secure context (https or localhost) is required');
  return s;
};

/** A decryption or authentication failure: the data is not what was written. */
export class TamperedError extends Error {
  constructor(message) {
    super(message);
    this.name = 'TamperedError';
  }
}

/** The room password did not open the room's key check. */
export class WrongPasswordError extends Error {
  constructor() {
    super('wrong room password');
    this.name = 'WrongPasswordError';
  }
}

/** 16 random bytes: a new room's PBKDF2 salt. */
export const newSalt = () => globalThis.crypto.getRandomValues(new Uint8Array(16));

/**
 * The room key from its password: PBKDF2-SHA-256 → AES-256-GCM, not
 * extractable, so script can use it but never read it.
 * @param {string} password @param {Uint8Array} salt @param {number} [iterations]
 * @returns {Promise<CryptoKey>}
 */
export async function deriveRoomKey(password, salt, iterations = KDF_ITERATIONS) {
  if (typeof password !== 'string' || password.length === 0) throw new TypeError('a room password is required');
  if (!(iterations >= KDF_ITERATIONS)) throw new RangeError(`PBKDF2 needs at least ${KDF_ITERATIONS} iterations`);
  const material = await subtle().importKey('raw', utf8(password.normalize('NFC')), 'PBKDF2', false, ['deriveKey']);
  return subtle().deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt, iterations },
    material,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/** A raw 32-byte room key (e.g. from a QR code) as a non-extractable key. */
export async function importRoomKey(raw) {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) throw new TypeError('a raw room key is 32 bytes');
  return subtle().importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
}

/** The device key for layer 2: generated once, never extractable. */
export const generateDeviceKey = () =>
  subtle().generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);

const newIv = () => globalThis.crypto.getRandomValues(new Uint8Array(12));

/** The AAD of a document: everything the server could swap or change. */
export const documentAad = (room, collection, id, timestamp, deleted) =>
  utf8(JSON.stringify([FORMAT, room, collection, id, timestamp, !!deleted]));

/**
 * The server form of a document: only `{id, timestamp, _deleted, kv, iv,
 * ciphertext}`. A tombstone is encrypted too (an empty body), so the server
 * cannot forge a delete.
 * @param {CryptoKey} key
 * @param {{room: string, collection: string, id: string, timestamp: number, deleted?: boolean, fields?: object}} doc
 */
export async function encryptDocument(key, { room, collection, id, timestamp, deleted = false, fields = {} }) {
  const iv = newIv();
  const body = deleted ? '{}' : JSON.stringify(fields);
  const ciphertext = await subtle().encrypt(
    { name: 'AES-GCM', iv, additionalData: documentAad(room, collection, id, timestamp, deleted) },
    key,
    utf8(body),
  );
  const doc = { id, timestamp };
  if (deleted) doc._deleted = true;
  doc.kv = KEY_VERSION;
  doc.iv = toBase64(iv);
  doc.ciphertext = toBase64(new Uint8Array(ciphertext));
  return doc;
}

/**
 * The fields of a server document, or TamperedError when it does not
 * authenticate under this room, collection and id (or is malformed).
 * @returns {Promise<{id: string, timestamp: number, deleted: boolean, fields: object}>}
 */
export async function decryptDocument(key, room, collection, doc) {
  const { id, timestamp } = doc;
  const deleted = doc._deleted === true;
  if (typeof doc.iv !== 'string' || typeof doc.ciphertext !== 'string') {
    throw new TamperedError(`document ${collection}/${id} is not encrypted`);
  }
  if (doc.kv !== undefined && doc.kv !== KEY_VERSION) {
    throw new TamperedError(`document ${collection}/${id} uses unknown key version ${doc.kv}`);
  }
  let plain;
  try {
    const iv = fromBase64(doc.iv);
    if (iv.length !== 12) throw new Error('bad iv');
    plain = await subtle().decrypt(
      { name: 'AES-GCM', iv, additionalData: documentAad(room, collection, id, timestamp, deleted) },
      key,
      fromBase64(doc.ciphertext),
    );
  } catch {
    throw new TamperedError(`document ${collection}/${id} failed authentication`);
  }
  let fields;
  try {
    fields = JSON.parse(fromUtf8(plain));
  } catch {
    throw new TamperedError(`document ${collection}/${id} has an unreadable body`);
  }
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
    throw new TamperedError(`document ${collection}/${id} has an unreadable body`);
  }
  return { id, timestamp, deleted, fields };
}

const keyCheckAad = (room, salt) => utf8(JSON.stringify([FORMAT, room, 'key-check', salt]));

/** A known plaintext under the room key: tells a wrong password from tampering. */
export async function makeKeyCheck(key, room, salt) {
  const iv = newIv();
  const ct = await subtle().encrypt({ name: 'AES-GCM', iv, additionalData: keyCheckAad(room, salt) }, key, utf8(KEY_CHECK_TEXT));
  return { iv: toBase64(iv), ciphertext: toBase64(new Uint8Array(ct)) };
}

/** Throws WrongPasswordError unless `key` opens the room's key check. */
export async function verifyKeyCheck(key, room, salt, check) {
  try {
    const plain = await subtle().decrypt(
      { name: 'AES-GCM', iv: fromBase64(check.iv), additionalData: keyCheckAad(room, salt) },
      key,
      fromBase64(check.ciphertext),
    );
    if (fromUtf8(plain) === KEY_CHECK_TEXT) return;
  } catch {
    // fall through
  }
  throw new WrongPasswordError();
}

/**
 * Layer 2: `value` (any JSON) encrypted under the device key, bound to
 * `where` (the record's key), for IndexedDB.
 * @returns {Promise<{iv: Uint8Array, data: ArrayBuffer}>}
 */
export async function seal(deviceKey, where, value) {
  const iv = newIv();
  const data = await subtle().encrypt(
    { name: 'AES-GCM', iv, additionalData: utf8(where) },
    deviceKey,
    utf8(JSON.stringify(value)),
  );
  return { iv, data };
}

/** The value `seal` stored at `where`; TamperedError if it does not open. */
export async function unseal(deviceKey, where, record) {
  let plain;
  try {
    plain = await subtle().decrypt({ name: 'AES-GCM', iv: record.iv, additionalData: utf8(where) }, deviceKey, record.data);
  } catch {
    throw new TamperedError(`local record ${where} failed authentication`);
  }
  return JSON.parse(fromUtf8(plain));
}
