"""SemiNAS over the weight-sharing MobileNetV2 supernet, through ``tune.Tuner``, under a FLOPs bound.

Each trial trains the shared supernet for ``--steps-per-trial`` steps on its architecture's path
(GPU when the cluster has one) and reports ``val_accuracy``, ``flops`` and
``params``. Before each controller round SemiNAS re-scores its whole pool on one snapshot of the
supernet and learns from those comparable scores (docs/supernet_protocol.md); it never proposes
an architecture above ``--max-flops``. At the end the pool is ranked on the final snapshot and the
best is exported as a standalone network with inherited weights and re-estimated BatchNorm.

CPU demo on scikit-learn's digits (a small real dataset, *not* ImageNet)::

    python examples/image_supernet_search.py --digits /tmp/digits --trials 12 --max-flops 1.5e6

ImageNet-layout folder on GPUs (4 trials per GPU)::

    python examples/image_supernet_search.py --data /data/imagenet --width-mult 1.3 --max-flops 600e6 \\
        --trials 300 --steps-per-trial 200 --gpus-per-trial 0.25 --cpus-per-trial 4 --concurrent 8
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import ray
import torch

from seminas_tune.data.images import ImageDataConfig, write_digits_imagefolder
from seminas_tune.supernet.image import ImageSupernetConfig, ImageSupernetTask, supernet_from_store
from seminas_tune.supernet.search import run_supernet_search
from seminas_tune.supernet.sharing import SharingConfig, SupernetScorer


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="ImageFolder root (root/train/<class>/<image>)")
    src.add_argument("--digits", help="write the sklearn digits demo here and search on it")
    p.add_argument("--resolution", type=int, help="default 224 (--data) or 32 (--digits)")
    p.add_argument("--width-mult", type=float, help="default 1.0 (--data) or 0.35 (--digits)")
    p.add_argument("--max-flops", type=float, help="multiply-adds bound, e.g. 600e6")
    p.add_argument("--trials", type=int, default=12, help="architectures to evaluate")
    p.add_argument("--steps-per-trial", type=int, default=20, help="T: supernet steps per trial")
    p.add_argument("--batch-size", type=int, help="default 256 (--data) or 64 (--digits)")
    p.add_argument("--val-size", type=int, help="held-out train images (default 10000 / 300)")
    p.add_argument("--workers", type=int, help="loader workers per trial (default: the trial's CPUs - 1 / 0)")
    p.add_argument("--gpus-per-trial", type=float, help="default 1 when the cluster has GPUs")
    p.add_argument("--concurrent", type=int, default=2, help="trials running at once")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="loader workers = this - 1 (GPU runs: 4-8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--num-initial", type=int, help="random architectures first (default: 4 for --digits, else the preset)"
    )
    p.add_argument("--address", help="Ray cluster address ('auto' for a running cluster)")
    p.add_argument("--storage", help="Tune storage_path (shared folder on multi-node clusters)")
    p.add_argument("--out", default="image_supernet_best.pt", help="exported best network")
    return p.parse_args(argv)


def task_config(args: argparse.Namespace) -> ImageSupernetConfig:
    demo = args.digits is not None
    resolution = args.resolution or (32 if demo else 224)
    root = write_digits_imagefolder(args.digits, resolution=resolution) if demo else args.data
    data = ImageDataConfig(
        root=str(root),
        resolution=resolution,
        val_size=args.val_size or (300 if demo else 10_000),
        batch_size=args.batch_size or (64 if demo else 256),
        num_workers=args.workers if args.workers is not None else (0 if demo else None),
        train_scale=(0.6, 1.0) if demo else (0.08, 1.0),
        hflip=not demo,
    )
    return ImageSupernetConfig(
        data=data,
        width_mult=args.width_mult or (0.35 if demo else 1.0),
        lr=0.1 if demo else 0.05,
        torch_threads=1 if demo else None,
    )


def main(argv=None) -> None:
    from seminas_tune import SemiNASSearcher

    args = parse_args(argv)
    ray.init(address=args.address)
    cfg = task_config(args)
    task = ImageSupernetTask(cfg)
    sharing = SharingConfig(steps_per_trial=args.steps_per_trial, store_name=f"image-supernet-{int(time.time())}")
    demo = args.digits is not None
    # The demo's budget is tiny: small batches so the controller runs two rounds or more; a
    # real search leaves both to the budget-sized default preset.
    small = {"num_initial": 4, "num_new": 4} if demo else {}
    searcher = SemiNASSearcher(
        space=task.space,
        metric="val_accuracy",
        mode="max",
        max_queries=args.trials,
        seed=args.seed,
        max_flops=args.max_flops,
        rescore=SupernetScorer(task, sharing, "val_accuracy"),
        **{**small, **({"num_initial": args.num_initial} if args.num_initial else {})},
    )
    out = run_supernet_search(
        task,
        sharing,
        metric="val_accuracy",
        mode="max",
        num_trials=args.trials,
        searcher=searcher,
        gpus_per_trial=args.gpus_per_trial,
        cpus_per_trial=args.cpus_per_trial,
        max_concurrent_trials=args.concurrent,
        storage_path=args.storage,
        verbose=1,
    )
    for h in searcher.rescore_history:
        tau = "-" if h["tau_vs_trials"] is None else f"{h['tau_vs_trials']:.2f}"
        print(
            f"round {h['round']}: re-scored {h['archs']} architectures on snapshot {h['snapshot']}, tau vs trials {tau}"
        )
    arch, value = out.best
    print(
        f"best of {len(out.results)} trials on the final snapshot ({out.snapshot}): val_accuracy {value:.4f}, "
        f"{task.space.flops(arch) / 1e6:.1f} M multiply-adds, {task.space.params(arch) / 1e6:.2f} M params"
    )
    print(f"  {task.space.describe(arch)}")
    net = task.export(supernet_from_store(task, sharing), arch, torch.device("cpu"))
    torch.save({"arch": arch, "space": asdict(task.space.config), "state_dict": net.state_dict()}, args.out)
    print(f"exported the standalone network (BN re-estimated) to {Path(args.out).resolve()}")
    ray.kill(ray.get_actor(sharing.store_name, namespace=sharing.namespace))  # the store is detached


if __name__ == "__main__":
    main()
