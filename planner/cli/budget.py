"""Scenario commands: evaluate every metric a scenario defines, check its budgets (CI)."""

import sys
from pathlib import Path
from typing import List, Optional

import typer

from planner.cli import command, show_tables, write_file
from planner.cli.options import FORMAT, Format


@command("evaluate")
def evaluate_cmd(
    scenarios: List[str] = typer.Argument(..., help="Scenario YAML files or directories (as "
                                                    "`planner check` searches them)."),
    fmt: Format = FORMAT,
) -> None:
    """Every metric a scenario defines (model, hardware, deployment), in base units."""
    from planner import budget, report

    skipped: list[Path] = []
    files = budget.scenario_files(scenarios, skipped)
    if skipped:
        sys.stderr.write(f"{budget.skipped_message(skipped)}\n")
    evaluations = [budget.evaluate(f) for f in files]
    show_tables(report.evaluation_tables(evaluations), fmt)


@command("check")
def check_cmd(
    paths: List[str] = typer.Argument(..., help="Scenario YAML files or directories (searched "
                                                "recursively for *.yaml, *.yml files with a "
                                                "top-level `budgets:` or `kind: scenario`)."),
    junit: Optional[str] = typer.Option(None, "--junit", metavar="FILE",
                                        help="Also write JUnit XML, one test case per bound."),
    fmt: Format = FORMAT,
) -> None:
    """Check every scenario's budgets: exit 0 when all are met, 1 when one is violated, 2 on
    invalid input (nothing is printed on stdout then). With GITHUB_ACTIONS=true, violations and
    errors are also printed on stderr as ::error annotations at the budget's line."""
    import os

    from planner import budget, report

    result = budget.check(*paths)
    if result.skipped:
        sys.stderr.write(f"{budget.skipped_message(result.skipped)}\n")
    if junit is not None:
        write_file(junit, report.junit_xml(result), "JUnit XML")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in report.github_annotations(result):
            sys.stderr.write(f"{line}\n")
    for err in result.errors:
        sys.stderr.write(f"error: {err}\n")
    if result.errors:
        raise typer.Exit(result.exit_code)
    show_tables([report.check_table(result)], fmt)
    for r in result.violations:
        sys.stderr.write(f"violated: {report.violation_message(r)}\n")
    raise typer.Exit(result.exit_code)
