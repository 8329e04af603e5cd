#include "bench/pull_scenario.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <simdjson.h>

#include "bench/http_connection.h"
#include "bench/rxdb_protocol.h"
#include "bench/workload.h"

namespace roomsync::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Pushes documents [next, total) in rounds of docs_per_push from several
// connections; finishes when all are acknowledged or one push fails.
struct Seeder {
  const PullOptions* options;
  std::string rxdb_endpoint;  // path of the rxdb-server endpoint; empty = roomsync
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> acknowledged{0};
  std::atomic<int> running{0};
  std::string error;  // first failure, written on the io thread
  std::promise<void> done;

  void Pump(std::shared_ptr<HttpConnection> connection) {
    const int64_t first = next.fetch_add(options->seed_docs_per_push);
    if (first >= options->documents || !error.empty()) {
      if (running.fetch_sub(1) == 1) done.set_value();
      return;
    }
    const int64_t last = std::min(first + options->seed_docs_per_push, options->documents);
    std::string body = "[";
    for (int64_t i = first; i < last; ++i) {
      if (i > first) body += ',';
      if (rxdb_endpoint.empty()) {
        body += ChatDocument("seed-" + std::to_string(i), 0);
      } else {
        rxdb::AppendPushRow(body, ChatDocument("seed-" + std::to_string(i), 0));
      }
    }
    body += ']';
    std::string target = rxdb_endpoint.empty() ? "/v1/rooms/" + options->room +
                                                     "/replicate/push?collection=" +
                                                     options->collection
                                               : rxdb_endpoint + "/push";
    connection->Request(http::verb::post, std::move(target), std::move(body),
                        [this, connection, n = last - first](const std::string& e, int status,
                                                             std::string answer) {
                          if (e.empty() && status == 200) acknowledged += n;
                          if (!e.empty()) error = e;
                          if (e.empty() && status != 200) error = "seed http " + std::to_string(status);
                          // rxdb-server: 200 with the conflicting documents.
                          if (e.empty() && status == 200 && !rxdb_endpoint.empty() &&
                              !rxdb::PushAccepted(answer)) {
                            error = "seed conflict";
                          }
                          Pump(connection);
                        });
  }
};

// One catch-up pass: pull until an empty batch.
struct Puller {
  const PullOptions* options;
  std::string rxdb_endpoint;  // path of the rxdb-server endpoint; empty = roomsync
  rxdb::Checkpoint rxdb_checkpoint;  // starts empty: the beginning
  std::shared_ptr<HttpConnection> connection;
  Histogram* latency;
  std::string checkpoint;  // JSON text, empty = the beginning
  int64_t pulled = 0;
  int64_t requests = 0;
  std::string error;
  simdjson::dom::parser parser;
  std::promise<void> done;

  // One page request: the roomsync protocol's or rxdb-server's /pull (what
  // its client's pull handler sends: lwt, id, limit), following the
  // returned checkpoint until an empty page.
  void Next() {
    if (!rxdb_endpoint.empty()) {
      return Fetch(rxdb::PullTarget(rxdb_endpoint, rxdb_checkpoint, options->batch_size),
                   [this](const std::string& body, size_t* count) {
                     return rxdb::ParsePull(parser, body, count, &rxdb_checkpoint);
                   });
    }
    std::string target = "/v1/rooms/" + options->room + "/replicate/pull?collection=" +
                         options->collection + "&batchSize=" + std::to_string(options->batch_size);
    if (!checkpoint.empty()) target += "&checkpoint=" + UrlEncode(checkpoint);
    Fetch(std::move(target), [this](const std::string& body, size_t* count) {
      simdjson::dom::element root;
      simdjson::dom::array documents;
      simdjson::dom::element next;
      if (parser.parse(body).get(root) || root["documents"].get_array().get(documents) ||
          root["checkpoint"].get(next)) {
        return false;
      }
      *count = documents.size();
      checkpoint = simdjson::minify(next);
      return true;
    });
  }

  // GETs `target`; `consume` reads the page's document count and keeps its
  // checkpoint (false: not a pull answer).
  void Fetch(std::string target,
             std::function<bool(const std::string& body, size_t* count)> consume) {
    const Clock::time_point sent = Clock::now();
    connection->Request(
        http::verb::get, std::move(target), {},
        [this, sent, consume = std::move(consume)](const std::string& e, int status,
                                                   std::string body) {
          latency->Record(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count());
          ++requests;
          if (!e.empty() || status != 200) {
            error = e.empty() ? "pull http " + std::to_string(status) : e;
            return done.set_value();
          }
          size_t count = 0;
          if (!consume(body, &count)) {
            error = "pull: unexpected body";
            return done.set_value();
          }
          pulled += count;
          if (count == 0) return done.set_value();
          Next();
        });
  }
};

}  // namespace

PullResult RunPull(const PullOptions& options) {
  PullResult result;
  result.options = options;
  Url url;
  if (!ParseUrl(options.base_url, &url)) throw std::runtime_error("bad --url");
  const auto endpoint = Resolve(url);
  const std::string host = url.host + ":" + url.port;
  std::string rxdb_endpoint;
  if (options.target == "rxdb") {
    rxdb_endpoint = url.target;
    while (rxdb_endpoint.size() > 1 && rxdb_endpoint.back() == '/') rxdb_endpoint.pop_back();
  } else if (options.target != "roomsync") {
    throw std::runtime_error("pull: unknown --target " + options.target);
  }
  WorkerPool pool(1);
  asio::io_context& io = pool.context(0);

  if (options.documents > 0) {
    Seeder seeder;
    seeder.options = &options;
    seeder.rxdb_endpoint = rxdb_endpoint;
    seeder.running = options.seed_clients;
    const Clock::time_point t0 = Clock::now();
    for (int i = 0; i < options.seed_clients; ++i) {
      asio::post(io, [&seeder, &io, endpoint, host] {
        seeder.Pump(std::make_shared<HttpConnection>(io, endpoint, host));
      });
    }
    seeder.done.get_future().wait();
    result.seed_s = SecondsSince(t0);
    result.seeded = seeder.acknowledged.load();
    if (!seeder.error.empty()) {
      result.error = seeder.error;
      pool.Join();
      return result;
    }
  }

  for (int pass = 0; pass < options.passes; ++pass) {
    Puller puller;
    puller.options = &options;
    puller.rxdb_endpoint = rxdb_endpoint;
    puller.connection = std::make_shared<HttpConnection>(io, endpoint, host);
    puller.latency = &result.request_latency;
    const Clock::time_point t0 = Clock::now();
    asio::post(io, [&puller] { puller.Next(); });
    puller.done.get_future().wait();
    const double seconds = SecondsSince(t0);
    if (!puller.error.empty()) {
      result.error = puller.error;
      break;
    }
    if (result.best_pass_s == 0 || seconds < result.best_pass_s) result.best_pass_s = seconds;
    result.pulled = puller.pulled;
    result.requests = puller.requests;
  }
  pool.Join();
  return result;
}

void PullResult::Write(JsonWriter& json) const {
  json.String("url", options.base_url)
      .String("target", options.target)
      .String("room", options.room)
      .Int("batch_size", options.batch_size)
      .Int("seeded_documents", seeded)
      .Double("seed_s", seed_s)
      .Double("seed_documents_per_s", seed_s > 0 ? seeded / seed_s : 0.0)
      .Int("seed_docs_per_push", options.seed_docs_per_push)
      .Int("pulled_documents", pulled)
      .Int("requests", requests)
      .Int("passes", options.passes)
      .Double("best_pass_s", best_pass_s)
      .Double("documents_per_s", best_pass_s > 0 ? pulled / best_pass_s : 0.0)
      .Latency("request_latency", request_latency)
      .String("error", error);
}

std::string PullResult::Summary() const {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "pull%s: seeded %lld docs at %.0f docs/s; caught up %lld docs in %.2f s = %.0f "
                "docs/s (batch %d, %lld requests)%s%s; request ",
                options.target == "roomsync" ? "" : (" " + options.target).c_str(),
                static_cast<long long>(seeded), seed_s > 0 ? seeded / seed_s : 0.0,
                static_cast<long long>(pulled), best_pass_s,
                best_pass_s > 0 ? pulled / best_pass_s : 0.0, options.batch_size,
                static_cast<long long>(requests), error.empty() ? "" : "; ERROR ",
                error.c_str());
  return buf + LatencySummary(request_latency);
}

}  // namespace roomsync::bench
