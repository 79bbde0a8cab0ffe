# Shared settings and helpers of up.sh and down.sh (sourced, not run).
# Every port, path and version can be overridden from the environment.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TESTENV="${SLUICE_TESTENV_DIR:-$ROOT/.testenv}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/sluice"

KAFKA_VERSION="${SLUICE_TESTENV_KAFKA_VERSION:-4.4.0}"
# Three combined broker+controller nodes; node i listens on KAFKA_PORT+2(i-1)
# and its controller on KAFKA_CONTROLLER_PORT+2(i-1), unless the lists are given.
KAFKA_NODES="${SLUICE_TESTENV_KAFKA_NODES:-3}"
KAFKA_PORT="${SLUICE_TESTENV_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${SLUICE_TESTENV_KAFKA_CONTROLLER_PORT:-19093}"
step_ports() { local i out=(); for ((i = 0; i < KAFKA_NODES; i++)); do out+=($(($1 + 2 * i))); done; (IFS=,; echo "${out[*]}"); }
KAFKA_PORTS="${SLUICE_TESTENV_KAFKA_PORTS:-$(step_ports "$KAFKA_PORT")}"
KAFKA_CONTROLLER_PORTS="${SLUICE_TESTENV_KAFKA_CONTROLLER_PORTS:-$(step_ports "$KAFKA_CONTROLLER_PORT")}"
CLICKHOUSE_PORT="${SLUICE_TESTENV_CLICKHOUSE_PORT:-19000}"
# Per node. Every test creates its own topics, and with replication factor 3
# every node holds a replica of each partition: a few thousand at the peak of
# make unit. 512 MiB ran out with one node; see README "Development" for the
# measured heap use.
KAFKA_HEAP="${SLUICE_TESTENV_KAFKA_HEAP:-$([[ $KAFKA_NODES == 1 ]] && echo 2g || echo 768m)}"
CLICKHOUSE_HTTP_PORT="${SLUICE_TESTENV_CLICKHOUSE_HTTP_PORT:-18123}"

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# pid_of NAME prints the pid recorded for NAME if that process is still the
# one we started (its command line mentions our directory), else nothing.
pid_of() {
  local file="$TESTENV/$1.pid" pid
  [[ -f "$file" ]] || return 0
  pid="$(<"$file")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$TESTENV/"; then
    echo "$pid"
  fi
}

# port_open PORT succeeds when something accepts TCP connections on it.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
