"""SemiNAS on the bundled NAS-Bench-101 table, the two ways Tune runs a searcher.

python examples/nasbench101_search.py            # tune.Tuner form
python examples/nasbench101_search.py --run      # tune.run form
"""

import sys

from ray import tune

from seminas_tune import SemiNASSearcher
from seminas_tune.progress import compact_output
from trainables import nasbench101_trainable
from trainables.nasbench import nasbench101_space

# Our own space (not a param_space), so Tune does not hand over TuneConfig's metric: name it here.
searcher = SemiNASSearcher(space=nasbench101_space(), metric="val_accuracy", mode="max", max_queries=300)

if "--run" in sys.argv:
    analysis = tune.run(
        nasbench101_trainable,
        search_alg=searcher,
        num_samples=-1,
        metric="val_accuracy",
        mode="max",
        max_concurrent_trials=2,
        reuse_actors=True,
        **compact_output(searcher),
    )
    print("best:", analysis.best_result["val_accuracy"], analysis.best_config)
else:
    tuner = tune.Tuner(
        nasbench101_trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            metric="val_accuracy",
            mode="max",
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(**compact_output(searcher)),  # one status line, prompt Ctrl-C
    )
    best = tuner.fit().get_best_result()
    print("best:", best.metrics["val_accuracy"], best.config)
