// "host:port" listen addresses, as every binary's --http, --metrics and
// --grpc flags take them.
#ifndef ROOMSYNC_OPS_LISTEN_ADDRESS_H_
#define ROOMSYNC_OPS_LISTEN_ADDRESS_H_

#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "absl/status/statusor.h"

namespace roomsync {

// Parses "host:port" ("[::1]:80", ":8080" = all interfaces, "localhost" =
// 127.0.0.1). kInvalidArgument for anything else (names are not resolved:
// a listener binds to an address, not to whatever DNS says today).
absl::StatusOr<boost::asio::ip::tcp::endpoint> ParseListenAddress(std::string_view address);

}  // namespace roomsync

#endif  // ROOMSYNC_OPS_LISTEN_ADDRESS_H_
