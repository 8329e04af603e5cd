#!/usr/bin/env bash
# The push path at few clients (issue 14; docs/benchmarks.md, "The push
# path: direct calls against gRPC, and against PostgreSQL"): single-
# document pushes into one room of the single node `roomsync` on
# PostgreSQL, with its gateway calling the room service directly
# (--room_calls=direct, the default) and over the in-process gRPC channel
# (--room_calls=grpc, the design before), against pgbench running the
# store's one-document commit on the same server (one room, and one room
# per client), all in the same run, alternating per client count.
#
#   bench/push_path.sh            # 1, 2, 8, 16, 64 clients, 2 rounds of 6 s
#   bench/push_path.sh --quick    # 1 and 8 clients, 1 round of 2 s (a smoke run)
#
# Needs a build (ROOMSYNC_BENCH_BUILD_DIR, default build/). Writes
# OUT/push_{direct,grpc}_C_R.json, OUT/pgbench_{one_room,room_per_client}_C_R.txt
# and OUT/push_path.md (OUT: $ROOMSYNC_BENCH_OUT or build/push-path).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build_dir=${ROOMSYNC_BENCH_BUILD_DIR:-build}
out=${ROOMSYNC_BENCH_OUT:-$build_dir/push-path}
counts="1 2 8 16 64"; rounds=2; dur=6; warm=1
if [[ ${1:-} == --quick ]]; then counts="1 8"; rounds=1; dur=2; fi

# shellcheck source=bench/own_postgres.sh
source bench/own_postgres.sh
rm -rf "$out"
mkdir -p "$out"

# shellcheck source=bench/pgbench_reference.sh
source "$root/bench/pgbench_reference.sh"
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

psql_ -d postgres -c "CREATE DATABASE roomsync" >/dev/null
store="postgresql://postgres@127.0.0.1:$pg_port/roomsync"

run_roomsync() {  # room_calls clients round
  local calls=$1 clients=$2 round=$3 port
  port=$(free_port)
  "$build_dir"/services/node/roomsync --http "127.0.0.1:$port" --store "$store" --auth off \
    --http_threads 2 --log_level warning --room_calls "$calls" >>"$out/roomsync.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  "$build_dir"/bench/roomsync-bench push --url "http://127.0.0.1:$port" --clients "$clients" \
    --rooms 1 --duration_s "$dur" --warmup_s "$warm" --server_pid "$pid" \
    --label "$calls" --out "$out/push_${calls}_${clients}_${round}.json" 2>>"$out/bench.log"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

# The reference's tables are the store's own, migrated by a first start.
run_roomsync direct 1 0
prepare_pgbench_reference roomsync ref
for shape in one_room room_per_client; do write_pgbench_commit "$shape" "$out/pgbench_$shape.sql"; done

for round in $(seq "$rounds"); do
  for clients in $counts; do
    echo "push_path: round $round, $clients client(s)" >&2
    run_roomsync grpc "$clients" "$round"
    run_roomsync direct "$clients" "$round"
    for shape in one_room room_per_client; do
      run_pgbench "$clients" "$dur" "$out/pgbench_$shape.sql" ref \
        "$out/pgbench_${shape}_${clients}_${round}.txt"
    done
  done
done

python3 - "$out" "$rounds" "$counts" <<'PY'
import glob, json, os, re, statistics, sys
out, rounds, counts = sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3].split()]
def median(xs):
    return statistics.median(xs) if xs else None
def roomsync(calls, c):
    runs = [json.load(open(p))["series"][0]
            for p in sorted(glob.glob(os.path.join(out, f"push_{calls}_{c}_[1-9]*.json")))]
    return (median([r["pushes_per_s"] for r in runs]),
            median([r["latency"]["p99_us"] / 1000 for r in runs]),
            median([r["server_cpu_us_per_push"] for r in runs]))
def pgbench(shape, c):
    tps = []
    for p in sorted(glob.glob(os.path.join(out, f"pgbench_{shape}_{c}_*.txt"))):
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", open(p).read())
        if m: tps.append(float(m.group(1)))
    return median(tps)
def f(x, d=0):
    return "n/a" if x is None else f"{x:,.{d}f}"
def ratio(a, b):
    return "n/a" if a is None or not b else f"{a / b:.2f}"
lines = [f"Median of {rounds} round(s) per point; one room for roomsync.", "",
         "| clients | grpc pushes/s | p99 ms | CPU µs/push | direct pushes/s | p99 ms | CPU µs/push "
         "| pgbench 1 room tps | pgbench room/client tps | direct / grpc | direct / pgbench 1 room "
         "| direct / best pgbench |",
         "|" + "---|" * 12]
for c in counts:
    g, d = roomsync("grpc", c), roomsync("direct", c)
    one, per = pgbench("one_room", c), pgbench("room_per_client", c)
    best = max([x for x in (one, per) if x is not None], default=None)
    lines.append("| " + " | ".join([str(c), f(g[0]), f(g[1], 2), f(g[2]), f(d[0]), f(d[1], 2), f(d[2]),
                                    f(one), f(per), ratio(d[0], g[0]), ratio(d[0], one),
                                    ratio(d[0], best)]) + " |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "push_path.md"), "w").write(text)
print(text)
PY
