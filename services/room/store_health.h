// Whether this node's store answers, for health checks (/readyz and gRPC
// health; room_server.cc). A thread pings the store (Store::Ping: one short
// query that also checks the schema) every `period`. The store counts as
// reachable while the last ping succeeded and the one in flight, if any,
// has run for less than `deadline`: a store that hangs (a stopped server,
// a dropped network) makes the node unready after `deadline`, without
// waiting for TCP to give up, and one that refuses makes it unready at
// once.
//
// Thread-safe. At most one ping is in flight: a hung one is waited out
// rather than piled onto.
#ifndef ROOMSYNC_SERVICES_ROOM_STORE_HEALTH_H_
#define ROOMSYNC_SERVICES_ROOM_STORE_HEALTH_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/room/room_config.h"  // StoreHealthOptions

namespace roomsync {

class Store;

class StoreHealth {
 public:
  // `on_change(reachable)` runs on the health thread each time the verdict
  // changes. The store counts as reachable until the first ping says
  // otherwise (it was reachable a moment ago: it was just opened).
  StoreHealth(Store& store, StoreHealthOptions options, std::function<void(bool)> on_change);
  ~StoreHealth();  // Stop()

  void Start();
  // Waits for a ping in flight to end: at most the store's own timeouts.
  void Stop();

  // OK while reachable; otherwise why not (kUnavailable: no answer within
  // the deadline or a refused connection; kFailedPrecondition: the schema).
  // The message names host and port at most, never a password.
  absl::Status Verdict() const;

 private:
  void Judge();   // the health thread: asks for pings, applies the deadline
  void Pinger();  // the pinger thread: runs them
  void Set(absl::Status verdict) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store& store_;
  const StoreHealthOptions options_;
  const std::function<void(bool)> on_change_;

  mutable absl::Mutex mu_;
  absl::Status verdict_ ABSL_GUARDED_BY(mu_);
  bool reported_reachable_ ABSL_GUARDED_BY(mu_) = true;
  bool ping_wanted_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t pings_done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_ping_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread judge_;
  std::thread pinger_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_STORE_HEALTH_H_
