"""Does the weight-sharing supernet rank architectures? Kendall tau against stand-alone training.

On scikit-learn's digits (real, tiny; not ImageNet) with a narrow MobileNetV2-space supernet:

1. ``--archs`` architectures (seeded; ``--sample depth`` spreads them from the shallowest to the
   deepest network).
2. Ground truth (``--standalone K``, one process per replicate so replicates can run side by
   side): each architecture trained stand-alone from scratch for the steps its path gets in the
   supernet (``rounds x steps-per-trial``; ``--standalone-steps total``: the supernet's total),
   with ``--standalone-schedule``, and scored on the held-out images. Replicate K uses its own
   initialisation and data order.
3. The supernet, trained the way a search trains it (``--rounds`` passes over the
   architectures, each a "trial" of ``--steps-per-trial`` steps, the protocol of
   :mod:`seminas_tune.supernet.sharing` run inline), every architecture scored on the snapshot
   (the moving average, ``--ema-decay``) after each pass, BN re-estimated per path.
   ``--reference`` names the replicates' files; ``--repeats`` trains it again from other seeds.

Reports tau(supernet, mean stand-alone accuracy) per training with a bootstrap 95 % interval
and their mean +- SE, tau after each round and between successive snapshots, each stand-alone
replicate against the others (the noise ceiling), and FLOPs as a training-free baseline.

    python benchmarks/supernet_ranking.py --standalone 0 --out DIR &   # 4-8 min on 1 core each
    python benchmarks/supernet_ranking.py --standalone 1 --out DIR
    python benchmarks/supernet_ranking.py --reference DIR/standalone_*.json --repeats 6 --out DIR/run  # ~50 min
    python benchmarks/supernet_ranking.py --smoke         # 1-minute check that it runs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from seminas_tune.bench import stats
from seminas_tune.data.images import ImageDataConfig, write_digits_imagefolder
from seminas_tune.metrics import kendall_tau
from seminas_tune.spaces.mobilenetv2 import MB_OPS, ZERO
from seminas_tune.supernet.image import ImageSupernetConfig, ImageSupernetTask
from seminas_tune.supernet.sharing import SharingConfig, path_schedule
from seminas_tune.supernet.store import MovingAverage, parameter_deltas

OUT = Path(__file__).resolve().parent / "results" / "supernet_ranking"
CPU = torch.device("cpu")
TASK_KEYS = ("archs", "sample", "seed", "width_mult", "resolution", "val_size", "lr", "standalone_steps")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", type=int, default=20)
    p.add_argument(
        "--sample",
        default="depth",
        choices=["depth", "uniform"],
        help="depth: depths spread evenly from the shallowest to the deepest network, ops uniform; "
        "uniform: the space's own sampler (uniform over keys: nearly all at full depth)",
    )
    p.add_argument("--steps-per-trial", type=int, default=25)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--pool-fraction", type=float, default=SharingConfig().pool_fraction)
    p.add_argument(
        "--ema-decay", type=float, default=SharingConfig().ema_decay, help="of the scored weights, per trial"
    )
    p.add_argument("--repeats", type=int, default=1, help="supernet trainings (other data orders)")
    p.add_argument("--lr-schedule", default="constant", choices=["constant", "cosine"], help="of each supernet trial")
    p.add_argument("--standalone-schedule", default="cosine", choices=["constant", "cosine"])
    p.add_argument(
        "--standalone-steps",
        default="per-arch",
        choices=["per-arch", "total"],
        help="stand-alone steps: those each path got in the supernet (rounds x steps-per-trial) or the "
        "supernet's total (x archs)",
    )
    p.add_argument("--width-mult", type=float, default=0.25)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--val-size", type=int, default=600, help="held-out images of the 1,438 search-train digits")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="/tmp/seminas_digits", help="where the digits ImageFolder is written")
    p.add_argument("--smoke", action="store_true", help="4 archs, 3 steps: checks the script only")
    p.add_argument("--standalone", type=int, metavar="K", help="train replicate K of the stand-alone ground truth only")
    p.add_argument("--reference", nargs="+", default=[], help="standalone_K.json files of the ground truth")
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    if a.smoke:
        a.archs, a.rounds, a.steps_per_trial, a.out = 4, 2, 3, str(OUT / "smoke")
    return a


def make_task(a: argparse.Namespace, schedule: str) -> ImageSupernetTask:
    data = ImageDataConfig(
        root=str(write_digits_imagefolder(a.data, resolution=a.resolution)),
        resolution=a.resolution,
        val_size=a.val_size,
        batch_size=32,
        num_workers=0,
        train_scale=(0.6, 1.0),
        hflip=False,
    )
    cfg = ImageSupernetConfig(
        data=data, width_mult=a.width_mult, lr=a.lr, lr_schedule=schedule, bn_recal_batches=4, amp="none"
    )
    return ImageSupernetTask(cfg)


def sample_archs(task: ImageSupernetTask, a: argparse.Namespace) -> list:
    rng = np.random.default_rng(a.seed)
    archs: list = []
    while len(archs) < a.archs:
        arch = task.space.sample(rng) if a.sample == "uniform" else spread_depth(task.space, len(archs), a.archs, rng)
        if arch not in archs:
            archs.append(arch)
    return archs


def spread_depth(space, i: int, n: int, rng: np.random.Generator) -> tuple:
    """Architecture ``i`` of ``n`` whose skipped layers rise evenly from none to all that may be
    skipped, placed at random among the stages; ops uniform (canonical: a stage's skipped layers last)."""
    specs = space.layer_specs()
    stages = [[s.index for s in specs if s.stage == st] for st in sorted({s.stage for s in specs})]
    optional = [j for idx in stages for j in idx[1:]]
    skipped = set(rng.choice(optional, size=round(i * len(optional) / max(n - 1, 1)), replace=False).tolist())
    arch: list[str] = []
    for idx in stages:
        kept = [j for j in idx if j not in skipped]
        arch += [MB_OPS[k] for k in rng.integers(0, len(MB_OPS), size=len(kept))] + [ZERO] * (len(idx) - len(kept))
    return tuple(arch)


def supernet_scores(task, archs, a, repeat: int) -> tuple[list[list[float]], list[list[float]]]:
    """Val accuracy and loss of every arch on the snapshot after each round of the protocol: the
    store's moving average of the weights (``--ema-decay`` per trial), BN re-estimated per path.
    Seeded per repeat (init and data order), so runs that differ only in ``--ema-decay`` are paired."""
    torch.manual_seed(a.seed * 1000 + repeat * 100_000)
    model = task.build()
    average = MovingAverage(a.ema_decay)
    scored_model = task.build()
    pool: list = []
    accs, losses = [], []
    for r in range(a.rounds):
        for i, arch in enumerate(archs):
            seed = a.seed * 1000 + repeat * 100_000 + r * 100 + i
            before = {k: p.detach().clone() for k, p in model.named_parameters()}
            task.train_paths(model, path_schedule(arch, pool, a.steps_per_trial, a.pool_fraction, seed), CPU)
            average.update(model.state_dict(), parameter_deltas(model, before))
            if arch not in pool:
                pool.append(arch)
        scored_model.load_state_dict(average.of(model.state_dict()))
        scored = [task.evaluate(scored_model, arch, CPU) for arch in archs]
        accs.append([m["val_accuracy"] for m in scored])
        losses.append([m["val_loss"] for m in scored])
        print(
            f"  repeat {repeat + 1}, snapshot {r + 1}/{a.rounds}: median path accuracy {np.median(accs[-1]):.3f}",
            flush=True,
        )
    return accs, losses


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


def task_settings(a: argparse.Namespace) -> dict:
    return {k: getattr(a, k) for k in TASK_KEYS}


def standalone_steps(a: argparse.Namespace) -> int:
    per_arch = a.rounds * a.steps_per_trial
    return per_arch * a.archs if a.standalone_steps == "total" else per_arch


def run_standalone(a: argparse.Namespace) -> None:
    """Replicate ``a.standalone`` of the ground truth, written to ``standalone_<K>.json``."""
    task = make_task(a, a.standalone_schedule)
    archs = sample_archs(task, a)
    steps = standalone_steps(a)
    t0 = time.perf_counter()
    accs, losses = [], []
    for i, arch in enumerate(archs):
        torch.manual_seed(10_000 * a.standalone + a.seed + i)
        model = task.build()
        task.train_path(model, arch, steps, CPU)
        m = task.evaluate(model, arch, CPU)
        accs.append(m["val_accuracy"])
        losses.append(m["val_loss"])
        print(f"  stand-alone {i + 1}/{len(archs)}: {accs[-1]:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    res = {
        "settings": {**task_settings(a), "schedule": a.standalone_schedule, "replicate": a.standalone},
        "steps": steps,
        "archs": [task.space.describe(x) for x in archs],
        "flops": [task.space.flops(x) for x in archs],
        "accuracy": accs,
        "val_loss": losses,
        "seconds": time.perf_counter() - t0,
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"standalone_{a.standalone}.json").write_text(json.dumps(res, indent=1))


def load_reference(a: argparse.Namespace, archs: list[str], steps: int) -> list[dict]:
    refs = [json.loads(Path(f).read_text()) for f in a.reference]
    for f, ref in zip(a.reference, refs):
        mine = task_settings(a)
        theirs = {k: ref["settings"][k] for k in TASK_KEYS}
        if theirs != mine or ref["archs"] != archs or ref["steps"] != steps:
            raise SystemExit(f"{f} is for other settings {theirs} / {ref['steps']} steps: pass {mine} / {steps} steps")
    return refs


def main(argv=None) -> None:
    a = parse_args(argv)
    torch.set_num_threads(1)
    if a.standalone is not None:
        return run_standalone(a)
    task = make_task(a, a.lr_schedule)
    archs = sample_archs(task, a)
    described = [task.space.describe(x) for x in archs]
    steps = standalone_steps(a)
    if not a.reference:  # (the smoke run and a quick look: one replicate inline)
        ns = argparse.Namespace(**{**vars(a), "standalone": 0})
        run_standalone(ns)
        a.reference = [str(Path(a.out) / "standalone_0.json")]
    refs = load_reference(a, described, steps)
    truth = np.mean([r["accuracy"] for r in refs], axis=0)
    t0 = time.perf_counter()
    runs = [supernet_scores(task, archs, a, r) for r in range(a.repeats)]
    flops = refs[0]["flops"]
    per_round = np.array([[tau(x, truth) for x in accs] for accs, _ in runs])  # repeats x rounds
    successive = np.array([[tau(accs[i], accs[i + 1]) for i in range(len(accs) - 1)] for accs, _ in runs])
    final = [accs[-1] for accs, _ in runs]
    res = {
        "settings": {k: v for k, v in vars(a).items() if k not in ("out", "data", "smoke")},
        "supernet_steps": a.rounds * a.archs * a.steps_per_trial,
        "standalone_steps": steps,
        "standalone_schedule": refs[0]["settings"]["schedule"],
        "archs": described,
        "standalone_mean_accuracy": truth.tolist(),
        "snapshots_accuracy": [accs for accs, _ in runs],
        "snapshots_val_loss": [losses for _, losses in runs],
        "tau_per_snapshot": per_round.tolist(),
        "tau_final": per_round[:, -1].tolist(),
        "tau_final_ci95": [bootstrap(x, truth) for x in final],
        "tau_final_val_loss": [tau(-np.asarray(losses[-1]), truth) for _, losses in runs],
        "tau_successive_snapshots": successive.tolist(),
        "tau_flops": tau(flops, truth),
        "tau_flops_ci95": bootstrap(flops, truth),
        "supernet_seconds": time.perf_counter() - t0,
    }
    if len(refs) >= 2:  # each replicate against the mean of the others: what one more training would reach
        alone = np.array([r["accuracy"] for r in refs])
        res["tau_replicate_vs_rest"] = [tau(alone[i], np.delete(alone, i, axis=0).mean(0)) for i in range(len(alone))]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1))
    table = render_table(res)
    print(table)
    (out / "table.md").write_text(table)


def mean_se(xs) -> str:
    m, se = stats.mean_se(np.asarray(xs, dtype=float))
    return f"{m:.2f} ± {se:.2f}"


def render_table(res: dict) -> str:
    """The markdown table of a ``results.json`` (also to re-render an earlier run's)."""
    s, each = res["settings"], ", ".join
    per_round, successive = np.array(res["tau_per_snapshot"]), np.array(res["tau_successive_snapshots"])
    truth = np.array(res["standalone_mean_accuracy"])
    final = [accs[-1] for accs in res["snapshots_accuracy"]]
    lines = [
        f"| ranking by | tau vs stand-alone (mean of {len(s['reference'])}) | mean ± SE | bootstrap 95 % |",
        "|---|---|---|---|",
        f"| supernet, final snapshot ({s['repeats']} trainings) | {each(f'{t:.2f}' for t in res['tau_final'])} | "
        f"{mean_se(res['tau_final'])} | " + each(f"[{lo:.2f}, {hi:.2f}]" for lo, hi in res["tau_final_ci95"]) + " |",
        f"| supernet val loss, final snapshot | {each(f'{t:.2f}' for t in res['tau_final_val_loss'])} | "
        f"{mean_se(res['tau_final_val_loss'])} | |",
        f"| FLOPs alone (no training) | {res['tau_flops']:.2f} | | [{res['tau_flops_ci95'][0]:.2f}, "
        f"{res['tau_flops_ci95'][1]:.2f}] |",
    ]
    if "tau_replicate_vs_rest" in res:
        noise = res["tau_replicate_vs_rest"]
        lines.append(
            f"| one stand-alone replicate vs the mean of the others (noise) | {each(f'{t:.2f}' for t in noise)} | "
            f"{mean_se(noise)} | |"
        )
    lines += [
        "",
        "tau after each round, mean ± SE of the trainings: " + each(mean_se(t) for t in per_round.T),
        f"  (mean over rounds {per_round.mean():.2f})",
        "tau between successive snapshots, mean of the trainings: " + each(f"{t:.2f}" for t in successive.mean(0)),
        f"  (mean {successive.mean():.2f})",
        f"{s['archs']} architectures ({s['sample']}), {s['rounds']} rounds x {s['steps_per_trial']} steps per trial "
        f"({s['lr_schedule']} lr, pool_fraction {s['pool_fraction']}, ema_decay {s['ema_decay']}) = "
        f"{res['supernet_steps']} supernet steps; stand-alone {res['standalone_steps']} steps each "
        f"({res.get('standalone_schedule', 'cosine')} lr). Median path accuracy {np.median(final):.3f}; stand-alone "
        f"{truth.min():.3f}-{truth.max():.3f}; supernet {res['supernet_seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
