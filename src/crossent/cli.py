"""The ``crossent`` command: ``crossent report``, ``crossent demo`` and ``crossent tour``.

This module only parses arguments; each command imports what it needs when it runs, so
``crossent --help`` answers at once. Problems with the user's input are reported as one line
on standard error with exit status 1 (2 for a bad command line), never as a traceback; set
``CROSSENT_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

PROG = "crossent"

_DESCRIPTION = """\
Cross-entropy done right, from the terminal: how good, and how honest, are a classifier's
predicted probabilities?"""

_EPILOG = """\
examples:
  crossent demo                      train on scikit-learn's digits and report on it
  crossent report preds.csv          report on a file of labels and predictions
  crossent report preds.parquet --target y --logits 'z_*' --json report.json
  crossent tour                      the seed tour of cross-entropy, computed exactly

Run 'crossent COMMAND --help' for the options of a command."""

_REPORT_DESCRIPTION = """\
Evaluate the predictions in PATH against their labels: accuracy, cross-entropy (in nats and
bits), focal loss, Brier score, expected calibration error (top-label and classwise, with a
bootstrap interval), then fit a temperature on the file and show the same numbers after
temperature scaling.

PATH holds one row per example: a target column (class indices 0..K-1, true/false for binary,
or the names of the prediction columns; labels 1..5 for columns p_1..p_5 name them) and either
one prediction column (binary: the probability or logit of the positive class) or K columns
(multiclass). Without --pred or
--logits every other column is a prediction column (but for row identifiers: id, index,
Unnamed: 0), and probabilities are told from logits by their values (all in [0, 1], rows
summing to 1). Rows of probabilities may be off 1 by 3.5e-4 (a float32 model's output, or text
with a few digits) and are divided by their sums. What was detected is printed first.

Files are read in chunks of --chunk-rows rows, so a file larger than memory is fine: every
number is merged exactly across chunks (the result does not depend on the chunk size). A file
whose rows fit in a quarter of the memory (2 GiB at most) is read once; a larger one is read
again for each step of the temperature fit (typically 5 to 10 passes)."""

_REPORT_EPILOG = """\
file formats (from the extension, or --format):
  csv      .csv, .tsv, .csv.gz (header row = column names)
  parquet  .parquet, .pq
  npy      one 2-D array; columns are named 0, 1, ...; the target defaults to column 0
  npz      named arrays; a 1-D array is a column, a 2-D array NAME is the columns
           NAME[0], NAME[1], ... and --pred NAME selects them all

examples:
  crossent report preds.csv
  crossent report preds.csv --target label --pred 'p_*' --plot reliability.png
  crossent report scores.parquet --target y --logits logit --json report.json
  crossent report huge.parquet --chunk-rows 250000
  crossent report huge.parquet --dask tcp://scheduler:8786

exit status: 0 on success, 1 if the input cannot be evaluated, 2 on a bad command line."""

_DEMO_DESCRIPTION = """\
Train a crossent model on scikit-learn's bundled digits (no download), write its held-out
predictions to DIR/predictions.csv, and run 'crossent report' on them, writing DIR/report.json
and the reliability diagram DIR/reliability.png. Takes a few seconds."""

_TOUR_DESCRIPTION = """\
Print every example of the seed tour of cross-entropy (binary, categorical, logistic
regression, regularisation, class weights, masks, focal loss, label smoothing, temperature,
distillation) with the value and gradient crossent computes, and where the original teaching
code went wrong."""


def _int_at_least(minimum: int, expected: str) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``minimum``, else ``expected ..., got ...``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _non_negative_float(text: str) -> float:
    """An argparse ``type``: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30, width=100)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``crossent`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_formatter
    )
    parser.add_argument("--version", action="version", version=f"crossent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    report = commands.add_parser(
        "report",
        help="evaluate a predictions file (CSV, Parquet, NumPy)",
        description=_REPORT_DESCRIPTION,
        epilog=_REPORT_EPILOG,
        formatter_class=_formatter,
    )
    report.add_argument("path", metavar="PATH", help="file of labels and predictions")
    cols = report.add_argument_group("columns")
    cols.add_argument(
        "--target",
        metavar="COL",
        help="label column (default: target, label, labels, y, y_true or class)",
    )
    which = cols.add_mutually_exclusive_group()
    which.add_argument(
        "--pred",
        metavar="COLS",
        help="probability columns: names or patterns ('p_*'), comma-separated",
    )
    which.add_argument("--logits", metavar="COLS", help="logit columns, same syntax as --pred")
    report.add_argument(
        "--format",
        choices=("csv", "parquet", "npy", "npz"),
        help="file format (default: from the name)",
    )
    out = report.add_argument_group("output")
    out.add_argument(
        "--json", metavar="OUT", help="write every number to OUT as JSON ('-': stdout)"
    )
    out.add_argument(
        "--plot", metavar="OUT.png", help="write the reliability diagram, before and after scaling"
    )
    out.add_argument("-q", "--quiet", action="store_true", help="print no table and no progress")
    metrics = report.add_argument_group("metrics")
    metrics.add_argument(
        "--bins", type=_positive_int, default=15, metavar="N", help="ECE bins (default: 15)"
    )
    metrics.add_argument(
        "--bootstrap",
        type=_non_negative_int,
        default=200,
        metavar="N",
        help="bootstrap replicates for the intervals, 0 for none (default: 200; on large "
        "files the bootstrap takes most of the time)",
    )
    metrics.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="bootstrap random seed (default: 0)",
    )
    metrics.add_argument(
        "--gamma",
        type=_non_negative_float,
        default=2.0,
        metavar="G",
        help="focal loss gamma (default: 2)",
    )
    scale = report.add_argument_group("scale")
    scale.add_argument(
        "--chunk-rows",
        type=_positive_int,
        default=1_000_000,
        metavar="N",
        help="rows read at a time (default: 1000000)",
    )
    scale.add_argument(
        "--dask",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="compute on a Dask cluster at ADDRESS (default: a local one)",
    )
    report.set_defaults(run=_run_report)

    demo = commands.add_parser(
        "demo",
        help="train on scikit-learn's digits and report on the predictions",
        description=_DEMO_DESCRIPTION,
        formatter_class=_formatter,
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default="crossent-demo",
        help="output folder (default: crossent-demo)",
    )
    demo.add_argument(
        "--seed", type=_non_negative_int, default=0, metavar="N", help="random seed (default: 0)"
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="print no table")
    demo.set_defaults(run=_run_demo)

    tour = commands.add_parser(
        "tour",
        help="print the seed tour of cross-entropy, every example computed exactly",
        description=_TOUR_DESCRIPTION,
        formatter_class=_formatter,
    )
    tour.set_defaults(run=_run_tour)
    return parser


def _run_report(args: argparse.Namespace) -> int:
    from . import _report_cli

    return _report_cli.run(args)


def _run_demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.run(out=args.out, seed=args.seed, quiet=args.quiet)


def _run_tour(args: argparse.Namespace) -> int:
    from . import tour

    tour.main()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crossent`` command with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `crossent tour | head`
        sys.stderr.close()
        return 0
    except Exception as exc:
        from ._tables import InputError

        if os.environ.get("CROSSENT_DEBUG"):
            raise
        if isinstance(exc, (InputError, OSError)):
            print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        if isinstance(exc, ImportError) and exc.name:
            package = exc.name.split(".")[0]
            extra = "dask" if package in ("dask", "distributed") else "cli"
            print(
                f"{PROG} {args.command}: error: this needs the package {package!r}: "
                f"pip install 'crossent[{extra}]'",
                file=sys.stderr,
            )
            return 1
        print(
            f"{PROG} {args.command}: error: {type(exc).__name__}: {_one_line(exc)} "
            f"(set CROSSENT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


def _one_line(exc: BaseException) -> str:
    from ._tables import first_line

    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror.lower()}"
    return first_line(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
