"""The chaos run's driver (``chaos_resume.py --child``): one Tune driver life, a fresh run or a
``Tuner.restore``, with the searcher's job calls and trial completions logged as events so the
parent can aim its kills."""

from __future__ import annotations

import json
import os
import time

EXPERIMENT = "chaos"


def make_searcher(name: str, max_queries: int, seed: int):
    from seminas_tune.controller import ControllerConfig
    from seminas_tune.search import SemiNASRESearcher, SemiNASSearcher
    from trainables.nasbench import nasbench101_space

    common = dict(
        space=nasbench101_space(),
        metric="val_accuracy",
        mode="max",
        max_queries=max_queries,
        seed=seed,
        num_unlabeled=1000,
        controller=ControllerConfig(labeled_steps=50, joint_steps=50, num_threads=1),
    )
    if name == "seminas":
        return SemiNASSearcher(**common, num_initial=100, num_new=100, top_k=100)
    if name == "seminas_re":
        return SemiNASRESearcher(
            **common,
            population_size=50,
            tournament_size=10,
            num_initial=50,
            children_per_step=100,
            evals_per_step=10,
            random_candidates=0,
            new_fraction=0.0,
            ensemble=1,
            acquisition="mean",
        )
    raise SystemExit(f"unknown searcher {name!r}")


def make_trainable(eval_log: str):
    def chaos_nasbench101(config):
        from ray import tune

        from seminas_tune.search.resume import report_final
        from trainables.nasbench import evaluate_nasbench101

        result = evaluate_nasbench101(config)
        trial_id = tune.get_context().get_trial_id()
        _append_json(eval_log, {"trial_id": trial_id, "key": result.get("arch_key"), "t": time.time()})
        report_final(result, config)

    return chaos_nasbench101


def _append_json(path: str, record: dict) -> None:
    """Append one JSON line with a single ``write`` on an ``O_APPEND`` file, so lines from
    concurrent processes never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def _event(path: str, kind: str, **extra) -> None:
    _append_json(path, {"event": kind, "t": time.time(), "pid": os.getpid(), **extra})


def child(args) -> int:
    """One driver life: a fresh run, or a restore of the experiment under ``args.storage``."""
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "0"  # save the experiment after every loop step
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    from ray import tune
    from ray.tune import Callback

    from seminas_tune.search.base import ArchSearcher

    events = args.events
    # Instrument (in this process only) the searcher's job calls, so the parent can aim kills
    # at controller training.
    start_job, poll_job = ArchSearcher.start_job, ArchSearcher.poll_job

    def logged_start_job(self, fn, request):
        _event(events, "train_start")
        start_job(self, fn, request)

    def logged_poll_job(self):
        done, value = poll_job(self)
        if done:
            _event(events, "train_end")
        return done, value

    ArchSearcher.start_job, ArchSearcher.poll_job = logged_start_job, logged_poll_job

    class Events(Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            _event(events, "complete", trial_id=trial.trial_id)

    ray.init(
        num_cpus=max(2, args.concurrency),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=args.ray_temp,
    )
    trainable = make_trainable(args.eval_log)
    path = os.path.join(args.storage, EXPERIMENT)
    run_config = tune.RunConfig(name=EXPERIMENT, storage_path=args.storage, verbose=0, callbacks=[Events()])
    if args.restore:
        if not tune.Tuner.can_restore(path):
            _event(events, "cannot_restore")
            return 3
        _event(events, "restore")
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        _event(events, "fresh")
        searcher = make_searcher(args.searcher, args.max_queries, args.seed)
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                num_samples=-1,
                metric="val_accuracy",
                mode="max",
                max_concurrent_trials=args.concurrency,
                reuse_actors=True,
            ),
            run_config=run_config,
        )
    grid = tuner.fit()
    df = grid.get_dataframe()
    _event(events, "finished", trials=len(df), errors=len(grid.errors))
    ray.shutdown()
    return 0
