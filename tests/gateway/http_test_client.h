// A small HTTP/SSE client for the gateway tests, over real sockets. Every
// operation has a timeout so that a broken server fails a test instead of
// hanging it.
#ifndef ROOMSYNC_TESTS_GATEWAY_HTTP_TEST_CLIENT_H_
#define ROOMSYNC_TESTS_GATEWAY_HTTP_TEST_CLIENT_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "absl/time/time.h"

namespace roomsync::testing {

struct HttpResponse {
  int status = 0;  // 0: no response (timeout or connection closed)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct SseEvent {
  std::string id;
  std::string data;
  bool comment = false;  // ": keep-alive"
};

class TestConnection {
 public:
  // Connects to 127.0.0.1:port; `receive_buffer_bytes` > 0 shrinks SO_RCVBUF
  // (a slow reader's window).
  explicit TestConnection(int port, int receive_buffer_bytes = 0);
  ~TestConnection();

  bool Send(std::string_view bytes);
  void ShutdownSend();
  // Reads one complete HTTP response (Content-Length or close-delimited).
  HttpResponse ReadResponse(absl::Duration timeout = absl::Seconds(10));
  // Reads until `needle` is in the unread bytes; false on timeout or EOF.
  bool ReadUntil(std::string_view needle, absl::Duration timeout);
  // Reads an SSE response head (after Send of the request); its status.
  HttpResponse ReadStreamHead(absl::Duration timeout = absl::Seconds(10));
  // The next SSE event or comment; nullopt on timeout or EOF.
  std::optional<SseEvent> NextEvent(absl::Duration timeout = absl::Seconds(10));
  // True when the server closes the connection within `timeout`.
  bool WaitForClose(absl::Duration timeout);
  bool closed() const { return closed_; }

 private:
  // Reads some bytes into unread_; false on timeout or EOF.
  bool ReadSome(absl::Duration timeout);

  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  std::string unread_;
  bool closed_ = false;
};

// One request on a fresh connection.
HttpResponse Http(int port, std::string_view method, std::string_view target,
                  std::string_view body = "",
                  const std::vector<std::pair<std::string, std::string>>& headers = {});

// The request text for `method target` with a body and headers.
std::string RequestText(std::string_view method, std::string_view target, std::string_view body,
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        bool keep_alive = true);

// URL-encodes a query parameter value.
std::string UrlEncode(std::string_view text);

}  // namespace roomsync::testing

#endif  // ROOMSYNC_TESTS_GATEWAY_HTTP_TEST_CLIENT_H_
