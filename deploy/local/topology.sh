#!/usr/bin/env bash
# The Kubernetes topology of deploy/k8s on one machine, on loopback ports,
# for tests and demos: a throwaway PostgreSQL 15, N room nodes
# (roomsync-room --shard_leases) on it, and one or more roomsync-gateway in
# front, each listing them all. Auth is off and gRPC is plaintext
# (development only).
#
#   deploy/local/topology.sh [options]          # runs until Ctrl-C / SIGTERM
#   deploy/local/topology.sh --detach [options] # starts, prints the state dir, returns
#   deploy/local/topology.sh stop DIR           # stops a topology (every process it lists)
#   deploy/local/topology.sh restart-room DIR I      # rolling restart of room node I (0-based)
#   deploy/local/topology.sh restart-gateway DIR [I] # of gateway I (none given: each in turn)
#   deploy/local/topology.sh add-room DIR            # one more room node, while it runs
#   deploy/local/topology.sh restart-postgres DIR [S] # stop PostgreSQL, wait S s (default 0), start it
#
# Options:
#   --rooms N          room nodes (default 2)
#   --gateways N       gateways (default 1), each listing every room node
#   --http-port P      the first gateway's port on 127.0.0.1 (default 8080;
#                      0 = any free port); the others take free ports
#   --dir DIR          state directory: logs, PostgreSQL's data, topology.env
#                      (default: a new temporary directory, removed on stop;
#                      a DIR you name is kept, and its database is reused
#                      by the next start)
#   --build-dir DIR    where the binaries are built (default: build/ of this
#                      repository)
#   --room-bin PATH    the roomsync-room to run (default: services/room/
#                      roomsync-room in --build-dir)
#   --gateway-bin PATH the roomsync-gateway to run (default: gateway/
#                      roomsync-gateway in --build-dir)
#   --room-arg ARG     one more argument for every room node (repeatable),
#                      e.g. --room-arg=--lease_ttl=3s
#   --gateway-arg ARG  one more argument for every gateway (repeatable)
#   --timeout S        how long to wait for the topology to be ready (default 90;
#                      restarts wait as long)
#   --detach           start, wait until ready, print the state dir, return
#
# Ready means: every gateway's /readyz answers 200 with every room node
# serving, and the nodes hold all 256 shard leases in fair shares (no node
# above ceil(256/N)), and the gateways have had a second to read that
# table. Then DIR/topology.env holds the URLs, ports and pids (shell
# syntax): GATEWAY_URL and GATEWAY_PID are the first gateway's,
# GATEWAY_URLS and GATEWAY_PIDS (space-separated) every gateway's,
# ROOM_PIDS the room nodes'. SIGINT/SIGTERM (or `stop DIR`) stops the
# gateways, then the room nodes (each drains and releases its leases),
# then PostgreSQL.
#
# restart-room DIR I: SIGTERM to room node I (it drains: answers its
# in-flight pushes and hands its shard leases over to the other nodes),
# waits for it to exit (SIGKILL after 25 s), starts it again with the same
# arguments, ports and node id, and returns once the topology is ready
# again (above: the node holds its fair share once more, and no lease the
# stopped process did not hand over is still unexpired). restart-gateway
# DIR [I]: SIGTERM (the gateway drains its requests and ends its streams),
# waits, starts it again on the same port, returns once ready. Both update
# topology.env; `stop DIR` stops the restarted processes. Logs of a
# restarted process go on in the same DIR/*.log. Restarts of one DIR run
# one at a time (DIR/topology.lock).
#
# add-room DIR: starts room node N (the next index, node id room-N, free
# ports, the same arguments as the others), adds it to topology.env
# (ROOMS, ROOM_PIDS, ROOM_GRPC, ROOM_METRICS) and returns once the topology
# is ready with N+1 nodes (the new one holds a fair share, taken from the
# others). The gateways are not restarted: they find the new node in the
# lease table. restart-postgres DIR [S]: `pg_ctl stop -m fast` (every
# connection is closed), S seconds without PostgreSQL, then a start on the
# same port; returns once the topology is ready again, with the new PG_PID
# in topology.env. Both hold DIR/topology.lock like the restarts.
# Needs the built binaries, postgresql-15 and curl (scripts/install-deps.sh),
# and flock (util-linux).
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

# Prints the last lines of a log when a start fails.
show_log() {
  echo "---- $1" >&2
  tail -n 30 "$1" >&2 || true
}

# Waits for a process to print a line matching REGEX in LOG after its
# first FROM bytes (a restarted process appends to its old log), and
# prints the first match; fails if the process exits first or after
# TIMEOUT s.
wait_for_line() {  # PID EXE LOG REGEX TIMEOUT [FROM]
  local pid=$1 exe=$2 log=$3 regex=$4 deadline=$((SECONDS + $5)) from=${6:-0} line
  while :; do
    line=$(tail -c "+$((from + 1))" "$log" 2>/dev/null | grep -m 1 -E "$regex" || true)
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

# ------------------------------------------------------------ state

# Prints `NAME=(words...)` for an array, each word shell-quoted.
print_array() {  # NAME WORD...
  local name=$1 word
  shift
  printf '%s=(' "$name"
  for word in "$@"; do printf ' %q' "$word"; done
  printf ' )\n'
}

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
    printf 'TIMEOUT=%q\n' "$timeout"
    printf 'ROOMS=%q\n' "$rooms"
    printf 'ROOM_BIN=%q\n' "$room_bin"
    printf 'ROOM_PIDS=%q\n' "${room_pids[*]:-}"
    printf 'ROOM_GRPC=%q\n' "$(IFS=,; echo "${room_grpc[*]:-}")"
    printf 'ROOM_METRICS=%q\n' "$(IFS=,; echo "${room_metrics[*]:-}")"
    print_array ROOM_ARGS ${room_args[@]+"${room_args[@]}"}
    printf 'GATEWAYS=%q\n' "$gateways"
    printf 'GATEWAY_BIN=%q\n' "$gateway_bin"
    printf 'GATEWAY_PID=%q\n' "${gateway_pids[0]:-}"
    printf 'GATEWAY_URL=%q\n' "${gateway_urls[0]:-}"
    printf 'GATEWAY_PIDS=%q\n' "${gateway_pids[*]:-}"
    printf 'GATEWAY_URLS=%q\n' "${gateway_urls[*]:-}"
    print_array GATEWAY_ARGS ${gateway_args[@]+"${gateway_args[@]}"}
  } >"$tmp"
  mv "$tmp" "$dir/topology.env"
}

# Reads DIR/topology.env into the variables write_state writes.
load_state() {  # DIR
  dir=$(cd "$1" 2>/dev/null && pwd) || die "$1 does not exist"
  [[ -f "$dir/topology.env" ]] || die "$dir/topology.env does not exist: not a topology directory"
  # shellcheck disable=SC2034  # the file sets them all; some are for its readers
  local STATE OWNED_DIR PG_DATA PG_PORT PG_PID STORE_URL TIMEOUT ROOMS ROOM_BIN ROOM_PIDS ROOM_GRPC \
    ROOM_METRICS ROOM_ARGS GATEWAYS GATEWAY_BIN GATEWAY_PID GATEWAY_URL GATEWAY_PIDS GATEWAY_URLS GATEWAY_ARGS
  # shellcheck disable=SC1091
  source "$dir/topology.env"
  state=$STATE owned=$OWNED_DIR pg_port=$PG_PORT pg_pid=$PG_PID store_url=$STORE_URL
  timeout=${TIMEOUT:-90} rooms=${ROOMS:-0} room_bin=$ROOM_BIN gateway_bin=$GATEWAY_BIN
  read -r -a room_pids <<<"$ROOM_PIDS"
  IFS=, read -r -a room_grpc <<<"$ROOM_GRPC"
  IFS=, read -r -a room_metrics <<<"$ROOM_METRICS"
  room_args=(${ROOM_ARGS[@]+"${ROOM_ARGS[@]}"})
  read -r -a gateway_pids <<<"${GATEWAY_PIDS:-$GATEWAY_PID}"
  read -r -a gateway_urls <<<"${GATEWAY_URLS:-$GATEWAY_URL}"
  gateways=${GATEWAYS:-${#gateway_urls[@]}}
  gateway_args=(${GATEWAY_ARGS[@]+"${GATEWAY_ARGS[@]}"})
}

# Stops whatever topology.env in DIR lists. Gateways first (they drain
# their requests and streams), then the room nodes (each commits and
# answers its in-flight pushes and releases its shard leases), then
# PostgreSQL. A directory the script made itself is removed, unless KEEP
# is 1.
stop_dir() {  # DIR [KEEP]
  local d=$1 keep=${2:-0} status=0
  [[ -f "$d/topology.env" ]] || die "$d/topology.env does not exist: not a topology directory"
  # shellcheck disable=SC2034  # the file sets them all; some are for its readers
  local STATE OWNED_DIR PG_DATA PG_PORT PG_PID STORE_URL TIMEOUT ROOMS ROOM_BIN ROOM_PIDS ROOM_GRPC \
    ROOM_METRICS ROOM_ARGS GATEWAYS GATEWAY_BIN GATEWAY_PID GATEWAY_URL GATEWAY_PIDS GATEWAY_URLS GATEWAY_ARGS
  # shellcheck disable=SC1091
  source "$d/topology.env"
  local gateway_list=${GATEWAY_PIDS:-$GATEWAY_PID}
  if [[ -n "$gateway_list" ]]; then
    # shellcheck disable=SC2086
    terminate 20 "$GATEWAY_BIN" $gateway_list || status=1
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

# ------------------------------------------------------------ starting processes

# Right after `setsid BIN &` the child is still the shell or setsid for
# a moment: wait (at most 5 s) until it runs EXE or has exited, so that
# `running` means what it says.
wait_exec() {  # PID EXE
  local pid=$1 exe=$2 deadline=$((SECONDS + 5))
  while [[ -d "/proc/$pid" ]] && ! running "$pid" "$exe" && ((SECONDS < deadline)); do
    sleep 0.02
  done
}

# Starts room node I on GRPC and METRICS (host:port; port 0 = any free
# port) and sets room_pids[I]. setsid: a terminal's Ctrl-C reaches only
# this script, which stops everything in order. The log is appended to.
# 9>&-: a restart holds DIR/topology.lock on fd 9, the child must not.
spawn_room() {  # I GRPC METRICS
  local i=$1
  setsid "$room_bin" --grpc "$2" --metrics "$3" --store "$store_url" \
    --auth off --grpc_plaintext --shard_leases --node_id "room-$i" \
    ${room_args[@]+"${room_args[@]}"} </dev/null >>"$dir/room-$i.log" 2>&1 9>&- &
  room_pids[i]=$!
  wait_exec "${room_pids[$i]}" "$room_bin"
}

# Starts gateway I on 127.0.0.1:PORT in front of every room node and sets
# gateway_pids[I].
spawn_gateway() {  # I PORT
  local i=$1
  setsid "$gateway_bin" --http "127.0.0.1:$2" --room_service "$(IFS=,; echo "${room_grpc[*]}")" \
    --auth off --grpc_plaintext ${gateway_args[@]+"${gateway_args[@]}"} \
    </dev/null >>"$dir/$(gateway_log "$i")" 2>&1 9>&- &
  gateway_pids[i]=$!
  wait_exec "${gateway_pids[$i]}" "$gateway_bin"
}

# The first gateway logs to gateway.log (as before there were several),
# the others to gateway-I.log.
gateway_log() {  # I
  if (($1 == 0)); then echo gateway.log; else echo "gateway-$1.log"; fi
}

log_size() {  # FILE
  stat -c %s "$1" 2>/dev/null || echo 0
}

# The server options of the topology's PostgreSQL (on pg_port).
pg_options() {
  echo "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300"
}

# psql on the topology's PostgreSQL.
psql_roomsync() {  # SQL
  "$pg_bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d roomsync -c "$1"
}

# Waits until the topology is ready (see the header), at most TIMEOUT s;
# and, when ready_sql is set, until that query answers 0.
ready_sql=
wait_ready() {  # TIMEOUT
  local deadline=$((SECONDS + $1)) fair=$(((shards + rooms - 1) / rooms)) readyz='' leases='' \
    held most pid url all
  while :; do
    all=1
    for url in "${gateway_urls[@]}"; do
      readyz=$(curl -s --max-time 2 "$url/readyz" || true)
      # One node: {"status":"ready"}; several: ...,"room_nodes_serving":N}.
      if ! [[ "$readyz" == '{"status":"ready"'* ]] ||
          ! [[ $rooms -eq 1 || "$readyz" == *"\"room_nodes_serving\":$rooms}" ]]; then
        all=0
        break
      fi
    done
    leases=$(psql_roomsync "SELECT sum(n) || ' ' || max(n) FROM (
      SELECT count(*) AS n FROM shard_leases WHERE expires_at > now() GROUP BY owner) o" 2>/dev/null || true)
    read -r held most <<<"${leases:-0 0}"
    if [[ $all == 1 && "${held:-0}" == "$shards" && "${most:-0}" -le "$fair" ]] &&
        [[ -z "$ready_sql" || "$(psql_roomsync "$ready_sql" 2>/dev/null || true)" == 0 ]]; then
      # The gateways read the lease table once a second: let them see the
      # settled one, so that no call meets a refusal from a former owner.
      sleep 1.2
      return 0
    fi
    for pid in "${room_pids[@]}"; do
      running "$pid" "$room_bin" || die "room node $pid exited (logs in $dir)"
    done
    for pid in "${gateway_pids[@]}"; do
      running "$pid" "$gateway_bin" || die "gateway $pid exited (logs in $dir)"
    done
    if ((SECONDS >= deadline)); then
      die "not ready after ${1}s: /readyz of $url said ${readyz:-nothing}; leases held/most by one node: ${leases:-?} (want $shards / <= $fair)"
    fi
    sleep 0.2
  done
}

# ------------------------------------------------------------ restarts

# Takes DIR/topology.lock: one restart of a topology at a time.
lock_dir() {
  exec 9>"$dir/topology.lock"
  flock -w "$timeout" 9 || die "another restart of $dir holds $dir/topology.lock"
}

restart_room() {  # I
  local i=$1 old log from line grpc metrics started=0 attempt stale stale_count
  if ! [[ "$i" =~ ^[0-9]+$ ]] || ((i >= ${#room_pids[@]})); then
    die "room node $i: the topology has ${#room_pids[@]} (0..$((${#room_pids[@]} - 1)))"
  fi
  old=${room_pids[$i]} log="$dir/room-$i.log" grpc=${room_grpc[$i]} metrics=${room_metrics[$i]}
  echo "$self: room-$i (pid $old): SIGTERM, draining"
  from=$(log_size "$log")
  terminate 25 "$room_bin" "$old" || echo "$self: room-$i needed SIGKILL: it did not drain" >&2
  if tail -c "+$((from + 1))" "$log" | grep -q '"event":"room_service_drained"'; then
    echo "$self: room-$i drained: $(tail -c "+$((from + 1))" "$log" | grep -m 1 '"event":"room_service_drained"')"
  fi
  # Leases the stopped process still holds (it was killed, or did not hand
  # them over): the table shows them under the node id the new process
  # gets too, but the new process cannot use them; it takes each again
  # (a new epoch) once it has expired. Ready waits for that.
  stale=$(psql_roomsync "SELECT count(*) || ' ' || coalesce(string_agg(shard || ':' || epoch, ','), '')
    FROM shard_leases WHERE owner = 'room-$i' AND expires_at > now()")
  read -r stale_count stale <<<"$stale"
  if ((stale_count > 0)); then
    echo "$self: room-$i left $stale_count unexpired shard lease(s) behind (not handed over): they move once expired"
    ready_sql="SELECT count(*) FROM shard_leases WHERE owner = 'room-$i' AND expires_at > now()
      AND shard || ':' || epoch = ANY (string_to_array('$stale', ','))"
  fi
  # The same ports (a port just freed may be taken by someone else's
  # outgoing connection for a moment: try again).
  for attempt in 1 2 3 4 5; do
    echo "---- $self: restart-room $i ($(date -u +%Y-%m-%dT%H:%M:%SZ), attempt $attempt)" >>"$log"
    from=$(log_size "$log")
    spawn_room "$i" "$grpc" "$metrics"
    write_state
    if line=$(wait_for_line "${room_pids[$i]}" "$room_bin" "$log" '"event":"room_service_started"' 60 "$from" 2>/dev/null); then
      started=1
      break
    fi
    running "${room_pids[$i]}" "$room_bin" && break  # up but not ready in time: not a port clash
    sleep 1
  done
  if ((started == 0)); then
    show_log "$log"
    die "room-$i did not start again on gRPC $grpc, metrics $metrics"
  fi
  echo "$self: room-$i (pid ${room_pids[$i]}) started again: gRPC $grpc, metrics http://$metrics/metrics"
  wait_ready "$timeout"
  echo "$self: ready: room-$i restarted; $rooms room node(s) hold $shards shards in fair shares"
}

restart_gateway() {  # I
  local i=$1 old log from line url port started=0 attempt
  if ! [[ "$i" =~ ^[0-9]+$ ]] || ((i >= ${#gateway_pids[@]})); then
    die "gateway $i: the topology has ${#gateway_pids[@]} (0..$((${#gateway_pids[@]} - 1)))"
  fi
  old=${gateway_pids[$i]} log="$dir/$(gateway_log "$i")" url=${gateway_urls[$i]}
  port=${url##*:}
  echo "$self: gateway $i (pid $old, $url): SIGTERM, draining"
  terminate 20 "$gateway_bin" "$old" || echo "$self: gateway $i needed SIGKILL: it did not drain" >&2
  for attempt in 1 2 3 4 5; do
    echo "---- $self: restart-gateway $i ($(date -u +%Y-%m-%dT%H:%M:%SZ), attempt $attempt)" >>"$log"
    from=$(log_size "$log")
    spawn_gateway "$i" "$port"
    write_state
    if line=$(wait_for_line "${gateway_pids[$i]}" "$gateway_bin" "$log" \
        'roomsync-gateway listening on http://.* \(port [0-9]+\)' 30 "$from" 2>/dev/null); then
      started=1
      break
    fi
    running "${gateway_pids[$i]}" "$gateway_bin" && break
    sleep 1
  done
  if ((started == 0)); then
    show_log "$log"
    die "gateway $i did not start again on $url"
  fi
  echo "$self: gateway $i (pid ${gateway_pids[$i]}) started again on $url"
  wait_ready "$timeout"
  echo "$self: ready: gateway $i restarted ($url/readyz: 200)"
}

add_room() {
  local i=${#room_pids[@]} log line grpc_port metrics_port
  ((i < 16)) || die "the topology has 16 room nodes already"
  log="$dir/room-$i.log"
  echo "---- $self: add-room $i ($(date -u +%Y-%m-%dT%H:%M:%SZ))" >>"$log"
  local from
  from=$(log_size "$log")
  spawn_room "$i" 127.0.0.1:0 127.0.0.1:0
  line=$(wait_for_line "${room_pids[$i]}" "$room_bin" "$log" '"event":"room_service_started"' 60 "$from")
  grpc_port=$(sed -n 's/.*"grpc_port":\([0-9]*\).*/\1/p' <<<"$line")
  metrics_port=$(sed -n 's/.*"metrics_port":\([0-9]*\).*/\1/p' <<<"$line")
  [[ -n "$grpc_port" && -n "$metrics_port" ]] || die "cannot read the ports of room-$i from: $line"
  room_grpc[i]="127.0.0.1:$grpc_port"
  room_metrics[i]="127.0.0.1:$metrics_port"
  rooms=$((i + 1))
  write_state
  echo "$self: room-$i (pid ${room_pids[$i]}) added: gRPC 127.0.0.1:$grpc_port, metrics http://127.0.0.1:$metrics_port/metrics"
  wait_ready "$timeout"
  echo "$self: ready: room-$i added; $rooms room node(s) hold $shards shards in fair shares"
}

restart_postgres() {  # SECONDS
  local pause=$1
  [[ "$pause" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "restart-postgres: $pause is not a number of seconds"
  echo "$self: PostgreSQL (pid $pg_pid): stopping (fast)"
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    die "PostgreSQL did not stop (logs in $dir/pg/server.log)"
  sleep "$pause"
  if ! as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 -o "$(pg_options)" \
      start >/dev/null 2>&1; then
    show_log "$dir/pg/server.log"
    die "PostgreSQL did not start again on port $pg_port"
  fi
  pg_pid=$(head -n 1 "$dir/pg/data/postmaster.pid")
  write_state
  echo "$self: PostgreSQL (pid $pg_pid) started again on 127.0.0.1:$pg_port"
  wait_ready "$timeout"
  echo "$self: ready: PostgreSQL restarted"
}

case "${1:-}" in
  stop)
    [[ $# -eq 2 ]] || usage
    dir=$2
    stop_dir "$dir" || die "stopped $dir, but not every process stopped cleanly"
    echo "$self: stopped $dir"
    exit 0
    ;;
  restart-room | restart-gateway | add-room | restart-postgres)
    command=$1
    case $command in
      restart-room) [[ $# -eq 3 ]] || usage ;;
      add-room) [[ $# -eq 2 ]] || usage ;;
      *) [[ $# -eq 2 || $# -eq 3 ]] || usage ;;
    esac
    load_state "$2"
    lock_dir
    load_state "$dir"  # as it is now that we hold the lock
    [[ "$state" == running ]] || die "$dir: the topology is $state, not running"
    command -v curl >/dev/null || die "curl is missing: scripts/install-deps.sh installs it"
    if [[ $command == restart-room ]]; then
      restart_room "$3"
    elif [[ $command == add-room ]]; then
      add_room
    elif [[ $command == restart-postgres ]]; then
      restart_postgres "${3:-0}"
    elif [[ $# -eq 3 ]]; then
      restart_gateway "$3"
    else
      for ((g = 0; g < ${#gateway_pids[@]}; g++)); do restart_gateway "$g"; done
    fi
    exit 0
    ;;
esac

# ------------------------------------------------------------ options

rooms=2
gateways=1
http_port=8080
dir=
build_dir="$repo/build"
room_bin=
gateway_bin=
detach=0
timeout=90
room_args=()
gateway_args=()
while (($#)); do
  case "$1" in
    --rooms) rooms=${2:?}; shift 2 ;;
    --rooms=*) rooms=${1#*=}; shift ;;
    --gateways) gateways=${2:?}; shift 2 ;;
    --gateways=*) gateways=${1#*=}; shift ;;
    --http-port) http_port=${2:?}; shift 2 ;;
    --http-port=*) http_port=${1#*=}; shift ;;
    --dir) dir=${2:?}; shift 2 ;;
    --dir=*) dir=${1#*=}; shift ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --build-dir=*) build_dir=${1#*=}; shift ;;
    --room-bin) room_bin=${2:?}; shift 2 ;;
    --room-bin=*) room_bin=${1#*=}; shift ;;
    --gateway-bin) gateway_bin=${2:?}; shift 2 ;;
    --gateway-bin=*) gateway_bin=${1#*=}; shift ;;
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
if ! [[ "$gateways" =~ ^[0-9]+$ ]] || ((gateways < 1 || gateways > 16)); then die "--gateways must be 1..16"; fi
if ! [[ "$http_port" =~ ^[0-9]+$ ]] || ((http_port > 65535)); then die "--http-port must be 0..65535"; fi
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"

build_dir=$(cd "$build_dir" 2>/dev/null && pwd) || die "--build-dir $build_dir does not exist"
room_bin=${room_bin:-$build_dir/services/room/roomsync-room}
gateway_bin=${gateway_bin:-$build_dir/gateway/roomsync-gateway}
for b in "$room_bin" "$gateway_bin"; do
  [[ -x "$b" ]] || die "$b is missing: cmake --build $build_dir --target roomsync-room roomsync-gateway"
done
# Absolute and without symlinks: /proc/PID/exe names the real file.
room_bin=$(readlink -f "$room_bin")
gateway_bin=$(readlink -f "$gateway_bin")
[[ -x "$pg_bin/initdb" ]] || die "$pg_bin/initdb is missing: scripts/install-deps.sh installs postgresql-15"
command -v curl >/dev/null || die "curl is missing: scripts/install-deps.sh installs it"
command -v flock >/dev/null || die "flock is missing (util-linux)"

owned=0
if [[ -z "$dir" ]]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/roomsync-topology-XXXXXX")
  owned=1
else
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f "$dir/topology.env" ]] && grep -q '^STATE=\(starting\|running\)$' "$dir/topology.env"; then
    # shellcheck disable=SC1091
    pids=$(source "$dir/topology.env" && echo "${GATEWAY_PIDS:-$GATEWAY_PID} $ROOM_PIDS $PG_PID")
    for pid in $pids; do
      [[ -d "/proc/$pid" ]] && die "$dir holds a running topology (pid $pid): $self stop $dir"
    done
  fi
fi

state=starting
pg_port='' pg_pid='' store_url=''
room_pids=() room_grpc=() room_metrics=() gateway_pids=() gateway_urls=()
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
      -o "$(pg_options)" start >/dev/null 2>&1; then
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
if [[ -z "$("$pg_bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres \
    -c "SELECT 1 FROM pg_database WHERE datname = 'roomsync'")" ]]; then
  "$pg_bin/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres \
    -c "CREATE DATABASE roomsync" >/dev/null
fi
echo "$self: PostgreSQL on 127.0.0.1:$pg_port (data in $dir/pg/data)"

# ------------------------------------------------------------ room nodes

# Each node on free ports (port 0); it advertises the gRPC port it bound,
# which the gateways' list then names, and a restart binds the same ones.
for ((i = 0; i < rooms; i++)); do
  : >"$dir/room-$i.log"
  spawn_room "$i" 127.0.0.1:0 127.0.0.1:0
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

# ------------------------------------------------------------ gateways

for ((i = 0; i < gateways; i++)); do
  log="$dir/$(gateway_log "$i")"
  : >"$log"
  port=0
  ((i == 0)) && port=$http_port
  spawn_gateway "$i" "$port"
  write_state
  line=$(wait_for_line "${gateway_pids[$i]}" "$gateway_bin" "$log" 'roomsync-gateway listening on http://.* \(port [0-9]+\)' 30)
  gateway_port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' <<<"$line")
  gateway_urls[i]="http://127.0.0.1:$gateway_port"
  write_state
  echo "$self: gateway $i (pid ${gateway_pids[$i]}) ${gateway_urls[$i]}"
done

# ------------------------------------------------------------ ready

wait_ready "$timeout"

state=running
write_state
cat <<EOF
$self: ready: $rooms room node(s) holding $shards shards, gateway ${gateway_urls[*]}
  API:      ${gateway_urls[0]}/v1/rooms/{room}/replicate/pull|push|pull/stream (docs/api.md)
  readyz:   $(printf '%s/readyz ' "${gateway_urls[@]}")
  metrics:  $(printf '%s/metrics ' "${gateway_urls[@]}")$(printf 'http://%s/metrics ' "${room_metrics[@]}")
  store:    $store_url
  state:    $dir/topology.env (logs: $dir/*.log)
  restart:  $0 restart-room $dir I | restart-gateway $dir [I]
EOF

if [[ $detach -eq 1 ]]; then
  state=detached
  echo "$self: detached; stop with: $0 stop $dir"
  echo "DIR=$dir"
  exit 0
fi

echo "$self: Ctrl-C stops everything"
# Until a signal, or until one of the processes dies on its own. A
# restart (restart-room, restart-gateway from another shell) holds the
# lock while its process is down and writes the new pid to topology.env.
exec 9>"$dir/topology.lock"
while :; do
  if flock -n 9; then
    load_state "$dir"
    state=running
    for pid in "${room_pids[@]}"; do
      running "$pid" "$room_bin" || die "room node $pid exited (logs in $dir)"
    done
    for pid in "${gateway_pids[@]}"; do
      running "$pid" "$gateway_bin" || die "gateway $pid exited (logs in $dir)"
    done
    flock -u 9
  fi
  sleep 1 &
  wait $! || true
done
