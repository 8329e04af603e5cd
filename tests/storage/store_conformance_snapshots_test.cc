// Store conformance: client snapshots (Store::PutSnapshot, NewestSnapshot)
// on both backends: opaque bytes back as stored, the newest `keep` kept,
// refused for a room never opened, another epoch or a seq past the head.
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "tests/storage/store_conformance.h"

namespace roomsync {
namespace {

TEST_P(StoreConformance, SnapshotsKeepTheNewestAndTheirBytes) {
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSnapshot> none, store_->NewestSnapshot("r"));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "1"}, {"c", "b", "2"}, {"c", "c", "3"}}));
  // Bytes of every value, NUL included: ciphertext.
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  ASSERT_OK(store_->PutSnapshot("r", RoomSnapshot{head.epoch, 1, 0, bytes}, 2));
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSnapshot> newest, store_->NewestSnapshot("r"));
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->seq, 1);
  EXPECT_EQ(newest->epoch, head.epoch);
  EXPECT_EQ(newest->bytes, bytes);
  EXPECT_GT(newest->created_ms, 1'700'000'000'000);

  ASSERT_OK(store_->PutSnapshot("r", RoomSnapshot{head.epoch, 3, 0, "three"}, 2));
  ASSERT_OK(store_->PutSnapshot("r", RoomSnapshot{head.epoch, 2, 0, "two"}, 2));
  ASSERT_OK_AND_ASSIGN(newest, store_->NewestSnapshot("r"));
  EXPECT_EQ(newest->seq, 3);
  EXPECT_EQ(newest->bytes, "three");
  // Kept: 3 and 2; 1 went. The same seq again replaces it.
  ASSERT_OK(store_->PutSnapshot("r", RoomSnapshot{head.epoch, 3, 0, "three again"}, 1));
  ASSERT_OK_AND_ASSIGN(newest, store_->NewestSnapshot("r"));
  EXPECT_EQ(newest->bytes, "three again");
  // A snapshot of an empty room (seq 0) is allowed.
  ASSERT_OK_AND_ASSIGN(RoomHead empty, store_->OpenRoom("empty"));
  ASSERT_OK(store_->PutSnapshot("empty", RoomSnapshot{empty.epoch, 0, 0, ""}, 1));
  ASSERT_OK_AND_ASSIGN(newest, store_->NewestSnapshot("empty"));
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->bytes, "");
}

TEST_P(StoreConformance, SnapshotsAreRefusedOutsideTheRoomsHistory) {
  EXPECT_EQ(store_->PutSnapshot("never-opened", RoomSnapshot{"e", 0, 0, "x"}, 1).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_OK_AND_ASSIGN(RoomHead head, store_->OpenRoom("r"));
  ASSERT_OK(CommitDocs("r", 0, {{"c", "a", "1"}}));
  EXPECT_EQ(store_->PutSnapshot("r", RoomSnapshot{"another-epoch", 1, 0, "x"}, 1).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->PutSnapshot("r", RoomSnapshot{head.epoch, 2, 0, "x"}, 1).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->PutSnapshot("r", RoomSnapshot{head.epoch, 1, 0, "x"}, 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->PutSnapshot("r", RoomSnapshot{head.epoch, -1, 0, "x"}, 1).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(std::optional<RoomSnapshot> none, store_->NewestSnapshot("r"));
  EXPECT_FALSE(none.has_value()) << "nothing was written";
}

}  // namespace
}  // namespace roomsync
