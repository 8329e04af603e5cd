// A single node (room service on a temp SQLite file + gateway on port 0)
// for gateway tests, plus helpers to read the API's JSON.
#ifndef ROOMSYNC_TESTS_GATEWAY_GATEWAY_TEST_NODE_H_
#define ROOMSYNC_TESTS_GATEWAY_GATEWAY_TEST_NODE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "services/node/node.h"
#include "tests/gateway/http_test_client.h"

namespace roomsync::testing {

// Starts a node; `configure` may change the config first. Aborts the test
// binary if it cannot start (nothing else can be tested then).
std::unique_ptr<Node> StartTestNode(const std::function<void(NodeConfig&)>& configure = {});

struct ParsedCheckpoint {
  int64_t seq = -1;
  std::string epoch;
  std::string digest;  // "" when the checkpoint carries none
  std::string Json() const;
};

// Members of a response body, parsed with simdjson.
ParsedCheckpoint CheckpointOf(const std::string& body, const char* member = "checkpoint");
std::vector<std::string> DocumentIds(const std::string& body);
std::vector<std::string> ConflictIds(const std::string& body);
std::string ErrorCode(const std::string& body);

// Now, in milliseconds since the Unix epoch.
int64_t NowMs();

}  // namespace roomsync::testing

#endif  // ROOMSYNC_TESTS_GATEWAY_GATEWAY_TEST_NODE_H_
