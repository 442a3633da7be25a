#!/usr/bin/env bash
# A local Redis Cluster of 3 primaries and 3 replicas, from plain `redis-server --cluster-enabled yes` processes on
# loopback ports BASEPORT … BASEPORT+5 (their cluster bus on port+10000), for tests and for trying the cluster
# layer by hand. Nothing is persisted; every file lives under DIR.
#
#   scripts/redis-cluster.sh start DIR BASEPORT   start the six nodes, create the cluster, wait until it is healthy,
#                                                 then print the node URLs, comma-separated, on the last line
#   scripts/redis-cluster.sh stop DIR [BASEPORT]  stop exactly the processes this script started in DIR
#   scripts/redis-cluster.sh kill DIR PORT        SIGKILL one node (a crash, for failover drills)
#   scripts/redis-cluster.sh nodes DIR            the node URLs of the cluster in DIR
#
# Environment: REDIS_CLUSTER_NODE_TIMEOUT (ms, default 2000) — how long a silent primary takes to be failed over;
# REDIS_CLUSTER_WAIT (seconds, default 30) — how long `start` waits for the cluster to be healthy;
# REDIS_CLUSTER_BIND (default 127.0.0.1) — another address (0.0.0.0 in a container whose ports are published)
# turns protected mode off, and the nodes still announce 127.0.0.1 (docker-compose.yml, profile `cluster`);
# REDIS_CLUSTER_OWNER_PID — a process whose exit stops the cluster (the test runner's pid);
# REDIS_CLUSTER_TLS_CERT, REDIS_CLUSTER_TLS_KEY, REDIS_CLUSTER_TLS_CA — PEM files: the nodes then speak TLS only
# (clients, replication and the cluster bus: tls-cluster yes), and the node URLs printed are rediss://.
#
# The processes are tracked by the pid files in DIR, and `stop` / `kill` only signal a pid whose command line is
# a redis-server on that port: never a server this script did not start.
set -euo pipefail

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

command=${1:-}
dir=${2:-}
[ -n "$command" ] && [ -n "$dir" ] || usage

NODES=6
REPLICAS=1
node_timeout=${REDIS_CLUSTER_NODE_TIMEOUT:-2000}
wait_seconds=${REDIS_CLUSTER_WAIT:-30}
bind=${REDIS_CLUSTER_BIND:-127.0.0.1}
owner=${REDIS_CLUSTER_OWNER_PID:-}
if [ "$bind" = "127.0.0.1" ]; then
  network=(--bind 127.0.0.1 --protected-mode yes)
else
  network=(--bind "$bind" --protected-mode no --cluster-announce-ip 127.0.0.1)
fi

tls_cert=${REDIS_CLUSTER_TLS_CERT:-}
tls_key=${REDIS_CLUSTER_TLS_KEY:-}
tls_ca=${REDIS_CLUSTER_TLS_CA:-}
if [ -n "$tls_cert" ]; then
  listen() {
    echo --port 0 --tls-port "$1" --tls-cluster yes --tls-replication yes --tls-auth-clients no \
      --tls-cert-file "$tls_cert" --tls-key-file "$tls_key" --tls-ca-cert-file "$tls_ca"
  }
  cli_tls=(--tls --cacert "$tls_ca")
  scheme=rediss
else
  listen() { echo --port "$1"; }
  cli_tls=()
  scheme=redis
fi

redis_server=$(command -v redis-server || true)
redis_cli=$(command -v redis-cli || true)

die() {
  echo "redis-cluster: $*" >&2
  exit 1
}

is_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 55535 ]; }

# Is 127.0.0.1:$1 taken? With ss, any TCP socket on that local port counts: the port of an outgoing connection,
# even one in TIME-WAIT, cannot be bound either. Without ss, whether something answers there.
port_in_use() {
  if command -v ss >/dev/null; then
    [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# The command line of a process, or nothing (/proc where there is one, ps elsewhere).
command_of() {
  if [ -r "/proc/$1/cmdline" ]; then
    tr '\0' ' ' <"/proc/$1/cmdline"
  elif [ ! -d /proc/self ] && command -v ps >/dev/null; then
    ps -p "$1" -o command= 2>/dev/null || true
  fi
}

# The pid in DIR/PORT.pid if it is still our redis-server on that port; nothing otherwise.
our_pid() {
  local port=$1 file="$dir/$1.pid" pid
  [ -f "$file" ] || return 0
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] || return 0
  # A running redis-server shows "redis-server 127.0.0.1:PORT [cluster]"; one just started, its arguments.
  if command_of "$pid" | grep -Eq "redis-server[^ ]* (.*:$port( |$)|.*--(tls-)?port $port( |$))"; then echo "$pid"; fi
}

ports_in_dir() {
  local file
  for file in "$dir"/*.pid; do
    [ -e "$file" ] || continue
    basename "$file" .pid
  done
}

# Stops the nodes on the given ports: SIGTERM to all at once, SIGKILL to any still there after 5 seconds.
stop_ports() {
  local port pid pids=()
  for port in "$@"; do
    pid=$(our_pid "$port")
    if [ -n "$pid" ]; then
      pids+=("$pid")
      kill -CONT "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for _ in $(seq 1 100); do
    local alive=0
    for pid in ${pids[@]+"${pids[@]}"}; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.05
  done
  for pid in ${pids[@]+"${pids[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
  for port in "$@"; do rm -f "$dir/$port.pid"; done
}

cli() { "$redis_cli" -h 127.0.0.1 ${cli_tls[@]+"${cli_tls[@]}"} "$@"; }

# Healthy: every node says cluster_state:ok and knows all six nodes, every replica's link is up, and the nodes
# agree on the slot table (redis-cli --cluster check).
healthy() {
  local base=$1 port info
  for port in $(seq "$base" $((base + NODES - 1))); do
    info=$(cli -p "$port" cluster info 2>/dev/null) || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    grep -q "^cluster_known_nodes:$NODES" <<<"$info" || return 1
    info=$(cli -p "$port" info replication 2>/dev/null) || return 1
    if grep -q '^role:slave' <<<"$info"; then grep -q '^master_link_status:up' <<<"$info" || return 1; fi
  done
  cli --cluster check "127.0.0.1:$base" >/dev/null 2>&1
}

urls() {
  local base=$1 port list=""
  for port in $(seq "$base" $((base + NODES - 1))); do list="$list${list:+,}$scheme://127.0.0.1:$port"; done
  echo "$list"
}

start() {
  local base=${1:-}
  is_port "$base" || die "BASEPORT must be a port number (and BASEPORT+$((NODES - 1))+10000 a port too)"
  [ -n "$redis_server" ] && [ -n "$redis_cli" ] ||
    die "redis-server and redis-cli are needed: apt-get install redis-server (or brew install redis)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local port
  for port in $(ports_in_dir); do
    [ -z "$(our_pid "$port")" ] || die "a cluster started from $dir still runs (port $port): stop it first"
  done
  for port in $(seq "$base" $((base + NODES - 1))); do
    port_in_use "$port" && die "port $port is taken"
    port_in_use $((port + 10000)) && die "port $((port + 10000)) (the cluster bus of $port) is taken"
  done

  trap 'echo "redis-cluster: start failed, stopping what it started" >&2; stop_ports $(ports_in_dir)' ERR
  for port in $(seq "$base" $((base + NODES - 1))); do
    rm -rf "${dir:?}/$port"
    mkdir -p "$dir/$port"
    # shellcheck disable=SC2046 # listen's words are separate arguments (the paths hold no spaces: mktemp's)
    "$redis_server" \
      $(listen "$port") "${network[@]}" \
      --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
      --cluster-node-timeout "$node_timeout" \
      --save "" --appendonly no --repl-diskless-sync-delay 0 --dir "$dir/$port" \
      --daemonize no --logfile "$dir/$port/redis.log" </dev/null >/dev/null 2>&1 &
    # Not daemonized: the nodes stay in the caller's process group, so a Ctrl-C that stops the caller stops them.
    echo $! >"$dir/$port.pid"
  done
  for port in $(seq "$base" $((base + NODES - 1))); do
    for _ in $(seq 1 100); do
      [ "$(cli -p "$port" ping 2>/dev/null)" = "PONG" ] && break
      sleep 0.05
    done
    [ "$(cli -p "$port" ping 2>/dev/null)" = "PONG" ] || {
      tail -n 5 "$dir/$port/redis.log" >&2 || true
      false
    }
  done

  local addresses=()
  for port in $(seq "$base" $((base + NODES - 1))); do addresses+=("127.0.0.1:$port"); done
  cli --cluster create "${addresses[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >"$dir/create.log" 2>&1 || {
    cat "$dir/create.log" >&2
    false
  }

  local deadline=$((SECONDS + wait_seconds))
  until healthy "$base"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "redis-cluster: not healthy after ${wait_seconds}s" >&2
      false
    fi
    sleep 0.1
  done
  trap - ERR
  echo "$base" >"$dir/baseport"
  if [ -n "$owner" ]; then
    # Stop the cluster when its owner exits, however it exits (a test runner killed by a CI timeout, say).
    (
      while kill -0 "$owner" 2>/dev/null; do sleep 1; done
      stop_ports $(ports_in_dir)
      rm -f "$dir/watcher.pid"
    ) </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watcher.pid"
  fi
  urls "$base"
}

stop() {
  [ -d "$dir" ] || return 0
  local base=${1:-} port pid
  if [ -f "$dir/watcher.pid" ]; then
    pid=$(tr -dc '0-9' <"$dir/watcher.pid")
    if [ -n "$pid" ] && command_of "$pid" | grep -q "redis-cluster.sh start"; then
      kill "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/watcher.pid"
  fi
  if [ -n "$base" ]; then
    is_port "$base" || die "BASEPORT must be a port number"
    stop_ports $(seq "$base" $((base + NODES - 1)))
  else
    stop_ports $(ports_in_dir)
  fi
}

case "$command" in
  start) start "${3:-}" ;;
  stop) stop "${3:-}" ;;
  kill)
    port=${3:-}
    is_port "$port" || die "kill needs the PORT of a node"
    pid=$(our_pid "$port")
    [ -n "$pid" ] || die "no node of $dir runs on port $port"
    kill -KILL "$pid"
    ;;
  nodes)
    [ -f "$dir/baseport" ] || die "no cluster was started in $dir"
    urls "$(cat "$dir/baseport")"
    ;;
  *) usage ;;
esac
