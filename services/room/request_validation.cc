#include "services/room/request_validation.h"

#include "absl/strings/str_cat.h"
#include "base/string_view.h"
#include "protocol/error_codes.h"
#include "protocol/names.h"
#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr size_t kMaxEpochBytes = 64;

// Names the item, keeping the protocol code (e.g. payload_too_large).
absl::Status ItemError(int index, std::string_view field, const absl::Status& status) {
  return WithErrorCode(
      absl::InvalidArgumentError(
          absl::StrCat("items[", index, "].", ToAbsl(field), ": ", status.message())),
      ErrorCodeOf(status));
}

// Too large for this server: INVALID_ARGUMENT over gRPC, 413 over HTTP.
absl::Status TooLarge(std::string message) {
  return WithErrorCode(absl::InvalidArgumentError(message), "payload_too_large");
}

ConflictPolicy PolicyFor(const std::string& collection, const RoomServiceConfig& config) {
  auto it = config.collection_policies.find(collection);
  return it == config.collection_policies.end() ? config.default_policy : it->second;
}

}  // namespace

absl::Status ValidateReadTarget(const std::string& room, const std::string& collection,
                                const RoomServiceConfig& config) {
  if (absl::Status s = ValidateRoomName(room); !s.ok()) return s;
  if (collection.empty()) return absl::OkStatus();
  if (absl::Status s = ValidateCollectionName(collection); !s.ok()) return s;
  if (!config.allowed_collections.empty() && !config.allowed_collections.contains(collection)) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection \"", collection, "\" is not allowed on this server"));
  }
  return absl::OkStatus();
}

absl::StatusOr<PushPlan> PlanPush(const v1::PushRequest& request,
                                  const RoomServiceConfig& config, absl::Time now) {
  if (request.collection().empty()) {
    return absl::InvalidArgumentError("collection is required for a push");
  }
  if (absl::Status s = ValidateReadTarget(request.room(), request.collection(), config); !s.ok()) {
    return s;
  }
  const DocumentLimits& limits = config.limits;
  if (static_cast<size_t>(request.items_size()) > limits.max_documents_per_push) {
    return TooLarge(absl::StrCat("a push may hold at most ", limits.max_documents_per_push,
                                 " documents, got ", request.items_size()));
  }
  PushPlan plan;
  plan.collection = request.collection();
  plan.policy = PolicyFor(plan.collection, config);
  plan.items.reserve(request.items_size());
  const int64_t latest_allowed_ms =
      config.max_future_skew == absl::ZeroDuration()
          ? INT64_MAX
          : absl::ToUnixMillis(now + config.max_future_skew);
  for (int i = 0; i < request.items_size(); ++i) {
    const v1::PushItem& item = request.items(i);
    plan.bytes += item.new_document_state().size() + item.assumed_master_state().size();
    if (plan.bytes > limits.max_push_bytes) {
      return TooLarge(absl::StrCat("a push may hold at most ", limits.max_push_bytes, " bytes"));
    }
    absl::StatusOr<DocumentEnvelope> envelope =
        ParseDocumentEnvelope(item.new_document_state(), limits);
    if (!envelope.ok()) return ItemError(i, "newDocumentState", envelope.status());
    if (envelope->timestamp_ms > latest_allowed_ms) {
      return WithErrorCode(
          absl::InvalidArgumentError(absl::StrCat(
              "items[", i, "]: timestamp is more than ",
              absl::FormatDuration(config.max_future_skew),
              " ahead of the server clock; check the device clock")),
          "timestamp_in_future");
    }
    IncomingDocument incoming;
    incoming.envelope = std::move(*envelope);
    if (item.has_assumed_master_state()) {
      absl::StatusOr<std::optional<AssumedMaster>> master =
          ParseAssumedMaster(item.assumed_master_state(), limits);
      if (!master.ok()) return ItemError(i, "assumedMasterState", master.status());
      incoming.assumed_master = *master;
    }
    incoming.json = item.new_document_state();
    plan.items.push_back(std::move(incoming));
  }
  return plan;
}

absl::StatusOr<std::optional<ClientCheckpoint>> ReadCheckpoint(bool present,
                                                               const v1::Checkpoint& checkpoint,
                                                               std::string_view field) {
  if (!present) return std::optional<ClientCheckpoint>();
  if (checkpoint.seq() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), ".seq must not be negative"));
  }
  if (checkpoint.epoch().size() > kMaxEpochBytes) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), ".epoch is too long"));
  }
  if (checkpoint.seq() > 0 && checkpoint.epoch().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), " has a seq but no epoch"));
  }
  if (checkpoint.seq() == 0 && checkpoint.epoch().empty()) {
    return std::optional<ClientCheckpoint>();  // {} is the beginning
  }
  if (checkpoint.compacted() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(field), ".compacted must not be negative"));
  }
  return std::optional<ClientCheckpoint>(
      ClientCheckpoint{checkpoint.seq(), checkpoint.epoch(), checkpoint.compacted(), std::nullopt});
}

absl::StatusOr<RoomSnapshot> ValidateSnapshot(const v1::PutSnapshotRequest& request,
                                              const RoomServiceConfig& config) {
  if (absl::Status s = ValidateRoomName(request.room()); !s.ok()) return s;
  if (request.snapshot().size() > config.limits.max_snapshot_bytes) {
    return TooLarge(absl::StrCat("a snapshot may hold at most ", config.limits.max_snapshot_bytes,
                                 " bytes, got ", request.snapshot().size()));
  }
  if (request.snapshot().empty()) return absl::InvalidArgumentError("the snapshot is empty");
  absl::StatusOr<std::optional<ClientCheckpoint>> checkpoint =
      ReadCheckpoint(request.has_checkpoint(), request.checkpoint(), "checkpoint");
  if (!checkpoint.ok()) return checkpoint.status();
  if (!checkpoint->has_value() || (*checkpoint)->seq < 1) {
    return absl::InvalidArgumentError(
        "a snapshot needs the checkpoint (seq >= 1 and epoch) of the state it holds");
  }
  return RoomSnapshot{(*checkpoint)->epoch, (*checkpoint)->seq, 0, request.snapshot()};
}

absl::StatusOr<int> ReadPageSize(int requested, std::string_view field) {
  if (requested == 0) return kDefaultPageSize;
  if (requested < 1 || requested > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(field), " must be between 1 and ", kMaxPageSize, ", got ", requested));
  }
  return requested;
}

}  // namespace roomsync
