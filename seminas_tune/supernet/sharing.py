"""Weight sharing across Ray Tune trials, one mechanism for every supernet.

A :class:`WeightStore` Ray actor holds the supernet's current weights. Each trial pulls them,
trains its own path for a few steps, and pushes back the *difference* it made; the store adds
differences, so concurrent trials on several GPUs all land their updates instead of the last
writer winning. The trainable returned by :func:`shared_supernet_trainable` works for any
:class:`SupernetTask` (image or speech).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
import torch


class SupernetTask(abc.ABC):
    """What a supernet brings to the shared-weights trainable.

    Subclasses are plain picklable objects (configs and data paths, no tensors): they are
    shipped to every trial.
    """

    space: Any  # a seminas_tune.spaces.SearchSpace

    @abc.abstractmethod
    def build(self) -> torch.nn.Module:
        """A freshly initialised supernet (deterministic for a given task)."""

    @abc.abstractmethod
    def train_path(self, model: torch.nn.Module, arch: Any, steps: int, device: torch.device) -> dict:
        """Train ``arch``'s path for ``steps`` steps; return metrics such as ``train_loss``."""

    @abc.abstractmethod
    def evaluate(self, model: torch.nn.Module, arch: Any, device: torch.device) -> dict:
        """Metrics of ``arch`` on held-out data (e.g. ``val_accuracy`` or ``dfr``)."""


@ray.remote(num_cpus=0)
class WeightStore:
    """Holds the shared supernet weights; applies pushed deltas in arrival order."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self._state = {k: v.detach().cpu().clone() for k, v in state.items()}
        self._version = 0
        self._log: list[dict] = []

    def pull(self) -> tuple[int, dict[str, torch.Tensor]]:
        return self._version, self._state

    def push(self, delta: dict[str, torch.Tensor], base_version: int, trial: str = "") -> int:
        for k, d in delta.items():
            target = self._state[k]
            if target.is_floating_point():
                target.add_(d.to(target.dtype))
            else:  # integer buffers (BN's num_batches_tracked): take the larger count
                target.copy_(torch.maximum(target, d))
        self._version += 1
        self._log.append({"trial": trial, "base": base_version, "version": self._version, "time": time.time()})
        return self._version

    def version(self) -> int:
        return self._version

    def log(self) -> list[dict]:
        return list(self._log)


@dataclass
class SharingConfig:
    """Settings of a shared-supernet experiment.

    Attributes:
        steps_per_trial: T, training steps each trial gives its path (cost C = N x T).
        store_name: name of the WeightStore actor (one per experiment).
        namespace: Ray namespace holding the actor.
    """

    steps_per_trial: int = 50
    store_name: str = "seminas_supernet"
    namespace: str = "seminas_tune"


def get_or_create_store(task: SupernetTask, cfg: SharingConfig) -> ray.actor.ActorHandle:
    """The experiment's WeightStore, created from ``task.build()`` on first use."""
    try:
        return ray.get_actor(cfg.store_name, namespace=cfg.namespace)
    except ValueError:
        pass
    torch.manual_seed(0)
    state = task.build().state_dict()
    # "DEFAULT" keeps the store out of the creating trial's placement group, which Tune
    # removes (killing the actor with it) when that trial ends.
    return WeightStore.options(
        name=cfg.store_name,
        namespace=cfg.namespace,
        get_if_exists=True,
        lifetime="detached",
        scheduling_strategy="DEFAULT",
    ).remote(state)


def _device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def run_shared_trial(task: SupernetTask, cfg: SharingConfig, config: dict, trial: str = "") -> dict:
    """Pull, train one path, push the delta, evaluate: the body of one trial."""
    arch = task.space.arch_of(config)
    reason = task.space.invalid_reason(arch)
    if reason is not None:
        raise ValueError(f"config is not a valid {task.space.name} architecture: {reason}")
    store = get_or_create_store(task, cfg)
    device = _device()
    model = task.build()
    version, state = ray.get(store.pull.remote())
    model.load_state_dict(state)
    model.to(device)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_metrics = task.train_path(model, arch, cfg.steps_per_trial, device)
    after = model.state_dict()
    delta = {}
    for k, v in after.items():
        if v.is_floating_point():
            d = (v.detach() - before[k]).cpu()
            if d.any():
                delta[k] = d
        else:
            delta[k] = v.detach().cpu()
    new_version = ray.get(store.push.remote(delta, version, trial))
    metrics = task.evaluate(model, arch, device)
    return {**train_metrics, **metrics, "base_version": version, "store_version": new_version}


def shared_supernet_trainable(task: SupernetTask, cfg: SharingConfig | None = None) -> Callable:
    """A Tune function trainable: one architecture per trial on the shared supernet.

    Wrap it with ``tune.with_resources(..., {"cpu": 1, "gpu": 0.25})`` to pack trials on GPUs.
    """
    cfg = cfg or SharingConfig()

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        trial = tune.get_context().get_trial_id() or ""
        tune.report(run_shared_trial(task, cfg, config, trial))

    trainable.__name__ = f"{type(task).__name__}_trainable"
    return trainable


def supernet_from_store(task: SupernetTask, sharing: SharingConfig) -> torch.nn.Module:
    """The supernet with the current weights of an experiment's WeightStore (on CPU).

    Raises:
        LookupError: no store of that name is running in this Ray cluster.
    """
    try:
        store = ray.get_actor(sharing.store_name, namespace=sharing.namespace)
    except ValueError:
        raise LookupError(
            f"no WeightStore named {sharing.store_name!r} in namespace "
            f"{sharing.namespace!r}: run the search first (same SharingConfig)"
        ) from None
    model = task.build()
    model.load_state_dict(ray.get(store.pull.remote())[1])
    return model


def cluster_gpus() -> float:
    """GPUs Ray can schedule on (this machine's CUDA devices when Ray is not started yet)."""
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
        raise ValueError(
            f"gpus_per_trial={gpus} but the Ray cluster has no GPU: trials would stay "
            f"PENDING forever; pass gpus_per_trial=0 to train on CPU"
        )
    return {"cpu": cpus_per_trial, "gpu": gpus}


def supernet_trainable_with_resources(
    task: SupernetTask,
    sharing: SharingConfig | None = None,
    gpus_per_trial: float | None = None,
    cpus_per_trial: float = 1.0,
) -> Callable:
    """``tune.with_resources`` trainable: one path of ``task``'s shared supernet per trial.

    Raises:
        ValueError: GPUs are requested but the Ray cluster has none.
    """
    from ray import tune

    trainable = shared_supernet_trainable(task, sharing or SharingConfig())
    return tune.with_resources(trainable, trial_resources(gpus_per_trial, cpus_per_trial))
