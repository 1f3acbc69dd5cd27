#!/usr/bin/env bash
# The test command: builds every binary, makes sure a PostgreSQL cluster is available, and runs
# the whole test suite (all servers on SQLite and PostgreSQL). Extra arguments go to `cargo test`.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -p conformance  # one package
#
# PostgreSQL: uses TEST_DATABASE_URL when set (a cluster where tests may CREATE DATABASE);
# otherwise starts a throwaway cluster from the installed server binaries and removes it
# afterwards. PG_BINDIR is exported for tests that need a cluster of their own (fault tests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

pg_find_bindir
if [ -z "${TEST_DATABASE_URL:-}" ]; then
    # fsync off: a test cluster holds nothing worth keeping.
    pg_throwaway_cluster -c fsync=off
    export TEST_DATABASE_URL=$PG_THROWAWAY_URL
fi
echo "PostgreSQL for tests: $TEST_DATABASE_URL"

cargo build --workspace --bins
cargo test --workspace "$@"
