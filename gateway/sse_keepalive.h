// ONE timer for every SSE session of the gateway (not a timer per
// connection, which would cost memory per idle client): each tick queues the
// shared ": keep-alive" frame on every session and lets sessions whose socket
// stalled close themselves. Thread-safe.
#ifndef ROOMSYNC_GATEWAY_SSE_KEEPALIVE_H_
#define ROOMSYNC_GATEWAY_SSE_KEEPALIVE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace roomsync {

class SseSession;

class SseKeepAlive {
 public:
  SseKeepAlive(boost::asio::io_context& io, absl::Duration interval);

  void Start();
  // Stops the timer; pending ticks become no-ops.
  void Stop();

  void Add(const std::shared_ptr<SseSession>& session);
  void Remove(uint64_t session_id);
  // Every registered session still alive (for drain).
  std::vector<std::shared_ptr<SseSession>> Sessions();

 private:
  void ScheduleTick();
  void Tick();

  const absl::Duration interval_;
  boost::asio::steady_timer timer_;
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, std::weak_ptr<SseSession>> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_SSE_KEEPALIVE_H_
