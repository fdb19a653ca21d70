#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for kickstand's tests and benchmarks.
#
#   scripts/postgres.sh start [DIR]   create (initdb) if needed and start; prints the DSN
#   scripts/postgres.sh stop DIR      stop (fast), keep the data
#   scripts/postgres.sh crash DIR     stop immediately (like a power cut; WAL recovery on start)
#   scripts/postgres.sh destroy DIR   stop and remove DIR
#   scripts/postgres.sh dsn DIR       print the DSN
#
# The cluster lives entirely in DIR (default: a new /tmp/kickstand-pg.XXXXXX):
# data in DIR/data, its unix socket in DIR, the log in DIR/log. It listens on
# no TCP port at all (listen_addresses=''), so it cannot collide with, or be
# reached instead of, a system cluster; the system's clusters and their data
# are never touched. The DSN (last line of start's output) connects over the
# socket as the superuser "kickstand", with trust authentication, to database
# "kickstand".
#
# Installs the Debian "postgresql" package if no server binaries are found
# (needs root). PostgreSQL refuses to run as root: as root, the server runs as
# the "postgres" user, which then owns DIR.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [[ -z $d || ! -x $d/pg_ctl ]]; then
    [[ $(id -u) == 0 ]] || die "PostgreSQL server binaries not found and not root to apt-get install postgresql"
    echo "postgres.sh: installing postgresql" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
    d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  echo "$d"
}

# as runs a command as the cluster's owner.
as() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

dsn() { echo "postgres:///kickstand?host=$1&user=kickstand&sslmode=disable"; }

start() {
  local dir=${1:-} bin
  bin=$(bindir)
  if [[ -z $dir ]]; then
    dir=$(mktemp -d /tmp/kickstand-pg.XXXXXX)
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # The socket path must fit in sun_path (107 bytes).
  ((${#dir} < 80)) || die "$dir: path too long for a unix socket"
  if [[ $(id -u) == 0 ]]; then
    getent passwd postgres >/dev/null || die "no postgres user (is the postgresql package installed?)"
    chown postgres: "$dir"
    chmod 0755 "$dir" # clients (root, tests) reach the socket in it
  fi
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    as "$bin/initdb" -D "$dir/data" -U kickstand --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >>"$dir/data/postgresql.conf" <<EOF
# kickstand test cluster
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 128MB
fsync = on
synchronous_commit = on
EOF
  fi
  if ! as "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start >/dev/null ||
      { tail -n 30 "$dir/log" >&2; die "pg_ctl start failed"; }
  fi
  if ! as "$bin/psql" -h "$dir" -U kickstand -d postgres -XAtqc "SELECT 1 FROM pg_database WHERE datname = 'kickstand'" | grep -q 1; then
    as "$bin/createdb" -h "$dir" -U kickstand kickstand
  fi
  dsn "$dir"
}

stop() {
  local dir=${1:?usage: stop DIR} mode=${2:-fast} bin
  bin=$(bindir)
  [[ -f $dir/data/PG_VERSION ]] || die "$dir is not a cluster made by postgres.sh"
  if as "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
  fi
}

cmd=${1:-}
shift || true
case $cmd in
  start) start "$@" ;;
  stop) stop "${1:-}" fast ;;
  crash) stop "${1:-}" immediate ;;
  destroy)
    dir=${1:?usage: destroy DIR}
    [[ -f $dir/data/PG_VERSION ]] || die "$dir is not a cluster made by postgres.sh"
    stop "$dir" immediate
    rm -rf "$dir"
    ;;
  dsn) dsn "$(cd "${1:?usage: dsn DIR}" && pwd)" ;;
  *) die "usage: $0 start [DIR] | stop DIR | crash DIR | destroy DIR | dsn DIR" ;;
esac
