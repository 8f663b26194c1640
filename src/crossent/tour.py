"""The seed tour of cross-entropy, every example computed with crossent.

Run ``python -m crossent.tour``. Each section prints the value (and gradient) that the
example's formula really gives, and says where the original teaching code went wrong.
"""

from __future__ import annotations

import numpy as np

import crossent as ce


def _show(
    title: str,
    value: float,
    array: np.ndarray | None = None,
    note: str = "",
    label: str = "gradient",
) -> None:
    print(f"\n{title}\n  value: {float(value):.6f}")
    if array is not None:
        rows = np.array2string(np.asarray(array) + 0.0, precision=4, suppress_small=True)
        print(f"  {label}:\n    " + rows.replace("\n", "\n    "))
    if note:
        print(f"  note: {note}")


def main() -> None:
    """Print every example of the tour and of the Q&A with its correct value."""
    print("crossent", ce.__version__, "- the cross-entropy tour, computed exactly")
    bce = ce.value_and_grad(ce.binary_cross_entropy)
    cce = ce.value_and_grad(ce.categorical_cross_entropy)
    y4, p4 = np.array([1, 0, 1, 0]), np.array([0.8, 0.2, 0.6, 0.4])
    _show("Slides 1-2. Binary cross-entropy, d/dp", *bce(y4, p4))

    y3 = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    p3 = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    _show("Slides 3 and 5. Categorical cross-entropy, d/dp", *cce(y3, p3))

    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    y = np.array([0, 1, 0])
    w = np.array([0.1, 0.2])
    value, dz = bce(y, x @ w, from_logits=True)
    _show(
        "Slide 4. Logistic regression from logits, d/dw = X^T (sigmoid(Xw) - y) / n",
        value,
        x.T @ dz,
    )

    w_fit = w.copy()
    for _ in range(1000):
        _, dz = bce(y, x @ w_fit, from_logits=True)
        w_fit -= 0.01 * (x.T @ dz)
    _show(
        "Slide 6. 1000 steps of gradient descent on the logistic loss",
        ce.binary_cross_entropy(y, x @ w_fit, from_logits=True),
        w_fit,
        "the original fed the linear outputs X @ w to a log as if they were probabilities, "
        "and indexed axis=1 of 1-D arrays; the logits go through the sigmoid inside the loss",
        label="fitted weights w",
    )

    yr, pr = np.array([0, 1, 0]), np.array([0.1, 0.8, 0.2])
    wr = np.array([0.3, -0.2, 0.1])
    base = ce.binary_cross_entropy(yr, pr)
    _show("Slide 7. Binary cross-entropy + L1 (alpha = 0.1)", base + ce.l1_penalty(wr, alpha=0.1))
    _show(
        "Slide 7. Binary cross-entropy + L2 (alpha = 0.1, penalty alpha/2 ||w||^2)",
        base + ce.l2_penalty(wr, alpha=0.1),
        note="these are binary labels, so the binary loss applies (the original summed "
        "over axis=1 of a 1-D array)",
    )

    yb, pb = np.array([0, 1, 0, 0, 1]), np.array([0.2, 0.8, 0.1, 0.3, 0.7])
    _show(
        "Slide 8. Class-weighted binary cross-entropy (w0 = 0.2, w1 = 0.8), weighted mean",
        ce.binary_cross_entropy(yb, pb, sample_weight=np.where(yb == 1, 0.8, 0.2)),
    )

    mask = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    _show(
        "Slide 9. Masked element-wise binary cross-entropy",
        ce.binary_cross_entropy(y3, p3, mask=mask),
    )

    _show(
        "Slide 10. Binary focal loss (alpha = 0.25, gamma = 2)",
        *ce.value_and_grad(ce.binary_focal_loss)(yb, pb, alpha=0.25, gamma=2.0),
        note="negatives are modulated by p**gamma (confidence in the wrong class); the "
        "original used p_t**gamma there and weighted easy negatives up",
    )

    _show("Slide 11. Label smoothing 0.1", *cce(y3, p3, label_smoothing=0.1))
    _show("Slide 12. Temperature 1.5 applied to log-probabilities", *cce(y3, p3, temperature=1.5))

    ys = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.4, 0.4]])
    yt = np.array([[0.05, 0.9, 0.05], [0.8, 0.15, 0.05], [0.1, 0.2, 0.7]])
    dist = ce.value_and_grad(ce.distillation_loss)
    _show(
        "Slide 13. Distillation (T = 2, alpha = 0.5) from logits log(p), d/d(student logits)",
        *dist(y3, np.log(ys), np.log(yt), temperature=2.0, alpha=0.5),
        note="the original called an undefined function, never softened the student and "
        "dropped the T^2 factor",
    )

    yq, pq = np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.8, 0.2])
    _show("Q&A. Binary example", *bce(yq, pq), note="the Q&A printed 0.328506, twice this")
    yc = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    pc = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5]])
    _show("Q&A. Categorical example", *cce(yc, pc), note="the Q&A printed 1.181944")
    _show(
        "Q&A. Same loss from logits log(p): gradient p - y, bounded",
        *cce(yc, np.log(pc), from_logits=True),
    )


if __name__ == "__main__":
    main()
