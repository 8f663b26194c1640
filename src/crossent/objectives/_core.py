r"""One mechanism behind every boosting objective: per-row gradient and hessian of a crossent loss.

A gradient-boosting library grows each tree from per-row first and second derivatives of the
loss with respect to the raw margin :math:`z` (one per row for a binary loss, one per class for
a softmax loss) and sets a leaf to :math:`-\sum g / (\sum h + \lambda)`. :class:`Derivatives`
computes :math:`s_i g_i` and :math:`s_i h_i` (``s`` the sample weight) with
:func:`crossent.value_and_grad` / :func:`crossent.value_grad_hess`, under a *hessian policy*:

* ``"exact"``: the loss's own second derivative (for softmax losses its diagonal). For focal
  loss it is negative in places (e.g. a confidently wrong example when :math:`\gamma \ge 1`),
  which makes :math:`\sum h` of a leaf small or negative and its value explode.
* ``"clip"``: ``max(exact, floor)`` with ``floor = 1e-6`` by default (``hessian_floor``).
* ``"fisher"``: the Fisher information of the margin under the model's own prediction,
  :math:`\mathbb{E}_{y \sim p}[(\partial \ell(y, z) / \partial z)^2]` (per class for softmax:
  :math:`\sum_k p_k\, (\partial \ell(k, z) / \partial z_c)^2`, :math:`p` with the loss's
  temperature), computed from the analytic gradient at every possible label of the loss
  without its weights (``alpha``, ``class_weight``, ``pos_weight``), then multiplied by the
  weight of the row's own label, as the gradient is: squared inside the expectation, a weight
  would scale the Newton step by its inverse. It is never negative, and for plain
  cross-entropy, weighted or not, it equals the exact hessian (:math:`w_y\, p(1-p)`); with
  ``label_smoothing`` or ``z_loss`` it is the expectation of those options' gradients' squares,
  which is not their hessian (binary, smoothing 0.2 at margin 0: 0.16 against 0.25).
  Reference: Amari, "Natural gradient works efficiently in learning", Neural Computation 10
  (1998).

``hessian="auto"`` (the default) is ``"exact"`` for cross-entropy, which is convex in the
margins, and ``"clip"`` for focal loss: identical to the exact hessian wherever that is
positive, and never negative, so no leaf's Newton step can point uphill. ``"fisher"`` is the
more conservative choice: it over-estimates the curvature of well-classified rows (it averages
over the label the model considers unlikely), so leaves move less per round; on the 1%-positive
benchmark of ``docs/models.md`` it needed more rounds for the same log-loss.

Softmax losses: a tree per class sees only the diagonal of the C x C hessian. The libraries
scale it to stay a safe Newton step: XGBoost's ``multi:softprob`` uses :math:`2p(1-p)`, an upper
bound of the full hessian :math:`\operatorname{diag}(p) - pp^\top` (which is diagonally dominant
with off-diagonal row sums :math:`p_c(1-p_c)`); LightGBM's ``multiclass`` uses
:math:`\frac{C}{C-1}p(1-p)` (Friedman, "Greedy function approximation", Ann. Statist. 29 (2001),
algorithm 6). ``multiclass_scale`` applies that factor; XGBoost's and LightGBM's defaults are
their built-in ones, so plain cross-entropy reproduces their built-in objectives. (CatBoost's
``MultiClass`` hands its leaf step the full hessian, which a diagonal does not reproduce.)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import optimize

from .. import _derivatives, _validation
from ..losses import (
    binary_cross_entropy,
    binary_focal_loss,
    categorical_cross_entropy,
    categorical_focal_loss,
)
from ..special import sigmoid, softmax

LOSSES: dict[str, tuple[Callable, Callable]] = {
    "cross_entropy": (binary_cross_entropy, categorical_cross_entropy),
    "log_loss": (binary_cross_entropy, categorical_cross_entropy),
    "focal": (binary_focal_loss, categorical_focal_loss),
}
BINARY = (binary_cross_entropy, binary_focal_loss)
_CATEGORICAL = (categorical_cross_entropy, categorical_focal_loss)
CROSS_ENTROPIES = (binary_cross_entropy, categorical_cross_entropy)  # convex in the logits
HESSIANS = ("auto", "exact", "clip", "fisher")
_LABEL_WEIGHTS = ("alpha", "class_weight", "pos_weight")  # factored out of the Fisher hessian


def resolve(loss: Any, n_classes: int) -> Callable:
    """The crossent loss function for a name or function, checked against ``n_classes``.

    Shared by :mod:`crossent.models` and the boosting objectives.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise TypeError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes}")
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(
                f"loss must be one of {sorted(LOSSES)} or a crossent loss, got {loss!r}"
            )
        return LOSSES[loss][0 if n_classes == 2 else 1]
    if loss in BINARY:
        if n_classes != 2:
            raise ValueError(
                f"loss {loss.__name__} is binary but there are {n_classes} classes; use a "
                f"categorical loss"
            )
        return loss
    if loss in _CATEGORICAL:
        return loss
    raise ValueError(
        f"loss must be one of {sorted(LOSSES)} or one of crossent's binary_cross_entropy, "
        f"binary_focal_loss, categorical_cross_entropy, categorical_focal_loss; got {loss!r}"
    )


_SET_BY_CALLER = ("y_true", "y_pred", "from_logits", "reduction", "sample_weight", "mask", "out")


def check_loss_params(fn: Callable, params: Any) -> dict:
    """``params`` checked as keyword options of the loss ``fn``: a dict of its own options,
    none of those the model or objective sets itself (``reduction``, ``out``, ...), which
    had clashed on first use or, for ``out``, written into the caller's buffer.

    Shared by :mod:`crossent.models` and the boosting objectives.
    """
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise TypeError(f"loss_params must be a dict or None, got {params!r}")
    options = set(inspect.signature(fn).parameters)
    for key in params:
        if key in _SET_BY_CALLER:
            raise ValueError(f"loss_params cannot set {key!r}: it is set for every call")
        if key == "ignore_index":  # labels are classes here: it would drop one, or nothing
            raise ValueError(
                "loss_params cannot set 'ignore_index': every label here is a class (models "
                "encode them as 0..K-1, so it would drop one); leave rows out with a sample "
                "weight of 0"
            )
        if key not in options:
            raise ValueError(f"loss_params: {fn.__name__} has no option {key!r}")
    return dict(params)


class Derivatives:
    """Per-row loss, gradient and hessian of a crossent loss at raw margins (see module doc)."""

    def __init__(
        self,
        loss: Any,
        n_classes: int,
        *,
        loss_params: dict | None,
        hessian: str,
        hessian_floor: float,
        multiclass_scale: float | None,
    ) -> None:
        self.fn = resolve(loss, n_classes)
        self.binary = self.fn in BINARY
        self.n_classes = n_classes
        self.params = check_loss_params(self.fn, loss_params)
        # softmax losses' temperature, which link() applies itself: checked here, not only
        # when the loss first runs in training
        self.temperature = _validation.temperature(self.params.get("temperature", 1.0))
        if multiclass_scale is None:  # LightGBM's C / (C - 1)
            multiclass_scale = n_classes / (n_classes - 1)
        if hessian not in HESSIANS:
            raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
        if hessian == "auto":
            hessian = "exact" if self.fn in CROSS_ENTROPIES else "clip"
        self.hessian = hessian
        self.floor = _validation.in_range(hessian_floor, "hessian_floor", 0.0, low_open=True)
        multiclass_scale = _validation.in_range(
            multiclass_scale, "multiclass_scale", 0.0, low_open=True
        )
        self.scale = 1.0 if self.binary else multiclass_scale

    def margins(self, raw: Any, n_rows: int) -> np.ndarray:
        """Raw margins as float64 of shape (n,) or (n, C), whatever layout the library used."""
        z = np.asarray(raw, dtype=np.float64)
        if self.binary:
            if z.size != n_rows:
                raise ValueError(f"expected {n_rows} raw margins for a binary loss, got {z.shape}")
            return z.reshape(n_rows)
        if z.shape == (n_rows, self.n_classes):
            return z
        if z.size != n_rows * self.n_classes:
            raise ValueError(
                f"expected raw margins of shape ({n_rows}, {self.n_classes}), got {z.shape}"
            )
        return z.reshape(self.n_classes, n_rows).T  # class-major flat layout (LightGBM < 4)

    def labels(self, y: Any) -> np.ndarray:
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"labels must be numbers, got dtype {y.dtype}")
        if y.ndim > 1 and y.shape[1:] != (1,) * (y.ndim - 1):
            raise ValueError(f"labels must be one per row, shape (n,), got {y.shape}")
        y = y.astype(np.float64).ravel()
        if self.binary:
            if not np.all((y >= 0) & (y <= 1)):  # NaN too
                raise ValueError("binary labels must lie in [0, 1]")
            return y
        labels = y.astype(np.int64)
        if not np.array_equal(labels, y) or labels.min() < 0 or labels.max() >= self.n_classes:
            raise ValueError(f"labels must be class indices in [0, {self.n_classes})")
        return labels

    def _weights(self, weight: Any, n: int) -> np.ndarray | None:
        if weight is None or np.size(weight) == 0:
            return None
        weight = np.asarray(weight, dtype=np.float64).reshape(n)
        if not np.all(weight >= 0):  # negative hessians otherwise; NaN too
            raise ValueError("sample weights must be non-negative numbers")
        return weight

    def loss(self, y: Any, raw: Any, weight: Any = None) -> tuple[float, float]:
        """(weighted sum of the per-row losses, their normaliser): their ratio is the loss's
        own ``"mean"``, whose normaliser holds the class weights of the rows' labels
        (PyTorch's convention for ``class_weight``)."""
        y = self.labels(y)
        z = self.margins(raw, y.shape[0])
        w = self._weights(weight, y.shape[0])
        values = self.fn(y, z, from_logits=True, reduction="none", **self.params)
        total = float(np.sum(values if w is None else w * values))
        norm = np.ones(y.shape[0]) if w is None else w
        if self.params.get("class_weight") is not None:
            norm = norm * np.asarray(self.params["class_weight"], dtype=np.float64)[y]
        return total, float(np.sum(norm))

    def grad_hess(self, y: Any, raw: Any, weight: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Weighted per-row gradient and hessian, shaped like the margins ((n,) or (n, C))."""
        y = self.labels(y)
        z = self.margins(raw, y.shape[0])
        kw = {"from_logits": True, "reduction": "none", **self.params}
        if self.hessian == "fisher":  # the loss's own hessian is not needed
            grad = _derivatives.value_and_grad(self.fn)(y, z, **kw)[1]
            hess = self._fisher(y, z)
        else:
            _, grad, hess = _derivatives.value_grad_hess(self.fn)(y, z, **kw)
            if self.hessian == "clip":
                hess = np.maximum(hess, self.floor)
        hess = self.scale * hess
        w = self._weights(weight, y.shape[0])
        if w is not None:
            w = w if grad.ndim == 1 else w[:, None]
            grad, hess = w * grad, w * hess
        return grad, hess

    def _fisher(self, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """:math:`E_{y' \\sim p}[g(y')^2]` of the unweighted loss, from its analytic gradients at
        every label, times the weight of the row's label ``y`` (module docstring)."""
        vg = _derivatives.value_and_grad(self.fn)
        plain = {k: v for k, v in self.params.items() if k not in _LABEL_WEIGHTS}
        kw = {"from_logits": True, "reduction": "none", **plain}
        if self.binary:
            p = sigmoid(z)
            g1 = vg(np.ones_like(z), z, **kw)[1]
            g0 = vg(np.zeros_like(z), z, **kw)[1]
            return (p * g1**2 + (1 - p) * g0**2) * self._label_weight(y)
        p = softmax(z / self.temperature, axis=1)
        out = np.zeros_like(z)
        for k in range(self.n_classes):
            gk = vg(np.full(z.shape[0], k), z, **kw)[1]
            out += p[:, k : k + 1] * gk**2
        return out * self._label_weight(y)[:, None]

    def _label_weight(self, y: np.ndarray) -> np.ndarray:
        """The factor the loss's weights put on each row: ``pos_weight`` or ``alpha`` of its
        (smoothed) binary target, or ``class_weight`` times ``alpha`` of its class."""
        if self.binary:
            eps = self.params.get("label_smoothing", 0.0)
            t = y * (1 - eps) + eps / 2
            pos_weight = self.params.get("pos_weight")
            if pos_weight is not None:
                return np.asarray(pos_weight, dtype=np.float64) * t + (1 - t)
            alpha = self.params.get("alpha")
            return np.ones_like(t) if alpha is None else alpha * t + (1 - alpha) * (1 - t)
        weight = np.ones(y.shape[0])
        for name in ("class_weight", "alpha"):
            factor = self.params.get(name)
            if factor is not None:
                factor = np.asarray(factor, dtype=np.float64)
                weight = weight * (factor[y] if factor.ndim else factor)
        return weight

    def init_score(self, y: Any, sample_weight: Any = None) -> float | np.ndarray:
        """The constant margin minimising the weighted mean loss (a float, or (C,), centred
        unless a z-loss, which is not shift-invariant, fixes its level).

        Cross-entropy's is the log-odds / log class frequencies; focal loss is not a proper
        scoring rule, so its optimum differs and is found numerically (L-BFGS on the analytic
        gradient, from the cross-entropy value).
        """
        y = self.labels(y)
        n = y.shape[0]
        w = self._weights(sample_weight, n)
        w = np.ones(n) if w is None else w
        if not np.sum(w) > 0:
            raise ValueError("sample_weight sums to 0: no constant is better than another")
        if self.binary:
            mean = float(np.sum(w * y) / np.sum(w))
            mean = min(max(mean, 1e-12), 1 - 1e-12)
            start = np.array([np.log(mean) - np.log1p(-mean)])
        else:
            counts = np.bincount(y, weights=w, minlength=self.n_classes) / np.sum(w)
            start = np.log(np.maximum(counts, 1e-12))
        vg = _derivatives.value_and_grad(self.fn)

        def fun(c: np.ndarray) -> tuple[float, np.ndarray]:
            z = np.full(n, c[0]) if self.binary else np.tile(c, (n, 1))
            value, grad = vg(y, z, from_logits=True, sample_weight=w, **self.params)
            return float(value), np.atleast_1d(grad.sum(axis=0))

        options = {"gtol": 1e-10, "ftol": 1e-15}  # the default ftol stops short (focal: 1e-4)
        c = optimize.minimize(fun, start, jac=True, method="L-BFGS-B", options=options).x
        if self.binary:
            return float(c[0])
        return c if self.params.get("z_loss") else c - c.mean()  # z-loss: not shift-invariant

    def link(self, raw: Any) -> np.ndarray:
        """Probabilities from raw margins: sigmoid (n,) or softmax over classes (n, C), with
        the loss's temperature (the model trained is ``softmax(z / T)``)."""
        z = np.asarray(raw, dtype=np.float64)
        if self.binary:
            return sigmoid(z)
        return softmax(z.reshape(-1, self.n_classes) / self.temperature, axis=1)
