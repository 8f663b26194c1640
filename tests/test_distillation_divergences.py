"""distillation_loss with forward KL, reverse KL and generalised JSD: values, gradients and
hessian diagonals against torch autograd of the textbook formulas, and finite differences."""

import numpy as np
import pytest

import crossent
from crossent.testing import finite_difference_gradient

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch_loss(y, s, t, *, temperature, alpha, divergence, beta, scale_by_t2, ignore_index):
    """Mean over kept positions of (1 - alpha) CE + alpha c D(teacher, student), in torch."""
    log_q = F.log_softmax(s / temperature, dim=-1)
    log_p = F.log_softmax(t / temperature, dim=-1)
    q, p = log_q.exp(), log_p.exp()
    if divergence == "forward_kl":
        d = (p * (log_p - log_q)).sum(-1)
    elif divergence == "reverse_kl":
        d = (q * (log_q - log_p)).sum(-1)
    else:
        log_m = torch.log((1 - beta) * q + beta * p)
        d = beta * (p * (log_p - log_m)).sum(-1) + (1 - beta) * (q * (log_q - log_m)).sum(-1)
    c = temperature**2 if scale_by_t2 else 1.0
    n_classes = s.shape[-1]
    hard = F.cross_entropy(
        s.reshape(-1, n_classes), y.reshape(-1), reduction="none", ignore_index=ignore_index
    ).reshape(y.shape)
    keep = (y != ignore_index).to(s.dtype)
    per = ((1 - alpha) * hard + alpha * c * d) * keep
    return per.sum() / keep.sum()


CASES = [
    ("forward_kl", 0.5, True),
    ("reverse_kl", 0.5, True),
    ("jsd", 0.5, True),
    ("jsd", 0.1, False),
    ("jsd", 0.9, True),
]


def _tokens(seed=0, shape=(3, 4, 6)):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=shape) * 2
    t = rng.normal(size=shape) * 3
    y = rng.integers(0, shape[-1], size=shape[:-1])
    if y.ndim == 2:
        y[0, 1] = y[2, 3] = -100
    return y, s, t


@pytest.mark.parametrize(("divergence", "beta", "scale_by_t2"), CASES)
def test_value_gradient_and_hessian_match_torch(divergence, beta, scale_by_t2):
    y, s, t = _tokens()
    kw = {
        "temperature": 1.7,
        "alpha": 0.6,
        "divergence": divergence,
        "beta": beta,
        "scale_by_t2": scale_by_t2,
        "ignore_index": -100,
    }
    value, grad, hess = crossent.value_grad_hess(crossent.distillation_loss)(y, s, t, **kw)
    st = torch.tensor(s, requires_grad=True)
    args = (torch.tensor(y), st, torch.tensor(t))
    ref = _torch_loss(*args, **kw)
    (ref_grad,) = torch.autograd.grad(ref, st)
    full = torch.autograd.functional.hessian(
        lambda x: _torch_loss(args[0], x, args[2], **kw), torch.tensor(s)
    )
    ref_hess = torch.diagonal(full.reshape(s.size, s.size)).reshape(s.shape)
    assert float(value) == pytest.approx(ref.item(), abs=1e-12)
    np.testing.assert_allclose(grad, ref_grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(hess, ref_hess.numpy(), atol=1e-11)
    assert np.all(grad[0, 1] == 0) and np.all(hess[2, 3] == 0)  # ignored positions


@pytest.mark.parametrize(("divergence", "beta", "scale_by_t2"), CASES)
def test_gradient_matches_finite_differences(divergence, beta, scale_by_t2):
    y, s, t = _tokens(seed=1, shape=(4, 5))
    y[1] = -100
    kw = {"temperature": 2.5, "alpha": 0.7, "divergence": divergence, "beta": beta}
    kw["scale_by_t2"] = scale_by_t2
    _, grad = crossent.value_and_grad(crossent.distillation_loss)(y, s, t, **kw)
    fd = finite_difference_gradient(lambda x: crossent.distillation_loss(y, x, t, **kw), s)
    np.testing.assert_allclose(grad, fd, atol=1e-8)


def test_beta_ends_are_forward_and_reverse_kl_as_in_trl():
    y, s, t = _tokens(seed=2)
    for beta, name in ((0.0, "forward_kl"), (1.0, "reverse_kl")):
        a = crossent.distillation_loss(y, s, t, divergence="jsd", beta=beta)
        b = crossent.distillation_loss(y, s, t, divergence=name)
        assert float(a) == float(b)
    # the symmetric JSD is bounded by log 2 (alpha=1, T=1, no T^2 factor)
    jsd = crossent.distillation_loss(
        None, s * 50, -t * 50, alpha=1.0, temperature=1.0, divergence="jsd", reduction="none"
    )
    assert np.all(jsd <= np.log(2) + 1e-12) and np.all(jsd >= -1e-15)  # 0 up to rounding


def test_ignore_index_equals_dropping_positions_and_default_unchanged():
    y, s, t = _tokens(seed=3)
    keep = y != -100
    for divergence in ("forward_kl", "reverse_kl", "jsd"):
        full = crossent.distillation_loss(y, s, t, divergence=divergence)
        kept = crossent.distillation_loss(y[keep], s[keep], t[keep], divergence=divergence)
        assert float(full) == pytest.approx(float(kept), abs=1e-13)
    # the classic Hinton loss, written out with crossent's own KL and CE
    y2, s2, t2 = y[keep], s[keep], t[keep]
    hinton = 0.5 * crossent.categorical_cross_entropy(y2, s2, from_logits=True) + 0.5 * 4 * (
        crossent.kl_divergence(crossent.softmax(t2 / 2), s2 / 2, from_logits=True)
    )
    assert float(crossent.distillation_loss(y2, s2, t2)) == pytest.approx(float(hinton), 1e-13)


def test_jsd_second_derivatives_through_torch_autograd_at_extreme_logits():
    # PyTorch's logaddexp had made them NaN (the mixture's log with a term of exp(-2e4))
    s = torch.tensor([[1e4, 0.0, -1e4]], dtype=torch.float64, requires_grad=True)
    t = torch.zeros(1, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad(
        crossent.distillation_loss(None, s, t, alpha=1.0, divergence="jsd"), s, create_graph=True
    )
    diag = torch.stack(
        [torch.autograd.grad(grad[0, j], s, retain_graph=True)[0][0, j] for j in range(3)]
    )
    want = crossent.value_grad_hess(crossent.distillation_loss)(
        None, s.detach().numpy(), t.numpy(), alpha=1.0, divergence="jsd"
    )[2]
    np.testing.assert_allclose(diag.numpy(), want[0], atol=1e-12)


def test_pure_distillation_without_labels_and_float32_extremes():
    rng = np.random.default_rng(4)
    s = (rng.normal(size=(5, 7)) * 1e4).astype(np.float32)
    t = (rng.normal(size=(5, 7)) * 1e4).astype(np.float32)
    for divergence in ("forward_kl", "reverse_kl", "jsd"):
        value, grad = crossent.value_and_grad(crossent.distillation_loss)(
            None, s, t, alpha=1.0, divergence=divergence
        )
        assert value.dtype == np.float32 and grad.dtype == np.float32
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        ref = _torch_loss(
            torch.full((5,), 0),
            torch.tensor(s, dtype=torch.float64),
            torch.tensor(t, dtype=torch.float64),
            temperature=2.0,
            alpha=1.0,
            divergence=divergence,
            beta=0.5,
            scale_by_t2=True,
            ignore_index=-100,
        )
        if np.isfinite(ref.item()):
            assert float(value) == pytest.approx(ref.item(), rel=1e-4)


@pytest.mark.parametrize(("divergence", "beta"), [("reverse_kl", 0.5), ("jsd", 0.9)])
def test_float32_gradient_of_confident_students_matches_float64(divergence, beta):
    # The most probable class's gradient q_m (d_m - sum_c q_c d_c) is a small difference of
    # large terms when the logits are large; float32 had lost it (up to 200% of that
    # gradient at logits of a hundred).
    rng = np.random.default_rng(5)
    s = (rng.normal(size=(64, 10)) * 100).astype(np.float32)  # float64 mixtures stay > 0
    t = (rng.normal(size=(64, 10)) * 100).astype(np.float32)
    kw = {"temperature": 1.0, "alpha": 1.0, "divergence": divergence, "beta": beta}
    grad = crossent.value_and_grad(crossent.distillation_loss)(None, s, t, **kw)[1]
    st = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    ref = _torch_loss(
        torch.zeros(64, dtype=torch.int64), st, torch.tensor(t, dtype=torch.float64),
        scale_by_t2=True, ignore_index=-100, **kw,
    )  # fmt: skip
    (ref_grad,) = torch.autograd.grad(ref, st)
    ref_grad = ref_grad.numpy()
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-3, atol=1e-9 * np.abs(ref_grad).max())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"divergence": "kl"}, "divergence must be one of"),
        ({"beta": 1.5}, r"beta must lie in \[0, 1\]"),
        ({"temperature": 0.0}, "temperature must lie in"),
        ({"y_true": None}, "only with alpha=1"),
        ({"teacher_logits": np.ones((2, 4))}, "must match"),
        ({"student_logits": np.array([[np.nan, 0, 0], [0, 0, 0]])}, "NaN"),
        ({"y_true": np.array([0, 3])}, r"class index 3, outside \[0, 3\)"),
    ],
)
def test_bad_input(kwargs, match):
    args = {
        "y_true": np.array([0, 1]),
        "student_logits": np.zeros((2, 3)),
        "teacher_logits": np.ones((2, 3)),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        crossent.distillation_loss(
            args.pop("y_true"), args.pop("student_logits"), args.pop("teacher_logits"), **args
        )


@pytest.mark.parametrize("divergence", ["forward_kl", "reverse_kl"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [0.01, 1.0, 20.0, 1e3, 1e8, 1e15])
def test_kl_distillation_keeps_full_precision_at_any_temperature(divergence, dtype, temperature):
    # The value had been a difference of two terms of size log C times T^2: 11.9 instead of
    # 3.02 (float32, T = 1e4), -4.4e14 (float64, T = 1e15). Reference: mpmath, 60 digits.
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    rng = np.random.default_rng(0)
    s, t = (rng.normal(size=(1, 5)) * 3).astype(dtype), (rng.normal(size=(1, 5)) * 3).astype(dtype)

    def probs(z):
        z = [mp.mpf(float(v)) / temperature for v in z[0]]
        lse = mp.log(mp.fsum(mp.exp(v) for v in z))
        return [mp.exp(v - lse) for v in z]

    p, q = probs(t), probs(s)
    if divergence == "reverse_kl":
        p, q = q, p
    expected = float(temperature**2 * mp.fsum(a * mp.log(a / b) for a, b in zip(p, q, strict=True)))
    got = crossent.distillation_loss(
        None, s, t, temperature=temperature, alpha=1.0, divergence=divergence
    )
    assert got.dtype == dtype
    np.testing.assert_allclose(float(got), expected, rtol=5 * np.finfo(dtype).eps)
