r"""The evaluation report behind ``crossent report``: how good, and how honest, are predictions.

For labels :math:`y_i` and predicted probabilities (or logits) the report gives, over all rows:

* accuracy (arg-max; for binary input, class 1 when :math:`p > 1/2`, i.e. logit :math:`> 0`);
* cross-entropy in nats and in bits (nats / :math:`\log 2`), computed from the logits when the
  input holds logits (:func:`crossent.binary_cross_entropy`,
  :func:`crossent.categorical_cross_entropy`);
* focal loss with :math:`\gamma` (default 2; :func:`crossent.binary_focal_loss`,
  :func:`crossent.categorical_focal_loss`);
* Brier score and expected calibration error, top-label and classwise, with a Poisson
  bootstrap percentile interval (:mod:`crossent.calibration.metrics` defines them);
* the temperature :math:`T` minimising the cross-entropy of :math:`z / T` on the same rows
  (Guo et al. 2017; probabilities are turned into logits :math:`\log p`, binary ones into
  :math:`\log p - \log(1 - p)`), and every metric again after dividing the logits by :math:`T`.

Everything is computed in *passes* over chunks of rows through the mergeable accumulators of
:mod:`crossent.calibration` (:class:`~crossent.calibration.CalibrationAccumulator`,
:class:`~crossent.calibration.LossAccumulator`), so the numbers do not depend on how the rows
are chunked, and a file larger than memory is evaluated in a few passes: one for the metrics,
the passes of the temperature fit, and one for the metrics after scaling. The same kernels
run on Dask partitions in :mod:`crossent.dask`.

The bootstrap replicates are drawn row by row from ``random_state``, so any sequential
chunking gives exactly the one-shot :func:`crossent.calibration.expected_calibration_error`
interval; before and after scaling use the same draws (a paired comparison).

Reference: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
ICML 2017.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .special import sigmoid, softmax

__all__ = ["Interval", "Metrics", "Report", "Settings", "evaluate", "evaluate_chunks"]

Chunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]
"""A zero-argument callable returning a fresh iterator of ``(y, pred)`` chunks (one pass)."""


@dataclass(frozen=True)
class Settings:
    """Options of a report (the command line's ``--bins``, ``--bootstrap``, ``--seed``, ...)."""

    n_bins: int = 15
    n_bootstrap: int = 200
    random_state: int | None = 0
    gamma: float = 2.0
    confidence_level: float = 0.95


def _json_ready(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth, replaced by ``None``, NumPy
    scalars by Python's, and other objects (a ``Generator`` as ``random_state``) by their
    text."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass
class Interval:
    """A metric with its bootstrap percentile interval (``low = high = None`` without)."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass
class Metrics:
    """The metrics of one pass over the rows."""

    accuracy: float
    cross_entropy_nats: float
    cross_entropy_bits: float
    focal_loss: float
    brier_score: Interval
    ece_top_label: Interval
    ece_classwise: Interval


@dataclass
class Report:
    """Everything ``crossent report`` prints; :meth:`to_dict` is its JSON."""

    rows: int
    n_classes: int
    binary: bool
    input: str  # "probabilities" or "logits"
    before: Metrics
    temperature: float
    after: Metrics
    settings: Settings
    source: dict[str, Any] = field(default_factory=dict)
    accumulators: tuple[Any, Any] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values."""
        out = asdict(self)
        out.pop("accumulators")
        out["kind"] = "binary" if self.binary else "multiclass"
        return out

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as strict JSON: an undefined number (a bootstrap interval whose
        replicates all drew no rows) is ``null``, not the ``NaN`` that JSON lacks."""
        return json.dumps(
            _json_ready(self.to_dict()), **{"indent": 2, "allow_nan": False, **kwargs}
        )

    def plot(self, path: str | None = None) -> Any:
        """Reliability diagrams before and after temperature scaling, side by side.

        Returns the matplotlib Figure; with ``path`` also saves it there.
        """
        if self.accumulators is None:
            raise ValueError("this report holds no bin statistics to plot")
        from matplotlib.figure import Figure

        from .calibration.plotting import plot_bins

        fig = Figure(figsize=(10, 5.2))
        axes = fig.subplots(1, 2, sharey=True)
        titles = (
            f"as given ({self.input})",
            f"after temperature scaling (T = {self.temperature:.3f})",
        )
        for ax, acc, title in zip(axes, self.accumulators, titles, strict=True):
            ece = float(acc.expected_calibration_error())
            plot_bins(acc.bin_statistics(), ece, ax=ax, title=title)
        axes[1].set_ylabel("")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig


# ---------------------------------------------------------------------------------------------
# One pass: the kernel mapped over chunks (here or on Dask partitions) and its merge


_BOOTSTRAP_ELEMENTS = 4_000_000  # float64 elements per temporary array of the bootstrap bins


class _Pass:
    """The accumulators of one pass over the rows: calibration bins and mean losses."""

    def __init__(self, n_classes: int, from_logits: bool, settings: Settings, seed: Any) -> None:
        from .calibration import CalibrationAccumulator, LossAccumulator

        self.binary = n_classes == 2
        self.from_logits = from_logits
        self.calibration = CalibrationAccumulator(
            n_classes,
            n_bins=settings.n_bins,
            n_bootstrap=settings.n_bootstrap,
            random_state=seed,
        )
        self.losses = LossAccumulator(from_logits=from_logits, gamma=settings.gamma)
        self.settings = settings

    def update(self, y: np.ndarray, pred: np.ndarray) -> _Pass:
        """Add a chunk: labels (n,) and predictions (n,) (binary) or (n, K).

        The calibration bins take the chunk in slices small enough that the bootstrap's
        temporaries (the replicate weights, rows x replicates) stay around 32 MB; the
        replicate weights are drawn row by row, so slicing changes no number.
        """
        if self.from_logits:
            probs = sigmoid(pred) if pred.ndim == 1 else softmax(pred, axis=-1)
        elif pred.ndim == 2:  # rows checked within crossent._tables.SUM_TOLERANCE of 1
            probs = pred = pred / pred.sum(axis=1, keepdims=True)
        else:
            probs = pred
        width = self.settings.n_bootstrap + 1
        step = max(1, _BOOTSTRAP_ELEMENTS // width)
        for start in range(0, len(y), step):
            self.calibration.update(y[start : start + step], probs[start : start + step])
        self.losses.update(y.astype(np.float64) if pred.ndim == 1 else y, pred)
        return self

    def merge(self, other: _Pass) -> _Pass:
        self.calibration.merge(other.calibration)
        self.losses.merge(other.losses)
        return self

    def metrics(self) -> Metrics:
        level = self.settings.confidence_level
        cal = self.calibration
        nats = self.losses.nll
        return Metrics(
            accuracy=float(cal.accuracy(confidence_level=level)),
            cross_entropy_nats=nats,
            cross_entropy_bits=nats / math.log(2.0),
            focal_loss=self.losses.focal,
            brier_score=_interval(cal.brier_score(confidence_level=level)),
            ece_top_label=_interval(
                cal.expected_calibration_error(mode="top_label", confidence_level=level)
            ),
            ece_classwise=_interval(
                cal.expected_calibration_error(mode="classwise", confidence_level=level)
            ),
        )


def _interval(result: Any) -> Interval:
    if isinstance(result, float):
        return Interval(result)
    return Interval(result.value, result.low, result.high)


def _to_logits(pred: np.ndarray, from_logits: bool) -> np.ndarray:
    r"""Logits of a chunk: as given, or :math:`\log p` (binary: :math:`\log p - \log(1 - p)`).

    Probabilities are clipped to :math:`[\epsilon, 1 - \epsilon]` first, as in the losses.
    """
    if from_logits:
        return pred
    from .calibration._inputs import probability_logits

    return probability_logits(pred, float(np.finfo(pred.dtype).eps))


def _scaled(pred: np.ndarray, from_logits: bool, temperature: float) -> np.ndarray:
    """The logits of a chunk divided by the temperature."""
    return _to_logits(pred, from_logits) / temperature


def _temperature_statistics(y: np.ndarray, pred: np.ndarray, from_logits: bool, t: float) -> Any:
    """A chunk's :class:`~crossent.calibration.TemperatureStatistics` at temperature ``t``.

    The chunk was validated when read and the user said whether it holds logits, so it goes
    in without the "looks like probabilities" guard (``check_input=False``), which a chunk of
    binary logits all in [0, 1] would trip.
    """
    from .calibration import TemperatureStatistics

    return TemperatureStatistics(t, check_input=False).update(_to_logits(pred, from_logits), y)


def _detect_from_logits(sample: np.ndarray) -> bool:
    """Whether a sample of predictions ((n,) or (n, K)) holds logits, for ``from_logits=None``.

    The rule of :func:`crossent._tables.looks_like_logits`, which refuses in-between input.
    """
    from ._tables import looks_like_logits

    return looks_like_logits(
        sample.reshape(len(sample), -1), "pass from_logits=False or from_logits=True"
    )


def _check_probabilities(pred: np.ndarray) -> None:
    """The file reader's check of probabilities (:func:`crossent._tables._check_probabilities`:
    values in [0, 1], rows summing to 1 within its tolerance, which :class:`_Pass` divides
    out), its error as a ``ValueError`` naming ``y_pred``."""
    from . import _tables

    n_classes = 1 if pred.ndim == 1 else pred.shape[1]
    columns = ["y_pred"] if pred.ndim == 1 else [f"y_pred[{k}]" for k in range(n_classes)]
    try:
        _tables._check_probabilities(pred, columns, 0, told=True)
    except _tables.InputError as exc:
        raise ValueError(str(exc)) from None


def _fit_temperature(statistics: Callable[[float], Any], max_iter: int = 100) -> float:
    """The NLL-minimising temperature, given ``statistics(T)`` summed over all rows.

    The Newton iteration in log T of :class:`~crossent.calibration.TemperatureScaling`, one
    call of ``statistics`` (one pass over the data) per step; local and Dask passes share it.
    A temperature at its bound (separable data) is returned as is.
    """
    import warnings

    from .calibration import fit_temperature_from_statistics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scaler = fit_temperature_from_statistics(statistics, max_iter=max_iter)
    return float(scaler.temperature_)


# ---------------------------------------------------------------------------------------------
# The report from chunks read in order (in memory or streamed from a file)


def evaluate_chunks(
    chunks: Chunks,
    *,
    n_classes: int,
    from_logits: bool,
    settings: Settings | None = None,
    on_pass: Callable[[str], Callable[[Iterable[Any]], Iterable[Any]]] | None = None,
) -> Report:
    """The report of the rows yielded by ``chunks()``, in as many passes as needed.

    Args:
        chunks: zero-argument callable returning a fresh iterator of ``(y, pred)``: integer
            labels (n,) and predictions (n,) (binary) or (n, K), validated.
        n_classes: number of classes (2 for binary).
        from_logits: whether ``pred`` holds logits.
        settings: bins, bootstrap and focal options.
        on_pass: optional wrapper of each pass' iterator, given the pass' name (used for
            progress bars).

    The metrics and the temperature are defined in :mod:`crossent.report`.

    Reference: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017.
    """
    settings = settings or Settings()
    wrap = on_pass or (lambda name: lambda it: it)

    def rows(name: str) -> Iterable[Any]:
        return wrap(name)(chunks())

    before = _Pass(n_classes, from_logits, settings, settings.random_state)
    for y, pred in rows("metrics"):
        before.update(y, pred)

    fit_pass = itertools.count(1)

    def statistics(t: float) -> Any:
        total = None
        for y, pred in rows(f"temperature fit, pass {next(fit_pass)}"):
            part = _temperature_statistics(y, pred, from_logits, t)
            total = part if total is None else total.merge(part)
        return total

    temperature = _fit_temperature(statistics)

    after = _Pass(n_classes, True, settings, settings.random_state)
    for y, pred in rows("metrics after scaling"):
        after.update(y, _scaled(pred, from_logits, temperature))
    return _report(before, after, temperature, n_classes, from_logits, settings)


def _report(
    before: _Pass,
    after: _Pass,
    temperature: float,
    n_classes: int,
    from_logits: bool,
    settings: Settings,
) -> Report:
    return Report(
        rows=before.calibration.n_samples,
        n_classes=n_classes,
        binary=before.binary,
        input="logits" if from_logits else "probabilities",
        before=before.metrics(),
        temperature=temperature,
        after=after.metrics(),
        settings=settings,
        accumulators=(before.calibration, after.calibration),
    )


def evaluate(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool | None = None,
    n_bins: int = 15,
    n_bootstrap: int = 200,
    random_state: int | None = 0,
    gamma: float = 2.0,
    confidence_level: float = 0.95,
) -> Report:
    r"""The report of ``crossent report`` for arrays in memory.

    Args:
        y_true: integer class labels, shape (n,) (booleans for binary).
        y_pred: predictions, (n,) for binary (probability or logit of class 1) or (n, K).
        from_logits: whether ``y_pred`` holds logits; ``None`` detects it: probabilities when
            every value is in [0, 1] (and, for (n, K), rows sum to 1), logits when some value
            is outside; in-between input is refused. Rows of probabilities may be off 1 by
            3.5e-4 (the square root of float32's epsilon: a float32 model's output, or text
            with a few digits) and are divided by their sums.
        n_bins, n_bootstrap, random_state, confidence_level: calibration error options
            (:func:`crossent.calibration.expected_calibration_error`).
        gamma: focusing parameter of the focal loss.

    Returns:
        A :class:`Report`; ``report.to_dict()`` is what ``crossent report --json`` writes.

    Example::

        >>> import numpy as np
        >>> from crossent.report import evaluate
        >>> rng = np.random.default_rng(0)
        >>> logits = 3 * rng.normal(size=(5000, 3))
        >>> y = np.argmax(logits / 3 + rng.gumbel(size=logits.shape), axis=1)  # T = 3 is right
        >>> r = evaluate(y, logits, n_bootstrap=0)
        >>> r.input, r.n_classes, round(r.temperature, 1)
        ('logits', 3, 3.0)
        >>> r.after.cross_entropy_nats < r.before.cross_entropy_nats
        True

    Reference: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017.
    """
    from . import _validation
    from .calibration import _inputs

    from_logits = _validation.flag(from_logits, "from_logits", none=True)
    pred = np.asarray(_inputs.as_numpy(y_pred), dtype=np.float64)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.ndim not in (1, 2) or pred.shape[0] == 0:
        raise ValueError(f"y_pred must have shape (n,) or (n, K) with n > 0, got {pred.shape}")
    if not np.all(np.isfinite(pred)):
        raise ValueError("y_pred contains NaN or infinity; all values must be finite")
    n_classes = 2 if pred.ndim == 1 else pred.shape[1]
    y = _inputs.labels(y_true, pred.shape[0], n_classes)
    if from_logits is None:
        from_logits = _detect_from_logits(pred)  # checks probabilities as it detects them
    elif not from_logits:
        _check_probabilities(pred)
    settings = Settings(n_bins, n_bootstrap, random_state, gamma, confidence_level)
    return evaluate_chunks(
        lambda: [(y, pred)], n_classes=n_classes, from_logits=from_logits, settings=settings
    )
