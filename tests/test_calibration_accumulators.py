"""Accumulators equal the one-shot functions on deliberately uneven chunks, and merge."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import brier_score_loss, log_loss

import crossent
from crossent.calibration import (
    CalibrationAccumulator,
    LossAccumulator,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)

CHUNKS = [1, 2, 97, 3, 150, 40, 7]  # 300 rows


def _problem(n=300, k=4, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = rng.integers(0, k, size=n)
    y[: n // 2] = p[: n // 2].argmax(1)  # half of them right
    w = rng.uniform(0, 3, size=n)
    return y, p, w


def _chunks(*arrays, sizes=CHUNKS):
    start = 0
    for size in sizes:
        yield tuple(a[start : start + size] for a in arrays)
        start += size


def _check_equal(acc, y, p, w, n_bins):
    for mode in ("top_label", "classwise", "marginal"):
        for norm, debias in (("l1", False), ("l2", False), ("l2", True), ("max", False)):
            one = expected_calibration_error(
                y, p, n_bins=n_bins, norm=norm, mode=mode, debias=debias, sample_weight=w
            )
            got = acc.expected_calibration_error(norm=norm, mode=mode, debias=debias)
            assert got == pytest.approx(one, abs=1e-12), (mode, norm, debias)
    assert acc.brier_score() == pytest.approx(brier_score(y, p, sample_weight=w), abs=1e-12)
    nll = negative_log_likelihood(y, p, sample_weight=w)
    assert acc.negative_log_likelihood() == pytest.approx(nll, abs=1e-12)
    accuracy = np.sum(w * (p.argmax(1) == y)) / np.sum(w)
    assert acc.accuracy() == pytest.approx(accuracy, abs=1e-12)
    assert acc.total_weight == pytest.approx(np.sum(w), abs=1e-9)
    assert acc.n_samples == len(y)


def test_uneven_chunks_equal_one_shot():
    y, p, w = _problem()
    acc = CalibrationAccumulator(4, n_bins=10)
    for yc, pc, wc in _chunks(y, p, w):
        acc.update(yc, pc, sample_weight=wc)
    _check_equal(acc, y, p, w, 10)


def test_merge_equals_one_shot():
    y, p, w = _problem(seed=1)
    left, right = CalibrationAccumulator(4, n_bins=7), CalibrationAccumulator(4, n_bins=7)
    for yc, pc, wc in _chunks(y[:113], p[:113], w[:113], sizes=[5, 100, 8]):
        left.update(yc, pc, wc)
    for yc, pc, wc in _chunks(y[113:], p[113:], w[113:], sizes=[1, 180, 6]):
        right.update(yc, pc, wc)
    _check_equal(left.merge(right), y, p, w, 7)


def test_binary_accumulator_mixes_vector_and_two_column_chunks():
    rng = np.random.default_rng(2)
    p1 = rng.uniform(size=90)
    y = (rng.uniform(size=90) < p1).astype(int)
    acc = CalibrationAccumulator(2, n_bins=6)
    acc.update(y[:31], p1[:31]).update(y[31:], np.stack([1 - p1[31:], p1[31:]], 1))
    _check_equal(acc, y, np.stack([1 - p1, p1], 1), np.ones(90), 6)
    assert acc.brier_score() == pytest.approx(brier_score_loss(y, p1), abs=1e-12)


def test_bin_statistics_match_direct_binning():
    y, p, w = _problem(seed=3)
    acc = CalibrationAccumulator(4, n_bins=5)
    for yc, pc, wc in _chunks(y, p, w):
        acc.update(yc, pc, wc)
    stats = acc.bin_statistics()
    conf, right = p.max(1), (p.argmax(1) == y)
    for m in range(5):
        members = (conf > m / 5) & (conf <= (m + 1) / 5)
        assert stats.count[m] == members.sum()
        if members.any():
            expected_conf = np.sum(w[members] * conf[members]) / w[members].sum()
            expected_acc = np.sum(w[members] * right[members]) / w[members].sum()
            assert stats.mean_score[m] == pytest.approx(expected_conf, abs=1e-12)
            assert stats.frequency[m] == pytest.approx(expected_acc, abs=1e-12)
        else:
            assert np.isnan(stats.mean_score[m])
    per_class = acc.bin_statistics(class_index=2)
    assert per_class.count.sum() == len(y)


def test_sequential_bootstrap_equals_one_shot():
    y, p, w = _problem(seed=4)
    acc = CalibrationAccumulator(4, n_bins=8, n_bootstrap=40, random_state=11)
    for yc, pc, wc in _chunks(y, p, w):
        acc.update(yc, pc, wc)
    for mode, norm in (("top_label", "l1"), ("classwise", "l2"), ("marginal", "max")):
        one = expected_calibration_error(
            y,
            p,
            n_bins=8,
            norm=norm,
            mode=mode,
            sample_weight=w,
            n_bootstrap=40,
            random_state=11,
        )
        got = acc.expected_calibration_error(norm=norm, mode=mode)
        assert got.value == pytest.approx(one.value, abs=1e-12)
        np.testing.assert_allclose(got.replicates, one.replicates, rtol=0, atol=1e-12)
        assert (got.low, got.high) == pytest.approx((one.low, one.high), abs=1e-12)
    brier = acc.brier_score()
    assert brier.value == pytest.approx(brier_score(y, p, sample_weight=w), abs=1e-12)
    assert brier.low < brier.value < brier.high


def test_merged_bootstrap_from_different_seeds_is_a_valid_bootstrap():
    y, p, w = _problem(seed=5)
    seeds = np.random.SeedSequence(3).spawn(2)
    a = CalibrationAccumulator(
        4, n_bins=8, n_bootstrap=30, random_state=np.random.default_rng(seeds[0])
    )
    b = CalibrationAccumulator(
        4, n_bins=8, n_bootstrap=30, random_state=np.random.default_rng(seeds[1])
    )
    a.update(y[:140], p[:140], w[:140])
    b.update(y[140:], p[140:], w[140:])
    merged = a.merge(b).expected_calibration_error()
    # replicate r is the ECE under weights w * nu_r, nu_r drawn by each worker for its rows
    nu = np.concatenate(
        [
            np.random.default_rng(seeds[0]).poisson(1.0, size=(140, 30)),
            np.random.default_rng(seeds[1]).poisson(1.0, size=(160, 30)),
        ]
    )
    for r in (0, 29):
        ref = expected_calibration_error(y, p, n_bins=8, sample_weight=w * nu[:, r])
        assert merged.replicates[r] == pytest.approx(ref, abs=1e-12)


def test_accumulator_errors():
    acc = CalibrationAccumulator(3, n_bins=4)
    with pytest.raises(ValueError, match="empty"):
        acc.expected_calibration_error()
    with pytest.raises(ValueError, match="expects 3"):
        acc.update(np.array([0, 1]), np.array([[0.5, 0.5], [0.1, 0.9]]))
    with pytest.raises(ValueError, match="cannot merge"):
        acc.merge(CalibrationAccumulator(3, n_bins=5))
    with pytest.raises(TypeError, match="CalibrationAccumulator"):
        acc.merge(LossAccumulator())
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        CalibrationAccumulator(1)
    with pytest.raises(ValueError, match="n_bins must be at least 1"):
        CalibrationAccumulator(3, n_bins=0)
    with pytest.raises(ValueError, match="class_index"):
        acc.update(np.array([0]), np.array([[0.2, 0.3, 0.5]])).bin_statistics(class_index=3)
    with pytest.raises(ValueError, match="use norm='l2'"):
        acc.expected_calibration_error(debias=True)


def test_loss_accumulator_tokens_with_ignore_index_and_weights():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(6, 9, 5)) * 2
    labels = rng.integers(0, 5, size=(6, 9))
    labels[rng.uniform(size=(6, 9)) < 0.3] = -100
    w = rng.uniform(0.5, 2, size=(6, 9))
    acc = LossAccumulator(from_logits=True, gamma=1.5)
    for lo, hi in ((0, 1), (1, 4), (4, 6)):
        acc.update(labels[lo:hi], logits[lo:hi], sample_weight=w[lo:hi])
    kw = {"from_logits": True, "sample_weight": w}
    nll = crossent.categorical_cross_entropy(labels, logits, **kw)
    focal = crossent.categorical_focal_loss(labels, logits, gamma=1.5, **kw)
    assert acc.nll == pytest.approx(float(nll), abs=1e-12)
    assert acc.focal == pytest.approx(float(focal), abs=1e-12)
    assert acc.nll_bits == pytest.approx(float(nll) / np.log(2), abs=1e-12)
    assert acc.perplexity == pytest.approx(np.exp(float(nll)), abs=1e-12)
    valid = labels != -100
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    sq = ((p - np.eye(5)[np.where(valid, labels, 0)]) ** 2).sum(-1)
    assert acc.brier == pytest.approx(np.sum((w * sq)[valid]) / np.sum(w[valid]), abs=1e-12)
    assert acc.total_weight == pytest.approx(np.sum(w[valid]), abs=1e-12)


def test_loss_accumulator_binary_and_merge():
    rng = np.random.default_rng(7)
    p = rng.uniform(0.01, 0.99, size=101)
    y = (rng.uniform(size=101) < p).astype(float)
    a, b = LossAccumulator(), LossAccumulator()
    a.update(y[:3], p[:3])
    b.update(y[3:50], p[3:50]).update(y[50:], p[50:])
    a.merge(b)
    assert a.nll == pytest.approx(float(crossent.binary_cross_entropy(y, p)), abs=1e-12)
    assert a.focal == pytest.approx(float(crossent.binary_focal_loss(y, p)), abs=1e-12)
    assert a.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert a.n_samples == 101
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(LossAccumulator(gamma=1.0))
    # a mean of no rows had read 0 (perplexity 1), and a 3-class chunk had joined binary ones
    with pytest.raises(ValueError, match="no weighted row"):
        _ = LossAccumulator().nll
    with pytest.raises(ValueError, match="no weighted row"):
        _ = LossAccumulator().update(np.array([-100, -100]), np.full((2, 3), 1 / 3)).perplexity
    with pytest.raises(ValueError, match="seen binary targets; it cannot take 3 classes"):
        a.update(np.array([0, 2]), np.full((2, 3), 1 / 3))
    three = LossAccumulator().update(np.array([0, 2]), np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="seen binary targets"):
        a.merge(three)


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 120), max_size=6),
    seed=st.integers(0, 2**16),
    n_bins=st.integers(1, 20),
)
def test_any_chunking_equals_one_shot(cuts, seed, n_bins):
    y, p, w = _problem(n=120, k=3, seed=seed)
    bounds = [0, *sorted(cuts), 120]
    acc = CalibrationAccumulator(3, n_bins=n_bins)
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            acc.update(y[lo:hi], p[lo:hi], w[lo:hi])
    for mode in ("top_label", "classwise"):
        one = expected_calibration_error(y, p, n_bins=n_bins, mode=mode, sample_weight=w)
        assert acc.expected_calibration_error(mode=mode) == pytest.approx(one, abs=1e-12)


def test_chunks_of_zero_weight_add_nothing():
    # a chunk whose weights sum to 0 had been refused; the one-shot functions take such rows
    # (a positive total is all they need), and the bootstrap draws must match
    y, p, w = _problem(n=60)
    w[20:40] = 0.0
    kw = {"n_bins": 10, "n_bootstrap": 50, "random_state": 3}
    acc = CalibrationAccumulator(4, **kw)
    for lo, hi in [(0, 20), (20, 40), (40, 60)]:
        acc.update(y[lo:hi], p[lo:hi], w[lo:hi])
    with pytest.raises(ValueError, match="empty"):  # an empty chunk is refused, as everywhere
        acc.update(y[:0], p[:0])
    want = expected_calibration_error(y, p, sample_weight=w, **kw)
    got = acc.expected_calibration_error()
    assert got.value == pytest.approx(want.value, rel=1e-12)
    np.testing.assert_allclose(got.replicates, want.replicates, rtol=1e-12)
    losses = LossAccumulator().update(y, p)
    assert losses.nll == pytest.approx(negative_log_likelihood(y, p), rel=1e-12)


def test_accumulator_of_zero_total_weight_refuses_to_measure():
    y, p, _ = _problem(n=10)
    acc = CalibrationAccumulator(4).update(y, p, np.zeros(10))
    with pytest.raises(ValueError, match="summing to 0"):
        acc.expected_calibration_error()


def test_loss_accumulator_records_the_class_count_of_accepted_chunks_only():
    # a refused 5-class chunk had fixed the accumulator to 5 classes
    acc = LossAccumulator(from_logits=True)
    with pytest.raises(ValueError, match="class index 7"):
        acc.update(np.array([0, 7]), np.zeros((2, 5)))
    acc.update(np.array([0, 2]), np.zeros((2, 3)))
    assert acc.nll == pytest.approx(np.log(3))


def test_merge_carries_the_class_count_over():
    # merging into a fresh accumulator had left its class count unrecorded: a 5-class chunk
    # was then added to 3-class sums
    three = LossAccumulator(from_logits=True).update(np.array([0, 2]), np.zeros((2, 3)))
    merged = LossAccumulator(from_logits=True).merge(three)
    with pytest.raises(ValueError, match="has seen 3 classes"):
        merged.update(np.array([0, 4]), np.zeros((2, 5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_float32_and_float16_probabilities_accumulate_as_one_shot(dtype):
    # The accumulator had checked and clipped its float64 copy: rows of float32 softmax
    # output (off from 1 by 3e-8) were refused, and p = 1 of a wrong class was clipped at
    # float64's epsilon (NLL 18.2 against log_loss's 8.15).
    rng = np.random.default_rng(3)
    z = rng.normal(size=(500, 10)).astype(np.float32)
    y = rng.integers(0, 10, size=500)
    p = crossent.softmax(z).astype(dtype)
    acc = CalibrationAccumulator(10)
    for part in np.array_split(np.arange(500), 7):
        acc.update(y[part], p[part])
    np.testing.assert_allclose(acc.negative_log_likelihood(), negative_log_likelihood(y, p))
    np.testing.assert_allclose(acc.brier_score(), brier_score(y, p), rtol=1e-12)
    yb, pb = np.array([0, 1]), np.array([1.0, 0.7], dtype=dtype)
    expected = log_loss(yb, pb.astype(np.float32), labels=[0, 1])  # clips at float32's eps
    one_shot = CalibrationAccumulator(2).update(yb, pb).negative_log_likelihood()
    np.testing.assert_allclose(one_shot, expected, rtol=1e-6)
    np.testing.assert_allclose(negative_log_likelihood(yb, pb), expected, rtol=1e-6)
