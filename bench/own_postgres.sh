# Sourced first by the bench scripts that want a PostgreSQL of their own
# (the same settings every run, never a server the caller had): re-runs
# the script under scripts/with-postgres.sh (from the repository root),
# then sets pg_port and psql_ for it.
if [[ -z "${ROOMSYNC_BENCH_OWN_POSTGRES:-}" ]]; then
  export ROOMSYNC_BENCH_OWN_POSTGRES=1
  unset ROOMSYNC_TEST_PGURL
  exec bash scripts/with-postgres.sh bash "$0" "$@"
fi
unset ROOMSYNC_BENCH_OWN_POSTGRES  # a script this one starts gets its own again
pg_port=${ROOMSYNC_TEST_PGURL##*:}
pg_port=${pg_port%%/*}
psql_() {
  PGOPTIONS="-c client_min_messages=warning" /usr/lib/postgresql/15/bin/psql -q -h 127.0.0.1 \
    -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 "$@"
}
