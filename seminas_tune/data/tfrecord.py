"""Reader for the official NAS-Bench-101 tfrecord files, without TensorFlow.

Each record is a JSON list ``[module_hash, epochs, adjacency, operations, metrics]`` where
``adjacency`` is the row-major 0/1 string of the V x V matrix, ``operations`` comma-separated
op names and ``metrics`` a base64 ``ModelMetrics`` protobuf (google-research/nasbench
``model_metrics.proto``), decoded here with the protobuf library. A file is converted once to
``<file>.seminas.parquet`` (plus a ``.sha256`` sidecar) and read from there afterwards.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import crc32c as _crc32c
import numpy as np
import pandas as pd

from seminas_tune.data.tables import NASBench101Data, bundled_file, nb101_from_wide, sha256_of, verify_sha256


class TFRecordError(ValueError):
    """A tfrecord file is truncated or fails a CRC check."""


def _masked_crc(data: bytes) -> int:
    crc = _crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def iter_records(f: BinaryIO, name: str = "tfrecord") -> Iterator[bytes]:
    """Yield the payload of every record, checking both CRCs.

    Raises:
        TFRecordError: truncated record or CRC mismatch (with the record's byte offset).
    """
    while True:
        offset = f.tell()
        header = f.read(12)
        if not header:
            return
        if len(header) < 12:
            raise TFRecordError(
                f"{name}: truncated record header at byte {offset}; the file is incomplete, download it again"
            )
        (length,) = struct.unpack("<Q", header[:8])
        (length_crc,) = struct.unpack("<I", header[8:])
        if _masked_crc(header[:8]) != length_crc:
            raise TFRecordError(f"{name}: bad length CRC at byte {offset}; the file is corrupt")
        body = f.read(length)
        footer = f.read(4)
        if len(body) < length or len(footer) < 4:
            raise TFRecordError(f"{name}: truncated record at byte {offset}; the file is incomplete, download it again")
        if _masked_crc(body) != struct.unpack("<I", footer)[0]:
            raise TFRecordError(f"{name}: bad data CRC at byte {offset}; the file is corrupt")
        yield body


def write_records(path: str | Path, payloads: list[bytes]) -> None:
    """Write payloads in the tfrecord framing (used to make test fixtures)."""
    with open(path, "wb") as f:
        for p in payloads:
            n = struct.pack("<Q", len(p))
            f.write(n + struct.pack("<I", _masked_crc(n)) + p + struct.pack("<I", _masked_crc(p)))


@functools.lru_cache(maxsize=1)
def model_metrics_class():
    """The ``nasbench.ModelMetrics`` message class, built from its schema at run time."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="seminas_model_metrics.proto", package="nasbench", syntax="proto2")
    F = descriptor_pb2.FieldDescriptorProto
    ev = fdp.message_type.add(name="EvaluationData")
    for num, fname in enumerate(
        ["current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"], start=1
    ):
        ev.field.add(name=fname, number=num, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    ev.field.add(name="checkpoint_path", number=6, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    mm = fdp.message_type.add(name="ModelMetrics")
    mm.field.add(
        name="evaluation_data",
        number=1,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".nasbench.EvaluationData",
    )
    mm.field.add(name="trainable_parameters", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    mm.field.add(name="total_time", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))


def parse_record(payload: bytes) -> tuple[dict, dict]:
    """(fixed, metrics) rows of one record; metrics at the final evaluation of the run."""
    module_hash, epochs, adjacency, operations, metrics_b64 = json.loads(payload.decode("utf-8"))
    n = int(round(len(adjacency) ** 0.5))
    matrix = np.array([int(c) for c in adjacency], dtype=np.int64).reshape(n, n)
    msg = model_metrics_class().FromString(base64.b64decode(metrics_b64))
    final = msg.evaluation_data[-1]
    fixed = {
        "hash": module_hash,
        "n_vertices": n,
        "adjacency": "".join(str(b) for b in matrix[np.triu_indices(n, 1)]),
        "ops": operations,
        "params": int(msg.trainable_parameters),
    }
    row = {
        "hash": module_hash,
        "epochs": int(epochs),
        "train_accuracy": final.train_accuracy,
        "validation_accuracy": final.validation_accuracy,
        "test_accuracy": final.test_accuracy,
        "training_time": final.training_time,
    }
    return fixed, row


def convert(path: str | Path, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a whole tfrecord into (fixed, metrics) tables; repeats numbered in file order."""
    fixed: dict[str, dict] = {}
    rows: list[dict] = []
    seen: dict[tuple[str, int], int] = {}
    with open(path, "rb") as f:
        for i, payload in enumerate(iter_records(f, str(path))):
            fx, row = parse_record(payload)
            fixed.setdefault(fx["hash"], fx)
            k = (row["hash"], row["epochs"])
            row["repeat"] = seen.get(k, 0)
            seen[k] = row["repeat"] + 1
            rows.append(row)
            if progress and i and i % 100_000 == 0:
                print(f"[seminas-tune] {path}: {i:,} records read", file=sys.stderr, flush=True)
    if not rows:
        raise TFRecordError(f"{path}: no records; is this a NAS-Bench-101 tfrecord?")
    return pd.DataFrame(list(fixed.values())).set_index("hash"), pd.DataFrame(rows)


def cache_path(path: str | Path) -> Path:
    return Path(str(path) + ".seminas.parquet")


def _write_atomic(frame: pd.DataFrame, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        digest = sha256_of(tmp)
        Path(tmp + ".sha").write_text(digest + "\n")
        os.replace(tmp + ".sha", str(dest) + ".sha256")
        os.replace(tmp, dest)
    finally:
        for leftover in (tmp, tmp + ".sha"):
            if os.path.exists(leftover):
                os.remove(leftover)


def load_official(path: str | Path) -> NASBench101Data:
    """NB-101 data from an official tfrecord (cached beside it) or from such a cache.

    Raises:
        FileNotFoundError, TFRecordError, DataChecksumError.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NAS-Bench-101 file not found: {path}")
    cache = path if path.name.endswith(".seminas.parquet") else cache_path(path)
    if not cache.exists():
        fixed, metrics = convert(path)
        merged = metrics.merge(fixed.reset_index(), on="hash", how="left")
        _write_atomic(merged, cache)
    sidecar = Path(str(cache) + ".sha256")
    if not sidecar.exists():
        raise FileNotFoundError(f"{cache}: checksum file {sidecar.name} is missing; delete the cache to rebuild it")
    verify_sha256(cache, sidecar.read_text().strip())
    merged = pd.read_parquet(cache)
    fixed = merged.drop_duplicates("hash").set_index("hash")[["n_vertices", "adjacency", "ops", "params"]]
    metrics = merged[
        ["hash", "epochs", "repeat", "train_accuracy", "validation_accuracy", "test_accuracy", "training_time"]
    ]
    return NASBench101Data(fixed, metrics.reset_index(drop=True), f"NB-101 official ({path.name})")


@functools.lru_cache(maxsize=4)
def load_nasbench101(path: str | None = None) -> NASBench101Data:
    """NB-101 data: the bundled 30,001-cell table (``path=None``), an official tfrecord, or a
    cache written from one (``*.seminas.parquet``).

    Raises:
        DataChecksumError: a bundled file or cache does not match its checksum.
        FileNotFoundError: ``path`` does not exist.
    """
    if path is None:
        table = pd.read_parquet(bundled_file("nb101_30k.parquet"))
        data = nb101_from_wide(table, "NB101-30k (bundled, nbvis)")
        data.source, data.loader = "bundled", (load_nasbench101, (None,))
        return data
    data = load_official(path)
    data.source, data.loader = str(path), (load_nasbench101, (path,))
    return data
