// Store conformance: concurrent start-up, racing writers, readers beside a
// writer, on both backends. Two Store objects on one URL stand in for two
// processes (each has its own connections).
#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

// How many of rounds [0, rounds) room `t` was the stale writer in, when
// round r's stale room is r % threads.
Seq RoundsAborted(int rounds, int t, int threads) {
  return rounds / threads + (t < rounds % threads ? 1 : 0);
}

TEST_P(StoreConformance, ConcurrentOpenStoreAppliesMigrationsOnce) {
  // Migrations create tables without IF NOT EXISTS: a second application
  // would fail, so every open succeeding shows each ran exactly once. The
  // race window is narrow, so try several fresh databases.
  constexpr int kRounds = 5;
  constexpr int kOpeners = 6;
  for (int round = 0; round < kRounds; ++round) {
    const std::string url = GetParam().new_url();
    std::vector<absl::StatusOr<std::unique_ptr<Store>>> stores(kOpeners);
    std::latch start(kOpeners);
    std::vector<std::thread> threads;
    for (int i = 0; i < kOpeners; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        stores[i] = OpenStore(url);
      });
    }
    for (auto& t : threads) t.join();
    for (auto& store : stores) ASSERT_TRUE(store.ok()) << store.status();

    ASSERT_OK_AND_ASSIGN(RoomHead head, (*stores[0])->OpenRoom("r"));
    ASSERT_OK(::roomsync::CommitDocs(**stores[1], "r", 0, {{"c", "a", "x"}}));
    for (auto& store : stores) {
      ASSERT_OK_AND_ASSIGN(RoomHead seen, (*store)->OpenRoom("r"));
      EXPECT_EQ(seen.epoch, head.epoch);
      EXPECT_EQ(seen.last_seq, 1);
    }
  }
}

TEST_P(StoreConformance, ConcurrentOpenRoomAgreesOnOneEpoch) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> other, OpenStore(url_));
  constexpr int kThreads = 6;
  std::vector<absl::StatusOr<RoomHead>> heads(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      heads[i] = (i % 2 == 0 ? store_ : other)->OpenRoom("contended");
    });
  }
  for (auto& t : threads) t.join();
  for (auto& head : heads) {
    ASSERT_TRUE(head.ok()) << head.status();
    EXPECT_EQ(head->epoch, heads[0]->epoch);
  }
}

TEST_P(StoreConformance, ConcurrentCommitsWithSameFenceExactlyOneWins) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> other, OpenStore(url_));
  ASSERT_OK(store_->OpenRoom("r"));
  Seq last = 0;
  for (int round = 0; round < 25; ++round) {
    // Writer 0 commits one document, writer 1 two, so last_seq says who won.
    absl::Status results[2];
    std::latch start(2);
    std::thread writers[2];
    for (int w = 0; w < 2; ++w) {
      writers[w] = std::thread([&, w] {
        std::vector<NewDoc> docs;
        for (int i = 0; i <= w; ++i) {
          docs.push_back({"c", "w" + std::to_string(w) + "-" + std::to_string(round) + "-" +
                                   std::to_string(i),
                          "x"});
        }
        start.arrive_and_wait();
        results[w] = ::roomsync::CommitDocs(w == 0 ? *store_ : *other, "r", last, docs);
      });
    }
    for (auto& t : writers) t.join();
    ASSERT_NE(results[0].ok(), results[1].ok())
        << "round " << round << ": " << results[0] << " / " << results[1];
    const int winner = results[0].ok() ? 0 : 1;
    EXPECT_EQ(results[1 - winner].code(), absl::StatusCode::kAborted) << results[1 - winner];
    ASSERT_OK_AND_ASSIGN(RoomHead head, other->OpenRoom("r"));
    EXPECT_EQ(head.last_seq, last + winner + 1);
    last = head.last_seq;
  }
  // Only winners' documents exist, and their seqs are gap-free.
  std::vector<StoredDocument> all = ReadAll("r");
  ASSERT_EQ(static_cast<Seq>(all.size()), last);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq, static_cast<Seq>(i + 1));
}

TEST_P(StoreConformance, ConcurrentCommitsToDifferentRoomsAllSucceed) {
  constexpr int kRooms = 4;
  constexpr int kCommits = 40;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int r = 0; r < kRooms; ++r) {
    threads.emplace_back([&, r] {
      const std::string room = "room" + std::to_string(r);
      if (!store_->OpenRoom(room).ok()) ++failures;
      for (int i = 0; i < kCommits; ++i) {
        if (!CommitDocs(room, i, {{"c", "d" + std::to_string(i % 5), "x"}}).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int r = 0; r < kRooms; ++r) {
    ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("room" + std::to_string(r)));
    EXPECT_EQ(head.last_seq, kCommits);
    EXPECT_EQ(ReadAll("room" + std::to_string(r)).size(), 5u);
  }
}

// As many rooms pushing at once as the room service has store threads:
// SQLite commits them in shared transactions (sqlite_commit_group.h),
// PostgreSQL over that many pooled connections. Every commit must land
// with its own seqs and data, whichever group it shared.
TEST_P(StoreConformance, ManyThreadsCommittingToManyRoomsAllSucceed) {
  constexpr int kThreads = 32;
  constexpr int kCommits = 20;
  std::latch start(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string room = "many" + std::to_string(t);
      if (!store_->OpenRoom(room).ok()) ++failures;
      start.arrive_and_wait();
      Seq last = 0;
      for (int i = 0; i < kCommits; ++i) {
        // 1 to 3 documents, so that rooms' seqs diverge inside a group.
        std::vector<NewDoc> docs;
        for (int d = 0; d <= (t + i) % 3; ++d) {
          docs.push_back({"c", room + "-" + std::to_string(i) + "-" + std::to_string(d),
                          room + ":" + std::to_string(last + d + 1)});
        }
        absl::Status s = CommitDocs(room, last, docs);
        if (!s.ok()) {
          ADD_FAILURE() << room << " commit " << i << ": " << s;
          ++failures;
          return;
        }
        last += static_cast<Seq>(docs.size());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    const std::string room = "many" + std::to_string(t);
    std::vector<StoredDocument> all = ReadAll(room);
    ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom(room));
    EXPECT_EQ(head.last_seq, static_cast<Seq>(all.size())) << room;
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(all[i].seq, static_cast<Seq>(i + 1)) << room;
      EXPECT_EQ(all[i].json, room + ":" + std::to_string(i + 1)) << room;
      EXPECT_TRUE(all[i].id.starts_with(room + "-")) << room << ": " << all[i].id;
    }
  }
}

// One stale writer among concurrent commits of other rooms: on SQLite they
// often share a transaction, and the failed fence must undo that room's
// writes alone.
TEST_P(StoreConformance, StaleFenceAmongConcurrentCommitsAbortsOnlyThatRoom) {
  constexpr int kThreads = 12;
  constexpr int kRounds = 15;
  for (int t = 0; t < kThreads; ++t) ASSERT_OK(store_->OpenRoom("f" + std::to_string(t)));
  for (int round = 0; round < kRounds; ++round) {
    const int stale = round % kThreads;  // this room's writer uses an old fence
    std::vector<absl::Status> results(kThreads);
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string room = "f" + std::to_string(t);
        // Each room's last_seq is the number of rounds it committed in.
        const Seq last = round - RoundsAborted(round, t, kThreads);
        start.arrive_and_wait();
        results[t] = CommitDocs(room, t == stale ? last + 7 : last,
                                {{"c", "r" + std::to_string(round), room}});
      });
    }
    for (auto& t : threads) t.join();
    for (int t = 0; t < kThreads; ++t) {
      if (t == stale) {
        EXPECT_EQ(results[t].code(), absl::StatusCode::kAborted) << "round " << round;
      } else {
        EXPECT_TRUE(results[t].ok()) << "round " << round << " room " << t << ": " << results[t];
      }
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    const std::string room = "f" + std::to_string(t);
    const Seq expected = kRounds - RoundsAborted(kRounds, t, kThreads);
    ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom(room));
    EXPECT_EQ(head.last_seq, expected) << room;
    std::vector<StoredDocument> all = ReadAll(room);
    ASSERT_EQ(static_cast<Seq>(all.size()), expected) << room;
    for (const StoredDocument& d : all) {
      // No document of a round in which this room was the stale one.
      const int round = std::stoi(d.id.substr(1));
      EXPECT_NE(round % kThreads, t) << room << " kept " << d.id;
      EXPECT_EQ(d.json, room);
    }
  }
}

TEST_P(StoreConformance, ReadersNeverSeePartOfACommit) {
  ASSERT_OK(store_->OpenRoom("r"));
  constexpr int kBatches = 60;
  constexpr int kBatchSize = 4;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, errors{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      while (!done.load()) {
        // New keys only, so a consistent snapshot is exactly seqs 1..n
        // with n a multiple of the batch size.
        absl::StatusOr<std::vector<StoredDocument>> page =
            store_->ReadSince("r", 0, ReadRange{"", kBatches * kBatchSize});
        if (!page.ok()) {
          ++errors;
          continue;
        }
        if (page->size() % kBatchSize != 0) ++torn;
        for (size_t j = 0; j < page->size(); ++j) {
          if ((*page)[j].seq != static_cast<Seq>(j + 1)) ++torn;
        }
      }
    });
  }
  for (int b = 0; b < kBatches; ++b) {
    std::vector<NewDoc> docs;
    for (int i = 0; i < kBatchSize; ++i) {
      docs.push_back({"c", std::to_string(b) + "-" + std::to_string(i), "x"});
    }
    ASSERT_OK(CommitDocs("r", b * kBatchSize, docs));
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(errors.load(), 0);
}

}  // namespace
}  // namespace roomsync
