r"""Reduction of per-example losses and of their derivatives, shared by every loss.

A loss is a sum of *terms* (cross-entropy, z-loss, ...). Each term has per-example values
:math:`\ell_i`, per-example derivatives, and a per-example *normaliser* :math:`d_i`. With the
example weights :math:`s_i` (``sample_weight`` times ``mask`` times "not ignored"):

* ``"none"``: :math:`s_i \ell_i` per example;
* ``"sum"``: :math:`\sum_i s_i \ell_i`;
* ``"mean"``: :math:`\sum_i s_i \ell_i / \sum_i s_i d_i`, and 0 when the denominator is 0.

:math:`d_i = 1` gives the weighted mean of scikit-learn's ``log_loss``; :math:`d_i = w_{y_i}`
(the class weight of the target) gives PyTorch's ``cross_entropy(weight=...)`` normalisation.
Derivatives follow by linearity: each term's are scaled by :math:`s_i` (``none``/``sum``) or
:math:`s_i / \sum_j s_j d_j` (``mean``). A batch with nothing left after masking has loss 0 and
gradient 0 (PyTorch returns NaN there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from .. import _derivatives, _validation
from .._array import asarray, moveaxis
from .._derivatives import Derivatives


@dataclass
class Term:
    """One additive part of a loss, per example; derivatives may carry a trailing class axis."""

    loss: Any
    grad: Any = None
    hess: Any = None
    normaliser: Any = None

    def scaled(self, c: float) -> Term:
        """This term multiplied by the constant ``c``."""
        return Term(
            *(None if v is None else c * v for v in (self.loss, self.grad, self.hess)),
            self.normaliser,
        )


def loss_sum(loss: Any, xp: Any) -> Any:
    """``xp.sum(loss)``; a float32 sum beyond the dtype's range is infinity without NumPy's
    warning (the losses' overflow check raises the library's error for it)."""
    with np.errstate(over="ignore"):
        return xp.sum(loss)


def scaled(c: Any, values: Any, xp: Any) -> Any:
    """``c * values`` for a factor ``c``, a float or an array of per-example factors, exactly 0
    where an array's factor is 0: an example masked, ignored or weighted 0 counts as if sliced
    out, also where its loss overflows (the z-loss of float32 logits beyond 1e19), which
    ``0 * inf`` would make NaN."""
    if isinstance(c, float):
        return c * values
    with np.errstate(invalid="ignore"):  # 0 * inf, replaced below
        product = c * values
    return xp.where(c == 0, xp.zeros_like(product), product)


def reduce(terms: list[Term], weights: Any, reduction: str, xp: Any) -> Derivatives:
    """Combine ``terms`` into the reduced value and derivatives (see the module docstring)."""
    value = None
    grad = None
    hess = None

    def times(c: Any, values: Any) -> Any:  # only weights can make an example's factor 0
        return c * values if weights is None else scaled(c, values, xp)

    for term in terms:
        s = xp.ones_like(term.loss) if weights is None else weights * xp.ones_like(term.loss)
        if reduction == "none":
            part, scale = times(s, term.loss), s
        elif reduction == "sum":
            part, scale = loss_sum(times(s, term.loss), xp), s
        else:
            d = s if term.normaliser is None else s * term.normaliser
            total = xp.sum(d)
            nonzero = total > 0
            safe_total = xp.where(nonzero, total, xp.ones_like(total))
            scale = xp.where(nonzero, s / safe_total, xp.zeros_like(s))
            # Scaled before the sum, as the blocks and kernels do: a mean of float64 losses
            # of 1e308 is one, where their sum overflows.
            part = loss_sum(times(scale, term.loss), xp)
            part = xp.where(nonzero, part, xp.zeros_like(total))
        value = part if value is None else value + part
        if term.grad is not None:
            c = scale if term.grad.ndim == scale.ndim else scale[..., None]
            grad = times(c, term.grad) if grad is None else grad + times(c, term.grad)
        if term.hess is not None:
            c = scale if term.hess.ndim == scale.ndim else scale[..., None]
            hess = times(c, term.hess) if hess is None else hess + times(c, term.hess)
    return Derivatives(value, grad, hess)


def reduction_scale(
    weights: Any, normaliser: Any, reduction: str, loss_shape: tuple, xp: Any, like: Any
) -> Any:
    """Per-example factors :math:`c_i` of a term: its reduced value is :math:`\\sum_i c_i
    \\ell_i` (or :math:`c_i \\ell_i` for ``"none"``) and its gradient :math:`c_i` times each
    example's own. For the paths that compute a loss in blocks (the fused kernels, the portable
    path's blocks of rows), which cannot see the whole batch's normaliser.

    Obtained from :func:`reduce` itself (the derivative of the reduced value with respect to
    unit losses), so the semantics are the core's. Without weights every example weighs 1 and
    the factor is one Python float: 1, or for ``"mean"`` one over the summed normalisers (the
    example count without them; 0 when that sum is 0, as :func:`reduce` gives). Otherwise an
    array of the loss shape, of ``like``'s dtype and device.
    """
    if weights is None:  # every example weighs 1: one factor for all
        if reduction != "mean":
            return 1.0
        total = float(math.prod(loss_shape)) if normaliser is None else float(xp.sum(normaliser))
        return 1.0 / total if total > 0 else 0.0
    ones = xp.ones(loss_shape, dtype=like.dtype, device=array_api_compat.device(like))
    return reduce([Term(ones * 0, ones, normaliser=normaliser)], weights, reduction, xp).grad


def example_weights(sample_weight: Any, mask: Any, loss_shape: tuple, xp: Any, like: Any) -> Any:
    """The product of ``sample_weight`` and ``mask`` (``None`` when neither is given).

    Both have the per-example loss shape or a leading part of it ((N,) for (N, K) multi-label
    input weights whole rows); see :func:`crossent._validation.example_weights`.
    """
    weights = None
    for name, w in (("sample_weight", sample_weight), ("mask", mask)):
        if w is not None:
            w = _validation.example_weights(w, xp, loss_shape, name, like)
            weights = w if weights is None else weights * w
    return weights


def finish(result: Derivatives, xp: Any, dtype: Any, *, axis: int = -1, out: Any = None) -> Any:
    """What a public loss returns, from any of its paths (portable, chunked or fused).

    Every array in the caller's ``dtype`` (float16 inputs are computed in float32; no copy
    when the dtype is already right), the class axis of the derivatives moved back from last
    to ``axis``, and the gradient written into the caller's ``out=`` buffer when given (no
    copy when a kernel already wrote it there).
    """

    def back(v: Any) -> Any:
        if v is None:
            return None
        return xp.astype(asarray(moveaxis(xp, v, -1, axis), xp), dtype, copy=False)

    value = xp.astype(asarray(result.value, xp), dtype, copy=False)
    grad, hess = back(result.grad), back(result.hess)
    if out is not None and grad is not None:
        if not np.may_share_memory(grad, out):
            out[...] = grad
        grad = out
    return _derivatives.output(Derivatives(value, grad, hess))
