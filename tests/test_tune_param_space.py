"""Every package searcher on a Tune ``param_space`` through ``tune.Tuner``: the space, the metric
and the mode come from Tune; unsupported domains and double spaces fail with one clear line;
under ASHA the predictor learns from labels of one fidelity.

The objective is a made-up formula (``synthetic_objective``): these tests check the plumbing,
not search quality.
"""

from __future__ import annotations

import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from seminas_tune.search import SEARCHERS
from seminas_tune.spaces import NASBench201Space
from tests.test_searcher_contract import ALL, PARAM_SPACE, SMALL, synthetic_objective

BUDGET = 10


def _trainable(config):
    tune.report({"neg_acc": -synthetic_objective(config)["val_accuracy"]})


def _tuner(searcher, tmp_path, param_space, trainable=_trainable, **tune_kw):
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=-1, max_concurrent_trials=2, reuse_actors=True, **tune_kw
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="ps", verbose=0),
    )


@pytest.mark.parametrize("name", ALL)
def test_tuner_param_space_metric_and_mode_from_tune_config(ray_session, tmp_path, name):
    searcher = SEARCHERS[name](max_queries=BUDGET, seed=1, **SMALL[name])
    grid = _tuner(searcher, tmp_path, PARAM_SPACE, metric="neg_acc", mode="min").fit()
    assert not grid.errors
    df = grid.get_dataframe()
    cols = ["config/width", "config/depth", "config/act", "config/optim/lr", "config/optim/momentum"]
    assert len(df) == BUDGET and len(df[cols].drop_duplicates()) == BUDGET
    assert (df["config/epochs"] == 3).all() and df["config/optim/lr"].between(1e-4, 1e-1).all()
    assert searcher.metric == "neg_acc" and searcher.mode == "min"
    best = max(searcher.results(), key=lambda o: o.score)  # min mode: the lowest neg_acc scores highest
    assert best.value == df["neg_acc"].min()


def test_unsupported_domain_is_one_clear_error(ray_session, tmp_path):
    searcher = SEARCHERS["re"](max_queries=BUDGET)
    with pytest.raises(Exception) as e:
        _tuner(searcher, tmp_path, {**PARAM_SPACE, "noise": tune.randn(0, 1)}, metric="neg_acc", mode="min").fit()
    assert "param_space entry 'noise'" in str(e.value) and "unbounded" in str(e.value)


def test_own_space_plus_param_space_domains_says_so(ray_session, tmp_path):
    searcher = SEARCHERS["random"](space=NASBench201Space(), max_queries=BUDGET)
    with pytest.raises(Exception) as e:
        _tuner(searcher, tmp_path, {"lr": tune.loguniform(1e-4, 1e-1)}, metric="neg_acc", mode="min").fit()
    assert "also has domains ['lr']" in str(e.value)


def _curve_trainable(config):
    """Score rises with training; the ranking between configs is the synthetic objective's."""
    final = synthetic_objective(config)["val_accuracy"]
    for t in range(1, 10):
        tune.report({"score": final - 1.0 / t})


def test_asha_labels_are_compared_at_one_fidelity(ray_session, tmp_path):
    searcher = SEARCHERS["seminas"](max_queries=16, seed=2, **SMALL["seminas"])
    asha = ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)
    grid = _tuner(
        searcher, tmp_path, PARAM_SPACE, trainable=_curve_trainable, metric="score", mode="max", scheduler=asha
    ).fit()
    df = grid.get_dataframe()
    assert df["training_iteration"].nunique() > 1, "ASHA stopped no trial early; the test shows nothing"
    labels = searcher.results()
    assert {o.fidelity for o in labels} == {float(df["training_iteration"].min())}
    for o in labels:  # each label is the trial's own value at that fidelity, not its last one
        assert o.value == pytest.approx(synthetic_objective(searcher.space.to_config(o.arch))["val_accuracy"] - 1.0)
    assert [o.fidelity for o in searcher.observations if o.fidelity] != [1.0] * len(labels)


_CRASHING_RUN = """
import os, sys
import ray
from ray import tune
from seminas_tune import SemiNASSearcher
from tests.test_searcher_contract import PARAM_SPACE, SMALL, synthetic_objective


def trainable(config):
    tune.report({"acc": synthetic_objective(config)["val_accuracy"]})


class DieAfterSeven(tune.Callback):
    def __init__(self):
        self.n = 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.n += 1
        if self.n == 7 and os.environ.get("DIE_AFTER_SEVEN"):  # restored with the run, so ask
            os._exit(3)  # the driver dies without a word, as a killed process does


ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
storage = sys.argv[2]
if sys.argv[1] == "first":
    searcher = SemiNASSearcher(max_queries=14, seed=0, **SMALL["seminas"])
    tuner = tune.Tuner(trainable, param_space=PARAM_SPACE, tune_config=tune.TuneConfig(
        search_alg=searcher, num_samples=-1, metric="acc", mode="max", max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=storage, name="exp", callbacks=[DieAfterSeven()], verbose=0))
else:
    tuner = tune.Tuner.restore(os.path.join(storage, "exp"), trainable, resume_unfinished=True)
df = tuner.fit().get_dataframe()
print("RESULT", len(df), len(df[[c for c in df.columns if c.startswith("config/")]].drop_duplicates()))
"""


def test_a_param_space_search_resumes_after_the_driver_dies(tmp_path):
    """The searcher's space came from param_space: Tuner.restore brings it back and the search
    ends at max_queries with every config distinct."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    run = [sys.executable, "-c", _CRASHING_RUN]
    first = subprocess.run(
        [*run, "first", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "DIE_AFTER_SEVEN": "1"},
    )
    assert first.returncode == 3, first.stderr[-2000:]
    second = subprocess.run([*run, "again", str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    rows, distinct = map(int, second.stdout.split("RESULT")[-1].split())
    assert rows == distinct, "a config was evaluated twice"
    # A trial that finished as the driver died can be missing from Tune's table; the searcher's
    # journal keeps its result and never suggests its cell again (docs/reliability.md), so
    # Tune's table may end one short of max_queries.
    assert 13 <= rows <= 14
