r"""Post-hoc scaling of logits: temperature, vector and matrix scaling (Guo et al. 2017).

Each scaler learns a map of a classifier's logits on held-out data by minimising the
(weighted) mean negative log-likelihood, with the loss and its analytic gradient from
:func:`crossent.categorical_cross_entropy` (``(n, K)`` logits) or
:func:`crossent.binary_cross_entropy` (``(n,)`` binary decision values, whose probability of
class 1 is :math:`\sigma(z)`):

* :class:`TemperatureScaling`: :math:`z / T`, one parameter, fitted in :math:`u = \log T`
  by Newton's method with the exact first and second derivatives (below) and a backtracking
  line search; accuracy is unchanged, only confidence moves.
* :class:`VectorScaling`: :math:`a \odot z + b` (per-class scale and bias).
* :class:`MatrixScaling`: :math:`W z + b` (multinomial logistic regression on the logits).

Derivatives in :math:`u = \log T`. With :math:`s_i = z_i e^{-u}`, per-row gradient
:math:`g_i = \partial \ell / \partial s_i` (from :func:`crossent.value_and_grad`) and
:math:`\partial s_i / \partial u = -s_i`:

.. math::

    \frac{\partial L}{\partial u} = -\sum_i g_i \cdot s_i, \qquad
    \frac{\partial^2 L}{\partial u^2} = \sum_i w_i\, s_i^\top H_i\, s_i + \sum_i g_i \cdot s_i,

where :math:`s^\top H s = \operatorname{Var}_{p}(s) = \sum_k p_k s_k^2 - (\sum_k p_k s_k)^2`
for the softmax and :math:`p(1 - p) s^2` for the sigmoid. These sums are additive over rows,
which is what :class:`TemperatureStatistics` accumulates so that the Newton iteration can run
over data streamed in chunks (:func:`fit_temperature_streaming`): one pass per iteration.

Relation to scikit-learn: ``CalibratedClassifierCV(method="temperature")`` fits
``beta_`` :math:`= 1/T` on multiclass logits. For 1-D binary decision values it builds the
two-class logits :math:`(-z, z)`, whose softmax is :math:`\sigma(2 \beta z)`; here a 1-D
decision value is the logit itself (:math:`\sigma(z / T)`), so there ``beta_`` :math:`= 1 / (2T)`.

Reference: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
ICML 2017, sec. 4.2.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import scipy.optimize

from .. import (
    binary_cross_entropy,
    categorical_cross_entropy,
    value_and_grad,
    value_grad_hess,
)
from .._validation import in_range
from ..special import sigmoid, softmax
from . import _inputs

LOG_T_BOUND = 10.0  # |log T| <= 10, as scikit-learn bounds log(1/T)
SEPARATED_NLL = 1e-12  # a mean NLL below this: every example is predicted with certainty


def _nll_sum(z: np.ndarray, y: np.ndarray, w: np.ndarray, order: int) -> tuple:
    """Summed weighted NLL of logits ``z`` ((n,) binary or (n, K)) with derivatives."""
    if z.ndim == 1:
        fn = value_grad_hess if order == 2 else value_and_grad
        return fn(binary_cross_entropy)(
            y.astype(z.dtype), z, from_logits=True, sample_weight=w, reduction="sum"
        )
    return value_and_grad(categorical_cross_entropy)(
        y, z, from_logits=True, sample_weight=w, ignore_index=None, reduction="sum"
    )


class TemperatureStatistics:
    r"""Mergeable sums of the NLL of :math:`z / T` and its derivatives in :math:`\log T`.

    For a fixed ``temperature``, ``update`` adds a chunk's weighted sums of the NLL, of
    :math:`\partial \ell / \partial \log T` and of :math:`\partial^2 \ell / \partial (\log T)^2`
    (formulas in :mod:`crossent.calibration.scaling`); ``merge`` adds another's. The means
    ``nll``, ``grad`` and ``hess`` over everything seen give one Newton step
    :math:`\log T \leftarrow \log T - \mathrm{grad} / \mathrm{hess}` per pass over the data.

    Args:
        temperature: the :math:`T > 0` at which to evaluate.
        input: ``"logits"`` or ``"probabilities"`` (converted with a log; see
            :class:`TemperatureScaling`).
        check_input: with ``input="logits"``, refuse a chunk that looks like probabilities
            (as :class:`TemperatureScaling` does). A chunk of a stream may legitimately look
            so (binary logits that all happen to lie in [0, 1]); to guard a stream as a
            whole, pass ``False`` and test :attr:`looks_like_probabilities` once everything
            has been added, as :func:`fit_temperature_streaming` does.

    Attributes:
        looks_like_probabilities: whether every chunk added (and merged) so far looked like
            probabilities, i.e. whether all the data seen together does; ``None`` before
            any data, always ``False`` for ``input="probabilities"``.

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import TemperatureStatistics
        >>> stats = TemperatureStatistics(2.0).update(np.array([[2.0, 0.0]]), np.array([0]))
        >>> round(stats.nll, 6)  # -log softmax([1, 0])[0]
        0.313262
    """

    def __init__(
        self, temperature: float, *, input: str = "logits", check_input: bool = True
    ) -> None:
        self.temperature = in_range(temperature, "temperature", 0.0, low_open=True)
        self.input = _inputs.choice(input, "input", _inputs.INPUTS)
        self.check_input = bool(check_input)
        self.looks_like_probabilities: bool | None = None
        self.n_classes: int | None = None
        self.binary: bool | None = None  # (n,) decision values rather than (n, K) logits
        self.n_samples = 0
        self.total_weight = 0.0
        self._sums = np.zeros(3)

    def update(self, logits: Any, y_true: Any, sample_weight: Any = None) -> TemperatureStatistics:
        """Add a chunk: logits (n,) or (n, K), integer labels (n,), optional weights (n,)."""
        z, _, suspicious = _inputs.logits(logits, self.input, check_input=self.check_input)
        n_classes = 2 if z.ndim == 1 else z.shape[1]
        y = _inputs.labels(y_true, z.shape[0], n_classes)
        self._add(z, y, _inputs.sample_weight(sample_weight, z.shape[0], positive_sum=False))
        self._suspect(suspicious)
        return self

    def _suspect(self, suspicious: bool | None) -> None:
        if suspicious is not None:
            self.looks_like_probabilities = suspicious and self.looks_like_probabilities in (
                None,
                True,
            )

    def _add(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> TemperatureStatistics:
        layout = (2 if z.ndim == 1 else z.shape[1], z.ndim == 1)
        if self.binary is not None and layout != (self.n_classes, self.binary):
            raise ValueError(
                f"this chunk has logits of shape {z.shape}, unlike the earlier chunks' "
                + ("(n,)" if self.binary else f"(n, {self.n_classes})")
            )
        self.n_classes, self.binary = layout
        s = z / self.temperature
        if z.ndim == 1:
            value, g, h = _nll_sum(s, y, w, order=2)
            curvature = np.sum(h * s**2)
        else:
            value, g = _nll_sum(s, y, w, order=1)
            p = softmax(s)
            centred = s - np.sum(p * s, axis=1, keepdims=True)
            curvature = np.sum(w * np.sum(p * centred**2, axis=1))
        gs = float(np.sum(g * s))
        self._sums += [float(value), -gs, curvature + gs]
        self.n_samples += z.shape[0]
        self.total_weight += float(np.sum(w))
        return self

    def merge(self, other: TemperatureStatistics) -> TemperatureStatistics:
        """Add the sums of ``other``, evaluated at the same temperature. Returns ``self``."""
        if not isinstance(other, TemperatureStatistics):
            raise TypeError(f"can only merge TemperatureStatistics, got {type(other).__name__}")
        if other.temperature != self.temperature:
            raise ValueError(
                f"cannot merge statistics at temperature {other.temperature!r} into ones at "
                f"{self.temperature!r}"
            )
        mine, theirs = (self.n_classes, self.binary), (other.n_classes, other.binary)
        if None not in (self.binary, other.binary) and mine != theirs:
            raise ValueError(
                f"cannot merge statistics of (n_classes, binary) = {theirs} into {mine}"
            )
        if other.input != self.input:
            raise ValueError(
                f"cannot merge statistics of input={other.input!r} into input={self.input!r}"
            )
        if self.binary is None:
            self.n_classes, self.binary = theirs
        self._suspect(other.looks_like_probabilities)
        self._sums += other._sums
        self.n_samples += other.n_samples
        self.total_weight += other.total_weight
        return self

    def _mean(self, i: int) -> float:
        if not self.total_weight > 0:
            raise ValueError("no weighted data: call update() with some data first")
        return float(self._sums[i] / self.total_weight)

    @property
    def nll(self) -> float:
        """Weighted mean NLL (nats) of the logits divided by ``temperature``."""
        return self._mean(0)

    @property
    def grad(self) -> float:
        """Derivative of :attr:`nll` with respect to :math:`\\log T`."""
        return self._mean(1)

    @property
    def hess(self) -> float:
        """Second derivative of :attr:`nll` with respect to :math:`\\log T`."""
        return self._mean(2)


def fit_temperature_from_statistics(
    statistics: Callable[[float], TemperatureStatistics], *, max_iter: int = 100
) -> TemperatureScaling:
    r"""Fit a temperature given the :class:`TemperatureStatistics` of all the data at any T.

    ``statistics(T)`` returns the statistics at temperature ``T`` summed over the whole
    dataset, however they are computed: over chunks read from disk, or mapped over the
    partitions of a cluster and merged. The Newton iteration in :math:`\log T` of
    :class:`TemperatureScaling` calls it once per step (typically 5 to 10 times), so the
    result equals the in-memory fit up to floating-point summation order.

    No "looks like probabilities" guard is applied here: the statistics are the caller's
    (build them with ``check_input=True``, or test their ``looks_like_probabilities``).

    Returns:
        A fitted :class:`TemperatureScaling` (with the statistics' ``input``).

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import TemperatureStatistics, fit_temperature_from_statistics
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
        >>> y = np.array([0, 1, 1, 1])
        >>> def statistics(t):  # two shards, merged
        ...     return TemperatureStatistics(t).update(z[:1], y[:1]).merge(
        ...         TemperatureStatistics(t).update(z[1:], y[1:]))
        >>> round(fit_temperature_from_statistics(statistics).temperature_, 4)
        3.641

    Reference: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017, sec. 4.2.
    """
    if not callable(statistics):
        raise TypeError(
            "statistics must be a callable taking a temperature and returning the "
            f"TemperatureStatistics of all the data, got {type(statistics).__name__}"
        )
    max_iter = _inputs.integer(max_iter, "max_iter", 1)

    def evaluate(t: float) -> TemperatureStatistics:
        stats = statistics(t)
        if not isinstance(stats, TemperatureStatistics):
            raise TypeError(
                f"statistics(T) must return TemperatureStatistics, got {type(stats).__name__}"
            )
        return stats

    return _fitted(_newton_log_temperature(evaluate, max_iter), max_iter)


def _fitted(result: tuple[float, TemperatureStatistics, int], max_iter: int) -> TemperatureScaling:
    """The :class:`TemperatureScaling` of a Newton result ``(T, statistics at T, passes)``."""
    stats = result[1]
    scaler = TemperatureScaling(input=stats.input, max_iter=max_iter)
    scaler.binary_, scaler.n_classes_ = stats.binary, stats.n_classes
    scaler._set(*result)
    return scaler


def _newton_log_temperature(
    evaluate: Callable[[float], TemperatureStatistics], max_iter: int
) -> tuple[float, TemperatureStatistics, int]:
    """Minimise ``evaluate(T).nll`` over ``log T`` in [-10, 10]; one evaluation per pass.

    Newton steps (capped at 2 in ``log T``; a unit step downhill where the curvature is not
    positive), halved until the NLL decreases (Armijo), until the step is below 1e-12 or the
    gradient vanishes (with separable data the NLL falls below ``SEPARATED_NLL`` at small T).
    Returns ``(T, statistics at T, number of evaluations)``.
    """
    u = 0.0
    current = evaluate(1.0)
    passes = 1
    while passes < max_iter:
        g, h = current.grad, current.hess
        step = -g / h if h > 0 else -math.copysign(1.0, g)
        step = max(-2.0, min(2.0, step))
        step = max(-LOG_T_BOUND, min(LOG_T_BOUND, u + step)) - u
        if abs(step) < 1e-12 or abs(g) < 1e-15 or current.nll < SEPARATED_NLL:
            break
        while passes < max_iter:
            trial = evaluate(math.exp(u + step))
            passes += 1
            # near the optimum the decrease is below rounding; a small Newton step is safe
            small = h > 0 and abs(step) < 1e-6
            flat = trial.nll <= current.nll and abs(trial.grad) < abs(g)  # NLL at rounding
            if small or flat or trial.nll <= current.nll + 1e-4 * step * g:
                u, current = u + step, trial
                break
            step /= 2
            if abs(step) < 1e-12:
                return math.exp(u), current, passes
    limit = degenerate_temperature(math.exp(u), current.nll)
    if limit is not None:
        warnings.warn(
            f"the fitted temperature exp({u:+.3g}) is at the bound or the NLL vanished: the "
            f"logits separate the classes (or are anti-correlated with them), so the NLL keeps "
            f"decreasing towards T = {limit}",
            RuntimeWarning,
            stacklevel=3,
        )
    return math.exp(u), current, passes


def degenerate_temperature(t: float, nll: float) -> str | None:
    """Where a fitted temperature ``t`` (mean NLL ``nll`` there) was heading when the fit
    stopped short of an optimum: ``"infinity"`` at the upper bound of ``log T`` (predictions
    with no information about the labels, or pointing away from them), ``"0"`` at the lower
    bound or where the NLL vanished (separable classes); ``None`` for an interior optimum."""
    u = math.log(t)
    if u >= LOG_T_BOUND - 1e-9:
        return "infinity"
    if u <= 0 and (u <= -LOG_T_BOUND + 1e-9 or nll < SEPARATED_NLL):
        return "0"
    return None


class _Scaler:
    """Shared plumbing: input checks, the probability guard, transform and predict_proba."""

    def __init__(self, *, input: str = "logits") -> None:
        self.input = input

    def _validated(self, logits: Any, y_true: Any, sample_weight: Any) -> tuple:
        _inputs.choice(self.input, "input", _inputs.INPUTS)
        z, _, _ = _inputs.logits(logits, self.input)
        n_classes = 2 if z.ndim == 1 else z.shape[1]
        y = _inputs.labels(y_true, z.shape[0], n_classes)
        w = _inputs.sample_weight(sample_weight, z.shape[0])
        self.binary_, self.n_classes_ = z.ndim == 1, n_classes  # once the input is accepted
        return z, y, w

    def fit(self, logits: Any, y_true: Any, sample_weight: Any = None) -> _Scaler:
        """Fit on held-out logits (n,) or (n, K) and integer labels (n,). Returns ``self``."""
        _inputs.integer(self.max_iter, "max_iter", 1)
        z, y, w = self._validated(logits, y_true, sample_weight)
        self._fit(z, y, w)
        return self

    def _scaled(self, logits: Any) -> tuple[np.ndarray, Any, tuple]:
        if not hasattr(self, "n_classes_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit() first")
        shape = tuple(_inputs.as_numpy(logits).shape)
        # the fit was guarded; a batch of logits to scale may lie in [0, 1]
        z, dtype, _ = _inputs.logits(logits, self.input, check_input=False)
        if (z.ndim == 1) != self.binary_ or (z.ndim == 2 and z.shape[1] != self.n_classes_):
            expected = "(n,)" if self.binary_ else f"(n, {self.n_classes_})"
            raise ValueError(f"logits have shape {shape}; this scaler was fitted on {expected}")
        return self._apply(z), dtype, shape

    def transform(self, logits: Any) -> np.ndarray:
        """The scaled logits, of the input's shape and dtype (log-probabilities scaled, for
        ``input="probabilities"``)."""
        s, dtype, shape = self._scaled(logits)
        return s.reshape(shape).astype(dtype)

    def predict_proba(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities, (n, K); for binary input (n, 2) as scikit-learn."""
        s, dtype, _ = self._scaled(logits)
        if self.binary_:
            p1 = sigmoid(s)
            return np.stack([sigmoid(-s), p1], axis=1).astype(dtype)
        return softmax(s).astype(dtype)


class TemperatureScaling(_Scaler):
    r"""Temperature scaling: probabilities :math:`\operatorname{softmax}(z / T)` with one
    :math:`T > 0` fitted by minimising the NLL on held-out data.

    Fitted in :math:`\log T` (so :math:`T` stays positive) by Newton's method with exact
    derivatives (see :mod:`crossent.calibration.scaling`); converges to machine precision in
    a handful of iterations, from :math:`T = 1`, within :math:`|\log T| \le 10` (a warning
    says when the bound is reached: separable data). The fit agrees with scikit-learn's
    ``CalibratedClassifierCV(method="temperature")`` (``beta_ = 1 / T`` on (n, K) logits).

    Args:
        input: ``"logits"`` (default; arrays that look like probabilities, every value in
            [0, 1] and rows summing to 1, are refused with an error, since scaling them as
            logits silently gives wrong results) or ``"probabilities"`` (converted with
            :math:`\log p`, or :math:`\log(p / (1 - p))` for (n,), then scaled).
        max_iter: maximum number of passes over the data (NLL evaluations).

    Attributes:
        temperature_: the fitted :math:`T`.
        nll_: weighted mean NLL at :math:`T` on the fitting data.
        n_iter_: number of passes used.
        n_classes_: number of classes (2 for (n,) decision values); ``binary_``: whether the
            input was (n,).

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import TemperatureScaling
        >>> logits = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
        >>> ts = TemperatureScaling().fit(logits, np.array([0, 1, 1, 1]))
        >>> round(ts.temperature_, 4)  # accuracy 3/4: T with sigmoid(4 / T) = 3/4
        3.641
    """

    def __init__(self, *, input: str = "logits", max_iter: int = 100) -> None:
        super().__init__(input=input)
        self.max_iter = max_iter

    def _fit(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        def evaluate(t: float) -> TemperatureStatistics:
            return TemperatureStatistics(t, input=self.input)._add(z, y, w)

        self._set(*_newton_log_temperature(evaluate, self.max_iter))

    def _set(self, temperature: float, stats: TemperatureStatistics, passes: int) -> None:
        self.temperature_ = temperature
        self.nll_ = stats.nll
        self.n_iter_ = passes

    def _apply(self, z: np.ndarray) -> np.ndarray:
        return z / self.temperature_


def fit_temperature_streaming(
    chunks: Callable[[], Iterable[tuple]],
    *,
    input: str = "logits",
    check_input: bool = True,
    max_iter: int = 100,
) -> TemperatureScaling:
    r"""Fit a temperature on data too large for memory, one pass over the chunks per step.

    ``chunks`` is a zero-argument callable returning a fresh iterable of ``(logits, y)`` or
    ``(logits, y, sample_weight)`` tuples (e.g. reading shards from disk). Each Newton step
    of :class:`TemperatureScaling` (typically 5 to 10 in all) sums
    :class:`TemperatureStatistics` over one pass, so the result equals the in-memory fit up to
    floating-point summation order.

    With ``input="logits"`` and ``check_input``, the data are refused if they look like
    probabilities (see :class:`TemperatureScaling`) *as a whole*: a single chunk may do so
    (binary logits that happen to lie in [0, 1]) as long as the stream does not.
    ``check_input=False`` trusts the caller's ``input`` entirely.

    Returns:
        A fitted :class:`TemperatureScaling`.

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import fit_temperature_streaming
        >>> z = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
        >>> y = np.array([0, 1, 1, 1])
        >>> ts = fit_temperature_streaming(lambda: [(z[:1], y[:1]), (z[1:], y[1:])])
        >>> round(ts.temperature_, 4)
        3.641
    """
    if not callable(chunks):
        raise TypeError(
            "chunks must be a zero-argument callable returning a fresh iterator of "
            "(logits, y) or (logits, y, sample_weight) tuples, one pass per call"
        )
    _inputs.choice(input, "input", _inputs.INPUTS)
    max_iter = _inputs.integer(max_iter, "max_iter", 1)

    def evaluate(t: float) -> TemperatureStatistics:
        stats = TemperatureStatistics(t, input=input, check_input=False)
        for chunk in chunks():
            stats.update(*chunk)
        if stats.n_samples == 0:
            raise ValueError("chunks() produced no data")
        if check_input and stats.looks_like_probabilities:  # the guard, on the whole stream
            _inputs.refuse_probabilities(1 if stats.binary else 2)
        return stats

    return _fitted(_newton_log_temperature(evaluate, max_iter), max_iter)


class _AffineScaling(_Scaler):
    """Scale and bias of the logits, fitted by L-BFGS on the mean NLL with analytic gradient."""

    def __init__(self, *, input: str = "logits", max_iter: int = 1000) -> None:
        super().__init__(input=input)
        self.max_iter = max_iter

    def _fit(self, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        columns = z.reshape(z.shape[0], -1)  # binary: one column
        d = columns.shape[1]
        total = np.sum(w)

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            coef, intercept = self._unpack(theta, d)
            s = self._affine(columns, coef, intercept)
            value, g = _nll_sum(s[:, 0] if z.ndim == 1 else s, y, w, order=1)
            g = g.reshape(s.shape)
            grad = np.concatenate([self._coef_grad(g, columns).ravel(), g.sum(axis=0)])
            return float(value) / total, grad / total

        start = np.concatenate([self._identity(d).ravel(), np.zeros(d)])
        result = scipy.optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter, "gtol": 1e-10, "ftol": 1e-15},
        )
        self.coef_, self.intercept_ = self._unpack(result.x, d)
        self.nll_ = float(result.fun)
        self.n_iter_ = int(result.nit)

    def _apply(self, z: np.ndarray) -> np.ndarray:
        s = self._affine(z.reshape(z.shape[0], -1), self.coef_, self.intercept_)
        return s[:, 0] if z.ndim == 1 else s


class VectorScaling(_AffineScaling):
    r"""Vector scaling: :math:`\operatorname{softmax}(a \odot z + b)`, a scale and a bias per
    class (:math:`2K` parameters; for (n,) decision values :math:`\sigma(a z + b)`, i.e.
    Platt scaling), fitted by L-BFGS on the NLL with the analytic gradient
    :math:`\partial L / \partial a_k = \sum_i g_{ik} z_{ik}`,
    :math:`\partial L / \partial b_k = \sum_i g_{ik}`. Unlike temperature scaling it can change
    the predicted class.

    Attributes: ``coef_`` (:math:`a`, shape (K,) or (1,)), ``intercept_`` (:math:`b`),
    ``nll_``, ``n_iter_``, ``n_classes_``. Arguments as :class:`TemperatureScaling`.

    Reference: Guo et al., ICML 2017, sec. 4.2; Platt, "Probabilistic Outputs for Support
    Vector Machines", 1999.
    """

    @staticmethod
    def _identity(d: int) -> np.ndarray:
        return np.ones(d)

    @staticmethod
    def _unpack(theta: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
        return theta[:d].copy(), theta[d:].copy()

    @staticmethod
    def _affine(z: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        return z * coef + intercept

    @staticmethod
    def _coef_grad(g: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.sum(g * z, axis=0)


class MatrixScaling(_AffineScaling):
    r"""Matrix scaling: :math:`\operatorname{softmax}(W z + b)` (:math:`K^2 + K` parameters),
    i.e. unregularised multinomial logistic regression on the logits, fitted by L-BFGS on the
    NLL with the analytic gradient :math:`\partial L / \partial W = G^\top Z`,
    :math:`\partial L / \partial b = G^\top 1`. Flexible but prone to over-fitting with many
    classes and few held-out examples (Guo et al. 2017; Kull et al. 2019).

    Attributes: ``coef_`` (:math:`W`, (K, K) or (1, 1)), ``intercept_`` (:math:`b`),
    ``nll_``, ``n_iter_``, ``n_classes_``. Arguments as :class:`TemperatureScaling`.

    Reference: Guo et al., ICML 2017, sec. 4.2.
    """

    @staticmethod
    def _identity(d: int) -> np.ndarray:
        return np.eye(d)

    @staticmethod
    def _unpack(theta: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
        return theta[: d * d].reshape(d, d).copy(), theta[d * d :].copy()

    @staticmethod
    def _affine(z: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        return z @ coef.T + intercept

    @staticmethod
    def _coef_grad(g: np.ndarray, z: np.ndarray) -> np.ndarray:
        return g.T @ z
