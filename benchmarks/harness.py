"""The shared benchmark harness: timing, memory, the bandwidth bound, the CSV and the plot.

* Timings: ``repeats`` (>= 7) calls of each provider after one warm-up call each, more for
  short calls (rounds continue until they have taken 3 s, up to 101); median, 20th and 80th
  percentile. The providers of a case and its bound are called in turn, one call each per
  round, and round ``r`` starts with the ``r``-th of them: a slow or fast stretch of a shared
  machine then falls on all of them alike, and each follows every other equally often. On
  one 2-core machine the same three block products of the linear benchmark took 4.3 to 7.9 s
  within minutes: enough, measured one provider after another, to turn a ratio around.
* The bound: the median time of ``np.copyto`` between two arrays of the logits' size, taken
  in the same rounds (what a kernel that reads the logits and writes a gradient cannot beat;
  for a forward pass, reading alone: ``np.sum``). Each provider's ratio is median / bound.
  Its destination's pages are touched beforehand; a provider returning a new gradient also
  pays for new pages, so forward + gradient tables carry ``np.copy`` of the logits into a new
  array (one thread) beside it.
* Peak memory: the process's resident high-water mark (``VmHWM``, reset through
  ``/proc/self/clear_refs``) above its resident size before the call, after returning freed
  memory to the system (``malloc_trim``); so PyTorch's and NumPy's allocations count alike.
  Elsewhere: ``tracemalloc`` (NumPy allocations only).
"""

from __future__ import annotations

import csv
import datetime
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.csv"
PLOT = HERE / "results.png"
FRESH_COPY = "copy to a new array"  # the fresh-memory reference of fwd+grad (np.copy)
GPU = "-cuda"  # suffix of the benchmarks run on CUDA tensors (their own tables, not the plot)


@dataclass
class Row:
    """One line of ``results.csv`` (the fixed schema)."""

    date: str
    machine: str
    cpu: str
    threads: int
    openblas_coretype: str
    versions: str
    benchmark: str
    shape: str
    dtype: str
    provider: str
    mode: str
    median_ms: float
    p20_ms: float
    p80_ms: float
    bound_ms: float
    ratio: float
    peak_extra_mib: float


def machine() -> dict:
    """Machine, versions and threads: the columns shared by every row of one run."""
    import crossent

    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}",
                f"crossent {crossent.__version__}"]  # fmt: skip
    try:
        import numba

        versions.append(f"numba {numba.__version__}")
    except ImportError:
        pass
    try:
        import torch

        versions.append(f"torch {torch.__version__}")
        threads = torch.get_num_threads()
        if torch.cuda.is_available():
            versions.append(f"cuda {torch.version.cuda} on {torch.cuda.get_device_name()}")
    except ImportError:
        threads = os.cpu_count() or 1
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.node()} ({os.cpu_count()} cpus)",
        "cpu": cpu,
        "threads": threads,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "versions": "; ".join(versions),
    }


def timings(
    fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 1,
    min_seconds: float = 3.0, max_repeats: int = 101,
) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    """(median, p20, p80) in milliseconds of each of ``fns``, called in turn after ``warmup``
    calls each, in a new random order each round (seeded). At least ``repeats`` rounds, and
    more (up to ``max_repeats``) until the rounds have taken ``min_seconds``: short calls get
    enough samples for a median that a slow stretch does not decide.

    A random order, not a rotation of one order: a call can depend on the one before it (the
    fused kernels' second thread is still awake after another multi-threaded call, asleep
    after a single-threaded one; about 95 µs to wake), and a rotation put each provider
    after the same neighbour in most rounds (at 65536 x 10 the fused kernel into ``out=``
    follows the fused kernel, 0.68 against 1.00 ms, in a run of the rotating order)."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    order = np.random.default_rng(0)
    began = time.perf_counter()
    r = 0
    while r < repeats or (r < max_repeats and time.perf_counter() - began < min_seconds):
        for name in order.permutation(names):
            start = time.perf_counter()
            fns[name]()
            times[name].append((time.perf_counter() - start) * 1e3)
        r += 1
    return {
        name: tuple(float(np.percentile(t, q)) for q in (50, 20, 80)) for name, t in times.items()
    }


def _resident() -> tuple[int, int] | None:
    try:
        values = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmHWM", "VmRSS")):
                    values[line.split(":")[0]] = int(line.split()[1]) * 1024
        return values["VmRSS"], values["VmHWM"]
    except (OSError, KeyError):
        return None


def _trim() -> None:
    """Return freed heap memory to the system, so that reuse does not hide a peak."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_extra_mib(fn: Callable[[], object]) -> float:
    """Peak memory of one call above what the process held before it, in MiB."""
    _trim()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _resident()
    except OSError:
        before = None
    if before is not None:
        result = fn()
        after = _resident()
        del result
        return max(0, after[1] - before[0]) / 2**20
    tracemalloc.start()
    result = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak / 2**20


def copy_bound(src: np.ndarray, write: bool) -> Callable[[], object]:
    """The in-run bandwidth bound: a copy (read + write) or a sum (read) of an array of the
    logits' shape and dtype."""
    if write:
        dst = np.empty_like(src)
        dst.fill(0)  # touch the pages once: the bound is a steady-state copy
        return lambda: np.copyto(dst, src)
    return src.sum


class Recorder:
    """Collects rows for one run, prints them, appends them to the CSV."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.common = machine()
        self.rows: list[Row] = []

    def header(self) -> None:
        c = self.common
        print(f"# {c['date']}  {c['machine']}  {c['cpu']}  threads={c['threads']}")
        print(f"# OPENBLAS_CORETYPE={c['openblas_coretype']}  {c['versions']}")

    def measure(
        self, benchmark: str, shape: tuple, dtype: type, mode: str,
        providers: dict[str, Callable[[], object]], bound: Callable[[], object],
        memory: Callable[[Callable[[], object]], float] = peak_extra_mib,
    ) -> None:  # fmt: skip
        """Time the ``providers`` and the ``bound`` in the same rounds (:func:`timings`), then
        measure each provider's peak extra memory in MiB with ``memory`` (the host process's
        by default)."""
        bound_name = "\0bound"  # not a provider's name
        timed = timings(providers | {bound_name: bound}, self.repeats)
        bound_ms = timed[bound_name][0]
        for provider, fn in providers.items():
            median, p20, p80 = timed[provider]
            peak = memory(fn)
            row = Row(
                **self.common, benchmark=benchmark, shape="x".join(map(str, shape)),
                dtype=np.dtype(dtype).name, provider=provider, mode=mode, median_ms=median,
                p20_ms=p20, p80_ms=p80, bound_ms=bound_ms, ratio=median / bound_ms,
                peak_extra_mib=peak,
            )  # fmt: skip
            self.rows.append(row)
            print(
                f"{benchmark:12s} {row.shape:>14s} {row.dtype:8s} {provider:26s} {mode:9s} "
                f"{median:9.2f} ms [{p20:8.2f}, {p80:8.2f}]  x{row.ratio:6.2f} of bound "
                f"{bound_ms:7.2f} ms  peak +{peak:7.1f} MiB",
                flush=True,
            )

    def save(self, path: Path = RESULTS) -> None:
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Row)])
            if new:
                writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v)
                                 for k, v in asdict(row).items()})  # fmt: skip


def torch_provider(fn: Callable, y, z) -> Callable[[bool], object]:
    """PyTorch's ``fn(logits, targets)`` on tensors ``z`` and ``y``, with ``backward`` when
    the gradient is asked for."""
    import torch

    def run(grad: bool) -> object:
        if not grad:
            with torch.no_grad():
                return fn(z, y)
        leaf = z.detach().requires_grad_()
        loss = fn(leaf, y)
        loss.backward()
        return loss, leaf.grad

    return run


def logit_providers(crossent_loss: Callable, torch_loss: Callable | None, y, z, out) -> dict:
    """Name -> function of ``grad`` (bool) for a loss of logits ``z`` and targets ``y``.

    crossent's portable path, its fused kernel (when Numba is installed) and the fused kernel
    writing the gradient into ``out``; PyTorch's ``torch_loss(logits, targets)`` with
    ``backward`` when PyTorch is installed (``torch_loss`` given as a function of the module).
    """
    import crossent

    vg = crossent.value_and_grad(crossent_loss)
    table: dict[str, Callable[[bool], object]] = {}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch_loss is not None:
        table["pytorch"] = torch_provider(
            torch_loss(torch), torch.from_numpy(y), torch.from_numpy(z)
        )
    fused = crossent.kernels.numba_available()
    for backend in ("portable", "fused") if fused else ("portable",):
        table[f"crossent {backend}"] = lambda g, b=backend: (
            vg(y, z, from_logits=True, backend=b) if g else
            crossent_loss(y, z, from_logits=True, backend=b)
        )  # fmt: skip
    if fused:
        table["crossent fused (out=)"] = lambda g: vg(
            y, z, from_logits=True, backend="fused", out=out
        )
    return table


def measure_providers(
    rec: Recorder, benchmark: str, shape: tuple, dtype: type, table: dict
) -> None:
    """Forward and forward + gradient of every provider of ``table`` against the copy bound
    (the ``(out=)`` providers only with the gradient). With the gradient, also a copy of the
    logits into a new array (``np.copy``, one thread): the price of new pages, which a
    provider returning a fresh gradient pays too (the bound copies into pages already
    touched)."""
    src = np.ones(shape, dtype=dtype)
    fresh = {FRESH_COPY: lambda grad: np.copy(src)}
    for mode, grad in (("forward", False), ("fwd+grad", True)):
        calls = {
            name: (lambda f=fn, g=grad: f(g))
            for name, fn in (table | fresh if grad else table).items()
            if grad or not name.endswith("(out=)")
        }
        rec.measure(benchmark, shape, dtype, mode, calls, copy_bound(src, write=grad))


def _latest(path: Path) -> list[dict]:
    """The last row of every (benchmark, shape, dtype, provider, mode) in the CSV."""
    with open(path) as f:
        latest = {
            (r["benchmark"], r["shape"], r["dtype"], r["provider"], r["mode"]): r
            for r in csv.DictReader(f)
        }
    return list(latest.values())


def plot(path: Path = RESULTS, out: Path = PLOT) -> None:
    """Forward+gradient medians (latest measurement of each case), log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        r for r in _latest(path) if r["mode"] == "fwd+grad" and not r["benchmark"].endswith(GPU)
    ]
    if not rows:
        return
    latest = max(r["date"] for r in rows)
    groups = sorted({(r["benchmark"], r["shape"]) for r in rows})
    providers = sorted({r["provider"] for r in rows})
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / max(len(providers), 1)
    for k, provider in enumerate(providers):
        xs, ys = [], []
        for g, (bench, shape) in enumerate(groups):
            for r in rows:
                if (r["benchmark"], r["shape"], r["provider"]) == (bench, shape, provider):
                    xs.append(g + k * width)
                    ys.append(float(r["median_ms"]))
        ax.bar(xs, ys, width, label=provider)
    for g, (bench, shape) in enumerate(groups):
        bounds = [
            float(r["bound_ms"]) for r in rows if (r["benchmark"], r["shape"]) == (bench, shape)
        ]
        ax.hlines(bounds[0], g - 0.05, g + 0.85, colors="k", linestyles="dashed")
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))])
    ax.set_xticklabels([f"{b}\n{s}" for b, s in groups])
    ax.set_yscale("log")
    ax.set_ylabel("forward + gradient, median ms (dashed: in-run bound)")
    ax.set_title(f"crossent fast paths, {latest} ({rows[0]['cpu']}, {rows[0]['threads']} threads)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"# plot: {out}")


def _ms(value: str) -> str:
    v = float(value)
    return f"{v:.1f}" if v >= 1 else f"{v:.3f}"


def _kernel_tables(kernels: list[dict], where: str) -> list[str]:
    """Forward + gradient and forward tables of the loss benchmarks: provider columns."""
    lines = []
    for mode in ("fwd+grad", "forward"):
        providers = list(dict.fromkeys(r["provider"] for r in kernels if r["mode"] == mode))
        if not providers:
            continue
        lines += [
            f"\n{mode}{where}, median ms (x ratio to the in-run bound; p20-p80 in results.csv):\n",
            "| benchmark | shape | " + " | ".join(providers) + " | bound |",
            "|---" * (len(providers) + 3) + "|",
        ]
        for key in dict.fromkeys((r["benchmark"], r["shape"]) for r in kernels):
            cells = {r["provider"]: r for r in kernels if (r["benchmark"], r["shape"]) == key
                     and r["mode"] == mode}  # fmt: skip
            if not cells:
                continue
            bound = next(iter(cells.values()))["bound_ms"]
            lines.append(
                f"| {key[0]} | {key[1]} | "
                + " | ".join(
                    f"{_ms(cells[p]['median_ms'])} (x{float(cells[p]['ratio']):.1f})"
                    if p in cells else "-" for p in providers
                )
                + f" | {_ms(bound)} |"
            )  # fmt: skip
    return lines


# The CPU targets of the fast path (float32, forward + gradient): (benchmark, shape, reference
# provider, the least speed-up over it), or with the reference "bound", the largest ratio to
# the in-run bound.
TARGETS = [
    ("categorical", "4096x32000", "pytorch", 5.0),
    ("categorical", "8192x1000", "pytorch", 2.0),
    ("categorical", "65536x10", "pytorch", 2.0),
    *(("categorical", s, "naive numpy", 10.0) for s in ("65536x10", "8192x1000", "4096x32000")),
    ("binary", "10000000", "naive numpy", 10.0),
    ("categorical", "4096x32000", "bound", 1.5),
]
FUSED = ("crossent fused", "crossent fused (out=)")
LINEAR = [  # crossent's linear providers: the first sets the shape of the targets' table
    ("crossent linear_cross_entropy", "NumPy arrays"),
    ("crossent (torch tensors)", "PyTorch tensors"),
    ("crossent (torch autograd)", "PyTorch tensors autograd tracks, with backward"),
]


def _target_tables(rows: list[dict]) -> list[str]:
    """:data:`TARGETS` and the linear cross-entropy's targets (peak memory no more than
    PyTorch's chunked path and 1/6 of its materialised one, time no more than the
    materialised one), checked against the latest float32 rows; the linear ones for crossent
    given NumPy arrays and, when measured, given PyTorch tensors (:data:`LINEAR`)."""
    cpu = {(r["benchmark"], r["shape"], r["provider"]): r for r in rows
           if r["mode"] == "fwd+grad" and r["dtype"] == "float32"}  # fmt: skip
    lines = ["\ntargets (float32, forward + gradient; speed-up = reference time / crossent's):\n",
             "| target | " + " | ".join(FUSED) + " |", "|---|---|---|"]  # fmt: skip
    for bench, shape, reference, limit in TARGETS:
        cells = []
        for provider in FUSED:
            ours = cpu.get((bench, shape, provider))
            theirs = cpu.get((bench, shape, reference))
            if ours is None or (theirs is None and reference != "bound"):
                cells.append("-")
                continue
            if reference == "bound":
                ratio = float(ours["ratio"])
                cells.append(f"x{ratio:.2f} ({'met' if ratio <= limit else 'missed'})")
            else:
                speedup = float(theirs["median_ms"]) / float(ours["median_ms"])
                cells.append(f"{speedup:.1f}x ({'met' if speedup >= limit else 'missed'})")
        what = (f"within x{limit:g} of the copy bound" if reference == "bound"
                else f">= {limit:g}x faster than {reference}")  # fmt: skip
        lines.append(f"| {what}, {bench} {shape} | " + " | ".join(cells) + " |")
    linear = [r for r in rows if r["benchmark"] == "linear"]
    first = next((r for r in linear if r["provider"] == LINEAR[0][0]), None)
    same = {r["provider"]: r for r in linear if first and r["shape"] == first["shape"]}
    full, chunked = same.get("pytorch materialised"), same.get("pytorch chunked (1024)")
    if not (first and full and chunked):
        return lines
    lines += [f"\nlinear cross-entropy targets ({first['shape']}):\n",
              "| target | measured | met |", "|---|---|---|"]  # fmt: skip
    for provider, given in LINEAR:
        ours = same.get(provider)
        if ours is None:
            continue
        mib = {k: float(r["peak_extra_mib"]) for k, r in
               (("ours", ours), ("full", full), ("chunked", chunked))}  # fmt: skip
        seconds = float(ours["median_ms"]) / 1e3, float(full["median_ms"]) / 1e3
        checks = [
            ("peak memory <= PyTorch chunked", f"{mib['ours']:.0f} vs {mib['chunked']:.0f} MiB",
             mib["ours"] <= mib["chunked"]),
            ("peak memory <= 1/6 of PyTorch materialised",
             f"1/{mib['full'] / max(mib['ours'], 1e-9):.1f}", mib["ours"] <= mib["full"] / 6),
            ("time <= PyTorch materialised", f"{seconds[0]:.2f} vs {seconds[1]:.2f} s",
             seconds[0] <= seconds[1]),
        ]  # fmt: skip
        lines += [f"| {t}, {given} | {m} | {'yes' if ok else 'no'} |" for t, m, ok in checks]
    return lines


def markdown(path: Path = RESULTS) -> str:
    """The latest measurement of every case as Markdown tables (the README's section)."""
    rows = _latest(path)
    lines = []
    for where, names in (("", ("categorical", "binary")),
                         (" on CUDA", ("categorical" + GPU, "binary" + GPU))):  # fmt: skip
        lines += _kernel_tables([r for r in rows if r["benchmark"] in names], where)
    lines += _target_tables(rows)
    linear = [r for r in rows if r["benchmark"] == "linear"]
    if linear:
        lines += ["\nlinear cross-entropy, forward + gradients (bound: the three products "
                  "through SciPy's BLAS):\n",
                  "| provider | shape (N x D x V) | median s (x bound) | peak extra memory |",
                  "|---|---|---|---|"]  # fmt: skip
        for r in linear:
            lines.append(
                f"| {r['provider']} | {r['shape']} | {float(r['median_ms']) / 1e3:.2f} "
                f"(x{float(r['ratio']):.2f}) | {float(r['peak_extra_mib']):.0f} MiB |"
            )
    start = [r for r in rows if r["benchmark"] == "startup"]
    if start:
        lines += ["\nJIT start-up (first call in a fresh process):\n",
                  "| step | cold (empty cache) | warm (cached) |", "|---|---|---|"]  # fmt: skip
        names = dict.fromkeys(r["provider"] for r in start)
        for name in names:
            cold = next(r for r in start if r["provider"] == name and r["mode"] == "startup-cold")
            warm = next(r for r in start if r["provider"] == name and r["mode"] == "startup-warm")
            lines.append(
                f"| {name.split(': ', 1)[1]} | {float(cold['median_ms']):.0f} ms | "
                f"{float(warm['median_ms']):.0f} ms |"
            )
    return "\n".join(lines)
