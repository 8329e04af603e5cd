#include "bench/json_writer.h"

#include <cmath>
#include <cstdio>

namespace roomsync::bench {
namespace {

void AppendEscaped(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

void JsonWriter::Key(std::string_view key) {
  if (has_member_.back()) out_ += ',';
  has_member_.back() = true;
  if (!key.empty()) {
    AppendEscaped(out_, key);
    out_ += ':';
  }
}

JsonWriter& JsonWriter::BeginObject(std::string_view key) {
  Key(key);
  out_ += '{';
  has_member_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  out_ += '}';
  has_member_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::BeginArray(std::string_view key) {
  Key(key);
  out_ += '[';
  has_member_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  out_ += ']';
  has_member_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::Int(std::string_view key, int64_t value) {
  Key(key);
  out_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Double(std::string_view key, double value) {
  Key(key);
  if (!std::isfinite(value)) {
    out_ += "null";  // JSON has no NaN/Infinity
    return *this;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", value);
  out_ += buf;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view key, std::string_view value) {
  Key(key);
  AppendEscaped(out_, value);
  return *this;
}

JsonWriter& JsonWriter::Bool(std::string_view key, bool value) {
  Key(key);
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Latency(std::string_view key, const Histogram& h) {
  BeginObject(key);
  Int("count", h.count());
  Double("mean_us", h.mean_us());
  Int("p50_us", h.Percentile(0.50));
  Int("p90_us", h.Percentile(0.90));
  Int("p99_us", h.Percentile(0.99));
  Int("max_us", h.max_us());
  return EndObject();
}

std::string LatencySummary(const Histogram& h) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms (n=%lld)",
                h.Percentile(0.5) / 1e3, h.Percentile(0.9) / 1e3, h.Percentile(0.99) / 1e3,
                h.max_us() / 1e3, static_cast<long long>(h.count()));
  return buf;
}

}  // namespace roomsync::bench
