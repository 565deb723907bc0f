"""Machinery shared by every searcher of the package.

:class:`ArchSearcher` is a ``ray.tune.search.Searcher`` over a
:class:`~seminas_tune.spaces.SearchSpace`. It owns the query budget, the pool of results, the
canonical-key dedup (an isomorphic cell is never suggested twice), pending trials,
``points_to_evaluate``, warm starts, NaN/inf/error handling, the FLOPs bound, background jobs
(:mod:`seminas_tune.search._core`), the write-ahead journal and checkpointing. A concrete
searcher only implements :meth:`ArchSearcher._propose`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pickle
from typing import Any

from ray.tune.search import Searcher

from seminas_tune.search import journal
from seminas_tune.search._core import CHECKPOINT_FORMAT, CheckpointError, Observation, SearcherCore, _space_signature
from seminas_tune.search._core import resolved_settings as resolved_settings
from seminas_tune.search._core import searcher_parameters as searcher_parameters
from seminas_tune.search.resume import TuneTrial, read_table, storage_dir, tune_trials
from seminas_tune.spaces.base import InvalidConfigError

logger = logging.getLogger(__name__)

__all__ = ["ArchSearcher", "CheckpointError", "Observation", "resolved_settings", "searcher_parameters"]


class ArchSearcher(SearcherCore):
    """Base class of the package's searchers. Every argument is keyword-only.

    Args:
        space: a :class:`~seminas_tune.spaces.SearchSpace`, or a Tune ``param_space`` dict
            (``tune.choice``, ``tune.randint``, ``tune.loguniform``, ... and constants, nested
            dicts allowed) searched as a :class:`~seminas_tune.spaces.CategoricalSpace`. None:
            the ``param_space`` Tune hands over (``Tuner(param_space=...)``).
        metric: result key to optimise; None takes ``TuneConfig(metric=...)``.
        mode: ``"max"`` or ``"min"``; None takes ``TuneConfig(mode=...)``.
        max_queries: evaluations in all; then ``suggest`` returns ``FINISHED``. A result that
            says ``valid=False`` (the trainable's "not an architecture") does not count, up to
            ``invalid_allowance`` x ``max_queries`` of them.
        seed: seeds every random choice; same seed and same results give the same suggestions.
        points_to_evaluate: configs (as ``space.to_config`` makes them) evaluated first.
        max_flops: never propose an architecture with ``space.flops(arch) > max_flops``.
        resolution: grid points for each continuous domain of a ``param_space``.
        fidelity: result key that counts training progress (Tune's ``training_iteration``).
            When trials end at different values of it (a scheduler stopped some early), labels
            are compared at the highest value every finished trial reached; None: always the
            last result.
        preset: where the searcher's own settings left as None come from:
            ``"default"`` (the best we know, sized from ``max_queries``) or ``"paper"``; see
            :mod:`seminas_tune.search.presets`.
        background: ``"auto"`` runs heavy jobs (controller training) as Ray tasks when Ray is
            initialised, else inline; ``"ray"`` or ``"inline"`` force one.
        rescore: ``archs -> values`` (or ``{"values": [...], "snapshot": id}``), called in the
            background before each round of learning on every successful architecture; its
            values replace the trials' own (a weight-sharing supernet's
            :class:`~seminas_tune.supernet.sharing.SupernetScorer`, whose per-trial scores are
            not comparable). Predictor searchers only; ``rescore_history`` records each call.
            One with an ``in_experiment(folder)`` method is called through what it returns for
            ``experiment_dir``, the experiment's folder in storage, once Tune has revealed it.
    """

    # -- the Tune Searcher API -----------------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        """Take metric and mode from ``TuneConfig`` and the space from ``param_space``.

        Raises:
            ValueError: a bad mode, or ``param_space`` holds domains the searcher's own space
                does not search (they would reach the trainable unresolved).
        """
        from seminas_tune.spaces.categorical import tune_domains

        if mode not in ("max", "min", None):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        domains = tune_domains(config or {})
        if self._space is None:
            if domains:
                self._use_space(config, from_tune=True)
        elif not self._space_from_tune:
            extra = sorted(set(domains) - set(self.space.choices()))
            if extra:
                raise ValueError(
                    f"{type(self).__name__} searches its own space {self.space.name!r} but param_space "
                    f"also has domains {extra}: build the searcher with space=<your param_space> instead"
                )
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Limit running trials here rather than in a ``ConcurrencyLimiter``: the limit then
        follows the searcher's own pending trials, which a restore reconciles with Tune's."""
        self._max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> dict | str | None:  # type: ignore[override]  # Tune: FINISHED too
        self._check_ready()
        if self.num_spent >= self.max_queries:
            return Searcher.FINISHED
        if self.num_invalid >= self.invalid_allowance * self.max_queries:
            if not self._warned_invalid:
                logger.warning(
                    "%s: %d results said valid=False, %d x max_queries; stopping. Check that the "
                    "trainable and the space agree on what a valid architecture is.",
                    type(self).__name__,
                    self.num_invalid,
                    self.invalid_allowance,
                )
                self._warned_invalid = True
            return Searcher.FINISHED
        if self._max_concurrent and len(self._pending) >= self._max_concurrent:
            return None
        arch = self._next_arch()
        if arch is None:
            if self._exhausted:
                return Searcher.FINISHED
            return None
        key = self.space.key(arch)
        config = self.space.to_config(arch)
        self._journal.append(journal.suggestion(trial_id, config))  # durable before Tune sees it
        self._proposed[key] = arch
        self._pending[trial_id] = key
        self._trial_ids.add(trial_id)
        return config

    _exhausted = False
    _warned_invalid = False
    invalid_allowance = 10
    """Results with ``valid=False`` allowed per query of ``max_queries`` before the search stops."""

    def _next_arch(self) -> Any:
        while self._points:
            arch = self._points.pop(0)
            if self.is_new(arch):
                return arch
        while True:
            while self._queue:
                arch = self._queue.pop(0)
                if self.is_new(arch):
                    return arch
            batch = self._propose()
            if batch is None:
                return None
            if not batch:
                self._exhausted = not self._pending and not self.job_running
                return None
            self._queue.extend(batch)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Keep the metric at each fidelity, so early-stopped trials compare at a common one."""
        if trial_id in self._pending and self.fidelity and self.fidelity in result and self._metric in result:
            self._curves.setdefault(trial_id, {})[result[self.fidelity]] = result[self._metric]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._pending:
            self._journal.append(journal.completion(trial_id, result, error, self._curves.get(trial_id)))
        self._complete(trial_id, result, error)

    def _complete(self, trial_id: str, result: dict | None, error: bool, curve: dict | None = None) -> None:
        key = self._pending.pop(trial_id, None)
        curve = self._curves.pop(trial_id, curve)
        if key is None:
            return  # not ours (e.g. a trial started before a restore that dropped it)
        arch = self._proposed[key]
        self._record(key, arch, None if error else result, curve)

    def _record(self, key: Any, arch: Any, result: dict | None, curve: dict | None = None) -> None:
        if result is None:
            obs = Observation(key, arch, None, None, "error")
        elif result.get("valid") is False:
            obs = Observation(key, arch, None, None, "invalid")
        else:
            if self._metric not in result:
                raise KeyError(
                    f"metric {self._metric!r} is not in the trial's result (keys: "
                    f"{sorted(k for k in result if not k.startswith('_'))[:12]}); "
                    f"pass the metric your trainable reports as metric=..."
                )
            raw = result[self._metric]
            try:
                value = float(raw)
            except (TypeError, ValueError):
                value = math.nan
            if math.isfinite(value):
                fid = result.get(self.fidelity) if self.fidelity else None
                fid = float(fid) if isinstance(fid, (int, float)) else None
                if curve is not None and fid is not None:
                    curve = {**curve, fid: value}
                obs = Observation(key, arch, value, self._score(value), "ok", fid, curve)
            else:
                obs = Observation(key, arch, None, None, "nan")
        self._observations.append(obs)
        self._observed.add(key)

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list | None = None,
    ) -> None:
        """Warm start: record a result obtained elsewhere (it does not use the budget)."""
        self._check_ready()
        arch = self.space.arch_of(parameters)
        key = self.space.key(arch)
        if key in self._observed:
            return
        self._record(key, arch, None if error else {self._metric: value})

    def add_evaluated_points(self, points_or_results) -> None:
        """Warm start from a list of (config, value) pairs, or a Tune ``ResultGrid``/DataFrame."""
        if hasattr(points_or_results, "get_dataframe"):
            points_or_results = points_or_results.get_dataframe()
        if hasattr(points_or_results, "iterrows"):
            df = points_or_results
            self._check_ready()
            keys = list(self.space.choices())
            cols = {k: (f"config/{k}" if f"config/{k}" in df.columns else k) for k in keys}
            pairs = [({k: row[c] for k, c in cols.items()}, row[self._metric]) for _, row in df.iterrows()]
        else:
            pairs = list(points_or_results)
        for config, value in pairs:
            self.add_evaluated_point(config, value)

    # -- checkpointing -------------------------------------------------------------------
    # Not checkpointed: the live job, and the space (the restoring instance brings its own;
    # a table-backed space is megabytes).
    _TRANSIENT = ("_job", "_job_request", "_space", "_journal", "_rescore_job")

    def get_state(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in self._TRANSIENT}
        if self._space_from_tune:  # small, and a blank restoring instance has none yet
            state["space"] = self.space
        request = None
        if self._job_request is not None:
            fn, req = self._job_request
            request = (fn, dataclasses.replace(req, space=None))
        state["_pending_job_request"] = request
        return {
            "format": CHECKPOINT_FORMAT,
            "class": type(self).__name__,
            "space": _space_signature(self.space),
            "state": state,
        }

    def set_state(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError("not a seminas-tune searcher checkpoint; restore from the experiment that wrote it")
        if state["class"] != type(self).__name__:
            raise CheckpointError(
                f"checkpoint belongs to {state['class']}, not {type(self).__name__}; "
                f"restore it with the searcher class that wrote it"
            )
        inner = state["state"]
        if self._space is None and "space" in inner:
            self._space = inner["space"]
        if self._space is None or state["space"] != _space_signature(self._space):
            raise CheckpointError(
                f"checkpoint was written for the space {state['space'][0]!r} with other decisions; "
                f"restore it into a searcher built on the same space"
            )
        inner = {k: v for k, v in inner.items() if k != "space"}
        request = inner.pop("_pending_job_request")
        self.__dict__.update(inner)
        self._job = self._job_request = self._rescore_job = None
        if request is not None:  # jobs are pure: re-running gives the same result
            fn, req = request
            self.start_job(fn, dataclasses.replace(req, space=self.space))

    def save(self, checkpoint_path: str) -> None:
        """Pickle the whole state (pool, pending trials, controller, RNGs) to a file.

        Checkpoints are pickles: load them only from your own experiment's storage.
        """
        from ray import cloudpickle  # a CategoricalSpace's hooks may be lambdas

        with open(checkpoint_path, "wb") as f:
            cloudpickle.dump(self.get_state(), f)

    def save_to_dir(self, checkpoint_dir: str, session_str: str = "default") -> None:
        """Tune's state save. The first one reveals the experiment's storage directory: the
        journal is attached there (buffered records first) before Tune uploads the table."""
        if not self._journal.attached:
            self._rebuild(checkpoint_dir, session_str)
        super().save_to_dir(checkpoint_dir, session_str)

    def restore_from_dir(self, checkpoint_dir: str) -> None:
        """Restore the newest checkpoint in an experiment directory, add what only the journal
        knows, then :meth:`reconcile` it with the trials Tune recorded there."""
        super().restore_from_dir(checkpoint_dir)
        self._rebuild(checkpoint_dir)

    def _rebuild(self, checkpoint_dir: str, session_str: str = "*") -> None:
        """Attach the journal beside Tune's experiment state (when its table names the storage
        directory), replay the records this searcher lacks, and reconcile with Tune's trials."""
        directory = storage_dir(read_table(checkpoint_dir, session_str), local_only=True)
        # None: no trial yet, or not a local/shared file system (the journal keeps buffering)
        records = [] if directory is None else self._journal.attach(directory, self._run_id)
        self.experiment_dir = directory or self.experiment_dir
        if not records and session_str != "*":
            return  # a save, not a restore, and no journal written by an earlier driver
        counts = {"from_journal": journal.replay(self, records), **self.reconcile(tune_trials(checkpoint_dir))}
        if any(counts.values()):
            logger.warning("restored searcher disagreed with Tune's trial table; reconciled: %s", counts)

    def reconcile(self, trials: dict[str, TuneTrial]) -> dict[str, int]:
        """Bring the pool in line with what Tune really ran (after a crash the two may disagree).

        A pending trial that Tune finished gets its result; one Tune never recorded is
        suggested again (under a new trial id); a trial the searcher never heard of is adopted,
        as pending when Tune will run it, else with its last result, so its cell is not
        evaluated twice. Returns how many trials each case concerned.
        """
        counts = {"completed": 0, "resuggested": 0, "adopted": 0}
        for tid in list(self._pending):
            t = trials.get(tid)
            if t is None:
                self._journal.append(journal.requeue(tid))
                self._requeue(tid)
                counts["resuggested"] += 1
            elif t.status in ("TERMINATED", "ERROR", None):
                result = self._usable(t)
                self.on_trial_complete(tid, result, error=result is None)
                counts["completed"] += 1
        for tid, t in trials.items():
            if tid in self._trial_ids or not t.config:
                continue
            try:
                arch = self.space.arch_of(t.config)
            except (KeyError, InvalidConfigError):
                continue  # not a trial of this space
            key = self.space.key(arch)
            if key in self._observed or key in self._pending.values():
                continue
            self._journal.append(journal.suggestion(tid, self.space.to_config(arch)))
            self._trial_ids.add(tid)
            self._proposed[key] = arch
            self._pending[tid] = key
            if t.status not in ("PENDING", "RUNNING", "PAUSED"):
                result = self._usable(t)
                self.on_trial_complete(tid, result, error=result is None)
            counts["adopted"] += 1
        return counts

    def _requeue(self, trial_id: str) -> None:
        """Forget a pending trial Tune never ran; its cell is suggested next, under a new id."""
        self._points.insert(0, self._proposed.pop(self._pending.pop(trial_id)))

    def _usable(self, t: TuneTrial) -> dict | None:
        """A trial's last result when it finished well and reports the metric, else None."""
        ok = t.status != "ERROR" and t.last_result is not None and self._metric in t.last_result
        return t.last_result if ok else None

    def restore(self, checkpoint_path: str) -> None:
        try:
            with open(checkpoint_path, "rb") as f:
                state = pickle.load(f)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as e:
            raise CheckpointError(f"{checkpoint_path}: corrupt searcher checkpoint ({type(e).__name__}: {e})") from e
        self.set_state(state)
