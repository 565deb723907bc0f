"""Bad input gives one clear error, through the public entry points (Tune runs, the CLI, the
data loaders).

Covered elsewhere and not repeated here: a bad ``mode`` or a config with missing keys given to
a searcher's constructor, the metric missing from a result handed to ``on_trial_complete``,
corrupt and foreign checkpoints given to ``Searcher.restore``
(tests/test_searcher_contract.py); a GPU asked of ``trial_resources`` on a GPU-less cluster
(tests/test_image_supernet.py); ``verify_sha256`` on a corrupted copy (tests/test_spaces.py).
"""

from __future__ import annotations

import shutil

import pytest
from ray import tune

from seminas_tune.data import DataChecksumError
from seminas_tune.search import CheckpointError
from seminas_tune.spaces import InvalidConfigError
from tests.test_searcher_contract import make
from trainables import nasbench101_trainable
from trainables.nasbench import evaluate_nasbench101, nasbench201_space


def _tuner(trainable, searcher, tmp_path, name="bad", **tune_kw):
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, **tune_kw),
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), name=name, verbose=0, failure_config=tune.FailureConfig(fail_fast=True)
        ),
    )


def test_metric_missing_from_results_fails_the_run(ray_session, tmp_path):
    def reports_other_metric(config):
        tune.report({"accuracy": evaluate_nasbench101(config)["val_accuracy"]})

    with pytest.raises(Exception, match="val_accuracy"):
        _tuner(reports_other_metric, make("re", max_queries=3), tmp_path).fit()


def test_invalid_mode_in_tune_config(ray_session, tmp_path):
    with pytest.raises(ValueError, match="mode"):
        _tuner(nasbench101_trainable, make("re", max_queries=3), tmp_path, metric="val_accuracy", mode="maximise").fit()


def test_warm_start_from_another_space_names_the_keys():
    """A config that does not match the space (here an NB-201 one into an NB-101 searcher)."""
    import numpy as np

    nb201 = nasbench201_space()
    foreign = nb201.to_config(nb201.sample(np.random.default_rng(0)))
    s = make("seminas")
    with pytest.raises(InvalidConfigError, match="missing keys"):
        s.add_evaluated_points([(foreign, 0.9)])


def test_restore_with_a_corrupt_searcher_checkpoint(ray_session, tmp_path):
    """Tuner.restore over a damaged searcher checkpoint: with ``fail_fast`` the searcher's
    CheckpointError surfaces (without it, Tune logs "Failed to restore the run state" and
    restarts the experiment: see docs/reliability.md)."""
    _tuner(
        nasbench101_trainable,
        make("re", max_queries=2, background="auto"),
        tmp_path,
        name="exp",
        metric="val_accuracy",
        mode="max",
    ).fit()
    exp = tmp_path / "exp"
    [ckpt] = exp.glob("searcher-state-*.pkl")
    ckpt.write_bytes(b"\x80\x04 garbage")
    with pytest.raises(CheckpointError, match="corrupt searcher checkpoint"):
        tune.Tuner.restore(str(exp), trainable=nasbench101_trainable).fit()


def test_restore_into_another_searcher_class(tmp_path):
    """A foreign checkpoint found in an experiment dir, loaded with ``restore_from_dir``."""
    other = make("random")
    other.save_to_dir(str(tmp_path), session_str="s")
    with pytest.raises(CheckpointError, match="belongs to RandomSearcher"):
        make("seminas").restore_from_dir(str(tmp_path))


def test_cli_gpu_on_a_gpu_less_cluster_exits_with_a_message(ray_session, tmp_path):
    from seminas_tune.cli import main

    if ray_session.cluster_resources().get("GPU", 0) >= 1:
        pytest.skip("this cluster has a GPU")
    with pytest.raises(SystemExit, match="no GPU"):
        main(["search", "--gpu", "--budget", "2", "--storage-path", str(tmp_path)])


def test_bundled_table_with_a_wrong_checksum_is_refused(tmp_path, monkeypatch):
    from seminas_tune.data import load_nasbench101, tables

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(tables.PACKAGE_DATA / "SHA256SUMS", data / "SHA256SUMS")
    blob = bytearray((tables.PACKAGE_DATA / "nb101_30k.parquet").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (data / "nb101_30k.parquet").write_bytes(bytes(blob))
    monkeypatch.setattr(tables, "PACKAGE_DATA", data)
    with pytest.raises(DataChecksumError, match="does not match"):
        load_nasbench101()
