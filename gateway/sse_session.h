// One SSE client: a socket, a bounded queue of shared frames, and nothing
// else per connection (no timer, no read buffer: keep-alives come from the
// gateway's one SseKeepAlive ticker). Frames arrive from the room's fan-out
// on any thread and are written in order on the session's strand; when the
// queue would exceed max_sse_queue_bytes the session gets RESYNC and is
// closed, so a slow client costs bounded memory.
#ifndef ROOMSYNC_GATEWAY_SSE_SESSION_H_
#define ROOMSYNC_GATEWAY_SSE_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>

#include "absl/time/time.h"
#include "gateway/http_stream.h"
#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {

struct GatewayContext;
class StreamSlot;

class SseSession : public std::enable_shared_from_this<SseSession> {
 public:
  struct Params {
    std::string room;
    std::string collection;  // empty = every collection
    std::optional<v1::Checkpoint> checkpoint;  // catch up from here first
    std::string origin;  // for CORS headers
    // The client's token, forwarded on the catch-up pulls; empty when auth
    // is off.
    std::string token;
    // The keep-alive tick at or after this closes the stream (the token
    // expired).
    absl::Time deadline = absl::InfiniteFuture();
    // The stream's place under the per-subject/per-IP caps; freed with
    // the session.
    std::unique_ptr<StreamSlot> slot;
  };

  SseSession(GatewayContext& context, HttpStream stream, Params params);
  ~SseSession();

  // Registers with the keep-alive ticker and the room's fan-out. Once.
  void Start();

  // The methods below may be called from any thread; they post to the
  // session's strand, in call order.

  // Writes the response head: the fan-out calls this once its upstream is
  // live, so that a client that sees the head sees every later commit.
  void BeginStream();
  // Queues a frame (shared with other sessions; never modified). Past
  // max_sse_queue_bytes of backlog the session ends with RESYNC.
  void Send(std::shared_ptr<const std::string> frame);
  // Queues one catch-up page outside the byte bound: the catch-up sends its
  // next page only once the queue is empty (WhenWritable), so a catching-up
  // session holds at most one page.
  void SendCatchUpPage(std::shared_ptr<const std::string> frame);
  // Ends the stream with RESYNC (the client pulls), or with a 503 when the
  // head was not sent yet.
  void Resync(std::string_view reason);
  // Closes at once without RESYNC (gateway draining: clients reconnect with
  // Last-Event-ID and lose nothing).
  void Close();
  // From the keep-alive ticker: queue `frame`, or close the session when its
  // socket has not taken a byte for sse_write_stall_timeout.
  void OnKeepAliveTick(std::shared_ptr<const std::string> frame, absl::Time now);

  // Runs `resume` on the strand once the last catch-up page is written (a
  // catch-up pulls its next page only then); dropped if the session ends.
  void WhenWritable(std::function<void()> resume);

  uint64_t id() const { return id_; }
  const Params& params() const { return params_; }

 private:
  void Enqueue(std::shared_ptr<const std::string> frame, bool bounded);
  void ResyncOnStrand(std::string_view reason);
  void WriteQueued();
  void OnWrite(boost::beast::error_code error);
  void WatchForClose();
  void Shutdown();

  GatewayContext& context_;
  HttpStream stream_;
  const Params params_;
  const uint64_t id_;

  // Strand-only state. Frames wait in queued_ while writing_ is on the wire
  // (one gathered write at a time).
  std::vector<std::shared_ptr<const std::string>> queued_;
  std::vector<std::shared_ptr<const std::string>> writing_;
  std::vector<boost::asio::const_buffer> write_buffers_;
  size_t queued_bytes_ = 0;  // queued_ + writing_
  // The catch-up page among them, if any (at most one: see WhenWritable).
  const std::string* catch_up_page_ = nullptr;
  size_t catch_up_bytes_ = 0;
  bool head_sent_ = false;
  bool ending_ = false;  // RESYNC queued or closing: no more frames
  bool closed_ = false;
  absl::Time write_started_;
  std::function<void()> on_writable_;  // see WhenWritable
  char read_byte_ = 0;  // a 1-byte read notices a client hang-up
};

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_SSE_SESSION_H_
