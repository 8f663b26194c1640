"""``crossent report``: read, detect, evaluate (locally or on Dask), print, write JSON and plot."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import _tables
from .report import Report, Settings, evaluate_chunks


def run(args: argparse.Namespace) -> int:
    """Run ``crossent report`` with parsed arguments; the exit status."""
    from rich.console import Console
    from rich.markup import escape

    json_to_stdout = args.json == "-"
    _check_plot_path(args.plot)
    for option, path in (("--json", None if json_to_stdout else args.json), ("--plot", args.plot)):
        _check_writable(option, path)
    out = _console(stderr=json_to_stdout, highlight=False)
    err = Console(stderr=True, highlight=False)
    table = _tables.open_table(args.path, args.format)
    predictions = _tables.resolve(
        table, target=args.target, pred=args.pred, logits=args.logits, chunk_rows=args.chunk_rows
    )
    settings = Settings(
        n_bins=args.bins, n_bootstrap=args.bootstrap, random_state=args.seed, gamma=args.gamma
    )
    if not args.quiet:
        out.print(f"[bold]crossent report[/bold] {escape(args.path)} ({table.format})")
        how = "detected" if predictions.detected else "as told"
        out.print(f"{how}: {escape(predictions.describe())}")
    if args.dask is not None:
        from . import dask as ce_dask

        report = ce_dask.report_file(
            predictions, settings, address=args.dask, chunk_rows=args.chunk_rows
        )
    else:
        enabled = not args.quiet and err.is_terminal
        # sums beyond float64 (logits of 1e308) show as inf in the table, without a warning
        with (
            _Progress(err, table.progress_total, table.progress_unit, enabled) as progress,
            np.errstate(over="ignore"),
        ):
            report = evaluate_chunks(
                _chunks(predictions, args.chunk_rows, progress),
                n_classes=predictions.n_classes,
                from_logits=predictions.from_logits,
                settings=settings,
                on_pass=progress.on_pass,
            )
    report.source = {
        "path": os.path.abspath(args.path),
        "format": table.format,
        "target": predictions.target,
        "columns": predictions.pred_columns,
        "detected": predictions.detected,
    }
    written = []  # the files first: a reader of the table who stops early loses none of them
    if args.json is not None and not json_to_stdout:
        with open(args.json, "w") as f:
            f.write(report.to_json() + "\n")
        written.append(args.json)
    if args.plot is not None:
        report.plot(args.plot)
        written.append(args.plot)
    if not args.quiet:
        out.print(render(report))
        out.print(_caption(report))
        for path in written:
            out.print(f"wrote {escape(path)}")
    if json_to_stdout:
        sys.stdout.write(report.to_json() + "\n")
    return 0


def _check_plot_path(path: str | None) -> None:
    """A plot path must end in a format matplotlib writes (else it adds ".png" itself, or
    fails after the whole evaluation)."""
    if path is None:
        return
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in formats:
        raise _tables.InputError(
            f"--plot {path}: the file name must end in one of "
            f"{', '.join('.' + f for f in sorted(formats))}"
        )


def _check_writable(option: str, path: str | None) -> None:
    """An output file's folder must exist and be writable: checked before the evaluation,
    which on a large file takes minutes, rather than when the file is written."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise _tables.InputError(f"{option} {path}: no folder {folder}")
    if not os.access(folder, os.W_OK) or os.path.isdir(path):
        raise _tables.InputError(f"{option} {path}: cannot write there")


def _console(**kwargs: Any) -> Any:
    """rich's Console, except that a closed pipe (``crossent report ... | head``) sends the
    rest of the output to the null device and the command goes on (its files are written, it
    exits with 0); rich itself would exit with 1 there."""
    from rich.console import Console

    class PipeTolerantConsole(Console):
        def on_broken_pipe(self) -> None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    return PipeTolerantConsole(**kwargs)


def _chunks(
    predictions: _tables.Predictions, chunk_rows: int, progress: _Progress
) -> Callable[[], Iterator[tuple[Any, Any]]]:
    """A chunk source for the passes: read from the file, kept in memory if it is small.

    The first pass keeps the validated chunks while they fit in :func:`_cache_budget`; if the
    whole file did, the later passes (the temperature fit, the metrics after scaling) reuse
    them instead of reading and checking the file again. The chunks are the same either way.
    """
    budget = _cache_budget()
    kept: list[tuple[Any, Any]] | None = None

    def chunks() -> Iterator[tuple[Any, Any]]:
        nonlocal kept
        if kept is not None:
            yield from kept
            return
        cache: list[tuple[Any, Any]] | None = []
        size = 0
        for chunk in predictions.chunks(chunk_rows):
            if cache is not None:
                size += chunk.y.nbytes + chunk.pred.nbytes
                cache = None if size > budget else cache
            if cache is not None:
                cache.append((chunk.y, chunk.pred))
            yield chunk.y, chunk.pred
            progress.advance(chunk.progress)
        kept = cache

    return chunks


def _cache_budget() -> int:
    """Bytes of validated rows kept between passes: a quarter of the memory, at most 2 GiB."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        physical = 4 * 2**30
    return min(2 * 2**30, physical // 4)


class _Progress:
    """A progress bar per pass over the file (rich), or nothing."""

    def __init__(self, console: Any, total: int | None, unit: str, enabled: bool) -> None:
        self.enabled = enabled
        self.total = total
        self.unit = unit
        self._task = None
        self._bar = None
        if enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                count,
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def on_pass(self, name: str) -> Callable[[Any], Any]:
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(name, total=self.total)
        return lambda it: it

    def advance(self, done: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done)


def _fmt(x: float) -> str:
    """Four decimals, or four significant digits for values beyond a million (a loss of
    2.5e307 had filled its table cell with digits)."""
    return f"{x:.4f}" if abs(x) < 1e6 else f"{x:.4g}"


def _with_interval(interval: Any) -> str:
    text = _fmt(interval.value)
    if interval.low is not None:
        text += f" [dim]({_fmt(interval.low)}-{_fmt(interval.high)})[/dim]"
    return text


def render(report: Report) -> Any:
    """The report as a rich table."""
    from rich.table import Table

    s = report.settings
    table = Table()
    table.add_column("metric")
    table.add_column("as given", justify="right")
    table.add_column(f"scaled, T = {report.temperature:.3f}", justify="right")
    table.add_row("rows", f"{report.rows:,}", "")
    table.add_row("classes", f"{report.n_classes}", "")
    table.add_section()
    b, a = report.before, report.after
    table.add_row("accuracy", _fmt(b.accuracy), _fmt(a.accuracy))
    table.add_row("cross-entropy (nats)", _fmt(b.cross_entropy_nats), _fmt(a.cross_entropy_nats))
    table.add_row("cross-entropy (bits)", _fmt(b.cross_entropy_bits), _fmt(a.cross_entropy_bits))
    table.add_row(f"focal loss (gamma = {s.gamma:g})", _fmt(b.focal_loss), _fmt(a.focal_loss))
    table.add_row("Brier score", _with_interval(b.brier_score), _with_interval(a.brier_score))
    table.add_row(
        "ECE, top-label", _with_interval(b.ece_top_label), _with_interval(a.ece_top_label)
    )
    table.add_row(
        "ECE, classwise", _with_interval(b.ece_classwise), _with_interval(a.ece_classwise)
    )
    return table


def _caption(report: Report) -> str:
    from .calibration.scaling import degenerate_temperature

    s = report.settings
    t = report.temperature
    limit = degenerate_temperature(t, report.after.cross_entropy_nats)
    if limit == "infinity":
        first = (
            f"Fitted temperature {t:.4g}, at its bound: the predictions carry no information "
            f"about the labels (or point away from them); scaled, every class gets about the "
            f"same probability."
        )
    elif limit == "0":
        first = (
            f"Fitted temperature {t:.4g}, where the NLL vanished: the predictions separate the "
            f"classes; scaled, they are certain."
        )
    else:
        verdict = (
            "over-confident (T > 1)"
            if t > 1.01
            else "under-confident (T < 1)"
            if t < 0.99
            else "about right (T close to 1)"
        )
        first = f"Fitted temperature {t:.4f}: the given probabilities are {verdict}."
    lines = [
        first,
        f"ECE: {s.n_bins} equal-width bins (lo, hi]; classwise: the mean over classes.",
    ]
    if s.n_bootstrap:
        lines.append(
            f"(low-high): {100 * s.confidence_level:g}% Poisson bootstrap interval, "
            f"{s.n_bootstrap} replicates, seed {s.random_state}."
        )
    return "\n".join(lines)
