"""Make a real speech corpus in the LJSpeech layout with the espeak-ng synthesiser.

Writes ``OUT/metadata.csv`` (``id|text|normalized_text``), ``OUT/wavs/<id>.wav`` and the split
files ``OUT/train_ids.txt`` / ``OUT/val_ids.txt``. Sentences come from ``--sentences FILE``
(one a line) or from a built-in seeded sentence generator. ``--low-resource K`` keeps only K
training pairs, as in the paper's low-resource TTS setting (held-out sentences unchanged).

    python -m seminas_tune.data.make_espeak_corpus --out data/espeak300 --n 300 --val 20
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seminas_tune.data.speech import load_wav, normalize_text, save_wav

_SUBJECTS = (
    "the old farmer",
    "a young girl",
    "my brother",
    "the teacher",
    "our neighbour",
    "the doctor",
    "a tired soldier",
    "the little boy",
    "his mother",
    "the captain",
    "a quiet student",
    "the baker",
    "Mr. Smith",
    "Dr. Brown",
    "the driver",
    "her friend",
)
_VERBS = (
    "found",
    "painted",
    "carried",
    "opened",
    "watched",
    "cleaned",
    "bought",
    "dropped",
    "fixed",
    "borrowed",
    "counted",
    "followed",
    "sold",
    "hid",
    "washed",
    "described",
)
_OBJECTS = (
    "a red box",
    "the wooden door",
    "an empty bottle",
    "the green boat",
    "a heavy stone",
    "the broken clock",
    "a small garden",
    "the yellow kite",
    "an old letter",
    "the silver key",
    "a warm blanket",
    "the long rope",
    "a paper map",
    "the narrow bridge",
)
_TAILS = (
    "near the river.",
    "before dinner.",
    "in the morning.",
    "after the storm.",
    "at the station.",
    "behind the house.",
    "during the winter.",
    "on Monday.",
    "with great care.",
    "for 3 hours.",
    "by the 12 windows.",
    "in 1999.",
    "without a word.",
    "under the table.",
)
_QUESTIONS = ("Did {s} really see {o}?", "Why did {s} leave {o} {t}", "Where is {o} today?")


def default_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct English sentences from a small seeded grammar (with numbers and titles)."""
    rng = np.random.default_rng(seed)
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    out: list[str] = []
    seen = set()
    while len(out) < n:
        s, v, o, t = pick(_SUBJECTS), pick(_VERBS), pick(_OBJECTS), pick(_TAILS)
        if rng.random() < 0.15:
            sent = pick(_QUESTIONS).format(s=s, o=o, t=t.rstrip(".") + "?")
        else:
            sent = f"{s} {v} {o} {t}"
        sent = sent[0].upper() + sent[1:]
        if sent not in seen:
            seen.add(sent)
            out.append(sent)
    return out


@dataclass
class CorpusConfig:
    """Options of :func:`make_corpus` (see the command-line help)."""

    out: str
    n: int = 40
    val: int = 8
    low_resource: int | None = None
    voice: str = "en-us"
    speed: int = 160
    sample_rate: int | None = None
    seed: int = 0
    jobs: int = 4
    prefix: str = "ESP"


def espeak_binary() -> str:
    """Path of espeak-ng; a one-line error when it is not installed."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise RuntimeError("espeak-ng not found: install it (Debian/Ubuntu: apt-get install -y espeak-ng)")
    return path


def make_corpus(cfg: CorpusConfig, sentences: Sequence[str] | None = None) -> Path:
    """Synthesise ``sentences`` (default: :func:`default_sentences`) into an LJSpeech-layout corpus."""
    binary = espeak_binary()
    sentences = list(sentences) if sentences is not None else default_sentences(cfg.n, cfg.seed)
    sentences = [s.strip() for s in sentences if s.strip()][: cfg.n]
    if not cfg.val < len(sentences):
        raise ValueError(f"--val {cfg.val} must be smaller than the number of sentences ({len(sentences)})")
    out = Path(cfg.out)
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    ids = [f"{cfg.prefix}-{i:05d}" for i in range(len(sentences))]

    def synth(job: tuple[str, str]) -> None:
        uid, text = job
        wav = out / "wavs" / f"{uid}.wav"
        with tempfile.NamedTemporaryFile(suffix=".wav", dir=out) as tmp:
            subprocess.run(
                [binary, "-v", cfg.voice, "-s", str(cfg.speed), "-w", tmp.name, text], check=True, capture_output=True
            )
            audio, sr = load_wav(tmp.name)
        if cfg.sample_rate and cfg.sample_rate != sr:
            import torchaudio

            audio, sr = torchaudio.functional.resample(audio, sr, cfg.sample_rate), cfg.sample_rate
        save_wav(wav, audio, sr)

    with ThreadPoolExecutor(max(1, cfg.jobs)) as pool:
        list(pool.map(synth, zip(ids, sentences)))
    rows = [f"{uid}|{text}|{normalize_text(text)}" for uid, text in zip(ids, sentences)]
    (out / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")

    order = np.random.default_rng(cfg.seed).permutation(len(ids))
    val = [ids[i] for i in order[: cfg.val]]
    train = [ids[i] for i in order[cfg.val :]]
    if cfg.low_resource is not None:
        if not 0 < cfg.low_resource <= len(train):
            raise ValueError(f"--low-resource {cfg.low_resource} must be in 1..{len(train)}")
        train = train[: cfg.low_resource]
    (out / "train_ids.txt").write_text("\n".join(train) + "\n")
    (out / "val_ids.txt").write_text("\n".join(val) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="corpus directory to create")
    p.add_argument("--n", type=int, default=CorpusConfig.n, help="number of utterances")
    p.add_argument("--sentences", help="text file, one sentence a line (default: built-in generator)")
    p.add_argument("--val", type=int, default=CorpusConfig.val, help="held-out utterances")
    p.add_argument("--low-resource", type=int, help="keep only this many training utterances")
    p.add_argument("--voice", default=CorpusConfig.voice)
    p.add_argument("--speed", type=int, default=CorpusConfig.speed, help="words per minute")
    p.add_argument("--sample-rate", type=int, help="resample WAVs to this rate (espeak-ng: 22050)")
    p.add_argument("--seed", type=int, default=CorpusConfig.seed)
    p.add_argument("--jobs", type=int, default=CorpusConfig.jobs)
    a = p.parse_args(argv)
    sentences = Path(a.sentences).read_text(encoding="utf-8").splitlines() if a.sentences else None
    cfg = CorpusConfig(
        out=a.out,
        n=a.n,
        val=a.val,
        low_resource=a.low_resource,
        voice=a.voice,
        speed=a.speed,
        sample_rate=a.sample_rate,
        seed=a.seed,
        jobs=a.jobs,
    )
    out = make_corpus(cfg, sentences)
    print(f"wrote {out}/metadata.csv and {out}/wavs/")


if __name__ == "__main__":
    main()
