"""BANANAS: Thompson sampling, candidate generation, the predictor ensemble, the encodings and
the search itself on the NB-201 table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from seminas_tune.bench.tables import get_benchmark
from seminas_tune.nasbench.api import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT, ModelSpec
from seminas_tune.search import BANANASSearcher, RandomSearcher
from seminas_tune.search.bananas import BananasRequest, candidates, encode, its_order, run_bananas_round, train_ensemble
from seminas_tune.spaces.nasbench201 import from_string
from seminas_tune.testing import drive
from trainables.nasbench import nasbench101_space

FAST = dict(layers=3, width=32, epochs=50, batch_size=64)


@pytest.fixture(scope="module")
def nb201():
    return get_benchmark("nb201-cifar100")


def _cells(bench, n: int, seed: int):
    keys = list(bench.val)
    idx = np.random.default_rng(seed).permutation(len(keys))[:n]
    return [from_string(keys[i]) for i in idx], np.array([bench.val[keys[i]] for i in idx])


def test_thompson_sampling_draws_from_each_candidates_distribution():
    rng = np.random.default_rng(0)
    mean, std = np.array([0.0, 1.0, 0.5]), np.array([1.0, 1.0, 0.0])
    firsts = np.array([its_order(mean, std, rng)[0] for _ in range(4000)])
    share = np.bincount(firsts, minlength=3) / len(firsts)
    assert share[1] > share[0] and share[1] > share[2], "the highest mean wins most often"
    assert 0.1 < share[0] < share[1] < 0.8, "a lower mean still wins sometimes: it is a draw, not the mean"
    # without spread the order is the order of the means
    assert list(its_order(np.array([0.2, 0.9, 0.5]), np.zeros(3), rng)) == [1, 2, 0]


def test_candidates_are_unseen_mutations_of_the_best_then_random(nb201):
    space = nb201.space
    archs, scores = _cells(nb201, 40, 1)
    seen = {space.key(a) for a in archs}
    req = BananasRequest(
        space=space, archs=archs, scores=scores, seen_keys=seen, num_new=5, seed=0, num_parents=3, num_random=4
    )
    cands, info = candidates(req, np.random.default_rng(0))
    assert info == {"mutations": 30, "random": 4}
    keys = [space.key(a) for a in cands]
    assert len(set(keys)) == len(keys) and not set(keys) & seen
    top = [archs[i] for i in np.argsort(-scores)[:3]]
    for a in cands[:30]:
        assert min(sum(x != y for x, y in zip(a, p)) for p in top) == 1, "a mutation differs from a parent in one edge"
    assert all(sum(x != y for x, y in zip(a, top[0])) == 1 for a in cands[:10]), "10 per parent, best first"


def test_the_ensemble_predicts_held_out_cells_better_than_a_constant(nb201):
    archs, y = _cells(nb201, 300, 2)
    train, test = slice(0, 100), slice(100, 300)
    req = BananasRequest(space=nb201.space, archs=[], scores=y, seen_keys=set(), num_new=1, seed=0, **FAST)
    predict = train_ensemble(encode(nb201.space, archs[train]), y[train], req, seed=0)
    pred = predict(encode(nb201.space, archs[test]))
    assert pred.shape == (5, 200) and (pred.std(0) > 0).all(), "members differ"
    mae, constant = np.abs(pred.mean(0) - y[test]).mean(), np.abs(y[train].mean() - y[test]).mean()
    assert mae < 0.8 * constant
    assert kendalltau(pred.mean(0), y[test])[0] > 0.3


def test_one_hot_encoding_of_any_space(nb201):
    space = nb201.space
    archs, _ = _cells(nb201, 50, 3)
    x = encode(space, archs, "onehot")
    assert x.shape == (50, 6 * 5) and (x.sum(1) == 6).all()
    assert len({row.tobytes() for row in x}) == 50
    with pytest.raises(ValueError, match="path encoding needs a NAS-Bench-101 space"):
        encode(space, archs, "path")


def test_path_encoding_of_an_nb101_cell():
    # in -> conv3x3 -> maxpool -> out, and in -> conv1x1 -> out
    m = np.zeros((5, 5), dtype=int)
    m[0, 1] = m[1, 2] = m[2, 4] = m[0, 3] = m[3, 4] = 1
    cell = ModelSpec(m, [INPUT, CONV3X3, MAXPOOL3X3, CONV1X1, OUTPUT])
    x = encode(nasbench101_space(), [cell])
    assert x.shape == (1, 364)
    # paths of k ops start at (3**k - 1) / 2; ops are base-3 digits (conv3x3 0, conv1x1 1, maxpool 2)
    assert set(np.flatnonzero(x[0])) == {1 + 1, 4 + 0 * 3 + 2}


def test_a_round_proposes_unseen_architectures_the_predictor_likes(nb201):
    archs, y = _cells(nb201, 60, 4)
    space = nb201.space
    req = BananasRequest(
        space=space, archs=archs, scores=y, seen_keys={space.key(a) for a in archs}, num_new=10, seed=0, **FAST
    )
    out = run_bananas_round(req)
    assert len(out.new_archs) == 10 and not {space.key(a) for a in out.new_archs} & req.seen_keys
    assert run_bananas_round(req).new_archs == out.new_archs, "a round is a pure function of its request"
    picked = np.mean([nb201.val[space.key(a)] for a in out.new_archs])
    assert picked > np.median(list(nb201.val.values())), "proposals beat a typical cell"


def test_presets_and_bad_arguments():
    s = BANANASSearcher(max_queries=300)
    assert (s.num_initial, s.num_new, s.ensemble_size, s.layers, s.width, s.epochs) == (10, 10, 5, 3, 32, 50)
    p = BANANASSearcher(max_queries=300, preset="paper")
    assert (p.layers, p.width, p.epochs, p.batch_size, p.lr) == (10, 20, 200, 32, 0.01)
    assert BANANASSearcher(preset="paper", ensemble_size=3).ensemble_size == 3
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        BANANASSearcher(ensemble_size=0)
    with pytest.raises(ValueError, match="encoding must be one of"):
        BANANASSearcher(encoding="adjacency")
    with pytest.raises(ValueError, match="lr must be a positive number"):
        BANANASSearcher(lr=-1.0)


def _regret(bench, searcher_cls, seed: int, budget: int, **kw) -> float:
    s = searcher_cls(
        space=bench.space, metric="val_accuracy", mode="max", max_queries=budget, seed=seed, background="inline", **kw
    )
    configs = drive(s, lambda c: bench._evaluate(c, seed))
    return bench.vmax - max(bench.val[bench.space.key(bench.space.arch_of(c))] for c in configs)


def test_bananas_beats_random_search_on_nb201(nb201):
    seeds = range(6)
    bananas = np.mean([_regret(nb201, BANANASSearcher, s, 100) for s in seeds])
    random = np.mean([_regret(nb201, RandomSearcher, s, 100) for s in seeds])
    assert bananas < 0.5 * random, (bananas, random)
