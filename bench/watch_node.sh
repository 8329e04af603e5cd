#!/usr/bin/env bash
# The room node's side of Watch at room counts a gateway cannot reach on
# this machine (one SSE socket per room; docs/benchmarks.md, "Watch at
# 100,000 rooms: the room node alone"): `roomsync-bench grpc-watch` holds
# one Watch call to one roomsync-room and subscribes N rooms on it from
# their checkpoints, as a gateway does after the node came back.
#
#   bench/watch_node.sh                      # N = 100,000 (~2 min)
#   bench/watch_node.sh --rooms 1000,100000 --repeat 2
#   bench/watch_node.sh --quick              # smoke: N = 2,000, < 30 s; exit 1 unless every room went live
#
# For every N and each mode in turn (batch: the call's requests and events
# batched, as the gateway does with a node that reads batches; single: one
# request and one event per message, as before batching), on a fresh
# roomsync-room (new SQLite file, --auth off, plaintext gRPC): one
# document pushed into each of the N rooms, then
#   rooms_in_memory  all N subscribed on one new Watch call (every request
#                    written at once), the time until every room is Live;
#   after_restart    kill -9 of the node, a restart on the same port and
#                    file, and all N subscribed again from the same
#                    checkpoints on a new call: what re-subscribing a
#                    gateway's rooms costs a node that holds none of them
#                    in memory (each room's head is read from the store).
# Also the node's VmRSS. Results: OUT/watch_node_MODE_N.json (the
# generator's report) and OUT/run.txt; logs in OUT/logs/.
#
# Options:
#   --rooms LIST     room counts, comma-separated (default 100000; quick 2000)
#   --modes LIST     default batch,single (in this order at every N)
#   --repeat K       every N K times (files get a _rK suffix)
#   --store KIND     sqlite (default) or the PostgreSQL URL of an empty database
#   --build-dir DIR  where roomsync-room and roomsync-bench are (default build/)
#   --out DIR        results (default bench/results/<time>-watch-node[-quick])
#   --quick          N = 2,000; exit 1 unless both rounds saw every room Live
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=watch_node.sh
# shellcheck source=bench/script_lib.sh
source "$repo/bench/script_lib.sh"

quick=0
rooms=
repeat=1
modes=batch,single
store=sqlite
build_dir="$repo/build"
out=
while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --rooms) rooms=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    --modes) modes=${2:?}; shift 2 ;;
    --store) store=${2:?}; shift 2 ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) unknown_argument "$1" ;;
  esac
done
if [[ $quick == 1 ]]; then rooms=${rooms:-2000}; else rooms=${rooms:-100000}; fi
IFS=, read -r -a room_list <<<"$rooms"
for n in "${room_list[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1)) || die "--rooms: $n is not a positive whole number"
done
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  [[ $m == batch || $m == single ]] || die "--modes: $m is not batch or single"
done
[[ "$repeat" =~ ^[0-9]+$ ]] && ((repeat >= 1)) || die "--repeat must be a positive whole number"
command -v python3 >/dev/null || die "python3 is missing"

build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "--build-dir $build_dir does not exist"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/roomsync-watch-node-XXXXXX")
mkdir "$tmp/bin"
for b in services/room/roomsync-room bench/roomsync-bench; do
  [[ -x "$build_dir/$b" ]] || die "$build_dir/$b is missing: cmake --build $build_dir --target $(basename "$b")"
  cp "$build_dir/$b" "$tmp/bin/"
done
if [[ -z "$out" ]]; then
  out=$repo/bench/results/$(date +%Y%m%d-%H%M%S)-watch-node
  ((quick == 0)) || out=$out-quick
fi
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
rm -f "$out"/watch_node_*.json "$out"/run.txt "$out"/logs/*.log

room_pid=
cleanup() {
  local code=$?
  trap - EXIT INT TERM HUP
  [[ -n "$room_pid" ]] && kill -9 "$room_pid" 2>/dev/null
  [[ -f "$tmp/room.pid" ]] && kill -9 "$(cat "$tmp/room.pid")" 2>/dev/null
  rm -rf "$tmp"
  exit "$code"
}
trap_cleanup_on_exit

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The restart command grpc-watch runs between its rounds: kill -9 the node
# whose pid is in room.pid, start it again on the same port and store, wait
# until it listens, print its pid.
cat >"$tmp/restart.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
tmp=$1 port=$2 store=$3 log=$4
kill -9 "$(cat "$tmp/room.pid")"
while kill -0 "$(cat "$tmp/room.pid")" 2>/dev/null; do sleep 0.01; done
"$tmp/bin/roomsync-room" --grpc "127.0.0.1:$port" --store "$store" --auth off --grpc_plaintext \
  2>>"$log" </dev/null >/dev/null &
echo $! >"$tmp/room.pid"
for ((i = 0; i < 400; i++)); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.05
done
cat "$tmp/room.pid"
EOF
chmod +x "$tmp/restart.sh"

failed=0
{
  describe_sources_and_machine "$repo"
  echo "store ${store%%:*}"
  echo "start $(date -u +%FT%TZ)"
} >"$out/run.txt"
for ((r = 1; r <= repeat; r++)); do
  for n in "${room_list[@]}"; do
    for mode in "${mode_list[@]}"; do
      tag=${mode}_$n
      ((repeat == 1)) || tag=${tag}_r$r
      port=$(free_port)
      if [[ $store == sqlite ]]; then
        point_store=sqlite:$tmp/room-$tag.db
      else
        point_store=$store
      fi
      log_file=$out/logs/room_$tag.log
      "$tmp/bin/roomsync-room" --grpc "127.0.0.1:$port" --store "$point_store" --auth off \
        --grpc_plaintext 2>>"$log_file" </dev/null >/dev/null &
      room_pid=$!
      disown "$room_pid"  # restart.sh kills it: no "Killed" job report
      echo "$room_pid" >"$tmp/room.pid"
      log "$tag: node $room_pid on port $port"
      "$tmp/bin/roomsync-bench" grpc-watch --url "127.0.0.1:$port" --room_counts "$n" \
        --seed_clients 32 --server_pid "$room_pid" --room_prefix "w$r$mode" \
        --watch_batch="$([[ $mode == batch ]] && echo true || echo false)" \
        --restart_cmd "$tmp/restart.sh $tmp $port $point_store $log_file" \
        --out "$out/watch_node_$tag.json" 2>>"$out/logs/generator.log" ||
        die "$tag: roomsync-bench grpc-watch failed (see $out/logs/generator.log)"
      tail -n 1 "$out/logs/generator.log" >&2
      kill -9 "$(cat "$tmp/room.pid")" 2>/dev/null || true
      room_pid=
      rm -f "$tmp/room-$tag.db" "$tmp/room-$tag.db-wal" "$tmp/room-$tag.db-shm"
      python3 - "$out/watch_node_$tag.json" "$mode" <<'EOF' || failed=1
import json, sys
point = json.load(open(sys.argv[1]))["series"][0]
rounds = [point["rooms_in_memory"], point["after_restart"]]
batched = all(r["batched_requests"] for r in rounds) == (sys.argv[2] == "batch")
sys.exit(0 if all(r["complete"] for r in rounds) and batched and not point["errors"] else 1)
EOF
    done
  done
done
echo "end $(date -u +%FT%TZ)" >>"$out/run.txt"
# The table of docs/benchmarks.md.
python3 - "$out" >"$out/watch_node.md" <<'EOF'
import glob, json, os, sys
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "watch_node_*.json"))):
    tag = os.path.basename(f)[len("watch_node_"):-len(".json")]
    p = json.load(open(f))["series"][0]
    warm, cold = p["rooms_in_memory"], p["after_restart"]
    rows.append((tag, p["rooms"], warm, cold, p))
print("| run | rooms | rooms in memory: every room Live after s | after kill -9 and restart: s | rooms/s after restart | node MiB after restart, all subscribed |")
print("|---|---|---|---|---|---|")
for tag, n, warm, cold, p in rows:
    print(f"| {tag} | {n:,} | {warm['seconds']:.2f} | {cold['seconds']:.2f} | {cold['rooms_per_s']:,.0f} | {cold['node_rss_after_kib'] / 1024:.0f} |")
EOF
cat "$out/watch_node.md" >&2
if ((failed)); then
  log "a round did not see every room Live, or seeding failed (see the reports in $out)"
  exit 1
fi
log "results in $out"
