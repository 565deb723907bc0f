#!/usr/bin/env bash
# The reference run behind benchmarks/results/reference_{nb201,nb101}/: our searchers over 200
# seeds, Tune's built-ins over 50, NB-201 CIFAR-10 to 1000 queries, NB101-30k to 2000 (the
# built-ins to 300 there, see below).
# Resumable: rerun to go on where it stopped (finished seeds are kept); arguments are passed on
# to both runs (e.g. --workers 4).
#   bash benchmarks/reference.sh [nb201|nb101|all] [extra bench arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
shift || true

# Benchmark settings of our searchers (everything else is the paper's default): SemiNAS and NAO
# start from 40 random cells and propose 30, then a quarter of what they have evaluated, per
# round, a quarter of each batch from the best cells' neighbours; 2,000 pseudo-labels for
# SemiNAS; the fast controller schedule cut to 20 + 20 steps.
sets=()
for alg in seminas nao; do
  for s in num_initial=40 num_new=30 new_fraction=0.25 local_fraction=0.25 \
           controller.labeled_steps=20 controller.joint_steps=20; do
    sets+=(--set "$alg.$s")
  done
done
sets+=(--set seminas.num_unlabeled=2000)
for s in evals_per_step=100 children_per_step=1000 num_unlabeled=2000 \
         controller.labeled_steps=15 controller.joint_steps=15 controller.batch_size=128; do
  sets+=(--set "seminas_re.$s")
done
algorithms=seminas,re,nao,seminas_re,local,random,basic,optuna,hyperopt,nevergrad

bench() {
  seminas-tune bench --algorithms "$algorithms" --seeds 200 --builtin-seeds 50 "${sets[@]}" "$@"
}
case $which in
  nb201|all) bench --benchmarks nb201-cifar10 --budget 1000 --out benchmarks/results/reference_nb201 "$@" ;;&
  # Tune's built-ins stop at 300 valid queries on NB-101: most of their flat configs are invalid
  # there (basic: 6 of 7; the TPEs: about 3 of 5), and the TPEs' cost per suggestion grows with
  # the history, so a seed's time grows about quadratically with the budget: 15-35 s at 300 in
  # this run, an estimated 10-25 min at 2,000 (about a day for 50 seeds on 2 cores).
  nb101|all) bench --benchmarks nb101 --budget 2000 --builtin-budget 300 --out benchmarks/results/reference_nb101 "$@" ;;
  nb201) ;;
  *) echo "usage: bash benchmarks/reference.sh [nb201|nb101|all] [bench arguments]" >&2; exit 2 ;;
esac
