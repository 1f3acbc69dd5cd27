#!/usr/bin/env bash
# The comparison: builds every server and loadgen once with the benchmark profile, drives each
# server under the same load (interleaved repetitions, fresh database per run, server and load
# generator pinned to disjoint cores), and writes records, summary.md and plots to
# results/<date>-<host>/. The logic lives in `loadgen matrix` and `loadgen report`.
#
#   scripts/compare.sh            # the full matrix (about 40 minutes on 2 cores)
#   scripts/compare.sh --quick    # a short smoke run (about 3 minutes)
#   scripts/compare.sh --out DIR --repetitions 5 ...   # any other `loadgen matrix` flag
#
# PostgreSQL: PG_ADMIN_URL names a cluster where databases may be created; otherwise a
# throwaway cluster is started for the run and removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/pg.sh

quick=false
for arg in "$@"; do [ "$arg" = --quick ] && quick=true; done
if $quick; then
    preset=(--quick --workloads hello,create,read,update,delete --connections 1,10
            --warmup 500ms --duration 1s --seed 1000 --delete-seed 10000)
    suffix=-quick
else
    preset=(--workloads hello,create,read,update,delete,list,mixed,sleep,fibonacci
            --connections 1,10,64,256 --repetitions 3 --warmup 1s --duration 4s
            --seed 5000 --delete-seed 60000)
    suffix=
fi
out=results/$(date -u +%Y-%m-%d)-$(hostname)$suffix
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) ;;
        --out) out=$2; shift ;;
        --out=*) out=${1#--out=} ;;
        *) args+=("$1") ;;
    esac
    shift
done

stacks=(server-axum server-axum-diesel server-rocket server-actix)
cargo build --profile bench-release $(printf -- '-p %s ' "${stacks[@]}") -p loadgen
bin=target/bench-release

if [ -z "${PG_ADMIN_URL:-}" ]; then
    pg_find_bindir
    pg_throwaway_cluster
    export PG_ADMIN_URL=$PG_THROWAWAY_URL
fi

servers="axum-sqlx=$bin/server-axum,axum-diesel=$bin/server-axum-diesel,rocket-diesel=$bin/server-rocket,actix-sqlx=$bin/server-actix"
"$bin/loadgen" matrix --servers "$servers" --dbs sqlite,postgres --out "$out" "${preset[@]}" "${args[@]}"
"$bin/loadgen" report "$out/records.jsonl" --out "$out"
echo "results: $out/summary.md"
