"""Ray Tune trainable for the weight-sharing image supernet (one architecture per trial).

    trainable = image_supernet_trainable(ImageSupernetConfig(data=ImageDataConfig(root=...)),
                                         SharingConfig(steps_per_trial=200, store_name="exp1"))
    tune.Tuner(trainable, param_space=space.tune_space(), ...)

The trial's config holds the architecture (``space.to_config(arch)``, keys ``layer_00..20``);
each trial reports ``val_accuracy``, ``flops``, ``params``, ``train_loss`` and store versions.
"""

from __future__ import annotations

from collections.abc import Callable

from seminas_tune.supernet.image import ImageSupernetConfig, ImageSupernetTask
from seminas_tune.supernet.sharing import (  # noqa: F401 (trial_resources re-exported)
    SharingConfig,
    supernet_trainable_with_resources,
    trial_resources,
)


def image_supernet_trainable(
    config: ImageSupernetConfig,
    sharing: SharingConfig | None = None,
    gpus_per_trial: float | None = None,
    cpus_per_trial: float = 1.0,
) -> Callable:
    """``tune.with_resources`` trainable training one path of the shared supernet per trial."""
    return supernet_trainable_with_resources(ImageSupernetTask(config), sharing, gpus_per_trial, cpus_per_trial)
