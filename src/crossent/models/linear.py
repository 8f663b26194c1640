r"""Logistic regression (binary sigmoid or multinomial softmax) on any crossent loss."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils._available_if import available_if

from ._base import BaseClassifier, DataTerm


class LogisticRegression(BaseClassifier):
    r"""Linear classifier :math:`z = X W + b` trained on a crossent loss.

    Minimises the sample-weighted mean loss plus
    :math:`\alpha(\rho\lVert W\rVert_1 + \frac{1-\rho}{2}\lVert W\rVert_2^2)` (intercept not
    penalised; see :mod:`crossent.models._base`). With ``loss="cross_entropy"``,
    ``penalty="l2"`` and ``alpha = 1 / (C * sum_i s_i)``, :math:`s_i` the sample weight (1
    without) times the class weight of :math:`y_i` (so ``1 / (C * n_samples)`` without either),
    the coefficients are those of ``sklearn.linear_model.LogisticRegression(C=C)``. Two
    classes and a binary loss give one sigmoid output (``coef_`` of shape (1, n_features));
    otherwise a softmax over the classes.

    Args:
        loss: ``"cross_entropy"`` (alias ``"log_loss"``), ``"focal"``, or a crossent loss
            function (``crossent.binary_focal_loss``, ``crossent.categorical_cross_entropy``...).
        loss_params: keyword arguments of that loss, e.g. ``{"gamma": 2.0}``,
            ``{"label_smoothing": 0.1}``, ``{"pos_weight": 5.0}``; with a ``temperature``,
            :meth:`predict_proba` gives the tempered probabilities the loss was trained on.
        penalty: ``"l2"``, ``"l1"``, ``"elasticnet"`` or ``None``.
        alpha: penalty strength :math:`\alpha \ge 0`.
        l1_ratio: :math:`\rho` in [0, 1], used by ``"elasticnet"``.
        fit_intercept: whether to learn :math:`b`.
        solver: ``"lbfgs"`` (default), ``"newton"`` (trust-region Newton-CG on the loss
            hessian; L2 or no penalty), ``"sgd"`` (momentum) or ``"adam"``.
        max_iter: iterations (``"lbfgs"``/``"newton"``) or epochs (``"sgd"``/``"adam"``).
        tol: gradient tolerance (``"lbfgs"``/``"newton"``) or the improvement of the monitored
            loss below which an epoch counts as no progress (``"sgd"``/``"adam"``).
        batch_size: mini-batch size, ``"auto"`` = min(200, n_samples).
        learning_rate, momentum: step size, and heavy-ball momentum for ``"sgd"``.
        early_stopping, validation_fraction, n_iter_no_change: stop when the loss on a held-out
            stratified fraction has not improved by ``tol`` for ``n_iter_no_change`` epochs.
        class_weight: dict, ``"balanced"`` or ``None``; multiplies the sample weights.
        random_state, warm_start, verbose: as in scikit-learn; ``verbose`` prints a progress bar
            with the loss.

    Attributes: ``classes_``, ``coef_``, ``intercept_``, ``n_iter_``, ``loss_`` (final
    objective), ``loss_curve_`` (per-epoch objective, ``"sgd"``/``"adam"``),
    ``n_features_in_``.

    Example::

        >>> from sklearn.datasets import load_breast_cancer
        >>> from sklearn.preprocessing import StandardScaler
        >>> from crossent.models import LogisticRegression
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> X = StandardScaler().fit_transform(X)
        >>> clf = LogisticRegression(alpha=1 / len(y)).fit(X, y)  # sklearn's C=1
        >>> clf.score(X, y) > 0.95
        True

    Reference: Hastie, Tibshirani and Friedman, *The Elements of Statistical Learning*, 2nd ed.
    (2009), sec. 4.4.
    """

    def __init__(
        self,
        loss: Any = "cross_entropy",
        *,
        loss_params: dict | None = None,
        penalty: str | None = "l2",
        alpha: float = 1e-4,
        l1_ratio: float = 0.15,
        fit_intercept: bool = True,
        solver: str = "lbfgs",
        max_iter: int = 100,
        tol: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: float = 0.01,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        class_weight: dict | str | None = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.loss = loss
        self.loss_params = loss_params
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit on ``X`` (n_samples, n_features) and labels ``y`` (any hashable labels)."""
        return self._fit(X, y, sample_weight, partial=False)

    @available_if(lambda self: self.solver in ("sgd", "adam"))
    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> LogisticRegression:
        """One epoch of ``"sgd"``/``"adam"`` on this batch (``classes`` needed the first time)."""
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    # -- the model on a flat parameter vector [b (k), W (d, k) row-major] ---------------------
    def _n_params(self, n_features: int, n_out: int) -> int:
        return n_out * (n_features + 1)

    def _layout(self, n_features: int, n_out: int) -> tuple:
        return n_features, n_out, bool(self.fit_intercept)

    def _init_theta(self, n_features: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(self._n_params(n_features, n_out))

    def _penalised(self) -> np.ndarray:
        mask = np.ones(self._theta_size, dtype=bool)
        mask[: self._n_outputs] = False
        return mask

    @property
    def _theta_size(self) -> int:
        return self._n_params(self.n_features_in_, self._n_outputs)

    def _logits(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, None]:
        k = theta.size // (X.shape[1] + 1)
        z = X @ theta[k:].reshape(X.shape[1], k) + theta[:k]
        return (z[:, 0] if k == 1 else z), None

    def _backward(self, theta: np.ndarray, X: np.ndarray, dz: np.ndarray, cache: None):
        dz2 = dz[:, None] if dz.ndim == 1 else dz
        gb = dz2.sum(axis=0) if self.fit_intercept else np.zeros(dz2.shape[1])
        return np.concatenate([gb, (X.T @ dz2).ravel()])

    def _hessp(self, z: np.ndarray, v: np.ndarray, X: np.ndarray, term: DataTerm) -> np.ndarray:
        """Hessian of the mean loss times ``v``, at parameters whose logits are ``z``."""
        u = self._logits(v, X)[0]
        return self._backward(v, X, term.hessp(z, u), None)

    def _set_fitted(self, theta: np.ndarray, n_features: int, n_out: int) -> None:
        self.intercept_ = theta[:n_out].copy()
        self.coef_ = theta[n_out:].reshape(n_features, n_out).T.copy()
