#include "services/room/conflict_resolver.h"

namespace roomsync {
namespace {

bool SameState(const StoredDocument& stored, const IncomingDocument& incoming) {
  return stored.timestamp_ms == incoming.envelope.timestamp_ms &&
         stored.deleted == incoming.envelope.deleted && stored.json == incoming.json;
}

Decision DecideLastWriteWins(const StoredDocument* stored, const IncomingDocument& incoming) {
  if (stored == nullptr) return Decision::kAccept;
  if (incoming.envelope.timestamp_ms > stored->timestamp_ms) return Decision::kAccept;
  if (incoming.envelope.timestamp_ms < stored->timestamp_ms) return Decision::kConflict;
  // Equal clocks: the greater object bytes win, so that every replica that
  // sees both writes, in any order, keeps the same one.
  int order = incoming.json.compare(stored->json);
  if (order > 0) return Decision::kAccept;
  if (order == 0) return Decision::kNoop;  // a retry of a write that landed
  return Decision::kConflict;
}

Decision DecideServerWins(const StoredDocument* stored, const IncomingDocument& incoming) {
  const std::optional<AssumedMaster>& assumed = incoming.assumed_master;
  if (stored == nullptr) {
    return assumed.has_value() ? Decision::kConflict : Decision::kAccept;
  }
  // A client whose push landed but whose answer was lost retries with its
  // old assumedMasterState: the state it wants is already there.
  if (SameState(*stored, incoming)) return Decision::kNoop;
  if (assumed.has_value() && assumed->timestamp_ms == stored->timestamp_ms &&
      assumed->deleted == stored->deleted) {
    return Decision::kAccept;
  }
  return Decision::kConflict;
}

}  // namespace

Decision Decide(ConflictPolicy policy, const StoredDocument* stored,
                const IncomingDocument& incoming) {
  switch (policy) {
    case ConflictPolicy::kLastWriteWins: return DecideLastWriteWins(stored, incoming);
    case ConflictPolicy::kServerWins: return DecideServerWins(stored, incoming);
  }
  return Decision::kConflict;
}

}  // namespace roomsync
