// Who may call the RoomSync gRPC API when the room service runs with auth.
// Every call is decided on its own, in this order:
//
//  1. A call from the process's own in-process channel (the single node's
//     gateway, which has authenticated its client) is allowed. Such calls
//     carry a random secret made at start-up that never leaves the process.
//  2. A call with "authorization: Bearer <JWT>" metadata (the same tokens
//     as the HTTP API; the gateway forwards its client's) is verified and
//     must grant the room, and write for Push. Also over mTLS: a token is
//     never widened by the certificate.
//  3. A Subscribe without a token from a peer whose TLS client certificate
//     our CA verified is allowed: the gateway's one shared upstream stream
//     per room serves many clients, each authorized by the gateway.
//  4. Anything else is UNAUTHENTICATED.
//
// With auth off (no JwtConfig) every call is allowed. Thread-safe.
#ifndef ROOMSYNC_SERVICES_ROOM_ROOM_AUTH_H_
#define ROOMSYNC_SERVICES_ROOM_ROOM_AUTH_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <grpcpp/support/client_interceptor.h>

#include "absl/status/statusor.h"
#include "auth/jwt_verifier.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace roomsync {

// kClusterMetadata: which node serves which shard (RoomCluster). It names
// no room, so any valid token or verified client certificate may ask.
// kPutSnapshot needs write as kPush; kGetSnapshot read as kPull.
enum class RoomCall {
  kPush,
  kPull,
  kHistory,
  kSubscribe,
  kClusterMetadata,
  kPutSnapshot,
  kGetSnapshot,
};

class RoomCallAuthorizer {
 public:
  // `jwt` nullopt: auth off. kInvalidArgument as JwtVerifier::Create.
  static absl::StatusOr<std::unique_ptr<RoomCallAuthorizer>> Create(
      const std::optional<JwtConfig>& jwt);

  // OK, kUnauthenticated (no usable credentials) or kPermissionDenied (a
  // valid token without the room or write). Messages never quote tokens.
  absl::Status Authorize(const grpc::ServerContextBase& context, std::string_view room,
                         RoomCall call) const;

  // The operators' API (RoomAdmin): OK with auth off, or for a bearer
  // token whose scope holds "admin"; kPermissionDenied for another valid
  // token, kUnauthenticated without one. Neither the in-process channel
  // nor a client certificate is enough: gateways have both, and must not
  // reach the admin API through them.
  absl::Status AuthorizeAdmin(const grpc::ServerContextBase& context) const;

  bool enabled() const { return verifier_ != nullptr; }

  // An interceptor for the in-process channel that marks its calls (rule 1).
  std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> InProcessMarker() const;

 private:
  RoomCallAuthorizer() = default;
  bool FromInProcessChannel(const grpc::ServerContextBase& context) const;

  std::unique_ptr<JwtVerifier> verifier_;  // null: auth off
  std::string in_process_secret_;
};

}  // namespace roomsync

#endif  // ROOMSYNC_SERVICES_ROOM_ROOM_AUTH_H_
