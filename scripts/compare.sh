#!/usr/bin/env bash
# The comparison: every stack x database x workload x concurrency, measured with the benchmark
# profile, into results/<date>-<host>/ (records, summary.md, plots, reliability verdicts).
#
#   scripts/compare.sh                               # the full comparison
#   scripts/compare.sh --quick                       # a smoke run of the same pipeline (~3 minutes)
#   scripts/compare.sh --out DIR --repetitions 5     # any other `loadgen matrix` flag
#
# The logic is in crates/xtask (`cargo xtask compare --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask compare "$@"
