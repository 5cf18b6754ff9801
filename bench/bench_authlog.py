"""Time sshward's auth-log parser on a generated log and print a JSON dict.

    python bench/bench_authlog.py [FILE] [-n 1000000] [--format rfc3339|classic] [--repeat 3]
        [--fail2ban-container NAME] [--markdown docs/benchmarks.md]

Without FILE a log of -n lines is generated (bench/gen_authlog.py) into a
temporary file first. sshward is timed three ways: events, events summarised per source, and the
per-source counts of ``summarize_sources`` (one regex over whole buffers, no events; what
``sshward authlog --sources`` runs), serially and chunked over all CPUs. The same file, in the
same run, is also processed by:

* ``grep | awk``: the classic failures-per-address pipeline (grep the failure lines, awk
  takes the word after the last "from" and counts);
* ``fail2ban-regex FILE sshd`` inside a lab container that has fail2ban installed
  (``--fail2ban-container``; the file is copied in with ``docker cp``). Its time includes
  fail2ban-regex's start-up (about half a second), negligible at a million lines.

The output is one JSON object; ``--markdown`` also replaces the "Auth-log parser" section of
docs/benchmarks.md (through bench/results.py, other sections are kept) with a table of lines/s
and ratios. The machine's load average is recorded when the run starts and when it ends: others
share the machine, so say how busy it was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "module_utils"))
sys.path.insert(0, str(HERE))

from gen_authlog import generate  # noqa: E402
from results import write_section  # noqa: E402

from sshward.authlog import (  # noqa: E402
    AuthLogParser,
    Summary,
    open_log,
    parse_path,
    summarize_path_parallel,
    summarize_sources,
)


def bench_sshward(path: str, repeat: int) -> dict[str, Any]:
    best_parse = best_total = float("inf")
    stats: dict[str, int] = {}
    sources = 0
    for _ in range(repeat):
        p = AuthLogParser(year=2026)
        t0 = time.perf_counter()
        for _ev in parse_path(path, p):
            pass
        best_parse = min(best_parse, time.perf_counter() - t0)
        p = AuthLogParser(year=2026)
        t0 = time.perf_counter()
        s = Summary().add_all(parse_path(path, p))
        s.offenders(5, ["192.0.2.0/24"])
        best_total = min(best_total, time.perf_counter() - t0)
        stats = p.stats.to_dict()
        sources = len(s.sources)
    lines = stats["lines"]
    return {
        "lines": lines,
        "events": stats["events"],
        "stats": stats,
        "sources": sources,
        "parse_seconds": round(best_parse, 3),
        "parse_lines_per_second": int(lines / best_parse),
        "parse_and_summary_seconds": round(best_total, 3),
        "parse_and_summary_lines_per_second": int(lines / best_total),
    }


AWK = (
    '{a=""; for (i = 1; i < NF; i++) if ($i == "from") a = $(i + 1); if (a != "") c[a]++}'
    " END {for (k in c) print c[k], k}"
)


def bench_parallel(path: str, lines: int, repeat: int, workers: int) -> dict[str, Any]:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        s, _st = summarize_path_parallel(path, workers, year=2026)
        s.offenders(5, ["192.0.2.0/24"])
        best = min(best, time.perf_counter() - t0)
    return {"workers": workers, "seconds": round(best, 3), "lines_per_second": int(lines / best)}


def bench_fast_sources(path: str, lines: int, repeat: int, workers: int) -> dict[str, Any]:
    """The per-source counts without events (``sshward authlog --sources``), serial and chunked."""
    best = best_par = float("inf")
    sources = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        with open_log(path) as f:
            s, n = summarize_sources(f, path)
        s.offenders(5, ["192.0.2.0/24"])
        best = min(best, time.perf_counter() - t0)
        sources = len(s.counted_sources())
        if n != lines:
            raise AssertionError(f"fast summary counted {n} lines, the parser {lines}")
        t0 = time.perf_counter()
        s, _st = summarize_path_parallel(path, workers, fast=True)
        s.offenders(5, ["192.0.2.0/24"])
        best_par = min(best_par, time.perf_counter() - t0)
    return {
        "seconds": round(best, 3),
        "lines_per_second": int(lines / best),
        "sources_with_counts": sources,
        "parallel": {"workers": workers, "seconds": round(best_par, 3), "lines_per_second": int(lines / best_par)},
    }


def bench_grep_awk(path: str, lines: int, repeat: int) -> dict[str, Any]:
    if not (shutil.which("grep") and shutil.which("awk")):
        return {"skipped": "grep or awk missing"}
    best = float("inf")
    sources = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        grep = subprocess.Popen(
            ["grep", "-a", "-E", "Failed password|Invalid user", path], stdout=subprocess.PIPE, env={"LC_ALL": "C"}
        )
        out = subprocess.run(["awk", AWK], stdin=grep.stdout, capture_output=True, check=True, env={"LC_ALL": "C"})
        grep.wait()
        best = min(best, time.perf_counter() - t0)
        sources = len(out.stdout.splitlines())
    return {
        "pipeline": "grep -a -E 'Failed password|Invalid user' FILE | awk '<count the word after the last from>'",
        "seconds": round(best, 3),
        "lines_per_second": int(lines / best),
        "sources": sources,
    }


def bench_fail2ban(path: str, lines: int, container: str | None) -> dict[str, Any]:
    if not container:
        return {"skipped": "no --fail2ban-container given"}
    dest = "/root/bench-authlog.log"  # not /tmp: the lab mounts a tmpfs there, docker cp writes below it
    subprocess.run(["docker", "cp", path, f"{container}:{dest}"], check=True)
    try:
        ver = subprocess.run(
            ["docker", "exec", container, "fail2ban-regex", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["docker", "exec", container, "fail2ban-regex", "--print-no-missed", "--print-no-ignored", dest, "sshd"],
            capture_output=True,
            text=True,
            check=True,
        )
        secs = time.perf_counter() - t0
    finally:
        subprocess.run(["docker", "exec", container, "rm", "-f", dest], check=False)
    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched", proc.stdout)
    return {
        "version": ver.splitlines()[-1] if ver else "",
        "container": container,
        "filter": "sshd (mode normal)",
        "seconds": round(secs, 3),
        "lines_per_second": int(lines / secs),
        "matched": int(m.group(3)) if m else None,
    }


def markdown(result: dict[str, Any]) -> str:
    r = result["results"]
    f2b = r.get("fail2ban", {}).get("lines_per_second")
    ga = r.get("grep_awk", {}).get("lines_per_second")
    rows = [
        ("sshward parser (events)", r["sshward"]["parse_lines_per_second"]),
        ("sshward parser + per-source summary", r["sshward"]["parse_and_summary_lines_per_second"]),
    ]
    fast = r.get("sshward_fast_sources", {})
    if "lines_per_second" in fast:
        rows.append(("sshward per-source counts, no events (`authlog --sources`)", fast["lines_per_second"]))
        rows.append(("the same, chunked over all CPUs", fast["parallel"]["lines_per_second"]))
    for name, key in (
        ("sshward summary, chunked over all CPUs", "sshward_parallel"),
        ("grep \\| awk failures per address", "grep_awk"),
        ("fail2ban-regex, sshd filter", "fail2ban"),
    ):
        if "lines_per_second" in r.get(key, {}):
            rows.append((name, r[key]["lines_per_second"]))

    def ratio(a: int, b: int | None) -> str:
        if not b:
            return "n/a"
        x = a / b
        return f"{x:.1f}x faster" if x >= 1 else f"{1 / x:.1f}x slower"

    m = result["machine"]
    out = [
        "## Auth-log parser",
        "",
        "`python bench/bench_authlog.py --fail2ban-container CONTAINER --markdown`: "
        f"one {result['input']['lines']:,}-line generated auth.log ({result['input']['bytes']:,} bytes, "
        f"{result['input']['format']} timestamps), every tool on the same file in the same run; "
        f"Python {m['python']}, {m['cpu_count']} CPUs; load average (1, 5, 15 min) {m.get('load', 'n/a')} when it "
        f"started and {m.get('load_after', 'n/a')} when it ended. "
        f"fail2ban-regex ({r.get('fail2ban', {}).get('version', 'n/a')}) ran in a lab container on the same machine "
        "(its time includes its start-up, negligible here).",
        "",
        "| tool | lines/s | vs fail2ban-regex | vs grep \\| awk |",
        "| --- | ---: | --- | --- |",
    ]
    for name, lps in rows:
        out.append(f"| {name} | {lps:,} | {ratio(lps, f2b)} | {ratio(lps, ga)} |")
    out.append("")
    return "\n".join(out) + "\n"


def write_markdown(section: str) -> None:
    title, _, body = section.partition("\n")
    write_section(title.removeprefix("## "), body)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?")
    ap.add_argument("-n", "--lines", type=int, default=1_000_000)
    ap.add_argument("--format", choices=["rfc3339", "classic"], default="rfc3339")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fail2ban-container", default=None, help="lab container with fail2ban installed")
    ap.add_argument(
        "--markdown", action="store_true", help="update the 'Auth-log parser' section of docs/benchmarks.md"
    )
    ap.add_argument("--from-json", default=None, help="only render --markdown from a saved JSON result")
    a = ap.parse_args(argv)
    if a.from_json:
        write_markdown(markdown(json.loads(Path(a.from_json).read_text())))
        return 0
    tmp = None
    path = a.file
    if path is None:
        fd, tmp = tempfile.mkstemp(prefix="authlog-bench-", suffix=".log")
        with os.fdopen(fd, "wb") as f:
            generate(f, a.lines, 1, a.format)
        path = tmp
    try:
        result: dict[str, Any] = {
            "benchmark": "authlog",
            "input": {
                "file": a.file or "generated",
                "lines": a.lines,
                "format": a.format,
                "bytes": os.path.getsize(path),
            },
            "machine": {
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            },
            "results": {"sshward": bench_sshward(path, a.repeat)},
        }
        n = result["results"]["sshward"]["lines"]
        result["results"]["sshward_parallel"] = bench_parallel(path, n, a.repeat, os.cpu_count() or 2)
        result["results"]["sshward_fast_sources"] = bench_fast_sources(path, n, a.repeat, os.cpu_count() or 2)
        result["results"]["grep_awk"] = bench_grep_awk(path, n, a.repeat)
        result["results"]["fail2ban"] = bench_fail2ban(path, n, a.fail2ban_container)
        result["machine"]["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    finally:
        if tmp:
            os.unlink(tmp)
    print(json.dumps(result, indent=2))
    if a.markdown:
        write_markdown(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
