"""The three libraries' calling conventions around :class:`crossent.objectives._core.Derivatives`.

- XGBoost (``xgboost.train(obj=..., custom_metric=...)``): ``obj(predt, dtrain)`` gets raw
  margins, shape (n, C) for several classes since 2.1, and returns gradient and hessian of that
  shape; the metric returns ``(name, value)``.
- LightGBM (``params["objective"] = callable`` in ``lightgbm.train``, ``feval=...``): the
  callable gets raw margins ((n, C) for multiclass since 4.0) and the ``Dataset``; the metric
  returns ``(name, value, is_higher_better)``.
- CatBoost (``loss_function=obj, eval_metric=metric``): objects whose ``calc_ders_range``
  (binary, vectorised) or ``calc_ders_multi`` (one row) return the derivatives of the
  *negated* loss, i.e. :math:`-g` and :math:`-h` (CatBoost maximises), weights applied; the
  metric's ``evaluate`` returns ``(weighted sum, weight sum)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._core import Derivatives


@dataclass(frozen=True)
class BoostingObjective:
    """A crossent loss packaged for one gradient-boosting library.

    Attributes:
        objective: the library's custom objective for its native API (function or CatBoost
            object).
        sklearn_objective: the same for the library's scikit-learn estimators
            (``XGBClassifier(objective=...)``, ``LGBMClassifier(objective=...)``, which call
            ``f(y_true, y_pred, sample_weight)``; CatBoost's object serves both). ``metric``
            stays with the native APIs, whose metrics receive raw margins.
        metric: the matching evaluation metric: the loss's weighted mean (its own ``"mean"``,
            class weights in the normaliser), lower is better.
        init_score: ``init_score(y, sample_weight=None)``: the best constant raw margin for
            this loss (a float, or a (C,) vector for softmax losses). Custom objectives start
            from a constant margin the library picks (0 in LightGBM and CatBoost, XGBoost's
            ``base_score``, 0.5 in XGBoost 3); pass it as the starting margin of every row, e.g.
            ``np.full(n, c)`` / ``np.tile(c, (n, 1))`` as XGBoost's ``base_margin``, LightGBM's
            ``init_score`` or CatBoost's ``baseline``, for training *and* prediction.
        link: ``link(raw)``: probabilities from raw margins (sigmoid, or softmax over classes).
        hessian: the hessian policy in use (``"exact"``, ``"clip"`` or ``"fisher"``).
        derivatives: the underlying per-row gradient/hessian computer.
    """

    objective: Any
    metric: Any
    derivatives: Derivatives
    sklearn_objective: Any

    @property
    def init_score(self) -> Callable[..., float | np.ndarray]:
        """The best constant raw margin for this loss (see Attributes)."""
        return self.derivatives.init_score

    @property
    def link(self) -> Callable[[Any], np.ndarray]:
        """Probabilities from raw margins (see Attributes)."""
        return self.derivatives.link

    @property
    def hessian(self) -> str:
        """The hessian policy in use (see Attributes)."""
        return self.derivatives.hessian


def _name(d: Derivatives) -> str:
    return f"crossent_{d.fn.__name__}"


def _mean(total: float, weight: float) -> float:
    """The metric: the weighted mean loss (a clear error, not ZeroDivisionError, for none)."""
    if not weight > 0:
        raise ValueError("the evaluated rows' weights sum to 0: there is no mean loss")
    return total / weight


def for_xgboost(d: Derivatives) -> BoostingObjective:
    def sklearn_objective(
        y_true: Any, y_pred: np.ndarray, sample_weight: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return d.grad_hess(y_true, y_pred, sample_weight)

    def objective(predt: np.ndarray, dtrain: Any) -> tuple[np.ndarray, np.ndarray]:
        return sklearn_objective(dtrain.get_label(), predt, dtrain.get_weight())

    def metric(predt: np.ndarray, dtrain: Any) -> tuple[str, float]:
        total, weight = d.loss(dtrain.get_label(), predt, dtrain.get_weight())
        return _name(d), _mean(total, weight)

    return BoostingObjective(objective, metric, d, sklearn_objective)


def for_lightgbm(d: Derivatives) -> BoostingObjective:
    def sklearn_objective(
        y_true: Any, y_pred: np.ndarray, sample_weight: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        grad, hess = d.grad_hess(y_true, y_pred, sample_weight)
        if np.ndim(y_pred) == 1 and grad.ndim == 2:  # keep the layout LightGBM handed over
            grad, hess = grad.T.ravel(), hess.T.ravel()
        return grad, hess

    def objective(preds: np.ndarray, train_data: Any) -> tuple[np.ndarray, np.ndarray]:
        return sklearn_objective(train_data.get_label(), preds, train_data.get_weight())

    def metric(preds: np.ndarray, eval_data: Any) -> tuple[str, float, bool]:
        total, weight = d.loss(eval_data.get_label(), preds, eval_data.get_weight())
        return _name(d), _mean(total, weight), False

    return BoostingObjective(objective, metric, d, sklearn_objective)


class _CatBoostObjective:
    """CatBoost custom loss: derivatives of the negated loss, weights applied."""

    def __init__(self, d: Derivatives) -> None:
        self.d = d

    def calc_ders_range(self, approxes: Any, targets: Any, weights: Any) -> list:
        grad, hess = self.d.grad_hess(np.asarray(targets), np.asarray(approxes), weights)
        return list(zip(-grad, -hess, strict=True))

    def calc_ders_multi(self, approx: Any, target: Any, weight: float) -> tuple:
        z = np.asarray(approx, dtype=np.float64)[None, :]
        grad, hess = self.d.grad_hess(np.array([target]), z, np.array([weight]))
        return list(-grad[0]), list(-np.diag(hess[0]))


class _CatBoostMetric:
    """CatBoost custom metric: the weighted mean loss."""

    def __init__(self, d: Derivatives) -> None:
        self.d = d

    def is_max_optimal(self) -> bool:
        return False

    def evaluate(self, approxes: Any, target: Any, weight: Any) -> tuple[float, float]:
        raw = np.asarray([np.asarray(a) for a in approxes], dtype=np.float64).T
        return self.d.loss(np.asarray(target), raw[:, 0] if self.d.binary else raw, weight)

    def get_final_error(self, error: float, weight: float) -> float:
        return _mean(error, weight)


def for_catboost(d: Derivatives) -> BoostingObjective:
    objective = _CatBoostObjective(d)
    return BoostingObjective(objective, _CatBoostMetric(d), d, objective)
