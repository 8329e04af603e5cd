#include "gateway/sse_keepalive.h"

#include "absl/time/clock.h"
#include "gateway/sse_frames.h"
#include "gateway/sse_session.h"

namespace roomsync {

SseKeepAlive::SseKeepAlive(boost::asio::io_context& io, absl::Duration interval)
    : interval_(interval), timer_(io) {}

void SseKeepAlive::Start() { ScheduleTick(); }

void SseKeepAlive::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  timer_.cancel();
}

void SseKeepAlive::Add(const std::shared_ptr<SseSession>& session) {
  absl::MutexLock lock(&mu_);
  sessions_[session->id()] = session;
}

void SseKeepAlive::Remove(uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  sessions_.erase(session_id);
}

std::vector<std::shared_ptr<SseSession>> SseKeepAlive::Sessions() {
  std::vector<std::shared_ptr<SseSession>> sessions;
  absl::MutexLock lock(&mu_);
  sessions.reserve(sessions_.size());
  for (auto& [id, weak] : sessions_) {
    if (auto session = weak.lock()) sessions.push_back(std::move(session));
  }
  return sessions;
}

void SseKeepAlive::ScheduleTick() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  timer_.expires_after(absl::ToChronoNanoseconds(interval_));
  timer_.async_wait([this](const boost::system::error_code& error) {
    if (!error) Tick();
  });
}

void SseKeepAlive::Tick() {
  // One shared frame for every session.
  static const auto kFrame = std::make_shared<const std::string>(kKeepAliveFrame);
  absl::Time now = absl::Now();
  for (auto& session : Sessions()) session->OnKeepAliveTick(kFrame, now);
  ScheduleTick();
}

}  // namespace roomsync
