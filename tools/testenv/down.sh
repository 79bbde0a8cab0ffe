#!/usr/bin/env bash
# Stops the servers started by up.sh: SIGTERM, then SIGKILL after a grace
# period, and waits until each process is gone. Safe to run at any time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GRACE_SECONDS="${SLUICE_TESTENV_STOP_GRACE:-30}"

gone() { ! kill -0 "$1" 2>/dev/null; }

# wait_gone PID TENTHS polls until PID has exited or TENTHS/10 s have passed.
wait_gone() {
  local i
  for ((i = 0; i < $2; i++)); do
    gone "$1" && return 0
    sleep 0.1
  done
  gone "$1"
}

stop() {
  local name="$1" pid
  pid="$(pid_of "$name")"
  if [[ -n "$pid" ]]; then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" $((GRACE_SECONDS * 10)); then
      log "$name did not stop within ${GRACE_SECONDS}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 100 || die "$name (pid $pid) survived SIGKILL"
    fi
  fi
  rm -f "$TESTENV/$name.pid"
}

# Signal every node first: a node stopped after its quorum is gone waits
# for the controller until the grace period ends.
for f in "$TESTENV"/kafka-*.pid; do
  [[ -f "$f" ]] && pid="$(pid_of "$(basename "$f" .pid)")" && [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
done
# Every node's pid file, whatever KAFKA_NODES says now; "kafka" is the
# one-node layout of older checkouts.
for f in "$TESTENV"/kafka-*.pid "$TESTENV"/kafka.pid; do
  [[ -f "$f" ]] && stop "$(basename "$f" .pid)"
done
stop clickhouse
rm -f "$TESTENV/env.sh"
