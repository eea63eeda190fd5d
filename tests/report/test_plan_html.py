"""planner plan --html: one self-contained page. Parsed here: it references nothing outside
itself (no script, stylesheet, image or font from a URL; no <script> at all), it holds an
inline <svg> with the frontier of every hardware, and the best point's row. A headless browser
is not installed on the build machine, so "opens with no console errors" is checked as: the
HTML and the SVG parse (html.parser, xml.etree) and every tag that opens closes."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "studies"))
from plan_support import fake_workload  # noqa: E402

from planner.catalog import load_hardware, load_model  # noqa: E402
from planner.report.plan_html import frontier_svg, nice_ticks, plan_html  # noqa: E402
from planner.studies.plan import PlanQuery  # noqa: E402
from planner.studies.plan_select import plan  # noqa: E402

VOID = {"meta", "br", "img", "link", "input", "hr", "col", "area", "base", "source", "wbr"}
#: Attributes that load something.
LOADING = {"src", "href", "srcset", "data", "poster", "action", "xlink:href"}


class Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.external: list[tuple[str, str, str]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in LOADING or "url(" in (value or ""):
                self.external.append((tag, name, value or ""))
        if tag not in VOID and tag not in ("circle", "line", "rect", "polyline"):
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in LOADING:
                self.external.append((tag, name, value or ""))

    def handle_endtag(self, tag):
        if tag in ("circle", "line", "rect", "polyline"):
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


@pytest.fixture(scope="module")
def result():
    model = load_model("deepseek-v3")
    hws = [load_hardware("h200"), load_hardware("b200")]
    return plan(model, hws, None, PlanQuery(isl=1024, osl=1024, tpot_s=0.02),
                evaluate=fake_workload)


def test_html_is_self_contained_with_an_svg_plot(result):
    page = plan_html(result)
    audit = Audit()
    audit.feed(page)
    audit.close()
    assert not audit.external, audit.external
    assert "script" not in audit.tags and "link" not in audit.tags
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert audit.tags.count("svg") == 1 and "polyline" in audit.tags
    assert not audit.errors and not audit.stack, (audit.errors, audit.stack)
    assert page.startswith("<!DOCTYPE html>")
    # The best row and the inputs are in the page.
    assert "best" in page and "ISL" in page and "1,024" in page


def test_the_svg_parses_and_draws_each_frontier(result):
    root = ET.fromstring(frontier_svg(result))
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{ns}polyline")
    assert len(lines) == len(result.frontier) == 2
    for line, idx in zip(lines, result.frontier.values()):
        assert len(line.get("points").split()) == len(idx)
    assert any(t.text == "best" for t in root.iter(f"{ns}text"))


def test_nice_ticks():
    assert nice_ticks(0, 97) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0, 4.2) == [0, 1, 2, 3, 4, 5]
