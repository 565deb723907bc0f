"""Search spaces: one file per space, all implementing :class:`SearchSpace`; a Tune
``param_space`` becomes a :class:`CategoricalSpace`."""

from seminas_tune.spaces.base import InvalidConfigError, SearchSpace
from seminas_tune.spaces.categorical import CategoricalSpace
from seminas_tune.spaces.mobilenetv2 import MobileNetV2Config, MobileNetV2Space
from seminas_tune.spaces.nasbench101 import NASBench101Space
from seminas_tune.spaces.nasbench201 import NASBench201Space
from seminas_tune.spaces.tts import TTSSpace

__all__ = [
    "CategoricalSpace",
    "InvalidConfigError",
    "MobileNetV2Config",
    "MobileNetV2Space",
    "NASBench101Space",
    "NASBench201Space",
    "SearchSpace",
    "TTSSpace",
]
