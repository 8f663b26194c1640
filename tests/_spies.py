"""Counting the calls of a module's function, for tests that check which path a call took."""

from __future__ import annotations


def count_calls(monkeypatch, module, name: str) -> list:
    """The calls of ``module.<name>`` from now on (the function still runs), one entry each."""
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls
