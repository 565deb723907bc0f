"""seminas-tune: SemiNAS and friends as Ray Tune searchers, with NAS-Bench and supernet trainables."""

from seminas_tune.search import NAOSearcher, SemiNASSearcher
from seminas_tune.spaces import NASBench101Space, NASBench201Space, SearchSpace

__version__ = "0.1.0"

__all__ = [
    "NAOSearcher",
    "NASBench101Space",
    "NASBench201Space",
    "SearchSpace",
    "SemiNASSearcher",
]
