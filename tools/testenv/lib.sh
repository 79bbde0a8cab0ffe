# Shared settings and helpers of up.sh and down.sh (sourced, not run).
# Every port, path and version can be overridden from the environment.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TESTENV="${SLUICE_TESTENV_DIR:-$ROOT/.testenv}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/sluice"

KAFKA_VERSION="${SLUICE_TESTENV_KAFKA_VERSION:-4.4.0}"
KAFKA_PORT="${SLUICE_TESTENV_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${SLUICE_TESTENV_KAFKA_CONTROLLER_PORT:-19093}"
CLICKHOUSE_PORT="${SLUICE_TESTENV_CLICKHOUSE_PORT:-19000}"
# Every test creates its own topics; 512 MiB ran out with a few thousand partitions.
KAFKA_HEAP="${SLUICE_TESTENV_KAFKA_HEAP:-2g}"
CLICKHOUSE_HTTP_PORT="${SLUICE_TESTENV_CLICKHOUSE_HTTP_PORT:-18123}"

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# pid_of NAME prints the pid recorded for NAME if that process is still the
# one we started (its command line mentions our directory), else nothing.
pid_of() {
  local file="$TESTENV/$1.pid" pid
  [[ -f "$file" ]] || return 0
  pid="$(<"$file")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$TESTENV/"; then
    echo "$pid"
  fi
}

# port_open PORT succeeds when something accepts TCP connections on it.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
