#include "storage/commit_request.h"

namespace roomsync::storage_internal {
namespace {

// Per-document cost beyond its strings (row and index overhead), so that a
// group of many tiny documents is bounded too.
constexpr size_t kDocumentOverheadBytes = 64;

}  // namespace

CommitRequest::CommitRequest(std::string_view room, const CommitFence& fence,
                             std::span<const StoredDocument> documents,
                             int64_t stored_bytes_delta, uint64_t digest_delta)
    : room(room),
      fence(fence),
      documents(documents),
      stored_bytes_delta(stored_bytes_delta),
      digest_delta(digest_delta),
      bytes(room.size()) {
  for (const StoredDocument& doc : documents) {
    bytes += doc.collection.size() + doc.id.size() + doc.json.size() + kDocumentOverheadBytes;
  }
}

}  // namespace roomsync::storage_internal
