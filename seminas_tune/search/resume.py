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


def _experiment_dirs(dirpath: str, table: list) -> list[str]:
    """Where trial directories may be: the experiment's storage path (from the table's trials)
    and the directory Tune restored from."""
    from ray.tune.utils.serialization import TuneFunctionDecoder

    dirs = [dirpath]
    for trial_json, _ in table[:1]:
        try:
            storage = json.loads(trial_json, cls=TuneFunctionDecoder)["storage"]
            dirs.append(os.path.join(storage.storage_fs_path, storage.experiment_dir_name))
        except Exception:  # noqa: BLE001 - an unreadable storage record only loses this hint
            pass
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def tune_trials(dirpath: str) -> dict[str, TuneTrial]:
    """Trials of the experiment whose state is in ``dirpath``, by trial id.

    From the newest ``experiment_state-*.json`` (status, config, last result) and from trial
    directories holding a ``result.json`` (trials the table lost in a crash: status None, their
    last reported result). Empty when there is no readable table.
    """
    files = sorted(glob.glob(os.path.join(dirpath, "experiment_state-*.json")))
    table: list = []
    if files:
        try:
            with open(files[-1]) as f:
                table = json.load(f).get("trial_data", [])
        except (OSError, ValueError):
            table = []
    trials: dict[str, TuneTrial] = {}
    for trial_json, meta in table:
        try:
            info = json.loads(trial_json)
            meta = json.loads(meta) if isinstance(meta, str) else meta
        except (TypeError, ValueError):
            continue
        last = meta.get("last_result") or None
        config = last.get("config") if last else None
        trials[info["trial_id"]] = TuneTrial(info["trial_id"], info.get("status"), config, last)
    for base in _experiment_dirs(dirpath, table):
        for result_file in glob.glob(os.path.join(base, "*", "result.json")):
            last = _last_result(os.path.dirname(result_file))
            tid = last.get("trial_id") if last else None
            if tid is None:
                continue
            known = trials.get(tid)
            if known is None:
                trials[tid] = TuneTrial(tid, None, last.get("config"), last)
            elif known.last_result is None:
                known.last_result, known.config = last, last.get("config")
    return trials
