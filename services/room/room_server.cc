#include "services/room/room_server.h"

#include <algorithm>
#include <thread>

#include <boost/asio/thread_pool.hpp>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "base/file.h"
#include "absl/synchronization/notification.h"
#include "base/log.h"
#include "ops/ops_http_server.h"
#include "services/room/room_admin_service.h"
#include "services/room/room_auth.h"
#include "services/room/room_metrics.h"
#include "services/room/room_registry.h"
#include "services/room/room_cluster_service.h"
#include "services/room/room_sync_service.h"
#include "services/room/shard_lease_keeper.h"
#include "services/room/store_health.h"
#include "cluster/shard_map.h"
#include "storage/room_epoch.h"
#include <unistd.h>
#include "storage/store.h"

namespace roomsync {
namespace {

struct GrpcServerPems {
  std::string cert, key, ca;
};

absl::StatusOr<GrpcServerPems> ReadServerPems(const GrpcServerTls& tls) {
  GrpcServerPems pems;
  absl::StatusOr<std::string> cert = ReadNonEmptyFile(tls.cert_file, "--grpc_tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadNonEmptyFile(tls.key_file, "--grpc_tls_key");
  if (!key.ok()) return key.status();
  pems.cert = *std::move(cert);
  pems.key = *std::move(key);
  if (!tls.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadNonEmptyFile(tls.ca_file, "--grpc_tls_ca");
    if (!ca.ok()) return ca.status();
    pems.ca = *std::move(ca);
  }
  return pems;
}

class RoomServerImpl final : public RoomServer {
 public:
  explicit RoomServerImpl(const RoomServerConfig& config)
      : config_(config),
        registry_(std::make_shared<prometheus::Registry>()),
        metrics_(*registry_),
        executor_(config.service.store_threads) {}

  ~RoomServerImpl() override {
    Drain(absl::Seconds(5));
    executor_.join();
  }

  absl::Status Init() {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(config_.store_url, StoreOptions{config_.service.store_threads});
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    if (config_.leasing.enabled) {
      absl::StatusOr<ShardLeaseConfig> leasing = LeaseConfig();
      if (!leasing.ok()) return leasing.status();
      leases_ = std::make_unique<ShardLeaseKeeper>(
          *store_, *std::move(leasing),
          [this](int shard) {
            // Rooms are made before the keeper's first round can lose a shard.
            rooms_->DropShard(shard);
          },
          &metrics_);
    }
    rooms_ = std::make_unique<RoomRegistry>(
        RoomContext{store_.get(), &config_.service, &metrics_, &executor_, leases_.get()});
    absl::StatusOr<std::unique_ptr<RoomCallAuthorizer>> authorizer =
        RoomCallAuthorizer::Create(config_.jwt);
    if (!authorizer.ok()) return authorizer.status();
    authorizer_ = *std::move(authorizer);
    service_ = std::make_unique<RoomSyncService>(config_.service, *rooms_, metrics_, *authorizer_,
                                                 leases_.get());
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ListenerCredentials();
    if (!credentials.ok()) return credentials.status();

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    if (!config_.grpc_address.empty()) {
      builder.AddListeningPort(config_.grpc_address, *credentials, &grpc_port_);
    }
    builder.RegisterService(service_.get());
    cluster_service_ = std::make_unique<RoomClusterService>(*store_, *authorizer_);
    builder.RegisterService(cluster_service_.get());
    // The operators' API, on this gRPC listener only (the gateway's HTTP
    // port never routes to it), authorised by its own rule.
    admin_service_ = std::make_unique<RoomAdminService>(
        *store_, *rooms_, config_.service, *authorizer_, leases_.get(),
        [this]() { return DrainShardsForAdmin(); });
    builder.RegisterService(admin_service_.get());
    // Gateways ping every 10 s, idle or not, to find a vanished node
    // (gateway/room_service_channel.cc); by default a server answers pings
    // without calls with GOAWAY. This node pings its callers likewise, so
    // that a vanished gateway's Subscribe streams are freed.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    builder.SetMaxReceiveMessageSize(static_cast<int>(
        std::max(config_.service.limits.max_push_bytes, config_.service.limits.max_snapshot_bytes) +
        1024 * 1024));
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || (!config_.grpc_address.empty() && grpc_port_ == 0)) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for gRPC on ", config_.grpc_address));
    }
    // Take shards only once we can serve them (the advertised port is up).
    if (leases_ != nullptr) leases_->Start(AdvertisedAddress());
    SetServing(/*store_reachable=*/true);
    // From here on gRPC health follows the store: NOT_SERVING while it is
    // unreachable, so gateways and probes stop counting on this node.
    store_health_ = std::make_unique<StoreHealth>(
        *store_, config_.health, [this](bool reachable) { SetServing(reachable); });
    store_health_->Start();

    if (!config_.metrics_address.empty()) {
      absl::StatusOr<std::unique_ptr<OpsHttpServer>> ops =
          OpsHttpServer::Start(config_.metrics_address, OpsRoutesOfNode());
      if (!ops.ok()) {
        return absl::Status(ops.status().code(),
                            absl::StrCat("metrics listener: ", ops.status().message()));
      }
      ops_ = *std::move(ops);
      metrics_port_ = ops_->port();
    }
    evictor_ = std::thread([this] { EvictIdleRooms(); });
    return absl::OkStatus();
  }

  int grpc_port() const override { return grpc_port_; }
  int metrics_port() const override { return metrics_port_; }

  std::shared_ptr<grpc::Channel> InProcessChannel() override {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> markers;
    markers.push_back(authorizer_->InProcessMarker());
    return server_->experimental().InProcessChannelWithInterceptors(args, std::move(markers));
  }

  DirectRoomCalls& DirectCalls() override { return *service_; }

  void Drain(absl::Duration grace) override {
    if (server_ == nullptr || drained_.HasBeenNotified()) return;
    drained_.Notify();
    absl::Time deadline = absl::Now() + grace;
    SetDraining();
    service_->StopAccepting();
    bool answered = service_->AwaitPushes(grace);
    // Hand the shards over now rather than let them expire; their
    // subscribers get RESYNC and find the next owner.
    if (leases_ != nullptr) leases_->Stop(/*release=*/true);
    rooms_->CloseAllSubscribers();
    server_->Shutdown(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())));
    if (evictor_.joinable()) evictor_.join();
    if (store_health_ != nullptr) store_health_->Stop();
    Log(LogLevel::kInfo, "room_service_drained", {{"pushes_answered", answered}});
  }

 private:
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenerCredentials() const {
    if (config_.service.skip_room_digest) {
      Log(LogLevel::kWarning, "room_digest_skipped",
          {{"detail", "--unsafe_skip_room_digest: commits do not maintain room digests, which "
                      "are wrong from now on (benchmarks only)"}});
    }
    if (config_.grpc_address.empty()) return grpc::InsecureServerCredentials();  // unused
    if (!config_.jwt.has_value()) {
      Log(LogLevel::kWarning, "auth_disabled",
          {{"detail", "auth is off: anyone who can reach the gRPC port can read and write "
                      "every room (development only)"}});
    }
    if (!config_.tls.enabled()) {
      if (!config_.allow_plaintext) {
        return absl::InvalidArgumentError(
            "the gRPC listener needs TLS (--grpc_tls_cert, --grpc_tls_key and, for mTLS, "
            "--grpc_tls_ca), or --grpc_plaintext for local use");
      }
      Log(LogLevel::kWarning, "grpc_plaintext",
          {{"detail", "the gRPC listener is plaintext: tokens and metadata cross the network "
                      "unencrypted"}});
      return grpc::InsecureServerCredentials();
    }
    absl::StatusOr<GrpcServerPems> pems = ReadServerPems(config_.tls);
    if (!pems.ok()) return pems.status();
    grpc::SslServerCredentialsOptions options(
        pems->ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                         : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = pems->ca;
    options.pem_key_cert_pairs.push_back({pems->key, pems->cert});
    return grpc::SslServerCredentials(options);
  }

  absl::StatusOr<ShardLeaseConfig> LeaseConfig() const {
    ShardLeaseConfig lease;
    lease.node_id = config_.leasing.node_id;
    if (lease.node_id.empty()) {
      char host[256] = {};
      gethostname(host, sizeof(host) - 1);
      absl::StatusOr<std::string> suffix = storage_internal::NewRoomEpoch();  // 16 random bytes, hex
      if (!suffix.ok()) return suffix.status();
      lease.node_id = absl::StrCat(host, "-", getpid(), "-", suffix->substr(0, 8));
    }
    if (config_.grpc_address.empty()) {
      return absl::InvalidArgumentError("shard leases need a gRPC listener (--grpc)");
    }
    lease.shard_count = kShardCount;
    lease.ttl = config_.leasing.ttl;
    lease.round_every = config_.leasing.round_every;
    if (lease.round_every * 2 >= lease.ttl) {
      return absl::InvalidArgumentError("the lease round must be under half the lease ttl");
    }
    return lease;
  }

  std::string AdvertisedAddress() const {
    if (!config_.leasing.advertise_address.empty()) return config_.leasing.advertise_address;
    // The bound port, in case the configured one was 0.
    const std::string& address = config_.grpc_address;
    return absl::StrCat(address.substr(0, address.rfind(':')), ":", grpc_port_);
  }

  void EvictIdleRooms() {
    const absl::Duration idle = config_.service.room_idle_eviction;
    const absl::Duration period = std::min(idle, absl::Seconds(10));
    while (!drained_.WaitForNotificationWithTimeout(period)) {
      rooms_->EvictIdle(absl::Now() - idle);
    }
  }

  // RoomAdmin.DrainNode (roomsyncctl drain): hand every shard over now and
  // take none again.
  absl::Status DrainShardsForAdmin() {
    if (leases_ == nullptr) {
      return absl::FailedPreconditionError("this node does not lease shards (--shard_leases is off)");
    }
    SetDraining();
    leases_->Stop(/*release=*/true);
    return absl::OkStatus();
  }

  // gRPC health: SERVING while the store is reachable and the node is not
  // draining; a drain is final.
  void SetServing(bool store_reachable) {
    absl::MutexLock lock(&serving_mu_);
    store_reachable_ = store_reachable;
    server_->GetHealthCheckService()->SetServingStatus(store_reachable_ && !draining_);
  }
  void SetDraining() {
    absl::MutexLock lock(&serving_mu_);
    draining_ = true;
    server_->GetHealthCheckService()->SetServingStatus(false);
  }

  // The metrics port: /metrics, /healthz (the process answers) and /readyz
  // (it can serve: not draining, the store answered within its deadline
  // with this binary's schema, and, with shard leases, it holds shards).
  // Handlers run on the ops thread and only read state kept by others.
  OpsRoutes OpsRoutesOfNode() {
    OpsRoutes routes;
    routes["/metrics"] = [this] { return MetricsResponse(*registry_); };
    routes["/healthz"] = [] {
      OpsResponse alive;
      alive.content_type = "application/json";
      alive.body = R"({"status":"alive"})";
      return alive;
    };
    routes["/readyz"] = [this] { return Readiness(); };
    return routes;
  }

  OpsResponse Readiness() {
    OpsResponse response;
    response.content_type = "application/json";
    bool draining;
    {
      absl::MutexLock lock(&serving_mu_);
      draining = draining_;
    }
    absl::Status store = store_health_->Verdict();
    const int shards = leases_ == nullptr ? -1 : leases_->held_shards();
    std::string problem;
    if (draining) {
      problem = "draining";
    } else if (!store.ok()) {
      problem = absl::StrCat("store: ", store.message());
    } else if (shards == 0) {
      problem = "no shard leases held yet";
    }
    response.status = problem.empty() ? 200 : 503;
    response.body = problem.empty() ? R"({"status":"ready")" : R"({"status":"not_ready")";
    if (!problem.empty()) {
      response.body += R"(,"problem":")";
      AppendJsonEscaped(response.body, problem);
      response.body += '"';
    }
    if (shards >= 0) absl::StrAppend(&response.body, R"(,"shards_held":)", shards);
    response.body += '}';
    return response;
  }

  const RoomServerConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  RoomMetrics metrics_;
  boost::asio::thread_pool executor_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ShardLeaseKeeper> leases_;  // null: no shard leases
  std::unique_ptr<RoomRegistry> rooms_;
  std::unique_ptr<RoomCallAuthorizer> authorizer_;
  std::unique_ptr<RoomSyncService> service_;
  std::unique_ptr<RoomClusterService> cluster_service_;
  std::unique_ptr<RoomAdminService> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<StoreHealth> store_health_;
  std::unique_ptr<OpsHttpServer> ops_;  // null without metrics_address
  absl::Mutex serving_mu_;
  bool store_reachable_ ABSL_GUARDED_BY(serving_mu_) = true;
  bool draining_ ABSL_GUARDED_BY(serving_mu_) = false;
  std::thread evictor_;
  absl::Notification drained_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RoomServer>> RoomServer::Start(const RoomServerConfig& config) {
  if (config.service.store_threads < 1) {
    return absl::InvalidArgumentError("store_threads must be at least 1");
  }
  auto server = std::make_unique<RoomServerImpl>(config);
  if (absl::Status status = server->Init(); !status.ok()) return status;
  return server;
}

}  // namespace roomsync
