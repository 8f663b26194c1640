"""Reliability diagrams (matplotlib is imported only when a diagram is drawn).

Install the ``calibration`` extra (``pip install "crossent[calibration]"``) for matplotlib.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _validation
from . import _inputs, metrics
from .metrics import BinStatistics


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reliability diagrams need matplotlib: pip install 'crossent[calibration]'"
        ) from error
    return plt


def plot_bins(
    bins: BinStatistics,
    ece: float,
    *,
    ax: Any = None,
    title: str | None = None,
    show_counts: bool = True,
    color: str = "tab:blue",
) -> Any:
    """Draw a reliability diagram from :class:`BinStatistics`; returns the Figure.

    Without ``ax`` a new figure gets the diagram on top and, with ``show_counts``, a
    histogram of the bin counts below; with ``ax`` everything goes on that axes and the
    counts are written above the bars.
    """
    plt = _pyplot()
    show_counts = _validation.flag(show_counts, "show_counts")
    if ax is None:
        if show_counts:
            fig, (ax, ax_counts) = plt.subplots(
                2, 1, figsize=(6, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
            )
        else:
            fig, ax = plt.subplots(figsize=(6, 5.5))
            ax_counts = None
    else:
        fig, ax_counts = ax.figure, None
    left, width = bins.edges[:-1], np.diff(bins.edges)
    filled = bins.weight > 0
    freq = np.where(filled, bins.frequency, 0.0)
    conf = np.where(filled, bins.mean_score, 0.0)
    ax.bar(
        left,
        freq,
        width=width,
        align="edge",
        color=color,
        edgecolor="black",
        linewidth=0.6,
        label="observed accuracy",
    )
    ax.bar(
        left[filled],
        (conf - freq)[filled],
        bottom=freq[filled],
        width=width[filled],
        align="edge",
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        hatch="//",
        linewidth=0.6,
        label="gap to mean confidence",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize="small")
    heading = f"ECE = {ece:.4f} ({len(width)} bins, n = {int(bins.count.sum())})"
    ax.set_title(heading if title is None else f"{title}\n{heading}", fontsize="medium")
    if ax_counts is not None:
        ax_counts.bar(
            left,
            bins.count,
            width=width,
            align="edge",
            color="gray",
            edgecolor="black",
            linewidth=0.6,
        )
        if bins.count.max() > 0:
            ax_counts.set_yscale("log")  # a few crowded bins would hide all the others
        ax_counts.set_ylabel("count (log scale)")
        ax_counts.set_xlabel("confidence")
        fig.tight_layout()
    else:
        ax.set_xlabel("confidence")
        if show_counts:
            for x, w, h, c in zip(
                left[filled], width[filled], freq[filled], bins.count[filled], strict=True
            ):
                ax.text(
                    x + w / 2,
                    min(h, 0.93) + 0.01,
                    str(int(c)),
                    ha="center",
                    va="bottom",
                    fontsize="x-small",
                )
    return fig


def reliability_diagram(
    y_true: Any,
    probs: Any,
    *,
    n_bins: int = 15,
    strategy: str = "uniform",
    sample_weight: Any = None,
    ax: Any = None,
    title: str | None = None,
    show_counts: bool = True,
) -> Any:
    """Reliability diagram of the top-label confidence; returns a ``matplotlib`` Figure.

    Bars show the observed accuracy per confidence bin (bins as in
    :func:`expected_calibration_error`), hatched red bars the gap up (over-confidence) or down
    (under-confidence) to the bin's mean confidence, the dashed diagonal perfect calibration,
    and the title the ECE (l1, top-label). ``show_counts`` adds the number of examples per bin
    (a histogram with a log scale under the diagram, or labels on the bars when drawing into
    ``ax``).

    Example::

        >>> import numpy as np
        >>> from crossent.calibration import reliability_diagram
        >>> fig = reliability_diagram(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.4]))
        >>> fig.savefig("reliability.png")  # doctest: +SKIP

    Reference: DeGroot and Fienberg, "The Comparison and Evaluation of Forecasters", The
    Statistician 32 (1983); Niculescu-Mizil and Caruana, ICML 2005.
    """
    n_bins = _inputs.n_bins(n_bins)
    strategy = _inputs.choice(strategy, "strategy", metrics.STRATEGIES)
    y, p, w, _ = _inputs.classification(y_true, probs, sample_weight)
    scores, hits = metrics.scores_and_hits(y, p, "top_label")
    if strategy == "uniform":
        edges = metrics.uniform_edges(n_bins)
    else:
        edges = metrics.quantile_edges(scores[:, 0], n_bins)
    index = metrics.bin_index(scores, edges)
    sums = metrics.binned_sums(index, scores, hits, w[:, None], n_bins)
    bins = BinStatistics.from_sums(edges, metrics.bin_counts(index, n_bins)[0], sums[:, 0, 0])
    ece = float(metrics.error_from_sums(sums, "l1", "top_label", False)[0])
    return plot_bins(bins, ece, ax=ax, title=title, show_counts=show_counts)
