"""Chaos resume: SIGKILL the Tune driver of a 300-query search again and again, restore it with
``Tuner.restore`` each time, and check that nothing is evaluated twice or lost.

The parent process (``main``) runs the driver (``--child``) as a subprocess with its own Ray
temp dir, kills it with SIGKILL at chosen moments, removes the Ray processes that driver
started (found by their temp dir, never by name), and starts it again with ``--restore`` while
``tune.Tuner.can_restore(path)`` holds (the driver life is ``_chaos_driver.py``, the clean-up
after a kill ``_chaos_ray.py``). Kill moments rotate over:

* ``startup``: a random moment in the first seconds (Ray start-up, experiment restore);
* ``after_complete``: right after (0-30 ms) the k-th trial completion of this run;
* ``training``: while the searcher's controller-training job is running (the driver waits
  for the next one; after the restore the job is started again from its checkpointed request);
* ``random``: a uniformly random moment of the run.

Tune saves the experiment (trial table and searcher) at most every ``TUNE_GLOBAL_CHECKPOINT_S``
seconds (default "auto": 10 s or more). The driver sets it to 0, so the experiment state is
written at the end of every event-loop step. What a kill loses is then at most the last step:
trials Tune still lists as RUNNING are re-run under the same trial_id on restore, and the
searcher, restored from the same snapshot, still has them pending.

Every evaluation the trainable performs is appended to an evaluation log (trial_id, key), so
the checks see the runs the kills cut short too. At the end the checks are:

1. the run finishes (the last driver exits 0 and Tune reports every trial terminated);
2. exactly ``max_queries`` queries, and the searcher suggested and observed exactly that many.
   A query is a trial in Tune's final table, or a finished trial the table lost (a kill inside
   Tune's non-atomic write of its table loses a driver session's trials) that the searcher's
   journal records as completed, with its result in its own folder;
3. every cell is evaluated once (canonical key): the queries' keys are distinct, and no key was
   evaluated under two different trial_ids in the evaluation log (a re-run of the same trial
   after a kill is not a new query; it is counted separately);
4. every completed result is in the searcher's pool, with the same value, and every trial the
   evaluation log names is known to Tune's table or to the journal.

Usage::

    python benchmarks/chaos_resume.py --searcher seminas --kills 20 --seed 0
    python benchmarks/chaos_resume.py --searcher seminas_re --kills 20 --seed 0
    python benchmarks/chaos_resume.py --searcher seminas --kills 3 --max-queries 60   # smoke

Seed rotation (the kill moments and the search both follow the seed): one run per seed, one
after another, a JSON summary each in ``--json-dir`` and one table at the end::

    python benchmarks/chaos_resume.py --searcher seminas --seeds 7,0,1,2,3 --json-dir out/
    python benchmarks/chaos_resume.py --searcher seminas_re --seeds 7,0,1,2,3 --concurrency 4 --json-dir out/
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _chaos_driver import EXPERIMENT, child, make_searcher
from _chaos_ray import kill_ray, repair_experiment, session_members

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- the checks
def check(args, storage: str, eval_log: str) -> dict:
    """The end-of-run checks, from what is on disk: the experiment (trial table, searcher
    checkpoint and journal, trial folders) and the evaluation log.

    A query is a trial in Tune's final table or a finished trial the table lost but the
    searcher's journal records (its result is in its own folder and in the searcher's pool;
    Tune's ``ResultGrid`` does not show it: no searcher can add a trial to Tune's table)."""
    from ray.tune import ExperimentAnalysis

    from seminas_tune.search.journal import JOURNAL_TMPL, decode
    from seminas_tune.search.resume import tune_trials
    from trainables.nasbench import nasbench101_space

    space = nasbench101_space()
    exp = os.path.join(storage, EXPERIMENT)
    trials = {t.trial_id: (t.status, t.config, t.last_result) for t in ExperimentAnalysis(exp).trials}
    statuses: dict = {}
    for status, _, _ in trials.values():
        statuses[status] = statuses.get(status, 0) + 1
    journaled = [r for f in Path(exp).glob(JOURNAL_TMPL.format("*")) for r in decode(f.read_bytes())[0]]
    completed = {r["trial_id"] for r in journaled if r["op"] == "complete"}
    outside = {
        tid: (None, t.config, t.last_result)
        for tid, t in tune_trials(exp).items()
        if tid not in trials and tid in completed
    }
    keys, values = [], {}
    for _, config, last in [*trials.values(), *outside.values()]:
        k = space.key(space.arch_of(config))
        keys.append(k)
        if last and "val_accuracy" in last:
            values[k] = float(last["val_accuracy"])
    searcher = make_searcher(args.searcher, args.max_queries, args.seed + 12345)  # a blank instance
    searcher.restore_from_dir(exp)
    pool = {o.key: o.value for o in searcher.observations}

    log = [json.loads(line) for line in Path(eval_log).read_text().splitlines() if line.strip()]
    by_key: dict = {}
    for e in log:
        by_key.setdefault(e["key"], []).append(e["trial_id"])
    dup_queries = {k: ids for k, ids in by_key.items() if len(set(ids)) > 1}
    reruns = sum(len(ids) - len(set(ids)) for ids in by_key.values())
    orphans = sorted({e["trial_id"] for e in log} - set(trials))
    lost = [tid for tid in orphans if tid not in outside]  # evaluated, known to neither Tune nor searcher

    missing = [k for k in values if k not in pool]
    mismatched = [k for k, v in values.items() if k in pool and pool[k] != v]
    queries = len(trials) + len(outside)
    out = {
        "trials": len(trials),
        "statuses": statuses,
        "finished_trials_only_in_journal": len(outside),
        "distinct_keys": len(set(keys)),
        "searcher_suggested": searcher.num_suggested,
        "searcher_observed": len(searcher.observations),
        "searcher_pending": len(searcher._pending),
        "evaluations_logged": len(log),
        "reruns_same_trial": reruns,
        "keys_evaluated_by_two_trials": len(dup_queries),
        "orphan_trials_in_log": len(orphans),
        "orphans_known_to_nobody": len(lost),
        "results_missing_from_pool": len(missing),
        "results_with_other_value_in_pool": len(mismatched),
    }
    out["checks"] = {
        "finished": statuses == {"TERMINATED": len(trials)},
        "exactly_max_queries": (
            queries == args.max_queries
            and searcher.num_suggested == args.max_queries
            and len(searcher.observations) == args.max_queries
        ),
        "each_cell_once": len(set(keys)) == len(keys) and not dup_queries,
        "no_result_missing": not missing and not mismatched and len(values) == queries and not lost,
    }
    return out


def _read_events(path: str, start: int) -> tuple[list[dict], int]:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    return [json.loads(x) for x in data[:end].splitlines() if x.strip()], start + end


def parent(args) -> dict:
    rng = random.Random(args.seed)
    work = Path(args.workdir or tempfile.mkdtemp(prefix=f"chaos_{args.searcher}_"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    storage = str(work / "storage")
    eval_log = str(work / "evaluations.jsonl")
    events = str(work / "events.jsonl")
    ray_temp = tempfile.mkdtemp(prefix="chz", dir="/tmp")  # short: Ray's socket paths are limited
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    strategies = ["after_complete", "training", "random", "after_complete", "startup"]
    kills, restores, log = 0, 0, []
    t0 = time.time()
    offset = 0
    try:
        while True:
            from ray import tune

            exp_dir = Path(storage) / EXPERIMENT
            restore = tune.Tuner.can_restore(str(exp_dir)) and any(exp_dir.glob("experiment_state-*.json"))
            if restore:
                restores += 1
            elif kills:  # killed before Tune wrote any state: start afresh
                shutil.rmtree(os.path.join(storage, EXPERIMENT), ignore_errors=True)
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--searcher",
                args.searcher,
                "--max-queries",
                str(args.max_queries),
                "--seed",
                str(args.seed),
                "--concurrency",
                str(args.concurrency),
                "--storage",
                storage,
                "--eval-log",
                eval_log,
                "--events",
                events,
                "--ray-temp",
                ray_temp,
            ] + (["--restore"] if restore else [])
            out = open(work / f"driver_{kills:02d}.log", "wb")
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            strategy = strategies[kills % len(strategies)] if kills < args.kills else None
            k_complete = rng.randint(2, 10)
            startup_at = time.time() + rng.uniform(1.0, 8.0)
            random_at = time.time() + rng.uniform(5.0, 30.0)
            completions, training, killed_why = 0, False, None
            while proc.poll() is None:
                new, offset = _read_events(events, offset)
                for e in new:
                    if e["event"] == "complete":
                        completions += 1
                    elif e["event"] == "train_start":
                        training = True
                    elif e["event"] == "train_end":
                        training = False
                now = time.time()
                if strategy == "after_complete" and completions >= k_complete:
                    time.sleep(rng.uniform(0, 0.03))
                    killed_why = f"after completion #{completions}"
                elif strategy == "training" and training:
                    time.sleep(rng.uniform(0, 0.5))
                    killed_why = "during controller training"
                elif strategy == "training" and completions >= 20:  # no training comes any more
                    killed_why = f"after completion #{completions} (no controller training in this life)"
                elif strategy == "startup" and now > startup_at:
                    killed_why = "during start-up/restore"
                elif strategy == "random" and now > random_at:
                    killed_why = "random moment"
                if killed_why:
                    members = session_members(proc.pid)
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    n = kill_ray(ray_temp, members)
                    kills += 1
                    fix = repair_experiment(ray_temp, Path(storage) / EXPERIMENT)
                    log.append(
                        {
                            "kill": kills,
                            "why": killed_why,
                            "completions_this_life": completions,
                            "ray_processes_killed": n,
                            "t": round(time.time() - t0, 1),
                            **fix,
                        }
                    )
                    print(
                        f"[{time.time() - t0:6.1f}s] kill {kills:2d}: {killed_why} "
                        f"({completions} completions in this life, {n} Ray processes removed, "
                        f"{fix['repaired_files']} state files repaired, dropped {fix['dropped_sessions']})",
                        flush=True,
                    )
                    break
                time.sleep(0.01)
            else:
                kill_ray(ray_temp, set())
                rc = proc.returncode
                print(f"[{time.time() - t0:6.1f}s] driver exited with {rc}", flush=True)
                if rc != 0:
                    raise RuntimeError(f"driver failed (rc={rc}); see {work}/driver_{kills:02d}.log")
                break
        wall = time.time() - t0
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    reconciled = [
        line.split("reconciled: ", 1)[1].strip()
        for f in sorted(work.glob("driver_*.log"))
        for line in f.read_text(errors="replace").splitlines()
        if "reconciled: " in line
    ]
    summary = {
        "searcher": args.searcher,
        "max_queries": args.max_queries,
        "seed": args.seed,
        "concurrency": args.concurrency,
        "kills": kills,
        "restores": restores,
        "wall_s": round(wall, 1),
        "kill_log": log,
        "restores_that_reconciled": reconciled,
        **check(args, storage, eval_log),
        "workdir": str(work),
    }
    return summary


MOMENTS = ("after completion", "during controller", "random", "during start-up")
RECONCILED = ("from_journal", "completed", "resuggested", "adopted")


def table_row(summary: dict) -> dict:
    """One run's line of the summary table."""
    import ast

    moments = [sum(k["why"].startswith(m) for k in summary["kill_log"]) for m in MOMENTS]
    repairs = sum(k["repaired_files"] for k in summary["kill_log"])
    dropped = sum(len(k["dropped_sessions"]) for k in summary["kill_log"])
    counts = [ast.literal_eval(r) for r in summary["restores_that_reconciled"]]
    reconciled = [sum(c.get(name, 0) for c in counts) for name in RECONCILED]
    return {
        "searcher": summary["searcher"],
        "seed": summary["seed"],
        "conc.": summary["concurrency"],
        "kills": summary["kills"],
        "moments: compl./train./random/start": "/".join(map(str, moments)),
        "files repaired / sessions dropped": f"{repairs} / {dropped}",
        "reconciled: journal/completed/requeued/adopted": "/".join(map(str, reconciled)),
        "trials in Tune's table": summary["trials"],
        "evaluations logged": summary["evaluations_logged"],
        "re-runs same id": summary["reruns_same_trial"],
        "cells under 2 ids": summary["keys_evaluated_by_two_trials"],
        "orphans in log / only in journal": f"{summary['orphan_trials_in_log']} / "
        f"{summary.get('finished_trials_only_in_journal', 0)}",
        "results lost": summary["results_missing_from_pool"] + summary["results_with_other_value_in_pool"],
        "checks": "pass"
        if all(summary["checks"].values())
        else "FAIL: " + ",".join(k for k, v in summary["checks"].items() if not v),
        "wall (s)": summary["wall_s"],
    }


def markdown_table(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines)


def recheck(args, path: Path) -> int:
    """Recompute the end-of-run checks of a finished run into its summary; print its row."""
    summary = json.loads(path.read_text())
    work = Path(summary["workdir"])
    run_args = argparse.Namespace(**{**vars(args), **{k: summary[k] for k in ("searcher", "seed", "max_queries")}})
    summary.update(check(run_args, str(work / "storage"), str(work / "evaluations.jsonl")))
    path.write_text(json.dumps(summary, indent=1))
    print(markdown_table([table_row(summary)]))
    return 0 if all(summary["checks"].values()) else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--searcher", default="seminas", choices=["seminas", "seminas_re"])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--max-queries", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--seeds",
        default=None,
        help="seed rotation: comma-separated seeds run one after another, e.g. 0,1,2,3,4; "
        "the summaries go to --json-dir and one table is printed",
    )
    p.add_argument("--concurrency", type=int, default=2, help="max_concurrent_trials")
    p.add_argument("--workdir", default=None, help="run folder (default: a new temp dir)")
    p.add_argument("--json", default=None, help="write the summary here")
    p.add_argument("--json-dir", default=None, help="with --seeds: write <searcher>_seed<N>.json here")
    p.add_argument(
        "--recheck",
        metavar="SUMMARY_JSON",
        default=None,
        help="recompute the checks of a finished run (from its workdir) into its JSON summary",
    )
    # driver-only
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--restore", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--storage", help=argparse.SUPPRESS)
    p.add_argument("--eval-log", help=argparse.SUPPRESS)
    p.add_argument("--events", help=argparse.SUPPRESS)
    p.add_argument("--ray-temp", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    if args.recheck:
        return recheck(args, Path(args.recheck))
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    summaries = []
    for seed in seeds:
        run_args = argparse.Namespace(**{**vars(args), "seed": seed})
        if args.seeds and args.workdir:
            run_args.workdir = os.path.join(args.workdir, f"{args.searcher}_seed{seed}")
        summary = parent(run_args)
        print(json.dumps({k: v for k, v in summary.items() if k != "kill_log"}, indent=1), flush=True)
        out = (
            os.path.join(args.json_dir, f"{args.searcher}_seed{seed}.json")
            if args.seeds and args.json_dir
            else args.json
        )
        if out:
            Path(out).write_text(json.dumps(summary, indent=1))
        summaries.append(summary)
    print(markdown_table([table_row(s) for s in summaries]))
    return 0 if all(all(s["checks"].values()) for s in summaries) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
