// Retry delays: exponential with "equal jitter" (half fixed, half random),
// so a thousand clients that failed together do not retry together, and no
// retry comes immediately.

export class Backoff {
  /** @param {{baseMs?: number, maxMs?: number, random?: () => number}} [options] */
  constructor({ baseMs = 500, maxMs = 30_000, random = Math.random } = {}) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.random = random;
    this.attempt = 0;
  }

  /** The next delay in ms; a server's Retry-After is a floor. */
  next(retryAfterMs = 0) {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    const delay = ceiling / 2 + this.random() * (ceiling / 2);
    return Math.max(delay, Math.min(retryAfterMs ?? 0, 5 * this.maxMs));
  }

  reset() {
    this.attempt = 0;
  }
}
