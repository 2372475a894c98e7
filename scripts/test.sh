#!/usr/bin/env bash
# The whole test suite. Starts the real services the tests need (Kafka, PostgreSQL), runs formatting and lint
# checks and every test of the workspace, and stops the services again, whatever happens.
# Needs nothing running beforehand. A build cache outside the checkout (CARGO_TARGET_DIR, default
# ~/.cache/textback/target) and the Kafka jars (~/.cache/textback) are reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/textback/target}
# The test broker has its own port and data, apart from a developer's scripts/kafka.sh on 9092.
export TEXTBACK_DEV_KAFKA_PORT=${TEXTBACK_DEV_KAFKA_PORT:-19092}
export TEXTBACK_DEV_KAFKA_DIR=${TEXTBACK_DEV_KAFKA_DIR:-${TMPDIR:-/tmp}/textback-kafka-test}
export TEXTBACK_TEST_KAFKA=127.0.0.1:$TEXTBACK_DEV_KAFKA_PORT
export TEXTBACK_DEV_PG_PORT=${TEXTBACK_DEV_PG_PORT:-15432}
export TEXTBACK_DEV_PG_DIR=${TEXTBACK_DEV_PG_DIR:-${TMPDIR:-/tmp}/textback-pg-test}
export TEXTBACK_TEST_PG=postgres://postgres@127.0.0.1:$TEXTBACK_DEV_PG_PORT/postgres

stop_services() { bash scripts/kafka.sh stop || true; bash scripts/postgres.sh stop || true; }
trap stop_services EXIT

step() { printf '\n== %s\n' "$*" >&2; }

step "formatting"
cargo fmt --all -- --check

step "alert rules: promtool check and unit tests (Prometheus from Debian, installed when missing)"
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
  else
    echo "test.sh: needs prometheus and promtool (apt-get install prometheus)" >&2; exit 1
  fi
fi
promtool check rules grafana/alerts/textback.rules.yml
promtool test rules grafana/alerts/tests/textback.rules.test.yml

step "services: Kafka on $TEXTBACK_TEST_KAFKA, PostgreSQL on port $TEXTBACK_DEV_PG_PORT (fresh data)"
bash scripts/kafka.sh reset
bash scripts/kafka.sh start
bash scripts/postgres.sh reset
bash scripts/postgres.sh start

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked

step "load test: every goose scenario, short and bounded, on the running Kafka and PostgreSQL"
cargo run --locked --quiet -p loadtest -- --run-time 2 --users 2 --businesses 50 \
  --brokers "$TEXTBACK_TEST_KAFKA" --postgres "$TEXTBACK_TEST_PG"

step "eval: the conversation corpora"
# The project's corpus (shared/ beside the checkout, as CI has it) and the one this repo carries.
corpora=(tests/corpus)
shared=${TEXTBACK_CORPUS:-../shared/corpus}
if [ -f "$shared/dialogs.jsonl" ]; then corpora+=("$shared"); else echo "note: no corpus at $shared; scoring tests/corpus only" >&2; fi
for corpus in "${corpora[@]}"; do
  echo "corpus $corpus (in memory):" >&2
  cargo run --locked --quiet -- eval --corpus "$corpus"
  echo "corpus $corpus (PostgreSQL):" >&2
  TEXTBACK_WORKER_POSTGRES_URL=$TEXTBACK_TEST_PG cargo run --locked --quiet -- eval --corpus "$corpus" --store postgres
done
