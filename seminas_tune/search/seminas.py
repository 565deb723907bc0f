"""SemiNAS and NAO as Ray Tune searchers."""

from __future__ import annotations

from typing import Any

import numpy as np

from seminas_tune._checks import check_choice, check_int, check_number
from seminas_tune.controller.proposals import ACQUISITIONS
from seminas_tune.controller.trainer import ControllerConfig, RoundRequest, RoundResult, run_round
from seminas_tune.search.base import ArchSearcher, searcher_parameters


def round_seed(seed: int, iteration: int) -> int:
    """A 31-bit seed for controller round ``iteration`` of a search seeded ``seed``."""
    return int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0] & 0x7FFFFFFF)


def grown_batch(minimum: int, fraction: float, suggested: int, remaining: int) -> int:
    """A round's batch: ``max(minimum, fraction x suggested)``, at most ``remaining``."""
    return min(max(minimum, int(fraction * suggested)), remaining)


def stalled(labeled: list, batch: int) -> bool:
    """Whether the best of ``labeled`` (completion order) came ``max(3 x batch, 30 %)`` or more
    results ago: about three batches, as batches grow with what has been evaluated."""
    scores = [o.score for o in labeled]
    since = len(scores) - 1 - int(np.argmax(scores))
    return since >= max(3 * batch, 0.3 * len(scores))


def check_predictor_settings(s: Any) -> None:
    """Raise ValueError for a bad setting of the controller searchers' shared ``num_unlabeled``,
    ``upsample``, ``ensemble``, ``acquisition`` or ``invalid_cost`` (``s``: their resolved settings)."""
    check_int("num_unlabeled", s.num_unlabeled, low=0)
    check_int("upsample", s.upsample)
    check_int("ensemble", s.ensemble)
    check_choice("acquisition", s.acquisition, ACQUISITIONS)
    if not isinstance(s.invalid_cost, bool):
        raise ValueError(f"invalid_cost must be True or False, got {s.invalid_cost!r}")


def controller_request(searcher: Any, labeled: list, **round_args: Any) -> RoundRequest:
    """The next controller round of a predictor-driven searcher (which holds ``controller``,
    ``num_unlabeled``, ``upsample``, ``ensemble``, ``acquisition``, ``controller_state`` and
    ``iteration``)."""
    return RoundRequest(
        space=searcher.space,
        cfg=searcher.controller,
        labeled=[o.arch for o in labeled],
        scores=np.array([o.score for o in labeled]),
        seen_keys=searcher.seen_keys(),
        num_unlabeled=searcher.num_unlabeled,
        upsample=searcher.upsample,
        state=searcher.controller_state,
        seed=round_seed(searcher.seed, searcher.iteration),
        heads=searcher.ensemble,
        acquisition=searcher.acquisition,
        **round_args,
    )


class SemiNASSearcher(ArchSearcher):
    """Semi-supervised NAO (SemiNAS, Luo et al. 2020, Algorithm 1) as a Tune searcher.

    First ``num_initial`` random architectures are evaluated. Then, each iteration: the
    encoder-predictor-decoder controller is trained on the evaluated ones, ``num_unlabeled``
    random architectures are pseudo-labeled by its predictor, it is trained again on both
    (evaluated ones up-sampled ``upsample`` times), and the ``top_k`` best of both are moved
    along the predictor's gradient and decoded into new architectures. Those decodes, the best
    cells' unseen neighbours, their mutations and the best pseudo-labeled cells are ranked by
    the acquisition over an ensemble of predictor heads, and the first
    ``num_new`` are proposed (the paper's setting: the decodes alone, one predictor). Controller
    training runs in the background (a Ray task; GPU if the cluster has one) while ``suggest``
    returns None, so Tune's event loop never blocks.

    Every argument is keyword-only; the shared ones (space, metric, mode, max_queries, seed,
    preset, ...) are :class:`~seminas_tune.search.base.ArchSearcher`'s. An argument left as None
    comes from the preset (:mod:`seminas_tune.search.presets`; ``"default"`` is one setting for
    every space, ``"paper"`` is the published setting).

    Args:
        num_initial: N, random architectures evaluated first (paper: 100).
        num_unlabeled: M, pseudo-labeled architectures per iteration (paper: 10,000; 0 = NAO).
        top_k: K, seeds for gradient ascent (paper: 100).
        num_new: architectures generated per iteration (paper: 100).
        new_fraction: when > 0, an iteration generates ``max(num_new, new_fraction x
            evaluated so far)``: small early batches feed the predictor back often, later ones
            keep the number of controller trainings (the cost) logarithmic in the budget.
        upsample: repeats of the evaluated set beside the pseudo-labeled set (paper: 10).
        ascent_candidates: candidates decoded by gradient ascent, as a multiple of the batch
            (paper: 1, the batch is the decodes).
        local_candidates: candidates from the unseen neighbours (edit distance 1) of the best
            evaluated architectures, as a multiple of the batch (paper: 0).
        mutation_candidates: candidates from the space's mutations of the 10 best evaluated
            architectures, as a multiple of the batch (paper: 0).
        pool_candidates: candidates from the best-predicted pseudo-labeled architectures, as a
            multiple of the batch (paper: 0).
        explore_share: once the best score has not improved for about three batches
            (:func:`stalled`), this share of each batch is the best-predicted pseudo-labeled
            architectures far from the best evaluated ones (paper: 0).
        escape_share: once the search has stalled, this share of each batch is the best
            evaluated architecture's unseen neighbours, best predicted first; when it has none
            (a local optimum), its unseen two-edit neighbours (paper: 0).
        ensemble: predictor heads on the controller's encoder, each trained with its own
            bootstrap weights (paper: 1).
        acquisition: how the candidates are ranked into the batch: ``"mean"`` (the ensemble's
            mean prediction) or ``"its"`` (independent Thompson sampling from N(mean, spread)).
        invalid_cost: learn an architecture whose result said ``valid=False`` as the worst one
            seen, so proposals steer clear of invalid corners (paper: False, it ignores them).
        controller: controller model and training settings.

    When the candidates are fewer than the batch (a table-restricted space has few members
    near any point), it is topped up with the best-predicted unseen architectures of the
    pseudo-labeled set grown with random ones to ``RoundRequest.fill_pool`` (10,000), then at
    random; the counts are in ``history``.
    """

    short_name = "seminas"
    supports_rescore = True

    def __init__(
        self,
        *,
        num_initial: int | None = None,
        num_unlabeled: int | None = None,
        top_k: int | None = None,
        num_new: int | None = None,
        new_fraction: float | None = None,
        upsample: int | None = None,
        ascent_candidates: float | None = None,
        local_candidates: float | None = None,
        mutation_candidates: float | None = None,
        pool_candidates: float | None = None,
        explore_share: float | None = None,
        escape_share: float | None = None,
        ensemble: int | None = None,
        acquisition: str | None = None,
        invalid_cost: bool | None = None,
        controller: ControllerConfig | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        own = set(searcher_parameters(SemiNASSearcher)) - set(searcher_parameters(ArchSearcher))
        s = self._settings(**{k: v for k, v in locals().items() if k in own})
        for name in ("num_initial", "top_k", "num_new"):
            check_int(name, getattr(s, name))
        for name, hi in (
            ("new_fraction", 10),
            ("ascent_candidates", 100),
            ("local_candidates", 100),
            ("mutation_candidates", 100),
            ("pool_candidates", 100),
            ("explore_share", 1),
            ("escape_share", 1),
        ):
            check_number(name, getattr(s, name), 0, hi)
        check_predictor_settings(s)
        self.num_initial = s.num_initial
        self.num_unlabeled = s.num_unlabeled
        self.top_k = s.top_k
        self.num_new = s.num_new
        self.new_fraction = float(s.new_fraction)
        self.upsample = s.upsample
        self.ascent_candidates = float(s.ascent_candidates)
        self.local_candidates = float(s.local_candidates)
        self.mutation_candidates = float(s.mutation_candidates)
        self.pool_candidates = float(s.pool_candidates)
        self.explore_share = float(s.explore_share)
        self.escape_share = float(s.escape_share)
        self.ensemble = s.ensemble
        self.acquisition = s.acquisition
        self.invalid_cost = s.invalid_cost
        self.controller = s.controller
        self.iteration = 0
        self.controller_state: dict | None = None
        self.history: list[dict] = []

    def _propose(self) -> list | None:
        decided, batch = self._round_step(self.num_initial, self._apply)
        if decided:
            return batch
        labeled, size = self.learning_labels(self.invalid_cost), self._batch(self.max_queries - self.num_spent)
        if not labeled:  # every evaluation failed: keep exploring at random
            return self.sample_new(size)
        stall = stalled(labeled, self.num_new)
        request = controller_request(
            self,
            labeled,
            top_k=self.top_k,
            max_flops=self.max_flops,
            num_new=size,
            num_ascent=int(round(self.ascent_candidates * size)),
            num_local=int(round(self.local_candidates * size)),
            num_mutation=int(round(self.mutation_candidates * size)),
            num_pool=int(round(self.pool_candidates * size)),
            num_explore=int(round(self.explore_share * size)) if stall else 0,
            num_complete=int(round(self.escape_share * size)) if stall else 0,
        )
        return self._start_round(run_round, request, self._apply)

    def _batch(self, remaining: int) -> int:
        """Architectures the next iteration proposes."""
        return grown_batch(self.num_new, self.new_fraction, self.num_spent, remaining)

    def _apply(self, result: RoundResult, remaining: int) -> list:
        self.controller_state = result.state
        self.iteration += 1
        new = [a for a in result.new_archs if self.is_new(a)]
        want = self._batch(remaining)
        fill = self.sample_new(want - len(new)) if len(new) < want else []
        self.history.append({**result.info, "iteration": self.iteration, "random_fill": len(fill)})
        return new + fill


class NAOSearcher(SemiNASSearcher):
    """NAO (Luo et al. 2018): SemiNAS without pseudo-labels (its presets set ``num_unlabeled=0``)."""

    short_name = "nao"
