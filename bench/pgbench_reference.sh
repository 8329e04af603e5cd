# The push benchmarks' PostgreSQL reference (scripts/bench.sh,
# bench/push_path.sh): pgbench running the store's own commit for one room
# and one document. Sourced; needs psql_ and pg_port from the caller.

# Copies the migrated schema of database $1 (roomsync's store) into a new
# database $2, with 1001 rooms, so that indexes and storage settings are
# identical.
prepare_pgbench_reference() {
  local store_db=$1 ref_db=$2
  psql_ -d postgres -c "CREATE DATABASE $ref_db" >/dev/null
  /usr/lib/postgresql/15/bin/pg_dump -s -h 127.0.0.1 -p "$pg_port" -U postgres "$store_db" |
    psql_ -d "$ref_db" >/dev/null
  psql_ -d "$ref_db" -c "INSERT INTO rooms (room, epoch, last_seq) SELECT 'ref-' || g, 'e', 0 FROM generate_series(0, 1000) g" >/dev/null
}

# Writes the pgbench script for shape $1 (one_room: every client writes
# room ref-0; room_per_client: client i writes ref-i) to $2.
write_pgbench_commit() {
  local shape=$1 file=$2 room_expr="'ref-0'" doc
  [[ $shape == room_per_client ]] && room_expr="'ref-' || :client_id"
  # A ~300-byte chat message like roomsync-bench push sends.
  doc=$(python3 -c 'import base64,os; print("{\"id\":\"x\",\"timestamp\":1700000001000,\"iv\":\"%s\",\"ciphertext\":\"%s\"}" % (base64.b64encode(os.urandom(12)).decode(), base64.b64encode(os.urandom(162)).decode()))')
  # The store's commit (storage/postgres_statements.h kCommitSql) for one
  # room and one document, in its simplest single-room form: the fenced
  # sequence bump and the upsert in one autocommit statement.
  cat >"$file" <<SQL
\set n random(1, 2000000000)
WITH fence AS (
  UPDATE rooms SET last_seq = last_seq + 1 WHERE room = $room_expr RETURNING room, last_seq
)
INSERT INTO documents AS d (room, collection, id, seq, timestamp_ms, deleted, json)
SELECT fence.room, 'messages', 'm-' || :client_id || '-' || :n, fence.last_seq,
       1700000001000, false, convert_to('$doc', 'UTF8')
FROM fence
ON CONFLICT (room, collection, id) DO UPDATE SET
  seq = EXCLUDED.seq, timestamp_ms = EXCLUDED.timestamp_ms,
  deleted = EXCLUDED.deleted, json = EXCLUDED.json;
SQL
}

# pgbench with $1 clients for $2 s on script $3 against database $4;
# output to $5.
run_pgbench() {
  local clients=$1 seconds=$2 script=$3 db=$4 output=$5
  /usr/lib/postgresql/15/bin/pgbench -n -h 127.0.0.1 -p "$pg_port" -U postgres -M prepared \
    -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" -T "$seconds" -r -f "$script" "$db" \
    >"$output" 2>&1
}
