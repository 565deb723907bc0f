"""Random search as a Ray Tune searcher."""

from __future__ import annotations

from seminas_tune.search.base import ArchSearcher


class RandomSearcher(ArchSearcher):
    """Uniform sampling of valid architectures, never repeating a canonical key."""

    def _propose(self) -> list | None:
        return self.sample_new(1)
