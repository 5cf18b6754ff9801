"""A record that sshd's files changed but the running daemon has not been reloaded and proven yet.

sshd reads its files only at start and reload, and ``sshd -T`` reads the files, not the daemon. A run
that dies between writing the files and reloading would leave the next run seeing nothing to change,
never reloading, and a verify run passing while the daemon still serves the old settings. Both front
ends therefore write this record when they install new files and delete it only after the reload was
probed and confirmed; while it exists, the next run reloads (behind the same armed revert) even when
no file differs. It lives under /run: a reboot restarts sshd with the files on disk, which settles it.
"""

from __future__ import annotations

import json
import os
from typing import Any

PENDING_RELOAD_PATH = "/run/sshward/sshd-reload-pending.json"


class PendingReloadError(ValueError):
    pass


def render(changed_files: list[str], backups: list[dict[str, str]]) -> str:
    """The record's text: which files changed and the backups a revert restores."""
    return json.dumps({"changed_files": sorted(changed_files), "backups": backups}, sort_keys=True) + "\n"


def parse(text: str) -> dict[str, Any]:
    """Read a record, refusing anything but absolute paths (a revert restores files from it)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PendingReloadError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PendingReloadError("not a JSON object")
    changed = data.get("changed_files", [])
    backups = data.get("backups", [])
    if not isinstance(changed, list) or not all(isinstance(p, str) and os.path.isabs(p) for p in changed):
        raise PendingReloadError("changed_files must be a list of absolute paths")
    if not isinstance(backups, list):
        raise PendingReloadError("backups must be a list")
    clean = []
    for entry in backups:
        if not isinstance(entry, dict):
            raise PendingReloadError("each backup must be an object")
        path, backup = entry.get("path"), entry.get("backup")
        if not (isinstance(path, str) and isinstance(backup, str) and os.path.isabs(path) and os.path.isabs(backup)):
            raise PendingReloadError("each backup needs absolute 'path' and 'backup'")
        clean.append({"path": path, "backup": backup})
    return {"changed_files": changed, "backups": clean}


def restore_first(owed: dict[str, Any] | None, backups: list[dict[str, str]]) -> list[dict[str, str]]:
    """The backups a revert restores: an interrupted run's (the last state proven to work) win over
    this run's for the same file, which only hold files that were never loaded."""
    if owed is None:
        return list(backups)
    kept = {entry["path"] for entry in owed["backups"]}
    return list(owed["backups"]) + [entry for entry in backups if entry["path"] not in kept]


def read(path: str = PENDING_RELOAD_PATH) -> dict[str, Any] | None:
    """The pending record, or None. An unreadable record still means a reload is owed, without backups."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:  # a symlink planted in its place, for one
        raise PendingReloadError(f"{path}: cannot read it safely ({exc.strerror})") from None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as fh:
        text = fh.read(1 << 20)
    try:
        return parse(text)
    except PendingReloadError:
        return {"changed_files": [], "backups": []}


def record(changed_files: list[str], backups: list[dict[str, str]], path: str = PENDING_RELOAD_PATH) -> None:
    """Write the record atomically, root-only."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render(changed_files, backups))
    os.replace(tmp, path)
