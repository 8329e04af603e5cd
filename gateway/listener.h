// Accepts TCP connections and starts an HttpSession on its own strand for
// each.
#ifndef ROOMSYNC_GATEWAY_LISTENER_H_
#define ROOMSYNC_GATEWAY_LISTENER_H_

#include <memory>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "absl/status/status.h"

namespace roomsync {

struct GatewayContext;

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(GatewayContext& context, boost::asio::io_context& io);

  // Binds and listens. kUnavailable when the address cannot be bound.
  absl::Status Open(const boost::asio::ip::tcp::endpoint& endpoint);
  int port() const { return port_; }
  void Run();
  // Stops accepting (any thread).
  void Stop();

 private:
  void Accept();

  GatewayContext& context_;
  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_LISTENER_H_
