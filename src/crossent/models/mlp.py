r"""Multi-layer perceptron classifier on any crossent loss, with knowledge distillation."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from sklearn.utils._available_if import available_if

from .._validation import in_range
from .._validation import temperature as temperature_option
from ._base import BaseClassifier

_ACTIVATIONS = ("relu", "tanh")


class MLPClassifier(BaseClassifier):
    r"""Fully connected network :math:`z = W_L\, g(\cdots g(X W_1 + b_1) \cdots) + b_L`.

    Hidden activations :math:`g` are ReLU or tanh; the head is one sigmoid output for a binary
    loss on two classes, else a softmax over the classes. The objective is the sample-weighted
    mean crossent loss plus :math:`\alpha(\rho\lVert W\rVert_1 + \frac{1-\rho}{2}\lVert W
    \rVert_2^2)` over all weight matrices (biases unpenalised). Gradients are back-propagated
    from the analytic logit gradient of :func:`crossent.value_and_grad`. scikit-learn's
    ``MLPClassifier(alpha=a, solver="lbfgs")`` has the same objective with
    ``alpha = a / n_samples`` (its mini-batch solvers use ``a / batch_size``).

    Weights start Glorot-uniform (Glorot and Bengio, AISTATS 2010), biases likewise, as
    scikit-learn does. Arguments are those of :class:`crossent.models.LogisticRegression`
    but ``fit_intercept`` (biases are always fitted), with ``solver`` in ``"adam"``
    (default), ``"sgd"``, ``"lbfgs"`` and the defaults ``max_iter=200``,
    ``learning_rate=0.001``, ``n_iter_no_change=10``; plus ``hidden_layer_sizes`` and
    ``activation``. Fitted attributes: ``coefs_``,
    ``intercepts_`` (per layer, as scikit-learn), ``classes_``, ``n_iter_``, ``loss_``,
    ``loss_curve_`` (``"sgd"``/``"adam"``).

    Knowledge distillation (Hinton et al., 2015): ``fit(X, y, teacher_logits=T,
    temperature=t, distill_alpha=a)`` trains on :func:`crossent.distillation_loss` instead
    of ``loss``. A sigmoid-head student is distilled through the logits ``[0, z]``; its
    teacher may give one logit per row (the log-odds) or two columns.

    Example::

        >>> from sklearn.datasets import load_iris
        >>> from crossent.models import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier((16,), solver="lbfgs", max_iter=300, random_state=0).fit(X, y)
        >>> clf.score(X, y) > 0.95
        True

    Reference: Goodfellow, Bengio and Courville, *Deep Learning* (2016), ch. 6.
    """

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        loss: Any = "cross_entropy",
        loss_params: dict | None = None,
        penalty: str | None = "l2",
        alpha: float = 1e-4,
        l1_ratio: float = 0.15,
        solver: str = "adam",
        max_iter: int = 200,
        tol: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: float = 0.001,
        momentum: float = 0.9,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        class_weight: dict | str | None = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.loss_params = loss_params
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
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

    def _check_params(self) -> None:
        super()._check_params()
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {self.activation!r}")
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, (int, np.integer)) else sizes
        if np.ndim(sizes) != 1 or not all(
            isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 1 for h in sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}"
            )
        self._sizes = tuple(int(h) for h in sizes)

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        teacher_logits: Any = None,
        temperature: float = 2.0,
        distill_alpha: float = 0.5,
    ) -> MLPClassifier:
        """Fit on ``X`` and labels ``y``; with ``teacher_logits`` (n, n_classes) distil a teacher.

        ``temperature`` and ``distill_alpha`` are :func:`crossent.distillation_loss`'s
        ``temperature`` and ``alpha``.
        """
        if teacher_logits is None:
            return self._fit(X, y, sample_weight, partial=False)
        teacher = np.asarray(teacher_logits, dtype=np.float64)
        if teacher.ndim == 1:
            teacher = np.stack([np.zeros_like(teacher), teacher], axis=1)
        if teacher.ndim != 2 or teacher.shape[0] != np.shape(X)[0]:
            raise ValueError(
                f"teacher_logits must have shape (n_samples, n_classes) with n_samples = "
                f"{np.shape(X)[0]}, got {np.shape(teacher_logits)}"
            )
        if not np.all(np.isfinite(teacher)):
            raise ValueError("teacher_logits contains NaN or infinity; all values must be finite")
        n_classes = np.unique(np.asarray(y)).size
        if teacher.shape[1] != n_classes:
            raise ValueError(
                f"teacher_logits has {teacher.shape[1]} columns but y has {n_classes} classes"
            )
        distill = {
            "temperature": temperature_option(temperature),
            "alpha": in_range(distill_alpha, "distill_alpha", 0.0, 1.0),
        }
        return self._fit(X, y, sample_weight, partial=False, teacher=teacher, distill=distill)

    @available_if(lambda self: self.solver in ("sgd", "adam"))
    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> MLPClassifier:
        """One epoch of ``"sgd"``/``"adam"`` on this batch (``classes`` needed the first time)."""
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    # -- the network on a flat parameter vector [W_1, b_1, W_2, b_2, ...] --------------------
    def _shapes(self, n_features: int, n_out: int) -> list[tuple[int, int]]:
        dims = (n_features, *self._sizes, n_out)
        return list(itertools.pairwise(dims))

    def _n_params(self, n_features: int, n_out: int) -> int:
        return sum((i + 1) * o for i, o in self._shapes(n_features, n_out))

    def _layers(self, theta: np.ndarray, n_features: int) -> list[tuple[np.ndarray, np.ndarray]]:
        layers, k = [], 0
        for i, o in self._shapes(n_features, self._n_outputs):
            layers.append((theta[k : k + i * o].reshape(i, o), theta[k + i * o : k + (i + 1) * o]))
            k += (i + 1) * o
        return layers

    def _layout(self, n_features: int, n_out: int) -> tuple:
        return tuple(self._shapes(n_features, n_out))

    def _init_theta(self, n_features: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
        parts = []
        for i, o in self._shapes(n_features, n_out):
            bound = np.sqrt(6.0 / (i + o))
            parts += [rng.uniform(-bound, bound, i * o), rng.uniform(-bound, bound, o)]
        return np.concatenate(parts)

    def _penalised(self) -> np.ndarray:
        mask = []
        for i, o in self._shapes(self.n_features_in_, self._n_outputs):
            mask += [np.ones(i * o, dtype=bool), np.zeros(o, dtype=bool)]
        return np.concatenate(mask)

    def _logits(self, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, list]:
        layers = self._layers(theta, X.shape[1])
        acts = [X]
        a = X
        for w, b in layers[:-1]:
            h = a @ w + b
            a = np.maximum(h, 0) if self.activation == "relu" else np.tanh(h)
            acts.append(a)
        w, b = layers[-1]
        z = a @ w + b
        return (z[:, 0] if z.shape[1] == 1 else z), acts

    def _backward(self, theta: np.ndarray, X: np.ndarray, dz: np.ndarray, acts: list):
        layers = self._layers(theta, X.shape[1])
        delta = dz[:, None] if dz.ndim == 1 else dz
        grads = []
        for depth in range(len(layers) - 1, -1, -1):
            w, _ = layers[depth]
            a = acts[depth]
            grads.append(np.concatenate([(a.T @ delta).ravel(), delta.sum(axis=0)]))
            if depth:
                delta = delta @ w.T
                delta = delta * (a > 0) if self.activation == "relu" else delta * (1 - a * a)
        return np.concatenate(grads[::-1])

    def _set_fitted(self, theta: np.ndarray, n_features: int, n_out: int) -> None:
        layers = self._layers(theta, n_features)
        self.coefs_ = [w.copy() for w, _ in layers]
        self.intercepts_ = [b.copy() for _, b in layers]
        self.n_layers_ = len(layers) + 1
        self.n_outputs_ = n_out
