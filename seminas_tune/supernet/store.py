"""The Ray actor that holds a shared supernet's weights, and the moving average it scores.

:class:`WeightStore` applies the parameter deltas trials push, keeps the pool and a version
count, checkpoints itself, and hands out snapshots of the :class:`MovingAverage` of the weights.
:mod:`seminas_tune.supernet.sharing` starts it and runs the trials against it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import ray
import torch

CHECKPOINT_NAME = "supernet.pt"


class MovingAverage:
    """Exponential moving average of the state-dict entries that have changed (``update`` after
    each change, naming the changed entries); others stay exactly as in the state. ``decay`` 0
    keeps none.

    An entry's n-th update (counted from its first change) uses ``min(decay, (n - 1) / n)``: for
    its first ``1 / (1 - decay)`` updates it is the plain mean of its values since it first
    changed. Its untrained start never counts, so an op first trained late in a search, or a
    run of a few trials, is scored on trained weights, not mostly on initial ones.
    """

    def __init__(
        self, decay: float, averages: dict[str, torch.Tensor] | None = None, updates: dict[str, int] | None = None
    ):
        self.decay = decay
        self.averages: dict[str, torch.Tensor] = dict(averages or {})
        self.updates: dict[str, int] = dict(updates or {})

    def update(self, state: dict[str, torch.Tensor], changed) -> None:
        """Fold in ``state``, in which the entries ``changed`` have just changed."""
        if not self.decay:
            return
        for k in changed:
            if k not in self.averages:
                self.averages[k], self.updates[k] = state[k].detach().clone(), 0
        for k, avg in self.averages.items():
            n = self.updates[k] = self.updates[k] + 1
            avg.lerp_(state[k].detach(), 1.0 - min(self.decay, (n - 1) / n))

    def of(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` with the averaged entries in place of the current ones."""
        return {**state, **self.averages}


def parameter_deltas(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The parameters ``model`` changed since ``before`` (a clone of its named parameters), as
    differences on CPU; buffers are never included."""
    delta = {}
    for k, p in model.named_parameters():
        d = (p.detach() - before[k]).cpu()
        if d.any():
            delta[k] = d
    return delta


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@ray.remote(num_cpus=0)
class WeightStore:
    """Holds the shared supernet weights; applies pushed parameter deltas in arrival order.

    With a ``checkpoint_dir`` it starts from the checkpoint there when one exists and writes a
    new one every ``checkpoint_every`` pushes and at every snapshot (temp file + rename).
    """

    def __init__(
        self,
        state: dict[str, torch.Tensor],
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 10,
        ema_decay: float = 0.0,
    ):
        self._dir = Path(checkpoint_dir) if checkpoint_dir else None
        self._every = checkpoint_every
        self._state = {k: v.detach().cpu().clone() for k, v in state.items()}
        self._ema = MovingAverage(ema_decay)  # of every pushed entry; the rest never moves
        self._version = 0
        self._pool: list = []
        self._log: list[dict] = []
        self._lineage: list[int] = []  # versions this store was restored from, oldest first
        self._snapshots: list[int] = []
        path = self.checkpoint_path()
        if path is not None and path.exists():
            blob = torch.load(path, map_location="cpu", weights_only=False)
            self._state.update(blob["state"])
            self._version, self._pool = blob["version"], list(blob["pool"])
            self._lineage = [*blob["lineage"], blob["version"]]
            self._snapshots = list(blob["snapshots"])
            if ema_decay:  # (a store restarted with decay 0 scores its current weights)
                self._ema = MovingAverage(ema_decay, blob.get("ema"), blob.get("ema_updates"))

    def checkpoint_path(self) -> Path | None:
        return self._dir / CHECKPOINT_NAME if self._dir else None

    def pull(self) -> tuple[int, dict[str, torch.Tensor], list]:
        return self._version, self._state, list(self._pool)

    def push(self, delta: dict[str, torch.Tensor], base_version: int, trial: str = "", arch: Any = None) -> int:
        # A delta computed on weights that others have since moved is scaled by 1 / (1 +
        # staleness): two trials from the same base then add up to 1.5 updates, not 2, which
        # overshot the shared stem and head (staleness-aware asynchronous SGD).
        staleness = max(0, self._version - base_version)
        for k, d in delta.items():
            self._state[k].add_(d.to(self._state[k].dtype), alpha=1.0 / (1 + staleness))
        self._ema.update(self._state, delta)
        self._version += 1
        if arch is not None and arch not in self._pool:
            self._pool.append(arch)
        self._log.append(
            {
                "trial": trial,
                "base": base_version,
                "version": self._version,
                "staleness": staleness,
                "time": time.time(),
            }
        )
        if self._every and self._version % self._every == 0:
            self._checkpoint()
        return self._version

    def averaged(self) -> dict[str, torch.Tensor]:
        """The weights that are scored: the moving average of the pushed weights (``ema_decay``
        per push), or the current weights when the decay is 0."""
        return self._ema.of(self._state)

    def snapshot(self) -> tuple[int, dict[str, torch.Tensor]]:
        """The scored weights (:meth:`averaged`) as a snapshot, checkpointed first: everything
        scored on it can be scored again after a crash."""
        if not self._snapshots or self._snapshots[-1] != self._version:
            self._snapshots.append(self._version)
        self._checkpoint()
        return self._version, self.averaged()

    def _checkpoint(self) -> None:
        path = self.checkpoint_path()
        if path is None:
            return
        blob = {
            "version": self._version,
            "state": self._state,
            "pool": self._pool,
            "lineage": self._lineage,
            "snapshots": self._snapshots,
            "ema": self._ema.averages,
            "ema_updates": self._ema.updates,
        }
        _atomic_save(blob, path)

    def info(self) -> dict:
        return {
            "version": self._version,
            "pool": len(self._pool),
            "lineage": list(self._lineage),
            "snapshots": list(self._snapshots),
            "checkpoint": str(self.checkpoint_path()) if self._dir else None,
        }

    def log(self) -> list[dict]:
        return list(self._log)
