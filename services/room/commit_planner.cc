#include "services/room/commit_planner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "protocol/error_codes.h"
#include "storage/document_digest.h"
#include "services/room/room_metrics.h"

namespace roomsync {
namespace {

std::string KeyOf(std::string_view collection, std::string_view id) {
  std::string key;
  key.reserve(collection.size() + 1 + id.size());
  key.append(collection).push_back('\0');  // names cannot contain NUL
  key.append(id);
  return key;
}

int64_t SizeOf(const std::shared_ptr<StoredDocument>& doc) {
  return doc == nullptr ? 0 : static_cast<int64_t>(doc->json.size());
}

uint64_t DigestOf(const std::shared_ptr<StoredDocument>& doc) {
  return doc == nullptr ? 0 : DocumentDigest(*doc);
}

}  // namespace

GroupKeys CollectKeys(const std::vector<const PushPlan*>& pushes) {
  GroupKeys keys;
  for (const PushPlan* push : pushes) {
    for (const IncomingDocument& item : push->items) {
      auto [it, inserted] =
          keys.index.try_emplace(KeyOf(push->collection, item.envelope.id), keys.keys.size());
      if (inserted) keys.keys.push_back(DocumentKey{push->collection, item.envelope.id});
    }
  }
  return keys;
}

PlannedCommit PlanCommit(const std::vector<const PushPlan*>& pushes, const GroupKeys& keys,
                         std::vector<std::optional<StoredDocument>> stored,
                         const RoomHead& head, int64_t max_room_bytes, RoomMetrics* metrics,
                         bool maintain_digest) {
  PlannedCommit plan;
  plan.outcomes.resize(pushes.size());
  plan.refusals.resize(pushes.size());
  const size_t n = keys.keys.size();
  // current[k]: the state of key k as the items decided so far leave it.
  std::vector<std::shared_ptr<StoredDocument>> current(n);
  for (size_t k = 0; k < n; ++k) {
    if (stored[k].has_value()) current[k] = std::make_shared<StoredDocument>(std::move(*stored[k]));
  }
  std::vector<size_t> last_write(n, 0);  // order of each key's last accept, 0 = none
  size_t writes = 0;
  for (size_t p = 0; p < pushes.size(); ++p) {
    const PushPlan& push = *pushes[p];
    // What this push changed, to take it back if it breaks the quota.
    std::vector<std::pair<size_t, std::shared_ptr<StoredDocument>>> undo_state;
    std::vector<std::pair<size_t, size_t>> undo_order;
    int64_t delta = 0;
    // XOR telescopes: a key written twice in the group adds its stored
    // state's digest, its first state's twice (cancelling) and its last.
    uint64_t digest_delta = 0;
    for (const IncomingDocument& item : push.items) {
      size_t k = keys.index.at(KeyOf(push.collection, item.envelope.id));
      Decision decision = Decide(push.policy, current[k].get(), item);
      metrics->CountDecision(push.policy, decision);
      if (decision == Decision::kConflict) {
        plan.outcomes[p].conflicts.push_back(current[k]);
      } else if (decision == Decision::kAccept) {
        auto doc = std::make_shared<StoredDocument>();
        doc->collection = push.collection;
        doc->id = item.envelope.id;
        doc->timestamp_ms = item.envelope.timestamp_ms;
        doc->deleted = item.envelope.deleted;
        doc->json = item.json;  // kept: a retry after kAborted decides again
        delta += SizeOf(doc) - SizeOf(current[k]);
        if (maintain_digest) digest_delta ^= DigestOf(doc) ^ DigestOf(current[k]);
        undo_state.emplace_back(k, std::move(current[k]));
        undo_order.emplace_back(k, last_write[k]);
        current[k] = std::move(doc);
        last_write[k] = ++writes;
        ++plan.outcomes[p].accepted;
      }
    }
    if (max_room_bytes > 0 && delta > 0 &&
        head.stored_bytes + plan.stored_bytes_delta + delta > max_room_bytes) {
      // Undo in reverse, so a key written twice gets its first state back.
      for (auto it = undo_state.rbegin(); it != undo_state.rend(); ++it) current[it->first] = it->second;
      for (auto it = undo_order.rbegin(); it != undo_order.rend(); ++it) last_write[it->first] = it->second;
      plan.outcomes[p] = PushOutcome{};
      plan.refusals[p] = WithErrorCode(
          absl::ResourceExhaustedError(absl::StrCat(
              "the room's quota of ", max_room_bytes, " stored bytes would be exceeded (",
              head.stored_bytes + plan.stored_bytes_delta, " stored, this push adds ", delta, ")")),
          "room_quota_exceeded");
      metrics->CountQuotaRefusal();
      continue;
    }
    plan.stored_bytes_delta += delta;
    plan.digest_delta ^= digest_delta;
  }
  // One row per written key, at the position of its last accepted write,
  // so seqs are gap-free and follow the order of the pushes.
  std::vector<size_t> order;
  for (size_t k = 0; k < n; ++k) if (last_write[k] != 0) order.push_back(k);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return last_write[a] < last_write[b]; });
  Seq seq = head.last_seq;
  for (size_t k : order) {
    current[k]->seq = ++seq;
    plan.writes.push_back(current[k]);
  }
  return plan;
}

}  // namespace roomsync
