#include "tests/gateway/gateway_test_node.h"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/temp_dir.h"

namespace roomsync::testing {
namespace {

simdjson::dom::element Parse(const std::string& body) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root)) return {};
  return root;
}

std::vector<std::string> IdsOf(const std::string& body, const char* member) {
  std::vector<std::string> ids;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::array documents;
  if (parser.parse(body)[member].get_array().get(documents)) return ids;
  for (simdjson::dom::element document : documents) {
    std::string_view id;
    if (!document["id"].get_string().get(id)) ids.emplace_back(id);
  }
  return ids;
}

}  // namespace

std::unique_ptr<Node> StartTestNode(const std::function<void(NodeConfig&)>& configure) {
  NodeConfig config;
  config.room.store_url = TempSqliteUrl();
  config.room.grpc_address = "";
  config.room.metrics_address = "";
  config.gateway.http_address = "127.0.0.1:0";
  if (configure) configure(config);
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(config);
  if (!node.ok()) {
    std::fprintf(stderr, "cannot start the node: %s\n", std::string(node.status().message()).c_str());
    std::abort();
  }
  return *std::move(node);
}

std::string ParsedCheckpoint::Json() const {
  std::string json = absl::StrCat(R"({"seq":)", seq, R"(,"epoch":")", epoch, "\"");
  if (!digest.empty()) absl::StrAppend(&json, R"(,"digest":")", digest, "\"");
  return json + "}";
}

ParsedCheckpoint CheckpointOf(const std::string& body, const char* member) {
  ParsedCheckpoint checkpoint;
  simdjson::dom::element root = Parse(body);
  int64_t seq = -1;
  std::string_view epoch;
  if (!root[member]["seq"].get_int64().get(seq)) checkpoint.seq = seq;
  if (!root[member]["epoch"].get_string().get(epoch)) checkpoint.epoch = std::string(epoch);
  std::string_view digest;
  if (!root[member]["digest"].get_string().get(digest)) checkpoint.digest = std::string(digest);
  return checkpoint;
}

std::vector<std::string> DocumentIds(const std::string& body) { return IdsOf(body, "documents"); }
std::vector<std::string> ConflictIds(const std::string& body) { return IdsOf(body, "conflicts"); }

std::string ErrorCode(const std::string& body) {
  std::string_view code;
  if (Parse(body)["error"]["code"].get_string().get(code)) return "";
  return std::string(code);
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace roomsync::testing
