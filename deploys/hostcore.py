"""Run the sshward core on a pyinfra host, as Ansible runs it inside a module.

Some steps must run where the evidence is (sessions from /proc and utmp, killing a process tree,
authorized_keys, the journal). Ansible ships ``module_utils/sshward`` inside each module; here the
modules a step needs (the core module and what it imports, found from its relative imports) go
in a zip, base64 in the command, into a private ``mktemp -d`` directory that is removed again in
the same command, so a dry run leaves nothing behind either. Python imports straight from the zip.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import zipfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import sshward

CORE = Path(sshward.__file__).resolve().parent
_RELATIVE = re.compile(r"^from \.(\w*) import ([\w, ]+)", re.MULTILINE)
#: Python on the host; -I: no PYTHON* variables, no user site, no current directory on sys.path.
PYTHON = ("python3", "-I", "-B")


def _needs(module: str) -> set[str]:
    found = {module}
    todo = [module]
    while todo:
        text = (CORE / f"{todo.pop()}.py").read_text()
        for sub, names in _RELATIVE.findall(text):
            candidates = [sub] if sub else [n.strip().split(" as ")[0] for n in names.split(",")]
            for name in candidates:
                if name and name not in found and (CORE / f"{name}.py").is_file():
                    found.add(name)
                    todo.append(name)
    return found


@cache
def core_zip(module: str) -> str:
    """base64 of a zip holding ``sshward/<module>.py`` and every core module it imports."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(_needs(module) | {"__init__"}):
            # A fixed date: the same core gives the same command, so pyinfra's output stays stable.
            info = zipfile.ZipInfo(f"sshward/{name}.py", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (CORE / f"{name}.py").read_bytes())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def request_command(module: str, request: Mapping[str, Any], status: bool = True) -> str:
    """Shell command running ``sshward.<module>.main([base64 JSON request])`` on the host.

    Its standard output is the module's JSON answer; the exit code is the module's, or 0 with
    ``status=False`` (a fact: pyinfra fails the host on a fact's non-zero exit, and the answer
    already carries the refusal).
    """
    payload = base64.b64encode(json.dumps(request, sort_keys=True).encode()).decode("ascii")
    code = (
        f"import sys; sys.path.insert(0, sys.argv[1]); from sshward import {module}; "
        f"sys.exit({module}.main(sys.argv[2:]))"
    )
    python = " ".join(shlex.quote(a) for a in PYTHON)
    return (
        "d=$(mktemp -d) && "
        f'printf %s {core_zip(module)} | base64 -d > "$d/core.zip" && '
        f'{{ {python} -c {shlex.quote(code)} "$d/core.zip" {payload}; rc=$?; rm -rf "$d"; '
        + ("exit $rc; }" if status else "true; }")
    )


def parse_answer(lines: list[str]) -> dict[str, Any]:
    """The JSON answer (the last line that parses); ``{"error": ...}`` when there is none."""
    for line in reversed(lines):
        line = line.strip()
        if line.startswith("{"):
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if isinstance(answer, dict):
                return answer
    return {"error": "no answer from the host: " + " | ".join(lines[-5:])}
