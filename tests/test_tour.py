"""The seed tour script prints the correct values of the tour's examples."""

from __future__ import annotations

import re

import numpy as np

from crossent import tour


def _values(capsys) -> dict[str, float]:
    tour.main()
    text = capsys.readouterr().out
    return {
        m.group(1).strip(): float(m.group(2))
        for m in re.finditer(r"\n(.+)\n  value: ([0-9.]+)", text)
    }


def test_tour_prints_correct_values(capsys):
    values = _values(capsys)
    # Values stated in the project's issue (the seed's printed outputs were wrong).
    assert values["Q&A. Binary example"] == 0.164252
    assert values["Q&A. Categorical example"] == 0.424322
    # Independent textbook formulas with NumPy.
    y, p = np.array([1, 0, 1, 0]), np.array([0.8, 0.2, 0.6, 0.4])
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert values["Slides 1-2. Binary cross-entropy, d/dp"] == round(bce, 6)
    yb, pb = np.array([0, 1, 0, 0, 1]), np.array([0.2, 0.8, 0.1, 0.3, 0.7])
    pt = np.where(yb == 1, pb, 1 - pb)
    focal = np.mean(np.where(yb == 1, 0.25, 0.75) * (1 - pt) ** 2 * -np.log(pt))
    assert values["Slide 10. Binary focal loss (alpha = 0.25, gamma = 2)"] == round(focal, 6)


def test_fitted_weights_are_not_called_a_gradient(capsys):
    # slide 6 had printed the fitted weights under "gradient:"
    from crossent import tour

    tour.main()
    slide = capsys.readouterr().out.split("Slide 6.")[1].split("\n\n")[0]
    assert "fitted weights w:" in slide and "gradient:" not in slide
