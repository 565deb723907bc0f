"""The report: ``summary.md`` (regret tables, queries to the top, self-check, goal, run
statistics) and the regret plots, from the merged rows and the units' metas."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seminas_tune.bench.algorithms import base_algorithm, is_ours
from seminas_tune.bench.stats import (
    at_budget,
    goal_lines,
    mean_se,
    queries_to,
    random_expectation,
    regret_curves,
    variant_lines,
)
from seminas_tune.bench.tables import Benchmark, get_benchmark


@dataclass(frozen=True)
class ReportOptions:
    """What the summary reads off the curves.

    Attributes:
        budgets: query budgets to report regret at (those up to the run's budget, and that).
        top_fractions: table fractions to count queries to (the first drives the goal check).
        time_fractions: fractions of the time budget to report regret at.
    """

    budgets: tuple[int, ...] = (50, 100, 150, 300, 1000, 2000)
    top_fractions: tuple[float, ...] = (0.001, 0.0001)
    time_fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)


def summarise(
    df,
    metas: list[dict],
    budget: int,
    time_budget: float | None,
    algorithms: list[str],
    benchmarks: list[str],
    settings: dict,
    out: Path,
    plots: bool = True,
    options: ReportOptions | None = None,
) -> str:
    """The Markdown summary (also written to ``out/summary.md``) and, with ``plots``, the plots."""
    import pandas as pd

    opt = options or ReportOptions()
    budgets = [b for b in opt.budgets if b <= budget]
    if budget not in budgets:
        budgets.append(budget)
    budget_of = {m["algorithm"]: m["budget"] for m in metas if "error" not in m}
    shorter = sorted({b for b in budget_of.values() if b < budget})
    lines = [
        "# Benchmark summary",
        "",
        f"Budget {budget} valid queries"
        + "".join(f" ({', '.join(sorted(a for a, x in budget_of.items() if x == b))}: {b})" for b in shorter)
        + (f", simulated training time {time_budget:g} s" if time_budget else "")
        + f"; algorithms {', '.join(algorithms)}. Regret in percentage points (accuracy x 100), "
        "mean +- standard error over seeds, mean rank among the algorithms in brackets "
        "(1 = best; over the seeds every algorithm ran).",
        "",
    ]
    meta_df = pd.DataFrame([m for m in metas if "error" not in m])
    per_seed = []
    for bname in benchmarks:
        bench = get_benchmark(bname)
        bdf = df[df["benchmark"] == bench.name]
        if bdf.empty:
            continue
        lines += [f"## {bench.name}", "", bench.description + ".", ""]
        metrics = [("regret", "regret" if bench.test is None else "test regret")]
        if bench.test is not None:
            metrics.append(("val_regret", "validation regret"))
        all_curves = {}
        for col, title in metrics:
            curves, short = regret_curves(bdf, budget, col, budget_of)
            all_curves[col] = curves
            lines += _regret_table(curves, short, title, algorithms, budgets, budget_of, budget)
        hits = {f: queries_to(bdf, bench.threshold(f)) for f in opt.top_fractions}
        per_seed += _per_seed_rows(bench.name, all_curves, hits, budgets)
        lines += _top_table(bench, hits, algorithms)
        lines += goal_lines(all_curves["regret"], hits[opt.top_fractions[0]], algorithms, budgets)
        lines += variant_lines(all_curves["regret"], hits[opt.top_fractions[0]], algorithms, budgets)
        rand = [a for a in algorithms if base_algorithm(a) == "random"]
        if rand and (bench.test is None or bench.name.startswith("nb201")):
            lines += _self_check(bench, all_curves["regret"], rand, budgets, announce=bname == "nb101")
        if time_budget and bench.has_time:
            lines += _time_table(bdf, algorithms, [time_budget * f for f in opt.time_fractions])
        if not meta_df.empty:
            lines += _runs_table(meta_df[meta_df["benchmark"] == bench.name], algorithms)
        if plots:
            _plot(bench, all_curves, algorithms, budget, out)
            lines += [f"![regret]({'regret_' + bench.ident + '.png'})", ""]
    if per_seed:
        pd.DataFrame(per_seed).to_csv(out / "per_seed.csv", index=False)
        lines += ["Per seed: regret (pp) at each budget and queries to the top, in `per_seed.csv`.", ""]
    lines += ["## settings", "", "```json", json.dumps(settings, indent=1, default=str), "```", ""]
    text = "\n".join(lines)
    (out / "summary.md").write_text(text)
    return text


def _regret_table(
    curves: dict, short: dict, title: str, algorithms: list[str], budgets: list[int], budget_of: dict, budget: int
) -> list[str]:
    import pandas as pd

    algs = [a for a in algorithms if any(k[0] == a for k in curves)]
    seeds_of = {a: {s for (x, s) in curves if x == a} for a in algs}
    lines = [
        f"### {title} (pp) at budget",
        "",
        "| algorithm | seeds | " + " | ".join(f"@{b}" for b in budgets) + " | short runs |",
        "|---|---:|" + "---:|" * len(budgets) + "---:|",
    ]
    ranks = {}
    for b in budgets:
        ranked = [a for a in algs if budget_of.get(a, budget) >= b]
        common = sorted(set.intersection(*(seeds_of[a] for a in ranked))) if ranked else []
        if len(ranked) > 1 and common:
            mat = pd.DataFrame({a: [curves[(a, s)][b - 1] for s in common] for a in ranked})
            ranks[b] = mat.rank(axis=1, method="average").mean(axis=0).to_dict()
    for a in algs:
        cells = []
        for b in budgets:
            m, se = mean_se(np.array([curves[(a, s)][b - 1] for s in sorted(seeds_of[a])]) * 100)
            r = f" ({ranks[b][a]:.2f})" if a in ranks.get(b, {}) else ""
            cells.append("-" if math.isnan(m) else f"{m:.3f} +- {se:.3f}{r}")
        lines.append(f"| {a} | {len(seeds_of[a])} | " + " | ".join(cells) + f" | {short.get(a, 0)} |")
    return lines + [""]


def _per_seed_rows(benchmark: str, all_curves: dict, hits: dict, budgets: list[int]) -> list[dict]:
    """One row per (algorithm, seed): each curve's value at each budget (pp; empty past the
    algorithm's own budget) and the queries to each top fraction (empty if never reached), small
    enough to commit, so later runs can be paired with this one by seed."""
    rows = []
    for alg, seed in all_curves["regret"]:
        row: dict = {"benchmark": benchmark, "algorithm": alg, "seed": seed}
        for col, curves in all_curves.items():
            for b in budgets:
                v = curves[(alg, seed)][b - 1] * 100
                row[f"{col}@{b}"] = None if math.isnan(v) else round(float(v), 5)
        for f, h in hits.items():
            q = h.get((alg, seed), math.inf)
            row[f"queries_top_{f:g}"] = None if math.isinf(q) else int(q)
        rows.append(row)
    return rows


def read_per_seed(paths: list[Path]) -> dict[tuple[str, str, int], dict]:
    """{(benchmark, algorithm, seed): row} of the ``per_seed.csv`` files of finished runs (values
    as strings, empty where the writer left them empty); a key in two files is an error."""
    rows: dict[tuple[str, str, int], dict] = {}
    for path in paths:
        with Path(path).open() as f:
            for row in csv.DictReader(f):
                key = (row["benchmark"], row["algorithm"], int(row["seed"]))
                if key in rows:
                    raise ValueError(
                        f"{path}: {key[0]} {key[1]} seed {key[2]} is in an earlier file too; pass each run once"
                    )
                rows[key] = row
    return rows


def _top_table(bench: Benchmark, hits: dict, algorithms: list[str]) -> list[str]:
    """Median queries to reach each of the table's top fractions (``hits``' keys)."""
    lines = [
        "### queries to reach the top of the table (by the search metric)",
        "",
        "Median over seeds of the first query whose cell is in the table's top fraction "
        "(a seed that never got there counts as infinite); in brackets: seeds not reached / seeds.",
        "",
        "| algorithm | "
        + " | ".join(f"top {f * 100:g} % (val >= {bench.threshold(f) * 100:.3f})" for f in hits)
        + " |",
        "|---|" + "---:|" * len(hits),
    ]
    for a in algorithms:
        cells = []
        for f in hits:
            q = np.array([v for (x, _), v in hits[f].items() if x == a])
            if len(q) == 0:
                cells.append("-")
                continue
            med = float(np.median(q))
            cells.append(f"{'not reached' if math.isinf(med) else f'{med:g}'} ({int(np.isinf(q).sum())}/{len(q)})")
        if any(c != "-" for c in cells):
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return lines + [""]


def _self_check(bench: Benchmark, curves: dict, rand: list[str], budgets: list[int], announce: bool) -> list[str]:
    """``random``'s mean regret beside its exact expectation; printed too when ``announce``."""
    keys = list(bench.val)
    v = np.array([bench.val[k] for k in keys])
    rep = None if bench.test is None else np.array([bench.test[k] for k in keys])
    lines = [
        "### random-search self-check",
        "",
        "Mean regret of `random` (uniform over the table's cells, no repeats) beside its exact "
        "expectation for n draws without replacement (sum over sorted table values of "
        "value x P(best = value)).",
        "",
        "| budget | " + " | ".join(f"{a} mean +- se" for a in rand) + " | expected |",
        "|---:|" + "---:|" * (len(rand) + 1),
    ]
    for b in budgets:
        cells = [f"{m:.3f} +- {se:.3f}" for m, se in (mean_se(at_budget(curves, a, b)) for a in rand)]
        if bench.test is None:
            exp = (bench.vmax - random_expectation(v, b)) * 100
        else:
            exp = (bench.test_floor - random_expectation(v, b, rep)) * 100
        lines.append(f"| {b} | " + " | ".join(cells) + f" | {exp:.3f} |")
        if announce:
            print(f"[self-check] {bench.name} random @{b}: mean regret {' '.join(cells)} pp, expected {exp:.3f} pp")
    return lines + [""]


def _time_table(bdf, algorithms: list[str], points: list[float]) -> list[str]:
    lines = [
        "### regret (pp) at simulated training time",
        "",
        "| algorithm | " + " | ".join(f"{t:.3g} s" for t in points) + " |",
        "|---|" + "---:|" * len(points),
    ]
    valid = bdf[bdf["valid"]]
    for a in algorithms:
        g = valid[valid["algorithm"] == a]
        if g.empty:
            continue
        cells = []
        for t in points:
            vals = []
            for _, s in g.groupby("seed"):
                within = s[s["cum_time"] <= t]
                vals.append(within["regret"].iloc[-1] if len(within) else np.nan)
            m, se = mean_se(np.array(vals, float) * 100)
            cells.append(f"{m:.3f} +- {se:.3f}")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return lines + [""]


def _runs_table(md, algorithms: list[str]) -> list[str]:
    """Per algorithm: seeds, seconds, query counts and stop reasons of one benchmark's units."""
    lines = [
        "### runs",
        "",
        "| algorithm | seeds | wall s / seed (search) | searcher s / seed | valid / seed | "
        "invalid / seed | duplicates / seed | stop reasons |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for a in algorithms:
        g = md[md["algorithm"] == a]
        if g.empty:
            continue
        reasons = ", ".join(f"{k} {v}" for k, v in g["stop_reason"].value_counts().items())
        lines.append(
            f"| {a} | {len(g)} | {g['search_seconds'].mean():.2f} | {g['searcher_seconds'].mean():.2f} | "
            f"{g['n_valid'].mean():.1f} | {g['n_invalid'].mean():.1f} | "
            f"{g['n_duplicate'].mean():.2f} | {reasons} |"
        )
    return lines + [""]


def style_regret_axes(ax, title: str, ylabel: str, lowest: float) -> None:
    """Regret against queries, both log: log above 0.01 pp (one NB-101 validation image), linear
    below, so the leaders' tails stay readable beside the built-ins' early regrets and zero or
    negative regret still plots."""
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=0.01, linscale=0.5)
    ax.set_ylim(bottom=lowest)
    ax.set_xlabel("queries (valid)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _plot(bench: Benchmark, all_curves: dict, algorithms: list[str], budget: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(all_curves)
    fig, axes = plt.subplots(1, len(cols), figsize=(6.5 * len(cols), 4.5), squeeze=False)
    x = np.arange(1, budget + 1)
    for ax, col in zip(axes[0], cols):
        lowest = 0.0
        for a in algorithms:
            cs = [c for (x_, _), c in all_curves[col].items() if x_ == a]
            if not cs:
                continue
            m = np.array(cs) * 100
            m = m[:, : int((~np.isnan(m)).any(axis=0).nonzero()[0].max()) + 1]  # own budget
            mean = np.nanmean(m, axis=0)
            se = np.nanstd(m, axis=0, ddof=1) / np.sqrt(len(cs)) if len(cs) > 1 else np.zeros_like(mean)
            ax.plot(
                x[: m.shape[1]], mean, label=f"{a} ({len(cs)})", linestyle="-" if is_ours(a) else "--"
            )  # Tune's built-ins dashed
            ax.fill_between(x[: m.shape[1]], mean - se, mean + se, alpha=0.2)
            lowest = min(lowest, float(np.nanmin(mean - se)))
        ylabel = (
            "test " if col == "regret" and bench.test is not None else "validation " if col == "val_regret" else ""
        ) + "regret (pp)"
        style_regret_axes(ax, bench.ident, ylabel, lowest)
    fig.tight_layout()
    fig.savefig(out / f"regret_{bench.ident}.png", dpi=110)
    plt.close(fig)
