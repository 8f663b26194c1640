r"""Softmax (categorical) cross-entropy and categorical focal loss, with analytic derivatives.

One mechanism serves every variant. A row's loss is a sum over classes of a function of the
log-probability :math:`L_c = \log p_c`,

.. math:: \ell = \sum_c \varphi_c(L_c), \qquad
    \varphi_c(L) = -g_c\, (1 - e^{L})^{\gamma} L,

where :math:`g_c = w_c \alpha_c q_c` folds the (smoothed) target distribution :math:`q`, the
class weights :math:`w` and the focal balance :math:`\alpha`; :math:`\gamma = 0` is
cross-entropy. With :math:`v = 1 - p` and :math:`h = L / v`:

.. math:: \varphi' = -g\, v^{\gamma} (1 - \gamma p h), \qquad
    \varphi'' = g \gamma\, v^{\gamma - 1} p\, \bigl(2 + L - (\gamma - 1) p h\bigr).

From logits (:math:`L = z - \operatorname{lse}(z)`, so
:math:`\partial L_c / \partial z_j = \delta_{cj} - p_j`) the gradient and hessian diagonal are

.. math:: \frac{\partial \ell}{\partial z_j} = \varphi'_j (1 - p_j) - p_j
    \sum_{c \ne j} \varphi'_c, \qquad
    \frac{\partial^2 \ell}{\partial z_j^2} = \varphi''_j (1 - p_j)^2 + p_j^2
    \sum_{c \ne j} \varphi''_c - p_j (1 - p_j) \sum_c \varphi'_c ,

which for cross-entropy is the familiar :math:`W p_j - g_j` and :math:`W p_j (1 - p_j)` with
:math:`W = \sum_c g_c`. From probabilities, :math:`\partial \ell / \partial p_c =
\varphi'_c / p_c` (the textbook's :math:`-q_c / p_c`). With a temperature the row is
re-normalised, :math:`L = \operatorname{log\_softmax}(\log p / T)`; the derivative along the
simplex is then unique, and its part along :math:`(1, \dots, 1)`, which leaves the simplex,
is chosen to be continuous at :math:`T = 1`: :math:`\partial \ell / \partial p_c =
(\partial \ell / \partial x_c + p_c \sum_j \varphi'_j) / (T p_c)` with :math:`x = \log p /
T`. Temperature divides the logits by :math:`T` (derivatives gain
:math:`1/T` and :math:`1/T^2`); the z-loss adds :math:`z\,\operatorname{lse}^2`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import _array, _derivatives, _validation, kernels
from ..special import _log_softmax_of_shifted, _tempered
from ._blocks import block_elements, in_blocks
from ._reduction import Term, example_weights, finish, loss_sum, reduce, reduction_scale


class _LogProbs:
    """Log-probabilities of a prediction array with class axis last, and what derives from them.

    ``from_logits``: ``log_softmax(z / T)``; otherwise ``log(clip(p))``, then re-normalised
    through ``log_softmax(log(p) / T)`` when a temperature other than 1 is asked for.
    """

    def __init__(self, pred: Any, xp: Any, from_logits: bool, temperature: float) -> None:
        self.temperature = temperature
        self.from_logits = from_logits
        self.rescaled = from_logits or temperature != 1.0
        if from_logits:
            z = pred
        else:  # eps of the dtype computed in: float16's (1e-3) would clip valid probabilities
            self.clipped = _array.clip_probabilities(pred, xp)
            z = xp.log(self.clipped)
        if not self.rescaled:
            self.log_p = z
            self.p = self.clipped
            self.v = 1 - self.p
            return
        shifted, shift = _tempered(z, temperature, xp)
        self.log_p, log_sum = _log_softmax_of_shifted(shifted, xp)
        self.lse = shift + log_sum
        self.p = xp.exp(self.log_p)
        self.v = -xp.expm1(self.log_p)

    def top(self, xp: Any) -> Any:
        """A mask of each row's most probable class (its first, on ties)."""
        classes = xp.arange(self.p.shape[-1], device=_array.array_api_compat.device(self.p))
        return xp.argmax(self.log_p, axis=-1, keepdims=True) == classes

    def chain(self, grad: Any, hess: Any) -> tuple[Any, Any]:
        """Map derivatives with respect to the scaled logits back to the caller's input."""
        t = self.temperature
        if t != 1.0:
            grad = grad / t
            hess = None if hess is None else hess / t**2
        if not self.from_logits:
            grad = grad / self.clipped
        return grad, hess


def _phi(g: Any, lp: _LogProbs, gamma: float, order: int, xp: Any) -> tuple[Any, Any, Any]:
    r"""phi, phi' and phi'' * (1 - p)**2 elementwise (formulas in the module docstring).

    The last is returned scaled by :math:`v^2` and computed as ``exp((gamma + 1) log v + L)``:
    :math:`\varphi''` alone grows like :math:`v^{\gamma - 1}` and overflows for
    :math:`\gamma < 1` on a near-certain class, :math:`\varphi'' v^2` never does.
    """
    log_p, p, v = lp.log_p, lp.p, lp.v
    if gamma == 0:
        neg_g = -g
        return neg_g * log_p, neg_g, None
    positive = v > 0
    safe_v = xp.where(positive, v, xp.ones_like(v))
    h = xp.where(positive, log_p / safe_v, -xp.ones_like(v))  # L / (1 - p) -> -1 as p -> 1
    # v ** gamma with v = 0 left out: its derivative there is infinite for gamma < 1, and
    # autograd's infinity times the zero it multiplies (log p = 0) had made gradients NaN
    m = xp.where(positive, safe_v**gamma, xp.zeros_like(v))
    phi = -g * m * log_p
    d1 = -g * m * (1 - gamma * p * h)
    d2v2 = None
    if order >= 2:
        log_v = xp.where(positive, xp.log(safe_v), -xp.inf * xp.ones_like(v))
        d2v2 = g * gamma * xp.exp((gamma + 1) * log_v + log_p) * (2 + log_p - (gamma - 1) * p * h)
    return phi, d1, d2v2


def _hessian_diagonal(d2v2: Any, s1: Any, lp: _LogProbs, xp: Any) -> Any:
    r"""Diagonal of the hessian in the logits from :math:`\varphi'' v^2` and :math:`\sum\varphi'`.

    :math:`H_j = \varphi''_j v_j^2 + p_j^2 \sum_{c \ne j} \varphi''_c - p_j v_j \sum_c
    \varphi'_c`. Only the most probable class :math:`m` can have a small :math:`v` (every
    other has :math:`v \ge 1/2`), so its :math:`\varphi''_m` is never formed: it enters as
    :math:`(p_j / v_m)^2 \varphi''_m v_m^2` with :math:`p_j \le v_m`.
    """
    p, v = lp.p, lp.v
    top = lp.top(xp)
    zeros = xp.zeros_like(p)
    v_off_top = xp.where(top, xp.ones_like(v), v)
    curvature = xp.where(top, zeros, d2v2 / v_off_top**2)  # phi'' of the other classes
    rest = xp.sum(curvature, axis=-1, keepdims=True)
    top_term = xp.sum(xp.where(top, d2v2, zeros), axis=-1, keepdims=True)
    v_top = xp.sum(xp.where(top, v, zeros), axis=-1, keepdims=True)
    ratio = xp.where(top, zeros, p) / xp.where(v_top > 0, v_top, xp.ones_like(v_top))  # <= 1
    cross = xp.where(top, p**2 * rest, p**2 * (rest - curvature) + ratio**2 * top_term)
    return d2v2 + cross - p * v * s1


def _softmax_term(
    g: Any, lp: _LogProbs, gamma: float, order: int, xp: Any, normaliser: Any = None
) -> Term:
    r"""The per-row loss :math:`\sum_c \varphi_c` and its derivatives in the caller's space."""
    phi, d1, d2v2 = _phi(g, lp, gamma, order, xp)
    loss = _array.sum_along(xp, phi)
    if order == 0:
        return Term(loss, normaliser=normaliser)
    if lp.rescaled:
        # Written with v = 1 - p (exact) and the sums over the *other* classes, so that a
        # near-certain class does not lose its gradient to the rounding of p - 1.
        d1 = xp.broadcast_to(d1, lp.p.shape)
        s1 = _array.sum_along(xp, d1, keepdims=True)
        grad = d1 * lp.v - lp.p * (s1 - d1)
        if not lp.from_logits:  # the component along (1, ..., 1) of T = 1's (module docstring)
            grad = grad + lp.clipped * s1
        hess = None
        if order >= 2:
            d2v2 = xp.zeros_like(lp.p) if d2v2 is None else d2v2
            hess = _hessian_diagonal(d2v2, s1, lp, xp)
    else:
        grad, hess = xp.broadcast_to(d1, lp.p.shape), None
    grad, hess = lp.chain(grad, hess)
    return Term(loss, grad, hess, normaliser)


def _z_loss_term(lp: _LogProbs, z_loss: float, order: int) -> Term:
    """PaLM's auxiliary loss :math:`z \\operatorname{lse}^2`, normalised over valid rows."""
    lse = lp.lse[..., 0]
    grad = hess = None
    # Overflows without NumPy's warning: a counted row's is refused with the library's error,
    # a left-out row's weighs 0 (see _reduction.scaled).
    with np.errstate(over="ignore"):
        if order >= 1:
            grad = 2 * z_loss * lp.lse * lp.p
        if order >= 2:
            hess = 2 * z_loss * (lp.p**2 + lp.lse * lp.p * lp.v)
        grad, hess = lp.chain(grad, hess) if grad is not None else (None, None)
        return Term(z_loss * lse**2, grad, hess)


def _target_parts(
    y_true: Any,
    pred: Any,
    xp: Any,
    axis: int,
    ignore_index: int | None,
    check_labels: bool,
    pred_name: str = "y_pred",
) -> tuple[Any, Any, Any]:
    """Soft targets (class axis last) or integer labels, and the row validity (None when no
    row is ignored).

    Exactly one of the first two is returned. ``check_labels=False`` leaves the label range to
    the caller (the fused kernel, or the portable path once every other argument is checked).
    ``pred_name`` names the predictions in error messages.
    """
    n_classes = pred.shape[-1]
    y = _array.asarray(y_true, xp, pred, "y_true")
    if y.ndim == pred.ndim:
        y = _array.class_axis_last(xp, y, axis)
        _validation.same_shape(y, pred, "y_true", pred_name)
        coarser = _validation.coarser(_validation.result_dtype(y, xp), pred.dtype, xp)
        soft = xp.astype(_validation.targets_in_unit_interval(y, xp, "y_true"), pred.dtype)
        _validation.sums_to_one(soft, xp, "y_true", hint="", dtype=coarser)
        return soft, None, None
    if tuple(y.shape) == tuple(pred.shape[:-1]):
        labels = _validation.class_indices(
            y, xp, n_classes, ignore_index, "y_true", check_range=check_labels,
            shape_of=f"{pred_name}'s without the class axis",
        )  # fmt: skip
        valid = None
        # One reduction without a temporary settles the usual case, an ignore_index below
        # every label (PyTorch's -100 beside labels from 0); the labels are not empty, as
        # the predictions are not.
        if ignore_index is not None and ignore_index >= int(xp.min(labels)):
            valid = labels != ignore_index
            valid = None if bool(xp.all(valid)) else valid
        return None, labels, valid
    raise ValueError(
        f"y_true has shape {tuple(y.shape)}; expected class indices of shape "
        f"{tuple(pred.shape[:-1])} or targets of {pred_name}'s shape"
    )


def _targets(
    y_true: Any,
    pred: Any,
    xp: Any,
    axis: int,
    ignore_index: int | None,
    label_smoothing: float,
    pred_name: str = "y_pred",
) -> tuple[Any, Any, Any]:
    """Target distribution ``q`` (class axis last), row validity, and the labels (or None).

    Ignored rows get a label in range here (:func:`_gatherable`); their weight is set to 0 by
    the caller.
    """
    soft, labels, valid = _target_parts(y_true, pred, xp, axis, ignore_index, True, pred_name)
    labels = None if labels is None else _gatherable(labels, pred.shape[-1], xp)
    return _distribution(soft, labels, pred, label_smoothing, xp), valid, labels


def _gatherable(labels: Any, n_classes: int, xp: Any) -> Any:
    """Labels outside [0, n_classes) set to 0, so that they index safely: those of ignored
    rows (whose weight is 0), and, before the range check, those it will refuse."""
    inside = (labels >= 0) & (labels < n_classes)
    return xp.where(inside, labels, xp.zeros_like(labels))


def _distribution(soft: Any, labels: Any, like: Any, label_smoothing: float, xp: Any) -> Any:
    """The (smoothed) target distribution ``q``, class axis last, for in-range labels."""
    n_classes = like.shape[-1]
    if soft is not None:
        q = soft
    else:
        classes = xp.arange(n_classes, device=_array.array_api_compat.device(like))
        q = xp.astype(labels[..., None] == classes, like.dtype)
    if label_smoothing:
        q = q * (1 - label_smoothing) + label_smoothing / n_classes
    return q


def _rows(
    pred: Any, soft: Any, labels: Any, wa: Any, xp: Any, options: dict, order: int
) -> list[Term]:
    """The loss terms of a block of rows, unweighted: cross-entropy (or focal), z-loss."""
    g = _distribution(soft, labels, pred, options["label_smoothing"], xp)
    for factor in wa:
        g = g * factor
    lp = _LogProbs(pred, xp, options["from_logits"], options["temperature"])
    terms = [_softmax_term(g, lp, options["gamma"], order, xp)]
    if options["z_loss"]:
        terms.append(_z_loss_term(lp, options["z_loss"], order))
    return terms


@kernels.on_host_views
def _categorical(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool,
    class_weight: Any,
    sample_weight: Any,
    ignore_index: int | None,
    mask: Any,
    label_smoothing: float,
    temperature: float,
    z_loss: float,
    axis: int,
    gamma: float,
    alpha: Any,
    reduction: str,
    backend: str | None,
    out: Any,
) -> Any:
    from_logits = _validation.flag(from_logits, "from_logits")
    ignore_index = _validation.index_option(ignore_index, "ignore_index")
    order = _derivatives.order()
    xp = _array.namespace(y_pred, y_true)
    backend = kernels.resolve(backend)
    fused = _array.is_numpy(xp) and kernels.use_fused(backend, y_pred, from_logits, order)
    out_dtype = _validation.result_dtype(y_pred, xp)
    # Logits are checked for NaN/inf, and labels for their range, after every other check, by
    # the fused kernel as it reads them or below: the first error is the same on both paths.
    pred = _validation.predictions(y_pred, xp, check_finite=not from_logits)
    axis = _validation.axis(axis, pred.ndim)
    out = kernels.gradient_buffer(out, pred, out_dtype)
    pred = _array.class_axis_last(xp, pred, axis)
    # One class: loss and gradient are exactly 0 on the portable path; the kernels' shared
    # block shift left one rounding of the gradient's scale (1e-9 in float32).
    fused = fused and pred.shape[-1] > 1
    _validation.reduction(reduction)
    label_smoothing = _validation.in_range(label_smoothing, "label_smoothing", 0.0, 1.0)
    temperature = _validation.temperature(temperature)
    z_loss = _validation.in_range(z_loss, "z_loss", 0.0)
    gamma = _validation.in_range(gamma, "gamma", 0.0)
    if not from_logits:
        if z_loss:
            raise ValueError("z_loss needs logits: pass from_logits=True")
        if order == 2:
            raise ValueError("hessians are computed with respect to logits: pass from_logits=True")
        _validation.probabilities(pred, xp, "y_pred")
        _validation.sums_to_one(pred, xp, "y_pred", dtype=out_dtype)

    soft, labels, valid = _target_parts(y_true, pred, xp, axis, ignore_index, False)
    n_classes = pred.shape[-1]
    wa, normaliser = [], None  # wa: the factors of g = q * w * alpha besides q
    if class_weight is not None:
        w = _validation.class_vector(class_weight, xp, n_classes, "class_weight", pred)
        wa.append(w)
        if labels is not None:  # PyTorch: mean divides by the summed weights of the targets
            safe = _gatherable(labels, n_classes, xp)
            normaliser = xp.reshape(xp.take(w, xp.reshape(safe, (-1,)), axis=0), labels.shape)
    if alpha is not None:
        if isinstance(alpha, numbers.Real) and not isinstance(alpha, (bool, np.bool_)):
            wa.append(_validation.in_range(alpha, "alpha", 0.0))
        else:
            wa.append(_validation.class_vector(alpha, xp, n_classes, "alpha", pred))

    loss_shape = tuple(pred.shape[:-1])
    weights = example_weights(sample_weight, mask, loss_shape, xp, pred)
    if not fused:  # the fused kernel's checks, in its order
        if from_logits:
            _validation.finite(pred, xp, "y_pred")
        if labels is not None:
            _validation.class_indices(labels, xp, n_classes, ignore_index, "y_true")
    z_normaliser = None
    if valid is not None:
        valid_w = xp.astype(valid, pred.dtype)
        if fused:  # the kernels zero ignored rows themselves; they leave the normalisers
            normaliser = valid_w if normaliser is None else normaliser * valid_w
            z_normaliser = valid_w
        else:
            weights = valid_w if weights is None else weights * valid_w

    options = {
        "from_logits": from_logits,
        "temperature": temperature,
        "label_smoothing": label_smoothing,
        "z_loss": z_loss,
        "gamma": gamma,
        "ignore_index": ignore_index,
    }
    elements = None if fused else block_elements(pred, xp)
    if fused or elements:
        scales = [reduction_scale(weights, normaliser, reduction, loss_shape, xp, pred)]
        if z_loss:
            scales.append(reduction_scale(weights, z_normaliser, reduction, loss_shape, xp, pred))
        grad_out = None if out is None else _array.moveaxis(xp, out, axis, -1)
        if fused:
            value, grad = kernels.fused_categorical(
                pred, soft, labels, wa, scales, options, order, grad_out,
                per_row=reduction == "none",
            )  # fmt: skip
            hess = None
        else:
            loss, grad, hess = in_blocks(
                lambda z, q, y: _rows(z, q, y, wa, xp, options, order),
                pred, [soft, labels], scales, False, order, xp, grad_out, elements,
            )  # fmt: skip
            value = loss if reduction == "none" else loss_sum(loss, xp)
        if from_logits:
            _validation.no_overflow(value, xp, pred.dtype)
        return finish(
            _derivatives.Derivatives(value, grad, hess), xp, out_dtype, axis=axis, out=out
        )
    labels = None if labels is None else _gatherable(labels, n_classes, xp)
    terms = _rows(pred, soft, labels, wa, xp, options, order)
    terms[0].normaliser = normaliser
    result = reduce(terms, weights, reduction, xp)
    if from_logits:
        _validation.no_overflow(result.value, xp, pred.dtype)
    return finish(result, xp, out_dtype, axis=axis, out=out)


@_derivatives.differentiable(max_order=2)
def categorical_cross_entropy(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool = False,
    class_weight: Any = None,
    sample_weight: Any = None,
    ignore_index: int | None = -100,
    mask: Any = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    z_loss: float = 0.0,
    axis: int = -1,
    reduction: str = "mean",
    backend: str | None = None,
    out: Any = None,
) -> Any:
    r"""Softmax cross-entropy for integer labels or one-hot / soft targets.

    .. math::

        \ell_i = -\sum_c w_c\, q_{ic} \log p_{ic} + z\, \operatorname{lse}(z_i / T)^2,
        \qquad \log p_i = \operatorname{log\_softmax}(z_i / T)

    with :math:`q` the one-hot or soft target, smoothed as
    :math:`(1 - \varepsilon) q + \varepsilon / C`. Gradient with respect to the logits:
    :math:`(W_i p_{ic} - w_c q_{ic}) / T` with :math:`W_i = \sum_c w_c q_{ic}` (:math:`p - q`
    in the plain case); hessian diagonal :math:`W_i p_{ic}(1 - p_{ic}) / T^2`.

    Args:
        y_true: integer class indices with ``y_pred``'s shape minus the class axis, or
            one-hot / soft targets with ``y_pred``'s shape (rows in [0, 1] summing to 1).
        y_pred: probabilities (rows summing to 1 within sqrt(eps) of the dtype) or logits
            with ``from_logits=True``; (N, C), (N, T, C), ... with the class axis at ``axis``.
        class_weight: (C,) weights :math:`w_c`. For integer labels, ``"mean"`` divides by
            :math:`\sum_i s_i w_{y_i}` (PyTorch's ``cross_entropy(weight=...)``); for soft
            targets by :math:`\sum_i s_i` (also PyTorch's).
        sample_weight: non-negative per-example weights :math:`s_i`, shape (N,) or (N, T).
        ignore_index: label value whose rows are left out (PyTorch's default -100); ``None``
            disables it.
        mask: 0/1 or boolean per-example mask; masking equals slicing the rows out.
        label_smoothing: :math:`\varepsilon` in [0, 1], spread as :math:`\varepsilon / C` over
            all classes (PyTorch, Keras, optax).
        temperature: :math:`T` in [1e-15, 1e15] dividing the logits (from probabilities: the
            log-probabilities).
        z_loss: coefficient of PaLM's auxiliary :math:`\operatorname{lse}^2` term (logits
            only), averaged over the valid, weighted rows.
        axis: the class axis of ``y_pred``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per example, weights applied).
        backend: ``"auto"`` (default; also set by the ``CROSSENT_BACKEND`` environment
            variable), ``"fused"`` or ``"portable"``; see :mod:`crossent.kernels`. All give the
            same values.
        out: a NumPy array of ``y_pred``'s shape and dtype that receives the gradient
            (with :func:`crossent.value_and_grad`); may be ``y_pred`` itself, which then holds
            the gradient afterwards (a training step without an extra (N, C) buffer; a call
            refused for NaN or bad labels may leave gradient values in it), but no other
            array overlapping it.

    A batch whose rows are all ignored or masked gives 0 with zero gradient (PyTorch: NaN).
    Probabilities are clipped to :math:`[\epsilon, 1 - \epsilon]` of the dtype they are
    computed in (float32 for float16).

    Example::

        >>> import numpy as np, crossent
        >>> y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
        >>> p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
        >>> round(float(crossent.categorical_cross_entropy(y, p)), 6)
        0.424322

    References: Goodfellow, Bengio and Courville, *Deep Learning* (2016), sec. 6.2.2.3;
    Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016 (label smoothing);
    Chowdhery et al., "PaLM", JMLR 2023 (z-loss).
    """
    return _categorical(
        y_true,
        y_pred,
        from_logits=from_logits,
        class_weight=class_weight,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        mask=mask,
        label_smoothing=label_smoothing,
        temperature=temperature,
        z_loss=z_loss,
        axis=axis,
        gamma=0.0,
        alpha=None,
        reduction=reduction,
        backend=backend,
        out=out,
    )


@_derivatives.differentiable(max_order=2)
def categorical_focal_loss(
    y_true: Any,
    y_pred: Any,
    *,
    gamma: float = 2.0,
    alpha: Any = None,
    from_logits: bool = False,
    class_weight: Any = None,
    sample_weight: Any = None,
    ignore_index: int | None = -100,
    mask: Any = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    axis: int = -1,
    reduction: str = "mean",
    backend: str | None = None,
    out: Any = None,
) -> Any:
    r"""Softmax focal loss: :math:`-\sum_c \alpha_c q_c (1 - p_c)^{\gamma} \log p_c` per row.

    The modulating factor :math:`(1 - p_c)^\gamma` is computed from the log-probability
    (:math:`1 - p = -\operatorname{expm1}(\log p)`), so rows with logits of :math:`\pm 10^4`
    and :math:`\gamma < 1` stay finite. :math:`\gamma = 0` equals
    :func:`categorical_cross_entropy`. Gradient and hessian: see
    :mod:`crossent.losses.categorical`.

    Args:
        gamma: focusing parameter :math:`\gamma \ge 0`.
        alpha: ``None`` (no balancing), a float multiplying every term (Keras'
            ``CategoricalFocalCrossentropy``), or a (C,) array of per-class weights.
        Other arguments: as in :func:`categorical_cross_entropy` (no z-loss), including
            ``backend`` and ``out``.

    Example::

        >>> import numpy as np, crossent
        >>> logits = np.array([[1e4, 0.0, -1e4]])
        >>> float(crossent.categorical_focal_loss(np.array([0]), logits, gamma=0.5,
        ...                                       from_logits=True))
        0.0

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, eq. 5;
    Mukhoti et al., "Calibrating Deep Neural Networks using Focal Loss", NeurIPS 2020.
    """
    return _categorical(
        y_true,
        y_pred,
        from_logits=from_logits,
        class_weight=class_weight,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        mask=mask,
        label_smoothing=label_smoothing,
        temperature=temperature,
        z_loss=0.0,
        axis=axis,
        gamma=gamma,
        alpha=alpha,
        reduction=reduction,
        backend=backend,
        out=out,
    )
