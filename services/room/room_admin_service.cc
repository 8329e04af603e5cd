#include "services/room/room_admin_service.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "base/log.h"
#include "cluster/shard_map.h"
#include "services/room/request_validation.h"
#include "services/room/room_auth.h"
#include "services/room/room_registry.h"
#include "services/room/shard_lease_keeper.h"
#include "storage/document_digest.h"

namespace roomsync {
namespace {

// Export pages: store reads of this many documents, sent in messages of
// at most about kExportMessageBytes (at least one document each), well
// under gRPC's default 4 MiB receive limit unless one document is larger.
constexpr int kExportPageDocuments = 500;
constexpr size_t kExportMessageBytes = 1 << 20;
// How many documents above the head CheckRoom names.
constexpr size_t kNamedProblemDocuments = 10;
// Rooms per CountSubscribers call: ListRooms' largest page.
constexpr int kMaxCountedRooms = 1000;

constexpr char kNoLeases[] = "this node does not lease shards (--shard_leases is off)";

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void FillInfo(const RoomSummary& summary, v1::RoomInfo* info) {
  info->set_room(summary.room);
  info->set_epoch(summary.head.epoch);
  info->set_last_seq(summary.head.last_seq);
  info->set_documents(summary.documents);
  info->set_live_documents(summary.documents - summary.deleted_documents);
  info->set_deleted_documents(summary.deleted_documents);
  info->set_stored_bytes(summary.head.stored_bytes);
  info->set_document_bytes(summary.document_bytes);
  info->set_last_write_ms(summary.last_write_ms);
  info->set_min_seq(summary.min_seq);
  info->set_max_seq(summary.max_seq);
  info->set_compacted_through(summary.head.compacted_through);
  info->set_digest(FormatDigest(summary.head.digest));
  info->set_document_digest(FormatDigest(summary.document_digest));
}

void FillDocument(const StoredDocument& doc, v1::ExportedDocument* out) {
  out->set_collection(doc.collection);
  out->set_id(doc.id);
  out->set_seq(doc.seq);
  out->set_timestamp(doc.timestamp_ms);
  out->set_deleted(doc.deleted);
  out->set_data(doc.json);
}

absl::StatusOr<RoomSummary> Describe(Store& store, const std::string& room) {
  absl::StatusOr<std::optional<RoomSummary>> summary = store.DescribeRoom(room);
  if (!summary.ok()) return summary.status();
  if (!summary->has_value()) return absl::NotFoundError("no such room");
  return **std::move(summary);
}

// Streams an export: the header, then the documents in messages bounded
// by kExportMessageBytes.
class WriterSink final : public ExportSink {
 public:
  WriterSink(const std::string& room, grpc::ServerWriter<v1::ExportRoomResponse>* writer)
      : room_(room), writer_(writer) {}

  absl::Status Head(const RoomHead& head) override {
    v1::ExportRoomResponse message;
    message.mutable_header()->set_room(room_);
    message.mutable_header()->set_epoch(head.epoch);
    message.mutable_header()->set_seq(head.last_seq);
    message.mutable_header()->set_compacted_through(head.compacted_through);
    return Write(message);
  }

  absl::Status Page(std::vector<StoredDocument> documents) override {
    v1::ExportRoomResponse message;
    size_t bytes = 0;
    for (const StoredDocument& doc : documents) {
      if (message.documents_size() > 0 && bytes + doc.json.size() > kExportMessageBytes) {
        if (absl::Status s = Write(message); !s.ok()) return s;
        message.Clear();
        bytes = 0;
      }
      FillDocument(doc, message.add_documents());
      bytes += doc.json.size() + doc.id.size() + doc.collection.size();
    }
    if (message.documents_size() > 0) return Write(message);
    return absl::OkStatus();
  }

  size_t documents_sent() const { return documents_sent_; }

 private:
  absl::Status Write(const v1::ExportRoomResponse& message) {
    // A failed write means the client went away (or the deadline passed):
    // stop reading, which ends the store's snapshot.
    if (!writer_->Write(message)) return absl::CancelledError("the client stopped reading");
    documents_sent_ += static_cast<size_t>(message.documents_size());
    return absl::OkStatus();
  }

  const std::string& room_;
  grpc::ServerWriter<v1::ExportRoomResponse>* writer_;
  size_t documents_sent_ = 0;
};

}  // namespace

std::vector<std::string> RoomProblems(const RoomSummary& s,
                                      const std::vector<StoredDocument>& above_head,
                                      bool last_seq_held) {
  std::vector<std::string> problems;
  const Seq last = s.head.last_seq;
  if (s.documents > 0 && s.min_seq < 1) {
    problems.push_back(absl::StrCat("a document has seq ", s.min_seq, "; seqs start at 1"));
  }
  if (s.max_seq > last) {
    std::string named;
    for (const StoredDocument& d : above_head) {
      absl::StrAppend(&named, named.empty() ? "" : ", ", d.collection, "/", d.id, "@", d.seq);
    }
    problems.push_back(absl::StrCat("seq gap: the room's last_seq is ", last,
                                    " but documents hold seqs up to ", s.max_seq, " (", named,
                                    "); a reader at last_seq never sees them"));
  }
  // A compaction may have removed the tombstone at last_seq (then
  // compacted_through is last_seq), and with it the room's last document.
  const bool last_compacted = s.head.compacted_through >= last;
  if (s.head.compacted_through > last) {
    problems.push_back(absl::StrCat("compacted_through is ", s.head.compacted_through,
                                    ", above the room's last_seq ", last));
  }
  if (s.documents > 0 && last > 0 && !last_seq_held && !last_compacted) {
    // Every commit's last document holds the seq the commit set as
    // last_seq, and only a later commit (or a compaction) can replace it:
    // the document at last_seq must be there.
    problems.push_back(absl::StrCat("seq gap: no document holds the room's last_seq ", last,
                                    " (the highest stored seq is ", s.max_seq, ")"));
  }
  if (s.documents == 0 && last > 0 && !last_compacted) {
    problems.push_back(
        absl::StrCat("the room's last_seq is ", last, " but it holds no documents"));
  }
  if (s.distinct_seqs < s.documents) {
    problems.push_back(absl::StrCat("seq not unique: ", s.documents, " documents share ",
                                    s.distinct_seqs, " distinct seqs"));
  }
  if (s.head.stored_bytes != s.document_bytes) {
    problems.push_back(absl::StrCat("stored_bytes is ", s.head.stored_bytes,
                                    " but the documents hold ", s.document_bytes, " bytes"));
  }
  if (s.head.digest != s.document_digest) {
    problems.push_back(absl::StrCat("digest is ", FormatDigest(s.head.digest),
                                    " but the live documents digest to ",
                                    FormatDigest(s.document_digest)));
  }
  return problems;
}

std::vector<std::string> LeaseProblems(const std::vector<ShardLease>& leases, int shard_count,
                                       int only_shard) {
  std::vector<std::string> problems;
  std::set<int> seen;
  for (const ShardLease& lease : leases) {
    if (only_shard >= 0 && lease.shard != only_shard) continue;
    const std::string who = lease.owner.empty() ? "nobody" : lease.owner;
    if (lease.shard < 0 || lease.shard >= shard_count) {
      problems.push_back(absl::StrCat("shard ", lease.shard, " (held by ", who,
                                      ") is outside 0..", shard_count - 1,
                                      ": no room maps to it (was the shard count changed?)"));
    }
    if (!seen.insert(lease.shard).second) {
      problems.push_back(absl::StrCat("shard ", lease.shard, " has more than one lease"));
    }
    if (lease.epoch < 1) {
      // To the commit fence, lease epoch 0 means "no lease"
      // (CommitFence::lease_epoch): the holder's commits would go unfenced.
      problems.push_back(absl::StrCat("shard ", lease.shard, ": the lease of ", who,
                                      " has epoch ", lease.epoch,
                                      "; lease epochs start at 1 and only grow"));
    }
    if (lease.owner.empty()) {
      problems.push_back(absl::StrCat("shard ", lease.shard, ": the lease names no owner"));
    }
  }
  return problems;
}

absl::StatusOr<std::vector<ShardLease>> RoomAdminService::LeasesForPlacement() const {
  if (leases_ == nullptr) return std::vector<ShardLease>{};
  return store_.ListShardLeases();
}

void RoomAdminService::FillPlacement(const std::vector<ShardLease>& leases, int64_t now_ms,
                                     v1::RoomInfo* info) const {
  // Without leases this node serves every room it is asked for: its count
  // is the room's (a static map sends each room to one node).
  if (leases_ == nullptr) {
    info->set_subscribers(static_cast<int64_t>(rooms_.SubscriberCount(info->room())));
    info->set_subscribers_counted(true);
    return;
  }
  const int shard = ShardOf(info->room());
  for (const ShardLease& lease : leases) {
    if (lease.shard != shard || lease.expires_at_ms <= now_ms) continue;
    info->set_owner_node(lease.owner);
    info->set_owner_address(lease.address);
  }
  // Only the holder has the room open (the others dropped it with the
  // shard); its count is the room's.
  if (leases_->EpochFor(shard).has_value()) {
    info->set_subscribers(static_cast<int64_t>(rooms_.SubscriberCount(info->room())));
    info->set_subscribers_counted(true);
  }
}

grpc::Status RoomAdminService::ListRooms(grpc::ServerContext* context,
                                         const v1::ListRoomsRequest* request,
                                         v1::ListRoomsResponse* response) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  absl::StatusOr<int> size = ReadPageSize(request->page_size(), "page_size");
  if (!size.ok()) return ToGrpc(size.status());
  // The token is the last room name of the previous page: keyset paging.
  absl::StatusOr<std::vector<RoomSummary>> page = store_.ListRooms(request->page_token(), *size);
  if (!page.ok()) return ToGrpc(page.status());
  absl::StatusOr<std::vector<ShardLease>> leases = LeasesForPlacement();
  if (!leases.ok()) return ToGrpc(leases.status());
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (const RoomSummary& summary : *page) {
    v1::RoomInfo* info = response->add_rooms();
    FillInfo(summary, info);
    FillPlacement(*leases, now_ms, info);
  }
  if (static_cast<int>(page->size()) == *size) response->set_next_page_token(page->back().room);
  return grpc::Status::OK;
}

grpc::Status RoomAdminService::ShowRoom(grpc::ServerContext* context,
                                        const v1::ShowRoomRequest* request,
                                        v1::ShowRoomResponse* response) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  if (absl::Status s = ValidateReadTarget(request->room(), "", config_); !s.ok()) return ToGrpc(s);
  absl::StatusOr<RoomSummary> summary = Describe(store_, request->room());
  if (!summary.ok()) return ToGrpc(summary.status());
  absl::StatusOr<std::vector<ShardLease>> leases = LeasesForPlacement();
  if (!leases.ok()) return ToGrpc(leases.status());
  FillInfo(*summary, response->mutable_room());
  FillPlacement(*leases, absl::ToUnixMillis(absl::Now()), response->mutable_room());
  return grpc::Status::OK;
}

grpc::Status RoomAdminService::ExportRoom(grpc::ServerContext* context,
                                          const v1::ExportRoomRequest* request,
                                          grpc::ServerWriter<v1::ExportRoomResponse>* writer) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  if (absl::Status s = ValidateReadTarget(request->room(), "", config_); !s.ok()) return ToGrpc(s);
  WriterSink sink(request->room(), writer);
  absl::Status status = store_.ExportRoom(request->room(), kExportPageDocuments, sink);
  Log(status.ok() ? LogLevel::kInfo : LogLevel::kWarning, "admin_export",
      {{"room", request->room()},
       {"documents", static_cast<int64_t>(sink.documents_sent())},
       {"code", absl::StatusCodeToString(status.code())}});
  return ToGrpc(status);
}

grpc::Status RoomAdminService::ImportRoom(grpc::ServerContext* context,
                                          grpc::ServerReader<v1::ImportRoomRequest>* reader,
                                          v1::ImportRoomResponse* response) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  v1::ImportRoomRequest message;
  if (!reader->Read(&message)) {
    return ToGrpc(absl::InvalidArgumentError("the import stream is empty"));
  }
  const std::string room = message.room();
  if (absl::Status s = ValidateReadTarget(room, "", config_); !s.ok()) return ToGrpc(s);
  if (!message.has_header()) {
    return ToGrpc(absl::InvalidArgumentError("the import's first message needs the header"));
  }
  if (leases_ != nullptr && !leases_->EpochFor(ShardOf(room)).has_value()) {
    return ToGrpc(absl::FailedPreconditionError(
        "this node does not hold the room's shard; import on its owner"));
  }
  const RoomHead head{message.header().epoch(), message.header().seq(), 0,
                      message.header().compacted_through()};
  if (head.compacted_through < 0 || head.compacted_through > head.last_seq) {
    return ToGrpc(absl::InvalidArgumentError(
        "the header's compacted_through must be within 0..seq"));
  }
  std::vector<StoredDocument> documents;
  size_t bytes = 0;
  do {
    if (!message.room().empty() && message.room() != room) {
      return ToGrpc(absl::InvalidArgumentError("the import names its room in its first message only"));
    }
    for (v1::ExportedDocument& doc : *message.mutable_documents()) {
      // The same names the public API accepts (and this node's allowed
      // collections): the room's clients must be able to read them.
      if (absl::Status s = ValidateReadTarget(room, doc.collection(), config_); !s.ok()) {
        return ToGrpc(s);
      }
      bytes += doc.data().size();
      if (bytes > kMaxImportBytes) {
        return ToGrpc(absl::InvalidArgumentError(
            absl::StrCat("the import exceeds ", kMaxImportBytes, " bytes of documents")));
      }
      documents.push_back(StoredDocument{std::move(*doc.mutable_collection()),
                                         std::move(*doc.mutable_id()), doc.timestamp(),
                                         doc.deleted(), doc.seq(), std::move(*doc.mutable_data())});
    }
    message.Clear();
  } while (reader->Read(&message));
  if (context->IsCancelled()) return ToGrpc(absl::CancelledError("the client went away"));

  absl::Status status = store_.ImportRoom(room, head, documents);
  Log(status.ok() ? LogLevel::kInfo : LogLevel::kWarning, "admin_import",
      {{"room", room},
       {"documents", static_cast<int64_t>(documents.size())},
       {"code", absl::StatusCodeToString(status.code())}});
  if (!status.ok()) return ToGrpc(status);
  // The room in memory (if any) still believes it is empty.
  rooms_.Get(room)->StoreChanged();
  absl::StatusOr<RoomSummary> summary = Describe(store_, room);
  if (!summary.ok()) return ToGrpc(summary.status());
  FillInfo(*summary, response->mutable_room());
  return grpc::Status::OK;
}

grpc::Status RoomAdminService::CheckRoom(grpc::ServerContext* context,
                                         const v1::CheckRoomRequest* request,
                                         v1::CheckRoomResponse* response) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  if (absl::Status s = ValidateReadTarget(request->room(), "", config_); !s.ok()) return ToGrpc(s);
  absl::StatusOr<RoomSummary> summary = Describe(store_, request->room());
  if (!summary.ok()) return ToGrpc(summary.status());
  const Seq last = summary->head.last_seq;
  // The documents from last_seq on: the one at last_seq, and those above
  // it, which no reader at the head can see.
  absl::StatusOr<std::vector<StoredDocument>> tail = store_.ReadSince(
      request->room(), std::max<Seq>(last - 1, 0), ReadRange{"", static_cast<int>(kNamedProblemDocuments) + 1});
  if (!tail.ok()) return ToGrpc(tail.status());
  const bool last_seq_held = !tail->empty() && tail->front().seq == last;
  std::vector<StoredDocument> above_head;
  for (StoredDocument& doc : *tail) {
    if (doc.seq > last && above_head.size() < kNamedProblemDocuments) {
      above_head.push_back(std::move(doc));
    }
  }
  FillInfo(*summary, response->mutable_room());
  for (std::string& problem : RoomProblems(*summary, above_head, last_seq_held)) {
    response->add_problems(std::move(problem));
  }
  // The lease of the room's shard, if the table has one (whatever this
  // node's --shard_leases: the rows are the store's).
  absl::StatusOr<std::vector<ShardLease>> leases = store_.ListShardLeases();
  if (!leases.ok()) return ToGrpc(leases.status());
  for (std::string& problem : LeaseProblems(*leases, kShardCount, ShardOf(request->room()))) {
    response->add_problems(std::move(problem));
  }
  return grpc::Status::OK;
}

grpc::Status RoomAdminService::CompactRoom(grpc::ServerContext* context,
                                           const v1::CompactRoomRequest* request,
                                           v1::CompactRoomResponse* response) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  const std::string& room = request->room();
  if (absl::Status s = ValidateReadTarget(room, "", config_); !s.ok()) return ToGrpc(s);
  if (request->older_than_ms() < 0) {
    return ToGrpc(absl::InvalidArgumentError("older_than_ms must be >= 0"));
  }
  if (leases_ != nullptr && !leases_->EpochFor(ShardOf(room)).has_value()) {
    return ToGrpc(absl::FailedPreconditionError(
        "this node does not hold the room's shard; compact on its owner"));
  }
  // Never creates a room: compacting a name nobody used is NOT_FOUND.
  if (absl::StatusOr<RoomSummary> before = Describe(store_, room); !before.ok()) {
    return ToGrpc(before.status());
  }
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  const int64_t before_ms = request->older_than_ms() > now_ms ? 0 : now_ms - request->older_than_ms();
  // Through the room, between its commits, so its head stays exact and
  // its readers learn of the compaction.
  absl::Notification finished;
  absl::StatusOr<CompactionResult> result;
  rooms_.Get(room)->Compact(before_ms, [&](absl::StatusOr<CompactionResult> r) {
    result = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  Log(result.ok() ? LogLevel::kInfo : LogLevel::kWarning, "admin_compact",
      {{"room", room},
       {"removed", result.ok() ? result->removed : int64_t{0}},
       {"code", absl::StatusCodeToString(result.status().code())}});
  if (!result.ok()) return ToGrpc(result.status());
  response->set_removed(result->removed);
  response->set_removed_bytes(result->removed_bytes);
  absl::StatusOr<RoomSummary> summary = Describe(store_, room);
  if (!summary.ok()) return ToGrpc(summary.status());
  FillInfo(*summary, response->mutable_room());
  return grpc::Status::OK;
}

grpc::Status RoomAdminService::ListShards(grpc::ServerContext* context,
                                          const v1::ListShardsRequest* /*request*/,
                                          v1::ListShardsResponse* response) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  if (leases_ == nullptr) return ToGrpc(absl::FailedPreconditionError(kNoLeases));
  absl::StatusOr<std::vector<ShardLease>> leases = store_.ListShardLeases();
  if (!leases.ok()) return ToGrpc(leases.status());
  absl::StatusOr<std::vector<ClusterNode>> nodes = store_.ListLiveNodes();
  if (!nodes.ok()) return ToGrpc(nodes.status());
  // Expiry by this node's clock, as its lease keeper judges it.
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  std::map<std::string, int> held_by;
  for (const ShardLease& lease : *leases) {
    v1::ShardLeaseInfo* info = response->add_leases();
    info->set_shard(lease.shard);
    info->set_owner_node(lease.owner);
    info->set_owner_address(lease.address);
    info->set_epoch(lease.epoch);
    info->set_expires_at_ms(lease.expires_at_ms);
    info->set_expired(lease.expires_at_ms <= now_ms);
    if (!info->expired()) ++held_by[lease.owner];
  }
  for (const ClusterNode& node : *nodes) {
    v1::ClusterMember* member = response->add_members();
    member->set_node_id(node.node_id);
    member->set_address(node.address);
    member->set_shards(held_by[node.node_id]);
  }
  response->set_shard_count(kShardCount);
  response->set_node_id(leases_->node_id());
  response->set_now_ms(now_ms);
  for (std::string& problem : LeaseProblems(*leases, kShardCount)) {
    response->add_problems(std::move(problem));
  }
  return grpc::Status::OK;
}

grpc::Status RoomAdminService::DrainNode(grpc::ServerContext* context,
                                         const v1::DrainNodeRequest* request,
                                         v1::DrainNodeResponse* response) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  if (leases_ == nullptr) return ToGrpc(absl::FailedPreconditionError(kNoLeases));
  if (request->node_id() != leases_->node_id()) {
    return ToGrpc(absl::InvalidArgumentError(
        absl::StrCat("this is node \"", leases_->node_id(), "\", not \"", request->node_id(),
                     "\": nothing was drained (was the drain sent to the wrong address?)")));
  }
  // Nothing acknowledged is lost: the keeper first forgets each shard
  // (EpochFor answers nullopt, the rooms are dropped), so a push queued
  // or arriving after that fails its fence check before any store call
  // and is answered FAILED_PRECONDITION, never acknowledged; a commit
  // already in the store holds the shard's lease row, and the release
  // waits for it, so it either commits first (it is acknowledged, and the
  // next owner loads the room after it) or, past the release, fails its
  // fence (the next owner's epoch is higher) and is not acknowledged.
  // Clients retry those pushes on the next owner (503 at the gateway).
  const int held = leases_->held_shards();
  absl::Status status =
      drain_node_ ? drain_node_() : absl::UnimplementedError("this server cannot drain");
  Log(status.ok() ? LogLevel::kInfo : LogLevel::kWarning, "admin_drain",
      {{"node_id", leases_->node_id()},
       {"released", static_cast<int64_t>(held)},
       {"code", absl::StatusCodeToString(status.code())}});
  if (!status.ok()) return ToGrpc(status);
  response->set_released(held);
  return grpc::Status::OK;
}

grpc::Status RoomAdminService::CountSubscribers(grpc::ServerContext* context,
                                                const v1::CountSubscribersRequest* request,
                                                v1::CountSubscribersResponse* response) {
  if (absl::Status s = authorizer_.AuthorizeAdmin(*context); !s.ok()) return ToGrpc(s);
  if (request->rooms_size() > kMaxCountedRooms) {
    return ToGrpc(absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxCountedRooms, " rooms per call")));
  }
  for (const std::string& room : request->rooms()) {
    if (absl::Status s = ValidateReadTarget(room, "", config_); !s.ok()) return ToGrpc(s);
    response->add_subscribers(static_cast<int64_t>(rooms_.SubscriberCount(room)));
    response->add_held(leases_ == nullptr || leases_->EpochFor(ShardOf(room)).has_value());
  }
  return grpc::Status::OK;
}

}  // namespace roomsync
