"""Time sshward's auth-log parser on a generated log and print a JSON dict.

    python bench/bench_authlog.py [FILE] [-n 1000000] [--format rfc3339|classic] [--repeat 3]

Without FILE a log of -n lines is generated (bench/gen_authlog.py) into a
temporary file first. The output is one JSON object; later benchmarks add
peers (fail2ban, ...) as further keys under "results".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "module_utils"))
sys.path.insert(0, str(HERE))

from gen_authlog import generate  # noqa: E402

from sshward.authlog import AuthLogParser, Summary, parse_path  # noqa: E402


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?")
    ap.add_argument("-n", "--lines", type=int, default=1_000_000)
    ap.add_argument("--format", choices=["rfc3339", "classic"], default="rfc3339")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
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
            },
            "results": {"sshward": bench_sshward(path, a.repeat)},
        }
    finally:
        if tmp:
            os.unlink(tmp)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
