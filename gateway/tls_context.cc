#include "gateway/tls_context.h"

#include <sys/stat.h>

#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/log.h"

namespace roomsync {
namespace ssl = boost::asio::ssl;

absl::StatusOr<std::shared_ptr<ssl::context>> LoadTlsContext(const GatewayTlsConfig& config) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  // TLS 1.0 and 1.1 are deprecated (RFC 8996); compression invites CRIME.
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                       ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  boost::system::error_code error;
  context->use_certificate_chain_file(config.cert_file, error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_cert_file ", config.cert_file, ": ", error.message()));
  }
  context->use_private_key_file(config.key_file, ssl::context::pem, error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key_file ", config.key_file, ": ", error.message()));
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return absl::InvalidArgumentError("--tls_key_file does not match --tls_cert_file");
  }
  return context;
}

absl::StatusOr<std::unique_ptr<TlsContextSource>> TlsContextSource::Create(
    const GatewayTlsConfig& config) {
  std::unique_ptr<TlsContextSource> source(new TlsContextSource(config));
  std::string version = source->FilesVersion();
  absl::StatusOr<std::shared_ptr<ssl::context>> context = LoadTlsContext(config);
  if (!context.ok()) return context.status();
  absl::MutexLock lock(&source->mu_);
  source->current_ = *std::move(context);
  source->loaded_version_ = std::move(version);
  return source;
}

std::string TlsContextSource::FilesVersion() const {
  std::string version;
  for (const std::string& path : {config_.cert_file, config_.key_file}) {
    struct stat info {};
    if (stat(path.c_str(), &info) != 0) return "missing";
    absl::StrAppend(&version, info.st_ino, ":", info.st_size, ":", info.st_mtim.tv_sec, ".",
                    info.st_mtim.tv_nsec, ";");
  }
  return version;
}

std::shared_ptr<ssl::context> TlsContextSource::Current() {
  absl::MutexLock lock(&mu_);
  absl::Time now = absl::Now();
  if (now < next_check_) return current_;
  next_check_ = now + absl::Seconds(1);
  std::string version = FilesVersion();
  if (version == loaded_version_ || version == "missing") return current_;
  // Recorded before loading: a broken file is reported once, not per
  // connection, and retried when it changes again.
  loaded_version_ = version;
  absl::StatusOr<std::shared_ptr<ssl::context>> reloaded = LoadTlsContext(config_);
  if (!reloaded.ok()) {
    Log(LogLevel::kWarning, "tls_reload_failed", {{"detail", std::string(reloaded.status().message())}});
    return current_;
  }
  current_ = *std::move(reloaded);
  Log(LogLevel::kInfo, "tls_reloaded", {{"cert_file", config_.cert_file}});
  return current_;
}

}  // namespace roomsync
