// `roomsyncctl import-durable-object ROOM FILE`: a Cloudflare Workers Chat
// room's history (the workers-chat-demo ChatRoom Durable Object's
// `storage.list()`, dumped as JSON) into a roomsync room's `messages`
// collection, through the public roomsync.v1 RoomSync API (Pull, Push) of
// a room node. docs/operations.md, "Migrate a Workers Chat room".
//
// The dump is an object mapping each storage key (an ISO time such as
// "2024-05-01T10:00:00.000Z", possibly with a suffix) to the message the
// demo stored: {"name", "message", "timestamp"} as an object, or as the
// JSON text of one (the demo stores JSON.stringify(data)). An array of
// [key, value] pairs (Array.from(map)) is read the same way.
//
// Each message becomes the document id "do-" + the first 32 hex digits of
// SHA-256(key), timestamp = the value's "timestamp" (else the key's time).
// By default it is encrypted as the JS client (clients/js/src/crypto.js)
// encrypts it, under the room key from --room_password_file (PBKDF2 with
// the room's meta/kdf salt) or --room_key_file (32 raw bytes); with
// --plaintext it is stored readable by the server.
#ifndef ROOMSYNC_TOOLS_ROOMSYNCCTL_DURABLE_OBJECT_IMPORT_H_
#define ROOMSYNC_TOOLS_ROOMSYNCCTL_DURABLE_OBJECT_IMPORT_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/roomsyncctl/args.h"

namespace grpc {
class Channel;
}

namespace roomsync::ctl {

// A channel to a room node built from the connection flags (commands.cc
// Connect), with the bearer token and the per-call deadline.
struct RoomSyncConnection {
  std::shared_ptr<grpc::Channel> channel;
  std::string token;
  absl::Duration timeout = absl::Seconds(60);
};
using ConnectFunction = std::function<absl::StatusOr<RoomSyncConnection>()>;

inline constexpr char kDurableObjectImportUsage[] =
    "roomsyncctl import-durable-object ROOM FILE|- (--room_password_file F | --room_key_file F "
    "| --plaintext) [--batch_size N]";
extern const char kDurableObjectImportSummary[];
// The subcommand's own options (the connection options come on top).
const std::vector<OptionSpec>& DurableObjectImportOptions();

// The subcommand. `connect` is called once the dump has been read and
// checked, so a bad dump never reaches the node.
int ImportDurableObject(const ParsedArgs& args, const ConnectFunction& connect, std::ostream& out,
                        std::ostream& err);

// ---- exposed for tests ------------------------------------------------------

struct ChatMessage {
  std::string key;  // the Durable Object storage key
  std::string id;   // DocumentIdForKey(key)
  int64_t timestamp = 0;
  std::string name;
  std::string message;
};

// "do-" + the first 32 lower-case hex digits of SHA-256(key).
std::string DocumentIdForKey(std::string_view key);

// The messages of a dump, sorted by key. kInvalidArgument lists every
// entry that is not a Workers Chat message (or says why the whole text is
// not a dump); nothing is returned then.
absl::StatusOr<std::vector<ChatMessage>> ParseDurableObjectDump(std::string_view json);

}  // namespace roomsync::ctl

#endif  // ROOMSYNC_TOOLS_ROOMSYNCCTL_DURABLE_OBJECT_IMPORT_H_
