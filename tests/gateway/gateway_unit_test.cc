// Unit tests of the gateway's parsers and encoders (no sockets).
#include <gtest/gtest.h>

#include "gateway/api_response.h"
#include "gateway/json_codec.h"
#include "gateway/push_body.h"
#include "protocol/error_codes.h"
#include "gateway/query_params.h"
#include "gateway/routes.h"
#include "gateway/sse_frames.h"

namespace roomsync {
namespace {

TEST(ParseCheckpoint, AcceptsTheServersFormAndTheBeginning) {
  auto checkpoint = ParseCheckpoint(R"({"seq":42,"epoch":"e1"})");
  ASSERT_TRUE(checkpoint.ok());
  ASSERT_TRUE(checkpoint->has_value());
  EXPECT_EQ((*checkpoint)->seq(), 42);
  EXPECT_EQ((*checkpoint)->epoch(), "e1");
  for (std::string_view beginning : {"", "null", R"({"seq":0,"epoch":""})"}) {
    auto none = ParseCheckpoint(beginning);
    ASSERT_TRUE(none.ok()) << beginning;
    EXPECT_FALSE(none->has_value()) << beginning;
  }
}

// A pull of a compacted room adds "compacted" (docs/api.md, Compaction);
// it round-trips, and a checkpoint without it reads as 0 and prints as
// before.
TEST(ParseCheckpoint, KeepsTheCompactedMarkerAndPrintsItOnlyWhenSet) {
  auto marked = ParseCheckpoint(R"({"seq":4,"epoch":"e1","compacted":15})");
  ASSERT_TRUE(marked.ok());
  ASSERT_TRUE(marked->has_value());
  EXPECT_EQ((*marked)->compacted(), 15);
  EXPECT_EQ(CheckpointJson(**marked), R"({"seq":4,"epoch":"e1","compacted":15})");
  auto plain = ParseCheckpoint(R"({"seq":4,"epoch":"e1"})");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ((*plain)->compacted(), 0);
  EXPECT_EQ(CheckpointJson(**plain), R"({"seq":4,"epoch":"e1"})");
  for (std::string_view bad : {R"({"seq":4,"epoch":"e1","compacted":-1})",
                               R"({"seq":4,"epoch":"e1","compacted":"15"})",
                               R"({"seq":4,"epoch":"e1","compacted":1.5})"}) {
    EXPECT_FALSE(ParseCheckpoint(bad).ok()) << bad;
  }
}

TEST(ParseCheckpoint, RefusesAnythingElse) {
  for (std::string_view bad : {"{", "42", "[]", R"({"seq":1})", R"({"epoch":"e"})",
                               R"({"seq":-1,"epoch":"e"})", R"({"seq":"1","epoch":"e"})",
                               R"({"seq":1.5,"epoch":"e"})", R"({"seq":3,"epoch":""})"}) {
    EXPECT_FALSE(ParseCheckpoint(bad).ok()) << bad;
  }
}

TEST(AppendDocument, SplicesTheCollectionInFrontOfTheStoredBytes) {
  v1::Document document;
  document.set_collection("messages");
  document.set_json(R"({"id":"a","timestamp":1,"x":"\u00e9"})");
  std::string out;
  AppendDocument(out, document, true);
  EXPECT_EQ(out, R"({"_collection":"messages","id":"a","timestamp":1,"x":"\u00e9"})");
  out.clear();
  AppendDocument(out, document, false);
  EXPECT_EQ(out, document.json());
  document.set_json("{}");
  out.clear();
  AppendDocument(out, document, true);
  EXPECT_EQ(out, R"({"_collection":"messages"})");
}

TEST(EncodeChangeFrame, IsOneSseEventWithTheCheckpointAsId) {
  v1::Document document;
  document.set_json(R"({"id":"a","timestamp":1})");
  v1::Checkpoint checkpoint;
  checkpoint.set_seq(7);
  checkpoint.set_epoch("e\n");  // escaped: the id line stays one line
  const v1::Document* documents[] = {&document};
  EXPECT_EQ(EncodeChangeFrame(documents, checkpoint, false),
            "id: {\"seq\":7,\"epoch\":\"e\\n\"}\n"
            "data: {\"documents\":[{\"id\":\"a\",\"timestamp\":1}],"
            "\"checkpoint\":{\"seq\":7,\"epoch\":\"e\\n\"}}\n\n");
}

// The room digest covers every collection (docs/api.md, Room digest): a
// frame or body of one collection must not hand it on, and a checkpoint a
// client sends back with it reads as the same position.
TEST(EncodeChangeFrame, CarriesTheDigestOnlyForEveryCollection) {
  v1::Document document;
  document.set_collection("messages");
  document.set_json(R"({"id":"a","timestamp":1})");
  v1::Checkpoint checkpoint;
  checkpoint.set_seq(7);
  checkpoint.set_epoch("e");
  checkpoint.set_digest(0x5561ff1588cca6d2);
  const v1::Document* documents[] = {&document};
  EXPECT_EQ(EncodeChangeFrame(documents, checkpoint, true),
            "id: {\"seq\":7,\"epoch\":\"e\",\"digest\":\"5561ff1588cca6d2\"}\n"
            "data: {\"documents\":[{\"_collection\":\"messages\",\"id\":\"a\",\"timestamp\":1}],"
            "\"checkpoint\":{\"seq\":7,\"epoch\":\"e\",\"digest\":\"5561ff1588cca6d2\"}}\n\n");
  EXPECT_EQ(EncodeChangeFrame(documents, checkpoint, false),
            "id: {\"seq\":7,\"epoch\":\"e\"}\n"
            "data: {\"documents\":[{\"id\":\"a\",\"timestamp\":1}],"
            "\"checkpoint\":{\"seq\":7,\"epoch\":\"e\"}}\n\n");
  checkpoint.set_digest(1);
  EXPECT_EQ(CheckpointJson(checkpoint), R"({"seq":7,"epoch":"e","digest":"0000000000000001"})");
  auto parsed = ParseCheckpoint(R"({"seq":7,"epoch":"e","digest":"5561ff1588cca6d2"})");
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->has_value());
  EXPECT_EQ((*parsed)->seq(), 7);
  EXPECT_FALSE((*parsed)->has_digest()) << "a client's digest is not the server's business";
}

TEST(ParsePushBody, KeepsEachDocumentsBytesMinusWhitespace) {
  v1::PushRequest request;
  ASSERT_TRUE(ParsePushBody(R"([ {"id": "a", "timestamp": 1, "s": "x y\"}", "n": 1.0e3},
      {"newDocumentState": {"id":"b","timestamp":2,"_deleted":true},
       "assumedMasterState": {"id":"b","timestamp":1}},
      {"newDocumentState": {"id":"c","timestamp":3}, "assumedMasterState": null} ])",
                            DocumentLimits(), &request)
                  .ok());
  ASSERT_EQ(request.items_size(), 3);
  EXPECT_EQ(request.items(0).new_document_state(),
            R"({"id":"a","timestamp":1,"s":"x y\"}","n":1.0e3})");
  EXPECT_FALSE(request.items(0).has_assumed_master_state());
  EXPECT_EQ(request.items(1).new_document_state(), R"({"id":"b","timestamp":2,"_deleted":true})");
  EXPECT_EQ(request.items(1).assumed_master_state(), R"({"id":"b","timestamp":1})");
  EXPECT_EQ(request.items(2).new_document_state(), R"({"id":"c","timestamp":3})");
  EXPECT_FALSE(request.items(2).has_assumed_master_state());
}

TEST(ParsePushBody, RefusesTheWholeBatchForOneBadItem) {
  DocumentLimits limits;
  limits.max_documents_per_push = 2;
  limits.max_document_bytes = 64;
  for (std::string_view bad : {
           "", "{}", "[", R"([1])", R"([{"id":"a"}])", R"([{"id":"","timestamp":1}])",
           R"([{"id":"a","timestamp":1},{"id":"b","timestamp":"2"}])",
           R"([{"id":"a","timestamp":1,"_collection":"m"}])",
           R"([{"id":"a","timestamp":1,"_deleted":"yes"}])",
           R"([{"newDocumentState":{"id":"a","timestamp":1},"assumedMasterState":3}])",
           R"([{"id":"a","timestamp":1},{"id":"b","timestamp":1},{"id":"c","timestamp":1}])",
           R"([{"id":"a","timestamp":1,"pad":"0123456789012345678901234567890123456789012345"}])",
           "[{\"id\":\"a\",\"timestamp\":1,\"x\":\"\xc3\x28\"}]"}) {
    v1::PushRequest request;
    absl::Status status = ParsePushBody(bad, limits, &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  // Too many items and too large a document are payload_too_large (413),
  // the rest invalid_argument (400).
  v1::PushRequest request;
  EXPECT_EQ(ErrorCodeOf(ParsePushBody(
                R"([{"id":"a","timestamp":1},{"id":"b","timestamp":1},{"id":"c","timestamp":1}])",
                limits, &request)),
            "payload_too_large");
  EXPECT_EQ(ErrorCodeOf(ParsePushBody(
                R"([{"id":"a","timestamp":1,"pad":"0123456789012345678901234567890123456789012345"}])",
                limits, &request)),
            "payload_too_large");
  EXPECT_EQ(ErrorCodeOf(ParsePushBody(R"([{"id":"a"}])", limits, &request)), "invalid_argument");
}

TEST(QueryParams, DecodesAndBoundsPageSizes) {
  auto query = QueryParams::Parse("a=1&checkpoint=%7B%22seq%22%3A1%7D&b=x+y&empty=&flag");
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(*query->Find("checkpoint"), R"({"seq":1})");
  EXPECT_EQ(*query->Find("b"), "x y");
  EXPECT_EQ(*query->Find("empty"), "");
  EXPECT_EQ(query->Find("missing"), nullptr);
  EXPECT_EQ(*query->PageSize("a", 100), 1);
  EXPECT_EQ(*query->PageSize("missing", 100), 100);
  EXPECT_FALSE(QueryParams::Parse("a=%4").ok());
  EXPECT_FALSE(QueryParams::Parse("a=%G0").ok());
  EXPECT_FALSE(QueryParams::Parse("n=1001")->PageSize("n", 1).ok());
  EXPECT_FALSE(QueryParams::Parse("n=-1")->PageSize("n", 1).ok());
}

TEST(MatchRoute, ServesBothPathPrefixes) {
  Route v1 = MatchRoute("/v1/rooms/lobby/replicate/pull/stream");
  EXPECT_EQ(v1.kind, RouteKind::kStream);
  EXPECT_EQ(v1.room, "lobby");
  EXPECT_EQ(v1.pattern, "/v1/rooms/{room}/replicate/pull/stream");
  Route api = MatchRoute("/api/room/lobby/replicate/push");
  EXPECT_EQ(api.kind, RouteKind::kPush);
  EXPECT_EQ(api.method, "POST");
  EXPECT_EQ(MatchRoute("/v1/rooms//history").kind, RouteKind::kNotFound);
  EXPECT_EQ(MatchRoute("/v1/rooms/a/b/history").kind, RouteKind::kNotFound);
  EXPECT_EQ(MatchRoute("/v1/rooms/a/replicate").kind, RouteKind::kNotFound);
}

TEST(MatchRoute, ServesSnapshotsAndTheyWrite) {
  Route put = MatchRoute("/v1/rooms/lobby/snapshots");
  EXPECT_EQ(put.kind, RouteKind::kSnapshotPut);
  EXPECT_EQ(put.method, "POST");
  EXPECT_EQ(put.room, "lobby");
  Route get = MatchRoute("/api/room/lobby/snapshots/latest");
  EXPECT_EQ(get.kind, RouteKind::kSnapshotGet);
  EXPECT_EQ(get.method, "GET");
  EXPECT_EQ(get.pattern, "/api/room/{room}/snapshots/latest");
  EXPECT_EQ(MatchRoute("/v1/rooms/lobby/snapshots/newest").kind, RouteKind::kNotFound);
  EXPECT_TRUE(RouteWrites(RouteKind::kSnapshotPut));
  EXPECT_TRUE(RouteWrites(RouteKind::kPush));
  EXPECT_FALSE(RouteWrites(RouteKind::kSnapshotGet));
  EXPECT_FALSE(RouteWrites(RouteKind::kPull));
}

TEST(HttpStatusOf, MapsStatusCodesAsTheProtocolSays) {
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kAborted), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kFailedPrecondition), 503);
  // A room node that shuts down mid-call cancels it: retryable.
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kCancelled), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kDeadlineExceeded), 504);
  ApiResponse limited = ErrorResponse(429, "rate_limited", "slow \"down\"");
  EXPECT_EQ(limited.retry_after_seconds, 1);
  EXPECT_EQ(limited.body, R"({"error":{"code":"rate_limited","message":"slow \"down\""}})");
}

}  // namespace
}  // namespace roomsync
