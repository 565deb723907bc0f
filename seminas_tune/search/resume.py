"""What Tune itself recorded about an experiment, read back when a searcher is restored.

Tune writes its trial table (``experiment_state-*.json``) and the searcher checkpoint one after
the other and uploads them separately, so a driver killed in between leaves a pair that
disagree: the table may hold trials the searcher never heard of, or miss trials the searcher
still waits for. :func:`tune_trials` reads the table and each trial's own ``result.json``, so
that the searcher can reconcile itself with what was really run (see
``ArchSearcher.restore_from_dir``).
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

FINAL_RESULT = "final_result.json"


@dataclass
class TuneTrial:
    """One trial as Tune recorded it. ``status`` is None for a trial found only on disk."""

    trial_id: str
    status: str | None
    config: dict | None
    last_result: dict | None


def _last_result(trial_dir: str) -> dict | None:
    """The last complete line of a trial's ``result.json`` (a kill may cut the final one)."""
    try:
        with open(os.path.join(trial_dir, "result.json")) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def report_final(result: dict, config: dict) -> None:
    """Report a trial's final result to Tune, after writing it (with the trial's ``config``) to
    ``final_result.json`` in the trial's directory in storage, where a restored searcher finds
    it even if the driver died before receiving the report. Call it from inside a trial."""
    from ray import tune

    ctx = tune.get_context()
    try:
        storage = ctx.get_storage()
        fs, trial_dir = storage.storage_filesystem, storage.trial_fs_path
        fs.create_dir(trial_dir, recursive=True)
        record = json.dumps({**result, "trial_id": ctx.get_trial_id(), "config": config}, default=str)
        with fs.open_output_stream(f"{trial_dir}/.{FINAL_RESULT}.tmp") as f:
            f.write(record.encode())
        fs.move(f"{trial_dir}/.{FINAL_RESULT}.tmp", f"{trial_dir}/{FINAL_RESULT}")
    except Exception:  # noqa: BLE001 - the durable copy is a safety net; the report must go on
        pass
    tune.report(result)


def storage_dir(table: list, local_only: bool = False) -> str | None:
    """The experiment's directory in storage, from the storage record of the table's first
    trial (None without trials; with ``local_only``, also None unless it is a local or shared
    POSIX file system).

    The record is a cloudpickle inside Tune's JSON, which Tune itself unpickles when it
    restores this table; Ray's decoder refuses it unless told the source is trusted, as the
    experiment's own state is (docs/reliability.md, Trust).
    """
    from ray.tune.utils.serialization import TuneFunctionDecoder

    for trial_json, _ in table[:1]:
        try:
            storage = json.loads(trial_json, cls=TuneFunctionDecoder, allow_cloudpickle=True)["storage"]
            if local_only and storage.storage_filesystem.type_name != "local":
                return None
            return os.path.join(storage.storage_fs_path, storage.experiment_dir_name)
        except Exception:  # noqa: BLE001 - an unreadable storage record only loses this hint
            return None
    return None


def _experiment_dirs(dirpath: str, table: list) -> list[str]:
    """Where trial directories may be: the experiment's storage path (from the table's trials)
    and the directory Tune restored from."""
    dirs = [dirpath, storage_dir(table) or dirpath]
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def read_table(dirpath: str, session_str: str = "*") -> list:
    """``trial_data`` of the newest ``experiment_state-<session_str>.json`` in ``dirpath``
    ([] when there is none or it does not parse)."""
    files = sorted(glob.glob(os.path.join(dirpath, f"experiment_state-{session_str}.json")))
    if not files:
        return []
    try:
        with open(files[-1]) as f:
            return json.load(f).get("trial_data", [])
    except (OSError, ValueError):
        return []


def tune_trials(dirpath: str) -> dict[str, TuneTrial]:
    """Trials of the experiment whose state is in ``dirpath``, by trial id.

    From the newest ``experiment_state-*.json`` (status, config, last result) and from trial
    directories (trials the table lost in a crash: status None, with the result of
    :func:`report_final`, else the last line of ``result.json``). Local storage only.
    """
    table = read_table(dirpath)
    trials: dict[str, TuneTrial] = {}
    for trial_json, meta in table:
        try:
            info = json.loads(trial_json)
            meta = json.loads(meta) if isinstance(meta, str) else meta
        except (TypeError, ValueError):
            continue
        last = meta.get("last_result") or None
        config = info.get("config")  # present before the trial reports anything
        if not isinstance(config, dict):
            config = last.get("config") if last else None
        trials[info["trial_id"]] = TuneTrial(info["trial_id"], info.get("status"), config, last)
    for base in _experiment_dirs(dirpath, table):
        for trial_dir in glob.glob(os.path.join(base, "*", "")):
            last = _read_final(trial_dir) or _last_result(trial_dir)
            if not last or last.get("trial_id") is None:
                continue
            tid = last["trial_id"]
            known = trials.get(tid)
            if known is None:
                trials[tid] = TuneTrial(tid, None, last.get("config"), last)
            elif known.last_result is None:
                known.last_result, known.config = last, last.get("config")
    return trials


def _read_final(trial_dir: str) -> dict | None:
    try:
        with open(os.path.join(trial_dir, FINAL_RESULT)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
