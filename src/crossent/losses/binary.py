r"""Binary (sigmoid) cross-entropy and binary focal loss, with analytic derivatives.

Both are one formula. With target :math:`y \in [0, 1]` (after label smoothing), positive
weight :math:`w_+`, focusing parameter :math:`\gamma` and balance :math:`\alpha_t`:

.. math::

    \ell = \alpha_t \, u^{\gamma} \, A, \qquad
    A = -\bigl(w_+\, y \log p + (1 - y) \log(1 - p)\bigr), \qquad
    u = 1 - p_t = y (1 - p) + (1 - y)\, p,

with :math:`p = \sigma(z)` from logits or the given probability. :math:`\gamma = 0`,
:math:`\alpha_t = 1` is binary cross-entropy; :math:`w_+ = 1` is the focal loss of Lin et al.
(torchvision's ``sigmoid_focal_loss`` and Keras' ``BinaryFocalCrossentropy``).

Derivatives with respect to the logit :math:`z` (:math:`q = 1 - p = \sigma(-z)`):

.. math::

    A' = (1 - y)\,p - w_+\, y\, q, \quad A'' = (w_+ y + 1 - y)\, p q, \quad
    u' = (1 - 2y)\, p q, \quad u'' = (1 - 2y)\, p q (1 - 2p),

    \ell' = \alpha_t (F' A + F A'), \quad \ell'' = \alpha_t (F'' A + 2 F' A' + F A''),
    \quad F = u^\gamma .

Every power of :math:`u` is taken as ``exp(k * log u)`` with
:math:`\log u = \operatorname{logaddexp}(\log y + \log\sigma(-z), \log(1-y) + \log\sigma(z))`,
so the loss and its derivatives stay finite for :math:`\gamma < 1` and :math:`|z| = 10^4`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _array, _derivatives, _validation, kernels
from ..special import _logaddexp, sigmoid_parts
from ._blocks import block_elements, in_blocks
from ._reduction import Term, example_weights, finish, loss_sum, reduce, reduction_scale


def _times(k: float, log_x: Any, xp: Any) -> Any:
    """``k * log_x`` with ``0 * (-inf) = 0``, so ``exp`` of it is ``x ** k`` with ``0 ** 0 = 1``;
    beyond the float range it is ``-inf`` (``x ** k = 0``) without NumPy's overflow warning
    (logits of -1e308 give ``log_x = -1e308``)."""
    if k == 0:
        return xp.zeros_like(log_x)
    with np.errstate(over="ignore"):
        return k * log_x


def _log_u(y: Any, log_p: Any, log_q: Any, xp: Any) -> Any:
    """``log u`` with ``u = y q + (1 - y) p``, the probability given to the wrong side:
    ``log q`` where ``y = 1``, ``log p`` where ``y = 0``, else ``logaddexp(log y + log q,
    log(1 - y) + log p)``. No ``log 0`` is formed, even in the branches not taken, so that
    autograd's second derivatives through it stay finite (``-inf`` there made them NaN)."""
    one, zero = y == 1, y == 0
    mid = xp.where(one | zero, xp.full_like(y, 0.5), y)
    mixed = _logaddexp(xp.log(mid) + log_q, xp.log1p(-mid) + log_p, xp)
    return xp.where(one, log_q, xp.where(zero, log_p, mixed))


@kernels.on_host_views
def _binary(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool,
    pos_weight: Any,
    sample_weight: Any,
    mask: Any,
    label_smoothing: float,
    gamma: float,
    alpha: float | None,
    reduction: str,
    backend: str | None,
    out: Any,
) -> Any:
    from_logits = _validation.flag(from_logits, "from_logits")
    order = _derivatives.order()
    xp = _array.namespace(y_pred, y_true)
    backend = kernels.resolve(backend)
    fused = _array.is_numpy(xp) and kernels.use_fused(backend, y_pred, from_logits, order)
    out_dtype = _validation.result_dtype(y_pred, xp)
    # Logits are checked for NaN/inf, and targets for their range, after every other check, by
    # the fused kernel as it reads them or below: the first error is the same on both paths.
    z = _validation.predictions(y_pred, xp, check_finite=not from_logits)
    out = kernels.gradient_buffer(out, z, out_dtype)
    y = _array.asarray(y_true, xp, z, "y_true")
    _validation.numeric(y, xp, "y_true")
    _validation.same_shape(y, z, "y_true", "y_pred")
    _validation.reduction(reduction)
    eps_smooth = _validation.in_range(label_smoothing, "label_smoothing", 0.0, 1.0)
    gamma = _validation.in_range(gamma, "gamma", 0.0)
    if alpha is not None:
        alpha = _validation.in_range(alpha, "alpha", 0.0, 1.0)
    if order == 2 and not from_logits:
        raise ValueError("hessians are computed with respect to logits: pass from_logits=True")
    w_pos = 1.0
    if pos_weight is not None:
        w_pos = _validation.real_numbers(pos_weight, xp, "pos_weight", z)
        if w_pos.ndim > 1 or (w_pos.ndim == 1 and w_pos.shape[0] not in (1, z.shape[-1])):
            raise ValueError(
                f"pos_weight must be a scalar or have shape ({z.shape[-1]},), one weight per "
                f"label, got shape {tuple(w_pos.shape)}"
            )
        _validation.finite(w_pos, xp, "pos_weight")
        if not bool(xp.all(w_pos >= 0)):
            raise ValueError("pos_weight must be non-negative")
    weights = example_weights(sample_weight, mask, tuple(z.shape), xp, z)
    if not fused:  # the fused kernel's checks, in its order; it also smooths as it reads
        if from_logits:
            _validation.finite(z, xp, "y_pred")
        y = xp.astype(_validation.targets_in_unit_interval(y, xp, "y_true"), z.dtype, copy=False)
        if eps_smooth:
            y = y * (1 - eps_smooth) + eps_smooth / 2
    if not from_logits:
        _validation.probabilities(z, xp, "y_pred")
    elements = None if fused else block_elements(z, xp)
    if fused or elements:
        scale = reduction_scale(weights, None, reduction, tuple(z.shape), xp, z)
    if fused:
        options = {
            "label_smoothing": eps_smooth,
            "gamma": gamma,
            "alpha": alpha,
            "reduction": reduction,
        }
        w_pos = None if pos_weight is None else w_pos
        value, grad = kernels.fused_binary(z, y, w_pos, scale, options, order, out)
        result = _derivatives.Derivatives(value, grad, None)
    elif elements:  # rows of the last axis, whose labels pos_weight follows
        # 1-D input is blocked element by element: a pos_weight per element goes with them
        by_element = z.ndim == 1 and getattr(w_pos, "ndim", 0) == 1 and w_pos.shape[0] > 1
        loss, grad, hess = in_blocks(
            lambda zb, yb, wb: [_term(zb, yb, w_pos if wb is None else wb, from_logits, gamma,
                                      alpha, order, xp)],
            z, [y, w_pos if by_element else None], [scale], True, order, xp, out, elements,
        )  # fmt: skip
        value = loss if reduction == "none" else loss_sum(loss, xp)
        result = _derivatives.Derivatives(value, grad, hess)
    else:
        term = _term(z, y, w_pos, from_logits, gamma, alpha, order, xp)
        result = reduce([term], weights, reduction, xp)
    return finish(result, xp, out_dtype, out=out)


def _term(
    z: Any, y: Any, w_pos: Any, from_logits: bool, gamma: float, alpha: float | None,
    order: int, xp: Any,
) -> Term:  # fmt: skip
    """The unweighted per-element loss and its derivatives up to ``order`` (formulas in the
    module docstring), for validated logits or probabilities ``z`` and targets ``y``."""
    if from_logits:
        log_p, log_q, p, q = sigmoid_parts(z)
    else:
        p = _array.clip_probabilities(z, xp)
        q = 1 - p
        log_p, log_q = xp.log(p), xp.log1p(-p)

    wy, not_y = w_pos * y, 1 - y
    a = -(wy * log_p + not_y * log_q)
    # Derivatives of A: with respect to z for logits, to p for probabilities.
    da = (not_y * p - wy * q if from_logits else not_y / q - wy / p) if order >= 1 else None
    d2a = (wy + not_y) * p * q if order >= 2 else None  # hessians need logits (the caller checks)

    loss, grad, hess = a, da, d2a
    if gamma > 0:
        log_u = _log_u(y, log_p, log_q, xp)
        f = xp.exp(_times(gamma, log_u, xp))
        loss = f * a
        if order >= 1:
            sign = 1 - 2 * y
            log_pq = log_p + log_q if from_logits else 0.0  # log of du/dz / (1 - 2y)
            u1_du = xp.exp(_times(gamma - 1, log_u, xp) + log_pq)  # u^(gamma-1) du/dz / sign
            df = gamma * sign * u1_du
            grad = df * a + f * da
        if order >= 2:
            d2f = (
                gamma * (gamma - 1) * sign**2 * xp.exp(_times(gamma - 2, log_u, xp) + 2 * log_pq)
                + gamma * sign * (1 - 2 * p) * u1_du
            )
            hess = d2f * a + 2 * df * da + f * d2a
    if alpha is not None:
        alpha_t = alpha * y + (1 - alpha) * not_y
        loss, grad, hess = (None if v is None else alpha_t * v for v in (loss, grad, hess))

    return Term(loss, grad, hess)


@_derivatives.differentiable(max_order=2)
def binary_cross_entropy(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool = False,
    pos_weight: Any = None,
    sample_weight: Any = None,
    mask: Any = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    backend: str | None = None,
    out: Any = None,
) -> Any:
    r"""Binary cross-entropy (log loss) for binary, soft and multi-label targets.

    .. math::

        \ell_i = -\bigl(w_+\, y_i \log p_i + (1 - y_i) \log(1 - p_i)\bigr)

    From logits, :math:`\log p = \log\sigma(z)` and :math:`\log(1 - p) = \log\sigma(-z)` are
    computed directly, so ``|z| = 1e4`` is exact. Gradient with respect to the logit:
    :math:`(1 - y)p - w_+ y (1 - p)` (:math:`p - y` when :math:`w_+ = 1`); hessian
    :math:`(w_+ y + 1 - y)\, p (1 - p)`. With respect to a probability:
    :math:`(1 - y)/(1 - p) - w_+ y / p`.

    Args:
        y_true: targets in [0, 1] (hard or soft), same shape as ``y_pred``.
        y_pred: probabilities of the positive class, or logits with ``from_logits=True``;
            any shape, e.g. (N,) or (N, K) for K independent labels.
        from_logits: whether ``y_pred`` holds logits (recommended: exact and stable).
        pos_weight: weight of the positive term, a scalar or one per label (shape (K,)),
            as PyTorch's ``BCEWithLogitsLoss(pos_weight=...)``.
        sample_weight: non-negative weights, of ``y_pred``'s shape or a leading part of it
            ((N,) weighs whole rows of a (N, K) input).
        mask: 0/1 or boolean, same shapes as ``sample_weight``; masking equals slicing out.
        label_smoothing: :math:`\varepsilon` in [0, 1]; targets become
            :math:`y(1 - \varepsilon) + \varepsilon / 2` (Keras' convention).
        reduction: ``"mean"`` (weighted mean :math:`\sum s_i \ell_i / \sum s_i`, as
            scikit-learn's ``log_loss``), ``"sum"`` or ``"none"``.
        backend: ``"auto"`` (default; also set by ``CROSSENT_BACKEND``), ``"fused"`` or
            ``"portable"``; see :mod:`crossent.kernels`. All give the same values.
        out: a NumPy array of ``y_pred``'s shape and dtype that receives the gradient (with
            :func:`crossent.value_and_grad`); may be ``y_pred`` itself (a call refused for
            NaN or bad targets may leave gradient values in it), but no other array
            overlapping it.

    Probabilities are clipped to :math:`[\epsilon, 1 - \epsilon]` of the dtype they are
    computed in (float32 for float16; PyTorch instead clamps the log at -100). Returns an
    array of ``y_pred``'s dtype.

    Example::

        >>> import numpy as np, crossent
        >>> y, p = np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.8, 0.2])
        >>> round(float(crossent.binary_cross_entropy(y, p)), 6)
        0.164252

    Reference: Bishop, *Pattern Recognition and Machine Learning* (2006), eq. 4.90.
    """
    return _binary(
        y_true,
        y_pred,
        from_logits=from_logits,
        pos_weight=pos_weight,
        sample_weight=sample_weight,
        mask=mask,
        label_smoothing=label_smoothing,
        gamma=0.0,
        alpha=None,
        reduction=reduction,
        backend=backend,
        out=out,
    )


@_derivatives.differentiable(max_order=2)
def binary_focal_loss(
    y_true: Any,
    y_pred: Any,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    from_logits: bool = False,
    sample_weight: Any = None,
    mask: Any = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    backend: str | None = None,
    out: Any = None,
) -> Any:
    r"""Binary focal loss: cross-entropy down-weighted on well-classified examples.

    .. math::

        \ell_i = -\alpha_t\, (1 - p_t)^{\gamma}\,
            \bigl(y \log p + (1 - y)\log(1 - p)\bigr), \quad
        p_t = y p + (1 - y)(1 - p), \quad \alpha_t = \alpha y + (1 - \alpha)(1 - y)

    For a negative example (:math:`y = 0`) the modulating factor is :math:`p^\gamma`: the
    probability given to the wrong class. (A common mistake, repeated in teaching material,
    uses :math:`p_t^\gamma` there, which weights easy negatives *up*.) The gradient and hessian
    with respect to the logit are derived in :mod:`crossent.losses.binary`.

    Args:
        y_true, y_pred, from_logits, sample_weight, mask, label_smoothing, reduction, backend,
            out: as in :func:`binary_cross_entropy`; smoothing is applied to the targets first
            (Keras).
        gamma: focusing parameter :math:`\gamma \ge 0`; 0 gives cross-entropy.
        alpha: ``None`` (no balancing, as Keras and optax by default) or :math:`\alpha` in
            [0, 1] weighting positives by :math:`\alpha` and negatives by :math:`1 - \alpha`
            (torchvision's ``sigmoid_focal_loss``, whose default is 0.25).

    Example::

        >>> import numpy as np, crossent
        >>> y, p = np.array([0, 1, 0, 0, 1]), np.array([0.2, 0.8, 0.1, 0.3, 0.7])
        >>> round(float(crossent.binary_focal_loss(y, p, gamma=2.0, alpha=0.25)), 6)
        0.008363

    Reference: Lin, Goyal, Girshick, He and Dollár, "Focal Loss for Dense Object Detection",
    ICCV 2017, https://arxiv.org/abs/1708.02002.
    """
    return _binary(
        y_true,
        y_pred,
        from_logits=from_logits,
        pos_weight=None,
        sample_weight=sample_weight,
        mask=mask,
        label_smoothing=label_smoothing,
        gamma=gamma,
        alpha=alpha,
        reduction=reduction,
        backend=backend,
        out=out,
    )
