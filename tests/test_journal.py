"""The searcher's write-ahead journal: a crash at any moment neither re-evaluates a cell under a
new trial id nor loses a result (issue #20; docs/reliability.md).

Run as a script, this module is the driver of the kill test: a Tune run that SIGKILLs itself
right after the journal records a suggestion, before Tune saves its state again.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seminas_tune.search import journal
from seminas_tune.search.journal import JOURNAL_TMPL, Journal
from seminas_tune.search.resume import TuneTrial, tune_trials
from tests.test_searcher_contract import ALL, drive, make
from trainables.nasbench import evaluate_nasbench101

KILL_AT = 7  # the driver dies right after journaling its 7th suggestion
MAX_QUERIES = 12


# ------------------------------------------------------------------------ the file format
@pytest.mark.parametrize("damage", ["cut", "bad checksum"])
def test_truncated_journal_tail_is_dropped_with_a_warning(tmp_path, caplog, damage):
    j = Journal()
    j.append({"op": "suggest", "trial_id": "a"})  # buffered until attached
    assert j.attach(str(tmp_path), "run") == []
    j.append({"op": "complete", "trial_id": "a", "result": {"val_accuracy": 0.5}})
    path = tmp_path / JOURNAL_TMPL.format("run")
    whole = path.read_bytes()
    assert [r["op"] for r in Journal().attach(str(tmp_path), "run")] == ["suggest", "complete"]

    if damage == "cut":  # a kill in the middle of the second record
        path.write_bytes(whole[:-9])
    else:  # a whole line whose checksum does not match, then more
        path.write_bytes(whole.replace(b"0.5", b"0.6") + journal.encode({"op": "suggest", "trial_id": "x"}))
    with caplog.at_level(logging.WARNING, logger="seminas_tune.search.journal"):
        again = Journal()
        assert again.attach(str(tmp_path), "run") == [{"op": "suggest", "trial_id": "a"}]
    assert "corrupt tail" in caplog.text
    assert path.read_bytes() == whole[: whole.index(b"\n") + 1]  # truncated to the valid prefix
    again.append({"op": "suggest", "trial_id": "b"})
    assert [r["trial_id"] for r in Journal().attach(str(tmp_path), "run")] == ["a", "b"]


def test_numpy_values_are_written_as_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    record = journal.completion(
        "t", {"val_accuracy": np.float32(0.5), "valid": np.bool_(False), "config": {"big": 1}}, False
    )
    decoded, _ = journal.decode(journal.encode(record))
    assert decoded[0]["result"] == {"val_accuracy": 0.5, "valid": False}  # config dropped


# ------------------------------------------------------------- replay, for every searcher
def _snapshot(searcher) -> bytes:
    """The searcher's checkpoint as Tune writes it (``set_state(pickle.loads(...))`` restores)."""
    return pickle.dumps(searcher.get_state())


def _run_past_checkpoint(s) -> tuple[dict, dict, str, str]:
    """Suggest trials, finishing the first two, until two are left running (a batch searcher
    that waits gets its running trial's result). Returns configs, results, the running two."""
    cfgs, results = {}, {}
    while True:
        running = [t for t in cfgs if t not in results]
        if len(running) == 2:
            return cfgs, results, running[0], running[1]
        tid = f"x{len(cfgs)}"
        cfg = s.suggest(tid)
        if cfg is None:  # a batch searcher waiting for results: its running trial finishes
            tid = running[0]
        else:
            cfgs[tid] = cfg
        if cfg is None or len(results) < 2:
            results[tid] = evaluate_nasbench101(cfgs[tid])
            s.on_trial_complete(tid, results[tid])


@pytest.mark.parametrize("name", ALL)
def test_replay_restores_what_only_the_journal_knows(tmp_path, name):
    """The checkpoint is older than every suggestion: the first finished trial Tune recorded,
    the other finished ones its table lost (their results only in the journal), b still runs,
    d Tune never created. The restored searcher waits for b, keeps every result, suggests d's
    cell once more and nothing else that was ever suggested."""
    s = make(name)
    s._journal.attach(str(tmp_path), s._run_id)
    snapshot = _snapshot(s)
    cfgs, results, b, d = _run_past_checkpoint(s)
    a = next(iter(results))
    tune = {a: TuneTrial(a, "TERMINATED", cfgs[a], results[a]), b: TuneTrial(b, "RUNNING", cfgs[b], None)}

    restored = make(name, seed=99)
    restored.set_state(pickle.loads(snapshot))
    assert journal.replay(restored, Journal().attach(str(tmp_path), restored._run_id)) == len(cfgs)
    assert restored.reconcile(tune) == {"completed": 0, "resuggested": 1, "adopted": 0}
    assert set(restored._pending) == {b}
    values = sorted(o.value for o in restored.observations)
    assert values == sorted(r["val_accuracy"] for r in results.values())
    restored.on_trial_complete(b, evaluate_nasbench101(cfgs[b]))
    later = drive(restored, evaluate_nasbench101, prefix="n")
    assert later[0] == cfgs[d]  # the cell Tune never ran comes back once
    assert not [c for c in later[1:] if c in cfgs.values()]
    assert restored.num_suggested == restored.max_queries == len(restored.observations)

    # Without the journal the same restore keeps only the result Tune recorded.
    blind = make(name, seed=99)
    blind.set_state(pickle.loads(snapshot))
    blind.reconcile(tune)
    assert [o.value for o in blind.observations] == [results[a]["val_accuracy"]]


def test_a_requeued_trial_stays_requeued_through_a_later_replay(tmp_path):
    """Restore 1 gave up trial d (Tune never ran it) and suggested its cell as e; restore 2
    starts from the same old checkpoint: d must not come back as pending beside e."""
    s = make("random")
    s._journal.attach(str(tmp_path), s._run_id)
    snapshot = _snapshot(s)
    d = s.suggest("d")
    r1 = make("random")
    r1.set_state(pickle.loads(snapshot))
    journal.replay(r1, r1._journal.attach(str(tmp_path), r1._run_id))
    assert r1.reconcile({})["resuggested"] == 1
    assert r1.suggest("e") == d
    r2 = make("random")
    r2.set_state(pickle.loads(snapshot))
    journal.replay(r2, Journal().attach(str(tmp_path), r2._run_id))
    assert r2._pending == {"e": r2.space.key(r2.space.from_config(d))}


# ------------------------------------------- a real driver killed between journal and Tune
def _driver(storage: str, eval_log: str) -> None:
    """Runs when this file is executed: a Tune run that saves its state at the first step only
    and dies (SIGKILL) right after journaling its KILL_AT-th suggestion."""
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "1000000"
    import ray
    from ray import tune

    def trainable(config):
        result = evaluate_nasbench101(config)
        with open(eval_log, "a") as f:
            f.write(
                json.dumps(
                    {
                        "trial_id": tune.get_context().get_trial_id(),
                        "key": result["arch_key"],
                        "val_accuracy": result["val_accuracy"],
                    }
                )
                + "\n"
            )
        tune.report(result)  # no report_final: the driver's journal is the only durable copy

    append, n = Journal.append, []

    def append_then_die(self, record):  # the hook: the record is durable, Tune has not saved
        append(self, record)
        n.extend([1] if record["op"] == "suggest" else [])
        if len(n) == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)

    Journal.append = append_then_die
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    searcher = make("random", max_queries=MAX_QUERIES, metric="val_accuracy", mode="max")
    tune.Tuner(
        trainable,
        run_config=tune.RunConfig(name="exp", storage_path=storage, verbose=0),
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=-1, metric="val_accuracy", mode="max", max_concurrent_trials=1
        ),
    ).fit()


def test_driver_killed_between_journal_write_and_tune_save(tmp_path):
    eval_log = tmp_path / "evaluations.jsonl"
    root = Path(__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [sys.executable, __file__, str(tmp_path), str(eval_log)],
        timeout=600,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    exp = str(tmp_path / "exp")
    (path,) = glob.glob(os.path.join(exp, JOURNAL_TMPL.format("*")))
    journaled, _ = journal.decode(Path(path).read_bytes())
    suggested = [r["trial_id"] for r in journaled if r["op"] == "suggest"]
    evaluated = [json.loads(line) for line in eval_log.read_text().splitlines()]
    in_table = {tid for tid, t in tune_trials(exp).items() if t.status is not None}
    orphans = [tid for tid in suggested if tid not in in_table]
    assert len(suggested) == KILL_AT and len(orphans) >= KILL_AT - 2  # Tune saved once, early
    assert {e["trial_id"] for e in evaluated} & set(orphans), "no orphan had run: the test shows nothing"

    restored = make("random", seed=42, max_queries=MAX_QUERIES)
    restored.restore_from_dir(exp)
    assert set(suggested) <= restored._trial_ids  # every orphan adopted
    pool = {o.key: o.value for o in restored.observations}
    for e in evaluated:  # no result lost
        assert pool[e["key"]] == pytest.approx(e["val_accuracy"])
    never_ran = [tid for tid in orphans if tid not in {e["trial_id"] for e in evaluated}]
    later = drive(restored, evaluate_nasbench101, prefix="n")
    keys = [restored.space.key(restored.space.from_config(c)) for c in later]
    assert not set(keys) & {e["key"] for e in evaluated}  # no cell evaluated under two trial ids
    assert len(keys) == len(set(keys)) and restored.num_suggested == MAX_QUERIES
    for tid in never_ran:  # waited for (Tune will run it) or suggested again, exactly once
        key = restored.space.key(
            restored.space.from_config(
                next(r["config"] for r in journaled if r["trial_id"] == tid and r["op"] == "suggest")
            )
        )
        assert (tid in restored._pending) + keys.count(key) == 1

    # Without the journal, the same restore re-suggests a cell that was already evaluated.
    os.remove(path)
    blind = make("random", seed=42, max_queries=MAX_QUERIES)
    blind.restore_from_dir(exp)
    for tid, key in list(blind._pending.items()):  # the trial Tune's table lists: it runs again
        blind.on_trial_complete(tid, evaluate_nasbench101(blind.space.to_config(blind._proposed[key])))
    blind_configs = drive(blind, evaluate_nasbench101, prefix="n")
    blind_keys = [blind.space.key(blind.space.from_config(c)) for c in blind_configs]
    assert set(blind_keys) & {e["key"] for e in evaluated}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[1]))
    _driver(sys.argv[1], sys.argv[2])
