"""Speech data in the LJSpeech layout: metadata, text normalisation, mels, batching, Griffin-Lim.

A corpus directory holds ``metadata.csv`` (``id|text|normalized_text`` per line, no header) and
``wavs/<id>.wav``. Optional ``train_ids.txt`` / ``val_ids.txt`` (one id a line, as written by
:mod:`seminas_tune.data.make_espeak_corpus`) fix the split. WAV files are read and written with
the standard-library ``wave`` module (16-bit PCM), so no audio backend is needed.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import wave
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

# ----------------------------------------------------------------------------------------
# text
# ----------------------------------------------------------------------------------------
_ABBREVIATIONS = {
    "mr": "mister",
    "mrs": "misses",
    "dr": "doctor",
    "st": "saint",
    "co": "company",
    "jr": "junior",
    "maj": "major",
    "gen": "general",
    "drs": "doctors",
    "rev": "reverend",
    "lt": "lieutenant",
    "hon": "honorable",
    "sgt": "sergeant",
    "capt": "captain",
    "esq": "esquire",
    "ltd": "limited",
    "col": "colonel",
    "ft": "fort",
}
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    """English words of a non-negative integer below 10**12."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, word in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return number_to_words(head) + " " + word + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def normalize_text(text: str) -> str:
    """Lower-case, expand abbreviations and integers, keep only :data:`CharVocab` symbols."""
    text = text.lower()
    text = re.sub(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", lambda m: _ABBREVIATIONS[m.group(1)], text)
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    text = re.sub(r"\d+", lambda m: " " + number_to_words(int(m.group(0))) + " ", text)
    text = "".join(ch if ch in CharVocab.SYMBOLS else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ([.,?!;:])", r"\1", text)


class CharVocab:
    """Character ids: 0 padding, 1 end of sentence, then :attr:`SYMBOLS`."""

    SYMBOLS = " abcdefghijklmnopqrstuvwxyz'.,?!-;:"
    PAD, EOS = 0, 1

    def __len__(self) -> int:
        return len(self.SYMBOLS) + 2

    def encode(self, text: str) -> list[int]:
        """Ids of normalised ``text`` followed by the end token."""
        return [self.SYMBOLS.index(ch) + 2 for ch in normalize_text(text)] + [self.EOS]


# ----------------------------------------------------------------------------------------
# corpus files
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    """One row of ``metadata.csv``."""

    id: str
    text: str
    normalized: str
    wav: Path


def read_metadata(root: str | os.PathLike) -> list[Utterance]:
    """Rows of ``<root>/metadata.csv``; ``normalized_text`` defaults to ``text`` when absent.

    Raises:
        FileNotFoundError: no metadata.csv or a listed WAV is missing.
        ValueError: a row does not have 2 or 3 ``|``-separated fields.
    """
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} not found: expected an LJSpeech-layout corpus (metadata.csv + wavs/)")
    rows = []
    for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) not in (2, 3) or not fields[0] or not fields[1].strip():
            raise ValueError(f"{meta}:{n}: expected 'id|text|normalized_text', got {line[:80]!r}")
        wav = root / "wavs" / f"{fields[0]}.wav"
        if not wav.is_file():
            raise FileNotFoundError(f"{meta}:{n}: {wav} not found")
        normalized = fields[2] if len(fields) == 3 and fields[2].strip() else fields[1]
        rows.append(Utterance(fields[0], fields[1], normalize_text(normalized), wav))
    if not rows:
        raise ValueError(f"{meta} has no rows")
    return rows


def split_utterances(
    utts: Sequence[Utterance], root: str | os.PathLike, n_val: int = 8, seed: int = 0
) -> tuple[list[Utterance], list[Utterance]]:
    """``(train, val)``: from ``train_ids.txt``/``val_ids.txt`` when present, else a seeded split."""
    root = Path(root)
    by_id = {u.id: u for u in utts}
    files = root / "train_ids.txt", root / "val_ids.txt"
    if all(f.is_file() for f in files):
        parts = []
        for f in files:
            ids = [line.strip() for line in f.read_text().splitlines() if line.strip()]
            unknown = [i for i in ids if i not in by_id]
            if unknown:
                raise ValueError(f"{f}: ids not in metadata.csv: {unknown[:3]}")
            parts.append([by_id[i] for i in ids])
        return parts[0], parts[1]
    if not 0 < n_val < len(utts):
        raise ValueError(f"n_val={n_val} must be between 1 and {len(utts) - 1} for {len(utts)} utterances")
    order = np.random.default_rng(seed).permutation(len(utts))
    return [utts[i] for i in order[n_val:]], [utts[i] for i in order[:n_val]]


def load_wav(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Mono float waveform in [-1, 1] and its sample rate, from a 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported, got {8 * w.getsampwidth()}-bit")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        data = data.reshape(-1, w.getnchannels()).mean(axis=1)
        return torch.from_numpy(data), w.getframerate()


def save_wav(path: str | os.PathLike, audio: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write a mono float waveform as 16-bit PCM (peak-normalised when it clips)."""
    a = np.asarray(audio.detach().cpu() if hasattr(audio, "detach") else audio, dtype=np.float32).reshape(-1)
    peak = float(np.abs(a).max()) if a.size else 0.0
    if peak > 1.0:
        a = a / peak
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes((a * 32767).astype("<i2").tobytes())


# ----------------------------------------------------------------------------------------
# mels
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MelConfig:
    """Log-mel features; stored mels are ``(log(max(mel, floor)) - mean) / std``."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    floor: float = 1e-5
    mean: float = -5.0
    std: float = 4.0


class MelExtractor:
    """Waveform -> normalised log-mel ``(frames, n_mels)``, and back with Griffin-Lim."""

    def __init__(self, cfg: MelConfig = MelConfig()):
        import torchaudio

        self.cfg = cfg
        self._mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            f_min=cfg.f_min,
            f_max=cfg.f_max,
            n_mels=cfg.n_mels,
            power=1.0,
        )

    def __call__(self, audio: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        if sample_rate is not None and sample_rate != self.cfg.sample_rate:
            import torchaudio

            audio = torchaudio.functional.resample(audio, sample_rate, self.cfg.sample_rate)
        mel = self._mel(audio).clamp_min(self.cfg.floor).log()
        return ((mel - self.cfg.mean) / self.cfg.std).T.contiguous()

    def to_audio(self, mel: torch.Tensor, n_iter: int = 60) -> torch.Tensor:
        """Griffin-Lim waveform of a normalised log-mel ``(frames, n_mels)``."""
        import torchaudio

        c = self.cfg
        mel = mel.detach().float().cpu()
        short = c.n_fft // c.hop_length + 1 - len(mel)  # the inverse STFT needs a few frames
        if short > 0:
            silence = (math.log(c.floor) - c.mean) / c.std
            mel = torch.cat([mel, mel.new_full((short, mel.shape[1]), silence)])
        mag = (mel.T * c.std + c.mean).exp()
        inv = torchaudio.transforms.InverseMelScale(
            n_stft=c.n_fft // 2 + 1, n_mels=c.n_mels, sample_rate=c.sample_rate, f_min=c.f_min, f_max=c.f_max
        )
        gl = torchaudio.transforms.GriffinLim(
            n_fft=c.n_fft, n_iter=n_iter, win_length=c.win_length, hop_length=c.hop_length, power=1.0
        )
        return gl(inv(mag).clamp_min(0.0))


# ----------------------------------------------------------------------------------------
# dataset and batching
# ----------------------------------------------------------------------------------------
@dataclass
class SpeechItem:
    """One encoded utterance."""

    id: str
    text: str
    tokens: torch.Tensor  # (I,) long, ends with CharVocab.EOS
    mel: torch.Tensor  # (T, n_mels) float


def load_corpus(root: str | os.PathLike, mel: MelConfig = MelConfig(), cache: bool = True) -> list[SpeechItem]:
    """Every utterance of an LJSpeech-layout corpus with its mel; mels are cached in the corpus
    directory (``.mels-<hash>.pt``) so Tune trials do not recompute them."""
    root = Path(root)
    utts = read_metadata(root)
    digest = hashlib.sha1(repr((asdict(mel), [(u.id, u.normalized) for u in utts])).encode()).hexdigest()[:12]
    path = root / f".mels-{digest}.pt"
    if cache and path.is_file():
        mels = torch.load(path)
    else:
        extract = MelExtractor(mel)
        mels = {u.id: extract(*load_wav(u.wav)) for u in utts}
        if cache:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save(mels, tmp)
            os.replace(tmp, path)
    vocab = CharVocab()
    return [SpeechItem(u.id, u.normalized, torch.tensor(vocab.encode(u.normalized)), mels[u.id]) for u in utts]


@dataclass
class Batch:
    """Padded tensors of a batch; mel frames padded to a multiple of the reduction factor."""

    tokens: torch.Tensor  # (B, I) long
    token_lens: torch.Tensor  # (B,)
    mel: torch.Tensor  # (B, T, n_mels)
    mel_lens: torch.Tensor  # (B,)
    texts: list[str]

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.tokens.to(device),
            self.token_lens.to(device),
            self.mel.to(device),
            self.mel_lens.to(device),
            self.texts,
        )


def collate(items: Sequence[SpeechItem], reduction: int = 1) -> Batch:
    """Pad a list of items into a :class:`Batch`."""
    tl = torch.tensor([len(it.tokens) for it in items])
    ml = torch.tensor([len(it.mel) for it in items])
    t_max = -(-int(ml.max()) // reduction) * reduction
    tokens = torch.zeros(len(items), int(tl.max()), dtype=torch.long)
    mel = torch.zeros(len(items), t_max, items[0].mel.shape[1])
    for b, it in enumerate(items):
        tokens[b, : len(it.tokens)] = it.tokens
        mel[b, : len(it.mel)] = it.mel
    return Batch(tokens, tl, mel, ml, [it.text for it in items])


def length_batches(
    lengths: Sequence[int], max_frames: int, rng: np.random.Generator | None = None, max_size: int = 64
) -> list[list[int]]:
    """Index batches of similar length whose padded size ``len(batch) * longest`` stays within
    ``max_frames`` (at least one item each); shuffled when ``rng`` is given."""
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    if rng is not None:  # shuffle within equal-ish lengths by adding jitter before sorting
        order = np.argsort(lengths + rng.uniform(0, 0.5 * lengths.std() + 1e-9, len(lengths)), kind="stable")
    batches, current, longest = [], [], 0
    for i in order:
        new_longest = max(longest, int(lengths[i]))
        if current and (new_longest * (len(current) + 1) > max_frames or len(current) >= max_size):
            batches.append(current)
            current, new_longest = [], int(lengths[i])
        current.append(int(i))
        longest = new_longest
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def iterate_batches(
    items: Sequence[SpeechItem], max_frames: int, reduction: int, rng: np.random.Generator
) -> Iterator[Batch]:
    """Endless stream of length-bucketed, shuffled batches."""
    while True:
        for idx in length_batches([len(it.mel) for it in items], max_frames, rng):
            yield collate([items[i] for i in idx], reduction)
