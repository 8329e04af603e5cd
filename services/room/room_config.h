// Configuration of the room service's behaviour (not of its process):
// limits, conflict policies, batching and caching. Plain data; main()
// fills it from flags.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_CONFIG_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "protocol/document_envelope.h"

namespace roomsync {

enum class ConflictPolicy {
  kLastWriteWins,  // "lww": newer timestamp wins; equal -> greater bytes
  kServerWins,     // "server-wins": accept only if assumedMasterState matches
};

// How often the room server checks that its store answers, for /readyz and
// gRPC health (services/room/store_health.h), and how long an answer may
// take before the store counts as unreachable.
struct StoreHealthOptions {
  absl::Duration period = absl::Seconds(1);
  absl::Duration deadline = absl::Seconds(2);
};

struct RoomServiceConfig {
  DocumentLimits limits;
  // Timestamps further ahead of the server clock are refused
  // ("timestamp_in_future"); zero disables the check.
  absl::Duration max_future_skew = absl::Minutes(5);
  ConflictPolicy default_policy = ConflictPolicy::kLastWriteWins;
  // Per-collection policies that differ from the default.
  std::map<std::string, ConflictPolicy> collection_policies;
  // Per-room quota on stored bytes (the sum of the sizes of the room's
  // stored documents); a push that would exceed it is refused whole with
  // RESOURCE_EXHAUSTED "room_quota_exceeded". 0 = no quota.
  int64_t max_room_bytes = 0;
  // Encrypted snapshots (docs/api.md, "Snapshots") kept per room, newest
  // by seq; each at most limits.max_snapshot_bytes. They are not counted
  // in max_room_bytes: they repeat documents the quota already counts, so
  // a room is bounded by max_room_bytes plus snapshots_kept snapshots.
  int snapshots_kept = 3;
  // When non-empty, only these collections are accepted.
  std::map<std::string, bool> allowed_collections;

  // Group commit: one commit takes every queued push of a room, up to these
  // bounds, so a large push cannot hold small ones back for long.
  size_t max_commit_documents = 4000;
  size_t max_commit_bytes = 16 * 1024 * 1024;
  // Pushes waiting for a room's commit beyond this are refused with
  // UNAVAILABLE (back-pressure instead of unbounded memory).
  size_t max_queued_pushes_per_room = 10000;

  // Recent committed changes kept per room for catch-ups and hot pulls.
  size_t recent_changes_per_room = 1024;
  size_t recent_changes_bytes_per_room = 1024 * 1024;
  // Rooms with no activity and no subscriber for this long are evicted
  // from memory (their data stays in the store).
  absl::Duration room_idle_eviction = absl::Minutes(5);
  // A Subscribe catch-up larger than this many documents answers Resync
  // instead (the client pulls).
  size_t max_subscribe_catch_up = 10000;
  // Events queued for one slow subscriber before it gets Resync.
  size_t max_subscriber_queue = 1024;

  // Threads that run blocking store calls (commits and reads).
  int store_threads = 32;

  // A room's first push after it is loaded creates the room with its
  // commit when the room turns out to be new (Store::CreateRoomAndCommit:
  // one round trip); off, the room is opened first (two), for comparison.
  bool create_rooms_on_commit = true;

  // Benchmarks only (--unsafe_skip_room_digest): commits leave the room
  // digest alone, to measure what maintaining it costs in the same run.
  // The rooms' digests are wrong from then on, for good.
  bool skip_room_digest = false;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_CONFIG_H_
