"""``seminas-tune search``: check the options, then run (or resume) a Tune experiment.

Every mistake the options can hold is found by :func:`prepare` and raised as a
:class:`UsageError` (one line) before Ray starts.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seminas_tune.bench.common import parse_value

BUNDLED = ("nb101", "nb201-cifar10", "nb201-cifar100", "nb201-imagenet")
META = "seminas_cli.json"  # the options an experiment was started with, beside Tune's files
OPTION_OF = {"space": "--space", "metric": "--metric", "mode": "--mode", "max_queries": "--budget", "seed": "--seed"}
"""Searcher arguments that an option of ``seminas-tune search`` sets."""
RESERVED = (*OPTION_OF, "background", "points_to_evaluate", "resolution", "fidelity")
"""Searcher arguments the CLI sets, so ``--set`` may not."""


class UsageError(ValueError):
    """A command-line mistake, reported as one line."""


@dataclass
class SearchJob:
    """What defines an experiment: a rerun with the same job resumes it."""

    space: str = "nb101"
    searcher: str = "seminas"
    budget: int = 300
    seed: int = 0
    concurrency: int = 2
    trainable: str | None = None
    dataset_file: str | None = None
    metric: str = "val_accuracy"
    mode: str = "max"
    settings: dict = field(default_factory=dict)
    gpu: bool = False


@dataclass
class Prepared:
    """A checked job with its space, trainable, searcher and experiment folder."""

    job: SearchJob
    space: Any
    trainable: Callable
    searcher: Any
    exp_dir: Path


def parse_settings(items: list[str]) -> dict:
    """``key=value`` pairs (values by :func:`~seminas_tune.bench.common.parse_value`) to a dict."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes key=value, got {item!r}")
        out[key.strip()] = parse_value(text)
    return out


def load_object(spec: str, option: str) -> Any:
    """The object ``module:name`` names (the current directory is importable)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise UsageError(f"{option} takes module:name, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to fix
        raise UsageError(f"{option} {spec}: cannot import {module!r} ({type(e).__name__}: {e})") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{option} {spec}: module {module!r} has no {name!r}")
        obj = getattr(obj, part)
    return obj


def _space_and_trainable(job: SearchJob) -> tuple[Any, Callable]:
    from seminas_tune.spaces import SearchSpace

    if job.dataset_file is not None:
        if job.space != "nb101":
            raise UsageError(f"--dataset-file is an NB-101 tfrecord; it does not apply to --space {job.space}")
        if not os.path.isfile(job.dataset_file):
            raise UsageError(f"--dataset-file {job.dataset_file}: no such file")
    if job.space in BUNDLED:
        from trainables.nasbench import (
            make_nasbench101_trainable,
            make_nasbench201_trainable,
            nasbench101_space,
            nasbench201_space,
        )

        if job.space == "nb101":
            try:
                space = nasbench101_space(job.dataset_file)
            except Exception as e:  # noqa: BLE001 - a file that is not an NB-101 tfrecord
                raise UsageError(f"--dataset-file {job.dataset_file}: not readable as NB-101 data ({e})") from None
            trainable = make_nasbench101_trainable(job.dataset_file)
        else:
            space, trainable = nasbench201_space(), make_nasbench201_trainable(job.space.split("-", 1)[1])
    else:
        if ":" not in job.space:
            raise UsageError(f"--space must be one of {', '.join(BUNDLED)} or module:object, got {job.space!r}")
        if job.trainable is None:
            raise UsageError("--space module:object needs --trainable module:function to evaluate its configs")
        space = load_object(job.space, "--space")
        if not isinstance(space, (SearchSpace, dict)):
            raise UsageError(
                f"--space {job.space} is a {type(space).__name__}; expected a SearchSpace or a Tune param_space dict"
            )
        trainable = None
    if job.trainable is not None:
        trainable = load_object(job.trainable, "--trainable")
        if not callable(trainable):
            raise UsageError(f"--trainable {job.trainable} is not callable")
    return space, trainable


def make_searcher(job: SearchJob, space: Any) -> Any:
    """The searcher of ``job`` over ``space``, with its ``--set`` settings (a dotted one changes
    the object the searcher's preset gives it, as in the harness)."""
    from seminas_tune.bench.algorithms import our_kwargs, setting_problem
    from seminas_tune.search import SEARCHERS

    cls = SEARCHERS[job.searcher]
    for key, value in job.settings.items():
        if key in OPTION_OF:
            raise UsageError(f"--set {key}: use {OPTION_OF[key]} instead")
        problem = setting_problem(cls.short_name, key, value, RESERVED, "seminas-tune search")
        if problem:
            raise UsageError(f"--set {key}: {problem}")
    try:
        kwargs = our_kwargs(job.settings, cls.short_name, job.budget)
        return cls(space=space, metric=job.metric, mode=job.mode, max_queries=job.budget, seed=job.seed, **kwargs)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{job.searcher}: {e}") from None


def prepare(job: SearchJob, storage_path: str, name: str, fresh: bool) -> Prepared:
    """Check everything, build the searcher, and clear the experiment folder for ``--fresh``."""
    if job.budget < 1:
        raise UsageError(f"--budget must be at least 1, got {job.budget}")
    if job.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {job.concurrency}")
    if job.mode not in ("max", "min"):
        raise UsageError(f"--mode must be max or min, got {job.mode!r}")
    if not name or os.sep in name:
        raise UsageError(f"--name must be a plain folder name, got {name!r}")
    storage = Path(storage_path).expanduser().resolve()
    try:
        storage.mkdir(parents=True, exist_ok=True)
        probe = storage / f".{name}.write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--storage-path {storage_path}: cannot write there ({e.strerror or e})") from None
    space, trainable = _space_and_trainable(job)
    searcher = make_searcher(job, space)
    exp_dir = storage / name
    if fresh and exp_dir.exists():
        if not ((exp_dir / META).exists() or (exp_dir / "tuner.pkl").exists()):
            raise UsageError(f"--fresh would delete {exp_dir}, which is not a Tune experiment; choose another --name")
        shutil.rmtree(exp_dir)
    return Prepared(job, space, trainable, searcher, exp_dir)


def _record(job: SearchJob) -> dict:
    """The job as it is stored (JSON types: a tuple setting compares as the list it becomes)."""
    return json.loads(json.dumps(asdict(job)))


def check_resumable(prep: Prepared) -> bool:
    """Whether the experiment folder holds a run of this very job to resume."""
    from ray import tune

    if not tune.Tuner.can_restore(str(prep.exp_dir)):
        return False
    try:
        old = json.loads((prep.exp_dir / META).read_text())
    except (OSError, ValueError):
        raise UsageError(
            f"{prep.exp_dir} holds an experiment not started by seminas-tune search; "
            f"choose another --name or pass --fresh"
        ) from None
    new = _record(prep.job)
    if old != new:
        diff = ", ".join(f"{k} {v!r}" for k, v in old.items() if new.get(k) != v)
        raise UsageError(
            f"{prep.exp_dir} holds an experiment started with other options ({diff}); "
            f"rerun with those, pass --fresh to start over, or choose another --name"
        )
    return True


def write_record(prep: Prepared) -> None:
    (prep.exp_dir / META).write_text(json.dumps(_record(prep.job), indent=1))


def _done(exp_dir: Path) -> int:
    from seminas_tune.search.resume import tune_trials

    return sum(t.last_result is not None for t in tune_trials(str(exp_dir)).values())


def _searcher_finished(exp_dir: Path) -> bool:
    """Whether the searcher's newest checkpoint says it has nothing left to suggest."""
    import pickle

    files = sorted(exp_dir.glob("searcher-state-*.pkl"), key=os.path.getmtime)
    try:
        state = pickle.loads(files[-1].read_bytes())["state"]
    except Exception:  # noqa: BLE001 - no checkpoint yet: not finished
        return False
    return bool(state.get("_exhausted")) or (len(state["_proposed"]) >= state["max_queries"] and not state["_pending"])


def run(prep: Prepared, output: str, top: int, verbose: int) -> int:
    """Run or resume the experiment, then write the CSV and the report; returns the exit code."""
    import ray
    from ray import tune

    from seminas_tune.progress import PromptInterrupt, compact_output
    from seminas_tune.report import load_experiment, write_report

    job = prep.job
    resume = check_resumable(prep)
    if os.getcwd() not in os.environ.get("PYTHONPATH", "").split(os.pathsep):  # workers import user modules
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)
    if not ray.is_initialized():
        ray.init(
            include_dashboard=False, log_to_driver=verbose > 0, configure_logging=verbose > 0, logging_level="WARNING"
        )
    if job.gpu and ray.cluster_resources().get("GPU", 0) < 1:
        raise SystemExit("--gpu was given but the Ray cluster has no GPU; drop --gpu or start Ray on a GPU host")
    # On a resume, Tune brings back the callbacks the experiment started with.
    output_kw = {"verbose": 3, "callbacks": [PromptInterrupt()]} if verbose else compact_output(prep.searcher)
    if resume:
        print(
            f"Resuming the experiment in {prep.exp_dir} ({_done(prep.exp_dir)} of {job.budget} "
            f"trials done); pass --fresh to start over.",
            flush=True,
        )
        tuner = tune.Tuner.restore(str(prep.exp_dir), trainable=prep.trainable)
    else:
        tuner = tune.Tuner(
            tune.with_resources(prep.trainable, {"cpu": 1}),
            tune_config=tune.TuneConfig(
                search_alg=prep.searcher,
                num_samples=-1,
                metric=job.metric,
                mode=job.mode,
                max_concurrent_trials=job.concurrency,
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(name=prep.exp_dir.name, storage_path=str(prep.exp_dir.parent), **output_kw),
        )
        write_record(prep)
        print(f"Experiment: {prep.exp_dir}", flush=True)
    tuner.fit()
    exp = load_experiment(prep.exp_dir, metric=job.metric, mode=job.mode, space=prep.searcher.space)
    if len(exp.trials) < job.budget and not _searcher_finished(prep.exp_dir):
        print(
            f"Interrupted after {len(exp.trials)} of {job.budget} trials; the experiment is saved in "
            f"{prep.exp_dir}: run the same command again to continue (--fresh starts over).",
            file=sys.stderr,
        )
        return 130
    rows = exp.ranked()
    import pandas as pd

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(output, index=False)
    png = Path(output).with_suffix(".png")
    write_report(exp, png, png.with_suffix(".html"), top=top)
    space_name = getattr(prep.searcher.space, "name", job.space)
    print(f"\nBest {min(top, len(rows))} of {len(rows)} architectures evaluated ({job.searcher} on {space_name}):")
    width = max(8, len(job.metric))
    print(f"{'rank':>4}  {job.metric:>{width}}  architecture")
    for r in rows[:top]:
        print(f"{r['rank']:>4}  {r[job.metric]:>{width}.4f}  {r['arch']}")
    print(f"\nAll results: {output}\nReport: {png} (and {png.with_suffix('.html').name})")
    return 0


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"
