// The conflict policies of PROTOCOL.md ("Conflict policy per collection"),
// as pure functions: given what the server holds and what a client pushes,
// decide. No I/O, no clock: the room decides every item of a group commit
// with these, in order, against the state left by the items before it.
#ifndef ROOMSYNC_SERVICES_ROOM_CONFLICT_RESOLVER_H_
#define ROOMSYNC_SERVICES_ROOM_CONFLICT_RESOLVER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "protocol/document_envelope.h"
#include "services/room/room_config.h"
#include "storage/store.h"

namespace roomsync {

// One validated push item.
struct IncomingDocument {
  DocumentEnvelope envelope;
  std::string json;  // the client's object, stored as is
  // RxDB's assumedMasterState; nullopt = null or absent ("not stored").
  std::optional<AssumedMaster> assumed_master;
};

enum class Decision {
  kAccept,    // write it (gets a new seq)
  kNoop,      // exactly the stored state again: nothing to write, no conflict
  kConflict,  // refused: the client gets the stored document
};

// `stored` is the current state of the item's key, or nullptr if none.
Decision Decide(ConflictPolicy policy, const StoredDocument* stored,
                const IncomingDocument& incoming);

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_CONFLICT_RESOLVER_H_
