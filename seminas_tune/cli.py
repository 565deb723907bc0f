"""The ``seminas-tune`` command line: search, enumerate, bench, synthesize."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"


def run_search(space_name: str, searcher_name: str, budget: int, seed: int, use_gpu: bool,
               storage_path: str, output: str, concurrency: int, name: str, top: int,
               dataset_file: str | None = None, verbose: int = 1):
    """Run a searcher through ``tune.Tuner`` on a NAS-Bench lookup; returns the result rows."""
    import ray
    from ray import tune

    from seminas_tune.search import SEARCHERS
    from trainables.nasbench import (
        make_nasbench101_trainable,
        make_nasbench201_trainable,
        nasbench101_space,
        nasbench201_space,
    )

    if space_name == "nb101":
        space, trainable = nasbench101_space(dataset_file), make_nasbench101_trainable(dataset_file)
    else:
        space, trainable = nasbench201_space(), make_nasbench201_trainable(space_name.split("-", 1)[1])
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if use_gpu and ray.cluster_resources().get("GPU", 0) < 1:
        raise SystemExit("--gpu was given but the Ray cluster has no GPU; drop --gpu or start Ray on a GPU host")
    searcher = SEARCHERS[searcher_name](space=space, metric="val_accuracy", mode="max",
                                        max_queries=budget, seed=seed)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, metric="val_accuracy",
                                    mode="max", max_concurrent_trials=concurrency, reuse_actors=True,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name=name, storage_path=os.path.abspath(storage_path), verbose=verbose),
    )
    grid = tuner.fit()
    df = grid.get_dataframe()
    df = df[df.get("valid", True) == True].sort_values("val_accuracy", ascending=False)  # noqa: E712
    rows = []
    for rank, (_, r) in enumerate(df.iterrows(), start=1):
        config = {k: r[f"config/{k}"] for k in space.choices()}
        arch = space.from_config(config)
        rows.append({"rank": rank, "val_accuracy": r["val_accuracy"],
                     "test_accuracy": r.get("test_accuracy", float("nan")),
                     "arch_key": space.key(arch), "arch": space.describe(arch), "trial_id": r["trial_id"]})
    import pandas as pd

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(output, index=False)
    print(f"\nBest {min(top, len(rows))} of {len(df)} architectures evaluated ({searcher_name} on {space.name}):")
    print(f"{'rank':>4}  {'val_acc':>8}  architecture")
    for r in rows[:top]:
        print(f"{r['rank']:>4}  {r['val_accuracy']:>8.4f}  {r['arch']}")
    print(f"\nAll results: {output}")
    return rows


def _synthesize(argv: list[str]) -> int:
    from seminas_tune.supernet.tts import synthesize_to_wav

    p = argparse.ArgumentParser(prog="seminas-tune synthesize",
                                description="speak a sentence with a TTS model exported by the search")
    p.add_argument("model", help="model file written by save_tts_model")
    p.add_argument("text")
    p.add_argument("--out", default="out.wav", help="WAV file to write")
    p.add_argument("--griffin-lim-iters", type=int, default=60)
    p.add_argument("--stop-threshold", type=float, default=0.5)
    a = p.parse_args(argv)
    if not os.path.exists(a.model):
        p.error(f"model file not found: {a.model}")
    path = synthesize_to_wav(a.model, a.text, a.out, griffin_lim_iters=a.griffin_lim_iters,
                             stop_threshold=a.stop_threshold)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from seminas_tune.search import SEARCHERS

    p = argparse.ArgumentParser(prog="seminas-tune", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("search", help="run a search through Ray Tune on a NAS-Bench table")
    s.add_argument("--space", choices=["nb101", "nb201-cifar10", "nb201-cifar100", "nb201-imagenet"], default="nb101")
    s.add_argument("--searcher", choices=sorted(SEARCHERS), default="seminas")
    s.add_argument("--budget", type=int, default=300, help="architectures to evaluate")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--gpu", action="store_true", help="require a GPU for controller training")
    s.add_argument("--storage-path", default="seminas_results", help="Tune experiment folder")
    s.add_argument("--name", default="seminas_search", help="experiment name")
    s.add_argument("--output", default=None, help="results CSV (default: <storage>/<name>.csv)")
    s.add_argument("--concurrency", type=int, default=2)
    s.add_argument("--top", type=int, default=10)
    s.add_argument("--dataset-file", default=None, help="official NB-101 tfrecord (default: bundled table)")
    e = sub.add_parser("enumerate", help="count the unique cells of the NAS-Bench-101 space")
    e.add_argument("--max-vertices", type=int, default=7)
    sub.add_parser("bench", help="the benchmark harness (see benchmarks/run.py --help)", add_help=False)
    sub.add_parser("synthesize", help="speak a sentence with an exported TTS model", add_help=False)
    args, rest = p.parse_known_args(argv)
    if args.cmd == "search":
        if rest:
            p.error(f"unknown arguments: {' '.join(rest)}")
        output = args.output or os.path.join(args.storage_path, f"{args.name}.csv")
        run_search(args.space, args.searcher, args.budget, args.seed, args.gpu, args.storage_path,
                   output, args.concurrency, args.name, args.top, args.dataset_file)
        return 0
    if args.cmd == "enumerate":
        from seminas_tune.nasbench.enumerate import enumerate_space

        res = enumerate_space(args.max_vertices)
        print(f"{'V':>2} {'matrices':>9} {'labelled':>10} {'unique':>8} {'cumulative':>10}")
        for n, r in sorted(res.rows.items()):
            print(f"{n:>2} {r.matrices:>9,} {r.labelled:>10,} {r.unique:>8,} {r.cumulative:>10,}")
        print(f"total unique cells: {res.total:,} ({res.seconds:.1f} s, {res.processes} processes)")
        return 0
    if args.cmd == "bench":
        from seminas_tune.bench import main as bench_main

        return bench_main(rest) or 0
    if args.cmd == "synthesize":
        return _synthesize(rest)
    return 1


if __name__ == "__main__":
    sys.exit(main())
