"""SemiNAS on NAS-Bench-201 (CIFAR-10), warm-started from earlier results, beside Tune's own
random search over the very same space (its flat ``tune.choice`` form).

    python examples/nasbench201_warm_start.py
"""

from ray import tune
from ray.tune.search import BasicVariantGenerator

from seminas_tune import SemiNASSearcher
from seminas_tune.progress import compact_output
from trainables import nasbench201_trainable
from trainables.nasbench import nasbench201_space

space = nasbench201_space()

# 1. Tune's built-in random search over space.tune_space() (one tune.choice per edge).
random_grid = tune.Tuner(
    nasbench201_trainable,
    param_space=space.tune_space(),
    tune_config=tune.TuneConfig(
        search_alg=BasicVariantGenerator(random_state=0),
        num_samples=20,
        metric="val_accuracy",
        mode="max",
        reuse_actors=True,
    ),
    run_config=tune.RunConfig(**compact_output()),  # one status line instead of a table per trial
).fit()

# 2. SemiNAS, warm-started from those 20 results (they do not count against its budget).
searcher = SemiNASSearcher(
    space=space, metric="val_accuracy", mode="max", max_queries=50, num_initial=10, num_new=20, top_k=20
)
searcher.add_evaluated_points(random_grid)
best = (
    tune.Tuner(
        nasbench201_trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            metric="val_accuracy",
            mode="max",
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(**compact_output(searcher)),
    )
    .fit()
    .get_best_result()
)
print(
    f"best val {best.metrics['val_accuracy']:.4f}, test {best.metrics['test_accuracy']:.4f}:",
    space.describe(space.from_config(best.config)),
)
