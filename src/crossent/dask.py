r"""The report of :mod:`crossent.report` on a Dask cluster, for data that outgrows one machine.

Every pass maps the NumPy kernels of :mod:`crossent.report` over the partitions (one
accumulator per partition: :class:`~crossent.calibration.CalibrationAccumulator`,
:class:`~crossent.calibration.LossAccumulator`, and per Newton step of the temperature fit
:class:`~crossent.calibration.TemperatureStatistics`) and merges the accumulators in a binary
tree on the cluster. Merging sums sufficient statistics, so every number equals the NumPy
path's up to floating-point summation order; per-partition *means* are never averaged (which
is wrong whenever partitions differ in size, as ``dask_ml.metrics.log_loss`` shows).

One difference, by design: the bootstrap replicate weights of partition :math:`i` come from
the :math:`i`-th child of ``numpy.random.SeedSequence(random_state)``, since partitions are
processed in parallel. The interval is a valid Poisson bootstrap of all the rows, reproducible
for a given partitioning, but not the same draws as the sequential NumPy pass; the metric
values themselves are identical.

Install with ``pip install 'crossent[dask]'``.

Example::

    >>> import dask.array as da, numpy as np
    >>> from crossent.dask import evaluate
    >>> rng = np.random.default_rng(0)
    >>> logits = da.from_array(3 * rng.normal(size=(1000, 4)), chunks=(300, 4))
    >>> y = da.from_array(rng.integers(0, 4, size=1000), chunks=500)
    >>> report = evaluate(y, logits, n_bootstrap=0)
    >>> report.rows, report.input
    (1000, 'logits')
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _array, _tables, _validation
from .calibration import _inputs
from .report import (
    Report,
    Settings,
    _detect_from_logits,
    _fit_temperature,
    _Pass,
    _report,
    _scaled,
    _temperature_statistics,
)

__all__ = ["evaluate", "evaluate_dataframe"]

CONNECT_TIMEOUT = "10s"  # how long `crossent report --dask ADDRESS` waits for the scheduler


def _merged(a: Any, b: Any) -> Any:
    """``a`` merged with ``b``; ``None`` stands for an empty partition."""
    if a is None or b is None:
        return b if a is None else a
    return copy.deepcopy(a).merge(b)


def _tree(parts: list[Any]) -> Any:
    """Merge delayed accumulators pairwise, in a fixed order, into one delayed accumulator."""
    import dask

    merge = dask.delayed(_merged, pure=True)
    while len(parts) > 1:
        pairs = [merge(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def _pass_kernel(
    part: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    from_logits: bool,
    settings: Settings,
    seed: Any,
    temperature: float | None,
) -> _Pass | None:
    y, pred = part
    if len(y) == 0:  # an empty partition (after a filter, say): nothing to merge
        return None
    if temperature is None:
        return _Pass(n_classes, from_logits, settings, seed).update(y, pred)
    return _Pass(n_classes, True, settings, seed).update(y, _scaled(pred, from_logits, temperature))


def _temperature_kernel(part: tuple[np.ndarray, np.ndarray], from_logits: bool, t: float) -> Any:
    y, pred = part
    return _temperature_statistics(y, pred, from_logits, t) if len(y) else None


def _evaluate_parts(
    parts: list[Any], n_classes: int, from_logits: bool, settings: Settings
) -> Report:
    """The report of delayed ``(y, pred)`` partitions: the passes of :mod:`crossent.report`."""
    import dask

    # child seeds (not generators: each pass draws the same replicates), of an int or Generator
    seeds = _inputs.rng(settings.random_state).bit_generator.seed_seq.spawn(len(parts))
    kernel = dask.delayed(_pass_kernel, pure=True)

    def one_pass(temperature: float | None) -> _Pass:
        partials = [
            kernel(part, n_classes, from_logits, settings, seed, temperature)
            for part, seed in zip(parts, seeds, strict=True)
        ]
        return _tree(partials).compute()

    before = one_pass(None)
    if before is None:
        raise ValueError("there are no rows to evaluate: every partition is empty")
    stats = dask.delayed(_temperature_kernel, pure=True)

    def statistics(t: float) -> Any:
        return _tree([stats(part, from_logits, t) for part in parts]).compute()

    temperature = _fit_temperature(statistics)
    after = one_pass(temperature)
    return _report(before, after, temperature, n_classes, from_logits, settings)


# ---------------------------------------------------------------------------------------------
# Dask arrays


def _array_part(
    y: np.ndarray, pred: np.ndarray, spec: _tables.Predictions, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate one block pair (labels, predictions) like a chunk read from a file."""
    block = np.asarray(pred, dtype=np.float64).reshape(len(y), len(spec.pred_columns))
    raw = {spec.target: np.asarray(y), **{c: block[:, j] for j, c in enumerate(spec.pred_columns)}}
    return _validated(spec, raw, offset)


def _validated(spec: _tables.Predictions, raw: dict, offset: Any, api: bool = True) -> tuple:
    """``spec.validate``, its errors as ``ValueError`` in the words of the Python API (with
    ``api``; ``crossent report --dask`` keeps the command line's :class:`InputError`)."""
    try:
        return spec.validate(raw, offset)
    except _tables.InputError as exc:
        if not api:
            raise
        raise _api_error(exc) from None


def _api_error(exc: _tables.InputError) -> ValueError:
    """A file reader's error in the words of the Python API (no command-line options)."""
    return ValueError(str(exc).replace("--logits", "from_logits=True"))


def evaluate(
    y_true: Any,
    y_pred: Any,
    *,
    from_logits: bool | None = None,
    n_bins: int = 15,
    n_bootstrap: int = 200,
    random_state: int | None = 0,
    gamma: float = 2.0,
    confidence_level: float = 0.95,
) -> Report:
    """:func:`crossent.report.evaluate` for Dask arrays, computed on the current scheduler.

    Args:
        y_true: integer labels, a Dask array of shape (n,) (any chunks: it is re-chunked like
            ``y_pred``'s rows).
        y_pred: a Dask array (n,) (binary) or (n, K), chunked along rows (the class axis is
            put in one chunk).
        from_logits: as in :func:`crossent.report.evaluate`; ``None`` detects it from the
            first block.
        n_bins, n_bootstrap, random_state, gamma, confidence_level: as in
            :func:`crossent.report.evaluate` (bootstrap draws: see :mod:`crossent.dask`).

    Returns:
        A :class:`crossent.report.Report` equal to the NumPy one on the same rows, but for
        the bootstrap draws (per-partition seeds: intervals as valid, not identical).

    Reference: Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017 (temperature, ECE); Chamandy et al., "Estimating Uncertainty for Massive Data
    Streams", Google, 2012 (the Poisson bootstrap of sharded data).
    """
    import dask
    import dask.array as da

    from_logits = _validation.flag(from_logits, "from_logits", none=True)
    pred = y_pred if isinstance(y_pred, da.Array) else da.from_array(np.asarray(y_pred))
    y = y_true if isinstance(y_true, da.Array) else da.from_array(np.asarray(y_true))
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.ndim not in (1, 2):
        raise ValueError(f"y_pred must have shape (n,) or (n, K), got {pred.shape}")
    for name, a in (("y_true", y), ("y_pred", pred)):
        if any(np.isnan(c) for c in a.chunks[0]):
            raise ValueError(
                f"{name} has unknown chunk sizes (a filtered array, or a dataframe's "
                f"to_dask_array()); call its compute_chunk_sizes() first, or pass "
                f"to_dask_array(lengths=True)"
            )
    if pred.shape[0] == 0:
        raise ValueError("y_pred must have shape (n,) or (n, K) with n > 0, got no rows")
    if y.shape != pred.shape[:1]:
        raise ValueError(f"y_true has shape {y.shape}; expected ({pred.shape[0]},)")
    if pred.ndim == 2:
        pred = pred.rechunk({1: -1})
    y = y.rechunk((pred.chunks[0],))
    n_classes = 2 if pred.ndim == 1 else pred.shape[1]
    settings = Settings(n_bins, n_bootstrap, random_state, gamma, confidence_level)
    detected = from_logits is None
    if detected:
        first = np.asarray(pred[: _tables.DETECTION_ROWS].compute(), dtype=np.float64)
        _validation.finite(first, _array.namespace(), "y_pred")
        from_logits = _detect_from_logits(first)
    columns = ["y_pred"] if pred.ndim == 1 else [f"y_pred[{k}]" for k in range(n_classes)]
    spec = _tables.Predictions(None, "y_true", columns, from_logits, detected, columns)
    offsets = np.concatenate([[0], np.cumsum(pred.chunks[0])[:-1]])
    blocks = zip(y.to_delayed().ravel(), pred.to_delayed().ravel(), offsets, strict=True)
    part = dask.delayed(_array_part, pure=True)
    parts = [part(yb, pb, spec, int(o)) for yb, pb, o in blocks]
    return _evaluate_parts(parts, n_classes, from_logits, settings)


# ---------------------------------------------------------------------------------------------
# Dask dataframes (and files read into them)


def _frame_part(frame: Any, spec: _tables.Predictions, index: int, api: bool) -> tuple:
    raw = {c: frame[c].to_numpy() for c in spec.columns}
    return _validated(spec, raw, (index,), api)


def _frame_parts(df: Any, spec: _tables.Predictions, api: bool = True) -> list[Any]:
    import dask

    part = dask.delayed(_frame_part, pure=True)
    return [part(p, spec, i, api) for i, p in enumerate(df[spec.columns].to_delayed())]


def _first_rows(df: Any, columns: list[str], n: int) -> np.ndarray:
    """At least ``n`` first rows of the prediction ``columns`` (all if fewer) as float64,
    a partition at a time, a bad value reported at its partition and row."""
    blocks, rows = [], 0
    for i in range(df.npartitions):
        frame = df[columns].get_partition(i).compute()
        try:
            blocks.append(
                _tables._numeric({c: frame[c].to_numpy() for c in columns}, columns, (i,))
            )
        except _tables.InputError as exc:
            raise _api_error(exc) from None
        rows += len(frame)
        if rows >= n:
            break
    return np.concatenate(blocks)


def evaluate_dataframe(
    df: Any,
    *,
    target: str,
    columns: list[str],
    from_logits: bool | None = None,
    n_bins: int = 15,
    n_bootstrap: int = 200,
    random_state: int | None = 0,
    gamma: float = 2.0,
    confidence_level: float = 0.95,
) -> Report:
    """The report of a Dask (or pandas) dataframe's label and prediction columns.

    Args:
        df: a ``dask.dataframe.DataFrame`` (a pandas one is taken as one partition).
        target: the label column (class indices, booleans for binary, or names of
            ``columns``).
        columns: one prediction column (binary) or K (multiclass).
        from_logits: whether the columns hold logits; ``None`` detects it from the first
            partition.
        n_bins, n_bootstrap, random_state, gamma, confidence_level: as in :func:`evaluate`.

    Reference: as :func:`evaluate`.
    """
    import dask.dataframe as dd

    from_logits = _validation.flag(from_logits, "from_logits", none=True)
    if not isinstance(df, dd.DataFrame):  # a pandas dataframe: one partition
        df = dd.from_pandas(df, npartitions=1)
    if not columns:
        raise ValueError("columns must name one prediction column (binary) or several")
    if target in columns:
        raise ValueError(f"target {target!r} is also one of the prediction columns")
    missing = [c for c in [target, *columns] if c not in df.columns]
    if missing:
        raise ValueError(f"no column {missing[0]!r} in the dataframe")
    spec = _tables.Predictions(
        None,
        target,
        list(columns),
        from_logits=bool(from_logits),
        detected=from_logits is None,
        class_names=_tables._class_names(list(columns)),
    )
    if from_logits is None:
        sample = _first_rows(df, list(columns), _tables.DETECTION_ROWS)
        if sample.size == 0:
            raise ValueError("there are no rows to evaluate: every partition is empty")
        spec.from_logits = _detect_from_logits(sample)
    settings = Settings(n_bins, n_bootstrap, random_state, gamma, confidence_level)
    return _evaluate_parts(_frame_parts(df, spec), spec.n_classes, spec.from_logits, settings)


def report_file(
    predictions: _tables.Predictions, settings: Settings, *, address: str, chunk_rows: int
) -> Report:
    """``crossent report --dask``: read the file with Dask and evaluate it on the cluster.

    ``address`` is a scheduler address, or ``"local"`` for a local cluster on this machine.
    The workers read the file themselves, so on a remote cluster the path must be visible to
    them (a shared file system or an object store URL).
    """
    spec = predictions.spec()
    with _client(address):
        parts = _file_parts(predictions, spec, chunk_rows)
        return _evaluate_parts(parts, spec.n_classes, spec.from_logits, settings)


@contextlib.contextmanager
def _client(address: str) -> Iterator[Any]:
    """A Dask client of the scheduler at ``address``, or of a new local cluster ("local")."""
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        # a worker logs the traceback of a task that raised; the error reaches the user anyway
        worker_log = logging.getLogger("distributed.worker")
        stack.callback(worker_log.setLevel, worker_log.level)
        worker_log.setLevel(logging.CRITICAL)
        if address == "local":
            cluster = stack.enter_context(LocalCluster(processes=False, dashboard_address=":0"))
            target: Any = cluster
        else:
            target = address
        try:
            client = stack.enter_context(Client(target, timeout=CONNECT_TIMEOUT))
        except OSError as exc:
            raise _tables.InputError(
                f"cannot reach the Dask scheduler at {address}: {exc}"
            ) from None
        yield client


def _file_parts(
    predictions: _tables.Predictions, spec: _tables.Predictions, chunk_rows: int
) -> list[Any]:
    import dask

    table = predictions.table
    assert table is not None
    if table.format == "csv":
        import dask.dataframe as dd

        sep = _tables.csv_separator(table.path)
        # a compressed file cannot be split: one partition, said so (Dask warns otherwise)
        whole = {"blocksize": None} if _tables.is_compressed(table.path) else {}
        df = dd.read_csv(  # every column, as the local reader: a longer row is refused
            table.path,
            sep=sep,
            assume_missing=True,
            **whole,
            **_tables.exact_floats(),
        )
        return _frame_parts(df, spec, api=False)
    if table.format == "parquet":
        import dask.dataframe as dd

        return _frame_parts(dd.read_parquet(table.path, columns=spec.columns), spec, api=False)
    # NumPy files: blocks of chunk_rows rows, read by the workers from the file
    n = table.n_rows or 0
    read = dask.delayed(_read_rows, pure=True)
    check = dask.delayed(_validate_rows, pure=True)
    return [
        check(read(table.path, table.format, spec.columns, start, chunk_rows), spec, start)
        for start in range(0, n, chunk_rows)
    ]


def _read_rows(path: str, fmt: str, columns: list[str], start: int, rows: int) -> dict:
    """Rows ``start`` to ``start + rows`` of the columns of a NumPy file.

    ``.npy`` is memory-mapped; an ``.npz`` member is a compressed stream, decompressed once
    per block up to the block's end and no further (prefer ``.npy`` or Parquet for large data
    on Dask: a block far into an ``.npz`` member costs the decompression of all before it).
    """
    if fmt == "npy":
        block = np.asarray(np.load(path, mmap_mode="r")[start : start + rows])
        return {c: block[:, int(c)] for c in columns}
    members = _tables._npz_members(path)
    blocks: dict[str, np.ndarray] = {}
    out = {}
    for c in columns:
        key, j = (c, None) if c in members else c[:-1].rsplit("[", 1)  # "key[j]": column j
        if key not in blocks:
            blocks[key] = next(_tables._npz_rows(path, key, members[key], rows, start))
        out[c] = blocks[key] if j is None else blocks[key][:, int(j)]
    return out


def _validate_rows(raw: dict, spec: _tables.Predictions, start: int) -> tuple:
    return spec.validate(raw, start)
