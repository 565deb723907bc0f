"""Enumeration of the whole NAS-Bench-101 cell space, in the official order.

The order is that of google-research/nasbench ``scripts/generate_graphs.py`` (described in
``shared/nasbench101/README.md``): for V = 2..7 vertices, every bitmask over the V(V-1)/2
upper-triangle slots (edge x->y is bit ``x + y(y-1)/2``) that gives a *full DAG* (every vertex
but the output has an out-edge, every vertex but the input an in-edge) with at most 9 edges; for
each such mask, every labelling of the V-2 interior vertices in ``itertools.product(range(3),
...)`` order. A full DAG is already pruned, so its hash is the module hash of
:func:`seminas_tune.nasbench.graph.hash_module`.

The hash here is the same algorithm as ``hash_module`` (md5 Weisfeiler-Lehman labelling), made
fast for enumeration: the neighbour lists of a mask are compiled once into a small function
that updates all vertex hashes of a labelling in one call, and the first two rounds, whose
inputs repeat across the labellings of a mask, are memoised. :func:`mask_hashes` agrees with
``hash_module`` on every labelled graph (checked in the tests and by the benchmark script).

Two modes:

* ``exhaustive`` (default): every labelled graph is hashed, as in the README.
* ``by_class``: for each V, only the first mask of every class of isomorphic unlabelled masks
  (interior vertices permuted) is hashed, with all its labellings. The module hash is an
  isomorphism invariant, and every labelled graph of a mask in the class is isomorphic to a
  labelled graph of its first mask, so the set of hashes is the same; about 3x less work.

Example::

    from seminas_tune.nasbench.enumerate import count_unique
    count_unique(5)   # {2: {...}, 3: {...}, 4: {...}, 5: {'matrices': 121, 'labelled': 3267,
                      #      'unique': 2441, 'cumulative': 2532}}
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "MAX_EDGES",
    "MAX_VERTICES",
    "NUM_OPS",
    "SpaceEnumeration",
    "VertexCounts",
    "class_representatives",
    "count_unique",
    "enumerate_space",
    "full_dag_masks",
    "mask_hashes",
    "mask_to_matrix",
]

MAX_VERTICES = 7
MAX_EDGES = 9
NUM_OPS = 3  # conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3 (labels 0, 1, 2)
_INPUT, _OUTPUT = -1, -2
_MEMO_ROUNDS = 2  # rounds whose inputs repeat often enough across labellings to memoise


def _bit(x: int, y: int) -> int:
    return x + y * (y - 1) // 2


def full_dag_masks(n_vertices: int, max_edges: int = MAX_EDGES) -> list[int]:
    """Bitmasks of the full DAGs on ``n_vertices`` vertices with at most ``max_edges`` edges,
    ascending (the official order)."""
    if n_vertices < 2:
        raise ValueError(f"a cell has at least 2 vertices (input and output), got {n_vertices}")
    n_bits = n_vertices * (n_vertices - 1) // 2
    masks = np.arange(1 << n_bits, dtype=np.int64)
    popcount = np.zeros_like(masks)
    for b in range(n_bits):
        popcount += (masks >> b) & 1
    ok = popcount <= max_edges
    for x in range(n_vertices - 1):  # every vertex but the output has an out-edge
        out_bits = sum(1 << _bit(x, y) for y in range(x + 1, n_vertices))
        ok &= (masks & out_bits) != 0
    for y in range(1, n_vertices):  # every vertex but the input has an in-edge
        in_bits = sum(1 << _bit(x, y) for x in range(y))
        ok &= (masks & in_bits) != 0
    return [int(m) for m in masks[ok]]


def mask_to_matrix(mask: int, n_vertices: int) -> np.ndarray:
    """The ``n_vertices x n_vertices`` upper-triangular 0/1 adjacency of a bitmask."""
    m = np.zeros((n_vertices, n_vertices), dtype=np.int64)
    for y in range(1, n_vertices):
        for x in range(y):
            if mask >> _bit(x, y) & 1:
                m[x, y] = 1
    return m


def _neighbours(mask: int, n: int) -> tuple[list[list[int]], list[list[int]]]:
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for y in range(1, n):
        for x in range(y):
            if mask >> _bit(x, y) & 1:
                preds[y].append(x)
                succs[x].append(y)
    return preds, succs


class _Md5Memo(dict):
    """str -> md5 hex digest of it, computed on first use."""

    def __missing__(self, text: str) -> str:
        digest = self[text] = hashlib.md5(text.encode("utf-8")).hexdigest()
        return digest


def _joined(ws: Sequence[int]) -> str:
    """Source of: the hashes of vertices ``ws``, sorted and concatenated."""
    if not ws:
        return '""'
    if len(ws) == 1:
        return f"h[{ws[0]}]"
    return "J(S((" + ", ".join(f"h[{w}]" for w in ws) + ")))"


def _compile_rounds(preds: list[list[int]], succs: list[list[int]]) -> tuple[Callable, Callable]:
    """Two functions doing one hash round over all vertices of a fixed graph: through a memo
    (``memo_round(h, M)``) and directly (``round_(h)``). Unrolled per vertex, so no inner loop
    over neighbour lists remains."""
    texts = [f'{_joined(preds[v])} + "|" + {_joined(succs[v])} + "|" + h[{v}]' for v in range(len(preds))]
    src = (
        "def memo_round(h, M, J=''.join, S=sorted):\n"
        "    return [" + ", ".join(f"M[{t}]" for t in texts) + "]\n"
        "def round_(h, H=md5, J=''.join, S=sorted):\n"
        "    return [" + ", ".join(f"H(({t}).encode()).hexdigest()" for t in texts) + "]\n"
    )
    ns: dict = {"md5": hashlib.md5}
    exec(compile(src, "<nb101-hash-round>", "exec"), ns)  # noqa: S102 - generated from ints only
    return ns["memo_round"], ns["round_"]


def mask_hashes(n_vertices: int, mask: int) -> list[str]:
    """Module hashes of every labelling of a full-DAG mask, in ``itertools.product`` order.

    Equal to ``hash_module(mask_to_matrix(mask, n), [-1, *labels, -2])`` for each ``labels``.
    """
    n = n_vertices
    preds, succs = _neighbours(mask, n)
    md5 = hashlib.md5

    def initial(v: int, label: int) -> str:
        return md5(str((len(succs[v]), len(preds[v]), label)).encode("utf-8")).hexdigest()

    h_in, h_out = initial(0, _INPUT), initial(n - 1, _OUTPUT)
    interior = [[initial(v, label) for label in range(NUM_OPS)] for v in range(1, n - 1)]
    memo_round, round_ = _compile_rounds(preds, succs)
    memo = _Md5Memo()
    n_memo = min(_MEMO_ROUNDS, n)
    out = []
    for labels in itertools.product(range(NUM_OPS), repeat=n - 2):
        h = [h_in, *[choices[label] for choices, label in zip(interior, labels)], h_out]
        for _ in range(n_memo):
            h = memo_round(h, memo)
        for _ in range(n - n_memo):
            h = round_(h)
        h.sort()
        out.append(md5(str(h).encode("utf-8")).hexdigest())
    return out


def class_representatives(n_vertices: int, masks: Sequence[int]) -> list[int]:
    """The first mask of each class of isomorphic masks (interior vertices permuted; the input
    and output stay in place), in the order of ``masks``."""
    n = n_vertices
    if n <= 3 or not masks:
        return list(masks)
    adj = np.stack([mask_to_matrix(m, n) for m in masks]).astype(np.int64)
    weights = (1 << np.arange(n * n, dtype=np.int64)).reshape(n, n)
    best = None
    for perm in itertools.permutations(range(1, n - 1)):
        p = [0, *perm, n - 1]
        code = (adj[:, p][:, :, p] * weights).sum(axis=(1, 2))
        best = code if best is None else np.minimum(best, code)
    _, first = np.unique(best, return_index=True)
    return [masks[i] for i in sorted(first)]


@dataclass
class VertexCounts:
    """One row of the space table."""

    n_vertices: int
    matrices: int  # full-DAG masks with <= 9 edges
    labelled: int  # labelled graphs (masks x 3^(V-2))
    unique: int  # distinct module hashes
    cumulative: int  # distinct hashes with at most n_vertices vertices
    hashed: int = 0  # labelled graphs actually hashed (less than ``labelled`` in by_class mode)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "matrices": self.matrices,
            "labelled": self.labelled,
            "unique": self.unique,
            "cumulative": self.cumulative,
        }


@dataclass
class SpaceEnumeration:
    """Result of :func:`enumerate_space`."""

    rows: dict[int, VertexCounts]
    seconds: float
    processes: int
    mode: str
    hashes: set[str] | None = field(default=None, repr=False)

    @property
    def total(self) -> int:
        return self.rows[max(self.rows)].cumulative if self.rows else 0


def _hash_chunk(task: tuple[int, list[int]]) -> tuple[int, int, set[str]]:
    n, masks = task
    found: set[str] = set()
    for mask in masks:
        found.update(mask_hashes(n, mask))
    return n, len(masks), found


def _chunks(n: int, masks: list[int], parts: int) -> Iterable[tuple[int, list[int]]]:
    size = max(1, -(-len(masks) // parts))
    for i in range(0, len(masks), size):
        yield n, masks[i : i + size]


def enumerate_space(
    max_vertices: int = MAX_VERTICES,
    processes: int | None = None,
    keep_hashes: bool = False,
    by_class: bool = False,
    progress: Callable[[VertexCounts], None] | None = None,
) -> SpaceEnumeration:
    """Hash every cell of the NB-101 space with at most ``max_vertices`` vertices.

    Args:
        max_vertices: 2..7.
        processes: worker processes (default: the CPUs available); 1 runs in this process.
        keep_hashes: keep the set of all hashes in the result.
        by_class: hash one mask per isomorphism class (same hashes, less work; see module doc).
        progress: called with each vertex-count row when it is done.
    """
    if not 2 <= max_vertices <= MAX_VERTICES:
        raise ValueError(f"max_vertices must be in 2..{MAX_VERTICES}, got {max_vertices}")
    if processes is None:
        processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    processes = max(1, int(processes))
    start = time.perf_counter()
    pool = None
    if processes > 1:
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        pool = ctx.Pool(processes)
    rows: dict[int, VertexCounts] = {}
    all_hashes: set[str] = set()
    try:
        for n in range(2, max_vertices + 1):
            t0 = time.perf_counter()
            masks = full_dag_masks(n)
            todo = class_representatives(n, masks) if by_class else masks
            found: set[str] = set()
            tasks = list(_chunks(n, todo, 8 * processes if len(todo) > 50 else 1))
            results = pool.imap_unordered(_hash_chunk, tasks) if pool else map(_hash_chunk, tasks)
            for _, _, hashes in results:
                found |= hashes
            all_hashes |= found
            row = VertexCounts(
                n,
                len(masks),
                len(masks) * NUM_OPS ** (n - 2),
                len(found),
                len(all_hashes),
                len(todo) * NUM_OPS ** (n - 2),
                time.perf_counter() - t0,
            )
            rows[n] = row
            if progress is not None:
                progress(row)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return SpaceEnumeration(
        rows,
        time.perf_counter() - start,
        processes,
        "by_class" if by_class else "exhaustive",
        all_hashes if keep_hashes else None,
    )


def count_unique(
    max_vertices: int = MAX_VERTICES, processes: int | None = None, by_class: bool = False
) -> dict[int, dict[str, int]]:
    """Per vertex count V: ``matrices``, ``labelled``, ``unique`` and ``cumulative`` counts."""
    result = enumerate_space(max_vertices, processes=processes, by_class=by_class)
    return {n: row.as_dict() for n, row in result.rows.items()}
