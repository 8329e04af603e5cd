// A client connection as the HTTP and SSE sessions see it: plain TCP or TLS
// over TCP, chosen when it is accepted. Both are Beast tcp_streams
// underneath (timeouts, the socket); reads and writes go through TLS when
// it is on. Satisfies Asio's AsyncReadStream/AsyncWriteStream for callback
// handlers, so http::async_read and net::async_write take it as is.
//
// Asio's ssl::stream allows one read and one write in flight at once, which
// is what SseSession does (a 1-byte read that notices hang-ups, and the
// frame writes).
#ifndef ROOMSYNC_GATEWAY_HTTP_STREAM_H_
#define ROOMSYNC_GATEWAY_HTTP_STREAM_H_

#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace roomsync {

class HttpStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  explicit HttpStream(boost::beast::tcp_stream tcp) : plain_(std::move(tcp)) {}
  // TLS: `context` is kept alive by the stream (a reload of the certificate
  // must not pull it from under open connections).
  HttpStream(boost::beast::tcp_stream tcp, std::shared_ptr<boost::asio::ssl::context> context)
      : tls_context_(std::move(context)) {
    tls_.emplace(std::move(tcp), *tls_context_);
  }

  bool is_tls() const { return tls_.has_value(); }
  executor_type get_executor() { return tcp().get_executor(); }
  boost::beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
  boost::asio::ip::tcp::socket& socket() { return tcp().socket(); }

  // TLS server handshake (callback: void(error_code)); completes at once,
  // without error, for plain TCP.
  template <class Handler>
  void async_handshake(Handler&& handler) {
    if (!tls_) {
      return boost::asio::post(get_executor(), [handler = std::forward<Handler>(handler)]() mutable {
        handler(boost::beast::error_code());
      });
    }
    tls_->async_handshake(boost::asio::ssl::stream_base::server, std::forward<Handler>(handler));
  }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Handler>(handler));
    plain_->async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Handler>(handler));
    plain_->async_write_some(buffers, std::forward<Handler>(handler));
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // before tls_: outlives it
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_HTTP_STREAM_H_
