#include "services/room/room_auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/interceptor.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "base/string_view.h"

namespace roomsync {
namespace {

constexpr char kInProcessKey[] = "roomsync-in-process";

class InProcessMarkerInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit InProcessMarkerInterceptor(const std::string& secret) : secret_(secret) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kInProcessKey, secret_);
    }
    methods->Proceed();
  }

 private:
  const std::string secret_;  // a copy: channels may outlive the authorizer
};

class InProcessMarkerFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit InProcessMarkerFactory(const std::string& secret) : secret_(secret) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new InProcessMarkerInterceptor(secret_);
  }

 private:
  const std::string secret_;  // a copy: channels may outlive the authorizer
};

// The one value of `key` in the call's metadata; empty when absent.
std::string_view MetadataValue(const grpc::ServerContextBase& context, std::string_view key) {
  auto found = context.client_metadata().find(grpc::string_ref(key.data(), key.size()));
  if (found == context.client_metadata().end()) return {};
  return {found->second.data(), found->second.size()};
}

}  // namespace

absl::StatusOr<std::unique_ptr<RoomCallAuthorizer>> RoomCallAuthorizer::Create(
    const std::optional<JwtConfig>& jwt) {
  std::unique_ptr<RoomCallAuthorizer> authorizer(new RoomCallAuthorizer());
  unsigned char secret[32];
  if (RAND_bytes(secret, sizeof secret) != 1) {
    return absl::InternalError("cannot draw random bytes for the in-process secret");
  }
  authorizer->in_process_secret_ =
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(secret), sizeof secret));
  if (jwt.has_value()) {
    absl::StatusOr<std::unique_ptr<JwtVerifier>> verifier = JwtVerifier::Create(*jwt);
    if (!verifier.ok()) return verifier.status();
    authorizer->verifier_ = *std::move(verifier);
  }
  return authorizer;
}

bool RoomCallAuthorizer::FromInProcessChannel(const grpc::ServerContextBase& context) const {
  std::string_view presented = MetadataValue(context, kInProcessKey);
  return presented.size() == in_process_secret_.size() &&
         CRYPTO_memcmp(presented.data(), in_process_secret_.data(), presented.size()) == 0;
}

absl::Status RoomCallAuthorizer::Authorize(const grpc::ServerContextBase& context,
                                           std::string_view room, RoomCall call) const {
  if (verifier_ == nullptr || FromInProcessChannel(context)) return absl::OkStatus();
  std::string_view authorization = MetadataValue(context, "authorization");
  if (!authorization.empty()) {
    constexpr std::string_view kScheme = "bearer ";
    if (authorization.size() <= kScheme.size() ||
        !absl::EqualsIgnoreCase(ToAbsl(authorization.substr(0, kScheme.size())), ToAbsl(kScheme))) {
      return absl::UnauthenticatedError("the authorization metadata is not a Bearer token");
    }
    absl::StatusOr<Grant> grant = verifier_->Verify(
        ToStd(absl::StripAsciiWhitespace(ToAbsl(authorization.substr(kScheme.size())))));
    if (!grant.ok()) return grant.status();
    if (call == RoomCall::kClusterMetadata) return absl::OkStatus();
    return roomsync::Authorize(*grant, room,
                              call == RoomCall::kPush || call == RoomCall::kPutSnapshot);
  }
  if ((call == RoomCall::kSubscribe || call == RoomCall::kClusterMetadata) &&
      context.auth_context() != nullptr &&
      context.auth_context()->IsPeerAuthenticated()) {
    return absl::OkStatus();
  }
  return absl::UnauthenticatedError(
      "a bearer token is required (authorization metadata), or a client certificate for "
      "Subscribe");
}

absl::Status RoomCallAuthorizer::AuthorizeAdmin(const grpc::ServerContextBase& context) const {
  if (verifier_ == nullptr) return absl::OkStatus();
  std::string_view authorization = MetadataValue(context, "authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(ToAbsl(authorization.substr(0, kScheme.size())), ToAbsl(kScheme))) {
    return absl::UnauthenticatedError(
        "the admin API needs a bearer token with the admin scope (authorization metadata)");
  }
  absl::StatusOr<Grant> grant = verifier_->Verify(
      ToStd(absl::StripAsciiWhitespace(ToAbsl(authorization.substr(kScheme.size())))));
  if (!grant.ok()) return grant.status();
  if (!grant->admin) return absl::PermissionDeniedError("the token's scope does not include admin");
  return absl::OkStatus();
}

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>
RoomCallAuthorizer::InProcessMarker() const {
  return std::make_unique<InProcessMarkerFactory>(in_process_secret_);
}

}  // namespace roomsync
