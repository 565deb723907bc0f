"""Local search (White et al. 2021) as a Ray Tune searcher."""

from __future__ import annotations

from typing import Any

from seminas_tune._checks import check_int
from seminas_tune.search.base import ArchSearcher, Observation


class LocalSearchSearcher(ArchSearcher):
    """Hill climbing over edit-distance-1 neighbours, with random restarts.

    Start from the best of ``num_initial`` random architectures; evaluate all unseen
    neighbours of the current one; move to the best neighbour if it improves, else restart
    from a fresh random architecture (a local optimum was reached).

    Args (keyword-only, beside :class:`~seminas_tune.search.base.ArchSearcher`'s):
        num_initial: random architectures evaluated before the first climb.
    """

    short_name = "local"

    def __init__(self, *, num_initial: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        num_initial = self._settings(num_initial=num_initial).num_initial
        check_int("num_initial", num_initial)
        self.num_initial = num_initial
        self.current: Observation | None = None  # at the centre of the climb
        self.restarts = 0
        self._batch_keys: list = []  # in suggestion order: ties go to the earliest suggested
        self._restart_pending = False

    def _by_key(self) -> dict:
        return {o.key: o for o in self.results()}

    def _propose(self) -> list | None:
        if self.num_spent < self.num_initial:
            return self.sample_new(self.num_initial - self.num_spent)
        if self._pending:
            return None  # the neighbourhood's results decide the next move
        done = self._by_key()
        if not done:
            return self.sample_new(1)
        if self._restart_pending:  # the restart point has been evaluated: climb from it
            self._restart_pending = False
            newest = self.results()[-1]
            self.current = newest
        elif self.current is None:
            self.current = max(done.values(), key=lambda o: o.score)
        else:
            batch = [done[k] for k in self._batch_keys if k in done]
            best = max(batch, key=lambda o: o.score, default=None)
            if best is not None and best.score > self.current.score:
                self.current = best
            elif best is not None or not self._batch_keys:
                return self._restart()
        nbrs = [a for a in self.space.neighbours(self.current.arch) if self.is_new(a)]
        if not nbrs:
            return self._restart()
        order = self.rng.permutation(len(nbrs))
        batch = [nbrs[i] for i in order]
        self._batch_keys = [self.space.key(a) for a in batch]
        return batch

    def _restart(self) -> list:
        self.restarts += 1
        self._batch_keys = []
        self._restart_pending = True
        return self.sample_new(1)
