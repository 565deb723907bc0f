"""seminas-tune: SemiNAS and friends as Ray Tune searchers, with NAS-Bench and supernet trainables."""

from seminas_tune.search import (
    BANANASSearcher,
    LocalSearchSearcher,
    NAOSearcher,
    RandomSearcher,
    RegularizedEvolutionSearcher,
    SemiNASRESearcher,
    SemiNASSearcher,
)
from seminas_tune.spaces import (
    CategoricalSpace,
    MobileNetV2Space,
    NASBench101Space,
    NASBench201Space,
    SearchSpace,
    TTSSpace,
)

__version__ = "0.1.0"

__all__ = [
    "BANANASSearcher",
    "CategoricalSpace",
    "LocalSearchSearcher",
    "MobileNetV2Space",
    "NAOSearcher",
    "NASBench101Space",
    "NASBench201Space",
    "RandomSearcher",
    "RegularizedEvolutionSearcher",
    "SearchSpace",
    "SemiNASRESearcher",
    "SemiNASSearcher",
    "TTSSpace",
]
