"""The fast paths: fused Numba kernels and blocks of rows give the portable numbers.

Every case runs the same call through ``backend="portable"`` and ``backend="fused"`` and
compares values and gradients (float64: 1e-12 relative to the largest magnitude; float32:
1e-5), and a subset is checked against PyTorch as an independent reference.
"""

from __future__ import annotations

import numpy as np
import pytest
from _references import categorical_per_row
from _spies import count_calls

import crossent
from crossent import kernels
from crossent.losses import _blocks
from crossent.testing import finite_difference_gradient

pytest.importorskip("numba")

RNG = np.random.default_rng(20260322)
TOL = {np.float64: 1e-12, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]

cce = crossent.value_and_grad(crossent.categorical_cross_entropy)
cfl = crossent.value_and_grad(crossent.categorical_focal_loss)
bce = crossent.value_and_grad(crossent.binary_cross_entropy)
bfl = crossent.value_and_grad(crossent.binary_focal_loss)


def assert_same(got, want, dtype):
    """Arrays equal within the dtype's tolerance relative to the largest magnitude."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = max(float(np.max(np.abs(want))), np.finfo(dtype).tiny)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype] * scale)


def both(fn, *args, **kwargs):
    """(portable, fused) results of one call."""
    return fn(*args, backend="portable", **kwargs), fn(*args, backend="fused", **kwargs)


def check(fn, dtype, *args, **kwargs):
    (vp, gp), (vf, gf) = both(fn, *args, **kwargs)
    assert_same(vf, vp, dtype)
    assert_same(gf, gp, dtype)
    return vp, gp


def logits(shape, dtype, scale=3.0):
    return (RNG.normal(size=shape) * scale).astype(dtype)


CATEGORICAL_OPTIONS = {
    "plain": {},
    "class_weight": {"class_weight": "w"},
    "ignore_index": {"ignore": True},
    "smoothing_weights": {"label_smoothing": 0.15, "class_weight": "w", "sample_weight": "s"},
    "z_loss_temperature": {"z_loss": 1e-2, "temperature": 2.5, "mask": "m"},
    "sum": {"reduction": "sum", "class_weight": "w", "ignore": True},
    "none": {"reduction": "none", "z_loss": 0.1, "label_smoothing": 0.05},
}


def _materialise(options, n_rows, n_classes, dtype):
    kwargs = dict(options)
    ignore = kwargs.pop("ignore", False)
    if kwargs.get("class_weight") == "w":
        kwargs["class_weight"] = RNG.random(n_classes) + 0.5
    if kwargs.get("sample_weight") == "s":
        kwargs["sample_weight"] = RNG.random(n_rows)
    if kwargs.get("mask") == "m":
        kwargs["mask"] = RNG.random(n_rows) > 0.3
    labels = RNG.integers(0, n_classes, n_rows)
    if ignore:
        labels[::4] = -100
    return labels, kwargs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CATEGORICAL_OPTIONS))
@pytest.mark.parametrize(
    "n_classes", [10, 16, 37, 130], ids=["vector", "full-vector", "narrow", "wide"]
)
def test_categorical_labels_fused_equals_portable(name, n_classes, dtype):
    # Odd sizes: vector loops with remainders; fewer than 64 classes take the kernel's
    # across-rows path, more the per-row one, and rows of up to 16 classes are summed and
    # scaled as one masked vector each.
    n_rows = 97
    z = logits((n_rows, n_classes), dtype)
    labels, kwargs = _materialise(CATEGORICAL_OPTIONS[name], n_rows, n_classes, dtype)
    check(cce, dtype, labels, z, from_logits=True, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", ["portable", "fused"])
def test_one_class_gives_exactly_zero(backend, dtype):
    # With one class p = 1: the loss and its gradient are 0 exactly (the kernels' shared
    # block shift had left one rounding of the gradient's scale, 1e-9 in float32).
    z = logits((20000, 1), dtype)
    y = np.zeros(20000, dtype=int)
    y[::3] = -100
    for kwargs in ({}, {"class_weight": np.array([2.5])}, {"reduction": "none"}):
        value, grad = cce(y, z, from_logits=True, backend=backend, **kwargs)
        assert np.all(np.asarray(value) == 0) and np.all(grad == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [3, 16])
def test_masked_rows_write_nothing_past_the_gradient(n_classes, dtype):
    # The last row's masked store covers 16 lanes; those past the row must stay untouched.
    n_rows = 1001
    z = logits((n_rows, n_classes), dtype)
    y = RNG.integers(0, n_classes, n_rows)
    memory = np.full(n_rows * n_classes + 64, 7.0, dtype=dtype)
    out = memory[: n_rows * n_classes].reshape(n_rows, n_classes)
    grad = cce(y, z, from_logits=True, backend="fused", out=out)[1]
    assert grad is out
    assert np.all(memory[n_rows * n_classes :] == 7.0)
    assert_same(grad, cce(y, z, from_logits=True, backend="portable")[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("n_classes", [5, 130], ids=["narrow", "wide"])
def test_categorical_labels_per_row_scales_across_blocks(n_classes, reduction, dtype):
    # Several blocks of rows: each block must read its own rows' weights and labels.
    n_rows = 3 * (kernels.ROW_BLOCK_ELEMENTS // n_classes) + 7
    z = logits((n_rows, n_classes), dtype)
    options = {"sample_weight": "s", "ignore": True, "z_loss": 1e-2, "reduction": reduction}
    labels, kwargs = _materialise(options, n_rows, n_classes, dtype)
    check(cce, dtype, labels, z, from_logits=True, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["plain", "smoothing_weights", "z_loss_temperature", "none"])
def test_categorical_soft_targets_fused_equals_portable(name, dtype):
    n_rows, n_classes = 64, 19
    z = logits((n_rows, n_classes), dtype)
    soft = RNG.dirichlet(np.ones(n_classes), n_rows).astype(dtype)
    _, kwargs = _materialise(CATEGORICAL_OPTIONS[name], n_rows, n_classes, dtype)
    check(cce, dtype, soft, z, from_logits=True, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"gamma": 2.0},
        {"gamma": 0.5, "alpha": 0.25, "label_smoothing": 0.1},
        {"gamma": 1.0, "alpha": "vector", "reduction": "none"},
    ],
    ids=["gamma2", "gamma05_alpha_smooth", "alpha_vector_none"],
)
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_categorical_focal_fused_equals_portable(kwargs, soft, dtype):
    n_rows, n_classes = 50, 11
    z = logits((n_rows, n_classes), dtype)
    kwargs = dict(kwargs)
    if kwargs.get("alpha") == "vector":
        kwargs["alpha"] = RNG.random(n_classes)
    y = (
        RNG.dirichlet(np.ones(n_classes), n_rows).astype(dtype)
        if soft
        else RNG.integers(0, n_classes, n_rows)
    )
    check(cfl, dtype, y, z, from_logits=True, **kwargs)


def test_categorical_class_axis_and_leading_dims():
    z = logits((4, 7, 6), np.float64)  # class axis 1
    y = RNG.integers(0, 7, (4, 6))
    _, grad = check(cce, np.float64, y, z, from_logits=True, axis=1, sample_weight=RNG.random(4))
    assert grad.shape == z.shape


def test_extreme_logits_stay_exact():
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]] * 40)
    y = np.array([0, 2] * 40)
    (vp, gp), (vf, gf) = both(cce, y, z, from_logits=True)
    assert np.isfinite(vf) and np.all(np.isfinite(gf))
    np.testing.assert_allclose(vf, vp, rtol=1e-12)
    np.testing.assert_allclose(gf, gp, rtol=0, atol=1e-15)
    vb, gb = bce(np.array([1.0, 0.0, 1.0, 0.0]), np.array([1e4, -1e4, -1e4, 1e4]), from_logits=True,
                 backend="fused")  # fmt: skip
    np.testing.assert_allclose(vb, 1e4 / 2, rtol=1e-12)  # two exact, two off by 1e4
    np.testing.assert_allclose(gb, [0, 0, -0.25, 0.25], atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("temperature", [10.0, 0.3])
@pytest.mark.parametrize(
    "case",
    [
        ("labels", 10, {}),  # few classes: the block-shift path
        ("labels", 100, {}),  # the per-row path
        ("labels", 100, {"label_smoothing": 0.1}),  # and its smoothing gap
        ("soft", 12, {}),
        ("focal", 12, {"gamma": 0.5}),
        ("focal", 12, {"gamma": 2.0}),
    ],
    ids=["labels_few", "labels", "labels_smoothing", "soft", "focal05", "focal2"],
)
def test_extreme_logits_with_temperature_stay_exact(case, temperature, dtype):
    # Logits of 1e4 divided by a temperature: a row's terms must be shifted by its max before
    # the division. Shifting by max / T afterwards rounds that shift (by up to 1.2e-4 in
    # float32 at T = 10), which made certain classes' focal losses NaN and their losses and
    # gradients off by 1e-4. Reference: the portable path on the same values in float64.
    kind, n_classes, kwargs = case
    n_rows = 64
    z = logits((n_rows, n_classes), dtype, scale=1e4)
    z[::3, 0] = 2e4  # certain rows: loss 0 up to rounding
    if kind == "soft":
        y = RNG.dirichlet(np.ones(n_classes), n_rows)
        y[::3] = np.eye(n_classes)[0]
    else:
        y = RNG.integers(0, n_classes, n_rows)
        y[::3] = 0
    fn = cfl if kind == "focal" else cce
    kwargs = {"temperature": temperature, "reduction": "none", **kwargs}
    value, grad = fn(y.astype(dtype) if kind == "soft" else y, z, from_logits=True,
                     backend="fused", **kwargs)  # fmt: skip
    ref_value, ref_grad = fn(y, z.astype(np.float64), from_logits=True, backend="portable",
                             **kwargs)  # fmt: skip
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    tol = TOL[dtype]
    np.testing.assert_allclose(value, ref_value, rtol=tol, atol=tol * 1e-2)
    assert_same(grad, ref_grad.astype(dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_categorical_matches_pytorch(dtype):
    torch = pytest.importorskip("torch")
    n_rows, n_classes = 80, 23
    z = logits((n_rows, n_classes), dtype)
    y = RNG.integers(0, n_classes, n_rows)
    y[::5] = -100
    w = RNG.random(n_classes) + 0.5
    tz = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(
        tz, torch.tensor(y), weight=torch.tensor(w, dtype=tz.dtype), label_smoothing=0.1
    )
    ref.backward()
    value, grad = cce(y, z, from_logits=True, class_weight=w, label_smoothing=0.1, backend="fused")
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(value, ref.item(), rtol=tol)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=0, atol=tol * np.abs(grad).max())


BINARY_OPTIONS = {
    "plain": {},
    "pos_weight_vector": {"pos_weight": "vector"},
    "pos_weight_smoothing_weights": {
        "pos_weight": 3.0,
        "label_smoothing": 0.1,
        "sample_weight": "s",
    },
    "mask_sum": {"mask": "m", "reduction": "sum"},
    "none": {"reduction": "none"},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("name", sorted(BINARY_OPTIONS))
def test_binary_fused_equals_portable(name, soft, dtype):
    shape = (300, 5)
    z = logits(shape, dtype, scale=5.0)
    z[0, 0], z[1, 1] = 60, -60
    y = RNG.random(shape) if soft else (RNG.random(shape) > 0.5)
    kwargs = dict(BINARY_OPTIONS[name])
    if kwargs.get("pos_weight") == "vector":
        kwargs["pos_weight"] = np.arange(1.0, 6.0)
    if kwargs.get("sample_weight") == "s":
        kwargs["sample_weight"] = RNG.random(shape[0])
    if kwargs.get("mask") == "m":
        kwargs["mask"] = RNG.random(shape) > 0.3
    check(bce, dtype, y.astype(dtype), z, from_logits=True, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs",
    [{"gamma": 2.0}, {"gamma": 0.5, "alpha": 0.25}, {"gamma": 1.0, "label_smoothing": 0.2},
     {"gamma": 0.0, "alpha": 0.75, "reduction": "none"}],
    ids=["gamma2", "gamma05_alpha", "gamma1_smooth", "alpha_only_none"],
)  # fmt: skip
def test_binary_focal_fused_equals_portable(kwargs, dtype):
    z = logits((4001,), dtype, scale=6.0)
    y = (RNG.random(4001) > 0.7).astype(dtype)
    check(bfl, dtype, y, z, from_logits=True, **kwargs)


def test_fused_binary_matches_pytorch():
    torch = pytest.importorskip("torch")
    z = logits((200, 3), np.float64)
    y = (RNG.random((200, 3)) > 0.5).astype(np.float64)
    pw = np.array([0.5, 2.0, 4.0])
    tz = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        tz, torch.tensor(y), pos_weight=torch.tensor(pw)
    )
    ref.backward()
    value, grad = bce(y, z, from_logits=True, pos_weight=pw, backend="fused")
    np.testing.assert_allclose(value, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_classes", [2, 7, 40])
def test_few_class_rows_far_below_their_blocks_max_stay_exact(n_classes, dtype):
    # The few-class path shifts a block's rows by the block's max; rows whose max lies far
    # below it (offsets of -1e4, spreads of 50) are redone with their own, and losses of
    # confident rows stay accurate. Reference: float64 softmax of the same logits.
    n = 3000  # several blocks
    spread = RNG.choice([0.3, 5.0, 50.0], size=(n, 1))
    offset = RNG.choice([0.0, 0.0, 1e4, -1e4, -60.0], size=(n, 1))
    z = (RNG.normal(size=(n, n_classes)) * spread + offset).astype(dtype)
    y = RNG.integers(0, n_classes, n)
    confident = np.arange(0, n, 7)
    z[confident, y[confident]] = z[confident].max(axis=1) + RNG.uniform(5, 30, confident.size)
    x = z.astype(np.float64)
    x_y = x[np.arange(n), y]
    others = np.exp(x - x_y[:, None])
    others[np.arange(n), y] = 0
    m = x.max(axis=1)
    ref = np.where(
        x_y == m,
        np.log1p(others.sum(axis=1)),  # no cancellation for small losses
        np.log(np.exp(x - m[:, None]).sum(axis=1)) + (m - x_y),
    )
    p = np.exp(x - m[:, None])
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(n), y] -= 1
    value, grad = cce(y, z, from_logits=True, reduction="none", backend="fused")
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(value, ref, rtol=TOL[dtype], atol=4 * eps)  # 1-3 ulp seen
    np.testing.assert_allclose(grad, p, rtol=0, atol=4 * eps)
    # z-loss (which needs each row's log-sum-exp) and temperature on the same rows, against
    # SciPy in float64
    kwargs = {"z_loss": 1e-4, "temperature": 1.7}
    v64, g64 = categorical_per_row(y, x, **kwargs)
    value, grad = cce(y, z, from_logits=True, reduction="none", backend="fused", **kwargs)
    assert_same(value, v64.astype(dtype), dtype)
    assert_same(grad, g64.astype(dtype), dtype)


def test_fused_gradient_matches_finite_differences():
    z = logits((6, 5), np.float64)
    y = RNG.integers(0, 5, 6)
    kwargs = {"from_logits": True, "label_smoothing": 0.1, "z_loss": 0.05, "temperature": 1.5}
    _, grad = cce(y, z, backend="fused", **kwargs)
    fd = finite_difference_gradient(
        lambda x: crossent.categorical_cross_entropy(y, x, backend="fused", **kwargs), z
    )
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-8)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fused_rejects_non_finite_logits_like_portable(bad):
    z = logits((10, 4), np.float64)
    z[7, 2] = bad
    y = RNG.integers(0, 4, 10)
    for fn, target in ((cce, y), (bce, (RNG.random((10, 4)) > 0.5).astype(float))):
        with pytest.raises(ValueError) as portable:
            fn(target, z, from_logits=True, backend="portable")
        with pytest.raises(ValueError) as fused:
            fn(target, z, from_logits=True, backend="fused")
        assert str(fused.value) == str(portable.value)


@pytest.mark.parametrize("label", [4, -1, -101])
def test_fused_rejects_labels_out_of_range_like_portable(label):
    z = logits((10, 4), np.float32)
    y = RNG.integers(0, 4, 10)
    y[3] = label
    with pytest.raises(ValueError) as portable:
        cce(y, z, from_logits=True, backend="portable")
    with pytest.raises(ValueError) as fused:
        cce(y, z, from_logits=True, backend="fused", class_weight=np.ones(4))
    assert str(fused.value) == str(portable.value)
    assert "outside [0, 4)" in str(fused.value)


@pytest.mark.parametrize("bad", [1.5, -0.25, np.nan, np.inf])
@pytest.mark.parametrize("target_dtype", [np.float32, np.float64], ids=["same", "mixed"])
@pytest.mark.parametrize("fn", [bce, bfl], ids=["bce", "focal"])
def test_fused_rejects_binary_targets_outside_unit_interval_like_portable(fn, target_dtype, bad):
    z = logits((5000,), np.float32)  # several spans and blocks: the bad one is in the middle
    y = (RNG.random(5000) > 0.5).astype(target_dtype)
    y[3001] = bad
    with pytest.raises(ValueError) as portable:
        fn(y, z, from_logits=True, backend="portable")
    with pytest.raises(ValueError) as fused:
        fn(y, z, from_logits=True, backend="fused")
    assert str(fused.value) == str(portable.value)
    z[10] = np.nan  # a bad logit is reported first, as on the portable path
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        fn(y, z, from_logits=True, backend="fused")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("target_dtype", [np.int64, np.bool_, np.int32, np.int16, np.float64])
def test_fused_binary_reads_integer_boolean_and_wider_targets_like_portable(target_dtype, dtype):
    # int64, int32, bool (as uint8) and float64 go into the kernel as they are; int16 is
    # converted to the logits' dtype first.
    z = logits((3000, 3), dtype, scale=5.0)
    y = (RNG.random((3000, 3)) > 0.4).astype(target_dtype)
    for kwargs in ({}, {"label_smoothing": 0.1, "pos_weight": np.array([0.5, 1.0, 3.0])}):
        check(bce, dtype, y, z, from_logits=True, **kwargs)
    check(bfl, dtype, y, z, from_logits=True, gamma=2.0, alpha=0.25)


@pytest.mark.parametrize("bad", [2, -1])
@pytest.mark.parametrize("target_dtype", [np.int64, np.int32, np.uint8, np.int16])
def test_fused_rejects_integer_binary_targets_outside_0_1_like_portable(target_dtype, bad):
    z = logits((5000,), np.float32)
    y = (RNG.random(5000) > 0.5).astype(np.int64)
    y[4321] = bad
    y = y.astype(target_dtype)  # -1 wraps to 255 as uint8: still outside [0, 1]
    with pytest.raises(ValueError) as portable:
        bce(y, z, from_logits=True, backend="portable")
    with pytest.raises(ValueError) as fused:
        bce(y, z, from_logits=True, backend="fused")
    assert str(fused.value) == str(portable.value)
    assert "y_true must hold targets in [0, 1]" in str(fused.value)


def test_fused_checks_float64_targets_before_rounding_to_float32():
    y = np.zeros(20000)
    y[123] = 1 + 1e-12  # becomes exactly 1 in float32
    with pytest.raises(ValueError, match=r"y_true must hold targets in \[0, 1\]"):
        bce(y, logits((20000,), np.float32), from_logits=True, backend="fused")


@pytest.mark.parametrize("backend", ["portable", "portable-blocks", "fused"])
def test_out_receives_gradient_and_may_be_the_logits(backend, monkeypatch):
    # The few-classes and wide row paths for labels, and the soft-target path.
    if backend == "portable-blocks":  # blocks of 64 elements, each written into out
        monkeypatch.setattr(_blocks, "NUMPY_ELEMENTS", 64)
        backend = "portable"
    for shape, soft in (((33, 9), False), ((20, 100), False), ((20, 100), True)):
        z = logits(shape, np.float32)
        y = RNG.integers(0, shape[1], shape[0])
        if soft:
            y = RNG.random(shape)
            y = (y / y.sum(axis=1, keepdims=True)).astype(np.float32)
        value, grad = cce(y, z, from_logits=True, backend="portable")
        buffer = np.full_like(z, np.nan)
        _, g1 = cce(y, z, from_logits=True, backend=backend, out=buffer)
        assert g1 is buffer
        assert_same(buffer, grad, np.float32)
        inplace = z.copy()
        v2, g2 = cce(y, inplace, from_logits=True, backend=backend, out=inplace)
        assert g2 is inplace
        assert_same(inplace, grad, np.float32)
        assert_same(v2, value, np.float32)
    for fn in (bce, bfl):  # several spans of the binary kernel, the last one partial
        zb = logits((5000,), np.float64)
        yb = (RNG.random(5000) > 0.5).astype(float)
        _, gb = fn(yb, zb, from_logits=True, backend="portable")
        _, gb2 = fn(yb, zb, from_logits=True, backend=backend, out=zb)
        assert gb2 is zb
        assert_same(zb, gb, np.float64)


def test_out_is_validated():
    z = logits((5, 3), np.float64)
    y = RNG.integers(0, 3, 5)
    with pytest.raises(ValueError, match="out must have y_pred's shape"):
        cce(y, z, from_logits=True, out=np.empty((5, 4)))
    with pytest.raises(ValueError, match="out must have y_pred's shape"):
        cce(y, z, from_logits=True, out=np.empty((5, 3), np.float32))
    with pytest.raises(TypeError, match="out must be a NumPy array"):
        cce(y, z, from_logits=True, out=[[0.0] * 3] * 5)
    read_only = np.empty_like(z)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        cce(y, z, from_logits=True, out=read_only)
    with pytest.raises(ValueError, match="value_and_grad"):
        crossent.categorical_cross_entropy(y, z, from_logits=True, out=np.empty_like(z))


@pytest.mark.parametrize("n_rows", [5, 40_000])  # the whole array, and blocks of rows
def test_out_of_float16_receives_the_float16_gradient(n_rows):
    # float16 is computed in float32: out had been checked against that float32 copy and
    # a float16 buffer of y_pred's own dtype refused
    z = logits((n_rows, 3), np.float32).astype(np.float16)
    y = RNG.integers(0, 3, n_rows)
    for fn, target in ((cce, y), (bce, (z > 0).astype(np.float16))):
        out = np.empty_like(z)
        grad = fn(target, z, from_logits=True, out=out)[1]
        assert grad is out
        np.testing.assert_array_equal(grad, fn(target, z, from_logits=True)[1])


def test_caller_arrays_are_not_modified():
    z = logits((40, 6), np.float32)
    y = RNG.integers(0, 6, 40)
    z_copy, y_copy = z.copy(), y.copy()
    cce(y, z, from_logits=True, backend="fused", label_smoothing=0.1)
    bce((z > 0).astype(np.float32), z, from_logits=True, backend="fused")
    np.testing.assert_array_equal(z, z_copy)
    np.testing.assert_array_equal(y, y_copy)


def test_portable_path_in_blocks_equals_one_block(monkeypatch):
    z = logits((50, 7), np.float64)
    y = RNG.integers(0, 7, 50)
    y[::6] = -100
    kwargs = {"from_logits": True, "class_weight": RNG.random(7) + 0.1, "z_loss": 0.01,
              "label_smoothing": 0.1, "sample_weight": RNG.random(50)}  # fmt: skip
    whole = [cce(y, z, backend="portable", reduction=r, **kwargs) for r in ("mean", "none")]
    hess_whole = crossent.value_grad_hess(crossent.categorical_cross_entropy)(
        y, z, backend="portable", **kwargs
    )
    monkeypatch.setattr(_blocks, "NUMPY_ELEMENTS", 7 * 8)  # 8 rows per block, 7 blocks
    blocks = [cce(y, z, backend="portable", reduction=r, **kwargs) for r in ("mean", "none")]
    for (vw, gw), (vc, gc) in zip(whole, blocks, strict=True):
        assert_same(vc, vw, np.float64)
        assert_same(gc, gw, np.float64)
    hess_blocks = crossent.value_grad_hess(crossent.categorical_cross_entropy)(
        y, z, backend="portable", **kwargs
    )
    for got, want in zip(hess_blocks, hess_whole, strict=True):
        assert_same(got, want, np.float64)
    p = crossent.softmax(z)  # probabilities go through the blocks too
    blocks_p = cce(y, p, backend="portable")
    monkeypatch.undo()
    whole_p = cce(y, p, backend="portable")
    assert_same(blocks_p[0], whole_p[0], np.float64)
    assert_same(blocks_p[1], whole_p[1], np.float64)


def test_backend_keyword_and_environment_variable(monkeypatch):
    z = logits((400, 50), np.float32)  # 20000 logits: above FUSED_MIN_ELEMENTS
    assert z.size >= kernels.FUSED_MIN_ELEMENTS > z[:10].size
    y = RNG.integers(0, 50, 400)
    calls = []
    original = kernels.fused_categorical

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(kernels, "fused_categorical", spy)
    cce(y, z, from_logits=True)
    assert len(calls) == 1  # auto: fused
    cce(y[:10], z[:10], from_logits=True)
    assert len(calls) == 1  # auto, small input: portable
    cce(y, z, from_logits=True, backend="portable")
    crossent.value_grad_hess(crossent.categorical_cross_entropy)(y, z, from_logits=True)
    cce(y, crossent.softmax(z), backend="fused")  # probabilities: portable
    assert len(calls) == 1
    monkeypatch.setenv(kernels.ENV_VAR, "portable")
    cce(y, z, from_logits=True)
    assert len(calls) == 1
    cce(y, z, from_logits=True, backend="fused")  # the keyword wins
    assert len(calls) == 2
    monkeypatch.setenv(kernels.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="CROSSENT_BACKEND must be one of"):
        cce(y, z, from_logits=True)
    with pytest.raises(ValueError, match="backend must be one of"):
        cce(y, z, from_logits=True, backend="gpu")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["categorical", "focal", "binary"])
def test_torch_cpu_tensors_take_the_fused_kernels_through_numpy_views(loss, dtype, monkeypatch):
    torch = pytest.importorskip("torch")
    fn, kernel = {
        "categorical": (cce, "fused_categorical"),
        "focal": (cfl, "fused_categorical"),
        "binary": (bce, "fused_binary"),
    }[loss]
    z = logits((600, 40), dtype)  # 24000 logits: "auto" takes the kernels
    if loss == "binary":
        y = (RNG.random(z.shape) < 0.3).astype(dtype)
    else:
        y = RNG.integers(0, 40, 600)
    w = RNG.random(600).astype(dtype)
    tz, ty, tw = (torch.from_numpy(a.copy()) for a in (z, y, w))
    calls = count_calls(monkeypatch, kernels, kernel)
    value, grad = fn(ty, tz, from_logits=True, sample_weight=tw)
    assert calls, "the fused kernel did not run"
    assert isinstance(value, torch.Tensor) and isinstance(grad, torch.Tensor)
    assert value.dtype == grad.dtype == tz.dtype and grad.shape == tz.shape
    # PyTorch's own operations (the portable path) are the reference.
    want_value, want_grad = fn(ty, tz, from_logits=True, sample_weight=tw, backend="portable")
    assert len(calls) == 1
    assert_same(value.numpy(), want_value.numpy(), dtype)
    assert_same(grad.numpy(), want_grad.numpy(), dtype)
    np.testing.assert_array_equal(tz.numpy(), z)  # the caller's tensor is untouched


def test_tracked_tensors_and_other_libraries_use_the_portable_path(monkeypatch):
    torch = pytest.importorskip("torch")
    xps = pytest.importorskip("array_api_strict")
    z = logits((600, 40), np.float64)
    y = RNG.integers(0, 40, 600)
    ref_value, ref_grad = cce(y, z, from_logits=True, backend="fused")
    monkeypatch.setattr(kernels, "fused_categorical", None)  # would fail if called
    # One PyTorch thread: twice in about ten fresh processes, rows the second thread took
    # came out 1e-9 relative apart from the fused result, while the NumPy portable path
    # agreed with it to 1e-17.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tracked = torch.tensor(z, requires_grad=True)  # autograd must see the operations
        loss = crossent.categorical_cross_entropy(torch.tensor(y), tracked, from_logits=True,
                                                  backend="fused")  # fmt: skip
        loss.backward()
        out = torch.empty_like(tracked)
        with pytest.raises(TypeError, match="out must be a NumPy array"):
            cce(torch.tensor(y), tracked.detach(), from_logits=True, out=out)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(tracked.grad.numpy(), ref_grad, rtol=0, atol=1e-15)
    np.testing.assert_allclose(float(loss.detach()), ref_value, rtol=1e-13)
    value, grad = cce(xps.asarray(y), xps.asarray(z), from_logits=True, backend="fused")
    np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=0, atol=1e-15)
    np.testing.assert_allclose(float(value), ref_value, rtol=1e-13)


def test_without_numba_auto_is_portable_and_fused_is_refused(monkeypatch):
    monkeypatch.setattr(kernels, "numba_available", lambda: False)
    z = logits((100, 50), np.float64)
    y = RNG.integers(0, 50, 100)
    monkeypatch.setattr(kernels, "fused_categorical", None)  # would fail if called
    value, grad = cce(y, z, from_logits=True)
    assert np.isfinite(value) and grad.shape == z.shape
    with pytest.raises(ValueError, match="needs Numba"):
        cce(y, z, from_logits=True, backend="fused")


def test_cache_directory_falls_back_for_read_only_installs(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(kernels.os, "access", lambda path, mode: True)
    assert kernels.cache_dir() is None  # writable: Numba's default, beside the package
    monkeypatch.setattr(kernels.os, "access", lambda path, mode: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernels.cache_dir() == str(tmp_path / "crossent" / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert kernels.cache_dir() == str(tmp_path / "mine")


def test_kernels_are_not_compiled_at_import():
    import os
    import subprocess
    import sys

    code = "import sys, crossent; print('numba' in sys.modules)"
    src = os.path.dirname(os.path.dirname(crossent.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == "False"


def test_functions_calling_wide_vectors_carry_the_vector_width_attribute():
    # The kernels' 512-bit vectors rest on this attribute reaching LLVM.
    from numba import njit

    from crossent.kernels._numba import _wide_vectors

    def double(x):
        for i in range(x.shape[0]):
            x[i] *= 2.0

    def marked_double(x):
        _wide_vectors()
        for i in range(x.shape[0]):
            x[i] *= 2.0

    marked, plain = njit(marked_double), njit(double)
    x = np.ones(4)
    marked(x)
    plain(x)
    assert x.tolist() == [4.0] * 4
    attribute = '"prefer-vector-width"="512"'
    assert attribute in marked.inspect_llvm(marked.signatures[0])
    assert attribute not in plain.inspect_llvm(plain.signatures[0])


@pytest.mark.parametrize(
    "loss, y, z",
    [
        (cce, RNG.integers(0, 10, 40000), logits((40000, 10), np.float32)),
        (cfl, RNG.integers(0, 10, 40000), logits((40000, 10), np.float32)),
        (bce, RNG.random(400000) > 0.5, logits(400000, np.float32)),
    ],
    ids=["labels", "general", "binary"],
)
def test_kernels_choose_their_threads_and_restore_numbas_settings(loss, y, z):
    import numba

    from crossent.kernels._numba import claim_threads, release_threads

    threads, chunk = numba.get_num_threads(), numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(7)
    try:
        previous = claim_threads(kernels.PARALLEL_MIN_ELEMENTS - 1, 100)
        assert (numba.get_num_threads(), numba.get_parallel_chunksize()) == (1, 0)
        release_threads(previous)
        assert (numba.get_num_threads(), numba.get_parallel_chunksize()) == (threads, 7)
        previous = claim_threads(2 * kernels.PARALLEL_MIN_ELEMENTS, 2 * kernels.CHUNKS_PER_THREAD)
        wanted = min(threads, 2)
        assert numba.get_num_threads() == wanted
        assert numba.get_parallel_chunksize() == (0 if wanted == 1 else 1)
        release_threads(previous)
        loss(y, z, from_logits=True, backend="fused")
        assert (numba.get_num_threads(), numba.get_parallel_chunksize()) == (threads, 7)
    finally:
        numba.set_parallel_chunksize(chunk)


def test_thread_settings_leave_the_kernels_cacheable(tmp_path, monkeypatch):
    # numba.get_num_threads() and its kin, called in compiled code, make it uncacheable (a
    # warning, and a recompilation in every process); the kernels' own calls do not.
    import warnings

    import numba

    from crossent.kernels._numba import claim_threads, release_threads

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))

    def settings_round_trip(size):
        release_threads(claim_threads(size, 8))
        return size

    cached = numba.njit(cache=True)(settings_round_trip)
    with warnings.catch_warnings():
        warnings.simplefilter("error", numba.NumbaWarning)
        assert cached(5) == 5
    assert list(tmp_path.rglob("*settings_round_trip*.nbc"))


@pytest.mark.parametrize("backend", ["fused", "auto"])
def test_numpy_logits_with_tensor_labels_take_the_portable_path(backend):
    # the fused path had been chosen from the NumPy logits and then given the tensors that the
    # PyTorch labels made of them (AttributeError)
    torch = pytest.importorskip("torch")
    z = logits((2000, 10), np.float64)
    y = RNG.integers(0, 10, 2000)
    want = crossent.categorical_cross_entropy(y, z, from_logits=True, backend="portable")
    got = crossent.categorical_cross_entropy(torch.tensor(y), z, from_logits=True, backend=backend)
    assert isinstance(got, torch.Tensor) and abs(float(got) - float(want)) < 1e-12
    t = (RNG.random((2000, 10)) < 0.5).astype(np.float64)
    want = crossent.binary_cross_entropy(t, z, from_logits=True, backend="portable")
    got = crossent.binary_cross_entropy(torch.tensor(t), z, from_logits=True, backend=backend)
    assert isinstance(got, torch.Tensor) and abs(float(got) - float(want)) < 1e-12


@pytest.mark.parametrize("n_classes", [4, 100])
@pytest.mark.parametrize(
    "loss", [crossent.categorical_cross_entropy, crossent.categorical_focal_loss]
)
def test_without_ignore_index_every_label_is_checked(loss, n_classes):
    # ignore_index=None had been passed to the kernels as the label -2**62, which they ignored
    y = np.array([1, -(2**62), 2])
    for backend in ("portable", "fused"):
        with pytest.raises(ValueError, match="class index -4611686018427387904"):
            loss(y, np.zeros((3, n_classes)), from_logits=True, ignore_index=None, backend=backend)


@pytest.mark.parametrize("backend", ["portable", "fused"])
def test_out_partly_overlapping_the_logits_is_refused(backend):
    # the kernels had written gradient rows over logits of rows not yet read
    buf = np.zeros(9 * 100)
    buf[:-100] = logits((8, 100), np.float64).ravel()
    z, out = buf[:-100].reshape(8, 100), buf[100:].reshape(8, 100)
    y = RNG.integers(0, 100, 8)
    with pytest.raises(ValueError, match="out overlaps y_pred without being it"):
        cce(y, z, from_logits=True, out=out, backend=backend)
    flat = buf[:-100]
    with pytest.raises(ValueError, match="out overlaps y_pred without being it"):
        bce(np.zeros(800), flat, from_logits=True, out=buf[1:-99], backend=backend)


@pytest.mark.parametrize(
    "fn, kwargs",
    [
        (bfl, {"gamma": 2.0}),
        (bce, {"sample_weight": np.ones(4096)}),
        (bce, {"pos_weight": np.arange(1.0, 9.0)}),
    ],
)
def test_float32_binary_sums_stay_within_tolerance(fn, kwargs):
    # the scalar loop of the binary kernel had summed 1024 float32 terms in float32: 1.03e-5
    # relative off at constant logits
    z = np.zeros((4096, 8), np.float32)
    y = (RNG.random((4096, 8)) < 0.5).astype(np.float32)
    want = fn(y.astype(np.float64), z.astype(np.float64), from_logits=True, **kwargs)[0]
    got = fn(y, z, from_logits=True, backend="fused", **kwargs)[0]
    assert abs(float(got) - float(want)) <= 1e-6 * abs(float(want))


def test_both_paths_raise_the_same_first_error():
    # the fused path checks NaN and label/target ranges last, as its kernel reads them; the
    # portable path had checked them first, so that two bad arguments gave different errors
    z = np.zeros((4, 3))
    z[0, 0] = np.nan
    cases = [
        (crossent.categorical_cross_entropy, np.array([0.0, 1.0, 2.0, 1.0]), z, {}),
        (crossent.categorical_cross_entropy, np.array([0, 1, 2, 1]), z, {"reduction": "avg"}),
        (crossent.categorical_cross_entropy, np.array([0, 5, 2, 1]), np.zeros((4, 3)),
         {"class_weight": np.ones(4)}),
        (crossent.binary_cross_entropy, np.full((4, 3), 2.0), np.zeros((4, 3)),
         {"pos_weight": np.ones(5)}),
        (crossent.binary_focal_loss, np.full((4, 3), 2.0), z, {"gamma": -1.0}),
    ]  # fmt: skip
    for fn, y, pred, kwargs in cases:
        errors = []
        for backend in ("portable", "fused"):
            with pytest.raises((ValueError, TypeError)) as info:
                fn(y, pred, from_logits=True, backend=backend, **kwargs)
            errors.append((info.type, str(info.value)))
        assert errors[0] == errors[1]


def test_out_in_the_same_buffer_but_apart_from_the_logits_is_taken():
    buf = np.zeros((4, 6), np.float64)
    buf[:, :3] = logits((4, 3), np.float64)
    y = np.array([0, 1, 2, 0])
    want = cce(y, buf[:, :3].copy(), from_logits=True, backend="portable")
    for backend in ("portable", "fused"):
        value, grad = cce(y, buf[:, :3], from_logits=True, out=buf[:, 3:], backend=backend)
        assert grad.base is not None and np.shares_memory(grad, buf)
        assert_same(value, want[0], np.float64)
        assert_same(buf[:, 3:], want[1], np.float64)


def test_out_with_tensors_is_refused_by_name():
    torch = pytest.importorskip("torch")
    z = logits((4, 3), np.float32)
    with pytest.raises(TypeError, match="out takes NumPy arrays"):
        cce(torch.tensor([0, 1, 2, 0]), z, from_logits=True, out=np.empty_like(z))


@pytest.mark.parametrize(
    ("loss", "y", "z", "kwargs", "match"),
    [
        (crossent.binary_cross_entropy, [1.0, 1.0, 1.0], [0.5, np.nan, -1.0], {},
         "y_pred contains NaN"),
        (crossent.categorical_cross_entropy, [0], [[0.5, 1.0, -np.inf]], {"label_smoothing": 0.1},
         "y_pred contains NaN"),
        (crossent.binary_focal_loss, [1.0, np.nan, 0.0], [0.5, 1.0, -1.0], {},
         "y_true contains NaN"),
        (crossent.categorical_cross_entropy, [0, 5, 1], [[0.5, 1.0, 2.0]] * 3,
         {"label_smoothing": 0.1}, "class index 5"),
        (crossent.categorical_focal_loss, [0, 5], [[np.nan, 1.0], [0.0, 1.0]], {"gamma": 2.0},
         "y_pred contains NaN"),
    ],
)  # fmt: skip
def test_in_place_calls_raise_the_portable_error(loss, y, z, kwargs, match):
    # With out=y_pred the kernels had written the gradient over the logits before the
    # portable checks re-ran on them: "AssertionError: a fused kernel rejected its input but
    # the portable checks did not", or a NaN target blamed on y_pred.
    y, z = np.array(y), np.array(z)
    with pytest.raises(ValueError, match=match):
        crossent.value_and_grad(loss)(y, z.copy(), from_logits=True, backend="portable", **kwargs)
    with pytest.raises(ValueError, match=match):
        crossent.value_and_grad(loss)(y, z, from_logits=True, backend="fused", out=z, **kwargs)


@pytest.mark.parametrize("backend", ["portable", "fused"])
def test_float32_sums_over_many_classes_stay_within_float32_tolerance(backend):
    # The fused focal kernel had summed 32000 classes' terms in float32 (1.5e-4 off); the
    # portable path had summed Fortran-ordered soft targets in sequence (1.9e-4 off).
    from scipy.special import log_softmax

    n_classes = 32000
    z = np.zeros((1, n_classes), np.float32)
    kwargs = {"from_logits": True, "gamma": 2.0, "label_smoothing": 0.5}
    got = crossent.categorical_focal_loss(np.array([0]), z, backend=backend, **kwargs)
    # equal logits: every p = 1/C and the smoothed targets sum to 1
    np.testing.assert_allclose(got, np.log(n_classes) * (1 - 1 / n_classes) ** 2, rtol=1e-5)
    z = np.random.default_rng(0).normal(size=(4, n_classes)).astype(np.float32)
    q = np.asfortranarray(np.full((4, n_classes), 1 / n_classes, np.float32))
    q64 = q.astype(np.float64) / q.astype(np.float64).sum(axis=1, keepdims=True)
    log_p = log_softmax(z.astype(np.float64), axis=1)  # SciPy, float64
    value, grad = crossent.value_and_grad(crossent.categorical_cross_entropy)(
        q, z, from_logits=True, backend=backend
    )
    np.testing.assert_allclose(value, -np.mean(np.sum(q64 * log_p, axis=1)), rtol=1e-5)
    expected = (np.exp(log_p) - q64) / 4
    np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
