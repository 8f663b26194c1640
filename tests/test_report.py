"""The report engine (crossent.report) against one-shot library calls, and chunking."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.special

pytest.importorskip("matplotlib")

import _report_reference as reference

from crossent.report import Settings, evaluate, evaluate_chunks


def make(kind: str, space: str, n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions of an over-confident model (true temperature 2)."""
    return reference.sample(kind, space, n, seed)


CASES = reference.CASES


@pytest.mark.parametrize(("kind", "space"), CASES)
def test_report_equals_one_shot_library_calls(kind: str, space: str) -> None:
    y, pred = make(kind, space)
    report = evaluate(y, pred, n_bootstrap=40, random_state=3).to_dict()
    expected = reference.report(y, pred, space == "logits", n_bootstrap=40, random_state=3)
    reference.assert_close(report, expected)
    reference.assert_close(report["before"], reference.by_hand(y, pred, space == "logits"))
    assert report["temperature"] > 1.5  # the model is over-confident: T ~ 2
    assert report["after"]["cross_entropy_nats"] < report["before"]["cross_entropy_nats"]


@pytest.mark.parametrize(("kind", "space"), CASES)
def test_uneven_chunks_equal_one_pass(kind: str, space: str) -> None:
    y, pred = make(kind, space, n=1000, seed=1)
    bounds = [0, 1, 7, 150, 151, 400, 433, 600, 777, 900, 999, 1000]  # 11 uneven chunks
    chunks = [(y[a:b], pred[a:b]) for a, b in itertools.pairwise(bounds)]
    settings = Settings(n_bootstrap=30, random_state=5)
    streamed = evaluate_chunks(
        lambda: iter(chunks),
        n_classes=2 if kind == "binary" else 4,
        from_logits=space == "logits",
        settings=settings,
    )
    whole = evaluate(y, pred, n_bootstrap=30, random_state=5)
    reference.assert_close(streamed.to_dict(), whole.to_dict())  # intervals included


def test_on_pass_names_every_pass_and_sees_every_row() -> None:
    y, z = make("multiclass", "logits", n=300, seed=2)
    chunks = [(y[:120], z[:120]), (y[120:], z[120:])]
    seen: list[tuple[str, int]] = []

    def on_pass(name):
        def wrap(it):
            for y_chunk, pred in it:
                seen.append((name, len(y_chunk)))
                yield y_chunk, pred

        return wrap

    report = evaluate_chunks(lambda: iter(chunks), n_classes=4, from_logits=True, on_pass=on_pass)
    names = list(dict.fromkeys(name for name, _ in seen))
    fits = len(names) - 2
    assert fits >= 1
    assert names == [
        "metrics",
        *(f"temperature fit, pass {i}" for i in range(1, fits + 1)),
        "metrics after scaling",
    ]
    assert all(sum(n for name, n in seen if name == each) == 300 for each in names)
    assert report.rows == 300


def test_detection_of_probabilities_and_logits() -> None:
    y, p = make("multiclass", "probabilities", n=200)
    assert evaluate(y, p, n_bootstrap=0).input == "probabilities"
    assert evaluate(y, np.log(p), n_bootstrap=0).input == "logits"
    yb, pb = make("binary", "probabilities", n=200)
    assert evaluate(yb, pb, n_bootstrap=0).input == "probabilities"
    assert evaluate(yb, scipy.special.logit(pb), n_bootstrap=0).input == "logits"


def test_float32_probabilities_are_accepted_and_renormalised() -> None:
    # Their rows sum to 1 within ~1e-7, not float64's 1.5e-8; they were refused.
    y, p = make("multiclass", "probabilities", n=300)
    p32 = p.astype(np.float32)
    exact = p32.astype(np.float64) / p32.astype(np.float64).sum(axis=1, keepdims=True)
    want = evaluate(y, exact, n_bootstrap=0).to_dict()
    for from_logits in (None, False):
        got = evaluate(y, p32, from_logits=from_logits, n_bootstrap=0)
        assert got.input == "probabilities"
        reference.assert_close(got.to_dict(), want)
    with pytest.raises(ValueError, match=r"sum to 0\.999, not 1 \(tolerance 0\.00035\)"):
        evaluate(y, p * 0.999, from_logits=False, n_bootstrap=0)


def test_in_between_input_is_refused_with_a_hint() -> None:
    rng = np.random.default_rng(4)
    scores = rng.uniform(0.1, 0.4, size=(50, 3))  # in [0, 1], rows do not sum to 1
    with pytest.raises(ValueError, match="pass from_logits=False or from_logits=True"):
        evaluate(rng.integers(0, 3, size=50), scores, n_bootstrap=0)
    assert evaluate(rng.integers(0, 3, size=50), scores, from_logits=True).input == "logits"


def test_ambiguous_and_bad_input_are_refused() -> None:
    y, p = make("multiclass", "probabilities", n=50)
    with pytest.raises(ValueError, match=r"do not sum to 1.*from_logits"):
        evaluate(y, p * 0.9, n_bootstrap=0)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(y, np.where(np.arange(50)[:, None] == 3, np.nan, p), n_bootstrap=0)
    with pytest.raises(ValueError, match="class index 4"):
        evaluate(np.where(y == 0, 4, y), p, n_bootstrap=0)
    # "no" had been read as True: probabilities evaluated as logits
    with pytest.raises(TypeError, match="from_logits must be True, False or None"):
        evaluate(y, p, from_logits="no", n_bootstrap=0)
    from crossent.calibration import LossAccumulator, expected_calibration_error

    with pytest.raises(TypeError, match="debias must be True or False"):
        expected_calibration_error(y, p, norm="l2", debias="yes")
    with pytest.raises(TypeError, match="from_logits must be True or False"):
        LossAccumulator(from_logits="False")


def test_report_json_round_trip_and_plot(tmp_path) -> None:
    import json

    y, z = make("multiclass", "logits", n=300)
    report = evaluate(y, z, n_bootstrap=10)
    assert json.loads(report.to_json()) == report.to_dict()
    report.plot(str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    # a Generator as random_state had made to_json raise TypeError
    seeded = evaluate(y, z, n_bootstrap=10, random_state=np.random.default_rng(0))
    assert json.loads(seeded.to_json())["settings"]["random_state"] == "Generator(PCG64)"
