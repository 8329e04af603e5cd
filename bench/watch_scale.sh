#!/usr/bin/env bash
# The gateway's upstream change streams, multiplexed vs per room: one
# gRPC Watch call per room node carrying every room with SSE sessions
# (roomsync-gateway --upstream_streams=watch, the default) against one
# Subscribe call per room (--upstream_streams=per_room, the old design),
# measured in the same run, the two modes alternating (docs/benchmarks.md,
# "Watch: one upstream call per room node vs one per room").
#
#   bench/watch_scale.sh                          # N = 1,000, 5,000, 18,000 rooms (~9 min)
#   bench/watch_scale.sh --quick                  # smoke: N = 500, short runs, < 60 s
#   bench/watch_scale.sh --rooms 1000,5000 --out /tmp/watch
#
# For every room count N, and for each mode in turn, on fresh processes
# each time (one roomsync-room on a new SQLite file, --auth off, plaintext
# gRPC, --metrics; one roomsync-gateway in front of it):
#
#   spread  `roomsync-bench fanout` with N SSE subscribers on N rooms (one
#           each) and publishers at --rate documents/s over all rooms:
#           upstream streams held (the gateway's
#           roomsync_gateway_upstream_streams), deliveries/s, delivery
#           p50/p99, RESYNCs, and the VmRSS of both processes: before load,
#           with every session open and idle (just before publishing) and
#           the peak. Also the time from the start of the connect phase
#           until the room node counts N subscribers
#           (roomsync_room_subscribers): what subscribing every room costs a
#           fresh gateway.
#   one     the same N subscribers in ONE room, at a trickle (the memory
#           baseline: the same SSE sessions, one upstream subscription), so
#           that (idle RSS of spread - idle RSS of one) / N is what an active
#           room costs above its SSE session.
#   resub   spread again with a long window; once the room node counts N
#           subscribers and publishing has run for a few seconds, kill -9
#           the room node and restart it on the same ports and SQLite file:
#           the time from the restart until it counts N subscribers again,
#           and the RESYNCs, disconnects and missing deliveries the SSE
#           sessions saw (the fanout report).
#
# A sampler (python3, in the background) polls the room node's /metrics
# every 50 ms (roomsync_room_subscribers) and, every 0.5 s, the gateway's
# /metrics (upstream_streams, upstream_subscriptions) and both processes'
# VmRSS (/proc/PID/status), into OUT/samples_MODE_N_KIND.csv; the events
# (process start, fanout start, kill, restart) go to
# OUT/events_MODE_N_KIND.txt, the generator's report to
# OUT/fanout_MODE_N_KIND.json, the processes' logs to OUT/logs/.
# bench/watch_report.py turns the directory into watch.json and watch.md.
#
# Options:
#   --rooms LIST       room counts, comma-separated (default 1000,5000,18000;
#                      one SSE subscriber per room: the generator and the
#                      gateway each hold one socket per subscriber, so N is
#                      bounded by the open-file limit, see below)
#   --modes LIST       default per_room,watch (in this order at every point)
#   --kinds LIST       default spread,one,resub
#   --rate R           published documents/s over all rooms (default 2000;
#                      quick 500)
#   --publishers P     publisher connections (default 16)
#   --duration S       measured seconds of spread, after 2 s warm-up
#                      (default 10; quick 3, after 1 s)
#   --resub-duration S measured seconds of resub (default 30; quick 6)
#   --kill-after S     seconds of publishing before the kill (default 3; quick 2)
#   --repeat K         the whole sweep K times (files get a _rK suffix)
#   --build-dir DIR    where roomsync-room, roomsync-gateway and roomsync-bench
#                      are built (default build/)
#   --bin-dir DIR      or a directory holding the three binaries; either way
#                      they are copied first, so that a rebuild during the run
#                      cannot change what is measured
#   --out DIR          results (default bench/results/<time>-watch[-quick])
#   --quick            N = 500, the short durations above, and exit 1 unless
#                      every subscriber opened, watch held 1 upstream stream
#                      and per_room N, and every resub completed without a
#                      RESYNC or a disconnect
#
# The open-file limit is raised to the hard limit for every process; N
# sessions need N descriptors in the generator and in the gateway (on the
# development container the hard limit is 20,000, so N <= ~19,500).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=watch_scale.sh

# shellcheck source=bench/script_lib.sh
source "$repo/bench/script_lib.sh"

quick=0
rooms=
modes=per_room,watch
kinds=spread,one,resub
rate=
publishers=16
duration=
resub_duration=
kill_after=
repeat=1
build_dir="$repo/build"
bin_dir=
out=
while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --rooms) rooms=${2:?}; shift 2 ;;
    --modes) modes=${2:?}; shift 2 ;;
    --kinds) kinds=${2:?}; shift 2 ;;
    --rate) rate=${2:?}; shift 2 ;;
    --publishers) publishers=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --resub-duration) resub_duration=${2:?}; shift 2 ;;
    --kill-after) kill_after=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) unknown_argument "$1" ;;
  esac
done
if [[ $quick == 1 ]]; then
  rooms=${rooms:-500}
  rate=${rate:-500}
  duration=${duration:-3}
  resub_duration=${resub_duration:-6}
  kill_after=${kill_after:-2}
  warmup=1
else
  rooms=${rooms:-1000,5000,18000}
  rate=${rate:-2000}
  duration=${duration:-10}
  resub_duration=${resub_duration:-30}
  kill_after=${kill_after:-3}
  warmup=2
fi
IFS=, read -r -a room_list <<<"$rooms"
IFS=, read -r -a mode_list <<<"$modes"
IFS=, read -r -a kind_list <<<"$kinds"
for n in "${room_list[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 2)) || die "--rooms: $n is not a number >= 2"
done
for m in "${mode_list[@]}"; do
  [[ $m == watch || $m == per_room ]] || die "--modes: $m is not watch or per_room"
done
for k in "${kind_list[@]}"; do
  [[ $k == spread || $k == one || $k == resub ]] || die "--kinds: $k is not spread, one or resub"
done
for v in rate publishers duration resub_duration kill_after repeat; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || die "--${v//_/-} must be a positive whole number"
done
((resub_duration > kill_after + 2)) || die "--resub-duration must exceed --kill-after by more than 2 s"
command -v curl >/dev/null || die "curl is missing"
command -v python3 >/dev/null || die "python3 is missing"

# 1 subscriber = 1 socket in the generator and one in the gateway.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
for n in "${room_list[@]}"; do
  ((n + 200 <= nofile)) || die "--rooms $n needs more than the open-file limit ($nofile) allows"
done

# ------------------------------------------------------------ binaries

tmp=$(mktemp -d "${TMPDIR:-/tmp}/roomsync-watch-XXXXXX")
mkdir "$tmp/bin"
if [[ -n "$bin_dir" ]]; then
  src_bins=("$bin_dir/roomsync-room" "$bin_dir/roomsync-gateway" "$bin_dir/roomsync-bench")
  built_from=$bin_dir
else
  build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "--build-dir $build_dir does not exist"
  src_bins=("$build_dir/services/room/roomsync-room" "$build_dir/gateway/roomsync-gateway"
    "$build_dir/bench/roomsync-bench")
  built_from=$build_dir
fi
for b in "${src_bins[@]}"; do
  [[ -x "$b" ]] || die "$b is missing: cmake --build build --target $(basename "$b")"
done
cp "${src_bins[@]}" "$tmp/bin/"
room_bin=$tmp/bin/roomsync-room
gateway_bin=$tmp/bin/roomsync-gateway
bench=$tmp/bin/roomsync-bench

if [[ -z "$out" ]]; then
  out=$repo/bench/results/$(date +%Y%m%d-%H%M%S)-watch$([[ $quick == 1 ]] && echo -quick)
fi
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
# What an earlier run into the same directory wrote (our names only).
rm -f "$out"/fanout_*.json "$out"/samples_*.csv "$out"/events_*.txt "$out"/run.txt \
  "$out"/generator.log "$out"/watch.json "$out"/watch.md "$out"/logs/*.log

# ------------------------------------------------------------ cleanup

room_pid=
gateway_pid=
sampler_pid=
gen_pid=
stop_pid() {  # PID: TERM, then KILL after 5 s
  local pid=$1 i
  [[ -n "$pid" ]] || return 0
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop_all() {
  stop_pid "$gen_pid"; gen_pid=
  stop_pid "$sampler_pid"; sampler_pid=
  stop_pid "$gateway_pid"; gateway_pid=
  stop_pid "$room_pid"; room_pid=
}
cleanup() {
  local code=$?
  trap - EXIT INT TERM HUP
  stop_all
  rm -rf "$tmp"
  exit "$code"
}
trap_cleanup_on_exit

# ------------------------------------------------------------ helpers

now() { date +%s.%N; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
wait_http() {  # URL SECONDS: until it answers
  local i
  for ((i = 0; i < $2 * 20; i++)); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.05
  done
  return 1
}
room_subscribers() {
  curl -s --max-time 1 "http://127.0.0.1:$metrics_port/metrics" |
    awk '/^roomsync_room_subscribers / {print $2 + 0; found = 1} END {if (!found) print -1}'
}

# The sampler: every 50 ms the room node's subscriber count, every 0.5 s
# also the gateway's upstream gauges and both processes' VmRSS. CSV:
# t (epoch s), full (0/1), room_subscribers, gw_streams, gw_subscriptions,
# gw_rss_kib, room_rss_kib (-1 = not reachable or not sampled).
cat >"$tmp/sampler.py" <<'EOF'
import sys, time, urllib.request
room_url, gw_url, gw_pid, room_pid_file, out = sys.argv[1:6]

def metrics(url, names):
    try:
        text = urllib.request.urlopen(url, timeout=0.5).read().decode()
    except Exception:
        return {n: -1 for n in names}
    vals = {n: -1 for n in names}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in vals:
            vals[name] = int(float(value))
    return vals

def rss(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except Exception:
        pass
    return -1

f = open(out, "w", buffering=1)
f.write("t,full,room_subscribers,gw_streams,gw_subscriptions,gw_rss_kib,room_rss_kib\n")
tick = 0
next_t = time.time()
while True:
    t = time.time()
    subs = metrics(room_url, ["roomsync_room_subscribers"])["roomsync_room_subscribers"]
    if tick % 10 == 0:
        g = metrics(gw_url, ["roomsync_gateway_upstream_streams", "roomsync_gateway_upstream_subscriptions"])
        try:
            room_pid = open(room_pid_file).read().strip()
        except Exception:
            room_pid = ""
        f.write(f"{t:.3f},1,{subs},{g['roomsync_gateway_upstream_streams']},"
                f"{g['roomsync_gateway_upstream_subscriptions']},{rss(gw_pid)},"
                f"{rss(room_pid) if room_pid else -1}\n")
    else:
        f.write(f"{t:.3f},0,{subs},-1,-1,-1,-1\n")
    tick += 1
    next_t += 0.05
    time.sleep(max(0.0, next_t - time.time()))
EOF

start_room() {  # TAG
  "$room_bin" --grpc "127.0.0.1:$grpc_port" --store "sqlite:$db" --auth off --grpc_plaintext \
    --metrics "127.0.0.1:$metrics_port" 2>>"$out/logs/room_$1.log" &
  room_pid=$!
  echo "$room_pid" >"$tmp/room.pid"
}

# One run: fresh room node and gateway; KIND spread, one or resub.
run_point() {  # MODE N KIND SUFFIX
  local mode=$1 n=$2 kind=$3 suffix=$4
  local tag="${mode}_${n}_${kind}${suffix}" ev sub_rooms point_rate point_duration point_warmup i subs
  ev=$out/events_$tag.txt
  db=$tmp/room-$tag.db
  rm -f "$db" "$db"-wal "$db"-shm
  grpc_port=$(free_port)
  metrics_port=$(free_port)
  http_port=$(free_port)
  {
    echo "mode $mode"
    echo "rooms $n"
    echo "kind $kind"
    echo "loadavg_before $(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$ev"
  start_room "$tag"
  wait_http "http://127.0.0.1:$metrics_port/metrics" 20 || die "$tag: the room node did not start (see $out/logs/room_$tag.log)"
  "$gateway_bin" --http "127.0.0.1:$http_port" --room_service "127.0.0.1:$grpc_port" --auth off \
    --grpc_plaintext --upstream_streams "$mode" >>"$out/logs/gateway_$tag.log" 2>&1 &
  gateway_pid=$!
  wait_http "http://127.0.0.1:$http_port/metrics" 20 || die "$tag: the gateway did not start (see $out/logs/gateway_$tag.log)"
  sleep 0.5
  {
    echo "gateway_pid $gateway_pid"
    echo "room_pid $room_pid"
    echo "baseline_gw_rss_kib $(rss_kib "$gateway_pid")"
    echo "baseline_room_rss_kib $(rss_kib "$room_pid")"
  } >>"$ev"
  python3 "$tmp/sampler.py" "http://127.0.0.1:$metrics_port/metrics" "http://127.0.0.1:$http_port/metrics" \
    "$gateway_pid" "$tmp/room.pid" "$out/samples_$tag.csv" &
  sampler_pid=$!
  sleep 0.3

  case $kind in
    spread) sub_rooms=$n; point_rate=$rate; point_duration=$duration; point_warmup=$warmup ;;
    one) sub_rooms=1; point_rate=2; point_duration=1; point_warmup=0 ;;
    resub) sub_rooms=$n; point_rate=$rate; point_duration=$resub_duration; point_warmup=1 ;;
  esac
  log "$tag: fanout, $n subscribers on $sub_rooms room(s), $point_rate docs/s, ${point_warmup}+${point_duration} s (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "fanout_start $(now)" >>"$ev"
  "$bench" fanout --url "http://127.0.0.1:$http_port" --subscribers "$n" --rooms "$sub_rooms" \
    --rate "$point_rate" --publishers "$([[ $kind == one ]] && echo 2 || echo "$publishers")" \
    --duration_s "$point_duration" --warmup_s "$point_warmup" \
    --server_pid "$gateway_pid,$room_pid" --label "watch-$tag" --out "$out/fanout_$tag.json" \
    2>>"$out/generator.log" &
  gen_pid=$!

  if [[ $kind == resub ]]; then
    # Every room subscribed upstream, and publishing for a while.
    for ((i = 0; i < 1200; i++)); do
      subs=$(room_subscribers)
      ((subs >= n)) && break
      kill -0 "$gen_pid" 2>/dev/null || die "$tag: the generator ended before $n subscribers (see $out/generator.log)"
      sleep 0.1
    done
    ((subs >= n)) || die "$tag: the room node never counted $n subscribers"
    echo "all_subscribed $(now)" >>"$ev"
    sleep $((1 + point_warmup + kill_after))
    echo "kill $(now)" >>"$ev"
    kill -9 "$room_pid"
    wait "$room_pid" 2>/dev/null || true
    echo "restart $(now)" >>"$ev"
    start_room "$tag"
    echo "room_pid_restarted $room_pid" >>"$ev"
    # The sampler's newest line, once it was taken after the restart.
    local restarted line
    restarted=$(awk '/^restart / {print $2}' "$ev")
    subs=-1
    for ((i = 0; i < 1200; i++)); do
      if ! kill -0 "$gateway_pid" 2>/dev/null; then
        echo "gateway_died $(now)" >>"$ev"
        log "$tag: the gateway died after the room node's restart (see $out/logs/gateway_$tag.log)"
        break
      fi
      line=$(tail -n 1 "$out/samples_$tag.csv")
      if awk -v t="${line%%,*}" -v r="$restarted" 'BEGIN {exit !(t + 0 > r + 0)}'; then
        subs=$(cut -d, -f3 <<<"$line")
        ((subs >= n)) && break
      fi
      sleep 0.05
    done
    if ((subs >= n)); then
      log "$tag: $n subscribers again $(awk -v t="${line%%,*}" -v r="$restarted" 'BEGIN {printf "%.2f", t - r}') s after the restart (sampler, 50 ms polls)"
    else
      log "$tag: the room node did not count $n subscribers again within 60 s"
    fi
  fi

  local status=0
  wait "$gen_pid" || status=$?
  gen_pid=
  ((status == 0)) || die "$tag: roomsync-bench fanout failed ($status; see $out/generator.log)"
  echo "fanout_end $(now)" >>"$ev"
  tail -n 1 "$out/generator.log" >&2
  echo "loadavg_after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$ev"
  stop_all
  rm -f "$db" "$db"-wal "$db"-shm
}

{
  echo "date $(date -u +%FT%TZ)"
  echo "binaries_from $built_from"
  describe_sources_and_machine "$repo"
  echo "binaries $(cd "$tmp/bin" && sha256sum roomsync-room roomsync-gateway roomsync-bench |
    awk '{printf "%s=%s ", $2, substr($1, 1, 12)}')"
  echo "built $(stat -c %y "${src_bins[1]}" | cut -d. -f1)"
  echo "nofile $nofile"
  echo "rooms $rooms"
  echo "modes $modes"
  echo "kinds $kinds"
  echo "rate $rate"
  echo "publishers $publishers"
  echo "duration_s $duration"
  echo "warmup_s $warmup"
  echo "resub_duration_s $resub_duration"
  echo "kill_after_s $kill_after"
  echo "repeat $repeat"
  echo "mode $([[ $quick == 1 ]] && echo quick || echo full)"
  echo "loadavg_start $(cat /proc/loadavg)"
} >"$out/run.txt"

log "results in $out"
for ((r = 1; r <= repeat; r++)); do
  suffix=
  ((repeat > 1)) && suffix=_r$r
  for n in "${room_list[@]}"; do
    for kind in "${kind_list[@]}"; do
      for mode in "${mode_list[@]}"; do
        run_point "$mode" "$n" "$kind" "$suffix"
      done
    done
  done
done
echo "loadavg_end $(cat /proc/loadavg)" >>"$out/run.txt"

check=()
[[ $quick == 1 ]] && check=(--check)
python3 "$repo/bench/watch_report.py" "${check[@]}" "$out"
