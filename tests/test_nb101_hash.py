"""The NB-101 module hash, pruning and the space enumeration against the shared real data.

``shared/nasbench101/nb101_30k.parquet`` holds 30,267 real cells with their official module
hashes; its README gives the per-vertex counts of the whole space.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seminas_tune.nasbench.api import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT, ModelSpec
from seminas_tune.nasbench.enumerate import (
    class_representatives,
    enumerate_space,
    full_dag_masks,
    mask_hashes,
    mask_to_matrix,
)
from seminas_tune.nasbench.graph import hash_module, labels_of, prune

SHARED = Path(__file__).parents[1].parent / "shared" / "nasbench101"
TABLE = SHARED / "nb101_30k.parquet"

# shared/nasbench101/README.md, "The space, by vertex count": V -> (matrices, labelled, unique, cumulative)
README_COUNTS = {
    2: (1, 1, 1, 1),
    3: (2, 6, 6, 7),
    4: (10, 90, 84, 91),
    5: (121, 3_267, 2_441, 2_532),
    6: (1_545, 125_145, 62_010, 64_542),
}

needs_shared = pytest.mark.skipif(not TABLE.exists(), reason=f"shared data not found at {TABLE}")


def _matrix(n: int, bits: str) -> np.ndarray:
    m = np.zeros((n, n), dtype=np.int64)
    m[np.triu_indices(n, 1)] = [int(c) for c in bits]
    return m


@needs_shared
def test_every_shared_row_rehashes_to_its_hash():
    table = pd.read_parquet(TABLE, columns=["hash", "n_vertices", "adjacency", "ops"])
    assert len(table) == 30_267
    bad = []
    for h, n, adjacency, ops in table.itertuples(index=False):
        ops = ops.split(",")
        matrix = _matrix(n, adjacency)
        assert len(adjacency) == n * (n - 1) // 2 and len(ops) == n
        if hash_module(matrix, labels_of(ops)) != h:
            bad.append(h)
    assert not bad, f"{len(bad)} rows do not re-hash to their hash, e.g. {bad[:3]}"


@needs_shared
@pytest.mark.parametrize("source", ["table", "space"])
def test_stored_graphs_are_pruned(source):
    """``spec_of_hash`` builds specs without re-pruning (``ModelSpec.of_pruned``): every stored
    graph, of the table and of the bundled list of the whole space, must be its own pruned cell."""
    from seminas_tune.spaces.nasbench101 import NASBench101Space
    from trainables.nasbench import nasbench101_space

    space = nasbench101_space() if source == "table" else NASBench101Space(dataset=None)
    space.sample(np.random.default_rng(0))  # loads the stored graphs
    not_pruned = []
    for h in space._members:
        spec = space.spec_of_hash(str(h))
        pruned = prune(spec.matrix, spec.ops)
        if pruned is None or not np.array_equal(pruned[0], spec.matrix) or pruned[1] != spec.ops:
            not_pruned.append(h)
    assert len(space._members) == (30_001 if source == "table" else 423_624)
    assert not not_pruned, f"{len(not_pruned)} stored graphs are not pruned, e.g. {not_pruned[:3]}"
    checked = ModelSpec(spec.original_matrix, spec.original_ops)
    assert np.array_equal(checked.matrix, spec.matrix) and checked.ops == spec.ops and spec.valid_spec


@needs_shared
def test_shared_rows_are_pruned_and_accepted_by_modelspec():
    table = pd.read_parquet(TABLE, columns=["hash", "n_vertices", "adjacency", "ops"]).iloc[::97]
    for h, n, adjacency, ops in table.itertuples(index=False):
        spec = ModelSpec(_matrix(n, adjacency), ops.split(","))
        assert spec.valid_spec
        assert np.array_equal(spec.matrix, spec.original_matrix)  # already pruned
        assert spec.hash_spec() == h


def test_known_hash_of_the_trivial_cell():
    # input -> output, the cell the NASLib README note calls 043721b9...
    assert hash_module(np.array([[0, 1], [0, 0]]), [-1, -2]).startswith("043721b9")


def test_enumeration_counts_up_to_six_vertices_match_the_readme():
    result = enumerate_space(6, processes=2)
    got = {n: (r.matrices, r.labelled, r.unique, r.cumulative) for n, r in result.rows.items()}
    assert got == README_COUNTS
    assert all(r.hashed == r.labelled for r in result.rows.values())  # exhaustive mode


def test_by_class_mode_hashes_less_and_finds_the_same_hashes():
    full = enumerate_space(5, processes=1, keep_hashes=True)
    fast = enumerate_space(5, processes=1, keep_hashes=True, by_class=True)
    assert fast.hashes == full.hashes and len(full.hashes) == 2_532
    assert fast.rows[5].hashed < full.rows[5].hashed


def test_full_dag_masks_and_representatives():
    assert full_dag_masks(3) == [0b101, 0b111]  # in->1->out (bits 0, 2), plus the in->out skip (bit 1)
    masks7 = full_dag_masks(7)
    assert len(masks7) == 4_793 and masks7 == sorted(masks7)
    for mask in masks7[::500]:
        m = mask_to_matrix(mask, 7)
        assert m.sum() <= 9 and m[:-1].sum(axis=1).all() and m[:, 1:].sum(axis=0).all()
    assert class_representatives(4, full_dag_masks(4)) == full_dag_masks(4)  # no two isomorphic
    reps = class_representatives(5, full_dag_masks(5))
    assert len(reps) == 97 and reps == sorted(reps) and set(reps) < set(full_dag_masks(5))
    with pytest.raises(ValueError, match="at least 2 vertices"):
        full_dag_masks(1)


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_fast_enumeration_hash_equals_hash_module(n):
    rng = np.random.default_rng(n)
    masks = full_dag_masks(n)
    for mask in rng.choice(masks, size=3, replace=False):
        fast = mask_hashes(n, int(mask))
        m = mask_to_matrix(int(mask), n)
        labellings = list(itertools.product(range(3), repeat=n - 2))
        assert len(fast) == len(labellings)
        for i in rng.choice(len(labellings), size=min(15, len(labellings)), replace=False):
            assert fast[i] == hash_module(m, [-1, *labellings[i], -2])


def _permute(matrix: np.ndarray, ops: list[str], perm: list[int]) -> tuple[np.ndarray, list[str]]:
    """Relabel vertex i as perm[i]; returns an upper-triangular matrix when perm is topological."""
    n = len(ops)
    new = np.zeros_like(matrix)
    new_ops = [None] * n
    for i in range(n):
        new_ops[perm[i]] = ops[i]
        for j in range(n):
            if matrix[i, j]:
                new[perm[i], perm[j]] = 1
    return new, new_ops


def test_isomorphic_cells_share_a_hash():
    # in -> a, in -> b, a -> out, b -> out, a -> c, c -> out : a and b independent branches
    m = np.array(
        [
            [0, 1, 1, 0, 0],
            [0, 0, 0, 1, 1],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0],
        ]
    )
    ops = [INPUT, CONV3X3, MAXPOOL3X3, CONV1X1, OUTPUT]
    h = ModelSpec(m, ops).hash_spec()
    seen = 0
    for perm in itertools.permutations(range(1, 4)):
        p = [0, *perm, 4]
        m2, ops2 = _permute(m, ops, p)
        if np.tril(m2).any():
            continue  # not a topological order: not expressible as an upper-triangular matrix
        seen += 1
        assert ModelSpec(m2, ops2).hash_spec() == h
    assert seen >= 2
    # ... and a different op on one vertex changes it
    other = ModelSpec(m, [INPUT, CONV3X3, MAXPOOL3X3, CONV3X3, OUTPUT]).hash_spec()
    assert other != h
    # swapping the ops of two non-equivalent vertices changes it too
    assert ModelSpec(m, [INPUT, MAXPOOL3X3, CONV3X3, CONV1X1, OUTPUT]).hash_spec() != h


def test_prune_removes_dead_ends_and_unreachable_vertices():
    # vertex 2 has no path to the output, vertex 3 no path from the input
    m = np.array(
        [
            [0, 1, 1, 0, 0],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0],
        ]
    )
    ops = [INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, OUTPUT]
    pm, pops = prune(m, ops)
    assert pops == [INPUT, CONV3X3, OUTPUT]
    assert pm.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    spec = ModelSpec(m, ops)
    assert spec.hash_spec() == ModelSpec(pm, pops).hash_spec()
    assert spec.original_matrix.shape == (5, 5)


def test_prune_returns_none_when_output_unreachable():
    m = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    assert prune(m, [INPUT, CONV3X3, OUTPUT]) is None
    assert not ModelSpec(m, [INPUT, CONV3X3, OUTPUT]).valid_spec


def test_prune_keeps_a_full_dag_unchanged():
    m = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    pm, pops = prune(m, [INPUT, CONV3X3, OUTPUT])
    assert np.array_equal(pm, m) and pops == [INPUT, CONV3X3, OUTPUT]


def test_labels_of_uses_the_official_op_order():
    assert labels_of([INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, OUTPUT]) == [-1, 0, 1, 2, -2]
    with pytest.raises(ValueError):
        labels_of([INPUT, "conv5x5", OUTPUT])
