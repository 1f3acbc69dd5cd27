#!/usr/bin/env bash
# The test command: builds every binary, makes sure a PostgreSQL cluster is available, and runs
# the whole test suite (all servers on SQLite and PostgreSQL). Extra arguments go to `cargo test`.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -p conformance  # one package
#
# PostgreSQL: uses TEST_DATABASE_URL when set (a cluster where tests may CREATE DATABASE);
# otherwise starts a throwaway cluster from the installed server binaries (initdb/pg_ctl in a
# temporary folder, on a free port) and removes it afterwards. PG_BINDIR is exported for tests
# that need a cluster of their own (database fault tests).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bindir() {
    if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then echo "$PG_BINDIR"; return; fi
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
    return 1
}

if ! PG_BINDIR=$(pg_bindir); then
    echo "error: no PostgreSQL server binaries (initdb, pg_ctl) found: install PostgreSQL (Debian: apt-get install postgresql) or set TEST_DATABASE_URL" >&2
    exit 1
fi
export PG_BINDIR

# Runs a PostgreSQL tool as the postgres user when we are root (initdb refuses root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -z "${TEST_DATABASE_URL:-}" ]; then
    PGTMP=$(mktemp -d /tmp/todo-test-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$PGTMP"
    PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cleanup() {
        as_pg "$PG_BINDIR/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PGTMP"
    }
    trap cleanup EXIT
    echo "starting a throwaway PostgreSQL cluster on 127.0.0.1:$PGPORT ($PGTMP)"
    as_pg "$PG_BINDIR/initdb" -D "$PGTMP/data" -U postgres -A trust --no-sync >"$PGTMP/initdb.log" 2>&1 \
        || { cat "$PGTMP/initdb.log" >&2; exit 1; }
    as_pg "$PG_BINDIR/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w \
        -o "-h 127.0.0.1 -p $PGPORT -k $PGTMP -c max_connections=300 -c fsync=off" start >/dev/null \
        || { cat "$PGTMP/server.log" >&2; exit 1; }
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
fi
echo "PostgreSQL for tests: $TEST_DATABASE_URL"

cargo build --workspace --bins
cargo test --workspace "$@"
