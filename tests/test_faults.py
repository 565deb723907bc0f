"""Faults inside trials, through ``tune.Tuner``: exceptions, NaN, +inf, a silent hang (a per-trial
time limit in the trainable turns it into an error) and a trial that reports forever (stopped by
a per-trial stopper, ``time_total_s``). The search goes on to its budget and accounts for each.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time

from ray import tune

from tests.test_searcher_contract import make

BUDGET = 8
KINDS = ["raise", "nan", "inf", "hang", "endless", "ok"]  # the n-th evaluation gets KINDS[n % 6]
TIME_LIMIT_S = 1.5  # per trial: a silent hang becomes a TimeoutError
STOP = {"time_total_s": 1.0}  # per trial: stops a trial that keeps reporting


def with_time_limit(fn, seconds):
    """``fn()`` in a daemon thread; TimeoutError when it has not returned after ``seconds``."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the trial's thread
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(f"trial exceeded its {seconds} s time limit")
    if "error" in box:
        raise box["error"]
    return box["value"]


def make_faulty(log_path: str):
    def faulty(config):
        from trainables.nasbench import evaluate_nasbench101

        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:  # the evaluation's number = lines before ours (O_APPEND writes are atomic)
            os.write(fd, b"x\n")
            n = os.fstat(fd).st_size // 2 - 1
        finally:
            os.close(fd)
        kind = KINDS[n % len(KINDS)]
        tid = tune.get_context().get_trial_id()
        with open(log_path + ".kinds", "a") as f:
            f.write(json.dumps({"trial_id": tid, "kind": kind}) + "\n")
        result = evaluate_nasbench101(config)
        if kind == "endless":  # keeps reporting a rising accuracy until a stopper ends it
            i = 0
            while True:
                i += 1
                tune.report({**result, "val_accuracy": result["val_accuracy"] * i / (i + 1)})
                time.sleep(0.1)

        def evaluate():
            if kind == "raise":
                raise RuntimeError("simulated training crash")
            if kind == "hang":
                time.sleep(3600)
            if kind in ("nan", "inf"):
                return {**result, "val_accuracy": math.nan if kind == "nan" else math.inf}
            return result

        tune.report(with_time_limit(evaluate, TIME_LIMIT_S))

    return faulty


def test_search_goes_on_through_faulty_trials(ray_session, tmp_path):
    searcher = make("seminas", max_queries=BUDGET, background="auto")
    log = str(tmp_path / "evals.log")
    tuner = tune.Tuner(
        make_faulty(log),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            metric="val_accuracy",
            mode="max",
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="faults", verbose=0, stop=STOP),
    )
    grid = tuner.fit()
    kinds = {}
    for line in open(log + ".kinds"):
        e = json.loads(line)
        kinds[e["trial_id"]] = e["kind"]
    assert len(kinds) == BUDGET and set(kinds.values()) == set(KINDS)
    count = {k: list(kinds.values()).count(k) for k in KINDS}

    # Tune: the crashed and the hung trials errored; the others terminated
    assert len(grid.errors) == count["raise"] + count["hang"]
    assert any(isinstance(e, TimeoutError) or "time limit" in str(e) for e in grid.errors)
    # the searcher: the budget is spent, nothing pending, and every fault is accounted for
    assert searcher.num_suggested == BUDGET and not searcher._pending
    statuses = [o.status for o in searcher.observations]
    assert len(statuses) == BUDGET
    assert statuses.count("error") == count["raise"] + count["hang"]
    assert statuses.count("nan") == count["nan"] + count["inf"]
    assert statuses.count("ok") == count["ok"] + count["endless"]
    assert all(math.isfinite(o.score) for o in searcher.results())
    # a stopped endless trial keeps its last reported value; the predictor compares it with the
    # one-report trials at the fidelity all of them reached (its first report)
    by_id = {r.metrics["trial_id"]: r.metrics for r in grid if r.metrics}
    pool = {o.key: o.value for o in searcher.results()}
    raw = {o.key: o for o in searcher.observations if o.status == "ok"}
    for tid, kind in kinds.items():
        if kind == "endless":
            m = by_id[tid]
            assert m["time_total_s"] >= STOP["time_total_s"]  # ended by the stopper
            assert raw[m["arch_key"]].value == m["val_accuracy"] and raw[m["arch_key"]].fidelity > 1
            assert pool[m["arch_key"]] == raw[m["arch_key"]].curve[1]
    assert grid.get_best_result().metrics["val_accuracy"] == max(o.value for o in searcher.results())
