#!/usr/bin/env bash
# Real Apache Kafka (KRaft, one node, 127.0.0.1:9092) for development and CI, from its jars on Maven Central.
#   scripts/kafka.sh start    fetch (cached), format the store if new, start, wait until it answers
#   scripts/kafka.sh stop     stop it (waits for the process to end)
#   scripts/kafka.sh status   exit 0 when it is running
#   scripts/kafka.sh reset    stop and delete its data
# Safe to run twice. Env: TEXTBACK_CACHE (jars, default ~/.cache/textback), TEXTBACK_DEV_KAFKA_DIR (data, pid, log),
# TEXTBACK_DEV_KAFKA_PORT (default 9092).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TEXTBACK_CACHE:-$HOME/.cache/textback}
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
libs=$cache/kafka-$version/libs
dir=${TEXTBACK_DEV_KAFKA_DIR:-${TMPDIR:-/tmp}/textback-kafka}
port=${TEXTBACK_DEV_KAFKA_PORT:-9092}
ctl_port=$((port + 1))
pidfile=$dir/kafka.pid

# Java runs the broker, Maven fetches it; installed from Debian's packages when missing and we are root.
ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "kafka.sh: installing ${missing[*]}" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "kafka.sh: needs ${missing[*]} (Java 17+ and Maven)" >&2; exit 1
  fi
}

fetch() {
  ensure_tools
  [ -f "$libs/.complete" ] && return 0
  echo "kafka.sh: fetching Apache Kafka $version from Maven Central into $libs" >&2
  rm -rf "$libs"; mkdir -p "$libs"
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

start() {
  fetch
  if running; then echo "kafka.sh: already running (pid $(cat "$pidfile"))" >&2; return 0; fi
  mkdir -p "$dir"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
  local cp="$libs/*"
  local log4j="-Dlog4j2.configurationFile=$here/kafka/log4j2.properties"
  local heap="-Xms256m -Xmx768m -XX:+UseG1GC -XX:TieredStopAtLevel=1"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # shellcheck disable=SC2086
    java $heap "$log4j" -cp "$cp" kafka.tools.StorageTool format \
      -t textback-dev-cluster-0001 -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; exit 1; }
  fi
  # shellcheck disable=SC2086
  nohup java $heap "$log4j" -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 120); do
    if ! running; then echo "kafka.sh: Kafka exited while starting; log:" >&2; tail -40 "$dir/kafka.log" >&2; exit 1; fi
    if answers && grep -q "Kafka Server started\|started (kafka.server" "$dir/kafka.log"; then
      echo "kafka.sh: Kafka $version up on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2; return 0
    fi
    sleep 0.5
  done
  echo "kafka.sh: Kafka did not answer within 60 s; log:" >&2; tail -40 "$dir/kafka.log" >&2; exit 1
}

stop() {
  running || { rm -f "$pidfile"; return 0; }
  local pid; pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "kafka.sh: stopped" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) running ;;
  reset) stop; rm -rf "$dir" ;;
  fetch) fetch ;;
  *) echo "usage: $0 start|stop|status|reset|fetch" >&2; exit 64 ;;
esac
