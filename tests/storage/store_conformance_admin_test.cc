// Store conformance: the operators' calls (ListRooms, DescribeRoom,
// ImportRoom) on both backends.
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Names(const std::vector<RoomSummary>& rooms) {
  std::vector<std::string> names;
  for (const RoomSummary& r : rooms) names.push_back(r.room);
  return names;
}

TEST_P(StoreConformance, ListRoomsPagesByNameWithFigures) {
  for (const char* room : {"b", "a", "c"}) ASSERT_OK(store_->OpenRoom(room));
  ASSERT_OK(CommitDocs("b", 0, {{"msgs", "1", "one"}, {"msgs", "2", "two", true}}));
  // Replacing "1" leaves seq 1 unheld: a hole that is no problem.
  ASSERT_OK(CommitDocs("b", 2, {{"msgs", "1", "uno!"}}));

  ASSERT_OK_AND_ASSIGN(std::vector<RoomSummary> first, store_->ListRooms("", 2));
  EXPECT_THAT(Names(first), ElementsAre("a", "b"));
  ASSERT_OK_AND_ASSIGN(std::vector<RoomSummary> rest, store_->ListRooms(first.back().room, 2));
  EXPECT_THAT(Names(rest), ElementsAre("c"));
  ASSERT_OK_AND_ASSIGN(std::vector<RoomSummary> none, store_->ListRooms("c", 2));
  EXPECT_THAT(none, IsEmpty());

  const RoomSummary& empty = first[0];
  EXPECT_EQ(empty.documents, 0);
  EXPECT_EQ(empty.max_seq, 0);
  EXPECT_EQ(empty.last_write_ms, 0);
  EXPECT_FALSE(empty.head.epoch.empty());

  const RoomSummary& b = first[1];
  EXPECT_EQ(b.head.last_seq, 3);
  EXPECT_EQ(b.head.stored_bytes, 7);  // "two" + "uno!"
  EXPECT_EQ(b.document_bytes, 7);
  EXPECT_EQ(b.documents, 2);
  EXPECT_EQ(b.deleted_documents, 1);
  EXPECT_EQ(b.min_seq, 2);
  EXPECT_EQ(b.max_seq, 3);
  EXPECT_EQ(b.distinct_seqs, 2);
  EXPECT_EQ(b.last_write_ms, 3000);  // Batch(): timestamp_ms = 1000 * seq
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("b"));
  EXPECT_EQ(b.head.epoch, head.epoch);

  EXPECT_EQ(store_->ListRooms("", 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreConformance, DescribeRoomNeverCreatesTheRoom) {
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSummary> missing, store_->DescribeRoom("nobody"));
  EXPECT_FALSE(missing.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<RoomSummary> rooms, store_->ListRooms("", 10));
  EXPECT_THAT(rooms, IsEmpty());

  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"a", "x", "{}"}}));
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSummary> found, store_->DescribeRoom("r"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->room, "r");
  EXPECT_EQ(found->documents, 1);
  EXPECT_EQ(found->head.last_seq, 1);
}

// Seqs with holes, tombstones, bytes that are not JSON: all come back as
// they went in, and the room continues from the imported head.
TEST_P(StoreConformance, ImportRoomKeepsSeqsBytesAndEpoch) {
  const std::string binary("\x00\xff{\"a\":1}\n", 10);
  std::vector<StoredDocument> docs = {
      {"msgs", "m1", 111, false, 2, R"({"id":"m1","timestamp":111})"},
      {"users", "u", 222, true, 5, binary},
      {"msgs", "m2", 333, false, 9, "x"},
  };
  ASSERT_OK(store_->ImportRoom("copy", RoomHead{"epoch-from-export", 9, 12345}, docs));

  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("copy"));
  EXPECT_EQ(head.epoch, "epoch-from-export");
  EXPECT_EQ(head.last_seq, 9);
  EXPECT_EQ(head.stored_bytes, static_cast<int64_t>(docs[0].json.size() + binary.size() + 1));
  std::vector<StoredDocument> back = ReadAll("copy");
  ASSERT_EQ(back.size(), docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(back[i].collection, docs[i].collection);
    EXPECT_EQ(back[i].id, docs[i].id);
    EXPECT_EQ(back[i].seq, docs[i].seq);
    EXPECT_EQ(back[i].timestamp_ms, docs[i].timestamp_ms);
    EXPECT_EQ(back[i].deleted, docs[i].deleted);
    EXPECT_EQ(back[i].json, docs[i].json);
  }
  // The room's writer continues from the imported last_seq.
  ASSERT_OK(CommitDocs("copy", 9, {{"msgs", "m3", "y"}}));
  EXPECT_EQ(CommitDocs("copy", 0, {{"msgs", "m4", "z"}}).code(), absl::StatusCode::kAborted);
}

TEST_P(StoreConformance, ImportRoomIntoOpenedEmptyRoomAndFreshEpoch) {
  ASSERT_OK_AND_ASSIGN(RoomHead before, store_->OpenRoom("empty"));
  ASSERT_OK(store_->ImportRoom("empty", RoomHead{"", 1, 0}, {{{"c", "i", 1, false, 1, "v"}}}));
  ASSERT_OK_AND_ASSIGN(RoomHead after, store_->OpenRoom("empty"));
  EXPECT_EQ(after.last_seq, 1);
  EXPECT_FALSE(after.epoch.empty());
  EXPECT_NE(after.epoch, before.epoch);  // a fresh one: the old checkpoints start over
  // An empty export makes an empty room.
  ASSERT_OK(store_->ImportRoom("nothing", RoomHead{"e", 0, 0}, {}));
  ASSERT_OK_AND_ASSIGN(RoomHead nothing, store_->OpenRoom("nothing"));
  EXPECT_EQ(nothing.last_seq, 0);
  EXPECT_EQ(nothing.epoch, "e");
}

TEST_P(StoreConformance, ImportRoomRefusesNonEmptyRoomAndWritesNothing) {
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("busy"));
  ASSERT_OK(CommitDocs("busy", 0, {{"c", "a", "1"}}));
  EXPECT_EQ(store_->ImportRoom("busy", RoomHead{"e", 5, 0}, {{{"c", "b", 1, false, 5, "2"}}})
                .code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(RoomHead after, store_->OpenRoom("busy"));
  EXPECT_EQ(after.epoch, head.epoch);
  EXPECT_EQ(after.last_seq, 1);
  EXPECT_THAT(Summaries(ReadAll("busy")), ElementsAre("c/a@1"));
}

TEST_P(StoreConformance, ImportRoomRefusesBadSeqsAndKeysWritingNothing) {
  auto code = [&](Seq last, std::vector<StoredDocument> docs) {
    return store_->ImportRoom("bad", RoomHead{"e", last, 0}, docs).code();
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(5, {{"c", "a", 0, false, 3, ""}, {"c", "b", 0, false, 2, ""}}), kInvalid);
  EXPECT_EQ(code(5, {{"c", "a", 0, false, 3, ""}, {"c", "b", 0, false, 3, ""}}), kInvalid);
  EXPECT_EQ(code(5, {{"c", "a", 0, false, 6, ""}}), kInvalid);
  EXPECT_EQ(code(5, {{"c", "a", 0, false, 0, ""}}), kInvalid);
  EXPECT_EQ(code(5, {{"c", "a", 0, false, 1, ""}, {"c", "a", 0, false, 2, ""}}), kInvalid);
  EXPECT_EQ(code(5, {{"", "a", 0, false, 1, ""}}), kInvalid);
  EXPECT_EQ(code(5, {{"c", std::string("a\0b", 3), 0, false, 1, ""}}), kInvalid);
  EXPECT_EQ(code(-1, {}), kInvalid);
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSummary> bad, store_->DescribeRoom("bad"));
  EXPECT_FALSE(bad.has_value());
}

// Collects an export; can stop it after `stop_after` pages.
class CollectingSink : public ExportSink {
 public:
  absl::Status Head(const RoomHead& head) override {
    head_ = head;
    return absl::OkStatus();
  }
  absl::Status Page(std::vector<StoredDocument> documents) override {
    page_sizes_.push_back(documents.size());
    for (StoredDocument& d : documents) documents_.push_back(std::move(d));
    if (static_cast<int>(page_sizes_.size()) == stop_after_) return absl::CancelledError("enough");
    return on_page_ ? on_page_() : absl::OkStatus();
  }
  std::optional<RoomHead> head_;
  std::vector<StoredDocument> documents_;
  std::vector<size_t> page_sizes_;
  int stop_after_ = -1;
  std::function<absl::Status()> on_page_;
};

TEST_P(StoreConformance, ExportRoomIsOneSnapshotInSeqOrder) {
  ASSERT_OK(store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"a", "1", "x"}, {"b", "2", "yy"}, {"a", "3", "z", true}}));
  ASSERT_OK(CommitDocs("r", 3, {{"a", "1", "x2"}}));  // "1" moves to seq 4
  ASSERT_OK(CommitDocs("r", 4, {{"a", "5", "w"}}));

  CollectingSink sink;
  // Commits made while the export runs are not part of it, and a document
  // they move is exported once, at the seq it had.
  sink.on_page_ = [&]() -> absl::Status {
    if (sink.page_sizes_.size() == 1) return CommitDocs("r", 5, {{"b", "2", "moved"}});
    return absl::OkStatus();
  };
  ASSERT_OK(store_->ExportRoom("r", 2, sink));
  ASSERT_TRUE(sink.head_.has_value());
  EXPECT_EQ(sink.head_->last_seq, 5);
  EXPECT_THAT(Summaries(sink.documents_), ElementsAre("b/2@2", "a/3@3", "a/1@4", "a/5@5"));
  EXPECT_THAT(sink.page_sizes_, ElementsAre(2, 2));
  EXPECT_EQ(sink.documents_[0].json, "yy");
  EXPECT_TRUE(sink.documents_[1].deleted);

  CollectingSink stopped;
  stopped.stop_after_ = 1;
  EXPECT_EQ(store_->ExportRoom("r", 1, stopped).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(stopped.documents_.size(), 1u);

  CollectingSink missing;
  EXPECT_EQ(store_->ExportRoom("none", 10, missing).code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSummary> none, store_->DescribeRoom("none"));
  EXPECT_FALSE(none.has_value());
}

}  // namespace
}  // namespace roomsync
