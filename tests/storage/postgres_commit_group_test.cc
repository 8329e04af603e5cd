// PostgreSQL's grouped commits (one statement for the commits of several
// rooms, storage/postgres_store.h): whatever group a commit lands in, its
// outcome is the one it would have alone. Threads commit together, round
// after round with 18 rooms at once, so that groups form (up to 16 rooms
// in one statement when this was written): a good commit lands, a commit with a
// stale fence gets kAborted and writes nothing, and a commit that repeats a
// key (which fails the whole statement) gets kInvalidArgument without
// taking the good one down with it. The same holds for commits of keys
// asserted new (CommitFence::keys_are_new, grouped apart): a fresh key
// lands, and a stored one gets kAlreadyExists and writes nothing.
// The suite is named Store* so that `ctest -R Store` runs it.
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "tests/storage/store_conformance.h"
#include "tests/support/pg_harness.h"

namespace roomsync {
namespace {

constexpr int kRounds = 20;

StoredDocument Doc(const std::string& id, Seq seq) {
  return StoredDocument{"c", id, 1700000000000 + seq, false, seq, "json-" + id};
}

TEST(StorePostgresCommitGroup, EachCommitGetsItsOwnOutcome) {
  // Rooms of three kinds, several of each, committing together.
  constexpr int kPerKind = 6;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenStore(testing::CreateTestDatabase()));
  auto room = [](const char* kind, int i) { return std::string(kind) + std::to_string(i); };
  for (const char* kind : {"good", "stale", "repeat", "fresh", "stored"}) {
    for (int i = 0; i < kPerKind; ++i) ASSERT_OK(store->OpenRoom(room(kind, i)).status());
  }
  for (int i = 0; i < kPerKind; ++i) {
    std::vector<StoredDocument> seed = {Doc("kept", 1)};
    ASSERT_OK(store->Commit(room("stored", i), CommitFence{0}, seed, 9, 0));
  }
  // outcomes[kind][i][round]
  std::vector<std::vector<std::vector<absl::Status>>> outcomes(
      5, std::vector<std::vector<absl::Status>>(kPerKind, std::vector<absl::Status>(kRounds)));
  for (int round = 0; round < kRounds; ++round) {
    std::latch start(5 * kPerKind);
    std::vector<std::thread> threads;
    const Seq next = round + 1;
    for (int i = 0; i < kPerKind; ++i) {
      threads.emplace_back([&, i] {
        std::vector<StoredDocument> docs = {Doc("g" + std::to_string(round), next)};
        start.arrive_and_wait();
        outcomes[0][i][round] = store->Commit(room("good", i), CommitFence{next - 1}, docs, 10, 0);
      });
      threads.emplace_back([&, i] {
        // The room stays at last_seq 0: a fence of 5 is always stale.
        std::vector<StoredDocument> docs = {Doc("s", 6)};
        start.arrive_and_wait();
        outcomes[1][i][round] = store->Commit(room("stale", i), CommitFence{5}, docs, 10, 0);
      });
      threads.emplace_back([&, i] {
        std::vector<StoredDocument> docs = {Doc("same", 1), Doc("same", 2)};
        start.arrive_and_wait();
        outcomes[2][i][round] = store->Commit(room("repeat", i), CommitFence{0}, docs, 10, 0);
      });
      threads.emplace_back([&, i] {
        std::vector<StoredDocument> docs = {Doc("f" + std::to_string(round), next)};
        start.arrive_and_wait();
        outcomes[3][i][round] = store->Commit(
            room("fresh", i), CommitFence{.expected_last_seq = next - 1, .keys_are_new = true},
            docs, 10, 0);
      });
      threads.emplace_back([&, i] {
        std::vector<StoredDocument> docs = {Doc("new", 2), Doc("kept", 3)};
        start.arrive_and_wait();
        outcomes[4][i][round] = store->Commit(
            room("stored", i), CommitFence{.expected_last_seq = 1, .keys_are_new = true}, docs, 10, 0);
      });
    }
    for (auto& t : threads) t.join();
  }
  for (int i = 0; i < kPerKind; ++i) {
    for (int round = 0; round < kRounds; ++round) {
      const absl::Status& good = outcomes[0][i][round];
      EXPECT_TRUE(good.ok()) << room("good", i) << " round " << round << ": " << good;
      EXPECT_EQ(outcomes[1][i][round].code(), absl::StatusCode::kAborted) << outcomes[1][i][round];
      EXPECT_EQ(outcomes[2][i][round].code(), absl::StatusCode::kInvalidArgument)
          << outcomes[2][i][round];
      EXPECT_TRUE(outcomes[3][i][round].ok()) << outcomes[3][i][round];
      EXPECT_EQ(outcomes[4][i][round].code(), absl::StatusCode::kAlreadyExists)
          << outcomes[4][i][round];
    }
    ASSERT_OK_AND_ASSIGN(RoomHead fresh_head, store->OpenRoom(room("fresh", i)));
    EXPECT_EQ(fresh_head.last_seq, kRounds);
    ASSERT_OK_AND_ASSIGN(RoomHead stored_head, store->OpenRoom(room("stored", i)));
    EXPECT_EQ(stored_head.last_seq, 1);
    EXPECT_EQ(stored_head.stored_bytes, 9);
    ASSERT_OK_AND_ASSIGN(RoomHead good_head, store->OpenRoom(room("good", i)));
    EXPECT_EQ(good_head.last_seq, kRounds);
    EXPECT_EQ(good_head.stored_bytes, 10 * kRounds);
    ASSERT_OK_AND_ASSIGN(std::vector<StoredDocument> docs,
                         store->ReadSince(room("good", i), 0, ReadRange{"", 100}));
    ASSERT_EQ(docs.size(), static_cast<size_t>(kRounds));
    for (int r = 0; r < kRounds; ++r) EXPECT_EQ(docs[r].id, "g" + std::to_string(r));
    for (const char* kind : {"stale", "repeat"}) {
      ASSERT_OK_AND_ASSIGN(RoomHead head, store->OpenRoom(room(kind, i)));
      EXPECT_EQ(head.last_seq, 0) << room(kind, i);
      EXPECT_EQ(head.stored_bytes, 0) << room(kind, i);
      ASSERT_OK_AND_ASSIGN(docs, store->ReadSince(room(kind, i), 0, ReadRange{"", 100}));
      EXPECT_TRUE(docs.empty()) << room(kind, i);
    }
  }
}

}  // namespace
}  // namespace roomsync
