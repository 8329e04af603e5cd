#include "tests/gateway/http_test_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace roomsync::testing {
namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

namespace {

// Parses the head at the start of `text` (which must contain "\r\n\r\n").
HttpResponse ParseHead(std::string_view head) {
  HttpResponse response;
  size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  if (status_line.size() >= 12) {
    int status = 0;
    if (absl::SimpleAtoi(std::string(status_line.substr(9, 3)), &status)) response.status = status;
  }
  size_t position = line_end + 2;
  while (position < head.size()) {
    size_t end = head.find("\r\n", position);
    if (end == std::string_view::npos || end == position) break;
    std::string_view line = head.substr(position, end - position);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string name = absl::AsciiStrToLower(std::string(line.substr(0, colon)));
      std::string value(line.substr(colon + 1));
      absl::StripAsciiWhitespace(&value);
      response.headers[name] = value;
    }
    position = end + 2;
  }
  return response;
}

}  // namespace

TestConnection::TestConnection(int port, int receive_buffer_bytes) : stream_(io_) {
  tcp::socket& socket = stream_.socket();
  socket.open(tcp::v4());
  if (receive_buffer_bytes > 0) {
    socket.set_option(net::socket_base::receive_buffer_size(receive_buffer_bytes));
  }
  beast::error_code error;
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), error);
  if (error) closed_ = true;
}

TestConnection::~TestConnection() {
  beast::error_code ignored;
  stream_.socket().close(ignored);
}

bool TestConnection::Send(std::string_view bytes) {
  beast::error_code error;
  net::write(stream_.socket(), net::buffer(bytes.data(), bytes.size()), error);
  return !error;
}

void TestConnection::ShutdownSend() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

bool TestConnection::ReadSome(absl::Duration timeout) {
  if (closed_) return false;
  char chunk[16 * 1024];
  bool done = false;
  bool timed_out = false;
  beast::error_code result;
  size_t got = 0;
  // A timer that cancels the read (not beast's expiry, which would close the
  // socket): a test may wait for "nothing arrives" and keep reading later.
  net::steady_timer timer(io_, absl::ToChronoNanoseconds(timeout));
  timer.async_wait([&](beast::error_code error) {
    if (!error && !done) {
      timed_out = true;
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    }
  });
  stream_.socket().async_read_some(net::buffer(chunk), [&](beast::error_code error, size_t n) {
    result = error;
    got = n;
    done = true;
    timer.cancel();
  });
  io_.restart();
  io_.run();
  unread_.append(chunk, got);
  if (result) {
    if (!timed_out) closed_ = true;
    return false;
  }
  return true;
}

bool TestConnection::ReadUntil(std::string_view needle, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (unread_.find(needle) == std::string::npos) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || !ReadSome(left)) {
      return unread_.find(needle) != std::string::npos;
    }
  }
  return true;
}

HttpResponse TestConnection::ReadResponse(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  if (!ReadUntil("\r\n\r\n", timeout)) return {};
  size_t head_end = unread_.find("\r\n\r\n") + 4;
  HttpResponse response = ParseHead(std::string_view(unread_).substr(0, head_end));
  unread_.erase(0, head_end);
  std::string length_text = response.Header("content-length");
  size_t length = 0;
  if (!length_text.empty() && absl::SimpleAtoi(length_text, &length)) {
    while (unread_.size() < length) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration() || !ReadSome(left)) break;
    }
    response.body = unread_.substr(0, length);
    unread_.erase(0, std::min(length, unread_.size()));
  } else if (response.status >= 200 && response.status != 204 && response.status != 304) {
    while (ReadSome(deadline - absl::Now())) {
    }
    response.body = std::move(unread_);
    unread_.clear();
  }
  return response;
}

HttpResponse TestConnection::ReadStreamHead(absl::Duration timeout) {
  if (!ReadUntil("\r\n\r\n", timeout)) return {};
  size_t head_end = unread_.find("\r\n\r\n") + 4;
  HttpResponse response = ParseHead(std::string_view(unread_).substr(0, head_end));
  unread_.erase(0, head_end);
  return response;
}

std::optional<SseEvent> TestConnection::NextEvent(absl::Duration timeout) {
  if (!ReadUntil("\n\n", timeout)) return std::nullopt;
  size_t end = unread_.find("\n\n");
  std::string block = unread_.substr(0, end);
  unread_.erase(0, end + 2);
  SseEvent event;
  size_t position = 0;
  bool only_comments = true;
  while (position <= block.size()) {
    size_t line_end = block.find('\n', position);
    if (line_end == std::string::npos) line_end = block.size();
    std::string_view line = std::string_view(block).substr(position, line_end - position);
    if (line.starts_with(":")) {
      // a comment
    } else if (line.starts_with("id: ")) {
      event.id = std::string(line.substr(4));
      only_comments = false;
    } else if (line.starts_with("data: ")) {
      event.data += std::string(line.substr(6));
      only_comments = false;
    }
    position = line_end + 1;
  }
  event.comment = only_comments;
  return event;
}

bool TestConnection::WaitForClose(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!closed_) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    ReadSome(left);
  }
  return true;
}

std::string RequestText(std::string_view method, std::string_view target, std::string_view body,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        bool keep_alive) {
  std::string text = absl::StrCat(std::string(method), " ", std::string(target),
                                  " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  bool has_length = false;
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&text, name, ": ", value, "\r\n");
    if (absl::AsciiStrToLower(name) == "content-length") has_length = true;
  }
  if (!body.empty() && !has_length) absl::StrAppend(&text, "Content-Length: ", body.size(), "\r\n");
  if (!keep_alive) text += "Connection: close\r\n";
  text += "\r\n";
  text.append(body);
  return text;
}

HttpResponse Http(int port, std::string_view method, std::string_view target,
                  std::string_view body,
                  const std::vector<std::pair<std::string, std::string>>& headers) {
  TestConnection connection(port);
  if (!connection.Send(RequestText(method, target, body, headers, false))) return {};
  return connection.ReadResponse();
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace roomsync::testing
