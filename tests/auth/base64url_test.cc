#include "auth/base64url.h"

#include <gtest/gtest.h>

#include <string>

namespace roomsync {
namespace {

TEST(Base64Url, MatchesRfc4648TestVectorsWithoutPadding) {
  const std::pair<std::string, std::string> vectors[] = {
      {"", ""},          {"f", "Zg"},         {"fo", "Zm8"},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(Base64UrlEncode(bytes), text);
    absl::StatusOr<std::string> decoded = Base64UrlDecode(text);
    ASSERT_TRUE(decoded.ok()) << text;
    EXPECT_EQ(*decoded, bytes);
  }
}

TEST(Base64Url, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t length = 0; length <= all.size(); length += 7) {
    absl::StatusOr<std::string> decoded = Base64UrlDecode(Base64UrlEncode(all.substr(0, length)));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, all.substr(0, length));
  }
}

TEST(Base64Url, RefusesPaddingOtherAlphabetsWhitespaceAndBadLengths) {
  for (const char* text : {"Zg==", "Zm8=", "Zm9v+w", "Zm/v", "Z", "Zm9vY", " Zg", "Zg\n",
                           "Zm9v."}) {
    EXPECT_EQ(Base64UrlDecode(text).status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_FALSE(Base64UrlDecode(std::string("Zg\0A", 4)).ok());
}

TEST(Base64Url, RefusesNonCanonicalTrailingBits) {
  // "Zg" is "f"; "Zh" decodes to the same byte with a stray 1 bit.
  EXPECT_FALSE(Base64UrlDecode("Zh").ok());
  EXPECT_FALSE(Base64UrlDecode("Zm9").ok());
  EXPECT_TRUE(Base64UrlDecode("Zm8").ok());
}

}  // namespace
}  // namespace roomsync
