"""Write docs/api.md, the API reference, from the docstrings of crossent's public API.

Run ``python docs/generate_api.py`` (optionally with an output path) after changing a public
docstring or the public API, and commit the result. The docstrings are the source: this
script only lays them out (signatures, reStructuredText roles and math turned into Markdown,
examples into code blocks) and appends the ``--help`` of every command.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re
import sys

# module -> names documented there (None: the module's __all__)
SECTIONS = [
    ("crossent", None, "Losses, derivatives, penalties and stable building blocks."),
    ("crossent.calibration", None, "Calibration metrics, accumulators and scaling."),
    ("crossent.models", None, "scikit-learn compatible classifiers on crossent losses."),
    (
        "crossent.objectives",
        ["xgboost", "lightgbm", "catboost", "BoostingObjective"],
        "Custom objectives and metrics for gradient boosting.",
    ),
    ("crossent.report", None, "The report behind `crossent report`."),
    ("crossent.dask", None, "The report on a Dask cluster."),
    (
        "crossent.testing",
        ["finite_difference_gradient", "finite_difference_directional", "assert_allclose"],
        "Finite-difference checks of analytic gradients.",
    ),
]


def _markdown(doc: str) -> str:
    """A reStructuredText-flavoured docstring as Markdown."""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if re.fullmatch(r"(Args|Arguments|Returns|Attributes|Raises):", stripped):
            i = _section(lines, i, out)
            continue
        if stripped.startswith(".. math::") or stripped.endswith("::"):
            math = stripped.startswith(".. math::")
            inline = stripped[len(".. math::") :].strip() if math else ""
            if not math:
                head = stripped[:-1] if not stripped.endswith(" ::") else stripped[:-3]
                if head:
                    out.append(_roles(line[: len(line) - len(line.lstrip())] + head))
            block: list[str] = [inline] if inline else []
            indent = len(line) - len(line.lstrip())
            i += 1
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                block.append(lines[i])
                i += 1
            body = inspect.cleandoc("\n".join(block)).strip("\n")
            if math:
                out += ["", "$$", body, "$$", ""]
            else:
                out += ["", "```python", body, "```", ""]
            continue
        out.append(line)
        i += 1
    # roles outside the code blocks only: their ``` fences must keep three backticks
    parts = re.split(r"(```python\n.*?\n```)", "\n".join(out), flags=re.S)
    return "".join(p if p.startswith("```") else _roles(p) for p in parts)


def _section(lines: list[str], i: int, out: list[str]) -> int:
    """An ``Args:``-style section as a bullet list; returns the index after it."""
    base = len(lines[i]) - len(lines[i].lstrip())
    out += ["", f"**{lines[i].strip()[:-1]}**", ""]
    i += 1
    item_indent = None
    started = False
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if not nxt.strip() or len(nxt) - len(nxt.lstrip()) <= base:
                break
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= base:
            break
        item_indent = indent if item_indent is None else item_indent
        item = re.match(r"([\w, .*]+):\s(.*)", line.strip())
        if indent == item_indent and item:
            out.append(f"- `{item.group(1)}`: {_roles(item.group(2))}")
        elif indent == item_indent and not started:  # a section of prose ("Returns:")
            out.append(f"- {_roles(line.strip())}")
        else:
            out[-1] += " " + _roles(line.strip())
        started = True
        i += 1
    out.append("")
    return i


def _roles(text: str) -> str:
    text = re.sub(r":math:`([^`]*)`", r"$\1$", text)
    text = re.sub(r":(?:func|class|mod|meth|attr|data):`~?([^`]*)`", r"`\1`", text)
    return text.replace("``", "`")


def _signature(obj: object) -> str:
    """The call signature without annotations (they are in the source and the docstring)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    bare = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=bare, return_annotation=inspect.Signature.empty))


def _entry(module: str, name: str, obj: object) -> list[str]:
    kind = "class" if inspect.isclass(obj) else "function"
    lines = [
        f"### `{module}.{name}`",
        "",
        "```python",
        f"{kind} {name}{_signature(obj)}",
        "```",
        "",
    ]
    lines += [_markdown(obj.__doc__ or "(undocumented)"), ""]
    if inspect.isclass(obj):
        methods = _methods(obj)
        if methods:
            lines.append("Methods and properties:")
            lines.append("")
            for m, f in methods:
                target = f.fget if isinstance(f, property) else f
                first = inspect.cleandoc(target.__doc__ or "").split("\n\n")[0].replace("\n", " ")
                sig = "" if isinstance(f, property) else _signature(f)
                lines.append(f"- `{m}{sig}`: {_roles(first)}")
            lines.append("")
    return lines


def _methods(cls: type) -> list[tuple[str, object]]:
    """Public methods and properties of ``cls`` and of its crossent bases (scikit-learn's
    ``available_if`` methods, such as ``partial_fit``, unwrapped), in definition order."""
    found: dict[str, object] = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("crossent"):
            continue
        for m, f in vars(klass).items():
            f = getattr(f, "fn", f)  # an available_if descriptor holds the method as .fn
            if m.startswith("_") or m in found:
                continue
            if inspect.isfunction(f) or isinstance(f, property):
                found[m] = f
    return list(found.items())


def _commands() -> list[str]:
    from crossent.cli import build_parser

    parser = build_parser()
    lines = ["## The `crossent` command", ""]
    for argv in ([], ["report"], ["demo"], ["tour"]):
        title = " ".join(["crossent", *argv, "--help"])
        sub = parser
        if argv:
            sub = parser._subparsers._group_actions[0].choices[argv[0]]
        lines += [f"### `{title}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return lines


def _referred_modules(text: str) -> list[str]:
    """Modules that the text refers to (``crossent.x.y`` in backquotes, importable as a
    module) but that have no section of their own: their docstrings hold the formulas and
    choices that the entries point to."""
    documented = {module for module, _, _ in SECTIONS}
    found = []
    for name in dict.fromkeys(re.findall(r"`(crossent(?:\.\w+)+)`", text)):
        if name in documented:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError:  # a function or class, not a module
            continue
        if module.__doc__:
            found.append(name)
    return sorted(found)


def generate() -> str:
    lines = [
        "# API reference",
        "",
        "Generated by `docs/generate_api.py` from the docstrings; do not edit by hand.",
        "",
    ]
    for module_name, names, summary in SECTIONS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # an optional extra that is not installed
            lines += [f"## `{module_name}`", "", f"(not importable here: {exc})", ""]
            continue
        lines += [f"## `{module_name}`", "", summary, ""]
        for name in names or module.__all__:
            lines += _entry(module_name, name, getattr(module, name))
    modules: dict[str, str] = {}  # the referred modules, and those their docstrings refer to
    while new := [
        m for m in _referred_modules("\n".join(lines + list(modules.values()))) if m not in modules
    ]:
        modules |= {m: _markdown(importlib.import_module(m).__doc__ or "") for m in new}
    if modules:
        lines += [
            "## Modules referred to above",
            "",
            "Internal modules whose docstrings hold the formulas and design choices that the "
            "entries above point to. Their functions are not public API.",
            "",
        ]
        for name in sorted(modules):
            lines += [f"### `{name}`", "", modules[name], ""]
    return "\n".join(lines + _commands()).rstrip() + "\n"


def main() -> None:
    out = (
        pathlib.Path(sys.argv[1])
        if len(sys.argv) > 1
        else pathlib.Path(__file__).with_name("api.md")
    )
    out.write_text(generate())


if __name__ == "__main__":
    main()
