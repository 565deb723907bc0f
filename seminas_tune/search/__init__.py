"""Ray Tune searchers over the package's search spaces."""

from seminas_tune.search.bananas import BANANASSearcher
from seminas_tune.search.base import ArchSearcher, CheckpointError, Observation, resolved_settings, searcher_parameters
from seminas_tune.search.evolution import RegularizedEvolutionSearcher, SemiNASRESearcher
from seminas_tune.search.local import LocalSearchSearcher
from seminas_tune.search.random_search import RandomSearcher
from seminas_tune.search.seminas import NAOSearcher, SemiNASSearcher

SEARCHERS = {
    cls.short_name: cls
    for cls in (
        SemiNASSearcher,
        NAOSearcher,
        SemiNASRESearcher,
        RegularizedEvolutionSearcher,
        LocalSearchSearcher,
        BANANASSearcher,
        RandomSearcher,
    )
}
"""Every searcher of the package by short name (the CLI's and the benchmarks' vocabulary)."""

__all__ = [
    "SEARCHERS",
    "ArchSearcher",
    "BANANASSearcher",
    "CheckpointError",
    "LocalSearchSearcher",
    "NAOSearcher",
    "Observation",
    "RandomSearcher",
    "RegularizedEvolutionSearcher",
    "SemiNASRESearcher",
    "SemiNASSearcher",
    "resolved_settings",
    "searcher_parameters",
]
