"""Every bad input gets a clear error naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import crossent
import crossent as ce

Z = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 0.3]])
P = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
Y = np.array([0, 2])

cat, bce = ce.categorical_cross_entropy, ce.binary_cross_entropy

BAD = [
    # (call, exception, message pattern)
    (lambda: cat(np.array([0, 1, 2]), Z, from_logits=True), ValueError, "y_true has shape"),
    (lambda: cat(np.array([0, 3]), Z, from_logits=True), ValueError, r"class index 3, outside"),
    (lambda: cat(np.array([0, -1]), Z, from_logits=True), ValueError, "class index -1"),
    (lambda: cat(np.array([0.0, 1.0]), Z, from_logits=True), TypeError, "must be an integer"),
    (lambda: cat(Y, P * 1.1), ValueError, "must sum to 1"),
    (lambda: cat(Y, -P), ValueError, r"probabilities in \[0, 1\]"),
    (lambda: cat(Y, Z), ValueError, "from_logits=True"),
    (
        lambda: cat(Y, np.array([[np.nan, 0, 0], [0, 0, 0.0]]), from_logits=True),
        ValueError,
        "y_pred contains NaN or infinity",
    ),
    (
        lambda: cat(Y, np.array([[np.inf, 0, 0], [0, 0, 0.0]]), from_logits=True),
        ValueError,
        "NaN or infinity",
    ),
    (lambda: cat(np.zeros(0, int), np.zeros((0, 3)), from_logits=True), ValueError, "empty"),
    (lambda: cat(Y, np.array([["a", "b", "c"], ["d", "e", "f"]])), TypeError, "y_pred must be"),
    (lambda: cat(Y, Z.astype(bool)), TypeError, "y_pred must be a real floating"),
    (lambda: cat(Y, Z, from_logits=True, reduction="avg"), ValueError, "reduction must be one"),
    (lambda: cat(Y, Z, from_logits=True, temperature=0.0), ValueError, "temperature must lie"),
    (lambda: cat(Y, Z, from_logits=True, temperature=-1), ValueError, "temperature"),
    (lambda: cat(Y, Z, from_logits=True, label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: cat(Y, Z, from_logits=True, z_loss=-0.1), ValueError, "z_loss must lie"),
    (lambda: cat(Y, P, z_loss=0.1), ValueError, "z_loss needs logits"),
    (
        lambda: cat(Y, Z, from_logits=True, class_weight=[1.0, 2.0]),
        ValueError,
        r"class_weight must have shape \(3,\)",
    ),
    (
        lambda: cat(Y, Z, from_logits=True, class_weight=[1.0, -2.0, 1.0]),
        ValueError,
        "class_weight must be non-negative",
    ),
    (
        lambda: cat(Y, Z, from_logits=True, sample_weight=[1.0, 2.0, 3.0]),
        ValueError,
        "sample_weight has shape",
    ),
    (
        lambda: cat(Y, Z, from_logits=True, sample_weight=[1.0, -2.0]),
        ValueError,
        "sample_weight must be non-negative",
    ),
    (
        lambda: cat(Y, Z, from_logits=True, sample_weight=[1.0, np.nan]),
        ValueError,
        "sample_weight contains NaN",
    ),
    (lambda: cat(Y, Z, from_logits=True, mask=[1, 2]), ValueError, "mask must hold only 0/1"),
    (lambda: cat(Y, Z, from_logits=True, axis=2), ValueError, "axis must be an integer"),
    (
        lambda: cat(np.array([[0.5, 0.6, 0.0], [0, 0, 1.0]]), Z, from_logits=True),
        ValueError,
        "y_true must sum to 1",
    ),
    (
        lambda: ce.categorical_focal_loss(Y, Z, from_logits=True, gamma=-1.0),
        ValueError,
        "gamma must lie",
    ),
    (
        lambda: ce.categorical_focal_loss(Y, Z, from_logits=True, alpha=[1.0]),
        ValueError,
        "alpha must have shape",
    ),
    (
        lambda: bce(np.array([0.0, 1.5]), np.array([0.2, 0.3])),
        ValueError,
        r"y_true must hold targets in \[0, 1\]",
    ),
    (lambda: bce(np.array([0, 1]), np.array([0.2, 1.3])), ValueError, "probabilities in"),
    (
        lambda: bce(np.array([0, 1]), np.array([0.2, 0.3, 0.4])),
        ValueError,
        "y_true has shape .* but y_pred has shape",
    ),
    (lambda: bce(np.array(["a", "b"]), np.array([0.2, 0.3])), TypeError, "y_true must be"),
    (
        lambda: bce(np.array([0, 1]), np.array([0.2, 0.3]), pos_weight=[1.0, 2.0, 3.0]),
        ValueError,
        "pos_weight must be a scalar",
    ),
    (
        lambda: bce(np.array([0, 1]), np.array([0.2, 0.3]), pos_weight=-1.0),
        ValueError,
        "pos_weight must be non-negative",
    ),
    (lambda: bce(np.array([0, 1]), np.array(0.3)), ValueError, "at least one dimension"),
    (
        lambda: ce.binary_focal_loss(np.array([0, 1]), np.array([0.2, 0.3]), alpha=1.5),
        ValueError,
        "alpha must lie",
    ),
    (
        lambda: ce.binary_focal_loss(np.array([0, 1]), np.array([0.2, 0.3]), gamma="2"),
        TypeError,
        "gamma must be a real number",
    ),
    (lambda: ce.kl_divergence(P, Z), ValueError, "q_pred must hold probabilities"),
    (lambda: ce.kl_divergence(Z, P), ValueError, r"p_true must hold targets in \[0, 1\]"),
    (lambda: ce.kl_divergence(P[:1], P), ValueError, "p_true has shape"),
    (lambda: ce.distillation_loss(Y, Z, Z[:1]), ValueError, "teacher_logits has shape"),
    (lambda: ce.distillation_loss(Y, Z, Z, temperature=0), ValueError, "temperature must lie"),
    (lambda: ce.distillation_loss(Y, Z, Z, alpha=2.0), ValueError, "alpha must lie"),
    (lambda: ce.l2_penalty(np.array([1.0]), alpha=-1.0), ValueError, "alpha must lie"),
    (lambda: ce.elastic_net_penalty(np.array([1.0]), l1_ratio=2.0), ValueError, "l1_ratio"),
    (
        lambda: ce.value_grad_hess(bce)(np.array([0, 1]), np.array([0.2, 0.3])),
        ValueError,
        "from_logits=True",
    ),
    # options that had been coerced: "False" read as True (probabilities taken as logits),
    # text weights parsed, complex parts dropped, True taken as class 1
    (lambda: bce([1, 0], [0.9, 0.2], from_logits="False"), TypeError, "from_logits must be"),
    (lambda: cat(Y, P, from_logits=1), TypeError, "from_logits must be True or False"),
    (lambda: ce.kl_divergence(P, Z, from_logits="yes"), TypeError, "from_logits must be"),
    (lambda: ce.distillation_loss(Y, Z, Z, scale_by_t2="no"), TypeError, "scale_by_t2 must be"),
    (lambda: ce.logsumexp(Z, keepdims="yes"), TypeError, "keepdims must be"),
    (lambda: bce([1, 0], [0.9, 0.2], pos_weight="2"), TypeError, "pos_weight must hold real"),
    (lambda: bce([1, 0], [0.9, 0.2], pos_weight=True), TypeError, "pos_weight must hold real"),
    (lambda: cat(Y, P, class_weight=["1", "2", "3"]), TypeError, "class_weight must hold real"),
    (lambda: cat(Y, P, class_weight=np.ones(3) + 0j), TypeError, "class_weight must hold real"),
    (lambda: cat(Y, P, ignore_index=True), TypeError, "ignore_index must be an integer"),
    (lambda: cat(Y, P, ignore_index=1.5), TypeError, "ignore_index must be an integer"),
    (lambda: cat(Y, P, ignore_index=2**70), ValueError, "ignore_index must fit in int64"),
    (
        lambda: ce.categorical_focal_loss(Y, P, alpha="a"),
        TypeError,
        "alpha must hold real numbers",
    ),
    # the special functions had returned complex numbers, normalised over the whole array
    # for axis=None, or raised NumPy's AxisError and zero-size reduction errors
    (lambda: ce.sigmoid(np.array([0.1]) + 0j), TypeError, "x must hold real numbers"),
    (lambda: ce.log_sigmoid(np.array(["a"])), TypeError, "x must hold real numbers"),
    (lambda: ce.softmax(Z, axis=None), ValueError, "axis must be an integer"),
    (lambda: ce.log_softmax(Z, axis=2), ValueError, r"axis must be an integer in \[-2, 2\)"),
    (lambda: ce.logsumexp(Z, axis=(0, 1)), ValueError, "axis must be an integer"),
    (lambda: ce.softmax(np.ones((2, 0))), ValueError, "x has no values along axis -1"),
    # empty or scalar targets: the shape check speaks, not NumPy's reductions
    (lambda: bce(np.array([]), np.array([0.1]), from_logits=True), ValueError, "y_true has shape"),
    (lambda: ce.kl_divergence(0.5, P), ValueError, "p_true has shape"),
    (lambda: ce.kl_divergence(np.array([]), P), ValueError, "p_true has shape"),
    # the calibration functions' hints had named y_pred and from_logits, which they lack
    (
        lambda: _calibration().negative_log_likelihood(Y, Z),
        ValueError,
        r"probs must hold probabilities in \[0, 1\]; .* \(pass from_logits=True",
    ),
    (lambda: _calibration().brier_score(Y, Z), ValueError, r"outside it$"),
    (
        lambda: _calibration().TemperatureScaling(input="probabilities").fit(Z, Y),
        ValueError,
        r"use input='logits' if these are logits",
    ),
    # crossent.testing: a step of 0 had divided by zero, a wrong direction met broadcasting
    (
        lambda: __import__("crossent.testing").testing.finite_difference_gradient(
            lambda x: float(x.sum()), np.ones(2), step=0
        ),
        ValueError,
        "step must be a positive finite number",
    ),
    (
        lambda: __import__("crossent.testing").testing.finite_difference_directional(
            lambda x: float(x.sum()), np.ones(2), np.ones(3)
        ),
        ValueError,
        "direction has shape",
    ),
    # text labels beside a PyTorch y_pred had met PyTorch's own TypeError, naming nothing
    (
        lambda: ce.categorical_cross_entropy(np.array(["a", "b"]), _tensor(P)),
        TypeError,
        "y_true must be an array of numbers, got dtype <U1",
    ),
    (
        lambda: ce.binary_cross_entropy(np.array(["a", "b"]), _tensor(Z[:, 0]), from_logits=True),
        TypeError,
        "y_true must be an array of numbers",
    ),
    (
        lambda: ce.categorical_cross_entropy(Y, _tensor(P), sample_weight=np.array(["1", "2"])),
        TypeError,
        "sample_weight must be an array of numbers",
    ),
    (
        lambda: ce.distillation_loss(Y, _tensor(Z), np.full(Z.shape, "a")),
        TypeError,
        "teacher_logits must be an array of numbers",
    ),
    # the labels of these functions had been said to have "y_pred's" shape
    (
        lambda: ce.distillation_loss(Y * 1.0, Z, Z),
        TypeError,
        "its shape is student_logits's without the class axis",
    ),
    (
        lambda: ce.linear_cross_entropy(Z, Z, Y * 1.0),
        TypeError,
        "its shape is hidden's without its last axis",
    ),
    (  # NumPy's SeedSequence had spoken, naming nothing
        lambda: _calibration().expected_calibration_error(Y, P, n_bootstrap=5, random_state="x"),
        TypeError,
        "random_state must be None, a non-negative integer",
    ),
]


def _tensor(x):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def _calibration():
    from crossent import calibration

    return calibration


@pytest.mark.parametrize(("call", "exc", "match"), BAD, ids=[b[2] for b in BAD])
def test_bad_input_raises_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_probability_row_tolerance_is_sqrt_eps_of_dtype():
    off = np.array([[0.2, 0.5, 0.3 + 1e-6]])
    with pytest.raises(ValueError, match="must sum to 1"):
        cat(np.array([0]), off)  # float64: tolerance 1.5e-8
    assert np.isfinite(cat(np.array([0]), off.astype(np.float32)))  # float32: 3.5e-4


def test_integer_predictions_are_promoted_to_float64():
    value = bce(np.array([0, 1]), np.array([0, 1]))
    assert value.dtype == np.float64 and np.isfinite(value)


def test_per_element_pos_weight_of_1d_input_in_blocks():
    # 1-D input over 2**18 elements is blocked element by element; a pos_weight per element
    # had been broadcast against every block (a (b, N) temporary: MemoryError)
    torch = pytest.importorskip("torch")
    n = 2**18 + 1
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=n), (rng.random(n) < 0.5) * 1.0
    pw = rng.uniform(0.5, 2.0, n)
    want = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(z), torch.tensor(y), pos_weight=torch.tensor(pw)
    )
    for backend in ("portable", "fused"):
        got = crossent.binary_cross_entropy(y, z, from_logits=True, pos_weight=pw, backend=backend)
        assert float(got) == pytest.approx(float(want), rel=1e-12)
    p = 1 / (1 + np.exp(-z))
    assert float(crossent.binary_cross_entropy(y, p, pos_weight=pw)) == pytest.approx(
        float(want), rel=1e-9
    )


def test_float16_probabilities_are_checked_as_float16_and_clipped_as_float32():
    # float16 is computed in float32, but had been checked (sum to 1 within sqrt(eps)) with
    # float32's tolerance: PyTorch's own float16 softmax rows were refused. Clipping stays at
    # float32's eps: float16's (1e-3) would clip valid small probabilities
    p = np.full((1, 49), 1 / 49, dtype=np.float16)  # sums to 1.00035 in float16
    got = crossent.categorical_cross_entropy(np.array([0]), p)
    assert got.dtype == np.float16 and float(got) == pytest.approx(np.log(49), rel=1e-3)
    with pytest.raises(ValueError, match="tolerance"):  # float32 keeps its own tolerance
        crossent.categorical_cross_entropy(
            np.array([0]), np.full((1, 49), 1.00035 / 49, np.float32)
        )
    small = np.array([[1e-4, 1 - 1e-4]], np.float16)
    got = crossent.categorical_cross_entropy(np.array([0]), small)
    assert float(got) == pytest.approx(-np.log(float(small[0, 0])), rel=1e-3)
    # float64 soft targets with float32 logits sum to 1 within float32's rounding once cast
    rng = np.random.default_rng(0)
    q = rng.random((64, 10))
    q /= q.sum(1, keepdims=True)
    z = rng.standard_normal((64, 10)).astype(np.float32)
    want = crossent.categorical_cross_entropy(q, z.astype(np.float64), from_logits=True)
    got = crossent.categorical_cross_entropy(q, z, from_logits=True)
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    got = crossent.kl_divergence(q, z, from_logits=True)
    assert np.isfinite(float(got))


def test_categorical_focal_alpha_may_be_a_numpy_scalar():
    z = np.array([[1.0, 2.0, 0.5]])
    want = crossent.categorical_focal_loss(np.array([0]), z, from_logits=True, alpha=0.25)
    for alpha in (np.float32(0.25), np.float64(0.25)):
        got = crossent.categorical_focal_loss(np.array([0]), z, from_logits=True, alpha=alpha)
        assert float(got) == pytest.approx(float(want), rel=1e-7)


@pytest.mark.parametrize("temperature", [1e-200, 1e200, 1e46])
def test_temperatures_beyond_the_float32_range_of_t_squared_are_refused(temperature):
    # hessians divide by T^2 and distillation multiplies by it: NaN hessians, or a Python
    # OverflowError, beyond this range
    z = np.array([[1.0, 2.0, 0.5]])
    with pytest.raises(ValueError, match=r"temperature must lie in \[1e-15, 1e\+15\]"):
        crossent.value_grad_hess(crossent.categorical_cross_entropy)(
            np.array([0]), z, from_logits=True, temperature=temperature
        )
    with pytest.raises(ValueError, match="temperature must lie in"):
        crossent.distillation_loss(np.array([0]), z, z[:, ::-1].copy(), temperature=temperature)


def test_extreme_temperatures_inside_the_range_give_finite_hessians():
    z = np.array([[1.0, 2.0, 0.5]], np.float32)
    for temperature in (1e-15, 1e15):
        _, grad, hess = crossent.value_grad_hess(crossent.categorical_cross_entropy)(
            np.array([0]), z, from_logits=True, temperature=temperature
        )
        assert np.all(np.isfinite(hess)) and np.all(np.isfinite(grad))


def test_targets_that_do_not_sum_to_1_get_no_hint_about_logits():
    with pytest.raises(ValueError, match=r"off by 0\.5$"):
        crossent.categorical_cross_entropy(
            np.array([[0.5, 0.0]]), np.zeros((1, 2)), from_logits=True
        )
    with pytest.raises(ValueError, match=r"off by 0\.5$"):
        crossent.kl_divergence(np.array([[0.5, 0.0]]), np.zeros((1, 2)), from_logits=True)


def test_testing_helpers_report_the_failing_elements_and_refuse_bad_directions():
    from crossent import testing

    # the reported error had been the largest over every element, failing or not (1 here)
    with pytest.raises(AssertionError, match=r"max abs error 0\.1$"):
        testing.assert_allclose([1e6 + 1, 1.0], [1e6, 1.1], rtol=1e-5, name="grad")
    with pytest.raises(AssertionError, match=r"max abs error 0\.1$"):
        testing.assert_allclose([np.nan, 1.0], [np.nan, 1.1], rtol=1e-5, name="grad")
    with pytest.raises(ValueError, match="direction contains NaN"):
        testing.finite_difference_directional(np.sum, np.zeros(2), np.array([np.nan, 1.0]))


@pytest.mark.parametrize("backend", ["portable", "fused"])
def test_uint64_labels_beyond_int64_are_out_of_range_not_wrapped(backend):
    # 2**64 - 100 had wrapped to -100 in int64 and been ignored as ignore_index
    z = np.array([[1.0, 2.0, 3.0], [0.5, 0.1, 0.2]])
    for big in (2**64 - 100, 2**63 + 1):
        y = np.array([big, 1], dtype=np.uint64)
        with pytest.raises(ValueError, match=f"y_true holds class index {big}, outside"):
            ce.categorical_cross_entropy(y, z, from_logits=True, backend=backend)
    y = np.array([2, 1], dtype=np.uint64)
    expected = ce.categorical_cross_entropy(
        y.astype(np.int64), z, from_logits=True, backend=backend
    )
    assert ce.categorical_cross_entropy(y, z, from_logits=True, backend=backend) == expected


def test_numpy_integer_axes_and_scalar_weights_of_a_single_example():
    # np.int64 axes had been refused as "not an integer"; a 0-d weight of a single example
    # (1-D y_pred, loss shape ()) as not matching the shape () it has
    z = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 0.3], [0.0, 0.2, 0.1]])
    y = np.array([0, 2, 1])
    assert ce.categorical_cross_entropy(
        y, z, from_logits=True, axis=np.int64(0)
    ) == ce.categorical_cross_entropy(y, z.T, from_logits=True)
    np.testing.assert_array_equal(ce.logsumexp(z, axis=np.int32(1)), ce.logsumexp(z, axis=1))
    single = ce.categorical_cross_entropy(
        np.array(1), z[0], from_logits=True, sample_weight=np.array(2.0), reduction="sum"
    )
    assert single == 2 * ce.categorical_cross_entropy(np.array(1), z[0], from_logits=True)
    with pytest.raises(ValueError, match="not a scalar, which would weigh every example alike"):
        ce.categorical_cross_entropy(y, z, from_logits=True, sample_weight=np.array(2.0))
