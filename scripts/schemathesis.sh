#!/usr/bin/env bash
# Property-based tests of openapi.yaml against every server on SQLite and PostgreSQL with
# Schemathesis (every check: no 5xx, documented statuses, content types, headers and schemas,
# negative data rejected, positive data accepted, 405 + allow, use after delete, ...).
# Each stack x database gets a fresh database and a free port from the Rust harness
# (target/debug/serve-one), and any failure fails the script.
#
#   scripts/schemathesis.sh            # 50 examples per operation (about 5 minutes)
#   scripts/schemathesis.sh --quick    # 15 examples (about 3 minutes)
#   SCHEMATHESIS_EXAMPLES=200 SCHEMATHESIS_SEED=1 scripts/schemathesis.sh
#   SCHEMATHESIS_STACKS="axum-sqlx" SCHEMATHESIS_DBS="sqlite" scripts/schemathesis.sh
#
# Schemathesis is installed from PyPI into target/schemathesis/venv (pinned below). PostgreSQL:
# TEST_DATABASE_URL when set (a cluster where databases may be created), otherwise a throwaway
# cluster from the installed server binaries, removed afterwards. Logs: target/schemathesis/logs.
# /sleep (no database, up to 10 s a request) is exercised on SQLite only, to bound the time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

VERSION=4.32.5
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-50}
if [ "${1:-}" = "--quick" ]; then EXAMPLES=${SCHEMATHESIS_EXAMPLES:-15}; shift; fi
[ $# -eq 0 ] || { echo "usage: $0 [--quick]" >&2; exit 2; }
STACKS=${SCHEMATHESIS_STACKS:-axum-sqlx axum-diesel rocket-diesel actix-sqlx}
DBS=${SCHEMATHESIS_DBS:-sqlite postgres}

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK="$TARGET/schemathesis"
VENV="$WORK/venv"
ST="$VENV/bin/schemathesis"
if ! "$ST" --version 2>/dev/null | grep -q "version $VERSION\$"; then
    echo "installing schemathesis $VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

source scripts/lib/pg.sh
if [[ " $DBS " == *" postgres "* ]] && [ -z "${TEST_DATABASE_URL:-}" ]; then
    pg_find_bindir
    pg_throwaway_cluster -c fsync=off
    export TEST_DATABASE_URL=$PG_THROWAWAY_URL
fi

cargo build --workspace --bins

mkdir -p "$WORK/logs" "$WORK/run"
# Examples per operation; /sleep waits up to 10 s a request, so it gets a fifth of them (its
# coverage phase still tries the bounds 0 and 10000 and the values just outside).
cat >"$WORK/schemathesis.toml" <<TOML
generation.max-examples = $EXAMPLES

[[operations]]
include-path = "/sleep"
generation.max-examples = $(( (EXAMPLES + 4) / 5 ))
TOML
cd "$WORK/run" # Schemathesis and Hypothesis keep their caches in the working directory.
started=$SECONDS
failed=()
for stack in $STACKS; do
    for db in $DBS; do
        log="$WORK/logs/$stack-$db.log"
        args=(--config-file "$WORK/schemathesis.toml" run "$ROOT/openapi.yaml" --url '{base_url}' --checks all
            --max-response-time 15 --request-timeout 20 --workers 1 --generation-database none
            --no-color --output-truncate false --suppress-health-check too_slow)
        # --workers 1: concurrent workers trip a CPython 3.11 bug in ast.parse inside Hypothesis.
        [ -n "${SCHEMATHESIS_SEED:-}" ] && args+=(--seed "$SCHEMATHESIS_SEED")
        [ "$db" = sqlite ] || args+=(--exclude-path /sleep)
        if [ "$stack" = rocket-diesel ] && [ -z "${CONFORMANCE_STRICT:-}" ]; then
            # Rocket 0.5 rejects HTTP methods outside its fixed set (e.g. QUERY) with a 400 before
            # any application code runs, where the contract wants 405; a known framework
            # limitation (README). Its 405s for the standard methods are checked by the
            # conformance suite and tests/openapi.rs. CONFORMANCE_STRICT=1 runs the check anyway.
            args+=(--exclude-checks unsupported_method)
        fi
        t0=$SECONDS
        if "$TARGET/debug/serve-one" "$stack" "$db" -- "$ST" "${args[@]}" >"$log" 2>&1; then
            verdict=ok
        else
            verdict=FAILED
            failed+=("$stack/$db")
        fi
        tested=$(sed -n 's/^ *Tested: *//p' "$log" | tail -1)
        cases=$(grep -E '^ *[0-9]+ generated' "$log" | tail -1 | sed 's/^ *//' || true)
        printf '%-14s %-9s %-6s operations tested: %-3s test cases: %s (%ss)\n' \
            "$stack" "$db" "$verdict" "${tested:-?}" "${cases:-?}" "$((SECONDS - t0))"
        if [ "$verdict" = FAILED ]; then
            sed -n '/^=* \(FAILURES\|ERRORS\) =*$/,$p' "$log" | head -200 || true
            tail -20 "$log"
            echo "(full log: $log)"
        fi
    done
done
echo "schemathesis $VERSION, $EXAMPLES examples: $(( $(wc -w <<<"$STACKS") * $(wc -w <<<"$DBS") - ${#failed[@]} )) runs passed, ${#failed[@]} failed in $((SECONDS - started)) s"
[ ${#failed[@]} -eq 0 ] || { echo "FAILED: ${failed[*]}"; exit 1; }
