"""Shared fixtures. Container tests carry the `lab` mark: `pytest -m "not lab"` runs only the fast ones."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab/" in item.nodeid:
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


def run(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT, check: bool = True, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Run a command as a list (no shell); on failure show its tail, which is what one needs to debug CI."""
    proc = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).splitlines()[-80:])
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}", pytrace=False)
    return proc
