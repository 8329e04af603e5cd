#include "bench/fanout_scenario.h"

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/http_connection.h"
#include "bench/sse_connection.h"

namespace roomsync::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::string ForRoom(const std::string& url_template, int room) {
  std::string out = url_template;
  const size_t at = out.find("{room}");
  if (at != std::string::npos) out.replace(at, 6, "bench-fanout-" + std::to_string(room));
  return out;
}

Url MustParse(const std::string& text) {
  Url url;
  if (!ParseUrl(text, &url)) throw std::runtime_error("bad url " + text);
  return url;
}

// Window of send times whose deliveries count, in MonotonicMicros.
struct Window {
  int64_t from_us = 0;
  int64_t until_us = 0;
};

struct PublishStats {
  int64_t published = 0;
  ErrorKinds errors;
  Histogram latency;
};

// One publisher connection, open loop at `interval`, rooms in rotation.
class Publisher : public std::enable_shared_from_this<Publisher> {
 public:
  Publisher(asio::io_context& io, asio::ip::tcp::endpoint endpoint, const FanoutOptions* options,
            Window window, PublishStats* stats, int index)
      : options_(options),
        window_(window),
        stats_(stats),
        index_(index),
        timer_(io),
        connection_(std::make_shared<HttpConnection>(io, endpoint,
                                                     MustParse(options->publish_url).host)) {}

  void Start(int64_t first_us, int64_t interval_us) {
    next_us_ = first_us;
    interval_us_ = interval_us;
    Wait();
  }

 private:
  void Wait() {
    if (next_us_ >= window_.until_us) return;
    const int64_t delay = next_us_ - MonotonicMicros();
    timer_.expires_after(std::chrono::microseconds(std::max<int64_t>(delay, 0)));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code) { self->Send(); });
  }

  void Send() {
    const int64_t scheduled = next_us_;
    const int room = static_cast<int>((index_ + count_ * options_->publishers) % options_->rooms);
    std::string doc = ChatDocument(
        "p" + std::to_string(index_) + "-" + std::to_string(count_), scheduled);
    ++count_;
    if (options_->publish_array) doc = "[" + doc + "]";
    connection_->Request(http::verb::post, MustParse(ForRoom(options_->publish_url, room)).target,
                         std::move(doc),
                         [self = shared_from_this(), scheduled](const std::string& error,
                                                                int status, std::string) {
                           self->OnAnswer(scheduled, error, status);
                         });
  }

  void OnAnswer(int64_t scheduled, const std::string& error, int status) {
    if (scheduled >= window_.from_us) {
      if (!error.empty()) {
        ++stats_->errors[error];
      } else if (status < 200 || status > 299) {
        ++stats_->errors["http " + std::to_string(status)];
      } else {
        ++stats_->published;
        stats_->latency.Record(MonotonicMicros() - scheduled);
      }
    }
    next_us_ += interval_us_;
    Wait();
  }

  const FanoutOptions* options_;
  Window window_;
  PublishStats* stats_;
  int index_;
  int64_t count_ = 0;
  int64_t next_us_ = 0;
  int64_t interval_us_ = 0;
  asio::steady_timer timer_;
  std::shared_ptr<HttpConnection> connection_;
};

}  // namespace

double FanoutResult::bytes_per_connection() const {
  if (opened == 0 || options.server_pids.empty()) return 0;
  return (rss_idle_kib - rss_before_kib) * 1024.0 / opened;
}

FanoutResult RunFanout(const FanoutOptions& options) {
  FanoutResult result;
  result.options = options;
  const Url subscribe = MustParse(options.subscribe_url);
  const auto sub_endpoint = Resolve(subscribe);
  const auto pub_endpoint = Resolve(MustParse(options.publish_url));

  WorkerPool pool(options.threads);
  std::vector<SseStats> stats(pool.size());
  std::vector<std::vector<std::shared_ptr<SseConnection>>> connections(pool.size());

  result.rss_before_kib = ResidentKiB(options.server_pids);
  // Connect with at most connect_concurrency attempts in flight.
  std::atomic<int> next{0};
  std::atomic<int> finished{0};
  std::function<void()> launch = [&] {
    const int i = next.fetch_add(1);
    if (i >= options.subscribers) return;
    const int worker = i % pool.size();
    asio::post(pool.context(worker), [&, i, worker] {
      const std::string target = MustParse(ForRoom(options.subscribe_url, i % options.rooms)).target;
      std::string request = "GET " + target + " HTTP/1.1\r\nHost: " + subscribe.host +
                            "\r\nAccept: text/event-stream\r\n\r\n";
      // Past 25,000 loopback streams, spread over 127.0.0.2, .3, … as sources.
      asio::ip::address source;
      if (sub_endpoint.address().is_loopback() && i >= 25000) {
        source = asio::ip::make_address_v4(0x7f000001u + static_cast<uint32_t>(i / 25000));
      }
      auto connection = std::make_shared<SseConnection>(pool.context(worker), sub_endpoint,
                                                        std::move(request), &stats[worker], source);
      connections[worker].push_back(connection);
      connection->Start([&](bool) {
        finished.fetch_add(1);
        launch();
      });
    });
  };
  const Clock::time_point connect_start = Clock::now();
  for (int i = 0; i < std::min(options.connect_concurrency, options.subscribers); ++i) launch();
  const Clock::time_point connect_deadline = connect_start + std::chrono::seconds(120);
  while (finished.load() < options.subscribers && Clock::now() < connect_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  result.connect_s = std::chrono::duration<double>(Clock::now() - connect_start).count();
  // Let the server finish its side of the last connects before sampling.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  result.rss_idle_kib = ResidentKiB(options.server_pids);

  // Publish from warm-up start to the end of the window.
  const int64_t start_us = MonotonicMicros() + 50000;
  Window window{start_us + static_cast<int64_t>(options.warmup_s * 1e6), 0};
  window.until_us = window.from_us + static_cast<int64_t>(options.duration_s * 1e6);
  // Each subscriber records only documents sent inside the window; the
  // window is fixed before any such document exists.
  for (int w = 0; w < pool.size(); ++w) {
    asio::post(pool.context(w), [&stats, w, window] {
      stats[w].window_from_us = window.from_us;
      stats[w].window_until_us = window.until_us;
    });
  }
  std::vector<PublishStats> publish_stats(options.publishers);
  const int64_t interval_us = static_cast<int64_t>(1e6 * options.publishers / options.rate);
  for (int p = 0; p < options.publishers; ++p) {
    asio::io_context& io = pool.context(p);
    asio::post(io, [&options, &publish_stats, &io, pub_endpoint, window, p, start_us,
                    interval_us] {
      std::make_shared<Publisher>(io, pub_endpoint, &options, window, &publish_stats[p], p)
          ->Start(start_us + interval_us * p / options.publishers, interval_us);
    });
  }
  std::this_thread::sleep_for(std::chrono::microseconds(window.from_us - MonotonicMicros()));
  const int64_t cpu_before = CpuMicros(options.server_pids);
  std::this_thread::sleep_for(std::chrono::microseconds(window.until_us - MonotonicMicros()));
  const int64_t cpu_after = CpuMicros(options.server_pids);
  // Deliveries of the last documents are still on their way.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (int w = 0; w < pool.size(); ++w) {
    asio::post(pool.context(w), [&connections, w] {
      for (auto& connection : connections[w]) connection->Close();
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  pool.Join();

  result.server_cpu_us = cpu_after - cpu_before;
  for (const SseStats& s : stats) {
    result.opened += s.opened;
    result.delivery_latency.Merge(s.delivery_latency);
    result.resyncs += s.resyncs;
    result.connect_errors += s.connect_errors;
    result.disconnects += s.disconnects;
  }
  for (const PublishStats& p : publish_stats) {
    result.published += p.published;
    result.publish_latency.Merge(p.latency);
    MergeErrors(result.publish_errors, p.errors);
  }
  // Rooms get subscribers round-robin and publishes round-robin, so each
  // document reaches subscribers/rooms streams on average.
  result.expected_deliveries = static_cast<int64_t>(
      static_cast<double>(result.published) * result.opened / options.rooms);
  return result;
}

void FanoutResult::Write(JsonWriter& json) const {
  json.String("target", options.target)
      .String("subscribe_url", options.subscribe_url)
      .String("publish_url", options.publish_url)
      .Int("subscribers", options.subscribers)
      .Int("rooms", options.rooms)
      .Double("publish_rate", options.rate)
      .Double("duration_s", options.duration_s)
      .Int("opened", opened)
      .Int("connect_errors", connect_errors)
      .Double("connect_s", connect_s)
      .Double("connects_per_s", connect_s > 0 ? opened / connect_s : 0.0)
      .Int("server_rss_before_kib", rss_before_kib)
      .Int("server_rss_idle_kib", rss_idle_kib)
      .Double("server_bytes_per_connection", bytes_per_connection())
      .Int("published", published)
      .Latency("publish_latency", publish_latency);
  json.BeginObject("publish_errors");
  for (const auto& [kind, count] : publish_errors) json.Int(kind, count);
  json.EndObject()
      .Int("expected_deliveries", expected_deliveries)
      .Int("deliveries", delivery_latency.count())
      .Int("missing_deliveries", std::max<int64_t>(expected_deliveries - delivery_latency.count(), 0))
      .Double("deliveries_per_s", deliveries_per_s())
      .Latency("delivery_latency", delivery_latency)
      .Int("resyncs", resyncs)
      .Int("disconnects", disconnects);
  if (!options.server_pids.empty()) json.Double("server_cpu_s", server_cpu_us / 1e6);
}

std::string FanoutResult::Summary() const {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "fanout[%s]: %lld/%d subscribers open (%.0f connects/s), %d rooms, %.0f docs/s "
                "published (%lld acked); server %.0f B/connection idle; %.0f deliveries/s "
                "(%lld of %lld expected), %lld resyncs, %lld disconnects; delivery ",
                options.target.c_str(), static_cast<long long>(opened), options.subscribers,
                connect_s > 0 ? opened / connect_s : 0.0, options.rooms, options.rate,
                static_cast<long long>(published), bytes_per_connection(), deliveries_per_s(),
                static_cast<long long>(delivery_latency.count()),
                static_cast<long long>(expected_deliveries), static_cast<long long>(resyncs),
                static_cast<long long>(disconnects));
  return buf + LatencySummary(delivery_latency);
}

}  // namespace roomsync::bench
