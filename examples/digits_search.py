"""Architecture and hyper-parameters of a small network on scikit-learn's digits, searched through
Tune by SemiNAS and by Optuna's TPE on the same ``param_space`` and budget.

Each trial trains a PyTorch MLP for real on the 8x8 digit images (1,797 of them, bundled with
scikit-learn; a fixed stratified split: 1,257 to train, 540 to validate) and reports validation
accuracy after every epoch. The space mixes architecture (depth, width, activation, dropout) and
training settings (learning rate, weight decay, batch size) in a nested dict::

    python examples/digits_search.py                     # 40 trials x 3 seeds per searcher
    python examples/digits_search.py --trials 20 --seeds 1 --epochs 3

See ``docs/custom_space.md`` for the measured table and what it does (and does not) show.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import numpy as np
from ray import tune

from seminas_tune import SemiNASSearcher
from seminas_tune.controller import ControllerConfig, EPDConfig

PARAM_SPACE = {
    "model": {
        "layers": tune.randint(1, 4),  # 1, 2 or 3 hidden layers
        "width": tune.choice([16, 32, 64, 128]),
        "activation": tune.choice(["relu", "tanh", "gelu"]),
        "dropout": tune.quniform(0.0, 0.5, 0.1),
    },
    "train": {
        "lr": tune.loguniform(1e-4, 1e-1),
        "weight_decay": tune.loguniform(1e-6, 1e-2),
        "batch_size": tune.choice([16, 32, 64, 128]),
    },
}

#: SemiNAS settings for a budget of a few dozen trials: 10 random ones, then a controller round
#: every 6 results, with a controller small enough to train in a second or two on one core.
SEMINAS = dict(
    num_initial=10,
    num_new=6,
    top_k=10,
    num_unlabeled=200,
    controller=ControllerConfig(
        epd=EPDConfig(hidden=32, mlp_hidden=32),
        labeled_steps=40,
        joint_steps=40,
        batch_size=64,
        num_threads=1,
        device="cpu",
    ),
)


_SPLITS: dict = {}  # per worker process (an lru_cache would not pickle with a script's trainable)


def digits_split(seed: int = 0):
    """(x_train, y_train, x_val, y_val) as torch tensors: a stratified 70/30 split fixed by ``seed``."""
    if seed not in _SPLITS:
        import torch
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        xt, xv, yt, yv = train_test_split(x / 16.0, y, test_size=0.3, stratify=y, random_state=seed)
        f = functools.partial(torch.tensor, dtype=torch.float32)
        _SPLITS[seed] = f(xt), torch.tensor(yt), f(xv), torch.tensor(yv)
    return _SPLITS[seed]


def build_mlp(model: dict):
    """The MLP a ``model`` config describes (64 inputs, 10 classes)."""
    from torch import nn

    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[model["activation"]]
    layers, width_in = [], 64
    for _ in range(model["layers"]):
        layers += [nn.Linear(width_in, model["width"]), act(), nn.Dropout(model["dropout"])]
        width_in = model["width"]
    return nn.Sequential(*layers, nn.Linear(width_in, 10))


def mlp_flops(config: dict) -> float:
    """Multiply-adds of one forward pass of the config's MLP (a cost for ``max_flops``)."""
    m = config["model"]
    return 64 * m["width"] + (m["layers"] - 1) * m["width"] ** 2 + 10 * m["width"]


def train_digits(config: dict) -> None:
    """Tune trainable: train for ``config["epochs"]`` epochs, report ``val_accuracy`` after each."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(config.get("trial_seed", 0))
    xt, yt, xv, yv = digits_split()
    net, hp = build_mlp(config["model"]), config["train"]
    opt = torch.optim.Adam(net.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(config.get("trial_seed", 0))
    for _ in range(config["epochs"]):
        net.train()
        for idx in torch.randperm(len(xt), generator=gen).split(hp["batch_size"]):
            opt.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(xv).argmax(1) == yv).float().mean().item()
        tune.report({"val_accuracy": acc})


def make_searcher(name: str, seed: int, trials: int, **seminas_kwargs):
    """``"seminas"`` or ``"optuna"``; both take the space, metric and mode from the Tuner."""
    if name == "seminas":
        return SemiNASSearcher(max_queries=trials, seed=seed, **{**SEMINAS, **seminas_kwargs})
    if name == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=seed)
    raise ValueError(f"searcher must be 'seminas' or 'optuna', got {name!r}")


def search(
    name: str,
    seed: int,
    *,
    trials: int = 40,
    epochs: int = 5,
    concurrency: int = 2,
    storage_path: str | None = None,
    **seminas_kwargs,
) -> dict:
    """One search through ``tune.Tuner``: the trials' configs, their validation accuracy after the
    last epoch (what both searchers maximise), the best of them, the search's wall time and the
    searcher."""
    space = {**PARAM_SPACE, "epochs": epochs, "trial_seed": seed}
    searcher = make_searcher(name, seed, trials, **seminas_kwargs)
    start = time.perf_counter()
    grid = tune.Tuner(
        train_digits,
        param_space=space,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=trials,
            metric="val_accuracy",
            mode="max",
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"digits_{name}_{seed}_{time.strftime('%Y%m%d-%H%M%S')}", storage_path=storage_path, verbose=0
        ),
    ).fit()
    wall = time.perf_counter() - start
    if grid.errors:
        first = str(grid.errors[0]).strip().splitlines()[0]
        raise RuntimeError(f"{name} seed {seed}: {len(grid.errors)} trials failed, the first: {first}")
    results = [r for r in grid if r.metrics]
    final = [r.metrics["val_accuracy"] for r in results]
    return {
        "configs": [r.config for r in results],
        "final_accuracy": final,
        "best": max(final),
        "wall_s": wall,
        "searcher": searcher,
    }


def summarise(runs: dict[str, list[dict]]) -> str:
    """Markdown table: best validation accuracy (mean ± standard error over seeds) and wall time."""
    rows = ["| searcher | seeds | trials | best val accuracy | wall s per search |", "|---|---:|---:|---:|---:|"]
    for name, rs in runs.items():
        best = np.array([r["best"] for r in rs])
        se = best.std(ddof=1) / np.sqrt(len(best)) if len(best) > 1 else float("nan")
        wall = np.mean([r["wall_s"] for r in rs])
        rows.append(
            f"| {name} | {len(rs)} | {len(rs[0]['final_accuracy'])} | "
            f"{100 * best.mean():.2f} ± {100 * se:.2f} % | {wall:.0f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=40, help="trials per search (default 40)")
    p.add_argument("--seeds", type=int, default=3, help="searches per searcher, seeds 0..N-1 (default 3)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs per trial (default 5)")
    p.add_argument("--concurrency", type=int, default=2, help="trials at a time (default 2)")
    p.add_argument("--searchers", default="seminas,optuna", help="comma-separated (default seminas,optuna)")
    args = p.parse_args(argv)
    import ray

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ray.init(num_cpus=args.concurrency, include_dashboard=False, log_to_driver=False, configure_logging=False)
    runs: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        for name in args.searchers.split(","):
            r = search(name, seed, trials=args.trials, epochs=args.epochs, concurrency=args.concurrency)
            runs.setdefault(name, []).append(r)
            print(f"{name} seed {seed}: best val accuracy {r['best']:.4f} in {r['wall_s']:.0f} s", flush=True)
    print(summarise(runs))


if __name__ == "__main__":
    main()
