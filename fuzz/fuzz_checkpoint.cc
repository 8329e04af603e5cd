// libFuzzer target: what the gateway reads from a URL before any token is
// checked: the query string (QueryParams, percent-decoding, page sizes) and
// the checkpoint JSON (ParseCheckpoint), which also arrives in the
// Last-Event-ID header. An accepted checkpoint must survive a round trip
// through the JSON the gateway hands out.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/json_codec.h"
#include "gateway/query_params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto checkpoint = roomsync::ParseCheckpoint(text);
  if (checkpoint.ok() && checkpoint->has_value()) {
    std::string again = roomsync::CheckpointJson(**checkpoint);
    auto reparsed = roomsync::ParseCheckpoint(again);
    if (!reparsed.ok() || !reparsed->has_value() || (*reparsed)->seq() != (*checkpoint)->seq() ||
        (*reparsed)->epoch() != (*checkpoint)->epoch()) {
      std::abort();
    }
  }

  auto query = roomsync::QueryParams::Parse(text);
  if (query.ok()) {
    auto page = query->PageSize("batchSize", 100);
    if (page.ok() && (*page < 1 || *page > 1000)) std::abort();
    if (const std::string* value = query->Find("checkpoint")) {
      (void)roomsync::ParseCheckpoint(*value);
    }
  }
  (void)roomsync::PercentDecode(text, false);
  return 0;
}
