#include "bench/stream_scenarios.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <latch>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "bench/http_connection.h"
#include "bench/sse_connection.h"
#include "bench/tracked_stream.h"
#include "bench/workload.h"

// Shared with the other scenarios (defined in main.cc).
ABSL_DECLARE_FLAG(std::string, url);
ABSL_DECLARE_FLAG(double, duration_s);
ABSL_DECLARE_FLAG(double, warmup_s);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(std::string, room_prefix);
ABSL_DECLARE_FLAG(std::string, collection);
ABSL_DECLARE_FLAG(std::vector<std::string>, subscribers);
ABSL_DECLARE_FLAG(std::vector<std::string>, rate);
ABSL_DECLARE_FLAG(int, connect_concurrency);

ABSL_FLAG(double, slow_fraction, 0.01, "slow-consumers: share of subscribers that read slowly");
ABSL_FLAG(double, slow_read_bytes_per_s, 1024, "slow-consumers: read rate of a slow subscriber");
ABSL_FLAG(int, slow_receive_buffer, 4096, "slow-consumers: SO_RCVBUF of a slow subscriber");
ABSL_FLAG(int, slow_max_segment, 1460,
          "slow-consumers: TCP_MAXSEG of a slow subscriber (0 = loopback's 64 KiB)");
ABSL_FLAG(double, overload_rate, 500,
          "slow-consumers: pushes/s of phase C (slow subscribers alone, until they get RESYNC)");
ABSL_FLAG(double, resync_timeout_s, 30, "slow-consumers: longest phase C");
ABSL_FLAG(int, changes_before, 10, "reconnect-storm: changes received before disconnecting");
ABSL_FLAG(int, changes_away, 50,
          "reconnect-storm: changes pushed while disconnected (keep inside the recent-changes cache)");
ABSL_FLAG(int, changes_after, 5, "reconnect-storm: live changes after the catch-up");
ABSL_FLAG(int, reconnect_concurrency, 0, "reconnect-storm: reconnects in flight, 0 = all at once");
ABSL_FLAG(double, catch_up_timeout_s, 30, "reconnect-storm: longest wait for the catch-up");
ABSL_FLAG(std::string, metrics_url, "",
          "reconnect-storm: the room service's Prometheus URL (roomsync --metrics), e.g. "
          "http://127.0.0.1:9100/metrics");
ABSL_FLAG(int, churn_concurrency, 256, "connect-during-fanout: new connections in flight");
ABSL_FLAG(double, churn_rate, 0, "connect-during-fanout: new connections/s, 0 = as fast as possible");

namespace roomsync::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Streams = std::vector<std::shared_ptr<TrackedStream>>;

double FirstNumber(const std::vector<std::string>& list, double fallback) {
  const double value = list.empty() ? 0 : std::stod(list.front());
  return value > 0 ? value : fallback;
}

// What every stream scenario shares, from the common flags.
struct Env {
  Url url;
  tcp::endpoint endpoint;
  std::string collection;
  std::string room_prefix;
  double duration_s = 0;
  double warmup_s = 0;
  int threads = 1;
  int connect_concurrency = 256;

  std::string StreamTarget(const std::string& room) const {
    return "/v1/rooms/" + room + "/replicate/pull/stream?collection=" + collection;
  }
  std::string PushTarget(const std::string& room) const {
    return "/v1/rooms/" + room + "/replicate/push?collection=" + collection;
  }
  // Connections opened and closed in bulk come from 127.0.0.2… so that
  // TIME_WAIT sockets of closed ones never exhaust one source's ports.
  asio::ip::address SourceFor(int64_t k) const {
    if (!endpoint.address().is_v4() || !endpoint.address().is_loopback()) return {};
    return asio::ip::make_address_v4(0x7f000002u + static_cast<uint32_t>(k % 32));
  }
};

Env EnvFromFlags(const std::string& command) {
  Env env;
  if (!ParseUrl(absl::GetFlag(FLAGS_url), &env.url)) throw std::runtime_error("bad --url");
  env.endpoint = Resolve(env.url);
  env.collection = absl::GetFlag(FLAGS_collection);
  env.room_prefix = absl::GetFlag(FLAGS_room_prefix);
  // A fresh room per run: a reused one would hold an earlier run's changes.
  if (env.room_prefix.empty()) env.room_prefix = "bench-" + std::to_string(getpid());
  env.room_prefix += "-" + command;
  env.duration_s = absl::GetFlag(FLAGS_duration_s);
  env.warmup_s = absl::GetFlag(FLAGS_warmup_s);
  env.threads = std::max(1, absl::GetFlag(FLAGS_threads));
  env.connect_concurrency = std::max(1, absl::GetFlag(FLAGS_connect_concurrency));
  return env;
}

// Runs f(worker) on every worker thread and waits: the only way the main
// thread touches streams, which belong to their worker's thread.
template <typename F>
void OnWorkers(WorkerPool& pool, F f) {
  std::latch done(pool.size());
  for (int w = 0; w < pool.size(); ++w) {
    asio::post(pool.context(w), [&f, &done, w] {
      f(w);
      done.count_down();
    });
  }
  done.wait();
}

void SleepUntil(int64_t monotonic_us) {
  const int64_t delay = monotonic_us - MonotonicMicros();
  if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
}

// Opens streams[first, first + count) (stream i on worker i % threads),
// `concurrency` attempts in flight; returns once every attempt finished
// or after `timeout_s`, with the seconds it took.
// The state of one OpenStreams call, held by its callbacks (which may
// outlive a timed-out call; pool, env and streams outlive the pool's run).
struct OpenState {
  std::atomic<int> next{0};
  std::atomic<int> finished{0};
  int end = 0;
  WorkerPool* pool = nullptr;
  const Env* env = nullptr;
  Streams* streams = nullptr;
  std::function<StreamOptions(int)> options_for;
};

void LaunchNext(const std::shared_ptr<OpenState>& state) {
  const int i = state->next.fetch_add(1);
  if (i >= state->end) return;
  const int worker = i % state->pool->size();
  asio::post(state->pool->context(worker), [state, i, worker] {
    auto stream = std::make_shared<TrackedStream>(state->pool->context(worker),
                                                  state->env->endpoint, state->options_for(i));
    (*state->streams)[i] = stream;
    stream->Start([state](bool) {
      state->finished.fetch_add(1);
      LaunchNext(state);
    });
  });
}

double OpenStreams(WorkerPool& pool, const Env& env, Streams& streams, int first, int count,
                   int concurrency, const std::function<StreamOptions(int)>& options_for,
                   double timeout_s = 120) {
  auto state = std::make_shared<OpenState>();
  state->next = first;
  state->end = first + count;
  state->pool = &pool;
  state->env = &env;
  state->streams = &streams;
  state->options_for = options_for;
  const auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < std::min(concurrency, count); ++k) LaunchNext(state);
  const auto deadline = start + std::chrono::duration<double>(timeout_s);
  while (state->finished.load() < count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Polls (on the workers) until pred(record) holds for every selected
// stream or `timeout_s` passes; returns whether it held.
bool WaitForAll(WorkerPool& pool, const Streams& streams,
                const std::function<bool(int, const StreamRecord&)>& pred, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    std::atomic<bool> all{true};
    OnWorkers(pool, [&](int w) {
      for (size_t i = w; i < streams.size(); i += pool.size()) {
        if (streams[i] && !pred(static_cast<int>(i), streams[i]->record())) all = false;
      }
    });
    if (all) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void CloseStreams(WorkerPool& pool, Streams& streams, const std::function<bool(int)>& which) {
  OnWorkers(pool, [&](int w) {
    for (size_t i = w; i < streams.size(); i += pool.size()) {
      if (streams[i] && which(static_cast<int>(i))) streams[i]->Close();
    }
  });
}

struct PublishStats {
  int64_t acked = 0;
  ErrorKinds errors;
  Histogram latency;
};

// The one publisher of a room: documents "n0", "n1", … (ChatDocument with
// that id and sent_us), ONE push in flight at a time, so the index order is
// the commit order and subscribers can check contiguity. Open loop: the
// k-th push of a run is scheduled at first_us + k/rate and goes at once
// when the previous answer came late.
class Feed : public std::enable_shared_from_this<Feed> {
 public:
  Feed(asio::io_context& io, const Env& env, const std::string& room)
      : io_(io),
        timer_(io),
        target_(env.PushTarget(room)),
        connection_(std::make_shared<HttpConnection>(io, env.endpoint, env.url.host)) {}

  // Publishes until `count` documents were sent (0 = no limit), the
  // schedule passes until_us, or Stop(); returns when the run is over.
  // Call from the main thread; the feed runs on its io_context.
  void Run(int64_t first_us, double rate, int64_t count, int64_t until_us) {
    std::promise<void> over;
    auto future = over.get_future();
    asio::post(io_, [self = shared_from_this(), first_us, rate, count, until_us,
                     over = std::move(over)]() mutable {
      self->first_us_ = first_us;
      self->interval_us_ = 1e6 / rate;
      self->sent_in_run_ = 0;
      self->count_ = count;
      self->until_us_ = until_us;
      self->over_ = std::move(over);
      self->Wait();
    });
    future.wait();
  }
  void Stop() { stop_ = true; }
  // Read between runs only.
  int64_t next_index() const { return next_index_; }
  const PublishStats& stats() const { return stats_; }

 private:
  void Wait() {
    const int64_t at = first_us_ + static_cast<int64_t>(interval_us_ * sent_in_run_);
    if (stop_ || at >= until_us_ || (count_ > 0 && sent_in_run_ >= count_)) {
      return over_.set_value();
    }
    timer_.expires_after(std::chrono::microseconds(std::max<int64_t>(at - MonotonicMicros(), 0)));
    timer_.async_wait([self = shared_from_this(), at](boost::system::error_code) {
      self->Send(at);
    });
  }

  void Send(int64_t scheduled) {
    std::string body = "[" + ChatDocument("n" + std::to_string(next_index_), scheduled) + "]";
    ++next_index_;
    ++sent_in_run_;
    connection_->Request(http::verb::post, target_, std::move(body),
                         [self = shared_from_this(), scheduled](const std::string& error,
                                                                int status, std::string) {
                           if (!error.empty()) {
                             ++self->stats_.errors["publish: " + error];
                           } else if (status < 200 || status > 299) {
                             ++self->stats_.errors["publish: http " + std::to_string(status)];
                           } else {
                             ++self->stats_.acked;
                             self->stats_.latency.Record(MonotonicMicros() - scheduled);
                           }
                           self->Wait();
                         });
  }

  asio::io_context& io_;
  asio::steady_timer timer_;
  std::string target_;
  std::shared_ptr<HttpConnection> connection_;
  std::atomic<bool> stop_{false};
  int64_t next_index_ = 0;
  int64_t first_us_ = 0;
  double interval_us_ = 0;
  int64_t sent_in_run_ = 0;
  int64_t count_ = 0;
  int64_t until_us_ = 0;
  std::promise<void> over_;
  PublishStats stats_;
};

// Checks that a stream that should have received exactly the documents
// [first, last] did, counting every deviation by kind.
void CheckExact(const StreamRecord& r, int64_t first, int64_t last, ErrorKinds& errors) {
  if (!r.opened) {
    ++errors[r.error.empty() ? "connect" : r.error];
    return;
  }
  if (r.end == StreamRecord::End::kResync) ++errors["unexpected RESYNC"];
  if (r.end == StreamRecord::End::kServerClosed) ++errors["server closed the stream"];
  if (r.first_index < 0) {
    if (last >= first) errors["missing document"] += last - first + 1;
    return;
  }
  if (r.first_index > first) {
    ++errors["silent gap"];
    errors["missing document"] += r.first_index - first;
  }
  if (r.first_index < first) errors["unexpected document"] += first - r.first_index;
  if (r.gaps > 0) {
    errors["silent gap"] += r.gaps;
    errors["missing document"] += r.skipped;
  }
  if (r.duplicates > 0) errors["duplicate document"] += r.duplicates;
  if (r.last_index < last) errors["missing document"] += last - r.last_index;
  if (r.last_index > last) errors["unexpected document"] += r.last_index - last;
}

int64_t ErrorCount(const ErrorKinds& errors) {
  int64_t total = 0;
  for (const auto& [kind, count] : errors) total += count;
  return total;
}

void WriteErrors(JsonWriter& json, const ErrorKinds& errors) {
  json.Int("error_count", ErrorCount(errors));
  json.BeginObject("errors");
  for (const auto& [kind, count] : errors) json.Int(kind, count);
  json.EndObject();
}

std::string ErrorSummary(const ErrorKinds& errors) {
  if (errors.empty()) return "no errors";
  std::string out;
  for (const auto& [kind, count] : errors) {
    out += (out.empty() ? "" : ", ") + kind + " " + std::to_string(count);
  }
  return "errors: " + out;
}

double PercentChange(int64_t before, int64_t after) {
  return before > 0 ? 100.0 * static_cast<double>(after - before) / static_cast<double>(before) : 0;
}

// The samples of one metric on a Prometheus text page, by their label
// text ("op=\"pull\",source=\"cache\"", or "" without labels); ok is
// false when the page could not be read.
struct MetricSamples {
  bool ok = false;
  std::map<std::string, double> by_labels;
  double get(const std::string& labels = {}) const {
    auto it = by_labels.find(labels);
    return it == by_labels.end() ? 0 : it->second;
  }
};

MetricSamples Scrape(const std::string& metrics_url, const std::string& metric) {
  MetricSamples samples;
  Url url;
  if (metrics_url.empty() || !ParseUrl(metrics_url, &url)) return samples;
  try {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(Resolve(url));
    http::request<http::empty_body> request{http::verb::get, url.target, 11};
    request.set(http::field::host, url.host);
    http::write(socket, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(socket, buffer, response);
    std::istringstream lines(response.body());
    std::string line;
    while (std::getline(lines, line)) {
      if (!line.starts_with(metric)) continue;
      std::string labels;
      const size_t rest = metric.size();
      if (line.size() > rest && line[rest] == '{') {
        labels = line.substr(rest + 1, line.find('}') - rest - 1);
      } else if (line.size() <= rest || line[rest] != ' ') {
        continue;  // another metric with this one's name as prefix
      }
      samples.by_labels[labels] = std::stod(line.substr(line.rfind(' ') + 1));
    }
    samples.ok = true;
  } catch (const std::exception& e) {
    std::cerr << "cannot read " << metrics_url << ": " << e.what() << "\n";
  }
  return samples;
}

// --- slow-consumers ---------------------------------------------------------

struct PhaseResult {
  int64_t opened = 0;
  double connect_s = 0;
  int64_t published = 0;
  Histogram latency;  // the normal subscribers'
  ErrorKinds errors;  // publish errors and the normal subscribers' deviations
};

void WritePhase(JsonWriter& json, std::string_view key, const PhaseResult& p) {
  json.BeginObject(key)
      .Int("opened", p.opened)
      .Double("connect_s", p.connect_s)
      .Int("published", p.published)
      .Int("deliveries", p.latency.count())
      .Latency("delivery_latency", p.latency);
  WriteErrors(json, p.errors);
  json.EndObject();
}

void RunSlowConsumers(const Env& env, JsonWriter& json) {
  const int subscribers = static_cast<int>(FirstNumber(absl::GetFlag(FLAGS_subscribers), 2000));
  const double rate = FirstNumber(absl::GetFlag(FLAGS_rate), 50);
  const double fraction = absl::GetFlag(FLAGS_slow_fraction);
  const int slow_every = std::max(1, static_cast<int>(1 / std::max(fraction, 1e-6) + 0.5));
  const double slow_bps = absl::GetFlag(FLAGS_slow_read_bytes_per_s);
  const int slow_rcvbuf = absl::GetFlag(FLAGS_slow_receive_buffer);
  const int slow_mss = absl::GetFlag(FLAGS_slow_max_segment);
  // The gateway counts the RESYNCs it decides; a slow reader sees one only
  // after reading what the server's kernel already holds for it.
  const std::string gateway_metrics = absl::GetFlag(FLAGS_url) + "/metrics";
  constexpr const char* kResyncMetric = "roomsync_gateway_sse_resyncs_total";
  double server_resyncs_before = 0;
  const double overload_rate = absl::GetFlag(FLAGS_overload_rate);
  const double resync_timeout_s = absl::GetFlag(FLAGS_resync_timeout_s);
  auto is_slow = [&](int i, bool phase_b) { return phase_b && i % slow_every == 0; };
  int slow_count = 0;
  for (int i = 0; i < subscribers; ++i) slow_count += is_slow(i, true);

  WorkerPool pool(env.threads);
  std::vector<LatencySink> normal_sinks(pool.size()), slow_sinks(pool.size());
  PhaseResult phases[2];
  Streams streams_b;
  std::shared_ptr<Feed> feed_b;
  for (int phase = 0; phase < 2; ++phase) {
    const bool b = phase == 1;
    const std::string room = env.room_prefix + (b ? "-b" : "-a");
    const std::string request = StreamRequest(env.url.host, env.StreamTarget(room));
    Streams streams(subscribers);
    normal_sinks.assign(pool.size(), LatencySink{});
    slow_sinks.assign(pool.size(), LatencySink{});
    PhaseResult& result = phases[phase];
    if (b) server_resyncs_before = Scrape(gateway_metrics, kResyncMetric).get();
    result.connect_s = OpenStreams(pool, env, streams, 0, subscribers, env.connect_concurrency,
                                   [&](int i) {
                                     StreamOptions o;
                                     o.request = request;
                                     const int w = i % pool.size();
                                     if (is_slow(i, b)) {
                                       o.receive_buffer = slow_rcvbuf;
                                       o.max_segment = slow_mss;
                                       o.read_bytes_per_s = slow_bps;
                                       o.sink = &slow_sinks[w];
                                     } else {
                                       o.sink = &normal_sinks[w];
                                     }
                                     return o;
                                   });
    // Let the server finish its side of the last connects.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const int64_t first_us = MonotonicMicros() + 50000;
    const int64_t from_us = first_us + static_cast<int64_t>(env.warmup_s * 1e6);
    const int64_t until_us = from_us + static_cast<int64_t>(env.duration_s * 1e6);
    OnWorkers(pool, [&](int w) {
      for (auto* sink : {&normal_sinks[w], &slow_sinks[w]}) {
        sink->from_us = from_us;
        sink->until_us = until_us;
      }
    });
    auto feed = std::make_shared<Feed>(pool.context(0), env, room);
    feed->Run(first_us, rate, 0, until_us);
    const int64_t head = feed->next_index() - 1;
    // The normal subscribers get a few seconds for the tail.
    WaitForAll(
        pool, streams,
        [&](int i, const StreamRecord& r) {
          return is_slow(i, b) || r.end != StreamRecord::End::kOpen || r.last_index >= head;
        },
        5);
    OnWorkers(pool, [&](int w) {
      result.latency.Merge(normal_sinks[w].latency);
      for (size_t i = w; i < streams.size(); i += pool.size()) {
        if (!streams[i]) {
          ++result.errors["connect: not attempted"];
          continue;
        }
        if (streams[i]->record().opened) ++result.opened;
        if (!is_slow(static_cast<int>(i), b)) CheckExact(streams[i]->record(), 0, head, result.errors);
      }
    });
    result.published = feed->stats().acked;
    MergeErrors(result.errors, feed->stats().errors);
    CloseStreams(pool, streams, [&](int i) { return !is_slow(i, b); });
    if (b) {
      streams_b = std::move(streams);
      feed_b = feed;
    }
  }

  // Phase C: the slow subscribers alone, the publisher much faster, until
  // the server has given each of them RESYNC. At 50 pushes/s a slow
  // reader's backlog grows ~20 KB/s and needs most of a minute to reach
  // the gateway's 1 MiB queue bound; this makes the bound observable in
  // seconds without 100,000s of deliveries/s to the normal ones.
  const int64_t c_start = MonotonicMicros();
  double server_resyncs = 0;
  int64_t c_end = 0;
  std::thread stopper([&] {
    const int64_t deadline = c_start + static_cast<int64_t>(resync_timeout_s * 1e6);
    while (MonotonicMicros() < deadline) {
      server_resyncs = Scrape(gateway_metrics, kResyncMetric).get() - server_resyncs_before;
      if (server_resyncs >= slow_count) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    c_end = MonotonicMicros();
    feed_b->Stop();
  });
  feed_b->Run(c_start + 1000, overload_rate, 0,
              c_start + static_cast<int64_t>(resync_timeout_s * 1e6));
  stopper.join();
  const int64_t c_published_head = feed_b->next_index() - 1;
  // Then the slow ones read at full speed: what the server's kernel still
  // held for them arrives, and with it the RESYNC (or the end of the
  // stream) that the bar is about, in milliseconds instead of hours at
  // 1 KB/s.
  OnWorkers(pool, [&](int w) {
    for (size_t i = w; i < streams_b.size(); i += pool.size()) {
      if (streams_b[i] && is_slow(static_cast<int>(i), true)) streams_b[i]->SetReadRate(0);
    }
  });
  WaitForAll(
      pool, streams_b,
      [&](int i, const StreamRecord& r) {
        return !is_slow(i, true) || r.end != StreamRecord::End::kOpen;
      },
      10);
  // A stream that got RESYNC is done; one still open after the timeout is
  // counted as such (it was contiguous so far, or it is a silent gap).
  int64_t slow_resync = 0, slow_closed = 0, slow_open = 0, slow_silent_gap = 0,
          slow_after_resync = 0, slow_documents = 0, slow_bytes = 0;
  ErrorKinds slow_errors;
  OnWorkers(pool, [&](int w) {
    for (size_t i = w; i < streams_b.size(); i += pool.size()) {
      if (!is_slow(static_cast<int>(i), true) || !streams_b[i]) continue;
      const StreamRecord& r = streams_b[i]->record();
      if (!r.opened) {
        ++slow_errors[r.error.empty() ? "connect" : r.error];
        continue;
      }
      slow_documents += r.documents;
      slow_bytes += r.bytes;
      // Contiguous from the first document the room ever had: anything
      // else is a document lost without RESYNC.
      const bool gap = r.gaps > 0 || r.duplicates > 0 || r.first_index > 0;
      if (gap) ++slow_silent_gap;
      slow_after_resync += r.after_resync;
      if (r.end == StreamRecord::End::kResync) {
        ++slow_resync;
      } else if (r.end == StreamRecord::End::kServerClosed) {
        ++slow_closed;
      } else {
        ++slow_open;
      }
    }
  });
  CloseStreams(pool, streams_b, [](int) { return true; });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pool.Join();
  if (slow_silent_gap > 0) slow_errors["slow: silent gap"] += slow_silent_gap;
  if (slow_after_resync > 0) slow_errors["slow: events after RESYNC"] += slow_after_resync;
  const PhaseResult& a = phases[0];
  const PhaseResult& bb = phases[1];
  ErrorKinds all = a.errors;
  MergeErrors(all, bb.errors);
  MergeErrors(all, slow_errors);
  const double p99_change = PercentChange(a.latency.Percentile(0.99), bb.latency.Percentile(0.99));

  json.BeginObject()
      .Int("subscribers", subscribers)
      .Int("slow_subscribers", slow_count)
      .Double("slow_read_bytes_per_s", slow_bps)
      .Int("slow_receive_buffer", slow_rcvbuf)
      .Double("publish_rate", rate)
      .Double("duration_s", env.duration_s);
  WritePhase(json, "all_normal", a);
  WritePhase(json, "with_slow", bb);
  json.Double("p99_change_pct", p99_change)
      .Double("p50_change_pct",
              PercentChange(a.latency.Percentile(0.5), bb.latency.Percentile(0.5)))
      .Double("overload_rate", overload_rate)
      .Int("overload_head_index", c_published_head)
      .Int("slow_resyncs", slow_resync)
      .Int("slow_closed_without_resync", slow_closed)
      .Int("slow_still_open", slow_open)
      .Int("slow_silent_gaps", slow_silent_gap)
      .Int("slow_events_after_resync", slow_after_resync)
      .Double("slow_documents_mean", slow_count ? double(slow_documents) / slow_count : 0.0)
      .Double("slow_bytes_mean", slow_count ? double(slow_bytes) / slow_count : 0.0)
      .Double("server_resyncs", server_resyncs)
      .Double("overload_s", (c_end - c_start) / 1e6);
  WriteErrors(json, all);
  json.EndObject();

  std::fprintf(stderr,
               "slow-consumers: %d subscribers, %.0f pushes/s, %.0f s\n"
               "  A all normal: %lld/%d open, %lld published, delivery %s; %s\n"
               "  B %d slow (%.0f B/s, SO_RCVBUF %d): normal delivery %s; %s\n"
               "  p99 change %+.1f%%\n"
               "  C %.0f pushes/s to the slow ones for %.1f s: the server sent %.0f RESYNC; "
               "the slow clients saw %lld RESYNC, %lld closed without RESYNC, %lld still open, "
               "%lld silent gaps\n  %s\n",
               subscribers, rate, env.duration_s, static_cast<long long>(a.opened), subscribers,
               static_cast<long long>(a.published), LatencySummary(a.latency).c_str(),
               ErrorSummary(a.errors).c_str(), slow_count, slow_bps, slow_rcvbuf,
               LatencySummary(bb.latency).c_str(), ErrorSummary(bb.errors).c_str(), p99_change,
               overload_rate, (c_end - c_start) / 1e6, server_resyncs,
               static_cast<long long>(slow_resync),
               static_cast<long long>(slow_closed), static_cast<long long>(slow_open),
               static_cast<long long>(slow_silent_gap), ErrorSummary(all).c_str());
}

// --- reconnect-storm --------------------------------------------------------

void RunReconnectStorm(const Env& env, JsonWriter& json) {
  const int clients = static_cast<int>(FirstNumber(absl::GetFlag(FLAGS_subscribers), 10000));
  const int before = std::max(1, absl::GetFlag(FLAGS_changes_before));
  const int away = std::max(1, absl::GetFlag(FLAGS_changes_away));
  const int after = std::max(0, absl::GetFlag(FLAGS_changes_after));
  const int reconnect_concurrency =
      absl::GetFlag(FLAGS_reconnect_concurrency) > 0 ? absl::GetFlag(FLAGS_reconnect_concurrency)
                                                     : clients;
  const double timeout_s = absl::GetFlag(FLAGS_catch_up_timeout_s);
  const std::string metrics_url = absl::GetFlag(FLAGS_metrics_url);
  const std::string room = env.room_prefix;
  const std::string target = env.StreamTarget(room);

  WorkerPool pool(env.threads);
  ErrorKinds errors;
  // 1. Everyone subscribes and receives `before` changes.
  Streams first(clients);
  const double first_connect_s =
      OpenStreams(pool, env, first, 0, clients, env.connect_concurrency, [&](int) {
        StreamOptions o;
        o.request = StreamRequest(env.url.host, target);
        return o;
      });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto feed = std::make_shared<Feed>(pool.context(0), env, room);
  feed->Run(MonotonicMicros(), 200, before, INT64_MAX);
  const bool got_before = WaitForAll(
      pool, first,
      [&](int, const StreamRecord& r) {
        return r.end != StreamRecord::End::kOpen || r.last_index >= before - 1;
      },
      timeout_s);
  if (!got_before) ++errors["initial changes not delivered in time"];
  // 2. Everyone remembers its last event id and disconnects.
  std::vector<std::string> last_ids(clients);
  int64_t first_opened = 0;
  OnWorkers(pool, [&](int w) {
    for (size_t i = w; i < first.size(); i += pool.size()) {
      if (!first[i]) continue;
      const StreamRecord& r = first[i]->record();
      if (r.opened) ++first_opened;
      CheckExact(r, 0, before - 1, errors);
      last_ids[i] = r.last_event_id;
      first[i]->Close();
    }
  });
  first.clear();
  // The server notices the closes (EOF on its side) before changes resume.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // 3. K changes while everyone is away.
  feed->Run(MonotonicMicros(), 1000, away, INT64_MAX);
  const int64_t head = feed->next_index() - 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const MetricSamples reads_before = Scrape(metrics_url, "roomsync_room_reads_total");
  // 4. Everyone reconnects at once with Last-Event-ID.
  Streams second(clients);
  std::atomic<int64_t> caught_up_count{0};
  const int64_t storm_start = MonotonicMicros();
  std::atomic<int64_t> last_open_us{0};
  const double open_s = OpenStreams(
      pool, env, second, 0, clients, reconnect_concurrency,
      [&](int i) {
        StreamOptions o;
        o.request = StreamRequest(env.url.host, target, last_ids[i]);
        o.source = env.SourceFor(i);
        return o;
      },
      timeout_s);
  const bool all_caught_up = WaitForAll(
      pool, second,
      [&](int, const StreamRecord& r) {
        return r.last_index >= head || r.end != StreamRecord::End::kOpen;
      },
      timeout_s);
  // Time to caught-up per client: when its last document up to the head
  // arrived (no live change is pushed before everyone is there).
  Histogram catch_up;
  int64_t reopened = 0;
  OnWorkers(pool, [&](int w) {
    for (size_t i = w; i < second.size(); i += pool.size()) {
      if (!second[i]) continue;
      const StreamRecord& r = second[i]->record();
      if (r.opened) {
        ++reopened;
        last_open_us = std::max<int64_t>(last_open_us.load(), r.opened_us);
      }
      if (r.last_index >= head) {
        caught_up_count.fetch_add(1);
        catch_up.Record(r.last_document_us - storm_start);
      }
    }
  });
  if (!all_caught_up) ++errors["not caught up in time"];
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const MetricSamples reads_after = Scrape(metrics_url, "roomsync_room_reads_total");
  // 5. A few live changes: the switch from catch-up to live lost nothing.
  if (after > 0) {
    feed->Run(MonotonicMicros(), 100, after, INT64_MAX);
    WaitForAll(
        pool, second,
        [&](int, const StreamRecord& r) {
          return r.end != StreamRecord::End::kOpen || r.last_index >= head + after;
        },
        timeout_s);
  }
  const int64_t final_head = feed->next_index() - 1;
  OnWorkers(pool, [&](int w) {
    for (size_t i = w; i < second.size(); i += pool.size()) {
      if (!second[i]) {
        ++errors["connect: not attempted"];
        continue;
      }
      CheckExact(second[i]->record(), before, final_head, errors);
      second[i]->Close();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  pool.Join();
  MergeErrors(errors, feed->stats().errors);
  // The histogram's max is exact: the last client's time to the head.
  const double storm_s = catch_up.max_us() / 1e6;
  const double connects_per_s =
      last_open_us > storm_start ? reopened / ((last_open_us - storm_start) / 1e6) : 0;
  auto delta = [&](const std::string& key) {
    const size_t slash = key.find('/');
    const std::string labels =
        "op=\"" + key.substr(0, slash) + "\",source=\"" + key.substr(slash + 1) + "\"";
    return reads_after.get(labels) - reads_before.get(labels);
  };
  const bool metrics_ok = reads_before.ok && reads_after.ok;

  json.BeginObject()
      .Int("clients", clients)
      .Int("changes_before", before)
      .Int("changes_away", away)
      .Int("changes_after", after)
      .Int("opened_first", first_opened)
      .Double("first_connect_s", first_connect_s)
      .Int("reconnected", reopened)
      .Int("caught_up", caught_up_count.load())
      .Double("reconnect_open_s", open_s)
      .Double("reconnects_per_s", connects_per_s)
      .Double("all_caught_up_s", all_caught_up ? storm_s : -1.0)
      .Latency("catch_up_latency", catch_up)
      .Bool("metrics", metrics_ok);
  if (metrics_ok) {
    json.Double("catch_up_reads_cache", delta("pull/cache") + delta("subscribe/cache"))
        .Double("catch_up_reads_store", delta("pull/store") + delta("subscribe/store"));
    json.BeginObject("reads_during_storm");
    for (const std::string key : {"pull/cache", "pull/store", "subscribe/cache", "subscribe/store"}) {
      json.Double(key, delta(key));
    }
    json.EndObject();
  }
  WriteErrors(json, errors);
  json.EndObject();

  std::fprintf(stderr,
               "reconnect-storm: %d clients, %d changes, then %d while away, %d live after\n"
               "  reconnected %lld (%.0f connects/s), caught up %lld, all at the head after "
               "%.2f s; catch-up %s\n",
               clients, before, away, after, static_cast<long long>(reopened), connects_per_s,
               static_cast<long long>(caught_up_count.load()), storm_s,
               LatencySummary(catch_up).c_str());
  if (metrics_ok) {
    std::fprintf(stderr,
                 "  reads during the storm: pull cache %.0f, pull store %.0f, subscribe cache "
                 "%.0f, subscribe store %.0f\n",
                 delta("pull/cache"), delta("pull/store"), delta("subscribe/cache"),
                 delta("subscribe/store"));
  } else {
    std::fprintf(stderr, "  no --metrics_url: cache vs store reads not measured\n");
  }
  std::fprintf(stderr, "  %s\n", ErrorSummary(errors).c_str());
}

// --- connect-during-fanout ---------------------------------------------------

struct ChurnStats {
  int64_t attempted = 0;
  int64_t opened = 0;     // 200 heads inside the churn window
  int64_t completed = 0;  // got their first event and closed
  Histogram open_latency;          // connect start to 200 head
  Histogram first_event_latency;   // 200 head to first event
  ErrorKinds errors;
};

// Keeps `in_flight` short-lived streams going on one worker: each opens,
// waits for its first event, closes, and is replaced, until until_us.
class Churner : public std::enable_shared_from_this<Churner> {
 public:
  Churner(asio::io_context& io, const Env& env, std::string request, ChurnStats* stats,
          std::atomic<int64_t>* launched, int64_t start_us, int64_t until_us, double rate)
      : io_(io),
        env_(env),
        request_(std::move(request)),
        stats_(stats),
        launched_(launched),
        start_us_(start_us),
        until_us_(until_us),
        rate_(rate) {}

  void Start(int in_flight) {
    for (int k = 0; k < in_flight; ++k) Launch();
  }

 private:
  void Launch() {
    if (MonotonicMicros() >= until_us_) return;
    const int64_t k = launched_->fetch_add(1);
    // With a target rate, the k-th connect waits for its slot.
    const int64_t at = rate_ > 0 ? start_us_ + static_cast<int64_t>(k * 1e6 / rate_) : 0;
    if (at > MonotonicMicros()) {
      auto timer = std::make_shared<asio::steady_timer>(io_);
      timer->expires_after(std::chrono::microseconds(at - MonotonicMicros()));
      timer->async_wait([self = shared_from_this(), timer, k](boost::system::error_code) {
        self->Open(k);
      });
      return;
    }
    Open(k);
  }

  void Open(int64_t k) {
    if (MonotonicMicros() >= until_us_) return;
    StreamOptions o;
    o.request = request_;
    o.source = env_.SourceFor(k);
    auto stream = std::make_shared<TrackedStream>(io_, env_.endpoint, std::move(o));
    const int64_t started = MonotonicMicros();
    ++stats_->attempted;
    stream->set_on_document([self = shared_from_this()](TrackedStream& s, bool) {
      const StreamRecord& r = s.record();
      self->stats_->first_event_latency.Record(MonotonicMicros() - r.opened_us);
      ++self->stats_->completed;
      s.Close();
      asio::post(self->io_, [self] { self->Launch(); });
    });
    stream->Start([self = shared_from_this(), stream, started](bool ok) {
      if (!ok) {
        const StreamRecord& r = stream->record();
        ++self->stats_->errors[r.error.empty() ? "churn: connect" : "churn: " + r.error];
        asio::post(self->io_, [self] { self->Launch(); });
        return;
      }
      if (MonotonicMicros() < self->until_us_) ++self->stats_->opened;
      self->stats_->open_latency.Record(MonotonicMicros() - started);
    });
  }

  asio::io_context& io_;
  const Env& env_;
  std::string request_;
  ChurnStats* stats_;
  std::atomic<int64_t>* launched_;
  int64_t start_us_;
  int64_t until_us_;
  double rate_;
};

void RunConnectDuringFanout(const Env& env, JsonWriter& json) {
  const int subscribers = static_cast<int>(FirstNumber(absl::GetFlag(FLAGS_subscribers), 5000));
  const double rate = FirstNumber(absl::GetFlag(FLAGS_rate), 20);
  const int churn_concurrency = std::max(1, absl::GetFlag(FLAGS_churn_concurrency));
  const double churn_rate = absl::GetFlag(FLAGS_churn_rate);
  const std::string room = env.room_prefix;
  const std::string request = StreamRequest(env.url.host, env.StreamTarget(room));

  WorkerPool pool(env.threads);
  std::vector<LatencySink> sinks(pool.size());
  Streams streams(subscribers);
  const double connect_s =
      OpenStreams(pool, env, streams, 0, subscribers, env.connect_concurrency, [&](int i) {
        StreamOptions o;
        o.request = request;
        o.sink = &sinks[i % pool.size()];
        return o;
      });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Warm-up, then a baseline window without churn, then the churn window.
  const int64_t first_us = MonotonicMicros() + 50000;
  const int64_t base_from = first_us + static_cast<int64_t>(env.warmup_s * 1e6);
  const int64_t churn_from = base_from + static_cast<int64_t>(env.duration_s * 1e6);
  const int64_t churn_until = churn_from + static_cast<int64_t>(env.duration_s * 1e6);
  OnWorkers(pool, [&](int w) {
    sinks[w].from_us = base_from;
    sinks[w].until_us = churn_from;
    sinks[w].second_from_us = churn_from;
    sinks[w].second_until_us = churn_until;
  });
  auto feed = std::make_shared<Feed>(pool.context(0), env, room);
  std::vector<ChurnStats> churn(pool.size());
  std::atomic<int64_t> launched{0};
  std::thread churn_starter([&] {
    SleepUntil(churn_from);
    for (int w = 0; w < pool.size(); ++w) {
      const int share = churn_concurrency / pool.size() + (w < churn_concurrency % pool.size());
      asio::post(pool.context(w), [&, w, share] {
        std::make_shared<Churner>(pool.context(w), env, request, &churn[w], &launched, churn_from,
                                  churn_until, churn_rate)
            ->Start(share);
      });
    }
  });
  feed->Run(first_us, rate, 0, churn_until);
  churn_starter.join();
  const int64_t head = feed->next_index() - 1;
  WaitForAll(
      pool, streams,
      [&](int, const StreamRecord& r) {
        return r.end != StreamRecord::End::kOpen || r.last_index >= head;
      },
      5);
  Histogram base, during;
  ChurnStats total;
  ErrorKinds errors;
  int64_t opened = 0;
  OnWorkers(pool, [&](int w) {
    base.Merge(sinks[w].latency);
    during.Merge(sinks[w].second_latency);
    total.attempted += churn[w].attempted;
    total.opened += churn[w].opened;
    total.completed += churn[w].completed;
    total.open_latency.Merge(churn[w].open_latency);
    total.first_event_latency.Merge(churn[w].first_event_latency);
    MergeErrors(errors, churn[w].errors);
    for (size_t i = w; i < streams.size(); i += pool.size()) {
      if (!streams[i]) {
        ++errors["connect: not attempted"];
        continue;
      }
      if (streams[i]->record().opened) ++opened;
      CheckExact(streams[i]->record(), 0, head, errors);
      streams[i]->Close();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  pool.Join();
  MergeErrors(errors, feed->stats().errors);
  const double churn_per_s = total.opened / env.duration_s;
  const double p99_change = PercentChange(base.Percentile(0.99), during.Percentile(0.99));

  json.BeginObject()
      .Int("subscribers", subscribers)
      .Int("opened", opened)
      .Double("connect_s", connect_s)
      .Double("publish_rate", rate)
      .Double("duration_s", env.duration_s)
      .Int("published", feed->stats().acked)
      .Int("churn_concurrency", churn_concurrency)
      .Double("churn_target_rate", churn_rate)
      .Int("churn_attempted", total.attempted)
      .Int("churn_opened", total.opened)
      .Int("churn_completed", total.completed)
      .Double("churn_connects_per_s", churn_per_s)
      .Latency("churn_open_latency", total.open_latency)
      .Latency("churn_first_event_latency", total.first_event_latency)
      .Int("deliveries", base.count() + during.count())
      .Latency("baseline_delivery_latency", base)
      .Latency("churn_delivery_latency", during)
      .Double("p99_change_pct", p99_change);
  WriteErrors(json, errors);
  json.EndObject();

  std::fprintf(stderr,
               "connect-during-fanout: %lld/%d subscribers, %.0f pushes/s, %.0f s per window\n"
               "  baseline delivery %s\n  churn    delivery %s (p99 %+.1f%%)\n"
               "  churn: %.0f new SSE connections/s (%lld opened, %lld got their first event; "
               "open %s)\n  %s\n",
               static_cast<long long>(opened), subscribers, rate, env.duration_s,
               LatencySummary(base).c_str(), LatencySummary(during).c_str(), p99_change,
               churn_per_s, static_cast<long long>(total.opened),
               static_cast<long long>(total.completed), LatencySummary(total.open_latency).c_str(),
               ErrorSummary(errors).c_str());
}

}  // namespace

bool IsStreamScenario(const std::string& command) {
  return command == "slow-consumers" || command == "reconnect-storm" ||
         command == "connect-during-fanout";
}

void RunStreamScenario(const std::string& command, JsonWriter& json) {
  const Env env = EnvFromFlags(command);
  if (command == "slow-consumers") return RunSlowConsumers(env, json);
  if (command == "reconnect-storm") return RunReconnectStorm(env, json);
  if (command == "connect-during-fanout") return RunConnectDuringFanout(env, json);
  throw std::runtime_error("not a stream scenario: " + command);
}

}  // namespace roomsync::bench
