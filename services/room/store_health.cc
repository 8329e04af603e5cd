#include "services/room/store_health.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "storage/store.h"

namespace roomsync {

StoreHealth::StoreHealth(Store& store, StoreHealthOptions options,
                         std::function<void(bool)> on_change)
    : store_(store), options_(options), on_change_(std::move(on_change)) {}

StoreHealth::~StoreHealth() { Stop(); }

void StoreHealth::Start() {
  pinger_ = std::thread([this] { Pinger(); });
  judge_ = std::thread([this] { Judge(); });
}

void StoreHealth::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (judge_.joinable()) judge_.join();
  if (pinger_.joinable()) pinger_.join();
}

absl::Status StoreHealth::Verdict() const {
  absl::MutexLock lock(&mu_);
  return verdict_;
}

void StoreHealth::Set(absl::Status verdict) {
  const bool reachable = verdict.ok();
  if (reachable != reported_reachable_) {
    reported_reachable_ = reachable;
    Log(reachable ? LogLevel::kInfo : LogLevel::kError,
        reachable ? "store_reachable" : "store_unreachable",
        {{"code", absl::StatusCodeToString(verdict.code())},
         {"message", std::string(verdict.message())}});
    // Under mu_: verdicts reach on_change in the order they were made.
    if (on_change_) on_change_(reachable);
  }
  verdict_ = std::move(verdict);
}

void StoreHealth::Judge() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const uint64_t ping = pings_done_ + 1;
    ping_wanted_ = true;
    auto answered = [this, ping]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || pings_done_ >= ping;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&answered), options_.deadline)) {
      Set(absl::UnavailableError(absl::StrCat("the store did not answer within ",
                                              absl::FormatDuration(options_.deadline))));
      mu_.Await(absl::Condition(&answered));  // one ping at a time
    }
    if (stopping_) break;
    Set(last_ping_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stop), options_.period);
  }
}

void StoreHealth::Pinger() {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto wanted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || ping_wanted_;
    };
    mu_.Await(absl::Condition(&wanted));
    if (stopping_) return;
    ping_wanted_ = false;
    mu_.Unlock();
    absl::Status result = store_.Ping();
    mu_.Lock();
    last_ping_ = std::move(result);
    ++pings_done_;
  }
}

}  // namespace roomsync
