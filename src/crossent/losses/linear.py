r"""Cross-entropy of a linear layer's output, chunk by chunk, without the (N, V) logits.

For a language model's last layer the logits :math:`Z = H W^\top + b` (N tokens, V words) are
by far the largest array of a training step: 4096 tokens x 256k words in float32 is 4 GiB. The
loss and every gradient need only one block of rows of :math:`Z` at a time:

.. math::

    \frac{\partial \ell}{\partial H} = G W, \qquad
    \frac{\partial \ell}{\partial W} = G^\top H, \qquad
    \frac{\partial \ell}{\partial b} = \mathbf{1}^\top G,

with :math:`G = \partial \ell / \partial Z` the cross-entropy gradient of the block (computed
by :func:`crossent.categorical_cross_entropy`, through the fused kernel when available, written
over the block's logits). So the extra memory is one block of logits, chosen from the shapes.
The products are written into preallocated arrays: NumPy's by SciPy's BLAS, those of PyTorch
CPU tensors that autograd does not track by PyTorch's (whose blocks' cross-entropy then runs
on NumPy views of them, through the fused kernel). Other libraries and GPU tensors use their
own ``matmul`` and the portable cross-entropy. Tensors that autograd tracks go through a
``torch.autograd.Function`` whose forward pass runs these same blocks untracked.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from scipy.linalg import blas

from .. import _array, _derivatives, _validation
from .categorical import categorical_cross_entropy

_BLOCK_ELEMENTS = 1 << 24  # 64 MiB of float32 logits per block by default
_MIN_BLOCK_ROWS = 512  # thinner blocks run the matrix products below the BLAS's speed


def _default_rows(n_rows: int, n_classes: int) -> int:
    """Rows per block when ``chunk_size`` is not given: as many as fit
    :data:`_BLOCK_ELEMENTS` logits, at least :data:`_MIN_BLOCK_ROWS`, at most ``n_rows``."""
    return min(n_rows, max(_MIN_BLOCK_ROWS, _BLOCK_ELEMENTS // n_classes))


def _matrix(x: Any, xp: Any, name: str, ndim: int) -> Any:
    """A finite, non-empty float array with ``ndim`` dimensions (checks of
    :func:`crossent._validation.predictions`)."""
    x = _validation.predictions(x, xp, name)
    if x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(x.shape)}")
    return x


def _product(out: Any, a: Any, b: Any, xp: Any, accumulate: bool = False) -> Any:
    """``a @ b`` written into ``out`` (added to it with ``accumulate``), and returned.

    NumPy: through SciPy's BLAS, with no temporary (``out`` is required). PyTorch CPU tensors
    that autograd does not track: ``torch.mm`` / ``addmm_`` into ``out``, no temporary either.
    Otherwise through the library's ``matmul``; a new array when ``out`` is None, and the
    weight gradient's accumulation takes a temporary of its size, since the Array API has no
    ``beta``."""
    if _array.is_numpy(xp):
        _matmul_into(out, a, b, beta=1.0 if accumulate else 0.0)
        return out
    if out is not None and all(_array.host_view(x) is not None for x in (out, a, b)):
        import torch

        return out.addmm_(a, b) if accumulate else torch.mm(a, b, out=out)
    product = xp.matmul(a, b)
    if out is None:
        return product
    if accumulate:
        out += product
    else:
        out[...] = product
    return out


def _matmul_into(out: np.ndarray, a: np.ndarray, b: np.ndarray, beta: float = 0.0) -> None:
    """``out = a @ b + beta * out`` in place, for a C-contiguous ``out`` and C- or
    Fortran-contiguous ``a`` and ``b``, through SciPy's BLAS ``gemm`` (no temporaries).

    In Fortran order a C-contiguous array is its transpose, so this computes ``out.T =
    b.T @ a.T`` on Fortran-ordered views, each operand passed as is or transposed by the
    ``trans`` flags. All three products of a block go through this one BLAS: mixing it with
    NumPy's (a separate OpenBLAS with its own threads) measured 15% slower here, the idle
    threads of one library competing with the other's.
    """
    gemm = blas.get_blas_funcs("gemm", (out,))
    first, trans_first = (b.T, False) if b.flags.c_contiguous else (b, True)
    second, trans_second = (a.T, False) if a.flags.c_contiguous else (a, True)
    result = gemm(
        1.0, first, second, trans_a=trans_first, trans_b=trans_second, beta=beta, c=out.T,
        overwrite_c=True,
    )  # fmt: skip
    if not np.shares_memory(result, out):  # pragma: no cover - BLAS copied c
        out[...] = result.T


@_derivatives.differentiable(max_order=1)
def linear_cross_entropy(
    hidden: Any,
    weight: Any,
    targets: Any,
    *,
    bias: Any = None,
    sample_weight: Any = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: str = "mean",
    chunk_size: int | None = None,
    backend: str | None = None,
) -> Any:
    r"""Softmax cross-entropy of ``hidden @ weight.T + bias`` computed in blocks of rows.

    .. math::

        z_i = c \tanh\!\bigl((W h_i + b) / c\bigr), \qquad
        \ell_i = \operatorname{CE}(z_i, t_i) + \zeta \operatorname{lse}(z_i)^2

    (without ``softcap``, :math:`z_i = W h_i + b`), with cross-entropy, label smoothing,
    ``ignore_index``, z-loss and ``sample_weight`` exactly as in
    :func:`crossent.categorical_cross_entropy` (``"mean"`` is :math:`\sum_i s_i \ell_i /
    \sum_i s_i` over the rows not ignored). The (N, V) logits are never held: each block of
    ``chunk_size`` rows is multiplied out, reduced to its loss and gradient, and folded into
    the gradients, so the extra memory is one (chunk_size, V) block (two with ``softcap``)
    besides the gradients themselves with the fused kernel, and a few temporaries of a
    block's size on the portable path.

    Gradients: through :func:`crossent.value_and_grad`, like every crossent loss;
    the gradient is the tuple ``(d_hidden, d_weight, d_bias)`` in the shapes of ``hidden``,
    ``weight`` and ``bias`` (``d_bias`` is ``None`` without a bias). PyTorch tensors that
    autograd tracks (a plain call in grad mode) go through a ``torch.autograd.Function``
    with the same blocks: for ``"mean"`` and ``"sum"`` the forward pass computes the
    gradients too and keeps them for ``backward`` (the memory of ``hidden`` and ``weight``,
    as Liger-Kernel's fused linear cross-entropy does; under ``torch.no_grad()`` only the
    loss is computed); for ``"none"``, ``backward`` recomputes the blocks weighted by the
    incoming gradient. Either way autograd holds no block of logits (at 256 x 16 x 4096 it
    had kept 31 MB, 7.4 times the logits; now 0.4 MB). Its ``backward`` cannot be
    differentiated again.

    Args:
        hidden: (N, D) inputs of the last layer, float32 or float64 (float16 and bfloat16
            are computed in float32 and returned in their dtype): NumPy arrays (read-only ones
            too: the inputs are only read), or those of another library whose arrays can be
            written into (PyTorch, for one), computed with that library and returned as its
            arrays (JAX's immutable arrays are not).
        weight: (V, D) weights of the layer (the output embedding).
        targets: (N,) integer class indices in [0, V), or ``ignore_index``.
        bias: optional (V,) bias.
        sample_weight: optional (N,) non-negative weights of the rows (tokens).
        softcap: :math:`c > 0`: logits are soft-capped to :math:`(-c, c)` before the loss
            (Gemma 2's final-logit soft-capping), ``None`` for none.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per row; gradients of the sum).
        chunk_size: rows per block; by default as many as fit 2**24 logits (64 MiB in
            float32), and at least 512: the products of thinner blocks run below the BLAS's
            speed (on the 2-core CPU at 1024 x 1024 x 131072, 128-row blocks took 9.6 s and
            512-row blocks 6.9 s). Larger blocks run faster and take more memory, on a GPU
            too (at 8192 x 4096 x 128256 on an H100: 130 rows 1.0 s and 4.2 GiB, 512 rows
            0.65 s and 4.5 GiB, 2092 rows 0.61 s and 6.0 GiB).
        ignore_index, label_smoothing, z_loss: as in
            :func:`crossent.categorical_cross_entropy`.
        backend: the path of each block's cross-entropy, as in
            :func:`crossent.categorical_cross_entropy` (``"auto"``, ``"fused"`` or
            ``"portable"``; ``None`` reads ``CROSSENT_BACKEND``). The products are the array
            library's either way.

    Example::

        >>> import numpy as np, crossent
        >>> rng = np.random.default_rng(0)
        >>> h, w = rng.normal(size=(6, 4)), rng.normal(size=(10, 4))
        >>> t = np.array([1, 2, 3, 4, 5, -100])
        >>> value, (d_h, d_w, d_b) = crossent.value_and_grad(crossent.linear_cross_entropy)(
        ...     h, w, t, chunk_size=4)
        >>> bool(np.isclose(value, crossent.categorical_cross_entropy(t, h @ w.T,
        ...                                                            from_logits=True)))
        True
        >>> d_w.shape, d_b is None
        ((10, 4), True)

    References: Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models" (Cut
    Cross-Entropy), ICLR 2025; Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM
    Training" (fused linear cross-entropy), 2024; Gemma Team, "Gemma 2", 2024 (soft-capping).
    """
    ignore_index = _validation.index_option(ignore_index, "ignore_index")
    order = _derivatives.order()
    xp = _array.namespace(hidden, weight)
    if order == 0 and _array.tracked(hidden, weight, bias):
        options = {
            "ignore_index": ignore_index, "label_smoothing": label_smoothing, "z_loss": z_loss,
            "softcap": softcap, "reduction": reduction, "chunk_size": chunk_size,
            "backend": backend,
        }  # fmt: skip
        return _autograd_function().apply(hidden, weight, bias, targets, sample_weight, options)
    numpy = _array.is_numpy(xp)
    out_dtype = xp.result_type(*(_validation.result_dtype(a, xp) for a in (hidden, weight)))
    hidden = _matrix(hidden, xp, "hidden", 2)
    weight = _matrix(weight, xp, "weight", 2)
    # The results are filled block by block: the library's new arrays must take writes (the
    # caller's own arrays are only read, and may be read-only).
    if not _array.array_api_compat.is_writeable_array(xp.empty_like(hidden[:0, :])):
        raise TypeError(
            f"hidden is a {type(hidden).__name__}, whose arrays cannot be written into; "
            f"linear_cross_entropy fills its results block by block: pass NumPy arrays or "
            f"PyTorch tensors"
        )
    targets = _array.asarray(targets, xp, hidden, "targets")
    dtype = xp.result_type(hidden.dtype, weight.dtype)
    hidden, weight = (
        np.ascontiguousarray(a, dtype=dtype) if numpy else xp.astype(a, dtype, copy=False)
        for a in (hidden, weight)
    )
    n_rows, dim = hidden.shape
    n_classes = weight.shape[0]
    if weight.shape[1] != dim:
        raise ValueError(
            f"weight has shape {tuple(weight.shape)} but hidden has {dim} features; weight "
            f"must be (n_classes, {dim})"
        )
    if tuple(targets.shape) != (n_rows,):
        raise ValueError(f"targets must have shape ({n_rows},), one class per row of hidden")
    if bias is not None:
        bias = xp.astype(_matrix(bias, xp, "bias", 1), dtype, copy=False)
        if tuple(bias.shape) != (n_classes,):
            raise ValueError(f"bias must have shape ({n_classes},), got {tuple(bias.shape)}")
    if softcap is not None:
        softcap = _validation.in_range(softcap, "softcap", 0.0, low_open=True)
        info = xp.finfo(dtype)
        low, high = float(info.smallest_normal), float(info.max)  # compared as Python floats
        if not low <= softcap <= high:  # else 0 or inf in the logits' dtype
            raise ValueError(
                f"softcap must lie within {dtype}'s range [{low:.3g}, {high:.3g}], the logits' "
                f"dtype, got {softcap!r}"
            )
    _validation.reduction(reduction)
    targets = _validation.class_indices(
        targets, xp, n_classes, ignore_index, "targets", shape_of="hidden's without its last axis"
    )
    if chunk_size is None:
        chunk_size = _default_rows(n_rows, n_classes)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    elif chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    chunk_size = int(min(chunk_size, n_rows))

    # Each block's loss is a weighted "sum" whose weights carry the mean's normaliser, so the
    # kernel writes the final gradient directly.
    device = _array.array_api_compat.device(hidden)
    row_weights = xp.ones((n_rows,), dtype=dtype, device=device)
    if sample_weight is not None:
        row_weights = xp.reshape(
            _validation.example_weights(sample_weight, xp, (n_rows,), "sample_weight", hidden),
            (n_rows,),
        )
    if reduction == "mean":
        counted = row_weights
        if ignore_index is not None:
            counted = xp.where(targets != ignore_index, row_weights, xp.zeros_like(row_weights))
        total = float(xp.sum(xp.astype(counted, xp.float64)))
        row_weights = row_weights / total if total > 0 else row_weights * 0
    block_reduction = "none" if reduction == "none" else "sum"
    options = {
        "from_logits": True,
        "ignore_index": ignore_index,
        "label_smoothing": label_smoothing,
        "z_loss": z_loss,
        "reduction": block_reduction,
        "backend": backend,
    }

    # NumPy arrays, and CPU tensors that autograd does not track: one logits buffer, the
    # products by the array library's BLAS into it, and the cross-entropy on a NumPy view of
    # it (the fused kernel, writing the gradient over the logits).
    logits = view = None
    if all(_array.host_view(a) is not None for a in (hidden, weight, bias) if a is not None):
        logits = xp.empty((chunk_size, n_classes), dtype=dtype, device=device)
        view = _array.host_view(logits)
    per_row = xp.empty((n_rows,), dtype=dtype, device=device) if reduction == "none" else None
    per_row_view = None if view is None or per_row is None else _array.host_view(per_row)
    ce_targets = targets if view is None else _array.host_view(targets)
    ce_weights = row_weights if view is None else _array.host_view(row_weights)
    total = 0.0
    d_hidden = xp.empty_like(hidden) if order else None
    d_weight = xp.empty_like(weight) if order else None  # the first block's product sets it
    d_bias = (
        xp.zeros((n_classes,), dtype=dtype, device=device) if order and bias is not None else None
    )
    loss_and_grad = _derivatives.value_and_grad(categorical_cross_entropy)

    for start in range(0, n_rows, chunk_size):
        stop = min(start + chunk_size, n_rows)
        h = hidden[start:stop, :]
        z = _product(None if logits is None else logits[: stop - start], h, weight.T, xp)
        if bias is not None:
            z += bias
        z_host = None if view is None else view[: stop - start]  # z's memory, as NumPy
        u = None  # the soft-cap's arguments z / c, kept for its derivative
        if softcap is not None and z_host is not None:  # in place; a block more for the derivative
            _raise_if_overflowed(z_host, start, stop, np, None)  # tanh would hide one: +-softcap
            z_host /= softcap
            u = z_host.copy() if order else None
            np.tanh(z_host, out=z_host)
            z_host *= softcap
        elif softcap is not None:  # out of place, so that autograd can follow
            u = z / softcap
            z = xp.tanh(u) * softcap
        block = (ce_targets[start:stop], z if z_host is None else z_host)
        weights = ce_weights[start:stop]
        try:
            if order:
                value, g = loss_and_grad(*block, sample_weight=weights, out=z_host, **options)
            else:
                value = categorical_cross_entropy(*block, sample_weight=weights, **options)
        except ValueError as error:
            _raise_if_overflowed(block[1], start, stop, np if z_host is not None else xp, error)
            raise
        if order:
            # d tanh(u) / du = 1 / cosh(u)^2: exact where tanh saturates, where 1 - tanh(u)^2
            # keeps only the digits of tanh's rounding (float32 at |u| = 8: 6% off; at 12: 0
            # instead of 1.5e-10). cosh overflows to infinity beyond |u| = 89 (float32): 0.
            if u is not None and z_host is not None:
                with np.errstate(over="ignore"):
                    np.cosh(u, out=u)
                    np.multiply(u, u, out=u)
                g /= u
            elif u is not None:
                g = g / xp.cosh(u) ** 2
            g = g if z_host is None else z  # the gradient, in the array library's type
            _product(d_hidden[start:stop, :], g, weight, xp)
            _product(d_weight, g.T, h, xp, accumulate=start > 0)
            if d_bias is not None:
                d_bias += xp.sum(g, axis=0)
        if per_row is not None:
            (per_row if per_row_view is None else per_row_view)[start:stop] = value
        else:
            total = total + value

    result = per_row if per_row is not None else _array.asarray(total, xp, hidden)
    cast = lambda a: None if a is None else xp.astype(a, out_dtype, copy=False)  # noqa: E731
    grad = tuple(cast(g) for g in (d_hidden, d_weight, d_bias)) if order else None
    return _derivatives.output(_derivatives.Derivatives(cast(result), grad))


@functools.cache
def _autograd_function() -> Any:
    """A ``torch.autograd.Function`` over :func:`linear_cross_entropy`'s blocks (defined on
    first use: PyTorch is optional). Its forward pass runs with autograd off, so the blocks
    take the untracked path: ``hidden @ weight.T`` into one preallocated block, the fused
    kernel on CPU tensors."""
    import torch
    from torch.autograd.function import once_differentiable

    class LinearCrossEntropy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, hidden, weight, bias, targets, sample_weight, options):
            if _array.array_api_compat.is_torch_array(sample_weight) and (
                sample_weight.requires_grad
            ):
                raise TypeError(
                    "sample_weight is a tensor that autograd tracks; linear_cross_entropy "
                    "gives no gradient for it: pass sample_weight.detach()"
                )
            ctx.options = options
            ctx.has_bias = bias is not None
            args = (hidden, weight, targets)
            kwargs = {"bias": bias, "sample_weight": sample_weight, **options}
            if options["reduction"] == "none":  # backward recomputes, weighted per row
                ctx.save_for_backward(hidden, weight, bias)
                ctx.rows = (targets, sample_weight)  # arrays of any kind, untracked
                return linear_cross_entropy(*args, **kwargs)
            value, grads = _derivatives.value_and_grad(linear_cross_entropy)(*args, **kwargs)
            ctx.save_for_backward(*grads)
            return value

        @staticmethod
        @once_differentiable
        def backward(ctx, grad_output):
            if ctx.options["reduction"] != "none":
                # loss.backward() passes 1: the kept gradients are returned as they are, so
                # that autograd can take them over as .grad without a copy of their size.
                unit = bool(grad_output == 1)
                grads = [g if g is None or unit else g * grad_output for g in ctx.saved_tensors]
            else:
                hidden, weight, bias = ctx.saved_tensors
                targets, sample_weight = ctx.rows
                weights = grad_output
                if sample_weight is not None:
                    weights = weights * torch.as_tensor(sample_weight, device=weights.device)
                options = ctx.options | {"reduction": "sum"}
                grads = _derivatives.value_and_grad(linear_cross_entropy)(
                    hidden, weight, targets, bias=bias, sample_weight=weights, **options
                )[1]
            d_hidden, d_weight, d_bias = grads
            return d_hidden, d_weight, d_bias if ctx.has_bias else None, None, None, None

    return LinearCrossEntropy


def _raise_if_overflowed(z: Any, start: int, stop: int, xp: Any, error: Exception | None) -> None:
    """Raise when a block's logits are not finite (finite ``hidden`` and ``weight`` whose
    product overflowed): before a soft-cap, which would turn them into +-softcap, and after
    the block's cross-entropy raised ``error``, instead of its "y_pred" message."""
    try:
        _validation.finite(z, xp, "logits")
    except ValueError:
        raise ValueError(
            f"the logits hidden @ weight.T (+ bias) of rows {start} to {stop - 1} overflow to "
            f"infinity in {z.dtype}; scale hidden or weight down"
        ) from error
