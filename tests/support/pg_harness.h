// A real PostgreSQL for tests, so that PostgreSQL tests never skip.
//
// If $ROOMSYNC_TEST_PGURL is set (scripts/with-postgres.sh sets it for a
// whole test run), tests use that server. Otherwise the first call starts a
// throwaway PostgreSQL 15 for this process: initdb + pg_ctl on a temp dir,
// a free port on 127.0.0.1 only, trust auth; as the `postgres` user when
// running as root, since initdb refuses root. It is stopped and its dir
// removed at exit (and by a watcher process if this one dies abruptly).
//
// Both functions are thread-safe and throw std::runtime_error with the
// server's log excerpt when the server cannot be started or reached.
#ifndef ROOMSYNC_TESTS_SUPPORT_PG_HARNESS_H_
#define ROOMSYNC_TESTS_SUPPORT_PG_HARNESS_H_

#include <string>

namespace roomsync::testing {

// libpq URI of the test server's maintenance database.
std::string TestPostgresUrl();

// Creates a new, uniquely named, empty database on the test server and
// returns its URI: each test gets its own schema and data. Databases are
// not dropped; they go away with the throwaway server.
std::string CreateTestDatabase();

}  // namespace roomsync::testing

#endif  // ROOMSYNC_TESTS_SUPPORT_PG_HARNESS_H_
