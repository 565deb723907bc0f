"""Search the TTS space with a weight-sharing supernet across Ray Tune trials, export the best.

    python -m seminas_tune.data.make_espeak_corpus --out data/espeak300 --n 300 --val 24
    python examples/tts_supernet_search.py --corpus data/espeak300 --num-samples 32 --gpus-per-trial 0.25
    python examples/tts_supernet_search.py --smoke      # tiny CPU run on a 12-utterance corpus

SemiNAS searches through Tune: each trial trains the shared supernet on its architecture's path
and reports ``dfr`` (diagonal focus rate of synthesised held-out sentences);
before each controller round the pool is re-scored on one supernet snapshot, so the searcher
learns from comparable scores (docs/supernet_protocol.md). The architecture ranked best on the
final snapshot is exported as a standalone model and reads a sentence into a WAV.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import ray

from seminas_tune.data.make_espeak_corpus import CorpusConfig, make_corpus
from seminas_tune.search import SemiNASSearcher
from seminas_tune.supernet.sharing import SharingConfig, SupernetScorer
from seminas_tune.supernet.tts import (
    TTSSupernetTask,
    TTSTaskConfig,
    save_tts_model,
    supernet_from_store,
    synthesize_to_wav,
)
from trainables.tts_supernet import run_tts_search


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", help="LJSpeech-layout corpus")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--num-samples", type=int, default=32)
    p.add_argument("--steps-per-trial", type=int, default=100)
    p.add_argument("--num-initial", type=int, default=8, help="random architectures before the first round")
    p.add_argument("--gpus-per-trial", type=float, help="default: 1 when the cluster has GPUs, else 0")
    p.add_argument("--out", default="tts_search_out", help="directory for the model and the WAV")
    p.add_argument("--text", default="The little boy opened the wooden door.")
    a = p.parse_args(argv)
    tmp = tempfile.mkdtemp()
    if a.smoke:
        cfg = TTSTaskConfig.tiny(str(make_corpus(CorpusConfig(out=f"{tmp}/corpus", n=12, val=3))))
        a.num_samples, a.steps_per_trial, a.num_initial = 5, 2, 3
        ray.init(num_cpus=2, include_dashboard=False)
    elif a.corpus:
        cfg = TTSTaskConfig(data_root=a.corpus)
        ray.init()
    else:
        p.error("--corpus is required (or use --smoke)")
    sharing = SharingConfig(steps_per_trial=a.steps_per_trial, store_name="tts_example")
    task = TTSSupernetTask(cfg)
    searcher = SemiNASSearcher(
        space=task.space,
        metric="dfr",
        mode="max",
        max_queries=a.num_samples,
        num_initial=a.num_initial,
        num_new=max(1, a.num_initial // 2),
        rescore=SupernetScorer(task, sharing, "dfr"),
    )
    out = run_tts_search(cfg, sharing, a.num_samples, f"{tmp}/ray", a.gpus_per_trial, search_alg=searcher)
    arch, dfr = out.best
    row = out.results.get_dataframe().set_index("trial_id")
    print(f"{searcher.iteration} controller rounds, {len(searcher.rescore_history)} re-scorings of the pool")
    print(f"best on the final snapshot ({out.snapshot}): {task.space.describe(arch)}  dfr={dfr:.3f}")
    print(f"  ({len(row)} trials; their own provisional dfr ranged {row.dfr.min():.3f}-{row.dfr.max():.3f})")
    model = task.export(supernet_from_store(task, sharing), arch)
    path = save_tts_model(
        model,
        Path(a.out) / "tts_best.pt",
        cfg.mel,
        max_frames_per_token=cfg.max_frames_per_token,
        max_decoder_steps=cfg.max_decoder_steps,
    )
    print(f"saved {path}; wrote {synthesize_to_wav(path, a.text, Path(a.out) / 'best.wav')}")
    ray.kill(ray.get_actor(sharing.store_name, namespace=sharing.namespace))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
