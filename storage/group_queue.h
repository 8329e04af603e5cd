// Leader/follower batching of blocking store calls (LevelDB's write group,
// at the store level), shared by SQLite's and PostgreSQL's group commit
// and PostgreSQL's grouped key lookups.
//
// Why: each call of a group costs about what one call alone costs (one
// fsync, one round trip, one statement), so calls of different rooms that
// arrive together should travel together. No timer: a group takes what
// queued up while the previous group ran, so an idle store answers at once
// and a busy one batches more.
//
// How: every caller queues its request and waits. The oldest waiting
// request whose thread finds a free group slot becomes the leader: it takes
// the queue's head (bounded in requests and bytes), runs it as one group
// outside the lock, and marks every member done. Requests that arrive
// meanwhile wait for the next group.
//
// Request must have `std::string_view room`, `size_t bytes` (what it adds
// to a group's size bound) and `bool done` (guarded by the queue).
#ifndef ROOMSYNC_STORAGE_GROUP_QUEUE_H_
#define ROOMSYNC_STORAGE_GROUP_QUEUE_H_

#include <algorithm>
#include <cstddef>
#include <deque>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace roomsync::storage_internal {

struct GroupLimits {
  size_t max_requests = 64;
  size_t max_bytes = 16 << 20;
  // Groups running at once (1: one writer, as SQLite has).
  int max_running_groups = 1;
  // A request for a room already in the group waits for the next group
  // (PostgreSQL's multi-room commit fences each room once per statement).
  bool distinct_rooms = false;
};

template <typename Request>
class GroupQueue {
 public:
  explicit GroupQueue(GroupLimits limits) : limits_(limits) {}

  using RunGroup = absl::FunctionRef<void(std::span<Request* const>)>;

  // Queues `request` and returns once a group containing it has run. If
  // this thread becomes the leader it calls `run` for the group (outside
  // the queue's lock); `run` must set every member's result.
  void Submit(Request& request, RunGroup run) {
    std::vector<Request*> group;
    {
      absl::MutexLock lock(&mu_);
      pending_.push_back(&request);
      Waiter waiter{this, &request};
      mu_.Await(absl::Condition(&CanProceed, &waiter));
      if (request.done) return;  // a leader ran it
      ++running_groups_;
      size_t bytes = 0;
      // Always take at least this request (the oldest), however large.
      for (auto it = pending_.begin();
           it != pending_.end() && group.size() < limits_.max_requests;) {
        Request* next = *it;
        if (!group.empty() && bytes + next->bytes > limits_.max_bytes) break;
        if (limits_.distinct_rooms &&
            std::any_of(group.begin(), group.end(),
                        [&](const Request* member) { return member->room == next->room; })) {
          ++it;
          continue;
        }
        bytes += next->bytes;
        group.push_back(next);
        it = pending_.erase(it);
      }
    }
    run(group);
    absl::MutexLock lock(&mu_);
    // Wakes the followers of the group and the next leader (the oldest
    // request left): absl::Mutex re-checks waiters' conditions on unlock.
    for (Request* member : group) member->done = true;
    --running_groups_;
  }

 private:
  struct Waiter {
    GroupQueue* queue;
    Request* request;
  };

  // Called by absl::Mutex with mu_ held. A request that is not done is
  // either queued or in a running group (then no longer in pending_, which
  // may be empty).
  static bool CanProceed(Waiter* waiter) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    GroupQueue& queue = *waiter->queue;
    return waiter->request->done ||
           (queue.running_groups_ < queue.limits_.max_running_groups &&
            !queue.pending_.empty() && queue.pending_.front() == waiter->request);
  }

  const GroupLimits limits_;
  absl::Mutex mu_;
  std::deque<Request*> pending_ ABSL_GUARDED_BY(mu_);
  int running_groups_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_GROUP_QUEUE_H_
