"""Pair SemiNAS's variants with SemiNAS by seed across runs, from their ``per_seed.csv`` files.

A screen of new variants need not rerun the default: its units are deterministic, so a committed
run's per-seed rows stand for it. The rows of all files are merged (a benchmark, algorithm and
seed in two files is an error). Each benchmark gets every algorithm's means and medians over the
seeds of all files, then the harness's "Variants against SemiNAS" table (test regret on NB-201,
validation regret on NB101-30k).

    python benchmarks/pair_runs.py benchmarks/results/seminas_default/ablation_300_uncertainty/per_seed.csv \
        /work/res/wide_300/per_seed.csv
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np

from seminas_tune.bench.report import read_per_seed
from seminas_tune.bench.stats import mean_se, variant_lines

_TOP = "queries_top_0.001"
_PAIR = re.compile(r"([^-]+)@(\d+)-([^-]+)@(\d+)")
_TOPS = (("top 0.1 %", _TOP), ("top 0.01 %", "queries_top_0.0001"))


def curves_of(rows: dict, benchmark: str) -> tuple[dict, dict, list[int]]:
    """One benchmark's rows as ``variant_lines`` takes them: curves (fractions, NaN between the
    report budgets), hits (queries to a top-0.1 % cell, inf if never) and the report budgets."""
    mine = {(a, s): r for (b, a, s), r in rows.items() if b == benchmark}
    budgets = sorted({int(c.split("@")[1]) for r in mine.values() for c in r if c.startswith("regret@")})
    curves, hits = {}, {}
    for key, row in mine.items():
        curve = np.full(budgets[-1], math.nan)
        for b in budgets:
            if row.get(f"regret@{b}"):
                curve[b - 1] = float(row[f"regret@{b}"]) / 100
        curves[key] = curve
        hits[key] = float(row[_TOP]) if row.get(_TOP) else math.inf
    return curves, hits, budgets


def algorithm_lines(rows: dict, benchmark: str, budgets: list[int]) -> list[str]:
    """Each algorithm's regret (pp, mean +- s.e.) at the budgets and median queries to the top, over
    the seeds of all files: one run continued over new seeds in another."""
    by_alg: dict[str, list[dict]] = {}
    for (b, a, _), r in rows.items():
        if b == benchmark:
            by_alg.setdefault(a, []).append(r)
    tops = [(name, col) for name, col in _TOPS if col in next(iter(by_alg.values()))[0]]
    lines = [
        "| algorithm | seeds | " + " | ".join([*(f"@{b}" for b in budgets), *(n for n, _ in tops)]) + " |",
        "|---|---:|" + "---:|" * (len(budgets) + len(tops)),
    ]
    for alg, mine in by_alg.items():
        cells = []
        for b in budgets:
            m, se = mean_se(np.array([float(r[f"regret@{b}"]) if r.get(f"regret@{b}") else math.nan for r in mine]))
            cells.append("" if math.isnan(m) else f"{m:.3f} +- {se:.3f}")
        for _, col in tops:
            med = float(np.median([float(r[col]) if r.get(col) else math.inf for r in mine]))
            cells.append("not reached" if math.isinf(med) else f"{med:g}")
        lines.append(f"| {alg} | {len(mine)} | " + " | ".join(cells) + " |")
    return lines + [""]


def paired_line(curves: dict, spec: str) -> str | None:
    """``A@B-C@D``: A's regret after B queries minus C's after D, paired by seed (None unless both
    ran this benchmark to those budgets)."""
    a, ba, c, bc = _PAIR.fullmatch(spec).groups()
    ba, bc = int(ba), int(bc)
    seeds = sorted({s for (x, s) in curves if x == a} & {s for (x, s) in curves if x == c})
    end = len(next(iter(curves.values())))
    if not seeds or max(ba, bc) > end:
        return None
    d = np.array([curves[(a, s)][ba - 1] - curves[(c, s)][bc - 1] for s in seeds]) * 100
    m, se = mean_se(d)
    return (
        None
        if math.isnan(m)
        else f"{spec}, paired by seed: {m:+.4f} +- {se:.4f} pp over {int((~np.isnan(d)).sum())} seeds"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("per_seed", type=Path, nargs="+", help="per_seed.csv files of harness runs")
    parser.add_argument(
        "--paired", action="append", default=[], help="A@B-C@D: A's regret after B queries minus C's after D, by seed"
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.per_seed if not p.is_file()]
    if missing:
        raise SystemExit(f"no such file: {', '.join(missing)}; pass the per_seed.csv of finished harness runs")
    bad = [spec for spec in args.paired if not _PAIR.fullmatch(spec)]
    if bad:
        raise SystemExit(f"--paired {bad[0]!r}: expected ALG@BUDGET-ALG@BUDGET, e.g. seminas@300-re@1000")
    try:
        rows = read_per_seed(args.per_seed)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    tables = {b: curves_of(rows, b) for b in dict.fromkeys(b for b, _, _ in rows)}
    for spec in args.paired:  # checked before anything is printed
        if not any(paired_line(curves, spec) for curves, _, _ in tables.values()):
            raise SystemExit(
                f"--paired {spec!r}: no benchmark has both searchers' rows at those budgets in these files"
            )
    for benchmark, (curves, hits, budgets) in tables.items():
        algorithms = list(dict.fromkeys(a for a, _ in curves))
        print(f"## {benchmark}\n")
        print("\n".join(algorithm_lines(rows, benchmark, budgets)))
        lines = variant_lines(curves, hits, algorithms, budgets)
        print("\n".join(lines) if lines else "No seminas and seminas@... rows to pair.\n")
        for line in filter(None, (paired_line(curves, spec) for spec in args.paired)):
            print(line + "\n")


if __name__ == "__main__":
    main()
