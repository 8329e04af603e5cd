// The checkpoint codec: parsed on every pull and stream request,
// written into every pull answer and SSE frame.
#include <benchmark/benchmark.h>

#include <string>

#include "gateway/json_codec.h"

namespace roomsync {
namespace {

void BM_ParseCheckpoint(benchmark::State& state) {
  const std::string text = "{\"seq\":1234567,\"epoch\":\"3f9a1c7e5b2d4a60\"}";
  for (auto _ : state) {
    auto checkpoint = ParseCheckpoint(text);
    if (!checkpoint.ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(checkpoint);
  }
}
BENCHMARK(BM_ParseCheckpoint);

void BM_AppendCheckpoint(benchmark::State& state) {
  v1::Checkpoint checkpoint;
  checkpoint.set_seq(1234567);
  checkpoint.set_epoch("3f9a1c7e5b2d4a60");
  std::string out;
  for (auto _ : state) {
    out.clear();
    AppendCheckpoint(out, checkpoint);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_AppendCheckpoint);

}  // namespace
}  // namespace roomsync
