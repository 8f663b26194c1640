"""Boosting objectives: reproduce the built-in objectives, hessian policies, init scores."""

import warnings

import numpy as np
import pytest
from scipy import optimize

import crossent
from crossent import objectives


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6))
    logits = X @ rng.normal(size=(6, 3)) + np.array([0.5, 0.0, -0.5])
    y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    return X, y, (y == 1).astype(int)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _start(obj, y):
    c = obj.init_score(y)
    return np.full(len(y), c) if np.ndim(c) == 0 else np.tile(c, (len(y), 1))


# -- reproduction of the built-in objectives ------------------------------------------------


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_sklearn_estimators_take_the_sklearn_objective(data, library, n_classes):
    # The native objective(preds, dataset) had met "'numpy.ndarray' object has no attribute
    # 'get_label'" in XGBClassifier / LGBMClassifier, which call f(y_true, y_pred, weight).
    lib = pytest.importorskip(library)
    X, y3, y2 = data
    y = y2 if n_classes == 2 else y3
    w = np.random.default_rng(5).uniform(0.5, 2.0, size=len(y))
    obj = getattr(objectives, library)(n_classes=n_classes)
    start = _start(obj, y)
    builtin = {
        ("xgboost", 2): "binary:logistic",
        ("xgboost", 3): "multi:softprob",
        ("lightgbm", 2): "binary",
        ("lightgbm", 3): "multiclass",
    }[library, n_classes]
    models = []
    for objective in (obj.sklearn_objective, builtin):
        if library == "xgboost":
            model = lib.XGBClassifier(objective=objective, n_estimators=10, n_jobs=1)
            model.fit(X, y, sample_weight=w, base_margin=start)
            raw = model.predict(X, output_margin=True, base_margin=start)
        else:
            model = lib.LGBMClassifier(objective=objective, n_estimators=10, verbose=-1, n_jobs=1)
            model.fit(X, y, sample_weight=w, init_score=start)
            raw = model.predict(X, raw_score=True) + start
        models.append(obj.link(raw))
    np.testing.assert_allclose(models[0], models[1], atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_xgboost_cross_entropy_reproduces_builtin(data, n_classes):
    xgb = pytest.importorskip("xgboost")
    X, y3, y2 = data
    y = y2 if n_classes == 2 else y3
    params = {"max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1}
    builtin = "binary:logistic" if n_classes == 2 else "multi:softprob"
    if n_classes > 2:
        params["num_class"] = n_classes
    ref = xgb.train({**params, "objective": builtin}, xgb.DMatrix(X, y), 30)
    obj = objectives.xgboost(n_classes=n_classes)
    margin = _start(obj, y)
    train = xgb.DMatrix(X, y, base_margin=margin)
    booster = xgb.train(
        {**params, "disable_default_eval_metric": True}, train, 30, obj=obj.objective
    )
    raw = booster.predict(xgb.DMatrix(X, base_margin=margin), output_margin=True)
    np.testing.assert_allclose(obj.link(raw), ref.predict(xgb.DMatrix(X)), atol=1e-6)


def test_xgboost_sample_weights_and_metric(data):
    xgb = pytest.importorskip("xgboost")
    from sklearn.metrics import log_loss

    X, _, y = data
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    params = {"max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1}
    obj = objectives.xgboost()
    margin = np.full(len(y), obj.init_score(y, sample_weight=w))
    ref = xgb.train(
        {**params, "objective": "binary:logistic"},
        xgb.DMatrix(X, y, weight=w, base_margin=margin),
        20,
    )
    train = xgb.DMatrix(X, y, weight=w, base_margin=margin)
    log = {}
    booster = xgb.train(
        {**params, "disable_default_eval_metric": True},
        train,
        20,
        obj=obj.objective,
        custom_metric=obj.metric,
        evals=[(train, "train")],
        evals_result=log,
        verbose_eval=False,
    )
    p = obj.link(booster.predict(train, output_margin=True))
    np.testing.assert_allclose(p, ref.predict(train), atol=1e-6)
    last = log["train"]["crossent_binary_cross_entropy"][-1]
    assert last == pytest.approx(log_loss(y, p, sample_weight=w), rel=1e-5)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_lightgbm_cross_entropy_reproduces_builtin(data, n_classes):
    lgb = pytest.importorskip("lightgbm")
    X, y3, y2 = data
    y = y2 if n_classes == 2 else y3
    params = {
        "num_leaves": 8,
        "learning_rate": 0.3,
        "seed": 0,
        "verbose": -1,
        "num_threads": 1,
        "deterministic": True,
    }
    obj = objectives.lightgbm(n_classes=n_classes)
    margin = _start(obj, y)
    if n_classes == 2:  # the built-in starts from its own average: the log-odds
        ref = lgb.train({**params, "objective": "binary"}, lgb.Dataset(X, y), 30).predict(X)
    else:
        params["num_class"] = n_classes
        ref_booster = lgb.train(
            {**params, "objective": "multiclass"}, lgb.Dataset(X, y, init_score=margin), 30
        )
        ref = _softmax(ref_booster.predict(X, raw_score=True) + margin)
    booster = lgb.train(
        {**params, "objective": obj.objective}, lgb.Dataset(X, y, init_score=margin), 30
    )
    np.testing.assert_allclose(
        obj.link(booster.predict(X, raw_score=True) + margin), ref, atol=1e-6
    )


def test_lightgbm_flat_class_major_layout(data):
    _, y, _ = data
    obj = objectives.lightgbm(n_classes=3)
    z = np.random.default_rng(0).normal(size=(len(y), 3))

    class Data:
        def get_label(self):
            return y.astype(float)

        def get_weight(self):
            return None

    g2, h2 = obj.objective(z, Data())
    g1, h1 = obj.objective(z.T.ravel(), Data())
    np.testing.assert_array_equal(g1, g2.T.ravel())
    np.testing.assert_array_equal(h1, h2.T.ravel())


def test_catboost_binary_reproduces_builtin_and_sign(data):
    cb = pytest.importorskip("catboost")
    X, _, y = data
    X, y = X[:300], y[:300]
    obj = objectives.catboost()
    margin = _start(obj, y)
    base = {
        "iterations": 15,
        "depth": 3,
        "random_seed": 0,
        "verbose": False,
        "thread_count": 1,
        "allow_writing_files": False,
        "learning_rate": 0.3,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = cb.CatBoost({**base, "loss_function": obj.objective, "eval_metric": obj.metric})
        ours.fit(cb.Pool(X, y, baseline=margin))
        ref = cb.CatBoost({**base, "loss_function": "Logloss", "boost_from_average": False})
        ref.fit(cb.Pool(X, y, baseline=margin))
    raw = ours.predict(cb.Pool(X, baseline=margin), prediction_type="RawFormulaVal")
    ref_raw = ref.predict(cb.Pool(X, baseline=margin), prediction_type="RawFormulaVal")
    np.testing.assert_allclose(obj.link(raw), _sigmoid(ref_raw), atol=1e-6)
    # CatBoost maximises: der1 = y - p and der2 = -p(1 - p) for cross-entropy
    z = np.array([-1.0, 0.5])
    ders = obj.objective.calc_ders_range(z, np.array([1.0, 0.0]), None)
    p = _sigmoid(z)
    np.testing.assert_allclose(ders, np.c_[[1, 0] - p, -p * (1 - p)])


def test_catboost_multiclass_trains(data):
    cb = pytest.importorskip("catboost")
    from sklearn.metrics import log_loss

    X, y, _ = data
    X, y = X[:120], y[:120]
    obj = objectives.catboost("focal", n_classes=3, loss_params={"gamma": 1.0})
    margin = _start(obj, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cb.CatBoost(
            {
                "loss_function": obj.objective,
                "eval_metric": obj.metric,
                "classes_count": 3,
                "allow_writing_files": False,
                "iterations": 5,
                "depth": 2,
                "verbose": False,
                "thread_count": 1,
                "random_seed": 0,
                "learning_rate": 0.5,
            }
        )
        model.fit(cb.Pool(X, y, baseline=margin))
    raw = model.predict(cb.Pool(X, baseline=margin), prediction_type="RawFormulaVal")
    assert log_loss(y, obj.link(raw)) < log_loss(y, obj.link(margin))


# -- hessian policies -------------------------------------------------------------------------


def _derivs(obj, y, z, w=None):
    return obj.derivatives.grad_hess(y, z, w)


def test_fisher_equals_exact_for_cross_entropy(data):
    _, y3, y2 = data
    rng = np.random.default_rng(2)
    for y, shape, k in ((y2, (600,), 2), (y3, (600, 3), 3)):
        z = rng.normal(size=shape) * 3
        exact = _derivs(objectives.xgboost(n_classes=k, hessian="exact"), y, z)[1]
        fisher = _derivs(objectives.xgboost(n_classes=k, hessian="fisher"), y, z)[1]
        np.testing.assert_allclose(fisher, exact, rtol=1e-12, atol=1e-15)
    p = _softmax(z)
    np.testing.assert_allclose(exact, 2 * p * (1 - p), rtol=1e-10)  # multi:softprob's bound


def test_focal_hessian_policies():
    """The exact focal hessian goes negative; "clip" floors it; "fisher" is E_y[g^2] (torch)."""
    torch = pytest.importorskip("torch")
    z = np.linspace(-8, 8, 81)
    y = np.ones_like(z)
    kw = {"loss": "focal", "loss_params": {"gamma": 2.0}}
    exact = _derivs(objectives.lightgbm(**kw, hessian="exact"), y, z)[1]
    assert exact.min() < 0  # a confidently wrong positive: negative curvature
    clipped = _derivs(objectives.lightgbm(**kw, hessian="clip", hessian_floor=1e-3), y, z)[1]
    np.testing.assert_array_equal(clipped, np.maximum(exact, 1e-3))
    auto = objectives.lightgbm(**kw)
    assert auto.hessian == "clip"
    np.testing.assert_array_equal(_derivs(auto, y, z)[1], np.maximum(exact, 1e-6))
    fisher = _derivs(objectives.lightgbm(**kw, hessian="fisher"), y, z)[1]

    def grad(label):
        zt = torch.tensor(z, requires_grad=True)
        p = torch.sigmoid(zt)
        p_t = p if label == 1 else 1 - p
        (-((1 - p_t) ** 2) * torch.log(p_t)).sum().backward()
        return zt.grad.numpy()

    p = _sigmoid(z)
    expected = p * grad(1) ** 2 + (1 - p) * grad(0) ** 2
    np.testing.assert_allclose(fisher, expected, rtol=1e-9, atol=1e-300)
    assert np.all(fisher >= 0)


@pytest.mark.parametrize(
    ("loss", "params", "k"),
    [
        ("cross_entropy", {"pos_weight": 3.0}, 2),
        ("focal", {"gamma": 2.0, "alpha": 0.5}, 2),
        ("cross_entropy", {"class_weight": [2.0, 0.5, 1.0]}, 3),
        ("focal", {"gamma": 1.0, "alpha": [2.0, 2.0, 2.0], "temperature": 2.0}, 3),
    ],
)
def test_fisher_hessian_scales_with_the_loss_weights(data, loss, params, k):
    # E_y[g^2] is quadratic in a weight, the gradient linear: the Newton step had scaled as
    # 1 / weight (alpha = 0.5 doubled it); the weights now factor out, as the observed label's
    _, y3, y2 = data
    y = y3 if k == 3 else y2
    z = np.random.default_rng(4).normal(size=(600, 3) if k == 3 else 600)
    kw = {"n_classes": k, "multiclass_scale": 1.0}
    weighted = objectives.xgboost(loss, loss_params=params, hessian="fisher", **kw)
    plain = {key: v for key, v in params.items() if key not in ("alpha", "class_weight")}
    plain.pop("pos_weight", None)
    unweighted = objectives.xgboost(loss, loss_params=plain, hessian="fisher", **kw)
    h, h_plain = _derivs(weighted, y, z)[1], _derivs(unweighted, y, z)[1]
    g, g_plain = _derivs(weighted, y, z)[0], _derivs(unweighted, y, z)[0]
    with np.errstate(invalid="ignore", divide="ignore"):  # the same factor on both
        np.testing.assert_allclose(h / h_plain, np.where(g_plain != 0, g / g_plain, h / h_plain))
    if loss != "focal":  # and for cross-entropy, weighted or not, the exact hessian
        exact = objectives.xgboost(loss, loss_params=params, hessian="exact", **kw)
        np.testing.assert_allclose(h, _derivs(exact, y, z)[1], rtol=1e-12, atol=1e-15)


def test_temperature_in_link_fisher_and_z_loss_init_score():
    # the model trained with a temperature is softmax(z / T): the link had returned softmax(z)
    # (probabilities of a model never trained) and the Fisher hessian used them too; with a
    # z-loss the best constant has lse = 0, which the centring had moved (loss 1.79, not 0.90)
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    freq = np.array([0.6, 0.3, 0.1])
    tempered = objectives.xgboost(n_classes=3, loss_params={"temperature": 2.0})
    np.testing.assert_allclose(tempered.link(tempered.init_score(y)[None]), [freq], rtol=1e-7)
    z = np.random.default_rng(6).normal(size=(100, 3))
    fisher = objectives.xgboost(
        n_classes=3, loss_params={"temperature": 2.0}, hessian="fisher", multiclass_scale=1.0
    )
    exact = objectives.xgboost(
        n_classes=3, loss_params={"temperature": 2.0}, hessian="exact", multiclass_scale=1.0
    )
    np.testing.assert_allclose(_derivs(fisher, y, z)[1], _derivs(exact, y, z)[1], rtol=1e-10)
    with_z = objectives.xgboost(n_classes=3, loss_params={"z_loss": 0.5}).init_score(y)
    np.testing.assert_allclose(with_z, np.log(freq), atol=1e-7)


@pytest.mark.parametrize(
    ("loss", "params", "k"),
    [
        (crossent.categorical_focal_loss, {"gamma": 0.5}, 3),
        (crossent.categorical_cross_entropy, {"label_smoothing": 0.1}, 3),
        (crossent.binary_cross_entropy, {"pos_weight": 4.0, "label_smoothing": 0.2}, 2),
    ],
)
def test_gradients_are_weighted_and_match_core(data, loss, params, k):
    _, y3, y2 = data
    y = y3 if k == 3 else y2
    rng = np.random.default_rng(3)
    z = rng.normal(size=(600, 3) if k == 3 else 600)
    w = rng.uniform(0, 2, 600)
    obj = objectives.lightgbm(
        loss, n_classes=k, loss_params=params, hessian="exact", multiclass_scale=1.0
    )
    g, h = _derivs(obj, y, z, w)
    y_core = y if k == 3 else y.astype(float)
    _, g_ref, h_ref = crossent.value_grad_hess(loss)(
        y_core, z, from_logits=True, sample_weight=w, reduction="none", **params
    )
    np.testing.assert_allclose(g, g_ref, rtol=1e-12)
    np.testing.assert_allclose(h, h_ref, rtol=1e-12)
    # the gradient is that of the library metric's weighted loss sum (finite differences)
    i = (5, 1) if k == 3 else 5
    zp, zm = z.copy(), z.copy()
    zp[i] += 1e-6
    zm[i] -= 1e-6
    diff = obj.derivatives.loss(y, zp, w)[0] - obj.derivatives.loss(y, zm, w)[0]
    assert diff / 2e-6 == pytest.approx(g[i], rel=1e-6, abs=1e-9)


# -- init scores and links ------------------------------------------------------------------


def test_cross_entropy_init_score_is_log_odds(data):
    _, y3, y2 = data
    assert objectives.xgboost().init_score(y2) == pytest.approx(
        np.log(y2.mean() / (1 - y2.mean())), rel=1e-8
    )
    c = objectives.lightgbm(n_classes=3).init_score(y3)
    freq = np.bincount(y3) / len(y3)
    np.testing.assert_allclose(_softmax(c[None, :])[0], freq, rtol=1e-7)
    assert abs(c.sum()) < 1e-12  # centred, as XGBoost's multi:softprob intercept


def test_focal_init_score_minimises_focal_loss():
    y = (np.random.default_rng(5).uniform(size=500) < 0.1).astype(float)

    def focal(c):  # by hand, Lin et al. eq. 5 with gamma = 2
        p = _sigmoid(c)
        return np.mean(-y * (1 - p) ** 2 * np.log(p) - (1 - y) * p**2 * np.log(1 - p))

    best = optimize.minimize_scalar(
        focal, bounds=(-10, 10), method="bounded", options={"xatol": 1e-10}
    ).x
    c = objectives.catboost("focal", loss_params={"gamma": 2.0}).init_score(y)
    assert c == pytest.approx(best, abs=1e-6)
    # at 1 positive in 2000 (gamma = 3) L-BFGS's default ftol had stopped 8.5e-5 short
    rare = np.zeros(2000)
    rare[0] = 1.0
    obj = objectives.xgboost("focal", loss_params={"gamma": 3.0})
    root = optimize.brentq(
        lambda c: obj.derivatives.grad_hess(rare, np.full(2000, c))[0].sum(), -6, 0
    )
    assert obj.init_score(rare) == pytest.approx(root, abs=1e-7)
    assert abs(c - np.log(0.1 / 0.9)) > 0.5  # focal loss is not proper: not the log-odds


def test_link():
    obj = objectives.xgboost(n_classes=3)
    z = np.array([[0.0, 1.0, -1.0]])
    np.testing.assert_allclose(obj.link(z), _softmax(z))
    np.testing.assert_allclose(objectives.xgboost().link(np.array([0.3])), _sigmoid(0.3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "hinge"}, "loss must be one of"),
        ({"loss": crossent.kl_divergence}, "loss must be one of"),
        ({"loss": crossent.binary_focal_loss, "n_classes": 3}, "binary"),
        ({"n_classes": 1}, "n_classes"),
        ({"hessian": "bfgs"}, "hessian must be one of"),
        ({"hessian_floor": 0.0}, "hessian_floor"),
        ({"multiclass_scale": -1.0}, "multiclass_scale"),
        # loss_params had been checked on first use only, and "out" had been written into
        ({"loss_params": {"out": np.zeros(4)}}, "loss_params cannot set 'out'"),
        ({"loss_params": {"reduction": "sum"}}, "loss_params cannot set 'reduction'"),
        ({"loss_params": {"bogus": 1}}, "binary_cross_entropy has no option 'bogus'"),
        # the metric had counted the ignored rows in its mean (0.77 against the loss's 1.14)
        ({"loss_params": {"ignore_index": 1}, "n_classes": 3}, "cannot set 'ignore_index'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        objectives.xgboost(**kwargs)
    with pytest.raises(ValueError, match=match):  # had been a ZeroDivisionError for n_classes=1
        objectives.lightgbm(**kwargs)


def test_options_that_are_not_numbers_get_a_clear_type_error():
    # a string floor had met NumPy's "ufunc 'isfinite' not supported"
    for kwargs in ({"hessian_floor": "1e-3"}, {"multiclass_scale": "2", "n_classes": 3}):
        with pytest.raises(TypeError, match="must be a real number, got str"):
            objectives.xgboost(**kwargs)


def test_bad_labels_and_margins():
    obj = objectives.xgboost(n_classes=3)
    with pytest.raises(ValueError, match="class indices"):
        obj.derivatives.grad_hess(np.array([0, 3]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="raw margins"):
        obj.derivatives.grad_hess(np.array([0, 1]), np.zeros((2, 2)))
    # one-hot or out-of-range binary labels had given init scores of 0; text had been parsed
    binary = objectives.xgboost()
    with pytest.raises(ValueError, match="one per row"):
        binary.init_score(np.eye(2)[[0, 1, 1, 1]])
    with pytest.raises(ValueError, match=r"binary labels must lie in \[0, 1\]"):
        binary.init_score(np.array([0.0, 2.0]))
    with pytest.raises(TypeError, match="labels must be numbers"):
        binary.init_score(np.array(["0", "1"]))
    # a metric over rows weighted 0 had raised ZeroDivisionError
    dataset = type(
        "Dataset", (), {"get_label": lambda s: np.zeros(4), "get_weight": lambda s: np.zeros(4)}
    )
    with pytest.raises(ValueError, match="weights sum to 0"):
        objectives.lightgbm().metric(np.zeros(4), dataset())
    with pytest.raises(ValueError, match="non-negative"):  # had given negative hessians
        obj.derivatives.grad_hess(np.array([0, 1]), np.zeros((2, 3)), np.array([1.0, -1.0]))


def test_metric_is_the_loss_own_mean_with_class_weights():
    # the metric had divided by the sample weights alone: 0.9011 against the loss's 0.3794
    y = np.array([0, 1, 2, 1])
    z = np.array([[2.0, 0, -1], [0, 1, 0], [1, 1, 1], [-1, 2, 0]])
    cw, sw = [1.0, 4.0, 0.5], np.array([1.0, 2.0, 0.5, 1.0])
    d = objectives.lightgbm(n_classes=3, loss_params={"class_weight": cw}).derivatives
    total, norm = d.loss(y, z, sw)
    want = crossent.categorical_cross_entropy(
        y, z, from_logits=True, class_weight=cw, sample_weight=sw
    )
    assert total / norm == pytest.approx(float(want), rel=1e-12)


def test_init_score_and_link_refuse_what_training_would():
    obj = objectives.xgboost()
    with pytest.raises(ValueError, match="sample_weight sums to 0"):
        obj.init_score(np.array([0, 1, 1]), sample_weight=np.zeros(3))
    with pytest.raises(ValueError, match="temperature must lie in"):
        objectives.lightgbm(n_classes=3, loss_params={"temperature": -1.0}).link(np.zeros((2, 3)))
