// Encoding one SSE frame: done once per committed batch and shared by
// every subscriber of the room, so it bounds fan-out only per batch; the
// numbers show it is not what limits deliveries/s.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "gateway/sse_frames.h"

namespace roomsync {
namespace {

void BM_EncodeChangeFrame(benchmark::State& state) {
  v1::ChangeBatch batch;
  for (int i = 0; i < state.range(0); ++i) {
    v1::Document* doc = batch.add_documents();
    doc->set_id("msg-" + std::to_string(i));
    doc->set_collection("messages");
    doc->set_timestamp(1700000001000 + i);
    doc->set_seq(1000 + i);
    doc->set_json("{\"id\":\"msg-" + std::to_string(i) +
                  "\",\"timestamp\":1700000001000,\"iv\":\"q83vEjRWeJASNFZ4kKvN7w==\","
                  "\"ciphertext\":\"" +
                  std::string(216, 'x') + "\"}");
  }
  std::vector<const v1::Document*> documents;
  for (const v1::Document& doc : batch.documents()) documents.push_back(&doc);
  v1::Checkpoint checkpoint;
  checkpoint.set_seq(1000 + state.range(0) - 1);
  checkpoint.set_epoch("3f9a1c7e5b2d4a60");
  const bool with_collection = state.range(1) != 0;
  size_t bytes = 0;
  for (auto _ : state) {
    std::string frame = EncodeChangeFrame(documents, checkpoint, with_collection);
    bytes += frame.size();
    benchmark::DoNotOptimize(frame);
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_EncodeChangeFrame)->Args({1, 0})->Args({1, 1})->Args({100, 0})->Args({100, 1});

}  // namespace
}  // namespace roomsync
