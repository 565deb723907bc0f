"""The chaos run's clean-up after a kill: remove the dead driver's Ray processes and finish the
experiment-state upload the kill cut short."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path


def _ray_pids(temp_dir: str) -> list[int]:
    """Processes whose command line names this run's own Ray temp dir."""
    pids = []
    needle = temp_dir.encode()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmd:
            pids.append(int(p.name))
    return pids


def kill_ray(temp_dir: str, session_pids: set[int]) -> int:
    """SIGKILL what is left of the dead driver's Ray: its process group's members and every
    process naming its temp dir. Returns how many were killed."""
    killed: set[int] = set()
    for _ in range(50):
        pids = set(_ray_pids(temp_dir))
        for pid in list(session_pids):
            try:
                os.kill(pid, 0)
                pids.add(pid)
            except OSError:
                session_pids.discard(pid)
        if not pids:
            return len(killed)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"Ray processes of {temp_dir} survive SIGKILL: {sorted(pids)}")


def session_members(sid: int) -> set[int]:
    """The processes of session ``sid`` (the driver was started in a session of its own)."""
    out = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid:  # session id
            out.add(int(p.name))
    return out


STATE_FILES = ("experiment_state-", "searcher-state-", "search_gen_state-")


def _parses(path: Path) -> bool:
    import pickle

    try:
        data = path.read_bytes()
        if path.name.startswith("experiment_state-"):
            json.loads(data)
        else:  # searcher-state, search_gen_state (a pickle despite its .json name), tuner.pkl
            pickle.loads(data)
        return True
    except Exception:
        return False


def _session_of(name: str) -> str:
    return name.split("-", 1)[1].rsplit(".", 1)[0].replace("state-", "")


def repair_experiment(ray_temp: str, exp_dir: Path) -> dict:
    """Finish the experiment-state upload a SIGKILL cut short.

    Tune writes its state (``experiment_state-<session>.json``, ``searcher-state-<session>.pkl``,
    ``search_gen_state-<session>.json``) to a staging dir under the Ray temp dir, then copies the
    whole staging dir, old sessions' files included, to the storage path in the background,
    non-atomically. A kill during that copy leaves truncated files in storage, and
    ``Tuner.restore`` that meets a truncated newest state logs "Failed to restore the run state"
    and starts the experiment afresh. The dead driver's staging copies are complete (they were
    written before the copy began), so: copy every staged state file (and ``tuner.pkl``, which
    is re-uploaded too) that parses over its storage copy (atomically), then drop storage
    sessions whose files still do not parse. A table and searcher that parse but disagree are
    left as they are: the restored searcher reconciles itself with the table
    (``ArchSearcher.reconcile``).
    """
    repaired, dropped = 0, []
    stagings = sorted(
        Path(ray_temp).glob(f"session_*/artifacts/*/{exp_dir.name}/driver_artifacts"), key=lambda p: p.stat().st_mtime
    )
    if stagings and exp_dir.exists():
        staging = stagings[-1]
        for f in sorted(staging.iterdir()):
            if not (f.is_file() and (f.name.startswith(STATE_FILES) or f.name == "tuner.pkl") and _parses(f)):
                continue
            dst = exp_dir / f.name
            if dst.exists() and dst.read_bytes() == f.read_bytes():
                continue
            tmp = exp_dir / f".{f.name}.repair"
            shutil.copyfile(f, tmp)
            os.replace(tmp, dst)
            repaired += 1
    if exp_dir.exists():
        sessions: dict = {}
        for f in exp_dir.iterdir():
            if f.is_file() and f.name.startswith(STATE_FILES):
                sessions.setdefault(_session_of(f.name), []).append(f)
        for sess, files in sorted(sessions.items(), reverse=True):
            if all(_parses(f) for f in files):
                break
            for f in files:
                f.unlink()
            dropped.append(sess)
    return {"repaired_files": repaired, "dropped_sessions": dropped}
