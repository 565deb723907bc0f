"""Search the TTS space with a weight-sharing supernet across Ray Tune trials, export the best.

    python -m seminas_tune.data.make_espeak_corpus --out data/espeak300 --n 300 --val 24
    python examples/tts_supernet_search.py --corpus data/espeak300 --num-samples 32 --gpus-per-trial 0.25
    python examples/tts_supernet_search.py --smoke      # tiny CPU run on a 12-utterance corpus

Each trial trains its path on the shared weights and reports ``dfr`` (diagonal focus rate of
synthesised held-out sentences); the best architecture is exported from the shared supernet as
a standalone model and reads a sentence into a WAV. Random search is used here; any Tune
searcher (the SemiNAS one included) can be passed to ``run_tts_search(search_alg=...)``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import ray

from seminas_tune.data.make_espeak_corpus import CorpusConfig, make_corpus
from seminas_tune.supernet.sharing import SharingConfig
from seminas_tune.supernet.tts import (
    TTSSupernetTask,
    TTSTaskConfig,
    export_architecture,
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
    p.add_argument("--gpus-per-trial", type=float, help="default: 1 when the cluster has GPUs, else 0")
    p.add_argument("--out", default="tts_search_out", help="directory for the model and the WAV")
    p.add_argument("--text", default="The little boy opened the wooden door.")
    a = p.parse_args(argv)
    tmp = tempfile.mkdtemp()
    if a.smoke:
        cfg = TTSTaskConfig.tiny(str(make_corpus(CorpusConfig(out=f"{tmp}/corpus", n=12, val=3))))
        a.num_samples, a.steps_per_trial = 2, 2
        ray.init(num_cpus=2, include_dashboard=False)
    elif a.corpus:
        cfg = TTSTaskConfig(data_root=a.corpus)
        ray.init()
    else:
        p.error("--corpus is required (or use --smoke)")
    sharing = SharingConfig(steps_per_trial=a.steps_per_trial, store_name="tts_example")
    results = run_tts_search(cfg, sharing, a.num_samples, f"{tmp}/ray", a.gpus_per_trial)
    best = results.get_best_result()
    task = TTSSupernetTask(cfg)
    arch = task.space.arch_of(best.config)
    print(
        f"best: {task.space.describe(arch)}  dfr={best.metrics['dfr']:.3f}  "
        f"skipped={best.metrics['skipped_words']} repeated={best.metrics['repeated_words']}"
    )
    model = export_architecture(supernet_from_store(task, sharing), arch)
    out = Path(a.out)
    path = save_tts_model(model, out / "tts_best.pt", cfg.mel)
    print(f"saved {path}; wrote {synthesize_to_wav(path, a.text, out / 'best.wav')}")
    ray.kill(ray.get_actor(sharing.store_name, namespace=sharing.namespace))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
