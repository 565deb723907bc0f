"""Your own search space: a tabular benchmark of 4-node cells, searched by SemiNAS through Tune.

The guide ``docs/custom_space.md`` walks through this file; ``tests/test_custom_space_guide.py``
runs the package's contract suites on it. The table here is the bundled NAS-Bench-201 one
(CIFAR-10 validation accuracy after 12 epochs); yours would be a dict you measured.

    python examples/custom_space.py
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ray import tune

from seminas_tune import SemiNASSearcher
from seminas_tune.data import load_nasbench201
from seminas_tune.spaces import SearchSpace
from seminas_tune.spaces.nasbench201 import to_string

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from); node 0 in, node 3 out


class CellTableSpace(SearchSpace):
    """Cells with one op per edge; members are the cells of ``table`` (cell string -> accuracy)
    whose output depends on their input. Cells that differ only on edges off every
    input-output path compute the same function and share a key."""

    name = "cell-table"

    def __init__(self, table: dict[str, float]):
        self.table = table

    # -- what a space must implement --------------------------------------------------------
    def choices(self) -> dict[str, list[str]]:
        return {f"edge_{i}_{j}": list(OPS) for i, j in EDGES}

    def to_config(self, arch: tuple) -> dict[str, Any]:
        return {f"edge_{i}_{j}": op for (i, j), op in zip(EDGES, arch)}

    def from_choices(self, values: dict[str, str]) -> tuple:
        return tuple(values[f"edge_{i}_{j}"] for i, j in EDGES)

    # -- what it may override ---------------------------------------------------------------
    def invalid_reason(self, arch: Any) -> str | None:
        if not isinstance(arch, tuple) or len(arch) != len(EDGES) or not set(arch) <= set(OPS):
            return f"expected a tuple of {len(EDGES)} ops from {OPS}, got {arch!r}"
        if not live_edges(arch):
            return "no path from input to output: the cell outputs zeros"
        if to_string(arch) not in self.table:
            return "not in the table"
        return None

    def key(self, arch: tuple) -> Hashable:
        live = live_edges(arch)
        return tuple(op if edge in live else "none" for edge, op in zip(EDGES, arch))

    def describe(self, arch: tuple) -> str:
        return to_string(arch)


def live_edges(arch: tuple) -> set[tuple[int, int]]:
    """Edges with an op on some path from node 0 to node 3."""
    edges = {e for e, op in zip(EDGES, arch) if op != "none"}
    fed, feeds = {0}, {3}  # nodes reached from the input / reaching the output
    for node in (1, 2, 3):
        if any((node, j) in edges for j in fed):
            fed.add(node)
    for node in (2, 1, 0):
        if any((i, node) in edges for i in feeds):
            feeds.add(node)
    return {(i, j) for i, j in edges if j in fed and i in feeds}


def cell_table() -> dict[str, float]:
    """The measured table: here NB-201's CIFAR-10 validation accuracy (percent) by cell string."""
    return load_nasbench201().table["cifar10-val"].to_dict()


def evaluate(config: dict) -> dict[str, float]:
    """What a trial reports: the table's accuracy of the config's cell."""
    arch = tuple(config[f"edge_{i}_{j}"] for i, j in EDGES)
    return {"val_accuracy": load_nasbench201().accuracy(to_string(arch))}


def trainable(config: dict) -> None:
    tune.report(evaluate(config))


def search(max_queries: int = 60, seed: int = 0, storage_path: str | None = None, **seminas_kwargs):
    """SemiNAS over the space through ``tune.Tuner``; returns the ResultGrid and the searcher."""
    space = CellTableSpace(cell_table())
    settings = {"num_initial": 20, "num_new": 10, "top_k": 10, "num_unlabeled": 1000, **seminas_kwargs}
    # The space is the searcher's own, so Tune's param_space is empty and Tune does not hand
    # TuneConfig's metric and mode over: the searcher needs them itself.
    searcher = SemiNASSearcher(
        space=space, metric="val_accuracy", mode="max", max_queries=max_queries, seed=seed, **settings
    )
    grid = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(name="cell_table", storage_path=storage_path, verbose=0),
    ).fit()
    return grid, searcher


if __name__ == "__main__":
    grid, searcher = search()
    best = grid.get_best_result(metric="val_accuracy", mode="max")
    arch = searcher.space.from_config(best.config)
    print(f"best of {len(grid)} cells: {best.metrics['val_accuracy']:.2f} % {searcher.space.describe(arch)}")
    print(f"table's best: {max(cell_table().values()):.2f} %")
