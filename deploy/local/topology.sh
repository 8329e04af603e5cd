#!/usr/bin/env bash
# The Kubernetes topology of deploy/k8s on one machine, on loopback ports,
# for tests and demos: a throwaway PostgreSQL 15, N room nodes
# (roomsync-room --shard_leases) on it, and one roomsync-gateway in front
# that lists them all. Auth is off and gRPC is plaintext (development only).
#
#   deploy/local/topology.sh [options]          # runs until Ctrl-C / SIGTERM
#   deploy/local/topology.sh --detach [options] # starts, prints the state dir, returns
#   deploy/local/topology.sh stop DIR           # stops a detached topology
#
# Options:
#   --rooms N          room nodes (default 2)
#   --http-port P      the gateway's port on 127.0.0.1 (default 8080; 0 = any free port)
#   --dir DIR          state directory: logs, PostgreSQL's data, topology.env
#                      (default: a new temporary directory, removed on stop;
#                      a DIR you name is kept, and its database is reused
#                      by the next start)
#   --build-dir DIR    where the binaries are built (default: build/ of this
#                      repository)
#   --room-arg ARG     one more argument for every room node (repeatable),
#                      e.g. --room-arg=--lease_ttl=3s
#   --gateway-arg ARG  one more argument for the gateway (repeatable)
#   --timeout S        how long to wait for the topology to be ready (default 90)
#   --detach           start, wait until ready, print the state dir, return
#
# Ready means: the gateway's /readyz answers 200 with every room node
# serving, and the nodes hold all 256 shard leases in fair shares (no node
# above ceil(256/N)), and the gateway has had a second to read that
# table. Then DIR/topology.env holds the URLs, ports and pids
# (shell syntax). SIGINT/SIGTERM (or `stop DIR`) stops the gateway, then
# the room nodes (each drains and releases its leases), then PostgreSQL.
# Needs the built binaries, postgresql-15 and curl (scripts/install-deps.sh).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pg_bin=/usr/lib/postgresql/15/bin
shards=256
self=$(basename "$0")

die() {
  echo "$self: $*" >&2
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ------------------------------------------------------------ processes

# A pid is ours and running when /proc shows it executing the expected
# binary and it is not a zombie (a detached topology's processes are
# reaped by init, which may be slow to do it).
running() {  # PID EXE
  local pid=$1 exe=$2 state
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$state" != Z && "$state" != X ]] || return 1
  # " (deleted)": the binary was rebuilt while it ran.
  case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
    "$exe" | "$exe (deleted)") return 0 ;;
    *) return 1 ;;
  esac
}

# Sends SIGTERM to every running pid of the list, waits up to GRACE
# seconds for all of them, then SIGKILLs what is left. Returns 1 if any
# needed SIGKILL.
terminate() {  # GRACE EXE PID...
  local grace=$1 exe=$2 pid left deadline status=0
  shift 2
  for pid in "$@"; do
    if running "$pid" "$exe"; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  deadline=$((SECONDS + grace))
  while :; do
    left=()
    for pid in "$@"; do
      if running "$pid" "$exe"; then left+=("$pid"); fi
    done
    ((${#left[@]} == 0)) && return $status
    if ((SECONDS >= deadline)); then
      echo "$self: $(basename "$exe") ${left[*]} did not stop in ${grace}s: SIGKILL" >&2
      kill -KILL "${left[@]}" 2>/dev/null || true
      status=1
      grace=5
      deadline=$((SECONDS + grace))
    fi
    sleep 0.1
  done
}

# PostgreSQL runs as the postgres user when we are root (initdb refuses
# root; CI runs as root), as ourselves otherwise.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# ------------------------------------------------------------ state

# topology.env: shell assignments, rewritten after every step so that a
# failed start can be stopped like a running one.
write_state() {
  local tmp="$dir/topology.env.tmp"
  {
    echo "# deploy/local/topology.sh state ($(date -u +%Y-%m-%dT%H:%M:%SZ)); stop: $self stop $dir"
    printf 'STATE=%q\n' "$state"
    printf 'OWNED_DIR=%q\n' "$owned"
    printf 'PG_DATA=%q\n' "$dir/pg/data"
    printf 'PG_PORT=%q\n' "${pg_port:-}"
    printf 'PG_PID=%q\n' "${pg_pid:-}"
    printf 'STORE_URL=%q\n' "${store_url:-}"
    printf 'ROOM_BIN=%q\n' "$room_bin"
    printf 'ROOM_PIDS=%q\n' "${room_pids[*]:-}"
    printf 'ROOM_GRPC=%q\n' "$(IFS=,; echo "${room_grpc[*]:-}")"
    printf 'ROOM_METRICS=%q\n' "$(IFS=,; echo "${room_metrics[*]:-}")"
    printf 'GATEWAY_BIN=%q\n' "$gateway_bin"
    printf 'GATEWAY_PID=%q\n' "${gateway_pid:-}"
    printf 'GATEWAY_URL=%q\n' "${gateway_url:-}"
  } >"$tmp"
  mv "$tmp" "$dir/topology.env"
}

# Stops whatever topology.env in DIR lists. Gateway first (it drains its
# requests and streams), then the room nodes (each commits and answers its
# in-flight pushes and releases its shard leases), then PostgreSQL. A
# directory the script made itself is removed, unless KEEP is 1.
stop_dir() {  # DIR [KEEP]
  local d=$1 keep=${2:-0} status=0
  [[ -f "$d/topology.env" ]] || die "$d/topology.env does not exist: not a topology directory"
  # shellcheck disable=SC2034  # the file sets them all; some are for its readers
  local STATE OWNED_DIR PG_DATA PG_PORT PG_PID STORE_URL ROOM_BIN ROOM_PIDS ROOM_GRPC ROOM_METRICS \
    GATEWAY_BIN GATEWAY_PID GATEWAY_URL
  # shellcheck disable=SC1091
  source "$d/topology.env"
  if [[ -n "$GATEWAY_PID" ]]; then
    terminate 20 "$GATEWAY_BIN" "$GATEWAY_PID" || status=1
  fi
  if [[ -n "$ROOM_PIDS" ]]; then
    # shellcheck disable=SC2086
    terminate 25 "$ROOM_BIN" $ROOM_PIDS || status=1
  fi
  if [[ -n "$PG_PID" ]] && running "$PG_PID" "$pg_bin/postgres"; then
    if ! as_pg "$pg_bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
      echo "$self: PostgreSQL did not stop cleanly: immediate shutdown" >&2
      as_pg "$pg_bin/pg_ctl" -D "$PG_DATA" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
      status=1
    fi
    terminate 5 "$pg_bin/postgres" "$PG_PID" || status=1
  fi
  if [[ "$OWNED_DIR" == 1 && "$keep" != 1 ]]; then
    rm -rf "$d"
  else
    sed -i 's/^STATE=.*/STATE=stopped/' "$d/topology.env"
  fi
  return $status
}

if [[ "${1:-}" == "stop" ]]; then
  [[ $# -eq 2 ]] || usage
  dir=$2
  stop_dir "$dir" || die "stopped $dir, but not every process stopped cleanly"
  echo "$self: stopped $dir"
  exit 0
fi

# ------------------------------------------------------------ options

rooms=2
http_port=8080
dir=
build_dir="$repo/build"
detach=0
timeout=90
room_args=()
gateway_args=()
while (($#)); do
  case "$1" in
    --rooms) rooms=${2:?}; shift 2 ;;
    --rooms=*) rooms=${1#*=}; shift ;;
    --http-port) http_port=${2:?}; shift 2 ;;
    --http-port=*) http_port=${1#*=}; shift ;;
    --dir) dir=${2:?}; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --build-dir=*) build_dir=${1#*=}; shift ;;
    --room-arg) room_args+=("${2:?}"); shift 2 ;;
    --room-arg=*) room_args+=("${1#*=}"); shift ;;
    --gateway-arg) gateway_args+=("${2:?}"); shift 2 ;;
    --gateway-arg=*) gateway_args+=("${1#*=}"); shift ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    --timeout=*) timeout=${1#*=}; shift ;;
    --detach) detach=1; shift ;;
    -h|--help) usage ;;
    *) echo "$self: unknown argument: $1" >&2; usage ;;
  esac
done
if ! [[ "$rooms" =~ ^[0-9]+$ ]] || ((rooms < 1 || rooms > 16)); then die "--rooms must be 1..16"; fi
if ! [[ "$http_port" =~ ^[0-9]+$ ]] || ((http_port > 65535)); then die "--http-port must be 0..65535"; fi
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"

build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "--build-dir $build_dir does not exist"
room_bin="$build_dir/services/room/roomsync-room"
gateway_bin="$build_dir/gateway/roomsync-gateway"
for b in "$room_bin" "$gateway_bin"; do
  [[ -x "$b" ]] || die "$b is missing: cmake --build $build_dir --target roomsync-room roomsync-gateway"
done
[[ -x "$pg_bin/initdb" ]] || die "$pg_bin/initdb is missing: scripts/install-deps.sh installs postgresql-15"
command -v curl >/dev/null || die "curl is missing: scripts/install-deps.sh installs it"

owned=0
if [[ -z "$dir" ]]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/roomsync-topology-XXXXXX")
  owned=1
else
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f "$dir/topology.env" ]] && grep -q '^STATE=\(starting\|running\)$' "$dir/topology.env"; then
    # shellcheck disable=SC1091
    pids=$(source "$dir/topology.env" && echo "$GATEWAY_PID $ROOM_PIDS $PG_PID")
    for pid in $pids; do
      [[ -d "/proc/$pid" ]] && die "$dir holds a running topology (pid $pid): $self stop $dir"
    done
  fi
fi

state=starting
pg_port='' pg_pid='' store_url='' gateway_pid='' gateway_url=''
room_pids=() room_grpc=() room_metrics=()
write_state

# From here on, a failure or a signal stops what was started.
finish() {
  local code=$? keep=0
  trap - EXIT INT TERM HUP
  if [[ "${state:-}" != detached ]]; then
    # A failed start keeps its logs, even in a temporary directory.
    case $code in 0 | 129 | 130 | 143) ;; *) keep=1 ;; esac
    echo "$self: stopping" >&2
    stop_dir "$dir" "$keep" || code=1
    if [[ $keep == 1 && $owned == 1 ]]; then echo "$self: logs kept in $dir" >&2; fi
  fi
  exit "$code"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Prints the last lines of a log when a start fails.
show_log() {
  echo "---- $1" >&2
  tail -n 30 "$1" >&2 || true
}

# ------------------------------------------------------------ PostgreSQL

mkdir -p "$dir/pg"
if [[ $(id -u) -eq 0 ]]; then
  # The postgres user must reach its data directory.
  chmod 0711 "$dir"
  chown postgres: "$dir/pg"
  runuser -u postgres -- test -w "$dir/pg" ||
    die "the postgres user cannot write $dir/pg (a parent directory is closed to it): use another --dir"
fi
if [[ ! -f "$dir/pg/data/PG_VERSION" ]]; then
  # -N: initdb's own fsyncs are pointless for a throwaway cluster; the
  # server keeps fsync on.
  if ! as_pg "$pg_bin/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 --locale=C -N \
      >"$dir/pg/initdb.log" 2>&1; then
    show_log "$dir/pg/initdb.log"
    die "initdb failed"
  fi
fi
started=0
for _ in 1 2 3 4 5 6 7 8; do
  # A random high port; if something holds it the server fails to bind and
  # we try another. Only TCP on 127.0.0.1 (no Unix socket: no path-length
  # limit on DIR, no /var/run/postgresql).
  pg_port=$((20000 + RANDOM % 40000))
  if as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
      -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300" \
      start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [[ $started -ne 1 ]]; then
  show_log "$dir/pg/server.log"
  die "PostgreSQL did not start"
fi
pg_pid=$(head -n 1 "$dir/pg/data/postmaster.pid")
store_url="postgresql://postgres@127.0.0.1:$pg_port/roomsync"
write_state
psql=("$pg_bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres)
if [[ -z "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'roomsync'")" ]]; then
  "${psql[@]}" -d postgres -c "CREATE DATABASE roomsync" >/dev/null
fi
echo "$self: PostgreSQL on 127.0.0.1:$pg_port (data in $dir/pg/data)"

# ------------------------------------------------------------ room nodes

# Waits for a process to print a line matching REGEX in LOG, and prints
# the first match; fails if the process exits first or after TIMEOUT s.
wait_for_line() {  # PID EXE LOG REGEX TIMEOUT
  local pid=$1 exe=$2 log=$3 regex=$4 deadline=$((SECONDS + $5)) line
  while :; do
    line=$(grep -m 1 -E "$regex" "$log" 2>/dev/null || true)
    if [[ -n "$line" ]]; then
      echo "$line"
      return 0
    fi
    if ! running "$pid" "$exe"; then
      show_log "$log"
      die "$(basename "$exe") (pid $pid) exited before it was ready"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$log"
      die "$(basename "$exe") (pid $pid) was not ready after ${5}s"
    fi
    sleep 0.1
  done
}

# Each node on free ports (port 0); it advertises the gRPC port it bound,
# which the gateway's list then names. setsid: a terminal's Ctrl-C reaches
# only this script, which stops everything in order.
for ((i = 0; i < rooms; i++)); do
  log="$dir/room-$i.log"
  : >"$log"
  setsid "$room_bin" --grpc 127.0.0.1:0 --metrics 127.0.0.1:0 --store "$store_url" \
    --auth off --grpc_plaintext --shard_leases --node_id "room-$i" \
    ${room_args[@]+"${room_args[@]}"} </dev/null >"$log" 2>&1 &
  room_pids+=("$!")
  write_state
done
for ((i = 0; i < rooms; i++)); do
  line=$(wait_for_line "${room_pids[$i]}" "$room_bin" "$dir/room-$i.log" '"event":"room_service_started"' 60)
  grpc_port=$(sed -n 's/.*"grpc_port":\([0-9]*\).*/\1/p' <<<"$line")
  metrics_port=$(sed -n 's/.*"metrics_port":\([0-9]*\).*/\1/p' <<<"$line")
  [[ -n "$grpc_port" && -n "$metrics_port" ]] || die "cannot read the ports of room-$i from: $line"
  room_grpc+=("127.0.0.1:$grpc_port")
  room_metrics+=("127.0.0.1:$metrics_port")
  write_state
  echo "$self: room-$i (pid ${room_pids[$i]}) gRPC 127.0.0.1:$grpc_port, metrics http://127.0.0.1:$metrics_port/metrics"
done

# ------------------------------------------------------------ gateway

log="$dir/gateway.log"
: >"$log"
setsid "$gateway_bin" --http "127.0.0.1:$http_port" --room_service "$(IFS=,; echo "${room_grpc[*]}")" \
  --auth off --grpc_plaintext ${gateway_args[@]+"${gateway_args[@]}"} </dev/null >"$log" 2>&1 &
gateway_pid=$!
write_state
line=$(wait_for_line "$gateway_pid" "$gateway_bin" "$log" 'roomsync-gateway listening on http://.* \(port [0-9]+\)' 30)
gateway_port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' <<<"$line")
gateway_url="http://127.0.0.1:$gateway_port"
write_state

# ------------------------------------------------------------ ready

deadline=$((SECONDS + timeout))
fair=$(((shards + rooms - 1) / rooms))
readyz='' leases=''
while :; do
  readyz=$(curl -s --max-time 2 "$gateway_url/readyz" || true)
  leases=$("${psql[@]}" -d roomsync -c "SELECT sum(n) || ' ' || max(n) FROM (
    SELECT count(*) AS n FROM shard_leases WHERE expires_at > now() GROUP BY owner) o" 2>/dev/null || true)
  read -r held most <<<"${leases:-0 0}"
  # One node: {"status":"ready"}; several: ...,"room_nodes_serving":N}.
  if [[ "$readyz" == '{"status":"ready"'* ]] &&
      [[ $rooms -eq 1 || "$readyz" == *"\"room_nodes_serving\":$rooms}" ]] &&
      [[ "${held:-0}" == "$shards" && "${most:-0}" -le "$fair" ]]; then
    # The gateway reads the lease table once a second: let it see the
    # settled one, so that no call meets a refusal from a former owner.
    sleep 1.2
    break
  fi
  for pid in "${room_pids[@]}"; do
    running "$pid" "$room_bin" || die "room node $pid exited (logs in $dir)"
  done
  running "$gateway_pid" "$gateway_bin" || die "the gateway exited (log: $dir/gateway.log)"
  if ((SECONDS >= deadline)); then
    die "not ready after ${timeout}s: /readyz said ${readyz:-nothing}; leases held/most by one node: ${leases:-?} (want $shards / <= $fair)"
  fi
  sleep 0.2
done

state=running
write_state
cat <<EOF
$self: ready: $rooms room node(s) holding $shards shards, gateway $gateway_url
  API:      $gateway_url/v1/rooms/{room}/replicate/pull|push|pull/stream (docs/api.md)
  readyz:   $gateway_url/readyz
  metrics:  $gateway_url/metrics, $(printf 'http://%s/metrics ' "${room_metrics[@]}")
  store:    $store_url
  state:    $dir/topology.env (logs: $dir/*.log)
EOF

if [[ $detach -eq 1 ]]; then
  state=detached
  echo "$self: detached; stop with: $0 stop $dir"
  echo "DIR=$dir"
  exit 0
fi

echo "$self: Ctrl-C stops everything"
# Until a signal, or until one of the processes dies on its own.
while :; do
  for pid in "${room_pids[@]}"; do
    running "$pid" "$room_bin" || die "room node $pid exited (logs in $dir)"
  done
  running "$gateway_pid" "$gateway_bin" || die "the gateway exited (log: $dir/gateway.log)"
  sleep 1 &
  wait $! || true
done
