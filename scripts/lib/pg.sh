# Sourced by the scripts: finds PostgreSQL's server binaries and, on request, starts a throwaway
# cluster (initdb/pg_ctl in a temporary folder, on a free port) that is removed on exit.
#
#   pg_find_bindir          -> exports PG_BINDIR (the folder holding initdb, pg_ctl, postgres)
#   pg_throwaway_cluster    -> prints the admin URL of a new cluster; stopped and removed on exit

pg_find_bindir() {
    local dir
    if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then export PG_BINDIR; return 0; fi
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
        PG_BINDIR=$(pg_config --bindir); export PG_BINDIR; return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ]; then PG_BINDIR=$dir; export PG_BINDIR; return 0; fi
    done
    echo "error: no PostgreSQL server binaries (initdb, pg_ctl) found: install PostgreSQL (Debian: apt-get install postgresql) or set PG_BINDIR" >&2
    return 1
}

# Runs a PostgreSQL tool as the postgres user when we are root (initdb refuses root).
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PG_THROWAWAY_DIRS=()

pg_cleanup() {
    local dir
    for dir in "${PG_THROWAWAY_DIRS[@]}"; do
        pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$dir"
    done
}

# Starts a cluster and sets PG_THROWAWAY_URL (call directly, not in a subshell, so the
# clean-up trap belongs to the calling script).
pg_throwaway_cluster() {
    local dir port
    dir=$(mktemp -d /tmp/todo-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    PG_THROWAWAY_DIRS+=("$dir")
    trap pg_cleanup EXIT
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    echo "starting a throwaway PostgreSQL cluster on 127.0.0.1:$port ($dir)" >&2
    pg_as_owner "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    pg_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=400 $*" start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    PG_THROWAWAY_URL="postgres://postgres@127.0.0.1:$port/postgres"
}
