// Room's encrypted snapshots (docs/api.md, "Snapshots"): stored and read
// on the executor, beside the room's commits. Storing needs no place in the
// writer's queue: the store checks the snapshot's checkpoint against the
// room's head atomically. Only a compaction asked with it goes through the
// writer (Room::Compact), as every change of the room's head does.
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/room/room.h"
#include "services/room/room_metrics.h"

namespace roomsync {
namespace {

// A checkpoint the client cannot have been handed: a clear 400, not the
// store's FAILED_PRECONDITION (which the gateway reads as "wrong owner").
absl::Status CheckSnapshotPosition(const RoomSnapshot& snapshot, const RoomHead& head) {
  if (snapshot.epoch != head.epoch) {
    return absl::InvalidArgumentError(
        "the snapshot's checkpoint is of another epoch of the room (it was re-created or "
        "restored): pull again and snapshot the new state");
  }
  if (snapshot.seq > head.last_seq) {
    return absl::InvalidArgumentError(absl::StrCat("the snapshot's checkpoint seq ", snapshot.seq,
                                                   " is above the room's last seq ",
                                                   head.last_seq));
  }
  return absl::OkStatus();
}

}  // namespace

void Room::PutSnapshot(RoomSnapshot snapshot, bool compact, SnapshotDone done) {
  {
    absl::MutexLock lock(&mu_);
    Touch();
  }
  boost::asio::post(*context_.executor, [self = shared_from_this(),
                                         snapshot = std::move(snapshot), compact,
                                         done = std::move(done)]() mutable {
    absl::StatusOr<RoomHead> head = self->LoadHead();
    if (!head.ok()) return std::move(done)(head.status());
    if (absl::Status s = CheckSnapshotPosition(snapshot, *head); !s.ok()) {
      return std::move(done)(s);
    }
    SnapshotOutcome outcome{snapshot.seq, snapshot.epoch,
                            static_cast<int64_t>(snapshot.bytes.size()),
                            absl::ToUnixMillis(absl::Now()), std::nullopt};
    absl::Status stored = self->context_.store->PutSnapshot(self->name_, snapshot,
                                                            self->context_.config->snapshots_kept);
    if (stored.code() == absl::StatusCode::kFailedPrecondition) {
      // Our head was stale (another writer, an import): the store's head
      // refused it. Still the client's checkpoint that does not fit.
      stored = absl::InvalidArgumentError(
          absl::StrCat("the snapshot's checkpoint does not fit the room: ", stored.message()));
    }
    if (!stored.ok() || !compact) {
      if (!stored.ok()) return std::move(done)(stored);
      return std::move(done)(std::move(outcome));
    }
    // Any age, but only what the snapshot covers: a reader below its seq
    // starts over (PROTOCOL.md's reset), live documents stay.
    const Seq through = outcome.seq;
    self->Compact(
        INT64_MAX,
        [outcome = std::move(outcome),
         done = std::move(done)](absl::StatusOr<CompactionResult> result) mutable {
          if (!result.ok()) return std::move(done)(result.status());
          outcome.compaction = *result;
          std::move(done)(std::move(outcome));
        },
        through);
  });
}

void Room::NewestSnapshot(NewestSnapshotDone done) {
  {
    absl::MutexLock lock(&mu_);
    Touch();
  }
  boost::asio::post(*context_.executor, [self = shared_from_this(), done = std::move(done)]() mutable {
    absl::StatusOr<std::optional<RoomSnapshot>> snapshot =
        self->context_.store->NewestSnapshot(self->name_);
    if (!snapshot.ok()) self->context_.metrics->CountStoreError(StoreOp::kRead);
    std::move(done)(std::move(snapshot));
  });
}

}  // namespace roomsync
