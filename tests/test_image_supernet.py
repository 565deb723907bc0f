"""Image supernet on real (tiny) data: the digits ImageFolder, weight sharing through Ray and Tune,
BN recalibration, export round trip, and the NAS-Bench-101 network builder."""

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seminas_tune.data.images import (
    EvalTransform,
    ImageDataConfig,
    TrainTransform,
    holdout_split,
    make_loaders,
    scan_image_folder,
    write_digits_imagefolder,
)
from seminas_tune.nasbench.api import ModelSpec, OutOfDomainError
from seminas_tune.spaces.mobilenetv2 import MB_OPS
from seminas_tune.supernet.image import (
    ImageSupernetConfig,
    ImageSupernetTask,
    export_arch,
    lr_at,
    recalibrate_bn,
    supernet_from_store,
)
from seminas_tune.supernet.nb101_net import build_nb101_network
from seminas_tune.supernet.sharing import SharingConfig, run_shared_trial

RES = 32
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits_imagefolder(tmp_path_factory.mktemp("digits"), resolution=RES)


def task_config(root, **kw) -> ImageSupernetConfig:
    data = ImageDataConfig(
        root=str(root), resolution=RES, val_size=200, batch_size=32, num_workers=0, train_scale=(0.6, 1.0), hflip=False
    )
    return ImageSupernetConfig(data=data, width_mult=0.25, lr=0.1, bn_recal_batches=4, torch_threads=1, **kw)


def sharing(steps: int) -> SharingConfig:
    return SharingConfig(steps_per_trial=steps, store_name=f"test-{uuid.uuid4().hex[:8]}")


# -- data --------------------------------------------------------------------------------------
def test_digits_imagefolder_and_split(digits):
    classes, train = scan_image_folder(str(digits / "train"))
    _, test = scan_image_folder(str(digits / "val"))
    assert classes == tuple(str(d) for d in range(10))
    assert len(train) + len(test) == 1797 and abs(len(test) - 359) <= 1
    cfg = ImageDataConfig(root=str(digits), resolution=RES, val_size=200)
    fit, held = holdout_split(cfg)
    assert len(held) == 200 and len(fit) == len(train) - 200
    assert not {p for p, _ in fit} & {p for p, _ in held}
    assert held == holdout_split(cfg)[1]  # seeded
    assert {lbl for _, lbl in held} == set(range(10))
    assert write_digits_imagefolder(digits, resolution=RES) == digits  # reused, not rewritten


def test_loaders_and_transforms(digits):
    from PIL import Image

    img = Image.new("RGB", (50, 30), (255, 0, 0))
    out = TrainTransform(24, scale=(0.5, 1.0))(img)
    assert out.dtype == torch.uint8 and out.shape == (3, 24, 24) and int(out[0].min()) == 255
    assert EvalTransform(24)(img).shape == (3, 24, 24)
    cfg = ImageDataConfig(root=str(digits), resolution=RES, val_size=200, batch_size=16, num_workers=0)
    train, val = make_loaders(cfg, shuffle_seed=0)
    x, y = next(iter(train))
    assert x.shape == (16, 3, RES, RES) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert sum(len(b[1]) for b in val) == 200
    other = next(iter(make_loaders(cfg, shuffle_seed=1)[0]))[1]
    assert not torch.equal(y, other)  # another seed, other batches


def test_bad_data_settings_raise(tmp_path, digits):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_image_folder(str(tmp_path / "nope"))
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no images"):
        scan_image_folder(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="val_size"):
        holdout_split(ImageDataConfig(root=str(digits), val_size=10_000))
    with pytest.raises(ValueError, match="lr_schedule must be 'constant' or 'cosine'"):
        task_config(digits, lr_schedule="linear")


def test_cosine_schedule_anneals_each_training_call_to_zero(digits):
    cfg = task_config(digits, lr_schedule="cosine")
    rates = [lr_at(cfg, step, 10) for step in range(10)]
    assert rates[0] == cfg.lr and rates[5] == pytest.approx(cfg.lr / 2)
    assert all(b < a for a, b in zip(rates, rates[1:])) and rates[-1] < 0.03 * cfg.lr
    assert {lr_at(task_config(digits), step, 10) for step in range(10)} == {cfg.lr}


# -- supernet ----------------------------------------------------------------------------------
def test_single_path_trains_only_its_ops_and_exports_exactly(digits):
    task = ImageSupernetTask(task_config(digits))
    rng = np.random.default_rng(0)
    arch = task.space.sample(rng)
    model = task.build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = task.train_path(model, arch, steps=3, device=torch.device("cpu"))
    assert np.isfinite(metrics["train_loss"])
    used = {id(p) for p in model.path_parameters(arch)}
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) != (id(p) in used), name
    model.eval()
    x = torch.randn(5, 3, RES, RES)
    net = export_arch(model, arch).eval()
    assert not any("layers.0.mb_" in k for k in net.state_dict())  # plain, no supernet structure
    with torch.no_grad():
        torch.testing.assert_close(net(x), model(x, arch), rtol=1e-5, atol=1e-6)
        net.to(memory_format=torch.channels_last)  # the trained supernet's layout: bit-identical
        torch.testing.assert_close(net(x), model(x, arch), rtol=0, atol=0)
    assert sum(p.numel() for p in net.parameters()) == task.space.params(arch)
    assert torch.equal(task.build().stem[0][0].weight, task.build().stem[0][0].weight)  # deterministic


def test_bn_recalibration_is_the_average_over_batches(digits):
    task = ImageSupernetTask(task_config(digits))
    model = task.build()
    arch = task.space.sample(np.random.default_rng(1))
    batches = [torch.randn(8, 3, RES, RES) * s + s for s in (1.0, 2.0, 3.0)]
    bn = model.stem[0][1]
    bn.running_mean.fill_(100.0)
    other = model.layers[5][next(op for op in MB_OPS if op != arch[5])].block[0][1]
    other.running_mean.fill_(7.0)
    n = recalibrate_bn(model, model.path_modules(arch), batches, lambda b: model(b, arch))
    assert n == 3 and not model.training
    with torch.no_grad():
        per_batch = [model.stem[0][0](b).mean((0, 2, 3)) for b in batches]
    torch.testing.assert_close(bn.running_mean, torch.stack(per_batch).mean(0), rtol=1e-4, atol=1e-4)
    assert bn.momentum == 0.1
    assert torch.all(other.running_mean == 7.0)  # off-path BN untouched


def test_later_trial_starts_from_weights_an_earlier_trial_trained(ray_session, digits):
    class Recording(ImageSupernetTask):
        def train_paths(self, model, archs, device):
            start = model.stem[0][0].weight.detach().clone()
            out = super().train_paths(model, archs, device)
            return {**out, "start": start, "end": model.stem[0][0].weight.detach().clone()}

    task = Recording(task_config(digits))
    cfg = sharing(steps=2)
    rng = np.random.default_rng(2)
    a, b = task.space.sample(rng), task.space.sample(rng)
    first = run_shared_trial(task, cfg, task.space.to_config(a), "first")
    second = run_shared_trial(task, cfg, task.space.to_config(b), "second")
    assert (first["base_version"], first["store_version"]) == (0, 1)
    assert (second["base_version"], second["store_version"]) == (1, 2)
    assert not torch.equal(first["start"], first["end"])
    torch.testing.assert_close(second["start"], first["end"], rtol=0, atol=1e-6)
    assert 0.0 <= second["val_accuracy"] <= 1.0 and second["val_images"] == 200
    assert second["flops"] == task.space.flops(b) and second["params"] == task.space.params(b)
    store = ray_session.get_actor(cfg.store_name, namespace=cfg.namespace)
    torch.testing.assert_close(
        ray_session.get(store.pull.remote())[1]["stem.0.0.weight"], second["end"], rtol=0, atol=1e-6
    )
    averaged = supernet_from_store(task, cfg).stem[0][0].weight  # what is scored: the mean of the two trials'
    torch.testing.assert_close(averaged, 0.5 * first["end"] + 0.5 * second["end"], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="layer_00=.zero. is not one of"):
        bad = {**task.space.to_config(a), "layer_00": "zero"}
        run_shared_trial(task, cfg, bad)
    with pytest.raises(LookupError, match="no WeightStore"):
        supernet_from_store(task, sharing(1))


def test_tune_run_on_digits_shares_weights_and_reports(ray_session, digits):
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from trainables.image_supernet import image_supernet_trainable, trial_resources

    cfg = task_config(digits)
    task = ImageSupernetTask(cfg)
    share = sharing(steps=6)
    tuner = tune.Tuner(
        image_supernet_trainable(cfg, share, gpus_per_trial=0),
        param_space=task.space.tune_space(),
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(random_state=0),
            num_samples=3,
            max_concurrent_trials=2,
            metric="val_accuracy",
            mode="max",
            reuse_actors=True,
        ),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 3
    df = results.get_dataframe()
    assert sorted(df["store_version"]) == [1, 2, 3]  # every push landed
    assert df["base_version"].max() >= 1  # some trial started from weights trained before it
    for _, row in df.iterrows():
        arch = task.space.arch_of({k[len("config/") :]: v for k, v in row.items() if k.startswith("config/")})
        assert row["flops"] == task.space.flops(arch) and row["params"] == task.space.params(arch)
        assert 0.0 <= row["val_accuracy"] <= 1.0
    best = results.get_best_result()
    net = export_arch(supernet_from_store(task, share), task.space.arch_of(best.config))
    assert sum(p.numel() for p in net.parameters()) == best.metrics["params"]
    with pytest.raises(ValueError, match="no GPU"):
        trial_resources(gpus_per_trial=0.5)


def test_seminas_searcher_respects_the_flops_bound(digits):
    """Random phase and controller generation (3 rounds) both stay under the bound."""
    from seminas_tune import SemiNASSearcher
    from seminas_tune.controller import ControllerConfig, EPDConfig

    space = ImageSupernetTask(task_config(digits)).space
    rng = np.random.default_rng(4)
    bound = float(np.percentile([space.flops(space.sample(rng)) for _ in range(300)], 30))
    tiny = ControllerConfig(
        epd=EPDConfig(hidden=16, mlp_hidden=16), labeled_steps=5, joint_steps=5, batch_size=32, num_threads=1
    )
    searcher = SemiNASSearcher(
        space=space,
        metric="val_accuracy",
        mode="max",
        max_queries=20,
        seed=0,
        max_flops=bound,
        num_initial=5,
        num_new=5,
        top_k=5,
        num_unlabeled=50,
        controller=tiny,
        background="inline",
    )
    flops = []
    for i in range(40):
        config = searcher.suggest(f"t{i}")
        if config == searcher.FINISHED:
            break
        if config is not None:
            flops.append(space.flops(space.arch_of(config)))
            searcher.on_trial_complete(f"t{i}", {"val_accuracy": float(rng.random())})
    assert len(flops) == 20 and max(flops) <= bound  # 70 % of random architectures exceed it
    assert searcher.iteration == 3


@pytest.mark.gpu
def test_cuda_bf16_path_step_and_export(digits):
    task = ImageSupernetTask(task_config(digits))
    arch = task.space.sample(np.random.default_rng(5))
    model = task.build().cuda()
    metrics = task.train_path(model, arch, steps=3, device=torch.device("cuda"))
    out = task.evaluate(model, arch, torch.device("cuda"))
    assert np.isfinite(metrics["train_loss"]) and 0 <= out["val_accuracy"] <= 1
    x = torch.randn(4, 3, RES, RES, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(export_arch(model, arch).eval()(x), model(x, arch))


# -- NAS-Bench-101 network ------------------------------------------------------------------------
def _spec(row) -> ModelSpec:
    n = int(row["n_vertices"])
    m = np.zeros((n, n), dtype=int)
    m[np.triu_indices(n, 1)] = [int(c) for c in row["adjacency"]]
    return ModelSpec(m, row["ops"].split(","))


def test_nb101_network_matches_the_benchmark_parameter_counts():
    df = pd.read_parquet(
        REPO / "seminas_tune" / "data" / "nb101_30k.parquet", columns=["n_vertices", "adjacency", "ops", "params"]
    ).dropna()
    rows = [df.iloc[i] for i in np.random.default_rng(0).choice(len(df), 6, replace=False)]
    rows += [df[df["n_vertices"] == n].iloc[0] for n in (2, 3, 4)]
    for row in rows:
        net = build_nb101_network(_spec(row), num_classes=10)
        assert sum(p.numel() for p in net.parameters()) == int(row["params"]), row["ops"]
    small = build_nb101_network(_spec(rows[0]), num_classes=7, stem_channels=16)
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(OutOfDomainError):
        build_nb101_network(ModelSpec([[0, 0], [0, 0]], ["input", "output"]))
