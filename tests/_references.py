"""Independent float64 references (SciPy) for the numerics tests."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax


def categorical_per_row(y, z, *, temperature=1.0, z_loss=0.0):
    """Per-row softmax cross-entropy of logits ``z / T`` with integer labels ``y``, plus
    ``z_loss * lse**2`` (PaLM), and its gradient with respect to ``z``, in float64."""
    u = np.asarray(z, dtype=np.float64) / temperature
    rows = np.arange(u.shape[0])
    lse = logsumexp(u, axis=1)
    p = softmax(u, axis=1)
    onehot = np.zeros_like(u)
    onehot[rows, y] = 1
    value = lse - u[rows, y] + z_loss * lse**2
    grad = (p - onehot + 2 * z_loss * lse[:, None] * p) / temperature
    return value, grad
