"""Controller cost and predictor quality on the bundled NB101-30k table (real data).

Part 1, cost: one full SemiNAS iteration (N = 1100 labeled, M = 10,000 pseudo-labeled, 300
generated) with the fast schedule, repeated, median wall time; and the reference schedule
(1000 epochs on N, then 500 on N x10 + M, batch 100) in the same run, either in full or scaled
down by ``--reference-scale`` (its cost is then also projected to the full schedule from the
measured time per step). Predictor quality of both on the same held-out cells.

Part 2, quality: Kendall tau, Spearman rho and precision@top-5 % on held-out cells for training
sizes 10..1000, with and without pseudo-labels (fast schedule).

    python benchmarks/bench_controller.py                          # everything, CPU
    python benchmarks/bench_controller.py --part cost --reference-scale 1 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seminas_tune.controller.trainer import ControllerConfig, RoundRequest, run_round
from seminas_tune.metrics import kendall_tau, top_k_overlap
from trainables.nasbench import nasbench101_space


def quality(pred: np.ndarray, true: np.ndarray, top: float = 0.05) -> dict:
    k = max(1, int(round(top * len(true))))
    return {
        "kendall_tau": kendall_tau(pred, true),
        "spearman_rho": float(pd.Series(pred).rank().corr(pd.Series(true).rank())),
        "precision_top5": top_k_overlap(pred, true, k),
    }


class Setup:
    """Shuffled NB101-30k cells: the first ones for training, the last ``held_out`` for testing."""

    def __init__(self, seed: int, held_out: int):
        self.space = nasbench101_space()
        data = self.space.dataset.final_results()
        hashes = np.array(self.space.dataset.hashes)
        np.random.default_rng(seed).shuffle(hashes)
        self.hashes = hashes
        self.value = {h: float(data[h]["val"][0]) for h in hashes}
        self.test = [self.space.spec_of_hash(h) for h in hashes[-held_out:]]
        self.y_test = np.array([self.value[h] for h in hashes[-held_out:]])

    def request(self, n: int, m: int, cfg: ControllerConfig, num_new: int, seed: int) -> RoundRequest:
        train = self.hashes[:n]
        return RoundRequest(
            space=self.space,
            cfg=cfg,
            labeled=[self.space.spec_of_hash(h) for h in train],
            scores=np.array([self.value[h] for h in train]),
            seen_keys=set(train),
            num_unlabeled=m,
            upsample=10,
            top_k=100,
            num_new=num_new,
            candidates=self.test,
            seed=seed,
        )


def run_one(setup: Setup, n: int, m: int, cfg: ControllerConfig, num_new: int, seed: int) -> dict:
    t0 = time.perf_counter()
    res = run_round(setup.request(n, m, cfg, num_new, seed))
    wall = time.perf_counter() - t0
    return {
        "n": n,
        "m": m,
        "wall_s": wall,
        "train_s": res.info["train_s"],
        "generated": res.info.get("generated", 0),
        "new": len(res.new_archs),
        **quality(res.candidate_scores, setup.y_test),
    }


def reference_step_time(setup: Setup, cfg: ControllerConfig, steps: int = 40) -> float:
    """Seconds per optimiser step of the reference schedule (batch 100)."""
    probe = replace(cfg, schedule="fast", batch_size=100, labeled_steps=steps, joint_steps=0)
    req = setup.request(2000, 0, probe, 0, 0)
    t0 = time.perf_counter()
    run_round(req)
    return (time.perf_counter() - t0) / steps


def part_cost(args, setup: Setup, out: dict) -> list[str]:
    fast = ControllerConfig(device=args.device, num_threads=args.threads)
    runs = [run_one(setup, 1100, 10_000, fast, 300, seed) for seed in range(args.repeats)]
    lines = [
        "## Cost of one full iteration (N = 1100, M = 10,000, 300 generated)",
        "",
        f"device: {args.device}, torch threads: {args.threads}, repeats: {args.repeats} (median)",
        "",
        "| schedule | wall s (median) | train s | Kendall tau | Spearman rho | prec@5% |",
        "|---|---|---|---|---|---|",
    ]
    med = lambda k, rs: statistics.median(r[k] for r in rs)  # noqa: E731
    lines.append(
        f"| fast ({fast.labeled_steps}+{fast.joint_steps} steps, batch {fast.batch_size}, "
        f"ranking loss x{fast.rank_weight:g}, reconstruction on {fast.recon_fraction:.0%}) | "
        f"{med('wall_s', runs):.1f} | {med('train_s', runs):.1f} | {med('kendall_tau', runs):.3f} | "
        f"{med('spearman_rho', runs):.3f} | {med('precision_top5', runs):.3f} |"
    )
    e1, e2 = (max(1, round(e * args.reference_scale)) for e in (1000, 500))
    ref_cfg = ControllerConfig(
        schedule="reference", reference_epochs=(e1, e2), device=args.device, num_threads=args.threads
    )
    ref = run_one(setup, 1100, 10_000, ref_cfg, 300, 0)
    per_step = reference_step_time(setup, ref_cfg)
    full_steps = 1000 * 11 + 500 * 210
    lines.append(
        f"| reference ({e1}+{e2} epochs, batch 100) | {ref['wall_s']:.1f} | {ref['train_s']:.1f} | "
        f"{ref['kendall_tau']:.3f} | {ref['spearman_rho']:.3f} | {ref['precision_top5']:.3f} |"
    )
    lines += [
        "",
        f"Reference schedule in full: {full_steps:,} steps x {per_step * 1000:.1f} ms/step = "
        f"{full_steps * per_step / 60:.1f} min projected (measured step time).",
        f"Speed-up of the fast schedule over the full reference: {full_steps * per_step / med('wall_s', runs):.0f}x",
        "",
    ]
    out["cost"] = {
        "fast": runs,
        "reference": ref,
        "reference_epochs": [e1, e2],
        "reference_step_s": per_step,
        "reference_full_projected_s": full_steps * per_step,
    }
    return lines


def part_quality(args, setup: Setup, out: dict) -> list[str]:
    cfg = ControllerConfig(device=args.device, num_threads=args.threads)
    rows = []
    for n in args.sizes:
        for m in (0, 10_000):
            rs = [
                run_one(Setup(seed, args.held_out), n, m, cfg, 0, seed) if seed else run_one(setup, n, m, cfg, 0, seed)
                for seed in range(args.seeds)
            ]
            rows.append(
                {
                    "n": n,
                    "m": m,
                    **{
                        k: float(np.mean([r[k] for r in rs]))
                        for k in ("kendall_tau", "spearman_rho", "precision_top5", "wall_s")
                    },
                }
            )
            print(rows[-1], flush=True)
    out["quality"] = rows
    lines = [
        "## Predictor quality on held-out cells (fast schedule)",
        "",
        f"{args.held_out} held-out NB101-30k cells, mean over {args.seeds} seeds (different splits).",
        "",
        "| labeled N | Kendall tau (M=0) | tau (M=10k) | Spearman rho (M=0) | rho (M=10k) "
        "| prec@5% (M=0) | prec@5% (M=10k) |",
        "|---|---|---|---|---|---|---|",
    ]
    by = {(r["n"], r["m"]): r for r in rows}
    for n in args.sizes:
        a, b = by[(n, 0)], by[(n, 10_000)]
        lines.append(
            f"| {n} | {a['kendall_tau']:.3f} | {b['kendall_tau']:.3f} | {a['spearman_rho']:.3f} | "
            f"{b['spearman_rho']:.3f} | {a['precision_top5']:.3f} | {b['precision_top5']:.3f} |"
        )
    return lines + [""]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["cost", "quality", "all"], default="all")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--reference-scale",
        type=float,
        default=0.02,
        help="fraction of the reference epochs actually run (1 = the full 1000+500)",
    )
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10, 30, 100, 300, 1000])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--held-out", type=int, default=5000)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    setup = Setup(0, args.held_out)
    out: dict = {"args": vars(args)}
    lines = ["# Controller benchmark (NB101-30k, real data)", ""]
    if args.part in ("cost", "all"):
        lines += part_cost(args, setup, out)
    if args.part in ("quality", "all"):
        lines += part_quality(args, setup, out)
    text = "\n".join(lines)
    print(text)
    dest = Path(args.out)
    dest.mkdir(parents=True, exist_ok=True)
    tag = f"controller_{args.device}_{args.part}"
    (dest / f"{tag}.md").write_text(text + "\n")
    (dest / f"{tag}.json").write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
