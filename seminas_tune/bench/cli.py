"""The harness's command line: ``seminas-tune bench ...`` and ``python benchmarks/run.py ...``.

:func:`run` parses the arguments, runs the missing units, merges and summarises them, raising
:class:`~seminas_tune.bench.common.BenchError` on bad input; :func:`main` turns that into one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from seminas_tune.bench.algorithms import (
    TUNE_ALGORITHMS,
    algorithm_status,
    base_algorithm,
    default_algorithms,
    is_ours,
    parse_sets,
)
from seminas_tune.bench.common import HARNESS_VERSION, BenchError
from seminas_tune.bench.report import summarise
from seminas_tune.bench.tables import (
    BENCHMARKS,
    check_benchmark_name,
    has_training_time,
)
from seminas_tune.bench.units import (
    StoppedBySignal,
    Unit,
    load_parts,
    run_units,
    unit_is_done,
)
from seminas_tune.search.presets import PRESETS


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seminas-tune bench",
        description="Benchmark searchers on NAS-Bench tables: algorithms x benchmarks x seeds, resumable.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--benchmarks", default="nb101", help=f"comma list of {', '.join(BENCHMARKS)}, nb101-official:PATH")
    p.add_argument(
        "--algorithms",
        default=",".join(default_algorithms()),
        help=f"comma list of our searchers and Tune's ({', '.join(TUNE_ALGORITHMS)}); "
        "NAME@TAG runs NAME under its own settings (--set NAME@TAG.x=...)",
    )
    p.add_argument("--seeds", type=int, default=10, help="number of seeds")
    p.add_argument(
        "--builtin-seeds",
        type=int,
        default=None,
        help="number of seeds for Tune's built-in searchers (default: --seeds)",
    )
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--budget", type=int, default=300, help="valid queries per search")
    p.add_argument(
        "--builtin-budget",
        type=int,
        default=None,
        help="valid queries per search for Tune's built-in searchers (default: --budget; at most that)",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="also stop at this much simulated training time (s; NB-101 only); --budget stays a cap",
    )
    p.add_argument("--driver", choices=["inline", "tune"], default="inline")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (inline driver)")
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default="default",
        help="settings of our searchers: 'default' (sized from the budget) or 'paper' (default: default)",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="ALG.PATH=VALUE",
        help="algorithm setting, e.g. seminas.num_unlabeled=2000, seminas.controller.joint_steps=100",
    )
    p.add_argument(
        "--invalid-factor",
        type=float,
        default=50.0,
        help="a built-in searcher may make at most this x budget invalid suggestions",
    )
    p.add_argument("--drop-invalid-rows", action="store_true", help="keep only valid queries in the CSVs")
    p.add_argument("--rerun", action="store_true", help="rerun finished units too")
    p.add_argument(
        "--summary-only",
        action="store_true",
        help="run nothing: merge and summarise the units finished so far (also while a run goes on)",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--list", action="store_true", help="list the algorithms and whether they can run here")
    return p


def _comma_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _check_args(
    args: argparse.Namespace,
    benchmarks: list[str],
    labels: list[str],
    status: dict[str, str],
    builtin_seeds: int,
    builtin_budget: int,
) -> None:
    """Raise :class:`BenchError` on the first argument that cannot work."""
    if min(args.budget, args.seeds, builtin_seeds, builtin_budget) < 1:
        raise BenchError("--budget, --seeds, --builtin-seeds and --builtin-budget must be positive")
    if builtin_budget > args.budget:
        raise BenchError(
            f"--builtin-budget {builtin_budget} exceeds --budget {args.budget}: summaries stop at --budget"
        )
    for b in benchmarks:
        check_benchmark_name(b)
    for a in labels:
        base = base_algorithm(a)
        if base not in status:
            raise BenchError(f"unknown algorithm {a!r}: choose from {', '.join(status)}")
        if not status[base].startswith("ok"):
            raise BenchError(f"{base} cannot run here: {status[base]}")
    if args.time_budget is not None and not all(has_training_time(b) for b in benchmarks):
        raise BenchError("--time-budget needs NB-101 benchmarks (NB-201 reports no training time)")


def _progress(n: int):
    """Prints one line per finished unit (of ``n``)."""

    def on_done(i: int, meta: dict) -> None:
        head = f"[{i}/{n}] {meta['benchmark']} {meta['algorithm']} seed {meta['seed']}:"
        if "error" in meta:
            print(f"{head} FAILED {meta['error']}", flush=True)
            return
        regret = math.nan if meta["final_regret"] is None else meta["final_regret"]
        print(
            f"{head} regret {100 * regret:.3f} pp, {meta['n_valid']} valid, {meta['n_invalid']} invalid, "
            f"{meta['search_seconds']:.1f} s ({meta['stop_reason']})",
            flush=True,
        )

    return on_done


def run(argv: list[str] | None = None) -> dict:
    """Parse ``argv``, run the missing units, merge and summarise. Returns what happened.

    Raises :class:`BenchError` on arguments that cannot work (before running anything) and
    when no unit has finished.
    """
    args = make_parser().parse_args(argv)
    status = algorithm_status()
    if args.list:
        for k, v in status.items():
            print(f"{k:12s} {v}")
        return {"listed": status}
    builtin_seeds = args.seeds if args.builtin_seeds is None else args.builtin_seeds
    builtin_budget = args.budget if args.builtin_budget is None else args.builtin_budget
    benchmarks, labels = _comma_list(args.benchmarks), _comma_list(args.algorithms)
    _check_args(args, benchmarks, labels, status, builtin_seeds, builtin_budget)
    settings = parse_sets(args.sets, labels, args.preset)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_seeds = {a: args.seeds if is_ours(a) else builtin_seeds for a in labels}
    budget_of = {a: args.budget if is_ours(a) else builtin_budget for a in labels}
    seeds = range(args.first_seed, args.first_seed + max(n_seeds.values()))
    # Seed-major order: a run stopped part-way leaves every algorithm with about as many seeds.
    units = [
        Unit(
            b,
            a,
            s,
            budget_of[a],
            args.time_budget,
            args.driver,
            tuple(sorted(settings[a].items())),
            args.invalid_factor,
        )
        for s in seeds
        for b in benchmarks
        for a in labels
        if s < args.first_seed + n_seeds[a]
    ]
    finished = {u for u in units if not args.rerun and unit_is_done(u, out)}
    todo = [] if args.summary_only else [u for u in units if u not in finished]
    print(f"{len(units)} units, {len(finished)} already finished, {len(todo)} to run", flush=True)
    t0 = time.perf_counter()
    workers = 1 if args.driver == "tune" else max(1, min(args.workers, len(todo)))
    metas = run_units(todo, out, args.drop_invalid_rows, workers, _progress(len(todo)))
    errors = [m for m in metas if "error" in m]
    n_ran = len(metas) - len(errors)
    df, done_metas = load_parts(units, out)
    df.to_csv(out / "results.csv", index=False)
    recorded = {
        "argv": list(argv) if argv is not None else sys.argv[1:],
        "budget": args.budget,
        "time_budget": args.time_budget,
        "driver": args.driver,
        "invalid_factor": args.invalid_factor,
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "builtin_seeds": builtin_seeds,
        "builtin_budget": builtin_budget,
        "benchmarks": benchmarks,
        "algorithms": settings,
        "harness_version": HARNESS_VERSION,
    }
    (out / "settings.json").write_text(json.dumps(recorded, indent=1, default=str))
    text = summarise(
        df, done_metas, args.budget, args.time_budget, labels, benchmarks, recorded, out, plots=not args.no_plots
    )
    print(text)
    print(
        f"\n{n_ran} units run in {time.perf_counter() - t0:.1f} s; outputs in {out}/ "
        f"(results.csv, summary.md, settings.json" + ("" if args.no_plots else ", regret_*.png") + ")"
    )
    if errors:
        print(f"{len(errors)} units FAILED (see above); rerun to retry them", file=sys.stderr)
    return {"units": len(units), "ran": n_ran, "skipped": len(finished), "errors": errors, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    """:func:`run` as a command: 0 if every unit ran, 1 if some failed or a signal stopped the
    run, 2 on bad input (one line on stderr)."""
    try:
        res = run(argv)
    except BenchError as e:
        print(f"seminas-tune bench: error: {e}", file=sys.stderr)
        return 2
    except StoppedBySignal as e:
        print(f"seminas-tune bench: {e}", file=sys.stderr)
        return 1
    return 1 if res.get("errors") else 0
