#include "services/room/room.h"

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/log.h"
#include "base/string_view.h"
#include "services/room/change_subscriber.h"
#include "services/room/commit_planner.h"
#include "services/room/committed_batch.h"
#include "services/room/room_metrics.h"
#include "services/room/shard_lease_keeper.h"
#include "cluster/shard_map.h"

namespace roomsync {
namespace {

// A fenced commit can lose only to another writer of the same room (a
// second node during a hand-off); a few retries from a fresh head suffice.
constexpr int kMaxCommitAttempts = 3;
// After a wrong guess that a group's keys are new (Room::CommitGroup), the
// room's next groups look their keys up: a client that re-pushes stored
// documents without an assumed master state (last-write-wins edits) costs
// one wasted round trip per this many groups, not one per group.
constexpr int kGroupsWithoutGuessAfterMiss = 16;
constexpr std::string_view kMovedReason = kRoomMovedReason;
// Page size of store reads during a subscriber's catch-up.
constexpr int kCatchUpPage = 500;
// A pull that raced with a compaction is read again, at most this often
// (a compaction of a chat room takes milliseconds).
constexpr int kMaxReadsAroundCompaction = 50;
constexpr absl::Duration kCompactionPoll = absl::Milliseconds(10);
constexpr std::string_view kCompactedReason = "checkpoint older than the room's compaction";

// Whether a reader at `checkpoint` (seq > 0, the room's epoch) has seen
// every removal the room's compactions made: it is past the highest seq
// removed, or was handed out after the last compaction that raised it (a
// pass from the beginning that started after the compaction never held the
// documents whose tombstones it removed).
bool ContinuesAfterCompaction(const ClientCheckpoint& checkpoint, const RoomHead& head) {
  return checkpoint.seq >= head.compacted_through || checkpoint.compacted == head.compacted_through;
}

// Where a pull from `checkpoint` starts in a room whose head is `head`: the
// checkpoint's seq, or the beginning (with *reset) when it cannot be
// continued: another epoch, or a compaction since, so the client may hold
// documents whose deletion is no longer stored.
Seq PullStart(const std::optional<ClientCheckpoint>& checkpoint, const RoomHead& head,
              bool* reset) {
  *reset = false;
  if (!checkpoint.has_value() || checkpoint->seq <= 0) return 0;
  if (checkpoint->epoch == head.epoch && ContinuesAfterCompaction(*checkpoint, head)) {
    return checkpoint->seq;
  }
  *reset = true;
  return 0;
}

std::vector<SharedDocument> Share(std::vector<StoredDocument> documents) {
  std::vector<SharedDocument> shared;
  shared.reserve(documents.size());
  for (StoredDocument& doc : documents) {
    shared.push_back(std::make_shared<const StoredDocument>(std::move(doc)));
  }
  return shared;
}

// True when no item of the group carries an assumed master state: its
// client believes every document is new.
bool NoItemAssumesStored(const std::vector<const PushPlan*>& pushes) {
  for (const PushPlan* push : pushes) {
    for (const IncomingDocument& item : push->items) {
      if (item.assumed_master.has_value()) return false;
    }
  }
  return true;
}

}  // namespace

Room::Room(std::string name, const RoomContext& context)
    : name_(std::move(name)),
      context_(context),
      shard_(ShardOf(name_)),
      recent_(context.config->recent_changes_per_room,
              context.config->recent_changes_bytes_per_room),
      last_used_(absl::Now()) {}

Room::~Room() = default;

void Room::Touch() { last_used_ = absl::Now(); }

bool Room::IsIdleSince(absl::Time idle_since) const {
  absl::ReleasableMutexLock lock(&mu_);
  return queue_.empty() && !commit_running_ && subscribers_.empty() && last_used_ < idle_since;
}

absl::StatusOr<RoomHead> Room::LoadHead() {
  {
    absl::ReleasableMutexLock lock(&mu_);
    if (loaded_) return head_;
  }
  // Two threads may load at once; OpenRoom is idempotent and only the first
  // result is kept.
  absl::StatusOr<RoomHead> head = context_.store->OpenRoom(name_);
  if (!head.ok()) {
    context_.metrics->CountStoreError(StoreOp::kOpenRoom);
    Log(LogLevel::kWarning, "room_open_failed",
        {{"room", name_}, {"code", absl::StatusCodeToString(head.status().code())},
         {"detail", std::string(head.status().message())}});
    return head.status();
  }
  absl::ReleasableMutexLock lock(&mu_);
  if (!loaded_) {
    head_ = *head;
    recent_.Reset(head_.last_seq);
    loaded_ = true;
  }
  return head_;
}

absl::StatusOr<RoomHead> Room::NewHead() {
  absl::StatusOr<std::string> epoch = NewRoomEpoch();
  if (!epoch.ok()) return epoch.status();
  RoomHead head;
  head.epoch = *std::move(epoch);
  return head;
}

void Room::AdoptHead(const RoomHead& head) {
  absl::MutexLock lock(&mu_);
  if (loaded_) return;  // a read opened the room meanwhile: the same head
  head_ = head;
  recent_.Reset(head_.last_seq);
  loaded_ = true;
}

void Room::ForgetHeadLocked(std::string_view reason) {
  // Our view of the room may be stale (a commit of unknown outcome, another
  // writer): reload it, and tell subscribers, who may have missed changes.
  loaded_ = false;
  for (auto& subscriber : subscribers_) subscriber->OnResync(reason);
  context_.metrics->SetSubscribersDelta(-static_cast<int>(subscribers_.size()));
  subscribers_.clear();
}

void Room::Moved() {
  absl::ReleasableMutexLock lock(&mu_);
  retired_ = true;
  ForgetHeadLocked(kMovedReason);
}

void Room::StoreChanged() {
  absl::MutexLock lock(&mu_);
  ForgetHeadLocked("room history replaced by an import");
}

void Room::Push(PushPlan plan, PushDone done) {
  bool start = false;
  {
    absl::ReleasableMutexLock lock(&mu_);
    Touch();
    if (queue_.size() >= context_.config->max_queued_pushes_per_room) {
      lock.Release();
      std::move(done)(absl::UnavailableError("room is overloaded; retry"));
      return;
    }
    queue_.push_back(PendingPush{std::move(plan), std::move(done)});
    if (!commit_running_) start = commit_running_ = true;
  }
  if (start) boost::asio::post(*context_.executor, [self = shared_from_this()] { self->RunCommits(); });
}

void Room::RunCommits() {
  for (;;) {
    std::vector<PendingPush> group;
    {
      absl::ReleasableMutexLock lock(&mu_);
      size_t documents = 0, bytes = 0;
      // Always take at least one push, then as many as fit the bounds.
      while (!queue_.empty()) {
        const PushPlan& next = queue_.front().plan;
        if (!group.empty() && (documents + next.items.size() > context_.config->max_commit_documents ||
                               bytes + next.bytes > context_.config->max_commit_bytes)) {
          break;
        }
        documents += next.items.size();
        bytes += next.bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (group.empty() && !compactions_.empty()) {
        PendingCompaction compaction = std::move(compactions_.front());
        compactions_.pop_front();
        lock.Release();
        RunCompaction(compaction);
        continue;
      }
      if (group.empty()) {
        commit_running_ = false;
        return;
      }
    }
    CommitGroup(group);
  }
}

void Room::CommitGroup(std::vector<PendingPush>& group) {
  absl::Time started = absl::Now();
  std::vector<const PushPlan*> pushes;
  pushes.reserve(group.size());
  for (const PendingPush& push : group) pushes.push_back(&push.plan);
  const GroupKeys keys = CollectKeys(pushes);
  PlannedCommit plan;
  absl::Status status;
  RoomHead head;
  // Guess that every key is new when no item says otherwise (an item with
  // an assumed master state updates a stored document): a chat message
  // has a fresh id, and the commit then costs one round trip, no Lookup.
  // The store checks the guess with the write; a miss costs a round trip
  // and turns guessing off for the room's next few groups.
  bool guess_new_keys = new_key_guesses_paused_ == 0 && NoItemAssumesStored(pushes);
  if (new_key_guesses_paused_ > 0) --new_key_guesses_paused_;
  // The first group of a room this node has not loaded, of new keys only:
  // guess that the room is new too (a room's first message), and create it
  // with the commit, in one round trip instead of OpenRoom's and Commit's
  // (Store::CreateRoomAndCommit). A room that exists answers its head in
  // the same round trip, and the group is decided again from it: as many
  // round trips as without the guess. Once per Room object.
  bool guess_new_room = false;
  if (guess_new_keys && !first_group_done_ && context_.config->create_rooms_on_commit) {
    absl::MutexLock lock(&mu_);
    guess_new_room = !loaded_;
  }
  first_group_done_ = true;
  for (int attempt = 1; attempt <= kMaxCommitAttempts;) {
    absl::StatusOr<RoomHead> loaded = guess_new_room ? NewHead() : LoadHead();
    if (!loaded.ok()) {
      status = loaded.status();
      break;
    }
    head = *loaded;
    absl::StatusOr<CommitFence> fenced = FenceFrom(head);
    if (!fenced.ok()) {
      status = fenced.status();
      break;
    }
    CommitFence fence = *fenced;
    // The stored state of every key of the group, in one round trip; none
    // in a room that has never committed (every stored document has a seq
    // of at most last_seq), so a new room's first push needs no Lookup.
    const bool keys_are_new = guess_new_keys || head.last_seq == 0;
    absl::StatusOr<std::vector<std::optional<StoredDocument>>> stored =
        keys_are_new ? std::vector<std::optional<StoredDocument>>(keys.keys.size())
                     : context_.store->Lookup(name_, keys.keys);
    if (!stored.ok()) {
      context_.metrics->CountStoreError(StoreOp::kRead);
      status = stored.status();
      break;
    }
    plan = PlanCommit(pushes, keys, *std::move(stored), head, context_.config->max_room_bytes,
                      context_.metrics, !context_.config->skip_room_digest);
    if (plan.writes.empty()) {
      status = absl::OkStatus();
      break;
    }
    std::vector<StoredDocument> rows;
    rows.reserve(plan.writes.size());
    for (const auto& doc : plan.writes) rows.push_back(*doc);
    fence.keys_are_new = keys_are_new;
    if (guess_new_room) {
      guess_new_room = false;  // whatever the answer, the next try opens the room
      absl::StatusOr<std::optional<RoomHead>> existing = context_.store->CreateRoomAndCommit(
          name_, head.epoch, fence, rows, plan.stored_bytes_delta, plan.digest_delta);
      context_.metrics->CountNewRoomGuess(/*hit=*/existing.ok() && !existing->has_value());
      if (existing.ok() && existing->has_value()) {
        // The room exists: decide again from its head, which LoadHead now
        // answers from memory. Nothing was written.
        AdoptHead(**existing);
        continue;
      }
      if (existing.status().code() == absl::StatusCode::kAborted) continue;  // lost a race
      status = existing.status();
      // It stood in for OpenRoom too: a store it could not reach is counted
      // as that open's error.
      if (!status.ok() && status.code() != absl::StatusCode::kFailedPrecondition &&
          status.code() != absl::StatusCode::kInvalidArgument) {
        context_.metrics->CountStoreError(StoreOp::kOpenRoom);
        Log(LogLevel::kWarning, "room_create_failed",
            {{"room", name_}, {"code", absl::StatusCodeToString(status.code())},
             {"detail", std::string(status.message())}});
      }
    } else {
      status = context_.store->Commit(name_, fence, rows, plan.stored_bytes_delta,
                                      plan.digest_delta);
    }
    const bool guess_missed = guess_new_keys && status.code() == absl::StatusCode::kAlreadyExists;
    if (guess_new_keys && (status.ok() || guess_missed)) {
      context_.metrics->CountNewKeyGuess(/*hit=*/status.ok());
    }
    if (guess_missed) {
      // Nothing was written and the head stands: decide again, with the
      // stored states. Not an attempt lost to another writer.
      guess_new_keys = false;
      new_key_guesses_paused_ = kGroupsWithoutGuessAfterMiss;
      continue;
    }
    if (status.ok()) {
      head.last_seq = plan.writes.back()->seq;
      head.stored_bytes += plan.stored_bytes_delta;
      head.digest ^= plan.digest_delta;
      break;
    }
    Log(status.code() == absl::StatusCode::kAborted ? LogLevel::kWarning : LogLevel::kError,
        "commit_failed",
        {{"room", name_},
         {"code", absl::StatusCodeToString(status.code())},
         {"attempt", attempt},
         {"documents", static_cast<int64_t>(rows.size())}});
    absl::ReleasableMutexLock lock(&mu_);
    if (status.code() == absl::StatusCode::kFailedPrecondition) {
      // Another node took the shard: nothing was written, and the pushes
      // belong to the new owner.
      ForgetHeadLocked(kMovedReason);
      status = absl::FailedPreconditionError(absl::StrCat(ToAbsl(kMovedReason), "; retry"));
      break;
    }
    ForgetHeadLocked(status.code() == absl::StatusCode::kAborted ? "room changed by another writer"
                                                                 : "commit outcome unknown");
    if (status.code() == absl::StatusCode::kUnknown) {
      // The store's connection broke during the commit (PostgreSQL
      // restarting): the pushes may be stored or not. They are not
      // acknowledged, and the client's retry is safe: pushing the stored
      // state again is a no-op. UNAVAILABLE tells clients to retry, where
      // UNKNOWN would read as a server bug (HTTP 500).
      status = absl::UnavailableError(absl::StrCat(
          "the store's connection was lost during the commit, so it may or may not have "
          "been stored; retry the push (pushing the same state again is a no-op): ",
          status.message()));
    }
    if (status.code() != absl::StatusCode::kAborted) break;
    ++attempt;
  }

  std::vector<SharedDocument> written;
  if (status.ok() && !plan.writes.empty()) {
    written.assign(plan.writes.begin(), plan.writes.end());
    auto batch = std::make_shared<const CommittedBatch>(written, head.epoch, head.digest);
    absl::ReleasableMutexLock lock(&mu_);
    // A room created by this commit (CreateRoomAndCommit) is loaded from
    // here on; if a read opened it meanwhile, after the commit, its head
    // and cache already start past these documents, and subscribers that
    // registered on it must not get them again.
    const bool overtaken = loaded_ && head_.epoch == head.epoch && head_.last_seq >= head.last_seq;
    if (!loaded_) {
      loaded_ = true;
      recent_.Reset(0);
    }
    head_ = head;
    if (!overtaken) recent_.Append(written);
    // Publishing under the lock keeps commit order and makes a subscriber's
    // switch from catch-up to live atomic with respect to commits.
    if (!overtaken) {
      std::erase_if(subscribers_, [&](const std::shared_ptr<ChangeSubscriber>& s) {
        bool keep = s->OnChanges(batch);
        if (!keep) context_.metrics->SetSubscribersDelta(-1);
        return !keep;
      });
    }
    Touch();
  }
  context_.metrics->ObserveCommit(group.size(), written.size(), absl::Now() - started, status.ok());
  for (size_t p = 0; p < group.size(); ++p) {
    if (!status.ok()) {
      std::move(group[p].done)(status);
    } else if (!plan.refusals[p].ok()) {
      std::move(group[p].done)(plan.refusals[p]);
    } else {
      plan.outcomes[p].head = head;
      std::move(group[p].done)(std::move(plan.outcomes[p]));
    }
  }
}

absl::StatusOr<CommitFence> Room::FenceFrom(const RoomHead& head) const {
  CommitFence fence{.expected_last_seq = head.last_seq};
  if (context_.leases != nullptr) {
    std::optional<int64_t> epoch = context_.leases->EpochFor(shard_);
    if (!epoch.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(ToAbsl(kMovedReason), "; retry"));
    }
    fence.shard = shard_;
    fence.lease_epoch = *epoch;
  }
  return fence;
}

void Room::Compact(int64_t tombstones_before_ms, CompactDone done, Seq through_seq) {
  bool start = false;
  {
    absl::MutexLock lock(&mu_);
    Touch();
    compactions_.push_back(PendingCompaction{tombstones_before_ms, std::move(done), through_seq});
    if (!commit_running_) start = commit_running_ = true;
  }
  if (start) boost::asio::post(*context_.executor, [self = shared_from_this()] { self->RunCommits(); });
}

void Room::RunCompaction(PendingCompaction& compaction) {
  absl::StatusOr<CompactionResult> result = absl::InternalError("compaction not attempted");
  for (int attempt = 1; attempt <= kMaxCommitAttempts; ++attempt) {
    absl::StatusOr<RoomHead> head = LoadHead();
    if (!head.ok()) {
      result = head.status();
      break;
    }
    absl::StatusOr<CommitFence> fence = FenceFrom(*head);
    if (!fence.ok()) {
      result = fence.status();
      break;
    }
    {
      absl::MutexLock lock(&mu_);
      compacting_ = true;
      compaction_bound_ = head->last_seq;
      ++compactions_started_;
    }
    result = context_.store->CompactRoom(name_, *fence, compaction.tombstones_before_ms,
                                         compaction.through_seq);
    absl::MutexLock lock(&mu_);
    compacting_ = false;
    if (result.ok()) {
      head_.compacted_through = std::max(head_.compacted_through, result->compacted_through);
      if (loaded_) {
        head_.stored_bytes -= result->removed_bytes;
        // The cache may hold removed tombstones; a pull from the beginning
        // must not be served them from memory while the store has none.
        if (result->removed > 0) recent_.Reset(head_.last_seq);
      }
      Log(LogLevel::kInfo, "room_compacted",
          {{"room", name_},
           {"removed", result->removed},
           {"compacted_through", result->compacted_through}});
      break;
    }
    const absl::StatusCode code = result.status().code();
    if (code == absl::StatusCode::kFailedPrecondition) {
      ForgetHeadLocked(kMovedReason);
      result = absl::FailedPreconditionError(absl::StrCat(ToAbsl(kMovedReason), "; retry"));
      break;
    }
    if (code == absl::StatusCode::kUnknown) {
      // It may have removed tombstones up to the bound: assume so until
      // the head is reloaded from the store.
      head_.compacted_through = std::max(head_.compacted_through, compaction_bound_);
    }
    ForgetHeadLocked(code == absl::StatusCode::kAborted ? "room changed by another writer"
                                                        : "compaction outcome unknown");
    if (code != absl::StatusCode::kAborted) break;
  }
  std::move(compaction.done)(std::move(result));
}

bool Room::ReadMayMissRemovalsLocked(Seq position, int64_t started_before) const {
  if (!compacting_ && compactions_started_ == started_before) return false;
  // Whatever it removed has a seq of at most the last_seq it was fenced on.
  return position < compaction_bound_;
}

void Room::Pull(ReadRequest request, ReadDone done) {
  {
    absl::ReleasableMutexLock lock(&mu_);
    Touch();
    if (loaded_) {
      bool reset = false;
      const Seq after = PullStart(request.checkpoint, head_, &reset);
      if (recent_.Covers(after)) {
        ReadResult result;
        result.reset = reset;
        result.documents = recent_.ReadSince(after, request.collection, request.limit);
        result.head = head_;
        result.checkpoint =
            ClientCheckpoint{result.documents.empty() ? after : result.documents.back()->seq,
                             head_.epoch, head_.compacted_through, std::nullopt};
        // Read under the lock: a page that holds every document after the
        // position, or ends at the head, leaves the reader at the head
        // (seqs between its last document and last_seq, if any, were
        // compacted tombstones).
        if (request.collection.empty() &&
            (result.documents.size() < static_cast<size_t>(request.limit) ||
             result.checkpoint->seq == head_.last_seq)) {
          result.checkpoint->digest = head_.digest;
        }
        context_.metrics->CountRead("pull", /*from_cache=*/true);
        lock.Release();
        std::move(done)(std::move(result));
        return;
      }
    }
  }
  boost::asio::post(*context_.executor,
                    [self = shared_from_this(), request = std::move(request),
                     done = std::move(done)]() mutable {
                      self->ReadFromStore(std::move(request), std::move(done), /*history=*/false);
                    });
}

void Room::History(ReadRequest request, ReadDone done) {
  boost::asio::post(*context_.executor,
                    [self = shared_from_this(), request = std::move(request),
                     done = std::move(done)]() mutable {
                      self->ReadFromStore(std::move(request), std::move(done), /*history=*/true);
                    });
}

void Room::ReadFromStore(ReadRequest request, ReadDone done, bool history) {
  absl::StatusOr<RoomHead> head = LoadHead();
  if (!head.ok()) return std::move(done)(head.status());
  ReadResult result;
  result.head = *head;
  if (history) {
    bool same_epoch = request.checkpoint.has_value() && request.checkpoint->epoch == head->epoch;
    Seq position = same_epoch ? request.checkpoint->seq : 0;
    // One more than asked tells whether an older page exists.
    ReadRange range{request.collection, request.limit + 1};
    absl::StatusOr<std::vector<StoredDocument>> page;
    for (int read = 1;; ++read) {
      int64_t started_before = 0;
      bool compacting_before = false;
      {
        absl::MutexLock lock(&mu_);
        started_before = compactions_started_;
        compacting_before = compacting_;
      }
      page = context_.store->ReadBefore(name_, position, range);
      if (!page.ok()) {
        context_.metrics->CountStoreError(StoreOp::kRead);
        return std::move(done)(page.status());
      }
      bool again = false;
      {
        absl::MutexLock lock(&mu_);
        // The head's compacted_through must describe this page: cacheable
        // history pages (gateway/history_pages.h) are named by it, so a
        // page that a compaction beside the read may have changed is read
        // again once it is over.
        again = compacting_before || compacting_ || compactions_started_ != started_before;
        head->compacted_through = std::max(head->compacted_through, head_.compacted_through);
      }
      if (!again) break;
      if (read == kMaxReadsAroundCompaction) {
        return std::move(done)(absl::UnavailableError("the room is being compacted; retry"));
      }
      absl::SleepFor(kCompactionPoll);
    }
    result.head = *head;
    bool more = page->size() > static_cast<size_t>(request.limit);
    if (more) page->pop_back();
    result.documents = Share(std::move(*page));
    if (more) result.checkpoint = ClientCheckpoint{result.documents.back()->seq, head->epoch, 0, std::nullopt};
  } else {
    for (int read = 1;; ++read) {
      int64_t started_before = 0;
      {
        absl::MutexLock lock(&mu_);
        started_before = compactions_started_;
        head->compacted_through = std::max(head->compacted_through, head_.compacted_through);
      }
      Seq position = PullStart(request.checkpoint, *head, &result.reset);
      ReadRange range{request.collection, request.limit};
      absl::StatusOr<std::vector<StoredDocument>> page =
          context_.store->ReadSince(name_, position, range);
      if (!page.ok()) {
        context_.metrics->CountStoreError(StoreOp::kRead);
        return std::move(done)(page.status());
      }
      bool again = false;
      {
        absl::MutexLock lock(&mu_);
        again = ReadMayMissRemovalsLocked(position, started_before);
      }
      if (again) {
        // A compaction ran or runs beside this read: the page may lack a
        // tombstone it removed. Read again once it is over, from the
        // beginning if the checkpoint is now too old.
        if (read == kMaxReadsAroundCompaction) {
          return std::move(done)(absl::UnavailableError("the room is being compacted; retry"));
        }
        absl::SleepFor(kCompactionPoll);
        continue;
      }
      result.head = *head;
      result.documents = Share(std::move(*page));
      result.checkpoint =
          ClientCheckpoint{result.documents.empty() ? position : result.documents.back()->seq,
                           head->epoch, head->compacted_through, std::nullopt};
      // A page that did not fill up holds every document after the
      // position: the reader is then at the room's state of head->last_seq
      // if no commit came between loading the head and the read, and one
      // would have put a seq above last_seq into the page.
      if (request.collection.empty() &&
          result.documents.size() < static_cast<size_t>(request.limit) &&
          result.checkpoint->seq <= head->last_seq) {
        result.checkpoint->digest = head->digest;
      }
      break;
    }
  }
  context_.metrics->CountRead(history ? "history" : "pull", /*from_cache=*/false);
  std::move(done)(std::move(result));
}

void Room::Subscribe(std::shared_ptr<ChangeSubscriber> subscriber,
                     std::optional<ClientCheckpoint> from) {
  boost::asio::post(*context_.executor, [self = shared_from_this(),
                                         subscriber = std::move(subscriber),
                                         from = std::move(from)]() mutable {
    self->SubscribeNow(std::move(subscriber), std::move(from));
  });
}

void Room::SubscribeNow(std::shared_ptr<ChangeSubscriber> subscriber,
                        std::optional<ClientCheckpoint> from) {
  absl::StatusOr<RoomHead> head = LoadHead();
  if (!head.ok()) return subscriber->OnResync("store unavailable");
  if (!from.has_value()) {
    absl::ReleasableMutexLock lock(&mu_);
    if (retired_) {
      lock.Release();
      return subscriber->OnResync(kMovedReason);
    }
    Touch();
    subscribers_.push_back(subscriber);
    context_.metrics->SetSubscribersDelta(+1);
    subscriber->OnLive(head_);
    return;
  }
  if (from->seq == 0) from->epoch = head->epoch;  // the beginning of any epoch
  if (from->epoch != head->epoch) return subscriber->OnResync("checkpoint of another epoch");
  if (!ContinuesAfterCompaction(*from, *head)) return subscriber->OnResync(kCompactedReason);
  CatchUpAndRegister(std::move(subscriber), std::move(*from));
}

void Room::CatchUpAndRegister(std::shared_ptr<ChangeSubscriber> subscriber,
                              ClientCheckpoint from) {
  const std::string collection = subscriber->collection();
  Seq position = from.seq;
  size_t sent = 0;
  const size_t max_catch_up = context_.config->max_subscribe_catch_up;
  for (;;) {
    Seq head_before_read = 0;
    int64_t started_before = 0;
    {
      absl::ReleasableMutexLock lock(&mu_);
      if (retired_) {
        lock.Release();
        return subscriber->OnResync(kMovedReason);
      }
      if (!loaded_ || head_.epoch != from.epoch) {
        lock.Release();
        return subscriber->OnResync("room reloaded during catch-up");
      }
      if (recent_.Covers(position)) {
        // The rest comes from memory, and registering under the same lock
        // means the next commit is the first live batch: no gap, no repeat.
        std::vector<SharedDocument> rest =
            recent_.ReadSince(position, collection, max_catch_up + 1);
        if (sent + rest.size() > max_catch_up) {
          lock.Release();
          return subscriber->OnResync("catch-up larger than the stream serves");
        }
        context_.metrics->CountRead("subscribe", /*from_cache=*/true);
        if (!rest.empty() &&
            !subscriber->OnChanges(std::make_shared<const CommittedBatch>(
                std::move(rest), head_.epoch, head_.digest))) {
          return;
        }
        Touch();
        subscribers_.push_back(subscriber);
        context_.metrics->SetSubscribersDelta(+1);
        subscriber->OnLive(head_);
        return;
      }
      head_before_read = head_.last_seq;
      started_before = compactions_started_;
    }
    ReadRange range{collection, kCatchUpPage};
    absl::StatusOr<std::vector<StoredDocument>> page =
        context_.store->ReadSince(name_, position, range);
    if (!page.ok()) {
      context_.metrics->CountStoreError(StoreOp::kRead);
      return subscriber->OnResync("store unavailable during catch-up");
    }
    {
      absl::MutexLock lock(&mu_);
      if (ReadMayMissRemovalsLocked(position, started_before)) {
        return subscriber->OnResync(kCompactedReason);
      }
    }
    context_.metrics->CountRead("subscribe", /*from_cache=*/false);
    bool complete = page->size() < static_cast<size_t>(kCatchUpPage);
    // A commit is visible in the store before this room publishes it (and
    // appends it to the cache). Such documents come live or from the cache
    // once registered; sending them from the page too would repeat them.
    // Cutting the page there means everything up to head_before_read is
    // read.
    auto unpublished = std::find_if(page->begin(), page->end(), [&](const StoredDocument& doc) {
      return doc.seq > head_before_read;
    });
    if (unpublished != page->end()) {
      page->erase(unpublished, page->end());
      complete = true;
    }
    sent += page->size();
    if (sent > max_catch_up) return subscriber->OnResync("catch-up larger than the stream serves");
    if (!page->empty()) {
      position = page->back().seq;
      if (!subscriber->OnChanges(std::make_shared<const CommittedBatch>(Share(std::move(*page)), from.epoch))) {
        return;
      }
    }
    // A complete page saw every change up to the head read before it; later
    // commits have higher seqs and come from the cache or the next page.
    if (complete) position = std::max(position, head_before_read);
  }
}

void Room::Unsubscribe(const ChangeSubscriber* subscriber) {
  absl::ReleasableMutexLock lock(&mu_);
  size_t removed = std::erase_if(subscribers_, [&](const std::shared_ptr<ChangeSubscriber>& s) {
    return s.get() == subscriber;
  });
  if (removed > 0) context_.metrics->SetSubscribersDelta(-static_cast<int>(removed));
  Touch();
}

void Room::CloseSubscribers() {
  absl::ReleasableMutexLock lock(&mu_);
  for (auto& subscriber : subscribers_) subscriber->OnClose();
  context_.metrics->SetSubscribersDelta(-static_cast<int>(subscribers_.size()));
  subscribers_.clear();
}

}  // namespace roomsync
