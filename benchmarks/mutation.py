"""Mutation testing of the calculators and the budget check (a benchmark script, not a test).

Draws a seeded sample of single-token mutants from planner/calc and planner/budget (an
arithmetic or comparison operator swapped, a boolean operator flipped, a small integer constant
moved by one, a True/False flipped, a `not` dropped), applies each to a scratch copy of the tree,
runs the tests that cover that package with `pytest -x` and a time limit, and counts the mutants
the tests kill. Prints each survivor (file, line, the change) and the score.

    python benchmarks/mutation.py --sample 150 --seed 0 --jobs 2 [--files serving/] [--timeout 300]

A mutant that fails to import counts as killed (a test run errors); one that runs past the
per-mutant ``--timeout`` (a loop made endless) counts as killed too, and is listed apart.

Equivalent mutants, ones that cannot change any result (a ``>`` made ``>=`` at a point no input
reaches, a constant moved where a floor division absorbs it), are listed with the reason in
benchmarks/mutation_equivalent.md, one per line as ``- file:line:col | kind | reason``; a survivor
listed there is printed as ``equivalent``, and the score is given with them counted as killed and
without them (left out of the sample). The list is of this tree's lines: a change to a file
moves them, and a listed mutant that is no longer drawn or no longer survives is simply unused.

Not a test and not in CI: a run of 150 mutants takes 20-40 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
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
TESTS = {"planner/calc": ["tests/calc", "tests/studies", "tests/budget", "tests/test_api.py",
                          "tests/test_readme.py", "tests/cli/test_cli.py"],
         "planner/budget": ["tests/budget", "tests/calc/test_properties.py",
                            "tests/calc/test_boundaries.py", "tests/test_readme.py"]}
#: Survivors that cannot change any result, with the reason (see the module docstring).
EQUIVALENTS = Path(__file__).resolve().parent / "mutation_equivalent.md"
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


def equivalents() -> dict[tuple[str, str], str]:
    """(``file:line:col``, kind) -> reason, from the ``- file:line:col | kind | reason`` lines
    of :data:`EQUIVALENTS`."""
    out = {}
    if EQUIVALENTS.exists():
        for line in EQUIVALENTS.read_text().splitlines():
            parts = [p.strip().strip("`") for p in line.lstrip("-* ").split("|")]
            if len(parts) >= 3 and parts[0].startswith("planner/") and parts[0].count(":") == 2:
                out[(parts[0], parts[1])] = parts[2]
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
    parser.add_argument("--sample", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds per mutant; a mutant past it counts as killed (a hang)")
    parser.add_argument("--files", nargs="*", default=[],
                        help="only mutants of files matching one of these globs or substrings "
                             "(e.g. serving/ or '*routing.py'); the sample is drawn after")
    args = parser.parse_args()
    mutants = all_mutants()
    if args.files:
        mutants = [m for m in mutants if any(f in m.file or fnmatch.fnmatch(m.file, f)
                                             for f in args.files)]
    sample = random.Random(args.seed).sample(mutants, min(args.sample, len(mutants)))
    print(f"{len(mutants)} mutants in {', '.join(args.files or TARGETS)}; running a sample of "
          f"{len(sample)} (seed {args.seed})", flush=True)
    results = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for m, verdict in pool.map(lambda m: run_mutant(m, args.timeout), sample):
            if verdict == "survived" and (f"{m.file}:{m.line}:{m.col}", m.kind) in equivalents():
                verdict = "equivalent"
            results.append((m, verdict))
            if verdict != "killed":
                print(f"  {verdict:10s} {m.file}:{m.line}:{m.col}  {m.kind}", flush=True)
    n = len(results)
    count = {v: sum(x == v for _, x in results)
             for v in ("killed", "timeout", "equivalent", "survived")}
    caught = count["killed"] + count["timeout"]
    print(f"killed {count['killed']}, timed out {count['timeout']}, equivalent "
          f"{count['equivalent']}, survived {count['survived']} of {n}")
    print(f"mutation score (killed + timeouts) / sample: {caught}/{n} = {caught / n:.1%}")
    print(f"  equivalents counted as killed: {caught + count['equivalent']}/{n} = "
          f"{(caught + count['equivalent']) / n:.1%}")
    kept = n - count["equivalent"]
    print(f"  equivalents left out of the sample: {caught}/{kept} = {caught / max(kept, 1):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
