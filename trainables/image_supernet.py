"""Ray Tune trainable for the weight-sharing image supernet (one architecture per trial).

    trainable = image_supernet_trainable(ImageSupernetConfig(data=ImageDataConfig(root=...)),
                                         SharingConfig(steps_per_trial=200, store_name="exp1"))
    tune.Tuner(trainable, param_space=space.tune_space(), ...)

The trial's config holds the architecture (``space.to_config(arch)``, keys ``layer_00..20``);
each trial reports ``val_accuracy``, ``flops``, ``params``, ``train_loss`` and store versions.
"""

from __future__ import annotations

from typing import Callable

import torch

from seminas_tune.supernet.image import ImageSupernetConfig, ImageSupernetTask
from seminas_tune.supernet.sharing import SharingConfig, shared_supernet_trainable


def cluster_gpus() -> float:
    """GPUs Ray can schedule on (this machine's CUDA devices when Ray is not started yet)."""
    import ray

    if ray.is_initialized():
        return float(ray.cluster_resources().get("GPU", 0.0))
    return float(torch.cuda.device_count())


def trial_resources(gpus_per_trial: float | None = None, cpus_per_trial: float = 1.0) -> dict:
    """Resources of one trial: ``gpus_per_trial`` GPUs (default 1 when the cluster has GPUs, else 0).

    Raises:
        ValueError: GPUs are requested but the cluster has none (the trials would stay PENDING).
    """
    available = cluster_gpus()
    gpus = (1.0 if available else 0.0) if gpus_per_trial is None else float(gpus_per_trial)
    if gpus > 0 and available == 0:
        raise ValueError(f"gpus_per_trial={gpus} but the Ray cluster has no GPU: trials would stay "
                         f"PENDING forever; pass gpus_per_trial=0 to train on CPU")
    return {"cpu": cpus_per_trial, "gpu": gpus}


def image_supernet_trainable(config: ImageSupernetConfig, sharing: SharingConfig | None = None,
                             gpus_per_trial: float | None = None,
                             cpus_per_trial: float = 1.0) -> Callable:
    """``tune.with_resources`` trainable training one path of the shared supernet per trial."""
    from ray import tune

    task = ImageSupernetTask(config)
    trainable = shared_supernet_trainable(task, sharing or SharingConfig())
    return tune.with_resources(trainable, trial_resources(gpus_per_trial, cpus_per_trial))
