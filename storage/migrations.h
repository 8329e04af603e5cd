// The versioned schema of both backends. Each store applies, at start-up
// and under a database-wide lock, every migration whose version is not yet
// in schema_migrations, in version order, each in the same transaction as
// its schema_migrations row: a crash mid-way leaves a clean prefix.
//
// Append new migrations; never edit one that has shipped.
#ifndef ROOMSYNC_STORAGE_MIGRATIONS_H_
#define ROOMSYNC_STORAGE_MIGRATIONS_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"

namespace roomsync::storage_internal {

struct Migration {
  int version;
  std::string_view sql;  // one or more statements
};

std::span<const Migration> PostgresMigrations();
std::span<const Migration> SqliteMigrations();

// Store::Ping's verdict on the highest version in schema_migrations:
// kFailedPrecondition below the last of `migrations` (a newer one is fine:
// a newer binary of a rolling upgrade migrated first, and migrations only
// add).
absl::Status CheckSchemaVersion(int64_t applied, std::span<const Migration> migrations);

}  // namespace roomsync::storage_internal

#endif  // ROOMSYNC_STORAGE_MIGRATIONS_H_
