#!/usr/bin/env bash
# Per-stack reliability verdicts for the results tables. For each stack: its conformance,
# hostile-input, database-fault, shutdown-under-load, OpenAPI and short-soak tests (`cargo test`
# filtered to that stack, SQLite and PostgreSQL), a bounded schemathesis run, and both again
# without the known-limitation exemptions (`strict`: CONFORMANCE_STRICT=1). Appends one
# JSON line per stack and check to OUT/checks.jsonl, which `loadgen report` reads beside
# records.jsonl. Logs go to target/reliability/.
#
#   scripts/reliability.sh results/<dir>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

out=${1:?usage: scripts/reliability.sh OUT_DIR}
mkdir -p "$out" target/reliability
pg_find_bindir
if [ -z "${TEST_DATABASE_URL:-}" ]; then
    pg_throwaway_cluster -c fsync=off
    export TEST_DATABASE_URL=$PG_THROWAWAY_URL
fi
cargo build --workspace --bins
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)

verdict() { # stack check command...
    local stack=$1 check=$2 passed=false log="target/reliability/$1-$2.log"
    shift 2
    if "$@" >"$log" 2>&1; then passed=true; fi
    printf '{"schema_version":1,"stack":"%s","check":"%s","passed":%s,"command":"%s","commit":"%s","date":"%s"}\n' \
        "$stack" "$check" "$passed" "$*" "$commit" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$out/checks.jsonl"
    echo "$stack $check: $($passed && echo passed || echo "FAILED (see $log)")"
}

for stack in axum-sqlx axum-diesel rocket-diesel actix-sqlx; do
    verdict "$stack" tests cargo test -p conformance -- "${stack//-/_}::"
    verdict "$stack" schemathesis env SCHEMATHESIS_STACKS="$stack" scripts/schemathesis.sh --quick
    # The same hostile-input tests and schemathesis without any known-limitation exemption.
    verdict "$stack" strict env CONFORMANCE_STRICT=1 SCHEMATHESIS_STACKS="$stack" SCHEMATHESIS_DBS=sqlite \
        sh -c "cargo test -p conformance --test hostile -- ${stack//-/_}:: && scripts/schemathesis.sh --quick"
done
