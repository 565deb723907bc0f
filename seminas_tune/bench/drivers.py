"""The harness searcher (budget, penalty rule, records) and the two drivers that run it.

The **inline** driver calls :class:`HarnessSearcher` through the Searcher API in one process;
the **tune** driver hands it to a real ``tune.Tuner`` (``num_samples=-1``, one trial at a
time). Same seed, same query sequence.
"""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

from ray.tune.search import Searcher

from seminas_tune.bench.common import METRIC, PENALTY
from seminas_tune.bench.tables import Benchmark, get_benchmark


class HarnessSearcher(Searcher):
    """Wraps a searcher: counts valid queries against the budget, records every evaluation.

    * ``budget`` valid queries (or ``time_budget`` seconds of simulated training time, summed
      from the results' ``training_time``), then ``FINISHED``.
    * Invalid / uncovered configs (``valid=False`` in the result: the penalty value) are passed
      on to the inner searcher but do not count; at most ``invalid_cap`` of them.
    * A cell seen before is evaluated again and counts (``duplicate`` flag).
    * ``stall_cap`` consecutive ``None`` from the inner searcher with nothing running ends
      the unit (Tune would poll forever).
    """

    def __init__(
        self,
        inner: Any,
        bench: Benchmark,
        seed: int,
        budget: int,
        label: str = "",
        time_budget: float | None = None,
        invalid_cap: int | None = None,
        stall_cap: int = 1000,
    ):
        super().__init__(metric=METRIC, mode="max")
        self.inner, self.bench, self.seed, self.budget = inner, bench, seed, budget
        self.label, self.time_budget = label, time_budget
        self.invalid_cap = invalid_cap if invalid_cap is not None else 50 * budget
        self.stall_cap = stall_cap
        self.rows: list[dict] = []
        self.n_valid = self.n_invalid = self.n_duplicate = self.stalls = 0
        self.cum_time = 0.0
        self.best_value, self.best_key = -math.inf, None
        self.stop_reason: str | None = None
        self.searcher_seconds = 0.0
        self._configs: dict[str, dict] = {}
        self._seen: set = set()

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def _limit_reached(self) -> str | None:
        if self.n_valid >= self.budget:
            return "budget"
        if self.time_budget is not None and self.cum_time >= self.time_budget:
            return "time budget"
        if self.n_invalid >= self.invalid_cap:
            return "invalid cap"
        return None

    def suggest(self, trial_id: str):
        if self.stop_reason is None:
            self.stop_reason = self._limit_reached()
        if self.stop_reason is not None:
            return self.FINISHED
        t = time.perf_counter()
        cfg = self.inner.suggest(trial_id)
        self.searcher_seconds += time.perf_counter() - t
        if cfg == self.FINISHED:
            self.stop_reason = "searcher finished"
            return cfg
        if cfg is None:
            if not self._configs:
                self.stalls += 1
                if self.stalls >= self.stall_cap:
                    self.stop_reason = "stalled"
                    return self.FINISHED
            return None
        self.stalls = 0
        self._configs[trial_id] = dict(cfg)
        return cfg

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        t = time.perf_counter()
        self.inner.on_trial_complete(trial_id, result, error)
        self.searcher_seconds += time.perf_counter() - t
        cfg = self._configs.pop(trial_id, None)
        if cfg is not None:
            self._record(cfg, result, error)

    def _record(self, cfg: dict, result: dict | None, error: bool) -> None:
        valid = result is not None and not error and result.get("valid", True) is not False
        duplicate = False
        if valid:
            key = result.get("arch_key")
            if key is None:
                space = self.bench.space
                key = space.key(space.arch_of(cfg))
            duplicate = key in self._seen
            self._seen.add(key)
            self.n_valid += 1
            self.n_duplicate += duplicate
            value = float(result[METRIC])
            self.cum_time += float(result.get("training_time") or 0.0)
            if value > self.best_value:
                self.best_value, self.best_key = value, key
        else:
            self.n_invalid += 1
            key, value = "", PENALTY
        regret, val_regret, inc_test = self.bench.regrets(self.best_key, self.best_value)
        self.rows.append(
            {
                "benchmark": self.bench.name,
                "algorithm": self.label,
                "seed": self.seed,
                "step": len(self.rows) + 1,
                "query": self.n_valid,
                "valid": valid,
                "duplicate": duplicate,
                "key": key,
                "value": value,
                "table_value": self.bench.val.get(key, math.nan) if valid else math.nan,
                "best_value": self.best_value if self.best_key is not None else math.nan,
                "regret": regret,
                "val_regret": val_regret,
                "incumbent_test": inc_test,
                "cum_time": self.cum_time,
            }
        )

    def save(self, checkpoint_path: str) -> None:  # a unit is rerun, not resumed mid-way
        raise NotImplementedError

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError


def drive_inline(h: HarnessSearcher, bench: Benchmark, seed: int, param_space: dict | None) -> float:
    """Suggest / evaluate / complete until FINISHED. Returns seconds spent evaluating."""
    if param_space:
        h.set_search_properties(METRIC, "max", param_space)
    eval_seconds, i = 0.0, 0
    while True:
        tid = f"{i:07d}"
        cfg = h.suggest(tid)
        if cfg == h.FINISHED:
            return eval_seconds
        if cfg is None:
            continue  # HarnessSearcher ends the unit after stall_cap of these
        t = time.perf_counter()
        result = bench.evaluate(cfg, seed)
        eval_seconds += time.perf_counter() - t
        h.on_trial_complete(tid, result)
        i += 1


def _tune_trainable(config: dict, benchmark: str = "nb101", seed: int = 0) -> None:
    from ray import tune

    tune.report(get_benchmark(benchmark).evaluate(config, seed))


def _trial_dirname(trial) -> str:
    return f"t_{trial.trial_id}"


def drive_tune(h: HarnessSearcher, bench: Benchmark, seed: int, param_space: dict | None) -> float:
    """A real ``tune.Tuner`` run (one trial at a time, so the sequence is the inline one).
    Returns seconds not spent in the searcher."""
    import ray
    from ray import tune

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    with tempfile.TemporaryDirectory(prefix="seminas_bench_tune_") as storage:
        tuner = tune.Tuner(
            tune.with_parameters(_tune_trainable, benchmark=bench.name, seed=seed),
            param_space=param_space or {},
            tune_config=tune.TuneConfig(
                search_alg=h,
                num_samples=-1,
                metric=METRIC,
                mode="max",
                max_concurrent_trials=1,
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(storage_path=storage, name="bench", verbose=0),
        )
        t = time.perf_counter()
        grid = tuner.fit()
        if grid.errors:
            raise RuntimeError(f"Tune trials failed: {grid.errors[0]}")
        return time.perf_counter() - t - h.searcher_seconds


DRIVERS = {"inline": drive_inline, "tune": drive_tune}
"""The drivers by ``--driver`` name."""
