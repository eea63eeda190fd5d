"""The house's layout rules (the README's "Layout"), checked on the source: files stay
under 400 lines and functions under 80, data flows one way (nothing imports the CLI; calc
imports no front end), and the CLI does no arithmetic on quantities."""

from __future__ import annotations

import ast
import re

import pytest

from tests_support import REPO

PACKAGE = REPO / "planner"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def _rel(path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_file_and_function_sizes(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_FILE_LINES
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


def _imports(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_nothing_outside_the_cli_imports_it():
    outside = [p for p in SOURCES if "cli" not in p.relative_to(PACKAGE).parts
               and p.name != "__main__.py"]
    offenders = {_rel(p): sorted(n for n in _imports(p) if n.startswith("planner.cli"))
                 for p in outside}
    assert not {k: v for k, v in offenders.items() if v}


#: An arithmetic operator between two operands that are not both string literals.
ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=_rel)
def test_the_cli_does_no_arithmetic(path):
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ARITHMETIC):
            if all(isinstance(side, ast.Constant) and isinstance(side.value, str)
                   for side in (node.left, node.right)):
                continue                    # string concatenation of literals
            if isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
                continue                    # %-formatting
            found.append((node.lineno, ast.unparse(node)))
    assert not found, found


def test_the_readme_layout_names_every_package_of_the_tree():
    readme = (REPO / "README.md").read_text()
    layout = re.search(r"## Layout\n(.*?)```text\n(.*?)```", readme, flags=re.S).group(2)
    for package in sorted(p.parent for p in PACKAGE.rglob("__init__.py")):
        assert f"{package.name}/" in layout, package
