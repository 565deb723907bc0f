"""Weight-sharing image supernet over :class:`~seminas_tune.spaces.mobilenetv2.MobileNetV2Space`.

* :class:`ImageSupernet` holds every candidate MBConv of every layer; ``model(x, arch)`` runs
  one path only (the same modules, in the same order, as the standalone network).
* :class:`MobileNetV2Net` is the standalone network of one architecture; :func:`export_arch`
  builds it with weights inherited from a supernet (ready for retraining).
* :class:`ImageSupernetTask` plugs the supernet into the shared-weights Tune trainable of
  :mod:`seminas_tune.supernet.sharing`: train paths for T steps, re-estimate the scored path's
  BN on fixed calibration batches and report ``val_accuracy``, ``flops`` and ``params``;
  :meth:`ImageSupernetTask.export` gives the standalone network with the same statistics.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from seminas_tune.data.images import (
    ImageDataConfig,
    calibration_batches,
    infinite,
    make_loaders,
    normalize,
    num_classes,
)
from seminas_tune.spaces.mobilenetv2 import MB_OPS, ZERO, MobileNetV2Space, parse_op
from seminas_tune.supernet.sharing import SupernetTask, supernet_from_store  # noqa: F401 (re-export)


# -- building blocks ---------------------------------------------------------------------------
class ConvBNAct(nn.Sequential):
    """Bias-free conv ('same' padding), BatchNorm, optional ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand], depthwise kxk (stride), linear 1x1 project, shortcut."""

    def __init__(self, cin: int, cout: int, kernel: int, expand: int, stride: int):
        super().__init__()
        mid = cin * expand
        layers = [ConvBNAct(cin, mid, 1)] if expand != 1 else []
        layers += [ConvBNAct(mid, mid, kernel, stride, groups=mid), ConvBNAct(mid, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


def _stem(space: MobileNetV2Space) -> nn.Sequential:
    return nn.Sequential(
        ConvBNAct(3, space.stem_channels, 3, 2),
        MBConv(space.stem_channels, space.first_block_channels, 3, 1, 1),
    )


def _head(space: MobileNetV2Space, dropout: float) -> nn.Sequential:
    last = space.layer_specs()[-1].out_channels
    return nn.Sequential(
        ConvBNAct(last, space.head_channels, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(space.head_channels, space.config.num_classes),
    )


def _mbconv(spec, op: str) -> MBConv:
    kernel, expand = parse_op(op)
    return MBConv(spec.in_channels, spec.out_channels, kernel, expand, spec.stride)


def init_weights(model: nn.Module) -> nn.Module:
    """Kaiming (fan-out) convs, unit BN, small-normal classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    return model


# -- networks ----------------------------------------------------------------------------------
class MobileNetV2Net(nn.Module):
    """Standalone network of one architecture: stem, its non-zero layers, head. No supernet code."""

    def __init__(self, space: MobileNetV2Space, arch: Sequence[str], dropout: float = 0.0):
        super().__init__()
        space.check(tuple(arch))
        self.arch = tuple(arch)
        self.stem = _stem(space)
        self.layers = nn.Sequential(*[_mbconv(spec, op) for spec, op in zip(space.layer_specs(), arch) if op != ZERO])
        self.head = _head(space, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


class ImageSupernet(nn.Module):
    """All candidate ops of every layer; ``forward(x, arch)`` runs only ``arch``'s path."""

    def __init__(self, space: MobileNetV2Space, dropout: float = 0.0):
        super().__init__()
        self.space = space
        self.stem = _stem(space)
        self.layers = nn.ModuleList(
            nn.ModuleDict({op: _mbconv(spec, op) for op in MB_OPS}) for spec in space.layer_specs()
        )
        self.head = _head(space, dropout)
        init_weights(self)

    def path_modules(self, arch: Sequence[str]) -> list[nn.Module]:
        """The modules ``arch`` runs through, in order (zero layers contribute none)."""
        self.space.check(tuple(arch))
        ops = [layer[op] for layer, op in zip(self.layers, arch) if op != ZERO]
        return [self.stem, *ops, self.head]

    def path_parameters(self, arch: Sequence[str]) -> list[nn.Parameter]:
        """Trainable parameters of ``arch``'s path."""
        return [p for m in self.path_modules(arch) for p in m.parameters()]

    def forward(self, x: torch.Tensor, arch: Sequence[str]) -> torch.Tensor:
        for module in self.path_modules(arch):
            x = module(x)
        return x


def export_arch(supernet: ImageSupernet, arch: Sequence[str], dropout: float = 0.0) -> MobileNetV2Net:
    """Standalone :class:`MobileNetV2Net` of ``arch`` with the supernet's weights (a copy)."""
    net = MobileNetV2Net(supernet.space, arch, dropout)
    src = supernet.path_modules(arch)
    dst = [net.stem, *net.layers, net.head]
    for s, d in zip(src, dst):
        d.load_state_dict(s.state_dict())
    return net.to(next(supernet.parameters()).device)


# -- batch norm ----------------------------------------------------------------------------------
def _batch_norms(modules: Iterable[nn.Module]) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for mod in modules for m in mod.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, modules: Iterable[nn.Module], batches: Iterable, run: Callable) -> int:
    """Reset the running statistics of the BNs in ``modules`` and re-estimate them.

    ``run(batch)`` does one forward pass; the statistics become the exact average over the
    batches (momentum None). Leaves ``model`` in eval mode. Returns the number of batches used.
    """
    bns = _batch_norms(modules)
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    used = 0
    for batch in batches:
        run(batch)
        used += 1
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    model.eval()
    return used


# -- the Tune task -------------------------------------------------------------------------------
@dataclass
class ImageSupernetConfig:
    """Supernet, optimisation and evaluation settings of an image search.

    Attributes:
        data: where the images are (its ``resolution`` is the search resolution).
        width_mult: channel multiplier of the space.
        num_classes: classifier outputs; None = number of class folders.
        lr, momentum, nesterov, weight_decay, label_smoothing, grad_clip: SGD of each trial.
        lr_schedule: "constant" or "cosine" (from ``lr`` to 0 over the steps of one
            :meth:`ImageSupernetTask.train_paths` call: one trial, or one stand-alone run).
        bn_recal_batches: fixed training batches (centre crops) that re-estimate a path's BN
            statistics before it is scored or exported.
        eval_batches: held-out batches evaluated (None = all of them).
        amp: "bf16" (autocast on CUDA) or "none".
        channels_last: NHWC memory format (faster with cuDNN and oneDNN).
        init_seed: seed of the supernet's initial weights.
        torch_threads: intra-op threads of a trial process (None = torch's default).
    """

    data: ImageDataConfig
    width_mult: float = 1.0
    num_classes: int | None = None
    lr: float = 0.05
    lr_schedule: str = "constant"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    grad_clip: float | None = 5.0
    bn_recal_batches: int = 10
    eval_batches: int | None = None
    amp: str = "bf16"
    channels_last: bool = True
    init_seed: int = 0
    torch_threads: int | None = None

    def __post_init__(self):
        if self.amp not in ("bf16", "none"):
            raise ValueError(f"amp must be 'bf16' or 'none', got {self.amp!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")


def lr_at(cfg: ImageSupernetConfig, step: int, steps: int) -> float:
    """Learning rate of ``step`` (0-based) of a ``steps``-step training call."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return cfg.lr


def autocast(device: torch.device, amp: str):
    """bf16 autocast on CUDA when ``amp == 'bf16'``, else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16" and device.type == "cuda")


class ImageSupernetTask(SupernetTask):
    """One architecture per trial on a shared :class:`ImageSupernet` (see module docstring)."""

    def __init__(self, config: ImageSupernetConfig):
        self.config = config
        classes = config.num_classes or num_classes(config.data.root)
        self.space = MobileNetV2Space(
            resolution=config.data.resolution, width_mult=config.width_mult, num_classes=classes
        )
        self._loaders = None
        self._calibration: list[torch.Tensor] | None = None

    def __getstate__(self) -> dict:  # loaders (and their workers) and cached batches stay local
        return {**self.__dict__, "_loaders": None, "_calibration": None}

    def loaders(self):
        """(train, held-out) loaders of this process, made once with a fresh shuffle seed."""
        if self._loaders is None:
            seed = int.from_bytes(os.urandom(4), "little")
            self._loaders = make_loaders(self.config.data, shuffle_seed=seed)
        return self._loaders

    def _setup(self, model: nn.Module, device: torch.device) -> None:
        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)
        if self.config.channels_last:
            model.to(memory_format=torch.channels_last)

    def _inputs(self, images: torch.Tensor, device: torch.device) -> torch.Tensor:
        x = normalize(images.to(device, non_blocking=True))
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def build(self) -> ImageSupernet:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.init_seed)
            return ImageSupernet(self.space)

    def calibration(self) -> list[torch.Tensor]:
        """This task's fixed BatchNorm calibration batches (made once per process)."""
        if self._calibration is None:
            self._calibration = calibration_batches(self.config.data, self.config.bn_recal_batches)
        return self._calibration

    def train_paths(self, model: ImageSupernet, archs: Sequence[Any], device: torch.device) -> dict:
        cfg = self.config
        self._setup(model, device)
        params = list({id(p): p for a in dict.fromkeys(archs) for p in model.path_parameters(a)}.values())
        opt = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
        loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        model.train()
        batches = infinite(self.loaders()[0])
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        start = time.perf_counter()
        for step, arch in enumerate(archs):  # no host synchronisation inside the loop
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, step, len(archs))
            images, labels = next(batches)
            x, y = self._inputs(images, device), labels.to(device, non_blocking=True)
            with autocast(device, cfg.amp):
                logits = model(x, arch)
                loss = loss_fn(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.path_parameters(arch), cfg.grad_clip)
            opt.step()
            total_loss += loss.detach()
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        steps = len(archs)
        out = {"train_loss": float(total_loss) / max(steps, 1), "train_accuracy": int(correct) / max(seen, 1)}
        elapsed = time.perf_counter() - start
        return {**out, "train_images_per_s": seen / elapsed if elapsed > 0 else 0.0}

    def _forward(self, model: nn.Module, device: torch.device, arch: Any = None):
        def run(images: torch.Tensor) -> torch.Tensor:
            with autocast(device, self.config.amp):
                x = self._inputs(images, device)
                return model(x) if arch is None else model(x, arch)

        return run

    @torch.no_grad()
    def evaluate(self, model: ImageSupernet, arch: Any, device: torch.device) -> dict:
        cfg = self.config
        self._setup(model, device)
        start = time.perf_counter()
        forward = self._forward(model, device, arch)
        recal = recalibrate_bn(model, model.path_modules(arch), self.calibration(), forward)
        correct = torch.zeros((), dtype=torch.long, device=device)
        loss = torch.zeros((), device=device)
        seen = 0
        for i, (images, labels) in enumerate(self.loaders()[1]):
            if cfg.eval_batches is not None and i >= cfg.eval_batches:
                break
            logits = forward(images).float()
            y = labels.to(device, non_blocking=True)
            loss += nn.functional.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        return {
            "val_accuracy": int(correct) / max(seen, 1),
            "val_loss": float(loss) / max(seen, 1),
            "val_images": seen,
            "bn_recal_batches": recal,
            "eval_seconds": time.perf_counter() - start,
            "flops": self.space.flops(arch),
            "params": self.space.params(arch),
        }

    @torch.no_grad()
    def export(self, model: ImageSupernet, arch: Any, device: torch.device | None = None) -> MobileNetV2Net:
        """:func:`export_arch` with BatchNorm re-estimated on the calibration batches (the
        statistics :meth:`evaluate` scored the path with), in eval mode."""
        device = device or next(model.parameters()).device
        net = export_arch(model, arch).to(device)
        self._setup(net, device)
        recalibrate_bn(net, [net], self.calibration(), self._forward(net, device))
        return net
