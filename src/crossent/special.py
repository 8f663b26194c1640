"""Numerically stable building blocks: log-sum-exp, (log-)softmax, log-sigmoid, softplus.

Why they exist: ``np.log(softmax([1000.0, 1.0]))`` is ``[0, -inf]`` because ``exp(-999)``
underflows before the log can undo it, while ``log_softmax([1000.0, 1.0])`` is ``[0, -999]``.
Every loss in crossent works with these log-space forms and never takes the log of a
probability it could have computed as a log in the first place.

All functions accept any Array API array (NumPy, PyTorch, ...) and return the same kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _array, _validation


def logsumexp(x: Any, *, axis: int = -1, keepdims: bool = False) -> Any:
    r"""Log of the sum of exponentials along ``axis``, without overflow.

    .. math:: \operatorname{lse}(x) = m + \log \sum_i e^{x_i - m}, \qquad m = \max_i x_i

    Gradient: :math:`\partial\, \operatorname{lse} / \partial x_i = \operatorname{softmax}(x)_i`.
    A slice of all ``-inf`` gives ``-inf``; ``+inf`` anywhere gives ``+inf``.

    Example: ``logsumexp(np.array([1000.0, 1000.0]))`` is ``1000.6931...`` (naively ``inf``).

    Reference: Blanchard, Higham and Higham, "Accurately computing the log-sum-exp and softmax
    functions", IMA J. Numer. Anal. 41 (2021).
    """
    keepdims = _validation.flag(keepdims, "keepdims")
    xp, x = _along(x, axis)
    out = log_softmax_and_logsumexp(x, axis=axis)[1]
    return out if keepdims else xp.squeeze(out, axis=axis)


def _real(x: Any) -> tuple[Any, Any]:
    """The namespace and ``x`` as its array, real numbers only (booleans and integers become
    float64; text and complex numbers are refused). No pass over the data: NaN and infinities
    go through, as in SciPy."""
    xp = _array.namespace(x)
    x = _array.asarray(x, xp)
    kind = _validation.dtype_kind(x, xp)
    if kind == "other":
        raise TypeError(f"x must hold real numbers, got dtype {x.dtype}")
    if kind != "floating":
        x = xp.astype(x, xp.float64)
    return xp, x


def _along(x: Any, axis: Any) -> tuple[Any, Any]:
    """:func:`_real`, and ``axis`` an integer axis of ``x`` along which it has values."""
    xp, x = _real(x)
    axis = _validation.axis(axis, x.ndim)
    if x.shape[axis] == 0:
        raise ValueError(f"x has no values along axis {axis} (shape {tuple(x.shape)})")
    return xp, x


def _safe_max(x: Any, xp: Any, axis: int) -> Any:
    """Max along ``axis`` (kept), with infinite maxima replaced by 0 so ``x - m`` is never NaN."""
    m = _array.max_along(xp, x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, xp.zeros_like(m))


def _tempered(x: Any, temperature: float, xp: Any, axis: int = -1) -> tuple[Any, Any]:
    """``x / T`` up to a shift along ``axis`` that (log-)softmax ignores: ``(x - m) / T``, whose
    maximum is 0, and the shift ``m / T`` (``m`` the max, 0 where infinite). Dividing first
    would round large float32 logits before their differences are taken (at 1e4, to about
    1e-3)."""
    m = _safe_max(x, xp, axis)
    shifted = x - m
    if temperature == 1.0:
        return shifted, m
    return shifted / temperature, m / temperature


def _logaddexp(a: Any, b: Any, xp: Any) -> Any:
    """``log(exp(a) + exp(b))`` as ``max + log1p(exp(-|a - b|))``, the larger picked per element
    (``where``): its derivatives of every order stay finite where one term is negligible
    (PyTorch's own ``logaddexp`` gives NaN second derivatives at a gap of about 800 in
    float64, 90 in float32)."""
    first = a >= b
    return xp.where(first, a, b) + xp.log1p(xp.exp(xp.where(first, b - a, a - b)))


def log_softmax(x: Any, *, axis: int = -1) -> Any:
    r"""Logarithm of the softmax along ``axis``: :math:`x_i - \operatorname{lse}(x)`.

    Computed as :math:`(x_i - m) - \log\sum_j e^{x_j - m}`: the shift by the maximum is exact,
    so the result keeps full relative precision even where :math:`\operatorname{lse}(x)` is
    large (float32 logits of 512). Gradient (Jacobian-vector form):
    :math:`\partial \log p_i / \partial x_j = \delta_{ij} - p_j`.

    Example: ``log_softmax(np.array([1000.0, 1.0]))`` is ``[0.0, -999.0]`` where
    ``np.log(softmax(...))`` gives ``[0.0, -inf]``.
    """
    return log_softmax_and_logsumexp(x, axis=axis)[0]


def log_softmax_and_logsumexp(x: Any, *, axis: int = -1) -> tuple[Any, Any]:
    r"""``log_softmax(x)`` and ``logsumexp(x, keepdims=True)`` from one pass of exponentials.

    With :math:`m = \max_j x_j`, the sum of exponentials is :math:`1 + r`, where
    :math:`r = \sum_{j \ne \arg\max} e^{x_j - m}`; taking :math:`\log(1 + r)` as
    ``log1p(r)`` keeps the log-probability of a near-certain class exact
    (:math:`-10^{-13}`, not a rounding error of :math:`10^{-16}` on 1).
    """
    xp, x = _along(x, axis)
    shifted, m = _tempered(x, 1.0, xp, axis)
    log_p, log_sum = _log_softmax_of_shifted(shifted, xp, axis)
    return log_p, m + log_sum


def _log_softmax_of_shifted(shifted: Any, xp: Any, axis: int = -1) -> tuple[Any, Any]:
    """``log_softmax`` and ``log(sum(exp))`` along ``axis`` of ``shifted``, already shifted
    by its maximum (:func:`_tempered`; see :func:`log_softmax_and_logsumexp`)."""
    e = xp.exp(shifted)
    at_max = xp.astype(shifted == 0, shifted.dtype)  # 1 where e = exp(0) = 1 exactly (IEEE 754)
    n_max = _array.sum_along(xp, at_max, axis=axis, keepdims=True)
    # e - at_max removes the maxima exactly (1 - 1 = 0) and is cheaper than a select
    rest = _array.sum_along(xp, e - at_max, axis=axis, keepdims=True) + (n_max - 1)
    # A slice of all -inf has logsumexp -inf (log 0) and log-softmax NaN, as in SciPy.
    with np.errstate(divide="ignore", invalid="ignore"):
        log_sum = xp.log1p(rest)
        return shifted - log_sum, log_sum


def softmax(x: Any, *, axis: int = -1) -> Any:
    r"""Softmax along ``axis``: :math:`p_i = e^{x_i - m} / \sum_j e^{x_j - m}`.

    Gradient: :math:`\partial p_i / \partial x_j = p_i(\delta_{ij} - p_j)`.
    """
    xp, x = _along(x, axis)
    e = xp.exp(x - _safe_max(x, xp, axis))
    return e / _array.sum_along(xp, e, axis=axis, keepdims=True)


def sigmoid_parts(x: Any) -> tuple[Any, Any, Any, Any]:
    r""":math:`\log\sigma(x)`, :math:`\log\sigma(-x)`, :math:`\sigma(x)`, :math:`\sigma(-x)`.

    From one ``exp`` and one ``log1p``: with :math:`e = e^{-|x|} \in (0, 1]`,
    :math:`\log\sigma(\pm x) = \min(\pm x, 0) - \log(1 + e)` and the two probabilities are
    :math:`1 / (1 + e)` and :math:`e / (1 + e)`, each to full relative precision in both tails.
    :math:`|x|` and the minima are selected per element (``where``) for libraries with
    autograd, so that it differentiates one smooth formula on each side, the :math:`x \ge 0`
    one at 0: through ``abs`` and ``minimum`` (whose derivatives at 0 are 0 and a split tie)
    PyTorch had given :math:`\sigma'(0) = 0` and second derivatives of 0 for the losses at a
    logit of 0. NumPy takes ``abs`` and ``minimum``, and the probabilities are picked by a
    0/1 mask: ``np.where`` branches per element, 9x slower on logits of random signs.
    """
    xp, x = _real(x)
    positive = x >= 0
    if _array.is_numpy(xp):
        # np.where branches on every element: on logits of random signs it took 1.13 ms
        # against 0.13 ms for a branch-free form (262144 float32). NumPy has no autograd, for
        # which the selections below exist, so its forms need none.
        minus_abs, low_p, low_q = -np.abs(x), np.minimum(x, 0), np.minimum(-x, 0)
    else:
        zeros = xp.zeros_like(x)
        minus_abs = xp.where(positive, -x, x)
        low_p, low_q = xp.where(positive, zeros, x), xp.where(positive, -x, zeros)
    e = xp.exp(minus_abs)
    log1pe = xp.log1p(e)
    r = 1 / (1 + e)
    er = e * r
    # r and er are finite: 1 * r + 0 * er is r exactly, a selection without where.
    keep = xp.astype(positive, x.dtype)
    drop = 1 - keep
    return low_p - log1pe, low_q - log1pe, r * keep + er * drop, er * keep + r * drop


def log_sigmoid(x: Any) -> Any:
    r"""Logarithm of the logistic sigmoid: :math:`\log\sigma(x) = -\log(1 + e^{-x})`.

    Computed as :math:`\min(x, 0) - \operatorname{log1p}(e^{-|x|})`: exact for large negative
    ``x`` (where it equals ``x``) and for large positive ``x`` (where it is ``-exp(-x)``).
    Gradient: :math:`\sigma(-x)`.

    Reference: Maechler, "Accurately computing log(1 - exp(-|a|))", CRAN Rmpfr vignette (2012).
    """
    return sigmoid_parts(x)[0]


def softplus(x: Any) -> Any:
    r"""Softplus :math:`\log(1 + e^{x}) = -\log\sigma(-x)`, also called log1pexp.

    Gradient: :math:`\sigma(x)`.
    """
    return -sigmoid_parts(x)[1]


def sigmoid(x: Any) -> Any:
    r"""Logistic sigmoid :math:`\sigma(x) = 1 / (1 + e^{-x})`, without overflow.

    Computed as :math:`1/(1 + e^{-|x|})` or :math:`e^{-|x|}/(1 + e^{-|x|})` by the sign of
    ``x``: exact in both tails. Gradient: :math:`\sigma(x)\sigma(-x)`.
    """
    return sigmoid_parts(x)[2]
