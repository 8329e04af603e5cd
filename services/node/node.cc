#include "services/node/node.h"

#include <filesystem>
#include <system_error>

#include <grpcpp/channel.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/string_view.h"

namespace roomsync {
namespace {

// SQLite creates the file but not its directory; a new user's first
// `roomsync` run should just work.
absl::Status CreateSqliteDirectory(std::string_view store_url) {
  if (!absl::StartsWith(ToAbsl(store_url), "sqlite:")) return absl::OkStatus();
  std::filesystem::path path(std::string(store_url.substr(7)));
  if (!path.has_parent_path()) return absl::OkStatus();
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot create ", path.parent_path().string(),
                                               ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Node>> Node::Start(const NodeConfig& config) {
  absl::Status directory = CreateSqliteDirectory(config.room.store_url);
  if (!directory.ok()) return directory;
  std::unique_ptr<Node> node(new Node());
  absl::StatusOr<std::unique_ptr<RoomServer>> room = RoomServer::Start(config.room);
  if (!room.ok()) return room.status();
  node->room_server_ = *std::move(room);
  // The gateway must enforce the same document limits as the room service.
  GatewayConfig gateway_config = config.gateway;
  gateway_config.limits = config.room.service.limits;
  absl::StatusOr<std::unique_ptr<Gateway>> gateway =
      Gateway::Start(gateway_config, node->room_server_->InProcessChannel(),
                     config.direct_room_calls ? &node->room_server_->DirectCalls() : nullptr);
  if (!gateway.ok()) {
    node->room_server_->Drain(absl::Seconds(1));
    return gateway.status();
  }
  node->gateway_ = *std::move(gateway);
  return node;
}

Node::~Node() { Drain(absl::Seconds(1)); }

void Node::Drain(absl::Duration grace) {
  if (gateway_ != nullptr) gateway_->Drain(grace);
  if (room_server_ != nullptr) room_server_->Drain(grace);
}

}  // namespace roomsync
