#!/usr/bin/env bash
# The test command: every test of the workspace, all stacks on SQLite and PostgreSQL (a
# throwaway PostgreSQL cluster unless TEST_DATABASE_URL names one), then a bounded Schemathesis
# run. Extra arguments go to `cargo test` (and skip Schemathesis), e.g.
# `scripts/test.sh -p conformance -- axum_sqlx::`. The logic is in crates/xtask
# (`cargo xtask test --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask test "$@"
