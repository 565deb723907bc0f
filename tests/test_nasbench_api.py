"""``seminas_tune.nasbench.api`` as a drop-in for google-research ``nasbench.api``, on the
bundled NB101-30k table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seminas_tune.data.tables import PACKAGE_DATA
from seminas_tune.nasbench import api

# The top cell of the bundled table by val_acc_108 (shared/nasbench101/README.md, rank 1).
TOP_HASH = "096f593e0f12d65f6220bf8565b764a9"


@pytest.fixture(scope="module")
def nb():
    return api.NASBench()


@pytest.fixture(scope="module")
def table():
    return pd.read_parquet(PACKAGE_DATA / "nb101_30k.parquet").set_index("hash")


def _spec_of_row(row) -> api.ModelSpec:
    n = int(row["n_vertices"])
    m = np.zeros((n, n), dtype=int)
    m[np.triu_indices(n, 1)] = [int(c) for c in row["adjacency"]]
    return api.ModelSpec(matrix=m.tolist(), ops=row["ops"].split(","))


def _chain(ops_inner, extra_edges=()):
    """input -> v1 -> ... -> output chain with optional extra edges."""
    n = len(ops_inner) + 2
    m = np.zeros((n, n), dtype=int)
    for i in range(n - 1):
        m[i, i + 1] = 1
    for i, j in extra_edges:
        m[i, j] = 1
    return api.ModelSpec(m, [api.INPUT, *ops_inner, api.OUTPUT])


def test_query_returns_the_table_values(nb, table):
    row = table.loc[TOP_HASH]
    spec = _spec_of_row(row)
    assert nb.is_valid(spec)
    assert spec.hash_spec() == TOP_HASH
    data = nb.query(spec)
    for key in (
        "validation_accuracy",
        "training_time",
        "trainable_parameters",
        "test_accuracy",
        "train_accuracy",
        "module_adjacency",
        "module_operations",
    ):
        assert key in data
    assert data["validation_accuracy"] == pytest.approx(row["val_acc_108"])
    assert data["validation_accuracy"] == pytest.approx(0.94912, abs=1e-5)
    assert data["training_time"] == pytest.approx(row["train_time_108"])
    assert data["trainable_parameters"] == int(row["params"]) == 31_552_906
    assert data["test_accuracy"] is None  # the bundled table has no test accuracy
    assert np.array_equal(data["module_adjacency"], spec.matrix)
    assert data["module_operations"] == spec.ops


def test_query_other_epoch_budgets(nb, table):
    row = table.loc[TOP_HASH]
    spec = _spec_of_row(row)
    assert nb.valid_epochs == {4, 12, 36, 108}
    for epochs in (4, 12, 36):
        assert nb.query(spec, epochs=epochs)["validation_accuracy"] == pytest.approx(row[f"val_acc_{epochs}"])
    with pytest.raises(api.OutOfDomainError, match="epochs"):
        nb.query(spec, epochs=200)


def test_budget_counters_count_queries(table):
    nb = api.NASBench()
    spec = _spec_of_row(table.loc[TOP_HASH])
    nb.reset_budget_counters()
    nb.query(spec)
    assert nb.get_budget_counters() == (pytest.approx(table.loc[TOP_HASH, "train_time_108"]), 108)
    nb.reset_budget_counters()
    assert nb.get_budget_counters() == (0.0, 0)


def test_query_at_a_budget_without_training_time(table):
    """The bundled table has no training time at 4/12/36 epochs: query reports None and
    does not crash (it raised TypeError adding None to the time counter)."""
    nb = api.NASBench()
    spec = _spec_of_row(table.loc[TOP_HASH])
    data = nb.query(spec, epochs=12)
    assert data["training_time"] is None
    assert data["validation_accuracy"] == pytest.approx(table.loc[TOP_HASH, "val_acc_12"])
    assert nb.get_budget_counters() == (0.0, 12)


def test_isomorphic_specs_query_the_same_cell(nb, table):
    # The table stores one labelled graph per hash; a relabelled (isomorphic) spec finds it too.
    row = table.loc["0b43c21229ac5d396d87870f4edbbe58"]  # README rank 3, 6 vertices
    spec = _spec_of_row(row)
    m, ops = spec.matrix, spec.ops
    n = len(ops)
    rng = np.random.default_rng(0)
    found = 0
    for _ in range(200):
        perm = [0, *(rng.permutation(n - 2) + 1), n - 1]
        m2 = np.zeros_like(m)
        m2[np.ix_(perm, perm)] = m
        if np.tril(m2).any():
            continue
        ops2 = [None] * n
        for i, p in enumerate(perm):
            ops2[p] = ops[i]
        found += 1
        spec2 = api.ModelSpec(m2, ops2)
        assert nb.query(spec2)["validation_accuracy"] == pytest.approx(row["val_acc_108"])
    assert found > 0


def test_is_valid_rejects_cells_outside_the_space(nb):
    assert nb.is_valid(_chain([api.CONV3X3, api.CONV1X1, api.MAXPOOL3X3]))
    # 10 edges after pruning
    dense = np.triu(np.ones((7, 7), dtype=int), 1)
    keep = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 4), (2, 5), (3, 4), (4, 5), (5, 6), (3, 6)]
    m = np.zeros_like(dense)
    for i, j in keep:
        m[i, j] = 1
    spec10 = api.ModelSpec(m, [api.INPUT] + [api.CONV3X3] * 5 + [api.OUTPUT])
    assert spec10.valid_spec and spec10.matrix.sum() == 10
    assert not nb.is_valid(spec10)
    # 8 vertices
    assert not nb.is_valid(_chain([api.CONV3X3] * 6))
    # an unknown op
    assert not nb.is_valid(_chain(["conv5x5-bn-relu"]))
    # disconnected: no path from input to output
    m = np.zeros((4, 4), dtype=int)
    m[0, 1] = m[2, 3] = 1
    disconnected = api.ModelSpec(m, [api.INPUT, api.CONV3X3, api.CONV1X1, api.OUTPUT])
    assert not disconnected.valid_spec
    assert not nb.is_valid(disconnected)


def test_pruning_can_make_a_spec_valid(nb):
    # 10 edges before pruning, but the dead-end vertex 5 takes 3 of them away
    m = np.zeros((7, 7), dtype=int)
    for i, j in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (0, 5), (1, 5), (2, 5), (0, 6), (1, 6)]:
        m[i, j] = 1
    spec = api.ModelSpec(m, [api.INPUT] + [api.CONV3X3] * 5 + [api.OUTPUT])
    assert spec.original_matrix.sum() == 10
    assert len(spec.ops) == 6 and spec.matrix.sum() == 7
    assert nb.is_valid(spec)


def test_query_errors_say_why(nb):
    with pytest.raises(api.OutOfDomainError, match="too many vertices: 8 > 7"):
        nb.query(_chain([api.CONV3X3] * 6))
    with pytest.raises(api.OutOfDomainError, match="unknown op 'conv5x5-bn-relu'"):
        nb.query(_chain(["conv5x5-bn-relu"]))
    m = np.zeros((3, 3), dtype=int)
    m[0, 1] = 1
    with pytest.raises(api.OutOfDomainError, match="not reachable"):
        nb.query(api.ModelSpec(m, [api.INPUT, api.CONV3X3, api.OUTPUT]))
    # valid, but not one of the 30,001 bundled cells
    hashes = set(nb.hash_iterator())
    rng = np.random.default_rng(1)
    ops_all = [api.CONV3X3, api.CONV1X1, api.MAXPOOL3X3]
    for _ in range(100):
        spec = _chain(list(rng.choice(ops_all, size=5)), extra_edges=[(0, 2), (1, 4), (2, 6)])
        if nb.is_valid(spec) and spec.hash_spec() not in hashes:
            break
    else:
        pytest.fail("no uncovered valid cell found")
    with pytest.raises(api.OutOfDomainError, match=f"{spec.hash_spec()} is not in the data"):
        nb.query(spec)


def test_get_metrics_from_hash(nb, table):
    fixed, computed = nb.get_metrics_from_hash(TOP_HASH)
    assert set(computed) == {4, 12, 36, 108}
    assert len(computed[108]) == 1  # one repeat per cell in the bundled table
    assert computed[108][0]["final_validation_accuracy"] == pytest.approx(table.loc[TOP_HASH, "val_acc_108"])
    assert fixed["trainable_parameters"] == 31_552_906
    assert api.ModelSpec(fixed["module_adjacency"], fixed["module_operations"]).hash_spec() == TOP_HASH
    with pytest.raises(api.OutOfDomainError, match="not in the data"):
        nb.get_metrics_from_hash("0" * 32)


def test_hash_iterator_covers_the_bundled_table(nb, table):
    hashes = list(nb.hash_iterator())
    assert len(hashes) == len(set(hashes)) == 30_001
    assert set(hashes) == set(table.index)


def test_modelspec_keeps_original_and_compares_by_value():
    m = [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    a = api.ModelSpec(m, [api.INPUT, api.CONV3X3, api.OUTPUT])
    b = api.ModelSpec(np.array(m), [api.INPUT, api.CONV3X3, api.OUTPUT])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != api.ModelSpec(m, [api.INPUT, api.CONV1X1, api.OUTPUT])
    assert a.original_matrix.tolist() == m and a.original_ops == [api.INPUT, api.CONV3X3, api.OUTPUT]
    assert a.hash_spec() == a.hash_spec([api.CONV3X3, api.CONV1X1, api.MAXPOOL3X3])


@pytest.mark.parametrize(
    "matrix, ops, message",
    [
        ([[0, 1, 0], [1, 0, 1], [0, 0, 0]], [api.INPUT, api.CONV3X3, api.OUTPUT], "upper triangular"),
        ([[0, 1, 1], [0, 0, 1]], [api.INPUT, api.CONV3X3, api.OUTPUT], "square"),
        ([0, 1, 1], [api.INPUT, api.OUTPUT], "square"),
        ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [api.INPUT, api.OUTPUT], r"length of ops \(2\) must match"),
        ([[0, 2, 1], [0, 0, 1], [0, 0, 0]], [api.INPUT, api.CONV3X3, api.OUTPUT], "0 or 1"),
    ],
)
def test_bad_input_raises_value_error(matrix, ops, message):
    with pytest.raises(ValueError, match=message):
        api.ModelSpec(matrix, ops)
