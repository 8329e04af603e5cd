#include "storage/document_digest.h"

#include <openssl/evp.h>

#include <array>

#include "absl/strings/str_format.h"
#include "storage/store.h"

namespace roomsync {
namespace {

void PutBigEndian(EVP_MD_CTX* ctx, uint64_t value, int bytes) {
  std::array<unsigned char, 8> out;
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<unsigned char>(value >> (8 * (bytes - 1 - i)));
  EVP_DigestUpdate(ctx, out.data(), bytes);
}

// One context per thread, reused: no allocation per document, and this runs
// once per written document (and once per state it replaces).
struct DigestContext {
  DigestContext() : ctx(EVP_MD_CTX_new()) {}
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
  EVP_MD_CTX* ctx;
};

}  // namespace

uint64_t DocumentDigest(std::string_view collection, std::string_view id, int64_t timestamp_ms,
                        bool deleted, std::string_view json) {
  if (deleted) return 0;
  thread_local DigestContext context;
  EVP_MD_CTX* ctx = context.ctx;
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  PutBigEndian(ctx, collection.size(), 4);
  EVP_DigestUpdate(ctx, collection.data(), collection.size());
  PutBigEndian(ctx, id.size(), 4);
  EVP_DigestUpdate(ctx, id.data(), id.size());
  PutBigEndian(ctx, static_cast<uint64_t>(timestamp_ms), 8);
  EVP_DigestUpdate(ctx, json.data(), json.size());
  std::array<unsigned char, EVP_MAX_MD_SIZE> hash;
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, hash.data(), &length);
  uint64_t digest = 0;
  for (int i = 0; i < 8; ++i) digest = (digest << 8) | hash[i];
  return digest;
}

uint64_t DocumentDigest(const StoredDocument& document) {
  return DocumentDigest(document.collection, document.id, document.timestamp_ms, document.deleted,
                        document.json);
}

std::string FormatDigest(uint64_t digest) { return absl::StrFormat("%016x", digest); }

}  // namespace roomsync
