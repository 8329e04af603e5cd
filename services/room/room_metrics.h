// The room service's Prometheus metrics. Thread-safe (prometheus-cpp
// metrics are atomics); prometheus headers stay out of this header so the
// rooms' code does not pay for them.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_METRICS_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_METRICS_H_

#include <cstddef>
#include <memory>
#include <string_view>

#include "absl/time/time.h"
#include "services/room/conflict_resolver.h"
#include "services/room/room_config.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace roomsync {

class RoomMetrics {
 public:
  // Registers the metrics in `registry` (which must outlive this object).
  explicit RoomMetrics(prometheus::Registry& registry);
  ~RoomMetrics();

  void CountPush(size_t documents, bool ok);
  void CountDecision(ConflictPolicy policy, Decision decision);
  // A push refused because the room's stored-bytes quota would be exceeded.
  void CountQuotaRefusal();
  // A group committed without a Lookup on the guess that its keys are new
  // (hit), or found one stored and was redone with a Lookup (miss).
  void CountNewKeyGuess(bool hit);
  // One group commit: how many pushes it answered, how many documents it
  // wrote, how long it took. `ok` false for failed commits.
  void ObserveCommit(size_t pushes, size_t documents, absl::Duration latency, bool ok);
  // `op` is "pull", "history" or "subscribe".
  void CountRead(std::string_view op, bool from_cache);
  void SetSubscribersDelta(int delta);
  void SetActiveRooms(size_t rooms);

  // Totals, for tests and logs.
  double commits() const;
  double pushes() const;

 private:
  struct Families;
  std::unique_ptr<Families> m_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_METRICS_H_
