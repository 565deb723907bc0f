"""Benchmark tables: NAS-Bench-101 and NAS-Bench-201 lookups.

The bundled tables (see ``docs/data.md``) are checked against ``SHA256SUMS`` when loaded.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PACKAGE_DATA = Path(__file__).resolve().parent


class OutOfDomainError(Exception):
    """A cell is outside the NB-101 space or not in the data (the official API's name)."""


class DataChecksumError(RuntimeError):
    """A data file does not match its recorded SHA-256."""


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> None:
    """Raise DataChecksumError when ``path``'s SHA-256 differs from ``expected``."""
    got = sha256_of(path)
    if got != expected:
        raise DataChecksumError(
            f"{path}: SHA-256 {got[:16]}... does not match the recorded {expected[:16]}...; "
            f"the file is corrupt or was changed: reinstall seminas-tune or restore the file"
        )


def bundled_checksums() -> dict[str, str]:
    lines = (PACKAGE_DATA / "SHA256SUMS").read_text().split("\n")
    return {name.strip(): digest for digest, name in (ln.split(None, 1) for ln in lines if ln.strip())}


def bundled_file(name: str) -> Path:
    """Path of a bundled data file, verified against SHA256SUMS."""
    path = PACKAGE_DATA / name
    verify_sha256(path, bundled_checksums()[name])
    return path


EPOCH_COLUMNS = {4: "val_acc_4", 12: "val_acc_12", 36: "val_acc_36", 108: "val_acc_108"}


@dataclass
class NASBench101Data:
    """NB-101 results in two tables.

    Attributes:
        fixed: one row per cell, indexed by module hash: ``n_vertices``, ``adjacency`` (the
            upper-triangle bits, row-major), ``ops`` (comma-separated), ``params``.
        metrics: one row per (hash, epochs, repeat): ``train_accuracy``,
            ``validation_accuracy``, ``test_accuracy``, ``training_time`` (NaN when absent).
        name: short description of the source.
        source: ``"bundled"`` or the file it was read from.
        loader: ``(function, args)`` that loads it again; pickles carry this instead of tables.
    """

    fixed: pd.DataFrame
    metrics: pd.DataFrame
    name: str = "nasbench101"
    source: str | None = None
    loader: tuple | None = None
    _by_hash: dict = field(default=None, init=False, repr=False)
    _final: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def hashes(self) -> list[str]:
        return list(self.fixed.index)

    @property
    def epochs(self) -> list[int]:
        return sorted(int(e) for e in self.metrics["epochs"].unique())

    @property
    def has_test(self) -> bool:
        return bool(self.metrics["test_accuracy"].notna().any())

    def __len__(self) -> int:
        return len(self.fixed)

    def __contains__(self, module_hash: str) -> bool:
        return module_hash in self.fixed.index

    def __reduce__(self):
        # Pickles (searcher checkpoints, Ray task payloads) carry where the data comes from,
        # not megabytes of tables; loading is cached per process.
        if self.loader is not None:
            return self.loader
        return object.__reduce__(self)

    def mean_metric(self, column: str = "validation_accuracy", epochs: int = 108) -> pd.Series:
        """Per-hash mean over repeats of ``column`` at ``epochs``."""
        m = self.metrics[self.metrics["epochs"] == epochs]
        return m.groupby("hash", sort=True)[column].mean()

    def final_results(self, epochs: int = 108) -> dict[str, dict]:
        """Per-hash arrays over repeats at ``epochs``: ``val``, ``test``, ``time`` (+ ``params``).

        Built once and cached; this is the fast path of the lookup trainables.
        """
        cached = self._final.get(epochs)
        if cached is None:
            m = self.metrics[self.metrics["epochs"] == epochs].sort_values(["hash", "repeat"])
            hashes, starts = np.unique(m["hash"].to_numpy(), return_index=True)
            cols = {
                k: np.split(m[c].to_numpy(dtype=float), starts[1:])
                for k, c in (("val", "validation_accuracy"), ("test", "test_accuracy"), ("time", "training_time"))
            }
            params = self.fixed["params"].reindex(hashes).to_numpy(dtype=float)
            cached = {
                h: {"val": cols["val"][i], "test": cols["test"][i], "time": cols["time"][i], "params": params[i]}
                for i, h in enumerate(hashes)
            }
            self._final[epochs] = cached
        return cached

    def _groups(self) -> dict:
        if self._by_hash is None:
            self._by_hash = {h: g for h, g in self.metrics.groupby("hash", sort=False)}
        return self._by_hash

    def metrics_of(self, module_hash: str) -> tuple[dict, dict]:
        """(fixed, {epochs: [repeat dicts]}) in the official API's layout.

        Raises:
            OutOfDomainError: the data has no row for ``module_hash``.
        """
        if module_hash not in self.fixed.index:
            raise OutOfDomainError(f"cell {module_hash} is not in the data ({self.name}, {len(self)} cells)")
        row = self.fixed.loc[module_hash]
        n = int(row["n_vertices"])
        matrix = np.zeros((n, n), dtype=np.int64)
        matrix[np.triu_indices(n, 1)] = [int(c) for c in row["adjacency"]]
        params = row["params"]
        fixed = {
            "module_adjacency": matrix,
            "module_operations": row["ops"].split(","),
            "trainable_parameters": None if pd.isna(params) else int(params),
        }
        computed: dict[int, list[dict]] = {}
        for r in self._groups()[module_hash].sort_values(["epochs", "repeat"]).itertuples():
            computed.setdefault(int(r.epochs), []).append(
                {
                    "final_training_time": _num(r.training_time),
                    "final_train_accuracy": _num(r.train_accuracy),
                    "final_validation_accuracy": _num(r.validation_accuracy),
                    "final_test_accuracy": _num(r.test_accuracy),
                }
            )
        return fixed, computed


def _num(x) -> float | None:
    return None if pd.isna(x) else float(x)


def nb101_from_wide(table: pd.DataFrame, name: str) -> NASBench101Data:
    """NB-101 data from the one-repeat wide table (``val_acc_4``..``val_acc_108`` columns)."""
    fixed = table.set_index("hash")[["n_vertices", "adjacency", "ops", "params"]]
    parts = []
    for epochs, col in EPOCH_COLUMNS.items():
        part = pd.DataFrame(
            {
                "hash": table["hash"].to_numpy(),
                "epochs": epochs,
                "repeat": 0,
                "train_accuracy": np.nan,
                "validation_accuracy": table[col].to_numpy(dtype=float),
                "test_accuracy": np.nan,
                "training_time": table["train_time_108"].to_numpy(dtype=float) if epochs == 108 else np.nan,
            }
        )
        parts.append(part[part["validation_accuracy"].notna()])
    return NASBench101Data(fixed, pd.concat(parts, ignore_index=True), name)


@dataclass
class NASBench201Data:
    """All 15,625 NB-201 cells at the 12-epoch budget, indexed by cell string."""

    table: pd.DataFrame
    name: str = "NB201-12ep (bundled)"

    DATASETS = ("cifar10", "cifar100", "imagenet")

    def accuracy(self, cellstr: str, dataset: str = "cifar10", split: str = "val") -> float:
        """Accuracy in percent of a cell on ``dataset`` (cifar10, cifar100, imagenet)."""
        if dataset not in self.DATASETS or split not in ("val", "test"):
            raise ValueError(f"dataset must be one of {self.DATASETS} and split 'val' or 'test'")
        return float(self.table.at[cellstr, f"{dataset}-{split}"])

    def __len__(self) -> int:
        return len(self.table)

    def __reduce__(self):
        return load_nasbench201, ()


@functools.lru_cache(maxsize=2)
def load_nasbench201() -> NASBench201Data:
    """The bundled NB-201 table (checked against its SHA-256)."""
    table = pd.read_csv(bundled_file("nb201_12epoch.csv.gz")).set_index("cellstr")
    return NASBench201Data(table)
