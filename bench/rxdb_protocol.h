// The wire format of rxdb-server's replication endpoint (rxdb-server 15,
// plugins/server/endpoint-replication.js), so that the push and pull
// scenarios can run unchanged against the JavaScript reference of
// docs/benchmarks.md (bench/rxdb/server.mjs). The endpoint URL is
// <server>/<name>/<schema version>, e.g. http://127.0.0.1:8095/messages/0:
//
//   POST <endpoint>/push  body [{"newDocumentState":…,"assumedMasterState":…}]
//                         answer: the conflicting master states, [] if none
//   GET  <endpoint>/pull?lwt=<lwt>&id=<id>&limit=<n>
//                         answer: {"documents":[…],"checkpoint":{"id","lwt"}}
//
// rxdb-server has no rooms: one collection (endpoint) is one room.
#ifndef ROOMSYNC_BENCH_RXDB_PROTOCOL_H_
#define ROOMSYNC_BENCH_RXDB_PROTOCOL_H_

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace roomsync::bench::rxdb {

// Appends one push row for a new document: the document with
// "_deleted":false as newDocumentState (RxDB's replication sends
// WithDeleted<RxDocType>), and a null assumedMasterState (the client knows
// no master state: an insert). `document` is a JSON object.
void AppendPushRow(std::string& body, std::string_view document);

// Whether a 200 answer of /push reports no conflict (the array is empty).
bool PushAccepted(std::string_view answer);

// RxDB's default checkpoint: the last document's _meta.lwt (ms, fractional)
// and its id. The empty checkpoint (lwt 0, id "") is the beginning; it is
// what the rxdb-server client sends when it has none.
struct Checkpoint {
  std::string id;
  double lwt = 0;
};

// "<endpoint_path>/pull?lwt=…&id=…&limit=…". lwt is printed shortest
// round-trip, as JavaScript's `"" + lwt` does, so the server's parseFloat
// gets the exact value back.
std::string PullTarget(std::string_view endpoint_path, const Checkpoint& checkpoint, int limit);

// Parses a /pull answer; false if it is not the expected shape.
bool ParsePull(simdjson::dom::parser& parser, std::string_view answer, size_t* documents,
               Checkpoint* next);

}  // namespace roomsync::bench::rxdb

#endif  // ROOMSYNC_BENCH_RXDB_PROTOCOL_H_
