"""The NAS-Bench-201 cell space: 6 edges, 5 ops each, 15,625 cells.

An architecture is a tuple of 6 op names in the order of the string form
``|e10|+|e20|e21|+|e30|e31|e32|`` (edge ``ij`` from node j into node i).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seminas_tune.spaces.categorical import CategoricalSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def to_string(arch: Sequence[str]) -> str:
    """NB-201 string form of a cell."""
    groups, i = [], 0
    for node in (1, 2, 3):
        groups.append("|" + "|".join(f"{arch[i + j]}~{j}" for j in range(node)) + "|")
        i += node
    return "+".join(groups)


def from_string(text: str) -> tuple[str, ...]:
    """Cell of a NB-201 string form.

    Raises:
        ValueError: the string is not of the form ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.
    """
    groups = text.strip().split("+")
    ops: list[str] = []
    if len(groups) == 3:
        for node, g in enumerate(groups, start=1):
            parts = [p for p in g.split("|") if p]
            if len(parts) != node or any(p.rpartition("~")[2] != str(j) for j, p in enumerate(parts)):
                break
            ops += [p.rpartition("~")[0] for p in parts]
    if len(ops) != 6 or any(op not in NB201_OPS for op in ops):
        raise ValueError(
            f"not a NAS-Bench-201 cell string: {text!r}; expected "
            f"'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with ops from {NB201_OPS}"
        )
    return tuple(ops)


class NASBench201Space(CategoricalSpace):
    """NB-201 cells: one op per edge (config keys ``edge_i_j``). All 15,625 are members; the
    key is the string form.

    Args:
        dataset: optional :class:`~seminas_tune.data.NASBench201Data` (it covers every cell).
    """

    name = "NAS-Bench-201"

    def __init__(self, dataset: Any = None):
        super().__init__(decisions={f"edge_{i}_{j}": list(NB201_OPS) for i, j in EDGES})
        self.dataset = dataset

    def key(self, arch: Sequence[str]) -> str:
        return to_string(arch)

    def describe(self, arch: Sequence[str]) -> str:
        return to_string(arch)
