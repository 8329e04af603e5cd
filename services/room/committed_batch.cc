#include "services/room/committed_batch.h"

#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {

void ToProto(const StoredDocument& doc, v1::Document* out) {
  out->set_id(doc.id);
  out->set_collection(doc.collection);
  out->set_timestamp(doc.timestamp_ms);
  out->set_deleted(doc.deleted);
  out->set_seq(doc.seq);
  out->set_json(doc.json);
}

std::shared_ptr<const v1::SubscribeEvent> CommittedBatch::EventFor(
    std::string_view collection) const {
  absl::MutexLock lock(&mu_);
  return EventForLocked(collection);
}

std::shared_ptr<const v1::WatchEvent> CommittedBatch::WatchEventFor(std::string_view room) const {
  absl::MutexLock lock(&mu_);
  if (watch_event_ != nullptr) return watch_event_;
  std::shared_ptr<const v1::SubscribeEvent> all = EventForLocked("");
  if (all == nullptr) return nullptr;
  auto event = std::make_shared<v1::WatchEvent>();
  event->set_room(std::string(room));
  *event->mutable_changes() = all->changes();
  watch_event_ = std::move(event);
  return watch_event_;
}

std::shared_ptr<const v1::SubscribeEvent> CommittedBatch::EventForLocked(
    std::string_view collection) const {
  auto [it, inserted] = events_.try_emplace(std::string(collection));
  if (!inserted) return it->second;
  auto event = std::make_shared<v1::SubscribeEvent>();
  v1::ChangeBatch* changes = event->mutable_changes();
  for (const SharedDocument& doc : documents_) {
    if (!collection.empty() && doc->collection != collection) continue;
    ToProto(*doc, changes->add_documents());
  }
  if (changes->documents_size() == 0) return nullptr;  // cached as "nothing for them"
  changes->mutable_checkpoint()->set_seq(
      changes->documents(changes->documents_size() - 1).seq());
  changes->mutable_checkpoint()->set_epoch(epoch_);
  // Only a subscriber of every collection holds what the digest covers.
  if (collection.empty() && digest_after_.has_value()) {
    changes->mutable_checkpoint()->set_digest(*digest_after_);
  }
  it->second = std::move(event);
  return it->second;
}

}  // namespace roomsync
