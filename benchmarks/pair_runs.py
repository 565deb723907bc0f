"""Pair SemiNAS's variants with SemiNAS by seed across runs, from their ``per_seed.csv`` files.

A screen of new variants need not rerun the default: its units are deterministic, so a committed
run's per-seed rows stand for it. The rows of all files are merged (a benchmark, algorithm and
seed in two files is an error). Each benchmark gets every algorithm's means and medians over the
seeds of all files, then the harness's "Variants against SemiNAS" table (test regret on NB-201,
validation regret on NB101-30k) and, where SemiNAS and other searchers ran, its "SemiNAS against
the field" table. ``--rename seminas@mut=seminas`` reads a screened variant's rows as SemiNAS's,
so a default that began as a variant is paired with runs of the other searchers. ``--plot DIR``
draws each benchmark's means and standard errors at the report budgets to
``DIR/paired_<benchmark>.png``.

    python benchmarks/pair_runs.py benchmarks/results/seminas_default/ablation_300_uncertainty/per_seed.csv \
        /work/res/wide_300/per_seed.csv
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np

from seminas_tune.bench.algorithms import is_ours
from seminas_tune.bench.report import read_per_seed, style_regret_axes
from seminas_tune.bench.stats import goal_lines, mean_se, variant_lines

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


def plot(curves: dict, benchmark: str, budgets: list[int], out: Path) -> Path:
    """Each algorithm's mean regret +- s.e. (pp) at the report budgets, on the harness plots' axes;
    Tune's built-ins dashed, as there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    lowest = 0.0
    for alg in dict.fromkeys(a for a, _ in curves):
        xs, means, ses = [], [], []
        for b in budgets:
            m, se = mean_se(np.array([c[b - 1] for (a, _), c in curves.items() if a == alg]) * 100)
            if not math.isnan(m):
                xs.append(b)
                means.append(m)
                ses.append(se)
        n = sum(a == alg for a, _ in curves)
        ax.errorbar(
            xs, means, yerr=ses, marker="o", capsize=3, label=f"{alg} ({n})", linestyle="-" if is_ours(alg) else "--"
        )
        lowest = min(lowest, *(m - e for m, e in zip(means, ses)))
    style_regret_axes(ax, benchmark, f"{'test' if benchmark.startswith('nb201') else 'validation'} regret (pp)", lowest)
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    path = out / f"paired_{benchmark}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def renamed(rows: dict, renames: dict[str, str]) -> dict:
    """``rows`` with each algorithm named in ``renames`` under its new name; a ValueError if that
    puts two rows on one benchmark, algorithm and seed."""
    out: dict = {}
    for (b, a, s), row in rows.items():
        key = (b, renames.get(a, a), s)
        if key in out:
            raise ValueError(f"--rename: {key[0]} {key[1]} seed {key[2]} would have two rows; rename to an unused name")
        out[key] = row
    return out


def read_rows(args: argparse.Namespace) -> dict:
    """The per-seed rows the arguments ask for, renamed and filtered; every argument checked before
    anything is read, each mistake a one-line ``SystemExit``."""
    if args.plot is not None and not args.plot.is_dir():
        raise SystemExit(f"--plot {args.plot}: no such folder; create it or pass an existing one")
    missing = [str(p) for p in args.per_seed if not p.is_file()]
    if missing:
        raise SystemExit(f"no such file: {', '.join(missing)}; pass the per_seed.csv of finished harness runs")
    bad = [spec for spec in args.paired if not _PAIR.fullmatch(spec)]
    if bad:
        raise SystemExit(f"--paired {bad[0]!r}: expected ALG@BUDGET-ALG@BUDGET, e.g. seminas@300-re@1000")
    renames: dict[str, str] = {}
    for spec in args.rename:
        old, _, new = spec.partition("=")
        if not old or not new or "=" in new or old in renames:
            raise SystemExit(f"--rename: expected OLD=NEW, each OLD once, e.g. seminas@mut=seminas; got {args.rename}")
        renames[old] = new
    try:
        rows = renamed(read_per_seed(args.per_seed), renames)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if args.benchmarks:
        wanted = args.benchmarks.split(",")
        unknown = sorted(set(wanted) - {b for b, _, _ in rows})
        if unknown:
            raise SystemExit(
                f"--benchmarks: {', '.join(unknown)} not in these files; they hold {sorted({b for b, _, _ in rows})}"
            )
        rows = {k: r for k, r in rows.items() if k[0] in wanted}
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("per_seed", type=Path, nargs="+", help="per_seed.csv files of harness runs")
    parser.add_argument(
        "--paired", action="append", default=[], help="A@B-C@D: A's regret after B queries minus C's after D, by seed"
    )
    parser.add_argument("--rename", action="append", default=[], help="OLD=NEW: read algorithm OLD's rows as NEW's")
    parser.add_argument("--benchmarks", help="comma-separated: only these benchmarks' rows (default: all)")
    parser.add_argument("--plot", type=Path, help="folder to draw paired_<benchmark>.png into")
    args = parser.parse_args(argv)
    rows = read_rows(args)
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
        print("\n".join(goal_lines(curves, hits, algorithms, budgets)))
        for line in filter(None, (paired_line(curves, spec) for spec in args.paired)):
            print(line + "\n")
        if args.plot is not None:
            print(f"Plot: `{plot(curves, benchmark, budgets, args.plot).name}`\n")


if __name__ == "__main__":
    main()
