#include "bench/tracked_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>
#include <chrono>

#include "bench/sse_connection.h"

namespace roomsync::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string StreamRequest(const std::string& host, const std::string& target,
                          const std::string& last_event_id) {
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + host +
                        "\r\nAccept: text/event-stream\r\n";
  if (!last_event_id.empty()) request += "Last-Event-ID: " + last_event_id + "\r\n";
  return request + "\r\n";
}

TrackedStream::TrackedStream(asio::io_context& io, tcp::endpoint endpoint, StreamOptions options)
    : socket_(io), throttle_(io), endpoint_(endpoint), options_(std::move(options)) {}

void TrackedStream::Start(std::function<void(bool)> opened) {
  opened_ = std::move(opened);
  boost::system::error_code ec;
  socket_.open(endpoint_.protocol(), ec);
  // The receive buffer must be set before connect: it fixes the window
  // scale the client advertises, so a slow reader's window stays small.
  if (!ec && options_.receive_buffer > 0) {
    socket_.set_option(asio::socket_base::receive_buffer_size(options_.receive_buffer), ec);
  }
  if (!ec && options_.max_segment > 0) {
    const int mss = options_.max_segment;
    if (setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss) != 0) {
      ec = boost::system::error_code(errno, boost::system::system_category());
    }
  }
  if (!ec && !options_.source.is_unspecified()) socket_.bind(tcp::endpoint(options_.source, 0), ec);
  if (ec) return Fail("socket: " + ec.message());
  socket_.async_connect(endpoint_, [self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return self->Fail("connect: " + ec.message());
    asio::async_write(self->socket_, asio::buffer(self->options_.request),
                      [self](boost::system::error_code ec, size_t) {
                        if (ec) return self->Fail("write: " + ec.message());
                        std::string().swap(self->options_.request);
                        self->ReadSome();
                      });
  });
}

void TrackedStream::Close() {
  if (!finished_) Ended(StreamRecord::End::kClosedByUs);
}

void TrackedStream::SetReadRate(double bytes_per_s) {
  options_.read_bytes_per_s = bytes_per_s;
  // A pending throttle wait ends now; its handler starts the next read.
  throttle_.cancel();
}

void TrackedStream::Fail(std::string error) {
  if (finished_) return;
  if (opened_) {
    record_.error = std::move(error);
    Ended(StreamRecord::End::kConnectFailed);
  } else {
    Ended(StreamRecord::End::kServerClosed);
  }
}

void TrackedStream::Ended(StreamRecord::End how) {
  finished_ = true;
  record_.ended_us = MonotonicMicros();
  // A RESYNC'd stream that the server then closes stays "resync".
  if (record_.end != StreamRecord::End::kResync) record_.end = how;
  boost::system::error_code ignored;
  throttle_.cancel();
  socket_.close(ignored);
  if (opened_) {
    auto opened = std::move(opened_);
    opened_ = nullptr;
    opened(false);
  }
}

void TrackedStream::ReadSome() {
  // A slow reader takes at most a quarter second's worth per read and then
  // waits as long as those bytes "cost", so it averages read_bytes_per_s.
  size_t want = read_buffer_.size();
  if (options_.read_bytes_per_s > 0) {
    want = std::clamp<size_t>(static_cast<size_t>(options_.read_bytes_per_s / 4), 1,
                              read_buffer_.size());
  }
  socket_.async_read_some(
      asio::buffer(read_buffer_.data(), want),
      [self = shared_from_this()](boost::system::error_code ec, size_t n) {
        if (self->finished_) return;
        if (ec) return self->Fail("read: " + ec.message());
        self->OnBytes(std::string_view(self->read_buffer_.data(), n));
        if (self->finished_) return;
        if (self->options_.read_bytes_per_s <= 0) return self->ReadSome();
        self->throttle_.expires_after(std::chrono::microseconds(
            static_cast<int64_t>(1e6 * static_cast<double>(n) / self->options_.read_bytes_per_s)));
        // Cancelled by SetReadRate (read on) or by Ended (finished_).
        self->throttle_.async_wait([self](boost::system::error_code) {
          if (!self->finished_) self->ReadSome();
        });
      });
}

void TrackedStream::OnBytes(std::string_view bytes) {
  if (!head_done_) {
    head_.append(bytes);
    const size_t end = head_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    // roomsync's stream is neither chunked nor sized: the body is the rest
    // of the connection, so no transfer decoding is needed.
    if (head_.size() < 12 || head_.compare(9, 3, "200") != 0) {
      return Fail("http " + head_.substr(9, 3));
    }
    std::string rest = head_.substr(end + 4);
    std::string().swap(head_);
    head_done_ = true;
    record_.opened = true;
    record_.opened_us = MonotonicMicros();
    auto opened = std::move(opened_);
    opened_ = nullptr;
    opened(true);
    if (finished_ || rest.empty()) return;
    return OnBody(rest);
  }
  OnBody(bytes);
}

void TrackedStream::OnBody(std::string_view bytes) {
  record_.bytes += static_cast<int64_t>(bytes.size());
  pending_.append(bytes);
  size_t start = 0, stop;
  while (!finished_ && (stop = pending_.find("\n\n", start)) != std::string::npos) {
    OnEvent(std::string_view(pending_).substr(start, stop - start));
    start = stop + 2;
  }
  if (!finished_) pending_.erase(0, start);
}

void TrackedStream::OnEvent(std::string_view event) {
  std::string_view id, data;
  while (!event.empty()) {
    const size_t eol = event.find('\n');
    std::string_view line = event.substr(0, eol);
    event = eol == std::string_view::npos ? std::string_view() : event.substr(eol + 1);
    if (line.starts_with("id: ")) id = line.substr(4);
    if (line.starts_with("data: ")) data = line.substr(6);
  }
  if (data.empty()) return;  // a comment (": keep-alive")
  if (record_.end == StreamRecord::End::kResync) {
    ++record_.after_resync;
    return;
  }
  if (data == "\"RESYNC\"") {
    record_.end = StreamRecord::End::kResync;
    record_.resync_us = MonotonicMicros();
    if (on_document_) on_document_(*this, true);
    return;
  }
  if (!id.empty()) record_.last_event_id.assign(id);
  const int64_t now = MonotonicMicros();
  if (record_.first_event_us == 0) record_.first_event_us = now;
  // Documents look like {"id":"n<index>",…,"sent_us":<µs>}: ids are base64-
  // free, and no other member of the event starts with "id":"n.
  constexpr std::string_view kId = "\"id\":\"n";
  constexpr std::string_view kSent = "\"sent_us\":";
  size_t pos = 0;
  while ((pos = data.find(kId, pos)) != std::string_view::npos) {
    pos += kId.size();
    int64_t index = -1;
    std::from_chars(data.data() + pos, data.data() + data.size(), index);
    const size_t sent_at = data.find(kSent, pos);
    int64_t sent = 0;
    if (sent_at != std::string_view::npos) {
      std::from_chars(data.data() + sent_at + kSent.size(), data.data() + data.size(), sent);
    }
    ++record_.documents;
    record_.last_document_us = now;
    if (record_.first_index < 0) {
      record_.first_index = index;
      record_.last_index = index;
    } else if (index <= record_.last_index) {
      ++record_.duplicates;
    } else {
      if (index != record_.last_index + 1) {
        ++record_.gaps;
        record_.skipped += index - record_.last_index - 1;
      }
      record_.last_index = index;
    }
    if (LatencySink* sink = options_.sink) {
      if (sent >= sink->from_us && sent < sink->until_us) sink->latency.Record(now - sent);
      if (sent >= sink->second_from_us && sent < sink->second_until_us) {
        sink->second_latency.Record(now - sent);
      }
    }
    if (on_document_) {
      on_document_(*this, false);
      if (finished_) return;
    }
  }
}

}  // namespace roomsync::bench
