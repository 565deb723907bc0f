"""Ray Tune searchers over the package's search spaces."""

from seminas_tune.search.base import ArchSearcher, CheckpointError, Observation
from seminas_tune.search.seminas import NAOSearcher, SemiNASSearcher

__all__ = ["ArchSearcher", "CheckpointError", "NAOSearcher", "Observation", "SemiNASSearcher"]
