"""How well each round's predictor ranks unseen cells, the top ones above all (real tables).

The SemiNAS controller is trained as the default searcher trains it (60 + 20 warm-started steps
a round, 5 heads, 2,000 pseudo-labels) on 10, 20, ..., 100 random evaluated cells of a NAS-Bench
table, and BANANAS's MLP ensemble (its default preset) is trained from scratch on the same
cells. Both then score 2,000 other random cells of the table. Reported at 20, 50 and 100
labels, mean over draws: Kendall tau over all of them, tau among the true top 5 %, and how many
of the true top 20 are among the predicted top 20.

    python benchmarks/predictor_quality.py --benchmark nb201-imagenet --out benchmarks/results/predictor_quality
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from seminas_tune.bench.tables import get_benchmark
from seminas_tune.controller.epd import EPDConfig
from seminas_tune.controller.proposals import sample_unlabeled
from seminas_tune.controller.trainer import RoundRequest, run_round
from seminas_tune.metrics import kendall_tau, top_k_overlap
from seminas_tune.search.bananas import BananasRequest, encode, train_ensemble
from seminas_tune.search.presets import preset_settings

LABELS = range(10, 101, 10)
REPORT_AT = (20, 50, 100)


def _measures(pred: np.ndarray, truth: np.ndarray) -> dict:
    top = np.argsort(-truth)[: len(truth) // 20]
    tau_top5 = kendall_tau(pred[top], truth[top])
    return {"tau": kendall_tau(pred, truth), "tau_top5": tau_top5, "top20": top_k_overlap(pred, truth, 20)}


def one_draw(bench, draw: int, positional: bool, with_mlp: bool) -> list[dict]:
    """Measures at ``REPORT_AT`` labels of the controller (and the MLP ensemble) on one draw."""
    rng = np.random.default_rng(100 + draw)
    cells = sample_unlabeled(bench.space, rng, max(LABELS) + 2000, set())
    y = np.array([bench.val[bench.space.key(a)] for a in cells])
    lab, ylab, held, truth = cells[: max(LABELS)], y[: max(LABELS)], cells[max(LABELS) :], y[max(LABELS) :]
    s = preset_settings("seminas", "default", 300)
    cfg = dataclasses.replace(s["controller"], num_threads=1, epd=EPDConfig(positional=positional))
    fields = {f.name for f in dataclasses.fields(BananasRequest)}
    mlp = BananasRequest(  # only the ensemble's settings (BANANAS's default preset) are read
        space=bench.space,
        archs=[],
        scores=np.empty(0),
        seen_keys=set(),
        num_new=0,
        seed=draw,
        **{k: v for k, v in preset_settings("bananas", "default", 300).items() if k in fields},
    )
    out, state = [], None
    for n in LABELS:
        req = RoundRequest(
            space=bench.space,
            cfg=cfg,
            labeled=lab[:n],
            scores=ylab[:n],
            seen_keys=set(),
            num_unlabeled=s["num_unlabeled"],
            upsample=s["upsample"],
            top_k=s["top_k"],
            num_new=0,
            candidates=held,
            state=state,
            seed=draw * 1000 + n,
            heads=s["ensemble"],
        )
        res = run_round(req)
        state = res.state
        if n not in REPORT_AT:
            continue
        name = "controller, position embedding" if positional else "controller, no position embedding"
        out.append({"predictor": name, "labels": n, "draw": draw, **_measures(res.candidate_scores, truth)})
        if with_mlp:
            predict = train_ensemble(encode(bench.space, lab[:n]), ylab[:n], mlp, draw)
            pred = predict(encode(bench.space, held)).mean(0)
            out.append({"predictor": "BANANAS MLP ensemble", "labels": n, "draw": draw, **_measures(pred, truth)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="nb201-imagenet")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/predictor_quality")
    args = ap.parse_args()
    torch.set_num_threads(1)
    bench = get_benchmark(args.benchmark)
    rows = []
    for draw in range(args.draws):
        for positional in (False, True):
            rows += one_draw(bench, draw, positional, with_mlp=positional)
            print(f"draw {draw + 1}/{args.draws}, position embedding {positional}: done", flush=True)
    lines = [
        f"{bench.name}, {args.draws} draws; mean over draws",
        "",
        "| predictor | labels | Kendall tau | tau among the top 5 % | top 20 found |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in dict.fromkeys(r["predictor"] for r in rows):
        for n in REPORT_AT:
            sel = [r for r in rows if r["predictor"] == name and r["labels"] == n]
            m = {k: float(np.mean([r[k] for r in sel])) for k in ("tau", "tau_top5", "top20")}
            lines.append(f"| {name} | {n} | {m['tau']:.3f} | {m['tau_top5']:.3f} | {m['top20']:.2f} |")
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{bench.ident}.md").write_text("\n".join(lines) + "\n")
    (out / f"{bench.ident}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
