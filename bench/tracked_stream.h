// An SSE subscriber that keeps a per-connection record of what it saw, for
// the stream scenarios (bench/stream_scenarios.h) that must prove "nothing
// lost, nothing duplicated, RESYNC instead of a silent gap" per client,
// not just count deliveries like SseConnection does.
//
// The publisher of those scenarios names its documents "n<index>", with
// index 0, 1, 2, … in commit order (one push in flight at a time), so a
// subscriber can check that the indexes it receives are contiguous. It can
// also read slowly (a throttled read loop over a small SO_RCVBUF, like a
// phone on a bad link), send Last-Event-ID, and call a hook after every
// document. Runs on the io_context it was created with; not thread-safe.
#ifndef ROOMSYNC_BENCH_TRACKED_STREAM_H_
#define ROOMSYNC_BENCH_TRACKED_STREAM_H_

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "bench/histogram.h"

namespace roomsync::bench {

// Where a stream's latencies go: documents whose sent_us falls in
// [from_us, until_us) are recorded into `latency`; `second` is an optional
// second window (e.g. "during churn") with its own histogram.
struct LatencySink {
  Histogram latency;
  int64_t from_us = 0;
  int64_t until_us = 0;
  Histogram second_latency;
  int64_t second_from_us = 0;
  int64_t second_until_us = 0;
};

struct StreamRecord {
  enum class End { kOpen, kClosedByUs, kServerClosed, kResync, kConnectFailed };
  End end = End::kOpen;
  bool opened = false;
  int64_t opened_us = 0;       // MonotonicMicros when the 200 head arrived
  int64_t first_event_us = 0;  // first event carrying documents
  int64_t last_document_us = 0;  // when the latest document arrived
  int64_t resync_us = 0;       // when RESYNC arrived
  int64_t ended_us = 0;        // when the stream ended (either side)
  int64_t first_index = -1;    // first document index received
  int64_t last_index = -1;     // highest contiguous index received
  int64_t documents = 0;
  int64_t gaps = 0;            // index jumps (a document skipped silently)
  int64_t skipped = 0;         // documents skipped by those jumps
  int64_t duplicates = 0;      // an index at or below one already seen
  int64_t after_resync = 0;    // events after RESYNC (must not exist)
  int64_t bytes = 0;           // body bytes read
  std::string last_event_id;   // the last "id:" line's value
  std::string error;           // why the connect failed, if it did
};

struct StreamOptions {
  std::string request;                  // the whole HTTP request
  boost::asio::ip::address source;      // local address to bind, if set
  int receive_buffer = 0;               // SO_RCVBUF before connect; 0 = default
  // TCP_MAXSEG before connect; 0 = default. Loopback's 64 KiB MSS lets
  // Linux grow the server's send buffer to tcp_wmem's 4 MiB for a reader
  // that advertises a tiny window; an Ethernet-sized MSS keeps the
  // server's kernel buffer near what a real client's connection gets.
  int max_segment = 0;
  double read_bytes_per_s = 0;          // 0 = read as fast as possible
  LatencySink* sink = nullptr;          // may be null
};

class TrackedStream : public std::enable_shared_from_this<TrackedStream> {
 public:
  TrackedStream(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint endpoint,
                StreamOptions options);
  // `opened` runs once: true when the 200 head arrived, false on failure.
  void Start(std::function<void(bool ok)> opened);
  void Close();
  // Runs after every document (and once on RESYNC with `resync` true).
  void set_on_document(std::function<void(TrackedStream&, bool resync)> hook) {
    on_document_ = std::move(hook);
  }
  const StreamRecord& record() const { return record_; }
  // Changes the read rate (0 = as fast as possible) from now on.
  void SetReadRate(double bytes_per_s);

 private:
  void ReadSome();
  void OnBytes(std::string_view bytes);
  void OnBody(std::string_view bytes);
  void OnEvent(std::string_view event);
  void Fail(std::string error);
  void Ended(StreamRecord::End how);

  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer throttle_;
  boost::asio::ip::tcp::endpoint endpoint_;
  StreamOptions options_;
  std::function<void(bool)> opened_;
  std::function<void(TrackedStream&, bool)> on_document_;
  std::array<char, 4096> read_buffer_;
  std::string head_;
  std::string pending_;
  bool head_done_ = false;
  bool finished_ = false;
  StreamRecord record_;
};

// "GET <target> HTTP/1.1" for an SSE stream, with Last-Event-ID when given.
std::string StreamRequest(const std::string& host, const std::string& target,
                          const std::string& last_event_id = {});

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_TRACKED_STREAM_H_
