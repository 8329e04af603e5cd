// The roomsync HTTP API of one room (shared/PROTOCOL.md): pull, push,
// history, the stream's URL, and the encrypted snapshots of docs/api.md. Errors become ApiError with the server's
// code and whether retrying can help.

/** A failed request: `status` 0 means the network, not the server, failed. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  /** True when the same request may succeed later (network, 429, 5xx). */
  get retryable() {
    return this.status === 0 || this.status === 408 || this.status === 429 || (this.status >= 500 && this.status !== 501);
  }
}

const retryAfter = (response) => {
  const value = response.headers.get('Retry-After');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
};

export class RoomApi {
  /**
   * @param {{room: string, baseUrl?: string, token?: string | (() => string | Promise<string>),
   *          fetch?: typeof fetch}} options
   */
  constructor({ room, baseUrl = '', token, fetch: fetchImpl, timeoutMs = 30_000 }) {
    this.room = room;
    this.base = `${baseUrl.replace(/\/$/, '')}/v1/rooms/${encodeURIComponent(room)}`;
    this.token = token;
    // A request that never answers (a dead proxy, a captive portal) must
    // not hold the pull/push loops forever: it fails and is retried.
    this.timeoutMs = timeoutMs;
    this.fetch = fetchImpl ?? globalThis.fetch.bind(globalThis);
    /** Requests sent, by endpoint: what the benchmarks count. */
    this.requests = { pull: 0, push: 0, history: 0, stream: 0, snapshot: 0 };
  }

  async #token() {
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  // The response and its body (text, or bytes with `binary`); ApiError for
  // the network or a status other than 2xx (and `allow`).
  async #send(kind, path, init = {}, { binary = false, allow = [] } = {}) {
    this.requests[kind]++;
    const token = await this.#token();
    const headers = { ...(init.headers ?? {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    let body;
    try {
      const signal = AbortSignal.timeout(this.timeoutMs);
      response = await this.fetch(`${this.base}${path}`, { ...init, headers, cache: 'no-store', signal });
      body = binary && response.ok ? new Uint8Array(await response.arrayBuffer()) : await response.text();
    } catch (error) {
      const what = error?.name === 'TimeoutError' ? `no answer in ${this.timeoutMs} ms` : (error?.message ?? error);
      throw new ApiError(0, 'network', `network error: ${what}`);
    }
    if (!response.ok && !allow.includes(response.status)) {
      let code = 'http_error';
      let message = `HTTP ${response.status}`;
      try {
        const error = JSON.parse(body);
        code = error?.error?.code ?? code;
        message = error?.error?.message ?? message;
      } catch {
        // not JSON (a proxy's page): keep the status
      }
      throw new ApiError(response.status, code, message, retryAfter(response));
    }
    return { response, body };
  }

  async #request(kind, path, init = {}) {
    const { response, body: text } = await this.#send(kind, path, init);
    try {
      const body = JSON.parse(text);
      // The documents' own text, for the room digest (digest.js): not
      // enumerable, so the body stays what the server sent.
      if (Array.isArray(body?.documents)) Object.defineProperty(body, 'rawText', { value: text });
      return body;
    } catch {
      throw new ApiError(response.status, 'bad_response', 'the server answered with invalid JSON');
    }
  }

  /** Documents after `checkpoint` (all collections, each with _collection). */
  pull(checkpoint, batchSize = 1000, collection) {
    const q = new URLSearchParams({ batchSize: String(batchSize) });
    if (collection) q.set('collection', collection);
    if (checkpoint) q.set('checkpoint', JSON.stringify(checkpoint));
    return this.#request('pull', `/replicate/pull?${q}`);
  }

  /** Pushes RxDB rows to `collection`; resolves to `{conflicts}`. */
  push(collection, rows) {
    return this.#request('push', `/replicate/push?collection=${encodeURIComponent(collection)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(rows),
    });
  }

  /** Newest-first documents before `before` (a checkpoint) and the next page's checkpoint. */
  history(before, limit = 100, collection) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (collection) q.set('collection', collection);
    if (before) q.set('before', JSON.stringify(before));
    return this.#request('history', `/history?${q}`);
  }

  /**
   * Stores an encrypted snapshot (bytes, opaque to the server) of the
   * room's state at `checkpoint`; `compact` also removes the tombstones it
   * covers. Resolves to the server's {seq, epoch, bytes, created, compacted?}.
   */
  putSnapshot(checkpoint, bytes, { compact = false } = {}) {
    const q = new URLSearchParams({ checkpoint: JSON.stringify({ seq: checkpoint.seq, epoch: checkpoint.epoch }) });
    if (compact) q.set('compact', '1');
    return this.#request('snapshot', `/snapshots?${q}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes,
    });
  }

  /**
   * The room's newest snapshot: {bytes, checkpoint, created, etag}, or null
   * when it has none (404).
   */
  async latestSnapshot() {
    const { response, body } = await this.#send('snapshot', '/snapshots/latest', {}, { binary: true, allow: [404] });
    if (response.status === 404) return null;
    let checkpoint;
    try {
      checkpoint = JSON.parse(response.headers.get('Roomsync-Checkpoint') ?? '');
    } catch {
      throw new ApiError(response.status, 'bad_response', 'the snapshot came without a valid Roomsync-Checkpoint header');
    }
    if (!Number.isSafeInteger(checkpoint?.seq) || typeof checkpoint?.epoch !== 'string') {
      throw new ApiError(response.status, 'bad_response', 'the snapshot came without a valid Roomsync-Checkpoint header');
    }
    return {
      bytes: body,
      checkpoint: { seq: checkpoint.seq, epoch: checkpoint.epoch },
      created: Number(response.headers.get('Roomsync-Snapshot-Created') ?? 0),
      etag: response.headers.get('ETag'),
    };
  }

  /** The stream's URL; EventSource cannot send headers, so the token rides on it. */
  async streamUrl(checkpoint) {
    this.requests.stream++;
    const q = new URLSearchParams();
    if (checkpoint) q.set('checkpoint', JSON.stringify(checkpoint));
    const token = await this.#token();
    if (token) q.set('access_token', token);
    const query = q.toString();
    return `${this.base}/replicate/pull/stream${query ? `?${query}` : ''}`;
  }
}
