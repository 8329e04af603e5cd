// Token buckets keyed by a string (a token subject, a client IP): the
// building block of the gateway's rate limits. Thread-safe.
//
// Memory is bounded: at most `max_keys` buckets are kept. A bucket that has
// refilled completely carries no information (a new one would be the
// same), so those are dropped first when the map is full; if that is not
// enough (a flood of distinct keys), the longest-idle ones go. An attacker
// with many addresses can therefore reset its own buckets, but never make
// the map grow or block other keys.
#ifndef ROOMSYNC_GATEWAY_TOKEN_BUCKETS_H_
#define ROOMSYNC_GATEWAY_TOKEN_BUCKETS_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace roomsync {

class TokenBuckets {
 public:
  // `rate_per_second` 0 = unlimited (Take always succeeds, nothing is
  // stored). A bucket holds at most `burst` tokens (at least 1).
  TokenBuckets(double rate_per_second, double burst, size_t max_keys);

  // Takes `cost` tokens from `key`'s bucket. nullopt: allowed. Otherwise
  // the wait until the request would be allowed (for Retry-After); nothing
  // is taken then. A cost above the burst is allowed on a full bucket and
  // leaves it in debt, so a large push is slowed down, not refused forever.
  std::optional<absl::Duration> Take(std::string_view key, double cost, absl::Time now);

  bool unlimited() const { return rate_ == 0; }
  size_t size() const;

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  double Refilled(const Bucket& bucket, absl::Time now) const;
  void MakeRoom(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const double rate_;
  const double burst_;
  const size_t max_keys_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

// Counts open streams per key against a cap. Thread-safe; keys with no open
// stream are not stored, so memory follows the number of open streams.
class StreamCounts {
 public:
  // `max_per_key` 0 = unlimited.
  explicit StreamCounts(int max_per_key) : max_per_key_(max_per_key) {}

  // False when `key` already holds max_per_key streams (nothing taken).
  bool TryAcquire(const std::string& key);
  void Release(const std::string& key);

 private:
  const int max_per_key_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_TOKEN_BUCKETS_H_
