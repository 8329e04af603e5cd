#include "gateway/readiness_probe.h"

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gateway/gateway_context.h"

namespace roomsync {
namespace {

// The Check call goes through the generic stub with hand-encoded bytes: the
// health proto's C++ code is not in Debian's gRPC packages, and the message
// is tiny. An empty HealthCheckRequest (service "": the whole server) is
// zero bytes; HealthCheckResponse{status: SERVING(1)} is field 1, varint 1.
constexpr char kServingResponse[] = {0x08, 0x01};

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

}  // namespace

void HandleReadiness(GatewayContext& context, ApiReply reply) {
  if (context.draining.load()) {
    return reply(ErrorResponse(503, "unavailable", "the gateway is draining"));
  }
  // One Check per room node; the last answer replies.
  struct Probe {
    Probe(int nodes, ApiReply reply_in) : pending(nodes), reply(std::move(reply_in)) {}
    std::atomic<int> pending;
    std::atomic<int> serving{0};
    ApiReply reply;
  };
  struct Call {
    explicit Call(std::shared_ptr<grpc::Channel> channel) : stub(std::move(channel)) {}
    grpc::GenericStub stub;
    grpc::ClientContext client_context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
  };
  const int nodes = static_cast<int>(context.room_nodes.size());
  auto probe = std::make_shared<Probe>(nodes, std::move(reply));
  for (int i = 0; i < nodes; ++i) {
    const GatewayContext::RoomNode& node = context.room_nodes.at(i);
    auto call = std::make_shared<Call>(node.channel);
    grpc::Slice empty;
    call->request = grpc::ByteBuffer(&empty, 1);
    // A probe must answer quickly, whatever the unary deadline is.
    call->client_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    context.grpc_calls_in_flight.fetch_add(1);
    call->stub.UnaryCall(
        &call->client_context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
        &call->request, &call->response, [&context, call, probe, nodes](grpc::Status status) {
          if (status.ok() && Flatten(call->response) == std::string_view(kServingResponse, 2)) {
            probe->serving.fetch_add(1);
          }
          if (probe->pending.fetch_sub(1) == 1) {
            const int serving = probe->serving.load();
            if (serving == 0) {
              probe->reply(ErrorResponse(
                  503, "unavailable",
                  nodes == 1 ? "the room service is not serving" : "no room node is serving"));
            } else {
              ApiResponse ok;
              // One node: the body it always had.
              ok.body = nodes == 1 ? std::string(R"({"status":"ready"})")
                                   : absl::StrCat(R"({"status":"ready","room_nodes":)", nodes,
                                                  R"(,"room_nodes_serving":)", serving, "}");
              probe->reply(std::move(ok));
            }
          }
          context.grpc_calls_in_flight.fetch_sub(1);
        });
  }
}

}  // namespace roomsync
