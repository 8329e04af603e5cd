// libFuzzer target: JwtVerifier::Verify on hostile input. The first byte
// picks what the rest is, so the fuzzer reaches every parser without having
// to learn base64url or HMAC:
//   0: a whole token, verified as sent. It can never be accepted: an
//      accepted token here is a forgery and aborts the run.
//   1: the claims JSON of a token correctly signed with the HS256 secret.
//   2: the header JSON of a correctly signed token (fixed valid claims).
//   3: a JWKS document.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "auth/base64url.h"
#include "auth/jwk_set.h"
#include "auth/jwt_verifier.h"

namespace {

// Must match the secret used to make fuzz/corpus/fuzz_jwt_verify seeds.
constexpr char kSecret[] = "roomsync-fuzz-secret-0123456789abcdef";
// Public keys from RFC 7515 A.3 (P-256) and RFC 8037 A.2 (Ed25519).
constexpr char kJwks[] = R"({"keys":[
  {"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
   "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
  {"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})";
const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

const roomsync::JwtVerifier* verifier = nullptr;

std::string WriteTemp(const std::string& dir, const char* name, std::string_view contents) {
  std::string path = absl::StrCat(dir, "/", name);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

std::string SignHs256(std::string_view header_json, std::string_view payload_json) {
  std::string input = absl::StrCat(roomsync::Base64UrlEncode(header_json), ".",
                                   roomsync::Base64UrlEncode(payload_json));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), kSecret, sizeof(kSecret) - 1,
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &length);
  return absl::StrCat(input, ".",
                      roomsync::Base64UrlEncode({reinterpret_cast<char*>(mac), length}));
}

void CheckAcceptedGrant(const roomsync::Grant& grant) {
  // Whatever the claims, an accepted token has a subject and is unexpired.
  if (grant.subject.empty() || grant.expires + absl::Seconds(30) <= kNow) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir_template[] = "/tmp/roomsync-fuzz-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (dir == nullptr) std::abort();
  roomsync::JwtConfig config;
  config.hs256_secret_file = WriteTemp(dir, "secret", kSecret);
  config.jwks_file = WriteTemp(dir, "jwks.json", kJwks);
  auto created = roomsync::JwtVerifier::Create(config, [] { return kNow; });
  if (!created.ok()) std::abort();
  verifier = created->release();  // lives for the whole process
  // The clock never moves, so the JWKS file is never looked at again.
  std::filesystem::remove_all(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      if (verifier->Verify(rest).ok()) std::abort();  // forged or unsigned token accepted
      break;
    case 1: {
      auto grant = verifier->Verify(SignHs256(R"({"alg":"HS256","typ":"JWT"})", rest));
      if (grant.ok()) CheckAcceptedGrant(*grant);
      break;
    }
    case 2: {
      auto grant = verifier->Verify(
          SignHs256(rest, R"({"sub":"u","exp":1700003600,"rooms":["a"],"scope":"read"})"));
      if (grant.ok()) CheckAcceptedGrant(*grant);
      break;
    }
    case 3:
      (void)roomsync::ParseJwkSet(rest);
      break;
  }
  return 0;
}
