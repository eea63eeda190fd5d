"""CI outputs of ``planner check``: violation messages, GitHub Actions annotations, JUnit XML."""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner.report.formats import fmt_value

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from planner.budget import BudgetResult, CheckError, CheckReport


def violation_message(r: BudgetResult) -> str:
    """One line: the metric, its value and the bound it breaks."""
    op = "above max" if r.bound == "max" else "below min"
    return (f"{r.scenario}: {r.metric} = {fmt_value(r.value, r.dimension)} is {op} "
            f"{r.limit_text} ({r.value:.6g} vs {r.limit:.6g} {r.dimension})")


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _gh_where(file: str | None, line: int | None) -> str:
    """``file=...,line=...`` properties of an annotation (a path relative to the working
    directory when it lies below it)."""
    import os

    if not file:
        return ""
    rel = os.path.relpath(file) if not os.path.relpath(file).startswith("..") else file
    props = f"file={_gh_escape(rel, prop=True)}"
    return props + (f",line={line}" if line else "")


def github_annotations(report: CheckReport) -> list[str]:
    """GitHub Actions ``::error`` workflow commands, one per violated bound and per invalid
    input, pointing at the line of the budget in its YAML file."""
    lines = []
    for r in report.violations:
        props = _gh_where(r.file, r.line)
        title = _gh_escape(f"budget violated: {r.metric}", prop=True)
        lines.append(f"::error {props},title={title}::{_gh_escape(violation_message(r))}")
    for e in report.errors:
        props = _gh_where(e.file, e.line)
        sep = "," if props else ""
        lines.append(f"::error {props}{sep}title=invalid planner input::{_gh_escape(str(e))}")
    return lines


def _junit_bound(suite: ET.Element, r: BudgetResult) -> None:
    """One bound as a test case: a ``<failure>`` when violated, its value when met."""
    import xml.etree.ElementTree as ET

    attrib = {"classname": f"planner.{r.scenario}", "name": f"{r.metric} {r.bound} {r.limit_text}",
              "file": r.file}
    if r.line:
        attrib["line"] = str(r.line)
    case = ET.SubElement(suite, "testcase", attrib)
    if not r.passed:
        ET.SubElement(case, "failure", message=violation_message(r),
                      type="BudgetViolation").text = violation_message(r)
    else:
        ET.SubElement(case, "system-out").text = (
            f"{r.metric} = {fmt_value(r.value, r.dimension)} ({r.value:.6g} "
            f"{r.dimension}); {r.bound} {r.limit_text}")


def _junit_error(suite: ET.Element, e: CheckError) -> None:
    """An invalid input as a test case with an ``<error>``."""
    import xml.etree.ElementTree as ET

    attrib = {"classname": "planner.input", "name": e.field or "load", "file": e.file or ""}
    if e.line:
        attrib["line"] = str(e.line)
    case = ET.SubElement(suite, "testcase", attrib)
    ET.SubElement(case, "error", message=str(e), type="InvalidInput").text = str(e)


def junit_xml(report: CheckReport) -> str:
    """JUnit XML: one ``<testsuite>`` per scenario file, one ``<testcase>`` per bound (a
    ``<failure>`` when violated); an invalid input is a test case with an ``<error>``."""
    import xml.etree.ElementTree as ET

    suites: dict[str, list[BudgetResult]] = {f: [] for f in report.files}
    for r in report.results:
        suites.setdefault(r.file, []).append(r)
    errors_by_file: dict[str, list[CheckError]] = {}
    for e in report.errors:
        errors_by_file.setdefault(e.file or "(input)", []).append(e)
        suites.setdefault(e.file or "(input)", [])
    root = ET.Element("testsuites", name="planner check", tests=str(
        len(report.results) + len(report.errors)), failures=str(len(report.violations)),
        errors=str(len(report.errors)))
    for file, results in suites.items():
        errs = errors_by_file.get(file, [])
        suite = ET.SubElement(root, "testsuite", name=file, tests=str(len(results) + len(errs)),
                              failures=str(sum(not r.passed for r in results)),
                              errors=str(len(errs)))
        for r in results:
            _junit_bound(suite, r)
        for e in errs:
            _junit_error(suite, e)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
