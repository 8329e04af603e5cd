// A minimal streaming JSON writer for the reports. Written by hand because
// Debian 12's Boost (1.74) predates Boost.JSON and simdjson only parses;
// the reports need objects, arrays, numbers and ASCII strings, nothing
// more. Misuse (a value without a key inside an object) is the caller's bug.
#ifndef ROOMSYNC_BENCH_JSON_WRITER_H_
#define ROOMSYNC_BENCH_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/histogram.h"

namespace roomsync::bench {

class JsonWriter {
 public:
  JsonWriter& BeginObject(std::string_view key = {});
  JsonWriter& EndObject();
  JsonWriter& BeginArray(std::string_view key = {});
  JsonWriter& EndArray();
  JsonWriter& Int(std::string_view key, int64_t value);
  JsonWriter& Double(std::string_view key, double value);
  JsonWriter& String(std::string_view key, std::string_view value);
  JsonWriter& Bool(std::string_view key, bool value);
  // {"count":…,"mean_us":…,"p50_us":…,"p90_us":…,"p99_us":…,"max_us":…}
  JsonWriter& Latency(std::string_view key, const Histogram& histogram);

  const std::string& str() const { return out_; }

 private:
  void Key(std::string_view key);
  std::string out_;
  // Whether the current container already holds a member (comma needed).
  std::vector<bool> has_member_{false};
};

// The human summary line of a latency histogram: "p50 1.2 ms  p90 …".
std::string LatencySummary(const Histogram& histogram);

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_JSON_WRITER_H_
