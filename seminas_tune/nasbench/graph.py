"""Cell-graph utilities of NAS-Bench-101: pruning and the official module hash.

The hash follows the algorithm of ``graph_util.hash_module`` in google-research/nasbench
(described in ``shared/nasbench101/README.md``): an iterated, md5-based Weisfeiler-Lehman
labelling, so isomorphic cells share one hash.
"""

from __future__ import annotations

import hashlib

import numpy as np

NB101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
"""The official ``available_ops`` order; an op's label in the hash is its index here."""


def _md5(text: str, md5=hashlib.md5) -> str:
    return md5(text.encode()).hexdigest()


def _neighbours(matrix: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
    """Predecessor and successor lists of every vertex of an adjacency matrix."""
    rows = np.asarray(matrix, dtype=np.int64).tolist()
    n = len(rows)
    return (
        [[w for w in range(n) if rows[w][v]] for v in range(n)],
        [[w for w in range(n) if rows[v][w]] for v in range(n)],
    )


def hash_module(matrix: np.ndarray, labels: list[int]) -> str:
    """Official NB-101 module hash of a (pruned) cell.

    Args:
        matrix: V x V upper-triangular 0/1 adjacency.
        labels: V integer labels: -1 input, -2 output, else the op's index in the
            canonical op list.
    """
    preds, succs = _neighbours(matrix)
    n = len(preds)
    hashes = [_md5(str((len(succs[v]), len(preds[v]), int(labels[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5("".join(sorted([hashes[w] for w in p])) + "|" + "".join(sorted([hashes[w] for w in s])) + "|" + h)
            for p, s, h in zip(preds, succs, hashes)
        ]
    return _md5(str(sorted(hashes)))


def wl_signature(matrix: np.ndarray, labels: list[int], rounds: int = 3) -> int:
    """A cheap isomorphism invariant (a few Weisfeiler-Lehman rounds over Python's integer
    hash): isomorphic cells share it, so a signature absent from a set of cells' signatures
    proves that the cell is not among them, at a fraction of :func:`hash_module`'s cost."""
    return wl_signature_of_lists(*_neighbours(matrix), labels, rounds)


def wl_signature_of_lists(preds: list[list[int]], succs: list[list[int]], labels: list[int], rounds: int = 3) -> int:
    """:func:`wl_signature` of a cell given as predecessor and successor lists."""
    h = [hash((len(s), len(p), int(label))) for p, s, label in zip(preds, succs, labels)]
    for _ in range(rounds):
        h = [
            hash((h[v], tuple(sorted([h[w] for w in p])), tuple(sorted([h[w] for w in s]))))
            for v, (p, s) in enumerate(zip(preds, succs))
        ]
    return hash(tuple(sorted(h)))


def prune(matrix: np.ndarray, ops: list[str]) -> tuple[np.ndarray, list[str]] | None:
    """Remove vertices that lie on no input->output path.

    Returns the pruned (matrix, ops), or None when the output is unreachable from the input.
    """
    m = np.asarray(matrix, dtype=np.int64)
    n = m.shape[0]
    rows = m.tolist()
    fwd = [False] * n
    fwd[0] = True
    for v in range(1, n):
        fwd[v] = any(fwd[u] and rows[u][v] for u in range(v))
    if not fwd[n - 1]:
        return None
    bwd = [False] * n
    bwd[n - 1] = True
    for v in range(n - 2, -1, -1):
        bwd[v] = any(bwd[w] and rows[v][w] for w in range(v + 1, n))
    keep = [v for v in range(n) if fwd[v] and bwd[v]]
    if len(keep) == n:
        return m.copy(), list(ops)
    return m[np.ix_(keep, keep)].copy(), [ops[i] for i in keep]


def labels_of(ops: list[str], canonical_ops: tuple[str, ...] = NB101_OPS) -> list[int]:
    """Hash labels of a cell's ops (-1 input, -2 output, index in ``canonical_ops`` else)."""
    return [-1] + [canonical_ops.index(op) for op in ops[1:-1]] + [-2]
