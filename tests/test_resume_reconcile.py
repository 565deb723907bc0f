"""After a crash, a restored searcher reconciles its pool with the trials Tune recorded.

Tune writes its trial table and the searcher checkpoint separately, so a killed driver can
leave them disagreeing; these tests build each disagreement and check that nothing is lost,
nothing is evaluated twice, and the search does not wait for a trial Tune will never run.
"""

from __future__ import annotations

import glob
import json
import os

import pytest

from seminas_tune.search import SEARCHERS
from seminas_tune.search.resume import TuneTrial, tune_trials
from tests.test_searcher_contract import drive, make
from trainables.nasbench import evaluate_nasbench101


def _suggest(s, n, prefix="t"):
    return {f"{prefix}{i}": s.suggest(f"{prefix}{i}") for i in range(n)}


def _restored(s):
    blank = make("random", seed=99)
    blank.set_state(s.get_state())
    return blank


def test_pending_trial_finished_by_tune_gets_its_result():
    s = make("random")
    cfgs = _suggest(s, 3)
    r = _restored(s)
    result = {**evaluate_nasbench101(cfgs["t1"]), "config": cfgs["t1"]}
    counts = r.reconcile(
        {
            "t0": TuneTrial("t0", "RUNNING", cfgs["t0"], None),
            "t1": TuneTrial("t1", "TERMINATED", cfgs["t1"], result),
            "t2": TuneTrial("t2", "ERROR", cfgs["t2"], None),
        }
    )
    assert counts == {"completed": 2, "resuggested": 0, "adopted": 0}
    assert set(r._pending) == {"t0"}
    by_status = {o.status: o for o in r.observations}
    assert by_status["ok"].value == pytest.approx(result["val_accuracy"])
    assert "error" in by_status


def test_pending_trial_tune_never_recorded_is_suggested_again():
    s = make("random")
    cfgs = _suggest(s, 2)
    r = _restored(s)
    counts = r.reconcile({"t0": TuneTrial("t0", "PENDING", cfgs["t0"], None)})
    assert counts["resuggested"] == 1
    assert r.suggest("new") == cfgs["t1"]  # same cell, new trial id, still within budget
    assert r.num_suggested == 2


def test_trials_the_searcher_never_heard_of_are_adopted():
    s = make("random")
    old = _suggest(s, 1)
    r = _restored(s)
    lost = make("random", seed=7)
    extra = _suggest(lost, 2, prefix="x")
    done = {**evaluate_nasbench101(extra["x0"]), "config": extra["x0"]}
    counts = r.reconcile(
        {
            "t0": TuneTrial("t0", "RUNNING", old["t0"], None),
            "x0": TuneTrial("x0", None, extra["x0"], done),  # found only on disk
            "x1": TuneTrial("x1", "RUNNING", extra["x1"], None),  # Tune will run it again
        }
    )
    assert counts["adopted"] == 2
    assert [o.value for o in r.observations] == [pytest.approx(done["val_accuracy"])]
    assert set(r._pending) == {"t0", "x1"}
    r.on_trial_complete("x1", evaluate_nasbench101(extra["x1"]))
    configs = drive(r, evaluate_nasbench101)
    assert extra["x0"] not in configs and extra["x1"] not in configs
    assert r.num_suggested == r.max_queries


@pytest.mark.parametrize("name", ["seminas", "re"])
def test_restore_from_a_real_experiment_with_a_stale_table(ray_session, tmp_path, name):
    """A real experiment whose newest trial table forgets its last trials, and whose driver
    never logged their results: a searcher that knows nothing takes every result from the
    table and from the ``final_result.json`` the trials wrote themselves."""
    from ray import tune

    from trainables.nasbench import nasbench101_trainable

    searcher = make(name, max_queries=8)
    tuner = tune.Tuner(
        nasbench101_trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, metric="val_accuracy", mode="max"),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0),
    )
    grid = tuner.fit()
    assert len(grid) == 8
    exp = os.path.join(tmp_path, "exp")
    state_file = max(glob.glob(os.path.join(exp, "experiment_state-*.json")))
    with open(state_file) as f:
        state = json.load(f)
    dropped = {json.loads(t)["trial_id"] for t, _ in state["trial_data"][5:]}
    state["trial_data"] = state["trial_data"][:5]
    with open(state_file, "w") as f:
        json.dump(state, f)
    for final in glob.glob(os.path.join(exp, "*", "final_result.json")):  # written by the trial itself
        with open(final) as f:
            if json.load(f)["trial_id"] in dropped:  # as if the driver died before the report
                os.remove(os.path.join(os.path.dirname(final), "result.json"))
    trials = tune_trials(exp)
    assert len(trials) == 8 and sum(t.status is None for t in trials.values()) == 3

    fresh = SEARCHERS[name](space=searcher.space, metric="val_accuracy", mode="max", max_queries=8, background="inline")
    assert fresh.reconcile(trials)["adopted"] == 8
    found = sorted(o.value for o in fresh.observations)
    assert found == pytest.approx(sorted(grid.get_dataframe()["val_accuracy"]))
    assert fresh.suggest("after") == "FINISHED"

    restored = SEARCHERS[name](
        space=searcher.space, metric="val_accuracy", mode="max", max_queries=8, background="inline"
    )
    restored.restore_from_dir(exp)
    assert len(restored.observations) == 8 and not restored._pending

    # Tune had created trial 4 (in the table, PENDING, nothing reported yet) but the searcher
    # never heard of it: the table alone gives its config, and the searcher must wait for it
    # rather than suggest its cell again (the chaos run's duplicate trials).
    trial_json, meta = state["trial_data"][4]
    info, meta = json.loads(trial_json), json.loads(meta)
    info["status"], meta["last_result"] = "PENDING", {}
    state["trial_data"][4] = [json.dumps(info), json.dumps(meta)]
    with open(state_file, "w") as f:
        json.dump(state, f)
    for name_ in ("result.json", "final_result.json"):
        for path in glob.glob(os.path.join(exp, f"*{info['trial_id']}*", name_)):
            os.remove(path)
    waiting = SEARCHERS[name](
        space=searcher.space, metric="val_accuracy", mode="max", max_queries=8, background="inline"
    )
    assert waiting.reconcile(tune_trials(exp))["adopted"] == 8
    key = waiting.space.key(waiting.space.from_config(info["config"]))
    assert waiting._pending == {info["trial_id"]: key} and len(waiting.observations) == 7
    assert waiting.suggest("after") == "FINISHED"  # trial 4 fills the budget


def test_concurrency_limit_follows_the_reconciled_pending_set():
    """Wrapped in a ConcurrencyLimiter, the searcher holds the limit itself: after a restore
    that re-suggests a trial Tune forgot, the forgotten trial no longer takes a slot."""
    from ray.tune.search import ConcurrencyLimiter

    s = make("random")
    limited = ConcurrencyLimiter(s, max_concurrent=2)
    first = [limited.suggest(f"t{i}") for i in range(3)]
    assert first[0] and first[1] and first[2] is None  # the limit holds
    r = _restored(s)
    r.set_max_concurrency(2)
    r.reconcile({"t0": TuneTrial("t0", "RUNNING", first[0], None)})  # t1 was forgotten
    assert r.suggest("n1") == first[1]  # its slot is free again, and its cell comes back
    assert r.suggest("n2") is None
