"""Contract tests every searcher of the package must pass (in the spirit of Optuna's
``pytest_samplers.py`` and Ray's ``test_searchers.py``).

They run on the bundled NB101-30k space with small controller settings so the suite stays fast.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seminas_tune.controller import ControllerConfig, EPDConfig
from seminas_tune.search import SEARCHERS, CheckpointError
from seminas_tune.spaces import InvalidConfigError
from trainables.nasbench import evaluate_nasbench101, nasbench101_space

TINY = ControllerConfig(epd=EPDConfig(hidden=16, mlp_hidden=16), labeled_steps=5, joint_steps=5,
                        batch_size=32, num_threads=1)


def make(name: str, **kw):
    """A searcher with settings small enough for tests (paper defaults otherwise)."""
    kw.setdefault("space", nasbench101_space())
    kw.setdefault("max_queries", 12)
    kw.setdefault("seed", 3)
    kw.setdefault("metric", "val_accuracy")
    kw.setdefault("mode", "max")
    kw.setdefault("background", "inline")
    if name in ("seminas", "nao"):
        kw.update(num_initial=4, num_new=4, top_k=4, controller=TINY)
        if name == "seminas":
            kw["num_unlabeled"] = 40
    elif name == "seminas_re":
        kw.update(population_size=4, tournament_size=2, children_per_step=6, evals_per_step=3,
                  num_unlabeled=40, controller=TINY)
    elif name == "re":
        kw.update(population_size=4, tournament_size=2)
    elif name == "local":
        kw.update(num_initial=2)
    return SEARCHERS[name](**kw)


ALL = sorted(SEARCHERS)


def drive(searcher, objective=evaluate_nasbench101, prefix="t", limit=1000):
    """Inline loop over the Searcher API; returns the suggested configs in order."""
    configs = []
    for i in range(limit):
        cfg = searcher.suggest(f"{prefix}{i}")
        if cfg == "FINISHED":
            return configs
        assert cfg is not None, "suggest returned None with no trial pending"
        configs.append(cfg)
        searcher.on_trial_complete(f"{prefix}{i}", objective(cfg))
    raise AssertionError("searcher never finished")


@pytest.mark.parametrize("name", ALL)
def test_budget_and_dedup(name):
    s = make(name)
    configs = drive(s)
    space = s.space
    keys = [space.key(space.from_config(c)) for c in configs]
    assert len(configs) == 12
    assert len(set(keys)) == 12, "an isomorphic cell was suggested twice"
    assert all(space.is_valid(space.from_config(c)) for c in configs)
    assert s.suggest("after") == "FINISHED"


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_suggestions(name):
    assert drive(make(name)) == drive(make(name))


def coarse(cfg):
    """NB-101 validation accuracy rounded to whole percents: a probe objective full of ties."""
    result = evaluate_nasbench101(cfg)
    return {**result, "val_accuracy": round(result["val_accuracy"], 2)}


_HASH_SEED_PROBE = """
import json
from tests.test_searcher_contract import ALL, coarse, drive, make
runs = {name: drive(make(name, max_queries=40), coarse) for name in ALL}
runs["local, longer"] = [drive(make("local", max_queries=100, seed=seed), coarse) for seed in range(5)]
print(json.dumps(runs))
"""


def test_suggestions_do_not_depend_on_the_python_hash_seed():
    """A seed fixes a search in any process: no choice may follow the iteration order of a set
    of string keys, which PYTHONHASHSEED changes (ties in the objective expose it)."""
    runs = []
    for hash_seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", _HASH_SEED_PROBE], cwd=Path(__file__).parents[1],
                              env={**os.environ, "PYTHONHASHSEED": hash_seed}, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.splitlines()[-1]))
    for name in runs[0]:
        assert runs[0][name] == runs[1][name], f"{name}: the suggestions changed with PYTHONHASHSEED"


@pytest.mark.parametrize("name", ALL)
def test_nan_inf_and_errors_are_tolerated(name):
    s = make(name)
    calls = {"n": 0}

    def flaky(cfg):
        calls["n"] += 1
        r = evaluate_nasbench101(cfg)
        return {0: {**r, "val_accuracy": math.nan}, 1: {**r, "val_accuracy": math.inf},
                2: {**r, "val_accuracy": -math.inf}}.get(calls["n"] % 4, r)

    configs = []
    for i in range(100):
        cfg = s.suggest(f"t{i}")
        if cfg == "FINISHED":
            break
        configs.append(cfg)
        if i % 5 == 4:
            s.on_trial_complete(f"t{i}", None, error=True)
        else:
            s.on_trial_complete(f"t{i}", flaky(cfg))
    assert len(configs) == 12
    statuses = [o.status for o in s.observations]
    assert "nan" in statuses and "error" in statuses and "ok" in statuses
    assert all(math.isfinite(o.score) for o in s.results())


def _interleaved(name, tmp_path=None):
    """Five finished trials, two left running, (optionally) save -> blank instance -> restore,
    then finish the running ones and go on to the end. Returns every suggested config."""
    s = make(name)
    got = []
    for i in range(5):
        cfg = s.suggest(f"t{i}")
        got.append(cfg)
        s.on_trial_complete(f"t{i}", evaluate_nasbench101(cfg))
    pending = {}
    for i in range(5, 7):
        cfg = s.suggest(f"t{i}")
        if cfg is None:  # the searcher waits for results (a batch boundary)
            break
        pending[f"t{i}"] = cfg
        got.append(cfg)
    if tmp_path is not None:
        path = str(tmp_path / "searcher.pkl")
        s.save(path)
        s = make(name, seed=999)  # a blank instance, as Tuner.restore builds
        s.restore(path)
    for tid, cfg in pending.items():
        s.on_trial_complete(tid, evaluate_nasbench101(cfg))
    got += drive(s, prefix="u")
    return got, pending


@pytest.mark.parametrize("name", ALL)
def test_save_restore_with_pending_trials(name, tmp_path):
    reference, _ = _interleaved(name)
    restored, pending = _interleaved(name, tmp_path)
    assert len(restored) == 12
    assert restored == reference, "a restored searcher must continue exactly as if never stopped"


@pytest.mark.parametrize("name", ALL)
def test_points_to_evaluate_come_first(name):
    space = nasbench101_space()
    import numpy as np

    rng = np.random.default_rng(11)
    points = [space.to_config(space.sample(rng)) for _ in range(3)]
    s = make(name, points_to_evaluate=points)
    assert drive(s)[:3] == points


@pytest.mark.parametrize("name", ALL)
def test_add_evaluated_point_warm_starts(name):
    space = nasbench101_space()
    import numpy as np

    rng = np.random.default_rng(5)
    warm = [space.to_config(space.sample(rng)) for _ in range(6)]
    s = make(name)
    s.add_evaluated_points([(c, evaluate_nasbench101(c)["val_accuracy"]) for c in warm])
    assert len(s.results()) == 6
    configs = drive(s)
    assert len(configs) == 12, "warm-start points do not use the budget"
    warm_keys = {space.key(space.from_config(c)) for c in warm}
    assert not warm_keys & {space.key(space.from_config(c)) for c in configs}


@pytest.mark.parametrize("name", ALL)
def test_restore_rejects_foreign_or_corrupt_checkpoints(name, tmp_path):
    s = make(name)
    bad = tmp_path / "corrupt.pkl"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        s.restore(str(bad))
    other = make("random" if name != "random" else "re")
    path = str(tmp_path / "other.pkl")
    other.save(path)
    with pytest.raises(CheckpointError, match="belongs to"):
        s.restore(path)


def test_bad_arguments_raise_one_clear_error():
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        make("seminas", mode="maximise")
    with pytest.raises(InvalidConfigError, match="missing keys"):
        make("re", points_to_evaluate=[{"edge_0_1": 1}])
    s = make("random")
    s.suggest("t0")
    with pytest.raises(KeyError, match="metric 'val_accuracy' is not in the trial's result"):
        s.on_trial_complete("t0", {"accuracy": 0.9})


def test_min_mode_prefers_lower_values():
    s = make("re", mode="min", metric="err", max_queries=40)
    drive(s, lambda c: {"err": 1 - evaluate_nasbench101(c)["val_accuracy"]})
    best = max(s.results(), key=lambda o: o.score)
    assert best.value == min(o.value for o in s.results())



@pytest.mark.parametrize("fraction, sizes", [(0.0, [4, 4, 4, 4, 4, 4, 4, 2]), (0.5, [4, 4, 6, 9, 7])])
def test_new_fraction_grows_the_batches(fraction, sizes):
    s = make("seminas", max_queries=34, new_fraction=fraction)
    starts = []  # index of each controller batch's first suggestion
    for i, cfg in enumerate(iter(lambda: s.suggest(f"t{s.num_suggested}"), "FINISHED")):
        if s.iteration > len(starts):
            starts.append(i)
        s.on_trial_complete(f"t{i}", evaluate_nasbench101(cfg))
    assert [b - a for a, b in zip(starts, [*starts[1:], 34])] == sizes
    with pytest.raises(ValueError, match="new_fraction"):
        make("seminas", new_fraction=-1)
    with pytest.raises(ValueError, match="local_fraction must be a number in"):
        make("nao", local_fraction=2)
