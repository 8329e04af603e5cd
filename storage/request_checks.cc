#include "storage/request_checks.h"

#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"

namespace roomsync::storage_internal {
namespace {

bool IsStorableText(std::string_view s) {
  return s.find('\0') == std::string_view::npos &&
         simdjson::validate_utf8(s.data(), s.size());
}

}  // namespace

absl::Status CheckRoom(std::string_view room) {
  if (room.empty()) return absl::InvalidArgumentError("empty room name");
  if (!IsStorableText(room)) {
    return absl::InvalidArgumentError("room name is not NUL-free UTF-8");
  }
  return absl::OkStatus();
}

absl::Status CheckKey(std::string_view collection, std::string_view id) {
  if (!IsStorableText(collection) || !IsStorableText(id)) {
    return absl::InvalidArgumentError(
        "collection or document id is not NUL-free UTF-8");
  }
  return absl::OkStatus();
}

absl::Status CheckCommit(std::string_view room, const CommitFence& fence,
                         std::span<const StoredDocument> documents) {
  if (absl::Status s = CheckRoom(room); !s.ok()) return s;
  if (fence.expected_last_seq < 0) {
    return absl::InvalidArgumentError("negative expected_last_seq");
  }
  if (fence.shard < 0 || fence.lease_epoch < 0) {
    return absl::InvalidArgumentError("negative shard or lease epoch");
  }
  Seq want = fence.expected_last_seq;
  for (const StoredDocument& doc : documents) {
    if (doc.seq != ++want) {
      return absl::InvalidArgumentError(
          "document seqs must continue the fence's last_seq without gaps");
    }
    if (absl::Status s = CheckKey(doc.collection, doc.id); !s.ok()) return s;
    // Reads take "" for every collection, and the PostgreSQL schema
    // requires a name (documents_collection_named).
    if (doc.collection.empty()) return absl::InvalidArgumentError("empty collection name");
  }
  return absl::OkStatus();
}

absl::Status CheckImport(std::string_view room, const RoomHead& head,
                         std::span<const StoredDocument> documents) {
  if (absl::Status s = CheckRoom(room); !s.ok()) return s;
  if (head.last_seq < 0) return absl::InvalidArgumentError("negative last_seq");
  // An epoch travels in every checkpoint: keep it short, printable text.
  if (head.epoch.size() > 128 || !IsStorableText(head.epoch)) {
    return absl::InvalidArgumentError("epoch must be at most 128 bytes of NUL-free UTF-8");
  }
  Seq previous = 0;
  absl::flat_hash_set<std::pair<std::string_view, std::string_view>> keys;
  keys.reserve(documents.size());
  for (const StoredDocument& doc : documents) {
    if (doc.seq <= previous || doc.seq > head.last_seq) {
      return absl::InvalidArgumentError(absl::StrCat(
          "imported seqs must ascend strictly within 1..last_seq (", head.last_seq, "); seq ",
          doc.seq, " follows ", previous));
    }
    previous = doc.seq;
    if (absl::Status s = CheckKey(doc.collection, doc.id); !s.ok()) return s;
    if (doc.collection.empty()) return absl::InvalidArgumentError("empty collection name");
    if (!keys.emplace(doc.collection, doc.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the import holds the key at seq ", doc.seq, " twice"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLeaseRequest(int shard, std::string_view owner, int64_t ttl_ms) {
  if (shard < 0) return absl::InvalidArgumentError("shard must be >= 0");
  if (owner.empty()) return absl::InvalidArgumentError("lease owner must not be empty");
  if (ttl_ms <= 0) return absl::InvalidArgumentError("lease ttl must be positive");
  return absl::OkStatus();
}

absl::Status CheckRead(std::string_view room, const ReadRange& range) {
  if (absl::Status s = CheckRoom(room); !s.ok()) return s;
  if (range.limit <= 0) return absl::InvalidArgumentError("limit must be > 0");
  return CheckKey(range.collection, "");
}

}  // namespace roomsync::storage_internal
