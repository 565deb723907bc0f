"""The state every searcher of the package keeps: settings, space, pool of results, labels at a
common fidelity, background jobs. :class:`~seminas_tune.search.base.ArchSearcher` adds the Tune
Searcher API and checkpointing on top.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from seminas_tune._checks import check_choice, check_int
from seminas_tune.metrics import kendall_tau
from seminas_tune.search import journal
from seminas_tune.search.presets import PRESETS, resolve
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
        if init is None or klass is Searcher or not issubclass(klass, SearcherCore):
            continue
        for name, p in inspect.signature(init).parameters.items():
            if p.kind is p.KEYWORD_ONLY and name not in out:
                out[name] = p
    return out


def resolved_settings(searcher: Any) -> dict:
    """Every constructor argument of one of our searchers as it was built, those it passes on
    to its base included (defaults too, so a result says what it ran with even after the
    package's defaults change); only the class name for another searcher."""
    out: dict[str, Any] = {"class": type(searcher).__name__}
    if not isinstance(searcher, SearcherCore):
        return out
    for name in searcher_parameters(type(searcher)):
        if name in ("space", "points_to_evaluate") or not hasattr(searcher, name):
            continue
        v = getattr(searcher, name)
        out[name] = dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v
    return out


class _Inline:
    """A finished background job, for runs without Ray (the inline benchmark driver)."""

    def __init__(self, value: Any):
        self.value = value


def _rescore(pair: tuple[Callable, list]) -> Any:
    rescore, archs = pair
    return rescore(archs)


class SearcherCore(Searcher):
    """Settings, space, pool and background jobs of an :class:`~seminas_tune.search.base.ArchSearcher`
    (whose docstring lists the arguments)."""

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
        rescore: Callable[[list], Any] | None = None,
    ):
        check_choice("preset", preset, PRESETS)
        if mode not in ("max", "min", None):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        check_int("max_queries", max_queries)
        check_choice("background", background, ("auto", "ray", "inline"))
        if rescore is not None and not self.supports_rescore:
            raise ValueError(
                f"{type(self).__name__} does not re-score its pool; rescore= works with the predictor "
                f"searchers (SemiNASSearcher, NAOSearcher, SemiNASRESearcher)"
            )
        check_int("resolution", resolution, low=2)
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
        self._job: Any = None  # running background job (not checkpointed: re-run on restore)
        self._job_request: tuple[Callable, Any] | None = None
        # Re-scoring (weight-sharing supernets): the latest scores of the whole pool, on one snapshot.
        self.rescore = rescore
        self._rescored: dict[Any, float] = {}
        self._rescored_count = 0  # successful results the latest finished re-scoring covered
        self._rescore_job: Any = None  # not checkpointed: re-run on restore
        self.rescore_history: list[dict] = []
        # The experiment's folder in storage, once a Tune save or restore reveals it (None
        # before, or off a local file system); set it when driving the searcher without Tune.
        self.experiment_dir: str | None = None
        # Write-ahead journal (seminas_tune.search.journal), one file per search run.
        self._run_id = uuid.uuid4().hex[:12]
        self._journal = journal.Journal()
        if space is not None:
            self._use_space(space, from_tune=isinstance(space, dict))

    #: Short name (the CLI's and the harness's) that selects this searcher's presets.
    short_name = "random"
    #: Whether the searcher calls :meth:`labels_ready` before it learns (takes ``rescore=``).
    supports_rescore = False

    # -- helpers for subclasses ----------------------------------------------------------
    def _settings(self, **given: Any) -> SimpleNamespace:
        """A subclass's own arguments, those left as None taken from its preset."""
        return SimpleNamespace(**resolve(self.short_name, self.preset, self.max_queries, given))

    @property
    def num_suggested(self) -> int:
        return len(self._proposed)

    @property
    def num_invalid(self) -> int:
        """Results that said ``valid=False``: the trainable's "not an architecture"."""
        return sum(o.status == "invalid" for o in self._observations)

    @property
    def num_spent(self) -> int:
        """Suggestions that use ``max_queries``: all but those whose result said ``valid=False``
        (no evaluation happened; NAS benchmarks count valid queries too)."""
        return self.num_suggested - self.num_invalid

    def learning_labels(self, invalid_cost: bool = True) -> list[Observation]:
        """:meth:`results` plus, with ``invalid_cost``, every architecture whose result said
        ``valid=False``, labelled with the worst successful score (a crash cost, as SMAC gives
        failed runs), so a predictor learns to steer clear of a space's invalid corners."""
        ok = self.results()
        invalid = [o for o in self._observations if o.status == "invalid"]
        if not ok or not invalid or not invalid_cost:
            return ok
        worst = min(ok, key=lambda o: math.inf if o.score is None else o.score)  # ok ones have scores
        return ok + [dataclasses.replace(o, value=worst.value, score=worst.score) for o in invalid]

    @property
    def observations(self) -> list[Observation]:
        return list(self._observations)

    def results(self) -> list[Observation]:
        """Successful observations (finite metric) in completion order, compared at one
        fidelity: when trials ended at different ``fidelity`` values (a scheduler stopped some
        early), each is labelled with its metric at the highest value all of them reached."""
        ok = [o for o in self._observations if o.status == "ok"]
        if self._rescored:  # latest re-scoring replaces the trials' own values
            ok = [self._with_value(o, self._rescored[o.key]) if o.key in self._rescored else o for o in ok]
            return [o for o in ok if o.value is not None]
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
        return self._with_value(obs, obs.curve[max(reached)], fidelity=max(reached))

    def _with_value(self, obs: Observation, value: float, **changes: Any) -> Observation:
        if not np.isfinite(value):
            return dataclasses.replace(obs, value=None, score=None, **changes)
        return dataclasses.replace(obs, value=value, score=self._score(value), **changes)

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
        out: list = []
        keys: set = set()
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
            raise ValueError(
                f"{type(self).__name__} has no search space: pass space=... (a SearchSpace or a Tune "
                f"param_space dict) or give Tuner(param_space=...)"
            )
        return self._space

    def _check_ready(self) -> None:
        """Raise ValueError when the searcher lacks a space, metric or mode."""
        name = type(self).__name__
        _ = self.space
        if self._metric is None or self._mode is None:
            raise ValueError(
                f"{name} has no metric/mode: Tune hands TuneConfig's to a searcher only with "
                f"a non-empty param_space; pass metric=... and mode=... to the searcher"
            )

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

    def _launch(self, fn: Callable, request: Any) -> Any:
        if not self._use_ray():
            return _Inline(fn(request))
        import ray

        # No CPU reservation: with reuse_actors, idle cached trial actors can hold every CPU,
        # and a task waiting for one would stall the search until Tune drops its cache.
        gpus = 0.01 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_cpus=0, num_gpus=gpus, max_retries=2)(fn)
        return remote.remote(request)

    @staticmethod
    def _collect(job: Any) -> tuple[bool, Any]:
        if isinstance(job, _Inline):
            return True, job.value
        import ray

        ready, _ = ray.wait([job], timeout=0)
        return (True, ray.get(job)) if ready else (False, None)

    def start_job(self, fn: Callable, request: Any) -> None:
        """Run ``fn(request)`` in the background (a Ray task, GPU if the cluster has one)."""
        self._job_request = (fn, request)
        self._job = self._launch(fn, request)

    def poll_job(self) -> tuple[bool, Any]:
        """(done, result) of the background job; result is None while it runs."""
        if self._job is None:
            return False, None
        done, value = self._collect(self._job)
        if done:
            self._job = self._job_request = None
        return done, value

    @property
    def job_running(self) -> bool:
        return self._job is not None

    # -- re-scoring ------------------------------------------------------------------------
    def labels_ready(self) -> bool:
        """Whether :meth:`results` holds comparable labels to learn from. Always True without
        ``rescore``; with it, True once every successful result has been re-scored on one
        snapshot since the last new result; otherwise starts or polls that background job."""
        if self.rescore is None:
            return True
        ok = [o for o in self._observations if o.status == "ok"]
        if self._rescore_job is None:
            if len(ok) == self._rescored_count and self._rescored:
                return True
            job = self._launch(_rescore, (self._bound_rescore(), [o.arch for o in ok]))
            self._rescore_job = (job, [o.key for o in ok])
        job, keys = self._rescore_job
        done, out = self._collect(job)
        if not done:
            return False
        self._rescore_job = None
        self._take_rescored(keys, out)
        self._rescored_count = len(keys)
        return True

    def _bound_rescore(self) -> Callable[[list], Any] | None:
        """``rescore``, told the experiment's folder once it is known: a scorer with an
        ``in_experiment(folder)`` method (``SupernetScorer``) finds the experiment's checkpoints
        there when its store is not running."""
        bind = getattr(self.rescore, "in_experiment", None)
        return bind(self.experiment_dir) if bind is not None and self.experiment_dir else self.rescore

    def _take_rescored(self, keys: list, out: Any) -> None:
        values = [float(v) for v in (out["values"] if isinstance(out, dict) else out)]
        if len(values) != len(keys):
            raise ValueError(f"rescore returned {len(values)} values for {len(keys)} architectures")
        own = {o.key: np.nan if o.value is None else o.value for o in self._observations if o.status == "ok"}
        new = dict(zip(keys, values))
        common = [k for k in keys if k in self._rescored]
        self.rescore_history.append(
            {
                "round": len(self.rescore_history) + 1,
                "archs": len(keys),
                "snapshot": out.get("snapshot") if isinstance(out, dict) else None,
                "tau_vs_trials": kendall_tau([own[k] for k in keys], values),
                "tau_vs_previous": kendall_tau([self._rescored[k] for k in common], [new[k] for k in common]),
            }
        )
        self._rescored = new

    # -- batched rounds (SemiNAS, NAO, BANANAS) --------------------------------------------
    def _round_step(self, num_initial: int, apply: Callable[[Any, int], list]) -> tuple[bool, list | None]:
        """The common start of a batched searcher's ``_propose``: ``(True, batch)`` for the random
        start or a finished round, ``(True, None)`` while results, a round or a re-scoring are
        pending, ``(False, None)`` when the next round may start."""
        remaining = self.max_queries - self.num_spent
        if self.num_spent < num_initial:
            return True, self.sample_new(min(num_initial - self.num_spent, remaining))
        done, result = self.poll_job()
        if done:
            return True, apply(result, remaining)
        if self.job_running or self._pending or not self.labels_ready():
            return True, None  # the batch's results are needed first
        return False, None

    def _start_round(self, fn: Callable, request: Any, apply: Callable[[Any, int], list]) -> list | None:
        """Start round ``fn(request)``; its batch at once when it ran inline, else None."""
        self.start_job(fn, request)
        done, result = self.poll_job()
        return apply(result, self.max_queries - self.num_spent) if done else None

    # -- what subclasses implement -------------------------------------------------------
    def _propose(self) -> list | None:
        """New architectures to queue, ``[]`` when the space is exhausted, or None to wait
        (results pending or a background job running)."""
        raise NotImplementedError
