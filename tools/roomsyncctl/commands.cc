#include "tools/roomsyncctl/commands.h"

#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <span>
#include <sstream>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "roomsync/v1/roomsync_admin.grpc.pb.h"
#include "tools/roomsyncctl/admin_connection.h"
#include "tools/roomsyncctl/args.h"
#include "tools/roomsyncctl/cluster_commands.h"
#include "tools/roomsyncctl/durable_object_import.h"
#include "tools/roomsyncctl/export_format.h"
#include "tools/roomsyncctl/token.h"

namespace roomsync::ctl {
namespace {

// Documents per ImportRoom message, and the bytes after which a message is
// sent early: under the room node's receive limit (--max_push_bytes + 1 MiB).
constexpr int kImportBatchDocuments = 500;
constexpr size_t kImportBatchBytes = 1 << 20;

// Options of every command that calls a room node.
constexpr OptionSpec kConnectionOptions[] = {
    {"target", true, "the room node's gRPC address host:port (default 127.0.0.1:7070)"},
    {"output", true, "table (default) or json"},
    {"token_file", true, "file holding a bearer JWT with the admin scope (not needed with --auth off)"},
    {"tls_ca", true, "PEM CA of the room node's certificate: TLS"},
    {"tls_cert", true, "PEM client certificate (mTLS), with --tls_key"},
    {"tls_key", true, "PEM key of --tls_cert"},
    {"tls_server_name", true, "name to check in the node's certificate (default: the target's host)"},
    {"grpc_plaintext", false, "talk to the node without TLS (local use only: the token crosses in clear)"},
    {"timeout", true, "deadline of each call, e.g. 30s, 10m (default 60s)"},
};

struct Command {
  const char* name;  // "rooms list"
  const char* usage;
  const char* summary;
  std::vector<OptionSpec> options;  // besides kConnectionOptions when `remote`
  bool remote;
  std::function<int(const ParsedArgs&, std::ostream&, std::ostream&)> run;
};

int UsageError(std::ostream& err, const std::string& message, const Command& command) {
  err << "roomsyncctl " << command.name << ": " << message << "\n"
      << "usage: " << command.usage << "\n(see roomsyncctl " << command.name << " --help)\n";
  return kExitUsage;
}

// `placement`: with the owner node and the subscriber count (rooms list
// and show; null subscribers = not known, the owner could not be asked).
std::string RoomJson(const v1::RoomInfo& r, bool placement = false) {
  std::string json = absl::StrCat(
      "{\"room\":", JsonString(r.room()), ",\"epoch\":", JsonString(r.epoch()),
      ",\"last_seq\":", r.last_seq(), ",\"documents\":", r.documents(),
      ",\"live_documents\":", r.live_documents(), ",\"deleted_documents\":", r.deleted_documents(),
      ",\"stored_bytes\":", r.stored_bytes(), ",\"document_bytes\":", r.document_bytes(),
      ",\"last_write_ms\":", r.last_write_ms(), ",\"min_seq\":", r.min_seq(),
      ",\"max_seq\":", r.max_seq(), ",\"compacted_through\":", r.compacted_through(),
      ",\"digest\":", JsonString(r.digest()),
      ",\"document_digest\":", JsonString(r.document_digest()));
  if (placement) {
    absl::StrAppend(&json, ",\"owner_node\":", JsonString(r.owner_node()),
                    ",\"owner_address\":", JsonString(r.owner_address()), ",\"subscribers\":",
                    r.subscribers_counted() ? absl::StrCat(r.subscribers()) : "null");
  }
  return json + "}";
}

std::string Subscribers(const v1::RoomInfo& r) {
  return r.subscribers_counted() ? absl::StrCat(r.subscribers()) : "?";
}

std::vector<std::string> RoomRow(const v1::RoomInfo& r) {
  return {r.room(), absl::StrCat(r.documents()), absl::StrCat(r.live_documents()),
          absl::StrCat(r.deleted_documents()), absl::StrCat(r.stored_bytes()),
          absl::StrCat(r.last_seq()), FormatTime(r.last_write_ms()), Subscribers(r),
          r.owner_node().empty() ? "-" : r.owner_node(), r.epoch()};
}

const std::vector<std::string> kRoomHeader = {"ROOM",     "DOCS",       "LIVE",       "DELETED",
                                              "BYTES",    "LAST_SEQ",   "LAST_WRITE", "SUBSCRIBERS",
                                              "OWNER",    "EPOCH"};

// Rooms whose count their owner could not give are shown as "?".
void CountAtOwners(const ParsedArgs& args, std::vector<v1::RoomInfo>& rooms, std::ostream& err) {
  if (int uncounted = CountSubscribersAtOwners(args, rooms, err); uncounted > 0) {
    err << "subscribers not known for " << uncounted << (uncounted == 1 ? " room" : " rooms")
        << " (shown as ?): " << "no owner now, or the owner could not be asked\n";
  }
}

// ---- token -----------------------------------------------------------------

int TokenMint(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  MintRequest request;
  std::optional<JwsAlgorithm> alg = ParseJwsAlgorithm(args.Get("alg", "HS256"));
  if (!alg.has_value()) {
    err << "roomsyncctl token mint: --alg must be HS256, ES256 or EdDSA\n";
    return kExitUsage;
  }
  request.alg = *alg;
  request.hs256_secret_file = args.Get("jwt_hs256_secret_file");
  request.private_key_file = args.Get("private_key_file");
  if (request.alg == JwsAlgorithm::kHs256 ? request.hs256_secret_file.empty()
                                          : request.private_key_file.empty()) {
    err << "roomsyncctl token mint: HS256 needs --jwt_hs256_secret_file; ES256 and EdDSA need "
           "--private_key_file\n";
    return kExitUsage;
  }
  request.kid = args.Get("kid");
  request.subject = args.Get("sub");
  if (request.subject.empty()) {
    err << "roomsyncctl token mint: --sub is required\n";
    return kExitUsage;
  }
  for (absl::string_view room : absl::StrSplit(args.Get("rooms"), ',', absl::SkipEmpty())) {
    request.rooms.emplace_back(room);
  }
  request.scope = args.Get("scope", "read");
  if (args.Has("ttl") && !absl::ParseDuration(args.Get("ttl"), &request.ttl)) {
    err << "roomsyncctl token mint: --ttl must be a duration such as 1h\n";
    return kExitUsage;
  }
  request.issuer = args.Get("iss");
  request.audience = args.Get("aud");
  absl::StatusOr<std::string> token = MintToken(request);
  if (!token.ok()) return Fail(err, "token mint", token.status());
  out << *token << "\n";
  return kExitOk;
}

int TokenInspect(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  // The token comes from a file or stdin, never the command line, where
  // other users of the machine could read it (ps).
  std::string token;
  const std::string file = args.Get("token_file", "-");
  if (file == "-") {
    std::ostringstream in;
    in << std::cin.rdbuf();
    token = in.str();
  } else {
    absl::StatusOr<std::string> read = ReadNonEmptyFile(file, "--token_file");
    if (!read.ok()) return Fail(err, "token inspect", read.status());
    token = *std::move(read);
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  if (!args.Has("jwt_hs256_secret_file") && !args.Has("jwks_file")) {
    err << "roomsyncctl token inspect: give --jwt_hs256_secret_file and/or --jwks_file to "
           "verify with\n";
    return kExitUsage;
  }
  absl::StatusOr<InspectedToken> inspected =
      InspectToken(token, args.Get("jwt_hs256_secret_file"), args.Get("jwks_file"),
                   args.Get("jwt_issuer"), args.Get("jwt_audience"));
  if (!inspected.ok()) return Fail(err, "token inspect: the token does not verify", inspected.status());
  const JwtClaims& c = inspected->claims;
  std::vector<std::string> scope;
  if (c.can_write) scope.push_back("write");
  if (c.admin) scope.push_back("admin");
  const absl::Duration left = c.expires - absl::Now();
  if (JsonOutput(args)) {
    out << "{\"valid\":true,\"alg\":" << JsonString(JwsAlgorithmName(inspected->header.alg))
        << ",\"kid\":" << JsonString(inspected->header.kid) << ",\"sub\":" << JsonString(c.subject)
        << ",\"exp\":" << absl::ToUnixSeconds(c.expires)
        << ",\"expires_in_s\":" << absl::ToInt64Seconds(left) << ",\"rooms\":[";
    for (size_t i = 0; i < c.rooms.size(); ++i) out << (i ? "," : "") << JsonString(c.rooms[i]);
    out << "],\"write\":" << (c.can_write ? "true" : "false")
        << ",\"admin\":" << (c.admin ? "true" : "false")
        << ",\"claims\":" << inspected->claims_json << "}\n";
    return kExitOk;
  }
  PrintTable(out, {
                      {"valid", "yes (signature, expiry, issuer and audience checked)"},
                      {"alg", std::string(JwsAlgorithmName(inspected->header.alg))},
                      {"kid", inspected->header.kid.empty() ? "-" : inspected->header.kid},
                      {"sub", c.subject},
                      {"expires", absl::StrCat(absl::FormatTime(absl::RFC3339_sec, c.expires,
                                                                absl::UTCTimeZone()),
                                               " (in ", absl::FormatDuration(absl::Trunc(left, absl::Seconds(1))), ")")},
                      {"rooms", c.rooms.empty() ? "(none)" : absl::StrJoin(c.rooms, ",")},
                      {"grants", scope.empty() ? "read" : absl::StrCat("read ", absl::StrJoin(scope, " "))},
                      {"issuer", c.issuer.value_or("-")},
                      {"audience", c.audiences.empty() ? "-" : absl::StrJoin(c.audiences, ",")},
                  });
  return kExitOk;
}

// ---- rooms -----------------------------------------------------------------

int RoomsList(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Admin> admin = Connect(args);
  if (!admin.ok()) return Fail(err, "rooms list", admin.status());
  int page_size = 100;
  if (args.Has("page_size") && !absl::SimpleAtoi(args.Get("page_size"), &page_size)) {
    err << "roomsyncctl rooms list: --page_size must be a number\n";
    return kExitUsage;
  }
  std::vector<v1::RoomInfo> rooms;
  std::string token = args.Get("page_token");
  const bool all = args.Has("all");
  std::string next;
  do {
    v1::ListRoomsRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    v1::ListRoomsResponse response;
    grpc::ClientContext context;
    admin->Prepare(context);
    grpc::Status status = admin->stub->ListRooms(&context, request, &response);
    if (!status.ok()) return Fail(err, "rooms list", status);
    for (const v1::RoomInfo& room : response.rooms()) rooms.push_back(room);
    next = token = response.next_page_token();
  } while (all && !token.empty());
  CountAtOwners(args, rooms, err);
  if (JsonOutput(args)) {
    out << "{\"rooms\":[";
    for (size_t i = 0; i < rooms.size(); ++i) out << (i ? "," : "") << RoomJson(rooms[i], true);
    out << "],\"next_page_token\":" << JsonString(next) << "}\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {kRoomHeader};
  for (const v1::RoomInfo& room : rooms) rows.push_back(RoomRow(room));
  PrintTable(out, rows);
  if (!next.empty()) err << "more rooms: --page_token " << next << " (or --all)\n";
  return kExitOk;
}

int RoomsShow(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Admin> admin = Connect(args);
  if (!admin.ok()) return Fail(err, "rooms show", admin.status());
  v1::ShowRoomRequest request;
  request.set_room(args.positional[0]);
  v1::ShowRoomResponse response;
  grpc::ClientContext context;
  admin->Prepare(context);
  grpc::Status status = admin->stub->ShowRoom(&context, request, &response);
  if (!status.ok()) return Fail(err, "rooms show", status);
  std::vector<v1::RoomInfo> rooms = {response.room()};
  CountAtOwners(args, rooms, err);
  const v1::RoomInfo& r = rooms[0];
  if (JsonOutput(args)) {
    out << RoomJson(r, true) << "\n";
    return kExitOk;
  }
  PrintTable(out, {{"room", r.room()},
                   {"epoch", r.epoch()},
                   {"last_seq", absl::StrCat(r.last_seq())},
                   {"documents", absl::StrCat(r.documents())},
                   {"live", absl::StrCat(r.live_documents())},
                   {"deleted", absl::StrCat(r.deleted_documents())},
                   {"stored_bytes", absl::StrCat(r.stored_bytes())},
                   {"document_bytes", absl::StrCat(r.document_bytes())},
                   {"seq_range", absl::StrCat(r.min_seq(), "..", r.max_seq())},
                   {"compacted_through", absl::StrCat(r.compacted_through())},
                   {"digest", r.digest()},
                   {"last_write", FormatTime(r.last_write_ms())},
                   {"subscribers", Subscribers(r)},
                   {"owner", r.owner_node().empty()
                                 ? "-"
                                 : absl::StrCat(r.owner_node(), " (", r.owner_address(), ")")}});
  return kExitOk;
}

// ---- export / import ----------------------------------------------------------

int Export(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Admin> admin = Connect(args);
  if (!admin.ok()) return Fail(err, "export", admin.status());
  std::ofstream file;
  std::ostream* sink = &out;
  const std::string path = args.Get("file");
  if (!path.empty() && path != "-") {
    file.open(path, std::ios::binary | std::ios::trunc);
    if (!file) return Fail(err, "export", absl::UnavailableError("cannot open --file " + path));
    sink = &file;
  }
  v1::ExportRoomRequest request;
  request.set_room(args.positional[0]);
  grpc::ClientContext context;
  admin->Prepare(context);
  std::unique_ptr<grpc::ClientReader<v1::ExportRoomResponse>> reader =
      admin->stub->ExportRoom(&context, request);
  v1::ExportRoomResponse message;
  bool have_header = false;
  int64_t documents = 0;
  while (reader->Read(&message)) {
    if (message.has_header()) {
      const v1::ExportHeader& h = message.header();
      *sink << FormatHeader({h.room(), h.epoch(), h.seq(), h.compacted_through()});
      have_header = true;
    }
    for (const v1::ExportedDocument& d : message.documents()) {
      *sink << FormatDocument(
          {d.collection(), d.id(), d.seq(), d.timestamp(), d.deleted(), d.data()});
      ++documents;
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return Fail(err, "export", status);
  if (!have_header) return Fail(err, "export", absl::InternalError("the node sent no header"));
  sink->flush();
  if (!*sink) return Fail(err, "export", absl::DataLossError("writing the export failed"));
  if (sink == &file) err << "exported " << documents << " documents to " << path << "\n";
  return kExitOk;
}

int Import(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Admin> admin = Connect(args);
  if (!admin.ok()) return Fail(err, "import", admin.status());
  const std::string& room = args.positional[0];
  const std::string& path = args.positional[1];
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return Fail(err, "import", absl::NotFoundError("cannot open " + path));
    in = &file;
  }
  std::string line;
  if (!std::getline(*in, line)) {
    return Fail(err, "import", absl::InvalidArgumentError("the file is empty (no header line)"));
  }
  absl::StatusOr<ExportHeaderLine> header = ParseHeader(line);
  if (!header.ok()) return Fail(err, absl::StrCat("import: ", path, " line 1"), header.status());

  grpc::ClientContext context;
  admin->Prepare(context);
  v1::ImportRoomResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::ImportRoomRequest>> writer =
      admin->stub->ImportRoom(&context, &response);
  v1::ImportRoomRequest message;
  message.set_room(room);
  message.mutable_header()->set_room(header->room);
  message.mutable_header()->set_epoch(header->epoch);
  message.mutable_header()->set_seq(header->seq);
  message.mutable_header()->set_compacted_through(header->compacted_through);
  size_t bytes = 0;
  int64_t line_number = 1;
  int64_t documents = 0;
  bool write_failed = false;
  while (std::getline(*in, line)) {
    ++line_number;
    if (line.empty()) continue;
    absl::StatusOr<ExportDocumentLine> doc = ParseDocument(line);
    if (!doc.ok()) {
      context.TryCancel();
      (void)writer->Finish();
      return Fail(err, absl::StrCat("import: ", path, " line ", line_number), doc.status());
    }
    v1::ExportedDocument* out_doc = message.add_documents();
    out_doc->set_collection(std::move(doc->collection));
    out_doc->set_id(std::move(doc->id));
    out_doc->set_seq(doc->seq);
    out_doc->set_timestamp(doc->timestamp);
    out_doc->set_deleted(doc->deleted);
    bytes += doc->data.size();
    out_doc->set_data(std::move(doc->data));
    ++documents;
    if (message.documents_size() >= kImportBatchDocuments || bytes >= kImportBatchBytes) {
      if (!writer->Write(message)) {
        write_failed = true;  // the server ended the call: Finish says why
        break;
      }
      message.Clear();
      bytes = 0;
    }
  }
  if (!write_failed && (message.documents_size() > 0 || message.has_header())) {
    (void)writer->Write(message);
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return Fail(err, "import", status);
  if (JsonOutput(args)) {
    out << "{\"imported\":" << documents << ",\"room\":" << RoomJson(response.room()) << "}\n";
  } else {
    out << "imported " << documents << " documents into " << room << " (last_seq "
        << response.room().last_seq() << ", epoch " << response.room().epoch() << ")\n";
  }
  return kExitOk;
}

// ---- check, compact ----------------------------------------------------------

// Every room's name, by name, following every ListRooms page.
grpc::Status ListRoomNames(Admin& admin, std::vector<std::string>& rooms) {
  std::string token;
  do {
    v1::ListRoomsRequest request;
    request.set_page_size(1000);
    request.set_page_token(token);
    v1::ListRoomsResponse response;
    grpc::ClientContext context;
    admin.Prepare(context);
    grpc::Status status = admin.stub->ListRooms(&context, request, &response);
    if (!status.ok()) return status;
    for (const v1::RoomInfo& room : response.rooms()) rooms.push_back(room.room());
    token = response.next_page_token();
  } while (!token.empty());
  return grpc::Status::OK;
}


int Check(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  const bool all = args.Has("all");
  if (all == !args.positional.empty()) {
    err << "roomsyncctl check: give ROOM or --all\n";
    return kExitUsage;
  }
  absl::StatusOr<Admin> admin = Connect(args);
  if (!admin.ok()) return Fail(err, "check", admin.status());
  std::vector<std::string> rooms;
  if (all) {
    grpc::Status status = ListRoomNames(*admin, rooms);
    if (!status.ok()) return Fail(err, "check --all: listing rooms", status);
  } else {
    rooms.push_back(args.positional[0]);
  }
  int64_t problems = 0;
  bool call_failed = false;
  const bool json = JsonOutput(args);
  if (json) out << "{\"rooms\":[";
  for (size_t i = 0; i < rooms.size(); ++i) {
    v1::CheckRoomRequest request;
    request.set_room(rooms[i]);
    v1::CheckRoomResponse response;
    grpc::ClientContext context;
    admin->Prepare(context);
    grpc::Status status = admin->stub->CheckRoom(&context, request, &response);
    if (!status.ok()) {
      Fail(err, absl::StrCat("check ", rooms[i]), status);
      call_failed = true;
      continue;
    }
    problems += response.problems_size();
    if (json) {
      out << (i ? "," : "") << "{\"room\":" << JsonString(rooms[i]) << ",\"problems\":[";
      for (int p = 0; p < response.problems_size(); ++p) {
        out << (p ? "," : "") << JsonString(response.problems(p));
      }
      out << "]}";
    } else if (response.problems_size() == 0) {
      out << rooms[i] << ": ok (last_seq " << response.room().last_seq() << ", "
          << response.room().documents() << " documents)\n";
    } else {
      for (const std::string& problem : response.problems()) {
        out << rooms[i] << ": PROBLEM: " << problem << "\n";
      }
    }
  }
  // With --all, the lease table too (each room's check already covers the
  // lease of its own shard); a node without shard leases has none to show.
  LeaseCheck leases;
  if (all) {
    grpc::Status status = CheckLeases(*admin, leases);
    if (!status.ok()) {
      Fail(err, "check --all: reading the lease table", status);
      call_failed = true;
    }
    problems += static_cast<int64_t>(leases.problems.size());
    if (!json) {
      for (const std::string& problem : leases.problems) out << "shards: PROBLEM: " << problem << "\n";
    }
  }
  if (json) {
    out << "]";
    if (all) {
      out << ",\"shards\":{\"checked\":" << (leases.checked ? "true" : "false")
          << ",\"leases\":" << leases.leases << ",\"problems\":[";
      for (size_t p = 0; p < leases.problems.size(); ++p) {
        out << (p ? "," : "") << JsonString(leases.problems[p]);
      }
      out << "]}";
    }
    out << ",\"problems\":" << problems << "}\n";
  }
  if (!json && all) {
    out << rooms.size() << " rooms";
    if (leases.checked) out << " and " << leases.leases << " shard leases";
    out << " checked, " << problems << " problems\n";
  }
  return problems > 0 || call_failed ? kExitError : kExitOk;
}

int Compact(const ParsedArgs& args, std::ostream& out, std::ostream& err) {
  const bool all = args.Has("all");
  if (all == !args.positional.empty()) {
    err << "roomsyncctl compact: give ROOM or --all\n";
    return kExitUsage;
  }
  absl::Duration older_than;
  if (!args.Has("older_than") || !absl::ParseDuration(args.Get("older_than"), &older_than) ||
      older_than < absl::ZeroDuration()) {
    err << "roomsyncctl compact: --older-than DURATION (e.g. 720h, 30m, 0s) is required\n";
    return kExitUsage;
  }
  absl::StatusOr<Admin> admin = Connect(args);
  if (!admin.ok()) return Fail(err, "compact", admin.status());
  std::vector<std::string> rooms;
  if (all) {
    grpc::Status status = ListRoomNames(*admin, rooms);
    if (!status.ok()) return Fail(err, "compact --all: listing rooms", status);
  } else {
    rooms.push_back(args.positional[0]);
  }
  const bool json = JsonOutput(args);
  std::vector<std::vector<std::string>> table = {
      {"ROOM", "REMOVED", "BYTES", "COMPACTED_THROUGH", "LAST_SEQ"}};
  std::string json_rooms;
  int64_t removed = 0, skipped = 0;
  bool call_failed = false;
  for (const std::string& room : rooms) {
    v1::CompactRoomRequest request;
    request.set_room(room);
    request.set_older_than_ms(absl::ToInt64Milliseconds(older_than));
    v1::CompactRoomResponse response;
    grpc::ClientContext context;
    admin->Prepare(context);
    grpc::Status status = admin->stub->CompactRoom(&context, request, &response);
    if (all && status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      // In a cluster each node compacts the rooms of its own shards.
      ++skipped;
      continue;
    }
    if (!status.ok()) {
      Fail(err, absl::StrCat("compact ", room), status);
      call_failed = true;
      continue;
    }
    removed += response.removed();
    table.push_back({room, absl::StrCat(response.removed()), absl::StrCat(response.removed_bytes()),
                     absl::StrCat(response.room().compacted_through()),
                     absl::StrCat(response.room().last_seq())});
    absl::StrAppend(&json_rooms, json_rooms.empty() ? "" : ",", "{\"room\":", JsonString(room),
                    ",\"removed\":", response.removed(), ",\"removed_bytes\":",
                    response.removed_bytes(), ",\"compacted_through\":",
                    response.room().compacted_through(), ",\"last_seq\":",
                    response.room().last_seq(), "}");
  }
  if (json) {
    out << "{\"rooms\":[" << json_rooms << "],\"removed\":" << removed
        << ",\"skipped_not_owner\":" << skipped << "}\n";
  } else {
    PrintTable(out, table);
    if (all) {
      out << table.size() - 1 << " rooms compacted, " << removed << " tombstones removed";
      if (skipped > 0) out << ", " << skipped << " rooms skipped (held by another node)";
      out << "\n";
    }
  }
  return call_failed ? kExitError : kExitOk;
}

// ---- dispatch ---------------------------------------------------------------

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"token mint",
       "roomsyncctl token mint --sub SUBJECT [--rooms a,b*] [--scope 'read write admin'] "
       "[--ttl 1h] (--jwt_hs256_secret_file F | --alg ES256|EdDSA --private_key_file PEM)",
       "Prints a signed bearer JWT. The \"admin\" scope word opens the RoomAdmin API "
       "(this tool); \"write\" lets the token push; rooms are exact names or prefix*.",
       {{"sub", true, "the token's subject (required)"},
        {"rooms", true, "comma-separated rooms or prefix* patterns"},
        {"scope", true, "space-separated words: read, write, admin (default read)"},
        {"ttl", true, "lifetime, e.g. 15m, 24h (default 1h)"},
        {"alg", true, "HS256 (default), ES256 or EdDSA"},
        {"jwt_hs256_secret_file", true, "the servers' HS256 secret file"},
        {"private_key_file", true, "PEM private key whose public half is in the servers' JWKS"},
        {"kid", true, "key id header (the JWKS key's kid)"},
        {"iss", true, "issuer claim"},
        {"aud", true, "audience claim"}},
       false,
       TokenMint},
      {"token inspect",
       "roomsyncctl token inspect [--token_file F|-] (--jwt_hs256_secret_file F | --jwks_file F)",
       "Verifies a token as the servers do (signature, expiry, issuer, audience) and prints "
       "its claims. Reads the token from --token_file, or stdin. Exit 1 when it does not verify.",
       {{"token_file", true, "file holding the token; - or absent = stdin"},
        {"jwt_hs256_secret_file", true, "the servers' HS256 secret file"},
        {"jwks_file", true, "the servers' JWKS file (ES256, EdDSA)"},
        {"jwt_issuer", true, "required issuer, as the servers' --jwt_issuer"},
        {"jwt_audience", true, "required audience, as the servers' --jwt_audience"},
        {"output", true, "table (default) or json"}},
       false,
       TokenInspect},
      {"rooms list", "roomsyncctl rooms list [--page_size N] [--page_token T | --all]",
       "Lists rooms by name with their documents (live, deleted), stored bytes, last seq, "
       "last write (the newest document's client timestamp), subscribers (Subscribe streams "
       "on the node that has the room open, asked of each room's owner with shard leases; ? "
       "when it cannot be asked), owner node (with shard leases) and epoch.",
       {{"page_size", true, "rooms per page, 1-1000 (default 100)"},
        {"page_token", true, "continue after this room (printed after a full page)"},
        {"all", false, "follow every page"}},
       true,
       RoomsList},
      {"rooms show", "roomsyncctl rooms show ROOM", "One room's figures.", {}, true, RoomsShow},
      {"export", "roomsyncctl export ROOM [--file F]",
       "Writes the room as JSONL (docs/operations.md): a header line {room, epoch, seq}, then "
       "one line per document {collection, id, seq, timestamp, deleted, data (the stored bytes, "
       "base64)} in seq order, all from one snapshot of the store.",
       {{"file", true, "write here instead of stdout"}},
       true,
       Export},
      {"import", "roomsyncctl import ROOM FILE|-",
       "Loads an export into ROOM, which must be new or empty: documents keep their seqs, "
       "bytes and order, and the room takes the export's epoch and last seq. All or nothing.",
       {},
       true,
       Import},
      {"check", "roomsyncctl check ROOM | --all",
       "Checks a room's integrity: seqs unique and within 1..last_seq, the document at "
       "last_seq present, stored_bytes equal to the documents' sizes, and the lease of its "
       "shard (epoch at least 1, an owner). With --all and shard leases, every lease too "
       "(epochs, shards within 0..255). Prints every problem; exit 1 if there is any.",
       {{"all", false, "every room"}},
       true,
       Check},
      {"compact", "roomsyncctl compact ROOM | --all --older-than DURATION",
       "Removes the tombstones (deleted documents) whose timestamp is older than DURATION "
       "before the node's clock; live documents are never touched. The room then records "
       "compacted_through (the highest seq removed): a client whose checkpoint is below it "
       "starts over (pull from the beginning with \"reset\":true, RESYNC on the stream), so "
       "no client keeps a document whose deletion it missed. Run it on the node that holds "
       "the room; with --all, rooms held by another node are skipped.",
       {{"all", false, "every room this node holds"},
        {"older_than", true, "retention window, e.g. 720h (required; 0s removes every tombstone)"}},
       true,
       Compact},
      {"shards", kShardsUsage, kShardsSummary, {}, true, Shards},
      {"drain", kDrainUsage, kDrainSummary, {}, true, Drain},
      {"import-durable-object", kDurableObjectImportUsage, kDurableObjectImportSummary,
       DurableObjectImportOptions(), true,
       [](const ParsedArgs& args, std::ostream& out, std::ostream& err) {
         return ImportDurableObject(
             args,
             [&args]() -> absl::StatusOr<RoomSyncConnection> {
               absl::StatusOr<Admin> admin = Connect(args);
               if (!admin.ok()) return admin.status();
               return RoomSyncConnection{admin->channel, admin->token, admin->timeout};
             },
             out, err);
       }},
  };
  return *commands;
}

size_t Positionals(const Command& command) {
  const std::string name = command.name;
  if (name == "rooms show" || name == "export" || name == "drain") return 1;
  if (name == "import" || name == "import-durable-object") return 2;
  return 0;
}

std::string TopHelp() {
  std::string text =
      "usage: roomsyncctl COMMAND [options]\n\n"
      "The operators' tool for roomsync room nodes (RoomAdmin gRPC API).\n\ncommands:\n";
  for (const Command& c : Commands()) {
    std::string name = absl::StrCat("  ", c.name);
    name.resize(std::max<size_t>(18, name.size() + 2), ' ');
    absl::StrAppend(&text, name, c.usage, "\n");
  }
  absl::StrAppend(&text,
                  "\nEach command takes --help. Exit codes: 0 ok, 1 error (or problems found), "
                  "2 usage.\n");
  return text;
}

}  // namespace

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "help") {
    (args.empty() ? err : out) << TopHelp();
    return args.empty() ? kExitUsage : kExitOk;
  }
  const Command* command = nullptr;
  size_t words = 0;
  for (const Command& c : Commands()) {
    std::vector<std::string> name = absl::StrSplit(c.name, ' ');
    if (args.size() >= name.size() && std::equal(name.begin(), name.end(), args.begin())) {
      command = &c;
      words = name.size();
    }
  }
  if (command == nullptr) {
    err << "roomsyncctl: unknown command \"" << absl::StrJoin(args.begin(), args.begin() + std::min<size_t>(2, args.size()), " ") << "\"\n" << TopHelp();
    return kExitUsage;
  }
  std::vector<OptionSpec> options = command->options;
  if (command->remote) {
    options.insert(options.end(), std::begin(kConnectionOptions), std::end(kConnectionOptions));
  }
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs(std::span(args).subspan(words), std::span<const OptionSpec>(options));
  if (!parsed.ok()) return UsageError(err, std::string(parsed.status().message()), *command);
  if (parsed->help) {
    out << HelpText(command->usage, command->summary, options);
    return kExitOk;
  }
  const std::string output = parsed->Get("output", "table");
  if (output != "table" && output != "json") {
    return UsageError(err, "--output must be table or json", *command);
  }
  const size_t want = Positionals(*command);
  const bool room_or_all = command->name == std::string("check") ||
                           command->name == std::string("compact");
  if (!room_or_all && parsed->positional.size() != want) {
    return UsageError(err, absl::StrCat("expected ", want, " argument", want == 1 ? "" : "s",
                                        ", got ", parsed->positional.size()),
                      *command);
  }
  if (room_or_all && parsed->positional.size() > 1) {
    return UsageError(err, absl::StrCat(command->name, " takes one ROOM (or --all)"), *command);
  }
  if (command->remote) {
    // A connection problem the operator can fix on the command line is a
    // usage error; file and network problems are errors.
    if (!parsed->Has("tls_ca") && !parsed->Has("grpc_plaintext")) {
      return UsageError(err,
                        "say how to reach the node: --tls_ca (TLS; --tls_cert and --tls_key for "
                        "mTLS) or --grpc_plaintext for local use",
                        *command);
    }
  }
  return command->run(*parsed, out, err);
}

}  // namespace roomsync::ctl
