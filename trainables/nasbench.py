"""NAS-Bench lookup trainables: a Tune config in, the benchmark's recorded metrics out.

Every result has ``valid``. A config that describes no member of the space (a disconnected or
too large NB-101 cell, or one the data does not cover) reports ``valid=False``, its ``reason``,
and ``val_accuracy = penalty`` (default 0.0, the lowest possible accuracy), so any searcher, ours
or Tune's, can run on it. A config with missing or extra keys is a user error and raises.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from seminas_tune.data import load_nasbench101, load_nasbench201
from seminas_tune.spaces import NASBench101Space, NASBench201Space


@functools.lru_cache(maxsize=4)
def nasbench101_space(dataset_file: str | None = None) -> NASBench101Space:
    """The NB-101 space restricted to a dataset's cells (bundled table by default)."""
    return NASBench101Space(load_nasbench101(dataset_file))


@functools.lru_cache(maxsize=1)
def nasbench201_space() -> NASBench201Space:
    return NASBench201Space(load_nasbench201())


def _invalid(reason: str, penalty: float) -> dict[str, Any]:
    return {"val_accuracy": penalty, "valid": False, "reason": reason, "training_time": 0.0}


def repeat_index(key: str, repeats: int, seed: int = 0) -> int:
    """Which of a cell's ``repeats`` recorded runs :func:`evaluate_nasbench101` reports."""
    return int(np.random.default_rng([seed, zlib.crc32(key.encode())]).integers(repeats))


def nasbench101_values(space: NASBench101Space, seed: int = 0) -> np.ndarray:
    """The validation accuracy :func:`evaluate_nasbench101` reports for every cell of the table."""
    return np.array(
        [r["val"][repeat_index(k, len(r["val"]), seed)] for k, r in space.dataset.final_results().items()],
        dtype=np.float64,
    )


def evaluate_nasbench101(
    config: dict, dataset_file: str | None = None, penalty: float = 0.0, seed: int = 0
) -> dict[str, Any]:
    """Metrics of the NB-101 cell ``config`` describes (108 epochs).

    With several repeats in the data, one is drawn, seeded by ``seed`` and the cell's hash, so
    the same cell always gives the same answer within an experiment.
    """
    space = nasbench101_space(dataset_file)
    arch = space.from_config(config)
    reason = space.invalid_reason(arch)
    if reason is not None:
        return _invalid(reason, penalty)
    key = space.key(arch)
    r = space.dataset.final_results()[key]
    i = repeat_index(key, len(r["val"]), seed)
    out = {
        "val_accuracy": float(r["val"][i]),
        "val_accuracy_mean": float(np.mean(r["val"])),
        "training_time": float(r["time"][i]),
        "valid": True,
        "arch_key": key,
    }
    if not np.isnan(r["test"][i]):
        out["test_accuracy"] = float(r["test"][i])
        out["test_accuracy_mean"] = float(np.nanmean(r["test"]))
    if not np.isnan(r["params"]):
        out["params"] = int(r["params"])
    return out


def evaluate_nasbench201(config: dict, dataset: str = "cifar10", penalty: float = 0.0) -> dict[str, Any]:
    """Metrics of the NB-201 cell ``config`` describes, accuracies as fractions (0-1).

    ``training_time`` is not in the bundled table; it reports 0.
    """
    space = nasbench201_space()
    arch = space.from_config(config)
    reason = space.invalid_reason(arch)
    if reason is not None:
        return _invalid(reason, penalty)
    key = space.key(arch)
    data = space.dataset
    return {
        "val_accuracy": data.accuracy(key, dataset, "val") / 100.0,
        "test_accuracy": data.accuracy(key, dataset, "test") / 100.0,
        "training_time": 0.0,
        "valid": True,
        "arch_key": key,
    }


def _as_trainable(evaluate: Callable[[dict], dict], name: str) -> Callable[[dict], None]:
    def trainable(config: dict) -> None:
        from seminas_tune.search.resume import report_final

        report_final(evaluate(config), config)

    trainable.__name__ = trainable.__qualname__ = name
    return trainable


def make_nasbench101_trainable(
    dataset_file: str | None = None, penalty: float = 0.0, seed: int = 0
) -> Callable[[dict], None]:
    """A Tune function trainable over NB-101 (an official tfrecord, or the bundled table)."""
    return _as_trainable(
        functools.partial(evaluate_nasbench101, dataset_file=dataset_file, penalty=penalty, seed=seed),
        "nasbench101",
    )


def make_nasbench201_trainable(dataset: str = "cifar10", penalty: float = 0.0) -> Callable[[dict], None]:
    """A Tune function trainable over NB-201 (``cifar10``, ``cifar100`` or ``imagenet``)."""
    return _as_trainable(
        functools.partial(evaluate_nasbench201, dataset=dataset, penalty=penalty), f"nasbench201_{dataset}"
    )


def nasbench101_trainable(config: dict) -> None:
    """Tune function trainable over the bundled NB101-30k table."""
    from seminas_tune.search.resume import report_final

    report_final(evaluate_nasbench101(config), config)


def nasbench201_trainable(config: dict) -> None:
    """Tune function trainable over the bundled NB-201 CIFAR-10 table."""
    from seminas_tune.search.resume import report_final

    report_final(evaluate_nasbench201(config), config)
