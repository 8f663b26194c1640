"""The ``crossent`` command end to end: the installed command on generated files, errors, help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.optimize
import scipy.special

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
pytest.importorskip("rich")
pytest.importorskip("matplotlib")

import _report_reference as reference  # noqa: E402

import crossent  # noqa: E402
from crossent import _tables  # noqa: E402
from crossent.cli import main  # noqa: E402

N = 1000
CHUNK = 97  # 11 chunks of a 1000-row file
NAMES = np.array(["cat", "dog", "cow", "pig"])


def _command_env() -> dict[str, str]:
    """The environment for the command: importing the crossent these tests import."""
    src = os.path.dirname(os.path.dirname(crossent.__file__))
    env = dict(os.environ)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_command(*args: str, console_script: bool = False) -> subprocess.CompletedProcess:
    command = ["crossent"] if console_script else [sys.executable, "-m", "crossent"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=_command_env(), timeout=120
    )


def data(kind: str, space: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return reference.sample(kind, space, N, seed, binary_scale=2.5, binary_temperature=1.7)


def frame(y: np.ndarray, pred: np.ndarray, space: str, text_labels: bool = False) -> object:
    prefix = "logit" if space == "logits" else "p"
    if pred.ndim == 1:
        return pd.DataFrame({"label": y, f"{prefix}": pred})
    columns = {f"{prefix}_{name}": pred[:, k] for k, name in enumerate(NAMES)}
    return pd.DataFrame({"label": NAMES[y] if text_labels else y, **columns})


def write(df: object, path: str) -> None:
    if path.endswith(".csv"):
        df.to_csv(path, index=False, float_format="%.17g")
    else:
        df.to_parquet(path)


FILES = [
    # (file name, kind, space, extra options)
    ("binary_probs.csv", "binary", "probabilities", []),
    ("multi_logits.csv", "multiclass", "logits", ["--chunk-rows", str(CHUNK)]),
    ("binary_logits.parquet", "binary", "logits", ["--chunk-rows", str(CHUNK)]),
    ("multi_probs.parquet", "multiclass", "probabilities", []),
]


@pytest.mark.parametrize(("name", "kind", "space", "options"), FILES)
def test_installed_command_matches_library(tmp_path, name, kind, space, options) -> None:
    y, pred = data(kind, space, seed=len(name))
    path = str(tmp_path / name)
    write(frame(y, pred, space, text_labels=name.startswith("multi_logits")), path)
    if options:  # the file really is read in at least 10 chunks
        chunks = _tables.resolve(_tables.open_table(path)).chunks(CHUNK)
        assert sum(1 for _ in chunks) >= 10
    out = str(tmp_path / "report.json")
    done = run_command("report", path, "--json", out, "--bootstrap", "25", "--seed", "7", *options)
    assert done.returncode == 0, done.stderr
    assert "detected:" in done.stdout and ("binary" if kind == "binary" else "4 classes") in (
        done.stdout
    )
    with open(out) as f:
        report = json.load(f)
    expected = reference.report(y, pred, space == "logits", n_bootstrap=25, random_state=7)
    reference.assert_close(report, expected)
    reference.assert_close(report["before"], reference.by_hand(y, pred, space == "logits"))


def test_console_script_if_installed(tmp_path) -> None:
    if shutil.which("crossent") is None:
        pytest.skip("the crossent console script is not on PATH (package not installed)")
    y, pred = data("binary", "logits", seed=3)
    path = str(tmp_path / "scores.csv")
    write(frame(y, pred, "logits"), path)
    done = run_command("report", path, "--json", "-", "-q", "--bootstrap", "0", console_script=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == N and report["input"] == "logits"


def test_numpy_files_and_plot(tmp_path, capsys) -> None:
    y, z = data("multiclass", "logits", seed=11)
    npy, npz = str(tmp_path / "m.npy"), str(tmp_path / "m.npz")
    np.save(npy, np.column_stack([y, z]))
    np.savez_compressed(npz, labels=y, logits=z)
    expected = reference.report(y, z, True)
    for args in (
        [npy, "--chunk-rows", "150"],
        [npz, "--target", "labels", "--logits", "logits", "--chunk-rows", "150"],
    ):
        out = str(tmp_path / "r.json")
        plot = str(tmp_path / "r.png")
        assert main(["report", *args, "--bootstrap", "0", "--json", out, "--plot", plot]) == 0
        with open(out) as f:
            reference.assert_close(json.load(f), expected)
        with open(plot, "rb") as f:
            assert f.read(4) == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "as told: multiclass, 4 classes" in printed  # --logits given for the npz
    assert "detected: multiclass, 4 classes" in printed  # detected for the npy


def _bad_files(tmp_path) -> dict[str, str]:
    y, p = data("multiclass", "probabilities", seed=5)
    good = frame(y, p, "probabilities")
    paths = {}

    def save(name: str, df: object) -> None:
        paths[name] = str(tmp_path / name)
        write(df, paths[name])

    save("good.csv", good)
    nan_pred = good.copy()
    nan_pred.loc[41, "p_dog"] = np.nan
    save("nan_pred.csv", nan_pred)
    nan_label = good.copy().astype({"label": float})
    nan_label.loc[8, "label"] = np.nan
    save("nan_label.parquet", nan_label)
    out_of_range = good.copy()
    out_of_range.loc[3, "label"] = 4
    save("label4.csv", out_of_range)
    text = good.copy().astype({"label": object})
    text.loc[5, "label"] = "horse"
    save("horse.csv", text)
    words = good.copy().astype({"p_cow": object})
    words.loc[2, "p_cow"] = "high"
    save("words.csv", words)
    save("unnormalised.csv", good.assign(p_cat=good["p_cat"] * 0.5))
    save("no_target.csv", good.rename(columns={"label": "truth"}))
    (tmp_path / "garbage.parquet").write_bytes(b"not a parquet file")
    paths["garbage.parquet"] = str(tmp_path / "garbage.parquet")
    (tmp_path / "empty.csv").write_text("label,p\n")
    paths["empty.csv"] = str(tmp_path / "empty.csv")
    (tmp_path / "data.txt").write_text("label,p\n1,0.5\n")
    paths["data.txt"] = str(tmp_path / "data.txt")
    (tmp_path / "semicolons.csv").write_text("label;p\n1;0.5\n")
    paths["semicolons.csv"] = str(tmp_path / "semicolons.csv")
    return paths


ERRORS = [
    (["missing.csv"], "missing.csv: no such file"),
    (["good.csv", "--target", "truth"], "--target: no column 'truth'"),
    (["good.csv", "--pred", "p_cat,p_emu"], "--pred: no column 'p_emu'"),
    (["no_target.csv"], "no target column"),
    (["nan_pred.csv"], "row 42: column 'p_dog' holds a missing value (NaN)"),
    (["nan_label.parquet"], "row 9: column 'label' holds a missing value"),
    (["label4.csv"], "row 4: label 4 in column 'label' does not match the 4 prediction columns"),
    (["horse.csv"], "row 6: label 'horse' in column 'label' matches no prediction column"),
    (["good.csv", "--pred", "p_cat,p_dog"], "does not match the 2 prediction columns (cat, dog)"),
    (["good.csv", "--pred", "p_cat"], "does not match the one (binary) prediction column"),
    (["words.csv"], "column 'p_cow' is not numeric"),
    (["unnormalised.csv"], "do not sum to 1"),
    (["unnormalised.csv", "--pred", "p_*"], "sum to"),
    (["garbage.parquet"], "cannot be read as parquet"),
    (["empty.csv"], "no rows to evaluate"),
    (["data.txt"], "pass --format"),
    # checked only after the whole evaluation, and with no word about the separator
    (["good.csv", "--json", "no/such/folder/r.json"], "--json no/such/folder/r.json: no folder"),
    (["semicolons.csv"], "the header holds ';': only commas"),
]


@pytest.mark.parametrize(("args", "message"), ERRORS, ids=[e[1][:30] for e in ERRORS])
def test_errors_are_one_clear_line(tmp_path, capsys, monkeypatch, args, message) -> None:
    paths = _bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    status = main(["report", *[paths.get(a, a) for a in args], "-q", "--bootstrap", "0"])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("crossent report: error: ")
    assert message in lines[0]
    assert "Traceback" not in captured.err


def test_error_in_a_real_process_has_no_traceback(tmp_path) -> None:
    done = run_command("report", str(tmp_path / "nothing.parquet"))
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == f"crossent report: error: {tmp_path / 'nothing.parquet'}: no such file"
    )


def test_bad_command_lines_exit_2(capsys) -> None:
    for argv in (["report"], ["report", "x.csv", "--pred", "a", "--logits", "b"], ["frobnicate"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert main([]) == 2  # no command: the overview, status 2
    assert "usage: crossent" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["report"], ["demo"], ["tour"]])
def test_help_reads_like_a_unix_tool(capsys, command) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: crossent")
    assert max(len(line) for line in text.splitlines()) <= 100
    if command in ([], ["report"]):
        assert "examples:" in text


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, crossent.cli; crossent.cli.build_parser(); "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'rich', 'matplotlib', 'dask', "
        "'sklearn', 'crossent.calibration') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_command_env()
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_tour_command(capsys) -> None:
    assert main(["tour"]) == 0
    out = capsys.readouterr().out
    assert "Slide 10. Binary focal loss" in out and "Q&A. Categorical example" in out


def test_demo_writes_predictions_report_and_plot(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "detected: multiclass, 10 classes (logit_0 .. logit_9), logits" in printed
    frame_ = pd.read_csv(out / "predictions.csv", **_tables.exact_floats())
    y = frame_["label"].to_numpy()
    z = frame_[[f"logit_{k}" for k in range(10)]].to_numpy()
    with open(out / "report.json") as f:
        report = json.load(f)
    expected = reference.report(y, z, True, n_bootstrap=200, random_state=0)
    reference.assert_close(report, expected)
    assert report["before"]["accuracy"] > 0.9  # a good model ...
    assert report["temperature"] > 1.5  # ... and an over-confident one
    assert (out / "reliability.png").read_bytes()[:4] == b"\x89PNG"


def test_binary_logits_all_in_unit_interval_streamed_as_logits(tmp_path) -> None:
    """Told --logits, a binary file whose every chunk lies in [0, 1] is scaled as logits."""
    rng = np.random.default_rng(13)
    z = rng.uniform(size=N)
    y = (rng.random(N) < scipy.special.expit(4 * z - 1)).astype(np.int64)
    path = str(tmp_path / "unit_logits.csv")
    write(frame(y, z, "logits"), path)
    out = str(tmp_path / "r.json")
    args = ["report", path, "--logits", "logit", "--chunk-rows", str(CHUNK), "--bootstrap", "0"]
    assert main([*args, "--json", out, "-q"]) == 0
    with open(out) as f:
        report = json.load(f)

    def nll(u: float) -> float:  # binary NLL of z / T, T = exp(u), by hand
        s = z / np.exp(u)
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    best = scipy.optimize.minimize_scalar(nll, bounds=(-5, 5), method="bounded")
    assert report["input"] == "logits"
    assert report["temperature"] == pytest.approx(np.exp(best.x), rel=1e-5)
    assert report["before"]["cross_entropy_nats"] == pytest.approx(nll(0.0), rel=1e-12)


def test_json_to_stdout_keeps_the_table_on_stderr(tmp_path, capsys) -> None:
    y, pred = data("binary", "probabilities", seed=9)
    path = str(tmp_path / "scores.csv")
    write(frame(y, pred, "probabilities"), path)
    assert main(["report", path, "--json", "-", "--bootstrap", "0"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    reference.assert_close(report, reference.report(y, pred, False))
    assert "accuracy" in captured.err and "detected: binary" in captured.err


def test_json_is_strict_and_two_columns_are_not_called_multiclass(tmp_path, capsys) -> None:
    # one row: every bootstrap replicate may draw none, and the interval is undefined; the
    # JSON had held NaN, which strict parsers refuse
    path = tmp_path / "one.csv"
    path.write_text("label,a,b\n0,2.0,-1.0\n")
    args = ["report", str(path), "--bootstrap", "1", "--seed", "2", "--json", "-"]
    assert main(args) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out, parse_constant=lambda c: pytest.fail(f"JSON holds {c}"))
    assert report["before"]["brier_score"]["low"] is None
    assert report["kind"] == "binary" and "detected: 2 classes (a, b), logits" in captured.err


@pytest.mark.parametrize("written", ["float32", "6 digits"])
def test_probabilities_of_limited_precision_are_read_and_renormalised(tmp_path, capsys, written):
    # A float32 model's probabilities, or text with 6 digits, sum to 1 within ~1e-6, not the
    # 1.5e-8 of float64; they were refused, even with --pred.
    y, p = data("multiclass", "probabilities", seed=3)
    df = frame(y, p, "probabilities")
    path = str(tmp_path / "p.csv")
    if written == "float32":
        df.astype({c: np.float32 for c in df.columns if c.startswith("p_")}).to_csv(
            path, index=False
        )
    else:
        df.to_csv(path, index=False, float_format="%.6f")
    read = pd.read_csv(path)
    given = read[[c for c in read.columns if c.startswith("p_")]].to_numpy()
    assert np.abs(given.sum(axis=1) - 1).max() > 1e-8  # beyond float64's tolerance
    expected = reference.report(y, given / given.sum(axis=1, keepdims=True), False)
    for extra in ([], ["--pred", "p_*"]):
        out = str(tmp_path / "r.json")
        assert main(["report", path, *extra, "--bootstrap", "0", "--json", out]) == 0
        with open(out) as f:
            reference.assert_close(json.load(f), expected)
    assert "detected: multiclass, 4 classes" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("sign", "message"),
    [
        (1, "where the NLL vanished: the predictions separate"),
        (-1, "at its bound: the predictions"),
    ],
)
def test_a_temperature_at_its_bound_is_explained(tmp_path, capsys, sign, message) -> None:
    # Logits that separate the classes drive T to 0, logits that point away from the labels to
    # infinity; the fit stops where the NLL vanishes or at the bound, which the caption says
    # instead of calling the model over- or under-confident.
    y = np.arange(60) % 4
    z = sign * 5.0 * np.eye(4)[y]
    path = str(tmp_path / "z.csv")
    write(frame(y, z, "logits"), path)
    assert main(["report", path, "--bootstrap", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert message in out
    assert "confident" not in out


def test_rereading_the_file_equals_keeping_it_in_memory(tmp_path, monkeypatch) -> None:
    """Small files are kept between passes; larger ones are read again: the same numbers."""
    from crossent import _report_cli

    y, z = data("multiclass", "logits", seed=12)
    path = str(tmp_path / "z.parquet")
    write(frame(y, z, "logits"), path)
    reads = []
    original = _tables.Predictions.chunks

    def counted(self, chunk_rows):
        reads.append(chunk_rows)
        return original(self, chunk_rows)

    monkeypatch.setattr(_tables.Predictions, "chunks", counted)
    reports = []
    for budget in (2**30, 0):
        monkeypatch.setattr(_report_cli, "_cache_budget", lambda budget=budget: budget)
        reads.clear()
        out = str(tmp_path / f"r{budget}.json")
        args = ["report", path, "-q", "--chunk-rows", str(CHUNK), "--bootstrap", "20"]
        assert main([*args, "--json", out]) == 0
        with open(out) as f:
            reports.append(json.load(f))
        if budget:
            assert len(reads) == 1  # one read; the later passes use the rows kept
        else:
            assert len(reads) > 4  # metrics, every Newton step, metrics after scaling
    assert reports[0] == reports[1]
    reference.assert_close(reports[0], reference.report(y, z, True, n_bootstrap=20))


@pytest.mark.parametrize(("module", "extra"), [("distributed", "dask"), ("pyarrow", "cli")])
def test_a_missing_extra_is_named(tmp_path, capsys, monkeypatch, module, extra) -> None:
    path = str(tmp_path / "p.parquet" if module == "pyarrow" else tmp_path / "p.npy")
    np.save(tmp_path / "p.npy", np.array([[0, 0.2], [1, 0.9]]))
    monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    args = ["report", path, "-q"] + (["--dask"] if extra == "dask" else [])
    (tmp_path / "p.parquet").write_bytes(b"")
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"pip install 'crossent[{extra}]'"), err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--bins", "0", "argument --bins: expected a positive integer, got 0"),
        ("--bootstrap", "-1", "argument --bootstrap: expected an integer >= 0, got -1"),
        ("--bootstrap", "many", "argument --bootstrap: expected an integer >= 0, got 'many'"),
        # these had reached the library: status 1, and a message naming no option
        ("--seed", "-1", "argument --seed: expected an integer >= 0, got -1"),
        ("--gamma", "-1", "argument --gamma: expected a finite number >= 0, got -1"),
        ("--gamma", "inf", "argument --gamma: expected a finite number >= 0, got inf"),
    ],
)
def test_bad_numeric_options_exit_2(capsys, option: str, value: str, message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "scores.csv", option, value])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def _one_line_error(args: list[str], capsys) -> str:
    status = main(["report", *args, "-q", "--bootstrap", "0"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "text",
    [
        "label,p_0,p_1\n1,0.2,0.8,17\n0,0.7,0.3,18\n1,0.4,0.6,19\n",  # one unnamed field more
        "label,p_0,p_1,p_2\n0,0.2,0.3,0.5,\n1,0.5,0.5,0,\n2,0.1,0.1,0.8,\n",  # trailing commas
    ],
)
def test_rows_longer_than_the_header_are_refused(tmp_path, capsys, text) -> None:
    # pandas had taken the first field for an index in one read and not in the other: wrong
    # numbers with exit 0, or a missing value reported where there was none
    path = tmp_path / "extra.csv"
    path.write_text(text)
    assert "more fields than its header" in _one_line_error([str(path)], capsys)


def test_metadata_beside_the_columns_is_left_out(tmp_path, capsys) -> None:
    # pandas' saved index of a shuffled frame had been scored as a class, and an .npz with
    # class names (another length) or a scalar had not been readable at all
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"label": [0, 1, 2, 1], "p_0": [0.7, 0.1, 0.2, 0.3],
                       "p_1": [0.2, 0.8, 0.1, 0.6], "p_2": [0.1, 0.1, 0.7, 0.1]})  # fmt: skip
    df.iloc[[3, 1, 0, 2]].to_parquet(tmp_path / "shuffled.parquet")
    np.savez(tmp_path / "meta.npz", label=df["label"].to_numpy(),
             p=df[["p_0", "p_1", "p_2"]].to_numpy(), class_names=np.array(["a", "b", "c"]),
             temperature=np.array(1.5))  # fmt: skip
    want = -np.mean(np.log([0.7, 0.8, 0.7, 0.6]))
    for name in ("shuffled.parquet", "meta.npz"):
        status = main(["report", str(tmp_path / name), "-q", "--bootstrap", "0", "--json", "-"])
        assert status == 0
        report = json.loads(capsys.readouterr().out)
        assert report["source"]["columns"] == (
            ["p_0", "p_1", "p_2"] if name.endswith("parquet") else ["p[0]", "p[1]", "p[2]"]
        )
        assert report["before"]["cross_entropy_nats"] == pytest.approx(want, rel=1e-12)


def test_plot_path_without_a_known_format_is_refused_first(tmp_path, capsys) -> None:
    y, p = data("multiclass", "probabilities", 0)
    write(frame(y, p, "probabilities"), str(tmp_path / "d.csv"))
    message = _one_line_error([str(tmp_path / "d.csv"), "--plot", str(tmp_path / "out")], capsys)
    assert "--plot" in message and ".png" in message


def test_a_closed_pipe_ends_quietly_after_writing_the_files(tmp_path) -> None:
    # rich had exited with 1 on the closed pipe, before the JSON and the plot were written
    y, p = data("multiclass", "probabilities", 0)
    write(frame(y, p, "probabilities"), str(tmp_path / "d.csv"))
    command = [sys.executable, "-m", "crossent", "report", str(tmp_path / "d.csv"),
               "--bootstrap", "0", "--json", str(tmp_path / "o.json")]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=_command_env())  # fmt: skip
    process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert json.loads((tmp_path / "o.json").read_text())["before"]


def test_a_long_row_anywhere_in_the_csv_is_refused(tmp_path, capsys) -> None:
    # the scoring read had dropped the extra field of a later row (target=1, prob=0 read)
    path = tmp_path / "late.csv"
    path.write_text("target,prob\n1,0.9\n0,0.2\n1,0.7\n1,0,0.1\n1,0.8\n")
    assert "Expected 2 fields in line 5, saw 3" in _one_line_error([str(path)], capsys)


def test_huge_logits_give_no_warning_and_short_table_cells(tmp_path, capsys) -> None:
    # logits of +-1e308 had printed NumPy's overflow warning, and a loss of 2.3e303 had
    # filled its table cell with 300 digits
    path = tmp_path / "big.csv"
    pd.DataFrame({"label": [0, 1, 1, 0], "logit": [1e308, -1e308, 3.0, -2.0]}).to_csv(
        path, index=False
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["report", str(path), "--logits", "logit", "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "e+303" in out and "0000000000" not in out
