"""Temperature, vector and matrix scaling against scikit-learn, scipy and torch autograd."""

import itertools

import numpy as np
import pytest
import scipy.optimize
from scipy.special import log_expit, log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from crossent.calibration import (
    MatrixScaling,
    TemperatureScaling,
    TemperatureStatistics,
    VectorScaling,
    fit_temperature_from_statistics,
    fit_temperature_streaming,
)


def _overconfident(n=400, k=5, seed=0, scale=3.0):
    """Labels drawn from softmax(true logits); the model reports scale x true logits."""
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(n, k)) * 1.5
    p = np.exp(log_softmax(true, axis=1))
    y = np.array([rng.choice(k, p=row) for row in p])
    return scale * true + rng.normal(size=(n, k)) * 0.3, y


def _binary(n=400, seed=1, scale=3.0):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=n) * 2
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-true))).astype(int)
    return scale * true, y


class _Logits(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose decision function is its input: lets scikit-learn calibrate
    precomputed logits."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return self.decision_function(X) > 0 if X.shape[1] == 1 else X.argmax(1)

    def decision_function(self, X):
        return X[:, 0] if X.shape[1] == 1 else X


def _sklearn_beta(z, y, sample_weight=None):
    X = z[:, None] if z.ndim == 1 else z
    cal = CalibratedClassifierCV(FrozenEstimator(_Logits().fit(X, y)), method="temperature")
    cal.fit(X, y, sample_weight=sample_weight)
    return float(cal.calibrated_classifiers_[0].calibrators[0].beta_)


def _nll(z, y, t, w=None):
    """Independent NLL of z / t (scipy), weighted mean."""
    w = np.ones(len(y)) if w is None else w
    if z.ndim == 1:
        s = z / t
        rows = -(y * log_expit(s) + (1 - y) * log_expit(-s))
    else:
        rows = -log_softmax(z / t, axis=1)[np.arange(len(y)), y]
    return np.sum(w * rows) / np.sum(w)


@pytest.mark.filterwarnings("ignore:Since FrozenEstimator")  # weights go to the calibrator only
def test_temperature_agrees_with_scikit_learn_multiclass():
    z, y = _overconfident()
    w = np.random.default_rng(2).uniform(0.2, 2.0, size=len(y))
    for weights in (None, w):
        ts = TemperatureScaling().fit(z, y, sample_weight=weights)
        assert ts.temperature_ > 1.5  # over-confident logits get cooled down
        assert 1 / ts.temperature_ == pytest.approx(_sklearn_beta(z, y, weights), abs=1e-6)


def test_temperature_agrees_with_scikit_learn_binary_decision_values():
    z, y = _binary()
    ts = TemperatureScaling().fit(z, y)
    # scikit-learn turns a decision value z into the two-class logits (-z, z)
    assert 1 / (2 * ts.temperature_) == pytest.approx(_sklearn_beta(z, y), abs=1e-6)
    two = TemperatureScaling().fit(np.stack([np.zeros_like(z), z], 1), y)
    assert two.temperature_ == pytest.approx(ts.temperature_, rel=1e-9)


@pytest.mark.parametrize("problem", [_overconfident, _binary])
def test_nll_at_least_as_low_as_lbfgs_from_1_5(problem):
    z, y = problem()
    ts = TemperatureScaling().fit(z, y)
    res = scipy.optimize.minimize(
        lambda u: _nll(z, y, np.exp(u[0])), x0=[np.log(1.5)], method="L-BFGS-B"
    )
    assert ts.nll_ == pytest.approx(_nll(z, y, ts.temperature_), abs=1e-13)
    assert ts.nll_ <= res.fun + 1e-14
    assert ts.n_iter_ < 20


def test_streaming_equals_in_memory():
    z, y = _overconfident(n=500, seed=3)
    w = np.random.default_rng(3).uniform(0.1, 3.0, size=500)
    cuts = [0, 1, 3, 200, 207, 499, 500]

    def chunks():
        for lo, hi in itertools.pairwise(cuts):
            yield z[lo:hi], y[lo:hi], w[lo:hi]

    passes = []

    def counted():
        passes.append(1)
        return chunks()

    streamed = fit_temperature_streaming(counted)
    memory = TemperatureScaling().fit(z, y, sample_weight=w)
    assert streamed.temperature_ == pytest.approx(memory.temperature_, rel=1e-8, abs=0)
    assert streamed.nll_ == pytest.approx(memory.nll_, abs=1e-12)
    assert len(passes) == streamed.n_iter_
    np.testing.assert_allclose(streamed.predict_proba(z), memory.predict_proba(z), atol=1e-8)
    zb, yb = _binary(seed=4)
    streamed = fit_temperature_streaming(lambda: [(zb[:150], yb[:150]), (zb[150:], yb[150:])])
    assert streamed.binary_
    assert streamed.temperature_ == pytest.approx(TemperatureScaling().fit(zb, yb).temperature_)


@pytest.mark.parametrize("binary", [False, True])
def test_temperature_statistics_derivatives_match_torch(binary):
    torch = pytest.importorskip("torch")
    z, y = _binary(n=60, seed=5) if binary else _overconfident(n=60, k=4, seed=5)
    w = np.random.default_rng(5).uniform(0.5, 2.0, size=60)
    t = 1.7
    stats = TemperatureStatistics(t).update(z[:25], y[:25], w[:25])
    stats.merge(TemperatureStatistics(t).update(z[25:], y[25:], w[25:]))
    zt, yt, wt = torch.tensor(z), torch.tensor(y), torch.tensor(w)

    def nll(u):
        s = zt * torch.exp(-u)
        if binary:
            rows = torch.nn.functional.binary_cross_entropy_with_logits(
                s, yt.double(), reduction="none"
            )
        else:
            rows = torch.nn.functional.cross_entropy(s, yt, reduction="none")
        return (wt * rows).sum() / wt.sum()

    u = torch.tensor(np.log(t), dtype=torch.float64, requires_grad=True)
    value = nll(u)
    (g,) = torch.autograd.grad(value, u, create_graph=True)
    (h,) = torch.autograd.grad(g, u)
    assert stats.nll == pytest.approx(value.item(), abs=1e-12)
    assert stats.grad == pytest.approx(g.item(), abs=1e-12)
    assert stats.hess == pytest.approx(h.item(), abs=1e-12)
    assert stats.n_samples == 60


def test_probabilities_are_refused_as_logits_unless_told():
    z, y = _overconfident(n=100, seed=6)
    p = np.exp(log_softmax(z, axis=1))
    with pytest.raises(ValueError, match=r"looks like probabilities.*input='probabilities'"):
        TemperatureScaling().fit(p, y)
    with pytest.raises(ValueError, match="looks like probabilities"):
        VectorScaling().fit(p, y)
    with pytest.raises(ValueError, match="looks like probabilities"):
        TemperatureScaling().fit(1 / (1 + np.exp(-z[:, 0])), (y == 0).astype(int))
    from_p = TemperatureScaling(input="probabilities").fit(p, y)
    from_z = TemperatureScaling().fit(z, y)
    assert from_p.temperature_ == pytest.approx(from_z.temperature_, rel=1e-9)
    np.testing.assert_allclose(from_p.predict_proba(p), from_z.predict_proba(z), atol=1e-9)


def test_transform_and_predict_proba():
    z, y = _overconfident(n=200, seed=7)
    ts = TemperatureScaling().fit(z, y)
    z32 = z.astype(np.float32)
    out = ts.transform(z32)
    assert out.dtype == np.float32 and out.shape == z.shape
    np.testing.assert_allclose(out, z / ts.temperature_, rtol=1e-6)
    z16 = z.astype(np.float16)  # computed in float32, returned in float16 (had been float32)
    assert ts.transform(z16).dtype == ts.predict_proba(z16).dtype == np.float16
    np.testing.assert_allclose(ts.transform(z16), z16 / ts.temperature_, rtol=1e-3)
    proba = ts.predict_proba(z)
    np.testing.assert_allclose(proba, np.exp(log_softmax(z / ts.temperature_, axis=1)), atol=1e-15)
    np.testing.assert_array_equal(proba.argmax(1), z.argmax(1))  # accuracy unchanged
    zb, yb = _binary(n=50, seed=8)
    proba = TemperatureScaling().fit(zb, yb).predict_proba(zb)
    assert proba.shape == (50, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-15)


def test_separable_data_warns_at_the_bound():
    z = np.array([[3.0, -3.0], [-2.0, 2.0], [4.0, 0.0], [0.0, 5.0]])
    y = np.array([0, 1, 0, 1])
    with pytest.warns(RuntimeWarning, match="separate the classes"):
        ts = TemperatureScaling().fit(z, y)
    assert ts.temperature_ < 0.5 and ts.nll_ < 1e-12  # the NLL vanishes as T -> 0
    with pytest.warns(RuntimeWarning, match="towards T = infinity"):
        ts = TemperatureScaling().fit(z, 1 - y)  # anti-correlated: 1/T -> 0
    assert ts.temperature_ == pytest.approx(np.exp(10.0))


def test_matrix_scaling_is_multinomial_logistic_regression_on_logits():
    z, y = _overconfident(n=300, k=3, seed=9)
    ms = MatrixScaling().fit(z, y)
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(z, y)
    np.testing.assert_allclose(ms.predict_proba(z), lr.predict_proba(z), atol=1e-6)
    assert ms.coef_.shape == (3, 3)


def test_vector_scaling_binary_is_platt_and_multiclass_is_stationary():
    zb, yb = _binary(n=300, seed=10)
    vs = VectorScaling().fit(zb, yb)
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(zb[:, None], yb)
    np.testing.assert_allclose(vs.predict_proba(zb), lr.predict_proba(zb[:, None]), atol=1e-6)
    torch = pytest.importorskip("torch")
    z, y = _overconfident(n=300, k=4, seed=11)
    w = np.random.default_rng(11).uniform(0.5, 2, size=300)
    vs = VectorScaling().fit(z, y, sample_weight=w)
    a = torch.tensor(vs.coef_, requires_grad=True)
    b = torch.tensor(vs.intercept_, requires_grad=True)
    rows = torch.nn.functional.cross_entropy(
        torch.tensor(z) * a + b, torch.tensor(y), reduction="none"
    )
    loss = (torch.tensor(w) * rows).sum() / w.sum()
    loss.backward()
    assert loss.item() == pytest.approx(vs.nll_, abs=1e-12)
    assert np.abs(np.concatenate([a.grad.numpy(), b.grad.numpy()])).max() < 1e-6
    # vector scaling has temperature scaling as a special case: never a worse fit
    assert vs.nll_ <= TemperatureScaling().fit(z, y, sample_weight=w).nll_ + 1e-12


@pytest.mark.parametrize("scaler", [TemperatureScaling, VectorScaling, MatrixScaling])
def test_bad_input(scaler):
    z, y = _overconfident(n=20, k=3, seed=12)
    bad = z.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        scaler().fit(bad, y)
    with pytest.raises(ValueError, match=r"class index 3, outside \[0, 3\)"):
        scaler().fit(z, np.where(y == 0, 3, y))
    with pytest.raises(ValueError, match="empty"):
        scaler().fit(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(ValueError, match="input must be one of"):
        scaler(input="scores").fit(z, y)
    with pytest.raises(ValueError, match="max_iter must be at least 1"):
        scaler(max_iter=0).fit(z, y)
    with pytest.raises(ValueError, match="not fitted"):
        scaler().transform(z)
    with pytest.raises(ValueError, match=r"fitted on \(n, 3\)"):
        scaler().fit(z, y).predict_proba(z[:, :2])


def _minimised_binary_temperature(z, y):
    """Independent reference: the T minimising the binary NLL of z / T (scipy, in log T)."""
    res = scipy.optimize.minimize_scalar(
        lambda u: _nll(z, y, np.exp(u)), bounds=(-5, 5), method="bounded", options={"xatol": 1e-10}
    )
    return float(np.exp(res.x))


def test_streamed_binary_logits_guarded_as_a_whole_not_per_chunk():
    zb, yb = _binary(n=300, seed=15)
    order = np.argsort(zb)  # sorted: the chunks around 0 hold logits all in [0, 1]
    zb, yb = zb[order], yb[order]
    cuts = [0, 100, int(np.searchsorted(zb, 0.0)), int(np.searchsorted(zb, 1.0)), 300]
    chunks = [(zb[a:b], yb[a:b]) for a, b in itertools.pairwise(cuts)]
    assert any(np.all((c >= 0) & (c <= 1)) for c, _ in chunks)
    streamed = fit_temperature_streaming(lambda: iter(chunks))
    expected = _minimised_binary_temperature(zb, yb)
    assert streamed.temperature_ == pytest.approx(expected, rel=1e-6)
    # every chunk, hence the whole stream, in [0, 1]: refused unless the caller vouches for it
    rng = np.random.default_rng(16)
    z = rng.uniform(size=240)
    y = (rng.uniform(size=240) < 1 / (1 + np.exp(-4 * z))).astype(int)
    unit = [(z[a : a + 60], y[a : a + 60]) for a in range(0, 240, 60)]
    with pytest.raises(ValueError, match="looks like probabilities"):
        fit_temperature_streaming(lambda: iter(unit))
    trusted = fit_temperature_streaming(lambda: iter(unit), check_input=False)
    assert trusted.temperature_ == pytest.approx(_minimised_binary_temperature(z, y), rel=1e-6)
    np.testing.assert_allclose(
        trusted.predict_proba(z[:5])[:, 1], 1 / (1 + np.exp(-z[:5] / trusted.temperature_))
    )


def test_temperature_from_statistics_of_merged_shards():
    z, y = _overconfident(n=300, k=4, seed=17)
    shards = [(z[:50], y[:50]), (z[50:], y[50:])]

    def statistics(t):
        parts = [TemperatureStatistics(t).update(*shard) for shard in shards]
        return parts[0].merge(parts[1])

    fitted = fit_temperature_from_statistics(statistics)
    res = scipy.optimize.minimize_scalar(
        lambda u: _nll(z, y, np.exp(u)), bounds=(-5, 5), method="bounded", options={"xatol": 1e-10}
    )
    assert fitted.temperature_ == pytest.approx(np.exp(res.x), rel=1e-6)
    assert fitted.nll_ == pytest.approx(_nll(z, y, fitted.temperature_), abs=1e-12)
    assert not fitted.binary_ and fitted.n_classes_ == 4
    stats = TemperatureStatistics(1.0, check_input=False).update(np.array([0.2, 0.7]), [0, 1])
    assert stats.looks_like_probabilities
    assert not stats.update(np.array([1.5]), [1]).looks_like_probabilities
    with pytest.raises(TypeError, match="must return TemperatureStatistics"):
        fit_temperature_from_statistics(lambda t: 1.0)
    with pytest.raises(ValueError, match="cannot merge statistics of input"):
        TemperatureStatistics(1.0).merge(TemperatureStatistics(1.0, input="probabilities"))


def test_streaming_errors():
    with pytest.raises(TypeError, match="zero-argument callable"):
        fit_temperature_streaming([(np.zeros((2, 2)), np.zeros(2, int))])
    with pytest.raises(ValueError, match="produced no data"):
        fit_temperature_streaming(lambda: iter(()))
    z, y = _overconfident(n=20, k=3, seed=13)
    with pytest.raises(ValueError, match="unlike the earlier chunks"):
        TemperatureStatistics(1.0).update(z, y).update(z[:, 0], (y == 0).astype(int))
    with pytest.raises(ValueError, match="cannot merge statistics at temperature"):
        TemperatureStatistics(1.0).merge(TemperatureStatistics(2.0))
    with pytest.raises(ValueError, match="temperature must lie in"):
        TemperatureStatistics(0.0)


def test_separable_data_already_vanishing_at_t_1_warns():
    # with large logits the NLL is below the cut-off at T = 1 already: the fit stopped there
    # without the warning that smaller logits of the same data gave
    z = 30 * np.array([[1.0, -1.0], [-1.0, 1.0], [2.0, -2.0], [-0.5, 0.5]])
    with pytest.warns(RuntimeWarning, match="separate the classes"):
        TemperatureScaling().fit(z, np.array([0, 1, 0, 1]))


def test_streamed_chunks_of_zero_weight_add_nothing():
    z, y = _overconfident(n=60)
    w = np.ones(60)
    w[20:40] = 0.0
    chunks = [(z[:20], y[:20], w[:20]), (z[20:40], y[20:40], w[20:40]), (z[40:], y[40:], w[40:])]
    streamed = fit_temperature_streaming(lambda: chunks)
    memory = TemperatureScaling().fit(z, y, sample_weight=w)
    assert streamed.temperature_ == pytest.approx(memory.temperature_, rel=1e-12)


def test_a_refused_fit_leaves_the_scaler_as_it_was():
    # the class count of a refused input had been recorded before its labels were checked
    z, y = _overconfident(n=60, k=3)
    ts = TemperatureScaling().fit(z, y)
    with pytest.raises(ValueError, match="class index 7"):
        ts.fit(z[:, :2], np.full(60, 7))
    assert ts.n_classes_ == 3 and ts.transform(z).shape == z.shape
    fresh = TemperatureScaling()
    with pytest.raises(ValueError, match="class index 7"):
        fresh.fit(z, np.full(60, 7))
    with pytest.raises(ValueError, match="not fitted"):
        fresh.transform(z)
