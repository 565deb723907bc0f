"""Machinery shared by every searcher of the package.

:class:`ArchSearcher` is a ``ray.tune.search.Searcher`` over a
:class:`~seminas_tune.spaces.SearchSpace`. It owns the query budget, the pool of results, the
canonical-key dedup (an isomorphic cell is never suggested twice), pending trials,
``points_to_evaluate``, warm starts, NaN/inf/error handling, the FLOPs bound, background jobs
and checkpointing. A concrete searcher only implements :meth:`ArchSearcher._propose`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import pickle
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
from ray.tune.search import Searcher

from seminas_tune.search import journal
from seminas_tune.search.presets import PRESETS, resolve
from seminas_tune.search.resume import TuneTrial, read_table, storage_dir, tune_trials
from seminas_tune.spaces.base import InvalidConfigError, SearchSpace

CHECKPOINT_FORMAT = "seminas-tune-searcher/1"
logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A searcher checkpoint is corrupt or belongs to another searcher."""


@dataclass
class Observation:
    """One finished evaluation. ``value`` is the raw metric; ``score`` is oriented so that
    larger is better; both are None when the trial failed or returned NaN/inf."""

    key: Any
    arch: Any
    value: float | None
    score: float | None
    status: str  # "ok", "error", "nan", "invalid"
    fidelity: float | None = None  # the result's ``fidelity`` value (training_iteration)
    curve: dict | None = None  # {fidelity: raw metric} of every result the trial reported


def _space_signature(space: SearchSpace) -> tuple:
    return (space.name, tuple(space.choices()))


def searcher_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """Every keyword argument ``cls(...)`` accepts, its own and its bases', by name.

    Searchers take their own settings and pass the shared ones (:class:`ArchSearcher`'s) on
    through ``**kwargs``; a subclass's default wins over its base's.
    """
    out: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is Searcher or not issubclass(klass, ArchSearcher):
            continue
        for name, p in inspect.signature(init).parameters.items():
            if p.kind is p.KEYWORD_ONLY and name not in out:
                out[name] = p
    return out


class _Inline:
    """A finished background job, for runs without Ray (the inline benchmark driver)."""

    def __init__(self, value: Any):
        self.value = value


class ArchSearcher(Searcher):
    """Base class of the package's searchers. Every argument is keyword-only.

    Args:
        space: a :class:`~seminas_tune.spaces.SearchSpace`, or a Tune ``param_space`` dict
            (``tune.choice``, ``tune.randint``, ``tune.loguniform``, ... and constants, nested
            dicts allowed) searched as a :class:`~seminas_tune.spaces.CategoricalSpace`. None:
            the ``param_space`` Tune hands over (``Tuner(param_space=...)``).
        metric: result key to optimise; None takes ``TuneConfig(metric=...)``.
        mode: ``"max"`` or ``"min"``; None takes ``TuneConfig(mode=...)``.
        max_queries: evaluations in all; then ``suggest`` returns ``FINISHED``.
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
    """

    def __init__(
        self,
        *,
        space: SearchSpace | dict | None = None,
        metric: str | None = None,
        mode: str | None = None,
        max_queries: int = 300,
        seed: int = 0,
        points_to_evaluate: list[dict] | None = None,
        max_flops: float | None = None,
        resolution: int = 10,
        fidelity: str | None = "training_iteration",
        preset: str = "default",
        background: str = "auto",
    ):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
        if mode not in ("max", "min", None):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if not isinstance(max_queries, int) or max_queries < 1:
            raise ValueError(f"max_queries must be a positive integer, got {max_queries!r}")
        if background not in ("auto", "ray", "inline"):
            raise ValueError(f"background must be 'auto', 'ray' or 'inline', got {background!r}")
        if not isinstance(resolution, int) or resolution < 2:
            raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
        super().__init__(metric=metric, mode=mode)
        self.resolution = resolution
        self._space: SearchSpace | None = None
        self._space_from_tune = False
        self.max_queries = max_queries
        self.seed = seed
        self.max_flops = max_flops
        self.fidelity = fidelity
        self.preset = preset
        self.background = background
        self.rng = np.random.default_rng(seed)
        self._raw_points = list(points_to_evaluate or [])
        self._points: list = []
        self._queue: list = []  # architectures ready to suggest
        self._pending: dict[str, Any] = {}  # trial_id -> key
        self._curves: dict[str, dict] = {}  # trial_id -> {fidelity: raw metric} of pending trials
        self._trial_ids: set = set()  # every trial id suggested or recorded
        self._max_concurrent: int | None = None
        self._proposed: dict[Any, Any] = {}  # key -> arch, everything ever suggested
        self._observations: list[Observation] = []
        self._observed: set = set()
        self._job = None  # running background job (not checkpointed: re-run on restore)
        self._job_request = None
        # Write-ahead journal (seminas_tune.search.journal), one file per search run.
        self._run_id = uuid.uuid4().hex[:12]
        self._journal = journal.Journal()
        if space is not None:
            self._use_space(space, from_tune=isinstance(space, dict))

    #: Short name (the CLI's and the harness's) that selects this searcher's presets.
    short_name = "random"

    # -- helpers for subclasses ----------------------------------------------------------
    def _settings(self, **given: Any) -> SimpleNamespace:
        """A subclass's own arguments, those left as None taken from its preset."""
        return SimpleNamespace(**resolve(self.short_name, self.preset, self.max_queries, given))

    @property
    def num_suggested(self) -> int:
        return len(self._proposed)

    @property
    def observations(self) -> list[Observation]:
        return list(self._observations)

    def results(self) -> list[Observation]:
        """Successful observations (finite metric) in completion order, compared at one
        fidelity: when trials ended at different ``fidelity`` values (a scheduler stopped some
        early), each is labelled with its metric at the highest value all of them reached."""
        ok = [o for o in self._observations if o.status == "ok"]
        ends = {o.fidelity for o in ok if o.fidelity is not None}
        if len(ends) <= 1:
            return ok
        common = min(ends)
        return [self._at_fidelity(o, common) for o in ok]

    def _at_fidelity(self, obs: Observation, level: float) -> Observation:
        if obs.fidelity is None or obs.fidelity <= level or not obs.curve:
            return obs
        reached = [f for f in obs.curve if f <= level]
        if not reached:
            return obs
        value = obs.curve[max(reached)]
        return dataclasses.replace(obs, value=value, score=self._score(value), fidelity=max(reached))

    def is_new(self, arch: Any) -> bool:
        """Valid, within the FLOPs bound, and never suggested or observed."""
        if not self.space.is_valid(arch):
            return False
        k = self.space.key(arch)
        if k in self._proposed or k in self._observed:
            return False
        return self.max_flops is None or self.space.flops(arch) <= self.max_flops

    def seen_keys(self) -> set:
        return set(self._proposed) | self._observed

    def sample_new(self, n: int, tries: int = 50) -> list:
        """Up to ``n`` uniformly sampled new architectures with distinct keys."""
        out, keys = [], set()
        for _ in range(n * tries):
            if len(out) >= n:
                break
            a = self.space.sample(self.rng)
            if self.is_new(a) and self.space.key(a) not in keys:
                keys.add(self.space.key(a))
                out.append(a)
        return out

    def _score(self, value: float) -> float:
        return value if self._mode != "min" else -value

    def _use_space(self, space: SearchSpace | dict, from_tune: bool) -> None:
        from seminas_tune.spaces.categorical import CategoricalSpace

        if isinstance(space, dict):
            space = CategoricalSpace(space, resolution=self.resolution)
        elif not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace or a Tune param_space dict, got {type(space).__name__}")
        self._space, self._space_from_tune = space, from_tune
        self._points = [self._checked_arch(p) for p in self._raw_points]

    @property
    def space(self) -> SearchSpace:
        """The space searched (raises ValueError until one is known)."""
        if self._space is None:
            raise ValueError(f"{type(self).__name__} has no search space: pass space=... (a SearchSpace or a Tune "
                             f"param_space dict) or give Tuner(param_space=...)")
        return self._space

    def _check_ready(self) -> None:
        """Raise ValueError when the searcher lacks a space, metric or mode."""
        name = type(self).__name__
        _ = self.space
        if self._metric is None or self._mode is None:
            raise ValueError(f"{name} has no metric/mode: Tune hands TuneConfig's to a searcher only with "
                             f"a non-empty param_space; pass metric=... and mode=... to the searcher")

    def _checked_arch(self, config: dict) -> Any:
        arch = self.space.arch_of(config)
        reason = self.space.invalid_reason(arch)
        if reason is not None:
            raise InvalidConfigError(f"point to evaluate is not a valid {self.space.name} architecture: {reason}")
        return arch

    # -- background jobs -----------------------------------------------------------------
    def _use_ray(self) -> bool:
        if self.background == "inline":
            return False
        import ray

        if self.background == "ray" and not ray.is_initialized():
            raise RuntimeError("background='ray' needs ray.init() first")
        return ray.is_initialized()

    def start_job(self, fn: Callable, request: Any) -> None:
        """Run ``fn(request)`` in the background (a Ray task, GPU if the cluster has one)."""
        self._job_request = (fn, request)
        if not self._use_ray():
            self._job = _Inline(fn(request))
            return
        import ray

        # No CPU reservation: with reuse_actors, idle cached trial actors can hold every CPU,
        # and a task waiting for one would stall the search until Tune drops its cache.
        gpus = 0.01 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_cpus=0, num_gpus=gpus, max_retries=2)(fn)
        self._job = remote.remote(request)

    def poll_job(self) -> tuple[bool, Any]:
        """(done, result) of the background job; result is None while it runs."""
        if self._job is None:
            return False, None
        if isinstance(self._job, _Inline):
            value = self._job.value
        else:
            import ray

            ready, _ = ray.wait([self._job], timeout=0)
            if not ready:
                return False, None
            value = ray.get(self._job)
        self._job = self._job_request = None
        return True, value

    @property
    def job_running(self) -> bool:
        return self._job is not None

    # -- what subclasses implement -------------------------------------------------------
    def _propose(self) -> list | None:
        """New architectures to queue, ``[]`` when the space is exhausted, or None to wait
        (results pending or a background job running)."""
        raise NotImplementedError

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

    def suggest(self, trial_id: str) -> dict | str | None:
        self._check_ready()
        if self.num_suggested >= self.max_queries:
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

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False,
                            pruned: bool = False, intermediate_values: list | None = None) -> None:
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
    _TRANSIENT = ("_job", "_job_request", "_space", "_journal")

    def get_state(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in self._TRANSIENT}
        if self._space_from_tune:  # small, and a blank restoring instance has none yet
            state["space"] = self.space
        request = None
        if self._job_request is not None:
            fn, req = self._job_request
            request = (fn, dataclasses.replace(req, space=None))
        state["_pending_job_request"] = request
        return {"format": CHECKPOINT_FORMAT, "class": type(self).__name__,
                "space": _space_signature(self.space), "state": state}

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
        self._job = self._job_request = None
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
