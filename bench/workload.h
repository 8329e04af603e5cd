// What every scenario shares: worker threads each running their own
// io_context (connections never migrate, so per-thread counters need no
// locks and are merged at the end), chat-like documents, the server's
// memory and CPU from /proc, and the common flags.
#ifndef ROOMSYNC_BENCH_WORKLOAD_H_
#define ROOMSYNC_BENCH_WORKLOAD_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace roomsync::bench {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  int size() const { return static_cast<int>(contexts_.size()); }
  boost::asio::io_context& context(int i) { return *contexts_[i % contexts_.size()]; }
  // Lets the threads finish their queued work and joins them.
  void Join();

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
};

// A chat message as a client would push it: ~300 bytes, base64 iv and
// ciphertext (random, so nothing on the way can compress it), the client's
// clock as "timestamp", and "sent_us" (CLOCK_MONOTONIC) so that a
// subscriber can compute push-to-delivery latency. The server keeps both
// as opaque members.
std::string ChatDocument(std::string_view id, int64_t sent_us, size_t ciphertext_chars = 216);

// Resident memory (VmRSS) of the given processes, summed, in KiB; 0 when
// none can be read. CPU time (user + system) of the processes in µs.
int64_t ResidentKiB(const std::vector<int>& pids);
int64_t CpuMicros(const std::vector<int>& pids);
std::vector<int> ParsePids(const std::string& csv);

// Counts of failed requests by reason ("http 503", "connect: …").
using ErrorKinds = std::map<std::string, int64_t>;
void MergeErrors(ErrorKinds& into, const ErrorKinds& from);

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view text);

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_WORKLOAD_H_
