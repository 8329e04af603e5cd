// One Store::Commit call waiting in (or being committed by) a commit group
// (storage/group_queue.h). Lives on the caller's stack; the views stay
// valid while the caller waits.
#ifndef ROOMSYNC_STORAGE_COMMIT_REQUEST_H_
#define ROOMSYNC_STORAGE_COMMIT_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "storage/store.h"

namespace roomsync::storage_internal {

struct CommitRequest {
  CommitRequest(std::string_view room, const CommitFence& fence,
                std::span<const StoredDocument> documents, int64_t stored_bytes_delta,
                uint64_t digest_delta = 0);

  // The seq the room's last_seq becomes.
  Seq NewLastSeq() const {
    return documents.empty() ? fence.expected_last_seq : documents.back().seq;
  }

  std::string_view room;
  CommitFence fence;
  std::span<const StoredDocument> documents;
  int64_t stored_bytes_delta;  // added to rooms.stored_bytes (store.h)
  uint64_t digest_delta;       // XORed into rooms.digest (store.h)
  size_t bytes;                // what the request adds to a group's size bound
  // CreateRoomAndCommit: the epoch to create the room with ("" for a
  // Commit), and the room's head when it existed (nothing written).
  std::string_view create_epoch;
  std::optional<RoomHead> existing;
  absl::Status result;         // written by the group's leader before `done`
  bool done = false;           // guarded by the queue's mutex
};

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_COMMIT_REQUEST_H_
