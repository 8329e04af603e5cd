#include "services/room/shard_lease_keeper.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <functional>
#include "absl/time/clock.h"
#include "base/log.h"
#include "storage/store.h"

namespace roomsync {

ShardLeaseKeeper::ShardLeaseKeeper(Store& store, ShardLeaseConfig config,
                                   std::function<void(int)> on_lost, RoomMetrics* metrics)
    : store_(store), config_(std::move(config)), on_lost_(std::move(on_lost)), metrics_(metrics) {}

ShardLeaseKeeper::~ShardLeaseKeeper() { Stop(/*release=*/false); }

void ShardLeaseKeeper::Start(std::optional<std::string> address) {
  if (address.has_value()) config_.address = *std::move(address);
  bool hungry = RunRound();
  thread_ = std::thread([this, hungry]() mutable {
    while (!stop_.WaitForNotificationWithTimeout(hungry ? config_.hungry_round_every
                                                        : config_.round_every)) {
      hungry = RunRound();
    }
  });
}

void ShardLeaseKeeper::Stop(bool release) {
  absl::MutexLock stopping(&stop_mu_);
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  if (!release) return;
  absl::MutexLock round(&round_mu_);
  // Leave the membership first, so that the others count one node less
  // when they share out what we release.
  if (absl::Status s = store_.AnnounceNode(config_.node_id, config_.address, 0); !s.ok()) {
    CountStoreError(StoreOp::kAnnounce);
    Log(LogLevel::kWarning, "node_leave_failed", {{"code", absl::StatusCodeToString(s.code())}});
  }
  std::map<int, Held> held;
  {
    absl::MutexLock lock(&mu_);
    held = held_;
  }
  for (const auto& [shard, lease] : held) {
    Lose(shard, "node draining", ShardLeaseChange::kReleased);
    // The store waits for our in-flight commits (they hold the lease row),
    // so the next owner reads the room after them.
    if (absl::Status s = store_.ReleaseShardLease(shard, config_.node_id, lease.epoch); !s.ok()) {
      // The lease then expires within the ttl: the shard is not ours
      // either way (Lose above), and its next owner's epoch fences us.
      CountStoreError(StoreOp::kRelease);
      Log(LogLevel::kWarning, "shard_release_failed",
          {{"shard", shard}, {"code", absl::StatusCodeToString(s.code())}});
    }
  }
  if (!held.empty()) {
    Log(LogLevel::kInfo, "shard_leases_released",
        {{"released", static_cast<int64_t>(held.size())}});
  }
}

std::optional<int64_t> ShardLeaseKeeper::EpochFor(int shard) const {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(shard);
  // Past our own deadline the store may already have given the shard to
  // another node: stop before it does (commits are fenced either way).
  if (it == held_.end() || absl::Now() >= it->second.deadline) return std::nullopt;
  return it->second.epoch;
}

std::string ShardLeaseKeeper::OwnerAddress(int shard) const {
  absl::MutexLock lock(&mu_);
  if (held_.contains(shard)) return config_.address;
  auto it = owners_.find(shard);
  return it == owners_.end() ? std::string() : it->second;
}

std::string ShardLeaseKeeper::LookUpOwner(int shard) {
  if (std::string owner = OwnerAddress(shard); !owner.empty()) return owner;
  absl::MutexLock lookup(&lookup_mu_);
  // A caller that waited for another's read gets that read's answer.
  if (absl::Now() - owners_read_at_ >= kOwnerLookupInterval) {
    owners_read_at_ = absl::Now();
    absl::StatusOr<std::vector<ShardLease>> leases = store_.ListShardLeases();
    if (!leases.ok()) CountStoreError(StoreOp::kLeaseTable);
    if (leases.ok()) {
      const int64_t now_ms = absl::ToUnixMillis(absl::Now());
      absl::MutexLock lock(&mu_);
      for (const ShardLease& lease : *leases) {
        if (lease.shard < 0 || lease.shard >= config_.shard_count ||
            lease.expires_at_ms <= now_ms || lease.owner == config_.node_id) {
          continue;
        }
        owners_[lease.shard] = lease.address;
      }
    }
  }
  return OwnerAddress(shard);
}

int ShardLeaseKeeper::held_shards() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(held_.size());
}

void ShardLeaseKeeper::Lose(int shard, std::string_view why, ShardLeaseChange change) {
  {
    absl::MutexLock lock(&mu_);
    if (held_.erase(shard) == 0) return;
    // Not ours any more, and the next holder is unknown until a round
    // reads the table: never point callers back at ourselves.
    owners_.erase(shard);
  }
  CountChange(change);
  UpdateHeldGauge();
  Log(LogLevel::kDebug, "shard_lost", {{"shard", shard}, {"reason", why}});
  on_lost_(shard);
}

void ShardLeaseKeeper::CountChange(ShardLeaseChange change) {
  if (metrics_ != nullptr) metrics_->CountShardLeaseChange(change);
}

void ShardLeaseKeeper::CountStoreError(StoreOp op) {
  if (metrics_ != nullptr) metrics_->CountStoreError(op);
}

void ShardLeaseKeeper::UpdateHeldGauge() {
  if (metrics_ != nullptr) metrics_->SetShardLeasesHeld(held_shards());
}

bool ShardLeaseKeeper::RunRound() {
  absl::MutexLock round(&round_mu_);
  const int64_t ttl_ms = absl::ToInt64Milliseconds(config_.ttl);
  const absl::Time started = absl::Now();
  // Hungry rounds in between only take shards: announcing and renewing
  // keep to round_every.
  const bool renew = started >= next_renewal_;
  if (renew) {
    next_renewal_ = started + config_.round_every;
    if (absl::Status s = store_.AnnounceNode(config_.node_id, config_.address, ttl_ms); !s.ok()) {
      CountStoreError(StoreOp::kAnnounce);
      Log(LogLevel::kWarning, "node_announce_failed",
          {{"code", absl::StatusCodeToString(s.code())}});
    }
  }

  // 1. Renew what we hold; a lease someone else took is lost now, one we
  // could not renew is lost once our deadline passes.
  std::map<int, Held> held;
  {
    absl::MutexLock lock(&mu_);
    held = held_;
  }
  for (const auto& [shard, lease] : held) {
    if (!renew) {
      if (absl::Now() >= lease.deadline) {
        Lose(shard, "lease not renewed in time", ShardLeaseChange::kLost);
      }
      continue;
    }
    absl::StatusOr<ShardLease> renewed =
        store_.RenewShardLease(shard, config_.node_id, lease.epoch, ttl_ms);
    if (renewed.ok()) {
      absl::MutexLock lock(&mu_);
      auto it = held_.find(shard);
      if (it != held_.end() && it->second.epoch == lease.epoch) it->second.deadline = started + config_.ttl;
    } else if (renewed.status().code() == absl::StatusCode::kFailedPrecondition) {
      CountChange(ShardLeaseChange::kRenewalFailed);
      Lose(shard, "taken by another node", ShardLeaseChange::kLost);
    } else {
      CountChange(ShardLeaseChange::kRenewalFailed);
      CountStoreError(StoreOp::kRenew);
      if (absl::Now() >= lease.deadline) {
        Lose(shard, "lease not renewed in time", ShardLeaseChange::kLost);
      }
    }
  }

  // 2. The members and the table: free or expired shards, and our share.
  absl::StatusOr<std::vector<ClusterNode>> nodes = store_.ListLiveNodes();
  absl::StatusOr<std::vector<ShardLease>> leases = store_.ListShardLeases();
  if (!nodes.ok() || !leases.ok()) {
    CountStoreError(StoreOp::kLeaseTable);
    Log(LogLevel::kWarning, "shard_table_unreadable",
        {{"code", absl::StatusCodeToString((nodes.ok() ? leases.status() : nodes.status()).code())}});
    return false;
  }
  const size_t members = std::max<size_t>(1, nodes->size());
  const int share = static_cast<int>((config_.shard_count + members - 1) / members);
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  std::vector<bool> taken(config_.shard_count, false);
  std::map<std::string, int> held_by;  // node id -> unexpired leases
  {
    absl::MutexLock lock(&mu_);
    owners_.clear();
    for (const ShardLease& lease : *leases) {
      if (lease.shard >= config_.shard_count || lease.expires_at_ms <= now_ms) continue;
      taken[lease.shard] = true;
      owners_[lease.shard] = lease.address;
      ++held_by[lease.owner];
    }
  }
  // Shards that will come free without anyone's failure: held beyond a
  // member's share (handed over in its next round) or by a node that is no
  // longer a member (expiring).
  bool shards_coming_free = false;
  for (const auto& [owner, count] : held_by) {
    const bool member = std::any_of(nodes->begin(), nodes->end(),
                                    [&](const ClusterNode& n) { return n.node_id == owner; });
    if (owner != config_.node_id && (!member || count > share)) shards_coming_free = true;
  }
  std::vector<int> free;
  for (int shard = 0; shard < config_.shard_count; ++shard) {
    if (!taken[shard]) free.push_back(shard);
  }
  // Nodes starting together try different shards first.
  if (!free.empty()) {
    const size_t offset = std::hash<std::string>()(config_.node_id) % free.size();
    std::rotate(free.begin(), free.begin() + static_cast<std::ptrdiff_t>(offset), free.end());
  }

  // 3. Take free shards up to our share.
  int mine = held_shards();
  bool lost_a_race = false;
  for (int shard : free) {
    if (mine >= share || stop_.HasBeenNotified()) break;
    const absl::Time asked = absl::Now();
    absl::StatusOr<ShardLease> lease =
        store_.AcquireShardLease(shard, config_.node_id, config_.address, ttl_ms);
    if (!lease.ok()) {
      CountStoreError(StoreOp::kAcquire);
      lost_a_race = true;  // the store failed: try again soon
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (lease->owner == config_.node_id) {
      held_[shard] = Held{lease->epoch, asked + config_.ttl};
      ++mine;
      CountChange(ShardLeaseChange::kAcquired);
    } else {
      owners_[shard] = lease->address;
      lost_a_race = true;
    }
  }
  const bool hungry = mine < share && (shards_coming_free || lost_a_race);

  // 4. Hand over what exceeds our share: the members that hold less take
  // the released shards in their next round, without waiting for expiry.
  const int before_hand_over = mine;
  if (mine > share) {
    std::map<int, Held> now_held;
    {
      absl::MutexLock lock(&mu_);
      now_held = held_;
    }
    for (auto it = now_held.rbegin(); it != now_held.rend() && mine > share; ++it, --mine) {
      Lose(it->first, "handed over to balance shards", ShardLeaseChange::kReleased);
      if (absl::Status s = store_.ReleaseShardLease(it->first, config_.node_id, it->second.epoch);
          !s.ok()) {
        CountStoreError(StoreOp::kRelease);
        Log(LogLevel::kWarning, "shard_release_failed",
            {{"shard", it->first}, {"code", absl::StatusCodeToString(s.code())}});
      }
    }
  }
  UpdateHeldGauge();
  if (mine != static_cast<int>(held.size())) {
    Log(LogLevel::kInfo, "shard_leases",
        {{"held", mine},
         {"before", static_cast<int64_t>(held.size())},
         {"handed_over", before_hand_over - mine},
         {"members", static_cast<int64_t>(members)}});
  }
  return hungry;
}

}  // namespace roomsync
