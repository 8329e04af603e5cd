#include "storage/store.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "storage/postgres_store.h"
#include "storage/room_epoch.h"
#include "storage/sqlite_store.h"

namespace roomsync {

absl::StatusOr<std::string> NewRoomEpoch() { return storage_internal::NewRoomEpoch(); }

absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url,
                                                 const StoreOptions& options) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("StoreOptions.max_connections must be at least 1");
  }
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.starts_with(kSqlite)) {
    absl::StatusOr<std::unique_ptr<SqliteStore>> store =
        SqliteStore::Open(std::string(url.substr(kSqlite.size())));
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(*std::move(store));
  }
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    absl::StatusOr<std::unique_ptr<PostgresStore>> store =
        PostgresStore::Open(std::string(url), options.max_connections);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(*std::move(store));
  }
  // Not echoing the URL: it may carry a password.
  return absl::InvalidArgumentError(
      "store URL must start with sqlite:, postgresql:// or postgres://");
}

}  // namespace roomsync
