// The room digest's cost per document (storage/document_digest.h): a push
// that inserts one document computes one contribution, one that replaces a
// stored state two. BM_CopyDocument, the copy of the same bytes a push
// makes anyway, is the reference in the same run.
#include <benchmark/benchmark.h>

#include <string>

#include "storage/document_digest.h"

namespace roomsync {
namespace {

// A chat message as the JS client sends it: base64 ciphertext, `bytes` long.
std::string Message(size_t bytes) {
  std::string json = R"({"id":"msg-0123456789","timestamp":1700000001000,"iv":"AAECAwQFBgcICQoL","ciphertext":")";
  json.append(bytes > json.size() + 2 ? bytes - json.size() - 2 : 0, 'Q');
  json += "\"}";
  return json;
}

void BM_DocumentDigest(benchmark::State& state) {
  const std::string json = Message(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(DocumentDigest("messages", "msg-0123456789", 1700000001000, false, json));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}
BENCHMARK(BM_DocumentDigest)->Arg(200)->Arg(1024)->Arg(16384);

void BM_CopyDocument(benchmark::State& state) {
  const std::string json = Message(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    std::string copy = json;
    benchmark::DoNotOptimize(copy);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}
BENCHMARK(BM_CopyDocument)->Arg(200)->Arg(1024)->Arg(16384);

}  // namespace
}  // namespace roomsync
