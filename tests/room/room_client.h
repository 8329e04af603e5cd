// Test-side client of a RoomSync server: a stub over a real loopback
// channel, plus builders for the JSON documents the tests push.
#ifndef ROOMSYNC_TESTS_ROOM_ROOM_CLIENT_H_
#define ROOMSYNC_TESTS_ROOM_ROOM_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "roomsync/v1/roomsync.grpc.pb.h"
#include "services/room/room_server.h"

namespace roomsync::testing {

// {"id":id,"timestamp":ts,"_deleted":deleted,"ciphertext":body}
std::string DocJson(const std::string& id, int64_t timestamp, const std::string& body,
                    bool deleted = false);

// Milliseconds since the Unix epoch now: pushes must not be in the future.
int64_t NowMs();

struct PushResult {
  grpc::Status status;
  v1::PushResponse response;
  std::string error_code;  // trailing "roomsync-error-code"
};

class RoomClient {
 public:
  explicit RoomClient(std::shared_ptr<grpc::Channel> channel)
      : stub_(v1::RoomSync::NewStub(channel)) {}
  static std::unique_ptr<RoomClient> Connect(int port);

  PushResult Push(const std::string& room, const std::string& collection,
                  const std::vector<std::string>& documents);
  PushResult PushRequest(const v1::PushRequest& request);
  // RxDB push row with an assumedMasterState ("null" for none).
  PushResult PushRow(const std::string& room, const std::string& collection,
                     const std::string& document, const std::string& assumed_master);

  grpc::Status Pull(const v1::PullRequest& request, v1::PullResponse* response);
  // All documents after `from` (none = beginning), paging by `batch`.
  std::vector<v1::Document> PullAll(const std::string& room, const std::string& collection,
                                    int batch, v1::Checkpoint* last = nullptr);
  grpc::Status History(const v1::HistoryRequest& request, v1::HistoryResponse* response);

  v1::RoomSync::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<v1::RoomSync::Stub> stub_;
};

// A RoomServer on a free loopback port over `store_url`.
std::unique_ptr<RoomServer> StartTestServer(const std::string& store_url,
                                            RoomServiceConfig service = {});

}  // namespace roomsync::testing

#endif  // ROOMSYNC_TESTS_ROOM_ROOM_CLIENT_H_
