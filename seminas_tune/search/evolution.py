"""Regularized evolution and SemiNAS (RE) as Ray Tune searchers."""

from __future__ import annotations

from typing import Any

from seminas_tune._checks import check_int
from seminas_tune.controller.trainer import ControllerConfig, RoundResult, run_round
from seminas_tune.search.base import ArchSearcher, searcher_parameters
from seminas_tune.search.seminas import check_predictor_settings, controller_request


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
        if self.num_suggested < self.population_size:
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

    Each step draws ``children_per_step`` children by tournament and mutation, scores them
    with the predictor (trained, in the background, on the evaluated architectures plus
    ``num_unlabeled`` pseudo-labeled ones), and queues the ``evals_per_step`` best-predicted.
    With the defaults that is 100 children scored per 10 evaluations (10 per evaluation): a
    large enough pool for the predictor's ranking to matter, small enough that the children
    stay near the population (at 10 mutations per evaluation the pool covers most of the
    parents' neighbourhoods on NB-101), and the predictor is retrained every 10 labels.

    Args (keyword-only, beside :class:`RegularizedEvolutionSearcher`'s):
        children_per_step: children scored per step.
        evals_per_step: best-predicted children evaluated per step (and labels between
            predictor retrainings).
        num_unlabeled, upsample, ensemble, acquisition, controller: as for
            :class:`~seminas_tune.search.seminas.SemiNASSearcher`; the acquisition ranks the children.
    """

    short_name = "seminas_re"
    supports_rescore = True

    def __init__(
        self,
        *,
        children_per_step: int | None = None,
        evals_per_step: int | None = None,
        num_unlabeled: int | None = None,
        upsample: int | None = None,
        ensemble: int | None = None,
        acquisition: str | None = None,
        controller: ControllerConfig | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        own = set(searcher_parameters(SemiNASRESearcher)) - set(searcher_parameters(RegularizedEvolutionSearcher))
        s = self._settings(**{k: v for k, v in locals().items() if k in own})
        children_per_step, evals_per_step = s.children_per_step, s.evals_per_step
        check_int("children_per_step", children_per_step)
        check_int("evals_per_step", evals_per_step)
        if not 1 <= evals_per_step <= children_per_step:
            raise ValueError(
                f"need 1 <= evals_per_step <= children_per_step, got {evals_per_step} and {children_per_step}"
            )
        self.children_per_step = children_per_step
        self.evals_per_step = evals_per_step
        self.num_unlabeled = s.num_unlabeled
        self.upsample = s.upsample
        check_predictor_settings(s)
        self.ensemble = s.ensemble
        self.acquisition = s.acquisition
        self.controller = s.controller
        self.iteration = 0
        self.controller_state: dict | None = None
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
        labeled = self.results()
        if not labeled:
            return self.sample_new(1)
        children, keys, pop = [], set(), self.population()
        for _ in range(self.children_per_step):
            c = self.child(pop)
            if c is not None and self.space.key(c) not in keys:
                keys.add(self.space.key(c))
                children.append(c)
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
        remaining = self.max_queries - self.num_suggested
        best = [self._children[i] for i in order[: min(self.evals_per_step, remaining)]]
        self._children = []
        return best
