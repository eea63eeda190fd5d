"""CI outputs of ``planner check``: violation messages, GitHub Actions annotations, JUnit XML."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from planner.report.formats import fmt_value

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from planner.budget import BudgetResult, CheckError, CheckReport


#: Control characters (C0, DEL, C1): a scenario name could otherwise move the cursor or colour
#: a terminal, or break a line of CI output.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


def violation_message(r: BudgetResult) -> str:
    """One line: the metric, its value and the bound it breaks."""
    op = "above max" if r.bound == "max" else "below min"
    return (f"{printable(r.scenario)}: {r.metric} = {fmt_value(r.value, r.dimension)} is {op} "
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


#: Characters that XML 1.0 cannot hold, not even escaped: control characters other than tab,
#: newline and carriage return; lone surrogates (a file name's undecodable bytes); U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold written as ``\\xNN`` / ``\\uNNNN``
    (a scenario name with a control character still makes valid JUnit XML)."""
    return _NOT_XML.sub(lambda m: ascii(m.group())[1:-1], text)


def _element(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """A child element whose attributes and text are :func:`xml_safe`."""
    import xml.etree.ElementTree as ET

    node = ET.SubElement(parent, tag, {k: xml_safe(v) for k, v in attrib.items()})
    if text is not None:
        node.text = xml_safe(text)
    return node


def _junit_bound(suite: ET.Element, r: BudgetResult) -> None:
    """One bound as a test case: a ``<failure>`` when violated, its value when met."""
    attrib = {"classname": f"planner.{r.scenario}", "name": f"{r.metric} {r.bound} {r.limit_text}",
              "file": r.file}
    if r.line:
        attrib["line"] = str(r.line)
    case = _element(suite, "testcase", **attrib)
    if not r.passed:
        _element(case, "failure", violation_message(r), message=violation_message(r),
                 type="BudgetViolation")
    else:
        _element(case, "system-out", f"{r.metric} = {fmt_value(r.value, r.dimension)} "
                 f"({r.value:.6g} {r.dimension}); {r.bound} {r.limit_text}")


def _junit_error(suite: ET.Element, e: CheckError) -> None:
    """An invalid input as a test case with an ``<error>``."""
    attrib = {"classname": "planner.input", "name": e.field or "load", "file": e.file or ""}
    if e.line:
        attrib["line"] = str(e.line)
    case = _element(suite, "testcase", **attrib)
    _element(case, "error", str(e), message=str(e), type="InvalidInput")


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
        suite = _element(root, "testsuite", name=file, tests=str(len(results) + len(errs)),
                         failures=str(sum(not r.passed for r in results)), errors=str(len(errs)))
        for r in results:
            _junit_bound(suite, r)
        for e in errs:
            _junit_error(suite, e)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
