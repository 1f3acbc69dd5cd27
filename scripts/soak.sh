#!/usr/bin/env bash
# The soak: every server on SQLite and PostgreSQL under the mixed workload (80% read, 10% create,
# 5% update, 5% delete) at 256 keep-alive connections for 60 s each, then an integrity check of
# every acknowledged write. Zero errors required. Arguments go to the Rust driver
# (crates/conformance/src/bin/soak.rs; see `--help`):
#
#   scripts/soak.sh                                      # all 4 stacks x 2 databases, 60 s each
#   scripts/soak.sh --stacks axum-sqlx --dbs postgres --duration 30 --connections 128
#
# PostgreSQL: TEST_DATABASE_URL when set (a cluster where databases may be created; it needs
# room for the server's pool), otherwise a throwaway cluster from the installed server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/pg.sh
if [ -z "${TEST_DATABASE_URL:-}" ] && [[ " $* " != *" --help "* ]]; then
    pg_find_bindir
    pg_throwaway_cluster -c fsync=off
    export TEST_DATABASE_URL=$PG_THROWAWAY_URL
fi

cargo build --workspace --bins
# 256 client threads, each with a socket, plus the server's: make sure descriptors suffice.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec "${CARGO_TARGET_DIR:-target}/debug/soak" "$@"
