"""A searcher's write-ahead journal: every suggestion and completion, durable before it counts.

Tune saves its trial table and the searcher checkpoint separately and not atomically, so a
driver killed at the wrong moment restores a pair that predates trials already launched. The
journal closes that gap by construction: :class:`ArchSearcher` appends a record (trial id and
config) before ``suggest`` returns a trial to Tune, and another (the result) when a trial
completes. On restore, :func:`replay` adds to the restored checkpoint what only the journal
knows; ``ArchSearcher.reconcile`` then settles each trial against Tune's table and the trials'
own folders (docs/reliability.md).

The journal is one append-only file per search run, ``searcher-journal-<run id>.log``, in the
experiment's storage directory beside Tune's ``experiment_state-*.json``, written by the driver
only. Each record is one line, ``<crc32 hex> <json>``; a record cut short by a kill (or any
record whose checksum fails) ends the readable journal, and :meth:`Journal.attach` truncates
that tail with a warning. The ``.log`` suffix matters: Tune downloads only ``*.json``/``*.pkl``
into its staging dir on restore, so it never uploads a stale copy over the live journal.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from typing import Any

logger = logging.getLogger(__name__)

JOURNAL_TMPL = "searcher-journal-{}.log"


def _plain(value: Any) -> Any:
    """JSON fallback: numpy scalars become Python numbers, anything else its string."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def encode(record: dict) -> bytes:
    """One checksummed journal line."""
    payload = json.dumps(record, sort_keys=True, default=_plain).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def decode(data: bytes) -> tuple[list[dict], int]:
    """The records of a journal's bytes and the length of its valid prefix."""
    records, pos = [], 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        crc, _, payload = data[pos:end].partition(b" ")
        try:
            if int(crc, 16) != zlib.crc32(payload):
                break
            records.append(json.loads(payload))
        except ValueError:
            break
        pos = end + 1
    return records, pos


class Journal:
    """The append-only journal of one search run.

    Until :meth:`attach` names its directory, records are kept in memory (a fresh run learns
    its storage directory only at Tune's first state save; see docs/reliability.md). Pickles
    as a fresh, unattached journal: the file belongs to the driver that attached it.
    """

    def __init__(self) -> None:
        self.path: str | None = None
        self._buffer: list[bytes] = []

    def __reduce__(self):
        return Journal, ()

    @property
    def attached(self) -> bool:
        return self.path is not None

    def attach(self, directory: str, run_id: str) -> list[dict]:
        """Open (or create) the run's journal in ``directory``, truncate a corrupt tail, write
        the buffered records, and return the records that were already there."""
        path = os.path.join(directory, JOURNAL_TMPL.format(run_id))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        records, valid = decode(data)
        if valid < len(data):
            logger.warning(
                "searcher journal %s: dropped a corrupt tail of %d bytes after %d records "
                "(a write cut short by a crash)",
                path,
                len(data) - valid,
                len(records),
            )
            os.truncate(path, valid)
        self.path = path
        self._write(b"".join(self._buffer))
        self._buffer.clear()
        if not data:
            _fsync_dir(directory)  # the new file's directory entry is durable too
        return records

    def append(self, record: dict) -> None:
        """Make ``record`` durable (or buffer it while unattached)."""
        line = encode(record)
        if self.path is None:
            self._buffer.append(line)
        else:
            self._write(line)

    def _write(self, data: bytes) -> None:
        assert self.path is not None, "attach() names the journal's file first"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def suggestion(trial_id: str, config: dict) -> dict:
    return {"op": "suggest", "trial_id": trial_id, "config": config}


def completion(trial_id: str, result: dict | None, error: bool, curve: dict | None = None) -> dict:
    """A finished trial: its last result (without the config) and the metric at each fidelity
    it reported, as [fidelity, value] pairs (JSON keys would turn the numbers into strings)."""
    kept = None if result is None else {k: v for k, v in result.items() if k != "config"}
    pairs = None if curve is None else [[f, v] for f, v in curve.items()]
    return {"op": "complete", "trial_id": trial_id, "result": kept, "error": bool(error), "curve": pairs}


def requeue(trial_id: str) -> dict:
    return {"op": "requeue", "trial_id": trial_id}


def replay(searcher: Any, records: list[dict]) -> int:
    """Apply to ``searcher`` (an ``ArchSearcher`` restored from an older checkpoint; not
    imported here, which would be an import cycle) the journal records it does not
    know: a suggested trial becomes pending, a completion is recorded, a trial an earlier restore
    gave up (Tune never ran it) is given up again. A suggestion whose cell the searcher already
    holds under another trial id (a run Tune restarted from scratch) is skipped. Returns how
    many suggestions were added."""
    added = 0
    space = searcher.space
    for rec in records:
        tid = rec.get("trial_id")
        if rec.get("op") == "suggest" and tid not in searcher._trial_ids:
            arch = space.arch_of(rec["config"])
            key = space.key(arch)
            searcher._trial_ids.add(tid)
            if key in searcher._proposed or key in searcher._observed:
                continue
            searcher._proposed[key] = arch
            searcher._pending[tid] = key
            added += 1
        elif rec.get("op") == "complete" and tid in searcher._pending:
            curve = rec.get("curve")
            searcher._complete(tid, rec["result"], rec["error"], None if curve is None else dict(map(tuple, curve)))
        elif rec.get("op") == "requeue" and tid in searcher._pending:
            searcher._requeue(tid)
    return added
