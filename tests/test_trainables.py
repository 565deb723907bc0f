"""NAS-Bench lookup trainables (called directly, without Ray)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seminas_tune.data import load_nasbench201
from seminas_tune.data.tables import PACKAGE_DATA
from seminas_tune.nasbench.api import CONV3X3, INPUT, OUTPUT
from seminas_tune.spaces import InvalidConfigError, NASBench101Space
from seminas_tune.spaces.nasbench101 import make_spec
from seminas_tune.spaces.nasbench201 import from_string
from trainables.nasbench import evaluate_nasbench101, evaluate_nasbench201, nasbench101_space, nasbench201_space

TOP_HASH = "096f593e0f12d65f6220bf8565b764a9"  # README rank 1, val_acc_108 0.94912


@pytest.fixture(scope="module")
def table():
    return pd.read_parquet(PACKAGE_DATA / "nb101_30k.parquet").set_index("hash")


def _config_of_row(row) -> dict:
    n = int(row["n_vertices"])
    m = np.zeros((n, n), dtype=int)
    m[np.triu_indices(n, 1)] = [int(c) for c in row["adjacency"]]
    return NASBench101Space().to_config(make_spec(m, row["ops"].split(",")))


def test_nb101_valid_configs_give_the_table_values(table):
    for h in [TOP_HASH, *table.index[::5000]]:
        row = table.loc[h]
        out = evaluate_nasbench101(_config_of_row(row))
        assert out["valid"] is True and out["arch_key"] == h
        assert out["val_accuracy"] == pytest.approx(row["val_acc_108"])
        assert out["val_accuracy_mean"] == pytest.approx(row["val_acc_108"])  # one repeat
        assert out["training_time"] == pytest.approx(row["train_time_108"])
        assert out["params"] == int(row["params"])
        assert "test_accuracy" not in out  # the bundled table has none
    assert evaluate_nasbench101(_config_of_row(table.loc[TOP_HASH]))["val_accuracy"] == pytest.approx(0.94912, abs=1e-5)


def test_nb101_isomorphic_configs_give_the_same_result(table):
    row = table.loc[TOP_HASH]
    cfg = _config_of_row(row)
    a = evaluate_nasbench101(cfg)
    assert evaluate_nasbench101(dict(reversed(list(cfg.items())))) == a  # key order does not matter
    assert a == evaluate_nasbench101(cfg, seed=123)  # one repeat: the seed cannot change it


def test_nb101_disconnected_cell_is_invalid_with_penalty():
    cfg = NASBench101Space().to_config(make_spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT]))
    cfg = {k: (0 if k.startswith("edge_") else v) for k, v in cfg.items()}  # no edges at all
    out = evaluate_nasbench101(cfg, penalty=-1.0)
    assert out["valid"] is False
    assert out["val_accuracy"] == -1.0
    assert "not reachable" in out["reason"]
    assert evaluate_nasbench101(cfg)["val_accuracy"] == 0.0  # default penalty


def test_nb101_too_many_edges_is_invalid():
    cfg = {
        k: (1 if k.startswith("edge_") else v)
        for k, v in NASBench101Space().to_config(nasbench101_space().sample(np.random.default_rng(0))).items()
    }
    out = evaluate_nasbench101(cfg, penalty=0.05)
    assert out == {"val_accuracy": 0.05, "valid": False, "reason": "too many edges: 21 > 9", "training_time": 0.0}


def test_nb101_uncovered_cell_is_invalid_with_reason(table):
    full = NASBench101Space()
    rng = np.random.default_rng(3)
    arch = next(a for a in (full.sample(rng) for _ in range(200)) if full.key(a) not in table.index)
    out = evaluate_nasbench101(full.to_config(arch), penalty=-2.0)
    assert out["valid"] is False and out["val_accuracy"] == -2.0
    assert f"cell {full.key(arch)} is not covered by the data" in out["reason"]


def test_nb101_bad_keys_raise(table):
    cfg = _config_of_row(table.loc[TOP_HASH])
    with pytest.raises(InvalidConfigError, match=r"missing keys \['op_3'\]"):
        evaluate_nasbench101({k: v for k, v in cfg.items() if k != "op_3"})
    with pytest.raises(InvalidConfigError, match=r"extra keys \['lr'\]"):
        evaluate_nasbench101({**cfg, "lr": 0.1})
    with pytest.raises(InvalidConfigError, match="edge_0_1=2"):
        evaluate_nasbench101({**cfg, "edge_0_1": 2})


def test_nb201_valid_configs_give_the_table_values():
    data = load_nasbench201()
    space = nasbench201_space()
    for cellstr in data.table.index[::3000]:
        cfg = space.to_config(from_string(cellstr))
        for dataset, prefix in (("cifar10", "cifar10"), ("cifar100", "cifar100"), ("imagenet", "imagenet")):
            out = evaluate_nasbench201(cfg, dataset=dataset)
            assert out["valid"] is True and out["arch_key"] == cellstr
            assert out["val_accuracy"] == pytest.approx(data.table.at[cellstr, f"{prefix}-val"] / 100)
            assert out["test_accuracy"] == pytest.approx(data.table.at[cellstr, f"{prefix}-test"] / 100)
            assert 0 <= out["val_accuracy"] <= 1


def test_nb201_best_cell_and_bad_dataset():
    data = load_nasbench201()
    best = data.table["cifar10-test"].idxmax()
    out = evaluate_nasbench201(nasbench201_space().to_config(from_string(best)))
    assert out["test_accuracy"] == pytest.approx(0.8916, abs=1e-4)  # shared README: max 89.16
    with pytest.raises(ValueError, match="dataset must be one of"):
        evaluate_nasbench201(nasbench201_space().to_config(from_string(best)), dataset="svhn")


def test_nb201_bad_keys_raise():
    cfg = nasbench201_space().to_config(("none",) * 6)
    with pytest.raises(InvalidConfigError, match=r"missing keys \['edge_1_0'\]"):
        evaluate_nasbench201({k: v for k, v in cfg.items() if k != "edge_1_0"})
    with pytest.raises(InvalidConfigError, match=r"extra keys \['edge_4_0'\]"):
        evaluate_nasbench201({**cfg, "edge_4_0": "none"})
    with pytest.raises(InvalidConfigError, match="conv_7x7"):
        evaluate_nasbench201({**cfg, "edge_1_0": "conv_7x7"})
