#include "services/room/room_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace roomsync {

struct RoomMetrics::Families {
  prometheus::Counter* pushes_ok;
  prometheus::Counter* pushes_failed;
  prometheus::Counter* documents_pushed;
  // [policy][decision]: resolved once so the per-item path does no label lookup.
  prometheus::Counter* decisions[2][3];
  prometheus::Counter* quota_refusals;
  prometheus::Counter* commits_ok;
  prometheus::Counter* commits_failed;
  prometheus::Counter* documents_committed;
  prometheus::Histogram* documents_per_commit;
  prometheus::Histogram* pushes_per_commit;
  prometheus::Histogram* commit_seconds;
  prometheus::Counter* reads[3][2];  // [pull|history|subscribe][store|cache]
  prometheus::Counter* new_key_guesses[2];  // [miss|hit]
  prometheus::Counter* new_room_guesses[2];  // [miss|hit]
  prometheus::Gauge* subscribers;
  prometheus::Gauge* active_rooms;
  prometheus::Gauge* shard_leases_held;
  prometheus::Counter* shard_lease_changes[4];  // by ShardLeaseChange
  prometheus::Counter* store_errors[7];         // by StoreOp
};

RoomMetrics::RoomMetrics(prometheus::Registry& registry) : m_(std::make_unique<Families>()) {
  auto& pushes = prometheus::BuildCounter()
                     .Name("roomsync_room_pushes_total")
                     .Help("Push calls answered, by result")
                     .Register(registry);
  m_->pushes_ok = &pushes.Add({{"result", "ok"}});
  m_->pushes_failed = &pushes.Add({{"result", "error"}});
  m_->documents_pushed = &prometheus::BuildCounter()
                              .Name("roomsync_room_pushed_documents_total")
                              .Help("Documents received in pushes")
                              .Register(registry)
                              .Add({});
  auto& decisions = prometheus::BuildCounter()
                       .Name("roomsync_room_decisions_total")
                       .Help("Push items decided, by conflict policy and decision "
                             "(accept, noop, conflict)")
                       .Register(registry);
  const char* policies[2] = {"lww", "server-wins"};
  const char* outcomes[3] = {"accept", "noop", "conflict"};
  for (int p = 0; p < 2; ++p) {
    for (int d = 0; d < 3; ++d) {
      m_->decisions[p][d] = &decisions.Add({{"policy", policies[p]}, {"decision", outcomes[d]}});
    }
  }
  m_->quota_refusals = &prometheus::BuildCounter()
                            .Name("roomsync_room_quota_refusals_total")
                            .Help("Pushes refused because the room's stored-bytes quota "
                                  "would be exceeded")
                            .Register(registry)
                            .Add({});
  auto& commits = prometheus::BuildCounter()
                      .Name("roomsync_room_commits_total")
                      .Help("Group commits (store transactions), by result")
                      .Register(registry);
  m_->commits_ok = &commits.Add({{"result", "ok"}});
  m_->commits_failed = &commits.Add({{"result", "error"}});
  m_->documents_committed = &prometheus::BuildCounter()
                                 .Name("roomsync_room_committed_documents_total")
                                 .Help("Documents written by commits")
                                 .Register(registry)
                                 .Add({});
  prometheus::Histogram::BucketBoundaries counts{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
  m_->documents_per_commit = &prometheus::BuildHistogram()
                                  .Name("roomsync_room_documents_per_commit")
                                  .Help("Documents written per group commit")
                                  .Register(registry)
                                  .Add({}, counts);
  m_->pushes_per_commit = &prometheus::BuildHistogram()
                               .Name("roomsync_room_pushes_per_commit")
                               .Help("Push calls answered per group commit")
                               .Register(registry)
                               .Add({}, counts);
  m_->commit_seconds =
      &prometheus::BuildHistogram()
           .Name("roomsync_room_commit_seconds")
           .Help("Latency of a group commit: lookup, decide, write, fsync")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01,
                                                            0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
  auto& reads = prometheus::BuildCounter()
                   .Name("roomsync_room_reads_total")
                   .Help("Reads by operation and source (cache = recent-changes cache, "
                         "store = a query)")
                   .Register(registry);
  const char* ops[3] = {"pull", "history", "subscribe"};
  for (int o = 0; o < 3; ++o) {
    m_->reads[o][0] = &reads.Add({{"op", ops[o]}, {"source", "store"}});
    m_->reads[o][1] = &reads.Add({{"op", ops[o]}, {"source", "cache"}});
  }
  auto& guesses = prometheus::BuildCounter()
                      .Name("roomsync_room_new_key_guesses_total")
                      .Help("Group commits written without a lookup on the guess that every "
                            "key is new, by result (miss = a key was stored: redone with one)")
                      .Register(registry);
  m_->new_key_guesses[0] = &guesses.Add({{"result", "miss"}});
  m_->new_key_guesses[1] = &guesses.Add({{"result", "hit"}});
  auto& room_guesses = prometheus::BuildCounter()
                           .Name("roomsync_room_new_room_guesses_total")
                           .Help("First commits of rooms not loaded, sent as creations on the "
                                 "guess that the room is new, by whether it was")
                           .Register(registry);
  m_->new_room_guesses[0] = &room_guesses.Add({{"result", "miss"}});
  m_->new_room_guesses[1] = &room_guesses.Add({{"result", "hit"}});
  m_->subscribers = &prometheus::BuildGauge()
                         .Name("roomsync_room_subscribers")
                         .Help("Live Subscribe streams")
                         .Register(registry)
                         .Add({});
  m_->active_rooms = &prometheus::BuildGauge()
                          .Name("roomsync_room_active_rooms")
                          .Help("Rooms held in memory")
                          .Register(registry)
                          .Add({});
  // Without shard leases these stay 0.
  m_->shard_leases_held = &prometheus::BuildGauge()
                               .Name("roomsync_shard_leases_held")
                               .Help("Shard leases this node holds now")
                               .Register(registry)
                               .Add({});
  auto& changes = prometheus::BuildCounter()
                      .Name("roomsync_shard_lease_changes_total")
                      .Help("Shard lease events of this node: acquired, renewal_failed (a "
                            "renewal call failed), released (handed over), lost (taken by "
                            "another node or not renewed in time)")
                      .Register(registry);
  const char* change_names[4] = {"acquired", "renewal_failed", "released", "lost"};
  for (int c = 0; c < 4; ++c) m_->shard_lease_changes[c] = &changes.Add({{"change", change_names[c]}});
  auto& store_errors = prometheus::BuildCounter()
                           .Name("roomsync_store_errors_total")
                           .Help("Failed store calls outside commits, by operation (the lease "
                                 "rounds': announce, acquire, renew, release, lease_table; "
                                 "rooms': open_room, read)")
                           .Register(registry);
  const char* op_names[7] = {"announce", "acquire", "renew", "release", "lease_table",
                             "open_room", "read"};
  for (int o = 0; o < 7; ++o) m_->store_errors[o] = &store_errors.Add({{"op", op_names[o]}});
}

RoomMetrics::~RoomMetrics() = default;

void RoomMetrics::CountPush(size_t documents, bool ok) {
  (ok ? m_->pushes_ok : m_->pushes_failed)->Increment();
  m_->documents_pushed->Increment(static_cast<double>(documents));
}

void RoomMetrics::CountDecision(ConflictPolicy policy, Decision decision) {
  int p = policy == ConflictPolicy::kServerWins ? 1 : 0;
  int d = decision == Decision::kAccept ? 0 : decision == Decision::kNoop ? 1 : 2;
  m_->decisions[p][d]->Increment();
}

void RoomMetrics::CountQuotaRefusal() { m_->quota_refusals->Increment(); }

void RoomMetrics::CountNewKeyGuess(bool hit) { m_->new_key_guesses[hit ? 1 : 0]->Increment(); }
void RoomMetrics::CountNewRoomGuess(bool hit) { m_->new_room_guesses[hit ? 1 : 0]->Increment(); }

void RoomMetrics::ObserveCommit(size_t pushes, size_t documents, absl::Duration latency, bool ok) {
  if (!ok) {
    m_->commits_failed->Increment();
    return;
  }
  if (documents == 0) return;  // nothing was written: no transaction
  m_->commits_ok->Increment();
  m_->documents_committed->Increment(static_cast<double>(documents));
  m_->documents_per_commit->Observe(static_cast<double>(documents));
  m_->pushes_per_commit->Observe(static_cast<double>(pushes));
  m_->commit_seconds->Observe(absl::ToDoubleSeconds(latency));
}

void RoomMetrics::CountRead(std::string_view op, bool from_cache) {
  int o = op == "pull" ? 0 : op == "history" ? 1 : 2;
  m_->reads[o][from_cache ? 1 : 0]->Increment();
}

void RoomMetrics::SetSubscribersDelta(int delta) { m_->subscribers->Increment(delta); }
void RoomMetrics::SetActiveRooms(size_t rooms) { m_->active_rooms->Set(static_cast<double>(rooms)); }

void RoomMetrics::SetShardLeasesHeld(int shards) {
  m_->shard_leases_held->Set(static_cast<double>(shards));
}
void RoomMetrics::CountShardLeaseChange(ShardLeaseChange change, int shards) {
  m_->shard_lease_changes[static_cast<int>(change)]->Increment(static_cast<double>(shards));
}
void RoomMetrics::CountStoreError(StoreOp op) { m_->store_errors[static_cast<int>(op)]->Increment(); }

double RoomMetrics::commits() const { return m_->commits_ok->Value(); }
double RoomMetrics::pushes() const { return m_->pushes_ok->Value(); }
double RoomMetrics::shard_leases_held() const { return m_->shard_leases_held->Value(); }
double RoomMetrics::shard_lease_changes(ShardLeaseChange change) const {
  return m_->shard_lease_changes[static_cast<int>(change)]->Value();
}
double RoomMetrics::store_errors(StoreOp op) const {
  return m_->store_errors[static_cast<int>(op)]->Value();
}

}  // namespace roomsync
