"""Every searcher through real Ray Tune runs: ``tune.Tuner`` (num_samples=-1 ends on
FINISHED), ``tune.run`` and ``ConcurrencyLimiter``, with controller training as a Ray task."""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.search import ConcurrencyLimiter

from tests.test_searcher_contract import ALL, make
from trainables import nasbench101_trainable

BUDGET = 8


def _dirname(trial) -> str:
    return f"t_{trial.trial_id}"


def _check(df, searcher):
    space = searcher.space
    keys = [space.key(space.from_config({k: r[f"config/{k}"] for k in space.choices()})) for _, r in df.iterrows()]
    assert len(keys) == BUDGET
    assert len(set(keys)) == BUDGET
    assert len(searcher.results()) == BUDGET


@pytest.mark.parametrize("name", ALL)
def test_tuner_with_concurrency_limiter(ray_session, tmp_path, name):
    searcher = make(name, max_queries=BUDGET, background="auto")
    tuner = tune.Tuner(
        nasbench101_trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=2),
            num_samples=-1,
            metric="val_accuracy",
            mode="max",
            reuse_actors=True,
            trial_dirname_creator=_dirname,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="tuner", verbose=0),
    )
    grid = tuner.fit()
    assert not grid.errors
    _check(grid.get_dataframe(), searcher)
    assert grid.get_best_result().metrics["val_accuracy"] == max(o.value for o in searcher.results())


@pytest.mark.parametrize("name", ["seminas", "re"])
def test_tune_run(ray_session, tmp_path, name):
    searcher = make(name, max_queries=BUDGET, background="auto")
    analysis = tune.run(
        nasbench101_trainable,
        search_alg=searcher,
        num_samples=-1,
        metric="val_accuracy",
        mode="max",
        max_concurrent_trials=2,
        storage_path=str(tmp_path),
        name="run",
        verbose=0,
        reuse_actors=True,
        trial_dirname_creator=_dirname,
    )
    _check(analysis.dataframe(), searcher)
