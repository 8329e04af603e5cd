#include "tests/room/room_client.h"

#include <chrono>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace roomsync::testing {

std::string DocJson(const std::string& id, int64_t timestamp, const std::string& body,
                    bool deleted) {
  return absl::StrCat("{\"id\":\"", id, "\",\"timestamp\":", timestamp,
                      deleted ? ",\"_deleted\":true" : "", ",\"ciphertext\":\"", body, "\"}");
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::unique_ptr<RoomClient> RoomClient::Connect(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  // A distinct channel per client: tests of concurrency want real
  // connections, not one shared HTTP/2 stream budget.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                           grpc::InsecureChannelCredentials(), args);
  // Connected before the first call: when 32 clients connect at once to a
  // busy server, a first attempt can fail (gRPC 1.51 then reports a stale
  // errno), and calls made during the channel's reconnect backoff would
  // fail fast without reaching the server. Connect() means connected; a
  // server that is not there still fails the calls after the wait.
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return std::make_unique<RoomClient>(std::move(channel));
}

PushResult RoomClient::PushRequest(const v1::PushRequest& request) {
  PushResult result;
  grpc::ClientContext context;
  result.status = stub_->Push(&context, request, &result.response);
  auto it = context.GetServerTrailingMetadata().find("roomsync-error-code");
  if (it != context.GetServerTrailingMetadata().end()) {
    result.error_code = std::string(it->second.data(), it->second.size());
  }
  return result;
}

PushResult RoomClient::Push(const std::string& room, const std::string& collection,
                            const std::vector<std::string>& documents) {
  v1::PushRequest request;
  request.set_room(room);
  request.set_collection(collection);
  for (const std::string& doc : documents) request.add_items()->set_new_document_state(doc);
  return PushRequest(request);
}

PushResult RoomClient::PushRow(const std::string& room, const std::string& collection,
                               const std::string& document, const std::string& assumed_master) {
  v1::PushRequest request;
  request.set_room(room);
  request.set_collection(collection);
  v1::PushItem* item = request.add_items();
  item->set_new_document_state(document);
  item->set_assumed_master_state(assumed_master);
  return PushRequest(request);
}

grpc::Status RoomClient::Pull(const v1::PullRequest& request, v1::PullResponse* response) {
  grpc::ClientContext context;
  return stub_->Pull(&context, request, response);
}

grpc::Status RoomClient::History(const v1::HistoryRequest& request,
                                 v1::HistoryResponse* response) {
  grpc::ClientContext context;
  return stub_->History(&context, request, response);
}

std::vector<v1::Document> RoomClient::PullAll(const std::string& room,
                                              const std::string& collection, int batch,
                                              v1::Checkpoint* last) {
  std::vector<v1::Document> all;
  v1::PullRequest request;
  request.set_room(room);
  request.set_collection(collection);
  request.set_batch_size(batch);
  for (;;) {
    v1::PullResponse response;
    grpc::Status status = Pull(request, &response);
    if (!status.ok()) throw std::runtime_error("pull failed: " + status.error_message());
    for (const v1::Document& doc : response.documents()) all.push_back(doc);
    *request.mutable_checkpoint() = response.checkpoint();
    if (response.documents().empty()) break;
  }
  if (last != nullptr) *last = request.checkpoint();
  return all;
}

std::unique_ptr<RoomServer> StartTestServer(const std::string& store_url,
                                            RoomServiceConfig service) {
  RoomServerConfig config;
  config.store_url = store_url;
  config.grpc_address = "127.0.0.1:0";
  config.metrics_address = "";
  config.service = std::move(service);
  absl::StatusOr<std::unique_ptr<RoomServer>> server = RoomServer::Start(config);
  if (!server.ok()) throw std::runtime_error("cannot start room server: " + server.status().ToString());
  return std::move(*server);
}

}  // namespace roomsync::testing
