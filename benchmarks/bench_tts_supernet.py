"""TTS supernet benchmarks: path-vs-static training throughput, and a search vs a Transformer baseline.

``throughput``: training frames/s of an architecture trained as a path of the full supernet
versus the same architecture built static (target: path >= 90 % of static).
``search``: a weight-sharing SemiNAS search through Tune (GPU-allocated trials, the pool re-scored
on one supernet snapshot per round) over the TTS space on an espeak-ng corpus; the architecture
with the best DFR on the final snapshot and a fixed all-Transformer baseline with the same layer
counts and width are then each trained from scratch for the same steps and compared on held-out
sentences (DFR, skipped / repeated words, sentence error rate).

    # make the corpus where espeak-ng is installed (the GPU host has none)
    python -m seminas_tune.data.make_espeak_corpus --out benchmarks/data/espeak300 --n 300 --val 24 \
        --sample-rate 16000
    python benchmarks/bench_tts_supernet.py --part all --corpus benchmarks/data/espeak300
    python benchmarks/bench_tts_supernet.py --smoke          # tiny CPU check (makes its own corpus)

Tables are printed and written to ``benchmarks/results/tts_supernet_<part>[_smoke].{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from seminas_tune.spaces.tts import TTSSpace
from seminas_tune.supernet.tts import TTSNet, TTSTaskConfig, evaluate_arch, export_architecture, train_steps


@dataclass
class BenchConfig:
    """Sizes of one benchmark run (the defaults are the GPU run; :func:`smoke_config` the CPU one)."""

    task: TTSTaskConfig
    warmup_steps: int = 10
    timed_steps: int = 50
    repeats: int = 3
    n_throughput_archs: int = 4
    num_samples: int = 32
    num_initial: int | None = None  # SemiNAS's random start; None: its budget-sized default
    steps_per_trial: int = 100
    gpus_per_trial: float = 0.25
    final_steps: int = 2000
    baseline_op: str = "trans4"


def gpu_config(corpus: str) -> BenchConfig:
    return BenchConfig(task=TTSTaskConfig(data_root=corpus, eval_sentences=24, max_frames=6000))


def smoke_config(corpus: str) -> BenchConfig:
    return BenchConfig(
        task=TTSTaskConfig.tiny(corpus, max_frames=300),
        warmup_steps=1,
        timed_steps=3,
        repeats=2,
        n_throughput_archs=2,
        num_samples=5,
        num_initial=3,
        steps_per_trial=2,
        gpus_per_trial=0.0,
        final_steps=3,
    )


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _timed_train(model: TTSNet, cfg: TTSTaskConfig, arch, steps: int, device: torch.device) -> tuple[float, float]:
    """(frames/s, seconds) of ``steps`` training steps."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    m = train_steps(model, cfg, arch, steps, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return m["train_frames"] / seconds, seconds


def bench_throughput(b: BenchConfig) -> list[dict]:
    """Frames/s of each architecture as a supernet path and as a static model (same weights, batches)."""
    device = _device()
    space = TTSSpace(b.task.model.n_encoder, b.task.model.n_decoder)
    rng = np.random.default_rng(b.task.seed)
    archs = [(b.baseline_op,) * space.n_layers] + [space.sample(rng) for _ in range(b.n_throughput_archs - 1)]
    rows = []
    for arch in archs:
        torch.manual_seed(0)
        supernet = TTSNet(b.task.model)
        static = export_architecture(supernet, arch).to(device)
        supernet.to(device)
        models = {"supernet": supernet, "static": static}
        for model in models.values():
            train_steps(model, b.task, arch, b.warmup_steps, device)
        fps = {name: 0.0 for name in models}
        for _ in range(b.repeats):  # alternate, keep the best of each (less noise from clocks and caches)
            for name, model in models.items():
                fps[name] = max(fps[name], _timed_train(model, b.task, arch, b.timed_steps, device)[0])
        rows.append(
            {
                "arch": space.describe(arch),
                "params": static.count_parameters(),
                "supernet_frames_per_s": fps["supernet"],
                "static_frames_per_s": fps["static"],
                "ratio": fps["supernet"] / fps["static"],
            }
        )
        del supernet, static
    return rows


def bench_search(b: BenchConfig, storage: str) -> dict:
    """SemiNAS with shared weights (pool re-scored on one snapshot per round), then the best on
    the final snapshot and the baseline trained from scratch for the same steps."""
    import ray

    from seminas_tune.search import SemiNASSearcher
    from seminas_tune.supernet.sharing import SharingConfig, SupernetScorer
    from seminas_tune.supernet.tts import TTSSupernetTask
    from trainables.tts_supernet import run_tts_search

    if not ray.is_initialized():
        ray.init(
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            **({} if torch.cuda.is_available() else {"num_cpus": 2}),
        )
    sharing = SharingConfig(steps_per_trial=b.steps_per_trial, store_name=f"tts_bench_{int(time.time())}")
    task = TTSSupernetTask(b.task)
    small = {} if b.num_initial is None else {"num_initial": b.num_initial, "num_new": max(1, b.num_initial // 2)}
    searcher = SemiNASSearcher(
        space=task.space,
        metric="dfr",
        mode="max",
        max_queries=b.num_samples,
        seed=b.task.seed,
        rescore=SupernetScorer(task, sharing, "dfr"),
        **small,
    )
    start = time.perf_counter()
    out = run_tts_search(b.task, sharing, b.num_samples, storage, b.gpus_per_trial, search_alg=searcher)
    search_s = time.perf_counter() - start
    space = task.space
    best_arch, best_dfr = out.best
    results = out.results
    ray.kill(ray.get_actor(sharing.store_name, namespace=sharing.namespace))

    device = _device()
    baseline = (b.baseline_op,) * space.n_layers
    rows = []
    for label, arch in (("searched (best DFR)", best_arch), (f"baseline all-{b.baseline_op}", baseline)):
        torch.manual_seed(b.task.seed)
        model = TTSNet(b.task.model, arch).to(device)
        t0 = time.perf_counter()
        train = train_steps(model, b.task, arch, b.final_steps, device)
        ev = evaluate_arch(model, b.task, arch, device)
        rows.append(
            {
                "model": label,
                "arch": space.describe(arch),
                "train_s": time.perf_counter() - t0,
                "train_loss": train["train_loss"],
                **ev,
            }
        )
    df = results.get_dataframe()
    return {
        "search": {
            "trials": len(df),
            "errors": len(results.errors),
            "search_s": search_s,
            "searcher": "SemiNAS (pool re-scored each round)",
            "controller_rounds": searcher.iteration,
            "rescorings": len(searcher.rescore_history),
            "best_supernet_dfr": float(best_dfr),
            "best_arch": space.describe(best_arch),
            "median_supernet_dfr": float(np.median([v for _, v in out.ranking])),
        },
        "final": rows,
    }


def _markdown(rows: list[dict], floatfmt: str = "{:.4g}") -> str:
    cols = list(rows[0])
    fmt = lambda v: floatfmt.format(v) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def _write(out: Path, stem: str, payload: dict, md: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=str))
    (out / f"{stem}.md").write_text(md + "\n")
    print(md)
    print(f"\nwrote {out / stem}.json and .md")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=["throughput", "search", "all"], default="all")
    p.add_argument("--corpus", help="LJSpeech-layout corpus (required unless --smoke)")
    p.add_argument("--smoke", action="store_true", help="tiny CPU run on a 12-utterance espeak-ng corpus")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--num-samples", type=int, help="search trials")
    p.add_argument("--steps-per-trial", type=int)
    p.add_argument("--final-steps", type=int)
    p.add_argument("--gpus-per-trial", type=float)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast for training on CUDA")
    a = p.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    if a.smoke:
        from seminas_tune.data.make_espeak_corpus import CorpusConfig, make_corpus

        corpus = str(make_corpus(CorpusConfig(out=f"{tmp.name}/corpus", n=12, val=3)))
        b = smoke_config(corpus)
    elif a.corpus:
        b = gpu_config(a.corpus)
    else:
        p.error("--corpus is required (or use --smoke)")
    overrides = {
        "num_samples": a.num_samples,
        "steps_per_trial": a.steps_per_trial,
        "final_steps": a.final_steps,
        "gpus_per_trial": a.gpus_per_trial,
    }
    b = replace(b, **{k: v for k, v in overrides.items() if v is not None}, task=replace(b.task, amp=a.amp))
    torch.manual_seed(0)
    env = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu",
        "torch": torch.__version__,
        "smoke": a.smoke,
        "config": asdict(b),
    }
    suffix = "_smoke" if a.smoke else ""
    out = Path(a.out)
    if a.part in ("throughput", "all"):
        rows = bench_throughput(b)
        mean = float(np.mean([r["ratio"] for r in rows]))
        md = (
            f"## TTS supernet path vs static model, training throughput ({env['device']})\n\n"
            + _markdown(rows)
            + f"\n\nmean ratio {mean:.3f} (target >= 0.90)"
        )
        _write(out, f"tts_supernet_throughput{suffix}", {**env, "rows": rows, "mean_ratio": mean}, md)
    if a.part in ("search", "all"):
        res = bench_search(b, f"{tmp.name}/ray")
        s = res["search"]
        md = (
            f"## TTS search ({s['trials']} trials x {b.steps_per_trial} shared-weight steps, {s['search_s']:.0f} s; "
            f"best supernet DFR {s['best_supernet_dfr']:.3f}, median {s['median_supernet_dfr']:.3f})\n\n"
            f"Trained from scratch {b.final_steps} steps each, {b.task.eval_sentences} held-out sentences, "
            f"DFR band b = {b.task.dfr_band} decoder steps, decoder layer {b.task.dfr_layer} (heads averaged)\n\n"
            + _markdown(
                [
                    {
                        k: r[k]
                        for k in (
                            "model",
                            "arch",
                            "params",
                            "dfr",
                            "skipped_words",
                            "repeated_words",
                            "sentence_error_rate",
                            "early_stops",
                            "capped_sentences",
                            "val_loss",
                            "train_s",
                        )
                    }
                    for r in res["final"]
                ]
            )
        )
        _write(out, f"tts_supernet_search{suffix}", {**env, **res}, md)
    tmp.cleanup()


if __name__ == "__main__":
    main()
