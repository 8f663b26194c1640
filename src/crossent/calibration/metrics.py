r"""Calibration metrics: expected calibration error, Brier score and negative log-likelihood.

Binning (shared with :class:`~crossent.calibration.CalibrationAccumulator`)
--------------------------------------------------------------------------
``n_bins`` = :math:`M` bins with edges :math:`0 = e_0 < e_1 < \dots < e_M = 1`; bin
:math:`m` holds the scores :math:`s` with :math:`e_{m-1} < s \le e_m` (Guo et al. 2017:
intervals open on the left, closed on the right), except that the first bin also holds
:math:`s = 0`, so a score of exactly 0 or exactly 1 always lands in a real bin.
``strategy="uniform"`` takes :math:`e_m = m / M`; ``"quantile"`` takes the empirical quantiles
of the (unweighted) scores, so bins hold about equally many examples (Nixon et al. 2019;
Kumar et al. 2019 call these equal-mass bins). Quantile edges depend on all the data at once,
so only uniform bins can be accumulated chunk by chunk.

With weights :math:`w_i`, bin :math:`b` has weight :math:`W_b = \sum_{i \in b} w_i`, mean
score :math:`\bar s_b = \sum_{i \in b} w_i s_i / W_b` and observed frequency
:math:`\bar y_b = \sum_{i \in b} w_i y_i / W_b`, and :math:`W = \sum_b W_b`.

Calibration error of one score
------------------------------
* ``norm="l1"``: :math:`\sum_b (W_b / W)\, |\bar y_b - \bar s_b|` (the ECE of Guo et al.);
* ``norm="l2"``: :math:`\bigl(\sum_b (W_b / W)\, (\bar y_b - \bar s_b)^2\bigr)^{1/2}`;
* ``norm="max"``: :math:`\max_{b : W_b > 0} |\bar y_b - \bar s_b|` (the MCE of Naeini et al.).
* ``debias=True`` (``"l2"`` only): Kumar et al.'s (2019) estimator of the squared error,
  :math:`\sum_{b : W_b \ge 2} (W_b / W) \bigl[(\bar y_b - \bar s_b)^2 - \bar y_b(1 - \bar y_b) /
  (W_b - 1)\bigr]`, clipped at 0 before the square root. The plug-in squared error is biased
  upwards by about the binomial variance of :math:`\bar y_b`; this removes it. Weights count
  as frequencies here (:math:`W_b` is the number of examples when unweighted).

Which score (``mode``)
----------------------
* ``"top_label"``: the confidence :math:`\max_k p_{ik}` against the indicator that the
  arg-max (first one on ties) is the label: the ECE of Guo et al. and torchmetrics;
* ``"classwise"``: every class' probability :math:`p_{ik}` against :math:`[y_i = k]`, each
  binned on its own, and the :math:`K` errors averaged (Kull et al. 2019's classwise-ECE);
* ``"marginal"``: Kumar et al.'s marginal calibration error, the :math:`\ell_p` mean over
  classes: :math:`(\frac1K \sum_k \mathrm{CE}_k^p)^{1/p}` for ``"l1"`` (equal to
  ``"classwise"``) and ``"l2"``, :math:`\max_k \mathrm{CE}_k` for ``"max"``.

Bootstrap
---------
``n_bootstrap=R`` adds a percentile interval from :math:`R` Poisson-bootstrap replicates:
replicate :math:`r` weighs example :math:`i` by :math:`w_i \nu_{ir}` with
:math:`\nu_{ir} \sim \mathrm{Poisson}(1)` independent (Hanley and MacGibbon 2006; Chamandy et
al. 2012). Unlike the multinomial bootstrap it needs no knowledge of :math:`n`, which makes
replicates mergeable across chunks. The :math:`\nu` are drawn row by row from
``numpy.random.default_rng(random_state)``: the one-shot functions and a
:class:`~crossent.calibration.CalibrationAccumulator` with the same ``random_state`` fed the
same rows in the same order (in any chunking) give identical replicates. Quantile edges stay
those of the full data in every replicate.

References: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
ICML 2017; Naeini, Cooper and Hauskrecht, AAAI 2015; Kull et al., "Beyond temperature
scaling", NeurIPS 2019; Kumar, Liang and Ma, "Verified Uncertainty Calibration", NeurIPS 2019;
Nixon et al., "Measuring Calibration in Deep Learning", CVPR workshops 2019.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse

from .. import _array, _validation, binary_cross_entropy, categorical_cross_entropy
from . import _inputs

NORMS = ("l1", "l2", "max")
MODES = ("top_label", "classwise", "marginal")
STRATEGIES = ("uniform", "quantile")


@dataclass(frozen=True)
class BootstrapResult:
    """A metric with a bootstrap percentile interval.

    Attributes:
        value: the metric on the data itself (the number returned without bootstrap).
        low, high: the ``(1 - confidence_level) / 2`` and ``(1 + confidence_level) / 2``
            percentiles of the replicates.
        confidence_level: the interval's nominal coverage.
        replicates: the metric on every bootstrap replicate, shape ``(n_bootstrap,)``.
    """

    value: float
    low: float
    high: float
    confidence_level: float
    replicates: np.ndarray

    def __float__(self) -> float:
        return self.value


@dataclass(frozen=True)
class BinStatistics:
    """Per-bin summary behind a reliability diagram (arrays of length ``n_bins``).

    Attributes:
        edges: bin edges, length ``n_bins + 1``; bin ``m`` is ``(edges[m], edges[m + 1]]``.
        count: number of examples per bin (unweighted).
        weight: summed sample weight per bin (equal to ``count`` without weights).
        mean_score: weighted mean predicted probability (confidence) per bin; NaN if empty.
        frequency: weighted observed frequency (accuracy, for top-label) per bin; NaN if
            empty.
    """

    edges: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    mean_score: np.ndarray
    frequency: np.ndarray

    @classmethod
    def from_sums(cls, edges: np.ndarray, count: np.ndarray, sums: np.ndarray) -> BinStatistics:
        """From the data row (weighting 0) of one score of :func:`binned_sums`: ``(3, M)``."""
        weight, score, hit = sums
        filled = weight > 0
        safe = np.where(filled, weight, 1.0)
        nan = np.full_like(weight, np.nan)
        return cls(
            edges,
            count,
            weight,
            np.where(filled, score / safe, nan),
            np.where(filled, hit / safe, nan),
        )


def summarise(values: np.ndarray, confidence_level: float) -> float | BootstrapResult:
    """``values[0]`` as a float, or with an interval from ``values[1:]`` when there are any."""
    if values.shape[0] == 1:
        return float(values[0])
    reps = values[1:]
    tail = 100 * (1 - confidence_level) / 2
    drawn = reps[~np.isnan(reps)]  # NaN: a replicate that drew no rows
    low, high = np.percentile(drawn, [tail, 100 - tail]) if drawn.size else (np.nan, np.nan)
    return BootstrapResult(float(values[0]), float(low), float(high), confidence_level, reps)


def check_confidence_level(value: Any) -> float:
    from .._validation import in_range

    return in_range(value, "confidence_level", 0.0, 1.0, low_open=True, high_open=True)


def replicate_weights(w: np.ndarray, n_bootstrap: int, rng: np.random.Generator | None) -> Any:
    """``(n, 1 + n_bootstrap)`` weights: column 0 is ``w``, the others ``w`` times Poisson(1)."""
    if not n_bootstrap:
        return w[:, None]
    out = np.empty((w.shape[0], 1 + n_bootstrap))
    out[:, 0] = w
    out[:, 1:] = rng.poisson(1.0, size=(w.shape[0], n_bootstrap))
    out[:, 1:] *= w[:, None]
    return out


def check_n_bootstrap(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"n_bootstrap must be an integer or None, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"n_bootstrap must be non-negative, got {value}")
    return int(value)


def uniform_edges(n_bins: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n_bins + 1)


def quantile_edges(scores: np.ndarray, n_bins: int) -> np.ndarray:
    """Edges at the empirical quantiles of ``scores`` (along axis 0), first 0 and last 1."""
    edges = np.quantile(scores, np.linspace(0.0, 1.0, n_bins + 1), axis=0)
    edges[0], edges[-1] = 0.0, 1.0
    return edges


def bin_index(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of every score: ``m`` with ``edges[m] < s <= edges[m + 1]``, 0 also for ``s = 0``."""
    n_bins = edges.shape[0] - 1
    return np.clip(np.searchsorted(edges, scores, side="left") - 1, 0, n_bins - 1)


def top_label(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (max probability) and correctness (arg-max equals label) of every row."""
    predicted = np.argmax(p, axis=1)
    return p[np.arange(p.shape[0]), predicted], (predicted == y).astype(np.float64)


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    return (y[:, None] == np.arange(n_classes)).astype(np.float64)


def bin_counts(index: np.ndarray, n_bins: int) -> np.ndarray:
    """Unweighted number of rows per bin for every score: ``(S, n_bins)`` from ``(n, S)``."""
    n_scores = index.shape[1]
    flat = (index + n_bins * np.arange(n_scores)).ravel()
    return np.bincount(flat, minlength=n_scores * n_bins).reshape(n_scores, n_bins)


def binned_sums(
    index: np.ndarray, scores: np.ndarray, hits: np.ndarray, weights: np.ndarray, n_bins: int
) -> np.ndarray:
    r"""Per-bin sums :math:`(W_b, \sum w s, \sum w y)`, shape ``(3, R, S, n_bins)``.

    ``index``, ``scores``, ``hits``: ``(n, S)`` for ``S`` scores per row (1 for top-label,
    ``K`` for classwise); ``weights``: ``(n, R)`` for ``R`` weightings (data, replicates).

    Sparse matrix products, all weightings at once: for :math:`v` = 1, the score, the outcome,
    the ``(S M, n)`` matrix whose column ``i`` holds :math:`v_{is}` in the rows ``(s, m)`` of
    the bins ``m`` that row ``i``'s scores ``s`` fall in, times the ``(n, R)`` weights. The
    matrices are built in compressed-column form without sorting, and the products add every
    bin's rows in order, as a weighted ``numpy.bincount`` per weighting would.
    """
    n, n_scores = index.shape
    size = n_scores * n_bins
    flat = (index + n_bins * np.arange(n_scores)).ravel()
    pointers = np.arange(0, n_scores * (n + 1), n_scores)
    weights = np.asarray(weights, dtype=np.float64)
    out = np.empty((3, size, weights.shape[1]))
    for j, v in enumerate((np.ones(n * n_scores), scores.ravel(), hits.ravel())):
        indicator = scipy.sparse.csc_matrix((v, flat, pointers), shape=(size, n))
        out[j] = indicator @ weights
    return out.reshape(3, n_scores, n_bins, -1).transpose(0, 3, 1, 2)


def error_from_sums(sums: np.ndarray, norm: str, mode: str, debias: bool) -> np.ndarray:
    """The calibration error of every weighting, shape ``(R,)``, from :func:`binned_sums`.

    A bootstrap replicate that drew no example at all gives NaN (left out of the interval).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return _error_from_sums(sums, norm, mode, debias)


def _error_from_sums(sums: np.ndarray, norm: str, mode: str, debias: bool) -> np.ndarray:
    weight, score, hit = sums
    total = weight[:, :1, :].sum(axis=-1, keepdims=True)  # (R, 1, 1)
    filled = weight > 0
    safe = np.where(filled, weight, 1.0)
    gap = hit - score  # W_b (ybar_b - sbar_b)
    if norm == "l1":
        per_score = np.abs(gap).sum(axis=-1) / total[..., 0]
    elif norm == "max":
        per_score = np.where(filled, np.abs(gap) / safe, 0.0).max(axis=-1)
    else:
        square = np.where(filled, safe * (gap / safe) ** 2, 0.0)  # no gap**2: weights of 1e-200
        if debias:
            enough = weight >= 2
            freq = np.where(filled, hit / safe, 0.0)
            correction = freq * (1 - freq) * weight / np.where(enough, weight - 1, 1.0)
            square = np.where(enough, square - correction, 0.0)
        squared = square.sum(axis=-1) / total[..., 0]  # (R, S)
        if mode == "marginal":
            return np.sqrt(np.maximum(squared.mean(axis=-1), 0.0))
        per_score = np.sqrt(np.maximum(squared, 0.0))
    if norm == "max":  # no filled bin: a replicate with no example (l1, l2: 0 / 0 = NaN)
        per_score = np.where(total[..., 0] > 0, per_score, np.nan)
    if mode == "marginal" and norm == "max":
        return per_score.max(axis=-1)
    return per_score.mean(axis=-1)


def scores_and_hits(y: np.ndarray, p: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """``(n, S)`` scores and outcomes: top-label confidence and correctness, or every class."""
    if mode == "top_label":
        conf, correct = top_label(y, p)
        return conf[:, None], correct[:, None]
    return p, one_hot(y, p.shape[1])


def expected_calibration_error(
    y_true: Any,
    probs: Any,
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
    norm: str = "l1",
    mode: str = "top_label",
    debias: bool = False,
    sample_weight: Any = None,
    n_bootstrap: int | None = None,
    random_state: Any = None,
    confidence_level: float = 0.95,
) -> float | BootstrapResult:
    r"""Binned calibration error: how far predicted probabilities are from observed frequencies.

    With the defaults this is the ECE of Guo et al. (2017):
    :math:`\sum_b \frac{n_b}{n} |\mathrm{acc}_b - \mathrm{conf}_b|` over 15 equal-width bins
    ``(lo, hi]`` of the top-label confidence. Definitions of every option, the bin edges and
    the bootstrap: :mod:`crossent.calibration.metrics`.

    Args:
        y_true: integer labels, shape (n,), in [0, K).
        probs: probabilities, (n,) of class 1 for binary problems or (n, K) with rows summing
            to 1.
        n_bins: number of bins :math:`M \ge 1`.
        strategy: ``"uniform"`` (width :math:`1/M`) or ``"quantile"`` (equal-mass) bins.
        norm: ``"l1"`` (ECE), ``"l2"`` (RMS calibration error) or ``"max"`` (MCE).
        mode: ``"top_label"``, ``"classwise"`` or ``"marginal"``.
        debias: Kumar et al.'s debiased estimator; only with ``norm="l2"``.
        sample_weight: non-negative weights, shape (n,).
        n_bootstrap: number of Poisson-bootstrap replicates; ``None`` or 0 for none.
        random_state: seed or ``numpy.random.Generator`` for the replicates.
        confidence_level: coverage of the bootstrap interval.

    Returns:
        A float; with ``n_bootstrap`` a :class:`BootstrapResult` (``.value``, ``.low``,
        ``.high``, ``.replicates``; ``float(result)`` is ``.value``).

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import expected_calibration_error
        >>> y = np.array([0, 1, 1, 1])
        >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
        >>> round(expected_calibration_error(y, p, n_bins=2), 6)  # one bin: |0.5 - 0.75|
        0.25

    Reference: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017, eq. 3.
    """
    n_bins = _inputs.n_bins(n_bins)
    strategy = _inputs.choice(strategy, "strategy", STRATEGIES)
    norm = _inputs.choice(norm, "norm", NORMS)
    mode = _inputs.choice(mode, "mode", MODES)
    if _validation.flag(debias, "debias") and norm != "l2":
        raise ValueError(f"debias=True is Kumar et al.'s l2 estimator: use norm='l2', not {norm!r}")
    n_bootstrap = check_n_bootstrap(n_bootstrap)
    confidence_level = check_confidence_level(confidence_level)
    y, p, w, _ = _inputs.classification(y_true, probs, sample_weight)
    scores, hits = scores_and_hits(y, p, mode)
    if strategy == "uniform":
        index = bin_index(scores, uniform_edges(n_bins))
    else:
        edges = quantile_edges(scores, n_bins)
        index = np.stack([bin_index(scores[:, k], edges[:, k]) for k in range(scores.shape[1])], 1)
    rng = _inputs.rng(random_state) if n_bootstrap else None
    weights = replicate_weights(w, n_bootstrap, rng)
    values = error_from_sums(binned_sums(index, scores, hits, weights, n_bins), norm, mode, debias)
    return summarise(values, confidence_level)


def brier_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-row Brier score: :math:`\\sum_k (p_k - [y = k])^2`, halved when K = 2."""
    rows = ((p - one_hot(y, p.shape[1])) ** 2).sum(axis=1)
    return rows / 2 if p.shape[1] == 2 else rows


def brier_score(y_true: Any, probs: Any, *, sample_weight: Any = None) -> float:
    r"""Brier score: mean squared distance between the predicted distribution and the outcome.

    Multiclass (K > 2): :math:`\frac{1}{W}\sum_i w_i \sum_k (p_{ik} - [y_i = k])^2` (Brier's
    original score, summed over classes, averaged over rows; in [0, 2]). Binary (probs of
    shape (n,) or (n, 2)): :math:`\frac{1}{W}\sum_i w_i (p_i - y_i)^2` with :math:`p_i` the
    probability of class 1, scikit-learn's ``brier_score_loss`` (half the two-class sum; in
    [0, 1]). Both are what ``brier_score_loss(..., scale_by_half="auto")`` returns.

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import brier_score
        >>> brier_score(np.array([1, 0]), np.array([0.8, 0.4]))
        0.1

    Reference: Brier, "Verification of forecasts expressed in terms of probability",
    Monthly Weather Review 78 (1950).
    """
    y, p, w, _ = _inputs.classification(y_true, probs, sample_weight)
    return float(np.sum(w * brier_rows(y, p)) / np.sum(w))


def negative_log_likelihood(
    y_true: Any, probs: Any, *, from_logits: bool = False, sample_weight: Any = None
) -> float:
    r"""Mean negative log-likelihood (log loss) in nats: :math:`-\frac1W \sum_i w_i \log p_{i y_i}`.

    Computed by :func:`crossent.binary_cross_entropy` for (n,) input (probability or logit of
    class 1) and by :func:`crossent.categorical_cross_entropy` for (n, K) input, so its
    conventions (clipping probabilities to :math:`[\epsilon, 1 - \epsilon]` with the
    :math:`\epsilon` of their dtype, exact log-space evaluation from logits) are theirs. Labels
    are integers (or booleans) in [0, K), and the weights must not all be 0, as in the other
    metrics and in scikit-learn's ``log_loss``. Divide by :math:`\log 2` for bits.

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import negative_log_likelihood
        >>> round(negative_log_likelihood(np.array([1, 0]), np.array([0.8, 0.4])), 6)
        0.366985

    Reference: Gneiting and Raftery, "Strictly Proper Scoring Rules, Prediction, and
    Estimation", JASA 102 (2007).
    """
    if not _validation.flag(from_logits, "from_logits"):
        y, _, w, p = _inputs.classification(
            y_true, probs, sample_weight, hint=_validation.LOGITS_HINT
        )
        return float(w @ nll_rows(y, p) / w.sum())
    z = _inputs.as_numpy(probs)
    _inputs.not_empty(z, "probs")
    z = _validation.predictions(z, _array.namespace(), "probs")
    if z.ndim > 2:
        raise ValueError(
            f"probs must have shape (n,) or (n, K) when they are logits, got {z.shape}"
        )
    y = _inputs.labels(y_true, z.shape[0], 2 if z.ndim == 1 else z.shape[1])
    w = _inputs.sample_weight(sample_weight, z.shape[0])
    return float(w @ nll_rows(y, z, from_logits=True) / w.sum())


def nll_rows(y: np.ndarray, probs: np.ndarray, from_logits: bool = False) -> np.ndarray:
    """Per-row negative log-likelihood (float64) of checked labels and (n,) or (n, K)
    probabilities (or logits), by the binary or categorical cross-entropy."""
    if probs.ndim == 1:
        rows = binary_cross_entropy(y, probs, from_logits=from_logits, reduction="none")
    else:
        rows = categorical_cross_entropy(
            y, probs, from_logits=from_logits, reduction="none", ignore_index=None
        )
    return np.asarray(rows, dtype=np.float64)
