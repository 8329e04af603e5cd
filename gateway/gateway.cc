#include "gateway/gateway.h"

#include <fstream>
#include <iterator>
#include <thread>

#include <grpcpp/channel.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "auth/jwt_verifier.h"
#include "base/log.h"
#include "gateway/gateway_context.h"
#include "gateway/listener.h"
#include "ops/listen_address.h"
#include "ops/ops_http_server.h"
#include "gateway/room_fanout.h"
#include "gateway/sse_keepalive.h"
#include "gateway/sse_session.h"
#include "gateway/static_files.h"
#include "gateway/tls_context.h"
#include "gateway/upstream_streams.h"
#include "protocol/error_codes.h"
#include "roomsync/v1/roomsync.grpc.pb.h"

namespace roomsync {
namespace net = boost::asio;

namespace {

std::vector<std::string> Addresses(const std::vector<RoomNodeChannel>& nodes) {
  std::vector<std::string> addresses;
  addresses.reserve(nodes.size());
  for (const RoomNodeChannel& node : nodes) addresses.push_back(node.address);
  return addresses;
}

}  // namespace

GatewayContext::GatewayContext(const GatewayConfig& config_in,
                               std::vector<RoomNodeChannel> room_nodes_in,
                               RoomNodeOpener discover, net::io_context& io_in)
    : config(config_in),
      cors(config_in.allowed_origins),
      shard_map(Addresses(room_nodes_in)),
      room_nodes(std::move(room_nodes_in), std::move(discover)),
      owners([this](std::string_view address) { return room_nodes.FindOrAdd(address); }),
      io(io_in),
      rate_limiter(config_in.rate_limits, metrics),
      fanouts(std::make_unique<RoomFanouts>(*this)),
      watch_calls(std::make_unique<WatchCalls>(*this)),
      keepalive(std::make_unique<SseKeepAlive>(io_in, config_in.keepalive_interval)) {}

GatewayContext::~GatewayContext() = default;

bool GatewayContext::LearnOwner(std::string_view room, const grpc::ClientContext& refused) {
  const auto& trailers = refused.GetServerTrailingMetadata();
  auto it = trailers.find(std::string(kOwnerMetadataKey));
  if (it == trailers.end()) return false;
  return LearnOwner(room, std::string_view(it->second.data(), it->second.size()));
}

bool GatewayContext::LearnOwner(std::string_view room, std::string_view owner) {
  if (owner.empty()) return false;
  const RoomNode& before = NodeFor(room);
  owners.Learn(ShardOf(room), owner);
  return &NodeFor(room) != &before;
}

void GatewayContext::ForwardToken(grpc::ClientContext& client_context, const std::string& token) {
  if (!token.empty()) client_context.AddMetadata("authorization", "Bearer " + token);
}

absl::StatusOr<std::string> GatewayContext::ReadUpstreamToken() const {
  if (config.upstream_token_file.empty()) return std::string();
  std::ifstream in(config.upstream_token_file, std::ios::binary);
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return absl::UnavailableError(
        absl::StrCat("cannot read --upstream_token_file ", config.upstream_token_file));
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--upstream_token_file ", config.upstream_token_file, " is empty"));
  }
  return token;
}

std::chrono::system_clock::time_point GatewayContext::UnaryDeadline() const {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             absl::ToChronoNanoseconds(config.grpc_deadline));
}

class Gateway::Impl {
 public:
  Impl(const GatewayConfig& config, std::vector<RoomNodeChannel> room_nodes,
       RoomNodeOpener discover)
      : io_(config.threads), work_(net::make_work_guard(io_)) {
    context_ = std::make_unique<GatewayContext>(config, std::move(room_nodes),
                                                std::move(discover), io_);
  }

  GatewayContext& context() { return *context_; }

  ~Impl() {
    Drain(absl::Seconds(1));
    // The timer must go before the io_context it was made on.
    context_->keepalive.reset();
  }

  absl::Status Start() {
    if (absl::Status auth = LoadCredentials(); !auth.ok()) return auth;
    if (!context_->config.web_root.empty()) {
      absl::StatusOr<std::unique_ptr<StaticFiles>> files =
          StaticFiles::Open(context_->config.web_root);
      if (!files.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("--web: ", files.status().message()));
      }
      context_->static_files = *std::move(files);
      Log(LogLevel::kInfo, "web_root", {{"directory", context_->static_files->root()}});
    }
    absl::StatusOr<net::ip::tcp::endpoint> endpoint =
        ParseListenAddress(context_->config.http_address);
    if (!endpoint.ok()) return endpoint.status();
    listener_ = std::make_shared<Listener>(*context_, io_);
    absl::Status opened = listener_->Open(*endpoint);
    if (!opened.ok()) return opened;
    if (absl::Status metrics = StartMetricsServer(); !metrics.ok()) return metrics;
    listener_->Run();
    context_->keepalive->Start();
    for (int i = 0; i < context_->config.threads; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    // One node that cannot lead to others (the single node's in-process
    // channel) has no lease table worth reading.
    if (context_->room_nodes.size() > 1 || context_->room_nodes.discovers()) {
      owners_refresher_ = std::thread([this] { RefreshShardOwners(); });
    }
    return absl::OkStatus();
  }

  int http_port() const { return listener_->port(); }
  int metrics_port() const { return metrics_server_ == nullptr ? 0 : metrics_server_->port(); }

  absl::Status StartMetricsServer() {
    if (context_->config.metrics_address.empty()) return absl::OkStatus();
    OpsRoutes routes;
    // GatewayMetrics is thread-safe: the ops thread serialises beside the
    // I/O threads that count.
    routes["/metrics"] = [this] {
      OpsResponse response;
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      response.body = context_->metrics.Serialize();
      return response;
    };
    routes["/healthz"] = [] {
      OpsResponse response;
      response.content_type = "application/json";
      response.body = R"({"status":"ok"})";
      return response;
    };
    absl::StatusOr<std::unique_ptr<OpsHttpServer>> server =
        OpsHttpServer::Start(context_->config.metrics_address, std::move(routes));
    if (!server.ok()) {
      return absl::Status(server.status().code(),
                          absl::StrCat("--metrics: ", server.status().message()));
    }
    metrics_server_ = *std::move(server);
    return absl::OkStatus();
  }

  absl::Status LoadCredentials() {
    const GatewayConfig& config = context_->config;
    if (!config.jwt.has_value()) {
      Log(LogLevel::kWarning, "auth_disabled",
          {{"detail", "auth is off: anyone who can reach the HTTP port can read and write "
                      "every room (development only)"}});
    } else {
      absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier = JwtVerifier::Create(*config.jwt);
      if (!verifier.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("auth: ", verifier.status().message(),
                         " (--auth jwt needs --jwt_hs256_secret_file and/or --jwks_file)"));
      }
      context_->verifier = *std::move(verifier);
    }
    if (config.tls.enabled()) {
      absl::StatusOr<std::unique_ptr<TlsContextSource>> tls = TlsContextSource::Create(config.tls);
      if (!tls.ok()) return tls.status();
      context_->tls = *std::move(tls);
    }
    // Fail at start, not at the first stream, when the file is unusable.
    absl::StatusOr<std::string> upstream_token = context_->ReadUpstreamToken();
    return upstream_token.status();
  }

  void Drain(absl::Duration grace) {
    if (drained_.exchange(true)) return;
    stop_refreshing_.Notify();
    if (owners_refresher_.joinable()) owners_refresher_.join();
    context_->draining.store(true);
    if (listener_ != nullptr) listener_->Stop();
    context_->fanouts->CancelAll();
    context_->watch_calls->CancelAll();
    for (auto& session : context_->keepalive->Sessions()) session->Close();
    absl::Time deadline = absl::Now() + grace;
    // Closing a session runs on its strand: wait until every one has, so
    // that clients see the end of their stream before the threads stop.
    while ((context_->requests_in_flight.load() > 0 || !context_->keepalive->Sessions().empty()) &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    context_->keepalive->Stop();
    // Queued file reads reply into io_: let them finish while it runs.
    if (context_->static_files != nullptr) context_->static_files->Stop();
    // gRPC callbacks post into io_: wait for them (each has a deadline; the
    // cancelled subscriptions end promptly).
    absl::Time calls_deadline = absl::Now() + context_->config.grpc_deadline + absl::Seconds(1);
    while (context_->grpc_calls_in_flight.load() > 0 && absl::Now() < calls_deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    if (context_->grpc_calls_in_flight.load() > 0) {
      Log(LogLevel::kWarning, "gateway_drain_calls_outstanding",
          {{"calls", context_->grpc_calls_in_flight.load()}});
    }
    work_.reset();
    io_.stop();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

 private:
  // With several room nodes: reads the lease table from one of them each
  // second (the next one each time), for NodeFor. A node that does not
  // answer (dead, stopped, cut off) is followed at once by the next one, up
  // to one round of the nodes: a takeover is seen within a second of the
  // lease moving, not a second per unreachable node later. Nodes without
  // leases answer no owners, and the static map routes.
  void RefreshShardOwners() {
    size_t next = 0;
    int failed_in_a_row = 0;
    while (true) {
      const GatewayContext::RoomNode& node =
          context_->room_nodes.at(static_cast<int>(next++ % context_->room_nodes.size()));
      grpc::ClientContext call;
      call.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      if (absl::StatusOr<std::string> token = context_->ReadUpstreamToken();
          token.ok() && !token->empty()) {
        GatewayContext::ForwardToken(call, *token);
      }
      v1::ShardOwnersResponse answer;
      grpc::Status status =
          v1::RoomCluster::NewStub(node.channel)->ShardOwners(&call, v1::ShardOwnersRequest(), &answer);
      if (status.ok()) {
        context_->owners.Apply(answer);
        failed_in_a_row = 0;
      } else if (++failed_in_a_row < context_->room_nodes.size()) {
        if (stop_refreshing_.HasBeenNotified()) return;
        continue;
      } else {
        failed_in_a_row = 0;
      }
      if (stop_refreshing_.WaitForNotificationWithTimeout(absl::Seconds(1))) return;
    }
  }

  // Declared first so that it is destroyed last: handlers destroyed with
  // io_ (sessions) still use it.
  std::unique_ptr<GatewayContext> context_;
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> threads_;
  std::atomic<bool> drained_{false};
  absl::Notification stop_refreshing_;
  std::thread owners_refresher_;
  std::unique_ptr<OpsHttpServer> metrics_server_;  // null without metrics_address
};

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(const GatewayConfig& config,
                                                         std::shared_ptr<grpc::Channel> room_service,
                                                         DirectRoomCalls* direct) {
  std::vector<RoomNodeChannel> room_nodes;
  room_nodes.push_back({"room-service", std::move(room_service)});
  return Start(config, std::move(room_nodes), nullptr, direct);
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(const GatewayConfig& config,
                                                         std::vector<RoomNodeChannel> room_nodes,
                                                         RoomNodeOpener discover) {
  return Start(config, std::move(room_nodes), std::move(discover), nullptr);
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(const GatewayConfig& config,
                                                         std::vector<RoomNodeChannel> room_nodes,
                                                         RoomNodeOpener discover,
                                                         DirectRoomCalls* direct) {
  if (room_nodes.empty()) return absl::InvalidArgumentError("no room service channel");
  for (const RoomNodeChannel& node : room_nodes) {
    if (node.channel == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("no channel to room node ", node.address));
    }
  }
  if (config.threads < 1) return absl::InvalidArgumentError("threads must be at least 1");
  if (config.keepalive_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("keepalive_interval must be positive");
  }
  const size_t node_count = room_nodes.size();
  if (room_nodes.size() > static_cast<size_t>(RoomNodeSet::kMaxNodes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", RoomNodeSet::kMaxNodes, " room nodes"));
  }
  auto impl = std::make_unique<Impl>(config, std::move(room_nodes), std::move(discover));
  impl->context().direct_room_calls = direct;
  absl::Status started = impl->Start();
  if (!started.ok()) return started;
  Log(LogLevel::kInfo, "gateway_started",
      {{"http_port", impl->http_port()},
       {"metrics_port", impl->metrics_port()},
       {"room_nodes", static_cast<int>(node_count)}});
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Gateway::~Gateway() = default;

int Gateway::http_port() const { return impl_->http_port(); }

int Gateway::metrics_port() const { return impl_->metrics_port(); }

void Gateway::Drain(absl::Duration grace) { impl_->Drain(grace); }

}  // namespace roomsync
