// An in-process stand-in for the roomsync HTTP API (shared/PROTOCOL.md)
// for the replication state machine's unit tests: it can fail requests,
// answer RESYNC and change its epoch on demand, which the real server does
// only under faults. The browser suite runs against the real binary.

export class FakeServer {
  constructor({ policies = {} } = {}) {
    this.docs = new Map(); // `${collection}:${id}` → {collection, id, seq, timestamp, deleted, text}
    this.seq = 0;
    this.epoch = 'e1';
    this.compactedThrough = 0;
    this.policies = policies;
    this.failures = []; // queue of {match: (url, init) => bool, status, code}
    this.requests = [];
    this.streams = new Set();
    const server = this;
    this.fetch = (url, init) => server.#fetch(url, init);
    this.EventSource = class {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        server.requests.push({ method: 'GET', url });
        queueMicrotask(() => server.#openStream(this));
      }
      close() {
        this.readyState = 2;
        server.streams.delete(this);
      }
    };
  }

  /** The next request matching `match` fails with `status` (0: network error). */
  failNext(match, status, code = 'unavailable', times = 1) {
    for (let i = 0; i < times; i++) this.failures.push({ match, status, code });
  }

  /** Sends RESYNC to every open stream. */
  resync() {
    for (const es of this.streams) es.onmessage?.({ data: '"RESYNC"' });
  }

  /** The room is re-created: empty, new epoch. */
  recreate(epoch) {
    this.docs.clear();
    this.seq = 0;
    this.epoch = epoch;
  }

  /** Removes every tombstone, as `roomsyncctl compact --older-than 0s`. */
  compact() {
    for (const [key, d] of this.docs) {
      if (!d.deleted) continue;
      this.docs.delete(key);
      this.compactedThrough = Math.max(this.compactedThrough, d.seq);
    }
  }

  // docs/api.md, Compaction: a checkpoint below compacted_through goes on
  // only if it was handed out after the last compaction.
  #continues(cp) {
    return cp.seq >= this.compactedThrough || cp.compacted === this.compactedThrough;
  }

  #checkpoint(seq) {
    return this.compactedThrough ? { seq, epoch: this.epoch, compacted: this.compactedThrough } : { seq, epoch: this.epoch };
  }

  /** Stores a document as if another client pushed it. */
  put(collection, doc) {
    return this.#store(collection, doc, JSON.stringify(doc));
  }

  pulls() {
    return this.requests.filter((r) => r.url.includes('/replicate/pull?') || r.url.endsWith('/replicate/pull'));
  }

  pushes() {
    return this.requests.filter((r) => r.method === 'POST');
  }

  #openStream(es) {
    if (es.readyState === 2) return;
    const url = new URL(es.url);
    const cp = url.searchParams.get('checkpoint');
    es.readyState = 1;
    this.streams.add(es);
    es.onopen?.();
    const after = this.#after(cp ? JSON.parse(cp) : null);
    if (after === null) {
      es.onmessage?.({ data: '"RESYNC"' });
      return;
    }
    const docs = this.#since(after, Infinity);
    if (docs.length) this.#deliver(es, docs);
  }

  #deliver(es, docs) {
    const checkpoint = this.#checkpoint(docs[docs.length - 1].seq);
    es.onmessage?.({ data: JSON.stringify({ documents: docs.map((d) => this.#out(d)), checkpoint }), lastEventId: JSON.stringify(checkpoint) });
  }

  // seq after which to serve; 0 for another epoch (pull) or null (stream: RESYNC)
  #after(cp, forStream = true) {
    if (!cp) return 0;
    if (cp.epoch !== this.epoch || !this.#continues(cp)) return forStream ? null : 0;
    return cp.seq;
  }

  #since(after, limit) {
    return [...this.docs.values()].filter((d) => d.seq > after).sort((a, b) => a.seq - b.seq).slice(0, limit);
  }

  #out(d) {
    return { _collection: d.collection, ...JSON.parse(d.text) };
  }

  #store(collection, doc, text) {
    const key = `${collection}:${doc.id}`;
    const entry = { collection, id: doc.id, seq: ++this.seq, timestamp: doc.timestamp, deleted: doc._deleted === true, text };
    this.docs.set(key, entry);
    for (const es of this.streams) this.#deliver(es, [entry]);
    return entry;
  }

  async #fetch(url, init = {}) {
    const method = init.method ?? 'GET';
    this.requests.push({ method, url, body: init.body });
    const failure = this.failures.findIndex((f) => f.match(url, init));
    if (failure >= 0) {
      const [f] = this.failures.splice(failure, 1);
      if (f.status === 0) throw new TypeError('fetch failed');
      if (f.status === -1) {
        // never answers: only the caller's timeout ends it
        return new Promise((_, reject) => init.signal?.addEventListener('abort', () => reject(init.signal.reason)));
      }
      return json(f.status, { error: { code: f.code, message: `injected ${f.status}` } });
    }
    const u = new URL(url);
    const path = u.pathname;
    if (path.endsWith('/replicate/pull')) {
      const cp = u.searchParams.get('checkpoint');
      const collection = u.searchParams.get('collection');
      const batch = Number(u.searchParams.get('batchSize') ?? 100);
      const parsed = cp ? JSON.parse(cp) : null;
      const after = this.#after(parsed, false);
      const reset = Boolean(parsed && parsed.seq > 0 && after === 0);
      let docs = this.#since(after, Infinity);
      if (collection) docs = docs.filter((d) => d.collection === collection);
      docs = docs.slice(0, batch);
      const checkpoint = docs.length ? this.#checkpoint(docs[docs.length - 1].seq) : parsed && !reset && parsed.epoch === this.epoch ? parsed : this.#checkpoint(0);
      const body = { documents: docs.map((d) => (collection ? JSON.parse(d.text) : this.#out(d))), checkpoint };
      if (reset) body.reset = true;
      return json(200, body);
    }
    if (path.endsWith('/replicate/push')) {
      const collection = u.searchParams.get('collection');
      const items = JSON.parse(init.body);
      const conflicts = [];
      for (const item of items) {
        const row = item.newDocumentState ? item : { newDocumentState: item, assumedMasterState: null };
        const doc = row.newDocumentState;
        const stored = this.docs.get(`${collection}:${doc.id}`);
        const text = JSON.stringify(doc);
        let accept;
        if (this.policies[collection] === 'server-wins') {
          const m = row.assumedMasterState;
          accept = stored ? !!m && m.timestamp === stored.timestamp : !m;
        } else {
          accept = !stored || doc.timestamp > stored.timestamp || (doc.timestamp === stored.timestamp && text > stored.text);
          if (stored && text === stored.text) continue; // idempotent
        }
        if (accept) this.#store(collection, doc, text);
        else conflicts.push(JSON.parse(stored.text));
      }
      return json(200, { success: true, conflicts });
    }
    if (path.endsWith('/history')) {
      const before = u.searchParams.get('before');
      const collection = u.searchParams.get('collection');
      const limit = Number(u.searchParams.get('limit') ?? 100);
      const b = before ? JSON.parse(before).seq : Infinity;
      const docs = [...this.docs.values()].filter((d) => d.seq < b && (!collection || d.collection === collection)).sort((x, y) => y.seq - x.seq).slice(0, limit);
      const next = docs.length === limit ? { seq: docs[docs.length - 1].seq, epoch: this.epoch } : null;
      return json(200, { documents: docs.map((d) => (collection ? JSON.parse(d.text) : this.#out(d))), next });
    }
    return json(404, { error: { code: 'not_found', message: path } });
  }
}

const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
