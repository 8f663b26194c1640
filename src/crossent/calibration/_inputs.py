"""Argument checks shared by the calibration metrics, accumulators and scalers.

Calibration works on whole datasets of predictions, so every input is brought to NumPy
float64 here (PyTorch tensors and other Array API arrays are copied to the host). The checks
reuse :mod:`crossent._validation` and its messages.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _array, _validation

INPUTS = ("logits", "probabilities")


def as_numpy(x: Any) -> np.ndarray:
    """Any array (NumPy, PyTorch, Array API, list) as a NumPy array."""
    xp = _array.namespace(x)
    return _array.to_numpy(_array.asarray(x, xp))


def not_empty(x: np.ndarray, name: str) -> None:
    if x.size == 0:
        raise ValueError(f"{name} is empty: there is nothing to calibrate or measure")


def integer(value: Any, name: str, minimum: int, note: str = "") -> int:
    """``value`` as an int, checked to be an integer (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}{note}, got {value}")
    return int(value)


def n_bins(value: Any) -> int:
    return integer(value, "n_bins", 1)


def choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def probabilities(probs: Any, hint: str = "") -> np.ndarray:
    """Checked predicted probabilities, (n,) (the probability of class 1) or (n, K) with
    rows summing to 1 (tolerance of :func:`crossent._validation.sums_to_one` for their dtype),
    in their own dtype (float32 for float16). ``hint`` ends the messages of values that are
    no probabilities (how to pass logits, for a function that takes them)."""
    p = as_numpy(probs)
    not_empty(p, "probs")
    p = _validation.predictions(p, _array.namespace(), "probs")
    if p.ndim > 2 or (p.ndim == 2 and p.shape[1] < 2):
        raise ValueError(
            f"probs must have shape (n,) (probability of class 1) or (n, K) with K >= 2, "
            f"got {p.shape}"
        )
    _validation.probabilities(p, _array.namespace(), "probs", hint=hint)
    if p.ndim == 2:
        _validation.sums_to_one(p, _array.namespace(), "probs", hint=hint)
    return p


def columns(p: np.ndarray) -> np.ndarray:
    """Probabilities as an (n, K) float64 array: ``(n,)`` becomes ``[1 - p, p]``."""
    p = p.astype(np.float64)
    return np.stack([1.0 - p, p], axis=1) if p.ndim == 1 else p


def labels(y_true: Any, n: int, n_classes: int) -> np.ndarray:
    """Integer (or boolean) class labels of shape (n,) in [0, n_classes), as int64."""
    y = as_numpy(y_true)
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.shape != (n,):
        raise ValueError(f"y_true has shape {y.shape}; expected ({n},), one label per row")
    _validation.class_indices(
        y, _array.namespace(y), n_classes, None, "y_true", shape_of="(n,), one per row"
    )
    return y.astype(np.int64)


def sample_weight(w: Any, n: int, *, positive_sum: bool = True) -> np.ndarray:
    """Non-negative finite weights of shape (n,) (ones when ``None``), with a positive sum
    unless ``positive_sum=False`` (a chunk of an accumulator, whose rows may all weigh 0)."""
    if w is None:
        return np.ones(n)
    w = as_numpy(w)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be a numeric array, got dtype {w.dtype}")
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}; expected ({n},)")
    w = w.astype(np.float64)
    _validation.finite(w, _array.namespace(), "sample_weight")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    if positive_sum and not w.sum() > 0:
        raise ValueError("sample_weight sums to 0: there is nothing to measure")
    return w


class Classification(NamedTuple):
    """Checked inputs of a metric: labels ``y`` (n,), probabilities ``p`` as (n, K) float64,
    weights ``w`` (n,), and ``probs``, the probabilities as given ((n,) or (n, K), their
    dtype), from which the log-likelihood is computed as by the losses."""

    y: np.ndarray
    p: np.ndarray
    w: np.ndarray
    probs: np.ndarray


def classification(
    y_true: Any, probs: Any, weight: Any, n_classes: int | None = None, hint: str = ""
) -> Classification:
    """Validated labels, probabilities and weights; with ``n_classes`` (an accumulator's
    chunk) the weights may sum to 0. ``hint``: see :func:`probabilities`."""
    given = probabilities(probs, hint)
    p = columns(given)
    if n_classes is not None and p.shape[1] != n_classes:
        raise ValueError(f"probs has {p.shape[1]} classes; this accumulator expects {n_classes}")
    y = labels(y_true, p.shape[0], p.shape[1])
    w = sample_weight(weight, p.shape[0], positive_sum=n_classes is None)
    return Classification(y, p, w, given)


def looks_like_probabilities(z: np.ndarray) -> bool:
    """Whether logits ``z`` ((n,) or (n, K)) have every value in [0, 1] and, for (n, K), rows
    summing to 1 (tolerance: the square root of the dtype's epsilon).

    For several chunks of one dataset the answer for the whole is the conjunction of the
    chunks' answers.
    """
    if not bool(np.all((z >= 0) & (z <= 1))):
        return False
    tol = np.finfo(z.dtype).eps ** 0.5
    return z.ndim == 1 or bool(np.all(np.abs(z.sum(axis=1) - 1) <= tol))


def refuse_probabilities(ndim: int, name: str = "logits") -> None:
    """Raise the error for logits that look like probabilities (``ndim``: 1 or 2)."""
    raise ValueError(
        f"{name} looks like probabilities (every value in [0, 1]"
        + (", rows summing to 1" if ndim == 2 else "")
        + "), not logits; pass input='probabilities' to scale probabilities"
    )


def logits(
    x: Any, input: str, name: str = "logits", check_input: bool = True
) -> tuple[np.ndarray, Any, bool]:
    """Logits as float64 ``(n,)`` (binary decision values) or ``(n, K)``, the input dtype, and
    whether the array looks like probabilities (:func:`looks_like_probabilities`; ``False``
    for ``input="probabilities"``).

    With ``input="logits"`` and ``check_input`` an array that looks like probabilities is
    refused: scaling probabilities as if they were logits silently gives wrong results.
    ``input="probabilities"`` converts them: ``log p`` for ``(n, K)``, ``log p - log(1 - p)``
    for ``(n,)``, with ``p`` clipped to ``[eps, 1 - eps]`` of its dtype as in the losses.
    """
    choice(input, "input", INPUTS)
    z = as_numpy(x)
    not_empty(z, name)
    dtype = _validation.result_dtype(
        z, _array.namespace()
    )  # the caller's (float16 is computed in float32)
    z = _validation.predictions(z, _array.namespace(), name)
    if z.ndim == 2 and z.shape[1] == 1:
        z = z[:, 0]
    if z.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (n, K), got {z.shape}")
    if input == "logits":
        suspicious = looks_like_probabilities(z)
        if suspicious and check_input:
            refuse_probabilities(z.ndim, name)
        return z.astype(np.float64), dtype, suspicious
    hint = " (use input='logits' if these are logits)"
    _validation.probabilities(z, _array.namespace(), name, hint=hint)
    if z.ndim == 2:
        _validation.sums_to_one(z, _array.namespace(), name, hint=hint)
    return probability_logits(z.astype(np.float64), float(np.finfo(z.dtype).eps)), dtype, False


def rng(random_state: Any) -> np.random.Generator:
    """``numpy.random.default_rng(random_state)``, its errors naming ``random_state``."""
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise TypeError(
            f"random_state must be None, a non-negative integer, a SeedSequence or a "
            f"numpy Generator, got {random_state!r}"
        ) from None


def probability_logits(p: np.ndarray, eps: float) -> np.ndarray:
    r"""Logits of probabilities: :math:`\log p` for (n, K), :math:`\log p - \log(1 - p)` for (n,).

    ``p`` is clipped to :math:`[\epsilon, 1 - \epsilon]` first, as in the losses.
    """
    p = np.clip(p, eps, 1 - eps)
    return np.log(p) - np.log1p(-p) if p.ndim == 1 else np.log(p)
