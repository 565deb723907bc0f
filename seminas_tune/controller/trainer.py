"""Semi-supervised controller training and gradient-ascent generation (SemiNAS Algorithm 1).

:func:`run_round` is one iteration as a pure function of a :class:`RoundRequest`: train the EPD
on the labeled set, pseudo-label M random architectures, train on labeled (up-sampled) plus
pseudo-labeled, then move the top-K seeds along the predictor's gradient and decode new, valid,
never-seen architectures. Being pure, it runs the same inline or as a background Ray task.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from seminas_tune._checks import check_bool, check_choice, check_int, check_number
from seminas_tune.controller.epd import EPD, EPDConfig
from seminas_tune.controller.proposals import (
    ACQUISITIONS,
    acquire,
    predict,
    predict_heads,
    propose,
    sample_unlabeled,
    tokens_of,
)
from seminas_tune.metrics import kendall_tau

PSEUDO_WEIGHTS = ("uniform", "agreement")


@dataclass
class ControllerConfig:
    """Controller training settings.

    The reference trains 1000 epochs on the labeled set, then 500 epochs on labeled x10 plus
    pseudo-labeled, at batch 100, with the joint MSE + NLL loss (about an hour per iteration
    on 2 CPU cores). ``schedule="reference"`` reproduces it. The default ``schedule="fast"``
    trains a fixed number of steps, warm-started from the previous iteration, and spends them
    on ranking: a pairwise ranking loss beside the MSE, a cosine-decayed larger learning rate,
    and the reconstruction loss on a tenth of each batch (the decoder is half of a step's
    cost). ``benchmarks/bench_controller.py`` compares the two schedules' cost and predictor
    quality. Settings left None take their schedule's value (fast / reference).

    Attributes:
        epd: model sizes.
        lr: Adam learning rate (1e-2 / 1e-3).
        weight_decay, grad_clip: Adam settings (reference: 1e-4, 5).
        trade_off: weight of the regression loss (reference 0.8; NLL gets the rest).
        schedule: ``"fast"`` or ``"reference"``.
        batch_size: fast-schedule batch (the reference uses 100).
        labeled_steps: fast-schedule steps on the labeled set alone.
        joint_steps: fast-schedule steps on labeled (up-sampled) plus pseudo-labeled.
        reference_epochs: (labeled epochs, joint epochs) of the reference schedule.
        cosine: decay the learning rate to 0 over each phase (True / False).
        rank_weight: weight of the pairwise ranking loss inside the regression term (10 / 0).
            On NB101-30k (N = 1100, M = 10,000, 160 steps) it lifted held-out Kendall tau
            from about 0.55 (MSE alone) to 0.64-0.69.
        recon_fraction: share of each batch that the reconstruction loss sees (0.1 / 1).
        num_threads: most torch threads. Inside a Ray task the round uses the CPUs Ray gave it
            (at least one; the package's searchers ask for none, so one thread) and never more
            than the cores this process may run on, so a round does not compete with trials.
        device: ``"auto"`` (CUDA when visible), ``"cpu"`` or ``"cuda"``.
        pseudo_weight: how much each pseudo-label counts in the joint phase: ``"uniform"`` (the
            paper) or ``"agreement"`` (less where the ensemble's heads disagree on the cell).
            ``"agreement"`` was no better in a 12-seed NB-201 trial at 150 queries, so it is off.
    """

    epd: EPDConfig = field(default_factory=EPDConfig)
    lr: float | None = None
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    trade_off: float = 0.8
    schedule: str = "fast"
    batch_size: int = 128
    labeled_steps: int = 70
    joint_steps: int = 70
    reference_epochs: tuple[int, int] = (1000, 500)
    cosine: bool | None = None
    rank_weight: float | None = None
    recon_fraction: float | None = None
    num_threads: int = 2
    device: str = "auto"
    pseudo_weight: str = "uniform"

    def __post_init__(self):
        check_choice("schedule", self.schedule, ("fast", "reference"))
        fast = self.schedule == "fast"
        for name, fast_value, reference_value in (
            ("lr", 1e-2, 1e-3),
            ("cosine", True, False),
            ("rank_weight", 10.0, 0.0),
            ("recon_fraction", 0.1, 1.0),
        ):
            if getattr(self, name) is None:
                setattr(self, name, fast_value if fast else reference_value)
        check_choice("pseudo_weight", self.pseudo_weight, PSEUDO_WEIGHTS)
        if not isinstance(self.epd, EPDConfig):
            raise ValueError(f"epd must be an EPDConfig, got {type(self.epd).__name__}")
        for name in ("lr", "grad_clip"):
            check_number(name, getattr(self, name), positive=True)
        check_number("recon_fraction", self.recon_fraction, positive=True, high=1.0)
        check_number("trade_off", self.trade_off, 0.0, 1.0)
        for name in ("weight_decay", "rank_weight"):
            check_number(name, getattr(self, name))
        for name in ("batch_size", "num_threads"):
            check_int(name, getattr(self, name))
        for name in ("labeled_steps", "joint_steps"):
            check_int(name, getattr(self, name), low=0)
        epochs = self.reference_epochs
        if not isinstance(epochs, (tuple, list)) or len(epochs) != 2:
            raise ValueError(f"reference_epochs must be (labeled epochs, joint epochs), got {epochs!r}")
        for value in epochs:
            check_int("reference_epochs", value, low=0)
        check_bool("cosine", self.cosine)
        if str(self.device) not in ("auto", "cpu") and not str(self.device).startswith("cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

    def __setstate__(self, state: dict) -> None:
        """Unpickle a config saved by an earlier version (in a searcher checkpoint being
        restored): settings it lacks take their defaults (None: their schedule's value)."""
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
        self.__dict__.update({**defaults, **state})
        self.__post_init__()


@dataclass
class RoundRequest:
    """Everything one controller round needs (picklable; shipped to a Ray task).

    Attributes:
        space: the search space.
        cfg: controller settings.
        labeled: architectures with known scores; ``scores`` in maximise orientation.
        seen_keys: keys never to propose again (evaluated or pending).
        num_unlabeled: M, random architectures to pseudo-label (0 for NAO).
        upsample: how many times the labeled set is repeated beside the pseudo-labeled one.
        top_k: K seeds for gradient ascent.
        num_new: architectures to propose (0: train only).
        candidates: architectures to score with the trained predictor (SemiNAS-RE).
        max_flops: optional bound; generated architectures above it are discarded.
        state: previous model and optimiser state, or None for a fresh controller.
        seed: seeds this round's sampling, batching and initialisation.
        max_step_size: gradient-ascent step sizes tried are 1, 2, ... up to this.
        num_ascent: candidates decoded by gradient ascent (None: ``num_new``, the paper).
        num_local: candidates from the unseen neighbours (edit distance 1) of the best evaluated
            architectures (0: none, the paper).
        num_mutation: candidates mutated from the 10 best evaluated architectures (0: none).
        num_pool: candidates from the best-predicted unseen pseudo-labeled architectures.
        num_explore: of the ``num_new``, how many are the best-predicted pseudo-labeled
            architectures far from the best evaluated ones (:func:`~seminas_tune.controller.proposals.far_from_best`).
        num_complete: of the ``num_new``, how many are the best evaluated architecture's unseen
            neighbours, the best-predicted first.
        heads: predictor ensemble size (1: the paper's single predictor). Each head sees the
            evaluated architectures with its own bootstrap weights (Poisson(1)) and learns its
            own pseudo-labels.
        acquisition: how the candidates are ranked (:func:`~seminas_tune.controller.proposals.acquire`).
        fill_pool: when the candidates are fewer than ``num_new``, the rest are the
            best-predicted unseen members of a pool of this many: the pseudo-labeled set (none
            for NAO) topped up with fresh random members.
    """

    space: Any
    cfg: ControllerConfig
    labeled: list
    scores: np.ndarray
    seen_keys: set
    num_unlabeled: int
    upsample: int
    top_k: int
    num_new: int
    candidates: list = field(default_factory=list)
    max_flops: float | None = None
    state: dict | None = None
    seed: int = 0
    max_step_size: float = 20.0
    num_ascent: int | None = None
    num_local: int = 0
    num_mutation: int = 0
    num_pool: int = 0
    num_explore: int = 0
    num_complete: int = 0
    heads: int = 1
    acquisition: str = "mean"
    fill_pool: int = 10_000

    def __post_init__(self):
        if self.acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {self.acquisition!r}")


@dataclass
class RoundResult:
    """``candidate_scores``: the predicted metric of ``RoundRequest.candidates`` (the heads'
    mean); ``candidate_order``: their indices ranked by the request's acquisition, best first."""

    new_archs: list
    candidate_scores: np.ndarray
    state: dict
    info: dict
    candidate_order: list = field(default_factory=list)


def _device(cfg: ControllerConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _train(
    model: EPD,
    opt,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None],
    steps: int,
    batch: int,
    cfg: ControllerConfig,
    gen: torch.Generator,
) -> float:
    """``steps`` optimiser steps over shuffled epochs of (tokens, targets, per-head weights or
    None); returns the last loss."""
    tokens, targets, weights = data
    model.train()
    n = tokens.shape[0]
    loss_val, done = float("nan"), 0
    base_lr = [g["lr"] for g in opt.param_groups]
    while done < steps:
        perm = torch.randperm(n, generator=gen).to(tokens.device)
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            if cfg.cosine:
                for g, lr in zip(opt.param_groups, base_lr):
                    g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * done / steps))
            w = None if weights is None else weights[idx]
            loss, _, _ = model.loss(
                tokens[idx], targets[idx], cfg.trade_off, cfg.rank_weight, cfg.recon_fraction, weights=w
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            loss_val, done = float(loss.detach()), done + 1
            if done >= steps:
                break
    for g, lr in zip(opt.param_groups, base_lr):
        g["lr"] = lr
    return loss_val


def _steps(cfg: ControllerConfig, n: int, phase: int) -> tuple[int, int]:
    """(steps, batch) of a training phase on ``n`` samples."""
    if cfg.schedule == "reference":
        return cfg.reference_epochs[phase] * -(-n // 100), 100
    return (cfg.labeled_steps, cfg.joint_steps)[phase], cfg.batch_size


def run_round(req: RoundRequest) -> RoundResult:
    """One SemiNAS (or NAO, with ``num_unlabeled=0``) controller round."""
    t0 = time.perf_counter()
    cfg = req.cfg
    torch.set_num_threads(_threads(cfg))
    dev = _device(cfg)
    gen = torch.Generator().manual_seed(req.seed)
    torch.manual_seed(req.seed)
    rng = np.random.default_rng(req.seed)
    space = req.space
    model = EPD(space.vocab_size, torch.as_tensor(space.token_mask()), cfg.epd, heads=req.heads).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    if req.state is not None:
        model.load_state_dict(req.state["model"])
        opt.load_state_dict(req.state["opt"])

    scores = np.asarray(req.scores, dtype=np.float64)
    mu, sd = float(scores.mean()), float(scores.std()) or 1.0
    x_lab = tokens_of(space, req.labeled, dev)
    y_lab = torch.tensor((scores - mu) / sd, dtype=torch.float32, device=dev)
    # Bootstrap weights make the heads of an ensemble disagree where the data is thin.
    w_lab = None
    if req.heads > 1:
        w_lab = torch.poisson(torch.ones(len(req.labeled), req.heads), generator=gen).to(dev)
    steps, batch = _steps(cfg, len(req.labeled), 0)
    info: dict[str, Any] = {"labeled": len(req.labeled)}
    if req.state is not None:
        info.update(_heldout_tau(model, space, req, scores, dev))
    info["loss_labeled"] = _train(model, opt, (x_lab, y_lab, w_lab), steps, batch, cfg, gen)

    unl: list = []
    if req.num_unlabeled > 0:
        seen = set(req.seen_keys) | {space.key(a) for a in req.labeled}
        unl = sample_unlabeled(space, rng, req.num_unlabeled, seen)
        x_unl = tokens_of(space, unl, dev)
        y_unl = predict_heads(model, x_unl)  # each head learns its own pseudo-labels
        x = torch.cat([x_lab.repeat(req.upsample, 1), x_unl])
        y = torch.cat([y_lab[:, None].expand(-1, req.heads).repeat(req.upsample, 1), y_unl])
        w_unl = _pseudo_weights(y_unl, cfg.pseudo_weight)
        w = None
        if w_lab is not None or w_unl is not None:
            lab_w = torch.ones(len(req.labeled), req.heads, device=dev) if w_lab is None else w_lab
            w = torch.cat([lab_w.repeat(req.upsample, 1), torch.ones_like(y_unl) if w_unl is None else w_unl])
        steps, batch = _steps(cfg, x.shape[0], 1)
        info["loss_joint"] = _train(model, opt, (x, y, w), steps, batch, cfg, gen)
        info["pseudo_labeled"] = len(unl)
    info["train_s"] = time.perf_counter() - t0

    new = propose(model, req, unl, y_lab, rng, dev, info) if req.num_new > 0 else []
    cand_scores, cand_order = np.zeros(0), []
    if req.candidates:
        heads = predict_heads(model, tokens_of(space, req.candidates, dev))
        cand_scores = heads.mean(dim=-1).cpu().numpy() * sd + mu
        cand_order = acquire(heads, req.acquisition, rng)
    info["total_s"] = time.perf_counter() - t0
    state = {
        "model": {k: v.cpu() for k, v in model.state_dict().items()},
        "opt": _cpu(opt.state_dict()),
        "labeled": len(req.labeled),
    }
    return RoundResult(new, cand_scores, state, info, cand_order)


def _pseudo_weights(y_unl: torch.Tensor, how: str) -> torch.Tensor | None:
    """Per-sample, per-head weights of the pseudo-labels (None: all 1). ``"agreement"``: the
    heads' spread s on each cell, exp(-(s / median s)^2 / 2), so cells the heads disagree on
    teach less."""
    if how == "uniform" or y_unl.shape[1] < 2:
        return None
    s = y_unl.std(dim=1)
    w = torch.exp(-0.5 * (s / s.median().clamp(min=1e-8)) ** 2)
    return w[:, None].expand_as(y_unl).contiguous()


def _threads(cfg: ControllerConfig) -> int:
    """Torch threads for a round: ``cfg.num_threads``, capped by this process's cores and,
    inside a Ray task, by the CPUs Ray assigned to it (at least one)."""
    n = min(cfg.num_threads, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    try:
        import ray

        if ray.is_initialized() and ray.get_runtime_context().worker.mode == ray.WORKER_MODE:
            n = min(n, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 0)))
    except Exception:  # noqa: BLE001 - outside Ray, or an older runtime context API
        pass
    return max(1, n)


def _heldout_tau(model: EPD, space, req: RoundRequest, scores: np.ndarray, dev) -> dict:
    """Kendall tau of the previous round's predictor (the warm-start state, before this round
    trains it) on the architectures evaluated since that round: labels it never saw, most of
    them its own proposals (None when undefined: too few of them, or all tied). Empty when the
    state does not say how many labels it was trained on."""
    seen = req.state.get("labeled")
    if seen is None or len(req.labeled) - seen < 2:
        return {}
    pred = predict(model, tokens_of(space, req.labeled[seen:], dev)).cpu().numpy()
    return {"heldout_tau": kendall_tau(pred, scores[seen:]), "heldout_n": len(req.labeled) - seen}


def _cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj
