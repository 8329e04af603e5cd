// The gateway's HTTPS certificate: an OpenSSL context (TLS 1.2 and newer
// only) loaded from PEM files and reloaded when they change, so that a
// renewed certificate (certbot, cert-manager) is picked up without a
// restart. The files are checked at most once a second, from the accept
// path; a reload that fails is logged and the previous certificate stays.
// Open connections keep the context they started with. Thread-safe.
#ifndef ROOMSYNC_GATEWAY_TLS_CONTEXT_H_
#define ROOMSYNC_GATEWAY_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/gateway.h"

namespace roomsync {

class TlsContextSource {
 public:
  // Loads the files; kInvalidArgument names the one that is unusable.
  static absl::StatusOr<std::unique_ptr<TlsContextSource>> Create(const GatewayTlsConfig& config);

  // The context for a new connection (reloaded first if the files changed).
  std::shared_ptr<boost::asio::ssl::context> Current();

 private:
  explicit TlsContextSource(const GatewayTlsConfig& config) : config_(config) {}
  // Identity of both files' current versions (inode, size, mtime).
  std::string FilesVersion() const;

  const GatewayTlsConfig config_;
  absl::Mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mu_);
  std::string loaded_version_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// A server context for TLS 1.2+ with `cert_file` and `key_file`.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> LoadTlsContext(
    const GatewayTlsConfig& config);

}  // namespace roomsync

#endif  // ROOMSYNC_GATEWAY_TLS_CONTEXT_H_
