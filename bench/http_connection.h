// One keep-alive HTTP/1.1 client connection on Boost.Beast, one request at
// a time (what a browser's fetch over one connection does). Connects
// lazily and reconnects after the server closes. Runs on the io_context it
// was created with; call Request() only from that context's thread.
#ifndef ROOMSYNC_BENCH_HTTP_CONNECTION_H_
#define ROOMSYNC_BENCH_HTTP_CONNECTION_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace roomsync::bench {

namespace http = boost::beast::http;

// http://host:port/path?query, split; the bench speaks plain HTTP only
// (TLS would measure OpenSSL, not the server).
struct Url {
  std::string host;
  std::string port = "80";
  std::string target = "/";  // path and query
};
bool ParseUrl(std::string_view text, Url* url);
// Resolves host:port once, before the run (no DNS inside measurements).
boost::asio::ip::tcp::endpoint Resolve(const Url& url);

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  // `error` is empty on success; otherwise a short reason ("connect",
  // "read: end of stream"…) and `status` is 0.
  using Done = std::function<void(const std::string& error, int status, std::string body)>;

  HttpConnection(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint endpoint,
                 std::string host_header);

  // Sends one request; `done` runs on the io_context. Never call again
  // before `done` has run.
  void Request(http::verb method, std::string target, std::string body, Done done);

 private:
  void Send();
  void Fail(const char* what, boost::beast::error_code ec);

  boost::beast::tcp_stream stream_;
  boost::asio::ip::tcp::endpoint endpoint_;
  std::string host_header_;
  bool connected_ = false;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::unique_ptr<http::response_parser<http::string_body>> parser_;
  Done done_;
};

}  // namespace roomsync::bench

#endif  // ROOMSYNC_BENCH_HTTP_CONNECTION_H_
