"""The text-to-speech network of the TTS supernet: searchable ops, encoder–decoder, losses.

A Transformer-TTS-style encoder–decoder. Character embedding + positional encoding -> encoder
layers -> memory; mel pre-net over the previous decoder step's last frame -> decoder layers, each
one searchable op followed by encoder–decoder multi-head attention -> mel frames (``reduction``
frames per decoder step), post-net and stop token. In the supernet every layer holds all 11
candidate ops and an architecture picks one per layer (one path); a static model
(``TTSNet(cfg, arch)``) holds only its path, with the same parameter names.

Training is teacher-forced; :meth:`TTSNet.infer` decodes autoregressively (the whole prefix is
recomputed each step, so supernet path and exported model compute exactly the same thing) until
the stop probability passes a threshold or a length cap is reached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from seminas_tune.data.speech import Batch, CharVocab
from seminas_tune.spaces.tts import TTSSpace, parse_op


@dataclass
class TTSModelConfig:
    """Sizes of the TTS network (paper: 6 + 6 layers, d_model 256+)."""

    n_encoder: int = 6
    n_decoder: int = 6
    d_model: int = 256
    ffn_mult: int = 4
    n_mels: int = 80
    reduction: int = 2
    attn_heads: int = 4
    prenet_dim: int = 256
    postnet_channels: int = 256
    postnet_layers: int = 5
    postnet_kernel: int = 5
    dropout: float = 0.1
    vocab_size: int = field(default_factory=lambda: len(CharVocab()))


# ----------------------------------------------------------------------------------------
# candidate ops: residual pre-norm blocks over (B, T, d); ``pad`` is True at padding
# ----------------------------------------------------------------------------------------
class ConvOp(nn.Module):
    """Gated 1-D convolution (GLU); causal pads on the left only."""

    def __init__(self, d: int, kernel: int, causal: bool, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.conv = nn.Conv1d(d, 2 * d, kernel)
        self.padding = (kernel - 1, 0) if causal else ((kernel - 1) // 2, kernel // 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(x)
        if pad is not None:
            h = h.masked_fill(pad[..., None], 0.0)
        h = F.glu(self.conv(F.pad(h.transpose(1, 2), self.padding)), dim=1).transpose(1, 2)
        return x + self.drop(h)


class TransformerOp(nn.Module):
    """Self-attention (causally masked in the decoder) + feed-forward."""

    def __init__(self, d: int, heads: int, causal: bool, ffn_mult: int, dropout: float):
        super().__init__()
        self.causal = causal
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_mult * d), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_mult * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        mask = None
        if self.causal:
            mask = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device).triu(1)
        h, _ = self.attn(h, h, h, key_padding_mask=None if self.causal else pad, attn_mask=mask, need_weights=False)
        x = x + self.drop(h)
        return x + self.drop(self.ffn(self.norm2(x)))


class LSTMOp(nn.Module):
    """Bidirectional LSTM in the encoder (packed, so padding is ignored), unidirectional in the decoder."""

    def __init__(self, d: int, causal: bool, dropout: float):
        super().__init__()
        self.causal = causal
        self.norm = nn.LayerNorm(d)
        self.lstm = nn.LSTM(d, d if causal else d // 2, batch_first=True, bidirectional=not causal)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(x)
        if pad is not None and not self.causal:
            lengths = (~pad).sum(1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            h = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]
        else:
            h = self.lstm(h)[0]
        return x + self.drop(h)


def make_op(op: str, causal: bool, cfg: TTSModelConfig) -> nn.Module:
    """The module of one op name (:data:`~seminas_tune.spaces.tts.TTS_OPS`)."""
    kind, size = parse_op(op)
    if kind == "conv":
        return ConvOp(cfg.d_model, size, causal, cfg.dropout)
    if kind == "trans":
        return TransformerOp(cfg.d_model, size, causal, cfg.ffn_mult, cfg.dropout)
    return LSTMOp(cfg.d_model, causal, cfg.dropout)


class CrossAttention(nn.Module):
    """Encoder–decoder multi-head attention; returns the head-averaged weights (B, O, I)."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, memory, memory_pad) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.attn(
            self.norm(x), memory, memory, key_padding_mask=memory_pad, need_weights=True, average_attn_weights=True
        )
        return x + self.drop(h), w


def _positions(n: int, d: int, device) -> torch.Tensor:
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


@dataclass
class TTSOutput:
    """Teacher-forced outputs; ``attentions`` holds one (B, O, I) matrix per decoder layer."""

    mel: torch.Tensor  # (B, O*r, n_mels) before the post-net
    mel_post: torch.Tensor  # (B, O*r, n_mels)
    stop_logits: torch.Tensor  # (B, O)
    attentions: list[torch.Tensor]


@dataclass
class Synthesis:
    """Autoregressive outputs; ``steps[b]`` decoder steps (``steps[b] * r`` frames) are valid."""

    mel_post: torch.Tensor
    steps: torch.Tensor
    capped: torch.Tensor  # True where the length cap, not the stop token, ended the sentence
    attentions: list[torch.Tensor]


class TTSNet(nn.Module):
    """The TTS supernet (``arch=None``: all ops in every layer) or one static architecture."""

    def __init__(self, cfg: TTSModelConfig, arch: Sequence[str] | None = None):
        super().__init__()
        self.cfg = cfg
        self.space = TTSSpace(cfg.n_encoder, cfg.n_decoder)
        if arch is not None:
            reason = self.space.invalid_reason(arch)
            if reason is not None:
                raise ValueError(f"invalid TTS architecture: {reason}")
            arch = tuple(arch)
        self.arch = arch
        enc_ops, dec_ops = self.space.split(arch) if arch else ((None,) * cfg.n_encoder, (None,) * cfg.n_decoder)
        layer = lambda op, causal: nn.ModuleDict(  # noqa: E731
            {o: make_op(o, causal, cfg) for o in ((op,) if op else self.space.ops)}
        )
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=CharVocab.PAD)
        self.enc_alpha = nn.Parameter(torch.ones(1))
        self.encoder = nn.ModuleList([layer(op, False) for op in enc_ops])
        self.enc_norm = nn.LayerNorm(d)
        self.prenet = nn.Sequential(
            nn.Linear(cfg.n_mels, cfg.prenet_dim),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(cfg.prenet_dim, cfg.prenet_dim),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(cfg.prenet_dim, d),
        )
        self.dec_alpha = nn.Parameter(torch.ones(1))
        self.decoder = nn.ModuleList([layer(op, True) for op in dec_ops])
        self.cross = nn.ModuleList([CrossAttention(d, cfg.attn_heads, cfg.dropout) for _ in dec_ops])
        self.dec_norm = nn.LayerNorm(d)
        self.mel_out = nn.Linear(d, cfg.n_mels * cfg.reduction)
        self.stop_out = nn.Linear(d, 1)
        convs = []
        c = cfg.postnet_channels
        for i in range(cfg.postnet_layers):
            cin, cout = (cfg.n_mels if i == 0 else c), (cfg.n_mels if i == cfg.postnet_layers - 1 else c)
            convs.append(nn.Conv1d(cin, cout, cfg.postnet_kernel, padding=cfg.postnet_kernel // 2))
        self.postnet = nn.ModuleList(convs)
        self.drop = nn.Dropout(cfg.dropout)

    # -- paths -----------------------------------------------------------------------------
    def _path(self, arch: Sequence[str] | None) -> tuple[str, ...]:
        if arch is None:
            if self.arch is None:
                raise ValueError("the supernet needs an architecture: pass arch=(op, ...)")
            return self.arch
        arch = tuple(arch)
        if self.arch is not None and arch != self.arch:
            raise ValueError(f"this static model is {self.space.describe(self.arch)}, not {self.space.describe(arch)}")
        reason = self.space.invalid_reason(arch)
        if reason is not None:
            raise ValueError(f"invalid TTS architecture: {reason}")
        return arch

    def path_parameters(self, arch: Sequence[str] | None = None) -> list[nn.Parameter]:
        """Parameters used by ``arch``: the shared ones plus the chosen op of every layer."""
        enc, dec = self.space.split(self._path(arch))
        chosen = {
            id(p)
            for layers, ops in ((self.encoder, enc), (self.decoder, dec))
            for lay, op in zip(layers, ops)
            for p in lay[op].parameters()
        }
        searchable = {id(p) for layers in (self.encoder, self.decoder) for p in layers.parameters()}
        return [p for p in self.parameters() if id(p) not in searchable or id(p) in chosen]

    def count_parameters(self, arch: Sequence[str] | None = None) -> int:
        """Number of parameters of ``arch``'s path."""
        return sum(p.numel() for p in self.path_parameters(arch))

    # -- forward -----------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor, token_lens: torch.Tensor, arch) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory (B, I, d) and its padding mask (B, I)."""
        enc, _ = self.space.split(self._path(arch))
        pad = torch.arange(tokens.shape[1], device=tokens.device)[None] >= token_lens.to(tokens.device)[:, None]
        x = self.embed(tokens)  # N(0, 1) entries, the same scale as the positional encoding
        x = self.drop(x + self.enc_alpha * _positions(tokens.shape[1], self.cfg.d_model, x.device))
        for lay, op in zip(self.encoder, enc):
            x = lay[op](x, pad).masked_fill(pad[..., None], 0.0)
        return self.enc_norm(x), pad

    def decode(self, memory, memory_pad, dec_in: torch.Tensor, arch):
        """Mel frames (B, O*r, n_mels), stop logits (B, O) and attentions of decoder inputs (B, O, n_mels)."""
        _, dec = self.space.split(self._path(arch))
        x = self.prenet(dec_in)
        x = self.drop(x + self.dec_alpha * _positions(x.shape[1], self.cfg.d_model, x.device))
        attns = []
        for lay, cross, op in zip(self.decoder, self.cross, dec):
            x, w = cross(lay[op](x, None), memory, memory_pad)
            attns.append(w)
        x = self.dec_norm(x)
        mel = self.mel_out(x).reshape(x.shape[0], -1, self.cfg.n_mels)
        return mel, self.stop_out(x).squeeze(-1), attns

    def postnet_forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = mel.transpose(1, 2)
        for i, conv in enumerate(self.postnet):
            h = conv(h)
            if i < len(self.postnet) - 1:
                h = self.drop(torch.tanh(h))
        return mel + h.transpose(1, 2)

    def decoder_inputs(self, mel: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing inputs: a zero go-frame, then the last frame of each previous step."""
        r = self.cfg.reduction
        last = mel[:, r - 1 :: r]
        return torch.cat([torch.zeros_like(last[:, :1]), last[:, :-1]], dim=1)

    def forward(self, tokens, token_lens, mel, arch: Sequence[str] | None = None) -> TTSOutput:
        """Teacher-forced pass; ``mel`` is (B, T, n_mels) with T a multiple of ``reduction``."""
        memory, pad = self.encode(tokens, token_lens, arch)
        out, stop, attns = self.decode(memory, pad, self.decoder_inputs(mel), arch)
        return TTSOutput(out, self.postnet_forward(out), stop, attns)

    @torch.no_grad()
    def infer(
        self,
        tokens,
        token_lens,
        arch: Sequence[str] | None = None,
        stop_threshold: float = 0.5,
        max_frames_per_token: float = 10.0,
        max_steps: int = 1000,
    ) -> Synthesis:
        """Autoregressive synthesis with a stop threshold and a length cap of
        ``min(max_steps, ceil(tokens * max_frames_per_token / reduction))`` steps per sentence."""
        r, n_mels = self.cfg.reduction, self.cfg.n_mels
        memory, pad = self.encode(tokens, token_lens, arch)
        caps = torch.ceil(token_lens.float() * max_frames_per_token / r).long()
        caps = caps.clamp(1, max_steps).to(tokens.device)
        b = tokens.shape[0]
        steps = torch.zeros(b, dtype=torch.long, device=tokens.device)
        done = torch.zeros(b, dtype=torch.bool, device=tokens.device)
        capped = torch.zeros_like(done)
        dec_in = torch.zeros(b, 1, n_mels, device=tokens.device)
        for s in range(int(caps.max())):
            mel, stop, attns = self.decode(memory, pad, dec_in, arch)
            stopping = ~done & (torch.sigmoid(stop[:, -1]) > stop_threshold)
            hit_cap = ~done & ~stopping & (caps == s + 1)
            steps[stopping | hit_cap] = s + 1
            capped |= hit_cap
            done |= stopping | hit_cap
            if bool(done.all()):
                break
            dec_in = torch.cat([dec_in, mel[:, -1:]], dim=1)
        return Synthesis(self.postnet_forward(mel), steps, capped, attns)


# ----------------------------------------------------------------------------------------
# loss
# ----------------------------------------------------------------------------------------
def tts_loss(out: TTSOutput, batch: Batch, reduction: int, stop_weight: float = 5.0) -> torch.Tensor:
    """Masked L1 of mel before and after the post-net + weighted BCE of the stop token."""
    t = batch.mel.shape[1]
    mask = (torch.arange(t, device=batch.mel.device)[None] < batch.mel_lens[:, None]).unsqueeze(-1)
    denom = mask.sum() * batch.mel.shape[2]
    l1 = lambda pred: ((pred.float() - batch.mel).abs() * mask).sum() / denom  # noqa: E731
    step_end = (torch.arange(out.stop_logits.shape[1], device=batch.mel.device)[None] + 1) * reduction
    stop_target = (step_end >= batch.mel_lens[:, None]).float()
    bce = F.binary_cross_entropy_with_logits(
        out.stop_logits.float(), stop_target, pos_weight=torch.tensor(stop_weight, device=batch.mel.device)
    )
    return l1(out.mel) + l1(out.mel_post) + bce


def guided_attention_loss(
    attentions: Sequence[torch.Tensor], batch: Batch, reduction: int, sigma: float = 0.2
) -> torch.Tensor:
    """Mean off-diagonal attention weight (Tachibana et al., 2018) over all decoder layers."""
    a = torch.stack([w.float() for w in attentions]).mean(0)  # (B, O, I)
    steps = torch.div(batch.mel_lens + reduction - 1, reduction, rounding_mode="floor")
    o = torch.arange(a.shape[1], device=a.device)[None, :, None] / steps[:, None, None]
    i = torch.arange(a.shape[2], device=a.device)[None, None, :] / batch.token_lens[:, None, None].to(a.device)
    valid = (o < 1) & (i < 1)
    penalty = 1.0 - torch.exp(-((i - o) ** 2) / (2 * sigma**2))
    return (a * penalty * valid).sum() / valid.sum()
