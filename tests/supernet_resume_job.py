"""A small SemiNAS search on the image supernet (digits, CPU), run as its own process by
``test_supernet_protocol.py``'s resume test: ``python supernet_resume_job.py DIGITS STORAGE``.
Its own Ray instance dies with it, store actor included; it prints a JSON summary."""

import dataclasses
import json
import sys

import ray
import torch
from test_supernet_protocol import TINY, image_task  # the script's folder is on sys.path

from seminas_tune.search import SemiNASSearcher
from seminas_tune.supernet.search import run_supernet_search
from seminas_tune.supernet.sharing import SharingConfig, SupernetScorer, default_checkpoint_dir, existing_store

TRIALS = 10


def main(digits: str, storage: str) -> None:
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    task = image_task(digits)
    sharing = SharingConfig(steps_per_trial=6, store_name="resume-test", checkpoint_every=1)
    searcher = SemiNASSearcher(
        space=task.space,
        metric="val_accuracy",
        mode="max",
        max_queries=TRIALS,
        num_initial=4,
        num_new=2,
        num_unlabeled=20,
        controller=TINY,
        # no checkpoint_dir: the scorer learns the experiment's folder from the searcher
        rescore=SupernetScorer(task, sharing, "val_accuracy"),
    )
    out = run_supernet_search(
        task,
        sharing,
        metric="val_accuracy",
        mode="max",
        num_trials=TRIALS,
        searcher=searcher,
        gpus_per_trial=0,
        max_concurrent_trials=1,
        storage_path=storage,
    )
    checkpointed = dataclasses.replace(
        sharing, checkpoint_dir=default_checkpoint_dir(f"{storage}/resume-test", sharing)
    )
    info = ray.get(existing_store(checkpointed).info.remote())
    trained = [r.metrics for r in out.results if "base_version" in r.metrics]  # not the interrupted one
    print(
        "SUMMARY "
        + json.dumps(
            {
                "trials": sorted(m["trial_id"] for m in trained),
                "finished": len(out.searcher.observations),
                "distinct": len({o.key for o in out.searcher.observations}),
                "rounds": len(out.searcher.rescore_history),
                "experiment_dir": out.searcher.experiment_dir,
                "lineage": info["lineage"],
                "version": info["version"],
                "base_versions": sorted(m["base_version"] for m in trained),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
