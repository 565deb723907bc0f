"""Does the weight-sharing supernet rank architectures? Kendall tau against stand-alone training.

On scikit-learn's digits (real, tiny; not ImageNet) with a narrow MobileNetV2-space supernet:

1. ``--archs`` architectures are sampled (seeded). The supernet is trained the way a search
   trains it: ``--rounds`` passes over the architectures, each a "trial" of ``--steps-per-trial``
   steps on paths drawn from its own architecture and the pool (``--pool-fraction``), the
   protocol of :mod:`seminas_tune.supernet.sharing` run inline. After each pass every
   architecture is scored on that snapshot (BN re-estimated per path).
2. Each architecture is trained stand-alone from scratch for the same total steps the supernet
   got (``rounds x archs x steps-per-trial``) with the same optimiser, and scored the same way.

Reports tau(supernet, stand-alone) on the final snapshot with a bootstrap 95 % interval, tau
between successive snapshots, and the same for ``--compare-pool-fraction`` (supernet only).
Writes ``benchmarks/results/supernet_ranking/{results.json,README.md}``.

    python benchmarks/supernet_ranking.py                 # ~20 min on 1 core
    python benchmarks/supernet_ranking.py --smoke         # 1-minute check that it runs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from seminas_tune.data.images import ImageDataConfig, write_digits_imagefolder
from seminas_tune.metrics import kendall_tau
from seminas_tune.supernet.image import ImageSupernetConfig, ImageSupernetTask
from seminas_tune.supernet.sharing import path_schedule

OUT = Path(__file__).resolve().parent / "results" / "supernet_ranking"
CPU = torch.device("cpu")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", type=int, default=20)
    p.add_argument("--steps-per-trial", type=int, default=25)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pool-fraction", type=float, default=0.0)
    p.add_argument("--compare-pool-fraction", type=float, default=0.5)
    p.add_argument("--width-mult", type=float, default=0.25)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="/tmp/seminas_digits", help="where the digits ImageFolder is written")
    p.add_argument("--smoke", action="store_true", help="4 archs, 3 steps: checks the script only")
    p.add_argument(
        "--noise-ceiling",
        help="results.json of an earlier run: train its stand-alone architectures again (other data order) "
        "and report tau between the two stand-alone replicates, the most any ranking can reach here",
    )
    p.add_argument(
        "--reuse-standalone",
        help="results.json of an earlier run (same archs and seed) whose stand-alone accuracies to reuse: "
        "measures longer supernet training against that reference",
    )
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    if a.smoke:
        a.archs, a.steps_per_trial, a.out = 4, 3, str(OUT / "smoke")
    return a


def make_task(a: argparse.Namespace) -> ImageSupernetTask:
    data = ImageDataConfig(
        root=str(write_digits_imagefolder(a.data, resolution=a.resolution)),
        resolution=a.resolution,
        val_size=300,
        batch_size=32,
        num_workers=0,
        train_scale=(0.6, 1.0),
        hflip=False,
    )
    cfg = ImageSupernetConfig(data=data, width_mult=a.width_mult, lr=a.lr, bn_recal_batches=4, amp="none")
    return ImageSupernetTask(cfg)


def supernet_scores(task, archs, a, pool_fraction: float) -> tuple[list[list[float]], list[float]]:
    """Val accuracy of every arch on the snapshot after each round of the sharing protocol, and
    the val losses on the last one."""
    model = task.build()
    pool: list = []
    snapshots = []
    for r in range(a.rounds):
        for i, arch in enumerate(archs):
            paths = path_schedule(arch, pool, a.steps_per_trial, pool_fraction, seed=a.seed * 1000 + r * 100 + i)
            task.train_paths(model, paths, CPU)
            if arch not in pool:
                pool.append(arch)
        scored = [task.evaluate(model, arch, CPU) for arch in archs]
        snapshots.append([m["val_accuracy"] for m in scored])
        losses = [m["val_loss"] for m in scored]
        print(f"  pool_fraction {pool_fraction}: snapshot {r + 1} scored", flush=True)
    return snapshots, losses


def tau(x, y) -> float:
    t = kendall_tau(x, y)
    return float("nan") if t is None else t


def bootstrap(x, y, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    x, y = np.asarray(x), np.asarray(y)
    taus = []
    for _ in range(n):
        idx = rng.integers(len(x), size=len(x))
        t = kendall_tau(x[idx], y[idx])
        if t is not None:
            taus.append(t)
    return float(np.percentile(taus, 2.5)), float(np.percentile(taus, 97.5))


def standalone(task, arch, steps: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = task.build()
    task.train_path(model, arch, steps, CPU)
    return task.evaluate(model, arch, CPU)


def noise_ceiling(task, archs, a, ref: dict) -> None:
    """Stand-alone accuracies again (same steps, another data order and init) against ``ref``'s."""
    if ref["archs"] != [task.space.describe(x) for x in archs]:
        raise SystemExit("the reference run holds other architectures: same --archs and --seed needed")
    again = []
    for i, arch in enumerate(archs):
        again.append(standalone(task, arch, ref["standalone_steps"], seed=10_000 + a.seed + i)["val_accuracy"])
        print(f"  replicate {i + 1}/{len(archs)}: {again[-1]:.3f}", flush=True)
    res = {"standalone": ref["standalone"], "replicate": again, "tau": tau(ref["standalone"], again)}
    res["tau_ci95"] = bootstrap(ref["standalone"], again)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "noise_ceiling.json").write_text(json.dumps(res, indent=1))
    print(
        f"tau between two stand-alone replicates: {res['tau']:.2f} [{res['tau_ci95'][0]:.2f}, {res['tau_ci95'][1]:.2f}]"
    )


def main(argv=None) -> None:
    a = parse_args(argv)
    torch.set_num_threads(1)
    task = make_task(a)
    rng = np.random.default_rng(a.seed)
    archs: list = []
    while len(archs) < a.archs:
        arch = task.space.sample(rng)
        if arch not in archs:
            archs.append(arch)
    total = a.rounds * a.archs * a.steps_per_trial
    t0 = time.perf_counter()
    if a.noise_ceiling:
        return noise_ceiling(task, archs, a, json.loads(Path(a.noise_ceiling).read_text()))
    snaps, snap_loss = supernet_scores(task, archs, a, a.pool_fraction)
    alt, _ = supernet_scores(task, archs, a, a.compare_pool_fraction)
    t_super = time.perf_counter() - t0
    if a.reuse_standalone:
        ref = json.loads(Path(a.reuse_standalone).read_text())
        if ref["archs"] != [task.space.describe(x) for x in archs]:
            raise SystemExit(f"{a.reuse_standalone} holds other architectures: same --archs and --seed needed")
        alone, alone_loss, alone_steps = ref["standalone"], ref["standalone_val_loss"], ref["standalone_steps"]
    else:
        alone, alone_loss, alone_steps = [], [], total
    for i, arch in enumerate(archs[len(alone) :]):
        m = standalone(task, arch, total, seed=a.seed + i)
        alone.append(m["val_accuracy"])
        alone_loss.append(m["val_loss"])
        print(f"  stand-alone {i + 1}/{len(archs)}: {alone[-1]:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    final = snaps[-1]
    res = {
        "settings": {k: v for k, v in vars(a).items() if k not in ("out", "data")},
        "total_steps": total,
        "standalone_steps": alone_steps,
        "tau_per_snapshot": [tau(x, alone) for x in snaps],
        "archs": [task.space.describe(x) for x in archs],
        "flops": [task.space.flops(x) for x in archs],
        "standalone": alone,
        "snapshots": snaps,
        "snapshots_compare": alt,
        "tau_supernet_standalone": tau(final, alone),
        "tau_ci95": bootstrap(final, alone),
        "tau_successive_snapshots": [tau(snaps[i], snaps[i + 1]) for i in range(len(snaps) - 1)],
        "tau_compare_standalone": tau(alt[-1], alone),
        "tau_compare_ci95": bootstrap(alt[-1], alone),
        "tau_flops_standalone": tau([task.space.flops(x) for x in archs], alone),
        "standalone_val_loss": alone_loss,
        "tau_supernet_standalone_val_loss": tau(snap_loss, alone_loss),
        "seconds": time.perf_counter() - t0,
        "supernet_seconds": t_super,
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    rows = [
        (
            f"supernet (pool_fraction {a.pool_fraction:.2g}), final snapshot",
            res["tau_supernet_standalone"],
            res["tau_ci95"],
        ),
        (
            f"supernet (pool_fraction {a.compare_pool_fraction:.2g}), final snapshot",
            res["tau_compare_standalone"],
            res["tau_compare_ci95"],
        ),
        (
            "supernet val loss vs stand-alone val loss",
            res["tau_supernet_standalone_val_loss"],
            bootstrap(snap_loss, alone_loss),
        ),
        (
            "FLOPs alone (no training)",
            res["tau_flops_standalone"],
            bootstrap([task.space.flops(x) for x in archs], alone),
        ),
    ]
    lines = [
        "| ranking by | tau vs stand-alone | bootstrap 95 % |",
        "|---|---|---|",
        *[f"| {name} | {t:.2f} | [{lo:.2f}, {hi:.2f}] |" for name, t, (lo, hi) in rows],
        "",
        f"tau between successive snapshots (pool_fraction {a.pool_fraction}): "
        + ", ".join(f"{t:.2f}" for t in res["tau_successive_snapshots"]),
        "",
        "tau vs stand-alone after each round: " + ", ".join(f"{t:.2f}" for t in res["tau_per_snapshot"]),
        "",
        f"{a.archs} architectures, {a.rounds} rounds x {a.steps_per_trial} steps per trial = {total} supernet steps; "
        f"stand-alone: {alone_steps} steps each. Stand-alone accuracy {min(alone):.3f}-{max(alone):.3f}; "
        f"{res['seconds']:.0f} s in all.",
    ]
    print("\n".join(lines))
    (out / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
