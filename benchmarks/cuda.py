"""The portable path on PyTorch CUDA tensors beside PyTorch's own CUDA losses.

Softmax cross-entropy (integer labels) and binary cross-entropy from logits, float32, mean
reduction, forward and forward + gradient; and the linear cross-entropy (forward + gradients)
against PyTorch's materialised logits. Providers: PyTorch (``cross_entropy`` /
``binary_cross_entropy_with_logits`` and ``backward``) and crossent's portable path
(``value_and_grad`` on the same tensors; it validates its input on the device, and each check
that decides whether to raise waits for the device, which the timings include). Every timed
call ends with ``torch.cuda.synchronize()``. The bound is a device-to-device copy of the
logits (forward + gradient) or their sum (forward); peak memory is
``torch.cuda.max_memory_allocated`` during one call above what was allocated before it.
Skipped when PyTorch sees no CUDA device; nothing else depends on this family.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import crossent

from .harness import GPU, Recorder, torch_provider
from .linear import torch_linear

SHAPES = [(65536, 10), (8192, 1000), (4096, 32000), (8192, 128256)]
BINARY_SHAPE = (10_000_000,)
LINEAR_SHAPES = [(4096, 1024, 32768), (8192, 4096, 128256)]  # tokens, hidden size, vocabulary


def run(
    rec: Recorder, shapes=SHAPES, binary_shape=BINARY_SHAPE, linear_shapes=LINEAR_SHAPES,
    dtype=np.float32,
) -> None:  # fmt: skip
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None or not torch.cuda.is_available():
        print("# cuda: PyTorch sees no CUDA device; skipped")
        return
    F = torch.nn.functional
    tdtype = getattr(torch, np.dtype(dtype).name)
    gen = torch.Generator(device="cuda").manual_seed(0)
    cases = [
        ("categorical", shape, crossent.categorical_cross_entropy, F.cross_entropy,
         lambda s: torch.randint(0, s[1], s[:1], generator=gen, device="cuda"))
        for shape in shapes
    ] + [
        ("binary", binary_shape, crossent.binary_cross_entropy,
         F.binary_cross_entropy_with_logits,
         lambda s: (torch.rand(s, generator=gen, device="cuda") > 0.5).to(tdtype)),
    ]  # fmt: skip
    for family, shape, ours, theirs, targets in cases:
        try:
            z = torch.randn(shape, generator=gen, device="cuda", dtype=tdtype) * 3
            _measure(rec, family + GPU, shape, dtype, ours, theirs, targets(shape), z)
        except torch.cuda.OutOfMemoryError:
            print(f"# cuda: {family} {shape} ran out of device memory; skipped")
        finally:
            z = None
            torch.cuda.empty_cache()
    for shape in linear_shapes:
        _linear(rec, shape, tdtype, dtype, gen)
        torch.cuda.empty_cache()


def _linear(rec: Recorder, shape: tuple, tdtype, dtype, gen) -> None:
    """linear_cross_entropy against PyTorch's materialised ``cross_entropy(h @ W.T)`` with
    autograd; the bound is the three matrix products alone."""
    import torch

    n, d, v = shape
    h = torch.randn(n, d, generator=gen, device="cuda", dtype=tdtype) / d**0.5
    w = torch.randn(v, d, generator=gen, device="cuda", dtype=tdtype)
    t = torch.randint(0, v, (n,), generator=gen, device="cuda")
    vg = crossent.value_and_grad(crossent.linear_cross_entropy)

    def products() -> object:
        z = h @ w.T
        return z @ w, z.T @ h

    providers = {"pytorch materialised": _synced(lambda: torch_linear(h, w, t)),
                 "crossent linear_cross_entropy": _synced(lambda: vg(h, w, t))}  # fmt: skip
    rec.measure("linear" + GPU, shape, dtype, "fwd+grad", providers, _synced(products),
                memory=_device_peak_mib)  # fmt: skip


def _measure(rec: Recorder, name: str, shape: tuple, dtype, ours, theirs, y, z) -> None:
    import torch

    vg = crossent.value_and_grad(ours)
    table = {
        "pytorch": torch_provider(theirs, y, z),
        "crossent portable": lambda g: (
            vg(y, z, from_logits=True, backend="portable") if g
            else ours(y, z, from_logits=True, backend="portable")
        ),
    }  # fmt: skip
    dst = torch.empty_like(z)
    for mode, grad in (("forward", False), ("fwd+grad", True)):
        bound = (lambda: dst.copy_(z)) if grad else (lambda: z.sum())
        providers = {p: _synced(lambda f=fn, g=grad: f(g)) for p, fn in table.items()}
        rec.measure(name, shape, dtype, mode, providers, _synced(bound), memory=_device_peak_mib)


def _synced(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` followed by waiting for the device, so that host timers see its work."""
    import torch

    def run() -> object:
        result = fn()
        torch.cuda.synchronize()
        return result

    return run


def _device_peak_mib(fn: Callable[[], object]) -> float:
    """Peak device memory of one call above what was allocated before it, in MiB."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    result = fn()
    peak = torch.cuda.max_memory_allocated() - before
    del result
    return peak / 2**20
