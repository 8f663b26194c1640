r"""KL divergence and knowledge distillation, built on the softmax cross-entropy term.

:math:`\mathrm{KL}(p \,\|\, q) = H(p, q) - H(p)`: the cross-entropy with soft target
:math:`p` minus the entropy of :math:`p`, which does not depend on the prediction. Both
therefore reuse :func:`crossent.losses.categorical._softmax_term` and its derivatives.

Distillation can also use the reverse KL and the generalised Jensen-Shannon divergence of the
student :math:`q = \operatorname{softmax}(x)` from the teacher :math:`p`. With
:math:`a = \log q`, :math:`b = \log p`, derivatives with respect to :math:`x`:

* reverse KL :math:`R = \sum_c q_c (a_c - b_c)`: gradient :math:`q_j (d_j - R)` with
  :math:`d = a - b`, hessian diagonal :math:`q_j (1 - q_j) + q_j (d_j - R)(1 - 2 q_j)`;
* generalised JSD with mixture :math:`m = (1 - \beta) q + \beta p`,
  :math:`J = \beta\, \mathrm{KL}(p \| m) + (1 - \beta)\, \mathrm{KL}(q \| m)`: since
  :math:`\partial J / \partial q_c = (1 - \beta) \log(q_c / m_c)`, the gradient is
  :math:`(1 - \beta)\, q_j (e_j - E)` with :math:`e = a - \log m`, :math:`E = \sum_c q_c e_c`,
  and the hessian diagonal :math:`(1 - \beta)\, q_j [(1 - 2 q_j)(e_j - E + r_j) + q_j
  \sum_c q_c r_c]` with :math:`r = \beta p / m`. :math:`\log m` is a ``logaddexp``.
"""

from __future__ import annotations

import math
from typing import Any

from .. import _array, _derivatives, _validation
from ..special import _logaddexp, _tempered, softmax
from ._reduction import Term, finish, reduce
from .categorical import _LogProbs, _softmax_term, _targets


def _neg_entropy(p: Any, xp: Any) -> Any:
    """:math:`\\sum_c p_c \\log p_c` with :math:`0 \\log 0 = 0`."""
    positive = p > 0
    return xp.sum(
        xp.where(positive, p * xp.log(xp.where(positive, p, xp.ones_like(p))), xp.zeros_like(p)),
        axis=-1,
    )


def _kl_term(p: Any, lp: _LogProbs, order: int, xp: Any) -> Term:
    ce = _softmax_term(p, lp, 0.0, order, xp)
    return Term(ce.loss + _neg_entropy(p, xp), ce.grad, ce.hess)


@_derivatives.differentiable(max_order=2)
def kl_divergence(
    p_true: Any,
    q_pred: Any,
    *,
    from_logits: bool = False,
    axis: int = -1,
    reduction: str = "mean",
) -> Any:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(p \,\|\, q) = \sum_c p_c \log(p_c / q_c)`.

    ``p_true`` is always a probability distribution (:math:`0 \log 0 = 0`); ``from_logits``
    applies to ``q_pred`` only, whose log-probabilities are then ``log_softmax(q_pred)``.
    Gradient: :math:`-p_c / q_c` with respect to probabilities, :math:`q_c - p_c` with respect
    to logits (hessian diagonal :math:`q_c (1 - q_c)`).

    ``"mean"`` averages over examples (every index but the class axis): for (N, C) input this
    is PyTorch's ``kl_div(..., reduction="batchmean")``, the mathematically correct mean, not
    its ``"mean"`` (which also divides by C).

    Example::

        >>> import numpy as np, crossent
        >>> p = np.array([[0.5, 0.5]])
        >>> round(float(crossent.kl_divergence(p, np.array([[0.9, 0.1]]))), 6)
        0.510826

    Reference: Kullback and Leibler, "On Information and Sufficiency", Ann. Math. Statist. 22
    (1951).
    """
    from_logits = _validation.flag(from_logits, "from_logits")
    order = _derivatives.order()
    xp = _array.namespace(q_pred, p_true)
    out_dtype = _validation.result_dtype(q_pred, xp)
    q = _validation.predictions(q_pred, xp, "q_pred")
    axis = _validation.axis(axis, q.ndim)
    _validation.reduction(reduction)
    p = _array.asarray(p_true, xp, q, "p_true")
    coarser = _validation.coarser(_validation.result_dtype(p, xp), q.dtype, xp)
    p = xp.astype(_validation.targets_in_unit_interval(p, xp, "p_true"), q.dtype)
    _validation.same_shape(p, q, "p_true", "q_pred")
    q = _array.class_axis_last(xp, q, axis)
    p = _array.class_axis_last(xp, p, axis)
    _validation.sums_to_one(p, xp, "p_true", hint="", dtype=coarser)
    if not from_logits:
        if order == 2:
            raise ValueError("hessians are computed with respect to logits: pass from_logits=True")
        _validation.probabilities(q, xp, "q_pred")
        _validation.sums_to_one(q, xp, "q_pred", dtype=out_dtype)
    lp = _LogProbs(q, xp, from_logits, 1.0)
    result = reduce([_kl_term(p, lp, order, xp)], None, reduction, xp)
    return finish(result, xp, out_dtype, axis=axis)


DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


def _centred(x: Any, lq: _LogProbs, xp: Any) -> Any:
    r""":math:`x_j - \sum_c q_c x_c` along the last axis, for the gradients' factors.

    Taken as :math:`x'_j - \sum_c q_c x'_c` with :math:`x' = x - x_m` (:math:`m` the most
    probable class of :math:`q`): the sum is then made of the small :math:`q_c` and no longer
    cancels against :math:`x_m`. With logits of about a hundred, float32 had lost the most
    probable class's gradient in that cancellation (off by up to 200%).
    """
    x = x - xp.sum(xp.where(lq.top(xp), x, xp.zeros_like(x)), axis=-1, keepdims=True)
    return x - xp.sum(lq.p * x, axis=-1, keepdims=True)


def _reverse_kl_term(lq: _LogProbs, log_p: Any, order: int, xp: Any) -> Term:
    r""":math:`\mathrm{KL}(q \| p)` of the student ``lq`` from teacher log-probs ``log_p``."""
    q = lq.p
    d = lq.log_p - log_p
    loss = xp.sum(q * d, axis=-1)
    grad = hess = None
    if order >= 1:
        deviation = _centred(d, lq, xp)
        grad = q * deviation
        if order >= 2:
            hess = q * lq.v + q * deviation * (1 - 2 * q)
        grad, hess = lq.chain(grad, hess)
    return Term(loss, grad, hess)


def _jsd_term(lq: _LogProbs, log_p: Any, beta: float, order: int, xp: Any) -> Term:
    r"""Generalised JSD :math:`\beta\,\mathrm{KL}(p \| m) + (1 - \beta)\,\mathrm{KL}(q \| m)`."""
    q, log_q = lq.p, lq.log_p
    log_m = _logaddexp(math.log1p(-beta) + log_q, math.log(beta) + log_p, xp)
    e = log_q - log_m
    loss = beta * xp.sum(xp.exp(log_p) * (log_p - log_m), axis=-1) + (1 - beta) * xp.sum(
        q * e, axis=-1
    )
    grad = hess = None
    if order >= 1:
        centred = _centred(e, lq, xp)
        grad = (1 - beta) * q * centred
        if order >= 2:
            r = xp.exp(math.log(beta) + log_p - log_m)
            rq = xp.sum(q * r, axis=-1, keepdims=True)
            hess = (1 - beta) * q * ((1 - 2 * q) * (centred + r) + q * rq)
        grad, hess = lq.chain(grad, hess)
    return Term(loss, grad, hess)


def _expm1_minus_x(x: Any, xp: Any) -> Any:
    """:math:`e^x - 1 - x`, to a few ulp: by its Taylor series (through :math:`x^{11}`) for
    :math:`|x| < 0.1`, where ``expm1(x) - x`` would cancel, else as ``expm1(x) - x``."""
    small = xp.abs(x) < 0.1
    u = xp.where(small, x, xp.zeros_like(x))
    series = 1.0 / math.factorial(11)
    for k in range(10, 1, -1):
        series = series * u + 1.0 / math.factorial(k)
    return xp.where(small, u * u * series, xp.expm1(x) - x)


def _tilted_kl(d: Any, lq: _LogProbs, usual: Any, xp: Any) -> Any:
    r""":math:`\mathrm{KL}(P \| Q)` of :math:`Q` = ``lq`` and its tilt :math:`P \propto Q e^d`,
    per row, free of the cancellation of its usual form ``usual`` (:math:`\sum_c P_c \log
    P_c - \sum_c P_c \log Q_c`, two terms of size :math:`\log C` whose difference, multiplied
    by :math:`T^2` in distillation, lost all digits at large temperatures: -4.4e14 at
    :math:`T = 10^{15}` where the divergence is 3.02).

    With :math:`x = d - \sum_c Q_c d_c` (:func:`_centred`), :math:`\varphi(x) = e^x - 1 - x`
    and :math:`S = \sum_c Q_c \varphi(x_c)`:
    :math:`\mathrm{KL} = \sum_c Q_c x_c (e^{x_c} - 1) / (1 + S) - \log(1 + S)`, two terms of
    size :math:`x^2`. Rows with an :math:`x_c > 50` keep ``usual``: there :math:`e^{x}` nears
    float32's range, and the divergence is large, so the usual form is accurate."""
    x = _centred(d, lq, xp)
    tilt = xp.max(x, axis=-1, keepdims=True) <= 50.0
    x = xp.where(tilt, x, xp.zeros_like(x))  # no overflow, nor NaN derivatives, in rows left out
    q = lq.p
    s = xp.sum(q * _expm1_minus_x(x, xp), axis=-1)
    kl = xp.sum(q * x * xp.expm1(x), axis=-1) / (1 + s) - xp.log1p(s)
    return xp.where(tilt[..., 0], kl, usual)


def _soft_term(
    s: Any, t: Any, temperature: float, divergence: str, beta: float, order: int, xp: Any
) -> Term:
    """The divergence between the softened teacher and student (TRL's beta convention). The
    KL divergences' values come from :func:`_tilted_kl`, the logits' gap scaled by ``1 / T``
    being the tilt."""
    student = _LogProbs(s, xp, True, temperature)
    if divergence == "jsd" and beta == 0.0:
        divergence = "forward_kl"
    elif divergence == "jsd" and beta == 1.0:
        divergence = "reverse_kl"
    gap = (t - s) / temperature  # the teacher is the student tilted by it
    t = _tempered(t, temperature, xp)[0]
    if divergence == "forward_kl":
        term = _kl_term(softmax(t), student, order, xp)
        return Term(_tilted_kl(gap, student, term.loss, xp), term.grad, term.hess)
    teacher = _LogProbs(t, xp, True, 1.0)
    if divergence == "reverse_kl":
        term = _reverse_kl_term(student, teacher.log_p, order, xp)
        return Term(_tilted_kl(-gap, teacher, term.loss, xp), term.grad, term.hess)
    return _jsd_term(student, teacher.log_p, beta, order, xp)


@_derivatives.differentiable(max_order=2)
def distillation_loss(
    y_true: Any,
    student_logits: Any,
    teacher_logits: Any,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    scale_by_t2: bool = True,
    ignore_index: int | None = -100,
    axis: int = -1,
    reduction: str = "mean",
) -> Any:
    r"""Knowledge-distillation loss from student and teacher logits (Hinton et al. 2015).

    .. math::

        \ell = (1 - \alpha)\, H\bigl(y, \operatorname{softmax}(s)\bigr)
             + \alpha\, c\, D\bigl(\operatorname{softmax}(t / T),\,
               \operatorname{softmax}(s / T)\bigr), \qquad c = T^2 \text{ if scale\_by\_t2
               else } 1,

    with the divergence :math:`D(p, q)` of student :math:`q` from teacher :math:`p`:

    * ``"forward_kl"``: :math:`\mathrm{KL}(p \| q)` (Hinton et al.; mass-covering);
    * ``"reverse_kl"``: :math:`\mathrm{KL}(q \| p)` (mode-seeking, as in MiniLLM);
    * ``"jsd"``: the generalised Jensen-Shannon divergence of Agarwal et al. (2024, GKD, eq. 1)
      with TRL's ``generalized_jsd_loss`` convention: mixture
      :math:`m = (1 - \beta) q + \beta p` and
      :math:`\beta\, \mathrm{KL}(p \| m) + (1 - \beta)\, \mathrm{KL}(q \| m)`;
      :math:`\beta = 0` is taken as the forward KL and :math:`\beta = 1` as the reverse KL
      exactly (as TRL does: the mixture formula itself tends to 0 at both ends), 0.5 is the
      symmetric JSD.

    The :math:`T^2` factor keeps the soft term's gradient on the scale of the hard term's as
    :math:`T` changes (forward KL: :math:`\alpha T (\operatorname{softmax}(s/T) -
    \operatorname{softmax}(t/T))`). Gradients and hessian diagonals are analytic (formulas in
    :mod:`crossent.losses.divergence`) and taken with respect to the student logits; the
    teacher is a constant.

    Args:
        y_true: integer labels (shape of the logits minus the class axis) or one-hot/soft
            targets (shape of the logits); ``None`` only with ``alpha=1`` (no hard term).
        student_logits, teacher_logits: logits of the same shape, class axis at ``axis``, e.g.
            (N, C) or (B, L, V) for token sequences.
        temperature: :math:`T` in [1e-15, 1e15] softening both distributions in the soft
            term. The KL divergences keep full precision at every temperature (the soft
            term tends to a finite limit as :math:`T` grows, which they reach); ``"jsd"``'s
            value is the difference of terms of size :math:`\log C`, so its absolute error
            grows as :math:`\epsilon T^2 \log C` (float32 at :math:`T = 100`: about 1e-3).
        alpha: weight :math:`\alpha` in [0, 1] of the soft term.
        divergence: ``"forward_kl"``, ``"reverse_kl"`` or ``"jsd"``.
        beta: :math:`\beta` in [0, 1] of ``"jsd"`` (ignored otherwise).
        scale_by_t2: multiply the soft term by :math:`T^2` (default, Hinton et al.).
        ignore_index: integer label whose positions (e.g. padding tokens) are left out of
            both terms and of the mean; ``None`` disables it.
        reduction: ``"mean"`` over the positions kept, ``"sum"`` or ``"none"``.

    Example::

        >>> import numpy as np, crossent
        >>> s = np.array([[1.0, 2.0, 0.5]]); t = np.array([[0.5, 3.0, 0.0]])
        >>> loss = crossent.distillation_loss(np.array([1]), s, t, divergence="jsd", beta=0.5)

    References: Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network",
    2015, https://arxiv.org/abs/1503.02531; Agarwal et al., "On-Policy Distillation of
    Language Models: Learning from Self-Generated Mistakes", ICLR 2024,
    https://arxiv.org/abs/2306.13649; Gu et al., "MiniLLM", ICLR 2024.
    """
    scale_by_t2 = _validation.flag(scale_by_t2, "scale_by_t2")
    ignore_index = _validation.index_option(ignore_index, "ignore_index")
    order = _derivatives.order()
    xp = _array.namespace(student_logits, teacher_logits, y_true)
    out_dtype = _validation.result_dtype(student_logits, xp)
    s = _validation.predictions(student_logits, xp, "student_logits")
    t = _validation.predictions(
        _array.asarray(teacher_logits, xp, s, "teacher_logits"), xp, "teacher_logits"
    )
    _validation.same_shape(t, s, "teacher_logits", "student_logits")
    axis = _validation.axis(axis, s.ndim)
    _validation.reduction(reduction)
    temperature = _validation.temperature(temperature)
    alpha = _validation.in_range(alpha, "alpha", 0.0, 1.0)
    beta = _validation.in_range(beta, "beta", 0.0, 1.0)
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
    s, t = (
        _array.class_axis_last(xp, s, axis),
        _array.class_axis_last(xp, xp.astype(t, s.dtype), axis),
    )
    soft = _soft_term(s, t, temperature, divergence, beta, order, xp)
    terms = [soft.scaled(alpha * (temperature**2 if scale_by_t2 else 1.0))]
    weights = None
    if y_true is None:
        if alpha != 1.0:
            raise ValueError("y_true may be None only with alpha=1 (no hard-label term)")
    else:
        q, valid, _ = _targets(y_true, s, xp, axis, ignore_index, 0.0, "student_logits")
        hard = _softmax_term(q, _LogProbs(s, xp, True, 1.0), 0.0, order, xp)
        terms.insert(0, hard.scaled(1 - alpha))
        if valid is not None:
            weights = xp.astype(valid, s.dtype)
    result = reduce(terms, weights, reduction, xp)
    _validation.no_overflow(result.value, xp, s.dtype, "student_logits or teacher_logits")
    return finish(result, xp, out_dtype, axis=axis)
