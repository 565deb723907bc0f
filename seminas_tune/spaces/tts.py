"""The SemiNAS text-to-speech search space (DESIGN §2).

An architecture is a tuple of op names, the encoder layers first, then the decoder layers.
Every layer picks one of 11 ops: a convolution with kernel 1, 5, 9, 13, 17, 21 or 25, a
Transformer layer with 2, 4 or 8 heads, or an LSTM. Decoder ops are the causal versions (causal
convolution, causally masked self-attention, unidirectional LSTM); the supernet in
:mod:`seminas_tune.supernet.tts` builds them.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np

from seminas_tune.spaces.base import SearchSpace

#: The 11 candidate ops of every layer, in token order (token = index + 1; 0 is padding).
TTS_OPS: tuple[str, ...] = (
    "conv1", "conv5", "conv9", "conv13", "conv17", "conv21", "conv25",
    "trans2", "trans4", "trans8", "lstm",
)


def parse_op(op: str) -> tuple[str, int]:
    """``("conv", kernel)``, ``("trans", heads)`` or ``("lstm", 0)`` of an op name."""
    if op not in TTS_OPS:
        raise ValueError(f"unknown TTS op {op!r}; expected one of {TTS_OPS}")
    if op == "lstm":
        return "lstm", 0
    kind = "conv" if op.startswith("conv") else "trans"
    return kind, int(op[len(kind):])


class TTSSpace(SearchSpace):
    """Encoder–decoder TTS backbone, one of :data:`TTS_OPS` per layer.

    Args:
        n_encoder: encoder layers (paper: 6).
        n_decoder: decoder layers (paper: 6).
    """

    name = "tts"

    def __init__(self, n_encoder: int = 6, n_decoder: int = 6):
        if n_encoder < 1 or n_decoder < 1:
            raise ValueError(f"TTSSpace needs >= 1 encoder and decoder layer, got {n_encoder}, {n_decoder}")
        self.n_encoder = int(n_encoder)
        self.n_decoder = int(n_decoder)
        self.ops = TTS_OPS

    def __repr__(self) -> str:
        return f"TTSSpace(n_encoder={self.n_encoder}, n_decoder={self.n_decoder})"

    @property
    def n_layers(self) -> int:
        return self.n_encoder + self.n_decoder

    def layer_names(self) -> list[str]:
        """Config keys, one per layer: ``enc_0 … enc_{E-1}, dec_0 … dec_{D-1}``."""
        return [f"enc_{i}" for i in range(self.n_encoder)] + [f"dec_{i}" for i in range(self.n_decoder)]

    def split(self, arch: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(encoder ops, decoder ops)`` of an architecture."""
        arch = tuple(arch)
        return arch[: self.n_encoder], arch[self.n_encoder:]

    # -- sampling and validity -----------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> tuple[str, ...]:
        return tuple(self.ops[i] for i in rng.integers(len(self.ops), size=self.n_layers))

    def invalid_reason(self, arch: Any) -> str | None:
        if not isinstance(arch, (tuple, list)):
            return f"architecture must be a tuple of op names, got {type(arch).__name__}"
        if len(arch) != self.n_layers:
            return f"architecture has {len(arch)} layers, expected {self.n_layers}"
        for i, op in enumerate(arch):
            if op not in self.ops:
                return f"layer {i} op {op!r} is not one of {self.ops}"
        return None

    def key(self, arch: Any) -> Hashable:
        return tuple(arch)

    def describe(self, arch: Any) -> str:
        enc, dec = self.split(arch)
        return f"enc[{' '.join(enc)}] dec[{' '.join(dec)}]"

    # -- controller tokens ---------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.ops) + 1

    @property
    def seq_len(self) -> int:
        return self.n_layers

    def allowed_tokens(self, position: int) -> Sequence[int]:
        if not 0 <= position < self.seq_len:
            raise IndexError(f"position {position} outside 0..{self.seq_len - 1}")
        return list(range(1, self.vocab_size))

    def encode(self, arch: Any) -> list[int]:
        reason = self.invalid_reason(arch)
        if reason is not None:
            raise ValueError(f"cannot encode: {reason}")
        return [self.ops.index(op) + 1 for op in arch]

    def decode(self, tokens: Sequence[int]) -> tuple[str, ...] | None:
        tokens = [int(t) for t in tokens]
        if len(tokens) != self.seq_len or any(not 1 <= t < self.vocab_size for t in tokens):
            return None
        return tuple(self.ops[t - 1] for t in tokens)

    # -- local moves ---------------------------------------------------------------------
    def mutate(self, arch: Any, rng: np.random.Generator) -> tuple[str, ...]:
        arch = list(arch)
        layer = int(rng.integers(self.n_layers))
        others = [op for op in self.ops if op != arch[layer]]
        arch[layer] = others[int(rng.integers(len(others)))]
        return tuple(arch)

    def neighbours(self, arch: Any) -> list[tuple[str, ...]]:
        arch = tuple(arch)
        return [arch[:i] + (op,) + arch[i + 1:]
                for i in range(self.n_layers) for op in self.ops if op != arch[i]]

    # -- flat Tune config ----------------------------------------------------------------
    def choices(self) -> dict[str, list[Any]]:
        return {name: list(self.ops) for name in self.layer_names()}

    def to_config(self, arch: Any) -> dict[str, Any]:
        return dict(zip(self.layer_names(), arch))

    def _from_checked_config(self, config: dict[str, Any]) -> tuple[str, ...]:
        return tuple(config[name] for name in self.layer_names())
