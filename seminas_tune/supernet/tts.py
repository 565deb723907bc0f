"""Text-to-speech supernet for :class:`~seminas_tune.spaces.tts.TTSSpace`: the Tune task, export and
synthesis (the network itself is :mod:`seminas_tune.supernet.tts_net`).

The network is a Transformer-TTS-style encoder–decoder. Character embedding + positional
encoding -> encoder layers -> memory; mel pre-net over the previous decoder step's last frame ->
decoder layers, each one searchable op followed by encoder–decoder multi-head attention -> mel
frames (``reduction`` frames per decoder step), post-net and stop token. In the supernet every
layer holds all 11 candidate ops and an architecture picks one per layer (one path); everything
else is shared by every path. A static model (``TTSNet(cfg, arch)``) holds only its path, with
the same parameter names, so :func:`export_architecture` is a plain state-dict copy.

Training is teacher-forced; :meth:`TTSNet.infer` decodes autoregressively (the whole prefix is
recomputed each step, so supernet path and exported model compute exactly the same thing) until
the stop probability passes a threshold or a length cap is reached.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from seminas_tune.data.speech import (
    CharVocab,
    MelConfig,
    MelExtractor,
    collate,
    iterate_batches,
    length_batches,
    load_corpus,
    read_metadata,
    save_wav,
    split_utterances,
)
from seminas_tune.metrics import alignment_report, diagonal_focus_rate, word_ids_of_text
from seminas_tune.spaces.tts import TTSSpace
from seminas_tune.supernet.sharing import SupernetTask, supernet_from_store
from seminas_tune.supernet.tts_net import (  # noqa: F401 - re-exported
    TTSModelConfig,
    TTSNet,
    TTSOutput,
    guided_attention_loss,
    tts_loss,
)


# ----------------------------------------------------------------------------------------
# the Tune task
# ----------------------------------------------------------------------------------------
@dataclass
class TTSTaskConfig:
    """A TTS supernet experiment.

    Attributes:
        data_root: LJSpeech-layout corpus (see :mod:`seminas_tune.data.make_espeak_corpus`).
        max_frames: padded mel frames per training batch (batch size by length).
        eval_sentences: held-out sentences synthesised for DFR and skip/repeat counts.
        dfr_band: b of the DFR, in decoder steps (default 10 steps = 20 frames at r = 2).
        dfr_layer: decoder layer whose encoder–decoder attention (all heads averaged) is read.
        min_length_ratio: a synthesised sentence shorter than this fraction of its recording
            scores DFR 0 (the paper's formula rewards stopping at once: with O = 1 every weight
            is inside the band); ``dfr_unpenalised`` reports the plain formula.
        max_frames_per_token: length cap of synthesis, in mel frames per input token.
        amp: bfloat16 autocast for training on CUDA.
        guided_attention: weight of a diagonal guided-attention loss on the teacher-forced
            encoder–decoder attention (0 = off, the paper's setting). It speeds up alignment
            learning on small corpora and short budgets, but pushes every path towards a
            diagonal, so DFR then measures robustness of inference rather than learnability.
    """

    data_root: str
    model: TTSModelConfig = field(default_factory=TTSModelConfig)
    mel: MelConfig = field(default_factory=MelConfig)
    max_frames: int = 6000
    lr: float = 1e-3
    grad_clip: float = 1.0
    n_val: int = 8
    eval_sentences: int = 8
    dfr_band: int = 10
    dfr_layer: int = -1
    min_length_ratio: float = 0.5
    stop_threshold: float = 0.5
    max_frames_per_token: float = 10.0
    max_decoder_steps: int = 1000
    amp: bool = False
    guided_attention: float = 0.0
    seed: int = 0

    @classmethod
    def tiny(cls, data_root: str, **overrides) -> TTSTaskConfig:
        """A CPU-sized task (2 + 2 layers, width 16, 32 mel bins) for tests and ``--smoke`` runs."""
        model = TTSModelConfig(
            n_encoder=2,
            n_decoder=2,
            d_model=16,
            ffn_mult=2,
            n_mels=32,
            attn_heads=2,
            prenet_dim=16,
            postnet_channels=16,
            postnet_layers=2,
        )
        kw = dict(
            model=model,
            mel=MelConfig(hop_length=512, n_mels=32),
            max_frames=400,
            eval_sentences=3,
            dfr_band=3,
            max_frames_per_token=3.0,
        )
        return cls(data_root=str(data_root), **{**kw, **overrides})


_CORPORA: dict[tuple, tuple[list, list]] = {}  # per-process cache of loaded corpora (not config)


def load_split(cfg: TTSTaskConfig) -> tuple[list, list]:
    """``(train items, held-out items)`` of the task's corpus, cached per process."""
    key = (str(Path(cfg.data_root).resolve()), cfg.mel, cfg.n_val, cfg.seed)
    if key not in _CORPORA:
        items = {it.id: it for it in load_corpus(cfg.data_root, cfg.mel)}
        train, val = split_utterances(read_metadata(cfg.data_root), cfg.data_root, cfg.n_val, cfg.seed)
        _CORPORA[key] = [items[u.id] for u in train], [items[u.id] for u in val]
    return _CORPORA[key]


def _arch_seed(space: TTSSpace, arch, seed: int) -> int:
    return zlib.crc32(f"{seed}:{space.describe(arch)}".encode())


def train_steps(model: TTSNet, cfg: TTSTaskConfig, arch, steps: int, device: torch.device) -> dict:
    """Teacher-forced training of ``arch``'s path for ``steps`` steps."""
    return train_on_paths(model, cfg, [arch] * steps, device)


def train_on_paths(model: TTSNet, cfg: TTSTaskConfig, archs: Sequence, device: torch.device) -> dict:
    """One teacher-forced step per entry of ``archs`` (Adam on the paths' parameters only); the
    losses stay on the device until the end."""
    train, _ = load_split(cfg)
    seed = _arch_seed(model.space, archs[0], cfg.seed) if archs else cfg.seed
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    params = list({id(p): p for a in dict.fromkeys(archs) for p in model.path_parameters(a)}.values())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    use_amp = cfg.amp and device.type == "cuda"
    model.train()
    losses = torch.zeros(len(archs), device=device)
    frames = torch.zeros((), dtype=torch.long, device=device)
    batches = iterate_batches(train, cfg.max_frames, cfg.model.reduction, rng)
    for step, arch in enumerate(archs):
        batch = next(batches).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(batch.tokens, batch.token_lens, batch.mel, arch)
        loss = tts_loss(out, batch, cfg.model.reduction)
        if cfg.guided_attention > 0:
            loss = loss + cfg.guided_attention * guided_attention_loss(out.attentions, batch, cfg.model.reduction)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.path_parameters(arch), cfg.grad_clip)
        opt.step()
        losses[step] = loss.detach()
        frames += batch.mel_lens.sum()
    tail = losses[-max(1, len(archs) // 5) :]
    return {"train_loss": float(tail.mean()) if len(archs) else float("nan"), "train_frames": int(frames)}


@torch.no_grad()
def evaluate_arch(model: TTSNet, cfg: TTSTaskConfig, arch, device: torch.device) -> dict:
    """Held-out teacher-forced loss, and DFR / skipped / repeated words of synthesised sentences."""
    _, val = load_split(cfg)
    model.eval()
    r = cfg.model.reduction
    losses, weights = [], []
    for idx in length_batches([len(it.mel) for it in val], cfg.max_frames):
        batch = collate([val[i] for i in idx], r).to(device)
        losses.append(float(tts_loss(model(batch.tokens, batch.token_lens, batch.mel, arch), batch, r)))
        weights.append(len(idx))
    batch = collate(val[: cfg.eval_sentences], r).to(device)
    syn = model.infer(
        batch.tokens, batch.token_lens, arch, cfg.stop_threshold, cfg.max_frames_per_token, cfg.max_decoder_steps
    )
    att = syn.attentions[cfg.dfr_layer]
    raw, dfrs, skipped, repeated, errors, early = [], [], 0, 0, 0, 0
    for b, text in enumerate(batch.texts):
        a = att[b, : int(syn.steps[b]), : int(batch.token_lens[b])]
        raw.append(diagonal_focus_rate(a, cfg.dfr_band))
        too_short = int(syn.steps[b]) < cfg.min_length_ratio * math.ceil(int(batch.mel_lens[b]) / r)
        dfrs.append(0.0 if too_short else raw[-1])
        rep = alignment_report(a, word_ids_of_text(text, extra_positions=1))
        skipped += rep.skipped
        repeated += rep.repeated
        errors += rep.error or too_short
        early += too_short
    return {
        "dfr": float(np.mean(dfrs)),
        "dfr_unpenalised": float(np.mean(raw)),
        "val_loss": float(np.average(losses, weights=weights)),
        "params": model.count_parameters(arch),
        "skipped_words": skipped,
        "repeated_words": repeated,
        "sentence_error_rate": errors / len(dfrs),
        "early_stops": early,
        "capped_sentences": int(syn.capped.sum()),
        "eval_sentences": len(dfrs),
    }


class TTSSupernetTask(SupernetTask):
    """The TTS supernet as a :class:`~seminas_tune.supernet.sharing.SupernetTask`."""

    def __init__(self, cfg: TTSTaskConfig):
        self.cfg = cfg
        self.space = TTSSpace(cfg.model.n_encoder, cfg.model.n_decoder)

    def build(self) -> TTSNet:
        return TTSNet(self.cfg.model)

    def train_paths(self, model, archs, device) -> dict:
        return train_on_paths(model, self.cfg, archs, device)

    def export(self, model, arch, device=None) -> TTSNet:
        """:func:`export_architecture` (the network has no batch statistics), in eval mode."""
        return export_architecture(model, arch).to(device or next(model.parameters()).device).eval()

    def evaluate(self, model, arch, device) -> dict:
        return evaluate_arch(model, self.cfg, arch, device)


# ----------------------------------------------------------------------------------------
# export and synthesis
# ----------------------------------------------------------------------------------------
def export_architecture(supernet: TTSNet, arch: Sequence[str]) -> TTSNet:
    """A standalone model of ``arch`` holding the supernet's weights for its path."""
    static = TTSNet(supernet.cfg, arch)
    own = static.state_dict()
    static.load_state_dict({k: v.detach().clone() for k, v in supernet.state_dict().items() if k in own})
    return static


def save_tts_model(
    model: TTSNet,
    path: str | Path,
    mel: MelConfig | None = None,
    *,
    max_frames_per_token: float = 10.0,
    max_decoder_steps: int = 1000,
) -> Path:
    """Save a static model with everything :func:`load_tts_model` needs: ``mel``, the features
    it was trained on (default ``MelConfig()``), and the synthesis length cap (pass the task's
    ``TTSTaskConfig.max_frames_per_token`` and ``max_decoder_steps``)."""
    mel = mel or MelConfig()
    if model.arch is None:
        raise ValueError("save a static model: export_architecture(supernet, arch) first")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "model": asdict(model.cfg),
        "arch": list(model.arch),
        "mel": asdict(mel),
        "length_cap": {"max_frames_per_token": max_frames_per_token, "max_decoder_steps": max_decoder_steps},
        "state_dict": model.state_dict(),
    }
    torch.save(blob, path)
    return path


def _model_of(blob: dict) -> tuple[TTSNet, MelConfig]:
    model = TTSNet(TTSModelConfig(**blob["model"]), tuple(blob["arch"]))
    model.load_state_dict(blob["state_dict"])
    return model.eval(), MelConfig(**blob["mel"])


def _length_cap(blob: dict) -> dict:
    # files written before the cap was saved get the defaults
    return blob.get("length_cap", {"max_frames_per_token": 10.0, "max_decoder_steps": 1000})


def load_tts_model(path: str | Path) -> tuple[TTSNet, MelConfig]:
    """A model saved by :func:`save_tts_model`, in eval mode, and its mel settings."""
    return _model_of(torch.load(path, map_location="cpu"))


def saved_length_cap(path: str | Path) -> dict:
    """``{"max_frames_per_token", "max_decoder_steps"}`` a model was saved with (the defaults
    for files written before the cap was saved)."""
    return _length_cap(torch.load(path, map_location="cpu"))


def synthesize_mel(
    model: TTSNet, text: str, stop_threshold: float = 0.5, max_frames_per_token: float = 10.0, max_steps: int = 1000
) -> torch.Tensor:
    """Normalised log-mel (frames, n_mels) of one sentence."""
    tokens = torch.tensor([CharVocab().encode(text)])
    device = next(model.parameters()).device
    syn = model.eval().infer(
        tokens.to(device),
        torch.tensor([tokens.shape[1]], device=device),
        stop_threshold=stop_threshold,
        max_frames_per_token=max_frames_per_token,
        max_steps=max_steps,
    )
    return syn.mel_post[0, : int(syn.steps[0]) * model.cfg.reduction].cpu()


def synthesize_to_wav(
    model_path: str | Path, text: str, wav_path: str | Path, griffin_lim_iters: int = 60, stop_threshold: float = 0.5
) -> Path:
    """Synthesise ``text`` with a saved model, within the length cap it was saved with, and
    write a WAV (Griffin-Lim vocoder)."""
    blob = torch.load(model_path, map_location="cpu")  # read once: model, features and cap
    model, mel_cfg = _model_of(blob)
    cap = _length_cap(blob)
    mel = synthesize_mel(model, text, stop_threshold, cap["max_frames_per_token"], cap["max_decoder_steps"])
    save_wav(wav_path, MelExtractor(mel_cfg).to_audio(mel, griffin_lim_iters), mel_cfg.sample_rate)
    return Path(wav_path)


__all__ = [
    "TTSModelConfig",
    "TTSNet",
    "TTSTaskConfig",
    "TTSSupernetTask",
    "export_architecture",
    "save_tts_model",
    "load_tts_model",
    "saved_length_cap",
    "synthesize_mel",
    "synthesize_to_wav",
    "supernet_from_store",
    "tts_loss",
    "guided_attention_loss",
    "train_steps",
    "train_on_paths",
    "evaluate_arch",
    "load_split",
]
