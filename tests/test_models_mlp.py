"""MLPClassifier: objective and gradients against PyTorch and scikit-learn, distillation, API."""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import neural_network
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import crossent
from crossent.models import LogisticRegression, MLPClassifier


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _fitted(model, X, y, **fit_kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, **fit_kw)


def _problem(model, X, y, teacher=None, distill=None):
    y_enc = np.searchsorted(model.classes_, y)
    term = model._data_term(y_enc, np.ones(len(y)), model.classes_.size, teacher, distill)
    return model._problem(X, term)


def _torch_objective(torch, model, theta, X, y, alpha, activation, teacher=None, distill=None):
    """The network and objective written directly in PyTorch (autograd gives the gradient)."""
    theta = torch.tensor(theta, requires_grad=True)
    a = torch.tensor(X)
    layers = model._layers(theta, X.shape[1])
    for w, b in layers[:-1]:
        h = a @ w + b
        a = torch.relu(h) if activation == "relu" else torch.tanh(h)
    w, b = layers[-1]
    z = a @ w + b
    yt = torch.tensor(y)
    if z.shape[1] == 1:
        z = torch.cat([torch.zeros_like(z), z], dim=1)  # sigmoid(z) = softmax([0, z])[1]
    if teacher is None:
        loss = torch.nn.functional.cross_entropy(z, yt)
    else:
        T, lam = distill["temperature"], distill["alpha"]
        soft = torch.nn.functional.kl_div(
            torch.log_softmax(z / T, 1),
            torch.softmax(torch.tensor(teacher) / T, 1),
            reduction="batchmean",
        )
        loss = (1 - lam) * torch.nn.functional.cross_entropy(z, yt) + lam * T**2 * soft
    objective = loss + alpha / 2 * sum((w**2).sum() for w, _ in layers)
    objective.backward()
    return objective.item(), theta.grad.numpy()


@pytest.mark.parametrize(
    ("activation", "n_classes", "distil"),
    [("relu", 2, False), ("tanh", 3, False), ("tanh", 3, True), ("relu", 2, True)],
)
def test_objective_and_gradient_match_torch(iris, activation, n_classes, distil):
    torch = pytest.importorskip("torch")
    X, y = iris
    y = y if n_classes == 3 else (y == 1).astype(int)
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(len(y), n_classes)) * 2 if distil else None
    distill = {"temperature": 3.0, "alpha": 0.7} if distil else None
    model = _fitted(MLPClassifier((6, 5), activation, alpha=0.03, solver="lbfgs", max_iter=2), X, y)
    theta = model._theta + 0.3 * rng.normal(size=model._theta.size)
    value, grad = _problem(model, X, y, teacher, distill).smooth(theta, None)
    ref_value, ref_grad = _torch_objective(
        torch, model, theta, X, y, 0.03, activation, teacher, distill
    )
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_objective_scaling_matches_sklearn_mlp(iris):
    """Our objective at scikit-learn's fitted weights is its reported loss (alpha / n_samples)."""
    X, y = iris
    for labels in (y, (y == 2).astype(int)):
        a = 0.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = neural_network.MLPClassifier(
                (7,), alpha=a, solver="lbfgs", max_iter=50, random_state=0
            ).fit(X, labels)
        ours = _fitted(MLPClassifier((7,), alpha=a / len(y), solver="lbfgs", max_iter=1), X, labels)
        theta = np.concatenate(
            [np.r_[w.ravel(), b] for w, b in zip(ref.coefs_, ref.intercepts_, strict=True)]
        )
        assert _problem(ours, X, labels).objective(theta) == pytest.approx(ref.loss_, rel=1e-10)
        ours._theta = theta
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)


@pytest.mark.parametrize("solver", ["lbfgs", "adam", "sgd"])
def test_learns_a_nonlinear_problem(solver):
    X, y = make_classification(
        300, 6, n_informative=4, n_classes=3, n_clusters_per_class=2, random_state=0
    )
    linear = LogisticRegression(alpha=1e-4).fit(X, y).score(X, y)
    lr = {"lbfgs": 0.001, "adam": 0.01, "sgd": 0.05}[solver]
    mlp = _fitted(
        MLPClassifier((32,), solver=solver, learning_rate=lr, max_iter=300, random_state=0), X, y
    )
    assert mlp.score(X, y) > linear + 0.05


def test_distillation(iris):
    X, y = iris
    teacher = LogisticRegression(alpha=1e-3).fit(X, y)
    logits = teacher.decision_function(X)
    kw = {"solver": "lbfgs", "max_iter": 300, "random_state": 0}
    plain = _fitted(MLPClassifier((8,), **kw), X, y)
    no_soft = _fitted(MLPClassifier((8,), **kw), X, y, teacher_logits=logits, distill_alpha=0.0)
    np.testing.assert_allclose(no_soft.coefs_[0], plain.coefs_[0], rtol=1e-8)
    # a pure distillation student learns the teacher's probabilities, not the labels
    student = _fitted(
        MLPClassifier((8,), alpha=0.0, **kw),
        X,
        y,
        teacher_logits=logits,
        temperature=1.0,
        distill_alpha=1.0,
    )
    np.testing.assert_allclose(student.predict_proba(X), teacher.predict_proba(X), atol=0.05)
    # binary: the teacher may give one log-odds per row
    yb = (y == 1).astype(int)
    t = LogisticRegression().fit(X, yb).decision_function(X)
    binary = _fitted(
        MLPClassifier((8,), alpha=0.0, **kw),
        X,
        yb,
        teacher_logits=t,
        temperature=1.0,
        distill_alpha=1.0,
    )
    np.testing.assert_allclose(binary.decision_function(X), t, atol=0.3)


def test_partial_fit_early_stopping_class_weight(iris):
    X, y = iris
    model = MLPClassifier((10,), learning_rate=0.01, random_state=0)
    model.partial_fit(X, y, classes=np.unique(y))
    for _ in range(30):
        model.partial_fit(X, y)
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    stopped = _fitted(
        MLPClassifier(
            (10,), early_stopping=True, learning_rate=0.01, max_iter=1000, random_state=0, tol=1e-3
        ),
        X,
        y,
    )
    assert stopped.n_iter_ < 1000
    Xi, yi = make_classification(300, 4, weights=[0.9], random_state=0)
    base = _fitted(MLPClassifier((8,), solver="lbfgs", max_iter=200, random_state=0), Xi, yi)
    bal = _fitted(
        MLPClassifier((8,), solver="lbfgs", max_iter=200, random_state=0, class_weight="balanced"),
        Xi,
        yi,
    )
    assert (bal.predict(Xi) == 1).sum() > (base.predict(Xi) == 1).sum()


def test_warm_start_after_new_hidden_layers_starts_afresh(iris):
    # (2,) and (2, 1) hidden layers on 4 features both have 19 parameters (with 3 classes):
    # the old weights had been read in the new shapes instead of a fresh start
    X, y = iris
    kw = {"solver": "sgd", "learning_rate": 0.01, "max_iter": 1, "random_state": 0}
    model = _fitted(MLPClassifier((2,), warm_start=True, **kw), X, y)
    _fitted(model.set_params(hidden_layer_sizes=(2, 1)), X, y)
    fresh = _fitted(MLPClassifier((2, 1), **kw), X, y)
    params, fresh_params = model.coefs_ + model.intercepts_, fresh.coefs_ + fresh.intercepts_
    for a, b in zip(params, fresh_params, strict=True):
        np.testing.assert_array_equal(a, b)


def test_focal_loss_and_string_labels(iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = _fitted(
        MLPClassifier(
            (8,),
            loss="focal",
            loss_params={"gamma": 2.0},
            solver="lbfgs",
            max_iter=200,
            random_state=0,
        ),
        X,
        labels,
    )
    assert model.score(X, labels) > 0.9
    assert model.predict(X).dtype == labels.dtype


@pytest.mark.parametrize(
    ("kwargs", "fit_kw", "match"),
    [
        ({"activation": "sigmoid"}, {}, "activation must be one of"),
        ({"hidden_layer_sizes": (4, 0)}, {}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": None}, {}, "hidden_layer_sizes must be"),  # had been a TypeError
        ({"hidden_layer_sizes": "ab"}, {}, "hidden_layer_sizes must be"),
        ({"solver": "newton"}, {}, "newton"),
        ({}, {"teacher_logits": np.zeros((5, 3))}, "teacher_logits must have shape"),
        ({}, {"teacher_logits": np.zeros((150, 2))}, "2 columns but y has 3 classes"),
        ({}, {"teacher_logits": np.full((150, 3), np.nan)}, "NaN"),
        ({}, {"teacher_logits": np.zeros((150, 3)), "temperature": 0.0}, "temperature"),
    ],
)
def test_bad_input_raises(iris, kwargs, fit_kw, match):
    X, y = iris
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**kwargs, max_iter=1).fit(X, y, **fit_kw)


def test_distillation_refuses_loss_options_it_would_ignore(iris):
    # distillation trains on crossent.distillation_loss: loss_params had been dropped silently,
    # and predict_proba had divided by their temperature anyway
    X, y = iris
    teacher = np.random.default_rng(0).normal(size=(len(y), 3))
    for kw in ({"loss_params": {"temperature": 3.0}}, {"loss": "focal"}):
        model = MLPClassifier((4,), solver="lbfgs", max_iter=20, random_state=0, **kw)
        with pytest.raises(ValueError, match="distillation_loss"):
            model.fit(X, y, teacher_logits=teacher)


def test_predict_proba_uses_the_temperature_trained_with(iris):
    X, y = iris
    model = _fitted(
        MLPClassifier((4,), solver="lbfgs", max_iter=30, random_state=0,
                      loss_params={"temperature": 2.0}),
        X, y,
    )  # fmt: skip
    expected = crossent.softmax(model.decision_function(X[:5]) / 2.0, axis=1)
    model.set_params(loss_params=None)  # not refitted: the model is the one trained at T = 2
    np.testing.assert_allclose(model.predict_proba(X[:5]), expected, rtol=1e-12)


def test_a_refused_fit_leaves_the_fitted_model_as_it_was(iris):
    # After set_params(hidden_layer_sizes=...) a fit refused for NaN in X had cut the old
    # parameters into the new layout: accuracy 0.99 -> 0.33.
    X, y = iris
    model = MLPClassifier((5,), solver="lbfgs", random_state=0, max_iter=500).fit(X, y)
    before = model.predict_proba(X)
    model.set_params(hidden_layer_sizes=(3,))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, y)
    np.testing.assert_array_equal(model.predict_proba(X), before)


@pytest.mark.parametrize("model", [LogisticRegression, lambda **kw: MLPClassifier((3,), **kw)])
def test_early_stopping_refuses_a_split_without_weight(model):
    # Validation rows of weight 0 had given a validation loss of 0 / 0 and returned the
    # initial parameters (all-zero coefficients) without a warning; training rows of weight 0
    # had raised "y_pred contains NaN or infinity".
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    for n_weighted, fraction in ((2, 0.1), (1, 0.5)):
        w = np.zeros(40)
        w[np.flatnonzero(y == 0)[:n_weighted]] = 1
        w[np.flatnonzero(y == 1)[:n_weighted]] = 1
        estimator = model(solver="adam", early_stopping=True, validation_fraction=fraction,
                          random_state=0)  # fmt: skip
        with pytest.raises(ValueError, match=r"rows whose weights .* are all 0"):
            estimator.fit(X, y, sample_weight=w)


def test_ignore_index_is_refused_in_loss_params():
    # Models encode labels as 0..K-1: ignore_index=1 had dropped the second class (label 2),
    # and -1 had matched nothing (its rows became a class of their own).
    X, y = np.eye(3), np.array([1, 2, 3])
    with pytest.raises(ValueError, match="cannot set 'ignore_index'"):
        LogisticRegression(loss_params={"ignore_index": 1}).fit(X, y)
