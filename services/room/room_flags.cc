#include "services/room/room_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gateway/auth_flags.h"

ABSL_FLAG(std::string, store, "sqlite:./data/roomsync.db",
          "Store URL: sqlite:PATH (embedded) or postgresql://user@host:port/db");
ABSL_FLAG(std::string, grpc, "",
          "gRPC listen address of the room service (host:port; port 0 = any free port); "
          "empty = 127.0.0.1:7070 for roomsync-room, no gRPC port for the single-node roomsync");
ABSL_FLAG(std::string, metrics, "",
          "Prometheus metrics listen address (host:port); empty = no metrics endpoint");
ABSL_FLAG(int64_t, max_document_bytes, 64 * 1024, "Largest accepted document, in bytes");
ABSL_FLAG(int64_t, max_push_documents, 1000, "Most documents in one push");
ABSL_FLAG(int64_t, max_push_bytes, 8 * 1024 * 1024, "Largest push, in bytes");
ABSL_FLAG(int64_t, max_snapshot_bytes, 4 * 1024 * 1024,
          "Largest encrypted room snapshot (POST /v1/rooms/{room}/snapshots), in bytes");
ABSL_FLAG(int64_t, snapshots_kept, 3, "Encrypted snapshots kept per room (the newest by seq)");
ABSL_FLAG(int64_t, max_json_depth, 64, "Deepest JSON nesting accepted in a document");
ABSL_FLAG(absl::Duration, max_future_skew, absl::Minutes(5),
          "Refuse timestamps further ahead of the server clock (timestamp_in_future); 0 disables");
ABSL_FLAG(std::string, conflict_policy, "lww", "Default conflict policy: lww or server-wins");
ABSL_FLAG(std::string, collection_policies, "",
          "Per-collection policies, e.g. pins=server-wins,threads=lww");
ABSL_FLAG(std::string, allowed_collections, "",
          "Comma-separated allow-list of collections; empty = any valid name");
ABSL_FLAG(int64_t, max_room_bytes, 0,
          "Per-room quota on stored bytes (sum of the room's document sizes); 0 = none");
ABSL_FLAG(int, store_threads, 32,
          "Threads running blocking store calls; also the PostgreSQL connection pool size "
          "(commits of different rooms run concurrently and share fsyncs)");
ABSL_FLAG(int64_t, recent_changes_per_room, 1024,
          "Recent changes kept in memory per room for catch-ups and hot pulls");
ABSL_FLAG(int64_t, max_subscribe_catch_up, 10000,
          "Largest Subscribe catch-up in documents; beyond it the stream answers Resync");
ABSL_FLAG(bool, shard_leases, false,
          "Cluster mode: serve only the rooms of the shards this node holds a lease on, "
          "taking a fair share of them from the PostgreSQL lease table (needs --grpc)");
ABSL_FLAG(std::string, node_id, "",
          "This node's id in the lease table; empty = host name, pid and a random suffix");
ABSL_FLAG(std::string, advertise, "",
          "The gRPC address gateways use to reach this node; empty = the --grpc address");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(10),
          "How long a shard lease lasts unrenewed: a crashed node's rooms move after this");
ABSL_FLAG(std::string, grpc_tls_cert, "", "PEM certificate chain of the gRPC listener (TLS)");
ABSL_FLAG(std::string, grpc_tls_key, "", "PEM private key of the gRPC listener");
ABSL_FLAG(std::string, grpc_tls_ca, "",
          "PEM CA of the clients' certificates: set, every gRPC client needs one (mTLS)");
ABSL_FLAG(bool, grpc_plaintext, false,
          "allow a gRPC listener without TLS (local use only: tokens cross in clear text)");
ABSL_FLAG(bool, create_rooms_on_commit, true,
          "a new room's first push creates the room in the same statement as its commit (one "
          "store round trip); false: open the room, then commit (two), as before");
ABSL_FLAG(bool, unsafe_skip_room_digest, false,
          "benchmarks only: commits do not maintain the room digest (docs/api.md, \"Room "
          "digest\"), to measure its cost; every room's digest is wrong from then on");
ABSL_FLAG(int64_t, max_subscriber_queue, 1024,
          "Events queued for one slow Subscribe stream before it gets Resync");

namespace roomsync {
namespace {

absl::StatusOr<ConflictPolicy> ParsePolicy(std::string_view text) {
  if (text == "lww") return ConflictPolicy::kLastWriteWins;
  if (text == "server-wins") return ConflictPolicy::kServerWins;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown conflict policy \"", std::string(text), "\" (lww or server-wins)"));
}

absl::Status Positive(const char* flag, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " must be positive"));
}

}  // namespace

absl::StatusOr<RoomServerConfig> RoomServerConfigFromFlags() {
  RoomServerConfig config;
  config.store_url = absl::GetFlag(FLAGS_store);
  config.grpc_address = absl::GetFlag(FLAGS_grpc);
  config.metrics_address = absl::GetFlag(FLAGS_metrics);
  RoomServiceConfig& s = config.service;
  struct SizeFlag {
    const char* name;
    int64_t value;
    size_t* target;
  } sizes[] = {
      {"max_document_bytes", absl::GetFlag(FLAGS_max_document_bytes), &s.limits.max_document_bytes},
      {"max_push_documents", absl::GetFlag(FLAGS_max_push_documents), &s.limits.max_documents_per_push},
      {"max_push_bytes", absl::GetFlag(FLAGS_max_push_bytes), &s.limits.max_push_bytes},
      {"max_json_depth", absl::GetFlag(FLAGS_max_json_depth), &s.limits.max_json_depth},
      {"max_snapshot_bytes", absl::GetFlag(FLAGS_max_snapshot_bytes), &s.limits.max_snapshot_bytes},
      {"recent_changes_per_room", absl::GetFlag(FLAGS_recent_changes_per_room), &s.recent_changes_per_room},
      {"max_subscribe_catch_up", absl::GetFlag(FLAGS_max_subscribe_catch_up), &s.max_subscribe_catch_up},
      {"max_subscriber_queue", absl::GetFlag(FLAGS_max_subscriber_queue), &s.max_subscriber_queue},
  };
  for (const SizeFlag& flag : sizes) {
    if (absl::Status st = Positive(flag.name, flag.value); !st.ok()) return st;
    *flag.target = static_cast<size_t>(flag.value);
  }
  s.skip_room_digest = absl::GetFlag(FLAGS_unsafe_skip_room_digest);
  s.create_rooms_on_commit = absl::GetFlag(FLAGS_create_rooms_on_commit);
  s.max_future_skew = absl::GetFlag(FLAGS_max_future_skew);
  if (s.max_future_skew < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--max_future_skew must not be negative");
  }
  absl::StatusOr<ConflictPolicy> policy = ParsePolicy(absl::GetFlag(FLAGS_conflict_policy));
  if (!policy.ok()) return policy.status();
  s.default_policy = *policy;
  for (absl::string_view entry :
       absl::StrSplit(absl::GetFlag(FLAGS_collection_policies), ',', absl::SkipWhitespace())) {
    std::vector<std::string> parts = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    if (parts.size() != 2) {
      return absl::InvalidArgumentError("--collection_policies entries look like name=policy");
    }
    absl::StatusOr<ConflictPolicy> p = ParsePolicy(parts[1]);
    if (!p.ok()) return p.status();
    s.collection_policies[parts[0]] = *p;
  }
  for (absl::string_view name :
       absl::StrSplit(absl::GetFlag(FLAGS_allowed_collections), ',', absl::SkipWhitespace())) {
    s.allowed_collections[std::string(name)] = true;
  }
  absl::StatusOr<std::optional<JwtConfig>> jwt = JwtConfigFromFlags();
  if (!jwt.ok()) return jwt.status();
  config.jwt = *std::move(jwt);
  config.tls.cert_file = absl::GetFlag(FLAGS_grpc_tls_cert);
  config.tls.key_file = absl::GetFlag(FLAGS_grpc_tls_key);
  config.tls.ca_file = absl::GetFlag(FLAGS_grpc_tls_ca);
  if (config.tls.cert_file.empty() != config.tls.key_file.empty() ||
      (!config.tls.ca_file.empty() && config.tls.cert_file.empty())) {
    return absl::InvalidArgumentError(
        "--grpc_tls_cert and --grpc_tls_key go together (and --grpc_tls_ca needs both)");
  }
  config.allow_plaintext = absl::GetFlag(FLAGS_grpc_plaintext);
  s.max_room_bytes = absl::GetFlag(FLAGS_max_room_bytes);
  if (s.max_room_bytes < 0) return absl::InvalidArgumentError("--max_room_bytes must not be negative");
  config.leasing.enabled = absl::GetFlag(FLAGS_shard_leases);
  config.leasing.node_id = absl::GetFlag(FLAGS_node_id);
  config.leasing.advertise_address = absl::GetFlag(FLAGS_advertise);
  config.leasing.ttl = absl::GetFlag(FLAGS_lease_ttl);
  config.leasing.round_every = config.leasing.ttl / 3;
  if (config.leasing.ttl < absl::Milliseconds(300)) {
    return absl::InvalidArgumentError("--lease_ttl must be at least 300ms");
  }
  const int64_t kept = absl::GetFlag(FLAGS_snapshots_kept);
  if (kept < 1 || kept > 100) {
    return absl::InvalidArgumentError("--snapshots_kept must be 1-100");
  }
  s.snapshots_kept = static_cast<int>(kept);
  s.store_threads = absl::GetFlag(FLAGS_store_threads);
  if (s.store_threads < 1) return absl::InvalidArgumentError("--store_threads must be at least 1");
  return config;
}

}  // namespace roomsync
