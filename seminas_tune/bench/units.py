"""Units: one (algorithm, benchmark, seed) search each, its part files, and the worker pool.

A unit writes ``parts/<benchmark>/<algorithm>/seedNNNN.csv`` plus a ``.json`` with its settings
and timings, atomically and the ``.json`` last; a later run with the same settings skips it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seminas_tune.bench.algorithms import (
    base_algorithm,
    build_searcher,
    is_ours,
    resolved_settings,
    wants_tune_space,
)
from seminas_tune.bench.common import HARNESS_VERSION, ROW_COLUMNS, BenchError
from seminas_tune.bench.drivers import DRIVERS, HarnessSearcher
from seminas_tune.bench.tables import Benchmark, get_benchmark, get_benchmark_ident


class StoppedBySignal(Exception):
    """The run was stopped by a signal; the finished part files are kept."""


@dataclass(frozen=True)
class Unit:
    """One search: what it runs and the settings that make its fingerprint."""

    benchmark: str
    algorithm: str  # label (may carry @tag)
    seed: int
    budget: int
    time_budget: float | None
    driver: str
    settings: tuple  # sorted (path, value) pairs
    invalid_factor: float

    @property
    def settings_dict(self) -> dict:
        return dict(self.settings)

    def fingerprint(self) -> str:
        d = dataclasses.asdict(self)
        d["settings"] = [list(x) for x in self.settings]
        d["version"] = HARNESS_VERSION
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def part_path(self, out: Path) -> Path:
        ident = get_benchmark_ident(self.benchmark)
        return out / "parts" / ident / self.algorithm / f"seed{self.seed:04d}.csv"


def unit_is_done(unit: Unit, out: Path) -> bool:
    """A unit is finished when its part files exist for the same unit and, for our searchers,
    the same resolved settings: a change of the package's defaults reruns it."""
    part = unit.part_path(out)
    meta = part.with_suffix(".json")
    if not (part.exists() and meta.exists()):
        return False
    try:
        done = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    if done.get("fingerprint") != unit.fingerprint():
        return False
    if not is_ours(unit.algorithm):
        return True
    now = resolved_settings(_unit_searcher(unit, get_benchmark(unit.benchmark)))
    return done.get("resolved") == json.loads(json.dumps(now, default=str))


def _unit_searcher(unit: Unit, bench: Benchmark) -> Any:
    # Under a time budget, the query budget is only a cap; our searchers plan with it.
    background = "inline" if unit.driver == "inline" else "auto"
    return build_searcher(
        unit.algorithm,
        bench.space,
        unit.seed,
        unit.budget,
        unit.settings_dict,
        background=background,
        invalid_factor=unit.invalid_factor,
    )


def run_unit(unit: Unit, out: str | Path | None = None, drop_invalid_rows: bool = False) -> tuple[list[dict], dict]:
    """Run one search; write its part files when ``out`` is given. Returns (rows, meta)."""
    t0 = time.perf_counter()
    bench = get_benchmark(unit.benchmark)
    if unit.time_budget is not None and not bench.has_time:
        raise BenchError(f"{unit.benchmark} has no training times: --time-budget needs nb101 or nb101-official")
    if unit.driver not in DRIVERS:
        raise BenchError(f"unknown driver {unit.driver!r}: choose from {', '.join(DRIVERS)}")
    alg = base_algorithm(unit.algorithm)
    inner = _unit_searcher(unit, bench)
    h = HarnessSearcher(
        inner,
        bench,
        unit.seed,
        unit.budget,
        unit.algorithm,
        unit.time_budget,
        invalid_cap=int(math.ceil(unit.invalid_factor * unit.budget)),
    )
    param_space = bench.space.tune_space() if wants_tune_space(unit.settings_dict) or not is_ours(alg) else None
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    eval_seconds = DRIVERS[unit.driver](h, bench, unit.seed, param_space)
    search_wall = time.perf_counter() - t1
    meta = {
        "benchmark": unit.benchmark,
        "algorithm": unit.algorithm,
        "base_algorithm": alg,
        "seed": unit.seed,
        "budget": unit.budget,
        "time_budget": unit.time_budget,
        "driver": unit.driver,
        "settings": unit.settings_dict,
        "invalid_factor": unit.invalid_factor,
        "fingerprint": unit.fingerprint(),
        "harness_version": HARNESS_VERSION,
        "n_valid": h.n_valid,
        "n_invalid": h.n_invalid,
        "n_duplicate": h.n_duplicate,
        "stop_reason": h.stop_reason,
        "best_value": h.best_value if h.best_key is not None else None,
        "best_key": h.best_key,
        "final_regret": h.rows[-1]["regret"] if h.rows else None,
        "cum_time": h.cum_time,
        "setup_seconds": round(setup, 3),
        "search_seconds": round(search_wall, 3),
        "searcher_seconds": round(h.searcher_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
    }
    meta["resolved"] = resolved_settings(inner)
    rows = h.rows
    if out is not None:
        _write_part(unit, Path(out), rows, meta, drop_invalid_rows)
    return rows, meta


def _write_part(unit: Unit, out: Path, rows: list[dict], meta: dict, drop_invalid_rows: bool) -> None:
    import pandas as pd

    part = unit.part_path(out)
    part.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=ROW_COLUMNS)
    if drop_invalid_rows:
        df = df[df["valid"]]
    tmp = part.with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, part)
    tmpm = part.with_suffix(".json.tmp")
    tmpm.write_text(json.dumps(meta, indent=1, default=str))
    os.replace(tmpm, part.with_suffix(".json"))  # the .json last: it marks the unit finished


def _worker(args: tuple) -> dict:
    unit, out, drop = args
    try:
        _, meta = run_unit(unit, out, drop)
        return meta
    except BaseException as e:  # noqa: BLE001 - report and go on with the other units
        return {
            "benchmark": unit.benchmark,
            "algorithm": unit.algorithm,
            "seed": unit.seed,
            "error": f"{type(e).__name__}: {e}",
        }


def run_units(
    units: list[Unit], out: Path, drop_invalid_rows: bool, workers: int, on_done: Callable[[int, dict], None]
) -> list[dict]:
    """Run ``units`` over ``workers`` processes (spawned; 1: in this one), writing their part
    files; ``on_done(i, meta)`` as each finishes. Returns the metas (``"error"`` in a failed
    unit's). SIGTERM stops the workers and raises :class:`StoppedBySignal`."""
    import signal

    work = [(u, str(out), drop_invalid_rows) for u in units]
    if workers == 1:
        results = map(_worker, work)
        pool = None
    else:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap_unordered(_worker, work, chunksize=1)

    def _terminate(signum, frame):  # stop the workers too, keep the finished part files
        raise StoppedBySignal(f"stopped by signal {signum}; rerun the same command to resume")

    previous = signal.signal(signal.SIGTERM, _terminate) if pool is not None else None
    metas, ok = [], False
    try:
        for i, meta in enumerate(results, 1):
            metas.append(meta)
            on_done(i, meta)
        ok = True
    finally:
        if pool is not None:
            signal.signal(signal.SIGTERM, previous)
            if ok:
                pool.close()
            else:
                pool.terminate()
            pool.join()
    return metas


def load_parts(units: list[Unit], out: Path):
    """The finished units among ``units`` (this run's and earlier runs'): (rows, metas).

    Raises :class:`BenchError` when none has finished.
    """
    import pandas as pd

    frames, metas = [], []
    for u in units:
        if unit_is_done(u, out):
            part = u.part_path(out)
            frames.append(pd.read_csv(part, keep_default_na=False, na_values=[""], dtype={"key": str}))
            metas.append(json.loads(part.with_suffix(".json").read_text()))
    if not frames:
        raise BenchError(
            f"no finished units to summarise in {out}/: run without --summary-only (or see the failures above)"
        )
    df = pd.concat(frames, ignore_index=True)
    df["valid"] = df["valid"].astype(str).str.lower() == "true"
    df["duplicate"] = df["duplicate"].astype(str).str.lower() == "true"
    return df, metas
