"""Search metrics: the TTS supernet's diagonal focus rate and alignment robustness, and the
rank agreements (Kendall tau, top-k overlap) that predictor and supernet benchmarks report.

The TTS metrics read an encoder–decoder attention matrix ``A`` of shape ``O x I`` (decoder steps
x encoder positions), one sentence at a time, without padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _as_matrix(attention) -> np.ndarray:
    a = attention.detach().float().cpu().numpy() if hasattr(attention, "detach") else np.asarray(attention)
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"attention must be a non-empty O x I matrix, got shape {a.shape}")
    return a


def diagonal_band_mask(n_out: int, n_in: int, band: float) -> np.ndarray:
    """Boolean ``O x I`` mask of the paper's band ``|o - k*i| <= b`` with 1-based o, i and
    k = O/I, computed as ``|o*I - O*i| <= b*I`` in integers (a float ``k*i`` drops boundary
    cells, e.g. O = 14, I = 25, b = 10)."""
    if band < 0:
        raise ValueError(f"band must be >= 0, got {band}")
    o = np.arange(1, n_out + 1, dtype=np.int64)[:, None]
    i = np.arange(1, n_in + 1, dtype=np.int64)[None, :]
    limit = int(band) * n_in if float(band).is_integer() else band * n_in
    return np.abs(o * n_in - n_out * i) <= limit


def diagonal_focus_rate(attention, band: float) -> float:
    """Diagonal focus rate of one attention matrix (SemiNAS, Luo et al. 2020, Eq. for DFR).

    ``DFR = sum_i sum_{o=k*i-b}^{k*i+b} A[o, i] / sum_i sum_o A[o, i]`` with ``k = O/I``,
    1-based indices and the inner sum clipped to ``1..O``.

    Args:
        attention: ``O x I`` array or tensor (decoder steps x encoder positions), no padding.
        band: the band half-width ``b`` in decoder steps.

    Returns:
        The fraction of attention mass inside the band, in [0, 1] (0 for an all-zero matrix).
    """
    a = _as_matrix(attention)
    total = a.sum()
    if total <= 0:
        return 0.0
    return float(a[diagonal_band_mask(*a.shape, band)].sum() / total)


@dataclass
class AlignmentReport:
    """Robustness of one sentence's alignment.

    Attributes:
        n_words: words in the sentence.
        skipped: words never attended (no decoder step puts its attention maximum on them).
        repeated: words attended in more than one separate run (attention moved back to them).
    """

    n_words: int
    skipped: int
    repeated: int

    @property
    def error(self) -> bool:
        """True when any word was skipped or repeated (the paper's sentence error)."""
        return self.skipped > 0 or self.repeated > 0


def word_ids_of_text(text: str, extra_positions: int = 0) -> list[int]:
    """Word index of every character (-1 for spaces and punctuation), plus ``extra_positions``
    trailing -1 entries (e.g. an end-of-sentence token)."""
    ids, word, in_word = [], -1, False
    for ch in text:
        if ch.isalnum() or (ch == "'" and in_word):
            if not in_word:
                word += 1
                in_word = True
            ids.append(word)
        else:
            in_word = False
            ids.append(-1)
    return ids + [-1] * extra_positions


def alignment_report(attention, word_ids: Sequence[int]) -> AlignmentReport:
    """Words skipped and repeated, read from the per-step attention maximum.

    Args:
        attention: ``O x I`` attention of one sentence.
        word_ids: length-``I`` word index of each encoder position; -1 for positions that belong
            to no word (spaces, punctuation, end token), which are ignored.
    """
    a = _as_matrix(attention)
    word_ids = np.asarray(word_ids)
    if word_ids.shape != (a.shape[1],):
        raise ValueError(f"word_ids has {word_ids.size} entries, attention has {a.shape[1]} positions")
    n_words = int(word_ids.max()) + 1 if word_ids.size else 0
    attended = word_ids[a.argmax(axis=1)]
    attended = attended[attended >= 0]
    runs = np.zeros(n_words, dtype=int)
    if attended.size:
        starts = np.concatenate([[True], attended[1:] != attended[:-1]])
        np.add.at(runs, attended[starts], 1)
    return AlignmentReport(n_words=n_words, skipped=int((runs == 0).sum()), repeated=int((runs > 1).sum()))


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-b of two score lists over the pairs where both are finite (None with fewer
    than 3 such pairs or when either list is constant). NumPy only, O(n^2) memory."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return None
    upper = np.triu_indices(len(x), 1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    pairs_x, pairs_y = np.count_nonzero(dx), np.count_nonzero(dy)
    if pairs_x == 0 or pairs_y == 0:
        return None
    return float((dx * dy).sum() / np.sqrt(pairs_x * pairs_y))


def top_k_overlap(pred: Sequence[float], truth: Sequence[float], k: int) -> float:
    """Share of the ``k`` best items by ``truth`` that are also among the ``k`` best by ``pred``
    (precision at k of a predictor's ranking; higher is better)."""
    p, t = np.asarray(pred, dtype=float), np.asarray(truth, dtype=float)
    if p.shape != t.shape or not 1 <= k <= len(t):
        raise ValueError(f"need equal-length score lists and 1 <= k <= their length, got {p.shape}, {t.shape}, k={k}")
    return len(set(np.argsort(-p)[:k]) & set(np.argsort(-t)[:k])) / k
