"""The verify suite's plumbing without hosts: control IDs in JUnit XML, --controls, the markdown and
HTML reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from verify.report import cell, render, render_html

pytest_plugins = ["pytester"]

CONTROLS = """
import pytest

@pytest.mark.control("SSHW-T-001", "passes", cis="5.1.16", devsec="sshd-19")
def test_passes():
    pass

@pytest.mark.control("SSHW-T-002", "fails with a reason")
def test_fails():
    assert 1 == 2, "PasswordAuthentication: sshd -T says ['yes']"

@pytest.mark.control("SSHW-T-003", "does not apply")
def test_skipped():
    pytest.skip("Protocol does not apply to this OpenSSH version")

@pytest.mark.control("SSHW-U-001", "another family")
def test_other():
    pass
"""


@pytest.fixture
def result(pytester: pytest.Pytester):
    pytester.makepyfile(test_controls=CONTROLS)
    report = pytester.path / "report"
    run = pytester.runpytest("-p", "verify.conftest", f"--sshward-report={report}", "--junitxml=j.xml")
    return run, report, ET.parse(pytester.path / "j.xml").getroot()


def test_junit_carries_control_id_title_and_references(result) -> None:
    run, _, root = result
    run.assert_outcomes(passed=2, failed=1, skipped=1)
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in root.iter("testcase")
    }
    assert props["test_passes"] == {"control": "SSHW-T-001", "title": "passes", "cis": "5.1.16", "devsec": "sshd-19"}
    assert props["test_fails"]["control"] == "SSHW-T-002"


def test_markdown_report_has_id_title_result_and_reason(result) -> None:
    _, report, _ = result
    md = (report / "local.md").read_text()
    assert "| SSHW-T-001 | passes | passed |   | 5.1.16 | sshd-19 |" in md
    assert "| SSHW-T-002 | fails with a reason | **FAILED** | PasswordAuthentication: sshd -T says ['yes'] |" in md
    assert "| SSHW-T-003 | does not apply | skipped | Protocol does not apply to this OpenSSH version |" in md
    assert md.index("SSHW-T-002") < md.index("SSHW-T-003") < md.index("SSHW-T-001"), "failures first"


def test_controls_option_selects_by_prefix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    pytester.runpytest("-p", "verify.conftest", "--controls=SSHW-U").assert_outcomes(passed=1, deselected=3)


def test_cells_cannot_break_the_table() -> None:
    assert cell("a|b\\c<script>") == "a\\|b\\\\c&lt;script>"
    assert "| x | t | **ERROR** | boom |" in render("h", [
        {"control": "x", "title": "t", "result": "ERROR", "reason": "boom", "cis": "", "devsec": ""}
    ])  # fmt: skip


class _Page(HTMLParser):
    """The tags of a page, and the text of each table row's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += attrs
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_html_report_next_to_the_markdown_one(result) -> None:
    _, report, _ = result
    page = _Page()
    page.feed((report / "local.html").read_text())
    rows = [r for r in page.rows if r]
    assert rows[0][:3] == ["SSHW-T-002", "fails with a reason", "FAILED"], "failures first"
    assert rows[0][3] == "PasswordAuthentication: sshd -T says ['yes']"
    assert ["SSHW-T-001", "passes", "passed", "", "5.1.16", "sshd-19"] in rows
    assert len(rows) == 4


def test_html_report_keeps_hostile_text_as_text() -> None:
    hostile = "</td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)>\" onmouseover='x' &amp;"
    row = {"control": "SSHW-X-001", "title": hostile, "result": "FAILED", "reason": hostile, "cis": "", "devsec": ""}
    text = render_html("<b>host</b>", [row])
    page = _Page()
    page.feed(text)
    assert page.tags == {"html", "head", "meta", "title", "style", "body", "h1", "p", "table", "thead", "tr", "th",
                         "tbody", "td"}  # fmt: skip
    assert not any(name.startswith("on") or name == "src" for name, _ in page.attrs)
    assert [r for r in page.rows if r] == [["SSHW-X-001", hostile, "FAILED", hostile, "", ""]], "shown verbatim"
    assert "<b>host</b>" not in text and "&lt;b&gt;host&lt;/b&gt;" in text
