#!/usr/bin/env bash
# Scale-out on one machine: throughput through one gateway with 1, 2, 3
# room nodes when every room node is held to the same fixed CPU share
# (cgroup v1 cpu.cfs_quota_us), so that the nodes, not the two cores, are
# the limit (docs/benchmarks.md, "Scaling across room nodes under a CPU
# quota").
#
#   bench/scaling.sh                 # full: N = 1, 2, 3, 20 s per point
#   bench/scaling.sh --quick         # smoke: the same for 4 s per point, < 60 s
#
# For each N it starts deploy/local/topology.sh (a throwaway PostgreSQL 15,
# N roomsync-room --shard_leases, one roomsync-gateway), puts each room
# node into /sys/fs/cgroup/cpu/roomsync-bench/node-I with the same quota,
# and runs `roomsync-bench push` closed loop against the gateway with one
# room per client (a client always pushes to its own room, so a node's
# clients wait on that node only), many rooms so that every node's shards
# get some. CPU is counted per process group in the cpuacct hierarchy
# (/sys/fs/cgroup/cpuacct/roomsync-bench/{node-I,gateway,postgres,generator},
# accounting only, no limit) over the measured window, with the nodes'
# cpu.stat throttling counters: a node at its quota and throttled in most
# periods is the limit. The machine may run other work meanwhile: the
# whole bench (nodes, gateway, PostgreSQL, generator) runs in
# /sys/fs/cgroup/cpu/roomsync-bench with a large cpu.shares (--shares), so
# that under contention it gets the cores before other processes do, and
# the nodes still reach their quota. Writes OUT/push_nodes_N.json (the generator's
# report), OUT/cpu_nodes_N_{before,after}.txt, OUT/scaling.json and
# OUT/scaling.md (bench/scaling_report.py), and keeps each topology's logs
# in OUT/logs-N/. Everything is stopped and the cgroups removed on exit,
# also on error or a signal.
#
# Options:
#   --quick            N = 1 2 3, 4 s per point (1 s warm-up), and fail
#                      unless every point ran without errors and every
#                      node served pushes (exit 1)
#   --nodes "1 2 3"    room node counts
#   --cpu F            CPU share of each room node, in cores (default 0.15)
#   --period-us P      cpu.cfs_period_us of the nodes' cgroups (default 100000,
#                      the kernel's; the quota is F * P. Shorter periods
#                      lower p99, but a quota of a few ms loses part of
#                      itself to the scheduler's 5 ms runtime slices)
#   --shares S         cpu.shares of the bench's parent cgroup (default
#                      8192, 8x a nice-0 process; 0: leave the gateway,
#                      PostgreSQL and generator in the root group and
#                      the parent at the default 1024)
#   --clients C        closed-loop clients, one room each (default 192)
#   --duration S       measured seconds per point (default 20; quick 4)
#   --warmup S         unmeasured seconds first (default 3; quick 1)
#   --threads T        generator I/O threads (default 1)
#   --repeat R         run the whole sweep R times (default 1), as
#                      push_nodes_N_rK.json
#   --build-dir DIR    where roomsync-room, roomsync-gateway and
#                      roomsync-bench are built (default build/); they are
#                      copied first, so a rebuild during the run cannot
#                      mix binaries
#   --out DIR          results (default bench/results/<time>-scaling[-quick])
#
# Needs root (the cgroups; PostgreSQL runs as the postgres user) and cgroup
# v1 cpu and cpuacct hierarchies under /sys/fs/cgroup; exits 77 (skipped)
# without them. One run at a time on a machine (a lock file).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=scaling.sh
cg_cpu=/sys/fs/cgroup/cpu
cg_acct=/sys/fs/cgroup/cpuacct
group=roomsync-bench
psql=/usr/lib/postgresql/15/bin/psql

# shellcheck source=bench/script_lib.sh
source "$repo/bench/script_lib.sh"

quick=0
nodes="1 2 3"
cpu=0.15
period_us=100000
shares=8192
clients=192
duration=
warmup=
threads=1
repeat=1
build_dir="$repo/build"
out=
while (($#)); do
  case "$1" in
    --quick) quick=1; shift ;;
    --nodes) nodes=${2:?}; shift 2 ;;
    --cpu) cpu=${2:?}; shift 2 ;;
    --period-us) period_us=${2:?}; shift 2 ;;
    --shares) shares=${2:?}; shift 2 ;;
    --clients) clients=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --repeat) repeat=${2:?}; shift 2 ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) unknown_argument "$1" ;;
  esac
done
if [[ $quick == 1 ]]; then
  duration=${duration:-4}
  warmup=${warmup:-1}
else
  duration=${duration:-20}
  warmup=${warmup:-3}
fi
for n in $nodes; do
  [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 16)) || die "--nodes: $n is not 1..16"
done
[[ "$clients" =~ ^[0-9]+$ ]] && ((clients >= 1)) || die "--clients must be a positive number"
[[ "$period_us" =~ ^[0-9]+$ ]] && ((period_us >= 1000 && period_us <= 1000000)) ||
  die "--period-us must be 1000..1000000"
[[ "$shares" =~ ^[0-9]+$ ]] && ((shares == 0 || shares >= 2)) || die "--shares must be 0 or >= 2"
[[ "$duration" =~ ^[0-9]+$ ]] && ((duration >= 2)) || die "--duration must be >= 2 (whole seconds)"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "--warmup must be whole seconds"
[[ "$repeat" =~ ^[0-9]+$ ]] && ((repeat >= 1)) || die "--repeat must be >= 1"
quota_us=$(python3 -c "import sys; print(round(float(sys.argv[1]) * int(sys.argv[2])))" "$cpu" "$period_us") ||
  die "--cpu must be a number of cores"
((quota_us >= 1000)) || die "--cpu $cpu x --period-us $period_us is below the kernel's 1 ms minimum quota"

# ------------------------------------------------------------ prerequisites

[[ $(id -u) -eq 0 ]] || skip "needs root to create cgroups"
for h in "$cg_cpu" "$cg_acct"; do
  [[ -w "$h/cgroup.procs" ]] || skip "no writable cgroup v1 hierarchy at $h"
done
[[ -f "$cg_cpu/cpu.cfs_quota_us" ]] || skip "$cg_cpu has no cpu.cfs_quota_us"
[[ -f "$cg_acct/cpuacct.usage" ]] || skip "$cg_acct has no cpuacct.usage"
build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "--build-dir $build_dir does not exist"
for b in services/room/roomsync-room gateway/roomsync-gateway bench/roomsync-bench; do
  [[ -x "$build_dir/$b" ]] || die "$build_dir/$b is missing: cmake --build $build_dir --target $(basename "$b")"
done
[[ -x "$psql" ]] || die "$psql is missing: scripts/install-deps.sh installs postgresql-15"
command -v curl >/dev/null || die "curl is missing"
command -v flock >/dev/null || die "flock is missing (util-linux)"

# One run at a time: the cgroup names are fixed, and two runs would
# measure each other.
exec 8>/run/roomsync-bench-scaling.lock
flock -w 300 8 || die "another bench/scaling.sh holds /run/roomsync-bench-scaling.lock"

if [[ -z "$out" ]]; then
  out=$repo/bench/results/$(date +%Y%m%d-%H%M%S)-scaling$([[ $quick == 1 ]] && echo -quick)
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
# What an earlier run into the same directory wrote (only our own names),
# so that the report reads this run alone.
rm -rf "$out"/push_nodes_*.json "$out"/cpu_nodes_*.txt "$out"/leases_nodes_*.txt "$out"/logs-* \
  "$out"/run.txt "$out"/generator.log "$out"/topology.log "$out"/scaling.json "$out"/scaling.md

# ------------------------------------------------------------ cleanup

tmp=
topo=
gen_pid=
# Empties and removes our cgroups (in both hierarchies): any process still
# in one goes back to the root group first.
remove_cgroups() {
  local h d pid
  for h in "$cg_cpu" "$cg_acct"; do
    [[ -d "$h/$group" ]] || continue
    for d in "$h/$group"/*/; do
      [[ -d "$d" ]] || continue
      while read -r pid; do
        [[ -n "$pid" ]] && echo "$pid" >"$h/cgroup.procs" 2>/dev/null || true
      done <"$d/cgroup.procs"
      rmdir "$d" 2>/dev/null || echo "$self: could not remove cgroup $d" >&2
    done
    rmdir "$h/$group" 2>/dev/null || echo "$self: could not remove cgroup $h/$group" >&2
  done
}
stop_topology() {
  local d=$topo status=0
  topo=
  [[ -n "$d" && -f "$d/topology.env" ]] || return 0
  "$topology" stop "$d" >>"$out/topology.log" 2>&1 || status=1
  return $status
}
cleanup() {
  local code=$?
  trap - EXIT INT TERM HUP
  if [[ -n "$gen_pid" ]]; then
    kill "$gen_pid" 2>/dev/null || true
    wait "$gen_pid" 2>/dev/null || true
  fi
  if [[ -n "$topo" ]]; then
    local d=$topo
    stop_topology || echo "$self: the topology did not stop cleanly (see $out/topology.log)" >&2
    save_logs "$d" "$out/logs-failed"
  fi
  remove_cgroups
  [[ -n "$tmp" ]] && rm -rf "$tmp"
  exit "$code"
}
trap_cleanup_on_exit

save_logs() {  # TOPOLOGY_DIR DEST
  mkdir -p "$2"
  cp "$1"/*.log "$2"/ 2>/dev/null || true
  cp "$1"/pg/server.log "$2"/postgres.log 2>/dev/null || true
}

# A crashed earlier run may have left its groups behind.
remove_cgroups

# The binaries and deploy/local/topology.sh, copied: another build or an
# edit of the same tree during the run would otherwise change what the
# later points measure, or stop a topology with another script.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/roomsync-scaling-XXXXXX")
chmod 0711 "$tmp"  # the postgres user reaches the topology's data
mkdir "$tmp/bin"
cp "$build_dir/services/room/roomsync-room" "$build_dir/gateway/roomsync-gateway" \
  "$build_dir/bench/roomsync-bench" "$repo/deploy/local/topology.sh" "$tmp/bin/"
topology=$tmp/bin/topology.sh
room_bin=$tmp/bin/roomsync-room
gateway_bin=$tmp/bin/roomsync-gateway
bench=$tmp/bin/roomsync-bench

# 1 client = 1 socket, in the generator and the gateway.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ------------------------------------------------------------ measuring

make_group() {  # HIERARCHY NAME: prints its path
  local d=$1/$group/$2
  mkdir -p "$d"
  echo "$d"
}
join_group() {  # DIR PID...
  local d=$1 pid
  shift
  for pid in "$@"; do echo "$pid" >"$d/cgroup.procs"; done
}
# The postmaster and every backend it has forked so far (later ones
# inherit its group).
pg_pids() {  # POSTMASTER_PID
  echo "$1"
  ps -o pid= --ppid "$1" | tr -d ' '
}

# Cumulative counters at one instant; bench/scaling_report.py subtracts
# two of them.
snapshot() {  # FILE N
  local f=$1 n=$2 i g line
  {
    echo "t_ns $(date +%s%N)"
    echo "loadavg $(cat /proc/loadavg)"
    echo "stat_cpu $(grep -m 1 '^cpu ' /proc/stat | cut -c 5-)"
    for g in "$cg_acct/$group"/*/; do
      g=${g%/}
      echo "acct $(basename "$g") $(cat "$g/cpuacct.usage")"
    done
    for ((i = 0; i < n; i++)); do
      g=$cg_cpu/$group/node-$i
      echo "throttle node-$i $(awk '/^nr_periods|^nr_throttled|^throttled_time/ {printf "%s ", $2}' "$g/cpu.stat")"
      # The fallback without cpuacct: utime + stime of the process.
      echo "proc node-$i ${room_pid_list[$i]} $(sed 's/^.*) //' "/proc/${room_pid_list[$i]}/stat" | awk '{print $12 + $13}')"
      line=$(curl -s --max-time 2 "http://${room_metrics_list[$i]}/metrics" |
        awk '/^roomsync_room_pushes_total\{result="ok"\}/ {ok=$2} /^roomsync_room_pushes_total\{result="error"\}/ {err=$2} END {print ok+0, err+0}')
      echo "pushes node-$i $line"
    done
  } >"$f"
}

run_point() {  # N SUFFIX
  local n=$1 suffix=$2 i d held
  local tag="nodes_${n}${suffix}"
  log "N=$n: starting the topology (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  topo=$tmp/topo-$n$suffix
  echo "==== N=$n$suffix $(date -u +%FT%TZ)" >>"$out/topology.log"
  "$topology" --detach --rooms "$n" --http-port 0 --dir "$topo" --build-dir "$build_dir" \
    --room-bin "$room_bin" --gateway-bin "$gateway_bin" --timeout 90 >>"$out/topology.log" 2>&1 ||
    die "N=$n: the topology did not start (see $out/topology.log)"
  # shellcheck disable=SC1091
  source "$topo/topology.env"
  read -r -a room_pid_list <<<"$ROOM_PIDS"
  IFS=, read -r -a room_metrics_list <<<"$ROOM_METRICS"
  ((${#room_pid_list[@]} == n)) || die "N=$n: topology.env lists ${#room_pid_list[@]} room nodes"

  # Shard leases per node, as the gateway routes by them.
  held=$("$psql" -X -q -t -A -F ' ' -h 127.0.0.1 -p "$PG_PORT" -U postgres -d roomsync -c \
    "SELECT owner, count(*) FROM shard_leases WHERE expires_at > now() GROUP BY owner ORDER BY owner")
  echo "$held" >"$out/leases_$tag.txt"

  # The quota for each room node; accounting groups for everything else.
  for ((i = 0; i < n; i++)); do
    d=$(make_group "$cg_cpu" "node-$i")
    echo "$period_us" >"$d/cpu.cfs_period_us"
    echo "$quota_us" >"$d/cpu.cfs_quota_us"
    join_group "$d" "${room_pid_list[$i]}"
    join_group "$(make_group "$cg_acct" "node-$i")" "${room_pid_list[$i]}"
    grep -q ":cpu:/$group/node-$i\$" "/proc/${room_pid_list[$i]}/cgroup" ||
      die "room node ${room_pid_list[$i]} is not in $d"
  done
  join_group "$(make_group "$cg_acct" gateway)" "$GATEWAY_PID"
  # shellcheck disable=SC2046
  join_group "$(make_group "$cg_acct" postgres)" $(pg_pids "$PG_PID")
  make_group "$cg_acct" generator >/dev/null
  # The rest of the bench next to the nodes, without a quota, under the
  # parent's large share.
  unlimited=
  if ((shares > 0)); then
    echo "$shares" >"$cg_cpu/$group/cpu.shares"
    unlimited=$(make_group "$cg_cpu" unlimited)
    # shellcheck disable=SC2046
    join_group "$unlimited" "$GATEWAY_PID" $(pg_pids "$PG_PID")
  fi

  log "N=$n: push, $clients clients on $clients rooms, ${warmup}+${duration} s, each node $cpu CPU ($quota_us/$period_us us)"
  (
    echo "$BASHPID" >"$cg_acct/$group/generator/cgroup.procs"
    [[ -z "$unlimited" ]] || echo "$BASHPID" >"$unlimited/cgroup.procs"
    exec "$bench" push --url "$GATEWAY_URL" --clients "$clients" --rooms "$clients" \
      --duration_s "$duration" --warmup_s "$warmup" --threads "$threads" \
      --server_pid "$(IFS=,; echo "${room_pid_list[*]}")" --label "scaling-nodes-$n" \
      --room_prefix "scaling-$n$suffix-$$" --out "$out/push_$tag.json"
  ) 2>>"$out/generator.log" &
  gen_pid=$!
  # The counters over the generator's measured window (a little inside it).
  sleep "$warmup.3"
  snapshot "$out/cpu_${tag}_before.txt" "$n"
  sleep "$(python3 -c "print($duration - 0.6)")"
  snapshot "$out/cpu_${tag}_after.txt" "$n"
  local status=0
  wait "$gen_pid" || status=$?
  gen_pid=
  ((status == 0)) || die "N=$n: roomsync-bench push failed ($status; see $out/generator.log)"
  tail -n 1 "$out/generator.log" >&2

  d=$topo
  stop_topology || die "N=$n: the topology did not stop cleanly (see $out/topology.log)"
  save_logs "$d" "$out/logs-$n$suffix"
  rm -rf "$d"
  remove_cgroups
}

{
  echo "date $(date -u +%FT%TZ)"
  # The sources the binaries were built from (the build's CMakeCache).
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
  src=${src:-$repo}
  echo "build_dir $build_dir"
  echo "source_dir $src"
  describe_sources_and_machine "$src"
  echo "cpu_share $cpu"
  echo "period_us $period_us"
  echo "quota_us $quota_us"
  echo "shares $shares"
  echo "clients $clients"
  echo "duration_s $duration"
  echo "warmup_s $warmup"
  echo "threads $threads"
  echo "nodes $nodes"
  echo "repeat $repeat"
  echo "mode $([[ $quick == 1 ]] && echo quick || echo full)"
  echo "binaries $(cd "$tmp/bin" && sha256sum roomsync-room roomsync-gateway | awk '{printf "%s=%s ", $2, substr($1, 1, 12)}')"
  echo "built $(stat -c %y "$build_dir/services/room/roomsync-room" | cut -d. -f1)"
  echo "loadavg_start $(cat /proc/loadavg)"
} >"$out/run.txt"

log "results in $out"
for ((r = 1; r <= repeat; r++)); do
  suffix=
  ((repeat > 1)) && suffix=_r$r
  for n in $nodes; do
    run_point "$n" "$suffix"
  done
done
echo "loadavg_end $(cat /proc/loadavg)" >>"$out/run.txt"

check=()
[[ $quick == 1 ]] && check=(--check)
python3 "$repo/bench/scaling_report.py" "${check[@]}" "$out"
