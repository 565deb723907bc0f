"""Statistics over the merged rows: regret curves, mean and standard error, queries to the top
of a table, the exact random-search expectation, and the goal checks."""

from __future__ import annotations

import math

import numpy as np


def _log_comb(n: np.ndarray, k: int) -> np.ndarray:
    from scipy.special import gammaln

    n = np.asarray(n, float)
    out = np.full(n.shape, -np.inf)
    ok = n >= k
    out[ok] = gammaln(n[ok] + 1) - gammaln(k + 1) - gammaln(n[ok] - k + 1)
    return out


def random_expectation(val: np.ndarray, n: int, report: np.ndarray | None = None) -> float:
    """E[report value of the best-by-``val`` cell] over ``n`` uniform draws without replacement.

    With ``report=None`` this is E[max val]. Ties in ``val`` are handled exactly: the first
    found among tied cells is uniform over the tied level, so each level contributes its mean
    ``report`` times P(max level = that level) = [C(c_L, n) - C(c_{L-1}, n)] / C(N, n), with
    c_L the number of cells at or below level L.
    """
    val = np.asarray(val, float)
    report = val if report is None else np.asarray(report, float)
    N = len(val)
    n = min(n, N)
    order = np.argsort(val, kind="stable")
    v, r = val[order], report[order]
    levels, starts, counts = np.unique(v, return_index=True, return_counts=True)
    c = starts + counts  # cells at or below each level
    logs = _log_comb(c, n) - _log_comb(np.array([N]), n)[0]
    cdf = np.exp(logs)
    p = np.diff(np.concatenate([[0.0], cdf]))
    means = np.add.reduceat(r, starts) / counts
    return float(np.sum(p * means))


def regret_curves(df, budget: int, col: str = "regret", budget_of: dict | None = None) -> tuple[dict, dict]:
    """Per (algorithm, seed): array of ``col`` after 1..budget valid queries (carried forward
    past a unit's early end, NaN past the algorithm's own budget in ``budget_of``); and per
    algorithm the number of short units."""
    curves, short = {}, {}
    valid = df[df["valid"]]
    for (alg, seed), g in valid.groupby(["algorithm", "seed"], sort=False):
        own = min(budget, (budget_of or {}).get(alg, budget))
        q = g["query"].to_numpy()
        v = g[col].to_numpy(float)
        a = np.full(budget, np.nan)
        idx = q[(q >= 1) & (q <= own)] - 1
        a[idx] = v[(q >= 1) & (q <= own)]
        last = np.nan
        for i in range(own):  # forward fill
            if np.isnan(a[i]):
                a[i] = last
            else:
                last = a[i]
        curves[(alg, seed)] = a
        short[alg] = short.get(alg, 0) + int(q.max() < own)
    return curves, short


def at_budget(curves: dict, alg: str, budget: int) -> np.ndarray:
    """Every seed's value of ``alg``'s curves after ``budget`` queries, in percentage points."""
    return np.array([c[budget - 1] for (a, _), c in curves.items() if a == alg]) * 100


def mean_se(x: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the non-NaN values (NaN, NaN if none)."""
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else 0.0


def queries_to(df, thr: float) -> dict:
    """Per (algorithm, seed): first valid query whose cell's table value >= thr (inf if none)."""
    out = {}
    valid = df[df["valid"]]
    for (alg, seed), g in valid.groupby(["algorithm", "seed"], sort=False):
        hit = g[g["table_value"] >= thr - 1e-12]
        out[(alg, seed)] = float(hit["query"].iloc[0]) if len(hit) else math.inf
    return out


def paired_difference(curves: dict, a: str, b: str, budget: int) -> tuple[float, float, int]:
    """Mean and standard error over their common seeds of ``a``'s regret minus ``b``'s after
    ``budget`` queries (pp), and the number of seeds; negative: ``a`` is better."""
    seeds = sorted({s for (x, s) in curves if x == a} & {s for (x, s) in curves if x == b})
    d = np.array([curves[(a, s)][budget - 1] - curves[(b, s)][budget - 1] for s in seeds]) * 100
    m, se = mean_se(d) if len(d) else (math.nan, math.nan)
    return m, se, len(seeds)


def goal_lines(curves: dict, hits: dict, algorithms: list[str], budgets: list[int]) -> list[str]:
    """SemiNAS against the field as the benchmark's goal states it: at each budget, whether it has
    the lowest mean regret, and its paired per-seed difference to the best other searcher (its
    own variants, ``seminas@...``, left out) with whether that is clear by more than two
    standard errors; the median queries to a top-0.1 % cell; SemiNAS at 300 queries against RE
    at 1000. Empty unless SemiNAS and another searcher ran."""
    algs = [a for a in algorithms if any(k[0] == a for k in curves)]
    peers = [a for a in algs if not a.startswith("seminas@") and a != "seminas"]
    if "seminas" not in algs or not peers:
        return []

    lines = [
        "### SemiNAS against the field",
        "",
        "Paired over common seeds: SemiNAS's regret minus the best other searcher's (lowest mean at that budget); "
        "clear = more than two standard errors of the difference below zero.",
        "",
        "| budget | lowest mean regret | SemiNAS | best other | SemiNAS - best other (pp, seeds) | lowest | clear |",
        "|---:|---|---:|---|---:|---|---|",
    ]
    for b in budgets:
        stats = {a: mean_se(at_budget(curves, a, b)) for a in ["seminas", *peers]}
        stats = {a: v for a, v in stats.items() if not math.isnan(v[0])}  # past a shorter budget
        if "seminas" not in stats or len(stats) < 2:
            continue
        best = min(stats, key=lambda a: stats[a][0])
        other = min((a for a in stats if a != "seminas"), key=lambda a: stats[a][0])
        d, dse, n = paired_difference(curves, "seminas", other, b)
        lines.append(
            f"| {b} | {best} {stats[best][0]:.3f} | {stats['seminas'][0]:.3f} +- {stats['seminas'][1]:.3f} | "
            f"{other} {stats[other][0]:.3f} +- {stats[other][1]:.3f} | {d:+.3f} +- {dse:.3f} ({n}) | "
            f"{'yes' if best == 'seminas' else 'no'} | {'yes' if d < -2 * dse else 'no'} |"
        )
    med = {a: float(np.median([v for (x, _), v in hits.items() if x == a])) for a in ["seminas", *peers]}
    fewest = min(med, key=lambda a: med[a])
    lines += ["", f"Median queries to a top-0.1 % cell: SemiNAS {med['seminas']:g}; fewest: {fewest} {med[fewest]:g}."]
    if 300 in budgets and 1000 in budgets and "re" in algs:
        s300, r1000 = mean_se(at_budget(curves, "seminas", 300))[0], mean_se(at_budget(curves, "re", 1000))[0]
        lines.append(
            f"SemiNAS at 300 queries {s300:.3f} pp against RE at 1000 {r1000:.3f} pp: "
            f"{'as good or better' if s300 <= r1000 else 'worse'}."
        )
    return lines + [""]


def variant_lines(curves: dict, hits: dict, algorithms: list[str], budgets: list[int]) -> list[str]:
    """SemiNAS's own variants (``seminas@...``, an ablation's) against SemiNAS, paired by seed: the
    regret difference at each budget (positive: the variant is worse; ``*`` when more than two
    standard errors from zero) and, over the seeds both ran, the median queries to a top-0.1 %
    cell and the seeds on which the variant got there later / sooner. Empty without variants."""
    algs = [a for a in algorithms if any(k[0] == a for k in curves)]
    variants = [a for a in algs if a.startswith("seminas@")]
    if "seminas" not in algs or not variants:
        return []
    lines = [
        "### Variants against SemiNAS",
        "",
        "Paired over common seeds: the variant's regret minus SemiNAS's (pp, mean +- s.e.; positive: the "
        "variant is worse; * = more than two standard errors from zero). Top 0.1 %: median queries to a "
        "top-0.1 % cell, variant / SemiNAS, and the seeds on which the variant got there later / sooner.",
        "",
        "| variant | seeds | " + " | ".join(f"@{b}" for b in budgets) + " | top 0.1 % | later / sooner |",
        "|---|---:|" + "---:|" * len(budgets) + "---:|---:|",
    ]
    for v in variants:
        cells, n = [], 0
        for b in budgets:
            d, dse, n_b = paired_difference(curves, v, "seminas", b)
            n = max(n, n_b)
            cells.append("" if math.isnan(d) else f"{d:+.3f} +- {dse:.3f}{'*' if abs(d) > 2 * dse else ''}")
        seeds = sorted({s for (x, s) in hits if x == v} & {s for (x, s) in hits if x == "seminas"})
        mine, base = (np.array([hits[(a, s)] for s in seeds]) for a in (v, "seminas"))
        medians = f"{np.median(mine):g} / {np.median(base):g}" if seeds else ""
        order = f"{int((mine > base).sum())} / {int((mine < base).sum())}"
        lines.append(f"| {v} | {n} | " + " | ".join(cells) + f" | {medians} | {order} |")
    return lines + [""]
