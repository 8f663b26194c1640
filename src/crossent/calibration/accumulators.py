r"""Mergeable accumulators: calibration metrics and mean losses over data seen in chunks.

Every accumulator keeps additive sufficient statistics (per-bin sums of weights, scores and
outcomes; sums of weighted losses), so

* ``update`` consumes a chunk of rows (any size but none, any number of times; a chunk's
  weights may sum to 0, as long as those of all the data do not);
* ``merge`` adds another accumulator's statistics (from another process or machine);
* the results equal the one-shot functions on the concatenated data up to floating-point
  summation order (tested to 1e-12).

Bootstrap replicates are Poisson-weighted (:mod:`crossent.calibration.metrics`), so each
replicate is itself a set of per-bin sums that updates and merges like the data's. The
replicate weights are drawn from the accumulator's own generator, row by row: feeding the
rows in order, in any chunking, reproduces the one-shot ``n_bootstrap`` result with the same
``random_state`` exactly. Accumulators filled in parallel should get *different* seeds (e.g.
``numpy.random.SeedSequence(seed).spawn(n_workers)``); their merge is then a valid Poisson
bootstrap of the union, though not the same draws as a sequential pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import (
    binary_cross_entropy,
    binary_focal_loss,
    categorical_cross_entropy,
    categorical_focal_loss,
)
from .._validation import flag, in_range, index_option
from ..special import sigmoid, softmax
from . import _inputs, metrics
from .metrics import BinStatistics, BootstrapResult


class CalibrationAccumulator:
    r"""Calibration statistics of a classifier, accumulated over chunks and mergeable.

    Keeps, for uniform bins ``(lo, hi]`` (see :mod:`crossent.calibration.metrics`), the
    per-bin sums of weight, predicted probability and outcome for the top-label confidence
    and for every class, plus summed Brier score, log loss and correctness. Memory is
    :math:`O((1 + R)\, K M)` for :math:`K` classes, :math:`M` bins and :math:`R` bootstrap
    replicates, whatever the number of rows. Quantile bins need all the scores at once and
    are therefore not available here (use :func:`expected_calibration_error` with
    ``strategy="quantile"``).

    Args:
        n_classes: number of classes :math:`K \ge 2`; binary input may be (n,) probabilities
            of class 1 or (n, 2).
        n_bins: number of uniform bins.
        n_bootstrap: Poisson-bootstrap replicates kept alongside (0 for none); the metric
            methods then return :class:`BootstrapResult`.
        random_state: seed or ``numpy.random.Generator`` for the replicate weights.

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import CalibrationAccumulator
        >>> acc = CalibrationAccumulator(2, n_bins=2)
        >>> _ = acc.update(np.array([0, 1]), np.array([0.1, 0.8]))
        >>> _ = acc.update(np.array([1, 1]), np.array([[0.4, 0.6], [0.3, 0.7]]))
        >>> round(acc.expected_calibration_error(), 6), acc.n_samples  # 1 bin: |1 - 0.75|
        (0.25, 4)
    """

    def __init__(
        self,
        n_classes: int,
        *,
        n_bins: int = 15,
        n_bootstrap: int = 0,
        random_state: Any = None,
    ) -> None:
        self.n_classes = _inputs.integer(n_classes, "n_classes", 2, " (binary)")
        self.n_bins = _inputs.n_bins(n_bins)
        self.n_bootstrap = metrics.check_n_bootstrap(n_bootstrap)
        self._rng = _inputs.rng(random_state) if self.n_bootstrap else None
        self.edges = metrics.uniform_edges(self.n_bins)
        n_weightings = 1 + self.n_bootstrap
        self._sums = {
            "top_label": np.zeros((3, n_weightings, 1, self.n_bins)),
            "classwise": np.zeros((3, n_weightings, self.n_classes, self.n_bins)),
        }
        self._counts = {
            "top_label": np.zeros((1, self.n_bins), dtype=np.int64),
            "classwise": np.zeros((self.n_classes, self.n_bins), dtype=np.int64),
        }
        self._brier = np.zeros(n_weightings)
        self._log_loss = np.zeros(n_weightings)
        self.n_samples = 0

    def update(self, y_true: Any, probs: Any, sample_weight: Any = None) -> CalibrationAccumulator:
        """Add a chunk: labels (n,), probabilities (n,) or (n, K), optional weights (n,).

        Inputs are checked as in :func:`expected_calibration_error`. Returns ``self``.
        """
        y, p, w, given = _inputs.classification(y_true, probs, sample_weight, self.n_classes)
        weights = metrics.replicate_weights(w, self.n_bootstrap, self._rng)
        for mode in ("top_label", "classwise"):
            scores, hits = metrics.scores_and_hits(y, p, mode)
            index = metrics.bin_index(scores, self.edges)
            self._sums[mode] += metrics.binned_sums(index, scores, hits, weights, self.n_bins)
            self._counts[mode] += metrics.bin_counts(index, self.n_bins)
        self._brier += weights.T @ metrics.brier_rows(y, p)
        self._log_loss += weights.T @ metrics.nll_rows(y, given)
        self.n_samples += y.shape[0]
        return self

    def merge(self, other: CalibrationAccumulator) -> CalibrationAccumulator:
        """Add the statistics of ``other`` (same ``n_classes``, ``n_bins``, ``n_bootstrap``).

        Returns ``self``; ``other`` is unchanged.
        """
        if not isinstance(other, CalibrationAccumulator):
            raise TypeError(f"can only merge a CalibrationAccumulator, got {type(other).__name__}")
        mine = (self.n_classes, self.n_bins, self.n_bootstrap)
        theirs = (other.n_classes, other.n_bins, other.n_bootstrap)
        if mine != theirs:
            raise ValueError(
                f"cannot merge accumulators with (n_classes, n_bins, n_bootstrap) = {theirs} "
                f"into {mine}"
            )
        for mode in self._sums:
            self._sums[mode] += other._sums[mode]
            self._counts[mode] += other._counts[mode]
        self._brier += other._brier
        self._log_loss += other._log_loss
        self.n_samples += other.n_samples
        return self

    def _check_not_empty(self) -> None:
        if self.n_samples == 0:
            raise ValueError("the accumulator is empty: call update() with some data first")
        if not self.total_weight > 0:
            raise ValueError("the rows seen have sample weights summing to 0: nothing to measure")

    @property
    def total_weight(self) -> float:
        """Summed sample weight of the rows seen (their number when unweighted)."""
        return float(self._sums["top_label"][0, 0].sum())

    def _per_weighting_total(self) -> np.ndarray:
        return self._sums["top_label"][0, :, 0].sum(axis=-1)

    def expected_calibration_error(
        self,
        *,
        norm: str = "l1",
        mode: str = "top_label",
        debias: bool = False,
        confidence_level: float = 0.95,
    ) -> float | BootstrapResult:
        """Calibration error of everything seen, as :func:`expected_calibration_error` with
        ``n_bins=self.n_bins, strategy="uniform"`` and the same ``norm``, ``mode``,
        ``debias``; a :class:`BootstrapResult` when ``n_bootstrap > 0``."""
        norm = _inputs.choice(norm, "norm", metrics.NORMS)
        mode = _inputs.choice(mode, "mode", metrics.MODES)
        if flag(debias, "debias") and norm != "l2":
            raise ValueError(
                f"debias=True is Kumar et al.'s l2 estimator: use norm='l2', not {norm!r}"
            )
        confidence_level = metrics.check_confidence_level(confidence_level)
        self._check_not_empty()
        sums = self._sums["top_label" if mode == "top_label" else "classwise"]
        return metrics.summarise(
            metrics.error_from_sums(sums, norm, mode, debias), confidence_level
        )

    def _mean(self, total: np.ndarray, confidence_level: float) -> float | BootstrapResult:
        confidence_level = metrics.check_confidence_level(confidence_level)
        self._check_not_empty()
        with np.errstate(invalid="ignore", divide="ignore"):
            return metrics.summarise(total / self._per_weighting_total(), confidence_level)

    def brier_score(self, *, confidence_level: float = 0.95) -> float | BootstrapResult:
        """Weighted mean Brier score, as :func:`brier_score`."""
        return self._mean(self._brier, confidence_level)

    def negative_log_likelihood(self, *, confidence_level: float = 0.95) -> float | BootstrapResult:
        """Weighted mean log loss in nats, as :func:`negative_log_likelihood`."""
        return self._mean(self._log_loss, confidence_level)

    def accuracy(self, *, confidence_level: float = 0.95) -> float | BootstrapResult:
        """Weighted fraction of rows whose arg-max class is the label."""
        return self._mean(self._sums["top_label"][2, :, 0].sum(axis=-1), confidence_level)

    def bin_statistics(self, class_index: int | None = None) -> BinStatistics:
        """Per-bin counts, mean confidence and accuracy (top-label), or for one class.

        ``class_index=None`` bins the top-label confidence; an integer ``k`` bins
        :math:`p_k` against :math:`[y = k]` (one panel of a classwise diagram).
        """
        self._check_not_empty()
        if class_index is None:
            return BinStatistics.from_sums(
                self.edges, self._counts["top_label"][0], self._sums["top_label"][:, 0, 0]
            )
        if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
            raise TypeError(f"class_index must be an integer or None, got {class_index!r}")
        if not 0 <= class_index < self.n_classes:
            raise ValueError(f"class_index must lie in [0, {self.n_classes}), got {class_index}")
        return BinStatistics.from_sums(
            self.edges,
            self._counts["classwise"][class_index],
            self._sums["classwise"][:, 0, class_index],
        )

    def reliability_diagram(self, **kwargs: Any) -> Any:
        """The top-label reliability diagram of everything seen (the title shows the ECE of
        the data itself, also with bootstrap replicates); see
        :func:`crossent.calibration.reliability_diagram` for the keyword arguments."""
        from .plotting import plot_bins

        ece = float(self.expected_calibration_error())  # the value of a BootstrapResult
        return plot_bins(self.bin_statistics(), ece, **kwargs)


class LossAccumulator:
    r"""Mean losses over chunks: log loss (nats, bits, perplexity), focal loss, Brier score.

    Every loss is the weighted mean :math:`\sum_i s_i \ell_i / \sum_i s_i` over the rows (or
    tokens) seen, with :math:`s_i` the sample weight times "not ignored"; the NLL and focal
    values are those of :func:`crossent.categorical_cross_entropy` /
    :func:`crossent.categorical_focal_loss` (``reduction="mean"``, no class weights) or their
    binary counterparts on the concatenated data.

    ``update(y_true, y_pred)`` reads integer labels whose shape is ``y_pred``'s minus its last
    (class) axis as categorical, e.g. (N,) with (N, C) or (B, T) tokens with (B, T, V); labels
    equal to ``ignore_index`` are left out. Targets of ``y_pred``'s own shape are binary (or
    multi-label) in [0, 1].

    Args:
        from_logits: whether ``y_pred`` holds logits (recommended) or probabilities.
        gamma: focusing parameter of the focal loss.
        ignore_index: label value to skip in categorical input (``None``: none).

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import LossAccumulator
        >>> acc = LossAccumulator(from_logits=True)
        >>> _ = acc.update(np.array([0, 1]), np.zeros((2, 4)))
        >>> round(acc.nll_bits, 6), round(acc.perplexity, 6)
        (2.0, 4.0)
    """

    def __init__(
        self, *, from_logits: bool = False, gamma: float = 2.0, ignore_index: int | None = -100
    ) -> None:
        self.from_logits = flag(from_logits, "from_logits")
        self.gamma = in_range(gamma, "gamma", 0.0)
        self.ignore_index = index_option(ignore_index, "ignore_index")
        self._sums = np.zeros(3)  # nll, focal, brier
        self.total_weight = 0.0
        self.n_samples = 0
        self._classes: int | None = None  # 0 for binary targets, else the class count

    def _check_classes(self, classes: int | None) -> None:
        """One kind of input per accumulator: binary, or a fixed number of classes (recorded
        once a chunk has been taken)."""
        if classes is not None and self._classes is not None and classes != self._classes:
            seen = "binary targets" if self._classes == 0 else f"{self._classes} classes"
            got = "binary targets" if classes == 0 else f"{classes} classes"
            raise ValueError(f"this accumulator has seen {seen}; it cannot take {got}")

    def update(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> LossAccumulator:
        """Add a chunk (shapes described in the class docstring). Returns ``self``."""
        y = _inputs.as_numpy(y_true)
        pred = _inputs.as_numpy(y_pred)
        options = {"from_logits": self.from_logits, "sample_weight": sample_weight}
        classes = 0 if y.shape == pred.shape else pred.shape[-1]
        self._check_classes(classes)
        if y.shape == pred.shape:
            nll = binary_cross_entropy(y, pred, reduction="none", **options)
            focal = binary_focal_loss(y, pred, gamma=self.gamma, reduction="none", **options)
            p = sigmoid(pred) if self.from_logits else pred
            squared = (p - y) ** 2
            valid = np.ones(y.shape)
        else:
            options["ignore_index"] = self.ignore_index
            nll = categorical_cross_entropy(y, pred, reduction="none", **options)
            focal = categorical_focal_loss(y, pred, gamma=self.gamma, reduction="none", **options)
            p = softmax(pred) if self.from_logits else pred
            hits = y[..., None] == np.arange(pred.shape[-1])
            squared = ((p - hits) ** 2).sum(axis=-1)
            ignored = y == self.ignore_index if self.ignore_index is not None else False
            valid = np.where(ignored, 0.0, 1.0) * np.ones(y.shape)
        if sample_weight is not None:
            w = _inputs.as_numpy(sample_weight).astype(np.float64)
            valid = valid * w.reshape(w.shape + (1,) * (valid.ndim - w.ndim))
        self._sums += [
            np.sum(np.asarray(nll, dtype=np.float64)),
            np.sum(np.asarray(focal, dtype=np.float64)),
            np.sum(valid * squared),
        ]
        self.total_weight += float(valid.sum())
        self.n_samples += int(np.prod(y.shape))
        self._classes = classes
        return self

    def merge(self, other: LossAccumulator) -> LossAccumulator:
        """Add another accumulator's sums (same ``from_logits``, ``gamma``). Returns ``self``."""
        if not isinstance(other, LossAccumulator):
            raise TypeError(f"can only merge a LossAccumulator, got {type(other).__name__}")
        if (other.from_logits, other.gamma) != (self.from_logits, self.gamma):
            raise ValueError("cannot merge LossAccumulators with different from_logits or gamma")
        self._check_classes(other._classes)
        self._sums += other._sums
        self.total_weight += other.total_weight
        self.n_samples += other.n_samples
        self._classes = self._classes if other._classes is None else other._classes
        return self

    def _mean(self, i: int) -> float:
        if not self.total_weight > 0:  # a mean of nothing (a ratio or exp of it) is no number
            raise ValueError(
                "the accumulator has no weighted row (no update yet, or every row ignored or "
                "weighted 0): there is no mean loss"
            )
        return float(self._sums[i] / self.total_weight)

    @property
    def nll(self) -> float:
        """Mean negative log-likelihood (cross-entropy) in nats (``ValueError`` before any
        weighted row)."""
        return self._mean(0)

    @property
    def nll_bits(self) -> float:
        """Mean negative log-likelihood in bits: ``nll / log(2)``."""
        return self.nll / float(np.log(2.0))

    @property
    def perplexity(self) -> float:
        """``exp(nll)``: the effective number of equally likely choices per prediction."""
        return float(np.exp(self.nll))

    @property
    def focal(self) -> float:
        """Mean focal loss with the accumulator's ``gamma``."""
        return self._mean(1)

    @property
    def brier(self) -> float:
        """Mean Brier score: :math:`\\sum_c (p_c - [y = c])^2` per row for categorical input,
        :math:`(p - y)^2` per element for binary input."""
        return self._mean(2)
