// A latency histogram with bounded relative error, in microseconds.
//
// Log-linear buckets (the HdrHistogram layout): values below 64 us have
// their own bucket; above, each power of two is split into 32 linear
// sub-buckets, so every reported percentile is within ~3% of the truth
// while the histogram stays a fixed 2 KiB array that can be merged across
// threads. Not thread-safe: each worker thread records into its own and
// the scenario merges them at the end.
#ifndef ROOMSYNC_BENCH_HISTOGRAM_H_
#define ROOMSYNC_BENCH_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace roomsync::bench {

class Histogram {
 public:
  void Record(int64_t micros);
  void Merge(const Histogram& other);

  int64_t count() const { return count_; }
  int64_t max_us() const { return max_; }
  double mean_us() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The smallest recorded value v such that at least q of the samples are
  // <= v (q in [0, 1]); 0 when empty. Reported as the bucket's upper edge.
  int64_t Percentile(double q) const;

 private:
  static constexpr int kSubBuckets = 32;
  static constexpr int kLinearLimit = 64;
  // 64 linear + 32 per power of two from 2^6 to 2^40 us (~12 days).
  static constexpr int kBuckets = kLinearLimit + kSubBuckets * 35;
  static int BucketOf(int64_t micros);
  static int64_t UpperEdge(int bucket);

  std::array<int64_t, kBuckets> counts_{};
  int64_t count_ = 0;
  int64_t sum_ = 0;
  int64_t max_ = 0;
};

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_HISTOGRAM_H_
