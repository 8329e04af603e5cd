#!/usr/bin/env bash
# Runs CMD ARGS... with ROOMSYNC_TEST_PGURL pointing at a throwaway
# PostgreSQL 15, so that a whole test run shares one server instead of each
# test binary starting its own (tests/support/pg_harness.h does that when
# the variable is unset).
#
#   scripts/with-postgres.sh ctest --test-dir build -R Store --output-on-failure
#
# If ROOMSYNC_TEST_PGURL is already set, the command runs against it as is.
# The server listens on 127.0.0.1 only, on a free port, with trust auth and
# fsync on; it is stopped and its directory removed on exit. Exits with the
# command's exit code.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi
if [[ -n "${ROOMSYNC_TEST_PGURL:-}" ]]; then
  exec "$@"
fi

pg_bin=/usr/lib/postgresql/15/bin
dir=$(mktemp -d "${TMPDIR:-/tmp}/roomsync-pg-XXXXXX")
as_user=()
if [[ $(id -u) -eq 0 ]]; then
  # initdb refuses to run as root.
  chown postgres: "$dir"
  as_user=(runuser -u postgres --)
fi

cleanup() {
  "${as_user[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -N: initdb's own fsyncs are pointless for a throwaway cluster; the server
# keeps fsync on.
if ! "${as_user[@]}" "$pg_bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
    --locale=C -N >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  exit 1
fi

started=0
for _ in 1 2 3 4 5 6 7 8; do
  # A random high port; if something holds it, the server fails to bind
  # and we try another.
  port=$((20000 + RANDOM % 40000))
  if "${as_user[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -c max_connections=300 -c unix_socket_directories=$dir" \
      start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [[ $started -ne 1 ]]; then
  echo "with-postgres: PostgreSQL did not start:" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
fi

export ROOMSYNC_TEST_PGURL="postgresql://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: $ROOMSYNC_TEST_PGURL" >&2
set +e
"$@"
status=$?
set -e
exit $status
