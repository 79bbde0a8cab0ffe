#!/usr/bin/env bash
# Starts the servers the tests run against, installing what is missing:
# Apache Kafka (KRaft, SLUICE_TESTENV_KAFKA_NODES combined broker+controller
# nodes, default 3: replication factor 3 and min.insync.replicas 2; with 1, one;
# from Maven Central jars) and clickhouse-server,
# both on 127.0.0.1 with non-default ports, all state under .testenv/. Then
# writes .testenv/env.sh for the tests (SLUICE_TEST_KAFKA_BROKERS,
# SLUICE_TEST_CLICKHOUSE_ADDR). Servers already started by an earlier run are
# reused. Stop them with down.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  log "installing $*"
  apt-get install -y -q "$@" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}

install_missing() {
  command -v go >/dev/null || die "go is not on PATH"
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  command -v clickhouse-server >/dev/null && command -v clickhouse-client >/dev/null ||
    apt_install clickhouse-server clickhouse-client
  # Independent SMPP peers of the interop tests: Kannel, and node-smpp (npm).
  command -v bearerbox >/dev/null && command -v smsbox >/dev/null || apt_install kannel
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
}

# kafka_jars prints the directory holding the broker's jars, fetching
# them from Maven Central into the cache the first time.
kafka_jars() {
  local dir="$CACHE/kafka-$KAFKA_VERSION"
  if [[ ! -f "$dir/lib/.complete" ]]; then
    log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central"
    mkdir -p "$dir"
    cat >"$dir/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sluice.testenv</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- the broker logs through slf4j 2 to log4j2, as in Kafka's own distribution -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.25.5</version></dependency>
  </dependencies>
</project>
POM
    rm -rf "$dir/lib.tmp"
    mvn -B -q -f "$dir/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$dir/lib.tmp" >"$dir/mvn.log" 2>&1 ||
      { tail -n 30 "$dir/mvn.log" >&2; die "mvn could not fetch Kafka $KAFKA_VERSION (log: $dir/mvn.log)"; }
    touch "$dir/lib.tmp/.complete"
    rm -rf "$dir/lib"
    mv "$dir/lib.tmp" "$dir/lib"
  fi
  echo "$dir/lib"
}

# check_port_free fails when a process we did not start holds PORT.
check_port_free() {
  port_open "$1" && die "port $1 is taken by another process; stop it or set $2" || true
}

# start_kafka formats and starts every node of a new cluster (a cluster
# that is partly up is stopped by down.sh first: its nodes share one id).
start_kafka() {
  local lib dir="$TESTENV/kafka" cluster_id p i
  lib="$(kafka_jars)"
  for p in ${KAFKA_PORTS//,/ }; do check_port_free "$p" SLUICE_TESTENV_KAFKA_PORT; done
  for p in ${KAFKA_CONTROLLER_PORTS//,/ }; do check_port_free "$p" SLUICE_TESTENV_KAFKA_CONTROLLER_PORT; done
  rm -rf "$dir"
  cluster_id="$("$TESTENV/bin/sluice-testenv" kafka-config -dir "$dir" \
    -ports "$KAFKA_PORTS" -controller-ports "$KAFKA_CONTROLLER_PORTS")"
  for ((i = 1; i <= KAFKA_NODES; i++)); do
    local node="$dir/node-$i"
    # The GC log shows whether the heap holds (README "Development").
    local java=(java "-Xms$KAFKA_HEAP" "-Xmx$KAFKA_HEAP" -Djava.awt.headless=true
      "-Xlog:gc:file=$TESTENV/kafka-$i-gc.log" "-Dlog4j2.configurationFile=$node/log4j2.yaml" -cp "$lib/*")
    "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$node/server.properties" \
      >"$TESTENV/kafka-$i-format.log" 2>&1 ||
      { tail -n 20 "$TESTENV/kafka-$i-format.log" >&2; die "formatting Kafka storage of node $i failed"; }
    nohup "${java[@]}" kafka.Kafka "$node/server.properties" >"$TESTENV/kafka-$i.log" 2>&1 </dev/null &
    echo $! >"$TESTENV/kafka-$i.pid"
  done
  log "starting Kafka $KAFKA_VERSION, $KAFKA_NODES nodes on 127.0.0.1:{$KAFKA_PORTS}, heap $KAFKA_HEAP each"
}

# kafka_running succeeds when every node of the cluster is up.
kafka_running() {
  local i
  for ((i = 1; i <= KAFKA_NODES; i++)); do [[ -n "$(pid_of "kafka-$i")" ]] || return 1; done
}

start_clickhouse() {
  local dir="$TESTENV/clickhouse"
  check_port_free "$CLICKHOUSE_PORT" SLUICE_TESTENV_CLICKHOUSE_PORT
  check_port_free "$CLICKHOUSE_HTTP_PORT" SLUICE_TESTENV_CLICKHOUSE_HTTP_PORT
  rm -rf "$dir"
  mkdir -p "$dir/log"
  "$TESTENV/bin/sluice-testenv" clickhouse-config -dir "$dir" \
    -tcp-port "$CLICKHOUSE_PORT" -http-port "$CLICKHOUSE_HTTP_PORT"
  log "starting clickhouse-server on 127.0.0.1:$CLICKHOUSE_PORT"
  nohup clickhouse-server --config-file="$dir/config.xml" >"$TESTENV/clickhouse.log" 2>&1 </dev/null &
  echo $! >"$TESTENV/clickhouse.pid"
}

main() {
  mkdir -p "$TESTENV/bin"
  install_missing
  # One readiness check and one ClickHouse config for this script and pkg/testenv.
  (cd "$ROOT/pkg" && go build -o "$TESTENV/bin/sluice-testenv" ./testenv/cmd/sluice-testenv)

  if kafka_running; then
    log "reusing Kafka ($KAFKA_NODES nodes)"
  else
    for ((i = 1; i <= KAFKA_NODES; i++)); do [[ -z "$(pid_of "kafka-$i")" ]] || die "Kafka is partly up: run tools/testenv/down.sh first"; done
    start_kafka
  fi
  [[ -n "$(pid_of clickhouse)" ]] && log "reusing clickhouse-server (pid $(pid_of clickhouse))" || start_clickhouse

  local kafka p i clickhouse="127.0.0.1:$CLICKHOUSE_PORT"
  kafka="$(for p in ${KAFKA_PORTS//,/ }; do echo "127.0.0.1:$p"; done | paste -sd,)"
  if ! "$TESTENV/bin/sluice-testenv" wait -kafka "$kafka" -clickhouse "$clickhouse" -timeout 3m; then
    for f in $(cd "$TESTENV" && ls kafka-*.log) clickhouse.log clickhouse/log/error.log; do
      [[ -f "$TESTENV/$f" ]] && { log "--- $TESTENV/$f"; tail -n 30 "$TESTENV/$f" >&2; }
    done
    die "servers did not become ready (run tools/testenv/down.sh to stop what started)"
  fi
  cat >"$TESTENV/env.sh" <<ENV
# Written by tools/testenv/up.sh: source it before go test.
export SLUICE_TEST_KAFKA_BROKERS=$kafka
export SLUICE_TEST_KAFKA_REPLICATION_FACTOR=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
export SLUICE_TEST_CLICKHOUSE_ADDR=$clickhouse
ENV
  log "ready: Kafka $kafka, ClickHouse $clickhouse (source $TESTENV/env.sh)"
}

main "$@"
