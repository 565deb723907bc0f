"""Weight-sharing supernets trained across Ray Tune trials (one sharing mechanism for all)."""

from seminas_tune.supernet.image import ImageSupernet, ImageSupernetConfig, ImageSupernetTask, export_arch
from seminas_tune.supernet.nb101_net import NB101NetConfig, NB101Network, build_nb101_network
from seminas_tune.supernet.sharing import (
    SharingConfig,
    SupernetTask,
    run_shared_trial,
    shared_supernet_trainable,
    supernet_from_store,
    supernet_trainable_with_resources,
    trial_resources,
)
from seminas_tune.supernet.store import WeightStore
from seminas_tune.supernet.tts import TTSNet, TTSSupernetTask, TTSTaskConfig, export_architecture, synthesize_to_wav

__all__ = [
    "ImageSupernet",
    "ImageSupernetConfig",
    "ImageSupernetTask",
    "NB101NetConfig",
    "NB101Network",
    "SharingConfig",
    "SupernetTask",
    "TTSNet",
    "TTSSupernetTask",
    "TTSTaskConfig",
    "WeightStore",
    "build_nb101_network",
    "export_arch",
    "export_architecture",
    "run_shared_trial",
    "shared_supernet_trainable",
    "supernet_from_store",
    "supernet_trainable_with_resources",
    "synthesize_to_wav",
    "trial_resources",
]
