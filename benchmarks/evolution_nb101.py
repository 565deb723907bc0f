#!/usr/bin/env python
"""The evolution family on NB101-30k: random, RE, local search and SemiNAS (RE), 100 seeds,
1000 queries each (regret read at 100, 300 and 1000), inline driver.

    python benchmarks/evolution_nb101.py                 # the committed run (resumable)
    python benchmarks/evolution_nb101.py --seeds 5       # a quick look; extra args go to the harness

SemiNAS (RE) runs a cheaper controller schedule than its defaults so that 100 seeds fit on two
CPU cores: it scores 1000 children per 100 evaluations (the default's 10 per evaluation), and
the warm-started predictor is retrained for 15 + 15 steps of batch 128 on the evaluated cells
plus 2000 pseudo-labeled ones. Outputs: ``benchmarks/results/nb101_evolution/``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seminas_tune.bench import main  # noqa: E402

ARGS = [
    "--benchmarks",
    "nb101",
    "--algorithms",
    "random,re,local,seminas_re",
    "--seeds",
    "100",
    "--budget",
    "1000",
    "--workers",
    "2",
    "--out",
    "benchmarks/results/nb101_evolution",
    "--set",
    "seminas_re.evals_per_step=100",
    "--set",
    "seminas_re.children_per_step=1000",
    "--set",
    "seminas_re.num_unlabeled=2000",
    "--set",
    "seminas_re.controller.labeled_steps=15",
    "--set",
    "seminas_re.controller.joint_steps=15",
    "--set",
    "seminas_re.controller.batch_size=128",
    # The committed run predates SemiNAS (RE)'s current default: 50 random first, one predictor
    # ranking by its mean, no random candidates, no position embedding, fixed steps.
    "--set",
    "seminas_re.num_initial=50",
    "--set",
    "seminas_re.random_candidates=0",
    "--set",
    "seminas_re.new_fraction=0",
    "--set",
    "seminas_re.ensemble=1",
    "--set",
    "seminas_re.acquisition=mean",
    "--set",
    "seminas_re.controller.epd.positional=false",
]

if __name__ == "__main__":
    sys.exit(main(ARGS + sys.argv[1:]))
