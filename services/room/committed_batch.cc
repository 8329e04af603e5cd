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
  it->second = std::move(event);
  return it->second;
}

}  // namespace roomsync
