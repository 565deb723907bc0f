"""The end-of-run report, the progress line and the controller's held-out tau and threads."""

from __future__ import annotations

import io
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from ray import tune

from seminas_tune.cli import main
from seminas_tune.controller.trainer import ControllerConfig, _threads
from seminas_tune.progress import CompactProgress
from seminas_tune.report import load_experiment, pareto_front, random_expectation
from trainables import nasbench201_trainable
from trainables.nasbench import nasbench201_space


def test_random_expectation_is_the_exact_mean_best_of_distinct_draws():
    values = np.array([0.1, 0.5, 0.2, 0.9, 0.4])
    for n in range(1, 6):
        brute = np.mean([max(c) for c in itertools.combinations(values, n)])
        assert random_expectation(values, 5)[n - 1] == pytest.approx(brute)
    assert random_expectation(values, 2, mode="min")[1] == pytest.approx(
        np.mean([min(c) for c in itertools.combinations(values, 2)])
    )


def test_pareto_front_keeps_only_non_dominated_points():
    cost = np.array([1.0, 2.0, 2.0, 3.0, 4.0])
    value = np.array([0.5, 0.4, 0.7, 0.6, 0.8])
    assert pareto_front(cost, value).tolist() == [0, 2, 4]


def test_controller_threads_follow_the_ray_task_and_the_host(ray_session):
    import os

    cfg = ControllerConfig(num_threads=64)
    assert _threads(cfg) == len(os.sched_getaffinity(0))  # capped by the cores this process may use
    zero = ray_session.remote(num_cpus=0)(lambda: _threads(cfg))
    assert ray_session.get(zero.remote()) == 1  # the searchers' tasks ask for no CPU: one thread
    one = ray_session.remote(num_cpus=1)(lambda: _threads(cfg))
    assert ray_session.get(one.remote()) == 1


def _trial(status, value, config):
    return SimpleNamespace(status=status, last_result={"val_accuracy": value}, config=config)


def test_progress_is_plain_lines_off_a_terminal_and_one_line_on_one():
    space = nasbench201_space()
    archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
    trials = [_trial("TERMINATED", v, space.to_config(a)) for v, a in zip((0.5, 0.8, 0.6), archs)]
    trials.append(_trial("RUNNING", 0.99, space.to_config(archs[0])))
    searcher = SimpleNamespace(
        max_queries=10, space=space, metric="val_accuracy", mode="max", iteration=2, job_running=True
    )
    log = io.StringIO()
    progress = CompactProgress(searcher, stream=log)
    progress.show(trials, force=True)
    line = log.getvalue()
    assert line.endswith("\n") and "\r" not in line and "\x1b" not in line
    assert line.startswith(f"3/10 trials | best 0.8000 {space.describe(archs[1])} | controller round 3 training")

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    progress = CompactProgress(searcher, stream=tty)
    progress.show(trials, force=True)
    progress.show(trials, force=True)
    assert tty.getvalue().count("\r") == 2 and "\n" not in tty.getvalue()


def test_report_of_a_plain_tuner_run_with_a_package_searcher(ray_session, tmp_path, capsys):
    """``seminas-tune report`` on a folder written by the user's own ``tune.Tuner``."""
    from seminas_tune import SemiNASSearcher

    space = nasbench201_space()
    searcher = SemiNASSearcher(
        space=space,
        metric="val_accuracy",
        mode="max",
        max_queries=24,
        seed=0,
        num_initial=8,
        num_new=8,
        num_unlabeled=100,
        top_k=8,
    )
    tune.Tuner(
        nasbench201_trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            metric="val_accuracy",
            mode="max",
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="mine", verbose=0),
    ).fit()
    taus = [h["heldout_tau"] for h in searcher.history if "heldout_tau" in h]
    assert len(taus) == 1 and -1 <= taus[0] <= 1  # round 2 scores round 1's 8 proposals
    assert searcher.history[1]["heldout_n"] == 8

    exp = load_experiment(tmp_path / "mine")
    assert len(exp.trials) == 24 and exp.searcher == "SemiNASSearcher" and exp.history == searcher.history
    best = exp.best_so_far()
    assert np.all(np.diff(best) >= 0) and best[-1] == max(o.value for o in searcher.results())

    assert main(["report", str(tmp_path)]) == 0  # the storage path holding one experiment
    assert "wrote" in capsys.readouterr().out
    png = tmp_path / "mine" / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table" in png.with_suffix(".html").read_text()
