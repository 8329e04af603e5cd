// One commit's documents as the room publishes them to subscribers: shared,
// immutable, and encoded into a SubscribeEvent at most once per collection
// filter, however many subscribers receive it.
#ifndef ROOMSYNC_SERVICES_ROOM_COMMITTED_BATCH_H_
#define ROOMSYNC_SERVICES_ROOM_COMMITTED_BATCH_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/room/recent_changes.h"

namespace roomsync {
namespace v1 {
class SubscribeEvent;
class WatchEvent;
class Document;
}  // namespace v1

class CommittedBatch {
 public:
  // digest_after: the room's digest once these documents are applied, when
  // they end at the room's head (a commit, or a catch-up that reaches it);
  // nullopt for a catch-up page below the head.
  CommittedBatch(std::vector<SharedDocument> documents, std::string epoch,
                 std::optional<uint64_t> digest_after = std::nullopt)
      : documents_(std::move(documents)),
        epoch_(std::move(epoch)),
        digest_after_(digest_after) {}

  const std::vector<SharedDocument>& documents() const { return documents_; }
  const std::string& epoch() const { return epoch_; }

  // The event for subscribers of `collection` (empty = all), or nullptr when
  // none of the documents belong to it. Built on first use. Thread-safe.
  std::shared_ptr<const v1::SubscribeEvent> EventFor(std::string_view collection) const;
  // The same batch (every collection) as a Watch event of `room`, the
  // batch's room: one encoding for every Watch call that carries the room.
  std::shared_ptr<const v1::WatchEvent> WatchEventFor(std::string_view room) const;

 private:
  std::shared_ptr<const v1::SubscribeEvent> EventForLocked(std::string_view collection) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<SharedDocument> documents_;  // ascending seq
  const std::string epoch_;
  const std::optional<uint64_t> digest_after_;
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const v1::SubscribeEvent>> events_
      ABSL_GUARDED_BY(mu_);
  mutable std::shared_ptr<const v1::WatchEvent> watch_event_ ABSL_GUARDED_BY(mu_);
};

// Copies a stored document into its gRPC form.
void ToProto(const StoredDocument& doc, v1::Document* out);

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_COMMITTED_BATCH_H_
