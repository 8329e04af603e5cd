#include "tools/roomsyncctl/durable_object_import.h"

#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/file.h"
#include "base/json_text.h"
#include "roomsync/v1/roomsync.grpc.pb.h"
#include "simdjson.h"
#include "tools/roomsyncctl/commands.h"
#include "tools/roomsyncctl/export_format.h"

namespace roomsync::ctl {

const char kDurableObjectImportSummary[] =
    "Imports a Cloudflare Workers Chat room's history (a JSON dump of the workers-chat-demo "
    "Durable Object's storage.list(): ISO-time key -> {name, message, timestamp}) into ROOM's "
    "\"messages\" collection through the public Pull and Push RPCs. Each message's document id "
    "is derived from its key, and ids already in the room are skipped, so running it again "
    "imports nothing. By default the messages are encrypted as the JS client encrypts them "
    "(AES-256-GCM under the room key, from the room password and the room's meta/kdf salt, or "
    "from a raw 32-byte key; meta/kdf is created if the room has none), so only the room's "
    "members can read them. --plaintext stores {id, timestamp, name, message} readable by the "
    "server. Under --auth jwt the token needs the write grant for ROOM. The dump is checked "
    "whole first: a bad entry imports nothing.";

namespace {

constexpr char kCommand[] = "import-durable-object";
constexpr char kCollection[] = "messages";
constexpr char kMetaCollection[] = "meta";
constexpr char kKdfId[] = "kdf";
// clients/js/src/crypto.js
constexpr char kFormat[] = "roomsync/e2ee/v1";
constexpr char kKeyCheckText[] = "roomsync room key check";
constexpr char kAlgPbkdf2[] = "PBKDF2-SHA-256";
constexpr char kAlgRaw[] = "raw";
constexpr int64_t kKdfIterations = 600'000;
// A meta/kdf asking for more is refused rather than run for hours.
constexpr int64_t kMaxKdfIterations = 100'000'000;
constexpr int kKeyVersion = 1;
// The public push limits (docs/api.md): documents and bytes per push.
constexpr int kMaxPushDocuments = 1000;
constexpr size_t kMaxPushBytes = 8 * 1024 * 1024;
constexpr int kPullPage = 1000;
constexpr size_t kMaxProblemsShown = 20;

const std::vector<OptionSpec>& Options() {
  static const auto* options = new std::vector<OptionSpec>{
      {"room_password_file", true,
       "file holding the room password (one line; its NFC form, as the JS client normalises it)"},
      {"room_key_file", true,
       "file holding the raw 32-byte room key (raw bytes, 64 hex digits or base64)"},
      {"plaintext", false,
       "store the messages as plaintext JSON the server (and its database) can read"},
      {"batch_size", true, "documents per push, 1-1000 (default 1000; also at most 8 MiB)"},
  };
  return *options;
}

// ---- JSON -------------------------------------------------------------------

const char* TypeName(simdjson::dom::element_type type) {
  switch (type) {
    case simdjson::dom::element_type::ARRAY:
      return "an array";
    case simdjson::dom::element_type::OBJECT:
      return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      return "a number";
    case simdjson::dom::element_type::STRING:
      return "a string";
    case simdjson::dom::element_type::BOOL:
      return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "something else";
}

// Parses `text`. simdjson refuses escapes of lone UTF-16 surrogates, which
// JSON.stringify writes (base/json_text.h); they are parsed as U+0000 and
// `masked` says so, so that strings holding one can be refused by name.
absl::StatusOr<simdjson::dom::element> ParseJson(simdjson::dom::parser& parser,
                                                 std::string_view text, bool& masked) {
  std::optional<std::string> copy = MaskLoneSurrogateEscapes(text);
  masked = copy.has_value();
  if (masked) text = *copy;
  simdjson::dom::element root;
  if (auto error = parser.parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(root)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not JSON (", simdjson::error_message(error), ")"));
  }
  return root;
}

// The time of an ISO-8601 key such as "2024-05-01T10:00:00.000Z", which
// may carry a suffix after the Z.
std::optional<int64_t> KeyTimeMs(std::string_view key) {
  const size_t z = key.find('Z');
  if (z == std::string_view::npos) return std::nullopt;
  absl::Time time;
  std::string error;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", std::string(key.substr(0, z + 1)), &time, &error)) {
    return std::nullopt;
  }
  const int64_t ms = absl::ToUnixMillis(time);
  if (ms < 0) return std::nullopt;
  return ms;
}

// Fills `m` from one message object; returns the problem otherwise.
std::optional<std::string> ReadFields(simdjson::dom::object object, bool masked, ChatMessage& m) {
  for (const char* field : {"name", "message"}) {
    simdjson::dom::element value;
    if (object[field].get(value)) return absl::StrCat("has no \"", field, "\"");
    std::string_view text;
    if (value.get(text)) {
      return absl::StrCat("\"", field, "\" must be a string, got ", TypeName(value.type()));
    }
    if (masked && text.find('\0') != std::string_view::npos) {
      return absl::StrCat("\"", field,
                          "\" holds an escape of a lone UTF-16 surrogate (or \\u0000), which has "
                          "no UTF-8 form");
    }
    std::string& slot = std::string_view(field) == "name" ? m.name : m.message;
    slot = std::string(text);
  }
  simdjson::dom::element ts;
  if (object["timestamp"].get(ts)) {
    std::optional<int64_t> from_key = KeyTimeMs(m.key);
    if (!from_key.has_value()) {
      return "has no \"timestamp\" and its key is not an ISO time (2024-05-01T10:00:00.000Z)";
    }
    m.timestamp = *from_key;
    return std::nullopt;
  }
  const std::string want = "\"timestamp\" must be a number (milliseconds since the Unix epoch)";
  switch (ts.type()) {
    case simdjson::dom::element_type::INT64:
      m.timestamp = ts.get_int64().value_unsafe();
      break;
    case simdjson::dom::element_type::UINT64:
      return absl::StrCat(want, ", got ", ts.get_uint64().value_unsafe(), ", which is too large");
    case simdjson::dom::element_type::DOUBLE: {
      const double d = ts.get_double().value_unsafe();
      if (d != std::floor(d) || std::fabs(d) > 9007199254740992.0) {
        return absl::StrCat("\"timestamp\" must be whole milliseconds since the Unix epoch, got ",
                            d);
      }
      m.timestamp = static_cast<int64_t>(d);
      break;
    }
    default:
      return absl::StrCat(want, ", got ", TypeName(ts.type()));
  }
  if (m.timestamp < 0) return absl::StrCat(want, ", got ", m.timestamp, " (negative)");
  return std::nullopt;
}

// One storage value: a message object, or the JSON text of one.
std::optional<std::string> ReadValue(simdjson::dom::element value, bool masked,
                                     simdjson::dom::parser& inner, ChatMessage& m) {
  simdjson::dom::object object;
  if (!value.get(object)) return ReadFields(object, masked, m);
  std::string_view text;
  if (value.get(text)) {
    return absl::StrCat("must be a message {name, message, timestamp} (or its JSON text), got ",
                        TypeName(value.type()));
  }
  bool inner_masked = false;
  absl::StatusOr<simdjson::dom::element> parsed = ParseJson(inner, text, inner_masked);
  if (!parsed.ok()) {
    return absl::StrCat("is a string but not the JSON text of a message: ",
                        parsed.status().message());
  }
  if (parsed->get(object)) {
    return absl::StrCat("is the JSON text of ", TypeName(parsed->type()),
                        ", not of a message {name, message, timestamp}");
  }
  return ReadFields(object, inner_masked, m);
}

// ---- crypto (what clients/js/src/crypto.js does with Web Crypto) --------------

std::string Sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), size);
}

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string bytes(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
    return absl::InternalError("cannot draw random bytes");
  }
  return bytes;
}

absl::StatusOr<std::string> Pbkdf2(std::string_view password, std::string_view salt,
                                   int64_t iterations) {
  std::string key(32, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(key.size()),
                        reinterpret_cast<unsigned char*>(key.data())) != 1) {
    return absl::InternalError("PBKDF2 failed");
  }
  return key;
}

constexpr size_t kTagBytes = 16;

// AES-256-GCM as Web Crypto does it: ciphertext followed by the 16-byte tag.
absl::StatusOr<std::string> Seal(std::string_view key, std::string_view iv, std::string_view aad,
                                 std::string_view plain) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  std::string out(plain.size() + kTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  int total = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(iv.data())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1) {
    return absl::InternalError("AES-GCM encryption failed");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), o + total, &len) != 1) {
    return absl::InternalError("AES-GCM encryption failed");
  }
  total += len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, o + total) != 1) {
    return absl::InternalError("AES-GCM encryption failed");
  }
  out.resize(total + kTagBytes);
  return out;
}

// The plaintext, or nullopt when it does not authenticate.
std::optional<std::string> Open(std::string_view key, std::string_view iv, std::string_view aad,
                                std::string_view sealed) {
  if (sealed.size() < kTagBytes || iv.empty()) return std::nullopt;
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  const std::string_view body = sealed.substr(0, sealed.size() - kTagBytes);
  std::string tag(sealed.substr(body.size()));
  std::string out(body.size() + 16, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(iv.data())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), o, &len, reinterpret_cast<const unsigned char*>(body.data()),
                        static_cast<int>(body.size())) != 1) {
    return std::nullopt;
  }
  int total = len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), o + total, &len) != 1) {
    return std::nullopt;
  }
  out.resize(total + len);
  return out;
}

std::string KeyCheckAad(const std::string& room, const std::string& salt_b64) {
  return absl::StrCat("[", JsonString(kFormat), ",", JsonString(room), ",",
                      JsonString("key-check"), ",", JsonString(salt_b64), "]");
}

// documentAad(room, collection, id, timestamp, false).
std::string DocumentAad(const std::string& room, const std::string& id, int64_t timestamp) {
  return absl::StrCat("[", JsonString(kFormat), ",", JsonString(room), ",",
                      JsonString(kCollection), ",", JsonString(id), ",", timestamp, ",false]");
}

// What the operator gave: a password, or a raw key.
struct Secret {
  bool password = false;
  std::string bytes;
};

absl::StatusOr<Secret> ReadSecret(const ParsedArgs& args) {
  Secret secret;
  if (args.Has("room_password_file")) {
    absl::StatusOr<std::string> text =
        ReadNonEmptyFile(args.Get("room_password_file"), "--room_password_file");
    if (!text.ok()) return text.status();
    std::string password = *std::move(text);
    if (absl::EndsWith(password, "\n")) password.pop_back();
    if (absl::EndsWith(password, "\r")) password.pop_back();
    if (password.empty()) {
      return absl::InvalidArgumentError("--room_password_file holds an empty password");
    }
    if (FirstInvalidUtf8(password).has_value()) {
      return absl::InvalidArgumentError("--room_password_file is not UTF-8 text");
    }
    secret.password = true;
    secret.bytes = std::move(password);
    return secret;
  }
  absl::StatusOr<std::string> raw = ReadNonEmptyFile(args.Get("room_key_file"), "--room_key_file");
  if (!raw.ok()) return raw.status();
  const std::string trimmed(absl::StripAsciiWhitespace(*raw));
  std::string decoded;
  if (trimmed.size() == 64 && std::all_of(trimmed.begin(), trimmed.end(), [](char c) {
        return absl::ascii_isxdigit(static_cast<unsigned char>(c));
      })) {
    secret.bytes = absl::HexStringToBytes(trimmed);
  } else if (absl::Base64Unescape(trimmed, &decoded) && decoded.size() == 32) {
    secret.bytes = std::move(decoded);
  } else if (raw->size() == 32) {
    secret.bytes = *std::move(raw);
  } else {
    return absl::InvalidArgumentError(
        "--room_key_file must hold the 32-byte room key: 32 raw bytes, 64 hex digits or base64");
  }
  return secret;
}

// The room's meta/kdf document (room.js #fetchOrCreateKdf).
struct Kdf {
  std::string alg;
  int64_t iterations = 0;
  std::string salt_b64;
  std::string check_iv_b64;
  std::string check_ciphertext_b64;
};

absl::StatusOr<Kdf> ParseKdf(std::string_view json) {
  simdjson::dom::parser parser;
  bool masked = false;
  absl::StatusOr<simdjson::dom::element> root = ParseJson(parser, json, masked);
  if (!root.ok()) return root.status();
  Kdf kdf;
  std::string_view text;
  simdjson::dom::object check;
  if ((*root)["alg"].get(text)) return absl::DataLossError("meta/kdf has no \"alg\"");
  kdf.alg = std::string(text);
  if ((*root)["salt"].get(text)) return absl::DataLossError("meta/kdf has no \"salt\"");
  kdf.salt_b64 = std::string(text);
  if ((*root)["check"].get(check)) return absl::DataLossError("meta/kdf has no key \"check\"");
  if (check["iv"].get(text)) return absl::DataLossError("meta/kdf's check has no \"iv\"");
  kdf.check_iv_b64 = std::string(text);
  if (check["ciphertext"].get(text)) {
    return absl::DataLossError("meta/kdf's check has no \"ciphertext\"");
  }
  kdf.check_ciphertext_b64 = std::string(text);
  if (kdf.alg == kAlgPbkdf2) {
    int64_t iterations = 0;
    if ((*root)["iterations"].get(iterations)) {
      return absl::DataLossError("meta/kdf has no integer \"iterations\"");
    }
    kdf.iterations = iterations;
  }
  return kdf;
}

// The room key from the operator's secret under `kdf`, checked against
// the room's key check.
absl::StatusOr<std::string> RoomKey(const Secret& secret, const Kdf& kdf, const std::string& room) {
  std::string salt;
  if (!absl::Base64Unescape(kdf.salt_b64, &salt)) {
    return absl::DataLossError("meta/kdf's salt is not base64");
  }
  std::string key;
  if (kdf.alg == kAlgPbkdf2) {
    if (!secret.password) {
      return absl::InvalidArgumentError(
          "the room's key is derived from a password (meta/kdf alg PBKDF2-SHA-256): give "
          "--room_password_file, not --room_key_file");
    }
    if (kdf.iterations < kKdfIterations || kdf.iterations > kMaxKdfIterations) {
      return absl::DataLossError(absl::StrCat("meta/kdf asks for ", kdf.iterations,
                                              " PBKDF2 iterations; the client requires at least ",
                                              kKdfIterations));
    }
    absl::StatusOr<std::string> derived = Pbkdf2(secret.bytes, salt, kdf.iterations);
    if (!derived.ok()) return derived.status();
    key = *std::move(derived);
  } else if (kdf.alg == kAlgRaw) {
    if (secret.password) {
      return absl::InvalidArgumentError(
          "the room uses a raw 32-byte key (meta/kdf alg raw): give --room_key_file, not "
          "--room_password_file");
    }
    key = secret.bytes;
  } else {
    return absl::DataLossError(absl::StrCat("meta/kdf has an unknown alg \"", kdf.alg, "\""));
  }
  std::string iv;
  std::string sealed;
  std::optional<std::string> plain;
  if (absl::Base64Unescape(kdf.check_iv_b64, &iv) &&
      absl::Base64Unescape(kdf.check_ciphertext_b64, &sealed)) {
    plain = Open(key, iv, KeyCheckAad(room, kdf.salt_b64), sealed);
  }
  if (!plain.has_value() || *plain != kKeyCheckText) {
    return absl::PermissionDeniedError(
        absl::StrCat(secret.password ? "wrong room password" : "wrong room key",
                     ": it does not open the key check in the room's meta/kdf document"));
  }
  return key;
}

// A new meta/kdf for `secret` (the first client's, as room.js makes it).
absl::StatusOr<std::pair<Kdf, std::string>> NewKdf(const Secret& secret, const std::string& room) {
  absl::StatusOr<std::string> salt = RandomBytes(16);
  if (!salt.ok()) return salt.status();
  Kdf kdf;
  kdf.alg = secret.password ? kAlgPbkdf2 : kAlgRaw;
  kdf.iterations = secret.password ? kKdfIterations : 0;
  kdf.salt_b64 = absl::Base64Escape(*salt);
  std::string key = secret.bytes;
  if (secret.password) {
    absl::StatusOr<std::string> derived = Pbkdf2(secret.bytes, *salt, kKdfIterations);
    if (!derived.ok()) return derived.status();
    key = *std::move(derived);
  }
  absl::StatusOr<std::string> iv = RandomBytes(12);
  if (!iv.ok()) return iv.status();
  absl::StatusOr<std::string> sealed =
      Seal(key, *iv, KeyCheckAad(room, kdf.salt_b64), kKeyCheckText);
  if (!sealed.ok()) return sealed.status();
  kdf.check_iv_b64 = absl::Base64Escape(*iv);
  kdf.check_ciphertext_b64 = absl::Base64Escape(*sealed);
  return std::make_pair(std::move(kdf), std::move(key));
}

std::string KdfJson(const Kdf& kdf) {
  std::string json =
      absl::StrCat("{\"id\":\"", kKdfId, "\",\"timestamp\":1,\"alg\":", JsonString(kdf.alg));
  if (kdf.alg == kAlgPbkdf2) absl::StrAppend(&json, ",\"iterations\":", kdf.iterations);
  absl::StrAppend(&json, ",\"salt\":", JsonString(kdf.salt_b64),
                  ",\"check\":{\"iv\":", JsonString(kdf.check_iv_b64),
                  ",\"ciphertext\":", JsonString(kdf.check_ciphertext_b64), "}}");
  return json;
}

// ---- the room node ------------------------------------------------------------

struct Node {
  std::unique_ptr<v1::RoomSync::Stub> stub;
  RoomSyncConnection connection;

  void Prepare(grpc::ClientContext& context) const {
    if (!connection.token.empty()) {
      context.AddMetadata("authorization", absl::StrCat("Bearer ", connection.token));
    }
    context.set_deadline(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(connection.timeout));
  }
};

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// Every document of `collection` in `room` (newest states, tombstones too).
absl::StatusOr<std::vector<v1::Document>> PullAll(const Node& node, const std::string& room,
                                                  const std::string& collection, bool keep_json) {
  std::vector<v1::Document> documents;
  v1::Checkpoint checkpoint;
  bool have_checkpoint = false;
  for (;;) {
    v1::PullRequest request;
    request.set_room(room);
    request.set_collection(collection);
    request.set_batch_size(kPullPage);
    if (have_checkpoint) *request.mutable_checkpoint() = checkpoint;
    v1::PullResponse response;
    grpc::ClientContext context;
    node.Prepare(context);
    grpc::Status status = node.stub->Pull(&context, request, &response);
    if (!status.ok()) return FromGrpc(status);
    for (v1::Document& d : *response.mutable_documents()) {
      if (!keep_json) d.clear_json();
      documents.push_back(std::move(d));
    }
    if (response.documents_size() == 0) break;
    checkpoint = response.checkpoint();
    have_checkpoint = true;
  }
  return documents;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "roomsyncctl " << kCommand << ": " << message << "\nusage: " << kDurableObjectImportUsage
      << "\n(see roomsyncctl " << kCommand << " --help)\n";
  return kExitUsage;
}

int Fail(std::ostream& err, const std::string& what, const absl::Status& status) {
  err << "roomsyncctl " << kCommand << ": " << what << ": "
      << absl::StatusCodeToString(status.code()) << ": " << status.message() << "\n";
  return kExitError;
}

// "items[3].newDocumentState: ..." names the key of item 3 of the batch.
std::string NameItem(const std::string& message, const std::vector<const ChatMessage*>& batch) {
  int index = -1;
  if (absl::StartsWith(message, "items[")) {
    const size_t close = message.find(']');
    if (close != std::string::npos) {
      (void)absl::SimpleAtoi(message.substr(6, close - 6), &index);
    }
  }
  if (index < 0 || static_cast<size_t>(index) >= batch.size()) return message;
  return absl::StrCat("key \"", batch[index]->key, "\" (document ", batch[index]->id,
                      "): ", message);
}

}  // namespace

const std::vector<OptionSpec>& DurableObjectImportOptions() { return Options(); }

std::string DocumentIdForKey(std::string_view key) {
  return absl::StrCat("do-", absl::BytesToHexString(Sha256(key).substr(0, 16)));
}

absl::StatusOr<std::vector<ChatMessage>> ParseDurableObjectDump(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::parser inner;
  bool masked = false;
  absl::StatusOr<simdjson::dom::element> root = ParseJson(parser, json, masked);
  if (!root.ok()) return root.status();

  std::vector<std::pair<std::string, simdjson::dom::element>> entries;
  simdjson::dom::object object;
  simdjson::dom::array array;
  if (!root->get(object)) {
    for (auto field : object) entries.emplace_back(std::string(field.key), field.value);
  } else if (!root->get(array)) {
    // Array.from(map) / [...map]: [[key, value], ...].
    size_t index = 0;
    for (simdjson::dom::element item : array) {
      simdjson::dom::array pair;
      std::string_view key;
      if (item.get(pair) || pair.size() != 2 || pair.at(0).get(key)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "not a Durable Object dump: an array must hold [key, value] pairs, but item ", index,
            " is ",
            item.is_array() ? "an array that is not a [string, value] pair"
                            : TypeName(item.type())));
      }
      entries.emplace_back(std::string(key), pair.at(1).value_unsafe());
      ++index;
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a Durable Object dump: expected an object mapping each storage key to a message "
        "(Object.fromEntries(await storage.list())), got ",
        TypeName(root->type())));
  }

  std::vector<ChatMessage> messages;
  std::vector<std::string> problems;
  std::set<std::string> keys;
  for (auto& [key, value] : entries) {
    ChatMessage m;
    m.key = key;
    std::optional<std::string> problem;
    if (masked && key.find('\0') != std::string::npos) {
      problem = "holds an escape of a lone UTF-16 surrogate (or \\u0000), which has no UTF-8 form";
    } else if (!keys.insert(key).second) {
      problem = "appears twice";
    } else {
      problem = ReadValue(value, masked, inner, m);
    }
    if (problem.has_value()) {
      problems.push_back(absl::StrCat("key ", JsonString(key), ": ", *problem));
      continue;
    }
    m.id = DocumentIdForKey(m.key);
    messages.push_back(std::move(m));
  }
  if (!problems.empty()) {
    std::string text = absl::StrCat(problems.size(), " of ", entries.size(),
                                    " entries are not Workers Chat messages:");
    for (size_t i = 0; i < problems.size() && i < kMaxProblemsShown; ++i) {
      absl::StrAppend(&text, "\n  ", problems[i]);
    }
    if (problems.size() > kMaxProblemsShown) {
      absl::StrAppend(&text, "\n  ... and ", problems.size() - kMaxProblemsShown, " more");
    }
    return absl::InvalidArgumentError(text);
  }
  std::sort(messages.begin(), messages.end(),
            [](const ChatMessage& a, const ChatMessage& b) { return a.key < b.key; });
  return messages;
}

int ImportDurableObject(const ParsedArgs& args, const ConnectFunction& connect, std::ostream& out,
                        std::ostream& err) {
  const std::string& room = args.positional[0];
  const std::string& path = args.positional[1];
  const bool plaintext = args.Has("plaintext");
  const int keys_given = args.Has("room_password_file") + args.Has("room_key_file");
  if (plaintext && keys_given > 0) {
    return Usage(err, "--plaintext stores the messages unencrypted: it takes no room key");
  }
  if (keys_given > 1) {
    return Usage(err, "give --room_password_file or --room_key_file, not both");
  }
  if (!plaintext && keys_given == 0) {
    return Usage(err,
                 "refusing to import without a room key: give --room_password_file or "
                 "--room_key_file to encrypt the messages as the room's clients do, or "
                 "--plaintext to store the history as plaintext JSON that the server (and anyone "
                 "with its database or backups) can read");
  }
  int batch_size = kMaxPushDocuments;
  if (args.Has("batch_size") && (!absl::SimpleAtoi(args.Get("batch_size"), &batch_size) ||
                                 batch_size < 1 || batch_size > kMaxPushDocuments)) {
    return Usage(err, "--batch_size must be a number from 1 to 1000");
  }

  std::optional<Secret> secret;
  if (!plaintext) {
    absl::StatusOr<Secret> read = ReadSecret(args);
    if (!read.ok()) return Fail(err, "reading the room key", read.status());
    secret = *std::move(read);
  }

  // The whole dump is read and checked before the node is called.
  std::string dump;
  if (path == "-") {
    std::ostringstream in;
    in << std::cin.rdbuf();
    dump = in.str();
  } else {
    std::ifstream file(path, std::ios::binary);
    if (!file) return Fail(err, path, absl::NotFoundError("cannot open the dump"));
    std::ostringstream in;
    in << file.rdbuf();
    dump = in.str();
  }
  const std::string label = path == "-" ? "stdin" : path;
  absl::StatusOr<std::vector<ChatMessage>> messages = ParseDurableObjectDump(dump);
  if (!messages.ok()) {
    return Fail(err, absl::StrCat(label, ": nothing was imported"), messages.status());
  }
  if (messages->empty()) {
    err << "roomsyncctl " << kCommand << ": " << label
        << " holds no messages (note: JSON.stringify of a Map is {}; dump "
           "Object.fromEntries(await storage.list()))\n";
  }

  absl::StatusOr<RoomSyncConnection> connection = connect();
  if (!connection.ok()) return Fail(err, "connecting", connection.status());
  Node node{v1::RoomSync::NewStub(connection->channel), *std::move(connection)};

  // Which ids the room holds already (live or deleted): those are skipped.
  absl::StatusOr<std::vector<v1::Document>> existing = PullAll(node, room, kCollection, false);
  if (!existing.ok()) return Fail(err, "pulling the room's messages", existing.status());
  std::set<std::string> have;
  for (const v1::Document& d : *existing) have.insert(d.id());
  std::vector<const ChatMessage*> todo;
  for (const ChatMessage& m : *messages) {
    if (!have.contains(m.id)) todo.push_back(&m);
  }
  const size_t skipped = messages->size() - todo.size();

  // The room key: from the room's meta/kdf, which is created (as the first
  // client would) only when there is something to write.
  std::string key;
  std::string encryption = "plaintext";
  bool kdf_created = false;
  if (secret.has_value()) {
    encryption = secret->password ? kAlgPbkdf2 : kAlgRaw;
    absl::StatusOr<std::vector<v1::Document>> meta = PullAll(node, room, kMetaCollection, true);
    if (!meta.ok()) return Fail(err, "pulling the room's meta/kdf", meta.status());
    std::optional<std::string> kdf_json;
    for (const v1::Document& d : *meta) {
      if (d.id() == kKdfId && !d.deleted()) kdf_json = d.json();
    }
    if (!kdf_json.has_value() && !todo.empty()) {
      absl::StatusOr<std::pair<Kdf, std::string>> fresh = NewKdf(*secret, room);
      if (!fresh.ok()) return Fail(err, "making the room's key check", fresh.status());
      v1::PushRequest request;
      request.set_room(room);
      request.set_collection(kMetaCollection);
      request.add_items()->set_new_document_state(KdfJson(fresh->first));
      v1::PushResponse response;
      grpc::ClientContext context;
      node.Prepare(context);
      grpc::Status status = node.stub->Push(&context, request, &response);
      if (!status.ok()) return Fail(err, "creating the room's meta/kdf", FromGrpc(status));
      for (const v1::Document& d : response.conflicts()) {
        if (d.id() == kKdfId && !d.deleted()) kdf_json = d.json();  // another client's won
      }
      if (kdf_json.has_value()) {
        err << "roomsyncctl " << kCommand
            << ": another client created the room's meta/kdf "
               "first; using it\n";
      } else {
        key = fresh->second;
        kdf_created = true;
      }
    }
    if (kdf_json.has_value()) {
      absl::StatusOr<Kdf> kdf = ParseKdf(*kdf_json);
      if (!kdf.ok()) return Fail(err, "reading the room's meta/kdf", kdf.status());
      encryption = kdf->alg;
      absl::StatusOr<std::string> opened = RoomKey(*secret, *kdf, room);
      if (!opened.ok()) return Fail(err, "nothing was imported", opened.status());
      key = *std::move(opened);
    }
  }

  // The documents, in key order, in pushes within the public limits.
  int64_t imported = 0;
  int64_t conflicts = 0;
  std::optional<v1::Checkpoint> checkpoint;
  size_t next = 0;
  while (next < todo.size()) {
    v1::PushRequest request;
    request.set_room(room);
    request.set_collection(kCollection);
    std::vector<const ChatMessage*> batch;
    size_t bytes = 0;
    for (; next < todo.size() && static_cast<int>(batch.size()) < batch_size; ++next) {
      const ChatMessage& m = *todo[next];
      std::string json;
      if (secret.has_value()) {
        const std::string body =
            absl::StrCat("{\"name\":", JsonString(m.name), ",\"text\":", JsonString(m.message),
                         ",\"created\":", m.timestamp, "}");
        absl::StatusOr<std::string> iv = RandomBytes(12);
        if (!iv.ok()) return Fail(err, "encrypting", iv.status());
        absl::StatusOr<std::string> sealed =
            Seal(key, *iv, DocumentAad(room, m.id, m.timestamp), body);
        if (!sealed.ok()) return Fail(err, "encrypting", sealed.status());
        json = absl::StrCat("{\"id\":", JsonString(m.id), ",\"timestamp\":", m.timestamp,
                            ",\"kv\":", kKeyVersion, ",\"iv\":\"", absl::Base64Escape(*iv),
                            "\",\"ciphertext\":\"", absl::Base64Escape(*sealed), "\"}");
      } else {
        json = absl::StrCat("{\"id\":", JsonString(m.id), ",\"timestamp\":", m.timestamp,
                            ",\"name\":", JsonString(m.name),
                            ",\"message\":", JsonString(m.message), "}");
      }
      if (!batch.empty() && bytes + json.size() > kMaxPushBytes) break;
      bytes += json.size();
      request.add_items()->set_new_document_state(std::move(json));
      batch.push_back(&m);
    }
    v1::PushResponse response;
    grpc::ClientContext context;
    node.Prepare(context);
    grpc::Status status = node.stub->Push(&context, request, &response);
    if (!status.ok()) {
      err << "roomsyncctl " << kCommand << ": " << imported << " of " << todo.size()
          << " new messages were imported before this push failed; running the command again "
             "imports the rest\n";
      return Fail(err, "push",
                  absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                               NameItem(status.error_message(), batch)));
    }
    imported += response.accepted();
    conflicts += response.conflicts_size();
    checkpoint = response.checkpoint();
  }

  if (args.Get("output", "table") == "json") {
    out << "{\"room\":" << JsonString(room) << ",\"collection\":\"" << kCollection
        << "\",\"read\":" << messages->size() << ",\"skipped_existing\":" << skipped
        << ",\"imported\":" << imported << ",\"conflicts\":" << conflicts
        << ",\"encryption\":" << JsonString(encryption)
        << ",\"kdf_created\":" << (kdf_created ? "true" : "false") << ",\"checkpoint\":";
    if (checkpoint.has_value()) {
      out << "{\"seq\":" << checkpoint->seq() << ",\"epoch\":" << JsonString(checkpoint->epoch())
          << "}";
    } else {
      out << "null";
    }
    out << "}\n";
  } else {
    out << "read              " << messages->size() << "\n"
        << "skipped_existing  " << skipped << "\n"
        << "imported          " << imported << "\n";
    if (conflicts > 0) out << "conflicts         " << conflicts << "\n";
    out << "room              " << room << " (collection " << kCollection << ")\n"
        << "encryption        "
        << (secret.has_value() ? absl::StrCat(encryption, kdf_created ? " (meta/kdf created)"
                                                                      : " (room's meta/kdf)")
                               : std::string("none: plaintext, readable by the server"))
        << "\n";
    if (checkpoint.has_value()) out << "last_seq          " << checkpoint->seq() << "\n";
  }
  return kExitOk;
}

}  // namespace roomsync::ctl
