// The gateway's upstream subscriptions, one per room with SSE sessions
// (RoomFanout), carried in one of two ways:
//   - on the room node's Watch call (default): one call per room node the
//     gateway routes to, however many rooms; a room's subscribe/unsubscribe
//     go up it and its change batches come down it;
//   - on a Subscribe call of the room's own (--upstream_streams=per_room,
//     the design before Watch, kept for internal clients and comparison).
// Either reports to the fan-out in the same terms (RoomFanout::Upstream*).
#ifndef ROOMSYNC_GATEWAY_UPSTREAM_STREAMS_H_
#define ROOMSYNC_GATEWAY_UPSTREAM_STREAMS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace roomsync {
namespace v1 {
class Checkpoint;
}  // namespace v1

struct GatewayContext;
class RoomFanout;
class RoomUpstream;
class WatchCall;

// Subscribes `fanout`'s room (subscription `generation`) on a Subscribe
// call of its own, from `from` when set (else live only).
std::shared_ptr<RoomUpstream> SubscribePerRoom(GatewayContext& context,
                                               std::shared_ptr<RoomFanout> fanout,
                                               uint64_t generation,
                                               const std::optional<v1::Checkpoint>& from);

// The gateway's Watch calls, at most one per room node. Thread-safe.
class WatchCalls {
 public:
  explicit WatchCalls(GatewayContext& context);
  ~WatchCalls();

  // Subscribes as SubscribePerRoom does, on the Watch call of the room's
  // node (opened when there is none); null when that call could not take
  // it (it had just ended): the caller retries.
  std::shared_ptr<RoomUpstream> Subscribe(std::shared_ptr<RoomFanout> fanout,
                                          uint64_t generation,
                                          const std::optional<v1::Checkpoint>& from);
  // Forgets `call` if it is still node's.
  void Remove(int node, const WatchCall* call);
  // Drain: cancels every call.
  void CancelAll();
  int open() const;

 private:
  GatewayContext& context_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<WatchCall>> calls_ ABSL_GUARDED_BY(mu_);  // by node index
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_UPSTREAM_STREAMS_H_
