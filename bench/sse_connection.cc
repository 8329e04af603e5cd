#include "bench/sse_connection.h"

#include <time.h>

#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>

namespace roomsync::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

int64_t MonotonicMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

SseConnection::SseConnection(asio::io_context& io, tcp::endpoint endpoint, std::string request,
                             SseStats* stats, asio::ip::address source)
    : socket_(io),
      endpoint_(endpoint),
      source_(source),
      request_(std::move(request)),
      stats_(stats) {}

void SseConnection::Start(std::function<void(bool)> opened) {
  opened_ = std::move(opened);
  if (!source_.is_unspecified()) {
    boost::system::error_code ec;
    socket_.open(endpoint_.protocol(), ec);
    if (!ec) socket_.bind(tcp::endpoint(source_, 0), ec);
    if (ec) return Finish(false);
  }
  socket_.async_connect(endpoint_, [self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return self->Finish(false);
    asio::async_write(self->socket_, asio::buffer(self->request_),
                      [self](boost::system::error_code ec, size_t) {
                        if (ec) return self->Finish(false);
                        std::string().swap(self->request_);  // not needed any more
                        self->ReadSome();
                      });
  });
}

void SseConnection::Close() {
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void SseConnection::ReadSome() {
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            if (ec) return self->Finish(false);
                            self->OnBytes(std::string_view(self->read_buffer_.data(), n));
                            if (!self->closed_) self->ReadSome();
                          });
}

void SseConnection::Finish(bool ok) {
  if (opened_) {
    auto opened = std::move(opened_);
    opened_ = nullptr;
    if (!ok) ++stats_->connect_errors;
    opened(ok);
  } else if (!closed_) {
    ++stats_->disconnects;
    --stats_->open;
  }
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void SseConnection::OnBytes(std::string_view bytes) {
  if (!head_done_) {
    head_.append(bytes);
    const size_t end = head_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    std::string rest = head_.substr(end + 4);
    head_.resize(end + 2);
    if (!ParseHead()) return Finish(false);
    head_done_ = true;
    std::string().swap(head_);
    ++stats_->opened;
    ++stats_->open;
    auto opened = std::move(opened_);
    opened_ = nullptr;
    opened(true);
    if (!rest.empty()) FeedBody(rest);
    return;
  }
  FeedBody(bytes);
}

bool SseConnection::ParseHead() {
  // "HTTP/1.1 200 OK"
  if (head_.size() < 12 || head_.compare(9, 3, "200") != 0) return false;
  for (char& c : head_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  chunked_ = head_.find("transfer-encoding: chunked") != std::string::npos;
  return true;
}

void SseConnection::FeedBody(std::string_view bytes) {
  if (!chunked_) return OnEventBytes(bytes);
  // Chunked transfer coding: "<hex size>\r\n<data>\r\n"…; chunk headers are
  // collected in pending_ only while no event bytes are pending there.
  while (!bytes.empty()) {
    if (chunk_left_ > 0) {
      const size_t take = std::min<size_t>(bytes.size(), chunk_left_);
      OnEventBytes(bytes.substr(0, take));
      chunk_left_ -= take;
      bytes.remove_prefix(take);
      if (chunk_left_ == 0) chunk_left_ = -2;  // the CRLF after the data
      continue;
    }
    if (chunk_left_ < 0) {  // skip the CRLF that ends a chunk
      const size_t skip = std::min<size_t>(bytes.size(), -chunk_left_);
      bytes.remove_prefix(skip);
      chunk_left_ += skip;
      continue;
    }
    // Reading a chunk-size line, maybe split across reads.
    const size_t eol = bytes.find("\r\n");
    if (eol == std::string_view::npos) {
      head_.append(bytes);  // head_ is free after the response head
      return;
    }
    head_.append(bytes.substr(0, eol));
    bytes.remove_prefix(eol + 2);
    int64_t size = 0;
    std::from_chars(head_.data(), head_.data() + head_.size(), size, 16);
    head_.clear();
    if (size == 0) return Finish(false);  // last chunk: the stream ended
    chunk_left_ = size;
  }
}

void SseConnection::OnEventBytes(std::string_view bytes) {
  // Fast path: whole events in this read and nothing pending.
  size_t start = 0;
  if (!pending_.empty()) {
    pending_.append(bytes);
    size_t pos = 0;
    size_t end;
    while ((end = pending_.find("\n\n", pos)) != std::string::npos) {
      OnEvent(std::string_view(pending_).substr(pos, end - pos));
      pos = end + 2;
    }
    pending_.erase(0, pos);
    return;
  }
  size_t end;
  while ((end = bytes.find("\n\n", start)) != std::string_view::npos) {
    OnEvent(bytes.substr(start, end - start));
    start = end + 2;
  }
  if (start < bytes.size()) pending_.assign(bytes.substr(start));
}

void SseConnection::OnEvent(std::string_view event) {
  // A comment-only event (": keep-alive") carries no data.
  const size_t data = event.find("data:");
  if (data == std::string_view::npos) return;
  ++stats_->events;
  std::string_view payload = event.substr(data + 5);
  if (payload.find("\"RESYNC\"") != std::string_view::npos && payload.size() < 16) {
    ++stats_->resyncs;
    return;
  }
  const int64_t now = MonotonicMicros();
  constexpr std::string_view kKey = "\"sent_us\":";
  size_t pos = 0;
  while ((pos = payload.find(kKey, pos)) != std::string_view::npos) {
    pos += kKey.size();
    int64_t sent = 0;
    std::from_chars(payload.data() + pos, payload.data() + payload.size(), sent);
    ++stats_->deliveries;
    if (sent >= stats_->window_from_us && sent < stats_->window_until_us) {
      stats_->delivery_latency.Record(now - sent);
    }
  }
}

}  // namespace roomsync::bench
