#include "tools/roomsyncctl/admin_connection.h"

#include <algorithm>
#include <chrono>
#include <ostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "tools/roomsyncctl/commands.h"

namespace roomsync::ctl {

void Admin::Prepare(grpc::ClientContext& context) const {
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

absl::StatusOr<Admin> Connect(const ParsedArgs& args, const std::optional<std::string>& target) {
  Admin admin;
  const std::string address = target.value_or(args.Get("target", "127.0.0.1:7070"));
  if (args.Has("timeout") && !absl::ParseDuration(args.Get("timeout"), &admin.timeout)) {
    return absl::InvalidArgumentError("--timeout must be a duration such as 30s");
  }
  if (args.Has("token_file")) {
    absl::StatusOr<std::string> token = ReadNonEmptyFile(args.Get("token_file"), "--token_file");
    if (!token.ok()) return token.status();
    admin.token = std::string(absl::StripAsciiWhitespace(*token));
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);  // one exported document may exceed 4 MiB
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (args.Has("tls_ca")) {
    grpc::SslCredentialsOptions options;
    absl::StatusOr<std::string> ca = ReadNonEmptyFile(args.Get("tls_ca"), "--tls_ca");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *std::move(ca);
    if (args.Has("tls_cert") != args.Has("tls_key")) {
      return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
    }
    if (args.Has("tls_cert")) {
      absl::StatusOr<std::string> cert = ReadNonEmptyFile(args.Get("tls_cert"), "--tls_cert");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadNonEmptyFile(args.Get("tls_key"), "--tls_key");
      if (!key.ok()) return key.status();
      options.pem_cert_chain = *std::move(cert);
      options.pem_private_key = *std::move(key);
    }
    if (args.Has("tls_server_name")) {
      channel_args.SetSslTargetNameOverride(args.Get("tls_server_name"));
    }
    credentials = grpc::SslCredentials(options);
  } else if (args.Has("grpc_plaintext")) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    return absl::InvalidArgumentError(
        "say how to reach the node: --tls_ca (TLS, with --tls_cert/--tls_key for mTLS) or "
        "--grpc_plaintext for local use");
  }
  admin.channel = grpc::CreateCustomChannel(address, credentials, channel_args);
  admin.stub = v1::RoomAdmin::NewStub(admin.channel);
  return admin;
}

int Fail(std::ostream& err, const std::string& what, const absl::Status& status) {
  err << "roomsyncctl: " << what << ": " << absl::StatusCodeToString(status.code()) << ": "
      << status.message() << "\n";
  return kExitError;
}

absl::Status ToAbsl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

int Fail(std::ostream& err, const std::string& what, const grpc::Status& status) {
  return Fail(err, what, ToAbsl(status));
}

bool JsonOutput(const ParsedArgs& args) { return args.Get("output", "table") == "json"; }

std::string FormatTime(int64_t ms) {
  if (ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

}  // namespace roomsync::ctl
