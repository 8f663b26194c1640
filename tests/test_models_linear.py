"""LogisticRegression: parity with scikit-learn, optimality of every solver, API semantics."""

import inspect
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import linear_model
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.preprocessing import StandardScaler

import crossent
from crossent.models import LogisticRegression


def _scaled(load):
    X, y = load(return_X_y=True)
    if load is load_digits:  # the first 500 digits keep the test fast; the benchmark uses all
        X, y = X[:500], y[:500]
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def cancer():
    return _scaled(load_breast_cancer)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _rel_err(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize(
    ("load", "solver", "C"),
    [
        (load_iris, "lbfgs", 1.0),
        (load_iris, "newton", 0.1),
        (load_digits, "newton", 1.0),
        (load_breast_cancer, "lbfgs", 1.0),
        (load_breast_cancer, "newton", 10.0),
    ],
)
def test_matches_sklearn_logistic_regression(load, solver, C):
    X, y = _scaled(load)
    ref = linear_model.LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    ours = LogisticRegression(alpha=1 / (C * len(y)), solver=solver, tol=1e-10, max_iter=10_000)
    ours.fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape
    assert _rel_err(ours.coef_, ref.coef_) < 1e-4
    assert np.max(np.abs(ours.intercept_ - ref.intercept_)) < 1e-4 * np.max(np.abs(ref.coef_))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_digits_lbfgs_matches_sklearn():
    X, y = _scaled(load_digits)
    ref = linear_model.LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(X, y)
    ours = LogisticRegression(alpha=1 / (0.5 * len(y)), tol=1e-10, max_iter=10_000).fit(X, y)
    assert _rel_err(ours.coef_, ref.coef_) < 1e-4


def _kkt_violation(model, X, y, alpha, l1_ratio):
    """Largest violation of the elastic-net optimality conditions, from a by-hand gradient."""
    p = _sigmoid(X @ model.coef_[0] + model.intercept_[0])
    g = X.T @ (p - y) / len(y) + alpha * (1 - l1_ratio) * model.coef_[0]
    lam = alpha * l1_ratio
    w = model.coef_[0]
    nonzero = np.abs(g + lam * np.sign(w))[w != 0]
    zero = np.maximum(np.abs(g[w == 0]) - lam, 0)
    intercept = abs(np.sum(p - y) / len(y))
    return max(nonzero.max(initial=0), zero.max(initial=0), intercept)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_lbfgs_l1_is_optimal_and_sparse(cancer, penalty):
    X, y = cancer
    alpha = 0.02
    model = LogisticRegression(penalty=penalty, alpha=alpha, l1_ratio=0.5, tol=1e-10, max_iter=5000)
    model.fit(X, y)
    l1_ratio = 1.0 if penalty == "l1" else 0.5
    assert _kkt_violation(model, X, y, alpha, l1_ratio) < 1e-6
    assert np.sum(model.coef_ == 0) >= 5  # exact zeros, not 1e-9s


def test_l1_matches_sklearn_saga(cancer):
    X, y = cancer
    C = 0.05  # strong enough for a sparse solution that saga reaches quickly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = linear_model.LogisticRegression(C=C, l1_ratio=1.0, solver="saga", tol=1e-8)
        ref.set_params(max_iter=20_000).fit(X, y)
    ours = LogisticRegression(penalty="l1", alpha=1 / (C * len(y)), tol=1e-10, max_iter=5000)
    ours.fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-5)
    np.testing.assert_array_equal(ours.coef_ == 0, ref.coef_ == 0)


@pytest.mark.parametrize(
    ("solver", "penalty", "lr"),
    [("sgd", "l2", 0.05), ("adam", "l2", 0.01), ("sgd", "l1", 0.05), ("adam", "l1", 0.01)],
)
def test_stochastic_solvers_reach_the_lbfgs_objective(cancer, solver, penalty, lr):
    X, y = cancer
    kw = {"penalty": penalty, "alpha": 0.01}
    best = LogisticRegression(**kw, tol=1e-10, max_iter=5000).fit(X, y).loss_
    model = LogisticRegression(
        **kw,
        solver=solver,
        learning_rate=lr,
        max_iter=300,
        tol=1e-6,
        n_iter_no_change=20,
        batch_size=64,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.loss_ == pytest.approx(best, rel=2e-2)
    assert model.loss_ >= best - 1e-9  # lbfgs found the minimum


def test_focal_loss_solution_is_stationary_for_torch():
    """Independent check: the torch focal objective has zero gradient at the fitted weights."""
    torch = pytest.importorskip("torch")
    X, y = make_classification(200, 5, weights=[0.8], random_state=0)
    alpha = 0.01
    model = LogisticRegression(
        "focal", loss_params={"gamma": 2.0}, alpha=alpha, tol=1e-10, max_iter=2000
    ).fit(X, y)
    w = torch.tensor(np.r_[model.intercept_, model.coef_[0]], requires_grad=True)
    Xt, yt = torch.tensor(X), torch.tensor(y, dtype=torch.float64)
    p = torch.sigmoid(Xt @ w[1:] + w[0])
    p_t = yt * p + (1 - yt) * (1 - p)
    focal = -((1 - p_t) ** 2) * torch.log(p_t)
    objective = focal.mean() + alpha / 2 * (w[1:] ** 2).sum()
    objective.backward()
    objective = objective.detach()
    assert float(w.grad.abs().max()) < 1e-7
    assert model.loss_ == pytest.approx(objective.item(), rel=1e-10)


def test_softmax_focal_newton_equals_lbfgs():
    X, y = _scaled(load_iris)
    kw = {"loss": "focal", "loss_params": {"gamma": 1.0}, "alpha": 0.01, "tol": 1e-9}
    a = LogisticRegression(**kw, solver="newton", max_iter=200).fit(X, y)
    b = LogisticRegression(**kw, max_iter=2000).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-5)


def test_callable_loss_and_label_smoothing():
    X, y = _scaled(load_iris)
    y2 = (y == 2).astype(int)
    kw = {"alpha": 0.01, "tol": 1e-10, "max_iter": 2000}
    by_name = LogisticRegression("cross_entropy", **kw).fit(X, y2)
    by_fn = LogisticRegression(crossent.binary_cross_entropy, **kw).fit(X, y2)
    np.testing.assert_allclose(by_fn.coef_, by_name.coef_)
    # a categorical loss on two classes is a 2-column softmax; at the optimum the columns are
    # opposite (w1 = -w0 = d/2), so its L2 penalty on d is halved: binary with alpha / 2
    two = LogisticRegression(crossent.categorical_cross_entropy, **kw).fit(X, y2)
    half = LogisticRegression(**{**kw, "alpha": 0.005}).fit(X, y2)
    assert two.coef_.shape == (2, 4)
    np.testing.assert_allclose(two.coef_[1] - two.coef_[0], half.coef_[0], rtol=1e-5)
    np.testing.assert_allclose(two.predict_proba(X), half.predict_proba(X), atol=1e-7)
    smooth = LogisticRegression(loss_params={"label_smoothing": 0.2}, **kw).fit(X, y2)
    assert np.abs(smooth.coef_).sum() < np.abs(by_name.coef_).sum()  # smoothing shrinks logits


def test_probabilities_are_those_of_the_tempered_likelihood():
    # CE(W x / T) + alpha / 2 |W|^2 is, with V = W / T, CE(V x) + alpha T^2 / 2 |V|^2: the
    # model trained with a temperature is the plain one with alpha T^2, and its probabilities
    # are softmax(z / T) (predict_proba had left out T: far too confident at T = 3)
    X, y = _scaled(load_iris)
    kw = {"tol": 1e-10, "max_iter": 2000}
    tempered = LogisticRegression(alpha=0.01, loss_params={"temperature": 3.0}, **kw).fit(X, y)
    plain = LogisticRegression(alpha=0.09, **kw).fit(X, y)
    np.testing.assert_allclose(tempered.predict_proba(X), plain.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(tempered.predict(X), plain.predict(X))


def test_sample_weight_equals_repetition_and_string_labels(cancer):
    X, y = cancer
    X, y = X[:120], y[:120]
    rng = np.random.default_rng(0)
    sw = rng.integers(0, 3, len(y))
    labels = np.array(["benign", "malignant"])[y]
    kw = {"alpha": 0.05, "tol": 1e-10, "max_iter": 2000}
    weighted = LogisticRegression(**kw).fit(X, labels, sample_weight=sw)
    repeated = LogisticRegression(**kw).fit(np.repeat(X, sw, axis=0), np.repeat(labels, sw))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6)
    assert list(weighted.classes_) == ["benign", "malignant"]
    assert set(weighted.predict(X)) <= {"benign", "malignant"}


def test_balanced_class_weight_with_sample_weights_matches_scikit_learn():
    # scikit-learn (1.9) counts the classes for "balanced" with the sample weights, and its
    # C multiplies the weighted sum of losses: alpha = 1 / (C * sum of the final weights).
    from sklearn.utils.class_weight import compute_class_weight

    if "sample_weight" not in inspect.signature(compute_class_weight).parameters:
        pytest.skip("this scikit-learn counts classes for 'balanced' without sample weights")
    X, y = make_classification(
        300, 4, n_classes=3, n_informative=3, n_redundant=0, weights=[0.6, 0.3, 0.1], random_state=2
    )
    sw = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y))
    totals = np.bincount(y, weights=sw)
    final = sw * sw.sum() / (3 * totals[y])  # sample weight times the class weight
    C = 0.5
    ours = LogisticRegression(alpha=1 / (C * final.sum()), class_weight="balanced", tol=1e-10,
                              max_iter=5000).fit(X, y, sample_weight=sw)  # fmt: skip
    ref = linear_model.LogisticRegression(
        C=C, class_weight="balanced", tol=1e-12, max_iter=5000
    ).fit(X, y, sample_weight=sw)
    assert _rel_err(ours.coef_, ref.coef_) < 1e-4
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_balanced_class_weight_equals_sample_weights():
    X, y = make_classification(
        300, 4, n_classes=3, n_informative=3, n_redundant=0, weights=[0.6, 0.3, 0.1], random_state=1
    )
    kw = {"alpha": 0.01, "tol": 1e-10, "max_iter": 2000}
    balanced = LogisticRegression(**kw, class_weight="balanced").fit(X, y)
    counts = np.bincount(y)
    manual = LogisticRegression(**kw).fit(X, y, sample_weight=len(y) / (3 * counts[y]))
    np.testing.assert_allclose(balanced.coef_, manual.coef_, rtol=1e-6)
    ref = linear_model.LogisticRegression(
        C=1 / (0.01 * len(y)), class_weight="balanced", tol=1e-12, max_iter=5000
    ).fit(X, y)
    assert _rel_err(balanced.coef_, ref.coef_) < 1e-4


def test_partial_fit_and_warm_start(cancer):
    X, y = cancer
    model = LogisticRegression(solver="adam", alpha=0.01, learning_rate=0.01, random_state=0)
    model.partial_fit(X[:200], y[:200], classes=[0, 1])
    first = model.loss_
    for _ in range(20):
        model.partial_fit(X, y)
    assert model.loss_ < first
    assert len(model.loss_curve_) == 21
    with pytest.raises(ValueError, match="classes"):
        LogisticRegression(solver="sgd").partial_fit(X, y)
    assert not hasattr(LogisticRegression(solver="lbfgs"), "partial_fit")

    cold = LogisticRegression(alpha=0.01, tol=1e-8, max_iter=1000).fit(X, y)
    warm = LogisticRegression(alpha=0.01, tol=1e-8, max_iter=1000, warm_start=True).fit(X, y)
    warm.fit(X, y)
    assert warm.n_iter_ < cold.n_iter_ // 2
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-5)


def test_warm_start_restarts_when_the_parameters_change_layout(cancer):
    # fit_intercept switched off: the last intercept must not stay frozen in the model (it
    # did: the refit kept 14.1 and moved the probabilities by up to 0.74), as in scikit-learn
    X, y = cancer
    kw = {"alpha": 1 / len(y), "tol": 1e-10, "max_iter": 1000}  # scikit-learn's C = 1
    reference = linear_model.LogisticRegression(fit_intercept=False, tol=1e-10, max_iter=10000)
    reference.fit(X, y)
    for solver in ("lbfgs", "newton"):
        model = LogisticRegression(solver=solver, warm_start=True, **kw)
        model.fit(X, y).set_params(fit_intercept=False).fit(X, y)
        np.testing.assert_array_equal(model.intercept_, 0.0)
        np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-6)


def test_partial_fit_accepts_the_same_classes_in_any_order():
    # compared with the sorted classes_ (scikit-learn's SGDClassifier accepts these): the
    # second call had raised "classes must equal the classes given on the first partial_fit"
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.array(["no", "yes"] * 10)
    model = LogisticRegression(solver="sgd")
    for classes in (["yes", "no"], ["yes", "no"], ["no", "yes", "yes"]):
        model.partial_fit(X, y, classes=classes)
    np.testing.assert_array_equal(model.classes_, ["no", "yes"])
    with pytest.raises(ValueError, match="classes must equal"):
        model.partial_fit(X, y, classes=["no", "yes", "maybe"])
    with pytest.raises(ValueError, match="classes must be a 1-D"):  # had read 'y has one class'
        LogisticRegression(solver="sgd").partial_fit(X, y, classes="ab")


def test_early_stopping_keeps_rows_to_train_on():
    X = np.random.default_rng(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    # 0.99 of each class for validation had left no training row (ZeroDivisionError)
    model = LogisticRegression(solver="adam", early_stopping=True, validation_fraction=0.99)
    assert model.fit(X, y).n_iter_ >= 1
    with pytest.raises(ValueError, match=r"validation_fraction must lie in \[0, 1\)"):
        LogisticRegression(early_stopping=True, validation_fraction=1.0).fit(X, y)
    with pytest.raises(ValueError, match="early_stopping=True needs a validation set"):
        LogisticRegression(solver="sgd", early_stopping=True).fit([[0.0], [1.0], [2.0]], [0, 1, 2])


def test_negative_sample_weights_are_rejected():
    # the model had fitted all-zero coefficients without a word when they summed to 0
    X = np.random.default_rng(0).normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        LogisticRegression().fit(X, y, sample_weight=np.r_[np.ones(30), -np.ones(30)])


def test_early_stopping_and_convergence_warning(cancer):
    X, y = cancer
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        LogisticRegression(max_iter=2, tol=1e-12).fit(X, y)
    model = LogisticRegression(
        solver="sgd",
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=3,
        max_iter=500,
        learning_rate=0.05,
        random_state=0,
        tol=1e-3,
    ).fit(X, y)
    assert model.n_iter_ < 500


def test_verbose_shows_progress_with_loss(cancer, capsys):
    X, y = cancer
    LogisticRegression(verbose=True, max_iter=50).fit(X, y)
    err = capsys.readouterr().err
    assert "loss" in err and "iter" in err


def test_fit_does_not_modify_inputs(cancer):
    X, y = cancer
    Xc, yc, sw = X.copy(), y.copy(), np.ones(len(y))
    LogisticRegression().fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)
    np.testing.assert_array_equal(sw, 1)


@pytest.mark.parametrize(
    ("kwargs", "X", "y", "match"),
    [
        ({}, np.ones((3, 2)), [0, 1], "inconsistent numbers of samples"),
        ({}, np.ones((3, 2)), [1, 1, 1], "only one class"),
        ({}, np.array([[0.0, np.nan], [1, 2]]), [0, 1], "NaN"),
        ({}, np.array([[0.0, np.inf], [1, 2]]), [0, 1], "infinity"),
        ({"loss": "hinge"}, np.eye(2), [0, 1], "loss must be one of"),
        ({"loss": crossent.kl_divergence}, np.eye(2), [0, 1], "loss must be one of"),
        ({"loss": crossent.binary_cross_entropy}, np.eye(3), [0, 1, 2], "binary"),
        ({"solver": "saga"}, np.eye(2), [0, 1], "solver must be one of"),
        ({"alpha": -1.0}, np.eye(2), [0, 1], "alpha must lie in"),
        ({"alpha": np.inf}, np.eye(2), [0, 1], "alpha must lie in"),
        ({"momentum": 1.0, "solver": "sgd"}, np.eye(2), [0, 1], r"momentum must lie in \[0, 1\)"),
        ({"l1_ratio": 2.0}, np.eye(2), [0, 1], "l1_ratio must lie in"),
        ({"penalty": "l3"}, np.eye(2), [0, 1], "penalty must be one of"),
        ({"solver": "newton", "penalty": "l1"}, np.eye(2), [0, 1], "newton"),
        ({"class_weight": "auto"}, np.eye(2), [0, 1], "class_weight"),
        # these had fitted without a word: coefficients of 4000, or nothing learnt
        ({"class_weight": {0: 1, 1: -1}}, np.eye(2), [0, 1], "class_weight must be finite"),
        ({"solver": "sgd", "learning_rate": 0.0}, np.eye(2), [0, 1], "learning_rate must lie"),
        ({"loss_params": {"from_logits": False}}, np.eye(2), [0, 1], "cannot set 'from_logits'"),
        ({"loss_params": {"bogus": 1}}, np.eye(2), [0, 1], "has no option 'bogus'"),
    ],
)
def test_bad_input_raises(kwargs, X, y, match):
    with pytest.raises(ValueError, match=match):
        LogisticRegression(**kwargs).fit(X, y)


def test_predict_errors(cancer):
    X, y = cancer
    with pytest.raises(NotFittedError):
        LogisticRegression().predict(X)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :5])


def test_zero_weight_mini_batches_are_harmless(cancer):
    X, y = cancer
    sw = np.zeros(len(y))
    sw[::10] = 1.0  # most mini-batches of 4 rows carry no weight at all
    model = LogisticRegression(solver="sgd", batch_size=4, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, sample_weight=sw)
    assert np.all(np.isfinite(model.coef_))
    assert model.score(X, y) > 0.9


def _weighted_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_one_row_batches_keep_the_weights(solver):
    # each mini-batch had been normalised by its own weight total, which cancels the weight of
    # a one-row batch: class weights had changed nothing
    X, y = _weighted_problem()
    cw = {0: 1, 1: 10}
    optimum = LogisticRegression(class_weight=cw, alpha=1e-3, tol=1e-10).fit(X, y).intercept_
    unweighted = LogisticRegression(alpha=1e-3, tol=1e-10).fit(X, y).intercept_
    kw = dict(solver=solver, batch_size=1, alpha=1e-3, max_iter=40, learning_rate=0.005,
              random_state=0, n_iter_no_change=1000)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sgd = LogisticRegression(class_weight=cw, **kw).fit(X, y).intercept_
        same = LogisticRegression(**kw).fit(X, y, sample_weight=np.where(y == 1, 10.0, 1.0))
    assert abs(sgd[0] - optimum[0]) < 0.1 * abs(optimum[0] - unweighted[0])
    np.testing.assert_allclose(same.intercept_, sgd, rtol=1e-12)


def test_partial_fit_row_by_row_keeps_the_weights():
    X, y = _weighted_problem()
    cw = {0: 1, 1: 10}
    optimum = LogisticRegression(class_weight=cw, alpha=1e-3, tol=1e-10).fit(X, y).intercept_
    unweighted = LogisticRegression(alpha=1e-3, tol=1e-10).fit(X, y).intercept_
    model = LogisticRegression(solver="sgd", learning_rate=0.005, alpha=1e-3, class_weight=cw)
    rng = np.random.default_rng(1)
    for _ in range(40):
        for i in rng.permutation(len(y)):
            model.partial_fit(X[i : i + 1], y[i : i + 1], classes=[0, 1])
    assert abs(model.intercept_[0] - optimum[0]) < 0.1 * abs(optimum[0] - unweighted[0])


def test_partial_fit_refuses_balanced_class_weights():
    X, y = _weighted_problem()
    model = LogisticRegression(solver="sgd", class_weight="balanced")
    with pytest.raises(ValueError, match="'balanced' is not supported by partial_fit"):
        model.partial_fit(X, y, classes=[0, 1])


def test_weights_whose_sum_overflows_are_refused():
    X, y = _weighted_problem()
    with pytest.raises(ValueError, match="sums to infinity"):
        LogisticRegression().fit(X, y, sample_weight=np.full(len(y), 1e307))
