#!/usr/bin/env bash
# The reference run of issue #16: our searchers over 200 seeds, Tune's built-ins over 50; the
# three NB-201 tables to 300 queries, NB101-30k to 2000 (the built-ins to 300 there, see below).
# On 2 cores the NB-201 part takes about 5 h (SemiNAS: 22-26 s per search on one core; 150 seeds
# of SemiNAS, BANANAS, the TPEs, RE, local and random search on the three tables took 1 h 54 min).
# Resumable: rerun to go on where it stopped (finished seeds are kept); arguments are passed on
# to both runs (e.g. --workers 4).
#   bash benchmarks/reference.sh [nb201|nb101|all] [extra bench arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
shift || true

# Our searchers run with their default preset; its settings live only in
# seminas_tune/search/presets.py (the harness records what each unit ran with in its meta file).
algorithms=seminas,nao,seminas_re,re,local,bananas,random,basic,optuna,optuna_mv,hyperopt,nevergrad

bench() {
  seminas-tune bench --algorithms "$algorithms" --seeds 200 --builtin-seeds 50 "$@"
}
case $which in
  nb201|all) bench --benchmarks nb201-cifar10,nb201-cifar100,nb201-imagenet --budget 300 --out benchmarks/results/reference_nb201 "$@" ;;&
  # Tune's built-ins stop at 300 valid queries on NB-101: most of their flat configs are invalid
  # there (basic: 6 of 7; the TPEs: about 3 of 5), and the TPEs' cost per suggestion grows with
  # the history, so a seed's time grows about quadratically with the budget: 15-35 s at 300 in
  # this run, an estimated 10-25 min at 2,000 (about a day for 50 seeds on 2 cores).
  nb101|all) bench --benchmarks nb101 --budget 2000 --builtin-budget 300 --out benchmarks/results/reference_nb101 "$@" ;;
  nb201) ;;
  *) echo "usage: bash benchmarks/reference.sh [nb201|nb101|all] [bench arguments]" >&2; exit 2 ;;
esac
