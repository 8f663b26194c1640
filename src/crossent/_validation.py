"""One place for argument checks and their messages.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong
content) with a message that names the argument and says what was expected. Nothing here
modifies its input: conversions return new arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _array

REDUCTIONS = ("mean", "sum", "none")


def dtype_kind(x: Any, xp: Any) -> str:
    """One of "bool", "integer", "floating", "other" for the dtype of ``x``."""
    if _array.is_numpy(xp):
        kind = np.asarray(x).dtype.kind
        return {"b": "bool", "i": "integer", "u": "integer", "f": "floating"}.get(kind, "other")
    for name, kind in (("bool", "bool"), ("integral", "integer"), ("real floating", "floating")):
        try:
            if xp.isdtype(x.dtype, name):
                return kind
        except (TypeError, ValueError):
            return "other"
    return "other"


def predictions(y_pred: Any, xp: Any, name: str = "y_pred", *, check_finite: bool = True) -> Any:
    """A floating, non-empty, finite array of predictions (integers become float64).

    float16 and bfloat16 inputs are returned as float32 for computing; callers cast results
    back with :func:`result_dtype`. ``check_finite=False`` leaves the finiteness check to a
    fused kernel, which performs it while reading the values anyway.
    """
    y_pred = _array.asarray(y_pred, xp, name=name)
    kind = dtype_kind(y_pred, xp)
    if kind == "integer":
        y_pred = xp.astype(y_pred, xp.float64)
    elif kind != "floating":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {y_pred.dtype}")
    if y_pred.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a scalar")
    if _size(y_pred) == 0:
        raise ValueError(f"{name} is empty; at least one value is needed")
    if y_pred.dtype not in (xp.float32, xp.float64):
        y_pred = xp.astype(y_pred, xp.float32)
    if check_finite:
        finite(y_pred, xp, name)
    return y_pred


def result_dtype(original: Any, xp: Any) -> Any:
    """The dtype results are returned in: the caller's floating dtype, float64 for integers."""
    original = _array.asarray(original, xp)
    return original.dtype if dtype_kind(original, xp) == "floating" else xp.float64


def finite(x: Any, xp: Any, name: str) -> None:
    """Raise if ``x`` holds NaN or infinity.

    Checked through the extremes, ``max`` and ``min``, which the Array API standard requires
    to propagate NaN: two reading passes and no temporary of ``x``'s size (``isfinite`` writes
    a boolean array, and PyTorch's also takes ``abs(x)``, 5 bytes per float32 element).
    """
    if not _all_finite(x, xp):
        raise nonfinite_error(name)


def nonfinite_error(name: str) -> ValueError:
    """The error of :func:`finite`, also raised from a fused kernel's report."""
    return ValueError(f"{name} contains NaN or infinity; all values must be finite")


def _all_finite(x: Any, xp: Any) -> bool:
    """Whether ``x`` holds no NaN or infinity (see :func:`finite`); true when empty (the shape
    checks speak of empty input)."""
    if _size(x) == 0:
        return True
    return bool(xp.all(xp.isfinite(xp.stack([xp.max(x), xp.min(x)]))))


def no_overflow(value: Any, xp: Any, dtype: Any, name: str = "y_pred") -> None:
    """Raise if a loss computed from finite logits is NaN or infinite: ``name / temperature``
    holds values too large, or too far apart, for ``dtype`` (float32 logits of 1e25 at a
    temperature of 1e-15, or of +-3e38 at any, or a sum of losses beyond the dtype's range),
    where NaN or infinity would otherwise come out."""
    if value.ndim == 0 and _array.is_numpy(xp):  # the usual reduced loss: no array calls
        ok = math.isfinite(float(value))
    else:
        ok = _all_finite(value, xp)
    if not ok:
        raise ValueError(
            f"the loss overflows {dtype}: {name} / temperature holds values too large or too "
            f"far apart for {dtype} (or the weights scale the loss past its range); pass "
            f"float64 logits, scale them down, or raise the temperature"
        )


def _size(x: Any) -> int:
    size = 1
    for n in x.shape:
        size *= int(n)
    return size


def axis(value: int, ndim: int) -> int:
    """``value`` as an int, raising unless it is an integer (Python's or NumPy's, not a bool)
    axis of an array with ``ndim`` dimensions."""
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not integer or not -ndim <= value < ndim:
        raise ValueError(f"axis must be an integer in [-{ndim}, {ndim}), got {value!r}")
    return int(value)


def reduction(value: str) -> str:
    if value not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {value!r}")
    return value


LOGITS_HINT = " (pass from_logits=True if these are logits)"


def probabilities(p: Any, xp: Any, name: str, hint: str = LOGITS_HINT) -> None:
    """Raise unless every value lies in [0, 1]; ``hint`` ends the message (how to pass logits
    instead, in the words of the caller's API)."""
    if not bool(xp.all((p >= 0) & (p <= 1))):
        raise ValueError(f"{name} must hold probabilities in [0, 1]; got values outside it{hint}")


def sums_to_one(
    p: Any, xp: Any, name: str, axis: int = -1, hint: str = LOGITS_HINT, dtype: Any = None
) -> None:
    """Raise unless the slices along ``axis`` sum to 1 within sqrt(eps) of the dtype (the
    caller's ``dtype`` when given: float16 input is checked as float16, though computed in
    float32).

    The tolerance is the one scikit-learn's ``log_loss`` uses: ``sqrt(eps)`` (1.5e-8 in
    float64, 3.5e-4 in float32, 0.031 in float16).
    """
    tol = _array.finfo_eps(xp, p.dtype if dtype is None else dtype) ** 0.5
    total = xp.sum(p, axis=axis)
    if not bool(xp.all(xp.abs(total - 1) <= tol)):
        worst = float(xp.max(xp.abs(total - 1)))
        raise ValueError(
            f"{name} must sum to 1 along the class axis (tolerance {tol:.2g}); the worst row "
            f"is off by {worst:.3g}{hint}"
        )


def coarser(a: Any, b: Any, xp: Any) -> Any:
    """Of two floating dtypes, the one with the larger eps (float64 targets cast to float32
    predictions sum to 1 within float32's rounding only)."""
    return a if _array.finfo_eps(xp, a) > _array.finfo_eps(xp, b) else b


def class_indices(
    y: Any,
    xp: Any,
    n_classes: int,
    ignore_index: int | None,
    name: str,
    *,
    check_range: bool = True,
    shape_of: str = "y_pred's without the class axis",
) -> Any:
    """Validate integer class labels in [0, n_classes) (``ignore_index`` allowed); returned as
    int64, in which ``n_classes`` and ``ignore_index`` compare as numbers (PyTorch wraps them
    into a uint8 or int8 tensor's range: -100 had matched the uint8 label 156).

    ``check_range=False`` checks the dtype only and leaves the range to a fused kernel.
    ``shape_of`` says, for the error message, which shape the labels have.
    """
    kind = dtype_kind(y, xp)
    if kind != "integer":
        raise TypeError(
            f"{name} holds class indices (its shape is {shape_of}) and must be an integer "
            f"array, got dtype {y.dtype}"
        )
    if y.dtype == getattr(xp, "uint64", None) and _size(y) and int(xp.max(y)) >= n_classes:
        # before int64, which would wrap the largest values to negative ones (ignore_index)
        raise ValueError(f"{name} holds class index {int(xp.max(y))}, outside [0, {n_classes})")
    y = xp.astype(y, xp.int64, copy=False)
    if not check_range:
        return y
    valid = (y >= 0) & (y < n_classes)
    if ignore_index is not None:
        valid = valid | (y == ignore_index)
    if not bool(xp.all(valid)):
        bad = y[~valid]
        raise ValueError(
            f"{name} holds class index {int(bad[0])}, outside [0, {n_classes})"
            + (f" and not ignore_index={ignore_index}" if ignore_index is not None else "")
        )
    return y


def numeric(y: Any, xp: Any, name: str) -> str:
    """Raise unless ``y`` holds numbers (booleans included); returns its dtype kind."""
    kind = dtype_kind(y, xp)
    if kind == "other":
        raise TypeError(f"{name} must be a numeric array, got dtype {y.dtype}")
    return kind


def targets_in_unit_interval(y: Any, xp: Any, name: str) -> Any:
    """Binary or soft targets: numeric, finite, in [0, 1]; returned as floats."""
    if numeric(y, xp, name) != "floating":
        y = xp.astype(y, xp.float64)
    finite(y, xp, name)
    if not bool(xp.all((y >= 0) & (y <= 1))):
        raise ValueError(f"{name} must hold targets in [0, 1]")
    return y


def same_shape(a: Any, b: Any, name_a: str, name_b: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; "
            f"they must match"
        )


def example_weights(w: Any, xp: Any, loss_shape: tuple, name: str, like: Any) -> Any:
    """``sample_weight`` or ``mask``: a prefix of the per-example loss shape, or all of it.

    Returned as a float array broadcastable against the per-example loss.
    """
    w = _array.asarray(w, xp, like, name)
    kind = dtype_kind(w, xp)
    if kind == "other":
        raise TypeError(f"{name} must be a numeric or boolean array, got dtype {w.dtype}")
    shape = tuple(w.shape)
    if shape != loss_shape[: len(shape)] or (len(shape) == 0 and loss_shape):
        raise ValueError(
            f"{name} has shape {shape}; expected the per-example loss shape {loss_shape} "
            f"or a leading part of it (not a scalar, which would weigh every example alike)"
        )
    w = xp.astype(w, like.dtype)
    finite(w, xp, name)
    if name == "mask" and not bool(xp.all((w == 0) | (w == 1))):
        raise ValueError("mask must hold only 0/1 or True/False")
    if not bool(xp.all(w >= 0)):
        raise ValueError(f"{name} must be non-negative")
    return xp.reshape(w, shape + (1,) * (len(loss_shape) - len(shape)))


def real_numbers(w: Any, xp: Any, name: str, like: Any) -> Any:
    """``w`` as an array of ``like``'s dtype and device, refusing anything but real numbers
    (text such as ``"2"`` had been parsed, complex parts dropped, ``True`` taken as 1)."""
    try:
        raw = _array.asarray(w, xp, like)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold real numbers, got {w!r}") from None
    if dtype_kind(raw, xp) not in ("integer", "floating"):
        raise TypeError(f"{name} must hold real numbers, got {w!r}")
    return xp.astype(raw, like.dtype)


def class_vector(w: Any, xp: Any, n_classes: int, name: str, like: Any) -> Any:
    """A per-class vector (class weights, focal alpha): shape (C,), finite, non-negative."""
    w = real_numbers(w, xp, name, like)
    if tuple(w.shape) != (n_classes,):
        raise ValueError(
            f"{name} must have shape ({n_classes},), one value per class, got {tuple(w.shape)}"
        )
    finite(w, xp, name)
    if not bool(xp.all(w >= 0)):
        raise ValueError(f"{name} must be non-negative")
    return w


def flag(value: Any, name: str, *, none: bool = False) -> bool | None:
    """A yes/no option: ``True`` or ``False`` (``None`` too with ``none``), never another value
    read as one (the string ``"False"`` is truthy: it had turned probabilities into logits)."""
    if value is None and none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        allowed = "True, False or None" if none else "True or False"
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    return bool(value)


def index_option(value: Any, name: str) -> int | None:
    """An integer label option such as ``ignore_index``: an int (not a bool) or ``None``."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer or None, got {value!r}")
    if not -(2**63) <= int(value) < 2**63:
        raise ValueError(f"{name} must fit in int64, got {value}")
    return int(value)


def temperature(value: float) -> float:
    """A loss's temperature, in [1e-15, 1e15]: the hessians divide by T^2 and distillation
    multiplies by it, which must stay a normal float32 (beyond, they had been NaN, or a
    Python OverflowError); any temperature in use lies far inside."""
    return in_range(value, "temperature", 1e-15, 1e15)


def in_range(
    value: float,
    name: str,
    low: float,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real scalar in an interval, e.g. ``gamma >= 0`` or ``0 <= label_smoothing <= 1``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = high is not None and (value >= high if high_open else value > high)
    if not np.isfinite(value) or too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open or high is None else "]"  # infinity is refused too
        upper = "inf" if high is None else f"{high:g}"
        raise ValueError(f"{name} must lie in {lo}{low:g}, {upper}{hi}, got {value!r}")
    return value
