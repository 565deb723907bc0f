"""The command line: one-line mistakes, help texts, readable output, report, resume after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seminas_tune.cli import _parser, main

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A small SemiNAS schedule for NB-201 so whole-CLI runs take seconds.
SMALL = [
    "--space",
    "nb201-cifar10",
    "--set",
    "num_initial=10",
    "--set",
    "num_new=10",
    "--set",
    "num_unlabeled=200",
    "--set",
    "top_k=10",
]


def _mistakes(tmp: Path) -> list[list[str]]:
    (tmp / "a_file").write_text("")
    (tmp / "not_an_experiment").mkdir()
    (tmp / "not_an_experiment" / "notes.txt").write_text("mine")
    other = tmp / "other_options"  # an experiment started with --budget 5
    other.mkdir()
    (other / "tuner.pkl").write_bytes(b"")  # what Tuner.can_restore looks for
    (other / "seminas_cli.json").write_text('{"space": "nb201-cifar10", "budget": 5}')
    return [
        ["search", "--budget", "0"],
        ["search", "--budget", "many"],
        ["search", "--concurrency", "0"],
        ["search", "--searcher", "bogus"],
        ["search", "--space", "nb201-cifar10", "--dataset-file", str(tmp / "a_file")],
        ["search", "--dataset-file", str(tmp / "missing.tfrecord")],
        ["search", "--storage-path", str(tmp / "a_file" / "below")],
        ["search", "--set", "num_initial"],
        ["search", "--set", "no_such_setting=1"],
        ["search", "--set", "controller.epd.no_such_field=1"],
        ["search", "--set", "controller.labeled_steps=-3"],
        ["search", "--set", "num_initial=-3", "--space", "nb201-cifar10"],
        ["search", "--space", "nb999"],
        ["search", "--space", "tests.cli_user_code:space"],
        ["search", "--space", "tests.cli_user_code:not_a_space", "--trainable", "tests.cli_user_code:trainable"],
        ["search", "--space", "tests.no_such_module:space", "--trainable", "tests.cli_user_code:trainable"],
        ["search", "--space", "nb201-cifar10", "--trainable", "tests.cli_user_code:not_a_space"],
        ["search", "--storage-path", str(tmp), "--name", "not_an_experiment", "--fresh"],
        ["search", "--unknown-option"],
        ["search", "--space", "nb201-cifar10", "--storage-path", str(tmp), "--name", "other_options"],
        ["enumerate", "--max-vertices", "9"],
        ["report", str(tmp / "not_an_experiment")],
        ["report", str(tmp / "missing")],
    ]


@pytest.mark.parametrize("case", range(23))
def test_a_mistake_is_one_line_on_stderr(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    argv = _mistakes(tmp_path)[case]
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    assert e.value.code not in (0, None), argv
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in out.err, (argv, out.err)
    assert (tmp_path / "not_an_experiment" / "notes.txt").exists()  # --fresh deletes no foreign folder


def test_every_option_has_help_with_its_default():
    import argparse

    parser = _parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("search", "report", "enumerate"):
        sub = subs.choices[name]
        text = sub.format_help()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.dest)
            if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)
    assert "--concurrency 1" in " ".join(subs.choices["search"].format_help().split())  # what --seed fixes


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "seminas_tune.cli", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )


def _run(args: list[str], timeout: float = 600) -> tuple[int, str]:
    p = _cli(args)
    out, _ = p.communicate(timeout=timeout)
    return p.returncode, out


def _valid_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    assert matplotlib.image.imread(path).shape[0] > 100


def test_quick_start_prints_a_short_log_and_the_report(tmp_path):
    """The README's first command (smaller budget): a few dozen lines, not a table per trial."""
    rc, out = _run(
        [
            "search",
            "--space",
            "nb101",
            "--searcher",
            "seminas",
            "--budget",
            "40",
            "--seed",
            "0",
            "--set",
            "num_initial=20",
            "--set",
            "num_new=10",
            "--set",
            "num_unlabeled=500",
            "--storage-path",
            str(tmp_path),
        ]
    )
    assert rc == 0, out
    lines = out.splitlines()
    assert len(lines) <= 60, out
    assert "\r" not in out and "\x1b" not in out  # not a terminal: plain lines
    assert "edge_" not in out and "op_" not in out  # no per-trial config tables
    rank1 = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["1"])
    assert lines[rank1 - 2].startswith("Best 10 of 40 architectures")
    assert lines[-2] == f"All results: {tmp_path / 'seminas_search.csv'}"
    assert lines[-1].startswith(f"Report: {tmp_path / 'seminas_search.png'}")
    _valid_png(tmp_path / "seminas_search.png")
    assert "data:image/png;base64" in (tmp_path / "seminas_search.html").read_text()


def _interrupt_when(p: subprocess.Popen, ready, timeout: float = 300) -> tuple[list[str], float]:
    """Read ``p``'s output until ``ready(line)``, then SIGINT it; returns (lines, seconds to exit)."""
    lines, start = [], time.monotonic()
    for line in p.stdout:
        lines.append(line)
        if ready(line):
            break
        assert time.monotonic() - start < timeout, "".join(lines)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    sent = time.monotonic()
    rest, _ = p.communicate(timeout=120)
    return lines + rest.splitlines(keepends=True), time.monotonic() - sent


def _assert_complete(tmp_path: Path, budget: int) -> None:
    import pandas as pd

    df = pd.read_csv(tmp_path / "seminas_search.csv")
    assert len(df) == budget and df.trial_id.nunique() == budget
    assert df.arch_key.nunique() == budget  # no architecture evaluated twice


@pytest.mark.slow  # two CLI runs, each starting Ray: 40 s idle, 2 min on a loaded 2-core machine
def test_sigint_during_a_controller_round_exits_quickly_and_resumes(tmp_path):
    from ray import tune

    args = [
        "search",
        *SMALL,
        "--budget",
        "20",
        "--set",
        "controller.labeled_steps=1500",
        "--storage-path",
        str(tmp_path),
    ]
    lines, took = _interrupt_when(_cli(args), lambda ln: "controller round 1 training" in ln)
    out = "".join(lines)
    assert took < 15, out
    assert "run the same command again" in out
    exp = tmp_path / "seminas_search"
    assert tune.Tuner.can_restore(str(exp))
    rc, out = _run(args)
    assert rc == 0, out
    assert "Resuming the experiment" in out
    _assert_complete(tmp_path, 20)


@pytest.mark.slow  # two CLI runs, each starting Ray
def test_sigint_part_way_then_the_same_command_completes(tmp_path):
    args = ["search", "--space", "nb201-cifar10", "--searcher", "re", "--budget", "40", "--storage-path", str(tmp_path)]
    trials = tmp_path / "seminas_search"
    p = _cli(args)
    start = time.monotonic()
    while len(list(trials.glob("trial_*/final_result.json"))) < 5:
        assert p.poll() is None and time.monotonic() - start < 300
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 130, out
    rc, out = _run(args)
    assert rc == 0, out
    assert "Resuming the experiment" in out
    _assert_complete(tmp_path, 40)


def test_user_space_and_trainable_and_fresh(ray_session, tmp_path, monkeypatch, capsys):
    """--space module:object and --trainable module:function; a rerun of a finished experiment
    only reports it; --fresh starts over."""
    monkeypatch.chdir(ROOT)
    args = [
        "search",
        "--space",
        "tests.cli_user_code:space",
        "--trainable",
        "tests.cli_user_code:trainable",
        "--searcher",
        "random",
        "--budget",
        "6",
        "--storage-path",
        str(tmp_path),
    ]
    assert main(args) == 0
    first = (tmp_path / "seminas_search.csv").read_text()
    assert first.count("\n") == 7
    _valid_png(tmp_path / "seminas_search.png")  # with the accuracy-vs-cost panel ("params")
    assert main(args) == 0
    assert "Resuming the experiment" in capsys.readouterr().out
    assert (tmp_path / "seminas_search.csv").read_text() == first
    assert main(args + ["--fresh", "--seed", "1"]) == 0
    assert (tmp_path / "seminas_search.csv").read_text() != first


def test_preset_and_dotted_settings_build_on_each_other():
    from seminas_tune.cli_search import SearchJob, make_searcher, parse_settings
    from seminas_tune.controller import ControllerConfig
    from seminas_tune.search.presets import preset_settings
    from trainables.nasbench import nasbench201_space

    def searcher(preset, *sets):
        job = SearchJob(space="nb201-cifar10", settings={"preset": preset, **parse_settings(list(sets))})
        return make_searcher(job, nasbench201_space())

    default = searcher("default", "controller.num_threads=1")
    preset = preset_settings("seminas", "default", 300)
    assert preset["controller"].labeled_steps != ControllerConfig().labeled_steps  # else the check below is moot
    assert (default.num_initial, default.controller.labeled_steps) == (
        preset["num_initial"],
        preset["controller"].labeled_steps,
    ), "--set must not reset the preset"
    assert default.controller.epd.positional is True
    off = searcher("default", "controller.epd.positional=false", "controller.joint_steps=7")
    assert off.controller.epd.positional is False and off.controller.joint_steps == 7
    assert off.controller.labeled_steps == preset["controller"].labeled_steps
    paper = searcher("paper", "num_initial=20")
    assert paper.num_initial == 20 and paper.num_new == 100 and paper.controller.schedule == "reference"
    assert _parser().parse_args(["search", "--preset", "paper"]).preset == "paper"


def test_set_of_an_argument_the_cli_owns_names_its_option():
    from seminas_tune.cli_search import SearchJob, UsageError, make_searcher
    from seminas_tune.spaces import NASBench201Space

    for key, option in (("max_queries", "--budget"), ("seed", "--seed")):
        with pytest.raises(UsageError, match=f"--set {key}: use {option} instead"):
            make_searcher(SearchJob(settings={key: 3}), NASBench201Space())
    with pytest.raises(UsageError, match="seminas-tune search sets background itself"):
        make_searcher(SearchJob(settings={"background": "ray"}), NASBench201Space())
