"""The benchmark harness's bookkeeping: the order of timed calls and the targets table.

Timings themselves never decide a test; these check what the harness does with them.
"""

from __future__ import annotations

import pytest

harness = pytest.importorskip("benchmarks.harness")


def _recording(calls: list[str], names: str) -> dict:
    return {name: (lambda n=name: calls.append(n)) for name in names}


def test_timings_call_each_once_a_round_in_varying_order():
    # After the warm-up, every round calls each function once, and over the rounds a
    # function follows different ones (a rotation of one order had put "c" after "b" in
    # every round but those starting with "c").
    calls: list[str] = []
    result = harness.timings(_recording(calls, "abcd"), repeats=40, warmup=1, min_seconds=0)
    assert calls[:4] == list("abcd")
    rounds = [calls[i : i + 4] for i in range(4, len(calls), 4)]
    assert len(rounds) == 40 and all(sorted(r) == list("abcd") for r in rounds)
    flat = calls[4:]
    before_c = {flat[i - 1] for i in range(1, len(flat)) if flat[i] == "c"}
    assert set("abd") <= before_c  # (and "c" itself, across the end of a round)
    assert set(result) == set("abcd")
    for median, p20, p80 in result.values():
        assert p20 <= median <= p80


def test_timings_add_rounds_for_short_calls_up_to_the_limit():
    calls: list[str] = []
    harness.timings(_recording(calls, "ab"), repeats=2, warmup=0, min_seconds=60, max_repeats=5)
    assert len(calls) == 2 * 5
    calls.clear()
    harness.timings(_recording(calls, "ab"), repeats=2, warmup=0, min_seconds=0, max_repeats=5)
    assert len(calls) == 2 * 2


def _row(benchmark, shape, provider, median_ms, ratio=1.0, mib=0.0):
    return {"benchmark": benchmark, "shape": shape, "provider": provider, "mode": "fwd+grad",
            "dtype": "float32", "median_ms": str(median_ms), "ratio": str(ratio),
            "peak_extra_mib": str(mib)}  # fmt: skip


def test_target_tables_judge_speed_ups_bound_ratios_and_linear_limits():
    rows = [
        _row("categorical", "4096x32000", "pytorch", 100.0),
        _row("categorical", "4096x32000", "naive numpy", 1000.0),
        _row("categorical", "4096x32000", "crossent fused", 25.0, ratio=1.6),
        _row("categorical", "4096x32000", "crossent fused (out=)", 10.0, ratio=1.1),
        _row("linear", "8x4x16", "crossent linear_cross_entropy", 900.0, mib=50.0),
        _row("linear", "8x4x16", "crossent (torch tensors)", 1100.0, mib=30.0),
        _row("linear", "8x4x16", "pytorch materialised", 1000.0, mib=240.0),
        _row("linear", "8x4x16", "pytorch chunked (1024)", 800.0, mib=40.0),
    ]
    lines = {line.split(" | ")[0]: line for line in harness._target_tables(rows)}
    assert "4.0x (missed)" in lines["| >= 5x faster than pytorch, categorical 4096x32000"]
    assert "10.0x (met)" in lines["| >= 5x faster than pytorch, categorical 4096x32000"]
    naive = lines["| >= 10x faster than naive numpy, categorical 4096x32000"]
    assert "40.0x (met)" in naive and "100.0x (met)" in naive
    bound = lines["| within x1.5 of the copy bound, categorical 4096x32000"]
    assert "x1.60 (missed)" in bound and "x1.10 (met)" in bound
    assert lines["| >= 2x faster than pytorch, categorical 8192x1000"].count("-") == 2
    assert lines["| peak memory <= PyTorch chunked, NumPy arrays"].endswith("| no |")
    assert lines["| peak memory <= 1/6 of PyTorch materialised, NumPy arrays"].endswith("| no |")
    assert lines["| time <= PyTorch materialised, NumPy arrays"].endswith("| yes |")
    assert lines["| peak memory <= PyTorch chunked, PyTorch tensors"].endswith("| yes |")
    sixth = lines["| peak memory <= 1/6 of PyTorch materialised, PyTorch tensors"]
    assert sixth.endswith("| yes |")
    assert lines["| time <= PyTorch materialised, PyTorch tensors"].endswith("| no |")
