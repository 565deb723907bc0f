"""Weight sharing across Ray Tune trials, one mechanism for every supernet.

A :class:`WeightStore` Ray actor holds the supernet's current weights, the architectures trained
so far (the pool) and a version count. Each trial pulls the weights, trains for T steps on its
own architecture's path mixed with pool paths (``pool_fraction``), and pushes back
the *difference* it made to the parameters; the store adds differences, so concurrent trials
all land their updates. Buffers
(BatchNorm running statistics) are never pushed: a mix of paths has no meaningful statistics, so
every evaluation and every export re-estimates them for its own path.

Scores are made comparable by :class:`SupernetScorer`: the searcher calls it (as a background Ray
task) before each round of learning; it freezes a *snapshot* of the store, checkpoints it into
the experiment's storage, and scores every architecture the searcher learns from on that one
snapshot. A store that dies, or a ``Tuner.restore``, starts again from the last checkpoint.
See ``docs/supernet_protocol.md``.
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

from seminas_tune.supernet.store import CHECKPOINT_NAME, WeightStore, parameter_deltas


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
    def train_paths(self, model: torch.nn.Module, archs: Sequence[Any], device: torch.device) -> dict:
        """One training step per entry of ``archs`` (each step trains that path); return metrics
        such as ``train_loss``."""

    @abc.abstractmethod
    def evaluate(self, model: torch.nn.Module, arch: Any, device: torch.device) -> dict:
        """Metrics of ``arch`` on held-out data (e.g. ``val_accuracy`` or ``dfr``)."""

    @abc.abstractmethod
    def export(self, model: torch.nn.Module, arch: Any, device: torch.device | None = None) -> torch.nn.Module:
        """The standalone network of ``arch`` with the supernet's weights, ready for inference
        (normalisation statistics re-estimated where the network has any)."""

    def train_path(self, model: torch.nn.Module, arch: Any, steps: int, device: torch.device) -> dict:
        """Train one path for ``steps`` steps."""
        return self.train_paths(model, [arch] * steps, device)


@dataclass
class SharingConfig:
    """Settings of a shared-supernet experiment.

    Attributes:
        steps_per_trial: T, training steps each trial gives the supernet (cost C = N x T).
        pool_fraction: share of a trial's steps spent on paths drawn uniformly from the pool
            (every architecture trained so far) instead of its own, as the paper trains its
            supernet on the pool. 0.5: on the digits ranking benchmark it ranked better than 0
            (Kendall tau with stand-alone training 0.53 against 0.42, 6 paired trainings).
        ema_decay: the store keeps an exponential moving average of the weights, this decay per
            push (trial; a plain mean over each entry's first pushes); snapshots, and so every
            re-score and export, use it. Trials train the current weights. 0: score the current
            weights. On the digits ranking benchmark (own-path trials) 0.9 ranked better than 0
            in every round (Kendall tau with stand-alone training 0.45 against 0.30, mean over
            rounds).
        checkpoint_dir: where the store checkpoints the supernet. None: a ``supernet/<store_name>``
            folder beside the trials in the experiment's storage (use an explicit shared folder
            on multi-node clusters with remote storage).
        checkpoint_every: pushes between checkpoints (and one at every snapshot).
        store_name: name of the WeightStore actor (one per experiment).
        namespace: Ray namespace holding the actor.
    """

    steps_per_trial: int = 50
    pool_fraction: float = 0.5
    ema_decay: float = 0.9
    checkpoint_dir: str | None = None
    checkpoint_every: int = 10
    store_name: str = "seminas_supernet"
    namespace: str = "seminas_tune"

    def __post_init__(self):
        if not 0 <= self.pool_fraction <= 1:
            raise ValueError(f"pool_fraction must be in [0, 1], got {self.pool_fraction!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not isinstance(self.steps_per_trial, int) or self.steps_per_trial < 1:
            raise ValueError(f"steps_per_trial must be a positive integer, got {self.steps_per_trial!r}")


def _running_store(cfg: SharingConfig):
    try:
        return ray.get_actor(cfg.store_name, namespace=cfg.namespace)
    except ValueError:
        return None


def _start_store(cfg: SharingConfig, state: dict, checkpoint_dir: str | None):
    # "DEFAULT" keeps the store out of the creating trial's placement group, which Tune
    # removes (killing the actor with it) when that trial ends.
    return WeightStore.options(
        name=cfg.store_name,
        namespace=cfg.namespace,
        get_if_exists=True,
        lifetime="detached",
        scheduling_strategy="DEFAULT",
    ).remote(state, checkpoint_dir, cfg.checkpoint_every, cfg.ema_decay)


def get_or_create_store(task: SupernetTask, cfg: SharingConfig, default_dir: str | None = None):
    """The experiment's WeightStore: the running actor, else one started from the checkpoint in
    ``cfg.checkpoint_dir or default_dir`` (when there is one), else from ``task.build()``."""
    store = _running_store(cfg)
    if store is not None:
        return store
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        state = task.build().state_dict()
    return _start_store(cfg, state, cfg.checkpoint_dir or default_dir)


def existing_store(cfg: SharingConfig):
    """The running store of ``cfg``, or one restarted from ``cfg.checkpoint_dir``.

    Raises:
        LookupError: no store of that name is running and there is no checkpoint to start from.
    """
    store = _running_store(cfg)
    if store is not None:
        return store
    if cfg.checkpoint_dir and (Path(cfg.checkpoint_dir) / CHECKPOINT_NAME).exists():
        return _start_store(cfg, {}, cfg.checkpoint_dir)
    raise LookupError(
        f"no WeightStore named {cfg.store_name!r} in namespace {cfg.namespace!r} and no checkpoint "
        f"in checkpoint_dir={cfg.checkpoint_dir!r}: run the search first (same SharingConfig)"
    )


def device() -> torch.device:
    """CUDA when available (with cuDNN autotuning: shapes are fixed within a trial), else CPU."""
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        return torch.device("cuda")
    return torch.device("cpu")


def _with_weights(task: SupernetTask, state: dict[str, torch.Tensor], dev: torch.device) -> torch.nn.Module:
    """``task.build()`` holding a store's weights, on ``dev``."""
    model = task.build()
    model.load_state_dict(state)
    return model.to(dev)


def path_schedule(arch: Any, pool: Sequence, steps: int, pool_fraction: float, seed: int) -> list:
    """The path of each of ``steps`` steps: ``arch``, or with probability ``pool_fraction`` a
    pool member drawn uniformly."""
    rng = np.random.default_rng(seed)
    others = [a for a in pool if a != arch]
    if not others:
        return [arch] * steps
    return [others[rng.integers(len(others))] if rng.random() < pool_fraction else arch for _ in range(steps)]


def run_shared_trial(
    task: SupernetTask, cfg: SharingConfig, config: dict, trial: str = "", default_dir: str | None = None
) -> dict:
    """Pull, train on the pool's paths, push the parameter delta, evaluate: one trial's body."""
    arch = task.space.arch_of(config)
    reason = task.space.invalid_reason(arch)
    if reason is not None:
        raise ValueError(f"config is not a valid {task.space.name} architecture: {reason}")
    store = get_or_create_store(task, cfg, default_dir)
    dev = device()
    version, state, pool = ray.get(store.pull.remote())
    model = _with_weights(task, state, dev)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    paths = path_schedule(arch, pool, cfg.steps_per_trial, cfg.pool_fraction, zlib.crc32(f"{trial}:{version}".encode()))
    train_metrics = task.train_paths(model, paths, dev)
    delta = parameter_deltas(model, before)
    new_version = ray.get(store.push.remote(delta, version, trial, arch))
    metrics = task.evaluate(model, arch, dev)
    own = sum(1 for p in paths if p == arch)
    return {**train_metrics, **metrics, "base_version": version, "store_version": new_version, "own_steps": own}


def default_checkpoint_dir(experiment_dir: str | Path, cfg: SharingConfig) -> str:
    """Where a store without ``cfg.checkpoint_dir`` checkpoints: beside the experiment's trials."""
    return str(Path(experiment_dir) / "supernet" / cfg.store_name)


def shared_supernet_trainable(task: SupernetTask, cfg: SharingConfig | None = None) -> Callable:
    """A Tune function trainable: one architecture per trial on the shared supernet.

    Wrap it with ``tune.with_resources(..., {"cpu": 1, "gpu": 0.25})`` to pack trials on GPUs.
    """
    cfg = cfg or SharingConfig()

    def trainable(config: dict[str, Any]) -> None:
        from ray import tune

        ctx = tune.get_context()
        folder = default_checkpoint_dir(Path(ctx.get_trial_dir()).parent, cfg)
        tune.report(run_shared_trial(task, cfg, config, ctx.get_trial_id() or "", folder))

    trainable.__name__ = f"{type(task).__name__}_trainable"
    return trainable


def supernet_from_store(task: SupernetTask, sharing: SharingConfig) -> torch.nn.Module:
    """The supernet with the scored weights of an experiment's WeightStore (the moving average
    of :class:`SharingConfig`'s ``ema_decay``), on CPU.

    Raises:
        LookupError: no store of that name is running and ``sharing.checkpoint_dir`` has no
            checkpoint.
    """
    return _with_weights(task, ray.get(existing_store(sharing).averaged.remote()), torch.device("cpu"))


@dataclass
class SupernetScorer:
    """Re-scores architectures on one snapshot of the shared supernet: pass it as a searcher's
    ``rescore=``. Each call snapshots (and checkpoints) the store, then evaluates every
    architecture on those same weights and returns ``{"values": [...], "snapshot": version}``.
    It runs as the searcher's background Ray task (on a GPU when the cluster has one).
    """

    task: SupernetTask
    sharing: SharingConfig
    metric: str

    def in_experiment(self, experiment_dir: str) -> SupernetScorer:
        """This scorer for the experiment in ``experiment_dir``: without a ``checkpoint_dir`` of
        its own it restarts a stopped store from where the experiment's trials checkpoint it."""
        if self.sharing.checkpoint_dir:
            return self
        folder = default_checkpoint_dir(experiment_dir, self.sharing)
        return replace(self, sharing=replace(self.sharing, checkpoint_dir=folder))

    def __call__(self, archs: Sequence[Any]) -> dict:
        store = existing_store(self.sharing)
        version, state = ray.get(store.snapshot.remote())
        dev = device()
        model = _with_weights(self.task, state, dev)
        values = [float(self.task.evaluate(model, a, dev)[self.metric]) for a in archs]
        return {"values": values, "snapshot": version}


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
