#include "gateway/token_buckets.h"

#include <algorithm>
#include <vector>

#include "base/string_view.h"

namespace roomsync {

TokenBuckets::TokenBuckets(double rate_per_second, double burst, size_t max_keys)
    : rate_(std::max(rate_per_second, 0.0)),
      burst_(std::max(burst, 1.0)),
      max_keys_(std::max<size_t>(max_keys, 1)) {}

double TokenBuckets::Refilled(const Bucket& bucket, absl::Time now) const {
  double elapsed = std::max(absl::ToDoubleSeconds(now - bucket.updated), 0.0);
  return std::min(burst_, bucket.tokens + elapsed * rate_);
}

std::optional<absl::Duration> TokenBuckets::Take(std::string_view key, double cost,
                                                 absl::Time now) {
  if (rate_ == 0) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(ToAbsl(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) MakeRoom(now);
    it = buckets_.emplace(std::string(key), Bucket{burst_, now}).first;
  }
  Bucket& bucket = it->second;
  bucket.tokens = Refilled(bucket, now);
  bucket.updated = now;
  // Asking for more than a full bucket: wait for a full bucket, then go
  // into debt (see the header).
  double needed = std::min(cost, burst_);
  if (bucket.tokens < needed) return absl::Seconds((needed - bucket.tokens) / rate_);
  bucket.tokens -= cost;
  return std::nullopt;
}

void TokenBuckets::MakeRoom(absl::Time now) {
  absl::erase_if(buckets_, [&](const auto& entry) { return Refilled(entry.second, now) >= burst_; });
  if (buckets_.size() < max_keys_) return;
  // Still full of active keys: drop the longest-idle tenth, so this O(n)
  // pass runs at most once per max_keys/10 new keys.
  std::vector<absl::Time> updated;
  updated.reserve(buckets_.size());
  for (const auto& [key, bucket] : buckets_) updated.push_back(bucket.updated);
  size_t drop = std::max<size_t>(buckets_.size() / 10, 1);
  std::nth_element(updated.begin(), updated.begin() + (drop - 1), updated.end());
  absl::Time cutoff = updated[drop - 1];
  absl::erase_if(buckets_, [&](const auto& entry) { return entry.second.updated <= cutoff; });
}

size_t TokenBuckets::size() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

bool StreamCounts::TryAcquire(const std::string& key) {
  if (max_per_key_ <= 0) return true;
  absl::MutexLock lock(&mu_);
  int& open = open_[key];
  if (open >= max_per_key_) return false;
  ++open;
  return true;
}

void StreamCounts::Release(const std::string& key) {
  if (max_per_key_ <= 0) return;
  absl::MutexLock lock(&mu_);
  auto it = open_.find(key);
  if (it == open_.end()) return;
  if (--it->second <= 0) open_.erase(it);
}

}  // namespace roomsync
