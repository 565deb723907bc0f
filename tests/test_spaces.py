"""The NAS-Bench-101 and NAS-Bench-201 search spaces against the SearchSpace protocol."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from ray import tune

from seminas_tune.data import DataChecksumError, load_nasbench101, load_nasbench201, verify_sha256
from seminas_tune.data.tables import PACKAGE_DATA, bundled_checksums
from seminas_tune.nasbench.api import CONV3X3, INPUT, MAX_EDGES, OUTPUT, ModelSpec, check_spec
from seminas_tune.spaces import (
    CategoricalSpace,
    InvalidConfigError,
    MobileNetV2Space,
    NASBench101Space,
    NASBench201Space,
    TTSSpace,
)
from seminas_tune.spaces.nasbench101 import make_spec
from seminas_tune.spaces.nasbench201 import NB201_OPS, from_string, to_string
from seminas_tune.testing import SpaceContract
from tests.test_searcher_contract import PARAM_SPACE
from trainables.nasbench import nasbench101_space, nasbench201_space

N_SAMPLES = 12


@pytest.fixture(scope="module")
def nb101_full():
    return NASBench101Space()


@pytest.fixture(scope="module")
def nb101_data():
    return NASBench101Space(load_nasbench101())


@pytest.fixture(scope="module")
def nb201():
    return NASBench201Space(load_nasbench201())


@pytest.fixture(params=["nb101_full", "nb101_data", "nb201"])
def space(request):
    return request.getfixturevalue(request.param)


def _samples(space, n=N_SAMPLES, seed=0):
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


# -- the space contract over every space of the package ------------------------------------
class TestNB101Whole(SpaceContract):
    def make_space(self):
        return NASBench101Space()


class TestNB101Table(SpaceContract):
    def make_space(self):
        return nasbench101_space()


class TestNB201(SpaceContract):
    def make_space(self):
        return nasbench201_space()


class TestMobileNetV2(SpaceContract):
    def make_space(self):
        return MobileNetV2Space(resolution=64, num_classes=10)


class TestTTS(SpaceContract):
    def make_space(self):
        return TTSSpace(n_encoder=3, n_decoder=2)


class TestTuneParamSpace(SpaceContract):
    def make_space(self):
        return CategoricalSpace(PARAM_SPACE)


class TestConstrainedCategorical(SpaceContract):
    """Hooks: a canonical key, a constraint and a cost."""

    def make_space(self):
        return CategoricalSpace(
            {"a": tune.choice([1, 2, 3, 4]), "b": tune.choice([1, 2, 3, 4]), "c": tune.choice(["x", "y"])},
            key=lambda cfg: (min(cfg["a"], cfg["b"]), max(cfg["a"], cfg["b"]), cfg["c"]),
            constraint=lambda cfg: cfg["a"] + cfg["b"] <= 6 or f"a + b = {cfg['a'] + cfg['b']} > 6",
            flops=lambda cfg: cfg["a"] * cfg["b"],
        )


def _one_edit_keys(space, arch) -> set:
    """Keys of all valid single edits, computed here independently of ``neighbours``."""
    if isinstance(space, NASBench201Space):
        cands = [arch[:i] + (op,) + arch[i + 1 :] for i in range(6) for op in NB201_OPS if op != arch[i]]
    else:
        m, ops = space.padded(arch)
        cands = []
        for c in range(1, 7):
            for r in range(c):
                m2 = m.copy()
                m2[r, c] ^= 1
                cands.append(make_spec(m2, ops))
        for v in range(1, 6):
            for op in ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"):
                if op != ops[v]:
                    cands.append(make_spec(m, ops[:v] + [op] + ops[v + 1 :]))
    return {space.key(c) for c in cands if space.is_valid(c)} - {space.key(arch)}


def test_neighbours(space):
    for a in _samples(space, 4, seed=1):
        nbrs = space.neighbours(a)
        keys = [space.key(b) for b in nbrs]
        if space.dataset is None or isinstance(space, NASBench201Space):
            assert nbrs, "every cell of a whole space has neighbours"
        assert all(space.is_valid(b) for b in nbrs)
        assert len(keys) == len(set(keys))  # distinct keys
        assert space.key(a) not in keys  # self excluded
        assert set(keys) == _one_edit_keys(space, a)  # exactly the one-edit moves


def test_restricted_neighbours_exist_for_most_cells(nb101_data):
    # 30,001 of 423,624 cells: a cell has ~30 one-edit moves, so most have a neighbour in the data
    archs = _samples(nb101_data, 20, seed=6)
    with_nbrs = [a for a in archs if nb101_data.neighbours(a)]
    assert len(with_nbrs) >= 10
    for a in with_nbrs[:3]:
        assert all(nb101_data.key(b) in nb101_data.dataset for b in nb101_data.neighbours(a))


# -- NAS-Bench-101 specifics ---------------------------------------------------------------
def test_nb101_key_is_the_module_hash_and_isomorphism_invariant(nb101_full):
    m = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    a = make_spec(m, [INPUT, CONV3X3, "maxpool3x3", OUTPUT])
    b = make_spec(m, [INPUT, "maxpool3x3", CONV3X3, OUTPUT])  # the two branches swapped
    assert nb101_full.key(a) == nb101_full.key(b) == a.hash_spec()
    c = make_spec(m, [INPUT, CONV3X3, CONV3X3, OUTPUT])
    assert nb101_full.key(c) != nb101_full.key(a)


def test_nb101_invalid_cells_have_reasons(nb101_full):
    m = np.zeros((7, 7), dtype=int)
    m[0, 1] = m[2, 6] = 1
    disconnected = make_spec(m, [INPUT] + [CONV3X3] * 5 + [OUTPUT])
    assert not nb101_full.is_valid(disconnected)
    assert "not reachable" in nb101_full.invalid_reason(disconnected)
    dense = make_spec(np.triu(np.ones((7, 7), dtype=int), 1), [INPUT] + [CONV3X3] * 5 + [OUTPUT])
    assert f"too many edges: 21 > {MAX_EDGES}" == nb101_full.invalid_reason(dense)
    assert "expected a ModelSpec" in nb101_full.invalid_reason("cell")
    with pytest.raises(InvalidConfigError, match="disconnected"):
        nb101_full.to_config(disconnected)


def test_nb101_full_samples_cover_small_and_large_cells(nb101_full):
    archs = _samples(nb101_full, 60, seed=3)
    for a in archs:
        check_spec(a)
        assert a.matrix.sum() <= MAX_EDGES
    assert len({len(a.ops) for a in archs}) >= 2


def test_nb101_full_sample_is_uniform_over_cells(nb101_full):
    archs = _samples(nb101_full, 200, seed=8)
    share7 = np.mean([len(a.ops) == 7 for a in archs])
    assert share7 > 0.7  # 0.848 for uniform sampling over the 423,624 cells


def test_nb101_decode_of_padded_small_cell(nb101_full):
    small = make_spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT])
    tokens = nb101_full.encode(small)
    back = nb101_full.decode(tokens)
    assert back.ops == [INPUT, CONV3X3, OUTPUT] and back.matrix.tolist() == small.matrix.tolist()


def test_restricted_space_samples_members_only(nb101_data):
    data = nb101_data.dataset
    archs = _samples(nb101_data, 50, seed=4)
    assert all(nb101_data.key(a) in data for a in archs)
    # the key the space caches is the true hash of the stored graph
    assert all(ModelSpec(a.matrix, a.ops).hash_spec() == nb101_data.key(a) for a in archs[:10])


def test_restricted_space_rejects_non_members(nb101_full, nb101_data):
    rng = np.random.default_rng(7)
    data = nb101_data.dataset
    outside = next(a for a in (nb101_full.sample(rng) for _ in range(200)) if nb101_full.key(a) not in data)
    assert nb101_full.is_valid(outside)
    assert not nb101_data.is_valid(outside)
    assert "not covered by the data" in nb101_data.invalid_reason(outside)
    assert nb101_data.decode(nb101_full.encode(outside)) is None
    assert nb101_full.decode(nb101_full.encode(outside)) is not None
    inside = _samples(nb101_data, 1)[0]
    assert nb101_data.key(nb101_data.decode(nb101_data.encode(inside))) == nb101_data.key(inside)


def test_restricted_member_agrees_with_the_official_hash(nb101_full, nb101_data):
    """``member`` (memo + WL-signature shortcut) accepts exactly the padded graphs whose pruned
    cell's official hash is in the data, over edits of members (mostly outside the table)."""
    rng = np.random.default_rng(11)
    data = nb101_data.dataset
    nb101_data._unfiltered = 20_000  # index the table's signatures now, not after 20,000 misses
    agree, inside = 0, 0
    for a in _samples(nb101_data, 40, seed=12):
        m, ops = nb101_data.padded(a)
        for _ in range(10):
            m2 = m.copy()
            r, c = sorted(rng.choice(7, 2, replace=False))
            m2[r, c] ^= 1
            spec = ModelSpec(m2, ops)
            truth = spec.valid_spec and nb101_full.is_valid(spec) and spec.hash_spec() in data
            got = nb101_data.member(m2, ops)
            agree += bool(truth) == (got is not None)
            inside += got is not None
            if got is not None:
                assert nb101_data.key(got) == spec.hash_spec()
    assert agree == 400 and 0 < inside < 400
    assert nb101_data._signatures is not None


def test_member_agrees_with_modelspec_pruning_on_random_padded_graphs(nb101_full):
    """``member`` prunes integer codes on bit masks; on random padded graphs (unreachable
    outputs, dangling vertices, over 9 edges, every op) it must agree with ModelSpec's pruning,
    the space's validity rules and the official hash."""
    rng = np.random.default_rng(3)
    seen = {"member": 0, "unreachable": 0, "too many edges": 0}
    for _ in range(600):
        m = np.triu(rng.random((7, 7)) < rng.uniform(0.1, 0.7), 1).astype(np.int64)
        ops = [INPUT] + [str(o) for o in rng.choice(["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"], 5)] + [OUTPUT]
        spec = ModelSpec(m, ops)
        got = nb101_full.member(m, ops)
        if spec.valid_spec and nb101_full.is_valid(spec):
            seen["member"] += 1
            assert got is not None and nb101_full.key(got) == spec.hash_spec()
            assert np.array_equal(got.matrix, spec.matrix) and got.ops == spec.ops
        else:
            assert not spec.valid_spec or spec.matrix.sum() > MAX_EDGES
            seen["too many edges" if spec.valid_spec else "unreachable"] += 1
            assert got is None
    assert min(seen.values()) > 20, seen


# -- NAS-Bench-201 specifics ---------------------------------------------------------------
def test_nb201_string_round_trip(nb201):
    s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    arch = from_string(s)
    assert arch == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert to_string(arch) == s == nb201.key(arch)
    for a in _samples(nb201, 20):
        assert from_string(to_string(a)) == a
    assert to_string(arch) in nb201.dataset.table.index


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",  # two groups
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|conv_7x7~2|",
        "|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    ],
)
def test_nb201_bad_string_raises(bad):
    with pytest.raises(ValueError, match="not a NAS-Bench-201 cell string"):
        from_string(bad)


def test_nb201_invalid_archs(nb201):
    assert not nb201.is_valid(("none",) * 5)
    assert "edge_3_2='conv_7x7' is not one of" in nb201.invalid_reason(("none",) * 5 + ("conv_7x7",))
    assert nb201.decode([0] * 6) is None and nb201.decode([6] * 6) is None
    assert len(nb201.neighbours(("none",) * 6)) == 24


# -- data checksums ------------------------------------------------------------------------
def test_a_corrupted_data_file_fails_its_checksum(tmp_path):
    expected = bundled_checksums()["nb101_30k.parquet"]
    copy = tmp_path / "nb101_30k.parquet"
    shutil.copy(PACKAGE_DATA / "nb101_30k.parquet", copy)
    verify_sha256(copy, expected)  # an intact copy passes
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(DataChecksumError, match="does not match the recorded"):
        verify_sha256(copy, expected)
