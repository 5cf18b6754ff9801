"""Write one benchmark's section into docs/benchmarks.md, keeping the other sections as they are."""

from __future__ import annotations

import datetime
import platform
import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nWritten by the scripts in bench/; each section says how it was measured.\n"


def write_section(title: str, body: str) -> None:
    text = DOC.read_text() if DOC.exists() else HEADER
    stamp = f"_{datetime.date.today().isoformat()}, {platform.machine()}, {platform.python_version()}_"
    section = f"## {title}\n\n{stamp}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    text = pattern.sub(lambda _m: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
