#include "gateway/listener.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "gateway/gateway_context.h"
#include "gateway/http_session.h"

namespace roomsync {
namespace net = boost::asio;
using tcp = net::ip::tcp;

Listener::Listener(GatewayContext& context, net::io_context& io)
    : context_(context), io_(io), acceptor_(net::make_strand(io)) {}

absl::Status Listener::Open(const tcp::endpoint& endpoint) {
  boost::system::error_code error;
  acceptor_.open(endpoint.protocol(), error);
  if (!error) acceptor_.set_option(net::socket_base::reuse_address(true), error);
  if (!error) acceptor_.bind(endpoint, error);
  if (!error) acceptor_.listen(net::socket_base::max_listen_connections, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", endpoint.address().to_string(), ":", endpoint.port(),
                     ": ", error.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  return absl::OkStatus();
}

void Listener::Run() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] { self->Accept(); });
}

void Listener::Stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

void Listener::Accept() {
  // Each connection gets its own strand: its handlers never run
  // concurrently, while connections spread over the I/O threads.
  acceptor_.async_accept(net::make_strand(io_), [self = shared_from_this()](
                                                    boost::system::error_code error,
                                                    tcp::socket socket) {
    if (error == net::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (error) {
      // EMFILE and friends: log and keep accepting rather than die.
      Log(LogLevel::kWarning, "accept_failed", {{"error", error.message()}});
    } else {
      socket.set_option(tcp::no_delay(true), error);
      std::make_shared<HttpSession>(self->context_, std::move(socket))->Run();
    }
    self->Accept();
  });
}

}  // namespace roomsync
