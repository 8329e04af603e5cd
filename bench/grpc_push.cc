// Single-document pushes straight to roomsync-room's gRPC API: the room
// service's own cost, before a gateway exists or to subtract it from the
// HTTP numbers. Synchronous stubs on one thread per client keep this
// simple; the threads mostly wait on the server.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "bench/reference_scenarios.h"
#include "bench/sse_connection.h"
#include "roomsync/v1/roomsync.grpc.pb.h"

namespace roomsync::bench {

PushResult RunGrpcPush(const PushOptions& options) {
  using Clock = std::chrono::steady_clock;
  auto channel = grpc::CreateChannel(options.base_url, grpc::InsecureChannelCredentials());
  auto stub = v1::RoomSync::NewStub(channel);
  const Clock::time_point measure_from =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options.warmup_s * 1e3));
  const Clock::time_point until =
      measure_from + std::chrono::milliseconds(static_cast<int64_t>(options.duration_s * 1e3));

  struct ThreadResult {
    PushResult r;
  };
  std::vector<ThreadResult> per_thread(options.clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < options.clients; ++c) {
    threads.emplace_back([&, c] {
      PushResult& r = per_thread[c].r;
      for (int64_t n = 0;; ++n) {
        const Clock::time_point sent = Clock::now();
        if (sent >= until) break;
        v1::PushRequest request;
        request.set_room(options.room_prefix + "-" +
                         std::to_string((c + n * options.clients) % options.rooms));
        request.set_collection(options.collection);
        for (int d = 0; d < options.docs_per_push; ++d) {
          request.add_items()->set_new_document_state(ChatDocument(
              "g" + std::to_string(c) + "-" + std::to_string(n) + "-" + std::to_string(d),
              MonotonicMicros()));
        }
        v1::PushResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        const grpc::Status status = stub->Push(&context, request, &response);
        if (sent < measure_from) continue;
        if (!status.ok()) {
          ++r.errors["grpc " + std::to_string(status.error_code())];
          continue;
        }
        ++r.pushes;
        r.documents += options.docs_per_push;
        if (response.conflicts_size() > 0) ++r.conflicts;
        r.latency.Record(std::chrono::duration_cast<std::chrono::microseconds>(
                             Clock::now() - sent)
                             .count());
      }
    });
  }
  std::this_thread::sleep_until(measure_from);
  const int64_t cpu_before = CpuMicros(options.server_pids);
  std::this_thread::sleep_until(until);
  const int64_t cpu_after = CpuMicros(options.server_pids);
  for (auto& t : threads) t.join();

  PushResult result;
  result.options = options;
  result.server_cpu_us = cpu_after - cpu_before;
  for (const ThreadResult& t : per_thread) {
    result.pushes += t.r.pushes;
    result.documents += t.r.documents;
    result.conflicts += t.r.conflicts;
    result.latency.Merge(t.r.latency);
    MergeErrors(result.errors, t.r.errors);
  }
  return result;
}

}  // namespace roomsync::bench
