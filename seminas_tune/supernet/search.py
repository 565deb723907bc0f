"""A SemiNAS search on a weight-sharing supernet through ``tune.Tuner``, one call for any task.

:func:`run_supernet_search` wires the pieces of :mod:`seminas_tune.supernet.sharing` together:
the shared-weights trainable (one architecture per trial), a predictor searcher that re-scores
its pool on one supernet snapshot before each round (:class:`SupernetScorer`), and a final
re-scoring of every evaluated architecture on the last snapshot to pick the one to export.
The same call again continues an interrupted search (``Tuner.restore``), with the supernet
from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seminas_tune.search.base import resolved_settings
from seminas_tune.supernet.sharing import (
    SharingConfig,
    SupernetScorer,
    SupernetTask,
    default_checkpoint_dir,
    supernet_trainable_with_resources,
)

logger = logging.getLogger(__name__)

RECORD = "supernet_search.json"  # in the experiment folder: what a resume must match


@dataclass
class SupernetSearchResult:
    """What a supernet search returns.

    Attributes:
        results: Tune's ``ResultGrid`` (per-trial values are provisional: each trial scored its
            path on the weights it had just trained).
        searcher: the searcher (``rescore_history`` holds each round's re-scoring).
        ranking: ``(arch, value)`` of every evaluated architecture scored on the final snapshot,
            best first.
        snapshot: the store version of that final snapshot.
    """

    results: Any
    searcher: Any
    ranking: list[tuple[Any, float]]
    snapshot: int

    @property
    def best(self) -> tuple[Any, float]:
        """(architecture, value) ranked first on the final snapshot."""
        return self.ranking[0]


def search_record(searcher: Any, num_trials: int, metric: str, mode: str) -> dict:
    """What a resumed search must share with the one it continues, as JSON types."""
    settings = {k: v for k, v in resolved_settings(searcher).items() if k not in ("rescore", "background")}
    record = {"num_trials": num_trials, "metric": metric, "mode": mode, "searcher": settings}
    return json.loads(json.dumps(record, default=repr))


def check_same_search(experiment: str, record: dict) -> None:
    """Raise ValueError when the search in ``experiment`` was started with settings other than
    ``record``'s (a folder without a record, from Tune directly, is not checked)."""
    path = Path(experiment) / RECORD
    if not path.exists():
        return
    old = json.loads(path.read_text())
    if old == record:
        return
    changed = [f"{k} {v!r}" for k, v in old.items() if k != "searcher" and record.get(k) != v]
    new = record.get("searcher", {})
    changed += [f"{k} {v!r}" for k, v in old.get("searcher", {}).items() if new.get(k) != v]
    raise ValueError(
        f"{experiment} holds a supernet search started with other settings ({', '.join(changed)}); "
        f"call again with those, pass resume=False to start over, or choose another name"
    )


def run_supernet_search(
    task: SupernetTask,
    sharing: SharingConfig,
    *,
    metric: str,
    mode: str,
    num_trials: int,
    searcher: Any = None,
    seed: int = 0,
    max_flops: float | None = None,
    gpus_per_trial: float | None = None,
    cpus_per_trial: float = 1.0,
    max_concurrent_trials: int | None = None,
    storage_path: str | None = None,
    name: str | None = None,
    verbose: int = 0,
    resume: bool = True,
) -> SupernetSearchResult:
    """Search ``task.space`` with SemiNAS on the shared supernet and rank the pool at the end.

    ``searcher`` defaults to ``SemiNASSearcher(rescore=SupernetScorer(...))`` with its
    default preset for ``num_trials``; a searcher you pass should carry ``rescore=`` too (its
    metric/mode/space are the same as here). Without ``sharing.checkpoint_dir`` the supernet is
    checkpointed to ``<storage>/<name>/supernet/<store_name>``, which the scorer also knows, so a
    dead store restarts from there.

    With ``resume`` (the default), an experiment of the same ``name`` in the storage that Tune
    can restore (one stopped by Ctrl-C or a crash) continues where it stopped: Tune brings back
    the searcher it started with, the trials reload the supernet from its last checkpoint, and
    ``searcher`` is loaded from the searcher's final checkpoint afterwards. ``resume=False``
    starts a new experiment. Raises ValueError on a bad ``mode``, or when the experiment to
    resume was started with another ``num_trials``, ``metric``, ``mode`` or searcher setting.
    """
    from ray import tune

    from seminas_tune.search.seminas import SemiNASSearcher

    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    name = name or sharing.store_name
    storage = os.path.abspath(storage_path) if storage_path else os.path.expanduser("~/ray_results")
    if sharing.checkpoint_dir is None:  # the trainable's default, known here to the scorer too
        sharing = dataclasses.replace(
            sharing, checkpoint_dir=default_checkpoint_dir(os.path.join(storage, name), sharing)
        )
    scorer = SupernetScorer(task, sharing, metric)
    if searcher is None:
        searcher = SemiNASSearcher(
            space=task.space,
            metric=metric,
            mode=mode,
            max_queries=num_trials,
            seed=seed,
            max_flops=max_flops,
            rescore=scorer,
        )
    trainable = supernet_trainable_with_resources(task, sharing, gpus_per_trial, cpus_per_trial)
    experiment = os.path.join(storage, name)
    restored = resume and tune.Tuner.can_restore(experiment)
    record = search_record(searcher, num_trials, metric, mode)
    if restored:
        check_same_search(experiment, record)
        logger.warning("resuming the supernet search in %s; pass resume=False to start a new one", experiment)
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                metric=metric,
                mode=mode,
                num_samples=num_trials,
                max_concurrent_trials=max_concurrent_trials,
            ),
            run_config=tune.RunConfig(name=name, storage_path=storage, verbose=verbose),
        )
        os.makedirs(experiment, exist_ok=True)
        Path(experiment, RECORD).write_text(json.dumps(record, indent=1))
    results = tuner.fit()
    if restored:  # Tune ran its own copy of the searcher: take the state that copy ended with
        searcher.restore_from_dir(experiment)
    archs = [o.arch for o in searcher.observations if o.status == "ok"]
    if not archs:
        raise RuntimeError(f"no trial of the supernet search finished; see the errors in {results.experiment_path}")
    if len(searcher.observations) < num_trials:
        logger.warning(
            "the supernet search stopped after %d of %d trials; the same call again continues it",
            len(searcher.observations),
            num_trials,
        )
    final = scorer(archs)
    sign = 1 if mode == "max" else -1
    ranking = sorted(zip(archs, final["values"]), key=lambda p: (not math.isfinite(p[1]), -sign * p[1]))
    return SupernetSearchResult(results, searcher, ranking, final["snapshot"])
