"""The controller's loss terms and schedule settings (small generated token data, labelled so)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seminas_tune.controller import ControllerConfig, EPDConfig
from seminas_tune.controller.epd import EPD
from seminas_tune.controller.trainer import RoundRequest, run_round
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


def test_num_local_takes_unseen_neighbours_of_the_best_cells_first():
    space = NASBench201Space()
    rng = np.random.default_rng(2)
    archs = [space.sample(rng) for _ in range(30)]
    scores = rng.random(30)
    cfg = ControllerConfig(labeled_steps=3, joint_steps=0, batch_size=16, num_threads=1, device="cpu")
    seen = {space.key(a) for a in archs}
    res = run_round(
        RoundRequest(
            space=space,
            cfg=cfg,
            labeled=archs,
            scores=scores,
            seen_keys=seen,
            num_unlabeled=0,
            upsample=1,
            top_k=5,
            num_new=8,
            num_local=3,
        )
    )
    best = {space.key(a) for a in space.neighbours(archs[int(np.argmax(scores))])}
    keys = [space.key(a) for a in res.new_archs]
    assert res.info["local"] == 3 and len(keys) == len(set(keys)) == 8
    assert set(keys[:3]) <= best - seen, "the local share must come from the best cell's neighbourhood"
    assert not set(keys) & seen
