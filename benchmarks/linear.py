"""Large-vocabulary cross-entropy of a linear layer: time and peak extra memory.

PyTorch materialised (``cross_entropy(h @ W.T)`` with autograd), PyTorch 2.13's chunked
``linear_cross_entropy`` (1024-row chunks), and :func:`crossent.linear_cross_entropy` given
NumPy arrays, given the same data as PyTorch CPU tensors (its products then through
PyTorch's BLAS, as PyTorch's own providers) and called on tensors that autograd tracks, with
``backward`` (its ``torch.autograd.Function``); all forward + gradients for hidden and weight.
The step is GEMM-bound, so the bound column is the measured time of the three matrix
products alone (``h W^T``, ``G W``, ``G^T h``), through the same BLAS calls as
:func:`crossent.linear_cross_entropy` on NumPy arrays (SciPy's OpenBLAS). Beside them, the
same three products through PyTorch's BLAS (MKL in its x86 wheels), which PyTorch's own
providers and crossent given tensors use: the difference between the two BLAS libraries is
part of every comparison between a NumPy and a PyTorch provider.
"""

from __future__ import annotations

import numpy as np

import crossent
from crossent.losses.linear import _default_rows, _matmul_into

from .harness import Recorder

SHAPE = (4096, 1024, 32768)  # tokens, hidden size, vocabulary


def torch_linear(h, w, t, options=None) -> tuple:
    """PyTorch's loss and gradients for tensors ``h``, ``w``, ``t``: the materialised
    ``cross_entropy(h @ w.T)`` (``options=None``), crossent's ``linear_cross_entropy``
    (``options="crossent"``), else PyTorch's chunked ``linear_cross_entropy``."""
    import torch

    hh, ww = h.detach().requires_grad_(), w.detach().requires_grad_()
    if options == "crossent":
        loss = crossent.linear_cross_entropy(hh, ww, t)
    elif options is None:
        loss = torch.nn.functional.cross_entropy(hh @ ww.T, t)
    else:
        loss = torch.nn.functional.linear_cross_entropy(hh, ww, t, options=options)
    loss.backward()
    return loss, hh.grad, ww.grad


def products(matmul_into, h, w, z, d_h, d_w) -> None:
    """The three matrix products of the step in blocks of ``z``'s rows, each written by
    ``matmul_into(out, a, b, beta=0.0)`` (``out = a @ b + beta * out``) into ``z``, ``d_h``
    and ``d_w`` (the weight gradient: set by the first block, accumulated by the others)."""
    rows = z.shape[0]
    for s in range(0, h.shape[0], rows):
        block = z[: min(rows, h.shape[0] - s)]
        matmul_into(block, h[s : s + rows], w.T)
        matmul_into(d_h[s : s + rows], block, w)
        matmul_into(d_w, block.T, h[s : s + rows], beta=1.0 if s else 0.0)


def run(rec: Recorder, shape=SHAPE, dtype=np.float32) -> None:
    n, d, v = shape
    rng = np.random.default_rng(2)
    h = (rng.normal(size=(n, d)) / np.sqrt(d)).astype(dtype)
    w = rng.normal(size=(v, d)).astype(dtype)
    t = rng.integers(0, v, n)
    rows = _default_rows(n, v)  # the blocks linear_cross_entropy takes
    buffers = (np.empty((rows, v), dtype=dtype), np.empty_like(h), np.zeros_like(w))

    vg = crossent.value_and_grad(crossent.linear_cross_entropy)
    providers = {"crossent linear_cross_entropy": lambda: vg(h, w, t)}
    try:
        import torch
        from torch.nn.modules.linear_cross_entropy_options import LinearCrossEntropyOptions

        th, tw, tt = torch.from_numpy(h), torch.from_numpy(w), torch.from_numpy(t)
        providers["crossent (torch tensors)"] = lambda: vg(th, tw, tt)
        providers["crossent (torch autograd)"] = lambda: torch_linear(th, tw, tt, "crossent")
        providers["pytorch materialised"] = lambda: torch_linear(th, tw, tt)
        providers["pytorch chunked (1024)"] = lambda: torch_linear(
            th, tw, tt, LinearCrossEntropyOptions(batch_chunk_size=1024)
        )
        tz, td_h, td_w = (torch.from_numpy(np.zeros_like(b)) for b in buffers)
        providers["pytorch products alone"] = lambda: products(
            lambda out, a, b, beta=0.0: out.addmm_(a, b, beta=beta), th, tw, tz, td_h, td_w
        )
    except ImportError:
        pass
    rec.measure("linear", shape, dtype, "fwd+grad", providers,
                lambda: products(_matmul_into, h, w, *buffers))  # fmt: skip
