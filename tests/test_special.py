"""Stable primitives against SciPy and 50-digit mpmath references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special as sp

import crossent as ce
from crossent.testing import assert_allclose

mp = pytest.importorskip("mpmath")
mp.mp.dps = 50

X = np.array(
    [-1e4, -745.0, -50.0, -20.0, -1.0, -1e-8, 0.0, 1e-8, 0.5, 9.35, 20.0, 50.0, 800.0, 1e4]
)


def test_log_sigmoid_matches_mpmath():
    expected = [float(-mp.log1p(mp.exp(-mp.mpf(x)))) for x in X]
    assert_allclose(ce.log_sigmoid(X), expected, rtol=1e-14)


def test_softplus_and_sigmoid_match_mpmath():
    assert_allclose(ce.softplus(X), [float(mp.log1p(mp.exp(mp.mpf(x)))) for x in X], rtol=1e-14)
    assert_allclose(ce.sigmoid(X), [float(1 / (1 + mp.exp(-mp.mpf(x)))) for x in X], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_family_special_values_match_scipy(dtype):
    # NumPy takes branch-free forms (abs, minimum, a 0/1 mask) instead of where: the same
    # values at infinities, zeros, NaN and both tails, against SciPy's expit family.
    x = np.array([-np.inf, -1e4, -90.0, -1e-30, -0.0, 0.0, 1e-30, 90.0, 1e4, np.inf, np.nan])
    x = x.astype(dtype)
    wide = x.astype(np.float64)  # references in float64, rounded to the dtype
    rtol = 4 * np.finfo(dtype).eps
    checks = [
        (ce.sigmoid, sp.expit(wide)),
        (ce.log_sigmoid, sp.log_expit(wide)),
        (ce.softplus, -sp.log_expit(-wide)),
    ]
    for fn, want in checks:
        got = fn(x)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want.astype(dtype), rtol=rtol, atol=0)


def test_binary_cross_entropy_from_logits_matches_mpmath():
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.3, 1.0])
    z = np.array([9.354378866640024, -11.3, -1e4, 1e4, 40.0, 1e4])
    expected = [
        float(mp.log1p(mp.exp(mp.mpf(zi))) - mp.mpf(yi) * mp.mpf(zi))
        for yi, zi in zip(y, z, strict=True)
    ]
    assert_allclose(
        ce.binary_cross_entropy(y, z, from_logits=True, reduction="none"), expected, rtol=1e-14
    )


@pytest.mark.parametrize("shape_axis", [((5, 7), -1), ((4, 3, 6), 1), ((8,), 0)])
def test_logsumexp_and_log_softmax_match_scipy(shape_axis):
    shape, axis = shape_axis
    x = np.random.default_rng(0).normal(scale=30.0, size=shape)
    assert_allclose(ce.logsumexp(x, axis=axis), sp.logsumexp(x, axis=axis), rtol=1e-14)
    assert_allclose(
        ce.log_softmax(x, axis=axis), sp.log_softmax(x, axis=axis), rtol=1e-13, atol=1e-13
    )
    assert_allclose(ce.softmax(x, axis=axis), sp.softmax(x, axis=axis), rtol=1e-13, atol=1e-300)


def test_log_softmax_where_log_of_softmax_fails():
    x = np.array([1000.0, 1.0])
    with np.errstate(divide="ignore"):
        assert np.log(sp.softmax(x))[1] == -np.inf
    assert_allclose(ce.log_softmax(x), [0.0, -999.0], rtol=1e-15)


def test_logsumexp_special_values():
    assert ce.logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert ce.logsumexp(np.array([np.inf, 1.0])) == np.inf
    assert_allclose(ce.logsumexp(np.array([1000.0, 1000.0])), 1000 + np.log(2), rtol=1e-15)
    assert ce.logsumexp(np.array([1e4], dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 5, 32, 33])
def test_short_axis_reductions_equal_numpy_s(n, dtype):
    # Rows of up to 32 values are summed by einsum and their max taken column by column
    # (NumPy's own reductions go row by row there): the same numbers, NaN and infinities
    # included, for every axis and keepdims.
    from crossent import _array

    rng = np.random.default_rng(n)
    x = rng.normal(size=(7, 3, n)).astype(dtype) * 10
    x[0, 0, -1], x[1, 1, 0], x[2, 2, n // 2] = np.nan, np.inf, -np.inf
    before = x.copy()
    for axis in (-1, 2, 0):
        for keepdims in (False, True):
            want_sum = np.sum(x, axis=axis, keepdims=keepdims)
            got_sum = _array.sum_along(np, x, axis=axis, keepdims=keepdims)
            assert got_sum.shape == want_sum.shape and got_sum.dtype == dtype
            scale = np.sum(np.abs(np.nan_to_num(x)), axis=axis, keepdims=keepdims)
            finite = np.isfinite(want_sum)
            np.testing.assert_array_equal(got_sum[~finite], want_sum[~finite])
            error = np.abs(got_sum[finite] - want_sum[finite])
            assert np.all(error <= 8 * np.finfo(dtype).eps * scale[finite])
            want_max = np.max(x, axis=axis, keepdims=keepdims)
            got_max = _array.max_along(np, x, axis=axis, keepdims=keepdims)
            np.testing.assert_array_equal(got_max, want_max)
            assert got_max.dtype == dtype
    np.testing.assert_array_equal(x, before)  # the input is only read
