"""``python -m benchmarks [FAMILY ...] [--quick] [--no-save] [--table]``.

FAMILY: categorical, binary, linear, startup, cuda. Runs the chosen families (all by
default) in one process, prints a table, appends the rows to ``benchmarks/results.csv`` and
redraws ``benchmarks/results.png``.
"""

from __future__ import annotations

import argparse

from . import binary, categorical, cuda, harness, linear, startup

FAMILIES = {
    "categorical": categorical,
    "binary": binary,
    "linear": linear,
    "startup": startup,
    "cuda": cuda,  # skipped without a CUDA device
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("families", nargs="*", help=f"any of {', '.join(FAMILIES)} (default: all)")
    parser.add_argument("--repeats", type=int, default=7, help="rounds per case (>= 7)")
    parser.add_argument("--quick", action="store_true", help="small shapes, a smoke run")
    parser.add_argument("--no-save", action="store_true", help="print only")
    parser.add_argument("--table", action="store_true", help="print the latest run as Markdown")
    args = parser.parse_args(argv)
    if args.table:
        print(harness.markdown())
        return
    unknown = sorted(set(args.families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {list(FAMILIES)}")
    rec = harness.Recorder(max(args.repeats, 7))
    rec.header()
    for family in args.families or list(FAMILIES):
        module = FAMILIES[family]
        if args.quick and family == "categorical":
            module.run(rec, shapes=[(4096, 10), (512, 1000)])
        elif args.quick and family == "binary":
            module.run(rec, shape=(100_000,))
        elif args.quick and family == "cuda":
            module.run(rec, shapes=[(4096, 10), (512, 1000)], binary_shape=(100_000,),
                       linear_shapes=[(256, 64, 2048)])  # fmt: skip
        elif args.quick and family == "linear":
            module.run(rec, shape=(256, 64, 2048))
        else:
            module.run(rec)
    if not args.no_save and not args.quick:
        rec.save()
        harness.plot()


if __name__ == "__main__":
    main()
