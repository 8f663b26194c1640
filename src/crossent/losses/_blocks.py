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
from ._reduction import Term, scaled

NUMPY_ELEMENTS = 1 << 18
ARRAY_API_ELEMENTS = 1 << 24


def block_elements(pred: Any, xp: Any) -> int | None:
    """Elements per block for ``pred``, or None when it is computed in one block."""
    limit = NUMPY_ELEMENTS if _array.is_numpy(xp) else ARRAY_API_ELEMENTS
    if math.prod(pred.shape) <= limit or not _array.array_api_compat.is_writeable_array(pred):
        return None
    return limit


def _combine(parts: list, factors: list, xp: Any) -> Any:
    """:math:`\\sum_k c_k\\, \\mathrm{part}_k` over the parts present (0 where a factor is,
    :func:`~crossent.losses._reduction.scaled`); a per-row factor spans the row."""
    total = None
    for c, part in zip(factors, parts, strict=True):
        if part is not None:
            c = c if isinstance(c, float) or c.ndim == part.ndim else c[:, None]
            term = scaled(c, part, xp)
            total = term if total is None else total + term
    return total


def in_blocks(
    compute: Callable[..., list[Term]], pred: Any, inputs: list, scales: list,
    per_element: bool, order: int, xp: Any, out: Any, elements: int,
) -> tuple[Any, Any, Any]:  # fmt: skip
    """Weighted losses, gradient and hessian of ``compute`` over blocks of rows.

    The rows are those of ``pred``'s last axis (single elements of a 1-D ``pred`` whose loss
    is ``per_element``). ``inputs`` (arrays or None) and the array ``scales`` (each term's
    factors, else a float) have ``pred``'s shape or the per-row shape ``pred.shape[:-1]``;
    their blocks go to ``compute(pred_block, *input_blocks)``, which returns the block's
    terms. Returns the loss per row (``pred.shape[:-1]``) or per element (``pred.shape``),
    and gradient and hessian of ``pred``'s shape; the gradient in ``out`` (a NumPy array)
    when it is given and C-contiguous.
    """
    shape = tuple(pred.shape)
    row_size = shape[-1] if pred.ndim > 1 or not per_element else 1
    flat = xp.reshape(pred, (-1, row_size))
    rows = flat.shape[0]

    def by_rows(a: Any) -> Any:
        if a is None or isinstance(a, float):
            return a
        return xp.reshape(a, (rows, -1) if a.ndim == pred.ndim else (rows,))

    inputs = [by_rows(a) for a in inputs]
    scales = [by_rows(c) for c in scales]
    device = _array.array_api_compat.device(pred)
    loss = xp.empty(flat.shape if per_element else (rows,), dtype=pred.dtype, device=device)
    grad = hess = None
    if order >= 1:
        into = out is not None and out.flags.c_contiguous
        grad = xp.reshape(out, flat.shape) if into else xp.empty_like(flat)
    if order >= 2:
        hess = xp.empty_like(flat)
    step = max(1, elements // row_size)  # at least one row per block
    for start in range(0, rows, step):
        sl = slice(start, min(start + step, rows))
        terms = compute(flat[sl, ...], *(None if a is None else a[sl, ...] for a in inputs))
        factors = [c if isinstance(c, float) else c[sl, ...] for c in scales]
        for target, kind in ((loss, "loss"), (grad, "grad"), (hess, "hess")):
            if target is not None:
                target[sl, ...] = _combine([getattr(t, kind) for t in terms], factors, xp)
    return (
        xp.reshape(loss, shape if per_element else shape[:-1]),
        None if grad is None else xp.reshape(grad, shape),
        None if hess is None else xp.reshape(hess, shape),
    )
