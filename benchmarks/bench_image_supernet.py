"""Image supernet speed: single-path training vs. the same architecture built static, and eval time.

Measures, on one device:
  * img/s of one SGD training step (forward, backward, update) of one architecture's path through
    the weight-sharing supernet, and of the same architecture built as a standalone network
    (target: supernet >= 90 % of static), bf16 autocast and channels-last on CUDA;
  * the time to evaluate one architecture on ``--eval-images`` images: BN recalibration on
    ``--recal-batches`` training batches, then inference (synthetic images already on the device,
    so this is compute time; pass ``--data`` to time the real ImageFolder path instead).

Prints a table and writes ``benchmarks/results/bench_image_supernet[_smoke].{json,md}``.

    python benchmarks/bench_image_supernet.py            # GPU: batch 256, 224 px, bf16
    python benchmarks/bench_image_supernet.py --smoke    # tiny CPU check that the script works
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seminas_tune.data.images import ImageDataConfig, normalize
from seminas_tune.spaces.mobilenetv2 import MobileNetV2Space
from seminas_tune.supernet.image import (
    ImageSupernet,
    ImageSupernetConfig,
    ImageSupernetTask,
    MobileNetV2Net,
    autocast,
    recalibrate_bn,
)

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class BenchConfig:
    """What to measure (defaults: the GPU configuration of the issue)."""

    batch: int = 256
    resolution: int = 224
    width_mult: float = 1.0
    num_classes: int = 1000
    steps: int = 30
    warmup: int = 10
    rounds: int = 3
    eval_images: int = 10_000
    eval_batch: int = 500
    recal_batches: int = 10
    amp: str = "bf16"
    arch_seed: int = 0
    data: str | None = None
    device: str = "auto"
    smoke: bool = False


SMOKE = dict(
    batch=8,
    resolution=32,
    width_mult=0.35,
    num_classes=10,
    steps=3,
    warmup=1,
    rounds=1,
    eval_images=64,
    eval_batch=32,
    recal_batches=2,
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_throughput(forward: Callable, params: list, cfg: BenchConfig, device: torch.device) -> float:
    """Images per second of ``cfg.steps`` SGD steps after ``cfg.warmup`` untimed ones."""
    images = torch.randint(0, 256, (cfg.batch, 3, cfg.resolution, cfg.resolution), dtype=torch.uint8, device=device)
    labels = torch.randint(0, cfg.num_classes, (cfg.batch,), device=device)
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    def step():
        x = normalize(images).contiguous(memory_format=torch.channels_last)
        with autocast(device, cfg.amp):
            loss = loss_fn(forward(x).float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(cfg.warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(cfg.steps):
        step()
    sync(device)
    return cfg.batch * cfg.steps / (time.perf_counter() - start)


@torch.no_grad()
def eval_seconds(model: ImageSupernet, arch, cfg: BenchConfig, device: torch.device) -> float:
    """Seconds for BN recalibration plus inference on ``cfg.eval_images`` synthetic images."""
    images = torch.randint(
        0, 256, (cfg.eval_batch, 3, cfg.resolution, cfg.resolution), dtype=torch.uint8, device=device
    )

    def forward(batch):
        with autocast(device, cfg.amp):
            return model(normalize(batch).contiguous(memory_format=torch.channels_last), arch)

    forward(images)  # warm-up (cuDNN autotuning)
    sync(device)
    start = time.perf_counter()
    recal = images[: min(cfg.batch, cfg.eval_batch)]
    recalibrate_bn(model, model.path_modules(arch), [recal] * cfg.recal_batches, forward)
    done = 0
    while done < cfg.eval_images:
        n = min(cfg.eval_batch, cfg.eval_images - done)
        forward(images[:n]).argmax(1)
        done += n
    sync(device)
    return time.perf_counter() - start


def real_eval_seconds(cfg: BenchConfig, arch, device: torch.device) -> float:
    """Seconds of :meth:`ImageSupernetTask.evaluate` on ``cfg.eval_images`` images of ``cfg.data``."""
    data = ImageDataConfig(
        root=cfg.data, resolution=cfg.resolution, val_size=cfg.eval_images, batch_size=cfg.eval_batch
    )
    task = ImageSupernetTask(
        ImageSupernetConfig(data=data, width_mult=cfg.width_mult, bn_recal_batches=cfg.recal_batches, amp=cfg.amp)
    )
    model = task.build().to(device)
    return task.evaluate(model, arch, device)["eval_seconds"]


def run(cfg: BenchConfig) -> dict:
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    torch.backends.cudnn.benchmark = True
    space = MobileNetV2Space(resolution=cfg.resolution, width_mult=cfg.width_mult, num_classes=cfg.num_classes)
    arch = space.sample(np.random.default_rng(cfg.arch_seed))
    torch.manual_seed(0)
    supernet = ImageSupernet(space).to(device, memory_format=torch.channels_last)
    static = MobileNetV2Net(space, arch).to(device, memory_format=torch.channels_last)
    supernet.train()
    static.train()
    rates: dict[str, list[float]] = {"supernet": [], "static": []}
    for _ in range(cfg.rounds):  # interleaved, so drifts in clock or load hit both alike
        rates["supernet"].append(
            train_throughput(lambda x: supernet(x, arch), supernet.path_parameters(arch), cfg, device)
        )
        rates["static"].append(train_throughput(static, list(static.parameters()), cfg, device))
    sup, sta = statistics.median(rates["supernet"]), statistics.median(rates["static"])
    supernet.eval()
    result = {
        "config": asdict(cfg),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "autocast": "bf16" if cfg.amp == "bf16" and device.type == "cuda" else "off (fp32)",
        "arch": space.describe(arch),
        "flops": space.flops(arch),
        "params": space.params(arch),
        "supernet_params": sum(p.numel() for p in supernet.parameters()),
        "train_img_per_s_supernet": sup,
        "train_img_per_s_static": sta,
        "supernet_over_static": sup / sta,
        "train_img_per_s_rounds": rates,
        "eval_seconds_synthetic": eval_seconds(supernet, arch, cfg, device),
    }
    if cfg.data:
        result["eval_seconds_imagefolder"] = real_eval_seconds(cfg, arch, device)
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def markdown(r: dict) -> str:
    c = r["config"]
    rows = [
        ("device", r["device"]),
        ("torch / autocast", f"{r['torch']} / {r['autocast']}"),
        ("batch x resolution, width", f"{c['batch']} x {c['resolution']} px, x{c['width_mult']}"),
        ("architecture", f"`{r['arch']}`"),
        ("FLOPs (multiply-adds) / params", f"{r['flops'] / 1e6:.1f} M / {r['params'] / 1e6:.2f} M"),
        ("train img/s, supernet path", f"{r['train_img_per_s_supernet']:.1f}"),
        ("train img/s, static network", f"{r['train_img_per_s_static']:.1f}"),
        ("supernet / static (target >= 0.90)", f"{r['supernet_over_static']:.3f}"),
        (
            f"eval of one arch on {c['eval_images']} images, s (BN recal {c['recal_batches']} batches,"
            " synthetic on device)",
            f"{r['eval_seconds_synthetic']:.2f}",
        ),
    ]
    if "eval_seconds_imagefolder" in r:
        rows.append((f"eval on {c['eval_images']} ImageFolder images, s", f"{r['eval_seconds_imagefolder']:.2f}"))
    if "peak_memory_gib" in r:
        rows.append(("peak GPU memory, GiB", f"{r['peak_memory_gib']:.1f}"))
    lines = ["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    defaults = BenchConfig()
    for name, value in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(flag, type=type(value) if value is not None else str, default=None)
    parser.add_argument("--out", default=str(RESULTS), help="folder for the JSON and Markdown")
    args = vars(parser.parse_args(argv))
    out = Path(args.pop("out"))
    base = {**asdict(defaults), **(SMOKE if args["smoke"] else {})}
    cfg = BenchConfig(**{k: (v if v is not None else base[k]) for k, v in args.items()})
    result = run(cfg)
    table = markdown(result)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    stem = "bench_image_supernet" + ("_smoke" if cfg.smoke else "")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(f"# Image supernet benchmark\n\n{table}")
    print(f"wrote {out / stem}.json and .md")
    return result


if __name__ == "__main__":
    main()
