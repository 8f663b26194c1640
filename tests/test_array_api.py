"""Array API inputs are computed with their own library and returned as its arrays."""

from __future__ import annotations

import numpy as np
import pytest
from _registry import CASES, Case

import crossent as ce
from crossent.testing import assert_allclose

torch = pytest.importorskip("torch")
xps = pytest.importorskip("array_api_strict")


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch sees no CUDA device")


def _convert(a, lib):
    if lib.startswith("torch"):
        return torch.asarray(a, device="cuda" if lib == "torch-cuda" else "cpu")
    return xps.asarray(a)


def _to_numpy(a):
    return a.cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


@pytest.mark.parametrize(
    "lib", ["torch", pytest.param("torch-cuda", marks=CUDA), "array_api_strict"]
)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_same_values_and_derivatives_as_numpy(case: Case, lib):
    """Values and gradients, and hessians where they exist (logits)."""
    args = case.args()
    kwargs = {
        k: (_convert(v, lib) if isinstance(v, np.ndarray) else v) for k, v in case.kwargs.items()
    }
    derivatives = ce.value_grad_hess if case.logits else ce.value_and_grad
    ours = derivatives(case.fn)(*(_convert(a, lib) for a in args), **kwargs)
    ref = derivatives(case.fn)(*args, **case.kwargs)
    for got, want in zip(ours, ref, strict=True):
        assert type(got).__module__.split(".")[0] == lib.split("-")[0]
        if lib == "torch-cuda":
            assert got.device.type == "cuda"
        assert_allclose(_to_numpy(got), want, rtol=1e-12, atol=1e-15)


def test_torch_autograd_flows_through_the_loss():
    rng = np.random.default_rng(0)
    z = torch.tensor(rng.normal(size=(5, 4)), requires_grad=True)
    y = torch.tensor(rng.integers(0, 4, size=5))
    loss = ce.categorical_focal_loss(y, z, from_logits=True, gamma=2.0, label_smoothing=0.1)
    loss.backward()
    _, analytic = ce.value_and_grad(ce.categorical_focal_loss)(
        y.numpy(), z.detach().numpy(), from_logits=True, gamma=2.0, label_smoothing=0.1
    )
    assert_allclose(z.grad.numpy(), analytic, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("first_row", [None, 0.0, 800.0], ids=["random", "zero", "large"])
@pytest.mark.parametrize("case", [c for c in CASES if c.logits], ids=lambda c: c.id)
def test_torch_second_derivatives_through_the_loss_equal_the_analytic_hessian(case, first_row):
    # Autograd through the portable path on tensors that require grad (double backward, as
    # in Hessian-vector products): every formulation must keep its unused branches finite.
    # A first row of logits of exactly 0 (a zero-initialised model) had met abs() and
    # minimum() in the sigmoid, whose derivatives there are 0: sigmoid'(0) = 0 for autograd;
    # logits of +-800 had made PyTorch's logaddexp's second derivatives NaN (binary focal,
    # JSD distillation).
    numpy_args = list(case.args())
    if first_row is not None:  # -800, 800, -800, ... (or 0) in the first row of logits
        z = numpy_args[1].copy()
        z[0] = first_row * np.where(np.arange(z[0].size) % 2, 1.0, -1.0).reshape(np.shape(z[0]))
        numpy_args[1] = z
    args = [torch.asarray(a) if isinstance(a, np.ndarray) else a for a in numpy_args]
    kwargs = {k: (torch.asarray(v) if isinstance(v, np.ndarray) else v)
              for k, v in case.kwargs.items()}  # fmt: skip
    z = args[1].clone().requires_grad_(True)
    value = case.fn(args[0], z, *args[2:], **kwargs, reduction="sum")
    (grad,) = torch.autograd.grad(value, z, create_graph=True)
    flat = grad.reshape(-1)
    diag = torch.stack([
        torch.autograd.grad(flat[i], z, retain_graph=True)[0].reshape(-1)[i]
        for i in range(flat.numel())
    ]).reshape(z.shape)  # fmt: skip
    _, want_grad, want_hess = ce.value_grad_hess(case.fn)(*numpy_args, **case.kwargs,
                                                          reduction="sum")  # fmt: skip
    assert_allclose(grad.detach().numpy(), want_grad, rtol=1e-10, atol=1e-14, name="grad")
    assert_allclose(diag.numpy(), want_hess, rtol=1e-10, atol=1e-14, name="hessian")


@pytest.mark.parametrize("lib", ["torch", "array_api_strict"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32"])
def test_small_integer_labels_are_compared_as_numbers(lib, dtype):
    # PyTorch compares a uint8 tensor with -100 as 156 and an int8 one with 200 as -56: label
    # 156 had been ignored, label 3 of 200 classes refused; class weights had crashed (int16)
    # and array_api_strict had raised OverflowError on uint8
    n_classes = 200 if dtype != "int8" else 120
    z = np.random.default_rng(0).normal(size=(3, n_classes))
    y = np.array([n_classes - 44, 3, 0]).astype(dtype)
    w = np.linspace(0.5, 2.0, n_classes)
    for fn, kw in (
        (ce.categorical_cross_entropy, {"class_weight": w}),
        (ce.categorical_focal_loss, {"reduction": "none"}),
        (ce.distillation_loss, {"teacher_logits": z[::-1].copy(), "reduction": "none"}),
    ):
        ref = fn(
            y.astype(np.int64),
            z,
            **({"from_logits": True} if fn is not ce.distillation_loss else {}),
            **kw,
        )
        for tracked in (False, True) if lib == "torch" else (False,):
            zl = _convert(z, lib)
            if tracked:
                zl.requires_grad_(True)
            kwl = {k: _convert(v, lib) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
            extra = {} if fn is ce.distillation_loss else {"from_logits": True}
            got = fn(_convert(y, lib), zl, **extra, **kwl)
            assert_allclose(_to_numpy(got.detach() if tracked else got), ref, rtol=1e-12)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_torch_autograd_of_focal_loss_at_saturated_classes(gamma):
    # (1 - p) ** gamma at p = 1 has an infinite derivative for gamma < 1: times the zero it
    # multiplies, autograd had given NaN for the docstring's own logits and for float32 gaps
    # of 110 (p rounds to 1)
    for logits, dtype in (([[1e4, 0.0, -1e4]], torch.float64), ([[110.0, 0.0]], torch.float32)):
        for label in range(len(logits[0])):
            z = torch.tensor(logits, dtype=dtype, requires_grad=True)
            y = torch.tensor([label])
            ce.categorical_focal_loss(y, z, gamma=gamma, from_logits=True).backward()
            _, want = ce.value_and_grad(ce.categorical_focal_loss)(
                y.numpy(), z.detach().numpy(), gamma=gamma, from_logits=True
            )
            assert_allclose(z.grad.numpy(), want, rtol=1e-6, atol=1e-6)


def test_numpy_side_arrays_join_the_predictions_library():
    # NumPy labels, targets or teacher beside torch predictions had raised array_api_compat's
    # "Multiple namespaces"; lists were accepted already
    rng = np.random.default_rng(7)
    z, y = rng.normal(size=(4, 3)), rng.integers(0, 3, 4)
    p = np.full((4, 3), 1 / 3)
    for fn, args in (
        (ce.categorical_cross_entropy, (y, z)),
        (ce.binary_cross_entropy, ((z > 0).astype(float), z)),
        (ce.kl_divergence, (p, z)),
        (ce.distillation_loss, (y, z, z[::-1].copy())),
    ):
        ref = fn(*args, **({} if fn is ce.distillation_loss else {"from_logits": True}))
        mixed = (args[0], torch.asarray(args[1]), *args[2:])
        got = fn(*mixed, **({} if fn is ce.distillation_loss else {"from_logits": True}))
        assert isinstance(got, torch.Tensor)
        assert_allclose(got.numpy(), ref, rtol=1e-12)
    with pytest.raises(TypeError, match="several libraries"):
        ce.categorical_cross_entropy(xps.asarray(y), torch.asarray(z), from_logits=True)


def test_torch_float32_tensor_stays_float32():
    z = torch.randn(3, 5, dtype=torch.float32)
    value = ce.categorical_cross_entropy(torch.tensor([0, 1, 4]), z, from_logits=True)
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float32


def test_special_functions_on_torch():
    x = torch.tensor([1000.0, 1.0], dtype=torch.float64)
    assert_allclose(ce.log_softmax(x).numpy(), [0.0, -999.0], rtol=1e-15)
    assert_allclose(ce.log_sigmoid(torch.tensor([-1e4])).numpy(), [-1e4], rtol=1e-15)


def _block_cases(rng):
    """(loss, module, per-block function, y, z, options): 50 rows of 7 columns, each family."""
    from crossent.losses import binary, categorical

    y = rng.integers(0, 7, 50)
    y[::6] = -100
    soft = (rng.random((50, 7)) > 0.5).astype(float)
    return [
        (ce.categorical_cross_entropy, categorical, "_rows", y, rng.normal(scale=3.0, size=(50, 7)),
         {"class_weight": rng.random(7) + 0.1, "z_loss": 0.01, "label_smoothing": 0.1,
          "sample_weight": rng.random(50)}),
        (ce.binary_cross_entropy, binary, "_term", soft, rng.normal(scale=3.0, size=(50, 7)),
         {"pos_weight": rng.random(7) + 0.5, "label_smoothing": 0.1,
          "sample_weight": rng.random(50)}),
        (ce.binary_focal_loss, binary, "_term", soft, rng.normal(scale=3.0, size=(50, 7)),
         {"gamma": 1.5, "alpha": 0.25, "mask": rng.random(50) > 0.2}),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(3), ids=["categorical", "binary", "binary-focal"])
@pytest.mark.parametrize("lib", ["numpy", "torch", "array_api_strict"])
def test_large_inputs_run_in_blocks_of_rows_with_the_same_results(monkeypatch, lib, case):
    from crossent.losses import _blocks

    loss, module, per_block, y, z, kwargs = _block_cases(np.random.default_rng(3))[case]
    convert = np.asarray if lib == "numpy" else lambda a: _convert(a, lib)
    args = (convert(y), convert(z))
    kwargs = {k: convert(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}

    def results():
        for reduction in ("mean", "none"):
            yield from ce.value_grad_hess(loss)(
                *args, from_logits=True, backend="portable", reduction=reduction, **kwargs
            )

    whole = list(results())
    blocks = []
    compute = getattr(module, per_block)
    monkeypatch.setattr(module, per_block, lambda *a: blocks.append(a) or compute(*a))
    for name in ("NUMPY_ELEMENTS", "ARRAY_API_ELEMENTS"):
        monkeypatch.setattr(_blocks, name, 7 * 8)  # 8 rows per block
    for got, want in zip(results(), whole, strict=True):
        assert_allclose(_to_numpy(got), _to_numpy(want), rtol=1e-13, atol=1e-16)
    assert len(blocks) == 2 * 7  # two reductions, 7 blocks each
    if lib == "torch":  # autograd flows through the blocks
        leaf = args[1].clone().requires_grad_()
        loss(args[0], leaf, from_logits=True, **kwargs).backward()
        assert_allclose(leaf.grad.numpy(), _to_numpy(whole[1]), rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize(
    ("loss", "y", "p", "kwargs"),
    [
        (ce.binary_cross_entropy, [1.0, 0.0, 1.0], [0.0, 1.0, 0.5], {}),
        (ce.categorical_cross_entropy, [0, 1], [[0.0, 1.0], [0.5, 0.5]], {}),
        (ce.categorical_focal_loss, [0, 1], [[0.0, 1.0], [0.5, 0.5]], {"gamma": 2.0}),
        (ce.kl_divergence, [[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]], {}),
    ],
)
def test_torch_autograd_at_clipped_probabilities_is_the_analytic_gradient(loss, y, p, kwargs):
    # Autograd went through a plain clip, which passes no gradient outside its range: the
    # worst predictions (probability 0 of the true class) got a gradient of 0.
    torch = pytest.importorskip("torch")
    y, p = np.array(y), np.array(p)
    leaf = torch.tensor(p, requires_grad=True)
    loss(torch.tensor(y), leaf, reduction="sum", **kwargs).backward()
    _, expected = ce.value_and_grad(loss)(y, p, reduction="sum", **kwargs)
    np.testing.assert_allclose(leaf.grad.numpy(), expected, rtol=1e-12)
    assert leaf.grad.numpy().min() < -1e15  # -1 / eps at the probability of 0
