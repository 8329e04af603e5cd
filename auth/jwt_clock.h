// The clock roomsync_auth reads "now" from. Tests inject a fake one so
// expiry, not-before and JWKS re-reads happen without sleeping. Must be
// callable from any thread.
#ifndef ROOMSYNC_AUTH_JWT_CLOCK_H_
#define ROOMSYNC_AUTH_JWT_CLOCK_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace roomsync {

using JwtClock = std::function<absl::Time()>;

inline JwtClock RealJwtClock() {
  return [] { return absl::Now(); };
}

}  // namespace roomsync

#endif  // ROOMSYNC_AUTH_JWT_CLOCK_H_
