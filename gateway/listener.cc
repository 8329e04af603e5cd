#include "gateway/listener.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/string_view.h"
#include "gateway/gateway_context.h"
#include "gateway/http_session.h"

namespace roomsync {
namespace net = boost::asio;
using tcp = net::ip::tcp;

absl::StatusOr<tcp::endpoint> ParseListenAddress(std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", ToAbsl(address), "\" is not host:port"));
  }
  std::string_view host = address.substr(0, colon);
  int port = 0;
  if (!absl::SimpleAtoi(ToAbsl(address.substr(colon + 1)), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", ToAbsl(address), "\" has no valid port"));
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code error;
  net::ip::address ip = net::ip::make_address(std::string(host), error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", ToAbsl(address), "\" needs a numeric IP"));
  }
  return tcp::endpoint(ip, static_cast<unsigned short>(port));
}

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
