"""The benchmark harness (``seminas_tune.bench``): drivers, budget rules, resumability, outputs."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from seminas_tune import bench as B
from seminas_tune.controller import ControllerConfig
from seminas_tune.search.presets import preset_settings

TINY_SEMINAS = {
    "num_initial": 4,
    "num_new": 4,
    "top_k": 4,
    "num_unlabeled": 40,
    "controller.epd.hidden": 16,
    "controller.epd.mlp_hidden": 16,
    "controller.labeled_steps": 5,
    "controller.joint_steps": 5,
    "controller.batch_size": 32,
    "controller.num_threads": 1,
}
TINY_RE = {"population_size": 4, "tournament_size": 2}


def _unit(benchmark, alg, seed, budget, driver="inline", settings=None, time_budget=None, invalid_factor=50.0):
    return B.Unit(
        benchmark, alg, seed, budget, time_budget, driver, tuple(sorted((settings or {}).items())), invalid_factor
    )


@pytest.mark.parametrize("alg,settings", [("seminas", TINY_SEMINAS), ("re", TINY_RE)])
def test_inline_and_tune_drivers_give_the_same_queries(ray_session, alg, settings):
    seqs = {}
    for driver in ("inline", "tune"):
        rows, meta = B.run_unit(_unit("nb201-cifar10", alg, 5, 8, driver, settings))
        assert meta["n_valid"] == 8 and meta["stop_reason"] == "budget"
        seqs[driver] = [r["key"] for r in rows]
    assert len(set(seqs["inline"])) == 8
    assert seqs["inline"] == seqs["tune"]


def test_builtin_penalty_does_not_use_the_budget():
    """BasicVariantGenerator on NB-101's flat form: most configs are invalid or not in the table.
    They get the penalty, the searcher is told so, and the harness asks until 30 valid queries."""
    bench = B.get_benchmark("nb101")
    told = []

    class Spy(B.BasicVariantSearcher):
        def on_trial_complete(self, trial_id, result=None, error=False):
            told.append(result)

    h = B.HarnessSearcher(Spy(1), bench, 1, budget=30, label="basic")
    B.drive_inline(h, bench, 1, bench.space.tune_space())
    assert h.n_valid == 30 and h.stop_reason == "budget"
    assert h.n_invalid > 30, "most flat NB-101 configs should be invalid or uncovered"
    assert len(told) == len(h.rows) == 30 + h.n_invalid
    penalised = [r for r in told if r["valid"] is False]
    assert len(penalised) == h.n_invalid and all(r["val_accuracy"] == B.PENALTY for r in penalised)
    assert [r["query"] for r in h.rows if r["valid"]] == list(range(1, 31))
    assert all(not r["valid"] and r["value"] == B.PENALTY for r in h.rows if r["key"] == "")
    # the cap on invalid suggestions ends the unit early and says so
    _, meta = B.run_unit(_unit("nb101", "basic", 1, 30, invalid_factor=0.1))
    assert meta["stop_reason"] == "invalid cap" and meta["n_invalid"] == 3 and meta["n_valid"] < 30


def test_duplicates_are_evaluated_and_counted():
    bench = B.get_benchmark("nb201-cifar10")
    cfg = bench.space.to_config(bench.space.sample(np.random.default_rng(0)))

    class Same(B.BasicVariantSearcher):
        def suggest(self, trial_id):
            return dict(cfg)

    h = B.HarnessSearcher(Same(0), bench, 0, budget=5, label="same")
    B.drive_inline(h, bench, 0, bench.space.tune_space())
    assert h.n_valid == 5 and h.n_duplicate == 4
    assert [r["duplicate"] for r in h.rows] == [False, True, True, True, True]


def test_time_budget_stops_on_simulated_training_time():
    _, meta = B.run_unit(_unit("nb101", "random", 0, 500, time_budget=20_000.0))
    assert meta["stop_reason"] == "time budget"
    assert 20_000 <= meta["cum_time"] < 20_000 + 10_000 and meta["n_valid"] < 500


def test_random_expectation_is_exact_on_a_small_table():
    import itertools

    val = np.array([0.1, 0.5, 0.5, 0.3, 0.9, 0.2])
    test = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 6.0])
    for n in (1, 2, 4):
        subsets = list(itertools.combinations(range(len(val)), n))
        e_max = np.mean([val[list(s)].max() for s in subsets])
        # best-by-val, ties: each tied cell equally likely to be found first
        e_rep = np.mean([np.mean([test[i] for i in s if val[i] == val[list(s)].max()]) for s in subsets])
        assert B.random_expectation(val, n) == pytest.approx(e_max)
        assert B.random_expectation(val, n, test) == pytest.approx(e_rep)


def test_settings_parse_apply_and_reject():
    s = B.parse_sets(
        [
            "seminas.num_unlabeled=2000",
            "seminas.controller.joint_steps=100",
            "seminas@big.controller.epd.hidden=128",
            "seminas@big.controller.epd.positional=false",  # a boolean, not the (truthy) text
            "optuna.sampler.n_startup_trials=5",
        ],
        ["seminas", "seminas@big", "optuna"],
    )
    assert s["seminas"] == {"controller.num_threads": 1, "num_unlabeled": 2000, "controller.joint_steps": 100}
    assert s["seminas@big"]["controller.epd.hidden"] == 128 and s["seminas@big"]["num_unlabeled"] == 2000
    kw = B.our_kwargs(s["seminas@big"], "seminas")
    assert kw["controller"].epd.hidden == 128 and kw["controller"].joint_steps == 100
    assert kw["controller"].epd.positional is False
    assert B.our_kwargs(s["seminas"], "seminas")["controller"].epd.positional is True  # the preset's
    for bad in (["seminas.nope=1"], ["seminas.controller.nope=1"], ["seminas.max_queries=3"], ["re.x"]):
        with pytest.raises(B.BenchError):
            B.parse_sets(bad, ["seminas", "re"])


def test_harness_run_outputs_self_check_and_resume(tmp_path, capsys):
    out = tmp_path / "res"
    argv = [
        "--benchmarks",
        "nb101",
        "--algorithms",
        "random,basic",
        "--seeds",
        "3",
        "--budget",
        "60",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    res = B.run(argv)
    assert res["ran"] == 6 and res["skipped"] == 0 and not res["errors"]
    printed = capsys.readouterr().out
    assert "[self-check] nb101 random @50" in printed
    # seed-major order: a run stopped part-way leaves every algorithm with as many seeds
    order = re.findall(r"nb101 (random|basic) seed (\d+):", printed)
    assert order == [(a, str(s)) for s in range(3) for a in ("random", "basic")]

    df = pd.read_csv(out / "results.csv")
    assert set(B.ROW_COLUMNS) <= set(df.columns)
    valid = df[df["valid"]]
    assert (valid.groupby(["algorithm", "seed"])["query"].max() == 60).all()
    assert (df[(df["algorithm"] == "basic") & ~df["valid"]]["value"] == B.PENALTY).any()
    # regret never increases along a run; random's mean regret falls with the budget
    for _, g in valid.groupby(["algorithm", "seed"]):
        assert (np.diff(g["regret"].to_numpy()) <= 1e-12).all()
    r = valid[valid["algorithm"] == "random"].groupby("query")["regret"].mean()
    assert r[60] < r[10] < r[1]
    bench = B.get_benchmark("nb101")  # noqa: F841 - read by the .eval string below
    assert r[60] == pytest.approx(
        valid[(valid["algorithm"] == "random") & (valid["query"] == 60)].eval("@bench.vmax - best_value").mean()
    )

    md = (out / "summary.md").read_text()
    assert "| random | 3 |" in md and "| basic | 3 |" in md and "@50" in md and "@60" in md
    assert "random-search self-check" in md and "top 0.1 %" in md
    table = [ln for ln in md.splitlines() if ln.startswith("| random | 3 |")][0]
    assert "+-" in table and "(" in table
    png = out / "regret_nb101.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    settings = json.loads((out / "settings.json").read_text())
    assert settings["budget"] == 60 and "basic" in settings["algorithms"]
    per_seed = pd.read_csv(out / "per_seed.csv").set_index(["algorithm", "seed"])
    assert len(per_seed) == 6 and {"regret@50", "regret@60", "queries_top_0.001"} <= set(per_seed.columns)
    at60 = valid[valid["query"] == 60].set_index(["algorithm", "seed"])["regret"] * 100
    assert np.allclose(per_seed.loc[at60.index, "regret@60"], at60, atol=1e-5)
    meta = json.loads((out / "parts" / "nb101" / "basic" / "seed0000.json").read_text())
    assert meta["n_valid"] == 60 and meta["n_invalid"] > 0 and meta["stop_reason"] == "budget"

    # resumable: nothing reruns; one more seed runs just that seed's units
    part = out / "parts" / "nb101" / "random" / "seed0000.csv"
    mtime = part.stat().st_mtime_ns
    res = B.run(argv)
    assert res["ran"] == 0 and res["skipped"] == 6
    assert part.stat().st_mtime_ns == mtime
    res = B.run([*argv[:5], "4", *argv[6:]])
    assert res["ran"] == 2 and res["skipped"] == 6
    res = B.run([*argv[:5], "4", *argv[6:], "--builtin-seeds", "2"])  # Tune's built-ins: fewer seeds
    assert res["units"] == 6 and res["ran"] == 0
    res = B.run([*argv[:5], "9", *argv[6:], "--summary-only"])  # seeds 4-8 are not run
    assert res["ran"] == 0 and res["skipped"] == 8
    assert "| random | 4 |" in (out / "summary.md").read_text()
    # other settings are other units: not mixed with the finished ones
    res = B.run([*argv[:3], "random", *argv[4:], "--invalid-factor", "10"])
    assert res["ran"] == 3 and res["skipped"] == 0
    assert math.isfinite(pd.read_csv(out / "results.csv")["regret"].iloc[-1])


def test_a_changed_package_default_reruns_the_unit(tmp_path):
    unit = B.Unit("nb101", "local", 0, 20, None, "inline", (), 50.0)
    B.run_unit(unit, tmp_path)
    assert B.unit_is_done(unit, tmp_path)
    meta_path = unit.part_path(tmp_path).with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["resolved"]["num_initial"] += 1  # as written by a version with another default
    meta_path.write_text(json.dumps(meta))
    assert not B.unit_is_done(unit, tmp_path)


@pytest.mark.parametrize("alg", ["optuna", "hyperopt", "nevergrad"])
def test_tune_builtins_installed_by_the_compare_extra_run_a_unit(alg):
    _, meta = B.run_unit(_unit("nb201-cifar10", alg, 0, 20, settings=B.default_settings(alg)))
    assert meta["n_valid"] == 20 and meta["stop_reason"] == "budget" and meta["final_regret"] >= 0


def test_goal_lines_judge_seminas_against_the_best_other_searcher_paired_by_seed():
    """Generated curves (three seeds each): SemiNAS clear of RE at 100; lowest but not clear at
    300, where one seed of RE beats it; its own variants (seminas@...) are not the field."""
    grid = np.arange(1, 1001)
    curves = {("seminas", s): c / grid for s, c in enumerate((0.010, 0.012, 0.011))}
    curves |= {("re", s): c / grid for s, c in enumerate((0.020, 0.024, 0.022))}
    curves |= {("random", s): 0.030 / np.sqrt(grid) for s in range(3)}
    curves |= {("seminas@x", s): 0.001 / grid for s in range(3)}
    curves[("re", 0)][299:] = 0.005 / grid[299:]
    hits = {("seminas", 0): 40.0, ("seminas", 1): 60.0, ("seminas", 2): 50.0, ("re", 0): 45.0}
    hits |= {("re", 1): math.inf, ("re", 2): 70.0, ("random", 0): 30.0, ("random", 1): 20.0, ("random", 2): 25.0}
    hits |= {("seminas@x", s): 1.0 for s in range(3)}
    text = "\n".join(B.goal_lines(curves, hits, ["seminas", "re", "random", "seminas@x"], [100, 300, 1000]))
    assert "| 100 | seminas 0.011 | 0.011 +- 0.001 | re 0.022 +- 0.001 | -0.011 +- 0.001 (3) | yes | yes |" in text
    row300 = [ln for ln in text.splitlines() if ln.startswith("| 300 |")][0]
    assert row300.startswith("| 300 | seminas ") and row300.endswith("| yes | no |")
    assert "SemiNAS 50; fewest: random 25." in text
    assert "SemiNAS at 300 queries 0.004 pp against RE at 1000 0.002 pp: worse." in text
    assert B.goal_lines(curves, hits, ["seminas", "seminas@x"], [100]) == []


def test_variant_lines_pair_each_seminas_variant_with_seminas_by_seed():
    """Generated curves (four seeds): seminas@worse is worse on every seed (clear), seminas@mixed
    better on two seeds and worse on two (not clear); queries to the top are compared per seed."""
    grid = np.arange(1, 301)
    curves = {("seminas", s): 0.01 / grid for s in range(4)}
    curves |= {("seminas@worse", s): (0.02 + 0.002 * s) / grid for s in range(4)}
    curves |= {("seminas@mixed", s): (0.02 if s % 2 else 0.0) / grid for s in range(4)}
    curves |= {("re", s): 0.05 / grid for s in range(4)}
    hits = {("seminas", s): 40.0 for s in range(4)}
    hits |= {("seminas@worse", s): [50.0, 60.0, math.inf, 30.0][s] for s in range(4)}
    hits |= {("seminas@mixed", s): 40.0 for s in range(4)}
    algs = ["seminas", "seminas@worse", "seminas@mixed", "re"]
    rows = {ln.split(" | ")[0]: ln for ln in B.variant_lines(curves, hits, algs, [100]) if ln.startswith("| seminas@")}
    assert set(rows) == {"| seminas@worse", "| seminas@mixed"}
    assert rows["| seminas@worse"] == "| seminas@worse | 4 | +0.013 +- 0.001* | 55 / 40 | 3 / 1 |"
    assert rows["| seminas@mixed"].startswith("| seminas@mixed | 4 | +0.000 +- 0.006 |")
    assert rows["| seminas@mixed"].endswith("| 40 / 40 | 0 / 0 |")
    assert B.variant_lines(curves, hits, ["seminas", "re"], [100]) == []


def test_builtin_budget_stops_their_columns_and_curves_at_it(tmp_path):
    out = tmp_path / "res"
    res = B.run(
        [
            "--benchmarks",
            "nb201-cifar10",
            "--algorithms",
            "random,basic",
            "--seeds",
            "2",
            "--budget",
            "60",
            "--builtin-budget",
            "30",
            "--workers",
            "1",
            "--out",
            str(out),
        ]
    )
    assert res["ran"] == 4 and not res["errors"]
    md = (out / "summary.md").read_text()
    assert "Budget 60 valid queries (basic: 30)" in md
    basic = [ln for ln in md.splitlines() if ln.startswith("| basic | 2 |")][0].split("|")
    random_row = [ln for ln in md.splitlines() if ln.startswith("| random | 2 |")][0].split("|")
    assert basic[3].strip() == basic[4].strip() == "-"  # @50 and @60 lie past basic's budget
    assert "+-" in random_row[3] and "(" not in random_row[3]  # nothing left to rank against
    with pytest.raises(B.BenchError, match="exceeds --budget"):
        B.run(["--algorithms", "basic", "--budget", "10", "--builtin-budget", "20", "--out", str(out)])


def test_library_errors_raise_and_the_command_line_exits_2(tmp_path, capsys):
    """The harness's functions raise BenchError; only the command line turns it into one line on
    stderr and exit code 2, before running or writing anything."""
    from seminas_tune.cli import main as package_main

    with pytest.raises(B.BenchError, match="unknown algorithm 'nosuch'"):
        B.build_searcher("nosuch", None, 0, 10, {})
    with pytest.raises(B.BenchError, match="seminas has no argument 'bogus'"):
        B.parse_sets(["seminas.bogus=1"], ["seminas"])
    with pytest.raises(B.BenchError, match="unknown benchmark 'nb999'"):
        B.get_benchmark("nb999")
    out = tmp_path / "res"
    for argv in (
        ["--algorithms", "nosuch"],
        ["--algorithms", "seminas", "--set", "seminas.bogus=1"],
        ["--benchmarks", "nb999", "--algorithms", "random"],
    ):
        assert B.main([*argv, "--out", str(out)]) == 2
        assert package_main(["bench", *argv, "--out", str(out)]) == 2
        captured = capsys.readouterr()
        lines = captured.err.splitlines()
        assert len(lines) == 2 and lines[0] == lines[1] and lines[0].startswith("seminas-tune bench: error: ")
        assert captured.out == ""
    assert not out.exists()


def test_shared_searcher_arguments_are_settings_and_recorded():
    """Settings a searcher passes on to its base (``nao.num_initial`` from SemiNAS, ``max_flops``
    from ArchSearcher) are accepted and recorded; the harness's own arguments are not settings."""
    s = B.parse_sets(["nao.num_initial=40", "seminas.num_initial=40", "seminas.max_flops=1e9"], ["seminas", "nao"])
    assert s["nao"] == {"controller.num_threads": 1, "num_initial": 40}
    assert s["seminas"] == {"controller.num_threads": 1, "num_initial": 40, "max_flops": 1e9}
    with pytest.raises(B.BenchError) as err:
        B.parse_sets(["nao.bogus=1"], ["nao"])
    listed = str(err.value).split("(it has ", 1)[1]
    assert "'num_initial'" in listed and "'max_flops'" in listed and "'max_queries'" not in listed
    with pytest.raises(B.BenchError, match="the harness sets seed itself"):
        B.parse_sets(["nao.seed=1"], ["nao"])
    space = B.get_benchmark("nb201-cifar10").space
    resolved = B.resolved_settings(B.build_searcher("nao", space, 0, 50, s["nao"]))
    assert resolved["class"] == "NAOSearcher" and resolved["num_initial"] == 40 and resolved["max_queries"] == 50
    assert {"num_unlabeled", "max_flops", "fidelity", "controller"} <= set(resolved)
    assert resolved["controller"]["num_threads"] == 1


def test_a_tune_algorithm_is_one_table_entry(monkeypatch):
    """Adding one of Tune's searchers to the harness is one TUNE_ALGORITHMS entry: it is listed,
    takes (or refuses) settings and runs a unit like the others."""
    entry = B.TuneAlgorithm(lambda seed, *_: B.BasicVariantSearcher(seed), takes_settings=False)
    monkeypatch.setitem(B.TUNE_ALGORITHMS, "basic2", entry)
    assert B.algorithm_status()["basic2"] == "ok"
    assert B.parse_sets([], ["basic2"]) == {"basic2": {}}
    with pytest.raises(B.BenchError, match="basic2 has no settings"):
        B.parse_sets(["basic2.x=1"], ["basic2"])
    rows, meta = B.run_unit(_unit("nb201-cifar10", "basic2", 0, 10))
    assert (
        meta["n_valid"] == 10
        and meta["stop_reason"] == "budget"
        and meta["resolved"] == {"class": "BasicVariantSearcher"}
    )
    # its own stream, not basic's: the stream is derived from the name
    basic_rows, _ = B.run_unit(_unit("nb201-cifar10", "basic", 0, 10))
    assert [r["key"] for r in rows] != [r["key"] for r in basic_rows]


def test_presets_reach_our_searchers_and_dotted_settings_start_from_them():
    s = B.parse_sets([], ["seminas", "re", "optuna"], "paper")
    assert s["seminas"]["preset"] == "paper" and s["re"]["preset"] == "paper" and "preset" not in s["optuna"]
    paper = B.our_kwargs(s["seminas"], "seminas", 300)
    assert paper["controller"].schedule == "reference" and paper["controller"].num_threads == 1
    default = B.our_kwargs(B.parse_sets([], ["seminas"])["seminas"], "seminas", 300)
    preset = preset_settings("seminas", "default", 300)["controller"]
    assert preset.labeled_steps != ControllerConfig().labeled_steps, "the check below needs a preset that differs"
    assert default["controller"].labeled_steps == preset.labeled_steps, "controller.num_threads=1 must not reset it"
    with pytest.raises(SystemExit):
        B.make_parser().parse_args(["--preset", "fast"])


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("controller.bogus", "ControllerConfig has no field 'bogus'"),
        ("controller.epd.bogus", "EPDConfig has no field 'bogus'"),
        ("controller", "controller is a settings object (ControllerConfig)"),
        ("controller.epd", "controller.epd is a settings object (EPDConfig)"),
        ("num_initial.x", "num_initial is not a settings object"),
    ],
)
def test_a_dotted_setting_must_name_a_field_and_the_cli_says_the_same(path, problem):
    """The harness's ``--set`` and the CLI's check dotted settings with the one function."""
    from seminas_tune.cli_search import SearchJob, UsageError, make_searcher

    with pytest.raises(B.BenchError, match=re.escape(f"--set seminas.{path}: {problem}")):
        B.parse_sets([f"seminas.{path}=1"], ["seminas"])
    space = B.get_benchmark("nb201-cifar10").space
    with pytest.raises(UsageError, match=re.escape(f"--set {path}: {problem}")):
        make_searcher(SearchJob(space="nb201-cifar10", settings={path: 1}), space)
    assert B.setting_problem("seminas", "controller.epd.positional") is None


def test_a_whole_settings_object_from_python_is_a_setting():
    assert B.setting_problem("seminas", "controller", ControllerConfig()) is None
    assert "settings object" in B.setting_problem("seminas", "controller", 3)


def test_space_tune_gives_our_searcher_the_flat_param_space_built_ins_get():
    """``--set seminas@flat.space=tune``: the searcher builds its space from the table's flat
    ``tune_space()``; on NB-101 it then meets invalid configs, which do not use the budget."""
    s = B.parse_sets(["re@flat.space=tune"], ["re", "re@flat"])
    assert s["re@flat"]["space"] == "tune" and "space" not in s["re"]
    assert "space" not in B.our_kwargs(s["re@flat"], "re")
    with pytest.raises(B.BenchError, match="only space=tune .* may be set"):
        B.parse_sets(["re.space=nb101"], ["re"])
    native_rows, native = B.run_unit(_unit("nb101", "re", 0, 30, settings=TINY_RE))
    rows, flat = B.run_unit(_unit("nb101", "re@flat", 0, 30, settings={**TINY_RE, "space": "tune"}))
    assert native["n_invalid"] == 0 and flat["n_invalid"] > 0
    assert flat["n_valid"] == 30 and flat["stop_reason"] == "budget"
    assert len(rows) == 30 + flat["n_invalid"]
