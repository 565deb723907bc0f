"""The weight-sharing protocol: concurrent trials keep the shared state correct, the store
survives its own death, and SemiNAS learns from scores taken on one supernet snapshot.

Real (tiny) data: scikit-learn's digits and an espeak-ng corpus; CPU only."""

import json
import uuid

import numpy as np
import pytest
import torch
from torch import nn

from seminas_tune.controller import ControllerConfig, EPDConfig
from seminas_tune.data.images import ImageDataConfig, write_digits_imagefolder
from seminas_tune.search import RegularizedEvolutionSearcher, SemiNASSearcher
from seminas_tune.supernet.image import ImageSupernetConfig, ImageSupernetTask
from seminas_tune.supernet.search import run_supernet_search
from seminas_tune.supernet.sharing import (
    SharingConfig,
    SupernetScorer,
    default_checkpoint_dir,
    path_schedule,
    run_shared_trial,
    supernet_from_store,
)

RES = 32
TINY = ControllerConfig(
    epd=EPDConfig(hidden=16, mlp_hidden=16), labeled_steps=5, joint_steps=5, batch_size=16, num_threads=1
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_imagefolder(tmp_path_factory.mktemp("digits"), resolution=RES)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def image_task(root) -> ImageSupernetTask:
    data = ImageDataConfig(
        root=str(root), resolution=RES, val_size=200, batch_size=32, num_workers=0, train_scale=(0.6, 1.0), hflip=False
    )
    return ImageSupernetTask(
        ImageSupernetConfig(data=data, width_mult=0.25, lr=0.1, bn_recal_batches=4, torch_threads=1, amp="none")
    )


def sharing(steps: int, **kw) -> SharingConfig:
    return SharingConfig(steps_per_trial=steps, store_name=f"test-{uuid.uuid4().hex[:8]}", **kw)


@torch.no_grad()
def accuracy(net: nn.Module, task: ImageSupernetTask) -> tuple[float, bool]:
    """(held-out accuracy, all logits finite) of a standalone network."""
    from seminas_tune.data.images import normalize

    correct = seen = 0
    finite = True
    for images, labels in task.loaders()[1]:
        logits = net(normalize(images))
        finite &= bool(torch.isfinite(logits).all())
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
    return correct / seen, finite


def test_pool_schedule_mixes_own_path_and_pool():
    pool = [("a",), ("b",), ("c",)]
    paths = path_schedule(("a",), pool, 400, 0.5, seed=0)
    own = sum(p == ("a",) for p in paths)
    assert 150 < own < 250 and {("b",), ("c",)} <= set(paths)
    assert path_schedule(("a",), [("a",)], 5, 0.5, seed=0) == [("a",)] * 5  # nothing else trained yet
    assert path_schedule(("a",), pool, 5, 0.0, seed=0) == [("a",)] * 5
    with pytest.raises(ValueError, match="pool_fraction"):
        SharingConfig(pool_fraction=1.5)


def test_store_scores_the_moving_average_and_checkpoints_it(ray_session, tmp_path):
    from seminas_tune.supernet.store import WeightStore

    init = {"w": torch.zeros(3), "v": torch.zeros(2), "bn.running_var": torch.full((2,), 0.3)}
    store = WeightStore.remote(init, str(tmp_path), 1, 0.5)
    for version in range(3):  # w: 1, 2, 3; average: 1 and 1.5 (plain mean; init never counts), then 2.25
        first_v = {"v": torch.full((2,), 4.0)} if version == 2 else {}  # first trained at the third push
        ray_session.get(store.push.remote({"w": torch.ones(3), **first_v}, version))
    version, snap = ray_session.get(store.snapshot.remote())
    assert version == 3 and torch.equal(snap["w"], torch.full((3,), 2.25))
    assert torch.equal(snap["v"], torch.full((2,), 4.0))  # its untrained start never counts either
    assert torch.equal(snap["bn.running_var"], init["bn.running_var"])  # never pushed: exactly the same
    assert torch.equal(ray_session.get(store.pull.remote())[1]["w"], torch.full((3,), 3.0))  # trials train these
    ray_session.kill(store)
    again = WeightStore.remote({}, str(tmp_path), 1, 0.5)  # restarted from the checkpoint, update count too
    assert torch.equal(ray_session.get(again.averaged.remote())["w"], torch.full((3,), 2.25))
    ray_session.get(again.push.remote({"w": torch.ones(3)}, 3))  # w: 4, average 0.5 * 2.25 + 0.5 * 4
    assert torch.equal(ray_session.get(again.averaged.remote())["w"], torch.full((3,), 3.125))
    ray_session.kill(again)
    off = WeightStore.remote({}, str(tmp_path), 1, 0.0)  # restarted with the average turned off
    assert torch.equal(ray_session.get(off.averaged.remote())["w"], torch.full((3,), 4.0))
    ray_session.kill(off)
    plain = WeightStore.remote(init, None, 1, 0.0)
    ray_session.get(plain.push.remote({"w": torch.ones(3)}, 0))
    assert torch.equal(ray_session.get(plain.snapshot.remote())[1]["w"], torch.ones(3))
    ray_session.kill(plain)
    with pytest.raises(ValueError, match="ema_decay must be in"):
        sharing(1, ema_decay=1.0)


def test_concurrent_trials_then_export_gives_finite_outputs_matching_the_path(ray_session, digits):
    """Two trials at once used to sum BN deltas into negative variances (NaN after export)."""
    task = image_task(digits)
    cfg = sharing(steps=30)
    rng = np.random.default_rng(0)
    archs = [task.space.sample(rng) for _ in range(2)]
    remote = ray_session.remote(num_cpus=1)(run_shared_trial)
    out = ray_session.get([remote.remote(task, cfg, task.space.to_config(a), f"t{i}") for i, a in enumerate(archs)])
    assert sorted(o["store_version"] for o in out) == [1, 2]
    supernet = supernet_from_store(task, cfg)
    fresh = dict(task.build().named_buffers())
    for name, buf in supernet.named_buffers():  # statistics are never pushed, so never summed
        assert torch.equal(buf, fresh[name]), name
    cpu = torch.device("cpu")
    for arch in archs:
        path_acc = task.evaluate(supernet, arch, cpu)["val_accuracy"]
        net = task.export(supernet, arch, cpu)
        variances = [m.running_var for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        assert variances and all(bool((v >= 0).all()) for v in variances)
        acc, finite = accuracy(net, task)
        assert finite
        assert abs(acc - path_acc) <= 0.01, (acc, path_acc)
    ray_session.kill(ray_session.get_actor(cfg.store_name, namespace=cfg.namespace))


def test_killed_store_restarts_from_its_last_checkpoint(ray_session, digits, tmp_path):
    class Recording(ImageSupernetTask):
        def train_paths(self, model, archs, device):
            start = model.stem[0][0].weight.detach().clone()
            return {**super().train_paths(model, archs, device), "start": start}

    task = Recording(image_task(digits).config)
    cfg = sharing(steps=2, checkpoint_dir=str(tmp_path / "supernet"), checkpoint_every=3)
    rng = np.random.default_rng(1)
    archs = [task.space.sample(rng) for _ in range(6)]
    trial = [run_shared_trial(task, cfg, task.space.to_config(a), f"t{i}") for i, a in enumerate(archs[:2])]
    scored = SupernetScorer(task, cfg, "val_accuracy")(archs[:2])
    assert scored["snapshot"] == 2 and len(scored["values"]) == 2  # snapshot 2 is checkpointed
    trial.append(run_shared_trial(task, cfg, task.space.to_config(archs[2]), "t2"))  # version 3: checkpointed
    trial.append(run_shared_trial(task, cfg, task.space.to_config(archs[3]), "t3"))  # version 4: not yet
    store = ray_session.get_actor(cfg.store_name, namespace=cfg.namespace)
    assert ray_session.get(store.info.remote())["snapshots"] == [2]
    ray_session.kill(store)  # dies mid-search

    after = run_shared_trial(task, cfg, task.space.to_config(archs[4]), "t4")
    assert after["base_version"] == 3 and after["store_version"] == 4
    torch.testing.assert_close(after["start"], trial[3]["start"], rtol=0, atol=0)  # the weights of version 3
    assert not torch.equal(after["start"], trial[0]["start"])  # not the initial weights
    snap = SupernetScorer(task, cfg, "val_accuracy")(archs[:5])
    info = ray_session.get(ray_session.get_actor(cfg.store_name, namespace=cfg.namespace).info.remote())
    assert snap["snapshot"] == 4 and info["lineage"] == [3] and info["snapshots"] == [2, 4]
    assert info["pool"] == 4  # archs[0..2] from the checkpoint, archs[4] since; archs[3] was lost with it
    ray_session.kill(ray_session.get_actor(cfg.store_name, namespace=cfg.namespace))


def test_a_scorer_without_its_own_checkpoint_dir_looks_in_the_experiments_folder(digits, tmp_path):
    """What a searcher hands its scorer once Tune reveals the experiment's folder: where that
    experiment's trials checkpoint the store (the resume test below runs it end to end)."""
    task, cfg = image_task(digits), sharing(steps=1)
    scorer = SupernetScorer(task, cfg, "val_accuracy")
    bound = scorer.in_experiment(str(tmp_path))
    assert (
        bound.sharing.checkpoint_dir
        == default_checkpoint_dir(tmp_path, cfg)
        == str(tmp_path / "supernet" / cfg.store_name)
    )
    assert scorer.sharing.checkpoint_dir is None and bound.sharing.store_name == cfg.store_name
    own = SupernetScorer(task, sharing(steps=1, checkpoint_dir=str(tmp_path / "mine")), "val_accuracy")
    assert own.in_experiment(str(tmp_path)) is own  # an explicit folder wins


def test_a_scorer_restarts_a_dead_store_from_the_folder_its_searcher_knows(ray_session, digits, tmp_path):
    """No store running and a scorer without a ``checkpoint_dir`` (after a resume on a new
    cluster, before any trial): the re-scoring fails until the searcher knows the experiment's
    folder, then restarts the store from the trials' checkpoint there."""
    from tests.test_searcher_contract import SMALL

    task, cfg = image_task(digits), sharing(steps=1, checkpoint_every=1)
    rng = np.random.default_rng(3)
    configs = [task.space.to_config(task.space.sample(rng)) for _ in range(2)]
    for i, c in enumerate(configs):  # what the experiment's trials do: checkpoint beside themselves
        run_shared_trial(task, cfg, c, f"t{i}", default_checkpoint_dir(tmp_path, cfg))
    ray_session.kill(ray_session.get_actor(cfg.store_name, namespace=cfg.namespace))
    s = SemiNASSearcher(
        space=task.space,
        metric="val_accuracy",
        mode="max",
        max_queries=6,
        background="inline",
        rescore=SupernetScorer(task, cfg, "val_accuracy"),
        **SMALL["seminas"],
    )
    for c in configs:
        s.add_evaluated_point(c, {"val_accuracy": 0.5})
    with pytest.raises(LookupError, match="no checkpoint"):
        s.labels_ready()
    s.experiment_dir = str(tmp_path)
    assert s.labels_ready() and s.rescore_history[-1]["snapshot"] == 2
    info = ray_session.get(ray_session.get_actor(cfg.store_name, namespace=cfg.namespace).info.remote())
    assert info["lineage"] == [2]  # restarted from the checkpoint of version 2
    ray_session.kill(ray_session.get_actor(cfg.store_name, namespace=cfg.namespace))


def test_seminas_learns_from_the_rescored_values_not_the_trials(nb201_like_space=None):
    space = {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3], "c": [0, 1, 2, 3]}
    from ray import tune

    param_space = {k: tune.choice(v) for k, v in space.items()}
    calls = []

    def rescore(archs):
        calls.append(len(archs))
        return {"values": [float(sum(a)) for a in archs], "snapshot": len(calls)}

    searcher = SemiNASSearcher(
        space=param_space,
        metric="acc",
        mode="max",
        max_queries=16,
        seed=0,
        num_initial=6,
        num_new=5,
        top_k=5,
        num_unlabeled=20,
        controller=TINY,
        background="inline",
        rescore=rescore,
    )
    for i in range(40):
        config = searcher.suggest(f"t{i}")
        if config == searcher.FINISHED:
            break
        if config is not None:
            searcher.on_trial_complete(f"t{i}", {"acc": -float(config["a"])})  # provisional, misleading
    assert searcher.iteration == 2 and calls == [6, 11]  # the whole pool, before each round
    values = {o.key: o.value for o in searcher.results()}
    rescored = [o for o in searcher.observations if o.key in searcher._rescored]
    assert len(rescored) == 11 and all(values[o.key] == float(sum(o.arch)) for o in rescored)
    history = searcher.rescore_history
    assert [h["snapshot"] for h in history] == [1, 2] and history[1]["tau_vs_previous"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="does not re-score"):
        RegularizedEvolutionSearcher(space=param_space, metric="acc", mode="max", rescore=rescore)


def test_seminas_through_tuner_on_the_image_supernet(ray_session, digits, tmp_path):
    task = image_task(digits)
    cfg = sharing(steps=4)
    searcher = SemiNASSearcher(
        space=task.space,
        metric="val_accuracy",
        mode="max",
        max_queries=8,
        num_initial=4,
        num_new=2,
        top_k=4,
        num_unlabeled=20,
        controller=TINY,
        rescore=SupernetScorer(task, cfg, "val_accuracy"),
    )
    out = run_supernet_search(
        task,
        cfg,
        metric="val_accuracy",
        mode="max",
        num_trials=8,
        searcher=searcher,
        gpus_per_trial=0,
        max_concurrent_trials=2,
        storage_path=str(tmp_path),
    )
    assert out.results.num_errors == 0 and len(out.results) == 8
    assert out.searcher.iteration >= 2 and len(out.searcher.rescore_history) >= 2
    assert [h["archs"] for h in out.searcher.rescore_history[:2]] == [4, 6]
    assert len(out.ranking) == 8 and out.snapshot == 8
    values = [v for _, v in out.ranking]
    assert values == sorted(values, reverse=True)
    checkpoint = tmp_path / cfg.store_name / "supernet" / cfg.store_name / "supernet.pt"
    assert checkpoint.exists()  # in the experiment's storage, beside the trials
    arch, value = out.best
    net = task.export(supernet_from_store(task, cfg), arch, torch.device("cpu"))
    acc, finite = accuracy(net, task)
    assert finite and abs(acc - value) <= 0.01
    ray_session.kill(ray_session.get_actor(cfg.store_name, namespace=cfg.namespace))


@pytest.mark.slow  # two processes, each starting Ray: about a minute
def test_an_interrupted_supernet_search_resumes_from_its_checkpoint(digits, tmp_path):
    """Ctrl-C part-way, then the same call in a new process (a new Ray cluster, so no store
    actor): the search continues from Tune's state and the supernet from its last checkpoint."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    job = [sys.executable, str(Path(__file__).with_name("supernet_resume_job.py")), str(digits), str(tmp_path)]

    def summary(out: str) -> dict:
        lines = [ln for ln in out.splitlines() if ln.startswith("SUMMARY ")]
        assert lines, out[-3000:]
        return json.loads(lines[-1][len("SUMMARY ") :])

    p = subprocess.Popen(job, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = time.monotonic()
    while sum(f.stat().st_size > 0 for f in tmp_path.glob("resume-test/*/result.json")) < 3:
        assert p.poll() is None and time.monotonic() - start < 240, p.communicate()[0][-3000:]
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    first = summary(p.communicate(timeout=180)[0])
    assert 3 <= first["finished"] < 10 and first["lineage"] == []

    done = subprocess.run(job, capture_output=True, text=True, timeout=300)
    second = summary(done.stdout + done.stderr)
    assert done.returncode == 0
    assert second["finished"] == second["distinct"] == 10  # no architecture evaluated twice
    assert set(first["trials"]) <= set(second["trials"])  # the first process's trials are kept
    assert second["lineage"] == [first["version"]]  # the store came back from the last checkpoint
    new = sorted(set(second["base_versions"]) - set(first["base_versions"]))
    assert new and new[0] >= first["version"]  # no new trial started from the initial weights
    assert second["rounds"] >= 2
    assert first["experiment_dir"] == second["experiment_dir"] == str(tmp_path / "resume-test")  # told the scorer


def test_resuming_with_other_settings_is_refused_before_anything_runs(tmp_path):
    """The record a supernet search leaves in its experiment folder: the same call resumes, a
    changed searcher setting or trial count is one clear error."""
    from seminas_tune.spaces import NASBench201Space
    from seminas_tune.supernet.search import RECORD, check_same_search, search_record

    def record(num_trials=10, **kw):
        s = SemiNASSearcher(space=NASBench201Space(), metric="acc", mode="max", max_queries=num_trials, **kw)
        return search_record(s, num_trials, "acc", "max")

    check_same_search(str(tmp_path), record())  # no record: a folder Tune wrote alone
    (tmp_path / RECORD).write_text(json.dumps(record()))
    check_same_search(str(tmp_path), record())
    with pytest.raises(ValueError, match=r"other settings \(num_new 10\); call again with those, pass resume=False"):
        check_same_search(str(tmp_path), record(num_new=4))
    with pytest.raises(ValueError, match=r"num_trials 10, max_queries 10"):
        check_same_search(str(tmp_path), record(num_trials=20))
