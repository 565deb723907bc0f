"""A search on a real two-node Ray cluster on loopback, losing a node mid-run.

The test starts a head (``ray start --head``, 1 CPU) and a second node (1 CPU, resource
``worker_node``), each with its own temp dir and in its own process session, so that the
second node can be killed alone (SIGKILL to every process of its session: raylet, workers,
agents) without touching any other Ray instance on the machine. The search itself runs in a
subprocess (``python tests/test_cluster.py --driver ...``) with ``ray.init(address=...)``: the
test session's own Ray instance (the ``ray_session`` fixture) is never mixed in.

Every trial appends (trial_id, node_id, key) to a log; as soon as a trial runs on the second
node (there it sleeps 3 s), the node is killed under it. Its trials fail and are retried on the head
(``FailureConfig(max_failures)``)
and the search completes with every query accounted for.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 8


# ---------------------------------------------------------------------------- the driver
def driver(address: str, storage: str, trial_log: str, summary: str) -> None:
    import ray
    from ray import tune
    from ray.tune import Callback

    from tests.test_searcher_contract import make

    ray.init(address=address, log_to_driver=False, configure_logging=False)
    workers = [n["NodeID"] for n in ray.nodes() if n["Alive"] and "worker_node" in n["Resources"]]
    _append(trial_log, {"event": "nodes", "worker_node_ids": workers})

    def on_node(config):
        from trainables.nasbench import evaluate_nasbench101

        node = ray.get_runtime_context().get_node_id()
        tid = tune.get_context().get_trial_id()
        _append(trial_log, {"event": "start", "trial_id": tid, "node_id": node})
        time.sleep(3.0 if node in workers else 0.2)  # on the second node: time to die under it
        result = evaluate_nasbench101(config)
        _append(trial_log, {"event": "done", "trial_id": tid, "node_id": node, "key": result["arch_key"]})
        tune.report({**result, "node_id": node})

    class Recoveries(Callback):
        n = 0
        last = 0.0

        def on_step_end(self, iteration, trials, **info):  # progress, for a failure's report
            if time.time() - Recoveries.last > 5:
                Recoveries.last = time.time()
                _append(
                    trial_log,
                    {
                        "event": "progress",
                        "suggested": searcher.num_suggested,
                        "pending": len(searcher._pending),
                        "job": searcher.job_running,
                        "statuses": sorted({t.status for t in trials}),
                    },
                )

        def on_trial_recover(self, iteration, trials, trial, **info):
            Recoveries.n += 1

    searcher = make("seminas", max_queries=BUDGET, background="auto")
    tuner = tune.Tuner(
        tune.with_resources(on_node, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            metric="val_accuracy",
            mode="max",
            max_concurrent_trials=2,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="cluster",
            storage_path=storage,
            verbose=0,
            callbacks=[Recoveries()],
            failure_config=tune.FailureConfig(max_failures=3),
        ),
    )
    grid = tuner.fit()
    df = grid.get_dataframe()
    space = searcher.space
    keys = [space.key(space.from_config({k: r[f"config/{k}"] for k in space.choices()})) for _, r in df.iterrows()]
    Path(summary).write_text(
        json.dumps(
            {
                "trials": len(df),
                "errors": len(grid.errors),
                "distinct_keys": len(set(keys)),
                "result_nodes": sorted(set(df["node_id"])),
                "recoveries": Recoveries.n,
                "suggested": searcher.num_suggested,
                "pending": len(searcher._pending),
                "statuses": [o.status for o in searcher.observations],
                "values_match": all(
                    {o.key: o.value for o in searcher.observations}.get(k) == v
                    for k, v in zip(keys, df["val_accuracy"])
                ),
            }
        )
    )
    ray.shutdown()


def _append(path: str, record: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps({**record, "t": time.time()}) + "\n").encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- the test
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session(sid: int) -> list[int]:
    """Live processes of the process session ``sid`` (a node we started)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[3]) == sid:
                out.append(int(p.name))
    return out


def _kill_session(sid: int, wait: float = 10.0) -> None:
    deadline = time.time() + wait
    while (pids := _session(sid)) and time.time() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
    assert not _session(sid), f"processes of session {sid} survive SIGKILL"


def _ray_start(args: list[str], env: dict, sessions: list[int]) -> None:
    """``ray start`` in a new session; returns the session id its daemons keep."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sessions.append(proc.pid)  # new session: sid == pid of the `ray start` process
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_search_on_two_nodes_survives_losing_one(tmp_path):
    port = _free_port()
    head_tmp = tempfile.mkdtemp(prefix="rch", dir="/tmp")  # short: Ray's socket paths are limited
    node_tmp = tempfile.mkdtemp(prefix="rcn", dir="/tmp")
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "RAY_USAGE_STATS_ENABLED": "0",
        # a token of this cluster's own: nodes and driver authenticate with it, whatever
        # ~/.ray/auth_token or other clusters on the machine hold
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        # notice the dead node within seconds, not the default ~30 s
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_failure_threshold": "4",
        "RAY_health_check_initial_delay_ms": "1000",
    }
    sessions = []
    driver_proc = None
    try:
        _ray_start(
            [
                "--head",
                f"--port={port}",
                "--num-cpus=1",
                "--num-gpus=0",
                f"--temp-dir={head_tmp}",
                "--include-dashboard=false",
                "--disable-usage-stats",
            ],
            env,
            sessions,
        )
        _ray_start(
            [
                f"--address=127.0.0.1:{port}",
                "--num-cpus=1",
                "--num-gpus=0",
                '--resources={"worker_node": 1}',
                f"--temp-dir={node_tmp}",
                "--disable-usage-stats",
            ],
            env,
            sessions,
        )
        node_sid = sessions[1]
        trial_log, summary = tmp_path / "trials.jsonl", tmp_path / "summary.json"
        driver_proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--driver",
                f"127.0.0.1:{port}",
                str(tmp_path / "storage"),
                str(trial_log),
                str(summary),
            ],
            env=env,
            cwd=ROOT,
            stdout=open(tmp_path / "driver.log", "w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 150
        killed_under = None
        while driver_proc.poll() is None and time.time() < deadline:
            log = _read(trial_log)
            workers = next((e["worker_node_ids"] for e in log if e["event"] == "nodes"), [])
            started = [e for e in log if e["event"] == "start"]
            on_worker = [e for e in started if e["node_id"] in workers]
            if killed_under is None and on_worker:  # a trial runs on the second node: kill it under it
                _kill_session(node_sid)
                killed_under = on_worker[-1]["trial_id"]
            time.sleep(0.05)
        if driver_proc.poll() is None:
            driver_proc.kill()
        driver_proc.wait()
        assert driver_proc.returncode == 0, (tmp_path / "driver.log").read_text()[-4000:]
        assert killed_under is not None, "no trial ran on the second node while it was alive"
        log = _read(trial_log)
        workers = next(e["worker_node_ids"] for e in log if e["event"] == "nodes")
        nodes = {e["node_id"] for e in log if e["event"] == "start"}
        assert len(workers) == 1 and workers[0] in nodes and len(nodes) == 2, "trials did not run on both nodes"
        # the trial under the killed node was started again (same trial_id) and finished
        assert [e["event"] for e in log if e.get("trial_id") == killed_under].count("start") >= 2
        s = json.loads(summary.read_text())
        assert s["trials"] == BUDGET and s["errors"] == 0 and s["distinct_keys"] == BUDGET
        assert s["suggested"] == BUDGET and s["pending"] == 0
        assert s["statuses"] == ["ok"] * BUDGET, "a result was lost or recorded as an error"
        assert s["values_match"]
        assert s["recoveries"] >= 1
    finally:
        if driver_proc is not None and driver_proc.poll() is None:
            driver_proc.kill()
        for sid in reversed(sessions):
            _kill_session(sid)
        for d in (head_tmp, node_tmp):
            subprocess.run(["rm", "-rf", d], check=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:
        sys.path.insert(0, str(ROOT))
        driver(*sys.argv[2:6])
