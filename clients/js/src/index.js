// @roomsync/client: a local-first, end-to-end encrypted room store for roomsync.
export { openRoom, Room, PasswordRequiredError, DEFAULT_COLLECTIONS } from './room.js';
export { openFallbackRoom } from './fallback.js';
export { shouldEnableLocalFirst, rolloutBucket, stableHash } from './rollout.js';
export {
  deriveRoomKey,
  importRoomKey,
  encryptDocument,
  decryptDocument,
  TamperedError,
  WrongPasswordError,
  KDF_ITERATIONS,
} from './crypto.js';
export { ApiError, RoomApi } from './http_api.js';
export { IndexedDbLocalDb, MemoryLocalDb } from './local_db.js';
export { documentDigest, formatDigest, rawDocumentTexts, storedJsonOf, ReplicaDigest } from './digest.js';
export { collectRoomState, decryptSnapshot, encryptSnapshot, snapshotText } from './snapshot.js';
