#include "bench/rxdb_protocol.h"

#include <charconv>

#include "bench/workload.h"

namespace roomsync::bench::rxdb {

void AppendPushRow(std::string& body, std::string_view document) {
  // Splice the flag in before the object's closing brace instead of
  // building a second document type: the members stay exactly those that
  // roomsync is pushed.
  const size_t close = document.rfind('}');
  body += "{\"newDocumentState\":";
  body += document.substr(0, close);
  body += ",\"_deleted\":false},\"assumedMasterState\":null}";
}

bool PushAccepted(std::string_view answer) {
  while (!answer.empty() && (answer.back() == '\n' || answer.back() == ' ')) {
    answer.remove_suffix(1);
  }
  return answer == "[]";
}

std::string PullTarget(std::string_view endpoint_path, const Checkpoint& checkpoint, int limit) {
  char lwt[64];
  const auto [end, ec] = std::to_chars(lwt, lwt + sizeof lwt, checkpoint.lwt);
  std::string target(endpoint_path);
  target += "/pull?lwt=";
  target.append(lwt, ec == std::errc() ? end : lwt);
  target += "&id=";
  target += UrlEncode(checkpoint.id);
  target += "&limit=";
  target += std::to_string(limit);
  return target;
}

bool ParsePull(simdjson::dom::parser& parser, std::string_view answer, size_t* documents,
               Checkpoint* next) {
  simdjson::dom::element root;
  simdjson::dom::array docs;
  std::string_view id;
  double lwt = 0;
  // get_double also takes an integer lwt (the empty checkpoint's 0).
  if (parser.parse(answer.data(), answer.size()).get(root) ||
      root["documents"].get_array().get(docs) || root["checkpoint"]["id"].get_string().get(id) ||
      root["checkpoint"]["lwt"].get_double().get(lwt)) {
    return false;
  }
  *documents = docs.size();
  next->id = std::string(id);
  next->lwt = lwt;
  return true;
}

}  // namespace roomsync::bench::rxdb
