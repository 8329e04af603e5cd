// An EventSource over fetch: the same interface the room uses (onopen,
// onmessage, onerror, readyState, close) and the same reconnect rules
// (Last-Event-ID, the server's `retry:`), plus what EventSource cannot do:
// see the server's `: keep-alive` comments. A stream that delivers no byte
// at all for `staleMs` is dead even if the socket looks open (a laptop
// that slept, a NAT that dropped the mapping, a proxy that buffers); it is
// aborted and reopened with Last-Event-ID, so no change is lost and the
// room notices within a bounded time. The server sends a comment at least
// every 15 s (PROTOCOL.md), so the default of 45 s is three missed ones.
//
// Parsing follows the HTML standard's event-stream rules: lines end in
// CRLF, LF or CR; `data` lines join with LF; `id` without NUL sets the last
// event id; `retry` with digits sets the reconnect delay; a blank line
// dispatches; only events of type `message` reach onmessage.

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

export const DEFAULT_STALE_MS = 45000;
const DEFAULT_RETRY_MS = 1000;
// One event's data: far above the gateway's largest frame, a bound on what
// a broken or hostile stream can make this tab buffer.
const MAX_EVENT_BYTES = 64 << 20;

export class FetchEventSource {
  static CONNECTING = CONNECTING;
  static OPEN = OPEN;
  static CLOSED = CLOSED;

  /**
   * @param {string} url
   * @param {{fetch?: typeof fetch, staleMs?: number, retryMs?: number}} [options]
   */
  constructor(url, { fetch = globalThis.fetch.bind(globalThis), staleMs = DEFAULT_STALE_MS, retryMs = DEFAULT_RETRY_MS } = {}) {
    this.url = url;
    this.readyState = CONNECTING;
    this.lastEventId = '';
    this.onopen = null;
    this.onmessage = null;
    this.onerror = null;
    this.fetch = fetch;
    this.staleMs = staleMs;
    this.retryMs = retryMs;
    this.abort = null;
    this.staleTimer = null;
    this.retryTimer = null;
    this.#connect();
  }

  close() {
    this.readyState = CLOSED;
    clearTimeout(this.retryTimer);
    this.#stopWatchdog();
    this.abort?.abort();
    this.abort = null;
  }

  async #connect() {
    if (this.readyState === CLOSED) return;
    const abort = new AbortController();
    this.abort = abort;
    const headers = { Accept: 'text/event-stream' };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    this.#armWatchdog(abort);
    let response;
    try {
      response = await this.fetch(this.url, { headers, cache: 'no-store', signal: abort.signal });
    } catch {
      this.#lost(abort);
      return;
    }
    if (abort.signal.aborted || this.readyState === CLOSED) return;
    const type = response.headers.get('content-type') ?? '';
    if (response.status !== 200 || !type.toLowerCase().startsWith('text/event-stream') || !response.body) {
      // As EventSource: anything but a 200 event stream fails the
      // connection for good; the owner decides whether to open a new one.
      this.#stopWatchdog();
      abort.abort();
      this.readyState = CLOSED;
      this.onerror?.({ type: 'error', status: response.status });
      return;
    }
    this.readyState = OPEN;
    this.onopen?.({ type: 'open' });
    try {
      await this.#read(response.body, abort);
    } catch {
      // aborted by the watchdog or close(), or the connection broke
    }
    this.#lost(abort);
  }

  async #read(body, abort) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let data = [];
    let dataBytes = 0;
    let eventType = '';
    let eventId = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done || abort.signal.aborted || this.readyState === CLOSED) {
        reader.cancel().catch(() => {});
        return;
      }
      this.#armWatchdog(abort); // any byte, a keep-alive comment too, is life
      buffer += decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        const lf = buffer.indexOf('\n', start);
        const cr = buffer.indexOf('\r', start);
        let end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
        if (end < 0) break;
        // A CR at the very end may be the first half of a CRLF: wait.
        if (end === cr && cr === buffer.length - 1) break;
        const line = buffer.slice(start, end);
        start = end + (buffer[end] === '\r' && buffer[end + 1] === '\n' ? 2 : 1);
        if (line === '') {
          if (eventId !== null) this.lastEventId = eventId;
          if (data.length && (eventType === '' || eventType === 'message')) {
            this.onmessage?.({ type: 'message', data: data.join('\n'), lastEventId: this.lastEventId });
            if (this.readyState === CLOSED || abort.signal.aborted) return;
          }
          data = [];
          dataBytes = 0;
          eventType = '';
          eventId = null;
          continue;
        }
        if (line[0] === ':') continue; // a comment: the keep-alive
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? '' : line.slice(colon + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'data') {
          dataBytes += v.length;
          if (dataBytes > MAX_EVENT_BYTES) throw new Error('event stream: an event above 64 MiB');
          data.push(v);
        } else if (field === 'event') eventType = v;
        else if (field === 'id') {
          if (!v.includes('\0')) eventId = v;
        } else if (field === 'retry') {
          if (/^\d+$/.test(v)) this.retryMs = Number(v);
        }
      }
      buffer = buffer.slice(start);
      if (buffer.length > MAX_EVENT_BYTES) throw new Error('event stream: a line above 64 MiB');
    }
  }

  // The connection ended (server closed, network broke, watchdog): tell the
  // owner, then reconnect after the retry delay with Last-Event-ID, as
  // EventSource does.
  #lost(abort) {
    if (abort !== this.abort || this.readyState === CLOSED) return;
    this.#stopWatchdog();
    abort.abort();
    this.abort = null; // the read loop's own call after the abort is a no-op
    this.readyState = CONNECTING;
    this.onerror?.({ type: 'error' });
    if (this.readyState === CLOSED) return; // closed by onerror
    this.retryTimer = setTimeout(() => this.#connect(), this.retryMs);
  }

  #armWatchdog(abort) {
    clearTimeout(this.staleTimer);
    if (!(this.staleMs > 0)) return;
    this.staleTimer = setTimeout(() => {
      if (abort === this.abort) this.#lost(abort);
    }, this.staleMs);
  }

  #stopWatchdog() {
    clearTimeout(this.staleTimer);
    this.staleTimer = null;
  }
}
