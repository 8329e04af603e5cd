// Checks every Store implementation applies to its arguments before
// touching the database, so that both backends reject the same requests
// with the same code (kInvalidArgument) instead of failing in
// backend-specific ways deep inside a transaction.
#ifndef ROOMSYNC_STORAGE_REQUEST_CHECKS_H_
#define ROOMSYNC_STORAGE_REQUEST_CHECKS_H_

#include <span>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "storage/store.h"

namespace roomsync::storage_internal {

// Room, collection and document ids are stored as text: they must be valid
// UTF-8 without NUL bytes (libpq passes text as C strings, so a NUL would
// silently truncate the key), and the room must not be empty.
absl::Status CheckRoom(std::string_view room);
absl::Status CheckKey(std::string_view collection, std::string_view id);

// The documents' keys and their seqs as store.h's Commit requires:
// fence.expected_last_seq + 1, + 2, ... in order.
absl::Status CheckCommit(std::string_view room, const CommitFence& fence,
                         std::span<const StoredDocument> documents);

// An import's head and documents as store.h's ImportRoom requires: seqs
// strictly ascending within 1..head.last_seq, valid names and epoch, and
// no key twice (checked here so both backends answer kInvalidArgument).
absl::Status CheckImport(std::string_view room, const RoomHead& head,
                         std::span<const StoredDocument> documents);

// limit > 0 and a valid collection filter.
absl::Status CheckRead(std::string_view room, const ReadRange& range);
// A shard lease call: shard >= 0, an owner (node id), a positive ttl.
absl::Status CheckLeaseRequest(int shard, std::string_view owner, int64_t ttl_ms);

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_REQUEST_CHECKS_H_
