"""The code's shape, as issue 26 set it: pages are layout (at most 250 lines each) over the app
package, the engine imports no app code and no Streamlit, no private name crosses a module line,
and the README stays a user's README."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "streamlit_app.py"]
CODE = sorted((ROOT / "aeviz_core").glob("*.py")) + sorted((ROOT / "aeviz_app").glob("*.py")) + PAGES
#: names that start with "_" but are public by Python's own conventions, and the one library
#: internal the app replaces on purpose (aeviz_app.session.keep_keras_between_runs says why)
PUBLIC_UNDERSCORED = {"_replace", "_asdict", "_fields", "_make", "_getframe", "_clean_problem_modules"}


def crossings(path: Path) -> list[str]:
    """The private names ``path`` takes from another module: ``from m import _x`` and ``obj._x``
    where ``_x`` is not defined in ``path`` itself (``self``/``cls`` aside)."""
    tree = ast.parse(path.read_text())
    own = {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if node.attr not in own and node.attr not in PUBLIC_UNDERSCORED:
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_crosses_a_module(path):
    assert crossings(path) == []


def test_the_check_finds_a_private_name_taken_from_another_module(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from aeviz_core.data import _x\n\ndef f(det):\n    return det._inference()\n")
    assert crossings(sample) == ["1: from aeviz_core.data import _x", "4: det._inference"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_are_layout(page):
    lines = page.read_text().count("\n")
    assert lines <= 250, f"{page.name} has {lines} lines: move its flows into aeviz_app"
    defined = [n.name for n in ast.parse(page.read_text()).body if isinstance(n, ast.FunctionDef)]
    assert len(defined) <= 4, f"{page.name} defines {defined}: flows belong in aeviz_app"


def test_the_engine_imports_no_app_code():
    for path in sorted((ROOT / "aeviz_core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad = [n for n in names if n.split(".")[0] in ("streamlit", "aeviz_app", "app_support")]
                assert not bad, f"{path.name}:{node.lineno} imports {bad}"


def test_the_readme_is_short_and_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert text.count("\n") <= 250
    head = text[:2500]
    assert "streamlit run streamlit_app.py" in head and "python -m pytest" in head
