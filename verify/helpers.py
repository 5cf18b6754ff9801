"""Helpers the control modules share: the control marker, running as root, `sshd -T -C`."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from sshward.effective import Effective, parse_sshd_T

# The connection context `sshd -T -C` evaluates Match blocks for: a user no Match names, from a
# documentation address (RFC 5737), so the global settings are what is checked.
DEFAULT_CONTEXT = {"user": "sshward-verify", "host": "verify.invalid", "addr": "192.0.2.1"}


def control(control_id: str, title: str, cis: str | None = None, devsec: str | None = None) -> pytest.MarkDecorator:
    """The marker every control carries (CIS = CIS Debian Linux 12 Benchmark v1.1.0 item, devsec =
    dev-sec ssh-baseline control ID); ``None`` where no item matches."""
    return pytest.mark.control(control_id, title, cis=cis, devsec=devsec)


_UIDS: dict[int, str] = {}


def as_root(host) -> Any:
    """A context running commands as root: sudo, unless the connection already is root (docker://)."""
    if id(host) not in _UIDS:
        _UIDS[id(host)] = host.run("id -u").stdout.strip()
    return contextlib.nullcontext() if _UIDS[id(host)] == "0" else host.sudo()


def sshd_T(host, **context: str) -> Effective:
    """`sshd -T -C ...` on the host for a connection context (Match blocks applied)."""
    ctx = {**DEFAULT_CONTEXT, **context}
    spec = ",".join(f"{k}={v}" for k, v in ctx.items())
    with as_root(host):
        host.run("mkdir -p /run/sshd")
        result = host.run("sshd -T -C %s", spec)
    assert result.rc == 0, f"sshd -T -C {spec} failed: {result.stderr.strip()}"
    return parse_sshd_T(result.stdout)


class Stat:
    """Owner, mode and type of a path on the host, from one `stat` call for many paths."""

    def __init__(self, uid: int, gid: int, mode: int, kind: str, path: str) -> None:
        self.uid, self.gid, self.mode, self.kind, self.path = uid, gid, mode, kind, path

    def __repr__(self) -> str:
        return f"{self.path} ({self.kind}, uid {self.uid}, gid {self.gid}, mode {self.mode:04o})"


def stat_paths(host, paths: list[str]) -> dict[str, Stat]:
    """{path: Stat} for the paths that exist (as root, so unreadable homes are seen too)."""
    if not paths:
        return {}
    fmt = "%u|%g|%a|%F|%n"
    with as_root(host):
        result = host.run("stat -c %s -- " + " ".join(["%s"] * len(paths)) + " 2>/dev/null || true", fmt, *paths)
    out = {}
    for line in result.stdout.splitlines():
        uid, gid, mode, kind, path = line.split("|", 4)
        out[path] = Stat(int(uid), int(gid), int(mode, 8), kind, path)
    return out


def writable_by_others(mode: int) -> bool:
    """Group or world writable: what sshd's StrictModes refuses (mode & 022)."""
    return bool(mode & 0o022)
