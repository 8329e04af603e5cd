#include "bench/histogram.h"

#include <algorithm>
#include <bit>

namespace roomsync::bench {

int Histogram::BucketOf(int64_t micros) {
  if (micros < kLinearLimit) return static_cast<int>(std::max<int64_t>(micros, 0));
  // Power-of-two band (6 for [64,128)), then 32 linear steps inside it.
  const int band = std::bit_width(static_cast<uint64_t>(micros)) - 1;
  const int shift = band - 5;
  const int sub = static_cast<int>((micros >> shift) - kSubBuckets);
  const int bucket = kLinearLimit + (band - 6) * kSubBuckets + sub;
  return std::min(bucket, kBuckets - 1);
}

int64_t Histogram::UpperEdge(int bucket) {
  if (bucket < kLinearLimit) return bucket;
  const int band = (bucket - kLinearLimit) / kSubBuckets + 6;
  const int sub = (bucket - kLinearLimit) % kSubBuckets;
  const int shift = band - 5;
  return ((static_cast<int64_t>(kSubBuckets + sub + 1)) << shift) - 1;
}

void Histogram::Record(int64_t micros) {
  ++counts_[BucketOf(micros)];
  ++count_;
  sum_ += micros;
  max_ = std::max(max_, micros);
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

int64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<int64_t>(q * static_cast<double>(count_) + 0.5);
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= std::max<int64_t>(rank, 1)) return std::min(UpperEdge(i), max_);
  }
  return max_;
}

}  // namespace roomsync::bench
