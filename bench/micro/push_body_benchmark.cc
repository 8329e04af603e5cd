// The push hot path in the gateway: validating a 100-document push body
// (simdjson over the whole array, then each document's envelope) and the
// envelope of one document alone.
#include <benchmark/benchmark.h>

#include <string>

#include "gateway/push_body.h"
#include "protocol/document_envelope.h"

namespace roomsync {
namespace {

// ~300-byte chat messages: the shape of docs/benchmarks.md's load.
std::string ChatMessage(int i) {
  return "{\"id\":\"msg-" + std::to_string(i) +
         "\",\"timestamp\":1700000001000,\"iv\":\"q83vEjRWeJASNFZ4kKvN7w==\",\"ciphertext\":\"" +
         std::string(216, 'x') + "\"}";
}

std::string PushBody(int documents) {
  std::string body = "[";
  for (int i = 0; i < documents; ++i) {
    if (i > 0) body += ',';
    body += ChatMessage(i);
  }
  return body + "]";
}

void BM_ParsePushBody(benchmark::State& state) {
  const std::string body = PushBody(static_cast<int>(state.range(0)));
  const DocumentLimits limits;
  for (auto _ : state) {
    v1::PushRequest request;
    absl::Status status = ParsePushBody(body, limits, &request);
    if (!status.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(request);
  }
  state.SetBytesProcessed(state.iterations() * body.size());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ParsePushBody)->Arg(1)->Arg(100)->Arg(1000);

void BM_ParseDocumentEnvelope(benchmark::State& state) {
  const std::string doc = ChatMessage(42);
  const DocumentLimits limits;
  for (auto _ : state) {
    auto envelope = ParseDocumentEnvelope(doc, limits);
    if (!envelope.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(envelope);
  }
  state.SetBytesProcessed(state.iterations() * doc.size());
}
BENCHMARK(BM_ParseDocumentEnvelope);

}  // namespace
}  // namespace roomsync
