"""Diagonal focus rate and the skip/repeat alignment check."""

import numpy as np
import pytest
import torch

from seminas_tune.metrics import (
    alignment_report,
    diagonal_band_mask,
    diagonal_focus_rate,
    kendall_tau,
    top_k_overlap,
    word_ids_of_text,
)


def staircase(n_out: int, n_in: int) -> np.ndarray:
    """Hard monotonic alignment: decoder step o (1-based) attends encoder position ceil(o*I/O)."""
    a = np.zeros((n_out, n_in))
    for o in range(n_out):
        a[o, int(np.ceil((o + 1) * n_in / n_out)) - 1] = 1.0
    return a


def test_dfr_is_one_for_a_perfect_diagonal():
    assert diagonal_focus_rate(np.eye(17), band=0) == pytest.approx(1.0)
    # k = O/I = 3: steps of one position lie within k - 1 = 2 decoder steps of k*i
    assert diagonal_focus_rate(staircase(60, 20), band=2) == pytest.approx(1.0)
    assert diagonal_focus_rate(staircase(60, 20), band=1) < 1.0


def test_dfr_of_uniform_attention_is_the_band_fraction():
    n_out, n_in, band = 400, 100, 10
    uniform = np.full((n_out, n_in), 1.0 / n_in)
    dfr = diagonal_focus_rate(uniform, band)
    assert dfr == pytest.approx(diagonal_band_mask(n_out, n_in, band).mean())
    assert dfr == pytest.approx((2 * band + 1) / n_out, rel=0.05)


def test_dfr_matches_the_formula_on_random_attention():
    rng = np.random.default_rng(0)
    a = rng.random((23, 9))
    a /= a.sum(1, keepdims=True)
    k, band = 23 / 9, 3
    num = sum(a[o - 1, i - 1] for i in range(1, 10) for o in range(1, 24) if k * i - band <= o <= k * i + band)
    assert diagonal_focus_rate(torch.tensor(a), band) == pytest.approx(num / a.sum())


def test_band_keeps_boundary_cells_exactly():
    # o = 4, i = 25 with O = 14, I = 25, b = 10: |4 - 14/25 * 25| = 10 exactly, on the boundary;
    # in floats 14/25 * 25 = 14.000000000000002 dropped it
    mask = diagonal_band_mask(14, 25, 10)
    assert mask[3, 24] and not mask[2, 24]
    o, i = np.meshgrid(np.arange(1, 15), np.arange(1, 26), indexing="ij")
    assert np.array_equal(mask, np.abs(o * 25 - 14 * i) <= 250)


def test_dfr_is_low_off_the_diagonal_and_rejects_bad_input():
    assert diagonal_focus_rate(np.fliplr(np.eye(30)), band=2) < 0.2
    with pytest.raises(ValueError, match="O x I"):
        diagonal_focus_rate(np.ones(5), band=1)
    with pytest.raises(ValueError, match="band"):
        diagonal_focus_rate(np.eye(3), band=-1)


def test_word_ids_of_text():
    assert word_ids_of_text("hi, you're ok.", extra_positions=1) == [0, 0, -1, -1, 1, 1, 1, 1, 1, 1, -1, 2, 2, -1, -1]


def test_alignment_report_counts_skips_and_repeats():
    text = "the cat sat"
    ids = word_ids_of_text(text, extra_positions=1)
    n_in = len(ids)
    good = alignment_report(staircase(3 * n_in, n_in), ids)
    assert (good.n_words, good.skipped, good.repeated, good.error) == (3, 0, 0, False)

    positions = [0, 1, 2, 8, 9, 10, 11]  # jumps from "the" straight to "sat"
    skip = np.eye(n_in)[positions]
    rep = alignment_report(skip, ids)
    assert (rep.skipped, rep.repeated, rep.error) == (1, 0, True)

    positions = [0, 1, 2, 4, 5, 6, 0, 1, 2, 4, 5, 6, 8, 9, 10, 11]  # "the cat the cat sat"
    rep = alignment_report(np.eye(n_in)[positions], ids)
    assert (rep.skipped, rep.repeated) == (0, 2)
    with pytest.raises(ValueError, match="word_ids"):
        alignment_report(np.eye(4), [0, 1])


def test_kendall_tau_is_tau_b_with_ties_and_ignores_non_finite():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 40).astype(float)
    b = a + rng.integers(0, 4, 40)
    assert kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, np.nan, 3], [1, 2, 0, 3]) == pytest.approx(1.0)
    assert kendall_tau([1, 1, 1], [1, 2, 3]) is None and kendall_tau([1, 2], [1, 2]) is None


def test_top_k_overlap_counts_shared_top_items_and_rejects_bad_k():
    truth = [5.0, 4.0, 3.0, 2.0, 1.0]
    assert top_k_overlap(truth, truth, 2) == 1.0
    assert top_k_overlap([1.0, 2.0, 3.0, 4.0, 5.0], truth, 2) == 0.0
    assert top_k_overlap([5.0, 1.0, 4.0, 2.0, 3.0], truth, 2) == 0.5
    with pytest.raises(ValueError, match="k="):
        top_k_overlap(truth, truth, 6)
