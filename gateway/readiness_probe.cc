#include "gateway/readiness_probe.h"

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <memory>
#include <string>
#include <vector>

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
  struct Call {
    explicit Call(std::shared_ptr<grpc::Channel> channel) : stub(std::move(channel)) {}
    grpc::GenericStub stub;
    grpc::ClientContext client_context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
  };
  auto call = std::make_shared<Call>(context.channel);
  grpc::Slice empty;
  call->request = grpc::ByteBuffer(&empty, 1);
  // A probe must answer quickly, whatever the unary deadline is.
  call->client_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  context.grpc_calls_in_flight.fetch_add(1);
  call->stub.UnaryCall(
      &call->client_context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
      &call->request, &call->response,
      [&context, call, reply = std::move(reply)](grpc::Status status) {
        if (status.ok() && Flatten(call->response) == std::string_view(kServingResponse, 2)) {
          ApiResponse ok;
          ok.body = R"({"status":"ready"})";
          reply(std::move(ok));
        } else {
          reply(ErrorResponse(503, "unavailable", "the room service is not serving"));
        }
        context.grpc_calls_in_flight.fetch_sub(1);
      });
}

}  // namespace roomsync
