#include "bench/push_scenario.h"

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/http_connection.h"
#include "bench/rxdb_protocol.h"
#include "bench/sse_connection.h"

namespace roomsync::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct ThreadStats {
  Histogram latency;
  int64_t pushes = 0;
  int64_t documents = 0;
  int64_t conflicts = 0;
  ErrorKinds errors;
};

struct Shared {
  PushOptions options;
  Url url;
  bool rxdb = false;  // options.target == "rxdb"
  Clock::time_point measure_from;
  Clock::time_point measure_until;
  std::atomic<int> running{0};
};

class PushClient : public std::enable_shared_from_this<PushClient> {
 public:
  PushClient(asio::io_context& io, asio::ip::tcp::endpoint endpoint, Shared* shared,
             ThreadStats* stats, int index)
      : shared_(shared),
        stats_(stats),
        index_(index),
        timer_(io),
        connection_(std::make_shared<HttpConnection>(
            io, endpoint, shared->url.host + ":" + shared->url.port)) {}

  void Start(Clock::time_point first) {
    next_ = first;
    Schedule();
  }

 private:
  void Schedule() {
    if (next_ >= shared_->measure_until) {
      shared_->running.fetch_sub(1);
      return;
    }
    if (shared_->options.rate <= 0 || next_ <= Clock::now()) return Send();
    timer_.expires_at(next_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code) { self->Send(); });
  }

  void Send() {
    const PushOptions& o = shared_->options;
    const Clock::time_point scheduled = o.rate > 0 ? next_ : Clock::now();
    const int room = static_cast<int>((index_ + sent_ * o.clients) % o.rooms);
    std::string body = "[";
    for (int d = 0; d < o.docs_per_push; ++d) {
      if (d > 0) body += ',';
      // rxdb-server's one collection is every run's room: the run's room
      // prefix in the id keeps its ids new too (roomsync has it in the URL).
      const std::string document =
          ChatDocument((shared_->rxdb ? o.room_prefix + "-c" : "c") + std::to_string(index_) +
                           "-" + std::to_string(sent_) + "-" + std::to_string(d),
                       MonotonicMicros());
      if (shared_->rxdb) {
        rxdb::AppendPushRow(body, document);
      } else {
        body += document;
      }
    }
    body += ']';
    ++sent_;
    std::string target = shared_->rxdb
                             ? shared_->url.target + "/push"
                             : "/v1/rooms/" + o.room_prefix + "-" + std::to_string(room) +
                                   "/replicate/push?collection=" + o.collection;
    connection_->Request(
        http::verb::post, std::move(target), std::move(body),
        [self = shared_from_this(), scheduled](const std::string& error, int status,
                                               std::string response) {
          self->OnAnswer(scheduled, error, status, response);
        });
  }

  void OnAnswer(Clock::time_point scheduled, const std::string& error, int status,
                const std::string& response) {
    const Clock::time_point now = Clock::now();
    const bool in_window = scheduled >= shared_->measure_from;
    if (in_window) {
      if (!error.empty()) {
        ++stats_->errors[error];
      } else if (status != 200) {
        ++stats_->errors["http " + std::to_string(status)];
      } else if (shared_->rxdb && !rxdb::PushAccepted(response)) {
        // rxdb-server answers 200 with the master states it did not
        // overwrite: the document was not written, so not a push.
        ++stats_->conflicts;
        ++stats_->errors["conflict"];
      } else {
        ++stats_->pushes;
        stats_->documents += shared_->options.docs_per_push;
        // Conflicts are rare here (new ids); an empty array is the norm.
        if (!shared_->rxdb && response.find("\"conflicts\":[]") == std::string::npos) {
          ++stats_->conflicts;
        }
        stats_->latency.Record(
            std::chrono::duration_cast<std::chrono::microseconds>(now - scheduled).count());
      }
    }
    if (shared_->options.rate > 0) {
      next_ += std::chrono::nanoseconds(
          static_cast<int64_t>(1e9 * shared_->options.clients / shared_->options.rate));
    } else {
      next_ = now;
    }
    // Back off briefly after a transport error so a dead server is not
    // hammered in a tight reconnect loop.
    if (!error.empty() && shared_->options.rate <= 0) next_ = now + std::chrono::milliseconds(10);
    if (!error.empty()) {
      timer_.expires_at(next_);
      timer_.async_wait(
          [self = shared_from_this()](boost::system::error_code) { self->Schedule(); });
      return;
    }
    Schedule();
  }

  Shared* shared_;
  ThreadStats* stats_;
  int index_;
  int64_t sent_ = 0;
  Clock::time_point next_;
  asio::steady_timer timer_;
  std::shared_ptr<HttpConnection> connection_;
};

}  // namespace

PushResult RunPush(const PushOptions& options) {
  Shared shared;
  shared.options = options;
  if (!ParseUrl(options.base_url, &shared.url)) {
    throw std::runtime_error("bad --url " + options.base_url);
  }
  shared.rxdb = options.target == "rxdb";
  if (shared.rxdb) {
    if (options.rooms != 1) throw std::runtime_error("rxdb-server has no rooms: use --rooms 1");
    while (shared.url.target.size() > 1 && shared.url.target.back() == '/') {
      shared.url.target.pop_back();
    }
  } else if (options.target != "roomsync") {
    throw std::runtime_error("push: unknown --target " + options.target);
  }
  const auto endpoint = Resolve(shared.url);
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(50);
  shared.measure_from = start + std::chrono::milliseconds(static_cast<int64_t>(options.warmup_s * 1e3));
  shared.measure_until =
      shared.measure_from + std::chrono::milliseconds(static_cast<int64_t>(options.duration_s * 1e3));

  WorkerPool pool(options.threads);
  std::vector<ThreadStats> stats(pool.size());
  shared.running = options.clients;
  for (int i = 0; i < options.clients; ++i) {
    const int worker = i % pool.size();
    asio::io_context& io = pool.context(worker);
    // Open loop: stagger the clients over one interval so their pushes
    // do not arrive in lockstep.
    Clock::time_point first = start;
    if (options.rate > 0) {
      first += std::chrono::nanoseconds(static_cast<int64_t>(1e9 * i / options.rate));
    }
    asio::post(io, [&io, endpoint, &shared, s = &stats[worker], i, first] {
      std::make_shared<PushClient>(io, endpoint, &shared, s, i)->Start(first);
    });
  }
  std::this_thread::sleep_until(shared.measure_from);
  const int64_t cpu_before = CpuMicros(options.server_pids);
  std::this_thread::sleep_until(shared.measure_until);
  const int64_t cpu_after = CpuMicros(options.server_pids);
  // Requests scheduled inside the window may still be in flight.
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(15);
  while (shared.running.load() > 0 && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pool.Join();

  PushResult result;
  result.options = options;
  result.server_cpu_us = cpu_after - cpu_before;
  for (const ThreadStats& s : stats) {
    result.latency.Merge(s.latency);
    result.pushes += s.pushes;
    result.documents += s.documents;
    result.conflicts += s.conflicts;
    MergeErrors(result.errors, s.errors);
  }
  return result;
}

void PushResult::Write(JsonWriter& json) const {
  json.String("url", options.base_url)
      .String("target", options.target)
      .Int("clients", options.clients)
      .Int("rooms", options.rooms)
      .Int("docs_per_push", options.docs_per_push)
      .Double("target_rate", options.rate)
      .Double("duration_s", options.duration_s)
      .Int("pushes", pushes)
      .Int("documents", documents)
      .Double("pushes_per_s", pushes_per_s())
      .Double("documents_per_s", documents_per_s())
      .Int("conflicts", conflicts)
      .Latency("latency", latency);
  int64_t error_count = 0;
  json.BeginObject("errors");
  for (const auto& [kind, count] : errors) {
    json.Int(kind, count);
    error_count += count;
  }
  json.EndObject().Int("error_count", error_count);
  if (!options.server_pids.empty()) {
    json.Double("server_cpu_s", server_cpu_us / 1e6);
    json.Double("server_cpu_us_per_push", pushes > 0 ? double(server_cpu_us) / pushes : 0.0);
  }
}

std::string PushResult::Summary() const {
  int64_t error_count = 0;
  for (const auto& [kind, count] : errors) error_count += count;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "push%s: %d clients, %d rooms, %d docs/push: %.0f pushes/s, %.0f docs/s, "
                "%lld errors; ",
                options.target == "roomsync" ? "" : (" " + options.target).c_str(),
                options.clients, options.rooms, options.docs_per_push, pushes_per_s(),
                documents_per_s(), static_cast<long long>(error_count));
  std::string out = buf + LatencySummary(latency);
  if (!options.server_pids.empty() && pushes > 0) {
    std::snprintf(buf, sizeof buf, "; server CPU %.1f us/push", double(server_cpu_us) / pushes);
    out += buf;
  }
  return out;
}

}  // namespace roomsync::bench
