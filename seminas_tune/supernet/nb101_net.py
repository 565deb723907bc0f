"""The full NAS-Bench-101 network of any NB-101 cell, to retrain a found cell on your data.

As in the NAS-Bench-101 paper (Ying et al. 2019): stem conv3x3-BN-ReLU with 128 channels, 3 stacks
of 3 cells, a 2x2 max-pool (stride 2) between stacks with the next stack's cells doubling the
channels, global average pooling and a linear classifier.

Inside a cell (built from a pruned :class:`~seminas_tune.nasbench.api.ModelSpec`): the cell's
output channels are split as evenly as possible among the vertices that feed the output (earlier
vertices take the remainder), other interior vertices take the widest of their successors; a
vertex sums its inputs (the cell input through a 1x1 conv-BN-ReLU projection, earlier vertices
truncated to its width) and applies its op; the output concatenates its feeders and adds a
projection of the cell input when the input feeds the output directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from seminas_tune.nasbench.api import CONV1X1, CONV3X3, MAXPOOL3X3, ModelSpec, check_spec


def conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    """Bias-free 'same' conv, BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def vertex_op(op: str, channels: int) -> nn.Module:
    """The module of an interior vertex label (channels unchanged)."""
    if op == CONV3X3:
        return conv_bn_relu(channels, channels, 3)
    if op == CONV1X1:
        return conv_bn_relu(channels, channels, 1)
    if op == MAXPOOL3X3:
        return nn.MaxPool2d(3, 1, 1)
    raise ValueError(f"unknown NB-101 op {op!r}: expected {CONV3X3}, {CONV1X1} or {MAXPOOL3X3}")


def vertex_channels(matrix: np.ndarray, cin: int, cout: int) -> list[int]:
    """Channels of every vertex of a pruned cell (input ``cin``, output ``cout``)."""
    n = matrix.shape[0]
    ch = [0] * n
    ch[0], ch[-1] = cin, cout
    feeders = [v for v in range(1, n - 1) if matrix[v, n - 1]]
    if feeders:
        base, extra = divmod(cout, len(feeders))
        for rank, v in enumerate(feeders):
            ch[v] = base + (rank < extra)
    for v in range(n - 2, 0, -1):
        if not matrix[v, n - 1]:
            ch[v] = max(ch[d] for d in range(v + 1, n - 1) if matrix[v, d])
    return ch


class Cell(nn.Module):
    """One NB-101 cell mapping ``cin`` to ``cout`` channels at constant resolution."""

    def __init__(self, spec: ModelSpec, cin: int, cout: int):
        super().__init__()
        self.matrix = np.asarray(spec.matrix, dtype=bool)
        n = self.matrix.shape[0]
        self.channels = vertex_channels(self.matrix, cin, cout)
        ops, projections = {}, {}
        for v in range(1, n - 1):
            ops[str(v)] = vertex_op(spec.ops[v], self.channels[v])
            if self.matrix[0, v]:
                projections[str(v)] = conv_bn_relu(cin, self.channels[v], 1)
        if self.matrix[0, n - 1]:
            projections[str(n - 1)] = conv_bn_relu(cin, cout, 1)
        self.ops = nn.ModuleDict(ops)
        self.projections = nn.ModuleDict(projections)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.matrix.shape[0]
        states: list[torch.Tensor | None] = [x] + [None] * (n - 1)
        for v in range(1, n - 1):
            c = self.channels[v]
            parts = [states[u][:, :c] for u in range(1, v) if self.matrix[u, v]]
            if self.matrix[0, v]:
                parts.append(self.projections[str(v)](x))
            states[v] = self.ops[str(v)](sum(parts[1:], parts[0]))
        feeders = [states[v] for v in range(1, n - 1) if self.matrix[v, n - 1]]
        out = torch.cat(feeders, 1) if feeders else None
        if self.matrix[0, n - 1]:
            proj = self.projections[str(n - 1)](x)
            out = proj if out is None else out + proj
        return out


@dataclass(frozen=True)
class NB101NetConfig:
    """Macro settings of the NB-101 network (the paper's defaults)."""

    num_classes: int = 10
    in_channels: int = 3
    stem_channels: int = 128
    num_stacks: int = 3
    cells_per_stack: int = 3


class NB101Network(nn.Module):
    """Stem, ``num_stacks`` x ``cells_per_stack`` cells with max-pool downsampling, pool, FC.

    Raises:
        seminas_tune.nasbench.api.OutOfDomainError: the spec is not a valid NB-101 cell.
    """

    def __init__(self, spec: ModelSpec, config: NB101NetConfig = NB101NetConfig()):
        super().__init__()
        check_spec(spec)
        c = config.stem_channels
        layers: list[nn.Module] = [conv_bn_relu(config.in_channels, c, 3)]
        for stack in range(config.num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, 2))
            for i in range(config.cells_per_stack):
                cout = c * 2 if stack > 0 and i == 0 else c
                layers.append(Cell(spec, c, cout))
                c = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


def build_nb101_network(spec: ModelSpec, num_classes: int = 10, **kwargs) -> NB101Network:
    """The NB-101 network of ``spec`` (keywords: see :class:`NB101NetConfig`)."""
    return NB101Network(spec, NB101NetConfig(num_classes=num_classes, **kwargs))
