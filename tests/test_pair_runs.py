"""benchmarks/pair_runs.py: variants of one run paired with SemiNAS of another, by seed.

The per-seed files here are small generated data, written by the test, not benchmark results."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from seminas_tune.bench.stats import mean_se

ROOT = Path(__file__).parents[1]
COLUMNS = ["benchmark", "algorithm", "seed", "regret@50", "regret@100", "queries_top_0.001"]


def _load():
    spec = importlib.util.spec_from_file_location("pair_runs", ROOT / "benchmarks" / "pair_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


def _rows(capsys, start: str) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith(start)]


def test_variants_in_a_later_file_pair_with_seminas_of_an_earlier_one_by_seed(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, (5, 2)).round(3)
    variant = rng.uniform(0, 1, (4, 2)).round(3)  # seeds 0-3: seed 4 has no partner
    first = _write(tmp_path / "a.csv", [["t", "seminas", s, *base[s], 40 + s] for s in range(5)])
    later = _write(tmp_path / "b.csv", [["t", "seminas@v", s, *variant[s], "" if s == 0 else 30] for s in range(4)])
    _load().main([str(first), str(later)])
    own, paired = ([c.strip() for c in line.split("|")[1:-1]] for line in _rows(capsys, "| seminas@v |"))
    assert own[1] == "4"  # the variant's own means and medians over its seeds
    for i in range(2):
        assert own[2 + i] == "{:.3f} +- {:.3f}".format(*mean_se(variant[:, i]))
    assert own[4:] == ["30"]  # seed 0 never got there (infinite); no top-0.01 % column in these files
    cells = paired
    assert cells[1] == "4"
    for i in range(2):
        m, se = mean_se(variant[:, i] - base[:4, i])
        assert cells[2 + i].rstrip("*") == f"{m:+.3f} +- {se:.3f}"
    assert cells[4] == f"30 / {np.median([40, 41, 42, 43]):g}"  # seed 0 never got there: infinite
    assert cells[5] == "1 / 3"


def test_a_seed_in_two_files_stops_with_one_line(tmp_path):
    row = [["t", "seminas", 0, 0.1, 0.0, 20]]
    a, b = _write(tmp_path / "a.csv", row), _write(tmp_path / "b.csv", row)
    with pytest.raises(SystemExit, match="seminas seed 0 is in an earlier file too"):
        _load().main([str(a), str(b)])


def test_a_missing_file_stops_before_reading_any(tmp_path):
    a = _write(tmp_path / "a.csv", [["t", "seminas", 0, 0.1, 0.0, 20]])
    with pytest.raises(SystemExit, match="no such file: .*nope.csv"):
        _load().main([str(a), str(tmp_path / "nope.csv")])


def test_paired_compares_two_searchers_at_their_own_budgets_by_seed(tmp_path, capsys):
    a = _write(tmp_path / "a.csv", [["t", "seminas", s, 0.5, 0.1 * s, 20] for s in range(3)])
    b = _write(tmp_path / "b.csv", [["t", "re", s, 0.9, 0.05, 60] for s in range(4)])
    _load().main([str(a), str(b), "--paired", "seminas@50-re@100"])
    line = _rows(capsys, "seminas@50-re@100")[0]
    assert line == "seminas@50-re@100, paired by seed: +0.4500 +- 0.0000 pp over 3 seeds"
    with pytest.raises(SystemExit, match="expected ALG@BUDGET-ALG@BUDGET"):
        _load().main([str(a), "--paired", "seminas@50"])
    with pytest.raises(SystemExit, match="no benchmark has both searchers' rows"):
        _load().main([str(a), str(b), "--paired", "seminas@300-re@100"])


def test_rename_pairs_a_variant_as_seminas_against_the_best_other_searcher(tmp_path, capsys):
    rng = np.random.default_rng(1)
    mine, local, re_ = (rng.uniform(0, 1, (6, 2)).round(3) for _ in range(3))
    local[:, 1] = mine[:, 1] + 0.5  # local is the best other at 100 (lower mean than re)
    re_[:, 1] = mine[:, 1] + 0.9
    a = _write(tmp_path / "a.csv", [["t", "seminas@mut", s, *mine[s], 30] for s in range(6)])
    b = _write(
        tmp_path / "b.csv",
        [["t", alg, s, *vals[s], 60] for alg, vals in (("local", local), ("re", re_)) for s in range(6)],
    )
    _load().main([str(a), str(b), "--rename", "seminas@mut=seminas"])
    row = [c.strip() for c in _rows(capsys, "| 100 |")[0].split("|")[1:-1]]
    assert row[0] == "100" and row[1].startswith("seminas ")
    assert row[3].startswith("local ")
    assert row[4] == "-0.500 +- 0.000 (6)"  # paired by seed against local, not re
    assert row[5:] == ["yes", "yes"]
    with pytest.raises(SystemExit, match="would have two rows"):
        _load().main([str(a), str(b), "--rename", "local=re"])
    with pytest.raises(SystemExit, match="expected OLD=NEW"):
        _load().main([str(a), "--rename", "seminas@mut"])


def test_benchmarks_filter_and_plot_draw_only_the_tables_asked_for(tmp_path, capsys):
    rows = [[t, alg, s, 0.5 + s, 0.1, 20] for t in ("t1", "t2") for alg in ("seminas", "re") for s in range(3)]
    a = _write(tmp_path / "a.csv", rows)
    plots = tmp_path / "plots"
    plots.mkdir()
    _load().main([str(a), "--benchmarks", "t2", "--plot", str(plots)])
    out = capsys.readouterr().out
    assert "## t2" in out and "## t1" not in out
    assert [p.name for p in plots.iterdir()] == ["paired_t2.png"]
    assert (plots / "paired_t2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit, match="--benchmarks: t3 not in these files"):
        _load().main([str(a), "--benchmarks", "t3"])
    with pytest.raises(SystemExit, match="no such folder"):
        _load().main([str(a), "--plot", str(tmp_path / "nope")])
