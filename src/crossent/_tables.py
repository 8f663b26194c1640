"""Prediction files: reading CSV, Parquet and NumPy files in row chunks, and making sense of them.

A *table* is a file of named columns read one chunk of rows at a time, so a file larger than
memory never has to fit in it. :class:`Predictions` then picks the target column and the
prediction columns, maps the labels to class indices, detects binary against multiclass and
probabilities against logits, and checks every chunk (missing values, labels that match no
prediction column, rows that are not probabilities) with an error that names the row and the
column. Every error is a :class:`InputError`: one line, meant to be shown as is.

Column names: CSV and Parquet use their header. A ``.npy`` file holds one 2-D array whose
columns are named ``0``, ``1``, ... A ``.npz`` file holds named arrays: a 1-D array is one
column with the array's name, a 2-D array ``a`` gives the columns ``a[0]``, ``a[1]``, ... and
the name ``a`` alone selects all of them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMATS = ("csv", "parquet", "npy", "npz")
TARGET_NAMES = ("target", "label", "labels", "y", "y_true", "class")
DEFAULT_CHUNK_ROWS = 1_000_000
DETECTION_ROWS = 100_000
# Row identifiers, never prediction columns (``Unnamed: 0`` is an index saved by pandas).
INDEX_NAMES = re.compile(
    r"(?i)(id|index|row|row_id|unnamed: ?\d+|__index_level_\d+__)"
)  # probabilities or logits is told from the first rows


class InputError(ValueError):
    """A problem with the user's file or options, explained in one line."""


# ---------------------------------------------------------------------------------------------
# Tables: named columns, read in chunks of rows


@dataclass
class Table:
    """A file of named columns that can be read, any number of times, in chunks of rows."""

    path: str
    format: str
    columns: list[str]
    n_rows: int | None
    groups: dict[str, list[str]] = field(default_factory=dict)  # npz: 2-D array -> columns
    _read: Callable[[list[str], int], Iterator[tuple[dict[str, np.ndarray], int]]] | None = None
    progress_unit: str = "rows"  # what the progress counts of :meth:`chunks` count

    def chunks(
        self, columns: list[str], chunk_rows: int
    ) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """Yield ``({column: values}, progress)`` per chunk; progress counts rows or bytes."""
        assert self._read is not None
        return self._read(columns, chunk_rows)

    @property
    def progress_total(self) -> int | None:
        """Total of the progress counts (``None``: unknown, e.g. a compressed CSV)."""
        if self.progress_unit == "bytes":
            return os.path.getsize(self.path)
        return self.n_rows


def detect_format(path: str, format: str | None = None) -> str:
    """The file format, from ``format`` or from the file name's extension."""
    if format is not None:
        if format not in FORMATS:
            raise InputError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
        return format
    name = path.lower()
    for compression in (".gz", ".bz2", ".zst", ".xz"):  # compressed text: by the inner name
        if name.endswith(compression) and name[: -len(compression)].endswith((".csv", ".tsv")):
            return "csv"
    for suffix, fmt in (
        (".csv", "csv"),
        (".tsv", "csv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".npy", "npy"),
        (".npz", "npz"),
    ):
        if name.endswith(suffix):
            return fmt
    raise InputError(
        f"cannot tell the format of {path!r} from its name; pass --format ({'|'.join(FORMATS)})"
    )


def open_table(path: str, format: str | None = None) -> Table:
    """Open ``path`` as a :class:`Table` without reading its rows."""
    fmt = detect_format(path, format)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a file")
    try:
        return {"csv": _csv, "parquet": _parquet, "npy": _npy, "npz": _npz}[fmt](path)
    except InputError:
        raise
    except ImportError as exc:
        raise InputError(
            f"reading {fmt} files needs {exc.name}: pip install 'crossent[cli]'"
        ) from None
    except Exception as exc:  # a corrupt or mislabelled file: say so in one line
        raise InputError(f"{path}: cannot be read as {fmt} ({first_line(exc)})") from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _CountingReader:
    """A binary file wrapper counting the bytes read (the progress of a CSV pass)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # closed by the reading generator
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(n)
        self.count += len(data)
        return data

    def readline(self, n: int = -1) -> bytes:
        data = self._file.readline(n)
        self.count += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def exact_floats() -> dict[str, str]:
    """``read_csv`` options that parse every float exactly: ``float_precision="round_trip"``
    before pandas 3.1, which parses exactly by default and deprecates the option (pandas
    3.0.6's default reads 17-digit floats 1 ulp off)."""
    import pandas as pd

    major, minor = (int(part) for part in pd.__version__.split(".")[:2])
    return {} if (major, minor) >= (3, 1) else {"float_precision": "round_trip"}


def _csv(path: str) -> Table:
    import pandas as pd

    sep = csv_separator(path)
    columns = [str(c) for c in pd.read_csv(path, nrows=0, sep=sep).columns]
    try:  # with header=None, pandas refuses a data row longer than the header
        pd.read_csv(path, sep=sep, header=None, nrows=2, dtype=str)
    except pd.errors.ParserError:
        raise InputError(
            f"{path}: its rows have more fields than its header (a delimiter at the end of "
            f"every row, or row names without a header field, as R's write.table writes); "
            f"name every column in the header"
        ) from None
    compressed = is_compressed(path)

    def read(cols: list[str], chunk_rows: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        source: Any = path if compressed else _CountingReader(path)
        try:
            # every column is parsed (usecols would drop the extra fields of a row longer than
            # the header silently, where a full parse refuses it)
            with pd.read_csv(
                source, sep=sep, chunksize=chunk_rows, **exact_floats()
            ) as reader:  # closes the file pandas opened for a compressed CSV
                done = 0
                for frame in _parsed(reader, path):
                    done += len(frame)
                    progress = done if compressed else source.count
                    yield {c: frame[c].to_numpy() for c in cols}, progress
        finally:
            if not compressed:
                source.close()

    # A compressed CSV's progress counts rows against an unknown total.
    unit = "rows" if compressed else "bytes"
    return Table(path, "csv", columns, None, _read=read, progress_unit=unit)


def is_compressed(path: str) -> bool:
    """Whether a text file is compressed (``.csv.gz`` and the like): read as a whole stream,
    which can be neither counted by bytes nor split."""
    return not path.lower().endswith((".csv", ".tsv"))


def csv_separator(path: str) -> str:
    """A tab for ``.tsv`` files (compressed ones too: ``.tsv.gz``), else a comma."""
    name = path.lower()
    return "\t" if name.endswith(".tsv") or ".tsv." in os.path.basename(name) else ","


def _parsed(reader: Any, path: str) -> Iterator[Any]:
    """The frames of a pandas CSV reader, its parse errors as :class:`InputError`."""
    import pandas as pd

    try:
        yield from reader
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as CSV: {first_line(exc)}") from None


def _parquet(path: str) -> Table:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path)
    columns = list(meta.schema_arrow.names)
    n_rows = meta.metadata.num_rows

    def read(cols: list[str], chunk_rows: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        done = 0
        with pq.ParquetFile(path) as f:
            for batch in f.iter_batches(batch_size=chunk_rows, columns=cols):
                done += batch.num_rows
                yield {c: _arrow_to_numpy(batch.column(c)) for c in cols}, done

    return Table(path, "parquet", columns, n_rows, _read=read)


def _arrow_to_numpy(column: Any) -> np.ndarray:
    """An Arrow column as NumPy; nulls become NaN (numbers) or None (strings)."""
    if column.null_count:
        import pyarrow as pa

        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            return column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(column.to_pylist(), dtype=object)
    return column.to_numpy(zero_copy_only=False)


def _npy(path: str) -> Table:
    array = np.load(path, mmap_mode="r")
    if array.ndim != 2:
        raise InputError(
            f"{path}: a .npy prediction file holds one 2-D array (rows x columns), "
            f"got shape {array.shape}"
        )
    columns = [str(j) for j in range(array.shape[1])]

    def read(cols: list[str], chunk_rows: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        data = np.load(path, mmap_mode="r")
        index = [int(c) for c in cols]
        for start in range(0, data.shape[0], chunk_rows):
            block = np.asarray(data[start : start + chunk_rows])
            yield {c: block[:, j] for c, j in zip(cols, index, strict=True)}, start + len(block)

    return Table(path, "npy", columns, array.shape[0], _read=read)


def _npz_members(path: str) -> dict[str, tuple[tuple[int, ...], np.dtype, bool]]:
    """Shape, dtype and Fortran order of every array of an ``.npz``, from the headers only."""
    from numpy.lib import format as npformat

    members = {}
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if not name.endswith(".npy"):
                continue
            with zf.open(name) as fp:
                version = npformat.read_magic(fp)
                read_header = (
                    npformat.read_array_header_1_0
                    if version == (1, 0)
                    else npformat.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(fp)
            members[name[: -len(".npy")]] = (shape, dtype, fortran)
    return members


def _npz(path: str) -> Table:
    members = _npz_members(path)
    if not members:
        raise InputError(f"{path}: the .npz file holds no arrays")
    columns: list[str] = []
    groups: dict[str, list[str]] = {}
    where: dict[str, tuple[str, int | None]] = {}  # column -> (array, column index)
    n_rows = None
    # Columns are the 1-D and 2-D arrays with as many rows as the labels (an array named like
    # them, else the first); others (class names, a scalar setting) are metadata, left out.
    tables = {k: m for k, m in members.items() if len(m[0]) in (1, 2)}
    if not tables:
        raise InputError(f"{path}: the .npz file holds no 1-D or 2-D arrays")
    first = next((k for k in tables if k.lower() in TARGET_NAMES), next(iter(tables)))
    n_rows = tables[first][0][0]
    for key, (shape, _dtype, _fortran) in tables.items():
        if shape[0] != n_rows:
            continue
        if len(shape) == 1:
            columns.append(key)
            where[key] = (key, None)
        else:
            names = [f"{key}[{j}]" for j in range(shape[1])]
            groups[key] = names
            columns.extend(names)
            where.update({c: (key, j) for j, c in enumerate(names)})

    def read(cols: list[str], chunk_rows: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        arrays = sorted({where[c][0] for c in cols})
        streams = {a: _npz_rows(path, a, members[a], chunk_rows) for a in arrays}
        done = 0
        while done < (n_rows or 0):
            blocks = {a: next(s) for a, s in streams.items()}
            out = {}
            for c in cols:
                a, j = where[c]
                out[c] = blocks[a] if j is None else blocks[a][:, j]
            done += len(next(iter(blocks.values())))
            yield out, done

    return Table(path, "npz", columns, n_rows, groups, _read=read)


def _npz_rows(
    path: str,
    key: str,
    info: tuple[tuple[int, ...], np.dtype, bool],
    chunk_rows: int,
    first: int = 0,
) -> Iterator[np.ndarray]:
    """Rows ``first`` onwards of one array of an ``.npz``, decompressed chunk by chunk (never
    all at once; the rows before ``first`` are decompressed and dropped on the way)."""
    from numpy.lib import format as npformat

    shape, dtype, fortran = info
    if fortran or dtype.hasobject:  # not a row-major byte stream: read it whole
        array = np.load(path, allow_pickle=False)[key]
        for start in range(first, shape[0], chunk_rows):
            yield array[start : start + chunk_rows]
        return
    row_shape = shape[1:]
    row_bytes = dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
    with zipfile.ZipFile(path) as zf, zf.open(key + ".npy") as fp:
        version = npformat.read_magic(fp)
        (npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0)(
            fp
        )
        fp.seek(first * row_bytes, 1)  # forward through the stream, a buffer at a time
        for start in range(first, shape[0], chunk_rows):
            rows = min(chunk_rows, shape[0] - start)
            data = fp.read(rows * row_bytes)
            yield np.frombuffer(data, dtype=dtype).reshape((rows, *row_shape))


# ---------------------------------------------------------------------------------------------
# Predictions: which columns, what they are, and the checks on every chunk


@dataclass
class Chunk:
    """Rows ``offset`` to ``offset + len(y)`` of a prediction file, validated."""

    y: np.ndarray  # int64 class indices, shape (n,)
    pred: np.ndarray  # float64, (n,) for binary, (n, K) for multiclass
    offset: int
    progress: int


@dataclass
class Predictions:
    """The columns of a table to evaluate and what they hold."""

    table: Table | None
    target: str
    pred_columns: list[str]
    from_logits: bool
    detected: bool  # whether from_logits was detected (True) or given by the user
    class_names: list[str]
    ignored: list[str] = field(default_factory=list)  # index-like columns left out

    @property
    def binary(self) -> bool:
        return len(self.pred_columns) == 1

    @property
    def n_classes(self) -> int:
        return 2 if self.binary else len(self.pred_columns)

    def describe(self) -> str:
        """What was found, in a few words (shown to the user)."""
        if self.binary:
            kind = f"binary ({self.pred_columns[0]} scores class 1)"
        else:
            kind = f"{self.n_classes} classes ({_span(self.pred_columns)})"
            kind = kind if self.n_classes == 2 else f"multiclass, {kind}"  # 2: binary, in 2 columns
        space = "logits" if self.from_logits else "probabilities"
        skipped = f"; ignored: {', '.join(self.ignored)}" if self.ignored else ""
        return f"{kind}, {space}; labels: {self.target}{skipped}"

    def chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
        """Validated chunks of rows, in file order."""
        offset = 0
        for raw, progress in self.table.chunks(self.columns, chunk_rows):
            n = len(raw[self.target])
            if n == 0:
                continue
            y, pred = self.validate(raw, offset)
            yield Chunk(y, pred, offset, progress)
            offset += n
        if offset == 0:
            raise InputError(f"{self.table.path}: no rows to evaluate")

    @property
    def columns(self) -> list[str]:
        """The columns read: the target, then the prediction columns."""
        return [self.target, *self.pred_columns]

    def validate(
        self, raw: dict[str, np.ndarray], offset: int | tuple[int] = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (n,) int64 and predictions (n,) or (n, K) float64 of a chunk's columns."""
        pred = _numeric(raw, self.pred_columns, offset)
        y = labels_to_indices(
            raw[self.target], self.target, self.class_names, self.binary, offset, self.pred_columns
        )
        if self.binary:
            pred = pred[:, 0]
        if not self.from_logits:
            _check_probabilities(pred, self.pred_columns, offset, told=not self.detected)
        return y, pred

    def spec(self) -> Predictions:
        """A copy without the table (what Dask workers receive to validate partitions)."""
        return Predictions(
            None, self.target, self.pred_columns, self.from_logits, self.detected, self.class_names
        )


def _row(offset: int | tuple[int], i: int) -> str:
    """Where row ``i`` of a chunk is, for messages: ``row 12`` or ``partition 3, row 4``."""
    if isinstance(offset, tuple):
        return f"partition {offset[0]}, row {i + 1}"
    return f"row {offset + i + 1}"


def _span(columns: list[str]) -> str:
    return ", ".join(columns) if len(columns) <= 3 else f"{columns[0]} .. {columns[-1]}"


def _numeric(
    raw: dict[str, np.ndarray], columns: list[str], offset: int | tuple[int]
) -> np.ndarray:
    """The prediction columns as one float64 (n, k) array; NaN and text are errors."""
    out = np.empty((len(raw[columns[0]]), len(columns)), dtype=np.float64)
    for j, c in enumerate(columns):
        values = raw[c]
        if values.dtype.kind not in "biuf":
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                bad = next(i for i, v in enumerate(values) if not _is_number(v))
                raise InputError(
                    f"{_row(offset, bad)}: column {c!r} holds {str(values[bad])!r}, not a number"
                ) from None
        out[:, j] = values
    finite = np.isfinite(out)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        what = "a missing value (NaN)" if np.isnan(out[i, j]) else f"{out[i, j]}"
        raise InputError(
            f"{_row(offset, i)}: column {columns[j]!r} holds {what}; remove or fill "
            f"incomplete rows first"
        )
    return out


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _numbered(class_names: list[str]) -> np.ndarray | None:
    """The classes' numbers when every class name is an integer other than its own position
    (``p_1 .. p_5``), so that numeric labels name them; ``None`` otherwise (names ``0 .. K-1``
    agree with the class indices, and other names leave numbers to be indices)."""
    try:
        numbers = np.array([int(name) for name in class_names], dtype=np.int64)
    except ValueError:
        return None
    same = len(set(numbers.tolist())) == len(numbers)
    return None if not same or np.array_equal(numbers, np.arange(len(numbers))) else numbers


def labels_to_indices(
    values: np.ndarray,
    target: str,
    class_names: list[str],
    binary: bool,
    offset: int | tuple[int] = 0,
    columns: list[str] | None = None,
) -> np.ndarray:
    """Labels of one chunk as int64 class indices, with a one-line error naming the row."""
    n_classes = 2 if binary else len(class_names)
    kind = values.dtype.kind
    names = [name.strip().lower() for name in class_names]
    if kind == "b" and not binary and sorted(names) == ["false", "true"]:
        # predict_proba's columns for boolean classes (p_False, p_True), in either order
        return np.where(values, names.index("true"), names.index("false")).astype(np.int64)
    if kind == "b":
        if not binary:
            raise InputError(
                f"column {target!r} holds true/false labels but there are {n_classes} "
                f"prediction columns; true/false labels go with one (binary) prediction column"
            )
        return values.astype(np.int64)
    if kind in "iuf":
        values = np.asarray(values)
        missing = np.isnan(values) if kind == "f" else np.zeros(len(values), bool)
        if missing.any():
            i = int(np.argmax(missing))
            raise InputError(
                f"{_row(offset, i)}: column {target!r} holds a missing value (NaN); remove or "
                f"fill incomplete rows first"
            )
        with np.errstate(invalid="ignore"):  # labels beyond int64 are refused just below
            ints = values.astype(np.int64) if kind == "f" else values
        numbered = None if binary else _numbered(class_names)
        if numbered is not None:  # p_1 .. p_5 with labels 1 .. 5: the labels name the classes
            order = np.argsort(numbered)
            position = np.minimum(np.searchsorted(numbered[order], ints), n_classes - 1)
            bad = (ints != values) | (numbered[order][position] != ints)
            if bad.any():
                i = int(np.argmax(bad))
                raise InputError(
                    f"{_row(offset, i)}: label {values[i].item()!r} in column {target!r} names "
                    f"no prediction column (the classes are {_span(class_names)})"
                )
            return order[position].astype(np.int64)
        bad = (ints != values) | (ints < 0) | (ints >= n_classes)
        if bad.any():
            i = int(np.argmax(bad))
            classes = "0 or 1" if binary else f"0 .. {n_classes - 1}"
            what = (
                "one (binary) prediction column"
                if binary
                else f"{n_classes} prediction columns ({_span(class_names)})"
            )
            raise InputError(
                f"{_row(offset, i)}: label {values[i].item()!r} in column {target!r} does not "
                f"match the {what}: labels must be class indices {classes}"
            )
        return ints.astype(np.int64)
    # Text labels: names of the prediction columns or of their classes, or class indices
    # unless a name reads as one: labels "1", "2", "3" for columns prob_1 .. prob_3 are names
    # (read as indices where they could be, "1" and "2" had meant prob_2 and prob_3).
    lookup = {name: k for k, name in enumerate(class_names)}
    lookup.update({name: k for k, name in enumerate(columns or ())})
    if binary:
        lookup = {"false": 0, "true": 1, "False": 0, "True": 1}
    indices = {str(k): k for k in range(n_classes)}
    by_index = not (lookup.keys() & indices.keys())
    if by_index:
        lookup.update(indices)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            raise InputError(
                f"{_row(offset, i)}: column {target!r} holds a missing value; remove or fill "
                f"incomplete rows first"
            )
        text = str(v).strip()
        k = lookup.get(text)
        if k is None and by_index and isinstance(v, (int, np.integer)) and 0 <= v < n_classes:
            k = int(v)
        if k is None and by_index and _is_number(text) and float(text).is_integer():
            k = indices.get(str(int(float(text))))  # "1.0", as text-typed columns write 1
        if k is None:
            expected = "0/1 or true/false" if binary else ", ".join(class_names)
            raise InputError(
                f"{_row(offset, i)}: label {text!r} in column {target!r} matches no "
                f"prediction column (expected one of: {expected})"
            )
        out[i] = k
    return out


def _check_probabilities(
    pred: np.ndarray, columns: list[str], offset: int | tuple[int], told: bool
) -> None:
    """Every value in [0, 1] and, for several columns, every row summing to 1."""
    hint = "" if told else "; pass --logits if these are logits"
    outside = (pred < 0) | (pred > 1)
    if outside.any():
        i = int(np.argwhere(outside)[0][0])
        raise InputError(
            f"{_row(offset, i)}: probability outside [0, 1] in the prediction columns{hint}"
        )
    if pred.ndim == 2:
        off = np.abs(pred.sum(axis=1) - 1)
        bad = off > SUM_TOLERANCE
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"{_row(offset, i)}: the probabilities in columns {_span(columns)} sum to "
                f"{pred[i].sum():.6g}, not 1 (tolerance {SUM_TOLERANCE:.2g}){hint}"
            )


# Rows of probabilities must sum to 1 within sqrt(eps) of float32, the tolerance crossent's
# losses (and scikit-learn's log_loss) give float32 input: files and arrays of predictions
# often hold a float32 model's output, or text with 6-8 digits (a PyTorch float32 softmax of
# 5 classes, written by pandas, sums to 1 within 2e-7). The report divides such rows by their
# sums (crossent.report._Pass).
SUM_TOLERANCE = float(np.finfo(np.float32).eps) ** 0.5


def _expand(spec: str, table: Table, option: str) -> list[str]:
    """Comma-separated column names, 2-D ``.npz`` array names or shell patterns, in order."""
    out: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item in table.groups:
            found = table.groups[item]
        elif item in table.columns:
            found = [item]
        else:
            found = fnmatch.filter(table.columns, item)
            if not found:
                raise InputError(
                    f"{option}: no column {item!r} in {table.path} (columns: "
                    f"{_listing(table.columns)})"
                )
        out.extend(c for c in found if c not in out)
    if not out:
        raise InputError(f"{option}: no columns given")
    return out


def _listing(columns: list[str]) -> str:
    return ", ".join(columns[:12]) + (" ..." if len(columns) > 12 else "")


def _class_names(columns: list[str]) -> list[str]:
    """Class names behind prediction columns: the names less a common prefix such as ``p_``.

    The prefix ends at a separator (``p_cat, p_dog -> cat, dog``), never inside a word or
    number.
    """
    if len(columns) < 2:
        return columns
    prefix = os.path.commonprefix(columns)  # noqa: RUF071 (character prefix is meant)
    cut = max((i + 1 for i, ch in enumerate(prefix) if not ch.isalnum()), default=0)
    names = [c[cut:].rstrip("]") for c in columns]
    if all(names) and len(set(names)) == len(names):
        return names
    return columns


def resolve(
    table: Table,
    *,
    target: str | None = None,
    pred: str | None = None,
    logits: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Predictions:
    """Choose the columns and detect what they hold (reads the first chunk only)."""
    if pred is not None and logits is not None:
        raise InputError("--pred and --logits exclude each other: give one of them")
    if target is None and table.format == "npy":
        target = "0"
    if target is None:
        found = [c for c in table.columns if c.lower() in TARGET_NAMES]
        if not found:
            raise InputError(
                f"{table.path}: no target column (looked for {', '.join(TARGET_NAMES)}); "
                f"name it with --target COL"
                + (
                    "; the header holds ';': only commas (tabs in .tsv files) separate columns"
                    if table.format == "csv" and any(";" in c for c in table.columns)
                    else ""
                )
            )
        target = found[0]
    elif target not in table.columns:
        raise InputError(
            f"--target: no column {target!r} in {table.path} (columns: {_listing(table.columns)})"
        )
    spec = pred if pred is not None else logits
    ignored: list[str] = []
    if spec is not None:
        columns = _expand(spec, table, "--pred" if pred is not None else "--logits")
        if target in columns:
            raise InputError(f"the target column {target!r} cannot also be a prediction column")
    else:
        ignored = [c for c in table.columns if c != target and INDEX_NAMES.fullmatch(c)]
        columns = [c for c in table.columns if c != target and c not in ignored]
        if not columns:
            raise InputError(f"{table.path}: no prediction columns besides {target!r}")
    predictions = Predictions(
        table,
        target,
        columns,
        from_logits=logits is not None,
        detected=spec is None,
        # an .npy's columns are positions in the file, not names: its classes are indices
        class_names=(
            [str(k) for k in range(len(columns))]
            if table.format == "npy"
            else _class_names(columns)
        ),
        ignored=ignored if spec is None else [],
    )
    if spec is None:
        with contextlib.closing(table.chunks(columns, DETECTION_ROWS)) as chunks:
            raw, _ = next(chunks, ({}, 0))  # closing the generator closes its file
        if not raw:
            raise InputError(f"{table.path}: no rows to evaluate")
        for c in columns:
            if raw[c].dtype.kind not in "biuf" and not all(_is_number(v) for v in raw[c][:100]):
                raise InputError(
                    f"column {c!r} is not numeric; choose the prediction columns with --pred "
                    f"or --logits"
                )
        sample = _numeric(raw, columns, 0)
        predictions.from_logits = looks_like_logits(sample)
    return predictions


def looks_like_logits(
    sample: np.ndarray, hint: str = "say what they are with --pred (probabilities) or --logits"
) -> bool:
    """Probabilities if every value is in [0, 1] and (several columns) rows sum to 1.

    Logits if some value is outside [0, 1]; values in [0, 1] whose rows do not sum to 1 are
    refused (``hint`` says how to settle it).
    """
    if ((sample < 0) | (sample > 1)).any():
        return True
    if sample.shape[1] == 1:
        return False
    off = np.abs(sample.sum(axis=1) - 1)
    if (off <= SUM_TOLERANCE).all():
        return False
    raise InputError(
        f"the prediction columns hold values in [0, 1] whose rows do not sum to 1 (worst off by "
        f"{off.max():.3g}); {hint}"
    )
