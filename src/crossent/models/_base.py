r"""What every crossent classifier shares: losses, data checks, the objective and ``fit``.

A model maps inputs to logits :math:`Z` (one column with a sigmoid head for a binary loss, one
per class with a softmax head for a categorical loss). The training objective is

.. math:: F(\theta) = \frac{\sum_i s_i\, \ell(y_i, z_i)}{\sum_i s_i}
    + \alpha\Bigl(\rho \lVert W \rVert_1 + \frac{1 - \rho}{2} \lVert W \rVert_2^2\Bigr),

the sample-weighted mean loss plus scikit-learn's ``SGDClassifier`` / ``ElasticNet`` penalty on
the weights :math:`W` (intercepts and biases are not penalised). Here :math:`s_i` is
``sample_weight`` times the class weight of :math:`y_i` (scikit-learn's semantics, "balanced"
included), so ``alpha = 1 / (C * sum_i s_i)`` is ``sklearn.linear_model.LogisticRegression(C=C)``:
``1 / (C * n_samples)`` without sample weights, with or without "balanced" class weights.
The per-example loss, its gradient and (for Newton) its hessian come from
:func:`crossent.value_and_grad` / :func:`crossent.value_grad_hess`; the penalties from
:func:`crossent.l2_penalty` and :func:`crossent.l1_penalty`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import _derivatives
from .._validation import in_range
from ..losses import distillation_loss
from ..objectives._core import BINARY, CROSS_ENTROPIES, check_loss_params, resolve
from ..regularization import l2_penalty
from ..special import sigmoid, softmax
from . import solvers

PENALTIES = ("l2", "l1", "elasticnet", None)


def resolve_loss(loss: Any, n_classes: int) -> tuple[Callable, bool]:
    """The crossent loss function for ``loss`` and whether it has a single sigmoid output.

    A name picks the sigmoid form for two classes and the softmax form otherwise; a crossent
    loss function is used as given (a categorical loss on two classes gives a 2-column softmax).
    The names are those of :data:`crossent.objectives.LOSSES`.
    """
    fn = resolve(loss, n_classes)
    return fn, fn in BINARY


class DataTerm:
    """The weighted mean loss over chosen rows, as a function of the logits of those rows.

    ``teacher`` (per-row teacher logits) switches to :func:`crossent.distillation_loss`; a
    sigmoid head is then distilled through the 2-column logits ``[0, z]``, whose softmax is
    ``[1 - sigmoid(z), sigmoid(z)]``.
    """

    def __init__(
        self,
        fn: Callable,
        params: dict,
        y: np.ndarray,
        weights: np.ndarray,
        binary: bool,
        teacher: np.ndarray | None = None,
        distill: dict | None = None,
    ) -> None:
        self.fn, self.params, self.binary = fn, params, binary
        self.y = y.astype(np.float64) if binary and teacher is None else y
        self.weights = weights
        # A mini-batch's weights are divided by its size times the mean weight of all the
        # data (partial_fit: of every row seen so far), so that its weighted loss is an
        # unbiased estimate of the objective; its own total would cancel a one-row batch's
        # weight, and bias small batches.
        self.mean_weight = float(weights.mean())
        self.teacher, self.distill = teacher, distill or {}
        self._at: tuple | None = None  # (z, what hessp reuses at z)

    def _call(self, z: np.ndarray, rows: np.ndarray | None, order: int) -> tuple:
        y = self.y if rows is None else self.y[rows]
        if self.teacher is None:
            entry = _derivatives.value_and_grad if order == 1 else _derivatives.value_grad_hess
            return entry(self.fn)(y, z, from_logits=True, reduction="none", **self.params)
        t = self.teacher if rows is None else self.teacher[rows]
        if self.binary:
            z2 = np.stack([np.zeros_like(z), z], axis=1)
            value, grad = _derivatives.value_and_grad(distillation_loss)(
                y, z2, t, reduction="none", **self.distill
            )
            return value, grad[:, 1]
        return _derivatives.value_and_grad(distillation_loss)(
            y, z, t, reduction="none", **self.distill
        )

    def __call__(self, z: np.ndarray, rows: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Weighted mean loss and its gradient with respect to ``z``."""
        if rows is None:
            s = self.weights / self.weights.sum()
        else:
            s = self.weights[rows] / (rows.size * self.mean_weight)
        value, grad = self._call(z, rows, 1)
        return float(s @ value), _scale(grad, s)

    def hessp(self, z: np.ndarray, u: np.ndarray) -> np.ndarray:
        r"""Product of the hessian of the weighted mean loss (w.r.t. ``z``) with ``u``.

        Exact for a sigmoid head (its hessian is the diagonal crossent returns). For a softmax
        head, whose per-row hessian is a full C x C block of which crossent gives only the
        diagonal, it is the forward difference of the analytic gradient along ``u`` with step
        :math:`\sqrt{\epsilon}` relative to the margins (error about 1e-8 relative, ample for
        Newton-CG). What it reuses (the diagonal hessian, or the gradient) is computed once per
        ``z``: a Newton step makes many products at one point.
        """
        s = self.weights / self.weights.sum()
        if self._at is None or self._at[0] is not z:
            at_z = self._call(z, None, 2)[2] if self.binary else self._call(z, None, 1)[1]
            self._at = (z, at_z)
        if self.binary:
            return s * self._at[1] * u
        step = np.sqrt(np.finfo(float).eps) * max(1.0, float(np.max(np.abs(z))))
        step /= max(float(np.max(np.abs(u))), 1e-300)
        g_step = self._call(z + step * u, None, 1)[1]
        return _scale((g_step - self._at[1]) / step, s)


def _scale(grad: np.ndarray, s: np.ndarray) -> np.ndarray:
    return grad * (s if grad.ndim == 1 else s[:, None])


def _integer(value: Any, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


class BaseClassifier(ClassifierMixin, BaseEstimator):
    """Shared ``fit``/``partial_fit``/``predict`` of the crossent classifiers.

    Subclasses implement ``_layout``, ``_init_theta``, ``_logits``, ``_backward``,
    ``_penalised`` and ``_set_fitted`` on a flat parameter vector, and may provide ``_hessp``.
    ``warm_start`` and ``partial_fit`` continue from the last parameters when their layout
    (``_layout``: the shapes, and which parameters are fitted) is unchanged, and start afresh
    otherwise.
    """

    # -- parameter checks ---------------------------------------------------------------
    def _check_params(self) -> None:
        if self.solver not in solvers.SOLVERS:
            raise ValueError(f"solver must be one of {solvers.SOLVERS}, got {self.solver!r}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {self.penalty!r}")
        in_range(self.alpha, "alpha", 0.0)
        in_range(self.l1_ratio, "l1_ratio", 0.0, 1.0)
        in_range(self.tol, "tol", 0.0)
        _integer(self.max_iter, "max_iter", 1)
        in_range(self.learning_rate, "learning_rate", 0.0, low_open=True)
        in_range(self.momentum, "momentum", 0.0, 1.0, high_open=True)
        in_range(self.validation_fraction, "validation_fraction", 0.0, 1.0, high_open=True)
        _integer(self.n_iter_no_change, "n_iter_no_change", 1)
        if self.batch_size != "auto":
            _integer(self.batch_size, "batch_size", 1)

    def _penalty_strengths(self) -> tuple[float, float]:
        """(lambda_1, lambda_2) of the objective for this ``penalty``/``alpha``/``l1_ratio``."""
        rho = {"l2": 0.0, "l1": 1.0, "elasticnet": self.l1_ratio, None: 0.0}[self.penalty]
        alpha = 0.0 if self.penalty is None else self.alpha
        return alpha * rho, alpha * (1 - rho)

    # -- data -----------------------------------------------------------------------------
    def _validate(self, X: Any, y: Any, sample_weight: Any, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float64, y_numeric=False)
        check_classification_targets(y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if np.any(sample_weight < 0):
            low = float(sample_weight.min())
            raise ValueError(f"sample_weight must be non-negative, got a minimum of {low}")
        return X, y, sample_weight

    def _encode(self, y: np.ndarray, classes: Any, keep: bool) -> np.ndarray:
        """Labels as indices into ``classes_`` (set from ``classes`` or ``y`` unless ``keep``)."""
        if not keep:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
        if self.classes_.size < 2:
            raise ValueError(
                f"y has only one class ({self.classes_[0]!r}); a classifier needs at least 2 "
                f"classes"
            )
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if unseen.size:
            raise ValueError(f"y holds labels {unseen.tolist()} not in classes {self.classes_}")
        return np.searchsorted(self.classes_, y)

    def _example_weights(self, y_enc: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
        s = sample_weight.copy()
        if self.class_weight is not None:
            present = np.unique(y_enc)
            if isinstance(self.class_weight, str):
                if self.class_weight != "balanced":
                    raise ValueError(
                        f"class_weight must be a dict, 'balanced' or None, got "
                        f"{self.class_weight!r}"
                    )
                # scikit-learn's "balanced" (as of 1.9) from the sample-weighted class counts:
                # sum(s) / (K * sum of s over class k), the classes present in y
                totals = np.bincount(y_enc, weights=sample_weight, minlength=self.classes_.size)
                cw = np.ones(self.classes_.size)
                counted = np.zeros(self.classes_.size, dtype=bool)
                counted[present] = totals[present] > 0
                cw[counted] = totals.sum() / (present.size * totals[counted])
            else:
                cw = compute_class_weight(
                    self.class_weight, classes=self.classes_, y=self.classes_[y_enc]
                )
            if not np.all(np.isfinite(cw) & (cw >= 0)):  # negative: an objective unbounded below
                raise ValueError(f"class_weight must be finite and non-negative, got {cw}")
            s *= cw[y_enc]
        if not np.any(s > 0):
            raise ValueError("sample_weight (times class_weight) must have a positive entry")
        with np.errstate(over="ignore"):
            if not np.isfinite(s.sum()):
                raise ValueError(
                    "sample_weight (times class_weight) sums to infinity; scale it down (the "
                    "objective depends only on the weights' ratios)"
                )
        return s

    # -- objective -------------------------------------------------------------------------
    def _problem(self, X: np.ndarray, term: DataTerm, rows: np.ndarray | None = None, val=None):
        """The :class:`solvers.Problem` of this model on ``X`` (restricted to ``rows``)."""
        lam1, lam2 = self._penalty_strengths()
        pen = self._penalised()
        Xt = X if rows is None else X[rows]
        if rows is not None:
            term = _subset(term, rows)

        def smooth(theta: np.ndarray, batch: np.ndarray | None) -> tuple[float, np.ndarray]:
            Xb = Xt if batch is None else Xt[batch]
            z, cache = self._logits(theta, Xb)
            value, dz = term(z, batch)
            grad = self._backward(theta, Xb, dz, cache)
            if lam2 > 0:
                pv, pg = _derivatives.value_and_grad(l2_penalty)(theta[pen], alpha=lam2)
                value += float(pv)
                grad[pen] += pg
            return value, grad

        hessp = None
        if hasattr(self, "_hessp"):
            at: list = [None, None]  # a Newton step makes many products at one theta

            def hessp(theta: np.ndarray, v: np.ndarray) -> np.ndarray:
                if at[0] is None or not np.array_equal(at[0], theta):
                    at[:] = [theta.copy(), self._logits(theta, Xt)[0]]
                out = self._hessp(at[1], v, Xt, term)
                out[pen] += lam2 * v[pen]
                return out

        validation = None
        if val is not None:
            Xv, tv = val

            def validation(theta: np.ndarray) -> float:
                return tv(self._logits(theta, Xv)[0])[0]

        l1 = np.where(pen, lam1, 0.0)
        return solvers.Problem(smooth, l1, Xt.shape[0], hessp, validation)

    def _data_term(self, y_enc, weights, n_classes, teacher=None, distill=None) -> DataTerm:
        fn, binary = resolve_loss(self.loss, n_classes)
        params = check_loss_params(fn, self.loss_params)
        if teacher is not None and (params or fn not in CROSS_ENTROPIES):
            raise ValueError(
                "fit(teacher_logits=...) trains on crossent.distillation_loss, whose options "
                "are temperature and distill_alpha: loss must be a cross-entropy "
                f"('log_loss', 'cross_entropy') and loss_params empty; got loss={self.loss!r}, "
                f"loss_params={self.loss_params!r}"
            )
        return DataTerm(fn, params, y_enc, weights, binary, teacher, distill)

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight, *, partial: bool, **kwargs):
        """Fit (or one ``partial_fit`` epoch); a call that raises leaves the estimator as it
        was (its attributes restored), so a model fitted before still predicts as before.
        Without this a refused fit after ``set_params(hidden_layer_sizes=...)`` had cut the
        old parameters into the new layout (accuracy 0.99 -> 0.33)."""
        saved = dict(self.__dict__)
        try:
            return self._fit_once(X, y, sample_weight, partial=partial, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit_once(
        self, X, y, sample_weight, *, partial: bool, classes=None, teacher=None, distill=None
    ):
        self._check_params()
        first = not (partial and hasattr(self, "_theta"))
        X, y, sample_weight = self._validate(X, y, sample_weight, reset=first)
        if partial and not first and classes is not None:
            if not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
                raise ValueError("classes must equal the classes given on the first partial_fit")
        if partial and first and classes is None:
            raise ValueError("classes must be given on the first call to partial_fit")
        if classes is not None and np.ndim(classes) != 1:  # a string would be one class
            raise ValueError(f"classes must be a 1-D array-like of labels, got {classes!r}")
        if partial and isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: one batch's class "
                "counts are not the data's. Compute the weights from all the labels (or a large "
                "sample), e.g. sklearn.utils.class_weight.compute_class_weight('balanced', "
                "classes=classes, y=y), and pass them as a dict"
            )
        y_enc = self._encode(y, classes, keep=not first)
        n_classes = self.classes_.size
        weights = self._example_weights(y_enc, sample_weight)
        term = self._data_term(y_enc, weights, n_classes, teacher, distill)
        # predict_proba gives the likelihood trained: the loss's temperature, 1 when distilled
        self._temperature = term.params.get("temperature", 1.0)
        # the weights of every row seen (fit starts the count, partial_fit continues it); a
        # partial_fit's batches are weighted against their mean (DataTerm.mean_weight)
        total, count = self._weights_seen if partial and not first else (0.0, 0)
        self._weights_seen = (total + float(weights.sum()), count + weights.size)
        if partial:
            term.mean_weight = self._weights_seen[0] / self._weights_seen[1]
        n_out = 1 if term.binary else n_classes
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))

        layout = self._layout(X.shape[1], n_out)
        warm = (partial and not first) or self.warm_start
        if warm and getattr(self, "_fitted_layout", None) == layout:
            theta0 = self._theta.copy()
        else:
            theta0 = self._init_theta(X.shape[1], n_out, rng)
            self._state = solvers.FirstOrderState()
        self._n_outputs = n_out
        if not hasattr(self, "_state"):
            self._state = solvers.FirstOrderState()

        solver = self.solver  # partial_fit exists for "sgd" and "adam" only
        train_rows, val = None, None
        if self.early_stopping and not partial and solver in ("sgd", "adam"):
            train_rows, val_rows = _split(y_enc, self.validation_fraction, rng)
            for part, rows in (("validation", val_rows), ("training", train_rows)):
                if not term.weights[rows].sum() > 0:  # its mean loss would be 0 / 0
                    raise ValueError(
                        f"early_stopping=True drew {part} rows whose weights (sample_weight, "
                        f"class_weight) are all 0; give weight to more rows, change "
                        f"validation_fraction or random_state, or use early_stopping=False"
                    )
            val = (X[val_rows], _subset(term, val_rows))
        problem = self._problem(X, term, train_rows, val)
        verbose = bool(self.verbose)
        if solver == "lbfgs":
            result = solvers.lbfgs(
                problem, theta0, max_iter=self.max_iter, tol=self.tol, verbose=verbose
            )
        elif solver == "newton":
            if not hasattr(self, "_hessp"):
                raise ValueError(
                    f"solver='newton' is for the linear model; {type(self).__name__} supports "
                    f"'lbfgs', 'sgd' and 'adam'"
                )
            result = solvers.newton(
                problem, theta0, max_iter=self.max_iter, tol=self.tol, verbose=verbose
            )
        else:
            n_rows = problem.n_samples
            batch = min(200, n_rows) if self.batch_size == "auto" else self.batch_size
            result = solvers.first_order(
                problem,
                theta0,
                method=solver,
                learning_rate=self.learning_rate,
                momentum=self.momentum,
                batch_size=batch,
                max_iter=1 if partial else self.max_iter,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                rng=rng,
                verbose=verbose,
                state=self._state,
                warn=not partial,
            )
        self._theta, self._fitted_layout = result.theta, layout
        self.n_iter_ = result.n_iter
        self.loss_ = result.loss
        if solver in ("sgd", "adam"):  # per-epoch training objective, across partial_fit calls
            previous = getattr(self, "loss_curve_", []) if partial else []
            self.loss_curve_ = previous + result.loss_curve
        elif hasattr(self, "loss_curve_"):
            del self.loss_curve_
        self._set_fitted(result.theta, X.shape[1], n_out)
        return self

    # -- prediction -----------------------------------------------------------------------
    def decision_function(self, X: Any) -> np.ndarray:
        """Raw margins: shape (n,) for a sigmoid head, (n, n_classes) for a softmax head."""
        check_is_fitted(self, "_theta")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        z = self._logits(self._theta, X)[0]
        if z.ndim == 2 and z.shape[1] == 2:  # 2-column softmax: the log-odds of class 1
            return z[:, 1] - z[:, 0]
        return z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, n_classes), in the order of ``classes_``: those of the
        likelihood trained, so with the loss's ``temperature`` (``loss_params``) if any."""
        z = self.decision_function(X) / self._temperature
        if z.ndim == 1:
            p = sigmoid(z)
            return np.stack([1 - p, p], axis=1)
        return softmax(z, axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Natural log of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label for each row."""
        z = self.decision_function(X)
        idx = (z > 0).astype(int) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _subset(term: DataTerm, rows: np.ndarray) -> DataTerm:
    """The same loss restricted to ``rows``."""
    out = DataTerm.__new__(DataTerm)
    out.__dict__.update(term.__dict__)
    out.y, out.weights = term.y[rows], term.weights[rows]
    out.mean_weight = float(out.weights.mean())
    out.teacher = None if term.teacher is None else term.teacher[rows]
    out._at = None
    return out


def _split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple:
    """Stratified train/validation row indices: of each class with two rows or more, a
    ``fraction`` of its rows for validation, at least one, and at least one left to train on."""
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = min(max(1, round(fraction * idx.size)), idx.size - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    val_rows = np.sort(np.concatenate(val))
    if val_rows.size == 0:
        raise ValueError(
            "early_stopping=True needs a validation set, but every class has a single example; "
            "use early_stopping=False"
        )
    return np.sort(np.concatenate(train)), val_rows
