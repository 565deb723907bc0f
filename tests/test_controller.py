"""The controller's loss terms and schedule settings (small generated token data, labelled so)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from seminas_tune.controller import ControllerConfig, EPDConfig
from seminas_tune.controller.epd import EPD
from seminas_tune.controller.proposals import acquire, far_from_best, mutations_of_best, predict_heads, tokens_of
from seminas_tune.controller.trainer import RoundRequest, _pseudo_weights, run_round
from seminas_tune.metrics import kendall_tau
from seminas_tune.spaces import NASBench201Space
from trainables.nasbench import nasbench101_space


def _model_and_tokens(n=32, seed=0):
    """A fresh EPD and ``n`` random token sequences of the NB-101 encoding (generated data)."""
    space = nasbench101_space()
    rng = np.random.default_rng(seed)
    tokens = torch.tensor([space.encode(space.sample(rng)) for _ in range(n)])
    torch.manual_seed(seed)
    return EPD(space.vocab_size, torch.as_tensor(space.token_mask()), EPDConfig(dropout=0.0)), tokens


def test_ranking_term_penalises_misordered_predictions():
    model, tokens = _model_and_tokens()
    model.eval()
    with torch.no_grad():
        pred = model.predict(tokens)
        _, mse_agree, _ = model.loss(tokens, pred, rank_weight=0.0)
        agree, _, _ = model.loss(tokens, pred, rank_weight=1.0)
        disagree, _, _ = model.loss(tokens, -pred, rank_weight=1.0)
        plain, _, _ = model.loss(tokens, -pred, rank_weight=0.0)
    assert float(mse_agree) == pytest.approx(0.0, abs=1e-10)
    assert float(disagree) > float(agree)  # same |targets|, reversed order costs more
    assert float(disagree) > float(plain)  # the ranking term adds to the MSE


def test_reconstruction_on_a_fraction_of_the_batch():
    model, tokens = _model_and_tokens()
    model.eval()
    with torch.no_grad():
        targets = torch.zeros(len(tokens))
        _, _, nll_all = model.loss(tokens, targets)
        _, _, nll_head = model.loss(tokens, targets, recon_fraction=0.25)
        _, _, nll_first8 = model.loss(tokens[:8], targets[:8])
    assert float(nll_head) == pytest.approx(float(nll_first8), rel=1e-5)
    assert float(nll_head) != pytest.approx(float(nll_all), rel=1e-5)


def test_schedule_picks_its_own_defaults():
    fast, ref = ControllerConfig(), ControllerConfig(schedule="reference")
    assert (fast.lr, fast.cosine, fast.rank_weight, fast.recon_fraction) == (1e-2, True, 10.0, 0.1)
    assert (ref.lr, ref.cosine, ref.rank_weight, ref.recon_fraction) == (1e-3, False, 0.0, 1.0)
    assert ControllerConfig(schedule="reference", rank_weight=2.0).rank_weight == 2.0
    with pytest.raises(ValueError, match="recon_fraction"):
        ControllerConfig(recon_fraction=0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(labeled_steps=-3), "labeled_steps must be a non-negative integer, got -3"),
        (dict(joint_steps="20"), "joint_steps must be a non-negative integer, got '20'"),
        (dict(batch_size=2.5), "batch_size must be a positive integer"),
        (dict(lr=0.0), "lr must be a positive number"),
        (dict(trade_off=1.5), r"trade_off must be a number in \[0, 1\]"),
        (dict(cosine="maybe"), "cosine must be True or False"),
        (dict(device="tpu"), "device must be"),
        (dict(epd=3), "epd must be an EPDConfig"),
        (dict(reference_epochs=(10,)), "reference_epochs must be"),
    ],
)
def test_a_bad_controller_setting_is_refused_when_the_config_is_built(kwargs, message):
    """Not later, inside a controller round, after trials have run."""
    with pytest.raises(ValueError, match=message):
        ControllerConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [(dict(hidden=0), "hidden must be a positive integer"), (dict(dropout=-0.1), "dropout must be a number in")],
)
def test_a_bad_model_size_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EPDConfig(**kwargs)


def test_cosine_decay_leaves_the_base_learning_rate_for_the_next_round():
    """Each round decays from the configured rate; the saved optimiser state must keep it."""
    space = nasbench101_space()
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(40)]
    cfg = ControllerConfig(labeled_steps=3, joint_steps=0, batch_size=16, num_threads=1, device="cpu")
    req = RoundRequest(
        space=space,
        cfg=cfg,
        labeled=archs,
        scores=rng.random(40),
        seen_keys={space.key(a) for a in archs},
        num_unlabeled=0,
        upsample=1,
        top_k=5,
        num_new=0,
    )
    state = run_round(req).state
    assert [g["lr"] for g in state["opt"]["param_groups"]] == [cfg.lr]


def test_config_pickled_by_an_earlier_version_gets_the_new_settings():
    """A searcher checkpoint of an earlier version holds a ControllerConfig without the
    ranking settings; restoring it must not fail later in training."""
    import pickle

    old = ControllerConfig()
    for name in ("cosine", "rank_weight", "recon_fraction"):
        del old.__dict__[name]
    restored = pickle.loads(pickle.dumps(old))
    assert (restored.cosine, restored.rank_weight, restored.recon_fraction) == (True, 10.0, 0.1)


def _round(space, archs, scores, **kw):
    cfg = ControllerConfig(labeled_steps=3, joint_steps=3, batch_size=16, num_threads=1, device="cpu")
    base = dict(space=space, cfg=cfg, labeled=archs, scores=scores, seen_keys={space.key(a) for a in archs})
    return run_round(RoundRequest(**{**base, "num_unlabeled": 0, "upsample": 1, "top_k": 5, "num_new": 8, **kw}))


def test_local_candidates_come_from_the_best_cells_neighbourhood():
    space = NASBench201Space()
    rng = np.random.default_rng(2)
    archs = [space.sample(rng) for _ in range(30)]
    scores = rng.random(30)
    seen = {space.key(a) for a in archs}
    # Only neighbour candidates, fewer than the best cell has (24): all come from its neighbourhood.
    res = _round(space, archs, scores, num_local=12, num_ascent=0)
    best = {space.key(a) for a in space.neighbours(archs[int(np.argmax(scores))])}
    keys = [space.key(a) for a in res.new_archs]
    assert res.info["chosen"] == {"local": 8} and len(keys) == len(set(keys)) == 8
    assert set(keys) <= best - seen, "the local candidates must come from the best cell's neighbourhood"


def test_mutation_candidates_reach_past_one_edit_in_a_table_restricted_space():
    """NB101-30k holds 30,001 of the 423k cells, so a cell has few members one edit away; the
    space's mutation (retried until it lands on a member) reaches farther ones."""
    space = nasbench101_space()
    rng = np.random.default_rng(5)
    archs = [space.sample(rng) for _ in range(40)]
    scores = rng.random(40)
    seen = {space.key(a) for a in archs}
    kids = mutations_of_best(space, archs, scores, 30, seen, None, rng)
    keys = [space.key(a) for a in kids]
    assert len(kids) == 30 and len(set(keys)) == 30 and not set(keys) & seen
    best = [archs[i] for i in np.argsort(-scores)[:10]]
    one_edit = {space.key(n) for a in best for n in space.neighbours(a)}
    assert set(keys) - one_edit, "every child was a one-edit neighbour: the mutation reached no farther"
    assert mutations_of_best(space, [], np.zeros(0), 5, seen, None, rng) == []


def test_every_source_feeds_one_ranked_batch():
    space = NASBench201Space()
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(30)]
    res = _round(
        space,
        archs,
        rng.random(30),
        num_unlabeled=200,
        num_local=20,
        num_mutation=20,
        num_ascent=20,
        num_pool=20,
        heads=4,
        acquisition="its",
    )
    assert sum(res.info["chosen"].values()) == 8
    assert set(res.info["chosen"]) == {"local", "mutation", "ascent", "pool"}
    keys = [space.key(a) for a in res.new_archs]
    assert len(set(keys)) == 8 and not set(keys) & {space.key(a) for a in archs}
    again = _round(space, archs, rng.random(30), num_local=20, num_ascent=20, heads=4, state=res.state)
    assert len(again.new_archs) == 8, "the ensemble's state warm-starts the next round"


def _token_distance_to(space, archs, ref):
    return np.array([min(sum(x != y for x, y in zip(space.encode(a), space.encode(r))) for r in ref) for a in archs])


def test_exploration_takes_the_best_predicted_cells_far_from_the_best_evaluated():
    space = NASBench201Space()
    rng = np.random.default_rng(4)
    archs = [space.sample(rng) for _ in range(30)]
    scores = rng.random(30)
    pool = [space.sample(rng) for _ in range(300)]
    pred = torch.as_tensor(rng.random(300))
    top5 = [archs[i] for i in np.argsort(-scores)[:5]]
    dist = _token_distance_to(space, pool, top5)
    tokens = tokens_of(space, pool, "cpu")
    out = far_from_best(space, archs, scores, pool, tokens, pred, 6, set(), None)
    assert len(out) == 6
    assert all(d >= np.median(dist) for d in _token_distance_to(space, out, top5)), "a pick lies near the best cells"
    far = [i for i in range(300) if dist[i] >= np.median(dist)]
    want = {space.key(pool[i]) for i in sorted(far, key=lambda i: -float(pred[i]))[:6]}
    assert {space.key(a) for a in out} == want, "the picks are not the best-predicted far cells"
    assert far_from_best(space, archs, scores, pool, tokens, pred, 0, set(), None) == []


def test_an_exploring_round_keeps_its_batch_size_and_reports_the_share():
    space = NASBench201Space()
    rng = np.random.default_rng(6)
    archs = [space.sample(rng) for _ in range(30)]
    res = _round(space, archs, rng.random(30), num_unlabeled=200, num_local=20, num_ascent=10, num_explore=3)
    keys = [space.key(a) for a in res.new_archs]
    assert len(set(keys)) == 8 and not set(keys) & {space.key(a) for a in archs}
    assert res.info["explore"] == 3 and sum(res.info["chosen"].values()) == 5


def test_ensemble_heads_disagree_most_where_there_is_no_data():
    """Bootstrap-trained heads: their spread on the cells they were trained on is smaller than
    on random unseen cells (NB-201 space; the labels are generated)."""
    space = NASBench201Space()
    rng = np.random.default_rng(4)
    archs = [space.sample(rng) for _ in range(12)]
    scores = np.array([float(sum(space.encode(a))) for a in archs])  # a generated, learnable label
    cfg = ControllerConfig(labeled_steps=60, joint_steps=0, batch_size=16, num_threads=1, device="cpu")
    res = _round(space, archs, scores, num_new=0, heads=5, cfg=cfg)
    model = EPD(space.vocab_size, torch.as_tensor(space.token_mask()), EPDConfig(), heads=5)
    model.load_state_dict(res.state["model"])
    far = [a for a in (space.sample(rng) for _ in range(400)) if space.key(a) not in {space.key(b) for b in archs}]
    seen_spread = predict_heads(model, tokens_of(space, archs, "cpu")).std(dim=1).mean()
    far_spread = predict_heads(model, tokens_of(space, far, "cpu")).std(dim=1).mean()
    assert float(seen_spread) > 0 and float(far_spread) > float(seen_spread)
    assert torch.allclose(
        model.predict(tokens_of(space, far, "cpu")),
        predict_heads(model, tokens_of(space, far, "cpu")).mean(1),
        atol=1e-5,
    )


def test_thompson_acquisition_explores_only_where_the_heads_disagree():
    rng = np.random.default_rng(0)
    agree = torch.tensor([[3.0] * 4, [2.0] * 4, [1.0] * 4])
    assert acquire(agree, "its", rng) == [0, 1, 2] == acquire(agree, "mean", rng)
    unsure = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, -3.0, 3.0, -3.0]])  # same mean, wide spread
    firsts = {acquire(unsure, "its", np.random.default_rng(s))[0] for s in range(20)}
    assert firsts == {0, 1}
    with pytest.raises(ValueError, match="acquisition must be one of"):
        RoundRequest(
            space=None,
            cfg=ControllerConfig(),
            labeled=[],
            scores=np.zeros(0),
            seen_keys=set(),
            num_unlabeled=0,
            upsample=1,
            top_k=1,
            num_new=1,
            acquisition="ucb",
        )


def test_candidates_are_ordered_by_the_acquisition():
    """SemiNAS (RE)'s children: ``candidate_order`` is the mean ranking under ``"mean"`` and a
    permutation of them under ``"its"``."""
    space = NASBench201Space()
    rng = np.random.default_rng(5)
    archs, children = [space.sample(rng) for _ in range(20)], [space.sample(rng) for _ in range(30)]
    mean = _round(space, archs, rng.random(20), num_new=0, candidates=children, heads=3)
    assert mean.candidate_order == np.argsort(-mean.candidate_scores, kind="stable").tolist()
    its = _round(space, archs, rng.random(20), num_new=0, candidates=children, heads=3, acquisition="its")
    assert sorted(its.candidate_order) == list(range(30))


def test_position_embedding_lets_the_predictor_learn_which_edge_holds_what():
    """A generated label that weighs each edge's operation by its position (NB-201 cells): with
    the position embedding the predictor ranks held-out cells by it, and gradient ascent still
    decodes new cells."""
    space = NASBench201Space()
    rng = np.random.default_rng(6)
    weight = rng.normal(size=(space.seq_len, space.vocab_size))  # generated per-position values

    def label(a):
        return float(sum(weight[p, t] for p, t in enumerate(space.encode(a))))

    archs, test = [space.sample(rng) for _ in range(80)], [space.sample(rng) for _ in range(300)]
    truth, taus = np.array([label(a) for a in test]), {}
    for positional in (False, True):
        cfg = ControllerConfig(
            labeled_steps=150, joint_steps=0, batch_size=32, num_threads=1, epd=EPDConfig(positional=positional)
        )
        res = _round(space, archs, np.array([label(a) for a in archs]), candidates=test, cfg=cfg)
        taus[positional] = kendall_tau(res.candidate_scores, truth)
        assert len(res.new_archs) == 8 and res.info["generated"] >= 8
    assert taus[True] > 0.6 and taus[True] > taus[False], taus
    with pytest.raises(ValueError, match="positional must be True or False"):
        EPDConfig(positional="false")


def test_agreement_weighting_trusts_the_pseudo_labels_the_heads_agree_on():
    y = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.2, 0.8], [1.0, 1.5, 0.5], [1.0, 1.1, 0.9]])
    w = _pseudo_weights(y, "agreement")
    assert w.shape == y.shape and torch.all(w[:, 0:1] == w)
    assert float(w[0, 0]) == 1.0 and float(w[3, 0]) > float(w[1, 0]) > float(w[2, 0]) > 0
    assert _pseudo_weights(y, "uniform") is None and _pseudo_weights(y[:, :1], "agreement") is None
    space = NASBench201Space()
    rng = np.random.default_rng(7)
    archs = [space.sample(rng) for _ in range(20)]
    cfg = ControllerConfig(labeled_steps=3, joint_steps=3, batch_size=16, num_threads=1, pseudo_weight="agreement")
    res = _round(space, archs, rng.random(20), num_unlabeled=100, heads=3, cfg=cfg)
    assert res.info["pseudo_labeled"] == 100 and len(res.new_archs) == 8
    with pytest.raises(ValueError, match="pseudo_weight must be one of"):
        ControllerConfig(pseudo_weight="entropy")


def test_a_search_counts_as_stalled_about_three_batches_after_its_best():
    from seminas_tune.search._core import Observation
    from seminas_tune.search.seminas import stalled

    def labels(scores):
        return [Observation(i, None, s, s, "ok") for i, s in enumerate(scores)]

    rising = list(range(40))
    assert not stalled(labels(rising), 10)
    best_at_9 = [0.0] * 9 + [1.0] + [0.5] * 30  # 40 results, the best 30 ago
    assert stalled(labels(best_at_9), 10) and not stalled(labels(best_at_9[:-1]), 10)
    late = [0.0] * 99 + [1.0] + [0.5] * 29  # 129 results, 29 since the best: under 30 % of them
    assert not stalled(labels(late), 10) and stalled(labels(late + [0.5] * 20), 10)


def _stalling_search(max_queries: int, **setting):
    """A SemiNAS search of a made-up objective (generated data) whose best cell is the first one
    evaluated, so it stalls: (searcher, the cells in the order suggested, that best cell)."""
    from seminas_tune.search import SemiNASSearcher
    from seminas_tune.testing import drive
    from tests.test_searcher_contract import SMALL

    space = NASBench201Space()
    best = space.sample(np.random.default_rng(0))
    first = space.to_config(best)

    def objective(cfg):
        return {"acc": 1.0 if cfg == first else 0.1 + 0.01 * (zlib.crc32(str(cfg).encode()) % 7)}

    s = SemiNASSearcher(
        space=space,
        metric="acc",
        mode="max",
        seed=0,
        max_queries=max_queries,
        background="inline",
        points_to_evaluate=[first],
        **setting,
        **SMALL["seminas"],
    )
    return s, [space.from_config(c) for c in drive(s, objective)], best


def test_a_stalled_search_spends_its_share_of_the_batch_far_from_its_best():
    """With ``explore_share=1`` the stalled search's later batches are far from its best cell."""
    plain, _, _ = _stalling_search(40, explore_share=0.0)
    assert not any("explore" in h for h in plain.history)
    s, archs, best = _stalling_search(40, explore_share=1.0)
    explored = [h["explore"] for h in s.history if h.get("explore")]
    assert explored and sum(explored) >= 8, f"no round explored: {s.history}"
    near = _token_distance_to(s.space, archs[-sum(explored) :], [best])
    assert (near >= 3).mean() > 0.5, f"the exploring batches stayed next to the best cell: {near}"


def test_a_stalled_search_escapes_by_completing_the_best_cells_neighbourhood_then_two_edits():
    """With ``escape_share=1`` the stalled search evaluates every neighbour of its best cell,
    then spends its batches two edits away."""
    plain, plain_archs, best = _stalling_search(70, escape_share=0.0)
    assert not any("complete" in h for h in plain.history)
    s, archs, _ = _stalling_search(70, escape_share=1.0)
    space = s.space
    assert sum(h.get("complete", 0) for h in s.history) >= 30, f"no round completed the neighbourhood: {s.history}"
    evaluated = {space.key(a) for a in archs}
    assert all(space.key(a) in evaluated for a in space.neighbours(best)), "a neighbour of the best was left out"
    late = _token_distance_to(space, archs[-20:], [best])
    assert (late == 2).all(), f"after its neighbourhood the search did not step two edits out: {late}"
    assert not (_token_distance_to(space, plain_archs[-20:], [best]) == 2).all()
