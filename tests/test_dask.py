"""crossent.dask on a local distributed cluster: equal to the NumPy path on uneven partitions."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

import _report_reference as reference  # noqa: E402
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402

import crossent  # noqa: E402
from crossent import dask as ce_dask  # noqa: E402
from crossent.cli import main  # noqa: E402
from crossent.report import evaluate  # noqa: E402

UNEVEN = (1, 13, 500, 86, 250, 3, 147)  # 1000 rows in 7 very different partitions


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def data(kind: str, space: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return reference.sample(kind, space, sum(UNEVEN), seed, n_classes=5, binary_scale=2.5)


CASES = reference.CASES


@pytest.mark.parametrize(("kind", "space"), CASES)
def test_dask_arrays_equal_numpy(client, kind: str, space: str) -> None:
    y, pred = data(kind, space)
    chunks = (UNEVEN,) if pred.ndim == 1 else (UNEVEN, (2, 3))  # classes split too
    y_dask = da.from_array(y, chunks=((400, 600),))  # labels chunked differently
    report = ce_dask.evaluate(y_dask, da.from_array(pred, chunks=chunks), n_bootstrap=0)
    expected = evaluate(y, pred, n_bootstrap=0)
    reference.assert_close(report.to_dict(), expected.to_dict())
    reference.assert_close(report.to_dict(), reference.report(y, pred, space == "logits"))


def test_bootstrap_on_dask_keeps_the_values(client) -> None:
    y, z = data("multiclass", "logits", seed=2)
    report = ce_dask.evaluate(y, da.from_array(z, chunks=(UNEVEN, 5)), n_bootstrap=30)
    numpy_report = evaluate(y, z, n_bootstrap=30)
    for which in ("before", "after"):
        ours, theirs = getattr(report, which), getattr(numpy_report, which)
        for metric in ("brier_score", "ece_top_label", "ece_classwise"):
            a, b = getattr(ours, metric), getattr(theirs, metric)
            assert a.value == pytest.approx(b.value, rel=1e-12, abs=1e-15)
            # other draws (one seed per partition), the same sampling distribution
            assert a.low < a.high and a.low < b.high and b.low < a.high
    again = ce_dask.evaluate(y, da.from_array(z, chunks=(UNEVEN, 5)), n_bootstrap=30)
    assert again.to_dict() == report.to_dict()  # reproducible for a given partitioning


def test_dask_dataframe_with_text_labels(client) -> None:
    y, p = data("multiclass", "probabilities", seed=4)
    names = np.array(["a", "b", "c", "d", "e"])
    frame = pd.DataFrame({"label": names[y], **{f"p_{n}": p[:, k] for k, n in enumerate(names)}})
    bounds = np.cumsum((0, *UNEVEN))
    df = dd.from_pandas(frame, npartitions=1).repartition(divisions=[*bounds[:-1].tolist(), 999])
    assert df.npartitions == len(UNEVEN)
    columns = [f"p_{n}" for n in names]
    report = ce_dask.evaluate_dataframe(df, target="label", columns=columns, n_bootstrap=0)
    reference.assert_close(report.to_dict(), reference.report(y, p, False))
    whole = ce_dask.evaluate_dataframe(frame, target="label", columns=columns, n_bootstrap=0)
    reference.assert_close(whole.to_dict(), report.to_dict())


def test_empty_partitions_and_chunks_are_skipped(client) -> None:
    # a filter leaves empty partitions: they had failed the whole evaluation
    y, z = data("multiclass", "logits", seed=8)
    frame = pd.DataFrame(z, columns=[f"z{k}" for k in range(5)]).assign(y=y, i=np.arange(len(y)))
    df = dd.from_pandas(frame, npartitions=4)
    columns = [f"z{k}" for k in range(5)]
    kept = ce_dask.evaluate_dataframe(df[df.i < 600], target="y", columns=columns, n_bootstrap=0)
    reference.assert_close(kept.to_dict(), evaluate(y[:600], z[:600], n_bootstrap=0).to_dict())
    chunks = ((500, 0, 500), (5,))
    report = ce_dask.evaluate(
        da.from_array(y, chunks=chunks[:1]), da.from_array(z, chunks=chunks), n_bootstrap=0
    )
    reference.assert_close(report.to_dict(), evaluate(y, z, n_bootstrap=0).to_dict())
    with pytest.raises(ValueError, match="every partition is empty"):
        ce_dask.evaluate_dataframe(df[df.i < 0], target="y", columns=columns, n_bootstrap=0)


def test_clear_errors_for_dask_inputs(client) -> None:
    y, z = data("multiclass", "logits", seed=9)
    frame = pd.DataFrame(z, columns=list("abcde")).assign(y=y)
    df = dd.from_pandas(frame, npartitions=4)
    # unknown chunk sizes had met "y_true has shape (nan,); expected (nan,)"
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        ce_dask.evaluate(df["y"].to_dask_array(), df[list("abcde")].to_dask_array())
    # a bad value found while detecting logits had been placed in partition 0
    bad = frame.copy()
    bad.loc[len(bad) - 5, "b"] = np.nan
    with pytest.raises(ValueError, match=r"partition 3, row \d+: column 'b' holds a missing"):
        ce_dask.evaluate_dataframe(
            dd.from_pandas(bad, npartitions=4), target="y", columns=list("abcde")
        )
    # these had been a broadcasting error and an IndexError
    with pytest.raises(ValueError, match="also one of the prediction columns"):
        ce_dask.evaluate_dataframe(df, target="a", columns=list("abcde"))
    with pytest.raises(ValueError, match="columns must name"):
        ce_dask.evaluate_dataframe(df, target="y", columns=[])
    # a Generator seeds the bootstrap, as in the NumPy path (SeedSequence had refused it)
    z_dask = da.from_array(z, chunks=(UNEVEN, 5))
    by_generator = ce_dask.evaluate(y, z_dask, n_bootstrap=5, random_state=np.random.default_rng(3))
    by_int = ce_dask.evaluate(y, z_dask, n_bootstrap=5, random_state=3)
    assert (by_generator.before, by_generator.after) == (by_int.before, by_int.after)


def test_npz_blocks_are_read_without_decompressing_whole_members(tmp_path, monkeypatch) -> None:
    # each block had loaded its members whole, once per column: for 3000 rows in blocks of 500
    # and 3 columns, 18 times the member per pass
    rng = np.random.default_rng(10)
    z, y = rng.normal(size=(3000, 3)), rng.integers(0, 3, 3000)
    path = str(tmp_path / "scores.npz")
    np.savez_compressed(path, z=z, y=y)

    def whole(*args, **kwargs):
        raise AssertionError("a whole .npz member was decompressed")

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", whole)
    for start in (0, 1500, 2900):
        rows = ce_dask._read_rows(path, "npz", ["y", "z[0]", "z[2]"], start, 500)
        np.testing.assert_array_equal(rows["y"], y[start : start + 500])
        np.testing.assert_array_equal(rows["z[2]"], z[start : start + 500, 2])


def test_merging_sums_not_averaging_means(client) -> None:
    """The dask_ml.metrics.log_loss mistake: the mean of per-partition means is not the mean."""
    y, z = data("binary", "logits", seed=6)
    report = ce_dask.evaluate(y, da.from_array(z, chunks=(UNEVEN,)), n_bootstrap=0)
    bounds = np.cumsum((0, *UNEVEN))
    means = [
        crossent.binary_cross_entropy(y[a:b], z[a:b], from_logits=True)
        for a, b in itertools.pairwise(bounds)
    ]
    exact = float(crossent.binary_cross_entropy(y, z, from_logits=True))
    assert report.before.cross_entropy_nats == pytest.approx(exact, rel=1e-12)
    assert abs(float(np.mean(means)) - exact) > 1e-3


def test_command_line_on_the_cluster(client, tmp_path) -> None:
    y, z = data("multiclass", "logits", seed=8)
    frame = pd.DataFrame({"y": y, **{f"z{k}": z[:, k] for k in range(5)}})
    path = str(tmp_path / "scores.parquet")
    frame.to_parquet(path, row_group_size=128)
    npy = str(tmp_path / "scores.npy")
    np.save(npy, np.column_stack([y, z]))
    expected = reference.report(y, z, True)
    address = client.scheduler.address
    for args in (
        [path, "--target", "y", "--dask", address],
        [npy, "--chunk-rows", "111", "--dask", address],
        [npy, "--dask"],  # a local cluster of its own
    ):
        out = str(tmp_path / "r.json")
        status = main(["report", *args, "-q", "--bootstrap", "0", "--json", out])
        assert status == 0
        with open(out) as f:
            reference.assert_close(json.load(f), expected)


def test_unreachable_scheduler_is_one_line(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ce_dask, "CONNECT_TIMEOUT", "1s")
    path = str(tmp_path / "s.csv")
    pd.DataFrame({"y": [0, 1], "p": [0.2, 0.7]}).to_csv(path, index=False)
    assert main(["report", path, "--dask", "tcp://127.0.0.1:9", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Dask scheduler" in err[0]


def test_nan_in_the_detection_sample_is_named() -> None:
    # the sample that tells probabilities from logits had not been checked: "rows do not sum
    # to 1 (worst off by nan)"
    p = np.full((4, 3), 1 / 3)
    p[2, 1] = np.nan
    with pytest.raises(ValueError, match="y_pred contains NaN or infinity"):
        ce_dask.evaluate(da.from_array(np.array([0, 1, 2, 0])), da.from_array(p), n_bootstrap=0)


def test_command_line_errors_on_dask_are_one_line_in_its_words(tmp_path, capsys) -> None:
    # the command line had shown the Python API's ValueError (with "from_logits=True") as an
    # unexpected error, after a worker's traceback
    from crossent.cli import main

    path = tmp_path / "oob.csv"
    path.write_text("label,p_0,p_1,p_2\n0,0.2,0.3,0.5\n3,0.5,0.5,0\n")
    status = main(["report", str(path), "-q", "--bootstrap", "0", "--dask", "local"])
    err = capsys.readouterr().err
    assert status == 1
    assert "crossent report: error: partition 0, row 2: label 3" in err
    assert "Traceback" not in err and "CROSSENT_DEBUG" not in err
