"""The MobileNetV2 / ProxylessNAS image space: 21 searchable MBConv layers in 6 stages.

Network: stem conv3x3 stride 2 -> 32, MBConv(k3, e1) -> 16, then 21 searchable layers in stages
of widths 24/40/80/96/192/320, depths 4/4/4/4/4/1 and first strides 2/2/2/1/2/1, then a 1x1 conv
to 1280, global average pooling and a linear classifier. Each searchable layer is one of
MBConv {k3, k5, k7} x {e3, e6} or ``zero`` (the layer is skipped, i.e. identity); the first layer
of a stage changes width or stride and can never be ``zero``.

An architecture is a tuple of 21 op names, e.g. ``("mb_k3_e3", ..., "zero")``. FLOPs (multiply-
adds of convolutions and the classifier) and parameter counts are computed from the layer
geometry alone; :mod:`seminas_tune.supernet.image` builds the same network from the same
:meth:`MobileNetV2Space.layer_specs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seminas_tune.spaces.categorical import CategoricalSpace

MB_OPS = ("mb_k3_e3", "mb_k3_e6", "mb_k5_e3", "mb_k5_e6", "mb_k7_e3", "mb_k7_e6")
ZERO = "zero"
OPS = MB_OPS + (ZERO,)


def parse_op(op: str) -> tuple[int, int]:
    """``(kernel, expansion)`` of an MBConv op name such as ``mb_k5_e6``."""
    _, k, e = op.split("_")
    return int(k[1:]), int(e[1:])


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10 %."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Spatial size after a 'same'-padded (``kernel // 2``) convolution."""
    pad = kernel // 2
    return (size + 2 * pad - kernel) // stride + 1


@dataclass(frozen=True)
class LayerSpec:
    """Geometry of one searchable layer."""

    index: int
    stage: int
    in_channels: int
    out_channels: int
    stride: int
    in_size: int  # input height (= width) at the space's resolution
    first_of_stage: bool  # never ``zero``

    @property
    def residual(self) -> bool:
        """True when an MBConv here has an identity shortcut (same shape in and out)."""
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass(frozen=True)
class MobileNetV2Config:
    """Fixed (non-searched) settings of the space.

    Attributes:
        resolution: input image side in pixels (FLOPs depend on it).
        width_mult: channel multiplier; channels are rounded to multiples of 8.
        num_classes: classifier outputs.
        stem_channels, first_block_channels, head_channels: widths before width_mult.
        stage_widths, stage_depths, stage_strides: the six searchable stages.
    """

    resolution: int = 224
    width_mult: float = 1.0
    num_classes: int = 1000
    stem_channels: int = 32
    first_block_channels: int = 16
    head_channels: int = 1280
    stage_widths: tuple[int, ...] = (24, 40, 80, 96, 192, 320)
    stage_depths: tuple[int, ...] = (4, 4, 4, 4, 4, 1)
    stage_strides: tuple[int, ...] = (2, 2, 2, 1, 2, 1)


def _conv_cost(
    cin: int, cout: int, k: int, stride: int, size: int, groups: int = 1, bn: bool = True
) -> tuple[int, int, int]:
    """(multiply-adds, parameters, output size) of a bias-free conv (+ BN affine)."""
    out = conv_out(size, k, stride)
    weights = cout * (cin // groups) * k * k
    return weights * out * out, weights + (2 * cout if bn else 0), out


def mbconv_cost(cin: int, cout: int, kernel: int, expand: int, stride: int, size: int) -> tuple[int, int]:
    """(multiply-adds, parameters) of an MBConv block: [1x1 expand], depthwise kxk, 1x1 project."""
    mid = cin * expand
    flops = params = 0
    if expand != 1:
        f, p, _ = _conv_cost(cin, mid, 1, 1, size)
        flops, params = flops + f, params + p
    f, p, size = _conv_cost(mid, mid, kernel, stride, size, groups=mid)
    flops, params = flops + f, params + p
    f, p, _ = _conv_cost(mid, cout, 1, 1, size)
    return flops + f, params + p


class MobileNetV2Space(CategoricalSpace):
    """MobileNetV2 / ProxylessNAS space of 21 layers x 7 ops (6 MBConv + zero).

    Tokens: one per layer, op ``OPS[i]`` is token ``i + 1`` (0 is padding); ``zero`` is not
    allowed on the first layer of a stage. The key drops skipped layers inside each stage, so
    architectures that compute the same network share it.

    Args:
        resolution: input image side (default 224).
        width_mult: channel multiplier (default 1.0).
        num_classes: classifier outputs (default 1000).
        config: a full :class:`MobileNetV2Config`; overrides the three keywords.
    """

    name = "MobileNetV2"

    def __init__(
        self,
        resolution: int = 224,
        width_mult: float = 1.0,
        num_classes: int = 1000,
        config: MobileNetV2Config | None = None,
    ):
        self.config = config or MobileNetV2Config(resolution=resolution, width_mult=width_mult, num_classes=num_classes)
        c = self.config
        if c.resolution < 32 or c.width_mult <= 0 or c.num_classes < 1:
            raise ValueError(
                f"bad MobileNetV2 settings: resolution {c.resolution} (>= 32), "
                f"width_mult {c.width_mult} (> 0), num_classes {c.num_classes} (>= 1)"
            )
        self._specs = self._build_specs()
        self._stage_slices = [[s.index for s in self._specs if s.stage == st] for st in range(len(c.stage_depths))]
        super().__init__(decisions={f"layer_{i:02d}": list(self._ops_at(i)) for i in range(len(self._specs))})

    # -- geometry ------------------------------------------------------------------------
    def channels(self, base: int) -> int:
        """A base width scaled by ``width_mult``."""
        return make_divisible(base * self.config.width_mult)

    @property
    def stem_channels(self) -> int:
        return self.channels(self.config.stem_channels)

    @property
    def first_block_channels(self) -> int:
        return self.channels(self.config.first_block_channels)

    @property
    def head_channels(self) -> int:
        """1x1 head width: never shrunk below the base width (as in MobileNetV2)."""
        return make_divisible(self.config.head_channels * max(1.0, self.config.width_mult))

    def _build_specs(self) -> list[LayerSpec]:
        c = self.config
        size = conv_out(c.resolution, 3, 2)  # stem; the first block keeps the size
        cin, specs = self.first_block_channels, list[LayerSpec]()
        for stage, (w, depth, stride) in enumerate(zip(c.stage_widths, c.stage_depths, c.stage_strides)):
            cout = self.channels(w)
            for j in range(depth):
                s = stride if j == 0 else 1
                specs.append(LayerSpec(len(specs), stage, cin, cout, s, size, j == 0))
                size, cin = conv_out(size, 3, s), cout
        return specs

    def layer_specs(self) -> list[LayerSpec]:
        """Geometry of the searchable layers, in order."""
        return list(self._specs)

    # -- costs ---------------------------------------------------------------------------
    def _fixed_costs(self) -> tuple[int, int]:
        """(multiply-adds, parameters) of stem, first block, head and classifier."""
        c = self.config
        f0, p0, size = _conv_cost(3, self.stem_channels, 3, 2, c.resolution)
        f1, p1 = mbconv_cost(self.stem_channels, self.first_block_channels, 3, 1, 1, size)
        last = self._specs[-1]
        final = conv_out(last.in_size, 3, last.stride)
        f2, p2, _ = _conv_cost(last.out_channels, self.head_channels, 1, 1, final)
        fc = self.head_channels * c.num_classes
        return f0 + f1 + f2 + fc, p0 + p1 + p2 + fc + c.num_classes

    def _layer_costs(self, arch: Sequence[str]) -> tuple[int, int]:
        self.check(arch)
        flops = params = 0
        for spec, op in zip(self._specs, arch):
            if op != ZERO:
                k, e = parse_op(op)
                f, p = mbconv_cost(spec.in_channels, spec.out_channels, k, e, spec.stride, spec.in_size)
                flops, params = flops + f, params + p
        return flops, params

    def flops(self, arch: Sequence[str]) -> float:
        """Multiply-adds of convolutions and the classifier at the space's resolution."""
        return float(self._layer_costs(arch)[0] + self._fixed_costs()[0])

    def params(self, arch: Sequence[str]) -> int:
        """Parameters of the standalone network (conv weights, BN affine, classifier)."""
        return self._layer_costs(arch)[1] + self._fixed_costs()[1]

    # -- membership ----------------------------------------------------------------------
    def check(self, arch: Any) -> None:
        """Raise ValueError with the reason when ``arch`` is not a member of the space."""
        reason = self.invalid_reason(arch)
        if reason is not None:
            raise ValueError(f"not a {self.name} architecture: {reason}")

    def invalid_reason(self, arch: Any) -> str | None:
        if isinstance(arch, tuple) and len(arch) == len(self._specs):
            zeros = [s.index for s in self._specs if s.first_of_stage and arch[s.index] == ZERO]
            if zeros:
                return f"layers {zeros} are the first of their stage and cannot be '{ZERO}'"
        return super().invalid_reason(arch)

    def key(self, arch: Sequence[str]) -> tuple[str, ...]:
        """Per stage: its non-zero ops in order, then its skipped layers."""
        out: list[str] = []
        for idx in self._stage_slices:
            ops = [arch[i] for i in idx if arch[i] != ZERO]
            out += ops + [ZERO] * (len(idx) - len(ops))
        return tuple(out)

    def describe(self, arch: Sequence[str]) -> str:
        """E.g. ``24: k3e3 k5e6 - - | 40: ...`` (``-`` = skipped layer)."""
        parts = []
        for idx in self._stage_slices:
            width = self._specs[idx[0]].out_channels
            ops = " ".join("-" if arch[i] == ZERO else arch[i][3:].replace("_", "") for i in idx)
            parts.append(f"{width}: {ops}")
        return " | ".join(parts)

    def _ops_at(self, position: int) -> tuple[str, ...]:
        return MB_OPS if self._specs[position].first_of_stage else OPS

    # -- sampling and moves ----------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple[str, ...]:
        """Uniform over keys: per stage a number of extra layers (weighted by how many keys
        have it), then uniform ops; returned in canonical (key) form."""
        arch: list[str] = []
        for idx in self._stage_slices:
            extra = len(idx) - 1
            weights = np.array([len(MB_OPS) ** n for n in range(extra + 1)], dtype=float)
            n = int(rng.choice(extra + 1, p=weights / weights.sum()))
            arch += [MB_OPS[i] for i in rng.integers(0, len(MB_OPS), size=n + 1)]
            arch += [ZERO] * (extra - n)
        return tuple(arch)
