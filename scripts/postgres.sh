#!/usr/bin/env bash
# A throwaway PostgreSQL server for development and CI, on 127.0.0.1 with trust authentication.
#   scripts/postgres.sh start    create the cluster if new, start it, wait until it answers
#   scripts/postgres.sh stop     stop it
#   scripts/postgres.sh status   exit 0 when it is running
#   scripts/postgres.sh reset    stop and delete its data
# Safe to run twice. Env: TEXTBACK_DEV_PG_PORT (default 5432), TEXTBACK_DEV_PG_DIR (data and log).
# Connect with: postgres://postgres@127.0.0.1:$TEXTBACK_DEV_PG_PORT/postgres
set -euo pipefail
port=${TEXTBACK_DEV_PG_PORT:-5432}
dir=${TEXTBACK_DEV_PG_DIR:-${TMPDIR:-/tmp}/textback-pg-$port}

ensure_installed() {
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "postgres.sh: installing PostgreSQL from Debian" >&2
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    else
      echo "postgres.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1
    fi
  fi
}

# The server refuses to run as root: when we are root, run its tools as the postgres user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$dir" postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() { [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

start() {
  ensure_installed
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && { id postgres >/dev/null 2>&1 || useradd --system postgres; chown postgres "$dir"; }
  if running; then echo "postgres.sh: already running on $port" >&2; return 0; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  # Tuned for tests on a small machine: durability off is fine for a throwaway cluster.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB" >/dev/null \
    || { tail -30 "$dir/server.log" >&2; exit 1; }
  echo "postgres.sh: PostgreSQL up on 127.0.0.1:$port" >&2
}

stop() {
  ensure_installed
  running || return 0
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  echo "postgres.sh: stopped" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) ensure_installed; running ;;
  reset) stop; rm -rf "$dir" ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 64 ;;
esac
