"""The end-of-run report of an experiment folder: how the search went, in one picture.

:func:`load_experiment` reads any Tune experiment folder (the CLI's, or one written by your own
``tune.Tuner``); :func:`write_report` draws best-so-far against queries (with the expected best
of random search over the table, when the space has one), the predictor's held-out Kendall tau
over controller rounds (package searchers that train one), and, when trials report a cost
(``flops`` or ``params``), accuracy against cost with the non-dominated front. It writes a PNG
and an HTML page holding the same picture and the best architectures.
"""

from __future__ import annotations

import base64
import glob
import html
import math
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seminas_tune.search.resume import tune_trials

COST_KEYS = ("flops", "params")


class NotAnExperimentError(ValueError):
    """A folder holds no Tune experiment."""


@dataclass
class Experiment:
    """One experiment's trials in query order, with what its searcher recorded.

    Attributes:
        path: the experiment folder.
        metric, mode: what the search optimised.
        trials: ``(trial_id, config, result)`` in the order the trials finished; ``result`` is
            None for a trial without a result.
        history: per-round info of the searcher's controller (empty for other searchers).
        searcher: class name of the searcher, when known.
        space: the searcher's search space, when it could be loaded.
        trainable: Tune's name of the trainable, when known.
    """

    path: Path
    metric: str
    mode: str
    trials: list[tuple[str, dict, dict | None]]
    history: list[dict] = field(default_factory=list)
    searcher: str | None = None
    space: Any = None
    trainable: str | None = None

    def ok(self, result: dict | None) -> bool:
        if result is None or result.get("valid", True) is False:
            return False
        v = result.get(self.metric)
        return isinstance(v, (int, float)) and math.isfinite(v)

    def values(self) -> np.ndarray:
        """The metric per query (NaN where the trial failed or was invalid)."""
        return np.array([r[self.metric] if self.ok(r) else np.nan for _, _, r in self.trials], dtype=float)

    def best_so_far(self) -> np.ndarray:
        v = self.values()
        sign = 1.0 if self.mode == "max" else -1.0
        filled = np.where(np.isnan(v), -np.inf, sign * v)
        best = sign * np.maximum.accumulate(filled) if len(v) else v
        return np.where(np.isinf(best), np.nan, best)

    def describe(self, config: dict) -> str:
        if self.space is not None:
            try:
                return self.space.describe(self.space.arch_of(config))
            except Exception:  # noqa: BLE001 - a config of another space: show it flat
                pass
        return ", ".join(f"{k}={v}" for k, v in config.items())

    def ranked(self) -> list[dict]:
        """Valid trials, best first: rank, metric, test_accuracy, arch_key, arch, trial_id."""
        rows = [(tid, c, r) for tid, c, r in self.trials if self.ok(r)]
        rows.sort(key=lambda x: x[2][self.metric], reverse=self.mode == "max")
        return [
            {
                "rank": i,
                self.metric: r[self.metric],
                "test_accuracy": r.get("test_accuracy", float("nan")),
                "arch_key": r.get("arch_key", ""),
                "arch": self.describe(c),
                "trial_id": tid,
            }
            for i, (tid, c, r) in enumerate(rows, start=1)
        ]


def experiment_dir(path: str | os.PathLike) -> Path:
    """``path`` itself when it is an experiment folder, else its only experiment subfolder."""
    p = Path(path)
    if not p.is_dir():
        raise NotAnExperimentError(f"{p} is not a folder")
    if _is_experiment(p):
        return p
    subs = sorted(d for d in p.iterdir() if d.is_dir() and _is_experiment(d))
    if len(subs) == 1:
        return subs[0]
    if subs:
        raise NotAnExperimentError(f"{p} holds {len(subs)} experiments ({', '.join(d.name for d in subs)}); name one")
    raise NotAnExperimentError(f"{p} is not a Tune experiment folder (no experiment_state-*.json or tuner.pkl)")


def _is_experiment(p: Path) -> bool:
    return (p / "tuner.pkl").exists() or bool(glob.glob(str(p / "experiment_state-*.json")))


def _tuner_state(path: Path) -> dict:
    """The pickled Tuner (metric, mode, searcher with its space), or {} when unreadable."""
    try:
        from ray import cloudpickle

        return cloudpickle.loads((path / "tuner.pkl").read_bytes())
    except Exception:  # noqa: BLE001 - e.g. a space class from a module not importable here
        return {}


def _searcher_history(path: Path) -> tuple[list[dict], str | None]:
    """Controller history and searcher class from the newest package searcher checkpoint."""
    files = sorted(glob.glob(str(path / "searcher-state-*.pkl")), key=os.path.getmtime)
    for f in reversed(files):
        try:
            with open(f, "rb") as fh:
                state = pickle.load(fh)
            return list(state["state"].get("history", [])), state.get("class")
        except Exception:  # noqa: BLE001 - not one of ours, or unreadable: no history
            continue
    return [], None


def _space_of(searcher: Any) -> Any:
    try:
        return searcher.space
    except (AttributeError, ValueError):  # no searcher, or one that never learnt its space
        return None


def load_experiment(
    path: str | os.PathLike, metric: str | None = None, mode: str | None = None, space: Any = None
) -> Experiment:
    """Read an experiment folder; ``metric``, ``mode`` and ``space`` default to the Tuner's."""
    p = experiment_dir(path)
    state = _tuner_state(p)
    cfg = state.get("_tune_config")
    searcher = getattr(cfg, "search_alg", None)
    metric = metric or getattr(cfg, "metric", None) or getattr(searcher, "metric", None) or "val_accuracy"
    mode = mode or getattr(cfg, "mode", None) or getattr(searcher, "mode", None) or "max"
    trials = tune_trials(str(p))
    order = sorted(trials.values(), key=lambda t: ((t.last_result or {}).get("timestamp", math.inf), t.trial_id))
    history, cls = _searcher_history(p)
    return Experiment(
        path=p,
        metric=metric,
        mode=mode,
        history=history,
        trials=[(t.trial_id, t.config or {}, t.last_result) for t in order if t.config],
        searcher=cls or (type(searcher).__name__ if searcher is not None else None),
        space=space if space is not None else _space_of(searcher),
        trainable=state.get("__trainable_name"),
    )


def table_values(exp: Experiment) -> np.ndarray | None:
    """The metric of every member of the space's table, as the bundled lookup trainables
    report it, or None when the space has no table or the metric is not validation accuracy."""
    from seminas_tune.spaces import NASBench101Space, NASBench201Space

    data = getattr(exp.space, "dataset", None)
    if data is None or exp.metric != "val_accuracy":
        return None
    if isinstance(exp.space, NASBench101Space):
        from trainables.nasbench import nasbench101_values

        return nasbench101_values(exp.space)
    if isinstance(exp.space, NASBench201Space):
        name = exp.trainable or ""
        dataset = next((d for d in data.DATASETS if name.endswith(d)), "cifar10")
        return data.table[f"{dataset}-val"].to_numpy(dtype=float) / 100.0
    return None


def random_expectation(values: np.ndarray, n: int, mode: str = "max") -> np.ndarray:
    """Expected best of 1..n distinct members drawn uniformly from a table of ``values``."""
    v = np.sort(np.asarray(values, dtype=float) * (1 if mode == "max" else -1))
    size = len(v)
    n = min(n, size)
    lf = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, size + 1)))])  # log k!
    k = np.arange(1, size + 1)
    out = np.empty(n)
    for m in range(1, n + 1):
        # P(best <= v_(k)) = C(k, m) / C(size, m) for k >= m.
        logc = np.where(k >= m, lf[k] - lf[np.maximum(k - m, 0)] - lf[m], -np.inf)
        cdf = np.exp(logc - (lf[size] - lf[size - m] - lf[m]))
        out[m - 1] = float(np.dot(v, np.diff(np.concatenate([[0.0], cdf]))))
    return out * (1 if mode == "max" else -1)


def pareto_front(cost: np.ndarray, value: np.ndarray, mode: str = "max") -> np.ndarray:
    """Indices of the non-dominated points (lower cost, better value), by increasing cost."""
    sign = 1 if mode == "max" else -1
    front, best = [], -np.inf
    for i in np.lexsort((-sign * value, cost)):
        if sign * value[i] > best:
            front.append(i)
            best = sign * value[i]
    return np.array(front, dtype=int)


def write_report(
    exp: Experiment, png: str | os.PathLike, html_path: str | os.PathLike | None = None, top: int = 10
) -> list[Path]:
    """Draw the report of ``exp`` to ``png`` (and an HTML page); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost_key = next((k for k in COST_KEYS if any(exp.ok(r) and k in r for _, _, r in exp.trials)), None)
    fig, axes = plt.subplots(1, 3 if cost_key else 2, figsize=(16 if cost_key else 11, 4.2))
    _plot_best(axes[0], exp)
    _plot_tau(axes[1], exp)
    if cost_key:
        _plot_cost(axes[2], exp, cost_key)
    title = f"{exp.path.name}: {exp.searcher or 'searcher?'} on {getattr(exp.space, 'name', 'space?')}"
    fig.suptitle(f"{title}, {len(exp.trials)} trials")
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    written = [Path(png)]
    if html_path is not None:
        Path(html_path).write_text(_html(exp, Path(png), title, top))
        written.append(Path(html_path))
    return written


def _plot_best(ax, exp: Experiment) -> None:
    best = exp.best_so_far()
    q = np.arange(1, len(best) + 1)
    ax.plot(q, best, label=f"best {exp.metric} so far", color="C0")
    table = table_values(exp)
    if table is not None and len(best):
        ax.plot(
            q[: len(table)],
            random_expectation(table, len(best), exp.mode),
            "--",
            color="gray",
            label="random search, expected",
        )
        ax.axhline(table.max() if exp.mode == "max" else table.min(), color="k", lw=0.6, label="table's best")
    ax.set(xlabel="queries (trials finished)", ylabel=exp.metric, title="best so far")
    ax.legend(loc="lower right" if exp.mode == "max" else "upper right", fontsize=8)
    ax.grid(alpha=0.3)


def _plot_tau(ax, exp: Experiment) -> None:
    rounds = [
        (h.get("iteration", i + 1), h["heldout_tau"], h.get("heldout_n", 0))
        for i, h in enumerate(exp.history)
        if h.get("heldout_tau") is not None
    ]
    ax.set(xlabel="controller round", ylabel="Kendall tau", title="predictor on its next evaluations")
    if not rounds:
        ax.text(
            0.5,
            0.5,
            "no controller rounds with held-out\nlabels recorded",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="gray",
        )
        return
    it, tau, n = (np.array(x) for x in zip(*rounds))
    ax.plot(it, tau, "o-", color="C1")
    for x, y, k in zip(it, tau, n):
        ax.annotate(f"n={k}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlim(0.5, max(it) + 0.5)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylim(min(-0.1, float(np.nanmin(tau)) - 0.1), 1)
    ax.grid(alpha=0.3)


def _plot_cost(ax, exp: Experiment, key: str) -> None:
    pts = [(r[key], r[exp.metric]) for _, _, r in exp.trials if exp.ok(r) and key in r]
    cost, value = (np.array(x, dtype=float) for x in zip(*pts))
    ax.scatter(cost, value, s=8, alpha=0.5, color="C0", label="evaluated")
    front = pareto_front(cost, value, exp.mode)
    ax.step(cost[front], value[front], where="post", color="C3", marker="o", ms=3, label="front")
    ax.set(xlabel=key, ylabel=exp.metric, title=f"{exp.metric} against {key}")
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _html(exp: Experiment, png: Path, title: str, top: int) -> str:
    image = base64.b64encode(png.read_bytes()).decode()
    rows = "".join(
        f"<tr><td>{r['rank']}</td><td>{r[exp.metric]:.4f}</td><td><code>{html.escape(r['arch'])}</code></td></tr>"
        for r in exp.ranked()[:top]
    )
    return (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{len(exp.trials)} trials in <code>{html.escape(str(exp.path))}</code>"
        f"</p><img src='data:image/png;base64,{image}' style='max-width:100%'>"
        f"<h2>Best {top}</h2><table border=1 cellpadding=4><tr><th>rank</th><th>{html.escape(exp.metric)}</th>"
        f"<th>architecture</th></tr>{rows}</table>\n"
    )
