"""Fast paths for NumPy inputs: fused Numba kernels, and the choice between them and the
portable path.

Three ways compute the same numbers (float64 within 1e-12 relative, float32 within 1e-5,
relative to an array's largest value; in the fused kernels a near-certain row's loss and its
target's gradient entry are exact to one rounding of 1, as in PyTorch and optax, where the
portable path keeps full relative accuracy):

* ``"portable"``: the array-API math of :mod:`crossent.losses`, for every array library;
  large inputs run over blocks of rows, so no temporary is larger than one block
  (:mod:`crossent.losses._blocks`);
* ``"fused"``: one multi-threaded Numba kernel per loss family that reads the logits once,
  checks them (finite values, label range) on the way, and writes loss and gradient in the
  same pass (:mod:`crossent.kernels._numba`);
* ``"auto"`` (the default): ``"fused"`` where it applies and is faster, else ``"portable"``.

The choice is made per call by the ``backend=`` keyword of the losses, or for a whole process
by the environment variable ``CROSSENT_BACKEND`` (read at each call; the keyword wins).
PyTorch CPU tensors that autograd does not track take the fused kernels too, through NumPy
views of their memory (:func:`on_host_views`); the results come back as tensors.

The fused kernels apply to NumPy float32/float64 logits (``from_logits=True``) with the class
axis last, for values and gradients (hessians use the portable path). "Auto" uses them from
:data:`FUSED_MIN_ELEMENTS` logits up. Per call the kernels are faster at every size measured
on the 2-core benchmark machine (150 vs 525 µs at 128 x 10), but a kernel's first call in a
process costs 0.2-0.45 s to load from the disk cache (seconds to compile the first time),
which a few small calls never win back. Kernels use one thread per
:data:`PARALLEL_MIN_ELEMENTS` elements (measured on the same machine; see the README's
Performance section). Numba is an optional dependency
(``pip install crossent[fast]``): the kernels compile on first use, never at import, and
are cached on disk (next to the package, or in a user cache directory when the package
directory is read-only).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _array, _derivatives, _validation

BACKENDS = ("auto", "fused", "portable")
FUSED_MIN_ELEMENTS = 16384
PARALLEL_MIN_ELEMENTS = 1 << 17
CHUNKS_PER_THREAD = 64  # blocks are handed out in up to this many chunks per thread
# Work split of the kernels
ROW_BLOCK_ELEMENTS = 8192  # categorical: rows of about this many logits per block
BINARY_BLOCK = 16384  # binary: elements per block
ENV_VAR = "CROSSENT_BACKEND"

_numba_module: Any = None


@functools.cache
def numba_available() -> bool:
    """Whether Numba (>= 0.59) can be imported (asked once per process)."""
    try:
        import numba
    except ImportError:
        return False
    major, minor = (int(p) for p in numba.__version__.split(".")[:2])
    return (major, minor) >= (0, 59)


def cache_dir() -> str | None:
    """Where compiled kernels are cached: ``None`` for Numba's default beside the package.

    When ``NUMBA_CACHE_DIR`` is unset and the package directory is not writable (a
    system-wide or read-only install), a per-user directory is used instead:
    ``$XDG_CACHE_HOME/crossent/numba`` (``~/.cache/crossent/numba``).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    here = os.path.dirname(os.path.abspath(__file__))
    if os.access(here, os.W_OK):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "crossent", "numba")


def kernels() -> Any:
    """The compiled-on-demand kernel module (imports Numba on first use)."""
    global _numba_module
    if _numba_module is None:
        directory = cache_dir()
        if directory is not None:
            import numba

            os.makedirs(directory, exist_ok=True)
            numba.config.CACHE_DIR = directory
        from . import _numba

        _numba_module = _numba
    return _numba_module


def resolve(backend: str | None) -> str:
    """The requested backend: the keyword, else ``CROSSENT_BACKEND``, else ``"auto"``."""
    if backend is None:
        backend = os.environ.get(ENV_VAR, "auto") or "auto"
        source = f"environment variable {ENV_VAR}"
    else:
        source = "backend"
    if backend not in BACKENDS:
        raise ValueError(f"{source} must be one of {BACKENDS}, got {backend!r}")
    if backend == "fused" and not numba_available():
        raise ValueError(
            'backend="fused" needs Numba >= 0.59 (pip install "crossent[fast]"); '
            'use backend="portable" or "auto"'
        )
    return backend


def use_fused(backend: str, y_pred: Any, from_logits: bool, order: int) -> bool:
    """Whether this call goes to a fused kernel (``backend`` already resolved).

    The kernels take NumPy float32/float64 logits, values and first derivatives; "auto" also
    wants at least :data:`FUSED_MIN_ELEMENTS` logits. Anything else (other array libraries,
    float16, probabilities, hessians) goes to the portable path, also when "fused" is forced.
    """
    if backend == "portable" or not from_logits or order > 1:
        return False
    if not isinstance(y_pred, np.ndarray) or y_pred.dtype not in (np.float32, np.float64):
        return False
    if backend == "auto" and (y_pred.size < FUSED_MIN_ELEMENTS or not numba_available()):
        return False
    return y_pred.size > 0


def on_host_views(impl: Callable) -> Callable:
    """Wrap a loss implementation ``impl(y_true, y_pred, *, backend, from_logits, out, ...)``
    so that PyTorch CPU tensors reach the fused kernels: when ``y_pred`` is such a tensor,
    every tensor argument has a NumPy view (:func:`crossent._array.host_view`: on the CPU,
    not tracked by autograd) and the kernels apply to the view (:func:`use_fused`), ``impl``
    runs on the views and its arrays come back as tensors over the same memory. Anything
    else (small inputs under "auto", tracked tensors, GPU tensors, an ``out=`` tensor, which
    only NumPy arrays may be) goes to ``impl`` as it is: the portable path."""

    @functools.wraps(impl)
    def run(y_true: Any, y_pred: Any, **options: Any) -> Any:
        if isinstance(y_pred, np.ndarray) or not _array.array_api_compat.is_torch_array(y_pred):
            return impl(y_true, y_pred, **options)
        args = {"y_true": y_true, "y_pred": y_pred, **options}
        tensors = {k: v for k, v in args.items() if _array.array_api_compat.is_torch_array(v)}
        views = {k: _array.host_view(v) for k, v in tensors.items()}
        order = _derivatives.order()
        if (
            options["out"] is not None
            or any(v is None for v in views.values())
            or not use_fused(resolve(options["backend"]), views["y_pred"],
                             options["from_logits"], order)
        ):  # fmt: skip
            return impl(y_true, y_pred, **options)
        import torch

        result = impl(**(args | views))
        as_tensor = lambda a: None if a is None else torch.from_numpy(np.asarray(a))  # noqa: E731
        if order == 0:
            return as_tensor(result)
        return _derivatives.Derivatives(*(as_tensor(a) for a in (result.value, result.grad,
                                                                 result.hess)))  # fmt: skip

    return run


def gradient_buffer(out: Any, like: np.ndarray, dtype: Any, name: str = "out") -> np.ndarray | None:
    """Check a caller's ``out=`` buffer: a writeable NumPy array of ``like``'s shape and of
    ``dtype``, the caller's (float16, whose gradient is computed in float32, included), that
    is either ``like`` itself or does not overlap it."""
    if out is None:
        return None
    if _derivatives.order() == 0:
        raise ValueError(
            f"{name} receives the gradient: call the loss through crossent.value_and_grad"
        )
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(out).__name__}")
    if not isinstance(like, np.ndarray):
        raise TypeError(
            f"{name} takes NumPy arrays, for losses computed with NumPy: here y_pred or y_true "
            f"is a {type(like).__module__.split('.')[0]} array"
        )
    if out.shape != like.shape or out.dtype != dtype:
        raise ValueError(
            f"{name} must have y_pred's shape {like.shape} and dtype {np.dtype(dtype)}, got "
            f"{out.shape} and {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; the gradient cannot be written into it")
    if not _same_view(out, like) and _overlap(out, like):
        raise ValueError(
            f"{name} overlaps y_pred without being it: the gradient would overwrite values "
            f"not yet read. Pass y_pred itself (its memory then holds the gradient) or a "
            f"separate array"
        )
    return out


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays share an element (their bounds first, then exactly within a bounded
    effort; beyond it they are taken to)."""
    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except np.exceptions.TooHardError:
        return True


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays are the same elements of the same memory (address, shape, strides)."""
    address = lambda x: x.__array_interface__["data"][0]  # noqa: E731
    return address(a) == address(b) and a.shape == b.shape and a.strides == b.strides


def _rows_view(a: np.ndarray, n_classes: int) -> np.ndarray:
    """A C-contiguous (rows, classes) view of ``a``, or a contiguous copy."""
    return np.ascontiguousarray(a).reshape(-1, n_classes)


def _plain(a: Any, dtype: Any) -> np.ndarray:
    """``a`` as a C-contiguous, writeable array (Numba compiles read-only arrays separately);
    ``a`` itself when it is one already (checked here: ``np.require`` took 0.9 µs to say so,
    several times a call)."""
    if type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.require(a, dtype=dtype, requirements=["C", "W"])


def _binary_targets(y: np.ndarray, dtype: Any) -> np.ndarray:
    """Binary targets as the kernel reads them: without a conversion pass for the common
    dtypes (each dtype is one more compilation), else converted to the logits' dtype."""
    if y.dtype == np.bool_:
        y = y.view(np.uint8)
    if y.dtype in (dtype, np.float64, np.int64, np.int32, np.uint8):
        return _plain(y, y.dtype)
    return _plain(y, dtype)


def _flat_scale(scale: Any, shape: tuple, dtype: Any) -> np.ndarray:
    """A reduction scale as a flat array: length 1 when it is a scalar, else broadcast to
    ``shape``."""
    scale = np.asarray(scale, dtype=dtype)
    if scale.ndim == 0:
        return _plain(scale.reshape(1), dtype)
    return _plain(np.broadcast_to(scale, shape), dtype).reshape(-1)


def _gradient_target(like: np.ndarray, out: Any, want_grad: bool) -> tuple[np.ndarray, bool]:
    """The array a kernel writes the gradient into, of ``like``'s shape (no rows without
    ``want_grad``; the caller's ``out`` when C-contiguous, else a new array), and whether it
    overlaps ``like`` (``out`` is the logits), which the kernels stage through scratch rows."""
    if not want_grad:
        return np.empty((0, *like.shape[1:]), dtype=like.dtype), False
    if out is not None and out.flags.c_contiguous:
        grad = out.reshape(like.shape)
    else:
        grad = np.empty_like(like)
    return grad, np.may_share_memory(grad, like)


def _total(total: float, dtype: np.dtype) -> Any:
    """A kernel's float64 loss total in the logits' dtype: infinity where float32 cannot hold
    it, without NumPy's cast warning (the caller's overflow check raises)."""
    if abs(total) > float(np.finfo(dtype).max):
        total = math.copysign(math.inf, total)
    return dtype.type(total)


def _check(status: int, recheck_targets: Callable[[], None]) -> None:
    """After a kernel: on a failed block, raise the portable path's error. Non-finite logits
    come first, as in the portable checks; the kernels find them exactly (a sum of ``x * 0``),
    so their error is raised here (with ``out=y_pred`` the logits hold gradient values by
    then, and could not be checked again). Bad labels or targets are checked again by
    ``recheck_targets``, the portable check, which raises its own message."""
    if not status:
        return
    if status == kernels().STATUS_NONFINITE:
        raise _validation.nonfinite_error("y_pred")
    recheck_targets()
    raise AssertionError("a fused kernel rejected its input but the portable checks did not")


def fused_categorical(
    pred: np.ndarray,
    soft: Any,
    labels: Any,
    wa: list,
    scales: list,
    options: dict,
    order: int,
    out: Any,
    per_row: bool,
) -> tuple[Any, Any]:
    """The weighted loss (per example with ``per_row``, else its sum) and the gradient (class
    axis last) from the fused kernel.

    ``pred`` has the class axis last. ``out`` (class axis last) receives the gradient when
    given; it may be ``pred`` itself.
    """
    k = kernels()
    dtype = pred.dtype
    one = dtype.type
    n_classes = pred.shape[-1]
    z = _rows_view(pred, n_classes)
    n_rows = z.shape[0]
    factor = np.ones(n_classes, dtype=dtype)
    for f in wa:
        factor = _plain(factor * np.asarray(f, dtype=dtype), dtype)
    want_grad = order >= 1
    grad, in_place = _gradient_target(z, out, want_grad)
    scale_ce = _flat_scale(scales[0], pred.shape[:-1], dtype)
    scale_z = _flat_scale(scales[1] if len(scales) > 1 else 0.0, pred.shape[:-1], dtype)
    loss = np.empty(n_rows if per_row else 0, dtype=dtype)
    has_ignore = options["ignore_index"] is not None
    ignore = np.int64(options["ignore_index"] if has_ignore else 0)
    eps = options["label_smoothing"]
    keep, spread = one(1.0 - eps), one(eps / n_classes)
    inv_t = one(1.0 / options["temperature"])
    z_loss = one(options["z_loss"])
    gamma = one(options["gamma"])
    if labels is not None:
        y = _plain(labels, np.int64).reshape(-1)
    else:
        y = np.zeros(0, dtype=np.int64)
    if soft is None and options["gamma"] == 0:
        total, status = k.categorical_labels(
            z, y, ignore, has_ignore, factor, one(factor.sum()), keep, spread, inv_t,
            one(2 * z_loss), scale_ce, scale_z, grad, want_grad, in_place, loss,
        )  # fmt: skip
    else:
        q = np.zeros((0, n_classes), dtype) if soft is None else _plain(soft, dtype)
        q = q.reshape(-1, n_classes)
        total, status = k.categorical_general(
            z, y, ignore, has_ignore, q, factor, keep, spread, inv_t, one(2 * z_loss), gamma,
            scale_ce, scale_z, grad, want_grad, in_place, loss,
        )  # fmt: skip

    def recheck_labels() -> None:
        if labels is not None:
            xp = _array.namespace(labels)
            _validation.class_indices(labels, xp, n_classes, options["ignore_index"], "y_true")

    _check(status, recheck_labels)
    value = loss.reshape(pred.shape[:-1]) if per_row else _total(total, dtype)
    return value, (grad.reshape(pred.shape) if want_grad else None)


def fused_binary(
    z: np.ndarray,
    y: Any,
    pos_weight: Any,
    scale: Any,
    options: dict,
    order: int,
    out: Any,
) -> tuple[Any, Any]:
    """The weighted loss (per element for ``reduction="none"``, else its sum) and the gradient
    of binary cross-entropy / focal loss.

    ``y`` are the unsmoothed targets; the kernel checks their range as given, converts and
    smooths them as it reads them. Targets of the logits' dtype, float64, int64, int32 and
    bool (read as uint8) go in as they are; any other dtype is converted to the logits' first.
    """
    k = kernels()
    dtype = z.dtype
    one = dtype.type
    flat = np.ascontiguousarray(z).reshape(-1)
    targets = _binary_targets(y, dtype).reshape(-1)
    n_labels = z.shape[-1]
    wp = np.ones(1, dtype=dtype) if pos_weight is None else np.asarray(pos_weight, dtype=dtype)
    wp = _plain(wp.reshape(-1) if wp.size > 1 else wp.reshape(1), dtype)
    if wp.size > 1 and wp.size != n_labels:  # pragma: no cover - validated by the caller
        raise ValueError("pos_weight does not match the last axis")
    flat_scale = _flat_scale(scale, z.shape, dtype)
    grad, in_place = _gradient_target(flat, out, order >= 1)
    per_element = options["reduction"] == "none"
    loss = np.empty_like(flat) if per_element else np.empty(0, dtype=dtype)
    alpha = options["alpha"]
    total, status = k.binary(
        flat, targets, wp, one(1.0 - options["label_smoothing"]),
        one(options["label_smoothing"] / 2), one(options["gamma"]),
        one(-1.0 if alpha is None else alpha), flat_scale, grad, in_place, loss,
    )  # fmt: skip

    _check(status, lambda: _validation.targets_in_unit_interval(y, _array.namespace(y), "y_true"))
    value = loss.reshape(z.shape) if per_element else _total(total, dtype)
    return value, (grad.reshape(z.shape) if order >= 1 else None)
