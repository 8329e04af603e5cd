#!/usr/bin/env bash
# The room digest's cost per push, measured in the same run with and
# without it (docs/benchmarks.md, "The room digest's cost per push"): the
# single node `roomsync` on a fresh SQLite file, once as shipped and once
# with --unsafe_skip_room_digest (benchmarks only: commits then leave the
# digest alone), alternating, ROUNDS times each, with `roomsync-bench push`
# closed loop (16 clients, one room) at 1 and at 10 documents per push.
# Reports the server CPU per push of each (user + system of the roomsync
# process over the measured window) and the difference.
#
#   bench/digest_cost.sh              # 3 rounds of 8 s per point
#   bench/digest_cost.sh --quick      # 1 round of 2 s (a smoke run)
#
# Needs a build (ROOMSYNC_BENCH_BUILD_DIR, default build/). Writes
# OUT/push_{with,without}_{1,10}_R.json and OUT/digest_cost.md (OUT:
# $ROOMSYNC_BENCH_OUT or build/digest-cost).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${ROOMSYNC_BENCH_BUILD_DIR:-build}
out=${ROOMSYNC_BENCH_OUT:-$build_dir/digest-cost}
rounds=3; dur=8; warm=2
if [[ ${1:-} == --quick ]]; then rounds=1; dur=2; warm=1; fi
mkdir -p "$out"

pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

run_point() {  # mode docs round
  local mode=$1 docs=$2 round=$3 dir port flags=()
  [[ $mode == without ]] && flags=(--unsafe_skip_room_digest)
  dir=$(mktemp -d)
  port=$(free_port)
  "$build_dir"/services/node/roomsync --http "127.0.0.1:$port" --store "sqlite:$dir/room.db" \
    --auth off --http_threads 2 --log_level warning "${flags[@]}" >>"$out/roomsync.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  "$build_dir"/bench/roomsync-bench push --url "http://127.0.0.1:$port" --clients 16 \
    --docs_per_push "$docs" --duration_s "$dur" --warmup_s "$warm" --server_pid "$pid" \
    --label "digest $mode" --out "$out/push_${mode}_${docs}_${round}.json" 2>>"$out/bench.log"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  rm -rf "$dir"
}

for round in $(seq "$rounds"); do
  for docs in 1 10; do
    for mode in with without; do run_point "$mode" "$docs" "$round"; done
  done
done

python3 - "$out" "$rounds" <<'EOF'
import glob, json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def runs(mode, docs):
    found = []
    for path in sorted(glob.glob(os.path.join(out, f"push_{mode}_{docs}_*.json"))):
        report = json.load(open(path))
        run = report["series"][0]
        found.append(run)
    return found
lines = ["| docs per push | digest | pushes/s | server CPU µs/push (median of %d) |" % rounds,
         "|---|---|---|---|"]
cpu = {}
for docs in (1, 10):
    for mode in ("with", "without"):
        rs = runs(mode, docs)
        per_push = statistics.median(r["server_cpu_us_per_push"] for r in rs)
        rate = statistics.median(r["pushes_per_s"] for r in rs)
        cpu[(docs, mode)] = per_push
        lines.append(f"| {docs} | {mode} | {rate:,.0f} | {per_push:.1f} |")
lines.append("")
for docs in (1, 10):
    d = cpu[(docs, "with")] - cpu[(docs, "without")]
    lines.append(f"{docs} document(s) per push: the digest costs {d:+.1f} µs of server CPU per push "
                 f"({d / cpu[(docs, 'without')] * 100:+.1f}%).")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "digest_cost.md"), "w").write(text)
print(text)
EOF
