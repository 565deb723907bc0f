"""The SemiNAS text-to-speech search space (DESIGN §2).

An architecture is a tuple of op names, the encoder layers first, then the decoder layers.
Every layer picks one of 11 ops: a convolution with kernel 1, 5, 9, 13, 17, 21 or 25, a
Transformer layer with 2, 4 or 8 heads, or an LSTM. Decoder ops are the causal versions (causal
convolution, causally masked self-attention, unidirectional LSTM); the supernet in
:mod:`seminas_tune.supernet.tts` builds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seminas_tune.spaces.categorical import CategoricalSpace

#: The 11 candidate ops of every layer, in token order (token = index + 1; 0 is padding).
TTS_OPS: tuple[str, ...] = (
    "conv1",
    "conv5",
    "conv9",
    "conv13",
    "conv17",
    "conv21",
    "conv25",
    "trans2",
    "trans4",
    "trans8",
    "lstm",
)


def parse_op(op: str) -> tuple[str, int]:
    """``("conv", kernel)``, ``("trans", heads)`` or ``("lstm", 0)`` of an op name."""
    if op not in TTS_OPS:
        raise ValueError(f"unknown TTS op {op!r}; expected one of {TTS_OPS}")
    if op == "lstm":
        return "lstm", 0
    kind = "conv" if op.startswith("conv") else "trans"
    return kind, int(op[len(kind) :])


class TTSSpace(CategoricalSpace):
    """Encoder–decoder TTS backbone, one of :data:`TTS_OPS` per layer (config keys
    ``enc_i`` then ``dec_i``).

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
        super().__init__(decisions={name: list(TTS_OPS) for name in self.layer_names()})

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
        return arch[: self.n_encoder], arch[self.n_encoder :]

    def describe(self, arch: Any) -> str:
        enc, dec = self.split(arch)
        return f"enc[{' '.join(enc)}] dec[{' '.join(dec)}]"
