"""Pool a finished run's summary with a later run over new seeds, when the first run's CSVs are gone.

The first run is read from its ``summary.md`` regret table (mean +- standard error over n seeds,
as printed, to three decimals); the second from its ``per_seed.csv``. Means and standard errors
are pooled exactly from those figures, so the pooled errors carry the first table's rounding.

    python benchmarks/pool_runs.py --summary benchmarks/results/seminas_default/nb101_2000/summary.md \
        --per-seed benchmarks/results/seminas_default/nb101_2000_seeds136-199/per_seed.csv \
        --benchmark nb101 --paired seminas@300-re@1000=0.0045,0.0019
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from seminas_tune.bench import report

_ROW = re.compile(r"^\| (\S+) \| (\d+) \|(.*)\| \d+ \|$")
_CELL = re.compile(r"([-\d.]+) \+- ([\d.]+)")


def read_summary(path: Path, benchmark: str) -> tuple[list[int], dict[str, tuple[int, list]]]:
    """Budgets and {algorithm: (seeds, [(mean, se), ...])} of one benchmark's regret table."""
    text, marker = path.read_text(), f"\n## {benchmark}\n"
    if marker not in text:
        found = ", ".join(re.findall(r"^## (\S+)$", text, flags=re.M)) or "none"
        raise SystemExit(f"{path}: no '## {benchmark}' section (sections: {found}); pass one of them as --benchmark")
    section = text.split(marker, 1)[1].split("\n## ", 1)[0]
    header = next(line for line in section.splitlines() if line.startswith("| algorithm | seeds | @"))
    budgets = [int(cell.strip()[1:]) for cell in header.split("|")[3:-2]]
    table = {}
    for line in section.split("### regret", 1)[1].split("###", 1)[0].splitlines():
        match = _ROW.match(line)
        if match:
            cells = [(float(m), float(s)) for m, s in _CELL.findall(match.group(3))]
            if len(cells) != len(budgets):
                raise SystemExit(
                    f"{path}: {match.group(1)} has {len(cells)} mean +- SE cells for {len(budgets)} budgets"
                )
            table[match.group(1)] = (int(match.group(2)), cells)
    return budgets, table


def pool(n1: int, mean1: float, se1: float, xs: list[float]) -> tuple[float, float]:
    """Mean and standard error over n1 + len(xs) values, the first n1 known by mean and SE."""
    n = n1 + len(xs)
    mean = (n1 * mean1 + sum(xs)) / n
    squares = (n1 - 1) * n1 * se1**2 + n1 * mean1**2 + sum(x * x for x in xs)
    return mean, math.sqrt(max(squares - n * mean**2, 0.0) / (n - 1) / n)


def read_per_seed(path: Path, benchmark: str) -> tuple[list[str], dict[str, dict[int, dict]]]:
    """The file's columns and its rows of one benchmark, by algorithm and seed."""
    rows = report.read_per_seed([path])
    by_alg: dict[str, dict[int, dict]] = {}
    for (b, alg, seed), row in rows.items():
        if b == benchmark:
            by_alg.setdefault(alg, {})[seed] = row
    return list(next(iter(rows.values()), {})), by_alg


def pool_table(budgets: list[int], first: dict, later: dict[str, dict[int, dict]]) -> dict:
    """{algorithm: (seeds, [(mean, se), ...])} over the first run's seeds and the later run's."""
    out = {}
    for alg, (n1, cells) in first.items():
        new = later.get(alg, {}).values()
        out[alg] = (
            n1 + len(new),
            [pool(n1, m, s, [float(r[f"regret@{b}"]) for r in new]) for b, (m, s) in zip(budgets, cells)],
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--summary", type=Path, required=True, help="the first run's summary.md")
    parser.add_argument("--per-seed", type=Path, required=True, help="the later run's per_seed.csv")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument(
        "--paired",
        action="append",
        default=[],
        help="A@B-C@D=MEAN,SE: pool a paired difference whose first-run value is MEAN +- SE",
    )
    args = parser.parse_args(argv)
    budgets, first = read_summary(args.summary, args.benchmark)
    try:
        columns, later = read_per_seed(args.per_seed, args.benchmark)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    table = pool_table(budgets, first, later)
    pairs = []  # checked before anything is printed
    for spec in args.paired:
        match = re.fullmatch(r"(([^@-]+)@(\d+)-([^@-]+)@(\d+))=([-\d.]+),([\d.]+)", spec)
        sides = [match.group(2, 3), match.group(4, 5)] if match else []
        if not sides or not all(alg in later and alg in first and f"regret@{b}" in columns for alg, b in sides):
            raise SystemExit(
                f"--paired {spec!r}: expected ALG@BUDGET-ALG@BUDGET=MEAN,SE with algorithms and budgets of both runs"
            )
        pairs.append((*match.group(1, 2, 3, 4, 5), float(match.group(6)), float(match.group(7))))
    print("| algorithm | seeds | " + " | ".join(f"@{b}" for b in budgets) + " |")
    print("|---|---:|" + "---:|" * len(budgets))
    for alg, (n, cells) in table.items():
        print(f"| {alg} | {n} | " + " | ".join(f"{m:.4f} +- {s:.4f}" for m, s in cells) + " |")
    for pair, a, ba, c, bc, mean1, se1 in pairs:
        seeds = sorted(set(later[a]) & set(later[c]))
        diffs = [float(later[a][s][f"regret@{ba}"]) - float(later[c][s][f"regret@{bc}"]) for s in seeds]
        n1 = min(first[a][0], first[c][0])  # both ran the first run's seeds
        mean, se = pool(n1, mean1, se1, diffs)
        print(f"{pair}, paired by seed: {mean:+.4f} +- {se:.4f} over {n1 + len(diffs)} seeds")


if __name__ == "__main__":
    main()
