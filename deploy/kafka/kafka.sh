#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft: broker and controller in one JVM) for development,
# tests and CI, fetched from Maven Central: no Docker, no download outside the registries.
#
#   kafka.sh fetch    jars into deploy/kafka/lib (once; a stamp makes it quick after)
#   kafka.sh start    fetch, format storage (once), start, wait until the broker answers
#   kafka.sh stop     stop the broker started here
#   kafka.sh status   running or not (exit 0 when it answers)
#
# Environment: KAFKA_DATA_DIR (default deploy/kafka/data), KAFKA_PORT (default 9092; the
# controller takes KAFKA_CONTROLLER_PORT, default the next port), KAFKA_HEAP_OPTS (default
# -Xms256m -Xmx512m), KAFKA_START_TIMEOUT seconds (default 90). A second broker needs a
# data directory and ports of its own.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
LIB="$HERE/lib"
STAMP="$LIB/.complete"
DATA="${KAFKA_DATA_DIR:-$HERE/data}"
mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
PIDFILE="$DATA/kafka.pid"
LOGFILE="$DATA/kafka.log"
PROPS="$DATA/server.properties"
HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HEAP="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
TIMEOUT="${KAFKA_START_TIMEOUT:-90}"

say() { echo "kafka: $*"; }

fetch() {
  # The stamp holds the pom's checksum, so editing the pom (a new Kafka version) refetches.
  local want
  want="$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    return 0
  fi
  if ! command -v mvn >/dev/null || ! command -v java >/dev/null; then
    [[ $EUID -eq 0 ]] || { say "needs java and mvn: apt-get install -y maven"; exit 1; }
    say "installing Debian's maven (and with it a JDK)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q maven >/dev/null || {
      apt-get update -q >/dev/null
      apt-get install -y -q maven >/dev/null
    }
  fi
  say "fetching jars from Maven Central into $LIB"
  rm -rf "$LIB"
  (cd "$HERE" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory="$LIB")
  echo "$want" >"$STAMP"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# The port opening is not enough: the broker must have registered with its controller
# and be able to serve metadata. With the project's venv we ask for metadata; without
# it the broker's own "started" line in the log stands in for that.
answers() {
  port_open "$PORT" || return 1
  local py="$ROOT/.venv/bin/python"
  if [[ -x "$py" ]] && "$py" -c "import aiokafka" 2>/dev/null; then
    "$py" - "$HOST:$PORT" <<'EOF' 2>/dev/null
import asyncio, sys
from aiokafka import AIOKafkaClient

async def main() -> None:
    client = AIOKafkaClient(bootstrap_servers=sys.argv[1], request_timeout_ms=3000)
    try:
        await client.bootstrap()
        metadata = await client.fetch_all_metadata()
        sys.exit(0 if metadata.brokers() else 1)
    finally:
        await client.close()

asyncio.run(main())
EOF
  else
    grep -q "Kafka Server started" "$LOGFILE" 2>/dev/null
  fi
}

write_config() {
  mkdir -p "$DATA/kraft-logs"
  cat >"$PROPS" <<EOF
# Written by deploy/kafka/kafka.sh on every start: edit the script, not this file.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
log.dirs=$DATA/kraft-logs
# Topics are created on purpose (ensure_topics), never by a typo in a producer.
auto.create.topics.enable=false
num.partitions=6
# One node: every replication factor is 1.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# The log is the system of record: keep every record forever.
log.retention.ms=-1
log.retention.bytes=-1
# A lone node has nobody to wait for; this makes the first group join instant.
group.initial.rebalance.delay.ms=0
EOF
  cat >"$DATA/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $LOGFILE
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.controller.name = org.apache.kafka.controller
logger.controller.level = info
logger.state.name = state.change.logger
logger.state.level = warn
EOF
}

start() {
  local pid
  if pid="$(our_pid)"; then
    if answers; then
      say "already running (pid $pid) on $HOST:$PORT"
      return 0
    fi
    say "pid $pid is starting; waiting"
  elif port_open "$PORT"; then
    if answers; then
      say "a broker not started by this script already answers on $HOST:$PORT; using it"
      return 0
    fi
    say "port $PORT is taken by something that is not a Kafka broker"
    exit 1
  else
    fetch
    write_config
    local cp="$LIB/*"
    if [[ ! -f "$DATA/kraft-logs/meta.properties" ]]; then
      # --standalone makes this node the whole controller quorum (KIP-853).
      local cluster_id
      cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid)"
      say "formatting storage in $DATA/kraft-logs (cluster $cluster_id)"
      java -Dlog4j2.configurationFile="$DATA/log4j2.properties" -cp "$cp" \
        kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$PROPS" >>"$LOGFILE" 2>&1
    fi
    say "starting on $HOST:$PORT (data in $DATA, log in $LOGFILE)"
    # 9>&-: the broker must not inherit (and so hold for ever) the start lock.
    # shellcheck disable=SC2086  # HEAP holds several options
    nohup setsid java $HEAP -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$DATA/log4j2.properties" \
      -cp "$cp" kafka.Kafka "$PROPS" >>"$DATA/kafka.out" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "the broker exited during start-up; last lines of $LOGFILE and kafka.out:"
      tail -n 30 "$LOGFILE" "$DATA/kafka.out" 2>/dev/null || true
      rm -f "$PIDFILE"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      say "no answer on $HOST:$PORT after ${TIMEOUT}s; see $LOGFILE"
      exit 1
    fi
    sleep 0.5
  done
  say "ready on $HOST:$PORT (pid $pid)"
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  say "stopping pid $pid"
  kill "$pid"
  # A clean shutdown flushes the log; give it time before insisting.
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after 30s; killing"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  say "stopped"
}

status() {
  local pid
  if pid="$(our_pid)" && answers; then
    say "running (pid $pid) on $HOST:$PORT, data in $DATA"
  elif answers; then
    say "a broker not started by this script answers on $HOST:$PORT"
  elif pid="$(our_pid)"; then
    say "pid $pid is up but the broker does not answer yet"
    return 1
  else
    say "not running"
    return 1
  fi
}

# Test sessions may start servers at the same moment: one start/stop at a time.
lock() {
  exec 9>"$DATA/.lock"
  flock 9
}

case "${1:-}" in
  fetch) lock && fetch && say "jars ready in $LIB" ;;
  start) lock && start ;;
  stop) lock && stop ;;
  status) status ;;
  *)
    echo "usage: $0 fetch|start|stop|status" >&2
    exit 2
    ;;
esac
