#include "services/room/room_server.h"

#include <thread>

#include <boost/asio/thread_pool.hpp>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/log.h"
#include "services/room/room_metrics.h"
#include "services/room/room_registry.h"
#include "services/room/room_sync_service.h"
#include "storage/store.h"

namespace roomsync {
namespace {

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
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(config_.store_url);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    rooms_ = std::make_unique<RoomRegistry>(
        RoomContext{store_.get(), &config_.service, &metrics_, &executor_});
    service_ = std::make_unique<RoomSyncService>(config_.service, *rooms_, metrics_);

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    if (!config_.grpc_address.empty()) {
      // Plaintext for now; TLS/mTLS credentials come with the security work.
      builder.AddListeningPort(config_.grpc_address, grpc::InsecureServerCredentials(),
                               &grpc_port_);
    }
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(
        static_cast<int>(config_.service.limits.max_push_bytes + 1024 * 1024));
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || (!config_.grpc_address.empty() && grpc_port_ == 0)) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for gRPC on ", config_.grpc_address));
    }
    server_->GetHealthCheckService()->SetServingStatus(true);

    if (!config_.metrics_address.empty()) {
      try {
        exposer_ = std::make_unique<prometheus::Exposer>(config_.metrics_address);
      } catch (const std::exception& e) {
        return absl::UnavailableError(
            absl::StrCat("cannot listen for metrics on ", config_.metrics_address, ": ", e.what()));
      }
      exposer_->RegisterCollectable(registry_);
      std::vector<int> ports = exposer_->GetListeningPorts();
      metrics_port_ = ports.empty() ? 0 : ports.front();
    }
    evictor_ = std::thread([this] { EvictIdleRooms(); });
    return absl::OkStatus();
  }

  int grpc_port() const override { return grpc_port_; }
  int metrics_port() const override { return metrics_port_; }

  std::shared_ptr<grpc::Channel> InProcessChannel() override {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    return server_->InProcessChannel(args);
  }

  void Drain(absl::Duration grace) override {
    if (server_ == nullptr || drained_.HasBeenNotified()) return;
    drained_.Notify();
    absl::Time deadline = absl::Now() + grace;
    server_->GetHealthCheckService()->SetServingStatus(false);
    service_->StopAccepting();
    bool answered = service_->AwaitPushes(grace);
    rooms_->CloseAllSubscribers();
    server_->Shutdown(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(std::max(deadline - absl::Now(), absl::ZeroDuration())));
    if (evictor_.joinable()) evictor_.join();
    Log(LogLevel::kInfo, "room_service_drained", {{"pushes_answered", answered}});
  }

 private:
  void EvictIdleRooms() {
    const absl::Duration idle = config_.service.room_idle_eviction;
    const absl::Duration period = std::min(idle, absl::Seconds(10));
    while (!drained_.WaitForNotificationWithTimeout(period)) {
      rooms_->EvictIdle(absl::Now() - idle);
    }
  }

  const RoomServerConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  RoomMetrics metrics_;
  boost::asio::thread_pool executor_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RoomRegistry> rooms_;
  std::unique_ptr<RoomSyncService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<prometheus::Exposer> exposer_;
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
