"""The portable path on PyTorch CUDA tensors, against PyTorch's own CUDA functions.

Skipped where PyTorch sees no CUDA device (CI has none); run on a GPU machine with
``python -m pytest tests/test_cuda.py tests/test_array_api.py``. The small registry cases on
CUDA are in ``test_array_api.py``; here: float32 at sizes where reductions span many blocks,
against float64 references computed by PyTorch on the same device, extreme logits, bfloat16,
and bad input raising the same errors as on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import crossent as ce

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("PyTorch sees no CUDA device", allow_module_level=True)

F = torch.nn.functional
DEVICE = "cuda"


def _generator(seed: int) -> torch.Generator:
    return torch.Generator(device=DEVICE).manual_seed(seed)


def _reference(fn, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Value and gradient of ``fn`` by PyTorch's autograd, in float64 on the device."""
    leaf = z.detach().double().requires_grad_()
    value = fn(leaf)
    value.backward()
    return value.detach(), leaf.grad


def _assert_close(got: torch.Tensor, want: torch.Tensor, rtol: float, name: str) -> None:
    """``|got - want| <= rtol * max|want|`` elementwise (gradients have tiny entries)."""
    assert got.device.type == DEVICE, f"{name} left the device: {got.device}"
    scale = want.abs().max().item()
    err = (got.double() - want).abs().max().item()
    assert err <= rtol * scale, f"{name}: max error {err:.3g} > {rtol} x {scale:.3g}"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"label_smoothing": 0.1},
        {"weight": True, "ignore_index": True},
        {"soft": True},
        {"soft": True, "weight": True, "label_smoothing": 0.2},
    ],
    ids=lambda o: "-".join(o) or "plain",
)
def test_categorical_float32_matches_torch_float64(options):
    n, c = 4096, 5000
    g = _generator(0)
    z = torch.randn(n, c, generator=g, device=DEVICE) * 4
    if options.get("soft"):
        y = torch.softmax(torch.randn(n, c, generator=g, device=DEVICE), dim=1)
    else:
        y = torch.randint(0, c, (n,), generator=g, device=DEVICE)
        if options.get("ignore_index"):
            y[::7] = -100
    w = torch.rand(c, generator=g, device=DEVICE) + 0.5 if options.get("weight") else None
    smoothing = options.get("label_smoothing", 0.0)

    value, grad = ce.value_and_grad(ce.categorical_cross_entropy)(
        y, z, from_logits=True, class_weight=w, label_smoothing=smoothing
    )
    ref = _reference(
        lambda t: F.cross_entropy(
            t,
            y.double() if y.is_floating_point() else y,
            weight=None if w is None else w.double(),
            label_smoothing=smoothing,
        ),
        z,
    )
    assert value.dtype == grad.dtype == torch.float32
    _assert_close(value, ref[0], 1e-5, "value")
    _assert_close(grad, ref[1], 1e-5, "gradient")


def test_binary_float32_matches_torch_float64():
    g = _generator(1)
    z = torch.randn(2_000_000, generator=g, device=DEVICE) * 5
    y = (torch.rand(2_000_000, generator=g, device=DEVICE) > 0.3).float()
    pos_weight = torch.tensor(2.5, device=DEVICE)
    value, grad = ce.value_and_grad(ce.binary_cross_entropy)(
        y, z, from_logits=True, pos_weight=pos_weight
    )
    ref = _reference(
        lambda t: F.binary_cross_entropy_with_logits(t, y.double(), pos_weight=pos_weight.double()),
        z,
    )
    _assert_close(value, ref[0], 1e-5, "value")
    _assert_close(grad, ref[1], 1e-5, "gradient")


def test_binary_focal_matches_torchvision():
    ops = pytest.importorskip("torchvision.ops")
    g = _generator(2)
    z = torch.randn(100_000, generator=g, device=DEVICE) * 3
    y = (torch.rand(100_000, generator=g, device=DEVICE) > 0.5).float()
    value, grad = ce.value_and_grad(ce.binary_focal_loss)(
        y, z, from_logits=True, alpha=0.25, gamma=2.0
    )
    ref = _reference(
        lambda t: ops.sigmoid_focal_loss(t, y.double(), alpha=0.25, gamma=2.0, reduction="mean"),
        z,
    )
    _assert_close(value, ref[0], 1e-5, "value")
    _assert_close(grad, ref[1], 1e-5, "gradient")


def test_extreme_float32_logits_stay_finite_and_exact():
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], device=DEVICE)
    y = torch.tensor([1, 0], device=DEVICE)
    per_row = ce.categorical_cross_entropy(y, z, from_logits=True, reduction="none")
    _, grad = ce.value_and_grad(ce.categorical_cross_entropy)(
        y, z, from_logits=True, reduction="sum"
    )
    ref = _reference(lambda t: F.cross_entropy(t, y, reduction="sum"), z)
    assert torch.isfinite(per_row).all() and torch.isfinite(grad).all()
    _assert_close(per_row, F.cross_entropy(z.double(), y, reduction="none"), 1e-7, "value")
    _assert_close(grad, ref[1], 1e-7, "gradient")


def test_bfloat16_is_computed_in_float32_and_returned_in_bfloat16():
    g = _generator(3)
    z = (torch.randn(512, 100, generator=g, device=DEVICE) * 3).bfloat16()
    y = torch.randint(0, 100, (512,), generator=g, device=DEVICE)
    value, grad = ce.value_and_grad(ce.categorical_cross_entropy)(y, z, from_logits=True)
    ref = _reference(lambda t: F.cross_entropy(t, y), z.float())
    assert value.dtype == grad.dtype == torch.bfloat16
    _assert_close(value, ref[0], 2**-8, "value")
    _assert_close(grad, ref[1], 2**-8, "gradient")


def test_bad_input_raises_the_cpu_errors_on_the_device():
    z = torch.randn(4, 3, device=DEVICE)
    with pytest.raises(ValueError, match="y_true holds class index 3"):
        ce.categorical_cross_entropy(torch.tensor([0, 1, 2, 3], device=DEVICE), z, from_logits=True)
    bad = z.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        ce.categorical_cross_entropy(
            torch.tensor([0, 1, 2, 0], device=DEVICE), bad, from_logits=True
        )
    with pytest.raises(ValueError, match="y_true must hold targets in"):
        ce.binary_cross_entropy(torch.full((4,), 2.0, device=DEVICE), z[:, 0], from_logits=True)


def test_autograd_on_the_device_matches_the_analytic_gradient():
    g = _generator(4)
    z = torch.randn(256, 40, generator=g, device=DEVICE, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 40, (256,), generator=g, device=DEVICE)
    ce.categorical_focal_loss(y, z, from_logits=True, gamma=2.0).backward()
    _, analytic = ce.value_and_grad(ce.categorical_focal_loss)(
        y, z.detach(), from_logits=True, gamma=2.0
    )
    _assert_close(z.grad, analytic, 1e-12, "gradient")


def test_calibration_takes_device_tensors_and_gives_the_numpy_answers():
    from crossent import calibration as cal

    g = _generator(5)
    logits = torch.randn(3000, 6, generator=g, device=DEVICE, dtype=torch.float64) * 2
    y = torch.randint(0, 6, (3000,), generator=g, device=DEVICE)
    probs = torch.softmax(logits, dim=1)
    host = {"y": y.cpu().numpy(), "logits": logits.cpu().numpy(), "probs": probs.cpu().numpy()}
    for fn in (cal.expected_calibration_error, cal.brier_score, cal.negative_log_likelihood):
        assert fn(y, probs) == pytest.approx(fn(host["y"], host["probs"]), rel=1e-12)
    fitted = cal.TemperatureScaling().fit(logits, y)
    assert fitted.temperature_ == pytest.approx(
        cal.TemperatureScaling().fit(host["logits"], host["y"]).temperature_, rel=1e-9
    )
    on_device, on_host = (
        cal.LossAccumulator(from_logits=True),
        cal.LossAccumulator(from_logits=True),
    )
    for rows in (slice(0, 1000), slice(1000, 3000)):
        on_device.update(y[rows], logits[rows])
        on_host.update(host["y"][rows], host["logits"][rows])
    assert on_device.nll == pytest.approx(on_host.nll, rel=1e-12)


@pytest.mark.parametrize("blocks", [False, True], ids=["one-block", "blocks"])
def test_hessians_on_the_device_equal_numpy(monkeypatch, blocks):
    from crossent.losses import _blocks

    if blocks:
        monkeypatch.setattr(_blocks, "ARRAY_API_ELEMENTS", 64 * 40)  # 64 rows per block
    g = _generator(6)
    z = torch.randn(1000, 40, generator=g, device=DEVICE, dtype=torch.float64) * 3
    labels = torch.randint(0, 40, (1000,), generator=g, device=DEVICE)
    targets = (torch.rand(1000, 40, generator=g, device=DEVICE) > 0.7).double()
    cases = [
        (ce.categorical_cross_entropy, labels, {"z_loss": 1e-3, "label_smoothing": 0.1}),
        (ce.categorical_focal_loss, labels, {"gamma": 2.0}),
        (ce.binary_focal_loss, targets, {"gamma": 1.5, "alpha": 0.25}),
    ]
    for loss, y, options in cases:
        on_device = ce.value_grad_hess(loss)(y, z, from_logits=True, **options)
        on_host = ce.value_grad_hess(loss)(y.cpu().numpy(), z.cpu().numpy(), from_logits=True,
                                           backend="portable", **options)  # fmt: skip
        for got, want in zip(on_device, on_host, strict=True):
            _assert_close(got, torch.from_numpy(want).to(DEVICE), 1e-12, loss.__name__)


def test_special_functions_and_penalties_stay_on_the_device():
    g = _generator(7)
    x = torch.randn(300, 20, generator=g, device=DEVICE, dtype=torch.float64) * 50
    host = x.cpu().numpy()
    for fn in (ce.logsumexp, ce.log_softmax, ce.softmax, ce.log_sigmoid, ce.sigmoid, ce.softplus):
        _assert_close(fn(x), torch.from_numpy(fn(host)).to(DEVICE), 1e-14, fn.__name__)
    for fn in (ce.l1_penalty, ce.l2_penalty, ce.elastic_net_penalty):
        on_device = ce.value_grad_hess(fn)(x, alpha=0.3)
        for got, want in zip(on_device, ce.value_grad_hess(fn)(host, alpha=0.3), strict=True):
            _assert_close(got, torch.from_numpy(np.asarray(want)).to(DEVICE), 1e-14, fn.__name__)


def test_linear_cross_entropy_on_the_device_matches_the_materialised_logits():
    g = _generator(8)
    h = torch.randn(1024, 256, generator=g, device=DEVICE) / 16
    w = torch.randn(32000, 256, generator=g, device=DEVICE)
    b = torch.randn(32000, generator=g, device=DEVICE)
    t = torch.randint(0, 32000, (1024,), generator=g, device=DEVICE)
    t[::9] = -100
    value, (d_h, d_w, d_b) = ce.value_and_grad(ce.linear_cross_entropy)(
        h, w, t, bias=b, softcap=30.0, chunk_size=300
    )
    hh, ww, bb = (x.detach().double().requires_grad_() for x in (h, w, b))
    ref = F.cross_entropy(30.0 * torch.tanh((hh @ ww.T + bb) / 30.0), t)
    ref.backward()
    assert value.dtype == d_w.dtype == torch.float32
    _assert_close(value, ref.detach(), 1e-5, "value")
    for got, want, name in ((d_h, hh.grad, "d_hidden"), (d_w, ww.grad, "d_weight"),
                            (d_b, bb.grad, "d_bias")):  # fmt: skip
        _assert_close(got, want, 1e-4, name)
