"""Extreme inputs: logits of +-1e4, probabilities of exactly 0 and 1, gamma < 1."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _references import categorical_per_row

import crossent as ce

BIG = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0]])
Y = np.array([0, 0, 2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 1.0, 2.0])
def test_categorical_focal_extreme_logits_finite_and_correct(dtype, gamma):
    z = BIG.astype(dtype)
    value, grad, hess = ce.value_grad_hess(ce.categorical_focal_loss)(
        Y, z, from_logits=True, gamma=gamma, reduction="none"
    )
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))
    # Row 0 is certain and right: loss 0. Row 1 is certain and wrong by 2e4: loss 2e4 (the
    # modulating factor is 1). Row 2 is uniform: (2/3)^gamma log 3.
    expected = [0.0, 2e4, (2 / 3) ** gamma * np.log(3)]
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert grad[1, 0] == pytest.approx(-1.0) and grad[1, 1] == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_binary_extreme_logits_finite_and_correct(dtype, gamma):
    z = np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype=dtype)
    value, grad, hess = ce.value_grad_hess(ce.binary_focal_loss)(
        y, z, from_logits=True, gamma=gamma, reduction="none"
    )
    for a in (value, grad, hess):
        assert np.all(np.isfinite(a)) and a.dtype == dtype
    np.testing.assert_allclose(value, [0.0, 0.0, 1e4, 1e4, 0.5**gamma * np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(grad[:4], [0.0, 0.0, 1.0, -1.0], atol=1e-6)


def test_soft_binary_focal_with_gamma_below_one_at_extremes():
    z = np.array([1e4, -1e4])
    y = np.array([0.3, 0.3])
    value, grad, hess = ce.value_grad_hess(ce.binary_focal_loss)(
        y, z, from_logits=True, gamma=0.3, reduction="none"
    )
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))
    # u = 1 - p_t -> 1 - y at z = +inf, y at z = -inf; bce -> (1 - y) z and y |z|.
    np.testing.assert_allclose(value, [0.7**0.3 * 0.7e4, 0.3**0.3 * 0.3e4], rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probabilities_of_zero_and_one(dtype):
    eps = np.finfo(dtype).eps
    p = np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    y = np.array([0.0, 1.0, 0.0, 1.0], dtype=dtype)
    value, grad = ce.value_and_grad(ce.binary_cross_entropy)(y, p, reduction="none")
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(
        value, [-np.log1p(-eps), -np.log1p(-eps), -np.log(eps), -np.log(eps)], rtol=1e-5
    )
    pc = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    value = ce.categorical_cross_entropy(np.array([0, 0]), pc, reduction="none")
    np.testing.assert_allclose(value, [-np.log1p(-eps), -np.log(eps)], rtol=1e-5)


def test_temperature_extremes_stay_finite():
    value, grad = ce.value_and_grad(ce.categorical_cross_entropy)(
        Y, BIG, from_logits=True, temperature=1e-3, z_loss=1e-4
    )
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    value, grad = ce.value_and_grad(ce.distillation_loss)(Y, BIG, -BIG, temperature=0.01)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


mp = pytest.importorskip("mpmath")


def _mp_categorical_focal(zs, y, gamma):
    lse = mp.log(mp.fsum(mp.exp(z) for z in zs))
    log_p = zs[y] - lse
    return -((1 - mp.exp(log_p)) ** gamma) * log_p


def _mp_binary_focal(z, y, gamma):
    p = 1 / (1 + mp.exp(-z))
    bce = mp.log1p(mp.exp(z)) - y * z
    return (y * (1 - p) + (1 - y) * p) ** gamma * bce


@pytest.mark.parametrize(
    ("row", "label", "gamma"),
    [
        ([8.0, 0.0, -1.0], 0, 0.5),
        ([30.0, 0.0, -1.0], 0, 0.5),
        ([30.0, 0.0, -1.0], 1, 0.5),
        ([15.0, 0.0, -1.0], 0, 2.0),
        ([30.0, 0.0, -1.0], 0, 0.0),
        ([35.0, 35.0, -1.0], 0, 0.7),
    ],
)
def test_near_certain_rows_keep_full_relative_precision(row, label, gamma):
    """Value, gradient and hessian against 60-digit mpmath, where p = 1 - 1e-13."""
    mp.mp.dps = 60
    value, grad, hess = ce.value_grad_hess(ce.categorical_focal_loss)(
        np.array([label]), np.array([row]), from_logits=True, gamma=gamma
    )
    zs = [mp.mpf(r) for r in row]
    assert float(value) == pytest.approx(float(_mp_categorical_focal(zs, label, gamma)), rel=1e-14)
    for j in range(3):

        def f(t, j=j):
            return _mp_categorical_focal([t if k == j else zs[k] for k in range(3)], label, gamma)

        assert grad[0, j] == pytest.approx(float(mp.diff(f, zs[j], 1)), rel=1e-14, abs=1e-300)
        assert hess[0, j] == pytest.approx(float(mp.diff(f, zs[j], 2)), rel=1e-14, abs=1e-300)


@pytest.mark.parametrize(
    ("z", "y", "gamma"), [(30.0, 1.0, 0.5), (-25.0, 0.0, 2.0), (12.0, 0.3, 0.25), (-40.0, 1.0, 1.0)]
)
def test_binary_focal_matches_mpmath(z, y, gamma):
    mp.mp.dps = 60
    value, grad, hess = ce.value_grad_hess(ce.binary_focal_loss)(
        np.array([y]), np.array([z]), from_logits=True, gamma=gamma
    )

    def f(t):
        return _mp_binary_focal(t, mp.mpf(y), gamma)

    zm = mp.mpf(z)
    assert float(value) == pytest.approx(float(f(zm)), rel=1e-13)
    assert grad[0] == pytest.approx(float(mp.diff(f, zm, 1)), rel=1e-13)
    assert hess[0] == pytest.approx(float(mp.diff(f, zm, 2)), rel=1e-12)


def test_focal_hessian_does_not_overflow_in_float32_regression():
    """phi'' of a near-certain class grows like v**(gamma - 1); found by hypothesis."""
    z = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 96.0]], dtype=np.float32)
    _value, _grad, hess = ce.value_grad_hess(ce.categorical_focal_loss)(
        np.array([0, 0]), z, from_logits=True, gamma=0.0625, reduction="none"
    )
    assert np.all(np.isfinite(hess))
    ref = ce.value_grad_hess(ce.categorical_focal_loss)(
        np.array([0, 0]), z.astype(np.float64), from_logits=True, gamma=0.0625, reduction="none"
    )
    np.testing.assert_allclose(hess, ref[2], rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("backend", ["portable", "fused"])
def test_float32_temperature_of_large_logits_keeps_the_softmax_exact(backend):
    # Logits near 1e4 scaled by 1/T: dividing first would round every logit at 1e4's scale
    # (1e-3) before their differences are taken; both paths shift by the max first.
    rng = np.random.default_rng(7)
    z = (1e4 + 5 * rng.normal(size=(200, 6))).astype(np.float32)
    y = rng.integers(0, 6, 200)
    kwargs = {"temperature": 1.7, "z_loss": 1e-4}
    v64, g64 = categorical_per_row(y, z, **kwargs)  # SciPy, float64
    value, grad = ce.value_and_grad(ce.categorical_cross_entropy)(
        y, z, from_logits=True, reduction="none", backend=backend, **kwargs
    )
    np.testing.assert_allclose(value, v64, rtol=1e-6)
    np.testing.assert_allclose(grad, g64, rtol=0, atol=1e-6 * np.abs(g64).max())


def test_float32_temperature_of_large_teacher_logits_keeps_the_distillation_exact():
    # The teacher's softmax(t / T) is shifted by the max before the division too.
    # Reference: SciPy's log-softmax in float64 of the same float32 logits.
    from scipy.special import log_softmax

    rng = np.random.default_rng(8)
    s = (1e4 + 5 * rng.normal(size=(200, 6))).astype(np.float32)
    t = (1e4 + 5 * rng.normal(size=(200, 6))).astype(np.float32)
    temperature = 1.7
    log_p = log_softmax(t.astype(np.float64) / temperature, axis=1)
    log_q = log_softmax(s.astype(np.float64) / temperature, axis=1)
    ref_value = temperature**2 * np.sum(np.exp(log_p) * (log_p - log_q), axis=1)
    ref_grad = temperature * (np.exp(log_q) - np.exp(log_p))
    value, grad = ce.value_and_grad(ce.distillation_loss)(
        None, s, t, temperature=temperature, alpha=1.0, reduction="none"
    )
    np.testing.assert_allclose(value, ref_value, rtol=1e-4, atol=1e-6 * np.abs(ref_value).max())
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-6 * np.abs(ref_grad).max())


@pytest.mark.parametrize("backend", ["portable", "fused"])
@pytest.mark.parametrize(
    ("loss", "kwargs"),
    [
        (ce.categorical_cross_entropy, {"temperature": 1e-15}),
        (ce.categorical_focal_loss, {"temperature": 1e-15, "gamma": 2.0}),
        (ce.categorical_cross_entropy, {}),
    ],
)
def test_logits_overflowing_the_dtype_raise_instead_of_nan(loss, kwargs, backend):
    # float32 logits / T of 1e40 (or differences of 6e38 at T = 1) do not fit in float32;
    # both paths had returned NaN losses and gradients without a word.
    big = 1e25 if kwargs else 3e38
    z = np.array([[big, -big], [0.0, 1.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="the loss overflows float32: y_pred / temperature"):
        ce.value_and_grad(loss)(np.array([1, 1]), z, from_logits=True, backend=backend, **kwargs)
    # In float64 the same logits fit: finite, and the exact loss of the second row.
    value, grad = ce.value_and_grad(loss)(
        np.array([1, 1]), z.astype(np.float64), from_logits=True, backend=backend,
        reduction="none", **kwargs,
    )  # fmt: skip
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))


def test_distillation_logits_overflowing_the_dtype_raise_instead_of_inf():
    s = np.array([[1e25, 0.0], [0.0, 1.0]], dtype=np.float32)
    t = np.array([[0.0, 1e25], [0.0, 1.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="the loss overflows float32: student_logits"):
        ce.distillation_loss(np.array([0, 1]), s, t, temperature=1e-15)
    assert np.isfinite(ce.distillation_loss(np.array([0, 1]), s, t, temperature=1.0))


@pytest.mark.parametrize("backend", ["portable", "fused"])
def test_a_sum_beyond_float32_raises_without_numpy_warnings(backend):
    # Every row's loss fits in float32 (1e35), their sum over 40000 rows does not: the
    # overflow error, with no "overflow encountered" warning from NumPy before it; their mean
    # does fit, and is computed (scaled before the sum).
    n = 40000
    y, z = np.zeros(n, dtype=int), np.zeros((n, 2), np.float32)
    z[:, 1] = 1e35
    vg = ce.value_and_grad(ce.categorical_cross_entropy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="the loss overflows float32"):
            vg(y, z, from_logits=True, reduction="sum", backend=backend)
        mean = vg(y, z, from_logits=True, backend=backend)[0]
    np.testing.assert_allclose(mean, 1e35, rtol=1e-6)


@pytest.mark.parametrize("backend", ["portable", "fused"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dropped_by", ["ignore_index", "mask", "sample_weight"])
@pytest.mark.parametrize("n", [64, 40000], ids=["one-block", "blocks"])
@pytest.mark.parametrize("z_loss", [1e-4, 1e10])
def test_left_out_rows_whose_z_loss_overflows_count_as_sliced_out(
    backend, reduction, dropped_by, n, z_loss
):
    # A left-out row's z-loss lse**2 overflows float32 (logits of 1e30), and with z_loss =
    # 1e10 its gradient 2 z lse p too; it is weighted 0, and 0 * inf had made the portable
    # loss NaN, then refused as an overflow (and the gradient NaN in one block).
    vg = ce.value_and_grad(ce.categorical_cross_entropy)
    rng = np.random.default_rng(7)
    z = rng.normal(size=(n, 10)).astype(np.float32)
    y = rng.integers(0, 10, n)
    kept = np.arange(n) % 4 != 0
    z_all, y_all, kwargs = z.copy(), y.copy(), {}
    z_all[~kept] = 1e30
    if dropped_by == "ignore_index":
        y_all[~kept] = -100
    else:
        kwargs[dropped_by] = kept if dropped_by == "mask" else kept.astype(np.float32)
    want_value, want_grad = vg(y[kept], z[kept], from_logits=True, z_loss=z_loss,
                               reduction=reduction, backend=backend)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = vg(y_all, z_all, from_logits=True, z_loss=z_loss, reduction=reduction,
                         backend=backend, **kwargs)  # fmt: skip
    value = np.asarray(value)
    np.testing.assert_allclose(value[kept] if reduction == "none" else value, want_value, rtol=2e-5)
    np.testing.assert_allclose(grad[kept], want_grad, rtol=2e-5, atol=1e-9)
    assert not grad[~kept].any()
    if reduction == "none":
        assert not value[~kept].any()
