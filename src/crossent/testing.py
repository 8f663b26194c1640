"""Helpers for checking losses: finite differences and per-dtype tolerances.

Public so that users extending crossent (or checking their own losses) can reuse them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Relative tolerances that analytic results are held to, per floating dtype.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def _step(step: float) -> float:
    """A finite, positive step (0 had divided by zero, NaN given NaN derivatives)."""
    if isinstance(step, bool) or not isinstance(step, (int, float, np.floating, np.integer)):
        raise TypeError(f"step must be a positive number, got {step!r}")
    if not 0 < float(step) < np.inf:
        raise ValueError(f"step must be a positive finite number, got {step!r}")
    return float(step)


def finite_difference_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, *, step: float = 1e-4
) -> np.ndarray:
    r"""Gradient of scalar ``f`` at ``x`` by 4th-order central differences (float64).

    .. math:: f'(x) \approx \frac{-f(x + 2h) + 8 f(x + h) - 8 f(x - h) + f(x - 2h)}{12 h}

    The truncation error is :math:`O(h^4)`; with ``h = 1e-4`` and smooth ``f`` the result is
    good to about 1e-9 relative. ``x`` is not modified.
    """
    step = _step(step)
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        values = []
        for k in (2, 1, -1, -2):
            flat[i] = original + k * step
            values.append(float(f(x)))
        flat[i] = original
        out[i] = (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * step)
    return grad


def finite_difference_directional(
    f: Callable[[np.ndarray], float], x: np.ndarray, direction: np.ndarray, *, step: float = 1e-4
) -> float:
    """Derivative of ``f`` at ``x`` along ``direction`` by 4th-order central differences.

    Useful where ``x`` is constrained (a probability row must keep summing to 1): choose a
    direction that stays in the constraint set and compare with ``grad @ direction``.
    """
    step = _step(step)
    x = np.asarray(x, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    if d.shape != x.shape:
        raise ValueError(
            f"direction has shape {d.shape} but x has shape {x.shape}; they must match"
        )
    if not np.all(np.isfinite(d)):
        raise ValueError("direction contains NaN or infinity; all values must be finite")
    values = [float(f(x + k * step * d)) for k in (2, 1, -1, -2)]
    return (-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * step)


def assert_allclose(actual, desired, *, rtol: float, atol: float = 0.0, name: str = "") -> None:
    """``numpy.testing.assert_allclose`` that also reports how many elements differ and where."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    if actual.shape != desired.shape:
        raise AssertionError(f"{name}: shape {actual.shape} != {desired.shape}")
    bad = ~np.isclose(actual, desired, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        where = np.argwhere(bad)[:5].tolist()
        err = np.abs(actual[bad] - desired[bad])  # of the elements that differ
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.size} elements differ (rtol={rtol}, atol={atol}); "
            f"first at {where}; max abs error {err.max():.3g}"
        )
