// The roomsync HTTP API of one room (shared/PROTOCOL.md): pull, push,
// history and the stream's URL. Errors become ApiError with the server's
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
    this.requests = { pull: 0, push: 0, history: 0, stream: 0 };
  }

  async #token() {
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  async #request(kind, path, init = {}) {
    this.requests[kind]++;
    const token = await this.#token();
    const headers = { ...(init.headers ?? {}) };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    let text;
    try {
      const signal = AbortSignal.timeout(this.timeoutMs);
      response = await this.fetch(`${this.base}${path}`, { ...init, headers, cache: 'no-store', signal });
      text = await response.text();
    } catch (error) {
      const what = error?.name === 'TimeoutError' ? `no answer in ${this.timeoutMs} ms` : (error?.message ?? error);
      throw new ApiError(0, 'network', `network error: ${what}`);
    }
    if (!response.ok) {
      let code = 'http_error';
      let message = `HTTP ${response.status}`;
      try {
        const body = JSON.parse(text);
        code = body?.error?.code ?? code;
        message = body?.error?.message ?? message;
      } catch {
        // not JSON (a proxy's page): keep the status
      }
      throw new ApiError(response.status, code, message, retryAfter(response));
    }
    try {
      return JSON.parse(text);
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
