// The room digest (docs/api.md, "Room digest"): the server sends, in a
// checkpoint at the room's head, an order-independent checksum of the
// room's live documents over the bytes it stores; a replica that keeps the
// same checksum of what it received knows, without downloading anything,
// whether it holds exactly the server's state.
//
// Each live document contributes the first 8 bytes (big-endian) of
//   SHA-256( u32be(len collection) collection u32be(len id) id
//            i64be(timestamp) storedJson )
// and the room's digest is the XOR of the contributions. storedJson is the
// document object exactly as the server stores it: the response's own text
// of it, without the "_collection" member the server splices in front
// (re-encoding a parsed object would not give the same bytes in general).

const encoder = new TextEncoder();

/** Contribution of one document state; 0n for a tombstone. */
export async function documentDigest(collection, id, timestamp, deleted, storedJson) {
  if (deleted) return 0n;
  const c = encoder.encode(collection);
  const i = encoder.encode(id);
  const j = encoder.encode(storedJson);
  const bytes = new Uint8Array(4 + c.length + 4 + i.length + 8 + j.length);
  const view = new DataView(bytes.buffer);
  let at = 0;
  view.setUint32(at, c.length);
  bytes.set(c, (at += 4));
  view.setUint32((at += c.length), i.length);
  bytes.set(i, (at += 4));
  view.setBigInt64((at += i.length), BigInt(timestamp));
  bytes.set(j, (at += 8));
  const hash = new DataView(await crypto.subtle.digest('SHA-256', bytes));
  return hash.getBigUint64(0);
}

/** 16 lowercase hex digits, as checkpoints carry it. */
export function formatDigest(value) {
  return value.toString(16).padStart(16, '0');
}

// Index of the character after the JSON string starting at text[at] ('"').
function skipString(text, at) {
  for (let k = at + 1; k < text.length; k++) {
    const ch = text.charCodeAt(k);
    if (ch === 0x5c) k++; // backslash: skip the escaped character
    else if (ch === 0x22) return k + 1;
  }
  throw new Error('unterminated JSON string');
}

// Index of the character after the JSON object starting at text[at] ('{').
function skipObject(text, at) {
  let depth = 0;
  for (let k = at; k < text.length; k++) {
    const ch = text[k];
    if (ch === '"') k = skipString(text, k) - 1;
    else if (ch === '{' || ch === '[') depth++;
    else if ((ch === '}' || ch === ']') && --depth === 0) return k + 1;
  }
  throw new Error('unterminated JSON object');
}

/**
 * The text of each member of the "documents" array of a pull response or a
 * stream event body, as the server sent it. Both start with
 * `{"documents":[`; anything else gives [] (the caller then cannot check).
 */
export function rawDocumentTexts(body) {
  const head = '{"documents":[';
  if (!body.startsWith(head)) return [];
  const out = [];
  let at = head.length;
  for (;;) {
    while (at < body.length && ' \t\r\n,'.includes(body[at])) at++;
    if (body[at] !== '{') return out; // ']' ends the array
    const end = skipObject(body, at);
    out.push(body.slice(at, end));
    at = end;
  }
}

/** A returned document's text without the "_collection" member spliced in front. */
export function storedJsonOf(raw) {
  const splice = '{"_collection":';
  if (!raw.startsWith(splice)) return raw;
  let at = skipString(raw, splice.length);
  if (raw[at] === ',') at++;
  return `{${raw.slice(at)}`;
}

/**
 * A replica's digest: each key's contribution as last received, and their
 * XOR. Keys are the caller's (e.g. collection + NUL + id). Contributions
 * are hex strings so that the map can be persisted as it is.
 */
export class ReplicaDigest {
  constructor(entries = []) {
    this.parts = new Map(entries);
    this.value = 0n;
    for (const hex of this.parts.values()) this.value ^= BigInt(`0x${hex}`);
  }

  /** Records a server state of `key`; returns the new hex contribution. */
  set(key, contribution) {
    const old = this.parts.get(key);
    if (old !== undefined) this.value ^= BigInt(`0x${old}`);
    if (contribution === 0n) {
      this.parts.delete(key);
      return null;
    }
    const hex = formatDigest(contribution);
    this.parts.set(key, hex);
    this.value ^= contribution;
    return hex;
  }

  clear() {
    this.parts.clear();
    this.value = 0n;
  }

  hex() {
    return formatDigest(this.value);
  }

  /** Whether this replica holds what `checkpoint.digest` says; undefined when it says nothing. */
  matches(checkpoint) {
    if (typeof checkpoint?.digest !== 'string') return undefined;
    return checkpoint.digest === this.hex();
  }
}
