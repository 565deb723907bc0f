"""The benchmark harness: algorithms x benchmarks x budgets x seeds on NAS-Bench tables.

``seminas-tune bench ...`` and ``python benchmarks/run.py ...`` both call :func:`main`.
``benchmarks/README.md`` describes the protocol and every output; in short:

* A *unit* is one (algorithm, benchmark, seed) search. Each unit writes one part file
  (``parts/<benchmark>/<algorithm>/seedNNNN.csv`` plus a ``.json`` with its settings and
  timings) atomically; a later run with the same settings skips it (resumable).
* Two drivers share one code path: the searcher is wrapped in :class:`HarnessSearcher`
  (budget, penalty rule, records), which the **inline** driver calls directly through the
  Searcher API and the **tune** driver hands to a real ``tune.Tuner`` (``num_samples=-1``,
  one trial at a time). Same seed, same query sequence.
* Tune's built-in searchers search the flat ``space.tune_space()``. A config that is no
  member of the table gets the penalty (0.0), is reported to the searcher as such, and does
  not use the query budget (at most ``invalid_factor x budget`` of them). A repeated cell is
  looked up again and does use the budget (flagged ``duplicate``).
* At the end the part files are merged into ``results.csv`` and summarised in
  ``summary.md`` (regret at budgets, mean ranks, queries to the top 0.1 % / 0.01 %, the
  random-search self-check) and ``regret_<benchmark>.png``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import hashlib
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from ray.tune.search import Searcher

HARNESS_VERSION = 1
METRIC = "val_accuracy"
PENALTY = 0.0
SUMMARY_BUDGETS = (50, 100, 150, 300, 1000, 2000)
TOP_FRACTIONS = (0.001, 0.0001)
BENCHMARKS = ("nb101", "nb201-cifar10", "nb201-cifar100", "nb201-imagenet")
BUILTINS = ("basic", "optuna", "hyperopt", "nevergrad", "zoopt")
DEFAULT_OUT = "benchmarks/results"
ROW_COLUMNS = ["benchmark", "algorithm", "seed", "step", "query", "valid", "duplicate", "key", "value",
               "table_value", "best_value", "regret", "val_regret", "incumbent_test", "cum_time"]


# ---------------------------------------------------------------------------------------------
# Benchmarks
# ---------------------------------------------------------------------------------------------
@dataclass
class Benchmark:
    """A NAS-Bench table as a benchmark.

    Attributes:
        name: as given on the command line (``nb101``, ``nb201-cifar10``, ``nb101-official:PATH``).
        space: the search space restricted to the table's cells.
        val: table value of the search metric per cell key (the mean over repeats for the
            official NB-101 file, whose evaluations draw one repeat).
        test: reported test accuracy per cell key (mean over repeats), or None (NB101-30k).
        vmax: best ``val`` in the table.
        test_floor: test accuracy of the best-by-validation cell of the table (the mean over
            cells tied at the top), or None.
        has_time: whether evaluations report a real ``training_time``.
    """

    name: str
    space: Any
    val: dict
    test: dict | None
    vmax: float
    test_floor: float | None
    has_time: bool
    _evaluate: Callable[[dict, int], dict]
    description: str = ""

    @property
    def ident(self) -> str:
        """The name as a folder / file name."""
        return get_benchmark_ident(self.name)

    def evaluate(self, config: dict, seed: int) -> dict:
        return self._evaluate(config, seed)

    def regrets(self, best_key: Any, best_value: float) -> tuple[float, float, float]:
        """(regret, val_regret, incumbent_test) of the incumbent (best observed) cell."""
        if best_key is None:
            return math.nan, math.nan, math.nan
        if self.test is None:  # NB101-30k: one repeat, no test accuracy; search = report
            r = self.vmax - best_value
            return r, r, math.nan
        t = self.test[best_key]
        return self.test_floor - t, self.vmax - self.val[best_key], t

    def threshold(self, fraction: float) -> float:
        """Smallest ``val`` among the table's top ``fraction`` of cells (at least one)."""
        values = np.sort(np.fromiter(self.val.values(), float))[::-1]
        return float(values[max(1, math.ceil(fraction * len(values))) - 1])


def _nb101_bundled() -> Benchmark:
    from trainables.nasbench import evaluate_nasbench101, nasbench101_space

    space = nasbench101_space()
    val = {k: float(r["val"][0]) for k, r in space.dataset.final_results().items()}
    return Benchmark("nb101", space, val, None, max(val.values()), None, True,
                     lambda c, s: evaluate_nasbench101(c, penalty=PENALTY, seed=s),
                     "NB101-30k (bundled, 30,001 real cells, one repeat); regret = best validation "
                     "accuracy in the table - best validation accuracy found")


def _nb101_official(path: str) -> Benchmark:
    from trainables.nasbench import evaluate_nasbench101, nasbench101_space

    if not Path(path).exists():
        raise SystemExit(f"nb101-official: {path} does not exist (give the official nasbench_only108.tfrecord)")
    space = nasbench101_space(path)
    final = space.dataset.final_results()
    val = {k: float(np.nanmean(r["val"])) for k, r in final.items()}
    test = {k: float(np.nanmean(r["test"])) for k, r in final.items()}
    vmax = max(val.values())
    floor = float(np.mean([test[k] for k, v in val.items() if v == vmax]))
    return Benchmark(f"nb101-official:{path}", space, val, test, vmax, floor, True,
                     lambda c, s: evaluate_nasbench101(c, dataset_file=path, penalty=PENALTY, seed=s),
                     "official NB-101 (each query draws one of the 3 repeats, seeded); regret = mean test "
                     "accuracy (3 repeats) of the table's best-mean-validation cell - that of the "
                     "best-by-observed-validation cell found")


def _nb201(dataset: str) -> Benchmark:
    from trainables.nasbench import evaluate_nasbench201, nasbench201_space

    space = nasbench201_space()
    table = space.dataset.table
    val = dict(zip(table.index, table[f"{dataset}-val"].to_numpy(float) / 100.0))
    test = dict(zip(table.index, table[f"{dataset}-test"].to_numpy(float) / 100.0))
    vmax = max(val.values())
    floor = float(np.mean([test[k] for k, v in val.items() if v == vmax]))
    return Benchmark(f"nb201-{dataset}", space, val, test, vmax, floor, False,
                     lambda c, s: evaluate_nasbench201(c, dataset=dataset, penalty=PENALTY),
                     f"NB-201 {dataset} (12-epoch table); search on validation, regret = test accuracy "
                     f"of the table's best-by-validation cell - that of the best-by-validation cell found")


@functools.lru_cache(maxsize=8)
def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (loaded once per process)."""
    if name == "nb101":
        return _nb101_bundled()
    if name.startswith("nb201-") and name.split("-", 1)[1] in ("cifar10", "cifar100", "imagenet"):
        return _nb201(name.split("-", 1)[1])
    if name.startswith("nb101-official:"):
        return _nb101_official(name.split(":", 1)[1])
    raise SystemExit(f"unknown benchmark {name!r}: choose from {', '.join(BENCHMARKS)} or nb101-official:PATH")


def _check_benchmark_name(name: str) -> None:
    ok = name in BENCHMARKS or (name.startswith("nb101-official:") and len(name) > len("nb101-official:"))
    if not ok:
        raise SystemExit(f"unknown benchmark {name!r}: choose from {', '.join(BENCHMARKS)} or nb101-official:PATH")


# ---------------------------------------------------------------------------------------------
# Algorithms and their settings
# ---------------------------------------------------------------------------------------------
def _ours() -> dict:
    from seminas_tune.search import SEARCHERS

    return SEARCHERS


def _builtin_module(name: str) -> str | None:
    return {"optuna": "optuna", "hyperopt": "hyperopt", "nevergrad": "nevergrad", "zoopt": "zoopt"}.get(name)


def algorithm_status() -> dict[str, str]:
    """Every algorithm name with ``"ok"`` or why it cannot run here."""
    import importlib

    out = {name: "ok" for name in _ours()}
    out["basic"] = "ok"
    for name in BUILTINS[1:]:
        try:
            importlib.import_module(_builtin_module(name))
            importlib.import_module(f"ray.tune.search.{name}")
            out[name] = "ok"
        except Exception as e:  # noqa: BLE001 - any import failure means "not installed"
            out[name] = f"not importable ({type(e).__name__}: {e})"
    if out.get("zoopt") == "ok":
        out["zoopt"] = "ok (stalls on categorical spaces: suggest returns None after a few trials)"
    return out


def base_algorithm(label: str) -> str:
    """``seminas@fast`` -> ``seminas`` (a label may carry a tag to compare settings)."""
    return label.split("@", 1)[0]


# Harness defaults, recorded with every result. Torch gets one thread: the harness already runs
# one search per core.
_CONTROLLER_ALGS = ("seminas", "nao", "seminas_re")


def default_settings(alg: str) -> dict[str, Any]:
    if alg in _CONTROLLER_ALGS:
        return {"controller.num_threads": 1}
    if alg == "nevergrad":
        return {"optimizer": "OnePlusOne"}
    return {}


def parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_sets(items: list[str], labels: list[str]) -> dict[str, dict[str, Any]]:
    """``["seminas.controller.joint_steps=100", ...]`` -> per-label flat settings.

    A setting for a base name (``seminas.x=1``) applies to its tagged labels (``seminas@a``) too;
    a tagged one overrides it.
    """
    base: dict[str, dict] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise SystemExit(f"--set {item!r}: expected ALGORITHM.PATH=VALUE, e.g. seminas.num_unlabeled=2000")
        lhs, value = item.split("=", 1)
        alg, path = lhs.split(".", 1)
        base.setdefault(alg, {})[path] = parse_value(value)
    unknown = set(base) - set(labels) - {base_algorithm(x) for x in labels}
    if unknown:
        raise SystemExit(f"--set names algorithms not being run: {sorted(unknown)} (running {labels})")
    out = {}
    for label in labels:
        b = base_algorithm(label)
        s = {**default_settings(b), **base.get(b, {})}
        if label != b:
            s.update(base.get(label, {}))
        validate_settings(b, s)
        out[label] = s
    return out


def _dataclass_args() -> dict[str, type]:
    from seminas_tune.controller import ControllerConfig

    return {"controller": ControllerConfig}


_RESERVED = ("space", "metric", "mode", "max_queries", "seed", "background")


def validate_settings(alg: str, settings: dict[str, Any]) -> None:
    """Raise SystemExit naming the first setting ``alg`` does not have."""
    import inspect

    if alg in _ours():
        params = inspect.signature(_ours()[alg].__init__).parameters
        for path in settings:
            head, *rest = path.split(".")
            if head in _RESERVED:
                raise SystemExit(f"--set {alg}.{path}: the harness sets {head} itself")
            if head not in params:
                raise SystemExit(f"--set {alg}.{path}: {alg} has no argument {head!r} "
                                 f"(it has {sorted(p for p in params if p not in ('self', *_RESERVED))})")
            obj = _dataclass_args().get(head)
            for part in rest:
                if obj is None or not dataclasses.is_dataclass(obj):
                    raise SystemExit(f"--set {alg}.{path}: {head} is not a settings object")
                fields = {f.name: f for f in dataclasses.fields(obj)}
                if part not in fields:
                    raise SystemExit(f"--set {alg}.{path}: no field {part!r} (fields: {sorted(fields)})")
                default = fields[part].default_factory() if fields[part].default_factory is not dataclasses.MISSING \
                    else fields[part].default
                obj = type(default) if dataclasses.is_dataclass(default) else None
    elif alg == "basic" and settings:
        raise SystemExit(f"basic has no settings (got {sorted(settings)})")
    elif alg not in BUILTINS:
        raise SystemExit(f"unknown algorithm {alg!r}: choose from {sorted(_ours()) + list(BUILTINS)}")


def _set_path(obj: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    head = path[0]
    return dataclasses.replace(obj, **{head: _set_path(getattr(obj, head), path[1:], value)})


def our_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    """Searcher keyword arguments from flat dotted settings (dataclass arguments built up)."""
    kwargs: dict[str, Any] = {}
    for path, value in settings.items():
        head, *rest = path.split(".")
        if rest:
            if head not in kwargs:
                kwargs[head] = _dataclass_args()[head]()
            kwargs[head] = _set_path(kwargs[head], rest, value)
        else:
            kwargs[head] = value
    return kwargs


class BasicVariantSearcher(Searcher):
    """Tune's ``BasicVariantGenerator`` (random search) behind the Searcher API.

    ``BasicVariantGenerator`` is a ``SearchAlgorithm`` without ``suggest``; this resolves the
    ``param_space`` with the function it uses (``generate_variants``) and the same seeded random
    state, one config per ``suggest``, so both drivers and the budget rule apply to it.
    """

    def __init__(self, seed: int):
        super().__init__(metric=METRIC, mode="max")
        from ray.tune.search.sample import _BackwardsCompatibleNumpyRng

        self._rng = _BackwardsCompatibleNumpyRng(seed)
        self._space: dict | None = None

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        self._space = config
        return True

    def suggest(self, trial_id: str):
        from ray.tune.search.variant_generator import generate_variants

        for _, cfg in generate_variants(self._space, random_state=self._rng):
            return cfg
        return None

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass


def build_searcher(label: str, space: Any, seed: int, budget: int, settings: dict[str, Any],
                   background: str = "inline", invalid_factor: float = 50.0):
    """The searcher ``label`` names, seeded, with ``settings`` applied."""
    alg = base_algorithm(label)
    settings = dict(settings)
    if alg in _ours():
        return _ours()[alg](space=space, metric=METRIC, mode="max", max_queries=budget, seed=seed,
                            background=background, **our_kwargs(settings))
    # Tune's searchers get their own stream per (seed, name): BasicVariantGenerator seeded like
    # our RandomSearcher would otherwise draw the very same NB-201 cells.
    seed = int(np.random.SeedSequence([seed, zlib.crc32(alg.encode())]).generate_state(1)[0] & 0x7FFFFFFF)
    np.random.seed(seed)  # libraries that draw from the global state (nevergrad)
    random.seed(seed)
    if alg == "basic":
        return BasicVariantSearcher(seed)
    if alg == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler_kw = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("sampler.")}
        rest = {k: v for k, v in settings.items() if not k.startswith("sampler.")}
        return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed, **sampler_kw), **rest)
    if alg == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(random_state_seed=seed, **settings)
    if alg == "nevergrad":
        import nevergrad as ng
        from ray.tune.search.nevergrad import NevergradSearch

        opt = settings.pop("optimizer")
        return NevergradSearch(optimizer=getattr(ng.optimizers, opt), **settings)
    if alg == "zoopt":
        from ray.tune.search.zoopt import ZOOptSearch

        settings.setdefault("budget", int(budget * (1 + invalid_factor)))
        return ZOOptSearch(**settings)
    raise SystemExit(f"unknown algorithm {label!r}")


# ---------------------------------------------------------------------------------------------
# The harness searcher: budget, penalty rule and records, shared by both drivers
# ---------------------------------------------------------------------------------------------
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

    def __init__(self, inner: Any, bench: Benchmark, seed: int, budget: int, label: str = "",
                 time_budget: float | None = None, invalid_cap: int | None = None, stall_cap: int = 1000):
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
        self.rows.append({
            "benchmark": self.bench.name, "algorithm": self.label, "seed": self.seed,
            "step": len(self.rows) + 1, "query": self.n_valid, "valid": valid, "duplicate": duplicate,
            "key": key, "value": value, "table_value": self.bench.val.get(key, math.nan) if valid else math.nan,
            "best_value": self.best_value if self.best_key is not None else math.nan,
            "regret": regret, "val_regret": val_regret, "incumbent_test": inc_test, "cum_time": self.cum_time,
        })

    def save(self, checkpoint_path: str) -> None:  # a unit is rerun, not resumed mid-way
        raise NotImplementedError

    def restore(self, checkpoint_path: str) -> None:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------------------------
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
    """A real ``tune.Tuner`` run (one trial at a time, so the sequence is the inline one)."""
    import ray
    from ray import tune

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    with tempfile.TemporaryDirectory(prefix="seminas_bench_tune_") as storage:
        tuner = tune.Tuner(
            tune.with_parameters(_tune_trainable, benchmark=bench.name, seed=seed),
            param_space=param_space or {},
            tune_config=tune.TuneConfig(search_alg=h, num_samples=-1, metric=METRIC, mode="max",
                                        max_concurrent_trials=1, reuse_actors=True,
                                        trial_dirname_creator=_trial_dirname),
            run_config=tune.RunConfig(storage_path=storage, name="bench", verbose=0),
        )
        t = time.perf_counter()
        grid = tuner.fit()
        if grid.errors:
            raise RuntimeError(f"Tune trials failed: {grid.errors[0]}")
        return time.perf_counter() - t - h.searcher_seconds


# ---------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    benchmark: str
    algorithm: str  # label (may carry @tag)
    seed: int
    budget: int
    time_budget: float | None
    driver: str
    settings: tuple  # sorted (path, value) pairs
    invalid_factor: float

    @property
    def settings_dict(self) -> dict:
        return dict(self.settings)

    def fingerprint(self) -> str:
        d = dataclasses.asdict(self)
        d["settings"] = [list(x) for x in self.settings]
        d["version"] = HARNESS_VERSION
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def part_path(self, out: Path) -> Path:
        ident = get_benchmark_ident(self.benchmark)
        return out / "parts" / ident / self.algorithm / f"seed{self.seed:04d}.csv"


def get_benchmark_ident(name: str) -> str:
    if name.startswith("nb101-official:"):
        stem = Path(name.split(":", 1)[1]).name.split(".")[0]
        return "nb101-official-" + re.sub(r"[^A-Za-z0-9_-]+", "_", stem)
    return name


def unit_is_done(unit: Unit, out: Path) -> bool:
    """A unit is finished when its part files exist for the same unit and, for our searchers,
    the same resolved settings: a change of the package's defaults reruns it."""
    part = unit.part_path(out)
    meta = part.with_suffix(".json")
    if not (part.exists() and meta.exists()):
        return False
    try:
        done = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    if done.get("fingerprint") != unit.fingerprint():
        return False
    if base_algorithm(unit.algorithm) not in _ours():
        return True
    now = resolved_settings(_unit_searcher(unit, get_benchmark(unit.benchmark)))
    return done.get("resolved") == json.loads(json.dumps(now, default=str))


def _unit_searcher(unit: Unit, bench: Benchmark) -> Any:
    # Under a time budget, the query budget is only a cap; our searchers plan with it.
    background = "inline" if unit.driver == "inline" else "auto"
    return build_searcher(unit.algorithm, bench.space, unit.seed, unit.budget, unit.settings_dict,
                          background=background, invalid_factor=unit.invalid_factor)


def run_unit(unit: Unit, out: str | Path | None = None, drop_invalid_rows: bool = False) -> tuple[list[dict], dict]:
    """Run one search; write its part files when ``out`` is given. Returns (rows, meta)."""
    t0 = time.perf_counter()
    bench = get_benchmark(unit.benchmark)
    if unit.time_budget is not None and not bench.has_time:
        raise SystemExit(f"{unit.benchmark} has no training times: --time-budget needs nb101 or nb101-official")
    alg = base_algorithm(unit.algorithm)
    ours = alg in _ours()
    inner = _unit_searcher(unit, bench)
    h = HarnessSearcher(inner, bench, unit.seed, unit.budget, unit.algorithm, unit.time_budget,
                        invalid_cap=int(math.ceil(unit.invalid_factor * unit.budget)))
    param_space = None if ours else bench.space.tune_space()
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    driver = drive_inline if unit.driver == "inline" else drive_tune
    eval_seconds = driver(h, bench, unit.seed, param_space)
    search_wall = time.perf_counter() - t1
    meta = {
        "benchmark": unit.benchmark, "algorithm": unit.algorithm, "base_algorithm": alg, "seed": unit.seed,
        "budget": unit.budget, "time_budget": unit.time_budget, "driver": unit.driver,
        "settings": unit.settings_dict, "invalid_factor": unit.invalid_factor,
        "fingerprint": unit.fingerprint(), "harness_version": HARNESS_VERSION,
        "n_valid": h.n_valid, "n_invalid": h.n_invalid, "n_duplicate": h.n_duplicate,
        "stop_reason": h.stop_reason, "best_value": h.best_value if h.best_key is not None else None,
        "best_key": h.best_key, "final_regret": h.rows[-1]["regret"] if h.rows else None,
        "cum_time": h.cum_time, "setup_seconds": round(setup, 3), "search_seconds": round(search_wall, 3),
        "searcher_seconds": round(h.searcher_seconds, 3), "eval_seconds": round(eval_seconds, 3),
    }
    meta["resolved"] = resolved_settings(inner)
    rows = h.rows
    if out is not None:
        _write_part(unit, Path(out), rows, meta, drop_invalid_rows)
    return rows, meta


def resolved_settings(searcher: Any) -> dict:
    """Every constructor argument of one of our searchers as it was built (defaults included,
    so a result says what it ran with even after the package's defaults change)."""
    import inspect

    from seminas_tune.search import ArchSearcher

    if not isinstance(searcher, ArchSearcher):
        return {"class": type(searcher).__name__}
    out: dict[str, Any] = {"class": type(searcher).__name__}
    for name in inspect.signature(type(searcher).__init__).parameters:
        if name in ("self", "space", "args", "kwargs", "points_to_evaluate") or not hasattr(searcher, name):
            continue
        v = getattr(searcher, name)
        out[name] = dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
    return out


def _write_part(unit: Unit, out: Path, rows: list[dict], meta: dict, drop_invalid_rows: bool) -> None:
    import pandas as pd

    part = unit.part_path(out)
    part.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=ROW_COLUMNS)
    if drop_invalid_rows:
        df = df[df["valid"]]
    tmp = part.with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, part)
    tmpm = part.with_suffix(".json.tmp")
    tmpm.write_text(json.dumps(meta, indent=1, default=str))
    os.replace(tmpm, part.with_suffix(".json"))  # the .json last: it marks the unit finished


def _worker(args: tuple) -> dict:
    unit, out, drop = args
    try:
        _, meta = run_unit(unit, out, drop)
        return meta
    except BaseException as e:  # noqa: BLE001 - report and go on with the other units
        return {"benchmark": unit.benchmark, "algorithm": unit.algorithm, "seed": unit.seed,
                "error": f"{type(e).__name__}: {e}"}


# ---------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------
def _log_comb(n: np.ndarray, k: int) -> np.ndarray:
    from scipy.special import gammaln

    n = np.asarray(n, float)
    out = np.full(n.shape, -np.inf)
    ok = n >= k
    out[ok] = gammaln(n[ok] + 1) - gammaln(k + 1) - gammaln(n[ok] - k + 1)
    return out


def random_expectation(val: np.ndarray, n: int, report: np.ndarray | None = None) -> float:
    """E[report value of the best-by-``val`` cell] over ``n`` uniform draws without replacement.

    With ``report=None`` this is E[max val]. Ties in ``val`` are handled exactly: the first
    found among tied cells is uniform over the tied level, so each level contributes its mean
    ``report`` times P(max level = that level) = [C(c_L, n) - C(c_{L-1}, n)] / C(N, n), with
    c_L the number of cells at or below level L.
    """
    val = np.asarray(val, float)
    report = val if report is None else np.asarray(report, float)
    N = len(val)
    n = min(n, N)
    order = np.argsort(val, kind="stable")
    v, r = val[order], report[order]
    levels, starts, counts = np.unique(v, return_index=True, return_counts=True)
    c = starts + counts  # cells at or below each level
    logs = _log_comb(c, n) - _log_comb(np.array([N]), n)[0]
    cdf = np.exp(logs)
    p = np.diff(np.concatenate([[0.0], cdf]))
    means = np.add.reduceat(r, starts) / counts
    return float(np.sum(p * means))


def _curves(df, budget: int, col: str = "regret", budget_of: dict | None = None) -> tuple[dict, dict]:
    """Per (algorithm, seed): array of ``col`` after 1..budget valid queries (carried forward
    past a unit's early end, NaN past the algorithm's own budget in ``budget_of``); and per
    algorithm the number of short units."""
    curves, short = {}, {}
    valid = df[df["valid"]]
    for (alg, seed), g in valid.groupby(["algorithm", "seed"], sort=False):
        own = min(budget, (budget_of or {}).get(alg, budget))
        q = g["query"].to_numpy()
        v = g[col].to_numpy(float)
        a = np.full(budget, np.nan)
        idx = q[(q >= 1) & (q <= own)] - 1
        a[idx] = v[(q >= 1) & (q <= own)]
        last = np.nan
        for i in range(own):  # forward fill
            if np.isnan(a[i]):
                a[i] = last
            else:
                last = a[i]
        curves[(alg, seed)] = a
        short[alg] = short.get(alg, 0) + int(q.max() < own)
    return curves, short


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def _queries_to(df, thr: float) -> dict:
    """Per (algorithm, seed): first valid query whose cell's table value >= thr (inf if none)."""
    out = {}
    valid = df[df["valid"]]
    for (alg, seed), g in valid.groupby(["algorithm", "seed"], sort=False):
        hit = g[g["table_value"] >= thr - 1e-12]
        out[(alg, seed)] = float(hit["query"].iloc[0]) if len(hit) else math.inf
    return out


def goal_lines(curves: dict, hits: dict, algorithms: list[str], budgets: list[int]) -> list[str]:
    """SemiNAS against the field as the benchmark's goal states it: lowest mean regret with its
    standard-error interval clear of RE's, fewest median queries to a top-0.1 % cell, and
    SemiNAS at 300 queries no worse than RE at 1000. Empty unless both ran."""
    algs = [a for a in algorithms if any(k[0] == a for k in curves)]
    if "seminas" not in algs or "re" not in algs:
        return []

    def mean_se(a: str, b: int) -> tuple[float, float]:
        return _mean_se(np.array([c[b - 1] for (x, _), c in curves.items() if x == a]) * 100)

    lines = ["### SemiNAS against the field", "",
             "| budget | lowest mean regret | SemiNAS | RE | SemiNAS lowest | clear of RE (mean +- se) |",
             "|---:|---|---:|---:|---|---|"]
    for b in budgets:
        stats = {a: mean_se(a, b) for a in algs}
        stats = {a: v for a, v in stats.items() if not math.isnan(v[0])}  # past a shorter budget
        best = min(stats, key=lambda a: stats[a][0])
        (sm, sse), (rm, rse) = stats["seminas"], stats["re"]
        lines.append(f"| {b} | {best} {stats[best][0]:.3f} | {sm:.3f} +- {sse:.3f} | {rm:.3f} +- {rse:.3f} | "
                     f"{'yes' if best == 'seminas' else 'no'} | {'yes' if sm + sse < rm - rse else 'no'} |")
    med = {a: float(np.median([v for (x, _), v in hits.items() if x == a])) for a in algs}
    fewest = min(med, key=lambda a: med[a])
    lines += ["", f"Median queries to a top-0.1 % cell: SemiNAS {med['seminas']:g}; fewest: {fewest} "
                  f"{med[fewest]:g}."]
    if 300 in budgets and 1000 in budgets:
        s300, r1000 = mean_se("seminas", 300)[0], mean_se("re", 1000)[0]
        lines.append(f"SemiNAS at 300 queries {s300:.3f} pp against RE at 1000 {r1000:.3f} pp: "
                     f"{'as good or better' if s300 <= r1000 else 'worse'}.")
    return lines + [""]


def summarise(df, metas: list[dict], budget: int, time_budget: float | None, algorithms: list[str],
              benchmarks: list[str], settings: dict, out: Path, plots: bool = True) -> str:
    """The Markdown summary (also written to ``out/summary.md``) and the plots."""
    import pandas as pd

    budgets = [b for b in SUMMARY_BUDGETS if b <= budget]
    if budget not in budgets:
        budgets.append(budget)
    budget_of = {m["algorithm"]: m["budget"] for m in metas if "error" not in m}
    shorter = sorted({b for b in budget_of.values() if b < budget})
    lines = ["# Benchmark summary", "",
             f"Budget {budget} valid queries"
             + "".join(f" ({', '.join(sorted(a for a, x in budget_of.items() if x == b))}: {b})" for b in shorter)
             + (f", simulated training time {time_budget:g} s" if time_budget else "")
             + f"; algorithms {', '.join(algorithms)}. Regret in percentage points (accuracy x 100), "
               "mean +- standard error over seeds, mean rank among the algorithms in brackets "
               "(1 = best; over the seeds every algorithm ran).", ""]
    meta_df = pd.DataFrame([m for m in metas if "error" not in m])
    for bname in benchmarks:
        bench = get_benchmark(bname)
        bdf = df[df["benchmark"] == bench.name]
        if bdf.empty:
            continue
        lines += [f"## {bench.name}", "", bench.description + ".", ""]
        metrics = [("regret", "regret" if bench.test is None else "test regret")]
        if bench.test is not None:
            metrics.append(("val_regret", "validation regret"))
        all_curves = {}
        for col, title in metrics:
            curves, short = _curves(bdf, budget, col, budget_of)
            all_curves[col] = curves
            algs = [a for a in algorithms if any(k[0] == a for k in curves)]
            seeds_of = {a: {s for (x, s) in curves if x == a} for a in algs}
            lines += [f"### {title} (pp) at budget", "",
                      "| algorithm | seeds | " + " | ".join(f"@{b}" for b in budgets) + " | short runs |",
                      "|---|---:|" + "---:|" * len(budgets) + "---:|"]
            ranks = {}
            for b in budgets:
                ranked = [a for a in algs if budget_of.get(a, budget) >= b]
                common = sorted(set.intersection(*(seeds_of[a] for a in ranked))) if ranked else []
                if len(ranked) > 1 and common:
                    mat = pd.DataFrame({a: [curves[(a, s)][b - 1] for s in common] for a in ranked})
                    ranks[b] = mat.rank(axis=1, method="average").mean(axis=0).to_dict()
            for a in algs:
                cells = []
                for b in budgets:
                    m, se = _mean_se(np.array([curves[(a, s)][b - 1] for s in sorted(seeds_of[a])]) * 100)
                    r = f" ({ranks[b][a]:.2f})" if a in ranks.get(b, {}) else ""
                    cells.append("-" if math.isnan(m) else f"{m:.3f} +- {se:.3f}{r}")
                lines.append(f"| {a} | {len(seeds_of[a])} | " + " | ".join(cells) + f" | {short.get(a, 0)} |")
            lines.append("")
        # queries to the top of the table
        lines += ["### queries to reach the top of the table (by the search metric)", "",
                  "Median over seeds of the first query whose cell is in the table's top fraction "
                  "(a seed that never got there counts as infinite); in brackets: seeds not reached / seeds.", "",
                  "| algorithm | " + " | ".join(f"top {f * 100:g} % (val >= {bench.threshold(f) * 100:.3f})"
                                                  for f in TOP_FRACTIONS) + " |",
                  "|---|" + "---:|" * len(TOP_FRACTIONS)]
        hits = {f: _queries_to(bdf, bench.threshold(f)) for f in TOP_FRACTIONS}
        for a in algorithms:
            cells = []
            for f in TOP_FRACTIONS:
                q = np.array([v for (x, _), v in hits[f].items() if x == a])
                if len(q) == 0:
                    cells.append("-")
                    continue
                med = float(np.median(q))
                cells.append(f"{'not reached' if math.isinf(med) else f'{med:g}'} "
                             f"({int(np.isinf(q).sum())}/{len(q)})")
            if any(c != "-" for c in cells):
                lines.append(f"| {a} | " + " | ".join(cells) + " |")
        lines.append("")
        lines += goal_lines(all_curves["regret"], hits[TOP_FRACTIONS[0]], algorithms, budgets)
        # random-search self-check
        rand = [a for a in algorithms if base_algorithm(a) == "random"]
        if rand and (bench.test is None or bench.name.startswith("nb201")):
            keys = list(bench.val)
            v = np.array([bench.val[k] for k in keys])
            rep = None if bench.test is None else np.array([bench.test[k] for k in keys])
            curves = all_curves["regret"]
            lines += ["### random-search self-check", "",
                      "Mean regret of `random` (uniform over the table's cells, no repeats) beside its exact "
                      "expectation for n draws without replacement (sum over sorted table values of "
                      "value x P(best = value)).", "",
                      "| budget | " + " | ".join(f"{a} mean +- se" for a in rand) + " | expected |",
                      "|---:|" + "---:|" * (len(rand) + 1)]
            for b in budgets:
                cells = []
                for a in rand:
                    m, se = _mean_se(np.array([c[b - 1] for (x, _), c in curves.items() if x == a]) * 100)
                    cells.append(f"{m:.3f} +- {se:.3f}")
                if bench.test is None:
                    exp = (bench.vmax - random_expectation(v, b)) * 100
                else:
                    exp = (bench.test_floor - random_expectation(v, b, rep)) * 100
                lines.append(f"| {b} | " + " | ".join(cells) + f" | {exp:.3f} |")
                if bname == "nb101":
                    print(f"[self-check] nb101 random @{b}: mean regret {' '.join(cells)} pp, expected {exp:.3f} pp")
            lines.append("")
        if time_budget and bench.has_time:
            lines += _time_table(bdf, algorithms, time_budget)
        # run statistics
        if not meta_df.empty:
            md = meta_df[meta_df["benchmark"] == bench.name]
            lines += ["### runs", "",
                      "| algorithm | seeds | wall s / seed (search) | searcher s / seed | valid / seed | "
                      "invalid / seed | duplicates / seed | stop reasons |",
                      "|---|---:|---:|---:|---:|---:|---:|---|"]
            for a in algorithms:
                g = md[md["algorithm"] == a]
                if g.empty:
                    continue
                reasons = ", ".join(f"{k} {v}" for k, v in g["stop_reason"].value_counts().items())
                lines.append(f"| {a} | {len(g)} | {g['search_seconds'].mean():.2f} | {g['searcher_seconds'].mean():.2f} | "
                             f"{g['n_valid'].mean():.1f} | {g['n_invalid'].mean():.1f} | "
                             f"{g['n_duplicate'].mean():.2f} | {reasons} |")
            lines.append("")
        if plots:
            _plot(bench, all_curves, algorithms, budget, out)
            lines += [f"![regret]({'regret_' + bench.ident + '.png'})", ""]
    lines += ["## settings", "", "```json", json.dumps(settings, indent=1, default=str), "```", ""]
    text = "\n".join(lines)
    (out / "summary.md").write_text(text)
    return text


def _time_table(bdf, algorithms: list[str], time_budget: float) -> list[str]:
    points = [time_budget * f for f in (0.125, 0.25, 0.5, 1.0)]
    lines = ["### regret (pp) at simulated training time", "",
             "| algorithm | " + " | ".join(f"{t:.3g} s" for t in points) + " |",
             "|---|" + "---:|" * len(points)]
    valid = bdf[bdf["valid"]]
    for a in algorithms:
        g = valid[valid["algorithm"] == a]
        if g.empty:
            continue
        cells = []
        for t in points:
            vals = []
            for _, s in g.groupby("seed"):
                within = s[s["cum_time"] <= t]
                vals.append(within["regret"].iloc[-1] if len(within) else np.nan)
            m, se = _mean_se(np.array(vals, float) * 100)
            cells.append(f"{m:.3f} +- {se:.3f}")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return lines + [""]


def _plot(bench: Benchmark, all_curves: dict, algorithms: list[str], budget: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(all_curves)
    fig, axes = plt.subplots(1, len(cols), figsize=(6.5 * len(cols), 4.5), squeeze=False)
    x = np.arange(1, budget + 1)
    for ax, col in zip(axes[0], cols):
        lowest = 0.0
        for a in algorithms:
            cs = [c for (x_, _), c in all_curves[col].items() if x_ == a]
            if not cs:
                continue
            m = np.array(cs) * 100
            m = m[:, : int((~np.isnan(m)).any(axis=0).nonzero()[0].max()) + 1]  # own budget
            mean = np.nanmean(m, axis=0)
            se = np.nanstd(m, axis=0, ddof=1) / np.sqrt(len(cs)) if len(cs) > 1 else np.zeros_like(mean)
            ax.plot(x[: m.shape[1]], mean, label=f"{a} ({len(cs)})",
                    linestyle="-" if base_algorithm(a) in _ours() else "--")  # Tune's built-ins dashed
            ax.fill_between(x[: m.shape[1]], mean - se, mean + se, alpha=0.2)
            lowest = min(lowest, float(np.nanmin(mean - se)))
        ax.set_xscale("log")
        # log above 0.01 pp (one NB-101 validation image), linear below: the leaders' tails stay
        # readable beside the built-ins' early regrets, and zero or negative regret still plots
        ax.set_yscale("symlog", linthresh=0.01, linscale=0.5)
        ax.set_ylim(bottom=lowest)
        ax.set_xlabel("queries (valid)")
        ax.set_ylabel(("test " if col == "regret" and bench.test is not None else
                       "validation " if col == "val_regret" else "") + "regret (pp)")
        ax.set_title(bench.ident)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"regret_{bench.ident}.png", dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
DEFAULT_ALGORITHMS = "seminas,nao,seminas_re,re,local,random,basic,optuna,hyperopt"


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seminas-tune bench",
        description="Benchmark searchers on NAS-Bench tables: algorithms x benchmarks x seeds, resumable.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--benchmarks", default="nb101",
                   help=f"comma list of {', '.join(BENCHMARKS)}, nb101-official:PATH")
    p.add_argument("--algorithms", default=DEFAULT_ALGORITHMS,
                   help="comma list of our searchers and Tune's (basic, optuna, hyperopt, nevergrad, zoopt); "
                        "NAME@TAG runs NAME under its own settings (--set NAME@TAG.x=...)")
    p.add_argument("--seeds", type=int, default=10, help="number of seeds")
    p.add_argument("--builtin-seeds", type=int, default=None,
                   help="number of seeds for Tune's built-in searchers (default: --seeds)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=300, help="valid queries per search")
    p.add_argument("--builtin-budget", type=int, default=None,
                   help="valid queries per search for Tune's built-in searchers (default: --budget; at most that)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="also stop at this much simulated training time (s; NB-101 only); --budget stays a cap")
    p.add_argument("--driver", choices=["inline", "tune"], default="inline")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (inline driver)")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="ALG.PATH=VALUE",
                   help="algorithm setting, e.g. seminas.num_unlabeled=2000, seminas.controller.joint_steps=100")
    p.add_argument("--invalid-factor", type=float, default=50.0,
                   help="a built-in searcher may make at most this x budget invalid suggestions")
    p.add_argument("--drop-invalid-rows", action="store_true", help="keep only valid queries in the CSVs")
    p.add_argument("--rerun", action="store_true", help="rerun finished units too")
    p.add_argument("--summary-only", action="store_true",
                   help="run nothing: merge and summarise the units finished so far (also while a run goes on)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--list", action="store_true", help="list the algorithms and whether they can run here")
    return p


def run(argv: list[str] | None = None) -> dict:
    """Parse ``argv``, run the missing units, merge and summarise. Returns what happened."""
    import pandas as pd

    args = make_parser().parse_args(argv)
    status = algorithm_status()
    if args.list:
        for k, v in status.items():
            print(f"{k:12s} {v}")
        return {"listed": status}
    builtin_seeds = args.seeds if args.builtin_seeds is None else args.builtin_seeds
    builtin_budget = args.budget if args.builtin_budget is None else args.builtin_budget
    if min(args.budget, args.seeds, builtin_seeds, builtin_budget) < 1:
        raise SystemExit("--budget, --seeds, --builtin-seeds and --builtin-budget must be positive")
    if builtin_budget > args.budget:
        raise SystemExit(f"--builtin-budget {builtin_budget} exceeds --budget {args.budget}: "
                         "summaries stop at --budget")
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    labels = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    for b in benchmarks:
        _check_benchmark_name(b)
    for a in labels:
        base = base_algorithm(a)
        if base not in status:
            raise SystemExit(f"unknown algorithm {a!r}: choose from {', '.join(status)}")
        if not status[base].startswith("ok"):
            raise SystemExit(f"{base} cannot run here: {status[base]}")
    if args.time_budget is not None and any(not (b == "nb101" or b.startswith("nb101-official:")) for b in benchmarks):
        raise SystemExit("--time-budget needs NB-101 benchmarks (NB-201 reports no training time)")
    settings = parse_sets(args.sets, labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_seeds = {a: args.seeds if base_algorithm(a) in _ours() else builtin_seeds for a in labels}
    budget_of = {a: args.budget if base_algorithm(a) in _ours() else builtin_budget for a in labels}
    seeds = range(args.first_seed, args.first_seed + max(n_seeds.values()))
    # Seed-major order: a run stopped part-way leaves every algorithm with about as many seeds.
    units = [Unit(b, a, s, budget_of[a], args.time_budget, args.driver,
                  tuple(sorted(settings[a].items())), args.invalid_factor)
             for s in seeds for b in benchmarks for a in labels if s < args.first_seed + n_seeds[a]]
    finished = {u for u in units if not args.rerun and unit_is_done(u, out)}
    todo = [] if args.summary_only else [u for u in units if u not in finished]
    print(f"{len(units)} units, {len(finished)} already finished, {len(todo)} to run", flush=True)
    metas_new, errors = [], []
    t0 = time.perf_counter()
    work = [(u, str(out), args.drop_invalid_rows) for u in todo]
    workers = 1 if args.driver == "tune" else max(1, min(args.workers, len(todo)))
    if workers == 1:
        results = map(_worker, work)
        pool = None
    else:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap_unordered(_worker, work, chunksize=1)
    import signal

    def _terminate(signum, frame):  # SIGTERM: stop the workers too, keep the finished part files
        raise SystemExit(f"stopped by signal {signum}; rerun the same command to resume")

    previous = signal.signal(signal.SIGTERM, _terminate) if pool is not None else None
    ok = False
    try:
        for i, meta in enumerate(results, 1):
            if "error" in meta:
                errors.append(meta)
                print(f"[{i}/{len(todo)}] {meta['benchmark']} {meta['algorithm']} seed {meta['seed']}: "
                      f"FAILED {meta['error']}", flush=True)
                continue
            metas_new.append(meta)
            print(f"[{i}/{len(todo)}] {meta['benchmark']} {meta['algorithm']} seed {meta['seed']}: "
                  f"regret {100 * (math.nan if meta['final_regret'] is None else meta['final_regret']):.3f} pp, {meta['n_valid']} valid, "
                  f"{meta['n_invalid']} invalid, {meta['search_seconds']:.1f} s ({meta['stop_reason']})", flush=True)
        ok = True
    finally:
        if pool is not None:
            signal.signal(signal.SIGTERM, previous)
            if ok:
                pool.close()
            else:
                pool.terminate()
            pool.join()
    # merge every requested unit that has finished (this run's and earlier runs')
    frames, metas = [], []
    for u in units:
        if unit_is_done(u, out):
            part = u.part_path(out)
            frames.append(pd.read_csv(part, keep_default_na=False, na_values=[""],
                                      dtype={"key": str}))
            metas.append(json.loads(part.with_suffix(".json").read_text()))
    if not frames:
        raise SystemExit("no finished units to summarise")
    df = pd.concat(frames, ignore_index=True)
    df["valid"] = df["valid"].astype(str).str.lower() == "true"
    df["duplicate"] = df["duplicate"].astype(str).str.lower() == "true"
    df.to_csv(out / "results.csv", index=False)
    recorded = {"argv": list(argv) if argv is not None else sys.argv[1:], "budget": args.budget,
                "time_budget": args.time_budget, "driver": args.driver, "invalid_factor": args.invalid_factor,
                "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
                "builtin_seeds": builtin_seeds, "builtin_budget": builtin_budget,
                "benchmarks": benchmarks, "algorithms": settings,
                "harness_version": HARNESS_VERSION}
    (out / "settings.json").write_text(json.dumps(recorded, indent=1, default=str))
    text = summarise(df, metas, args.budget, args.time_budget, labels, benchmarks, recorded, out,
                     plots=not args.no_plots)
    print(text)
    print(f"\n{len(metas_new)} units run in {time.perf_counter() - t0:.1f} s; outputs in {out}/ "
          f"(results.csv, summary.md, settings.json" + ("" if args.no_plots else ", regret_*.png") + ")")
    if errors:
        print(f"{len(errors)} units FAILED (see above); rerun to retry them", file=sys.stderr)
    return {"units": len(units), "ran": len(metas_new), "skipped": len(finished),
            "errors": errors, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    res = run(argv)
    return 1 if res.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
