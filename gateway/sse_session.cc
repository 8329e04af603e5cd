#include "gateway/sse_session.h"

#include <atomic>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/log.h"
#include "base/string_view.h"
#include "gateway/api_response.h"
#include "gateway/gateway_context.h"
#include "gateway/rate_limiter.h"
#include "gateway/room_fanout.h"
#include "gateway/sse_frames.h"
#include "gateway/sse_keepalive.h"

namespace roomsync {
namespace net = boost::asio;
namespace beast = boost::beast;

namespace {

std::atomic<uint64_t> next_session_id{1};

// The full HTTP response refusing a stream whose head was not sent yet.
std::string RefusalResponse(const GatewayContext& context, std::string_view origin,
                            std::string_view reason) {
  ApiResponse error = ErrorResponse(503, "unavailable", reason);
  std::string out = absl::StrCat(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Retry-After: ", error.retry_after_seconds, "\r\nConnection: close\r\nContent-Length: ",
      error.body.size(), "\r\n");
  for (const auto& [name, value] : context.cors.ResponseHeaders(origin)) {
    absl::StrAppend(&out, ToAbsl(name), ": ", value, "\r\n");
  }
  absl::StrAppend(&out, "\r\n", error.body);
  return out;
}

}  // namespace

SseSession::SseSession(GatewayContext& context, HttpStream stream, Params params)
    : context_(context),
      stream_(std::move(stream)),
      params_(std::move(params)),
      id_(next_session_id.fetch_add(1)) {
  context_.metrics.SseSessionOpened();
}

SseSession::~SseSession() { context_.metrics.SseSessionClosed(); }

void SseSession::Start() {
  stream_.tcp().expires_never();
  if (context_.config.sse_send_buffer_bytes > 0) {
    // Kernel memory per connection is bounded too (gateway.h).
    beast::error_code ignored;  // an unusual socket keeps the system's default
    stream_.socket().set_option(
        net::socket_base::send_buffer_size(context_.config.sse_send_buffer_bytes), ignored);
  }
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->WatchForClose(); });
  context_.keepalive->Add(shared_from_this());
  context_.fanouts->Attach(shared_from_this());
}

void SseSession::BeginStream() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->ending_ || self->closed_ || self->head_sent_) return;
    self->head_sent_ = true;
    auto head = std::make_shared<const std::string>(
        EncodeStreamHead(self->context_.cors.ResponseHeaders(self->params_.origin)));
    self->Enqueue(std::move(head), /*bounded=*/false);
  });
}

void SseSession::Send(std::shared_ptr<const std::string> frame) {
  net::post(stream_.get_executor(), [self = shared_from_this(), frame = std::move(frame)] {
    self->Enqueue(std::move(frame), /*bounded=*/true);
  });
}

void SseSession::SendCatchUpPage(std::shared_ptr<const std::string> frame) {
  net::post(stream_.get_executor(), [self = shared_from_this(), frame = std::move(frame)] {
    if (self->closed_ || self->ending_) return;
    self->catch_up_page_ = frame.get();
    self->catch_up_bytes_ = frame->size();
    self->Enqueue(std::move(frame), /*bounded=*/false);
  });
}

void SseSession::Resync(std::string_view reason) {
  net::post(stream_.get_executor(), [self = shared_from_this(), reason = std::string(reason)] {
    self->ResyncOnStrand(reason);
  });
}

void SseSession::Close() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->Shutdown(); });
}

void SseSession::OnKeepAliveTick(std::shared_ptr<const std::string> frame, absl::Time now) {
  net::post(stream_.get_executor(), [self = shared_from_this(), frame = std::move(frame), now] {
    if (self->closed_ || self->ending_) return;
    // The token that opened the stream has expired: close (no RESYNC). The
    // client's EventSource reconnects, and must show a fresh token.
    if (now >= self->params_.deadline) {
      Log(LogLevel::kInfo, "sse_token_expired", {{"room", self->params_.room}});
      return self->Shutdown();
    }
    if (!self->head_sent_) return;
    if (!self->writing_.empty() &&
        now - self->write_started_ > self->context_.config.sse_write_stall_timeout) {
      Log(LogLevel::kInfo, "sse_write_stalled", {{"room", self->params_.room}});
      return self->Shutdown();
    }
    self->Enqueue(std::move(frame), /*bounded=*/true);
  });
}

void SseSession::WhenWritable(std::function<void()> resume) {
  net::post(stream_.get_executor(), [self = shared_from_this(), resume = std::move(resume)] {
    if (self->closed_ || self->ending_) return;
    if (self->catch_up_bytes_ == 0) return resume();
    self->on_writable_ = std::move(resume);
  });
}

void SseSession::Enqueue(std::shared_ptr<const std::string> frame, bool bounded) {
  if (closed_ || ending_) return;
  // An empty queue takes any one frame (a frame is bounded by the page or
  // batch it encodes); behind a backlog, the byte bound applies to live
  // frames. A catch-up page in the queue does not count: the catch-up's
  // own flow control keeps it to one page.
  const size_t live_backlog = queued_bytes_ - catch_up_bytes_;
  if (bounded && live_backlog > 0 &&
      live_backlog + frame->size() > context_.config.max_sse_queue_bytes) {
    return ResyncOnStrand("the client reads too slowly");
  }
  queued_bytes_ += frame->size();
  queued_.push_back(std::move(frame));
  if (writing_.empty()) WriteQueued();
}

void SseSession::ResyncOnStrand(std::string_view reason) {
  if (closed_ || ending_) return;
  ending_ = true;
  context_.metrics.SseResync();
  Log(LogLevel::kInfo, "sse_resync", {{"room", params_.room}, {"reason", reason}});
  // Frames not yet on the wire are dropped: the client pulls from its last
  // checkpoint anyway, and a slow client must not keep its backlog.
  for (const auto& frame : queued_) queued_bytes_ -= frame->size();
  queued_.clear();
  catch_up_page_ = nullptr;
  catch_up_bytes_ = 0;
  std::shared_ptr<const std::string> last =
      head_sent_ ? std::make_shared<const std::string>(kResyncFrame)
                 : std::make_shared<const std::string>(
                       RefusalResponse(context_, params_.origin, reason));
  head_sent_ = true;
  queued_bytes_ += last->size();
  queued_.push_back(std::move(last));
  if (writing_.empty()) WriteQueued();
}

void SseSession::WriteQueued() {
  writing_.swap(queued_);
  write_buffers_.clear();
  for (const auto& frame : writing_) write_buffers_.emplace_back(frame->data(), frame->size());
  write_started_ = absl::Now();
  net::async_write(stream_, write_buffers_,
                   [self = shared_from_this()](beast::error_code error, size_t) {
                     self->OnWrite(error);
                   });
}

void SseSession::OnWrite(beast::error_code error) {
  if (closed_) return;
  if (error) return Shutdown();
  for (const auto& frame : writing_) {
    queued_bytes_ -= frame->size();
    context_.metrics.SseFrameSent(frame->size());
    if (frame.get() == catch_up_page_) {
      catch_up_page_ = nullptr;
      catch_up_bytes_ = 0;
    }
  }
  writing_.clear();
  // A burst may have grown the vectors; an idle session keeps little.
  if (writing_.capacity() > 16) writing_.shrink_to_fit();
  if (write_buffers_.capacity() > 16) write_buffers_ = {};
  if (on_writable_ && !ending_ && catch_up_bytes_ == 0) {
    std::function<void()> resume = std::move(on_writable_);
    on_writable_ = nullptr;
    resume();
  }
  if (!queued_.empty()) {
    if (writing_.empty()) WriteQueued();
    return;
  }
  if (ending_) Shutdown();
}

void SseSession::WatchForClose() {
  stream_.async_read_some(net::buffer(&read_byte_, 1),
                          [self = shared_from_this()](beast::error_code error, size_t) {
                            if (self->closed_) return;
                            if (error) return self->Shutdown();
                            self->WatchForClose();  // ignore what a client sends
                          });
}

void SseSession::Shutdown() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  queued_.clear();
  on_writable_ = nullptr;
  context_.keepalive->Remove(id_);
  context_.fanouts->Detach(params_.room, id_);
}

}  // namespace roomsync
