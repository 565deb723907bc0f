"""A TensorFlow-free drop-in for google-research's ``nasbench.api``.

Change ``from nasbench import api`` to ``from seminas_tune.nasbench import api`` and a NB-101
script runs unchanged::

    nb = api.NASBench("nasbench_only108.tfrecord")   # or api.NASBench() for the bundled table
    spec = api.ModelSpec(matrix=[[0, 1, 1], [0, 0, 1], [0, 0, 0]],
                         ops=[api.INPUT, api.CONV3X3, api.OUTPUT])
    nb.query(spec)["validation_accuracy"]
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from seminas_tune.data.tables import OutOfDomainError
from seminas_tune.data.tfrecord import load_nasbench101
from seminas_tune.nasbench.graph import NB101_OPS, hash_module, labels_of, prune

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
MAX_VERTICES = 7
MAX_EDGES = 9


class ModelSpec:
    """A NB-101 cell: adjacency ``matrix`` and vertex ``ops``, pruned on construction.

    ``original_matrix``/``original_ops`` keep the input; ``matrix``/``ops`` are the pruned cell,
    or None with ``valid_spec`` False when the output cannot be reached from the input.

    Raises:
        ValueError: the matrix is not square, not 0/1, not upper triangular, or its size does
            not match ``ops``.
    """

    matrix: Any  # np.ndarray, or None for an invalid cell (as in the official API)
    ops: Any  # list[str], or None likewise
    _key: str  # the module hash, cached by NASBench101Space.key

    def __init__(self, matrix: Any, ops: list[str], data_format: str = "channels_last"):
        m = np.array(matrix)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"matrix must be square, got shape {m.shape}")
        if m.shape[0] != len(ops):
            raise ValueError(f"length of ops ({len(ops)}) must match matrix dimensions ({m.shape[0]})")
        if not ((m == 0) | (m == 1)).all():
            raise ValueError("matrix entries must be 0 or 1")
        m = m.astype(np.int64)
        if np.tril(m).any():
            raise ValueError("matrix must be upper triangular (edges only go from a vertex to a later one)")
        self.original_matrix = m.copy()
        self.original_ops = list(ops)
        self.data_format = data_format
        pruned = prune(m, list(ops)) if m.shape[0] >= 2 else None
        if pruned is None:
            self.matrix, self.ops, self.valid_spec = None, None, False
        else:
            self.matrix, self.ops = pruned
            self.valid_spec = True

    @classmethod
    def of_pruned(cls, matrix: np.ndarray, ops: list[str]) -> ModelSpec:
        """A spec from a cell already known to be valid and pruned (a stored NB-101 graph),
        without re-checking it: five times faster, for sampling thousands of cells."""
        spec = cls.__new__(cls)
        spec.original_matrix, spec.original_ops = matrix.copy(), list(ops)
        spec.matrix, spec.ops, spec.valid_spec = matrix, list(ops), True
        spec.data_format = "channels_last"
        return spec

    def hash_spec(self, canonical_ops: list[str] | tuple[str, ...] = NB101_OPS) -> str:
        """Official module hash of the pruned cell (isomorphic cells share it)."""
        if not self.valid_spec:
            raise OutOfDomainError("invalid spec: the output is not reachable from the input")
        return hash_module(self.matrix, labels_of(self.ops, tuple(canonical_ops)))

    def __repr__(self) -> str:
        return f"ModelSpec(matrix={self.original_matrix.tolist()}, ops={self.original_ops})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ModelSpec)
            and np.array_equal(self.original_matrix, other.original_matrix)
            and self.original_ops == other.original_ops
        )

    def __hash__(self) -> int:
        return hash((self.original_matrix.tobytes(), tuple(self.original_ops)))


def check_spec(spec: ModelSpec) -> None:
    """Raise OutOfDomainError with the reason when ``spec`` is outside the NB-101 space."""
    if not spec.valid_spec:
        raise OutOfDomainError("invalid spec: the output is not reachable from the input")
    n = len(spec.ops)
    if n > MAX_VERTICES:
        raise OutOfDomainError(f"too many vertices: {n} > {MAX_VERTICES}")
    edges = int(spec.matrix.sum())
    if edges > MAX_EDGES:
        raise OutOfDomainError(f"too many edges: {edges} > {MAX_EDGES}")
    if spec.ops[0] != INPUT:
        raise OutOfDomainError(f"first op must be '{INPUT}', got {spec.ops[0]!r}")
    if spec.ops[-1] != OUTPUT:
        raise OutOfDomainError(f"last op must be '{OUTPUT}', got {spec.ops[-1]!r}")
    for op in spec.ops[1:-1]:
        if op not in NB101_OPS:
            raise OutOfDomainError(f"unknown op {op!r}: interior ops must be one of {NB101_OPS}")


class NASBench:
    """The official query API over a NB-101 dataset.

    Args:
        dataset_file: an official ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord``
            (converted once to a columnar cache beside it), a cache written by this package, or
            None for the bundled 30,001-cell table.
        seed: seed of the repeat drawn by ``query`` when the data holds several.
    """

    def __init__(self, dataset_file: str | None = None, seed: int | None = None):

        self.dataset = load_nasbench101(dataset_file)
        self._rng = random.Random(seed)
        self.valid_epochs = set(self.dataset.epochs)
        self.reset_budget_counters()

    def reset_budget_counters(self) -> None:
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    def get_budget_counters(self) -> tuple[float, int]:
        return self.training_time_spent, self.total_epochs_spent

    def is_valid(self, model_spec: ModelSpec) -> bool:
        """True when the spec is inside the NB-101 space (not whether the data covers it)."""
        try:
            check_spec(model_spec)
        except OutOfDomainError:
            return False
        return True

    def query(self, model_spec: ModelSpec, epochs: int = 108, stop_halfway: bool = False) -> dict:
        """Metrics of one (randomly drawn) training repeat of the cell.

        Raises:
            OutOfDomainError: invalid spec, epochs not in the data, or cell not in the data.
        """
        if epochs not in self.valid_epochs:
            raise OutOfDomainError(f"invalid number of epochs {epochs}: the data has {sorted(self.valid_epochs)}")
        if stop_halfway:
            raise OutOfDomainError("stop_halfway metrics are not stored in this dataset")
        fixed, computed = self.get_metrics_from_spec(model_spec)
        repeats = computed[epochs]
        run = repeats[self._rng.randint(0, len(repeats) - 1)]
        self.training_time_spent += run["final_training_time"] or 0.0
        self.total_epochs_spent += epochs
        return {
            "module_adjacency": fixed["module_adjacency"],
            "module_operations": fixed["module_operations"],
            "trainable_parameters": fixed["trainable_parameters"],
            "training_time": run["final_training_time"],
            "train_accuracy": run["final_train_accuracy"],
            "validation_accuracy": run["final_validation_accuracy"],
            "test_accuracy": run["final_test_accuracy"],
        }

    def get_metrics_from_hash(self, module_hash: str) -> tuple[dict, dict]:
        """(fixed statistics, {epochs: [per-repeat statistics]}) of a module hash."""
        return self.dataset.metrics_of(module_hash)

    def get_metrics_from_spec(self, model_spec: ModelSpec) -> tuple[dict, dict]:
        check_spec(model_spec)
        return self.get_metrics_from_hash(model_spec.hash_spec())

    def hash_iterator(self) -> Iterator[str]:
        return iter(self.dataset.hashes)
