r"""Fused Numba kernels: loss and gradient of a whole batch in one multi-threaded call.

Imported only when a fused path is first taken (see :func:`crossent.kernels.kernels`); each
kernel compiles on its first call for a dtype and is cached on disk (``cache=True``).

Speed comes from a few things, and is fragile (check ``python -m benchmarks`` after edits):

* ``exp``, ``log1p`` and ``log`` are polynomials on the exponent/mantissa split (below)
  instead of ``math.exp``: the LLVM that Numba ships has no vector math library, so
  ``math.exp`` in a loop stays scalar. ``exp`` returns 0 below ``exp(-64)`` (float32) or
  ``exp(-600)`` (float64), which keeps later products out of the slow subnormal range;
* ``fastmath`` is ``reassoc``/``nsz``/``arcp``/``contract`` (reductions vectorise) but never
  ``nnan``/``ninf``, so the NaN/infinity checks survive; the row max is taken over the
  floats' bit patterns as integers, because integer max reductions vectorise;
* helpers are plain ``@njit`` functions (and ``@overload`` s) that LLVM inlines, not Numba's
  IR-level ``inline="always"``, which made each kernel's first compilation twice as long
  (categorical labels 19.6 s -> 8.6 s, binary 8.8 s -> 3.9 s) for no speed;
* each function with a hot loop calls :func:`_wide_vectors`, which lets LLVM use 512-bit
  vectors where the processor has them (its default on AVX-512 processors is 256 bits).
  Measured here (Xeon, 2 threads, float32, p20 of three A/B pairs): binary 10M 21-24 ->
  16-20 ms, 8192 x 1000 6.2-7.5 -> 5.2-6.7 ms, 4096 x 32000 into ``out=`` 89 -> 81 ms; no
  change at 65536 x 10;
* every float constant carries the array's dtype (a Python ``1`` turns float32 arithmetic
  into float64), and loops run over slices indexed from 0 (no wrap-around code);
* rows are processed in blocks (``prange`` over blocks), each row read from memory once and
  re-read from cache by the following passes; no (N, C) temporary exists. With fewer than
  ``SMALL_CLASSES`` classes the passes run across the rows of a block instead.

Validation is folded in: every row's values are summed as ``x * 0`` (NaN for any infinity or
NaN), integer labels are range-checked before use, and binary targets are counted outside
[0, 1]. A failing block records a status code, and a kernel returns the first in the
order of the portable checks (non-finite values before bad labels or targets); the caller
raises the library's usual error for non-finite logits (with ``out=y_pred`` they hold
gradient values by then), and re-runs the portable check of labels or targets for theirs.
Losses are summed inside the kernels, per block in float64, and a kernel returns their total
(no per-row or per-element loss array unless ``reduction="none"`` asks for one).

Row-level formulas (shared with :mod:`crossent.losses.categorical`; :math:`x = z / T`):
:math:`\operatorname{lse} = m + \log\sum_j e^{x_j - m}`, :math:`\ell = \sum_c g_c
(\operatorname{lse} - x_c)` for cross-entropy with :math:`g_c = w_c \alpha_c q_c`, and
gradient :math:`\bigl(c_1 (d_j - p_j \sum_c d_c) + 2 c_2 \zeta\, \operatorname{lse}\, p_j
\bigr) / T` with :math:`d = \varphi'` (:math:`-g` for cross-entropy) and :math:`c_1, c_2` the
rows' reduction scales (arrays of one value when uniform; 0 for rows whose label is
``ignore_index``, which the kernels detect themselves).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload
from numba.np.ufunc.parallel import _launch_threads

from . import BINARY_BLOCK, CHUNKS_PER_THREAD, PARALLEL_MIN_ELEMENTS, ROW_BLOCK_ELEMENTS

FASTMATH = {"reassoc", "nsz", "arcp", "contract"}
SMALL_CLASSES = 64  # below this, categorical_labels vectorises across rows
STATUS_OK, STATUS_NONFINITE, STATUS_LABEL, STATUS_TARGET = 0, 1, 2, 3
SPAN = 1024  # binary: elements summed in the input dtype before a float64 sum
ROW_LANES = 16  # rows of up to this many classes are summed and scaled as one masked vector

_LOG2E = 1.4426950408889634
# ln 2 split so that n * _LN2_HI is exact for |n| < 2**11 (Cody and Waite, 1980).
_LN2_HI = 6.93145751953125e-1
_LN2_LO = 1.42860682030941723212e-6


# exp(x) is returned as 0 below these cut-offs (exp(-64) = 1.6e-28, exp(-600) = 2.7e-261):
# far below rounding next to the row's largest term (which is 1), and it keeps the products
# of these values with small reduction scales out of the subnormal range, whose arithmetic
# is up to 100 times slower on x86 (a 10x slowdown of whole kernels was measured).
_CUT32 = -64.0
_CUT64 = -600.0


@intrinsic
def _wide_vectors(typingctx):
    """Mark the function that calls this as preferring 512-bit vectors (LLVM's
    ``"prefer-vector-width"="512"`` attribute; no code is emitted). LLVM otherwise limits
    AVX-512 processors to 256-bit vectors; each function with a hot loop calls it first."""

    def codegen(context, builder, signature, args):
        # llvmlite checks attribute names against a fixed list that has no string
        # attributes; the set's own add() stores one, printed as given in the IR. Should a
        # later llvmlite store attributes otherwise, the kernels keep working at 256 bits.
        try:
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except TypeError:  # pragma: no cover - depends on llvmlite's internals
            pass
        return context.get_dummy_value()

    return types.none(), codegen


def _row_arrays(*arrays):
    """Whether the arrays are 1-D, C-contiguous and of one float dtype: what the masked row
    intrinsics below accept (checked when a kernel is typed)."""
    if not all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays):
        return False
    dtype = arrays[0].dtype
    return dtype in (types.float32, types.float64) and all(a.dtype == dtype for a in arrays)


def _llvm_function(builder, name, signature):
    """The module's declaration of the LLVM function ``name``, added on first use."""
    module = builder.module
    return module.globals.get(name) or ir.Function(module, signature, name)


def _splat(builder, value, vector_type):
    """``value`` in every lane of ``vector_type``."""
    one = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value, ir.IntType(32)(0))
    lanes = ir.Constant(ir.VectorType(ir.IntType(32), ROW_LANES), [0] * ROW_LANES)
    return builder.shuffle_vector(one, one, lanes)


class _Row(NamedTuple):
    """A row of at most ``ROW_LANES`` values for LLVM's masked loads and stores: the vector
    type of ``ROW_LANES`` values of the array's dtype, the address of the row's first value
    as a pointer to one, the mask of the row's lanes, an element's alignment, and the name
    suffix of ``llvm.masked.load`` / ``store`` (mangled for typed or opaque pointers,
    whichever the installed llvmlite writes)."""

    vector: Any
    address: Any
    mask: Any
    align: Any
    suffix: str


def _masked_row(context, builder, array_type, array, start, count):
    """``array[start:start + count]`` as a :class:`_Row`."""
    vector = ir.VectorType(context.get_value_type(array_type.dtype), ROW_LANES)
    data = context.make_array(array_type)(context, builder, array).data
    address = builder.bitcast(builder.gep(data, [start]), vector.as_pointer())
    lane_numbers = ir.VectorType(ir.IntType(64), ROW_LANES)
    below = _splat(builder, count, lane_numbers)
    mask = builder.icmp_signed("<", ir.Constant(lane_numbers, list(range(ROW_LANES))), below)
    align = ir.IntType(32)(array_type.dtype.bitwidth // 8)
    suffix = f"v{ROW_LANES}f{array_type.dtype.bitwidth}"
    typed = getattr(ir.types, "ir_layer_typed_pointers_enabled", True)
    return _Row(vector, address, mask, align, f"{suffix}.p0{suffix if typed else ''}")


def _masked_load(builder, row):
    """The row's values, 0 in the lanes past it (which ``llvm.masked.load`` does not read)."""
    load = _llvm_function(
        builder, f"llvm.masked.load.{row.suffix}",
        ir.FunctionType(row.vector, [row.address.type, row.align.type, row.mask.type, row.vector]),
    )  # fmt: skip
    zeros = ir.Constant(row.vector, [0.0] * ROW_LANES)
    return builder.call(load, [row.address, row.align, row.mask, zeros])


@intrinsic
def row_sum(typingctx, array, start, count):
    """``sum(array[start:start + count])`` for ``count <= ROW_LANES``: one masked vector load
    and a vector reduction. LLVM leaves a loop over a few elements of a run-time count
    scalar; one vector per row summed rows of 10 float32 2.9x faster (1.31 against 3.80 ns
    per row, in L1)."""
    if not _row_arrays(array):
        return None

    def codegen(context, builder, signature, args):
        values = _masked_load(builder, _masked_row(context, builder, signature.args[0], *args))
        element = values.type.element
        reduce = _llvm_function(
            builder, f"llvm.vector.reduce.fadd.v{ROW_LANES}f{signature.args[0].dtype.bitwidth}",
            ir.FunctionType(element, [element, values.type]),
        )  # fmt: skip
        zero = ir.Constant(element, 0.0)
        return builder.call(reduce, [zero, values], fastmath=("reassoc", "nsz"))

    return array.dtype(array, types.intp, types.intp), codegen


@intrinsic
def row_scale(typingctx, source, dest, start, count, factor):
    """``dest[start:start + count] = factor * source[start:start + count]`` for ``count <=
    ROW_LANES``: one masked load, product and masked store (lanes past ``count`` are neither
    read nor written); 4x faster than LLVM's loop for rows of 10 float32 (0.89 against 3.66
    ns per row, in L1)."""
    if not _row_arrays(source, dest) or factor != source.dtype:
        return None

    def codegen(context, builder, signature, args):
        source_array, dest_array, start, count, factor = args
        source_type, dest_type = signature.args[:2]
        values = _masked_load(
            builder, _masked_row(context, builder, source_type, source_array, start, count)
        )
        row = _masked_row(context, builder, dest_type, dest_array, start, count)
        store = _llvm_function(
            builder, f"llvm.masked.store.{row.suffix}",
            ir.FunctionType(
                ir.VoidType(), [row.vector, row.address.type, row.align.type, row.mask.type]
            ),
        )  # fmt: skip
        product = builder.fmul(values, _splat(builder, factor, row.vector))
        builder.call(store, [product, row.address, row.align, row.mask])
        return context.get_dummy_value()

    return types.none(source, dest, types.intp, types.intp, factor), codegen


def _threading_layer_call(builder, name, returns, arguments):
    """A call of ``name`` of Numba's threading layer, declared as Numba's parallel loops
    declare it."""
    signature = ir.FunctionType(returns, [a.type for a in arguments])
    return builder.call(_llvm_function(builder, name, signature), arguments)


_SIZE = ir.IntType(types.intp.bitwidth)


@intrinsic
def _thread_settings(typingctx):
    """The calling thread's Numba thread count and parallel chunk size.

    This and :func:`_set_thread_settings` call the threading layer's C functions by the
    names under which Numba registers them with LLVM, as its parallel loops do, so that the
    kernels calling them stay cacheable (``numba.get_num_threads`` and its kin call through
    ctypes pointers inside compiled code, which Numba cannot cache)."""
    _launch_threads()

    def codegen(context, builder, signature, args):
        threads = _threading_layer_call(builder, "get_num_threads", _SIZE, [])
        chunk = _threading_layer_call(builder, "get_parallel_chunksize", _SIZE, [])
        return context.make_tuple(builder, signature.return_type, [threads, chunk])

    return types.UniTuple(types.intp, 2)(), codegen


@intrinsic
def _set_thread_settings(typingctx, threads, chunk):
    """Set the calling thread's Numba thread count (from 1 to the number of threads Numba
    started) and parallel chunk size (0: one share per thread)."""
    _launch_threads()
    if not (isinstance(threads, types.Integer) and isinstance(chunk, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        count = context.cast(builder, args[0], signature.args[0], types.int32)
        size = context.cast(builder, args[1], signature.args[1], types.intp)
        _threading_layer_call(builder, "set_num_threads", ir.VoidType(), [count])
        _threading_layer_call(builder, "set_parallel_chunksize", ir.VoidType(), [size])
        return context.get_dummy_value()

    return types.none(threads, chunk), codegen


def fexp(x):  # pragma: no cover - replaced by the overload inside kernels
    """``exp(x)`` for ``x <= 0``; 0 below ``_CUT32`` / ``_CUT64``."""
    return math.exp(x)


def flog1p(t):  # pragma: no cover - replaced by the overload inside kernels
    """``log1p(t)`` for ``t`` in [0, 1]."""
    return math.log1p(t)


def flog(x):  # pragma: no cover - replaced by the overload inside kernels
    """``log(x)`` in the dtype of ``x`` (a scalar call, used once per row)."""
    return math.log(x)


@overload(fexp, fastmath=FASTMATH)
def _fexp(x):
    # exp(x) = 2**n * exp(r), n = round(x / ln 2), |r| <= ln(2) / 2; exp(r) by its Taylor
    # polynomial (degree 12 in float64: truncation < 2e-16; a degree-7 fit in float32), 2**n
    # built in the exponent bits. Inputs are clamped so that 2**n stays a normal number. The
    # cut-off clears the result's bits with a mask of all ones or zeros: a multiplication by
    # the comparison as a float took four vector instructions instead of two, and a
    # conditional expression left the loops unvectorised (15x slower).
    if x == types.float32:

        def impl32(x):
            arg = x
            x = max(x, np.float32(-87.0))
            n = np.floor(x * np.float32(_LOG2E) + np.float32(0.5))
            r = x - n * np.float32(0.693359375) - n * np.float32(-2.12194440e-4)
            p = np.float32(1.9875691500e-4)
            p = p * r + np.float32(1.3981999507e-3)
            p = p * r + np.float32(8.3334519073e-3)
            p = p * r + np.float32(4.1665795894e-2)
            p = p * r + np.float32(1.6666665459e-1)
            p = p * r + np.float32(5.0000001201e-1)
            p = p * r * r + r + np.float32(1.0)
            bits = np.int32((np.int32(n) + np.int32(127)) << np.int32(23))
            kept = np.int32(-np.int32(arg > np.float32(_CUT32)))
            value = np.float32(p * bits.view(np.float32)).view(np.int32)
            return np.int32(value & kept).view(np.float32)

        return impl32

    def impl64(x):
        arg = x
        x = max(x, -708.0)
        n = np.floor(x * _LOG2E + 0.5)
        r = x - n * _LN2_HI - n * _LN2_LO
        p = 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r * r + r + 1.0
        bits = np.int64((np.int64(n) + np.int64(1023)) << np.int64(52))
        kept = np.int64(-np.int64(arg > _CUT64))
        value = np.float64(p * bits.view(np.float64)).view(np.int64)
        return np.int64(value & kept).view(np.float64)

    return impl64


def log1p_series(s):  # pragma: no cover - replaced by the overload inside kernels
    """``log1p(t)`` given ``s = t / (2 + t)`` in [0, 1/3], that is ``2 atanh(s)``."""
    return 2.0 * math.atanh(s)


@overload(log1p_series, fastmath=FASTMATH)
def _log1p_series(s):
    # log1p(t) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...): never forms 1 + t, so small t keep
    # full relative accuracy. With s^2 <= 1/9 the first omitted term is below 2e-9 (float32,
    # through s^15) or 2e-18 (float64, through s^33) relative.
    if s == types.float32:

        def impl32(s):
            s2 = s * s
            p = np.float32(1.0 / 15.0)
            p = p * s2 + np.float32(1.0 / 13.0)
            p = p * s2 + np.float32(1.0 / 11.0)
            p = p * s2 + np.float32(1.0 / 9.0)
            p = p * s2 + np.float32(1.0 / 7.0)
            p = p * s2 + np.float32(1.0 / 5.0)
            p = p * s2 + np.float32(1.0 / 3.0)
            return np.float32(2.0) * s + np.float32(2.0) * s * s2 * p

        return impl32

    def impl64(s):
        s2 = s * s
        p = 1.0 / 33.0
        p = p * s2 + 1.0 / 31.0
        p = p * s2 + 1.0 / 29.0
        p = p * s2 + 1.0 / 27.0
        p = p * s2 + 1.0 / 25.0
        p = p * s2 + 1.0 / 23.0
        p = p * s2 + 1.0 / 21.0
        p = p * s2 + 1.0 / 19.0
        p = p * s2 + 1.0 / 17.0
        p = p * s2 + 1.0 / 15.0
        p = p * s2 + 1.0 / 13.0
        p = p * s2 + 1.0 / 11.0
        p = p * s2 + 1.0 / 9.0
        p = p * s2 + 1.0 / 7.0
        p = p * s2 + 1.0 / 5.0
        p = p * s2 + 1.0 / 3.0
        return 2.0 * s + 2.0 * s * s2 * p

    return impl64


@overload(flog1p, fastmath=FASTMATH)
def _flog1p(t):
    two = 2.0 if t == types.float64 else np.float32(2.0)
    return lambda t: log1p_series(t / (two + t))


def flog_pos(x):  # pragma: no cover - replaced by the overload inside kernels
    """``log(x)`` for finite, normal ``x > 0``, vectorisable: accurate relative to the result
    for ``x >= 1``, to a few ulp of 1 (absolute) below."""
    return math.log(x)


@overload(flog_pos, fastmath=FASTMATH)
def _flog_pos(x):
    # x = 2**k * m with m in [1, 2) read from the bits; log x = k ln 2 + log1p(m - 1).
    if x == types.float32:

        def impl32(x):
            bits = _bits_of(x)
            k = np.int32((bits >> np.int32(23)) - np.int32(127))
            m = np.int32((bits & np.int32(0x7FFFFF)) | np.int32(0x3F800000)).view(np.float32)
            return np.float32(k) * np.float32(_LN2_HI) + (
                np.float32(k) * np.float32(_LN2_LO) + flog1p(m - np.float32(1.0))
            )

        return impl32

    def impl64(x):
        bits = _bits_of(x)
        k = np.int64((bits >> np.int64(52)) - np.int64(1023))
        mant = np.int64((bits & np.int64(0xFFFFFFFFFFFFF)) | np.int64(0x3FF0000000000000))
        m = mant.view(np.float64)
        return np.float64(k) * _LN2_HI + (np.float64(k) * _LN2_LO + flog1p(m - 1.0))

    return impl64


def _bits_of(x):  # pragma: no cover - replaced by the overload inside kernels
    return x


@overload(_bits_of)
def _ol_bits_of(x):
    if x == types.float32:
        return lambda x: np.float32(x).view(np.int32)
    return lambda x: np.float64(x).view(np.int64)


@overload(flog)
def _flog(x):
    if x == types.float32:
        return lambda x: np.float32(math.log(x))
    return lambda x: math.log(x)


def _order_key(bits):  # pragma: no cover - replaced by the overload inside kernels
    return bits


@overload(_order_key)
def _ol_order_key(bits):
    # IEEE floats ordered as signed integers: flip the magnitude bits of negative values.
    # Integer max reductions vectorise; floating-point ones do not (they need "no NaNs").
    if bits == types.int32:
        return lambda bits: np.int32(bits ^ ((bits >> np.int32(31)) & np.int32(0x7FFFFFFF)))
    return lambda bits: np.int64(bits ^ ((bits >> np.int64(63)) & np.int64(0x7FFFFFFFFFFFFFFF)))


def _from_key(row, key):  # pragma: no cover - replaced by the overload inside kernels
    return key


@overload(_from_key)
def _ol_from_key(row, key):
    if key == types.int32:
        return lambda row, key: np.int32(_order_key(key)).view(np.float32)
    return lambda row, key: np.int64(_order_key(key)).view(np.float64)


def _bits(row):  # pragma: no cover - replaced by the overload inside kernels
    return row


@overload(_bits)
def _ol_bits(row):
    if row.dtype == types.float32:
        return lambda row: row.view(np.int32)
    return lambda row: row.view(np.int64)


@njit(error_model="numpy")
def claim_threads(size, n_blocks):
    """Set the calling thread's Numba thread count and chunk size for a kernel over ``size``
    elements in ``n_blocks`` blocks; returns what :func:`release_threads` restores.

    One thread per :data:`PARALLEL_MIN_ELEMENTS` elements, at most Numba's thread count:
    waking idle threads costs more than a small input's work, and on a busy machine a woken
    thread may wait a whole scheduler slice (milliseconds) for a core. The blocks go out in
    up to :data:`CHUNKS_PER_THREAD` chunks per thread, taken by whichever thread is free,
    rather than split in equal halves up front, so that a thread that wakes late (about 95 µs
    after a pause, against 3 µs back to back) or runs slowly leaves its share to the other.
    Measured between calls of naive NumPy (the benchmark's order), 2 threads, median per
    call into ``out=``: 65536 x 10 1.18 / 0.70 / 0.57 ms with 2 / 4 / 16 chunks per thread in
    one run, 1.16 / 0.76 / 0.70 ms with 4 / 16 / 64 (one block per chunk) in another; the
    binary 10M 8.8 / 7.8 / 7.6 ms with 4 / 16 / 64; no change back to back or at 4096 x 32000.

    Called inside the kernels rather than from Python: Numba's Python functions for these
    settings take its initialisation locks on every call (after a call of naive NumPy, 50 µs
    for ``numba.get_num_threads()`` alone).
    """
    previous = _thread_settings()
    wanted = max(1, min(previous[0], size // PARALLEL_MIN_ELEMENTS))
    chunk = -(-n_blocks // (CHUNKS_PER_THREAD * wanted)) if wanted > 1 else 0  # 0: one share
    _set_thread_settings(wanted, chunk)
    return previous


@njit(error_model="numpy")
def release_threads(previous):
    """Restore the thread count and chunk size that :func:`claim_threads` replaced."""
    _set_thread_settings(previous[0], previous[1])


@njit(error_model="numpy")
def _block_results(n_blocks):
    """Each block's float64 loss sum and status code, filled in by the block."""
    return np.empty(n_blocks, np.float64), np.zeros(n_blocks, np.int64)


@njit(error_model="numpy")
def _outcome(sums, status):
    """A kernel's result: the blocks' losses added up (float64), and its status code,
    non-finite values if any block found them, else the largest of the others (one kind of
    bad label or target per kernel)."""
    total = 0.0
    code = STATUS_OK
    nonfinite = False
    for b in range(sums.shape[0]):
        total += sums[b]
        nonfinite |= status[b] == STATUS_NONFINITE
        code = max(code, status[b])
    return total, (STATUS_NONFINITE if nonfinite else code)


@njit(fastmath=FASTMATH, error_model="numpy")
def _row_max_check(row):
    """Max of a row, and ``sum(row * 0)`` (0, or NaN when the row holds NaN or infinity)."""
    _wide_vectors()
    bits = _bits(row)
    key = _order_key(bits[0])
    zero = row[0] - row[0]  # not a constant: "x * 0" must not be folded away
    bad = zero
    for j in range(row.shape[0]):
        key = max(key, _order_key(bits[j]))
        bad += row[j] * zero
    return _from_key(row, key), bad


@njit(error_model="numpy")
def _label(y, ignore_index, has_ignore, n_classes):
    """A row's label ready for indexing (0 when ignored or out of range), whether it is
    valid (``ignore_index`` when ``has_ignore``, or in ``[0, n_classes)``) and whether the
    row counts (not ignored). A flag rather than a sentinel value for "no ignore_index":
    every int64 may be a caller's label."""
    ignored = has_ignore & (y == ignore_index)
    inside = (y >= 0) & (y < n_classes)
    return (y if inside & ~ignored else 0), inside | ignored, ~ignored


@njit(error_model="numpy")
def _scale_at(scale, i, counts):
    """Row ``i``'s reduction scale (``scale`` has length 1 when uniform); 0 for a row that
    does not count (an ignored label)."""
    c = scale[0] if scale.shape[0] == 1 else scale[i]
    return c if counts else c - c


@njit(fastmath=FASTMATH, error_model="numpy")
def _row_terms(loss, lse, c_ce, c_z, two_z, inv_t):
    """A row's reduced loss ``c_ce * loss + c_z * zeta * lse**2`` (``two_z = 2 zeta``) and the
    z-loss part of its gradient coefficient on ``p_j``, ``c_z * 2 zeta * lse / T``.

    Both are exactly 0 when ``c_z * two_z`` is (no z-loss, or an ignored row), by a select:
    reassociated by ``fastmath``, the product could otherwise take ``lse**2`` first, which
    overflows for logits beyond 1e19 (float32), and give ``0 * inf = NaN`` (it did with Numba
    0.59's LLVM, for a mean loss of 1e35)."""
    weight = c_z * two_z
    none = weight == 0
    z_term = weight if none else weight * _like(lse, 0.5) * lse * lse
    return c_ce * loss + z_term, weight if none else weight * inv_t * lse


@njit(fastmath=FASTMATH, error_model="numpy")
def _row_exp(row, inv_t, m, buf):
    """``buf_j = exp((row_j - m) * inv_t)``; returns their sum. With ``m`` the row's max, its
    own term is exactly 1, so the sum is >= 1 and its log >= 0. (``row_j * inv_t - m * inv_t``
    would round ``m * inv_t`` first: at float32 logits of 1e4 and a temperature of 10, by up to
    1.2e-4, which made a certain class's log-probability positive.)"""
    _wide_vectors()
    for j in range(row.shape[0]):
        buf[j] = fexp((row[j] - m) * inv_t)
    s = buf[0] - buf[0]
    for j in range(row.shape[0]):
        s += buf[j]
    return s


@njit(fastmath=FASTMATH, error_model="numpy")
def _row_gap(row, wa, inv_t, m):
    """``sum_c wa_c (m - row_c) inv_t``, every term >= 0 when ``m`` is the max."""
    _wide_vectors()
    s = row[0] - row[0]
    for j in range(row.shape[0]):
        s += wa[j] * ((m - row[j]) * inv_t)
    return s


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def categorical_labels(
    z, labels, ignore_index, has_ignore, wa, sum_wa, keep, spread, inv_t, two_z, scale_ce,
    scale_z, grad, want_grad, in_place, loss_rows,
):  # fmt: skip
    """Softmax cross-entropy for integer labels (gamma = 0), smoothing ``eps``, class weights
    ``wa`` (class_weight times alpha); ``keep = 1 - eps``, ``spread = eps / C``, ``two_z``
    twice the z-loss coefficient, all scalars of the logits' dtype (a Python ``1`` would turn
    float32 arithmetic into float64). Returns the summed scaled loss (cross-entropy plus
    z-loss, in float64) and the status code (:func:`_outcome`); writes each row's loss into
    ``loss_rows`` unless it is empty, and, with ``want_grad``, the scaled gradient into
    ``grad`` (which may be ``z`` itself). Rows whose label is ``ignore_index`` get 0.

    Per row: (1) max and finiteness; (2) ``e_j = exp(x_j - max)`` into the gradient row
    and their sum; (3) the gradient ``a e_j / s - b wa_j`` in place, then the target's
    ``- c1 (1 - eps) wa_y``. ``in_place`` (``grad`` is ``z``): (2) and (3) work on a scratch
    row, copied over the logits' row at the end, since a store that may overlap its own
    loop's input (another array over the same memory) leaves the loop unvectorised (3-4x
    slower).
    """
    n_rows, n_classes = z.shape
    block = max(1, ROW_BLOCK_ELEMENTS // n_classes)
    n_blocks = (n_rows + block - 1) // block
    zero = keep - keep
    smooth = spread > 0
    narrow = n_classes < SMALL_CLASSES and not smooth
    per_row = loss_rows.shape[0] == n_rows
    flat_z = z.reshape(n_rows * n_classes)
    flat_grad = grad.reshape(grad.shape[0] * grad.shape[1])
    sums, status = _block_results(n_blocks)
    claim = claim_threads(z.size, n_blocks)
    for bi in prange(n_blocks):
        _wide_vectors()
        start = bi * block
        stop = min(n_rows, start + block)
        if narrow:
            code, total = _labels_narrow_block(
                flat_z, flat_grad, n_classes, start, stop, labels, ignore_index, has_ignore, wa,
                keep, inv_t, two_z, scale_ce, scale_z, want_grad, loss_rows, per_row,
            )  # fmt: skip
            sums[bi] = total
            status[bi] = code
            continue
        scratch = np.empty(n_classes, z.dtype)
        code = STATUS_OK
        total = 0.0
        for i in range(start, stop):
            row = z[i]
            m, bad = _row_max_check(row)
            if bad != 0:
                code = STATUS_NONFINITE
            y, ok, counts = _label(labels[i], ignore_index, has_ignore, n_classes)
            if not ok and code == STATUS_OK:  # non-finite values are reported first
                code = STATUS_LABEL
            c_ce, c_z = _scale_at(scale_ce, i, counts), _scale_at(scale_z, i, counts)
            shift = m * inv_t
            x_y = (row[y] - m) * inv_t  # relative to the max: exact, and no lse - x cancellation
            gap = _row_gap(row, wa, inv_t, m) if smooth else zero
            buf = grad[i] if want_grad and not in_place else scratch
            s = _row_exp(row, inv_t, m, buf)
            log_s = flog(s)
            lse = shift + log_s
            loss = keep * wa[y] * (log_s - x_y)
            if smooth:
                loss += spread * (sum_wa * log_s + gap)
            row_loss, cz = _row_terms(loss, lse, c_ce, c_z, two_z, inv_t)
            total += row_loss
            if per_row:
                loss_rows[i] = row_loss
            if want_grad:
                c1 = c_ce * inv_t
                w_total = keep * wa[y] + spread * sum_wa
                a = (c1 * w_total + cz) / s
                if smooth:
                    b = c1 * spread
                    for j in range(n_classes):
                        buf[j] = a * buf[j] - b * wa[j]
                else:
                    for j in range(n_classes):
                        buf[j] = a * buf[j]
                buf[y] -= c1 * keep * wa[y]
                if in_place:
                    grad[i][:] = buf
        sums[bi] = total
        status[bi] = code
    release_threads(claim)
    return _outcome(sums, status)


@njit(fastmath=FASTMATH, error_model="numpy")
def _block_scale(dest, scale, start):
    """``dest`` filled with the reduction scales of the rows from ``start`` (``scale`` has
    length 1 when uniform): one fill, so that the loops over rows need no branch per row.
    Plain loops: slice assignment (``dest[:] = ...``) made the first compilation of
    :func:`categorical_labels` 7 s longer (17.5 against 11.9 s)."""
    if scale.shape[0] == 1:
        for r in range(dest.shape[0]):
            dest[r] = scale[0]
    else:
        rows = scale[start : start + dest.shape[0]]
        for r in range(dest.shape[0]):
            dest[r] = rows[r]


@njit(error_model="numpy")
def _scratch(n, like):
    """A new array of ``n`` values of ``like``'s dtype."""
    return np.empty(n, like.dtype)


@njit(fastmath=FASTMATH, error_model="numpy")
def _labels_narrow_block(
    flat_z, flat_grad, n_classes, start, stop, labels, ignore_index, has_ignore, wa, keep, inv_t,
    two_z, scale_ce, scale_z, want_grad, loss_rows, per_row,
):  # fmt: skip
    r""":func:`categorical_labels` for few classes and no smoothing: the block's status code
    and its summed loss (float64), the rows' losses in ``loss_rows`` when ``per_row``.

    With a handful of classes a row is shorter than one pass's fixed cost, so each pass
    runs over a whole block of rows, and the rows share one shift, the block's max :math:`M`
    (a row's own max would cost a short reduction per row): (1) :math:`M` and finiteness in
    one flat reduction; labels and scales (a loop with no gathers, which vectorises);
    (2) :math:`e = \exp((z - M) / T)` as one flat loop; the rows' sums :math:`s` and, in the
    same loop over rows, the target logits, :math:`e_y` and class weights; (3) a row with
    :math:`s < 2^{-20}` (its max far below :math:`M`) is redone with its own max (the loop
    runs only when the block has such a row); (4) per row, vectorised across rows, the
    cross-entropy :math:`\log(s / e_y) \ge 0` (``e_y`` is a term of ``s``), or :math:`\log s
    + (M - z_y) / T` when :math:`e_y < 2^{-60}`, the loss and the row's :math:`a, b`; then the
    gradient :math:`a e_j - b [j = y]` (its target entries in a loop of their own). Rows of
    up to ``ROW_LANES`` classes are summed and scaled as one masked vector each
    (:func:`row_sum`, :func:`row_scale`): kernel 0.53 -> 0.42 ms at 65536 x 10 on 2 threads
    (p20, float32). Fewer loops over the rows measured faster: merging the gathers into the
    sums' loop and the cross-entropy into the losses' took 1.95 -> 1.82 ms on one thread at
    65536 x 10 (p20, in one process), the losses within an ulp of before. ``z`` is last read
    in (3), so ``grad`` may be ``z``.

    The shared shift adds :math:`(M - m) / T` (:math:`m` the row's max) to the arguments of
    ``exp``, below :math:`14 + \log C` for the rows not redone; the losses stay within 1-3
    ulp of a float64 reference (absolute for small losses, relative otherwise), as with a
    per-row shift. A near-certain row's loss is exact to one rounding of 1 (``s / e_y`` is
    rounded next to 1), as in PyTorch; see the README on the cost of doing better here.
    """
    _wide_vectors()
    n = stop - start
    lo = start * n_classes
    zb = flat_z[lo : stop * n_classes]
    e = np.empty(n * n_classes, zb.dtype)
    gb = flat_grad[lo : stop * n_classes] if want_grad else e
    # One array per quantity: rows of one 2-D array may overlap as far as LLVM knows, which
    # left the loops over rows unvectorised (labels 1.53 -> 0.37 ns per row when separate).
    shifts, sums, e_targets = _scratch(n, zb), _scratch(n, zb), _scratch(n, zb)
    gaps, c_ce, c_z = _scratch(n, zb), _scratch(n, zb), _scratch(n, zb)
    w_y, coef, fix = _scratch(n, zb), _scratch(n, zb), _scratch(n, zb)
    targets = np.empty(n, np.int64)
    zero = keep - keep
    redo_below = _like(zero, 2.0**-20)
    tiny_target = _like(zero, 2.0**-60)
    code = STATUS_OK
    m_block, bad = _row_max_check(zb)
    if bad != 0:
        return STATUS_NONFINITE, 0.0
    shift = m_block * inv_t
    block_labels = labels[start:stop]
    _block_scale(c_ce, scale_ce, start)
    _block_scale(c_z, scale_z, start)
    n_bad = 0
    for r in range(n):  # no gathers here, so that this loop vectorises
        y, ok, counts = _label(block_labels[r], ignore_index, has_ignore, n_classes)
        n_bad += not ok
        targets[r] = y
        c_ce[r] = c_ce[r] if counts else zero
        c_z[r] = c_z[r] if counts else zero
        shifts[r] = shift
    if n_bad:
        code = STATUS_LABEL
    for k in range(zb.shape[0]):
        e[k] = fexp((zb[k] - m_block) * inv_t)
    lowest = redo_below
    one_vector = n_classes <= ROW_LANES
    for r in range(n):  # the rows' sums, and the gathers at their targets
        base = r * n_classes
        if one_vector:
            s = row_sum(e, base, n_classes)
        else:
            s = zero
            for j in range(n_classes):
                s += e[base + j]
        sums[r] = s
        lowest = min(lowest, s)
        y = targets[r]
        e_targets[r] = e[base + y]
        w_y[r] = keep * wa[y]
        gaps[r] = (m_block - zb[base + y]) * inv_t  # >= 0, exact before scaling
    for r in range(n if lowest < redo_below else 0):
        if sums[r] < redo_below:
            base = r * n_classes
            row = zb[base : base + n_classes]
            m = _row_max_check(row)[0]
            shifts[r] = m * inv_t
            gaps[r] = (m - row[targets[r]]) * inv_t
            sums[r] = _row_exp(row, inv_t, m, e[base : base + n_classes])
            e_targets[r] = e[base + targets[r]]
    block_loss = loss_rows[start:stop] if per_row else _scratch(n, zb)
    for r in range(n):  # vectorised across rows
        usable = e_targets[r] >= tiny_target  # s >= e_y, a term of s: the ratio is >= 1
        ce = flog_pos(sums[r] / e_targets[r] if usable else sums[r])
        ce += zero if usable else gaps[r]
        lse = (shifts[r] - gaps[r]) + ce  # x_y / T + the loss
        block_loss[r], cz = _row_terms(w_y[r] * ce, lse, c_ce[r], c_z[r], two_z, inv_t)
        c1w = c_ce[r] * inv_t * w_y[r]
        coef[r] = (c1w + cz) / sums[r]
        fix[r] = c1w
    if want_grad and one_vector:
        for r in range(n):
            row_scale(e, gb, r * n_classes, n_classes, coef[r])
    elif want_grad:
        for r in range(n):
            base = r * n_classes
            a = coef[r]
            for j in range(n_classes):
                gb[base + j] = a * e[base + j]
    for r in range(n if want_grad else 0):
        gb[r * n_classes + targets[r]] -= fix[r]
    total = 0.0
    for r in range(n):
        total += block_loss[r]
    return code, total


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def categorical_general(
    z, labels, ignore_index, has_ignore, soft, wa, keep, spread, inv_t, two_z, gamma, scale_ce,
    scale_z, grad, want_grad, in_place, loss_rows,
):  # fmt: skip
    r"""Every other case: soft targets (``labels`` empty, ``soft`` (N, C)) and focal loss
    (``gamma > 0``).

    Cross-entropy with soft targets takes vectorised row loops: with :math:`g_c = w_c
    \alpha_c q_c`, :math:`\ell = (\sum_c g_c) \log s - \sum_c g_c (x_c - m)` (two sums of
    non-negative terms) and gradient :math:`a\, e_c - c_1 g_c`, :math:`a = (c_1 \sum_c g_c
    + c_z) / s`, staged in a scratch row when ``in_place`` (as in
    :func:`categorical_labels`). Focal loss goes one class at a time through the formulas of
    :mod:`crossent.losses.categorical` (phi, phi')."""
    n_rows, n_classes = z.shape
    block = max(1, ROW_BLOCK_ELEMENTS // n_classes)
    n_blocks = (n_rows + block - 1) // block
    use_labels = labels.shape[0] > 0
    soft_ce = gamma == 0 and not use_labels
    per_row = loss_rows.shape[0] == n_rows
    one = _like(inv_t, 1.0)  # not inv_t / inv_t: 1 / T underflows to 0 at T > 3e38 (float32)
    sums, status = _block_results(n_blocks)
    claim = claim_threads(z.size, n_blocks)
    for bi in prange(n_blocks):
        _wide_vectors()
        d1 = np.empty(n_classes, z.dtype)
        code = STATUS_OK
        total = 0.0
        for i in range(bi * block, min(n_rows, bi * block + block)):
            row = z[i]
            m, bad = _row_max_check(row)
            if bad != 0:
                code = STATUS_NONFINITE
            y, counts = -1, True
            if use_labels:
                y, ok, counts = _label(labels[i], ignore_index, has_ignore, n_classes)
                if not ok and code == STATUS_OK:  # non-finite values are reported first
                    code = STATUS_LABEL
            c_ce, c_z = _scale_at(scale_ce, i, counts), _scale_at(scale_z, i, counts)
            shift = m * inv_t
            if soft_ce:
                qi = soft[i]
                sum_g = 0.0  # float64 sums: tens of thousands of float32 terms
                sum_gx = 0.0
                for c in range(n_classes):
                    g = wa[c] * (qi[c] * keep + spread)
                    sum_g += g
                    sum_gx += g * ((row[c] - m) * inv_t)  # <= 0: relative to the max
                buf = grad[i] if want_grad and not in_place else d1
                s = _row_exp(row, inv_t, m, buf)
                log_s = flog(s)
                lse = shift + log_s
                loss = sum_g * log_s - sum_gx
                row_loss, cz = _row_terms(loss, lse, c_ce, c_z, two_z, inv_t)
                total += row_loss
                if per_row:
                    loss_rows[i] = row_loss
                if want_grad:
                    c1 = c_ce * inv_t
                    a = (c1 * sum_g + cz) / s
                    for c in range(n_classes):
                        buf[c] = a * buf[c] - c1 * wa[c] * (qi[c] * keep + spread)
                    if in_place:
                        grad[i][:] = buf
                continue
            log_s = flog(_row_exp(row, inv_t, m, d1))
            lse = shift + log_s
            loss = 0.0  # float64 sums of the classes' terms: float32 had drifted by 1.5e-4
            s1 = 0.0  # over 32000 classes
            for c in range(n_classes):
                if use_labels:
                    q = keep * (c == y) + spread
                else:
                    q = soft[i, c] * keep + spread
                g = wa[c] * q
                log_p = (row[c] - m) * inv_t - log_s
                if gamma == 0:
                    phi = -g * log_p
                    d = -g
                elif g == 0:
                    phi = one - one
                    d = one - one
                else:
                    p = fexp(log_p)
                    v = -math.expm1(log_p)
                    h = log_p / v if v > 0 else -one
                    mod = v**gamma
                    phi = -g * mod * log_p
                    d = -g * mod * (1 - gamma * p * h)
                loss += phi
                s1 += d
                d1[c] = d
            row_loss, cz = _row_terms(loss, lse, c_ce, c_z, two_z, inv_t)
            total += row_loss
            if per_row:
                loss_rows[i] = row_loss
            if want_grad:
                c1 = c_ce * inv_t
                gi = grad[i]
                for c in range(n_classes):
                    p = fexp((row[c] - m) * inv_t - log_s)
                    gi[c] = c1 * (d1[c] - p * s1) + cz * p
        sums[bi] = total
        status[bi] = code
    release_threads(claim)
    return _outcome(sums, status)


@njit(fastmath=FASTMATH, error_model="numpy")
def _log_sigmoids(x, one):
    """``log sigma(x)``, ``log sigma(-x)``, ``sigma(x)``, ``sigma(-x)`` from one ``exp``.

    Selects instead of branches, so that loops calling it vectorise."""
    zero = one - one
    e = fexp(-abs(x))
    # One division for both 1 / (1 + e) and the s = e / (2 + e) of log1p(e).
    a1 = one + e
    a2 = a1 + one
    r = one / (a1 * a2)
    l1p = log1p_series(e * a1 * r)
    big = a2 * r
    small = e * big
    positive = x >= zero
    return (
        -l1p - max(-x, zero),
        -l1p - max(x, zero),
        big if positive else small,
        small if positive else big,
    )


@njit(fastmath=FASTMATH, error_model="numpy")
def _bce(x, t, w, one):
    """Binary cross-entropy of one logit and its derivative (``A`` and ``A'``)."""
    log_p, log_q, p, q = _log_sigmoids(x, one)
    return -(w * t * log_p + (one - t) * log_q), (one - t) * p - w * t * q


def _like(ref, value):  # pragma: no cover - replaced by the overload inside kernels
    return value


@overload(_like)
def _ol_like(ref, value):
    if ref == types.float32:
        return lambda ref, value: np.float32(value)
    return lambda ref, value: np.float64(value)


@njit(fastmath=FASTMATH, error_model="numpy")
def _binary_focal(x, t, gamma, alpha, one):
    """Focal loss of one logit and its derivative (formulas of :mod:`crossent.losses.binary`)."""
    log_p, log_q, p, q = _log_sigmoids(x, one)
    a = -(t * log_p + (1 - t) * log_q)
    da = (1 - t) * p - t * q
    if gamma > 0:
        lu1 = math.log(t) + log_q if t > 0 else -math.inf
        lu2 = math.log(1 - t) + log_p if t < 1 else -math.inf
        hi = max(lu1, lu2)
        log_u = hi + math.log1p(math.exp(min(lu1, lu2) - hi))
        f = math.exp(gamma * log_u)
        g1 = (gamma - 1) * log_u if gamma != 1 else 0.0
        df = gamma * (1 - 2 * t) * math.exp(g1 + log_p + log_q)
        a, da = f * a, df * a + f * da
    if alpha >= 0:
        alpha_t = alpha * t + (1 - alpha) * (1 - t)
        a, da = alpha_t * a, alpha_t * da
    return _like(x, a), _like(x, da)


def _span_targets(one, yb, scratch):  # pragma: no cover - replaced by the overload inside kernels
    return yb, False


@overload(_span_targets, fastmath=FASTMATH)
def _ol_span_targets(one, yb, scratch):
    """A span's targets in the logits' dtype: ``yb`` itself, or converted into ``scratch``
    (checked as given first: a float64 target just above 1 may round to 1), and whether one
    is outside [0, 1] or NaN. A separate loop, because LLVM leaves the main loop scalar when
    it also reads 8-byte targets."""
    if yb.dtype == one:
        return lambda one, yb, scratch: (yb, False)

    def convert(one, yb, scratch):
        _wide_vectors()
        outside = False
        tb = scratch[: yb.shape[0]]
        for i in range(yb.shape[0]):
            t = yb[i]
            outside |= (t < 0) | (t > 1) | (t != t)
            tb[i] = _like(one, t)
        return tb, outside

    return convert


@njit(fastmath=FASTMATH, error_model="numpy")
def _binary_span(zb, yb, wp, col, keep, half_eps, gamma, alpha, sb, lb, gb, one):
    """One span of :func:`binary`: writes ``lb``/``gb``, returns the span's loss sum and its
    checks (``sum(z * 0)``: NaN for a non-finite logit; whether a target is outside [0, 1]
    or NaN: an "or" of the comparisons is cheaper than counting them). ``yb`` has the
    logits' dtype (see :func:`_span_targets`).

    The common case (cross-entropy, one positive weight, a uniform scale) is a branch-free
    loop that vectorises; focal loss, per-label positive weights and per-element scales take
    the scalar loop.
    """
    _wide_vectors()
    zero = one - one
    bad = zero
    bad_targets = False
    total = zero
    focal = gamma > 0 or alpha >= 0
    k_pos = wp.shape[0]
    if not focal and k_pos == 1 and sb.shape[0] == 1:
        w = wp[0]
        c = sb[0]
        for i in range(zb.shape[0]):
            x, t = zb[i], yb[i]
            bad += x * zero
            bad_targets |= (t < zero) | (t > one) | (t != t)
            a, da = _bce(x, t * keep + half_eps, w, one)
            total += a
            lb[i] = c * a
            gb[i] = c * da
        return np.float64(c * total), bad, bad_targets
    exact_total = 0.0  # float64: this loop is scalar, and float32 sums of a span drifted 1e-5
    for i in range(zb.shape[0]):
        x, t = zb[i], yb[i]
        bad += x * zero
        bad_targets |= (t < zero) | (t > one) | (t != t)
        t = t * keep + half_eps
        if focal:
            a, da = _binary_focal(x, t, gamma, alpha, one)
        else:
            a, da = _bce(x, t, wp[col], one)
            col = col + 1 if col + 1 < k_pos else 0
        c = sb[0] if sb.shape[0] == 1 else sb[i]
        exact_total += np.float64(c * a)
        lb[i] = c * a
        gb[i] = c * da
    return exact_total, bad, bad_targets


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def binary(z, y, wp, keep, half_eps, gamma, alpha, scale, grad, in_place, loss):
    """Binary cross-entropy or focal loss from logits over flat arrays.

    ``y``: targets of the logits' dtype, float64, int64, int32 or uint8 (range-checked here
    as given, then converted), smoothed as ``y * keep + half_eps``; ``wp``:
    positive weights, one per label of the last axis (length K; element ``i`` has label
    ``i % K``); ``gamma``/``alpha``: focal parameters (``alpha < 0``: none; either selects
    the focal form, where ``wp`` is 1); ``scale``: the reduction scale per element, or of
    length 1 when uniform. Writes the scaled loss per element into ``loss`` and the scaled
    gradient into ``grad``; either may be empty, when not wanted. ``in_place``: ``grad`` is
    ``z``; each span's gradient then goes through a scratch span, because a loop whose
    store overlaps its input is left unvectorised by LLVM.
    Returns the summed loss (float64, summed in float64 over spans of :data:`SPAN` elements)
    and the status code (:func:`_outcome`).
    """
    n = z.shape[0]
    one = keep / keep if keep > 0 else half_eps / half_eps
    n_blocks = (n + BINARY_BLOCK - 1) // BINARY_BLOCK
    per_element = loss.shape[0] == n
    want_grad = grad.shape[0] == n
    sums, status = _block_results(n_blocks)
    claim = claim_threads(n, n_blocks)
    for bi in prange(n_blocks):
        _wide_vectors()
        start = bi * BINARY_BLOCK
        stop = min(n, start + BINARY_BLOCK)
        scratch_loss = np.empty(0 if per_element else SPAN, z.dtype)
        scratch_grad = np.empty(SPAN if in_place or not want_grad else 0, z.dtype)
        scratch_targets = np.empty(SPAN, z.dtype)
        total = 0.0
        bad = False
        bad_targets = False
        for lo in range(start, stop, SPAN):
            hi = min(stop, lo + SPAN)
            # Slices indexed from 0: Numba then knows the indices are not negative and emits
            # no wrap-around code, which would stop vectorisation.
            lb = loss[lo:hi] if per_element else scratch_loss[: hi - lo]
            gb = grad[lo:hi] if want_grad and not in_place else scratch_grad[: hi - lo]
            sb = scale if scale.shape[0] == 1 else scale[lo:hi]
            tb, unconverted_outside = _span_targets(one, y[lo:hi], scratch_targets)
            part, nonfinite, outside = _binary_span(
                z[lo:hi], tb, wp, lo % wp.shape[0], keep, half_eps, gamma, alpha, sb, lb, gb,
                one,
            )  # fmt: skip
            if want_grad and in_place:
                grad[lo:hi] = gb
            total += part
            bad |= nonfinite != 0
            bad_targets |= outside | unconverted_outside
        sums[bi] = total
        status[bi] = STATUS_NONFINITE if bad else (STATUS_TARGET if bad_targets else STATUS_OK)
    release_threads(claim)
    return _outcome(sums, status)
