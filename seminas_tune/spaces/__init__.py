"""Search spaces: one file per space, all implementing :class:`SearchSpace`."""

from seminas_tune.spaces.base import InvalidConfigError, SearchSpace
from seminas_tune.spaces.nasbench101 import NASBench101Space
from seminas_tune.spaces.nasbench201 import NASBench201Space

__all__ = ["InvalidConfigError", "NASBench101Space", "NASBench201Space", "SearchSpace"]
