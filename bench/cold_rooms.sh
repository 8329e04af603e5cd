#!/usr/bin/env bash
# A push to a room nobody has opened yet, on PostgreSQL, with and without
# --create_rooms_on_commit in the same run (docs/benchmarks.md, "Cold
# rooms: open and first commit in one round trip"). For each room count
# N, alternating the two modes on a fresh database each time: the single
# node `roomsync` on a throwaway PostgreSQL 15 and `roomsync-bench rooms`
# (64 clients, open loop at --rate pushes/s spread over N rooms, so that
# with N large most pushes are a room's first). Reports pushes/s, p50/p99
# latency and server CPU per push, and the new-room guesses the node
# counted (roomsync_room_new_room_guesses_total).
#
#   bench/cold_rooms.sh                      # N = 10, 1000, 10000, 100000
#   bench/cold_rooms.sh --quick              # N = 10, 1000, 2 s each (a smoke run)
#
# Needs a build (ROOMSYNC_BENCH_BUILD_DIR, default build/). Writes
# OUT/rooms_{on,off}_N.json and OUT/cold_rooms.md (OUT: $ROOMSYNC_BENCH_OUT
# or build/cold-rooms).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${ROOMSYNC_BENCH_BUILD_DIR:-build}
out=${ROOMSYNC_BENCH_OUT:-$build_dir/cold-rooms}
counts="10 1000 10000 100000"; dur=10; warm=1; rate=4000
if [[ ${1:-} == --quick ]]; then counts="10 1000"; dur=2; rate=1000; fi

# shellcheck source=bench/own_postgres.sh
source bench/own_postgres.sh
mkdir -p "$out"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

run_point() {  # on|off N
  local mode=$1 n=$2 db="cold_${1}_${2}" port metrics
  psql_ -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  port=$(free_port); metrics=$(free_port)
  "$build_dir"/services/node/roomsync --http "127.0.0.1:$port" --metrics "127.0.0.1:$metrics" \
    --store "postgresql://postgres@127.0.0.1:$pg_port/$db" --auth off --http_threads 2 \
    --log_level warning --create_rooms_on_commit="$([[ $mode == on ]] && echo true || echo false)" \
    >>"$out/roomsync.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  "$build_dir"/bench/roomsync-bench rooms --url "http://127.0.0.1:$port" --clients 64 \
    --rate "$rate" --room_counts "$n" --duration_s "$dur" --warmup_s "$warm" --server_pid "$pid" \
    --label "create_rooms_on_commit=$mode" --out "$out/rooms_${mode}_${n}.json" 2>>"$out/bench.log"
  curl -fs "http://127.0.0.1:$metrics/metrics" | grep '^roomsync_room_new_room_guesses_total' \
    >"$out/guesses_${mode}_${n}.txt" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  psql_ -d postgres -c "DROP DATABASE $db" >/dev/null
}

for n in $counts; do
  for mode in off on; do run_point "$mode" "$n"; done
done

python3 - "$out" $counts <<'EOF'
import json, os, sys
out, counts = sys.argv[1], sys.argv[2:]
lines = ["| rooms | open + first commit | pushes/s | p50 ms | p99 ms | server CPU µs/push | new-room guesses hit / miss |",
         "|---|---|---|---|---|---|---|"]
for n in counts:
    for mode in ("off", "on"):
        s = json.load(open(os.path.join(out, f"rooms_{mode}_{n}.json")))["series"][0]
        guesses = {"hit": 0, "miss": 0}
        path = os.path.join(out, f"guesses_{mode}_{n}.txt")
        for line in open(path) if os.path.exists(path) else []:
            for k in guesses:
                if f'result="{k}"' in line:
                    guesses[k] = int(float(line.split()[-1]))
        how = "one statement" if mode == "on" else "two round trips"
        lines.append(f"| {int(n):,} | {how} | {s['pushes_per_s']:,.0f} | {s['latency']['p50_us'] / 1000:.2f} | "
                     f"{s['latency']['p99_us'] / 1000:.2f} | {s.get('server_cpu_us_per_push', 0):.0f} | "
                     f"{guesses['hit']:,} / {guesses['miss']:,} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "cold_rooms.md"), "w").write(text)
print(text)
EOF
