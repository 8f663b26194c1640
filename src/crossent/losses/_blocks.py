"""The portable path over blocks of rows: no temporary larger than one block.

A loss whose rows are independent (categorical: one row per example; binary: elementwise)
computes its terms block by block and writes each block's reduced-and-scaled loss, gradient
and hessian into arrays allocated once. The reduction cannot see the whole batch from inside a
block, so each term comes with its per-row factors :math:`c_i` from
:func:`~crossent.losses._reduction.reduction_scale`: the block's contribution is
:math:`\\sum_k c_{k,i}\\, \\mathrm{term}_k`.

Blocks hold :data:`NUMPY_ELEMENTS` elements for NumPy (sized for the CPU caches: 2**18 was
11-28% faster than 2**20 on the benchmark machine) and :data:`ARRAY_API_ELEMENTS` for other
libraries (large enough that each operation still fills a GPU). Libraries whose arrays cannot
be written into (JAX) compute in one block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import _array
from ._reduction import Term

NUMPY_ELEMENTS = 1 << 18
ARRAY_API_ELEMENTS = 1 << 24


def block_elements(pred: Any, xp: Any) -> int | None:
    """Elements per block for ``pred``, or None when it is computed in one block."""
    limit = NUMPY_ELEMENTS if _array.is_numpy(xp) else ARRAY_API_ELEMENTS
    if math.prod(pred.shape) <= limit or not _array.array_api_compat.is_writeable_array(pred):
        return None
    return limit


def _combine(parts: list, factors: list) -> Any:
    """:math:`\\sum_k c_k\\, \\mathrm{part}_k` over the parts present; a per-row factor spans
    the row."""
    total = None
    for c, part in zip(factors, parts, strict=True):
        if part is not None:
            c = c if isinstance(c, float) or c.ndim == part.ndim else c[:, None]
            total = c * part if total is None else total + c * part
    return total


def in_blocks(
    compute: Callable[..., list[Term]], pred: Any, inputs: list, scales: list,
    loss_shape: tuple, order: int, xp: Any, out: Any, elements: int,
) -> tuple[Any, Any, Any]:  # fmt: skip
    """Per-row weighted losses, gradient and hessian of ``compute`` over blocks of rows.

    ``pred`` is 2-D (rows, row size); ``inputs`` are arrays whose first axis is its rows (or
    None), sliced with it and passed to ``compute(pred_block, *input_blocks)``, which returns
    the terms of the block. ``scales`` are each term's factors: a float, or an array of the
    rows (or of ``loss_shape``). ``loss_shape`` is (rows,) for a loss per row, or ``pred``'s
    shape for one per element. The gradient goes into ``out`` (a NumPy array of ``pred``'s
    size) when given and C-contiguous.
    """
    device = _array.array_api_compat.device(pred)
    loss = xp.empty(loss_shape, dtype=pred.dtype, device=device)
    grad = hess = None
    if order >= 1:
        into = out is not None and out.flags.c_contiguous
        grad = xp.reshape(out, pred.shape) if into else xp.empty_like(pred)
    if order >= 2:
        hess = xp.empty_like(pred)
    rows, row_size = pred.shape
    step = max(1, elements // max(row_size, 1))  # at least one row per block
    for start in range(0, rows, step):
        sl = slice(start, min(start + step, rows))
        terms = compute(pred[sl, ...], *(None if a is None else a[sl, ...] for a in inputs))
        factors = [c if isinstance(c, float) else c[sl, ...] for c in scales]
        for target, kind in ((loss, "loss"), (grad, "grad"), (hess, "hess")):
            if target is not None:
                target[sl, ...] = _combine([getattr(t, kind) for t in terms], factors)
    return loss, grad, hess
