// RoomSync.Watch (roomsync.proto): many rooms' subscriptions on one call,
// driven over a real loopback gRPC connection to a RoomServer on SQLite.
//   - rooms subscribed on one call each get Live, then their own changes,
//     tagged with their room; a subscribe with a checkpoint catches up
//     first; unsubscribe is answered, and no event of the room follows;
//     a bad room name is refused alone;
//   - one room whose queue fills while the caller does not read gets
//     Resync alone: another room's change still arrives after it;
//   - batching: the node announces that it reads batched requests and
//     applies a batch's requests in order; it batches events only to a
//     caller that announced it reads them, and never to one that did not.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "protocol/error_codes.h"
#include "tests/room/room_client.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

using WatchStream = grpc::ClientReaderWriter<v1::WatchRequest, v1::WatchEvent>;

void Subscribe(WatchStream& stream, const std::string& room,
               const v1::Checkpoint* from = nullptr) {
  v1::WatchRequest request;
  request.mutable_subscribe()->set_room(room);
  if (from != nullptr) *request.mutable_subscribe()->mutable_checkpoint() = *from;
  ASSERT_TRUE(stream.Write(request));
}

v1::WatchEvent Next(WatchStream& stream) {
  v1::WatchEvent event;
  EXPECT_TRUE(stream.Read(&event)) << "the call ended";
  return event;
}

std::string IdsOf(const v1::WatchEvent& event) {
  std::string ids;
  for (const v1::Document& doc : event.changes().documents()) ids += (ids.empty() ? "" : ",") + doc.id();
  return ids;
}

TEST(RoomWatch, CarriesManyRoomsOnOneCall) {
  auto server = StartTestServer(TempSqliteUrl());
  auto client = RoomClient::Connect(server->grpc_port());
  grpc::ClientContext context;
  std::unique_ptr<WatchStream> stream = client->stub().Watch(&context);
  const std::vector<std::string> rooms = {"w1", "w2", "w3", "w4", "w5"};
  for (const std::string& room : rooms) Subscribe(*stream, room);
  std::map<std::string, v1::Checkpoint> live;
  for (size_t i = 0; i < rooms.size(); ++i) {
    v1::WatchEvent event = Next(*stream);
    ASSERT_TRUE(event.has_live()) << event.DebugString();
    live[event.room()] = event.live().checkpoint();
  }
  ASSERT_EQ(live.size(), rooms.size());

  const int64_t t = NowMs();
  for (const std::string& room : rooms) {
    ASSERT_TRUE(client->Push(room, "messages", {DocJson(room + "-a", t, "x")}).status.ok());
  }
  std::map<std::string, std::string> changes;
  for (size_t i = 0; i < rooms.size(); ++i) {
    v1::WatchEvent event = Next(*stream);
    ASSERT_TRUE(event.has_changes()) << event.DebugString();
    changes[event.room()] = IdsOf(event);
  }
  for (const std::string& room : rooms) EXPECT_EQ(changes[room], room + "-a");

  // Subscribing a room again with a checkpoint replaces its subscription:
  // catch-up from the checkpoint, then Live.
  v1::Checkpoint beginning = live["w1"];
  beginning.set_seq(0);
  Subscribe(*stream, "w1", &beginning);
  v1::WatchEvent caught_up = Next(*stream);
  EXPECT_EQ(caught_up.room(), "w1");
  EXPECT_EQ(IdsOf(caught_up), "w1-a");
  v1::WatchEvent relive = Next(*stream);
  EXPECT_EQ(relive.room(), "w1");
  EXPECT_TRUE(relive.has_live()) << relive.DebugString();

  // Unsubscribed: answered, and the room's next change is not sent.
  v1::WatchRequest unsubscribe;
  unsubscribe.mutable_unsubscribe()->set_room("w2");
  ASSERT_TRUE(stream->Write(unsubscribe));
  v1::WatchEvent answered = Next(*stream);
  EXPECT_EQ(answered.room(), "w2");
  EXPECT_TRUE(answered.has_unsubscribed()) << answered.DebugString();
  ASSERT_TRUE(client->Push("w2", "messages", {DocJson("w2-b", t, "x")}).status.ok());
  ASSERT_TRUE(client->Push("w3", "messages", {DocJson("w3-b", t, "x")}).status.ok());
  v1::WatchEvent after = Next(*stream);
  EXPECT_EQ(after.room(), "w3") << "no event of the unsubscribed room";
  EXPECT_EQ(IdsOf(after), "w3-b");

  // A bad name is refused alone; the call goes on.
  Subscribe(*stream, "not a room!");
  v1::WatchEvent refused = Next(*stream);
  EXPECT_EQ(refused.room(), "not a room!");
  ASSERT_TRUE(refused.has_refused()) << refused.DebugString();
  EXPECT_EQ(refused.refused().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  ASSERT_TRUE(client->Push("w4", "messages", {DocJson("w4-b", t, "x")}).status.ok());
  EXPECT_EQ(IdsOf(Next(*stream)), "w4-b");

  stream->WritesDone();
  v1::WatchEvent rest;
  while (stream->Read(&rest)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(RoomWatch, ARoomWhoseQueueFillsGetsResyncAloneAndTheOthersGoOn) {
  RoomServiceConfig service;
  service.max_subscriber_queue = 4;
  auto server = StartTestServer(TempSqliteUrl(), service);
  auto client = RoomClient::Connect(server->grpc_port());
  grpc::ClientContext context;
  std::unique_ptr<WatchStream> stream = client->stub().Watch(&context);
  Subscribe(*stream, "busy");
  Subscribe(*stream, "quiet");
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Next(*stream).has_live());
  // Not reading: once gRPC's flow-control windows are full, the busy
  // room's events queue on the node, past its bound of 4.
  const std::string body(16 * 1024, 'x');
  const int64_t t = NowMs();
  constexpr int kPushes = 1500;  // 24 MiB: far beyond any window
  for (int i = 0; i < kPushes; ++i) {
    ASSERT_TRUE(client->Push("busy", "messages", {DocJson("b" + std::to_string(i), t, body)}).status.ok());
  }
  ASSERT_TRUE(client->Push("quiet", "messages", {DocJson("q", t, "x")}).status.ok());
  int busy_changes = 0;
  bool busy_resynced = false;
  bool quiet_seen = false;
  while (!quiet_seen) {
    v1::WatchEvent event = Next(*stream);
    if (event.event_case() == v1::WatchEvent::EVENT_NOT_SET) break;  // call ended
    if (event.room() == "busy") {
      EXPECT_FALSE(busy_resynced) << "nothing of the room after its Resync";
      if (event.has_changes()) ++busy_changes;
      if (event.has_resync()) busy_resynced = true;
    } else if (event.room() == "quiet") {
      EXPECT_EQ(IdsOf(event), "q");
      quiet_seen = true;
    }
  }
  EXPECT_TRUE(busy_resynced) << busy_changes << " of " << kPushes << " changes, no Resync";
  EXPECT_LT(busy_changes, kPushes);
  EXPECT_TRUE(quiet_seen) << "the quiet room's change came after the busy room's Resync";
  context.TryCancel();
}

// Whether the node's initial metadata announces batching.
bool NodeReadsBatches(grpc::ClientContext& context) {
  const auto& metadata = context.GetServerInitialMetadata();
  const grpc::string_ref key(kWatchFeaturesMetadataKey.data(), kWatchFeaturesMetadataKey.size());
  for (auto [it, end] = metadata.equal_range(key); it != end; ++it) {
    if (AnnouncesFeature(std::string_view(it->second.data(), it->second.size()),
                         kWatchBatchFeature)) {
      return true;
    }
  }
  return false;
}

struct BatchOutcome {
  std::map<std::string, std::vector<std::string>> events_by_room;  // event kinds in order
  int batch_messages = 0;
};

// One batch of 200 live-only subscribes of rooms already open on the node
// (their Live events are made back to back), then a subscribe and an
// unsubscribe of the same new room, then a bad name: read until every
// room has answered.
BatchOutcome SubscribeInOneBatch(RoomClient& client, bool announce) {
  grpc::ClientContext context;
  if (announce) {
    context.AddMetadata(std::string(kWatchFeaturesMetadataKey), std::string(kWatchBatchFeature));
  }
  std::unique_ptr<WatchStream> stream = client.stub().Watch(&context);
  stream->WaitForInitialMetadata();
  EXPECT_TRUE(NodeReadsBatches(context));
  v1::WatchRequest request;
  v1::WatchRequestBatch* batch = request.mutable_batch();
  for (int i = 0; i < 200; ++i) {
    batch->add_requests()->mutable_subscribe()->set_room("open-" + std::to_string(i));
  }
  batch->add_requests()->mutable_subscribe()->set_room("gone");
  batch->add_requests()->mutable_unsubscribe()->set_room("gone");
  batch->add_requests()->mutable_subscribe()->set_room("not a room!");
  EXPECT_TRUE(stream->Write(request));
  BatchOutcome outcome;
  size_t answered = 0;
  auto record = [&](const v1::WatchEvent& event) {
    std::vector<std::string>& kinds = outcome.events_by_room[event.room()];
    if (kinds.empty()) ++answered;
    kinds.push_back(event.has_live()           ? "live"
                    : event.has_unsubscribed() ? "unsubscribed"
                    : event.has_refused()      ? "refused"
                                               : event.DebugString());
  };
  while (answered < 202) {
    v1::WatchEvent event;
    if (!stream->Read(&event)) {
      ADD_FAILURE() << "the call ended after " << answered << " rooms";
      break;
    }
    if (event.has_batch()) {
      ++outcome.batch_messages;
      EXPECT_TRUE(event.room().empty());
      for (const v1::WatchEvent& e : event.batch().events()) record(e);
    } else {
      record(event);
    }
  }
  context.TryCancel();
  return outcome;
}

TEST(RoomWatch, AppliesABatchInOrderAndBatchesEventsOnlyForACallerThatReadsThem) {
  auto server = StartTestServer(TempSqliteUrl());
  auto client = RoomClient::Connect(server->grpc_port());
  const int64_t t = NowMs();
  for (int i = 0; i < 200; ++i) {
    const std::string room = "open-" + std::to_string(i);
    ASSERT_TRUE(client->Push(room, "messages", {DocJson(room, t, "x")}).status.ok());
  }
  for (bool announce : {true, false}) {
    SCOPED_TRACE(announce ? "the caller reads batches" : "an older caller");
    BatchOutcome outcome = SubscribeInOneBatch(*client, announce);
    for (int i = 0; i < 200; ++i) {
      EXPECT_EQ(outcome.events_by_room["open-" + std::to_string(i)], std::vector<std::string>{"live"});
    }
    // The unsubscribe after the subscribe in the same batch ended it
    // before it went live.
    EXPECT_EQ(outcome.events_by_room["gone"], std::vector<std::string>{"unsubscribed"});
    EXPECT_EQ(outcome.events_by_room["not a room!"], std::vector<std::string>{"refused"});
    if (announce) {
      EXPECT_GT(outcome.batch_messages, 0) << "202 events queued at once, none batched";
    } else {
      EXPECT_EQ(outcome.batch_messages, 0) << "a batch sent to a caller that cannot read it";
    }
  }
}

}  // namespace
}  // namespace roomsync::testing
