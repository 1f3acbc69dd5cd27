#!/usr/bin/env bash
# The comparison: every stack x database x workload x concurrency, measured with the benchmark
# profile by randomized interleaved trials, into results/<date>-<host>/ (records, summary.md
# with ratios and their 95 % intervals, plots, reliability verdicts).
#
#   scripts/compare.sh                                 # the full comparison
#   scripts/compare.sh --quick                         # a smoke run of the same pipeline
#   scripts/compare.sh --out DIR --target-percent 2    # any other `loadgen matrix` flag
#
# The logic is in crates/xtask (`cargo xtask compare --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask compare "$@"
