// A Room instance the registry dropped (its shard left this node: Moved)
// must not take a subscription that reaches it afterwards. Room::Subscribe
// runs on the store executor; one posted before the drop and run after it
// used to register the subscriber on the dropped instance, which no commit
// reaches again: Live, then silence. It must get the "moved" resync, so
// that the caller continues on the room's owner. A one-thread executor
// held busy makes the order certain.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "services/room/change_subscriber.h"
#include "services/room/room.h"
#include "services/room/room_config.h"
#include "services/room/room_metrics.h"
#include "storage/store.h"
#include "tests/support/temp_dir.h"

namespace roomsync {
namespace {

class RecordingSubscriber final : public ChangeSubscriber {
 public:
  const std::string& collection() const override { return collection_; }
  bool OnChanges(const std::shared_ptr<const CommittedBatch>&) override { return true; }
  void OnLive(const RoomHead&) override { Record("live"); }
  void OnResync(std::string_view reason) override { Record("resync: " + std::string(reason)); }
  void OnClose() override { Record("close"); }

  // The first answer, waiting for it up to 10 s.
  std::string Await() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](std::string* s) { return !s->empty(); }, &answer_),
                         absl::Seconds(10));
    return answer_;
  }

 private:
  void Record(std::string what) {
    absl::MutexLock lock(&mu_);
    if (answer_.empty()) answer_ = std::move(what);
  }

  const std::string collection_;
  absl::Mutex mu_;
  std::string answer_ ABSL_GUARDED_BY(mu_);
};

class RetiredRoomTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenStore(testing::TempSqliteUrl());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    metrics_ = std::make_unique<RoomMetrics>(registry_);
    context_ = RoomContext{store_.get(), &config_, metrics_.get(), &executor_};
  }
  void TearDown() override { executor_.join(); }

  RoomServiceConfig config_;
  prometheus::Registry registry_;
  std::unique_ptr<RoomMetrics> metrics_;
  std::unique_ptr<Store> store_;
  boost::asio::thread_pool executor_{1};
  RoomContext context_{};
};

TEST_P(RetiredRoomTest, ASubscriptionArrivingAfterTheDropIsToldTheRoomMoved) {
  const bool with_checkpoint = GetParam();
  auto room = std::make_shared<Room>("retired", context_);
  absl::Notification release;
  boost::asio::post(executor_, [&release] { release.WaitForNotification(); });
  auto subscriber = std::make_shared<RecordingSubscriber>();
  std::optional<ClientCheckpoint> from;
  if (with_checkpoint) from = ClientCheckpoint{};  // {seq: 0}: from the beginning
  room->Subscribe(subscriber, from);  // queued behind the busy executor
  room->Moved();                      // the registry drops the instance
  release.Notify();
  EXPECT_EQ(subscriber->Await(), "resync: " + std::string(kRoomMovedReason));
  EXPECT_EQ(room->subscriber_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(LiveOnlyAndFromACheckpoint, RetiredRoomTest, ::testing::Bool());

}  // namespace
}  // namespace roomsync
