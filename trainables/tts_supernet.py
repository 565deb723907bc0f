"""Ray Tune trainable for the weight-sharing TTS supernet (one architecture per trial).

    trainable = tts_supernet_trainable(TTSTaskConfig(data_root="data/espeak300"),
                                       SharingConfig(steps_per_trial=200, store_name="tts1"),
                                       gpus_per_trial=0.25)
    tune.Tuner(trainable, param_space=TTSSpace().tune_space(),
               tune_config=tune.TuneConfig(metric="dfr", mode="max", ...))

The trial's config holds the architecture (``space.to_config(arch)``, keys ``enc_i`` / ``dec_i``).
Each trial trains its path ``steps_per_trial`` steps on the shared weights (the same
:mod:`seminas_tune.supernet.sharing` mechanism as the image supernet) and reports ``dfr``,
``val_loss``, ``params``, ``skipped_words``, ``repeated_words``, ``sentence_error_rate``,
``train_loss`` and the store versions.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from seminas_tune.supernet.search import SupernetSearchResult, run_supernet_search
from seminas_tune.supernet.sharing import SharingConfig, supernet_trainable_with_resources
from seminas_tune.supernet.tts import TTSSupernetTask, TTSTaskConfig


def tts_supernet_trainable(
    config: TTSTaskConfig,
    sharing: SharingConfig | None = None,
    gpus_per_trial: float | None = None,
    cpus_per_trial: float = 1.0,
) -> Callable:
    """``tune.with_resources`` trainable training one path of the shared TTS supernet per trial.

    Raises:
        ValueError: GPUs are requested but the Ray cluster has none.
    """
    return supernet_trainable_with_resources(TTSSupernetTask(config), sharing, gpus_per_trial, cpus_per_trial)


def run_tts_search(
    config: TTSTaskConfig,
    sharing: SharingConfig,
    num_samples: int,
    storage_path: str,
    gpus_per_trial: float | None = None,
    search_alg=None,
    max_concurrent_trials: int | None = None,
    name: str = "tts_supernet",
) -> SupernetSearchResult:
    """Search the TTS space for the highest ``dfr`` with SemiNAS on the shared supernet
    (:func:`~seminas_tune.supernet.search.run_supernet_search`: the pool is re-scored on one
    snapshot before each round and ranked on the last one at the end).

    ``search_alg`` defaults to ``SemiNASSearcher`` with its budget-sized default preset and
    ``rescore=SupernetScorer(task, sharing, "dfr")``.
    """
    return run_supernet_search(
        TTSSupernetTask(config),
        sharing,
        metric="dfr",
        mode="max",
        num_trials=num_samples,
        searcher=search_alg,
        seed=config.seed,
        gpus_per_trial=gpus_per_trial,
        max_concurrent_trials=max_concurrent_trials,
        storage_path=os.path.abspath(storage_path),
        name=name,
    )
