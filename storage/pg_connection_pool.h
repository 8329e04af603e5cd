// A small bounded pool of libpqxx connections to one PostgreSQL server.
// Thread-safe. Connections are made lazily, up to max_connections; a
// caller that finds all of them busy waits for one to come back. A
// connection that failed is discarded by its holder and re-made on demand,
// so a server restart costs each pooled connection one failure at most.
#ifndef ROOMSYNC_STORAGE_PG_CONNECTION_POOL_H_
#define ROOMSYNC_STORAGE_PG_CONNECTION_POOL_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace roomsync::storage_internal {

class PgConnectionPool {
 public:
  // Runs once on each new connection (e.g. to declare prepared
  // statements); may throw pqxx exceptions.
  using Setup = std::function<void(pqxx::connection&)>;

  PgConnectionPool(std::string url, int max_connections, Setup setup);
  ~PgConnectionPool();
  PgConnectionPool(const PgConnectionPool&) = delete;
  PgConnectionPool& operator=(const PgConnectionPool&) = delete;

  // Exclusive use of one connection until destroyed (or Discard()ed).
  class Lease {
   public:
    Lease(PgConnectionPool* pool, std::unique_ptr<pqxx::connection> conn);
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    pqxx::connection& operator*() const { return *conn_; }
    // The connection is broken or in an unknown state: close it instead of
    // returning it to the pool.
    void Discard();

   private:
    PgConnectionPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
  };

  // kUnavailable when a new connection cannot be made.
  absl::StatusOr<Lease> Acquire();

 private:
  void Release(std::unique_ptr<pqxx::connection> conn);

  const std::string url_;
  const int max_connections_;
  const Setup setup_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + leased + being made
};

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_PG_CONNECTION_POOL_H_
