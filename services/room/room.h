// One active room: the serialized write path of the Durable Object it
// replaces, without a thread per room.
//
// Pushes queue up; at most one commit per room is in flight and it takes
// every queued push (group commit, as LevelDB's BuildBatchGroup), decides
// each item by the collection's policy against the stored state, writes the
// accepted ones in one transaction fenced by the room's last seq, answers
// every push only after the commit, and publishes the batch to subscribers
// in commit order. Recent changes stay in memory for catch-ups and pulls.
//
// Thread-safe. Store calls run on the context's executor, never under the
// room's lock; callbacks may run on an executor thread or inline.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/room/conflict_resolver.h"
#include "services/room/recent_changes.h"
#include "services/room/room_config.h"
#include "storage/store.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace roomsync {

class ChangeSubscriber;
class RoomMetrics;
class ShardLeaseKeeper;

// What every room of a service shares.
struct RoomContext {
  Store* store;
  const RoomServiceConfig* config;
  RoomMetrics* metrics;
  boost::asio::thread_pool* executor;  // runs blocking store calls
  // The node's shard leases (a cluster node); null: this node writes every
  // room without a lease (a single node, or a cluster without leases).
  const ShardLeaseKeeper* leases = nullptr;
};

// A validated push, ready to be decided.
struct PushPlan {
  std::string collection;
  ConflictPolicy policy = ConflictPolicy::kLastWriteWins;
  std::vector<IncomingDocument> items;
  size_t bytes = 0;
};

struct PushOutcome {
  std::vector<SharedDocument> conflicts;  // the server's state, per refused item
  int accepted = 0;
  RoomHead head;  // right after the commit
};

// A position given by a client: seq within epoch. A checkpoint of another
// epoch means "from the beginning" (pull) or "from the newest" (history).
struct ClientCheckpoint {
  Seq seq = 0;
  std::string epoch;
  // The room's compacted_through when a pull handed this checkpoint out.
  Seq compacted = 0;
  // Pull: the room's digest, set when this checkpoint is the room's head
  // and the pull covered every collection (proto Checkpoint.digest).
  std::optional<uint64_t> digest;
};

// What Room::PutSnapshot stored, and what its compaction removed.
struct SnapshotOutcome {
  Seq seq = 0;
  std::string epoch;
  int64_t bytes = 0;
  int64_t created_ms = 0;  // by this node's clock, when the store was asked
  std::optional<CompactionResult> compaction;  // when asked to compact
};

struct ReadRequest {
  std::string collection;  // empty = all
  std::optional<ClientCheckpoint> checkpoint;
  int limit = 100;
};

struct ReadResult {
  std::vector<SharedDocument> documents;
  RoomHead head;
  // Pull: the checkpoint to hand back. History: the `before` of the next
  // page, nullopt when there is no older document.
  std::optional<ClientCheckpoint> checkpoint;
  // Pull: the request's checkpoint could not be continued (another epoch,
  // or older than the room's compaction), so this is the beginning of the
  // room: a client drops what it holds that the pull from here does not
  // bring back (docs/api.md, Compaction).
  bool reset = false;
};

class Room : public std::enable_shared_from_this<Room> {
 public:
  using PushDone = absl::AnyInvocable<void(absl::StatusOr<PushOutcome>) &&>;
  using ReadDone = absl::AnyInvocable<void(absl::StatusOr<ReadResult>) &&>;
  using CompactDone = absl::AnyInvocable<void(absl::StatusOr<CompactionResult>) &&>;
  using SnapshotDone = absl::AnyInvocable<void(absl::StatusOr<SnapshotOutcome>) &&>;
  using NewestSnapshotDone =
      absl::AnyInvocable<void(absl::StatusOr<std::optional<RoomSnapshot>>) &&>;

  Room(std::string name, const RoomContext& context);
  ~Room();

  const std::string& name() const { return name_; }
  int shard() const { return shard_; }

  // The room's shard stopped being this node's and the registry dropped
  // this instance: forget the head, and tell subscribers to resync (with
  // another node). Pushes still queued fail at their commit, which needs
  // the lease. A subscription that reaches this instance later (its
  // Subscribe was posted before the drop) is told the same instead of
  // being registered where no commit will ever come.
  void Moved();

  // The room's stored history was replaced behind the room's back (an
  // operator's import, services/room/room_admin_service.h): forget the
  // head and cached changes so the next call reloads them, and tell
  // subscribers to resync.
  void StoreChanged();

  // Queues `plan` for the next group commit; `done` runs after its commit
  // (or with kUnavailable when the room's queue is full).
  void Push(PushPlan plan, PushDone done);

  // Documents after the request's checkpoint in seq order; from memory
  // when the recent-changes cache covers the checkpoint.
  void Pull(ReadRequest request, ReadDone done);

  // Documents before the request's checkpoint, newest first.
  void History(ReadRequest request, ReadDone done);

  // Removes the room's tombstones whose timestamp is below
  // `tombstones_before_ms` (Store::CompactRoom), between two of its group
  // commits so that the room's head stays exact. Afterwards a pull from a
  // checkpoint below the room's compacted_through starts over (reset) and
  // so does a subscription (resync); one racing with the compaction is
  // served again, never from a page that may lack a removed tombstone.
  // `through_seq` bounds the seqs removed too (a snapshot's compaction).
  void Compact(int64_t tombstones_before_ms, CompactDone done, Seq through_seq = kNoSeqBound);

  // Stores a client's encrypted snapshot (Store::PutSnapshot, keeping the
  // room's newest config->snapshots_kept). kInvalidArgument when its epoch
  // is not the room's or its seq is above the room's last_seq. With
  // `compact`, then removes the tombstones at or below its seq whatever
  // their age, through the room's writer as Compact. In room_snapshots.cc.
  void PutSnapshot(RoomSnapshot snapshot, bool compact, SnapshotDone done);

  // The room's newest snapshot of its current epoch; nullopt when none.
  void NewestSnapshot(NewestSnapshotDone done);

  // Starts delivering to `subscriber`: with a checkpoint, everything after
  // it first (no gap, no duplicate with what follows), then live changes.
  void Subscribe(std::shared_ptr<ChangeSubscriber> subscriber,
                 std::optional<ClientCheckpoint> from);
  // Subscribe's work, on the calling thread, which must be one of the
  // context's executor threads (it reads the store): for a caller that
  // subscribes many rooms in one executor task (a batched Watch).
  void SubscribeNow(std::shared_ptr<ChangeSubscriber> subscriber,
                    std::optional<ClientCheckpoint> from);

  // Stops delivering to `subscriber` (no callback follows once this returns).
  void Unsubscribe(const ChangeSubscriber* subscriber);

  // Ends every subscription cleanly (OnClose); used when draining.
  void CloseSubscribers();

  // True when the room holds nothing worth keeping in memory: no queued or
  // running commit, no subscriber, no activity since `idle_since`.
  bool IsIdleSince(absl::Time idle_since) const;

  // Live subscriptions (for operators: RoomAdmin's subscriber counts).
  size_t subscriber_count() const {
    absl::MutexLock lock(&mu_);
    return subscribers_.size();
  }

 private:
  struct PendingPush {
    PushPlan plan;
    PushDone done;
  };
  struct PendingCompaction {
    int64_t tombstones_before_ms = 0;
    CompactDone done;
    Seq through_seq = kNoSeqBound;
  };

  absl::StatusOr<RoomHead> LoadHead();  // executor threads only
  // The head of a room about to be created (a fresh epoch, nothing else).
  static absl::StatusOr<RoomHead> NewHead();
  // Takes the head a store answered, unless the room is loaded already.
  void AdoptHead(const RoomHead& head);
  void RunCommits();                    // executor; one at a time per room
  void CommitGroup(std::vector<PendingPush>& group);
  void RunCompaction(PendingCompaction& compaction);
  // The fence of a write from `head`: kFailedPrecondition when this node
  // no longer holds the room's shard.
  absl::StatusOr<CommitFence> FenceFrom(const RoomHead& head) const;
  // Whether a store read from `position` that began when the room's
  // compactions_started_ was `started_before` may lack a tombstone a
  // compaction removed meanwhile: one started since (or runs) and may have
  // removed seqs above `position`.
  bool ReadMayMissRemovalsLocked(Seq position, int64_t started_before) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReadFromStore(ReadRequest request, ReadDone done, bool history);
  void CatchUpAndRegister(std::shared_ptr<ChangeSubscriber> subscriber, ClientCheckpoint from);
  void ForgetHeadLocked(std::string_view reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Touch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  const RoomContext context_;
  const int shard_;  // cluster/shard_map.h ShardOf(name_)

  mutable absl::Mutex mu_;
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  bool retired_ ABSL_GUARDED_BY(mu_) = false;  // Moved(): no longer the registry's
  RoomHead head_ ABSL_GUARDED_BY(mu_);
  RecentChanges recent_ ABSL_GUARDED_BY(mu_);
  std::deque<PendingPush> queue_ ABSL_GUARDED_BY(mu_);
  // Run by RunCommits before the next group, so never beside a commit.
  std::deque<PendingCompaction> compactions_ ABSL_GUARDED_BY(mu_);
  // A compaction is in the store now; it may raise compacted_through up to
  // compaction_bound_ (the last_seq it is fenced on).
  bool compacting_ ABSL_GUARDED_BY(mu_) = false;
  Seq compaction_bound_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t compactions_started_ ABSL_GUARDED_BY(mu_) = 0;
  bool commit_running_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::shared_ptr<ChangeSubscriber>> subscribers_ ABSL_GUARDED_BY(mu_);
  absl::Time last_used_ ABSL_GUARDED_BY(mu_);
  // Groups left before the room guesses again that a group's keys are new
  // (CommitGroup). Only the thread running RunCommits touches it; one runs
  // at a time (commit_running_).
  int new_key_guesses_paused_ = 0;
  // Whether a group was committed (or tried) yet: only the first may guess
  // that the room is new. Touched by RunCommits' thread only.
  bool first_group_done_ = false;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_H_
