"""The benchmarks: NAS-Bench tables with their search space, lookup and regret."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seminas_tune.bench.common import PENALTY, BenchError

BENCHMARKS = ("nb101", "nb201-cifar10", "nb201-cifar100", "nb201-imagenet")
"""The benchmark names besides ``nb101-official:PATH``."""
_OFFICIAL = "nb101-official:"


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


def _test_floor(val: dict, test: dict) -> tuple[float, float]:
    """(best val, mean test accuracy of the cells tied at it)."""
    vmax = max(val.values())
    return vmax, float(np.mean([test[k] for k, v in val.items() if v == vmax]))


def _nb101_bundled() -> Benchmark:
    from trainables.nasbench import evaluate_nasbench101, nasbench101_space

    space = nasbench101_space()
    val = {k: float(r["val"][0]) for k, r in space.dataset.final_results().items()}
    return Benchmark(
        "nb101",
        space,
        val,
        None,
        max(val.values()),
        None,
        True,
        lambda c, s: evaluate_nasbench101(c, penalty=PENALTY, seed=s),
        "NB101-30k (bundled, 30,001 real cells, one repeat); regret = best validation "
        "accuracy in the table - best validation accuracy found",
    )


def _nb101_official(path: str) -> Benchmark:
    from trainables.nasbench import evaluate_nasbench101, nasbench101_space

    if not Path(path).exists():
        raise BenchError(f"nb101-official: {path} does not exist (give the official nasbench_only108.tfrecord)")
    space = nasbench101_space(path)
    final = space.dataset.final_results()
    val = {k: float(np.nanmean(r["val"])) for k, r in final.items()}
    test = {k: float(np.nanmean(r["test"])) for k, r in final.items()}
    vmax, floor = _test_floor(val, test)
    return Benchmark(
        f"{_OFFICIAL}{path}",
        space,
        val,
        test,
        vmax,
        floor,
        True,
        lambda c, s: evaluate_nasbench101(c, dataset_file=path, penalty=PENALTY, seed=s),
        "official NB-101 (each query draws one of the 3 repeats, seeded); regret = mean test "
        "accuracy (3 repeats) of the table's best-mean-validation cell - that of the "
        "best-by-observed-validation cell found",
    )


def _nb201(dataset: str) -> Benchmark:
    from trainables.nasbench import evaluate_nasbench201, nasbench201_space

    space = nasbench201_space()
    table = space.dataset.table
    val = dict(zip(table.index, table[f"{dataset}-val"].to_numpy(float) / 100.0))
    test = dict(zip(table.index, table[f"{dataset}-test"].to_numpy(float) / 100.0))
    vmax, floor = _test_floor(val, test)
    return Benchmark(
        f"nb201-{dataset}",
        space,
        val,
        test,
        vmax,
        floor,
        False,
        lambda c, s: evaluate_nasbench201(c, dataset=dataset, penalty=PENALTY),
        f"NB-201 {dataset} (12-epoch table); search on validation, regret = test accuracy "
        f"of the table's best-by-validation cell - that of the best-by-validation cell found",
    )


def _unknown(name: str) -> BenchError:
    return BenchError(f"unknown benchmark {name!r}: choose from {', '.join(BENCHMARKS)} or {_OFFICIAL}PATH")


@functools.lru_cache(maxsize=8)
def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name`` (loaded once per process)."""
    check_benchmark_name(name)
    if name == "nb101":
        return _nb101_bundled()
    if name.startswith(_OFFICIAL):
        return _nb101_official(name[len(_OFFICIAL) :])
    return _nb201(name.split("-", 1)[1])


def check_benchmark_name(name: str) -> None:
    """Raise :class:`BenchError` unless ``name`` is a benchmark (without loading it)."""
    if not (name in BENCHMARKS or (name.startswith(_OFFICIAL) and len(name) > len(_OFFICIAL))):
        raise _unknown(name)


def has_training_time(name: str) -> bool:
    """Whether benchmark ``name`` reports simulated training times (the NB-101 ones)."""
    return name == "nb101" or name.startswith(_OFFICIAL)


def get_benchmark_ident(name: str) -> str:
    """A benchmark name as a folder / file name."""
    if name.startswith(_OFFICIAL):
        stem = Path(name.split(":", 1)[1]).name.split(".")[0]
        return "nb101-official-" + re.sub(r"[^A-Za-z0-9_-]+", "_", stem)
    return name
