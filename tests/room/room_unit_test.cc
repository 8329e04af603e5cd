// Pure parts of the room service: the conflict policies and the
// recent-changes cache.
#include <gtest/gtest.h>

#include "services/room/conflict_resolver.h"
#include "services/room/recent_changes.h"

namespace roomsync {
namespace {

IncomingDocument Incoming(int64_t ts, std::string json, bool deleted = false) {
  IncomingDocument d;
  d.envelope.id = "a";
  d.envelope.timestamp_ms = ts;
  d.envelope.deleted = deleted;
  d.json = std::move(json);
  return d;
}

StoredDocument Stored(int64_t ts, std::string json, bool deleted = false) {
  StoredDocument d;
  d.collection = "messages";
  d.id = "a";
  d.timestamp_ms = ts;
  d.deleted = deleted;
  d.seq = 1;
  d.json = std::move(json);
  return d;
}

TEST(ConflictResolver, LastWriteWinsOrdersByTimestampThenBytes) {
  StoredDocument stored = Stored(10, "{b}");
  EXPECT_EQ(Decide(ConflictPolicy::kLastWriteWins, nullptr, Incoming(1, "{x}")), Decision::kAccept);
  EXPECT_EQ(Decide(ConflictPolicy::kLastWriteWins, &stored, Incoming(11, "{a}")), Decision::kAccept);
  EXPECT_EQ(Decide(ConflictPolicy::kLastWriteWins, &stored, Incoming(9, "{z}")), Decision::kConflict);
  EXPECT_EQ(Decide(ConflictPolicy::kLastWriteWins, &stored, Incoming(10, "{c}")), Decision::kAccept);
  EXPECT_EQ(Decide(ConflictPolicy::kLastWriteWins, &stored, Incoming(10, "{a}")), Decision::kConflict);
  EXPECT_EQ(Decide(ConflictPolicy::kLastWriteWins, &stored, Incoming(10, "{b}")), Decision::kNoop);
}

TEST(ConflictResolver, ServerWinsComparesAssumedMaster) {
  StoredDocument stored = Stored(10, "{b}", false);
  IncomingDocument plain = Incoming(20, "{c}");
  EXPECT_EQ(Decide(ConflictPolicy::kServerWins, nullptr, plain), Decision::kAccept);
  EXPECT_EQ(Decide(ConflictPolicy::kServerWins, &stored, plain), Decision::kConflict);
  IncomingDocument matching = Incoming(5, "{c}");
  matching.assumed_master = AssumedMaster{10, false};
  EXPECT_EQ(Decide(ConflictPolicy::kServerWins, &stored, matching), Decision::kAccept);
  EXPECT_EQ(Decide(ConflictPolicy::kServerWins, nullptr, matching), Decision::kConflict);
  IncomingDocument deleted_mismatch = Incoming(20, "{c}");
  deleted_mismatch.assumed_master = AssumedMaster{10, true};
  EXPECT_EQ(Decide(ConflictPolicy::kServerWins, &stored, deleted_mismatch), Decision::kConflict);
  IncomingDocument retry = Incoming(10, "{b}");
  retry.assumed_master = AssumedMaster{3, false};  // the retry of a landed write
  EXPECT_EQ(Decide(ConflictPolicy::kServerWins, &stored, retry), Decision::kNoop);
}

SharedDocument Doc(Seq seq, std::string id, std::string collection = "messages") {
  auto d = std::make_shared<StoredDocument>();
  d->collection = std::move(collection);
  d->id = std::move(id);
  d->seq = seq;
  d->json = "{}";
  return d;
}

TEST(RecentChanges, ServesOnlyWhatItCoversAndSkipsSupersededEntries) {
  RecentChanges recent(/*max_entries=*/3, /*max_bytes=*/1 << 20);
  recent.Reset(10);
  EXPECT_TRUE(recent.Covers(10));
  EXPECT_FALSE(recent.Covers(9));
  recent.Append({Doc(11, "a"), Doc(12, "b"), Doc(13, "a", "threads")});
  std::vector<SharedDocument> all = recent.ReadSince(10, "", 100);
  ASSERT_EQ(all.size(), 3u);
  recent.Append({Doc(14, "a")});  // evicts 11 and supersedes nothing else
  EXPECT_FALSE(recent.Covers(10));
  EXPECT_TRUE(recent.Covers(11));
  recent.Append({Doc(15, "b")});  // supersedes 12
  std::vector<SharedDocument> messages = recent.ReadSince(11, "messages", 100);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0]->seq, 14);
  EXPECT_EQ(messages[1]->seq, 15);
  EXPECT_EQ(recent.ReadSince(11, "", 1).size(), 1u);
}

}  // namespace
}  // namespace roomsync
