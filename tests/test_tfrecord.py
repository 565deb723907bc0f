"""The official NAS-Bench-101 tfrecord reader, on a small file in the official layout.

The fixture is GENERATED: a tfrecord built here from 20 REAL rows of the shared NB-101 table
(``shared/nasbench101/nb101_30k.parquet``: graph, hash, parameters, and the real validation
accuracy / training time of one training run at 108 and 12 epochs). The official file has 3
training repeats per cell; only one is real here, so the other two repeats' values, every test
and train accuracy, and the epoch-0 and halfway evaluations are generated (deterministic, near
the real value). Each record is the official JSON list ``[module_hash, epochs, adjacency,
operations, base64 ModelMetrics]`` (google-research/nasbench ``model_metrics.proto``) in the
tfrecord framing.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seminas_tune.data import DataChecksumError, load_nasbench101
from seminas_tune.data.tfrecord import (
    TFRecordError,
    cache_path,
    load_official,
    model_metrics_class,
    write_records,
)
from seminas_tune.nasbench import api

SHARED = Path(__file__).parents[1].parent / "shared" / "nasbench101"
TABLE = SHARED / "nb101_30k.parquet"
pytestmark = pytest.mark.skipif(not TABLE.exists(), reason=f"shared data not found at {TABLE}")

N_CELLS, N_REPEATS = 20, 3


def _rows() -> pd.DataFrame:
    t = pd.read_parquet(TABLE)
    t = t[t["source"] != "naslib-zc"]  # rows with params and training time
    return t.iloc[:: len(t) // N_CELLS][:N_CELLS]


def _full_matrix_string(n: int, bits: str) -> str:
    m = np.zeros((n, n), dtype=int)
    m[np.triu_indices(n, 1)] = [int(c) for c in bits]
    return "".join(str(b) for b in m.ravel())


def _record(row, epochs: int, repeat: int) -> tuple[bytes, dict]:
    """One record; returns (payload, the final values written)."""
    rng = np.random.default_rng([int(row.hash[:8], 16), epochs, repeat])
    real_val = row.val_acc_108 if epochs == 108 else row.val_acc_12
    real_time = row.train_time_108 if epochs == 108 else row.train_time_108 * epochs / 108
    val = real_val if repeat == 0 else float(np.clip(real_val + rng.normal(0, 0.003), 0, 1))
    final = {
        "current_epoch": float(epochs),
        "training_time": float(real_time if repeat == 0 else real_time * rng.uniform(0.97, 1.03)),
        "train_accuracy": float(min(1.0, val + 0.05)),
        "validation_accuracy": float(val),
        "test_accuracy": float(np.clip(val - 0.005 + rng.normal(0, 0.002), 0, 1)),
    }
    msg = model_metrics_class()()
    for frac in (0.0, 0.5):  # epoch 0 and halfway, then the final evaluation
        ev = msg.evaluation_data.add()
        ev.current_epoch = epochs * frac
        ev.training_time = final["training_time"] * frac
        ev.train_accuracy = ev.validation_accuracy = ev.test_accuracy = 0.1 + frac * val
    ev = msg.evaluation_data.add()
    for k, v in final.items():
        setattr(ev, k, v)
    msg.trainable_parameters = int(row.params)
    msg.total_time = final["training_time"] * 1.05
    payload = json.dumps(
        [
            row.hash,
            epochs,
            _full_matrix_string(row.n_vertices, row.adjacency),
            row.ops,
            base64.b64encode(msg.SerializeToString()).decode("ascii"),
        ]
    ).encode("utf-8")
    return payload, final


@pytest.fixture(scope="module")
def fixture_records():
    rows = _rows()
    payloads, truth = [], {}
    for repeat in range(N_REPEATS):  # the official files interleave repeats of many cells
        for row in rows.itertuples():
            for epochs in (108, 12):
                p, final = _record(row, epochs, repeat)
                payloads.append(p)
                truth[(row.hash, epochs, repeat)] = final
    return rows, payloads, truth


@pytest.fixture()
def tfrecord(tmp_path, fixture_records) -> Path:
    path = tmp_path / "nasbench_mini.tfrecord"
    write_records(path, fixture_records[1])
    return path


def _spec(row) -> api.ModelSpec:
    n = int(row.n_vertices)
    m = np.zeros((n, n), dtype=int)
    m[np.triu_indices(n, 1)] = [int(c) for c in row.adjacency]
    return api.ModelSpec(m, row.ops.split(","))


def test_load_writes_cache_and_queries_the_records(tfrecord, fixture_records):
    rows, _, truth = fixture_records
    nb = api.NASBench(str(tfrecord), seed=0)
    cache = cache_path(tfrecord)
    assert cache.exists() and Path(str(cache) + ".sha256").exists()
    assert not [p for p in tfrecord.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(list(nb.hash_iterator())) == N_CELLS
    assert nb.valid_epochs == {12, 108}
    row = next(rows.itertuples())
    fixed, computed = nb.get_metrics_from_hash(row.hash)
    assert fixed["trainable_parameters"] == int(row.params)
    assert fixed["module_operations"] == row.ops.split(",")
    assert len(computed[108]) == N_REPEATS
    for r, run in enumerate(computed[108]):  # the final evaluation of each repeat, in file order
        assert run["final_validation_accuracy"] == pytest.approx(truth[(row.hash, 108, r)]["validation_accuracy"])
        assert run["final_test_accuracy"] == pytest.approx(truth[(row.hash, 108, r)]["test_accuracy"])
    assert computed[108][0]["final_validation_accuracy"] == pytest.approx(row.val_acc_108)  # the real value
    data = nb.query(_spec(row))
    assert data["test_accuracy"] is not None and 0 < data["test_accuracy"] < 1
    assert data["trainable_parameters"] == int(row.params)
    vals = {truth[(row.hash, 108, r)]["validation_accuracy"] for r in range(N_REPEATS)}
    assert min(abs(data["validation_accuracy"] - v) for v in vals) < 1e-9


def test_query_draws_among_repeats_seeded(tfrecord, fixture_records):
    rows, _, truth = fixture_records
    row = next(rows.itertuples())
    spec = _spec(row)

    def draws(seed):
        nb = api.NASBench(str(tfrecord), seed=seed)
        return [nb.query(spec)["validation_accuracy"] for _ in range(30)]

    a, b, c = draws(1), draws(1), draws(2)
    assert a == b  # same seed, same draws
    assert a != c
    repeats = [truth[(row.hash, 108, r)]["validation_accuracy"] for r in range(N_REPEATS)]
    assert set(np.round(a, 9)) == set(np.round(repeats, 9))  # all three repeats get drawn


def test_second_load_reads_the_cache(tfrecord):
    first = load_official(tfrecord)
    cache = cache_path(tfrecord)
    stamp = cache.stat().st_mtime_ns
    tfrecord.write_bytes(tfrecord.read_bytes()[:100])  # the tfrecord is now unreadable ...
    second = load_official(tfrecord)  # ... so this can only come from the cache
    assert cache.stat().st_mtime_ns == stamp
    assert second.hashes == first.hashes
    pd.testing.assert_frame_equal(second.metrics, first.metrics)
    assert second.has_test
    # the cache can also be given directly
    assert load_official(cache).hashes == first.hashes


def test_truncated_file_raises_and_leaves_no_cache(tmp_path, fixture_records):
    path = tmp_path / "truncated.tfrecord"
    write_records(path, fixture_records[1])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    with pytest.raises(TFRecordError, match="truncated record at byte"):
        load_nasbench101(str(path))
    path.write_bytes(data[: len(data) - len(fixture_records[1][-1]) - 16 + 5])  # cut inside a header
    with pytest.raises(TFRecordError, match="truncated record header"):
        load_official(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["truncated.tfrecord"]


def test_flipped_byte_fails_the_crc_and_leaves_no_cache(tmp_path, fixture_records):
    path = tmp_path / "flipped.tfrecord"
    write_records(path, fixture_records[1])
    good = path.read_bytes()
    first_len = len(fixture_records[1][0])
    # a byte inside the second record's payload
    data = bytearray(good)
    pos = 12 + first_len + 4 + 12 + 40
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(TFRecordError, match=f"bad data CRC at byte {12 + first_len + 4}.*corrupt"):
        load_official(path)
    # a byte of the first record's length field
    data = bytearray(good)
    data[0] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(TFRecordError, match="bad length CRC at byte 0"):
        load_official(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flipped.tfrecord"]


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.tfrecord"
    path.write_bytes(b"")
    with pytest.raises(TFRecordError, match="no records"):
        load_official(path)
    assert not cache_path(path).exists()


def test_tampered_cache_raises_checksum_error(tfrecord):
    load_official(tfrecord)
    cache = cache_path(tfrecord)
    frame = pd.read_parquet(cache)
    frame.loc[0, "validation_accuracy"] = 0.999  # a plausible-looking edit
    frame.to_parquet(cache, index=False)
    with pytest.raises(DataChecksumError, match="does not match the recorded"):
        load_official(tfrecord)
    shutil.copy(cache, cache.with_name("copy.seminas.parquet"))
    with pytest.raises(FileNotFoundError, match="checksum file"):
        load_official(cache.with_name("copy.seminas.parquet"))


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_official(tmp_path / "nope.tfrecord")
