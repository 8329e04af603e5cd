// The room nodes a gateway calls. First the configured ones
// (--room_service, in order: the static map's nodes); then, when the lease
// table or a wrong-owner answer names an owner at an address that is not
// configured, that node too (discovery), so that room nodes can be added
// without reconfiguring gateways. Append-only, up to kMaxNodes, with
// lock-free reads: every upstream call looks its node up.
#ifndef ROOMSYNC_GATEWAY_ROOM_NODE_SET_H_
#define ROOMSYNC_GATEWAY_ROOM_NODE_SET_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "gateway/gateway.h"
#include "roomsync/v1/roomsync.grpc.pb.h"

namespace roomsync {

class RoomNodeSet {
 public:
  struct Node {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;  // readiness probe, RoomCluster
    std::unique_ptr<v1::RoomSync::Stub> stub;
  };
  // A gateway follows at most this many nodes; an owner beyond them is
  // reached through a configured node's refusals (one extra round trip),
  // never by growing without bound.
  static constexpr int kMaxNodes = 64;

  // `open` makes a channel to a discovered address (the configured
  // channels' credentials); null turns discovery off.
  RoomNodeSet(std::vector<RoomNodeChannel> configured, RoomNodeOpener open);

  int configured() const { return configured_; }
  int size() const { return size_.load(std::memory_order_acquire); }
  bool discovers() const { return open_ != nullptr; }
  const Node& at(int index) const { return *nodes_[static_cast<size_t>(index)]; }

  // The node's index, or -1.
  int IndexOf(std::string_view address) const;
  // IndexOf, else a new node's index when discovery is on and there is
  // room; -1 otherwise.
  int FindOrAdd(std::string_view address);

 private:
  const int configured_;
  const RoomNodeOpener open_;
  std::array<std::unique_ptr<Node>, kMaxNodes> nodes_;  // [0, size_) are set
  std::atomic<int> size_{0};
  absl::Mutex add_mu_;  // one writer at a time; readers take no lock
  // Addresses that could not be followed (no room, or no channel: a
  // configuration error a restart fixes). The lease table names each owner
  // every second for every shard: each is tried and logged once, not at
  // every answer (up to 1,024 remembered).
  absl::flat_hash_set<std::string> not_followed_ ABSL_GUARDED_BY(add_mu_);
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_ROOM_NODE_SET_H_
