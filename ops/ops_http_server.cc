#include "ops/ops_http_server.h"

#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/str_cat.h"
#include "ops/listen_address.h"

namespace roomsync {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr std::chrono::seconds kRequestTimeout{10};
constexpr size_t kMaxRequestHeadBytes = 8 * 1024;

struct Shared {
  OpsRoutes routes;
  int connections = 0;  // only touched on the server's one thread
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Shared& shared) : stream_(std::move(socket)), shared_(shared) {
    ++shared_.connections;
  }
  ~Session() { --shared_.connections; }

  void Read() {
    parser_.emplace();
    parser_->header_limit(kMaxRequestHeadBytes);
    parser_->body_limit(0);
    stream_.expires_after(kRequestTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code error, size_t) {
                       self->OnRead(error);
                     });
  }

 private:
  void OnRead(beast::error_code error) {
    if (error) {
      // A head or body over its limit is the client's fault: say so. Any
      // other error (closed, timed out) just ends the connection.
      if (error == http::error::header_limit || error == http::error::body_limit) {
        Reply(Answer(431, "request too large\n"), /*keep_alive=*/false);
      }
      return;
    }
    const http::request<http::empty_body>& request = parser_->get();
    std::string_view target(request.target().data(), request.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    OpsResponse response;
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response = Answer(405, "only GET and HEAD\n");
    } else if (auto route = shared_.routes.find(path); route != shared_.routes.end()) {
      response = route->second();
    } else {
      response = Answer(404, "not found\n");
    }
    head_only_ = request.method() == http::verb::head;
    Reply(std::move(response), request.keep_alive());
  }

  static OpsResponse Answer(unsigned status, std::string body) {
    OpsResponse response;
    response.status = status;
    response.body = std::move(body);
    return response;
  }

  void Reply(OpsResponse response, bool keep_alive) {
    response_.emplace(static_cast<http::status>(response.status), 11);
    response_->set(http::field::content_type, response.content_type);
    response_->set(http::field::cache_control, "no-store");
    response_->keep_alive(keep_alive);
    response_->body() = std::move(response.body);
    response_->prepare_payload();
    if (head_only_) response_->body().clear();  // Content-Length stays the GET's
    stream_.expires_after(kRequestTimeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), keep_alive](beast::error_code error, size_t) {
                        if (!error && keep_alive) self->Read();
                      });
  }

  beast::tcp_stream stream_;
  Shared& shared_;
  beast::flat_buffer buffer_{kMaxRequestHeadBytes};
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  bool head_only_ = false;
};

class OpsHttpServerImpl final : public OpsHttpServer {
 public:
  explicit OpsHttpServerImpl(OpsRoutes routes) : shared_{std::move(routes)}, acceptor_(io_) {}

  ~OpsHttpServerImpl() override {
    io_.stop();  // drops every pending handler and with them the sessions
    if (thread_.joinable()) thread_.join();
  }

  absl::Status Open(const tcp::endpoint& endpoint) {
    boost::system::error_code error;
    acceptor_.open(endpoint.protocol(), error);
    if (!error) acceptor_.set_option(net::socket_base::reuse_address(true), error);
    if (!error) acceptor_.bind(endpoint, error);
    if (!error) acceptor_.listen(net::socket_base::max_listen_connections, error);
    if (error) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ",
                                                 endpoint.address().to_string(), ":",
                                                 endpoint.port(), ": ", error.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return absl::OkStatus();
  }

  int port() const override { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code error, tcp::socket socket) {
      if (error == net::error::operation_aborted) return;
      // Over the bound, the connection is closed unanswered: a scraper or
      // probe retries, and a flood costs no memory.
      if (!error && shared_.connections < kMaxConnections) {
        std::make_shared<Session>(std::move(socket), shared_)->Read();
      }
      Accept();
    });
  }

  // Before io_: sessions that io_'s destructor frees still count down in it.
  Shared shared_;
  net::io_context io_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<OpsHttpServer>> OpsHttpServer::Start(std::string_view address,
                                                                    OpsRoutes routes) {
  absl::StatusOr<tcp::endpoint> endpoint = ParseListenAddress(address);
  if (!endpoint.ok()) return endpoint.status();
  auto server = std::make_unique<OpsHttpServerImpl>(std::move(routes));
  if (absl::Status opened = server->Open(*endpoint); !opened.ok()) return opened;
  return server;
}

OpsResponse MetricsResponse(prometheus::Collectable& registry) {
  OpsResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = prometheus::TextSerializer().Serialize(registry.Collect());
  return response;
}

}  // namespace roomsync
