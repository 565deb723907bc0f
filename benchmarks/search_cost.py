"""What a 300-query search costs: seconds per search for every searcher on a NAS-Bench table
(real data), and the seconds of each controller round of the predictor searchers.

One process, the inline driver, torch and the controllers at ``--threads`` threads (2: a 2-core
machine). Each (searcher, seed) runs once; the table gives medians over the seeds.

    python benchmarks/search_cost.py                      # NB-201 CIFAR-10, 3 seeds
    python benchmarks/search_cost.py --benchmark nb101 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from seminas_tune.bench.algorithms import base_algorithm, build_searcher, default_settings, is_ours
from seminas_tune.bench.drivers import HarnessSearcher, drive_inline
from seminas_tune.bench.tables import get_benchmark

ALGORITHMS = "seminas,nao,seminas_re,bananas,re,local,random,optuna,optuna_mv"


def one_search(label: str, bench, seed: int, budget: int, threads: int) -> dict:
    """Wall seconds of one search and the seconds of each of its controller rounds."""
    settings = default_settings(base_algorithm(label))
    if "controller.num_threads" in settings:
        settings["controller.num_threads"] = threads
    if base_algorithm(label) == "bananas":
        settings["num_threads"] = threads
    inner = build_searcher(label, bench.space, seed, budget, settings)
    h = HarnessSearcher(inner, bench, seed, budget, label, None, invalid_cap=50 * budget)
    t0 = time.perf_counter()
    drive_inline(h, bench, seed, None if is_ours(base_algorithm(label)) else bench.space.tune_space())
    wall = time.perf_counter() - t0
    if not hasattr(inner, "history"):  # no controller rounds
        return {"seconds": wall, "valid": h.n_valid, "rounds": None}
    rounds = [r.get("total_s", r.get("seconds")) for r in inner.history]
    return {"seconds": wall, "valid": h.n_valid, "rounds": [r for r in rounds if r is not None]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="nb201-cifar10")
    ap.add_argument("--algorithms", default=ALGORITHMS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/search_cost")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bench = get_benchmark(args.benchmark)
    rows = []
    for label in args.algorithms.split(","):
        runs = [one_search(label, bench, seed, args.budget, args.threads) for seed in range(args.seeds)]
        recorded = all(r["rounds"] is not None for r in runs)
        rounds = [r for run in runs for r in run["rounds"] or []]
        rows.append(
            {
                "searcher": label,
                "seconds_per_search": statistics.median(r["seconds"] for r in runs),
                "rounds_per_search": statistics.median(len(r["rounds"]) for r in runs) if recorded else None,
                "seconds_per_round": statistics.median(rounds) if rounds else None,
                "valid": statistics.median(r["valid"] for r in runs),
            }
        )
        print(f"{label}: {rows[-1]}", flush=True)
    head = (
        f"# Search cost: {args.benchmark}, {args.budget} queries, {args.threads} threads, "
        f"median of {args.seeds} seeds\n\n"
        "| searcher | s / search | controller rounds | s / round |\n|---|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['searcher']} | {r['seconds_per_search']:.1f} | "
        + ("- | " if r["rounds_per_search"] is None else f"{r['rounds_per_search']:g} | ")
        + (f"{r['seconds_per_round']:.2f} |" if r["seconds_per_round"] is not None else "- |")
        for r in rows
    ]
    text = head + "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.benchmark}_{args.budget}"
    (out / f"{stem}.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    (out / f"{stem}.md").write_text(text)


if __name__ == "__main__":
    main()
