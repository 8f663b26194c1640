"""Calibration metrics against hand-computed bins, torchmetrics' and Kumar et al.'s definitions
(re-implemented here from their documented formulas) and scikit-learn."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from crossent.calibration import (
    BootstrapResult,
    brier_score,
    expected_calibration_error,
    metrics,
    negative_log_likelihood,
)


def _random_problem(n=300, k=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row**0.7 / (row**0.7).sum()) for row in p])
    return y, p


def _torchmetrics_style(conf, acc, n_bins, norm):
    """torchmetrics' binary/multiclass calibration error as documented: bins from
    ``linspace(0, 1, n_bins + 1)``, prop-weighted |acc - conf| (l1), max (max), sqrt of the
    prop-weighted square (l2). Loops, no vectorisation: an independent implementation."""
    bounds = np.linspace(0, 1, n_bins + 1)
    total, worst, sq = 0.0, 0.0, 0.0
    for lo, hi in itertools.pairwise(bounds):
        members = [i for i in range(len(conf)) if lo <= conf[i] < hi]  # [lo, hi)
        if not members:
            continue
        prop = len(members) / len(conf)
        gap = abs(np.mean(acc[members]) - np.mean(conf[members]))
        total += prop * gap
        worst = max(worst, gap)
        sq += prop * gap**2
    return {"l1": total, "max": worst, "l2": np.sqrt(sq)}[norm]


def _kumar_unbiased_square(pairs_by_bin):
    """Kumar et al.'s debiased squared calibration error of binned (prob, label) lists."""
    n = sum(len(b) for b in pairs_by_bin)
    out = 0.0
    for data in pairs_by_bin:
        if len(data) < 2:
            continue
        probs = np.array([d[0] for d in data])
        labels = np.array([d[1] for d in data])
        biased = (probs.mean() - labels.mean()) ** 2
        variance = labels.mean() * (1 - labels.mean()) / (len(data) - 1)
        out += len(data) / n * (biased - variance)
    return out


def _bin_lists(scores, outcomes, n_bins):
    bins = [[] for _ in range(n_bins)]
    for s, o in zip(scores, outcomes, strict=True):
        m = max(int(np.ceil(s * n_bins)) - 1, 0)  # (lo, hi], 0 in the first bin
        bins[m].append((s, o))
    return bins


def test_hand_computed_bins():
    # 5 bins of width 0.2. Top-label confidences and correctness:
    # 0.3 (wrong) -> bin 1; 0.55 (right), 0.58 (wrong) -> bin 2; 0.9 (right), 0.95 (right),
    # 0.85 (wrong) -> bin 4. Bin gaps: |0 - 0.3| = 0.3; |0.5 - 0.565| = 0.065;
    # |2/3 - 0.9| = 0.2333...; ECE = (1 * 0.3 + 2 * 0.065 + 3 * 0.7/3) / 6.
    p = np.array(
        [
            [0.3, 0.3, 0.4 - 0.1, 0.1],  # conf 0.3 at class 0 (first max), label 1
            [0.55, 0.15, 0.15, 0.15],
            [0.58, 0.22, 0.1, 0.1],
            [0.9, 0.05, 0.03, 0.02],
            [0.02, 0.95, 0.02, 0.01],
            [0.85, 0.05, 0.05, 0.05],
        ]
    )
    y = np.array([1, 0, 1, 0, 1, 2])
    expected = (0.3 + 2 * 0.065 + 3 * (0.9 - 2 / 3)) / 6
    assert expected_calibration_error(y, p, n_bins=5) == pytest.approx(expected, abs=1e-14)
    expected_max = max(0.3, 0.065, 0.9 - 2 / 3)
    got = expected_calibration_error(y, p, n_bins=5, norm="max")
    assert got == pytest.approx(expected_max, abs=1e-14)
    expected_l2 = np.sqrt((0.3**2 + 2 * 0.065**2 + 3 * (0.9 - 2 / 3) ** 2) / 6)
    got = expected_calibration_error(y, p, n_bins=5, norm="l2")
    assert got == pytest.approx(expected_l2, abs=1e-14)


def test_edges_are_left_open_right_closed_and_0_and_1_land_in_real_bins():
    # classwise, 2 bins (0, 0.5], (0.5, 1]: class-1 probabilities 0 (-> first bin, not
    # dropped), 0.5 (-> first bin: right-closed) and 1 (-> last bin).
    p1 = np.array([0.0, 0.5, 1.0])
    y = np.array([0, 1, 1])
    # class 1: bin 0 holds {0, 0.5} with outcomes {0, 1}: |0.5 - 0.25| = 0.25, weight 2/3;
    # bin 1 holds {1} with outcome 1: gap 0. class 0 (probabilities 1, 0.5, 0): bin 0 holds
    # {0.5, 0} with outcomes {0, 0}: gap 0.25, weight 2/3; bin 1 holds {1} outcome 1: 0.
    got = expected_calibration_error(y, p1, n_bins=2, mode="classwise")
    assert got == pytest.approx(2 / 3 * 0.25, abs=1e-15)
    # If 0.5 went to the upper bin instead, class 1's error would be |0 - 0| * 1/3 +
    # |2/3 - 0.75| * 2/3 = 0.0555..., a different answer.
    from crossent.calibration import CalibrationAccumulator

    acc = CalibrationAccumulator(2, n_bins=2).update(y, p1)
    assert acc.bin_statistics(class_index=1).count.tolist() == [2, 1]
    assert acc.bin_statistics(class_index=0).count.tolist() == [2, 1]


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_top_label_matches_torchmetrics_definition(norm):
    y, p = _random_problem()
    conf, pred = p.max(1), p.argmax(1)
    ref = _torchmetrics_style(conf, (pred == y).astype(float), 10, norm)
    assert expected_calibration_error(y, p, n_bins=10, norm=norm) == pytest.approx(ref, abs=1e-12)


def test_binary_vector_equals_two_columns_and_torchmetrics():
    rng = np.random.default_rng(1)
    p1 = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p1**1.5).astype(int)
    two = np.stack([1 - p1, p1], 1)
    got = expected_calibration_error(y, p1, n_bins=8)
    assert got == expected_calibration_error(y, two, n_bins=8)
    conf = np.maximum(p1, 1 - p1)
    ref = _torchmetrics_style(conf, ((p1 > 0.5) == y).astype(float), 8, "l1")
    assert got == pytest.approx(ref, abs=1e-12)


def test_debiased_l2_matches_kumar_top_label_and_marginal():
    y, p = _random_problem(n=400, k=3, seed=2)
    conf, pred = p.max(1), p.argmax(1)
    square = _kumar_unbiased_square(_bin_lists(conf, (pred == y).astype(float), 10))
    got = expected_calibration_error(y, p, n_bins=10, norm="l2", debias=True)
    assert got == pytest.approx(np.sqrt(max(square, 0)), abs=1e-12)
    squares = [
        _kumar_unbiased_square(_bin_lists(p[:, k], (y == k).astype(float), 10)) for k in range(3)
    ]
    got = expected_calibration_error(y, p, n_bins=10, norm="l2", debias=True, mode="marginal")
    assert got == pytest.approx(np.sqrt(max(np.mean(squares), 0)), abs=1e-12)
    # the correction lowers the plug-in estimate
    assert got < expected_calibration_error(y, p, n_bins=10, norm="l2", mode="marginal")


def test_classwise_and_marginal_from_per_class_errors():
    y, p = _random_problem(n=250, k=3, seed=3)
    per_class = {}
    for norm in ("l1", "l2", "max"):
        per_class[norm] = [
            _torchmetrics_style(p[:, k], (y == k).astype(float), 7, norm) for k in range(3)
        ]
        got = expected_calibration_error(y, p, n_bins=7, norm=norm, mode="classwise")
        assert got == pytest.approx(np.mean(per_class[norm]), abs=1e-12)
    marginal = {
        "l1": np.mean(per_class["l1"]),
        "l2": np.sqrt(np.mean(np.square(per_class["l2"]))),
        "max": np.max(per_class["max"]),
    }
    for norm, ref in marginal.items():
        got = expected_calibration_error(y, p, n_bins=7, norm=norm, mode="marginal")
        assert got == pytest.approx(ref, abs=1e-12)


def test_quantile_bins_hold_equal_counts():
    rng = np.random.default_rng(4)
    p1 = rng.uniform(0.01, 0.99, size=100)
    y = (rng.uniform(size=100) < p1).astype(int)
    conf = np.maximum(p1, 1 - p1)
    correct = ((p1 > 0.5) == y).astype(float)
    order = np.argsort(conf)
    ref = sum(
        len(idx) / 100 * abs(correct[idx].mean() - conf[idx].mean())
        for idx in np.array_split(order, 4)
    )
    got = expected_calibration_error(y, p1, n_bins=4, strategy="quantile")
    assert got == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("mode", ["top_label", "classwise", "marginal"])
def test_integer_weights_equal_repeated_rows(mode):
    y, p = _random_problem(n=60, k=3, seed=5)
    w = np.random.default_rng(5).integers(0, 4, size=60)
    rep = np.repeat(np.arange(60), w)
    for norm, debias in (("l1", False), ("l2", True), ("max", False)):
        kw = {"n_bins": 6, "norm": norm, "mode": mode, "debias": debias}
        weighted = expected_calibration_error(y, p, sample_weight=w, **kw)
        assert weighted == pytest.approx(expected_calibration_error(y[rep], p[rep], **kw), 1e-12)


def test_bootstrap_replicates_are_poisson_weighted_data():
    y, p = _random_problem(n=120, k=3, seed=6)
    result = expected_calibration_error(y, p, n_bins=5, n_bootstrap=50, random_state=7)
    assert isinstance(result, BootstrapResult)
    assert result.value == expected_calibration_error(y, p, n_bins=5)
    assert result.replicates.shape == (50,)
    assert result.low <= result.value <= result.high
    assert (result.low, result.high) == tuple(np.percentile(result.replicates, [2.5, 97.5]))
    nu = np.random.default_rng(7).poisson(1.0, size=(120, 50))
    for r in (0, 17, 49):
        ref = expected_calibration_error(y, p, n_bins=5, sample_weight=nu[:, r])
        assert result.replicates[r] == pytest.approx(ref, abs=1e-12)
    again = expected_calibration_error(y, p, n_bins=5, n_bootstrap=50, random_state=7)
    np.testing.assert_array_equal(again.replicates, result.replicates)


def test_binned_sums_of_every_weighting_match_per_bin_masks():
    rng = np.random.default_rng(12)
    n, k, n_bins, r = 90, 3, 6, 4
    scores = rng.dirichlet(np.ones(k), size=n)
    scores[:3] = [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]  # edges, ties
    hits = metrics.one_hot(rng.integers(0, k, size=n), k)
    weights = rng.uniform(0.0, 3.0, size=(n, r)) * (rng.uniform(size=(n, r)) < 0.8)
    index = metrics.bin_index(scores, metrics.uniform_edges(n_bins))
    sums = metrics.binned_sums(index, scores, hits, weights, n_bins)
    assert sums.shape == (3, r, k, n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for j in range(k):
        for m in range(n_bins):
            lo, hi = edges[m], edges[m + 1]
            member = ((scores[:, j] > lo) | (m == 0)) & (scores[:, j] <= hi)
            w = weights[member]
            for i, v in enumerate((np.ones(n), scores[:, j], hits[:, j])):
                expected = (w * v[member, None]).sum(axis=0)
                np.testing.assert_allclose(sums[i, :, j, m], expected, rtol=0, atol=1e-12)


def test_brier_and_nll_match_scikit_learn():
    y, p = _random_problem(n=80, k=4, seed=8)
    w = np.random.default_rng(8).uniform(0.1, 2, size=80)
    assert brier_score(y, p, sample_weight=w) == pytest.approx(
        brier_score_loss(y, p, sample_weight=w, labels=[0, 1, 2, 3]), abs=1e-12
    )
    assert negative_log_likelihood(y, p, sample_weight=w) == pytest.approx(
        log_loss(y, p, sample_weight=w, labels=[0, 1, 2, 3]), abs=1e-12
    )
    p1 = p[:, 0] / (p[:, 0] + p[:, 1])
    yb = (y % 2).astype(int)
    assert brier_score(yb, p1) == pytest.approx(brier_score_loss(yb, p1), abs=1e-14)
    assert brier_score(yb, np.stack([1 - p1, p1], 1)) == pytest.approx(brier_score(yb, p1), 1e-14)
    assert negative_log_likelihood(yb, p1) == pytest.approx(log_loss(yb, p1), abs=1e-12)
    z = np.log(p1) - np.log1p(-p1)
    assert negative_log_likelihood(yb, z, from_logits=True) == pytest.approx(
        log_loss(yb, p1), abs=1e-12
    )


def test_torch_input_is_accepted():
    torch = pytest.importorskip("torch")
    y, p = _random_problem(n=50, k=3, seed=9)
    got = expected_calibration_error(torch.tensor(y), torch.tensor(p), n_bins=4)
    assert got == expected_calibration_error(y, p, n_bins=4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"probs": np.array([[0.5, 0.7], [0.2, 0.8]])}, ValueError, "sum to 1"),
        ({"probs": np.array([1.2, 0.3])}, ValueError, r"probabilities in \[0, 1\]"),
        ({"probs": np.array([[0.5, np.nan], [0.2, 0.8]])}, ValueError, "NaN"),
        ({"y_true": np.array([0, 2])}, ValueError, r"class index 2, outside \[0, 2\)"),
        ({"y_true": np.array([0.0, 1.0])}, TypeError, "integer"),
        ({"y_true": np.array([0, 1, 1])}, ValueError, r"expected \(2,\)"),
        ({"probs": np.zeros((0, 2)), "y_true": np.zeros(0, int)}, ValueError, "empty"),
        ({"n_bins": 0}, ValueError, "n_bins must be at least 1"),
        ({"n_bins": 2.5}, TypeError, "n_bins must be an integer"),
        ({"norm": "l3"}, ValueError, "norm must be one of"),
        ({"mode": "top"}, ValueError, "mode must be one of"),
        ({"strategy": "equal"}, ValueError, "strategy must be one of"),
        ({"debias": True}, ValueError, "use norm='l2'"),
        ({"sample_weight": np.array([-1.0, 1.0])}, ValueError, "non-negative"),
        ({"sample_weight": np.array([0.0, 0.0])}, ValueError, "sums to 0"),
        ({"n_bootstrap": -1}, ValueError, "n_bootstrap must be non-negative"),
        ({"n_bootstrap": 5, "confidence_level": 1.0}, ValueError, "confidence_level"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"y_true": np.array([0, 1]), "probs": np.array([[0.6, 0.4], [0.3, 0.7]])}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        expected_calibration_error(args.pop("y_true"), args.pop("probs"), **args)


def test_bad_input_brier():
    with pytest.raises(ValueError, match="sum to 1"):
        brier_score(np.array([0, 1]), np.array([[0.5, 0.7], [0.2, 0.8]]))
    with pytest.raises(ValueError, match="outside"):
        brier_score(np.array([0, 3]), np.array([[0.5, 0.5], [0.2, 0.8]]))


def test_max_norm_replicate_with_no_example_is_nan():
    # a replicate that drew no row had given 0 with norm="max" (NaN with l1 and l2)
    y = np.array([0, 0, 0])
    p = np.array([[0.3, 0.7], [0.2, 0.8], [0.1, 0.9]])  # always wrong: every ECE is >= 0.7
    for norm in ("l1", "max"):
        result = expected_calibration_error(y, p, norm=norm, n_bootstrap=1000, random_state=0)
        empty = np.isnan(result.replicates)
        assert empty.sum() > 0
        assert np.all(result.replicates[~empty] >= 0.7 - 1e-12)
        assert result.low >= 0.7 - 1e-12


@pytest.mark.parametrize("metric", [negative_log_likelihood, brier_score])
@pytest.mark.parametrize(
    ("y_true", "probs", "kwargs", "error", "match"),
    [
        # negative_log_likelihood had returned 0 for weights of 0 and taken float labels of
        # (n,) probabilities as soft targets, where the other metrics refuse both
        ([0, 1], [[0.9, 0.1], [0.2, 0.8]], {"sample_weight": np.zeros(2)}, ValueError,
         "sample_weight sums to 0"),
        ([0.5, 1.0], [0.2, 0.7], {}, TypeError, r"y_true holds class indices \(its shape is "
         r"\(n,\), one per row\)"),
        ([0, 1], [[0.9, np.nan], [0.2, 0.8]], {}, ValueError, "probs contains NaN"),
    ],
)  # fmt: skip
def test_metrics_check_their_inputs_alike(metric, y_true, probs, kwargs, error, match):
    with pytest.raises(error, match=match):
        metric(np.array(y_true), np.array(probs), **kwargs)


def test_boolean_labels_and_logits_in_negative_log_likelihood():
    y, p = np.array([True, False]), np.array([[0.9, 0.1], [0.2, 0.8]])
    assert negative_log_likelihood(y, p) == pytest.approx(log_loss(y, p, labels=[0, 1]), 1e-12)
    with pytest.raises(ValueError, match="probs contains NaN"):
        negative_log_likelihood(y, np.array([np.nan, 0.0]), from_logits=True)


@pytest.mark.parametrize("scale", [1e-200, 1e200])
def test_l2_error_does_not_depend_on_the_scale_of_the_weights(scale):
    # gap**2 / W had underflowed to 0 (weights of 1e-200) or overflowed to inf (1e200)
    y, p = _random_problem(n=60, k=3, seed=4)
    w = np.random.default_rng(4).uniform(0.5, 2, size=60)
    for debias in (False, True):
        expected = expected_calibration_error(y, p, norm="l2", sample_weight=w, debias=debias)
        got = expected_calibration_error(y, p, norm="l2", sample_weight=w * scale, debias=debias)
        if not debias:  # the debiased estimator counts weights as frequencies
            assert got == pytest.approx(expected, rel=1e-12)
        assert np.isfinite(got)
