#include "bench/http_connection.h"

#include <boost/asio/connect.hpp>
#include <stdexcept>

namespace roomsync::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

bool ParseUrl(std::string_view text, Url* url) {
  constexpr std::string_view kScheme = "http://";
  if (!text.starts_with(kScheme)) return false;
  text.remove_prefix(kScheme.size());
  const size_t slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  url->target = slash == std::string_view::npos ? "/" : std::string(text.substr(slash));
  const size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    url->host = std::string(authority);
    url->port = "80";
  } else {
    url->host = std::string(authority.substr(0, colon));
    url->port = std::string(authority.substr(colon + 1));
  }
  return !url->host.empty();
}

tcp::endpoint Resolve(const Url& url) {
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(url.host, url.port);
  if (results.empty()) throw std::runtime_error("cannot resolve " + url.host);
  return *results.begin();
}

HttpConnection::HttpConnection(asio::io_context& io, tcp::endpoint endpoint,
                               std::string host_header)
    : stream_(io), endpoint_(endpoint), host_header_(std::move(host_header)) {}

void HttpConnection::Request(http::verb method, std::string target, std::string body,
                             Done done) {
  done_ = std::move(done);
  request_ = {};
  request_.method(method);
  request_.target(target);
  request_.version(11);
  request_.set(http::field::host, host_header_);
  request_.keep_alive(true);
  if (method == http::verb::post) {
    request_.set(http::field::content_type, "application/json");
    request_.body() = std::move(body);
    request_.prepare_payload();
  }
  if (connected_) return Send();
  stream_.async_connect(endpoint_, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->Fail("connect", ec);
    self->connected_ = true;
    // Small requests must not wait for Nagle: latency is what we measure.
    self->stream_.socket().set_option(tcp::no_delay(true));
    self->Send();
  });
}

void HttpConnection::Send() {
  http::async_write(stream_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->Fail("write", ec);
    self->parser_ = std::make_unique<http::response_parser<http::string_body>>();
    // A pull of 1000 large documents exceeds Beast's 8 MiB default.
    self->parser_->body_limit(256 << 20);
    http::async_read(self->stream_, self->buffer_, *self->parser_,
                     [self](beast::error_code ec, size_t) {
                       if (ec) return self->Fail("read", ec);
                       http::response<http::string_body> response = self->parser_->release();
                       if (!response.keep_alive()) {
                         beast::error_code ignored;
                         self->stream_.socket().close(ignored);
                         self->connected_ = false;
                         self->buffer_.clear();
                       }
                       Done done = std::move(self->done_);
                       done("", response.result_int(), std::move(response.body()));
                     });
  });
}

void HttpConnection::Fail(const char* what, beast::error_code ec) {
  beast::error_code ignored;
  stream_.socket().close(ignored);
  connected_ = false;
  buffer_.clear();
  Done done = std::move(done_);
  done(std::string(what) + ": " + ec.message(), 0, {});
}

}  // namespace roomsync::bench
