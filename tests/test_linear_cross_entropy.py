"""linear_cross_entropy against PyTorch autograd on the materialised logits."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from _spies import count_calls

import crossent
from crossent import kernels

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
lce = crossent.value_and_grad(crossent.linear_cross_entropy)
TOL = {np.float64: 1e-10, np.float32: 1e-4}

CASES = {
    "plain": {},
    "bias_smoothing_zloss": {"bias": True, "label_smoothing": 0.1, "z_loss": 1e-3},
    "softcap_sum": {"bias": True, "softcap": 2.0, "reduction": "sum"},
    "none_softcap_zloss": {"reduction": "none", "softcap": 3.0, "z_loss": 1e-2},
    "weights_bias": {"bias": True, "sample_weight": True, "label_smoothing": 0.05},
    "weights_none": {"sample_weight": True, "reduction": "none", "z_loss": 1e-3},
}


def torch_reference(
    h, w, b, t, *, sample_weight=None, label_smoothing=0.0, z_loss=0.0, softcap=None,
    reduction="mean",
):  # fmt: skip
    """Loss and gradients of the materialised computation, by autograd: PyTorch's per-row
    cross-entropy (0 on ignored rows), plus the z-loss, weighted and reduced."""
    th, tw = torch.tensor(h, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    z = th @ tw.T + (0 if tb is None else tb)
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    tt = torch.tensor(t)
    valid = tt != -100
    per_row = torch.nn.functional.cross_entropy(
        z, tt, label_smoothing=label_smoothing, reduction="none"
    )
    per_row = per_row + z_loss * torch.logsumexp(z, dim=-1) ** 2 * valid
    s = torch.ones(len(t), dtype=z.dtype) if sample_weight is None else torch.tensor(sample_weight)
    loss = {
        "none": lambda: per_row * s,
        "sum": lambda: (per_row * s).sum(),
        "mean": lambda: (per_row * s).sum() / (s * valid).sum(),
    }[reduction]()
    loss.sum().backward()
    grads = (th.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy())
    return loss.detach().numpy(), grads


@pytest.mark.parametrize("lib", ["numpy", "torch", "torch autograd"])
@pytest.mark.parametrize("backend", ["portable", "fused"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_pytorch_autograd(name, dtype, backend, lib, monkeypatch):
    # PyTorch CPU tensors: products by PyTorch, the cross-entropy on NumPy views of its blocks;
    # tensors that autograd tracks: the same blocks, through a torch.autograd.Function.
    if backend == "fused":
        pytest.importorskip("numba")
    monkeypatch.setenv(kernels.ENV_VAR, backend)
    calls = count_calls(monkeypatch, kernels, "fused_categorical")
    n, d, v = 45, 12, 131
    h = RNG.normal(size=(n, d)).astype(dtype)
    w = (RNG.normal(size=(v, d)) * 0.5).astype(dtype)
    t = RNG.integers(0, v, n)
    t[::6] = -100
    kwargs = dict(CASES[name])
    b = RNG.normal(size=v).astype(dtype) if kwargs.pop("bias", False) else None
    if kwargs.get("sample_weight"):
        kwargs["sample_weight"] = RNG.random(n).astype(dtype)
    want, want_grads = torch_reference(h, w, b, t, **kwargs)
    args = [h, w, t, b]
    if lib != "numpy":
        args = [None if a is None else torch.from_numpy(a) for a in args]
    if lib == "torch autograd":  # 6 blocks, the last partial
        tracked = [None if a is None or i == 2 else a.clone().requires_grad_()
                   for i, a in enumerate(args)]  # fmt: skip
        value = crossent.linear_cross_entropy(*tracked[:2], args[2], bias=tracked[3],
                                              chunk_size=8, **kwargs)  # fmt: skip
        value.sum().backward()
        value = value.detach()
        grads = [None if a is None else a.grad for a in (tracked[0], tracked[1], tracked[3])]
    else:
        value, grads = lce(*args[:3], bias=args[3], chunk_size=8, **kwargs)
    assert bool(calls) == (backend == "fused")
    if lib != "numpy":
        assert all(isinstance(a, torch.Tensor) for a in (value, *grads) if a is not None)
        value, grads = value.numpy(), [None if g is None else g.numpy() for g in grads]
    tol = TOL[dtype]
    np.testing.assert_allclose(value, want, rtol=tol, atol=tol)
    assert value.dtype == dtype
    for got, ref in zip(grads, want_grads, strict=True):
        if ref is None:
            assert got is None
            continue
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol * np.abs(ref).max())
    plain = crossent.linear_cross_entropy(*args[:3], bias=args[3], chunk_size=8, **kwargs)
    np.testing.assert_allclose(np.asarray(plain), value, rtol=tol)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_autograd_holds_no_block_of_logits(reduction):
    # Autograd had kept every block's intermediates until backward: several times the
    # (N, V) logits. What it saves now is the size of hidden and weight (the gradients, or
    # the inputs themselves for "none").
    n, d, v = 256, 16, 4096
    h = torch.randn(n, d, requires_grad=True)
    w = torch.randn(v, d, requires_grad=True)
    t = torch.randint(0, v, (n,))
    saved = []

    def pack(x):
        saved.append(x.numel() * x.element_size())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        loss = crossent.linear_cross_entropy(h, w, t, chunk_size=64, reduction=reduction)
    assert sum(saved) <= (n * d + v * d + n) * 4 * 1.5 < n * v * 4 / 2
    loss.sum().backward()
    assert h.grad is not None and w.grad is not None


def test_autograd_backward_hands_over_the_kept_gradients():
    # loss.backward() passes a gradient of 1: the kept gradients become .grad as they are
    # (scaling them had taken a second copy of hidden's and weight's size: a peak of 288
    # instead of 208 MiB at 4096 x 1024 x 32768).
    h = torch.randn(64, 32, requires_grad=True)
    w = torch.randn(2048, 32, requires_grad=True)
    loss = crossent.linear_cross_entropy(h, w, torch.randint(0, 2048, (64,)))
    with torch.profiler.profile(profile_memory=True) as prof:
        loss.backward()
    allocated = sum(max(e.cpu_memory_usage, 0) for e in prof.key_averages())
    assert allocated < w.numel() * 4 / 2
    assert h.grad is not None and w.grad is not None


def test_autograd_refuses_a_tracked_sample_weight_and_a_second_derivative():
    h = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, 2, 3, 4, 0])
    with pytest.raises(TypeError, match="sample_weight is a tensor that autograd tracks"):
        crossent.linear_cross_entropy(h, w, t, sample_weight=torch.ones(6, requires_grad=True))
    (d_h,) = torch.autograd.grad(crossent.linear_cross_entropy(h, w, t), h, create_graph=True)
    with pytest.raises(RuntimeError, match=r"does not require grad|twice"):
        d_h.sum().backward()


def test_block_size_does_not_change_the_result():
    h, w = RNG.normal(size=(30, 5)), RNG.normal(size=(17, 5))
    t = RNG.integers(0, 17, 30)
    results = [lce(h, w, t, label_smoothing=0.2, chunk_size=c) for c in (1, 7, 30, None)]
    for value, grads in results[1:]:
        np.testing.assert_allclose(value, results[0][0], rtol=1e-13)
        for got, want in zip(grads[:2], results[0][1][:2], strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_equals_categorical_cross_entropy_of_the_logits():
    h, w = RNG.normal(size=(20, 6)), RNG.normal(size=(9, 6))
    t = RNG.integers(0, 9, 20)
    z = h @ w.T
    value, (d_h, d_w, _) = lce(h, w, t, chunk_size=3)
    ref, d_z = crossent.value_and_grad(crossent.categorical_cross_entropy)(t, z, from_logits=True)
    np.testing.assert_allclose(value, ref, rtol=1e-13)
    np.testing.assert_allclose(d_h, d_z @ w, atol=1e-14)
    np.testing.assert_allclose(d_w, d_z.T @ h, atol=1e-14)


@pytest.mark.parametrize("backend", ["fused", "portable"])
def test_backend_keyword_picks_the_blocks_path_over_the_environment(backend, monkeypatch):
    if backend == "fused":
        pytest.importorskip("numba")
    other = "portable" if backend == "fused" else "fused"
    monkeypatch.setenv(kernels.ENV_VAR, other)
    calls = count_calls(monkeypatch, kernels, "fused_categorical")
    h, w = RNG.normal(size=(20, 6)), RNG.normal(size=(9, 6))
    t = RNG.integers(0, 9, 20)
    value, (d_h, _, _) = lce(h, w, t, chunk_size=8, backend=backend)
    assert len(calls) == (3 if backend == "fused" else 0)  # three blocks
    want, (want_h, _, _) = lce(h, w, t, chunk_size=8)  # the environment's path
    np.testing.assert_allclose(value, want, rtol=1e-12)
    np.testing.assert_allclose(d_h, want_h, rtol=0, atol=1e-14)


@pytest.mark.parametrize("lib", ["numpy", "torch"])
@pytest.mark.parametrize("backend", ["portable", "fused"])
def test_saturated_softcap_keeps_its_gradient(backend, lib):
    # Logits 5 to 9 times the cap: tanh saturates, and 1 - tanh^2 in float32 keeps only the
    # digits of tanh's rounding (6% off at 8, 0 at 12). Reference: autograd in float64.
    if backend == "fused":
        pytest.importorskip("numba")
    v = 7
    h = RNG.uniform(5, 9, size=(5, v)) * RNG.choice([-1, 1], size=(5, v))
    w = np.eye(v)  # the logits are h
    t = RNG.integers(0, v, 5)
    _, (want_h, want_w, _) = torch_reference(h, w, None, t, softcap=1.0)
    args = [h.astype(np.float32), w.astype(np.float32), t]
    if lib == "torch":
        args = [torch.from_numpy(a) for a in args]
    _, (d_h, d_w, _) = lce(*args, softcap=1.0, backend=backend)
    d_h, d_w = np.asarray(d_h), np.asarray(d_w)
    np.testing.assert_allclose(d_h, want_h, rtol=2e-5, atol=0)  # with w = I: entry by entry
    np.testing.assert_allclose(d_w, want_w, rtol=0, atol=2e-5 * np.abs(want_w).max())


def test_all_rows_ignored_gives_zero():
    h, w = RNG.normal(size=(4, 3)), RNG.normal(size=(5, 3))
    value, (d_h, d_w, _) = lce(h, w, np.full(4, -100))
    assert value == 0 and not d_h.any() and not d_w.any()


def test_inputs_are_not_modified():
    h, w, b = RNG.normal(size=(8, 3)), RNG.normal(size=(5, 3)), RNG.normal(size=5)
    copies = h.copy(), w.copy(), b.copy()
    lce(h, w, RNG.integers(0, 5, 8), bias=b, softcap=1.0, chunk_size=3)
    for got, want in zip((h, w, b), copies, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("backend", "chunk", "bound"),
    [("fused", 64, 1.5 / 8), ("portable", 8, 1 / 4)],
    ids=["fused", "portable"],
)
def test_memory_stays_at_a_block(backend, chunk, bound, monkeypatch):
    # The fused path holds one block of logits (1/8 of them here); the portable path about
    # ten temporaries of a block's size (blocks of 1/64 here), never the whole (N, V) logits.
    if backend == "fused":
        pytest.importorskip("numba")
    monkeypatch.setenv(kernels.ENV_VAR, backend)
    n, d, v = 512, 16, 2048
    h = RNG.normal(size=(n, d)).astype(np.float32)
    w = RNG.normal(size=(v, d)).astype(np.float32)
    t = RNG.integers(0, v, n)
    lce(h, w, t, chunk_size=chunk)  # warm-up (compilation)
    tracemalloc.start()
    lce(h, w, t, chunk_size=chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    logits_bytes = n * v * 4
    gradients_bytes = (n * d + v * d) * 4
    assert peak < gradients_bytes + logits_bytes * bound


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weight": np.zeros((5, 4))}, ValueError, "weight has shape"),
        ({"targets": np.zeros(3, int)}, ValueError, "targets must have shape"),
        ({"targets": np.full(8, 9)}, ValueError, "targets holds class index 9"),
        ({"bias": np.zeros(4)}, ValueError, "bias must have shape"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be a positive integer"),
        ({"chunk_size": 2.5}, TypeError, "chunk_size must be a positive integer"),
        ({"softcap": -1.0}, ValueError, "softcap must lie in"),
        ({"hidden": np.full((8, 3), np.nan)}, ValueError, "hidden contains NaN"),
        ({"reduction": "avg"}, ValueError, "reduction must be one of"),
        ({"backend": "gpu"}, ValueError, "backend must be one of"),
        ({"sample_weight": np.ones(3)}, ValueError, "sample_weight has shape"),
        ({"sample_weight": -np.ones(8)}, ValueError, "sample_weight must be non-negative"),
        ({"sample_weight": np.full(8, np.inf)}, ValueError, "sample_weight contains"),
    ],
)
def test_bad_input_is_rejected(kwargs, error, match):
    args = {"hidden": np.ones((8, 3)), "weight": np.ones((5, 3)), "targets": np.zeros(8, int)}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        crossent.linear_cross_entropy(args.pop("hidden"), args.pop("weight"), args.pop("targets"),
                                      **args)  # fmt: skip


@pytest.mark.parametrize("lib", ["torch", "array_api_strict"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_other_array_libraries_give_numpy_results_in_their_own_arrays(name, lib):
    xps = pytest.importorskip("array_api_strict")
    convert = torch.asarray if lib == "torch" else xps.asarray
    options = dict(CASES[name])
    n, d, v = 23, 5, 17
    h, w = RNG.normal(size=(n, d)), RNG.normal(size=(v, d))
    b = RNG.normal(size=v) if options.pop("bias", False) else None
    t = RNG.integers(0, v, n)
    t[[3, 11]] = -100
    s = RNG.random(n) if options.pop("sample_weight", False) else None
    want = lce(h, w, t, bias=b, sample_weight=s, chunk_size=4, **options)
    got = lce(convert(h), convert(w), convert(t), bias=None if b is None else convert(b),
              sample_weight=None if s is None else convert(s), chunk_size=4, **options)  # fmt: skip
    flat = lambda r: [r[0], *r[1]]  # noqa: E731
    for g, e in zip(flat(got), flat(want), strict=True):
        if e is None:
            assert g is None
            continue
        assert type(g).__module__.split(".")[0] == lib
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-12, atol=1e-15)


def test_torch_autograd_through_the_blocks_equals_the_analytic_gradients():
    h = torch.tensor(RNG.normal(size=(30, 6)), requires_grad=True)
    w = torch.tensor(RNG.normal(size=(40, 6)), requires_grad=True)
    t = torch.tensor(RNG.integers(0, 40, 30))
    options = {"softcap": 2.5, "z_loss": 1e-3, "label_smoothing": 0.1, "chunk_size": 7}
    crossent.linear_cross_entropy(h, w, t, **options).backward()
    _, (d_h, d_w, _) = lce(h.detach(), w.detach(), t, **options)
    np.testing.assert_allclose(h.grad.numpy(), d_h.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(w.grad.numpy(), d_w.numpy(), rtol=1e-10, atol=1e-15)
    # Tracked tensors through value_and_grad: the analytic gradients, built by PyTorch's ops.
    _, (d_h_tracked, d_w_tracked, _) = lce(h, w, t, **options)
    assert d_h_tracked.requires_grad
    np.testing.assert_allclose(d_h_tracked.detach().numpy(), d_h.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d_w_tracked.detach().numpy(), d_w.numpy(), rtol=1e-12, atol=1e-15)


def test_arrays_that_cannot_be_written_into_are_refused(monkeypatch):
    from crossent import _array

    monkeypatch.setattr(_array.array_api_compat, "is_writeable_array", lambda x: False)
    h, w = torch.ones(4, 3), torch.ones(5, 3)
    with pytest.raises(TypeError, match="hidden is a Tensor, whose arrays cannot be written"):
        crossent.linear_cross_entropy(h, w, torch.zeros(4, dtype=torch.int64))


def test_read_only_hidden_is_only_read():
    # the check for a library whose arrays take writes had read the caller's array's own flag
    h, w = RNG.normal(size=(6, 4)), RNG.normal(size=(10, 4))
    t = np.array([1, 2, 3, 4, 5, 6])
    expected = lce(h, w, t)
    h.flags.writeable = False
    value, grads = lce(h, w, t)
    np.testing.assert_array_equal(value, expected[0])
    for a, b in zip(grads[:2], expected[1][:2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_uint8_tensor_targets_compare_as_numbers():
    # PyTorch wraps ignore_index=-100 into uint8 as 156: label 156 had been counted as ignored
    # in the mean's normaliser
    h, w = torch.tensor(RNG.normal(size=(8, 4))), torch.tensor(RNG.normal(size=(200, 4)))
    y = torch.tensor([156, 1, 2, 3, 156, 5, 6, 7])
    expected = torch.nn.functional.cross_entropy(h @ w.T, y)
    got = crossent.linear_cross_entropy(h, w, y.to(torch.uint8))
    assert abs(float(got) - float(expected)) < 1e-12


def test_float16_inputs_are_returned_in_float16():
    h = RNG.normal(size=(6, 4)).astype(np.float16)
    w = RNG.normal(size=(10, 4)).astype(np.float16)
    t = np.array([1, 2, 3, 4, 5, 6])
    value, (d_h, d_w, d_b) = lce(h, w, t, bias=np.zeros(10, np.float16))
    assert value.dtype == d_h.dtype == d_w.dtype == d_b.dtype == np.float16
    ref = lce(h.astype(np.float32), w.astype(np.float32), t, bias=np.zeros(10, np.float32))
    np.testing.assert_allclose(d_w, ref[1][1], rtol=1e-3, atol=1e-4)


def test_overflowing_logits_are_named():
    # finite float32 inputs whose product overflows: the error had spoken of a "y_pred"
    h = np.full((4, 8), 1e20, np.float32)
    w = np.full((5, 8), 1e20, np.float32)
    with pytest.raises(ValueError, match=r"logits hidden @ weight.T .* rows 0 to 3 overflow"):
        crossent.linear_cross_entropy(h, w, np.arange(4))


def test_softcap_neither_hides_an_overflow_nor_leaves_the_dtype():
    # float32 products overflowing to -inf had become -softcap (a loss of 30.0 for 9.4e-14),
    # and a softcap of 1e39 (inf in float32) had been blamed on hidden and weight
    import crossent

    hidden = np.array([[2e19, 2e19]], dtype=np.float32)
    weight = np.array([[-1.95e19, 2e19], [0.0, 0.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="overflow to infinity in float32"):
        crossent.linear_cross_entropy(hidden, weight, np.array([0]), softcap=30.0)
    h = np.ones((2, 3), np.float32)
    with warnings.catch_warnings():  # and without NumPy's "overflow encountered in cast"
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="softcap must lie within float32's range"):
            crossent.linear_cross_entropy(h, h, np.array([0, 1]), softcap=1e39)
    value = crossent.linear_cross_entropy(h.astype(np.float64), h.astype(np.float64),
                                          np.array([0, 1]), softcap=1e39)  # fmt: skip
    assert np.isclose(value, np.log(2))
