#include "gateway/room_node_set.h"

#include <algorithm>
#include <utility>

#include <grpcpp/channel.h>

#include "base/log.h"
#include "base/string_view.h"

namespace roomsync {

RoomNodeSet::RoomNodeSet(std::vector<RoomNodeChannel> configured, RoomNodeOpener open)
    : configured_(static_cast<int>(std::min<size_t>(configured.size(), kMaxNodes))),
      open_(std::move(open)) {
  for (int i = 0; i < configured_; ++i) {
    RoomNodeChannel& node = configured[static_cast<size_t>(i)];
    auto stub = v1::RoomSync::NewStub(node.channel);
    nodes_[static_cast<size_t>(i)] = std::make_unique<Node>(
        Node{std::move(node.address), std::move(node.channel), std::move(stub)});
  }
  size_.store(configured_, std::memory_order_release);
}

int RoomNodeSet::IndexOf(std::string_view address) const {
  const int n = size();
  for (int i = 0; i < n; ++i) {
    if (nodes_[static_cast<size_t>(i)]->address == address) return i;
  }
  return -1;
}

int RoomNodeSet::FindOrAdd(std::string_view address) {
  if (int index = IndexOf(address); index >= 0 || open_ == nullptr || address.empty()) {
    return index;
  }
  absl::MutexLock lock(&add_mu_);
  if (int index = IndexOf(address); index >= 0) return index;  // added meanwhile
  if (not_followed_.contains(ToAbsl(address))) return -1;
  auto refuse = [&](std::string_view reason) {
    if (not_followed_.size() < 1024) not_followed_.emplace(std::string(address));
    Log(LogLevel::kWarning, "room_node_not_followed", {{"address", address}, {"reason", reason}});
    return -1;
  };
  const int n = size();
  if (n >= kMaxNodes) return refuse("the gateway follows at most 64 room nodes");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = open_(std::string(address));
  if (!channel.ok()) return refuse(std::string(channel.status().message()));
  auto stub = v1::RoomSync::NewStub(*channel);
  nodes_[static_cast<size_t>(n)] =
      std::make_unique<Node>(Node{std::string(address), *std::move(channel), std::move(stub)});
  // Readers see the slot only once it is complete.
  size_.store(n + 1, std::memory_order_release);
  Log(LogLevel::kInfo, "room_node_discovered", {{"address", address}, {"room_nodes", n + 1}});
  return n;
}

}  // namespace roomsync
