"""benchmarks/pool_runs.py: a summary.md pooled with a later run's seeds equals the run over all of them."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from seminas_tune import bench as B
from seminas_tune.bench.stats import mean_se

ROOT = Path(__file__).parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("pool_runs", ROOT / "benchmarks" / "pool_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _harness(out: Path, *seeds: str) -> None:
    argv = ["--benchmarks", "nb101", "--algorithms", "random,re", "--budget", "60", "--workers", "1", "--out", str(out)]
    B.run([*argv, *seeds])


def test_pooling_a_summary_with_new_seeds_matches_all_seeds_from_their_rows(tmp_path, capsys):
    pool_runs = _load()
    _harness(tmp_path / "first", "--seeds", "4")
    _harness(tmp_path / "later", "--first-seed", "4", "--seeds", "3")
    budgets, first = pool_runs.read_summary(tmp_path / "first" / "summary.md", "nb101")
    table = pool_runs.pool_table(
        budgets, first, pool_runs.read_per_seed(tmp_path / "later" / "per_seed.csv", "nb101")[1]
    )
    assert budgets == [50, 60]  # the report budgets up to the budget, and the budget itself
    rows = [r for name in ("first", "later") for r in csv.DictReader((tmp_path / name / "per_seed.csv").open())]
    for alg in ("random", "re"):
        seeds, cells = table[alg]
        assert seeds == 7
        for budget, (pooled_mean, pooled_se) in zip(budgets, cells):
            xs = [float(r[f"regret@{budget}"]) for r in rows if r["algorithm"] == alg]
            mean, se = mean_se(np.array(xs))
            assert len(xs) == 7 and se > 0
            # the summary prints three decimals, so the pooled figures match to that rounding
            assert pooled_mean == pytest.approx(mean, abs=1e-3) and pooled_se == pytest.approx(se, abs=1e-3)
    # bad input: one line that says what is wrong, and nothing printed before it
    with pytest.raises(SystemExit, match="no '## nb201' section .sections: nb101"):
        pool_runs.read_summary(tmp_path / "first" / "summary.md", "nb201")
    capsys.readouterr()
    args = ["--summary", str(tmp_path / "first" / "summary.md"), "--per-seed", str(tmp_path / "later" / "per_seed.csv")]
    with pytest.raises(SystemExit, match="--paired 'random@50-re@999=0,0'"):
        pool_runs.main([*args, "--benchmark", "nb101", "--paired", "random@50-re@999=0,0"])
    assert capsys.readouterr().out == ""
    pool_runs.main([*args, "--benchmark", "nb101", "--paired", "random@60-re@50=0,0"])
    assert "random@60-re@50, paired by seed:" in capsys.readouterr().out


def test_pool_is_exact_when_the_first_part_is_exact():
    pool_runs = _load()
    xs = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4]
    first, rest = xs[:4], xs[4:]
    m1, se1 = mean_se(np.array(first))
    assert pool_runs.pool(4, m1, se1, rest) == pytest.approx(mean_se(np.array(xs)), rel=1e-12)
