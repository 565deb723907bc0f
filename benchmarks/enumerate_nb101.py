"""Enumerate the whole NAS-Bench-101 space and count its unique cells.

Follows the "Enumeration" section of ``shared/nasbench101/README.md``: V = 2..7, every
upper-triangle bitmask giving a full DAG with <= 9 edges, every labelling of the interior
vertices, each labelled graph hashed with the official module hash. Prints the per-vertex table
and the total (423,624 for the whole space) and the runtime.

    python benchmarks/enumerate_nb101.py                         # whole space, all CPUs
    python benchmarks/enumerate_nb101.py --max-vertices 6 --processes 1
    python benchmarks/enumerate_nb101.py --check-hashes ../shared/nasbench101/nb101_space_hashes.txt.gz
    python benchmarks/enumerate_nb101.py --by-class              # one mask per isomorphism class
    python benchmarks/enumerate_nb101.py --markdown benchmarks/results/nb101_enumeration.md

Before counting, a few hundred random labelled graphs are hashed with both the fast enumeration
hash and ``seminas_tune.nasbench.graph.hash_module``; the script stops if they ever differ.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import platform
import random
import sys
import time

from seminas_tune.nasbench.enumerate import (
    MAX_VERTICES,
    NUM_OPS,
    VertexCounts,
    enumerate_space,
    full_dag_masks,
    mask_hashes,
    mask_to_matrix,
)
from seminas_tune.nasbench.graph import hash_module

# The counts of shared/nasbench101/README.md ("The space, by vertex count").
README_COUNTS = {
    2: (1, 1, 1, 1),
    3: (2, 6, 6, 7),
    4: (10, 90, 84, 91),
    5: (121, 3_267, 2_441, 2_532),
    6: (1_545, 125_145, 62_010, 64_542),
    7: (4_793, 1_164_699, 359_082, 423_624),
}


def cross_check(max_vertices: int, samples: int = 300, seed: int = 0) -> int:
    """Hash random labelled graphs both ways; raise on any difference. Returns the number checked."""
    rng = random.Random(seed)
    checked = 0
    for n in range(2, max_vertices + 1):
        masks = full_dag_masks(n)
        for mask in rng.sample(masks, min(len(masks), max(1, samples // (max_vertices - 1) // 20))):
            fast = mask_hashes(n, mask)
            matrix = mask_to_matrix(mask, n)
            labellings = list(itertools.product(range(NUM_OPS), repeat=n - 2))
            for i in rng.sample(range(len(labellings)), min(20, len(labellings))):
                ref = hash_module(matrix, [-1, *labellings[i], -2])
                if ref != fast[i]:
                    raise SystemExit(
                        f"hash mismatch on V={n} mask={mask} labels={labellings[i]}: "
                        f"enumeration {fast[i]} != hash_module {ref}"
                    )
                checked += 1
    return checked


def table(rows: dict[int, VertexCounts], by_class: bool) -> str:
    lines = [
        "| V (incl. in/out) | full-DAG matrices (<= 9 edges) | labelled graphs | "
        "unique graphs (hashes) | cumulative | README | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, r in rows.items():
        ok = (r.matrices, r.labelled, r.unique, r.cumulative) == README_COUNTS[n]
        lines.append(
            f"| {n} | {r.matrices:,} | {r.labelled:,}"
            + (f" ({r.hashed:,} hashed)" if by_class else "")
            + f" | {r.unique:,} | {r.cumulative:,} | {'match' if ok else 'DIFFERS'} | {r.seconds:.1f} |"
        )
    tot = lambda attr: sum(getattr(r, attr) for r in rows.values())  # noqa: E731
    lines.append(f"| total | {tot('matrices'):,} | {tot('labelled'):,} | {tot('unique'):,} | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-vertices", type=int, default=MAX_VERTICES, help="2..7 (default 7)")
    ap.add_argument("--processes", type=int, default=None, help="worker processes (default: all CPUs)")
    ap.add_argument(
        "--by-class",
        action="store_true",
        help="hash one mask per isomorphism class of unlabelled masks (same hashes, ~3x faster)",
    )
    ap.add_argument(
        "--check-hashes", metavar="FILE", help="compare the set of hashes with a sorted hash list (gzipped or plain)"
    )
    ap.add_argument("--markdown", metavar="FILE", help="also write the output as a markdown report")
    args = ap.parse_args(argv)

    checked = cross_check(args.max_vertices)
    print(f"cross-check: {checked} random labelled graphs hash identically with hash_module")
    res = enumerate_space(
        args.max_vertices,
        processes=args.processes,
        keep_hashes=bool(args.check_hashes),
        by_class=args.by_class,
        progress=lambda r: print(
            f"  V={r.n_vertices}: {r.unique:,} unique ({r.seconds:.1f} s)", file=sys.stderr, flush=True
        ),
    )
    out = [
        table(res.rows, args.by_class),
        "",
        f"total unique cells: {res.total:,}",
        f"runtime: {res.seconds:.1f} s with {res.processes} process(es), mode {res.mode}, "
        f"{sum(r.hashed for r in res.rows.values()):,} labelled graphs hashed",
    ]
    status = 0
    if any((r.matrices, r.labelled, r.unique, r.cumulative) != README_COUNTS[n] for n, r in res.rows.items()):
        out.append("MISMATCH: some counts differ from shared/nasbench101/README.md")
        status = 1
    if args.check_hashes:
        opener = gzip.open if args.check_hashes.endswith(".gz") else open
        with opener(args.check_hashes, "rt") as f:
            expected = set(f.read().split())
        if args.max_vertices < MAX_VERTICES:
            out.append(
                f"hash check: {len(res.hashes - expected)} enumerated hashes are not in "
                f"{os.path.basename(args.check_hashes)} (subset check only, --max-vertices < 7)"
            )
            status |= int(bool(res.hashes - expected))
        else:
            missing, extra = expected - res.hashes, res.hashes - expected
            same = not missing and not extra
            out.append(
                f"hash check against {os.path.basename(args.check_hashes)} ({len(expected):,} hashes): "
                + ("identical sets" if same else f"{len(missing)} missing, {len(extra)} extra")
            )
            status |= int(not same)
    text = "\n".join(out)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(
                "# NAS-Bench-101 space enumeration\n\n"
                f"Command: `python benchmarks/enumerate_nb101.py {' '.join(argv or sys.argv[1:])}`\n\n"
                f"Machine: {platform.machine()}, {os.cpu_count()} CPUs visible, Python "
                f"{platform.python_version()}, run {time.strftime('%Y-%m-%d %H:%M')}.\n\n"
                f"cross-check: {checked} random labelled graphs hash identically with "
                f"`hash_module`.\n\n" + text + "\n"
            )
    return status


if __name__ == "__main__":
    sys.exit(main())
