// roomsyncctl's connections to room nodes and what every remote command
// shares: the RoomAdmin stub built from the connection options (--target,
// --token_file, --tls_*, --grpc_plaintext, --timeout), error reporting and
// table output.
#ifndef ROOMSYNC_TOOLS_ROOMSYNCCTL_ADMIN_CONNECTION_H_
#define ROOMSYNC_TOOLS_ROOMSYNCCTL_ADMIN_CONNECTION_H_

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "roomsync/v1/roomsync_admin.grpc.pb.h"
#include "tools/roomsyncctl/args.h"

namespace roomsync::ctl {

// A connection to a room node's RoomAdmin service with the call options.
struct Admin {
  std::unique_ptr<v1::RoomAdmin::Stub> stub;
  std::shared_ptr<grpc::Channel> channel;  // also for the public RoomSync API
  std::string token;
  absl::Duration timeout = absl::Seconds(60);  // each call's deadline

  void Prepare(grpc::ClientContext& context) const;
};

// The channel to --target, or to `target` when given (another node of the
// cluster, reached with the same token and TLS options; with TLS and no
// --tls_server_name its certificate must name that address's host).
// kInvalidArgument: bad options; file errors as ReadNonEmptyFile's.
absl::StatusOr<Admin> Connect(const ParsedArgs& args,
                              const std::optional<std::string>& target = std::nullopt);

// "roomsyncctl: WHAT: CODE: message" on `err`; returns kExitError.
int Fail(std::ostream& err, const std::string& what, const absl::Status& status);
int Fail(std::ostream& err, const std::string& what, const grpc::Status& status);
absl::Status ToAbsl(const grpc::Status& status);

bool JsonOutput(const ParsedArgs& args);

// ms since the Unix epoch as 2024-05-01T10:00:00.000Z; "-" for 0.
std::string FormatTime(int64_t ms);

// Left-aligned columns, two spaces apart.
void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

}  // namespace roomsync::ctl

#endif  // ROOMSYNC_TOOLS_ROOMSYNCCTL_ADMIN_CONNECTION_H_
