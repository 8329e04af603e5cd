// Staged rollout of the local-first path (DESIGN's migration): a stable
// per-user bucket, a beta list, and a URL override for trying it out.

/** FNV-1a 32-bit of the UTF-16 code units: stable across builds and browsers. */
export function stableHash(text) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** The user's bucket, 0–99; the same user is in the same bucket forever. */
export const rolloutBucket = (userId, salt = 'localFirst') => stableHash(`${salt}:${userId}`) % 100;

/**
 * Whether `userId` gets the local-first client.
 * - `urlFlag` (or `?localFirst=true|false` in `url`) overrides everything;
 * - users in `betaUsers` always get it;
 * - otherwise users whose bucket is below `percent` (0–100) get it.
 * @param {string} userId
 * @param {{percent?: number, betaUsers?: Iterable<string>, urlFlag?: boolean | string | null,
 *          url?: string | URL, salt?: string}} [options]
 */
export function shouldEnableLocalFirst(userId, { percent = 0, betaUsers = [], urlFlag, url, salt } = {}) {
  let flag = urlFlag;
  if (flag === undefined || flag === null) {
    const href = url ?? globalThis.location?.href;
    if (href) flag = new URL(href).searchParams.get('localFirst');
  }
  if (flag === true || flag === 'true' || flag === '1') return true;
  if (flag === false || flag === 'false' || flag === '0') return false;
  if (new Set(betaUsers).has(userId)) return true;
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  return rolloutBucket(String(userId), salt) < p;
}
