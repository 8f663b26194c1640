"""Identities between losses and options: each side is computed independently."""

from __future__ import annotations

import numpy as np
import pytest
from _registry import CASES, Case

import crossent as ce
from crossent.testing import assert_allclose

rng = np.random.default_rng(3)
Z = rng.normal(scale=2.0, size=(12, 4))
Y = rng.integers(0, 4, size=12)


def test_focal_with_gamma_zero_is_cross_entropy():
    for y in (Y, np.eye(4)[Y] * 0.8 + 0.05):
        a = ce.value_and_grad(ce.categorical_focal_loss)(y, Z, gamma=0.0, from_logits=True)
        b = ce.value_and_grad(ce.categorical_cross_entropy)(y, Z, from_logits=True)
        assert_allclose(a[0], b[0], rtol=1e-14)
        assert_allclose(a[1], b[1], rtol=1e-14)
    yb = rng.uniform(size=12)
    a = ce.value_and_grad(ce.binary_focal_loss)(yb, Z[:, 0], gamma=0.0, from_logits=True)
    b = ce.value_and_grad(ce.binary_cross_entropy)(yb, Z[:, 0], from_logits=True)
    assert_allclose(a[0], b[0], rtol=1e-14)
    assert_allclose(a[1], b[1], rtol=1e-14)


def test_binary_is_two_class_softmax():
    z = Z[:, 0]
    y = (Y % 2).astype(float)
    two = np.stack([np.zeros_like(z), z], axis=-1)
    b = ce.value_grad_hess(ce.binary_cross_entropy)(y, z, from_logits=True)
    c = ce.value_grad_hess(ce.categorical_cross_entropy)(y.astype(int), two, from_logits=True)
    assert_allclose(b[0], c[0], rtol=1e-14)
    assert_allclose(b[1], c[1][:, 1], rtol=1e-13)
    assert_allclose(b[2], c[2][:, 1], rtol=1e-13)


def test_binary_focal_hard_labels_is_two_class_softmax_focal():
    z = Z[:, 0]
    y = (Y % 2).astype(int)
    two = np.stack([np.zeros_like(z), z], axis=-1)
    b = ce.value_and_grad(ce.binary_focal_loss)(y, z, from_logits=True, gamma=2.0, alpha=0.3)
    c = ce.value_and_grad(ce.categorical_focal_loss)(
        y, two, from_logits=True, gamma=2.0, alpha=np.array([0.7, 0.3])
    )
    assert_allclose(b[0], c[0], rtol=1e-13)
    assert_allclose(b[1], c[1][:, 1], rtol=1e-12)


@pytest.mark.parametrize("fn", [ce.categorical_cross_entropy, ce.categorical_focal_loss])
def test_integer_labels_equal_one_hot(fn):
    for kwargs in ({}, {"label_smoothing": 0.2}, {"temperature": 2.0}):
        a = ce.value_and_grad(fn)(Y, Z, from_logits=True, **kwargs)
        b = ce.value_and_grad(fn)(np.eye(4)[Y], Z, from_logits=True, **kwargs)
        # (the fused kernels take different code for labels and soft targets: rounding apart)
        assert_allclose(a[0], b[0], rtol=1e-14)
        assert_allclose(a[1], b[1], rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("fn", [ce.categorical_cross_entropy, ce.categorical_focal_loss])
def test_gradient_in_probabilities_is_continuous_in_temperature(fn):
    # Off the simplex (along (1, ..., 1)) the gradient is a convention: T = 1 gives the
    # textbook -g / p, and a temperature near 1 must give nearly the same, not a vector
    # shifted by sum(g) (it did: T = 1 + 1e-7 moved the non-target entries from 0 to 1).
    p = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    at_one = ce.value_and_grad(fn)(Y, p)[1]
    near_one = ce.value_and_grad(fn)(Y, p, temperature=1 + 1e-9)[1]
    assert_allclose(near_one, at_one, rtol=1e-6, atol=1e-7)
    # Along the simplex it is the derivative, at any temperature: a central difference in a
    # direction whose entries sum to 0 keeps the rows normalised (relative to p: small p).
    r = rng.normal(size=p.shape)
    d = p * (r - np.sum(p * r, axis=1, keepdims=True))
    for t in (0.5, 1.0, 3.0):
        grad = ce.value_and_grad(fn)(Y, p, temperature=t)[1]
        h = 1e-5
        fd = (fn(Y, p + h * d, temperature=t) - fn(Y, p - h * d, temperature=t)) / (2 * h)
        assert_allclose(np.sum(grad * d), fd, rtol=1e-7)


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in CASES
        if "mask" not in c.kwargs
        and "sample_weight" not in c.kwargs
        and c.fn not in (ce.kl_divergence, ce.distillation_loss)
        and "axis" not in c.kwargs
    ],
    ids=lambda c: c.id,
)
def test_mask_equals_slicing(case: Case):
    args = case.args()
    n = args[1].shape[0]
    keep = np.arange(n) % 3 != 1
    masked = ce.value_and_grad(case.fn)(*args, **case.kwargs, mask=keep)
    sliced = ce.value_and_grad(case.fn)(*(a[keep] for a in args), **case.kwargs)
    assert_allclose(masked[0], sliced[0], rtol=1e-13)
    assert_allclose(masked[1][keep], sliced[1], rtol=1e-13)
    assert np.all(masked[1][~keep] == 0)


def test_sample_weights_scale_value_gradient_and_hessian():
    w = rng.uniform(0.5, 2.0, size=12)
    a = ce.value_grad_hess(ce.categorical_focal_loss)(
        Y, Z, from_logits=True, sample_weight=w, reduction="none"
    )
    b = ce.value_grad_hess(ce.categorical_focal_loss)(Y, Z, from_logits=True, reduction="none")
    for weighted, plain in zip(a, b, strict=True):
        assert_allclose(weighted, (w if plain.ndim == 1 else w[:, None]) * plain, rtol=1e-14)
    integer_w = np.repeat(np.arange(12), [1, 2] * 6)
    repeated = ce.categorical_cross_entropy(Y[integer_w], Z[integer_w], from_logits=True)
    weighted = ce.categorical_cross_entropy(Y, Z, from_logits=True, sample_weight=[1, 2] * 6)
    assert_allclose(weighted, repeated, rtol=1e-14)


def test_logit_shift_invariance():
    shifted = Z + rng.normal(size=(12, 1)) * 100
    for fn in (ce.categorical_cross_entropy, ce.categorical_focal_loss):
        a = ce.value_and_grad(fn)(Y, Z, from_logits=True)
        b = ce.value_and_grad(fn)(Y, shifted, from_logits=True)
        assert_allclose(a[0], b[0], rtol=1e-12)
        assert_allclose(a[1], b[1], rtol=1e-9, atol=1e-14)


def test_axis_equals_moveaxis():
    z = rng.normal(size=(3, 4, 5))
    y = rng.integers(0, 4, size=(3, 5))
    a = ce.value_and_grad(ce.categorical_cross_entropy)(y, z, from_logits=True, axis=1)
    b = ce.value_and_grad(ce.categorical_cross_entropy)(y, np.moveaxis(z, 1, -1), from_logits=True)
    assert_allclose(a[0], b[0], rtol=1e-14)
    assert_allclose(np.moveaxis(a[1], 1, -1), b[1], rtol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_close_to_float64(case: Case):
    args = case.args()
    args32 = tuple(a.astype(np.float32) if a.dtype == np.float64 else a for a in args)
    v64, g64 = ce.value_and_grad(case.fn)(*args, **case.kwargs)
    v32, g32 = ce.value_and_grad(case.fn)(*args32, **case.kwargs)
    assert v32.dtype == np.float32 and g32.dtype == np.float32
    assert_allclose(v32, v64, rtol=2e-5, atol=1e-6)
    assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_inputs_are_not_modified(case: Case):
    args = case.args()
    for a in args:
        a.setflags(write=False)  # a write would raise
    copies = [a.copy() for a in args]
    ce.value_grad_hess(case.fn)(*args, **case.kwargs) if case.logits else (
        ce.value_and_grad(case.fn)(*args, **case.kwargs)
    )
    for a, b in zip(args, copies, strict=True):
        assert np.array_equal(a, b)


def test_kl_of_identical_distributions_is_zero_and_distillation_limits():
    p = ce.softmax(Z)
    assert abs(float(ce.kl_divergence(p, Z, from_logits=True))) < 1e-15
    t = rng.normal(size=Z.shape)
    assert_allclose(
        ce.distillation_loss(Y, Z, t, alpha=0.0),
        ce.categorical_cross_entropy(Y, Z, from_logits=True),
        rtol=1e-14,
    )
    assert_allclose(
        ce.distillation_loss(Y, Z, t, alpha=1.0, temperature=3.0),
        9.0 * ce.kl_divergence(ce.softmax(t / 3.0), Z / 3.0, from_logits=True),
        rtol=1e-13,
    )
