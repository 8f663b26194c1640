"""Prediction files: the readers (chunks equal the whole file) and column detection."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from crossent import _tables  # noqa: E402


def frame(n: int = 53) -> object:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=n)
    return pd.DataFrame(
        {"target": rng.integers(0, 3, n), "p_a": p[:, 0], "p_b": p[:, 1], "p_c": p[:, 2]}
    )


def read_all(path: str, chunk_rows: int, **options: str) -> tuple[np.ndarray, np.ndarray, int]:
    predictions = _tables.resolve(_tables.open_table(path, options.pop("format", None)), **options)
    chunks = list(predictions.chunks(chunk_rows))
    y = np.concatenate([c.y for c in chunks])
    pred = np.concatenate([c.pred for c in chunks])
    assert [c.offset for c in chunks] == list(range(0, len(y), chunk_rows))
    return y, pred, len(chunks)


def test_every_format_reads_the_same_rows_in_any_chunking(tmp_path) -> None:
    df = frame()
    expected_y, expected_p = df["target"].to_numpy(), df[["p_a", "p_b", "p_c"]].to_numpy()
    csv = str(tmp_path / "f.csv")
    df.to_csv(csv, index=False, float_format="%.17g")
    tsv = str(tmp_path / "f.tsv")
    df.to_csv(tsv, index=False, sep="\t", float_format="%.17g")
    gz = str(tmp_path / "f.csv.gz")
    with open(csv, "rb") as src, gzip.open(gz, "wb") as dst:
        dst.write(src.read())
    txt = str(tmp_path / "f.txt")
    df.to_csv(txt, index=False, float_format="%.17g")
    parquet = str(tmp_path / "f.parquet")
    df.to_parquet(parquet, row_group_size=10)
    npy = str(tmp_path / "f.npy")
    np.save(npy, df.to_numpy())
    npz = str(tmp_path / "f.npz")
    np.savez_compressed(npz, target=expected_y, probs=expected_p)
    cases = [
        (csv, {}),
        (tsv, {}),
        (gz, {}),
        (txt, {"format": "csv"}),
        (parquet, {}),
        (npy, {"pred": "1,2,3"}),
        (npz, {"pred": "probs"}),
    ]
    for path, options in cases:
        for chunk_rows in (7, 53, 1000):
            y, p, n_chunks = read_all(path, chunk_rows, **options)
            np.testing.assert_array_equal(y, expected_y)
            np.testing.assert_array_equal(p, expected_p)
            assert n_chunks == -(-53 // chunk_rows)


def test_npz_is_decompressed_chunk_by_chunk(tmp_path) -> None:
    path = str(tmp_path / "big.npz")
    z = np.arange(30_000.0).reshape(10_000, 3)
    np.savez_compressed(path, y=np.arange(10_000) % 3, z=z)
    table = _tables.open_table(path)
    assert table.groups == {"z": ["z[0]", "z[1]", "z[2]"]}
    sizes = [len(raw["z[1]"]) for raw, _ in table.chunks(["y", "z[1]"], 999)]
    assert sizes == [999] * 10 + [10]


def test_class_names_strip_a_prefix_at_a_separator() -> None:
    assert _tables._class_names(["p_cat", "p_dog"]) == ["cat", "dog"]
    assert _tables._class_names(["prob:0", "prob:1", "prob:2"]) == ["0", "1", "2"]
    assert _tables._class_names(["p10", "p11"]) == ["p10", "p11"]  # never inside a number
    assert _tables._class_names(["z[0]", "z[1]"]) == ["0", "1"]


def test_labels_by_name_index_or_truth_value() -> None:
    names, columns = ["cat", "dog", "cow"], ["p_cat", "p_dog", "p_cow"]
    values = np.array(["dog", "p_cow", "0", 2], dtype=object)
    got = _tables.labels_to_indices(values, "y", names, binary=False, columns=columns)
    np.testing.assert_array_equal(got, [1, 2, 0, 2])
    got = _tables.labels_to_indices(np.array([True, False]), "y", ["p"], binary=True)
    np.testing.assert_array_equal(got, [1, 0])
    got = _tables.labels_to_indices(np.array([1.0, 0.0]), "y", ["p"], binary=True)
    np.testing.assert_array_equal(got, [1, 0])
    with pytest.raises(_tables.InputError, match=r"row 2: label 0.5"):
        _tables.labels_to_indices(np.array([1.0, 0.5]), "y", ["p"], binary=True)


def test_text_labels_that_name_classes_are_not_read_as_indices() -> None:
    # "1", "2", "3" for prob_1 .. prob_3 had mixed the two readings: "1" and "2" as class
    # indices (prob_2 and prob_3), "3" as a name (prob_3), so "2" and "3" met in one class
    names, columns = ["1", "2", "3"], ["prob_1", "prob_2", "prob_3"]
    values = np.array(["1", "2", "3", "prob_2"], dtype=object)
    got = _tables.labels_to_indices(values, "y", names, binary=False, columns=columns)
    np.testing.assert_array_equal(got, [0, 1, 2, 1])
    for label in ("0", 0):  # an index only, here: refused rather than guessed
        with pytest.raises(_tables.InputError, match="matches no prediction column"):
            _tables.labels_to_indices(np.array([label], dtype=object), "y", names, False, 0)


def test_numeric_labels_name_numbered_classes() -> None:
    # p_1 .. p_3 with labels 1 .. 3 (ratings, say): the labels had been read as class
    # indices, 1 and 2 meaning p_2 and p_3, silently, when no label 3 occurred
    columns = ["p_3", "p_1", "p_2"]
    names = _tables._class_names(columns)
    got = _tables.labels_to_indices(np.array([1, 2, 3.0]), "y", names, binary=False)
    np.testing.assert_array_equal(got, [1, 2, 0])
    with pytest.raises(_tables.InputError, match="label 0 in column 'y' names no prediction"):
        _tables.labels_to_indices(np.array([1, 0]), "y", names, binary=False)
    # names 0 .. K-1 are the indices themselves; other names leave numbers to be indices
    for names in (["0", "1", "2"], ["cat", "dog", "cow"]):
        got = _tables.labels_to_indices(np.array([2, 0]), "y", names, binary=False)
        np.testing.assert_array_equal(got, [2, 0])


def test_parquet_nulls_are_reported_by_row(tmp_path) -> None:
    df = frame().astype({"p_b": "float64"})
    df.loc[12, "p_b"] = None
    path = str(tmp_path / "nulls.parquet")
    df.to_parquet(path)
    with pytest.raises(_tables.InputError, match=r"row 13: column 'p_b' holds a missing value"):
        read_all(path, 5)


def test_index_columns_are_not_predictions(tmp_path) -> None:
    path = str(tmp_path / "with_index.csv")
    frame().to_csv(path)  # pandas writes its index as an unnamed first column
    predictions = _tables.resolve(_tables.open_table(path))
    assert predictions.pred_columns == ["p_a", "p_b", "p_c"]
    assert predictions.ignored == ["Unnamed: 0"]
    assert "ignored: Unnamed: 0" in predictions.describe()
    told = _tables.resolve(_tables.open_table(path), pred="Unnamed: 0,p_a,p_b")
    assert told.pred_columns[0] == "Unnamed: 0" and told.ignored == []


def test_boolean_labels_name_false_and_true_columns_and_text_numbers_are_indices() -> None:
    # predict_proba's columns for boolean classes (p_False, p_True) had refused bool labels,
    # and text labels "1.0" (a text-typed column of 1.0) had matched no column
    for names in (["False", "True"], ["True", "False"]):
        got = _tables.labels_to_indices(np.array([True, False, True]), "y", names, False)
        yes, no = names.index("True"), names.index("False")
        np.testing.assert_array_equal(got, [yes, no, yes])
    values = np.array(["1.0", "0.0", " 2 "], dtype=object)
    got = _tables.labels_to_indices(values, "y", ["a", "b", "c"], binary=False)
    np.testing.assert_array_equal(got, [1, 0, 2])
    got = _tables.labels_to_indices(np.array(["1.0", "0"], dtype=object), "y", ["p"], True)
    np.testing.assert_array_equal(got, [1, 0])
    with pytest.raises(_tables.InputError, match="matches no prediction column"):
        _tables.labels_to_indices(np.array(["1.5"], dtype=object), "y", ["p"], True)


def test_compressed_text_files_are_detected_by_their_inner_name() -> None:
    for name in ("a.tsv.gz", "a.TSV.BZ2", "a.csv.xz", "a.tsv.zst", "a.csv"):
        assert _tables.detect_format(name) == "csv"
    with pytest.raises(_tables.InputError, match="cannot tell the format"):
        _tables.detect_format("a.txt.gz")
