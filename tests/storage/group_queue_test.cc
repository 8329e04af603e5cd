// storage/group_queue.h: leader/follower batching of store calls, driven
// by real threads with a slow "run" standing in for a fsync or a round trip.
// The suite is named Store* so that `ctest -R Store` runs it.
#include "storage/group_queue.h"

#include <atomic>
#include <chrono>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "storage/commit_request.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

using storage_internal::CommitRequest;
using storage_internal::GroupLimits;
using storage_internal::GroupQueue;

constexpr GroupLimits kLimits{.max_requests = 64, .max_bytes = 16 << 20};

StoredDocument Doc(const std::string& id, Seq seq, const std::string& json = "x") {
  return StoredDocument{"c", id, 1, false, seq, json};
}

void UpdateMax(std::atomic<int>& max, int value) {
  for (int seen = max.load(); value > seen && !max.compare_exchange_weak(seen, value);) {
  }
}

// The queue: concurrent submitters form groups, within the bounds, and
// each request is run exactly once and gets its own result.
TEST(StoreGroupQueue, ConcurrentSubmittersShareGroupsWithinBounds) {
  constexpr int kThreads = 100;  // more than one group's worth
  GroupQueue<CommitRequest> queue(kLimits);
  std::atomic<int> groups{0}, requests_run{0}, largest{0}, oversized{0};
  std::latch start(kThreads);
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  const std::string room_prefix = "r";
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string room = room_prefix + std::to_string(t);
      CommitRequest request(room, CommitFence{t}, {}, 0);
      start.arrive_and_wait();
      queue.Submit(request, [&](std::span<CommitRequest* const> group) {
        // Slow, like a fsync, so that the others queue up meanwhile.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ++groups;
        requests_run += static_cast<int>(group.size());
        if (group.size() > kLimits.max_requests) ++oversized;
        UpdateMax(largest, static_cast<int>(group.size()));
        // Each request's own result, to check it reaches its own caller.
        for (CommitRequest* r : group) {
          r->result = absl::InternalError(std::to_string(r->fence.expected_last_seq));
        }
      });
      results[t] = request.result;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(requests_run.load(), kThreads);
  EXPECT_EQ(oversized.load(), 0);
  EXPECT_GT(largest.load(), 1) << "no group had more than one request";
  EXPECT_LT(groups.load(), kThreads);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(results[t].message(), std::to_string(t));
}

// Large commits: a group stops before it would pass max_bytes (but a
// single request larger than that still runs, alone).
TEST(StoreGroupQueue, GroupsStayWithinTheByteBound) {
  constexpr int kThreads = 8;
  const std::vector<StoredDocument> big = {Doc("big", 1, std::string(6 << 20, 'x'))};
  GroupQueue<CommitRequest> queue(kLimits);
  std::atomic<int> requests_run{0}, oversized{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      CommitRequest request("r", CommitFence{0}, big, 0);
      start.arrive_and_wait();
      queue.Submit(request, [&](std::span<CommitRequest* const> group) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        size_t bytes = 0;
        for (CommitRequest* r : group) bytes += r->bytes;
        if (group.size() > 1 && bytes > kLimits.max_bytes) ++oversized;
        requests_run += static_cast<int>(group.size());
        for (CommitRequest* r : group) r->result = absl::OkStatus();
      });
      EXPECT_TRUE(request.result.ok()) << request.result;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(requests_run.load(), kThreads);
  EXPECT_EQ(oversized.load(), 0);
}

// distinct_rooms: a group never holds two requests of one room (the
// PostgreSQL statement fences each room once), and the deferred ones still
// run, each exactly once.
TEST(StoreGroupQueue, DistinctRoomsDefersASecondRequestOfARoom) {
  constexpr int kThreads = 40;  // 4 rooms, 10 requests each
  GroupQueue<CommitRequest> queue(
      GroupLimits{.max_requests = 64, .max_bytes = 1 << 20, .distinct_rooms = true});
  std::atomic<int> requests_run{0}, duplicates{0}, largest{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  const std::vector<std::string> rooms = {"a", "b", "c", "d"};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      CommitRequest request(rooms[t % rooms.size()], CommitFence{t}, {}, 0);
      start.arrive_and_wait();
      queue.Submit(request, [&](std::span<CommitRequest* const> group) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        for (size_t i = 0; i < group.size(); ++i) {
          for (size_t j = i + 1; j < group.size(); ++j) {
            if (group[i]->room == group[j]->room) ++duplicates;
          }
          group[i]->result = absl::OkStatus();
        }
        requests_run += static_cast<int>(group.size());
        UpdateMax(largest, static_cast<int>(group.size()));
      });
      EXPECT_TRUE(request.result.ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(requests_run.load(), kThreads);
  EXPECT_EQ(duplicates.load(), 0);
  EXPECT_GT(largest.load(), 1) << "rooms never shared a group";
}

// max_running_groups: groups overlap up to the bound, never beyond.
TEST(StoreGroupQueue, RunningGroupsStayWithinTheBound) {
  constexpr int kThreads = 60;
  GroupQueue<CommitRequest> queue(
      GroupLimits{.max_requests = 4, .max_bytes = 1 << 20, .max_running_groups = 2});
  std::atomic<int> running{0}, most_running{0}, requests_run{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string room = "r" + std::to_string(t);
      CommitRequest request(room, CommitFence{t}, {}, 0);
      start.arrive_and_wait();
      queue.Submit(request, [&](std::span<CommitRequest* const> group) {
        UpdateMax(most_running, ++running);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        --running;
        requests_run += static_cast<int>(group.size());
        for (CommitRequest* r : group) r->result = absl::OkStatus();
      });
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(requests_run.load(), kThreads);
  EXPECT_EQ(most_running.load(), 2);
}

}  // namespace
}  // namespace roomsync
