"""The searcher contract: what every searcher must do under Tune's Searcher API.

In the spirit of Optuna's ``optuna/testing`` and Ray's ``test_searchers.py``. Subclass
:class:`SearcherContract` in a pytest module::

    from seminas_tune.testing import SearcherContract

    class TestMySearcher(SearcherContract):
        def make_space(self):
            return MySpace()

        def make_searcher(self, **kwargs):  # seed, max_queries, metric, mode, points_to_evaluate
            return MySearcher(space=self.make_space(), **kwargs)

        def objective(self, config):
            return {"score": my_cheap_evaluation(config)}

The test class must be importable by its file path: the hash-seed check replays it in two
fresh processes.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from seminas_tune.spaces.base import SearchSpace

FINISHED = "FINISHED"


def drive(searcher: Any, objective: Callable[[dict], dict], prefix: str = "t", limit: int = 10_000) -> list[dict]:
    """Run trials one at a time through the Searcher API until ``FINISHED``; returns the configs."""
    configs: list[dict] = []
    for i in range(limit):
        cfg = searcher.suggest(f"{prefix}{i}")
        if cfg == FINISHED:
            return configs
        assert cfg is not None, "suggest returned None with no trial pending"
        configs.append(cfg)
        searcher.on_trial_complete(f"{prefix}{i}", objective(cfg))
    raise AssertionError(f"the searcher did not finish within {limit} suggestions")


def _replay(path: str, cls: str, root: str) -> str:
    """Suggestions of the class's tied-objective run, as JSON (run in a fresh process)."""
    sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location("_contract_replay", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the contract test module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    case = getattr(module, cls)()
    searcher = case.make_searcher(seed=1, max_queries=case.hash_seed_queries, metric=case.metric, mode="max")
    return json.dumps(drive(searcher, case.tied_objective), default=str)


class SearcherContract:
    """Budget, dedup, FINISHED, NaN/inf/errors, save -> blank -> restore, points_to_evaluate,
    warm starts, min mode and determinism across ``PYTHONHASHSEED``."""

    metric: str = "val_accuracy"
    max_queries: int = 12
    hash_seed_queries: int = 30

    # -- what a subclass provides ----------------------------------------------------------
    def make_space(self) -> SearchSpace:
        raise NotImplementedError("a SearcherContract subclass returns its space from make_space()")

    def make_searcher(self, **kwargs: Any) -> Any:
        """A fresh searcher; kwargs: seed, max_queries, metric, mode, points_to_evaluate."""
        raise NotImplementedError("a SearcherContract subclass builds its searcher in make_searcher(**kwargs)")

    def objective(self, config: dict) -> dict:
        """A result dict with ``metric`` for one config (cheap: a lookup or a formula)."""
        raise NotImplementedError("a SearcherContract subclass evaluates configs in objective(config)")

    # -- helpers -----------------------------------------------------------------------------
    def tied_objective(self, config: dict) -> dict:
        """The objective rounded to two significant digits: ties expose hash-order choices."""
        result = self.objective(config)
        return {**result, self.metric: float(f"{result[self.metric]:.2g}")}

    def searcher(self, **kwargs: Any) -> Any:
        kwargs = {"seed": 3, "max_queries": self.max_queries, "metric": self.metric, "mode": "max", **kwargs}
        return self.make_searcher(**kwargs)

    def keys(self, configs: list[dict]) -> list:
        space = self.make_space()
        return [space.key(space.arch_of(c)) for c in configs]

    # -- the contract ------------------------------------------------------------------------
    def test_budget_dedup_and_finished(self):
        s = self.searcher()
        configs = drive(s, self.objective)
        space = self.make_space()
        assert len(configs) == self.max_queries
        assert len(set(self.keys(configs))) == self.max_queries, "an architecture was suggested twice"
        assert all(space.is_valid(space.arch_of(c)) for c in configs)
        assert s.suggest("after") == FINISHED

    def test_same_seed_same_suggestions(self):
        assert drive(self.searcher(), self.objective) == drive(self.searcher(), self.objective)

    def test_nan_inf_and_errors_are_tolerated(self):
        s, n = self.searcher(), 0
        for i in range(10 * self.max_queries):
            cfg = s.suggest(f"t{i}")
            if cfg == FINISHED:
                break
            assert cfg is not None
            n += 1
            if i % 5 == 4:
                s.on_trial_complete(f"t{i}", None, error=True)
            else:
                bad = {0: math.nan, 1: math.inf, 2: -math.inf}.get(i % 5)
                result = self.objective(cfg)
                s.on_trial_complete(f"t{i}", result if bad is None else {**result, self.metric: bad})
        assert n == self.max_queries

    def test_invalid_results_do_not_use_the_budget(self):
        """A result with ``valid=False`` (the trainable's "not an architecture") is no
        evaluation: the search goes on until ``max_queries`` valid ones."""
        s, valid, invalid = self.searcher(), 0, 0
        for i in range(10 * self.max_queries):
            cfg = s.suggest(f"t{i}")
            if cfg == FINISHED:
                break
            assert cfg is not None
            if i % 3 == 1:
                s.on_trial_complete(f"t{i}", {**self.objective(cfg), "valid": False})
                invalid += 1
            else:
                s.on_trial_complete(f"t{i}", self.objective(cfg))
                valid += 1
        assert valid == self.max_queries and invalid >= self.max_queries // 3

    def _interleaved(self, path: str | None) -> list[dict]:
        """Five finished trials, two left running, optionally save -> blank -> restore, then
        the rest."""
        s, got, pending = self.searcher(), [], {}
        for i in range(5):
            cfg = s.suggest(f"t{i}")
            got.append(cfg)
            s.on_trial_complete(f"t{i}", self.objective(cfg))
        for i in range(5, 7):
            cfg = s.suggest(f"t{i}")
            if cfg is None:
                break
            pending[f"t{i}"] = cfg
            got.append(cfg)
        if path is not None:
            s.save(path)
            s = self.searcher(seed=999)  # a blank instance, as Tuner.restore builds
            s.restore(path)
        for tid, cfg in pending.items():
            s.on_trial_complete(tid, self.objective(cfg))
        return got + drive(s, self.objective, prefix="u")

    def test_save_blank_restore_continues_identically(self, tmp_path):
        restored = self._interleaved(str(tmp_path / "searcher.pkl"))
        assert len(restored) == self.max_queries
        assert restored == self._interleaved(None), "a restored searcher must continue as if never stopped"

    def test_corrupt_checkpoint_raises(self, tmp_path):
        bad = tmp_path / "corrupt.pkl"
        bad.write_bytes(b"not a checkpoint")
        with pytest.raises((ValueError, EOFError, pickle.UnpicklingError)):
            self.searcher().restore(str(bad))

    def test_points_to_evaluate_come_first(self):
        space, rng = self.make_space(), np.random.default_rng(11)
        points = []
        while len(points) < 3:
            a = space.sample(rng)
            if space.key(a) not in {space.key(space.arch_of(p)) for p in points}:
                points.append(space.to_config(a))
        assert drive(self.searcher(points_to_evaluate=points), self.objective)[:3] == points

    def test_min_mode_prefers_lower_values(self):
        s = self.searcher(mode="min", metric="loss", max_queries=2 * self.max_queries)
        results = []

        def loss(cfg):
            value = -self.objective(cfg)[self.metric]
            results.append(value)
            return {"loss": value}

        drive(s, loss)
        if not hasattr(s, "results"):
            pytest.skip("the min-mode check reads the searcher's results(); this searcher has none")
        assert max(s.results(), key=lambda o: o.score).value == min(results)

    def test_warm_start_does_not_use_the_budget(self):
        s, space, rng = self.searcher(), self.make_space(), np.random.default_rng(5)
        if not hasattr(s, "add_evaluated_points"):
            pytest.skip("this searcher has no add_evaluated_points")
        warm = [space.to_config(space.sample(rng)) for _ in range(4)]
        s.add_evaluated_points([(c, self.objective(c)[self.metric]) for c in warm])
        configs = drive(s, self.objective)
        assert len(configs) == self.max_queries
        assert not set(self.keys(warm)) & set(self.keys(configs)), "a warm-start point was suggested again"

    def test_suggestions_do_not_depend_on_the_python_hash_seed(self, request):
        """A seed fixes a search in any process: no choice may follow the iteration order of a
        set of strings, which ``PYTHONHASHSEED`` changes (the tied objective exposes it)."""
        path, root = inspect.getfile(type(self)), str(request.config.rootpath)
        code = (
            f"from seminas_tune.testing.searcher_contract import _replay; print(_replay({path!r}, "
            f"{type(self).__name__!r}, {root!r}))"
        )
        runs = []
        for hash_seed in ("1", "2"):
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=root,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": hash_seed},
                timeout=600,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            runs.append(done.stdout.strip().splitlines()[-1])
        assert runs[0] == runs[1], "the suggestions changed with PYTHONHASHSEED"
