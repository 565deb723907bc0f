"""Regularized evolution and SemiNAS (RE) as Ray Tune searchers."""

from __future__ import annotations

from typing import Any

from seminas_tune._checks import check_int, check_number
from seminas_tune.controller.trainer import ControllerConfig, RoundResult, run_round
from seminas_tune.search.base import ArchSearcher, searcher_parameters
from seminas_tune.search.seminas import check_predictor_settings, controller_request, grown_batch


class RegularizedEvolutionSearcher(ArchSearcher):
    """Regularized (aging) evolution, Real et al. 2019, asynchronous.

    After ``population_size`` random architectures, each suggestion is a mutation of the best
    of ``tournament_size`` members drawn from the population: the ``population_size`` most
    recent successful evaluations (the oldest leaves as a new one arrives). Defaults are the
    NAS-Bench-101 paper's (population 50, tournament 10).

    Args (keyword-only, beside :class:`~seminas_tune.search.base.ArchSearcher`'s):
        population_size: P.
        tournament_size: S.
    """

    short_name = "re"

    def __init__(self, *, population_size: int | None = None, tournament_size: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        s = self._settings(population_size=population_size, tournament_size=tournament_size)
        population_size, tournament_size = s.population_size, s.tournament_size
        check_int("population_size", population_size)
        check_int("tournament_size", tournament_size)
        if not 1 <= tournament_size <= population_size:
            raise ValueError(
                f"need 1 <= tournament_size <= population_size, got {tournament_size} and {population_size}"
            )
        self.population_size = population_size
        self.num_initial = population_size  # random architectures before the first child
        self.tournament_size = tournament_size

    def population(self) -> list:
        return self.results()[-self.population_size :]

    def child(self, pop: list | None = None) -> object | None:
        """Tournament selection and mutation from ``pop`` (default: the current population);
        None when no new child can be found."""
        pop = self.population() if pop is None else pop
        for _ in range(100):
            idx = self.rng.choice(len(pop), size=min(self.tournament_size, len(pop)), replace=False)
            parent = max((pop[i] for i in idx), key=lambda o: o.score)
            child = self.space.mutate(parent.arch, self.rng)
            if self.is_new(child):
                return child
        return None

    def _initial(self) -> list | None:
        """Random initial population; None once it is fully suggested."""
        if self.num_spent < self.num_initial:
            return self.sample_new(1)
        return None

    def _propose(self) -> list | None:
        initial = self._initial()
        if initial is not None:
            return initial
        if not self.results():
            return None if self._pending else self.sample_new(1)
        child = self.child()
        return [child] if child is not None else self.sample_new(1)


class SemiNASRESearcher(RegularizedEvolutionSearcher):
    """SemiNAS (RE): regularized evolution whose children are ranked by the semi-supervised
    predictor, evaluating only the best-predicted.

    Each step draws ``children_per_step`` children by tournament and mutation, adds
    ``random_candidates`` random unseen architectures, scores them with the predictor (trained,
    in the background, on the evaluated architectures plus ``num_unlabeled`` pseudo-labeled
    ones) and queues the best by the acquisition. The paper's setting: 100 children per 10
    evaluations, one predictor, no random candidates. The default preset gives it SemiNAS's
    predictor and schedule (:mod:`seminas_tune.search.presets`).

    Args (keyword-only, beside :class:`RegularizedEvolutionSearcher`'s):
        num_initial: random architectures evaluated before the predictor ranks children
            (None: ``population_size``, as RE starts); the population is always the
            ``population_size`` most recent evaluations.
        children_per_step: children scored per step.
        evals_per_step: best-predicted children evaluated per step (and labels between
            predictor retrainings).
        random_candidates: random unseen architectures ranked beside the children each step
            (global moves out of the population's basin; the paper: 0).
        new_fraction: when > 0, a step evaluates ``max(evals_per_step, new_fraction x
            evaluated so far)``, as :class:`~seminas_tune.search.seminas.SemiNASSearcher`'s
            batches grow.
        num_unlabeled, upsample, ensemble, acquisition, invalid_cost, controller: as for
            :class:`~seminas_tune.search.seminas.SemiNASSearcher`; the acquisition ranks the children.
    """

    short_name = "seminas_re"
    supports_rescore = True

    def __init__(
        self,
        *,
        num_initial: int | None = None,
        children_per_step: int | None = None,
        evals_per_step: int | None = None,
        random_candidates: int | None = None,
        new_fraction: float | None = None,
        num_unlabeled: int | None = None,
        upsample: int | None = None,
        ensemble: int | None = None,
        acquisition: str | None = None,
        invalid_cost: bool | None = None,
        controller: ControllerConfig | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        own = set(searcher_parameters(SemiNASRESearcher)) - set(searcher_parameters(RegularizedEvolutionSearcher))
        s = self._settings(**{k: v for k, v in locals().items() if k in own})
        for name in ("children_per_step", "evals_per_step"):
            check_int(name, getattr(s, name))
        check_int("random_candidates", s.random_candidates, low=0)
        if s.evals_per_step > s.children_per_step + s.random_candidates:
            raise ValueError(
                f"evals_per_step ({s.evals_per_step}) exceeds the candidates per step: children_per_step "
                f"({s.children_per_step}) + random_candidates ({s.random_candidates}); lower it or raise those"
            )
        check_number("new_fraction", s.new_fraction, 0, 10)
        if s.num_initial is not None:
            check_int("num_initial", s.num_initial)
            self.num_initial = s.num_initial
        self.children_per_step = s.children_per_step
        self.evals_per_step = s.evals_per_step
        self.random_candidates = s.random_candidates
        self.new_fraction = float(s.new_fraction)
        self.num_unlabeled = s.num_unlabeled
        self.upsample = s.upsample
        check_predictor_settings(s)
        self.ensemble = s.ensemble
        self.acquisition = s.acquisition
        self.invalid_cost = s.invalid_cost
        self.controller = s.controller
        self.iteration = 0
        self.controller_state: dict | None = None
        self.history: list[dict] = []
        self._children: list = []

    def _propose(self) -> list | None:
        initial = self._initial()
        if initial is not None:
            return initial
        done, result = self.poll_job()
        if done:
            return self._apply(result)
        if self.job_running or self._pending or not self.labels_ready():
            return None
        labeled = self.learning_labels(self.invalid_cost)
        if not labeled:
            return self.sample_new(1)
        children, keys, pop = [], set(), self.population()
        for _ in range(self.children_per_step):
            c = self.child(pop)
            if c is not None and self.space.key(c) not in keys:
                keys.add(self.space.key(c))
                children.append(c)
        children += [a for a in self.sample_new(self.random_candidates) if self.space.key(a) not in keys]
        if not children:
            return self.sample_new(1)
        self._children = children
        request = controller_request(self, labeled, top_k=1, num_new=0, candidates=children)
        self.start_job(run_round, request)
        done, result = self.poll_job()
        return self._apply(result) if done else None

    def _apply(self, result: RoundResult) -> list:
        self.controller_state = result.state
        self.iteration += 1
        order = result.candidate_order
        size = grown_batch(self.evals_per_step, self.new_fraction, self.num_spent, self.max_queries - self.num_spent)
        best = [self._children[i] for i in order[:size]]
        self.history.append({**result.info, "iteration": self.iteration, "candidates": len(self._children)})
        self._children = []
        return best
