#!/usr/bin/env bash
# The comparison: builds every server and loadgen once with the benchmark profile, drives each
# server under the same load (interleaved repetitions, fresh database per run, server and load
# generator pinned to disjoint cores), and writes records, summary.md and plots to
# results/<date>-<host>/. The logic lives in `loadgen matrix` and `loadgen report`.
#
#   scripts/compare.sh            # the full comparison (about 35 minutes on 2 cores, plus 7 for the reliability verdicts)
#   scripts/compare.sh --quick    # a short smoke run of the same pipeline (about 3 minutes)
#   scripts/compare.sh --out DIR --repetitions 5 ...   # any other `loadgen matrix` flag
#
# PostgreSQL: PG_ADMIN_URL names a cluster where databases may be created; otherwise a
# throwaway cluster is started for the run and removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

quick=false
out=
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=true ;;
        --out) out=$2; shift ;;
        --out=*) out=${1#--out=} ;;
        *) args+=("$1") ;;
    esac
    shift
done
# Every phase runs its repetitions interleaved across the stacks, each run on a fresh database
# and a freshly started server. Extra flags (e.g. --repetitions 5, --duration 10s) override.
common=(--warmup 1s --duration 3s --repetitions 3 --seed 2000 --delete-seed 30000)
if $quick; then
    phases=("--workloads hello,create,read,update,delete --connections 1,10 --dbs sqlite,postgres")
    common=(--warmup 500ms --duration 1s --repetitions 1 --seed 1000 --delete-seed 10000)
    suffix=-quick
else
    phases=(
        # The published todo benchmark's shape: ms per operation, 1 and 10 clients.
        "--workloads hello,create,read,update,delete --connections 1,10 --dbs sqlite,postgres"
        # Under load: the concurrency sweep continues for the read-heavy and realistic mixes.
        "--workloads read,mixed --connections 64,256 --dbs sqlite,postgres"
        # The I/O-wait and CPU probes of the Python-vs-Rust comparisons (no database work).
        "--workloads sleep,fibonacci --connections 64 --dbs sqlite"
    )
    suffix=
fi
out=${out:-results/$(date -u +%Y-%m-%d)-$(hostname)$suffix}
mkdir -p "$out"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ)  scripts/compare.sh $*" >>"$out/command.txt"
scripts/lib/machine.sh >"$out/machine.txt"

stacks=(server-axum server-axum-diesel server-rocket server-actix)
cargo build --profile bench-release $(printf -- '-p %s ' "${stacks[@]}") -p loadgen
bin=${CARGO_TARGET_DIR:-target}/bench-release

if [ -z "${PG_ADMIN_URL:-}" ]; then
    pg_find_bindir
    pg_throwaway_cluster
    export PG_ADMIN_URL=$PG_THROWAWAY_URL
fi

servers="axum-sqlx=$bin/server-axum,axum-diesel=$bin/server-axum-diesel,rocket-diesel=$bin/server-rocket,actix-sqlx=$bin/server-actix"
for phase in "${phases[@]}"; do
    # shellcheck disable=SC2086 # a phase is a list of flags
    "$bin/loadgen" matrix --servers "$servers" --out "$out" "${common[@]}" $phase "${args[@]}"
done
$quick || scripts/reliability.sh "$out"
"$bin/loadgen" report "$out/records.jsonl" --out "$out"
echo "results: $out/summary.md"
