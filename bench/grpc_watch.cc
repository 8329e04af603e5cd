// grpc-watch: one Watch call carrying N rooms straight to roomsync-room, no
// gateway: what the room node spends to (re-)subscribe every room of a
// gateway, at room counts a real gateway cannot reach here (one SSE socket
// per room; docs/benchmarks.md, "Watch ... at 100,000 rooms").
//
// Seeds one document into each of N rooms (their checkpoints come from the
// push answers), then subscribes all N from those checkpoints on one call,
// as a gateway does after a room node came back: every request written at
// once, the time until the node has answered Live for every room. With a
// restart command, it then ends the call, runs the command (kill -9 and
// restart of the node; it prints the new pid) and subscribes all N again
// on the restarted node, whose rooms are no longer in memory.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bench/reference_scenarios.h"
#include "bench/sse_connection.h"
#include "bench/workload.h"
#include "protocol/error_codes.h"
#include "roomsync/v1/roomsync.grpc.pb.h"

namespace roomsync::bench {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string RoomName(const WatchNodeOptions& options, int i) {
  return absl::StrCat(options.room_prefix, "-", i);
}

// One document into every room; returns each room's checkpoint after it.
std::vector<v1::Checkpoint> Seed(v1::RoomSync::Stub& stub, const WatchNodeOptions& options,
                                 ErrorKinds& errors) {
  std::vector<v1::Checkpoint> checkpoints(options.rooms);
  std::atomic<int> next{0};
  std::vector<ErrorKinds> per_thread(options.seed_clients);
  std::vector<std::thread> threads;
  for (int t = 0; t < options.seed_clients; ++t) {
    threads.emplace_back([&, t] {
      for (int i = next++; i < options.rooms; i = next++) {
        v1::PushRequest request;
        request.set_room(RoomName(options, i));
        request.set_collection("messages");
        request.add_items()->set_new_document_state(ChatDocument("seed", MonotonicMicros()));
        v1::PushResponse response;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        const grpc::Status status = stub.Push(&context, request, &response);
        if (!status.ok()) {
          ++per_thread[t]["seed grpc " + std::to_string(status.error_code())];
          continue;
        }
        checkpoints[i] = response.checkpoint();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const ErrorKinds& e : per_thread) MergeErrors(errors, e);
  return checkpoints;
}

struct SubscribeRound {
  double seconds = 0;          // first write until the last room's Live
  double writes_seconds = 0;   // first write until the last request was written
  int64_t live = 0;
  int64_t changes = 0;
  int64_t ended = 0;           // resync, moved or refused
  bool complete = false;
  // The call failed before the node answered anything (its connection was
  // the killed node's): the caller tries again, as a gateway would.
  bool failed_before_any_event = false;
  bool batched_requests = false;  // the node read batches, and got them
  int64_t batches = 0;            // batched events messages read
};

// Subscribes every room from its checkpoint on one new Watch call and
// waits for every Live (or the timeout); then cancels the call.
SubscribeRound SubscribeAll(v1::RoomSync::Stub& stub, const WatchNodeOptions& options,
                            const std::vector<v1::Checkpoint>& checkpoints) {
  SubscribeRound round;
  grpc::ClientContext context;
  // After the restart the channel may not have seen the old connection
  // die yet: wait for the new one instead of failing fast.
  context.set_wait_for_ready(true);
  if (options.batch) {
    context.AddMetadata(std::string(kWatchFeaturesMetadataKey), std::string(kWatchBatchFeature));
  }
  auto stream = stub.Watch(&context);
  bool node_reads_batches = false;
  stream->WaitForInitialMetadata();
  if (options.batch) {
    const auto& metadata = context.GetServerInitialMetadata();
    const grpc::string_ref key(kWatchFeaturesMetadataKey.data(), kWatchFeaturesMetadataKey.size());
    for (auto [it, end] = metadata.equal_range(key); it != end; ++it) {
      node_reads_batches |= AnnouncesFeature(
          std::string_view(it->second.data(), it->second.size()), kWatchBatchFeature);
    }
  }
  std::atomic<int64_t> live{0}, changes{0}, ended{0};
  std::atomic<bool> done{false};
  // Timed from the call's start on the node (its initial metadata, which
  // it sends at once), so that connecting to a restarted node is not
  // counted, only what the node does for the subscriptions.
  Clock::time_point start = Clock::now();
  std::thread reader([&] {
    auto count = [&](const v1::WatchEvent& event) {
      switch (event.event_case()) {
        case v1::WatchEvent::kLive: ++live; break;
        case v1::WatchEvent::kChanges: ++changes; break;
        case v1::WatchEvent::kResync:
        case v1::WatchEvent::kMoved:
        case v1::WatchEvent::kRefused: ++ended; break;
        default: break;
      }
    };
    v1::WatchEvent event;
    while (stream->Read(&event)) {
      if (event.has_batch()) {
        ++round.batches;
        for (const v1::WatchEvent& e : event.batch().events()) count(e);
      } else {
        count(event);
      }
      if (live + ended >= options.rooms) break;
    }
    round.seconds = SecondsSince(start);
    done = true;
  });
  // As the gateway does: one request per message, or up to 1,024 in a
  // batch when the node reads batches.
  const int per_write = node_reads_batches ? 1024 : 1;
  v1::WatchRequest request;
  for (int i = 0; i < options.rooms && !done; i += per_write) {
    request.Clear();
    for (int k = i; k < std::min(options.rooms, i + per_write); ++k) {
      v1::WatchSubscribe* subscribe = per_write == 1 ? request.mutable_subscribe()
                                                     : request.mutable_batch()->add_requests()->mutable_subscribe();
      subscribe->set_room(RoomName(options, k));
      *subscribe->mutable_checkpoint() = checkpoints[k];
    }
    if (!stream->Write(request)) break;
  }
  round.batched_requests = node_reads_batches;
  round.writes_seconds = SecondsSince(start);
  const Clock::time_point deadline =
      start + std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1e3));
  while (!done && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  context.TryCancel();
  reader.join();
  const grpc::Status status = stream->Finish();  // CANCELLED once every room is live
  round.failed_before_any_event = live + changes + ended == 0 && !status.ok();
  round.live = live;
  round.changes = changes;
  round.ended = ended;
  round.complete = live == options.rooms;
  return round;
}

// Runs `command`; returns the last number it printed (the new pid), or 0.
int RunRestart(const std::string& command) {
  FILE* out = popen(command.c_str(), "r");
  if (out == nullptr) throw std::runtime_error("cannot run --restart_cmd");
  char line[256];
  int pid = 0;
  while (fgets(line, sizeof line, out) != nullptr) {
    int parsed = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &parsed)) pid = parsed;
  }
  if (pclose(out) != 0) throw std::runtime_error("--restart_cmd failed");
  return pid;
}

void WriteRound(JsonWriter& json, std::string_view key, const SubscribeRound& round,
                int rooms, int64_t rss_before_kib, int64_t rss_after_kib) {
  json.BeginObject(key)
      .Double("seconds", round.seconds)
      .Double("writes_seconds", round.writes_seconds)
      .Double("rooms_per_s", round.seconds > 0 ? rooms / round.seconds : 0)
      .Int("live", round.live)
      .Int("changes", round.changes)
      .Int("ended", round.ended)
      .Bool("complete", round.complete)
      .Bool("batched_requests", round.batched_requests)
      .Int("event_batches", round.batches)
      .Int("node_rss_before_kib", rss_before_kib)
      .Int("node_rss_after_kib", rss_after_kib)
      .EndObject();
}

std::string Summary(const char* what, const SubscribeRound& round, int rooms) {
  const int64_t per_second = round.seconds > 0 ? static_cast<int64_t>(rooms / round.seconds) : 0;
  return absl::StrCat(what, ": ", round.live, "/", rooms, " live in ", round.seconds, " s (",
                      per_second, " rooms/s), ",
                      absl::StrCat(round.ended, " ended, ", round.changes, " change events"));
}

}  // namespace

std::string RunGrpcWatch(const WatchNodeOptions& options, JsonWriter& json) {
  // Reconnect to the restarted node within 0.1-1 s, not gRPC's default
  // backoff of up to minutes.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel =
      grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::RoomSync::NewStub(channel);
  ErrorKinds errors;
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
    throw std::runtime_error("the node does not answer");
  }
  const int64_t rss_empty = ResidentKiB(options.server_pids);
  const Clock::time_point seed_start = Clock::now();
  const std::vector<v1::Checkpoint> checkpoints = Seed(*stub, options, errors);
  const double seed_seconds = SecondsSince(seed_start);
  const int64_t rss_seeded = ResidentKiB(options.server_pids);
  const SubscribeRound warm = SubscribeAll(*stub, options, checkpoints);
  const int64_t rss_warm = ResidentKiB(options.server_pids);
  std::string summary = absl::StrCat("grpc-watch ", options.rooms, " rooms: seeded in ",
                                     seed_seconds, " s; ", Summary("rooms in memory", warm, options.rooms));
  json.Int("rooms", options.rooms)
      .Double("seed_seconds", seed_seconds)
      .Int("node_rss_empty_kib", rss_empty);
  WriteRound(json, "rooms_in_memory", warm, options.rooms, rss_seeded, rss_warm);
  if (!options.restart_cmd.empty()) {
    const int pid = RunRestart(options.restart_cmd);
    const std::vector<int> pids = pid > 0 ? std::vector<int>{pid} : std::vector<int>{};
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(30))) {
      throw std::runtime_error("the restarted node does not answer");
    }
    const int64_t rss_restarted = ResidentKiB(pids);
    SubscribeRound cold = SubscribeAll(*stub, options, checkpoints);
    for (int retry = 0; retry < 100 && cold.failed_before_any_event; ++retry) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      cold = SubscribeAll(*stub, options, checkpoints);
    }
    WriteRound(json, "after_restart", cold, options.rooms, rss_restarted, ResidentKiB(pids));
    absl::StrAppend(&summary, "; ", Summary("after a restart", cold, options.rooms));
  }
  json.BeginObject("errors");
  for (const auto& [kind, count] : errors) json.Int(kind, count);
  json.EndObject();
  return summary;
}

}  // namespace roomsync::bench
