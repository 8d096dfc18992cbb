#!/usr/bin/env bash
# A PostgreSQL server of our own for development, tests and CI: Debian's packages, a
# cluster in a directory of ours (not the system's "main" cluster), on 127.0.0.1:5432.
#
#   postgres.sh start    install if missing, create the cluster (once), start, create the
#                        role pbj (password pbj) and the databases; prints their URLs
#   postgres.sh stop     stop the server started here
#   postgres.sh status   running or not (exit 0 when it accepts connections)
#
# Environment: PG_DATA_DIR (default deploy/postgres/data). Must be run as root: the
# server runs as the postgres user, which must own (and reach) the data directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${PG_DATA_DIR:-$HERE/data}"
PGDATA="$DATA/pgdata"
LOGFILE="$DATA/postgres.log"
HOST=127.0.0.1
PORT=5432
DATABASES=(pbj_assessment pbj_allocation pbj_planning pbj_payments pbj_audit pbj_test)

say() { echo "postgres: $*"; }

# The newest installed major version (a pattern that matches nothing fails the -x test).
bindir() { printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }

install_postgres() {
  [[ -x "$(bindir)/postgres" ]] && return 0
  [[ $EUID -eq 0 ]] || { say "PostgreSQL is not installed; run this as root to install it"; exit 1; }
  say "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q postgresql >/dev/null || {
    apt-get update -q >/dev/null
    apt-get install -y -q postgresql >/dev/null
  }
}

as_postgres() { runuser -u postgres -- "$@"; }

pg_ctl_() { as_postgres "$(bindir)/pg_ctl" -D "$PGDATA" "$@"; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

ours_running() { [[ -f "$PGDATA/PG_VERSION" ]] && pg_ctl_ status >/dev/null 2>&1; }

psql_admin() {
  # Through our own socket directory, as the postgres superuser (peer authentication).
  as_postgres "$(bindir)/psql" -h "$PGDATA" -p "$PORT" -d postgres -qAt -v ON_ERROR_STOP=1
}

create_cluster() {
  [[ -f "$PGDATA/PG_VERSION" ]] && return 0
  say "creating a cluster in $PGDATA"
  mkdir -p "$PGDATA"
  chown postgres:postgres "$DATA" "$PGDATA"
  chmod 700 "$PGDATA"
  # The postgres user must be able to reach the directory through every parent.
  if ! as_postgres test -w "$PGDATA"; then
    say "the postgres user cannot write $PGDATA (a parent directory is not traversable)"
    exit 1
  fi
  as_postgres "$(bindir)/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >"$DATA/initdb.log" 2>&1
  cat >>"$PGDATA/postgresql.conf" <<EOF

# Set by deploy/postgres/postgres.sh
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$PGDATA'
max_connections = 200
fsync = on
EOF
}

provision() {
  local db sql
  sql="DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pbj') THEN
    CREATE ROLE pbj LOGIN CREATEDB PASSWORD 'pbj';
  END IF;
END \$\$;"
  # CREATE DATABASE cannot run inside a DO block: psql's \gexec runs it only when missing.
  for db in "${DATABASES[@]}"; do
    sql+=$'\n'"SELECT 'CREATE DATABASE $db OWNER pbj' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')"$'\n\\gexec'
  done
  psql_admin <<<"$sql"
}

urls() {
  local db
  for db in "${DATABASES[@]}"; do
    echo "  postgresql+asyncpg://pbj:pbj@$HOST:$PORT/$db"
  done
}

start() {
  install_postgres
  if ours_running; then
    provision
    say "already running on $HOST:$PORT (data in $PGDATA)"
    urls
    return 0
  fi
  if port_open; then
    say "port $PORT is taken by a server not started by this script (the system's cluster?"
    say "see pg_lsclusters; pg_ctlcluster VERSION main stop)"
    exit 1
  fi
  create_cluster
  say "starting on $HOST:$PORT (log in $LOGFILE)"
  touch "$LOGFILE"
  chown postgres:postgres "$LOGFILE"
  # 9>&-: the server must not inherit (and so hold for ever) the start lock.
  pg_ctl_ -l "$LOGFILE" -w -t 60 start >/dev/null 9>&-
  provision
  say "ready on $HOST:$PORT; databases (user pbj, password pbj):"
  urls
}

stop() {
  if ! ours_running; then
    say "not running"
    return 0
  fi
  # "fast": roll back open transactions and stop now, without waiting for clients.
  pg_ctl_ -m fast -w stop >/dev/null
  say "stopped"
}

status() {
  if ours_running && port_open; then
    say "running on $HOST:$PORT (data in $PGDATA)"
  else
    say "not running"
    return 1
  fi
}

# Test sessions may start servers at the same moment: one start/stop at a time.
lock() {
  mkdir -p "$DATA"
  exec 9>"$DATA/.lock"
  flock 9
}

case "${1:-}" in
  start) lock && start ;;
  stop) lock && stop ;;
  status) status ;;
  urls) urls ;;
  *)
    echo "usage: $0 start|stop|status|urls" >&2
    exit 2
    ;;
esac
