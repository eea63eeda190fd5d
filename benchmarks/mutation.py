"""Mutation testing of the calculators and the budget check (a benchmark script, not a test).

Draws a seeded sample of single-token mutants from planner/calc and planner/budget (an
arithmetic or comparison operator swapped, a boolean operator flipped, a small integer constant
moved by one, a True/False flipped, a `not` dropped), applies each to a scratch copy of the tree,
runs the tests that cover that package with `pytest -x` and a time limit, and counts the mutants
the tests kill. Prints each survivor (file, line, the change) and the score.

    python benchmarks/mutation.py --sample 120 --seed 0 [--jobs 2]

A mutant that fails to import counts as killed (a test run errors); one that times out counts as
killed too (the tests noticed a hang), and is listed apart.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGETS = ("planner/calc", "planner/budget")
#: Tests run against a mutant of each target folder.
TESTS = {"planner/calc": ["tests/calc", "tests/studies/test_paper_golden.py",
                          "tests/budget", "tests/test_api.py"],
         "planner/budget": ["tests/budget", "tests/test_readme.py"]}
SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
         ast.FloorDiv: ast.Div, ast.Pow: ast.Mult, ast.Mod: ast.FloorDiv,
         ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
         ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.And: ast.Or, ast.Or: ast.And,
         ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}


@dataclass(frozen=True)
class Mutant:
    file: str
    line: int
    col: int
    kind: str
    index: int          # which candidate of the file, in ast.walk order


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            ids.add(id(body[0].value))
    return ids


def candidates(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    skip = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in SWAPS:
            found.append((node, f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}"))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
            found.append((node, f"{type(node.ops[0]).__name__} -> "
                                f"{SWAPS[type(node.ops[0])].__name__}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found.append((node, "drop not"))
        elif (isinstance(node, ast.Constant) and id(node) not in skip
              and type(node.value) in (int, bool) and not isinstance(node.value, str)):
            if isinstance(node.value, bool):
                found.append((node, f"{node.value} -> {not node.value}"))
            elif abs(node.value) < 1_000_000:
                found.append((node, f"{node.value} -> {node.value + 1}"))
    return found


def mutate(source: str, index: int) -> str:
    tree = ast.parse(source)
    node, _ = candidates(tree)[index]
    if isinstance(node, ast.BinOp) or isinstance(node, ast.BoolOp):
        node.op = SWAPS[type(node.op)]()
    elif isinstance(node, ast.Compare):
        node.ops[0] = SWAPS[type(node.ops[0])]()
    elif isinstance(node, ast.UnaryOp):
        return _replace(source, tree, node, node.operand)
    elif isinstance(node.value, bool):
        node.value = not node.value
    else:
        node.value = node.value + 1
    return ast.unparse(tree)


def _replace(source: str, tree: ast.AST, node: ast.AST, new: ast.AST) -> str:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, name, new)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if item is node:
                        value[i] = new
    return ast.unparse(tree)


def all_mutants() -> list[Mutant]:
    out = []
    for target in TARGETS:
        for path in sorted((REPO / target).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for i, (node, kind) in enumerate(candidates(tree)):
                out.append(Mutant(str(path.relative_to(REPO)), node.lineno, node.col_offset,
                                  kind, i))
    return out


def run_mutant(m: Mutant, timeout: float) -> tuple[Mutant, str]:
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(
            ".git", ".venv*", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache"))
        path = tree / m.file
        path.write_text(mutate(path.read_text(), m.index))
        target = next(t for t in TARGETS if m.file.startswith(t))
        env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1",
                   PLANNER_NO_CACHE="1")
        try:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p",
                                   "no:cacheprovider", *TESTS[target]], cwd=tree, env=env,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return m, "timeout"
        return m, "survived" if done.returncode == 0 else "killed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    mutants = all_mutants()
    sample = random.Random(args.seed).sample(mutants, min(args.sample, len(mutants)))
    print(f"{len(mutants)} mutants in {', '.join(TARGETS)}; running a sample of {len(sample)} "
          f"(seed {args.seed})", flush=True)
    results = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for m, verdict in pool.map(lambda m: run_mutant(m, args.timeout), sample):
            results.append((m, verdict))
            if verdict != "killed":
                print(f"  {verdict:8s} {m.file}:{m.line}:{m.col}  {m.kind}", flush=True)
    killed = sum(v != "survived" for _, v in results)
    print(f"killed {killed} of {len(results)}: mutation score {killed / len(results):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
