// Push bodies as JavaScript clients write them (issue 14): every JSON text
// RFC 8259's grammar allows is accepted, escapes of lone UTF-16 surrogates
// ("\ud83c", what JSON.stringify writes for a sliced emoji) included, and
// forwarded byte for byte; raw bytes that are not UTF-8 are refused with the
// item and the offset; an id must decode to Unicode text.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "base/json_text.h"
#include "gateway/push_body.h"
#include "protocol/document_envelope.h"
#include "roomsync/v1/roomsync.pb.h"

namespace roomsync {
namespace {

std::string Masked(std::string_view json) {
  std::optional<std::string> masked = MaskLoneSurrogateEscapes(json);
  return masked ? *masked : std::string(json);
}

TEST(MaskLoneSurrogateEscapes, MasksOnlyUnpairedSurrogates) {
  // Nothing to mask: no copy.
  EXPECT_EQ(MaskLoneSurrogateEscapes(R"({"a":"b\n\"\\","c":"\u00e9\uFFFF"})"), std::nullopt);
  EXPECT_EQ(MaskLoneSurrogateEscapes(R"(["\ud83c\udf55","\uDBFF\uDFFF"])"), std::nullopt);
  EXPECT_EQ(MaskLoneSurrogateEscapes(""), std::nullopt);
  // An escaped backslash followed by "ud83c" is text, not an escape.
  EXPECT_EQ(MaskLoneSurrogateEscapes(R"(["\\ud83c","\\\\ud83c"])"), std::nullopt);

  EXPECT_EQ(Masked(R"(["\ud83c"])"), R"(["\u0000"])");
  EXPECT_EQ(Masked(R"(["\uDF55x"])"), R"(["\u0000x"])");
  // A reversed pair is two lone surrogates.
  EXPECT_EQ(Masked(R"(["\udf55\ud83c"])"), R"(["\u0000\u0000"])");
  // A high surrogate followed by an escape that is not a low surrogate.
  EXPECT_EQ(Masked(R"(["\ud83c\u0041"])"), R"(["\u0000\u0041"])");
  // Two highs, then a low: the second high pairs with the low.
  EXPECT_EQ(Masked(R"(["\ud83c\ud83c\udf55"])"), R"(["\u0000\ud83c\udf55"])");
  EXPECT_EQ(Masked(R"(["\\\ud83c"])"), R"(["\\\u0000"])");
  // Member names too.
  EXPECT_EQ(Masked(R"({"\ud800":1})"), R"({"\u0000":1})");
  // Truncated or bad escapes are left for the parser to refuse.
  EXPECT_EQ(MaskLoneSurrogateEscapes(R"(["\ud83)"), std::nullopt);
  EXPECT_EQ(MaskLoneSurrogateEscapes(R"(["\ud8zz"])"), std::nullopt);
  EXPECT_EQ(MaskLoneSurrogateEscapes("\\"), std::nullopt);
  EXPECT_EQ(Masked(R"(["\ud83c\u)"), R"(["\u0000\u)");
}

TEST(FirstInvalidUtf8, FindsTheFirstBadByte) {
  EXPECT_EQ(FirstInvalidUtf8(""), std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\x95 \xf4\x8f\xbf\xbf"),
            std::nullopt);
  EXPECT_EQ(FirstInvalidUtf8("ab\xff"), 2u);
  EXPECT_EQ(FirstInvalidUtf8("a\x80"), 1u);              // a lone continuation byte
  EXPECT_EQ(FirstInvalidUtf8("\xc0\x80"), 0u);           // overlong NUL
  EXPECT_EQ(FirstInvalidUtf8("\xc1\xbf"), 0u);           // overlong
  EXPECT_EQ(FirstInvalidUtf8("\xe0\x80\xaf"), 0u);       // overlong
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\xbc"), 1u);      // U+D83C encoded (CESU-8 / WTF-8)
  EXPECT_EQ(FirstInvalidUtf8("\xed\x9f\xbf"), std::nullopt);  // U+D7FF
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);   // above U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\xf0\x8f\xbf\xbf"), 0u);   // overlong
  EXPECT_EQ(FirstInvalidUtf8("\xf5\x80\x80\x80"), 0u);
  EXPECT_EQ(FirstInvalidUtf8("ok\xf0\x9f\x8d"), 2u);     // truncated
  EXPECT_EQ(FirstInvalidUtf8("\xe2\x28\xa1"), 0u);       // bad continuation
}

TEST(ParsePushBody, AcceptsLoneSurrogateEscapesAndKeepsTheirBytes) {
  // The issue's reproduction, with lone surrogates also in nested opaque
  // members, a member name, an RxDB row and its assumedMasterState.
  constexpr std::string_view kBody = R"([
    {"id": "a", "timestamp": 1, "s": "\ud83c"},
    {"id": "b", "timestamp": 2, "m": {"x": ["a\udf55b", {"k": "z\uDBFF"}], "\udc00": "\udf55\ud83c"}},
    {"newDocumentState": {"id": "c", "timestamp": 3, "s": "\ud83c\u0041", "pair": "\ud83c\udf55"},
     "assumedMasterState": {"id": "c", "timestamp": 2, "s": "x\ud83c"}},
    {"id": "d\ud83c\udf55", "timestamp": 4, "t": "\\ud83c"}
  ])";
  v1::PushRequest request;
  absl::Status status = ParsePushBody(kBody, DocumentLimits(), &request);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(request.items_size(), 4);
  EXPECT_EQ(request.items(0).new_document_state(), R"({"id":"a","timestamp":1,"s":"\ud83c"})");
  EXPECT_EQ(request.items(1).new_document_state(),
            R"({"id":"b","timestamp":2,"m":{"x":["a\udf55b",{"k":"z\uDBFF"}],"\udc00":"\udf55\ud83c"}})");
  EXPECT_EQ(request.items(2).new_document_state(),
            R"({"id":"c","timestamp":3,"s":"\ud83c\u0041","pair":"\ud83c\udf55"})");
  EXPECT_EQ(request.items(2).assumed_master_state(), R"({"id":"c","timestamp":2,"s":"x\ud83c"})");
  EXPECT_EQ(request.items(3).new_document_state(),
            R"({"id":"d\ud83c\udf55","timestamp":4,"t":"\\ud83c"})");
}

TEST(ParsePushBody, TheRoomServiceAcceptsWhatTheGatewayForwards) {
  // The room service parses each document again (protocol/): the same
  // rules, so a forwarded document is never refused there.
  v1::PushRequest request;
  ASSERT_TRUE(ParsePushBody(
                  R"([{"newDocumentState":{"id":"d\ud83c\udf55","timestamp":4,"s":"\ud83c"},)"
                  R"("assumedMasterState":{"timestamp":3,"s":"\udf55"}}])",
                  DocumentLimits(), &request)
                  .ok());
  absl::StatusOr<DocumentEnvelope> envelope =
      ParseDocumentEnvelope(request.items(0).new_document_state(), DocumentLimits());
  ASSERT_TRUE(envelope.ok()) << envelope.status();
  // The id is compared on its decoded form: a pair decodes to UTF-8.
  EXPECT_EQ(envelope->id, "d\xf0\x9f\x8d\x95");
  EXPECT_EQ(envelope->timestamp_ms, 4);
  absl::StatusOr<std::optional<AssumedMaster>> master =
      ParseAssumedMaster(request.items(0).assumed_master_state(), DocumentLimits());
  ASSERT_TRUE(master.ok()) << master.status();
  ASSERT_TRUE(master->has_value());
  EXPECT_EQ((*master)->timestamp_ms, 3);
}

TEST(ParsePushBody, RefusesAnIdThatDoesNotDecodeToUnicodeText) {
  for (std::string_view bad : {
           R"([{"id":"a","timestamp":1},{"id":"\ud83c","timestamp":1}])",
           R"([{"id":"a","timestamp":1},{"id":"x\udf55","timestamp":1}])",
           R"([{"id":"a","timestamp":1},{"id":"\udf55\ud83c","timestamp":1}])",
           R"([{"id":"a","timestamp":1},{"id":"\ud83c\u0041","timestamp":1}])",
           R"([{"id":"a","timestamp":1},{"id":"a\u0000","timestamp":1}])",
           R"([{"id":"a","timestamp":1},{"newDocumentState":{"id":"\ud83c","timestamp":1}}])",
       }) {
    v1::PushRequest request;
    absl::Status status = ParsePushBody(bad, DocumentLimits(), &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(status.message(),
              "item 1: document's \"id\" must decode to Unicode text: a lone UTF-16 surrogate "
              "escape (such as \\ud83c) or \\u0000 cannot be part of an id")
        << bad;
    // The room service says the same for gRPC clients.
    std::string_view document = bad.substr(bad.find("},{") + 2);
    document.remove_suffix(1);
    if (document.starts_with(R"({"newDocumentState":)")) continue;
    absl::StatusOr<DocumentEnvelope> envelope = ParseDocumentEnvelope(document, DocumentLimits());
    EXPECT_EQ(envelope.status().code(), absl::StatusCode::kInvalidArgument) << document;
    EXPECT_NE(envelope.status().message().find("surrogate"), absl::string_view::npos);
  }
}

TEST(ParsePushBody, RefusesRawBytesThatAreNotUtf8NamingTheItemAndOffset) {
  struct Case {
    std::string body;
    std::string message;
  };
  const std::string kUtf8Tail =
      " of the body); JSON text must be UTF-8, so encode other bytes, e.g. as base64";
  const std::string kFirst = R"([{"id":"a","timestamp":1,"s":"\ud83c,]}"},)";
  for (const Case& c : {
           Case{kFirst + "{\"id\":\"b\",\"timestamp\":1,\"s\":\"\xff\"}]",
                "item 1: not valid UTF-8 (byte " + std::to_string(kFirst.size() + 29) + kUtf8Tail},
           Case{"[{\"id\":\"\xed\xa0\xbc\",\"timestamp\":1}]",
                "item 0: not valid UTF-8 (byte 8" + kUtf8Tail},
           Case{"[1,2,{\"id\":\"a\",\"timestamp\":1,\"m\":[\"x\",\"\xc0\x80\"]}]",
                "item 2: not valid UTF-8 (byte 39" + kUtf8Tail},
           Case{"[{\"id\":\"a\",\"timestamp\":1}] \xfe",
                "body is not valid UTF-8 (byte 27" + kUtf8Tail},
       }) {
    v1::PushRequest request;
    absl::Status status = ParsePushBody(c.body, DocumentLimits(), &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(ParsePushBody, StillRefusesWhatTheGrammarDoesNot) {
  for (std::string_view bad : {
           R"([{"id":"a","timestamp":1,"s":"\ud83"}])",
           R"([{"id":"a","timestamp":1,"s":"\ud83g"}])",
           R"([{"id":"a","timestamp":1,"s":"\x"}])",
           R"([{"id":"a","timestamp":1,"s":"\ud83c)",
           R"([{"id":"a","timestamp":1,"s":"\ud83c"} \ud83c])",
           "[{\"id\":\"a\",\"timestamp\":1,\"s\":\"\x01\"}]",
       }) {
    v1::PushRequest request;
    absl::Status status = ParsePushBody(bad, DocumentLimits(), &request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(status.message(), "body is not valid JSON") << bad;
  }
}

TEST(ParseDocumentEnvelope, AcceptsLoneSurrogateEscapesInOpaqueMembers) {
  absl::StatusOr<DocumentEnvelope> envelope = ParseDocumentEnvelope(
      R"({"id":"a","timestamp":5,"_deleted":true,"s":"\ud83c","\udc00":["\udbff"]})",
      DocumentLimits());
  ASSERT_TRUE(envelope.ok()) << envelope.status();
  EXPECT_EQ(envelope->id, "a");
  EXPECT_TRUE(envelope->deleted);
  // A member whose name is a lone surrogate is not "_collection" or "id".
  EXPECT_TRUE(ParseDocumentEnvelope(R"({"id":"a","timestamp":5,"\ud800_collection":1})",
                                    DocumentLimits())
                  .ok());
  EXPECT_FALSE(ParseDocumentEnvelope("{\"id\":\"a\",\"timestamp\":5,\"s\":\"\xff\"}",
                                     DocumentLimits())
                   .ok());
}

}  // namespace
}  // namespace roomsync
