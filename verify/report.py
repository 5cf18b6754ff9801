"""``--sshward-report=DIR``: one summary per host, as markdown (``DIR/<host>.md``) and as a
self-contained HTML page (``DIR/<host>.html``, no scripts, no external resources).

Each row is one control as run on that host: ID, title, result (passed / FAILED / skipped / ERROR),
the reason (the failure message or the skip reason) and the CIS / dev-sec references. Reasons quote
what the host said (file contents, user names, log text): hostile data, escaped in both formats.
"""

from __future__ import annotations

import html
import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

RESULT_ORDER = {"FAILED": 0, "ERROR": 1, "skipped": 2, "passed": 3}
_SAFE = re.compile(r"[^A-Za-z0-9._@-]+")


def host_name(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    if host is None:
        return "local"
    return str(host.backend.get_hostname())


def file_name(host: str) -> str:
    return _SAFE.sub("_", host).strip("._") or "host"


def reason_of(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2])
        text = text.removeprefix("Skipped: ")
    else:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr or "")
        text = text.split("\nassert ")[0].removeprefix("AssertionError: ")
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= 600 else text[:600] + "..."


def cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;") or " "


class Reporter:
    def __init__(self, directory: str) -> None:
        self.dir = Path(directory)
        self.rows: dict[str, dict[str, dict[str, str]]] = {}  # host -> nodeid -> row

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when == "teardown" and report.passed:
            return
        marker = item.get_closest_marker("control")
        control_id, title = marker.args[:2] if marker else ("-", item.name)
        kwargs = marker.kwargs if marker else {}
        if report.failed:
            result = "FAILED" if report.when == "call" else "ERROR"
        elif report.skipped:
            result = "skipped"
        elif report.when == "call":
            result = "passed"
        else:
            return  # a passed setup: wait for the call
        host = host_name(item)
        rows = self.rows.setdefault(host, {})
        if item.nodeid in rows and rows[item.nodeid]["result"] in ("FAILED", "ERROR"):
            return  # keep the first failure (a teardown error after a failed call)
        rows[item.nodeid] = {
            "control": str(control_id),
            "title": str(title),
            "result": result,
            "reason": "" if result == "passed" else reason_of(report),
            "cis": str(kwargs.get("cis") or ""),
            "devsec": str(kwargs.get("devsec") or ""),
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.rows:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        for host, rows in self.rows.items():
            (self.dir / f"{file_name(host)}.md").write_text(render(host, list(rows.values())))
            (self.dir / f"{file_name(host)}.html").write_text(render_html(host, list(rows.values())))


def summary_of(rows: list[dict[str, str]]) -> str:
    counts = {r: sum(1 for row in rows if row["result"] == r) for r in RESULT_ORDER}
    return ", ".join(f"{n} {r.lower()}" for r, n in counts.items() if n)


def ordered(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Failures first, then errors, skips and passes; by control ID within each."""
    return sorted(rows, key=lambda r: (RESULT_ORDER[r["result"]], r["control"]))


def render(host: str, rows: list[dict[str, str]]) -> str:
    summary = summary_of(rows)
    lines = [
        f"# sshward verify: {host}",
        "",
        f"{summary} ({len(rows)} checks). CIS: CIS Debian Linux 12 Benchmark v1.1.0; "
        "dev-sec: dev-sec/ssh-baseline control.",
        "",
        "| control | title | result | reason | CIS | dev-sec |",
        "|---|---|---|---|---|---|",
    ]
    for row in ordered(rows):
        result = f"**{row['result']}**" if row["result"] in ("FAILED", "ERROR") else row["result"]
        lines.append(
            f"| {row['control']} | {cell(row['title'])} | {result} | {cell(row['reason'])} "
            f"| {cell(row['cis'])} | {cell(row['devsec'])} |"
        )
    return "\n".join(lines) + "\n"


HEADERS = ("control", "title", "result", "reason", "CIS", "dev-sec")
# The page needs nothing but its own inline style: no scripts, images or requests, whatever a reason holds.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_CSS = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}"
    "td.reason{white-space:pre-wrap;font-family:monospace}"
    ".FAILED,.ERROR{background:#fdd}.skipped{background:#ffd}.passed{background:#dfd}"
)


def render_html(host: str, rows: list[dict[str, str]]) -> str:
    """The same table as :func:`render`, as one HTML page. Every value is escaped (quotes too), so a
    reason quoting ``<script>`` or ``" onmouseover=`` from the host stays text."""
    e = html.escape
    cells = ("control", "title", "result", "reason", "cis", "devsec")
    body = []
    for row in ordered(rows):
        # the result is one of RESULT_ORDER's keys, a safe class name; escaped all the same
        tds = "".join(f'<td class="{c}">{e(row[c])}</td>' for c in cells)
        body.append(f'<tr class="{e(row["result"])}">{tds}</tr>')
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(_CSP)}">',
        f"<title>sshward verify: {e(host)}</title><style>{_CSS}</style></head><body>",
        f"<h1>sshward verify: {e(host)}</h1>",
        f"<p>{e(summary_of(rows))} ({len(rows)} checks). CIS: CIS Debian Linux 12 Benchmark v1.1.0; "
        "dev-sec: dev-sec/ssh-baseline control.</p>",
        "<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in HEADERS) + "</tr></thead><tbody>",
    ]
    return "\n".join([*head, *body, "</tbody></table></body></html>", ""])
