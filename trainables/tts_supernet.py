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
):
    """Run a Tune search maximising ``dfr`` over the TTS space; returns the ``ResultGrid``.

    ``search_alg`` defaults to random search (``BasicVariantGenerator``); pass a SemiNAS searcher
    built on the same space to search with it.
    """
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from seminas_tune.spaces.tts import TTSSpace

    space = TTSSpace(config.model.n_encoder, config.model.n_decoder)
    tuner = tune.Tuner(
        tts_supernet_trainable(config, sharing, gpus_per_trial),
        param_space=space.tune_space(),
        tune_config=tune.TuneConfig(
            metric="dfr",
            mode="max",
            num_samples=num_samples,
            search_alg=search_alg or BasicVariantGenerator(random_state=config.seed),
            max_concurrent_trials=max_concurrent_trials,
        ),
        run_config=tune.RunConfig(storage_path=os.path.abspath(storage_path), name=name, verbose=0),
    )
    return tuner.fit()
