r"""Every crossent loss as a custom objective for XGBoost, LightGBM and CatBoost.

``xgboost(loss)``, ``lightgbm(loss)`` and ``catboost(loss)`` return a
:class:`BoostingObjective`: the library's custom objective, a matching evaluation metric (the
weighted mean loss), the best constant starting margin for that loss (``init_score``) and the
link from raw margins to probabilities. Gradients and hessians come from
:func:`crossent.value_grad_hess`; the hessian policy (``"exact"``, ``"clip"``, ``"fisher"``;
default ``"auto"``: exact for cross-entropy, clipped at 1e-6 for focal loss) is described in
:mod:`crossent.objectives._core`.

Example (XGBoost; LightGBM and CatBoost in ``docs/models.md``)::

    import numpy as np, xgboost as xgb
    from crossent import objectives

    obj = objectives.xgboost("focal", loss_params={"gamma": 2.0})
    c = obj.init_score(y)  # focal loss's best constant margin, not the log-odds
    dtrain = xgb.DMatrix(X, y, base_margin=np.full(len(y), c))
    booster = xgb.train({}, dtrain, 100, obj=obj.objective, custom_metric=obj.metric)
    dtest = xgb.DMatrix(X_test, base_margin=np.full(len(X_test), c))
    proba = obj.link(booster.predict(dtest, output_margin=True))
"""

from __future__ import annotations

from typing import Any

from ._core import HESSIANS, LOSSES, Derivatives
from ._libraries import BoostingObjective, for_catboost, for_lightgbm, for_xgboost

__all__ = ["HESSIANS", "LOSSES", "BoostingObjective", "catboost", "lightgbm", "xgboost"]


def xgboost(
    loss: Any = "cross_entropy",
    *,
    n_classes: int = 2,
    loss_params: dict | None = None,
    hessian: str = "auto",
    hessian_floor: float = 1e-6,
    multiclass_scale: float = 2.0,
) -> BoostingObjective:
    r"""A crossent loss as an XGBoost custom objective (``xgboost.train(obj=...)``).

    Args:
        loss: ``"cross_entropy"``, ``"focal"`` or a crossent loss function; a name picks the
            sigmoid form for ``n_classes=2`` and the softmax form otherwise.
        n_classes: number of classes (set ``num_class`` in the parameters when > 2).
        loss_params: the loss's keyword arguments (``gamma``, ``alpha``, ``label_smoothing``,
            ``pos_weight``, ``class_weight``...).
        hessian: ``"auto"``, ``"exact"``, ``"clip"`` or ``"fisher"``.
        hessian_floor: the floor of ``"clip"``.
        multiclass_scale: factor on softmax hessians; 2 is ``multi:softprob``'s upper bound.

    With ``loss="cross_entropy"`` and :attr:`BoostingObjective.init_score` as ``base_margin``,
    training reproduces ``binary:logistic`` / ``multi:softprob``. Reference: Chen and Guestrin,
    "XGBoost: A Scalable Tree Boosting System", KDD 2016 (second-order objective, eq. 6).
    """
    return for_xgboost(
        Derivatives(
            loss,
            n_classes,
            loss_params=loss_params,
            hessian=hessian,
            hessian_floor=hessian_floor,
            multiclass_scale=multiclass_scale,
        )
    )


def lightgbm(
    loss: Any = "cross_entropy",
    *,
    n_classes: int = 2,
    loss_params: dict | None = None,
    hessian: str = "auto",
    hessian_floor: float = 1e-6,
    multiclass_scale: float | None = None,
) -> BoostingObjective:
    r"""A crossent loss as a LightGBM custom objective (``params["objective"] = obj.objective``).

    Arguments as :func:`xgboost`; ``multiclass_scale`` defaults to LightGBM's own
    :math:`C / (C - 1)`. Pass ``obj.init_score`` as the ``Dataset``'s ``init_score`` and add it
    to ``Booster.predict(X, raw_score=True)`` (LightGBM does not store it). With
    cross-entropy this reproduces the built-in ``binary`` / ``multiclass`` objectives.
    Reference: Ke et al., "LightGBM", NeurIPS 2017.
    """
    return for_lightgbm(
        Derivatives(
            loss,
            n_classes,
            loss_params=loss_params,
            hessian=hessian,
            hessian_floor=hessian_floor,
            multiclass_scale=multiclass_scale,
        )
    )


def catboost(
    loss: Any = "cross_entropy",
    *,
    n_classes: int = 2,
    loss_params: dict | None = None,
    hessian: str = "auto",
    hessian_floor: float = 1e-6,
    multiclass_scale: float = 2.0,
) -> BoostingObjective:
    r"""A crossent loss as a CatBoost custom objective (``loss_function=obj.objective``).

    Arguments as :func:`xgboost`. CatBoost maximises, so the objective hands it :math:`-g` and
    :math:`-h`; for softmax losses ``calc_ders_multi`` returns the (scaled) diagonal hessian as
    a matrix. Pass ``init_score`` as the ``Pool``'s ``baseline`` (training and prediction) and
    predict with ``prediction_type="RawFormulaVal"``. Reference: Prokhorenkova et al.,
    "CatBoost: unbiased boosting with categorical features", NeurIPS 2018.
    """
    return for_catboost(
        Derivatives(
            loss,
            n_classes,
            loss_params=loss_params,
            hessian=hessian,
            hessian_floor=hessian_floor,
            multiclass_scale=multiclass_scale,
        )
    )
