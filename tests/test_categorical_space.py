"""CategoricalSpace: Tune domains as finite decisions, hooks, nested configs, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ray import tune

from seminas_tune.spaces import CategoricalSpace, NASBench201Space
from seminas_tune.spaces.nasbench201 import NB201_OPS


def test_domains_become_grids():
    space = CategoricalSpace(
        {
            "c": tune.choice(["a", "b"]),
            "i": tune.randint(1, 5),
            "qi": tune.qrandint(2, 10, 2),
            "wide": tune.randint(0, 1000),
            "log_i": tune.lograndint(1, 1025),
            "u": tune.uniform(0.0, 1.0),
            "lu": tune.loguniform(1e-4, 1e-1),
            "qu": tune.quniform(0.0, 1.0, 0.25),
            "qlu": tune.qloguniform(1e-3, 1.0, 1e-3),
        },
        resolution=4,
    )
    ch = space.choices()
    assert ch["c"] == ["a", "b"] and ch["i"] == [1, 2, 3, 4] and ch["qi"] == [2, 4, 6, 8, 10]
    assert len(ch["wide"]) == 4 and ch["wide"][0] == 0 and ch["wide"][-1] == 999
    assert ch["log_i"] == [1, 10, 102, 1024]  # log-spaced
    assert ch["u"] == [0.0, 1 / 3, 2 / 3, 1.0] or np.allclose(ch["u"], [0, 1 / 3, 2 / 3, 1])
    assert np.allclose(ch["lu"], [1e-4, 1e-3, 1e-2, 1e-1])
    assert ch["qu"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert ch["qlu"][0] == 0.001 and ch["qlu"][-1] == 1.0 and len(ch["qlu"]) == 4
    assert all(isinstance(v, int) for v in ch["i"] + ch["wide"]) and all(isinstance(v, float) for v in ch["u"])


@pytest.mark.parametrize(
    "entry, words",
    [
        ({"model": {"depth": tune.randn(0, 1)}}, ["'model/depth'", "unbounded"]),
        ({"lr": tune.grid_search([0.1, 0.01])}, ["'lr'", "grid_search", "tune.choice"]),
        ({"f": tune.sample_from(lambda spec: 1)}, ["'f'", "sample_from"]),
        ({"layers": [tune.choice([1, 2])]}, ["'layers'", "inside a list"]),
    ],
)
def test_unsupported_domains_name_the_parameter(entry, words):
    with pytest.raises(ValueError) as e:
        CategoricalSpace(entry)
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value)


def test_nested_config_constants_and_describe():
    space = CategoricalSpace(
        {"net": {"width": tune.choice([8, 16])}, "lr": tune.loguniform(1e-3, 1e-1), "epochs": 5, "meta": {"tag": "x"}},
        resolution=3,
    )
    assert set(space.choices()) == {"net/width", "lr"} and space.constants() == {"epochs": 5, "meta/tag": "x"}
    arch = space.sample(np.random.default_rng(0))
    cfg = space.to_config(arch)
    assert cfg["epochs"] == 5 and cfg["meta"] == {"tag": "x"} and cfg["net"]["width"] in (8, 16)
    assert space.from_config(cfg) == arch
    assert space.describe(arch).startswith("net/width=")


def test_hooks_constraint_key_and_cost():
    space = CategoricalSpace(
        {"a": tune.choice([1, 2, 3]), "b": tune.choice([1, 2, 3])},
        key=lambda cfg: tuple(sorted((cfg["a"], cfg["b"]))),
        constraint=lambda cfg: cfg["a"] != 3 or "a=3 is too big",
        flops=lambda cfg: 10.0 * cfg["a"] * cfg["b"],
    )
    assert space.invalid_reason((3, 1)) == "a=3 is too big" and space.invalid_reason((4, 1)).startswith("a=4")
    rng = np.random.default_rng(1)
    assert all(space.sample(rng)[0] != 3 for _ in range(50))
    assert space.key((1, 2)) == space.key((2, 1)) and space.flops((2, 3)) == 60.0
    keys = {space.key(n) for n in space.neighbours((1, 2))}
    assert keys == {(2, 2), (1, 1), (1, 3)}  # (2, 1) is (1, 2); a=3 is rejected
    assert space.decode(space.encode((1, 2))) == (1, 2)


def test_nb201_keeps_its_tokens_and_random_stream():
    """NB-201 as a CategoricalSpace encodes and samples exactly as before (reference results stand)."""
    space = NASBench201Space()
    arch = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none")
    assert space.encode(arch) == [1, 2, 3, 4, 5, 1] and space.vocab_size == 6
    rng, ref = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(5):
        assert space.sample(rng) == tuple(NB201_OPS[i] for i in ref.integers(0, 5, size=6))
    nbrs = space.neighbours(arch)
    assert nbrs[0] == ("skip_connect",) + arch[1:] and len(nbrs) == 24


def test_needs_decisions():
    with pytest.raises(ValueError, match="at least one decision"):
        CategoricalSpace({"epochs": 3})
    with pytest.raises(ValueError, match="either a Tune param_space or decisions"):
        CategoricalSpace()
    assert math.isclose(CategoricalSpace({"x": tune.uniform(0, 1)}, resolution=2).choices()["x"][1], 1.0)
