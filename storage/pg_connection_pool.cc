#include "storage/pg_connection_pool.h"

#include <poll.h>

#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/str_cat.h"

namespace roomsync::storage_internal {
namespace {

// An idle connection has no query outstanding, so the server has nothing
// to say on it. If its socket is readable anyway, the server has closed it
// or sent a termination notice (restart, idle kill). Checking costs one
// poll() and no round trip, and keeps a dead connection from being handed
// to Commit, where a failure would have to be reported as "outcome unknown".
bool LooksHealthy(const pqxx::connection& conn) {
  if (!conn.is_open()) return false;
  pollfd pfd{conn.sock(), POLLIN, 0};
  if (pfd.fd < 0) return false;
  return poll(&pfd, 1, 0) == 0;
}

}  // namespace

PgConnectionPool::PgConnectionPool(std::string url, int max_connections, Setup setup)
    : url_(std::move(url)), max_connections_(max_connections), setup_(std::move(setup)) {}

PgConnectionPool::~PgConnectionPool() = default;

PgConnectionPool::Lease::Lease(PgConnectionPool* pool,
                               std::unique_ptr<pqxx::connection> conn)
    : pool_(pool), conn_(std::move(conn)) {}

PgConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)) {}

PgConnectionPool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(std::move(conn_));
}

void PgConnectionPool::Lease::Discard() {
  if (conn_ == nullptr) return;
  conn_.reset();
  absl::MutexLock lock(&pool_->mu_);
  --pool_->open_;
}

void PgConnectionPool::Release(std::unique_ptr<pqxx::connection> conn) {
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(conn));
}

absl::StatusOr<PgConnectionPool::Lease> PgConnectionPool::Acquire() {
  while (true) {
    std::unique_ptr<pqxx::connection> conn;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](PgConnectionPool* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return !self->idle_.empty() || self->open_ < self->max_connections_;
          },
          this));
      if (idle_.empty()) {
        ++open_;  // reserve the slot; connect outside the lock
        break;
      }
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
    if (LooksHealthy(*conn)) return Lease(this, std::move(conn));
    Lease(this, std::move(conn)).Discard();  // and try the next one
  }
  try {
    auto conn = std::make_unique<pqxx::connection>(url_);
    setup_(*conn);
    return Lease(this, std::move(conn));
  } catch (const std::exception& e) {
    absl::MutexLock lock(&mu_);
    --open_;
    // libpq's connection errors name host and port, not the password.
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", e.what()));
  }
}

}  // namespace roomsync::storage_internal
