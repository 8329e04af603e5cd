// The room digest (docs/api.md, "Room digest"): an order-independent
// checksum of a room's live documents over the bytes the server stores, so
// that a client can tell, without downloading anything, whether its replica
// holds exactly the server's state. The server never reads plaintext to
// compute it: it hashes the ciphertext objects as stored.
//
// Each live (not deleted) document contributes
//   DocumentDigest = the first 8 bytes, big-endian, of SHA-256 of
//     u32be(len(collection)) collection u32be(len(id)) id
//     i64be(timestamp_ms) json
// and the room's digest is the XOR of its documents' contributions (0 for a
// room without live documents). XOR makes every update an O(1) change that
// the writer computes from the states it already holds: out with the old
// state's contribution, in with the new one's; tombstones contribute
// nothing, so compacting them leaves the digest as it is.
#ifndef ROOMSYNC_STORAGE_DOCUMENT_DIGEST_H_
#define ROOMSYNC_STORAGE_DOCUMENT_DIGEST_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace roomsync {

struct StoredDocument;

// One document state's contribution to its room's digest; 0 for a
// tombstone.
uint64_t DocumentDigest(std::string_view collection, std::string_view id, int64_t timestamp_ms,
                        bool deleted, std::string_view json);
uint64_t DocumentDigest(const StoredDocument& document);

// How checkpoints carry a digest: 16 lowercase hex digits.
std::string FormatDigest(uint64_t digest);

}  // namespace roomsync

#endif  // ROOMSYNC_STORAGE_DOCUMENT_DIGEST_H_
