// One Server-Sent Events subscriber, written on bare Asio rather than a
// Beast parser so that 10,000+ of them cost a socket and a 2 KiB read
// buffer each. It parses just what the bench measures: the response
// status, chunked or raw bodies, events separated by a blank line, and in
// each event's data every "sent_us":N that the publisher embedded (the
// push-to-delivery latency), plus the RESYNC signal.
//
// Runs on the io_context it was created with; not thread-safe.
#ifndef ROOMSYNC_BENCH_SSE_CONNECTION_H_
#define ROOMSYNC_BENCH_SSE_CONNECTION_H_

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "bench/histogram.h"

namespace roomsync::bench {

// Counters shared by the subscribers of one worker thread.
struct SseStats {
  Histogram delivery_latency;   // now - sent_us for each delivered document
  int64_t deliveries = 0;       // documents seen (each document, each subscriber)
  int64_t events = 0;
  int64_t resyncs = 0;
  int64_t connect_errors = 0;   // failed connects or non-200 answers
  int64_t disconnects = 0;      // streams that ended after opening
  int64_t opened = 0;           // streams that answered 200
  int64_t open = 0;             // streams open now
  // Latency is recorded only for documents sent in [from, until): the
  // warm-up and the tail do not count. Zero until the run sets it.
  int64_t window_from_us = 0;
  int64_t window_until_us = 0;
};

class SseConnection : public std::enable_shared_from_this<SseConnection> {
 public:
  // `source` (when not unspecified) is the local address to bind: one
  // source address has only ~28,000 ephemeral ports towards one server
  // port, so 50,000 loopback streams need several 127.0.0.x sources.
  SseConnection(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint endpoint,
                std::string request, SseStats* stats,
                boost::asio::ip::address source = {});
  // Connects and sends the request; `opened` runs once the response head
  // arrived (true for a 200) or the attempt failed (false).
  void Start(std::function<void(bool ok)> opened);
  void Close();

 private:
  void ReadSome();
  void OnBytes(std::string_view bytes);
  bool ParseHead();
  void FeedBody(std::string_view bytes);
  void OnEventBytes(std::string_view bytes);
  void OnEvent(std::string_view event);
  void Finish(bool ok);

  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::tcp::endpoint endpoint_;
  boost::asio::ip::address source_;
  std::string request_;
  SseStats* stats_;
  std::function<void(bool)> opened_;
  std::array<char, 2048> read_buffer_;
  std::string head_;      // until the response head is complete
  std::string pending_;   // bytes of an incomplete event (or chunk header)
  bool head_done_ = false;
  bool chunked_ = false;
  int64_t chunk_left_ = 0;  // body bytes left in the current chunk
  bool closed_ = false;
};

// Microseconds on CLOCK_MONOTONIC: the publisher and the subscribers read
// the same clock, in this process or another on the same machine.
int64_t MonotonicMicros();

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_SSE_CONNECTION_H_
