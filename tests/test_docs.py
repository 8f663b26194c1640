"""The documentation runs: every snippet of docs/*.md, and the API reference generator."""

from __future__ import annotations

import doctest
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def python_blocks(path: pathlib.Path) -> str:
    """The ```python blocks of a markdown page, in order, as one doctest text."""
    return "\n".join(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S))


@pytest.mark.parametrize("page", ["tour.md", "getting-started.md"])
def test_markdown_snippets_run_with_their_outputs(page: str, tmp_path, monkeypatch) -> None:
    pytest.importorskip("pandas")
    pytest.importorskip("rich")
    if page == "getting-started.md":  # its last part runs on a local Dask cluster
        pytest.importorskip("dask")
    monkeypatch.chdir(tmp_path)  # snippets may write files
    text = python_blocks(DOCS / page)
    assert text.count(">>>") > 10
    test = doctest.DocTestParser().get_doctest(text, {}, page, str(DOCS / page), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {page} failed"


def test_tour_page_covers_every_slide_and_answer() -> None:
    text = (DOCS / "tour.md").read_text()
    headings = re.findall(r"^## Slides? ([\d ,and]+)", text, flags=re.M)
    covered = {int(n) for h in headings for n in re.findall(r"\d+", h)}
    assert covered == set(range(1, 14))  # slide 14 is a reading list, mentioned in the text
    for answer in (1, 2, 3):
        assert f"## Q&A {answer}" in text


def test_api_reference_is_generated_from_docstrings() -> None:
    import runpy

    import crossent

    text = runpy.run_path(str(DOCS / "generate_api.py"))["generate"]()
    for name in crossent.__all__:
        assert f"### `crossent.{name}`" in text, name
    for entry in ("crossent.report.evaluate", "crossent.dask.evaluate", "crossent report --help"):
        assert f"### `{entry}`" in text
    first = crossent.binary_cross_entropy.__doc__.strip().splitlines()[0]
    assert first in text
    assert ":math:" not in text and ":func:" not in text  # roles became Markdown
