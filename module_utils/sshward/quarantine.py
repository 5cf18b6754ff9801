"""Take an intruder's keys and planted executables out of service, keeping them as evidence.

Keys: lines of authorized_keys files whose key fingerprint is listed are removed (the file is
rewritten atomically with its owner and mode); each removed line is appended, with where it was,
to a quarantine file in the evidence bundle. Nothing else in the file changes (comments, other
keys, options, line endings).

Executables: the file a process runs is copied from ``/proc/<pid>/exe`` (this works even when it
was deleted), hashed, stored non-executable in the quarantine, and the original, if it still
exists, is moved aside (renamed in place with a ``.sshward-quarantine`` suffix) and made
non-executable (``chmod a-rx``). The process itself is killed only when asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from . import keys

QUARANTINE_SUFFIX = ".sshward-quarantine"


class QuarantineError(Exception):
    pass


@dataclass
class KeyRemoval:
    user: str
    file: str
    line: int
    fingerprint: str
    keytype: str
    comment: str
    raw: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_key_removal(user: str, path: str, data: bytes, fingerprints: Iterable[str]) -> tuple[bytes, list[KeyRemoval]]:
    """The new file content and the lines removed. Line endings and every other byte are kept."""
    wanted = set(fingerprints)
    kept: list[bytes] = []
    removed: list[KeyRemoval] = []
    for lineno, raw in enumerate(data.splitlines(keepends=True), 1):
        text = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
        entry = keys.parse_authorized_line(text, path, lineno)
        if entry is not None and entry.key is not None and entry.key.fingerprint in wanted:
            removed.append(
                KeyRemoval(user, path, lineno, entry.key.fingerprint, entry.key.keytype, entry.key.comment, text)
            )
            continue
        kept.append(raw)
    return b"".join(kept), removed


def _read_nofollow(path: str) -> tuple[bytes, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise QuarantineError(f"{path}: not a regular file; left alone")
        return fh.read(keys.MAX_LINE * 4096), st


def rewrite_keeping_owner(path: str, data: bytes, st: os.stat_result) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".sshward-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def append_records(path: str, records: Sequence[dict[str, Any]]) -> None:
    """Append to a JSON list file (created 0600)."""
    existing: list[dict[str, Any]] = []
    try:
        with open(path) as fh:
            existing = json.load(fh)
    except (OSError, ValueError):
        existing = []
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as fh:
        json.dump(existing + list(records), fh, indent=1, sort_keys=True, ensure_ascii=True)
    os.replace(tmp, path)


def quarantine_keys(
    files: Iterable[tuple[str, str]],
    fingerprints: Iterable[str],
    quarantine_file: str | None,
    protect: Iterable[str] = (),
    check: bool = False,
    annotate: Mapping[str, Any] | None = None,
) -> list[KeyRemoval]:
    """Remove the keys with ``fingerprints`` from ``files`` ((user, path) pairs).

    ``protect``: fingerprints that must never be removed (the admin's own key); asking for
    one raises :class:`QuarantineError` before anything changes. ``annotate``: fields added to
    each quarantine record (the host and the time, for a fleet-wide revocation).
    """
    wanted = set(fingerprints)
    clash = wanted & set(protect)
    if clash:
        raise QuarantineError(
            f"fingerprints: {', '.join(sorted(clash))} is also the key this admin connection uses; "
            "quarantining it would lock you out. Remove it from the list, or log in with another key first"
        )
    plans = []
    for user, path in files:
        try:
            data, st = _read_nofollow(path)
        except (OSError, QuarantineError):
            continue
        new, removed = plan_key_removal(user, path, data, wanted)
        if removed:
            plans.append((path, new, st, removed))
    done: list[KeyRemoval] = []
    for path, new, st, removed in plans:
        if not check:
            if quarantine_file:
                append_records(quarantine_file, [{**r.to_dict(), **(annotate or {})} for r in removed])
            rewrite_keeping_owner(path, new, st)
        done.extend(removed)
    return done


@dataclass
class ExeQuarantine:
    pid: int
    path: str
    deleted: bool
    sha256: str
    size: int
    quarantined_as: str
    moved_aside: str
    killed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quarantine_executable(
    pid: int, exe: str, deleted: bool, store_dir: str, kill: bool = False, check: bool = False, proc: str = "/proc"
) -> ExeQuarantine:
    """Copy /proc/<pid>/exe into ``store_dir`` (0400, named by hash), move the original aside and
    make it non-executable, optionally SIGKILL the process."""
    h = hashlib.sha256()
    chunks = []
    with open(f"{proc}/{pid}/exe", "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            chunks.append(chunk)
    digest = h.hexdigest()
    size = sum(len(c) for c in chunks)
    dest = os.path.join(store_dir, f"{digest}.bin")
    aside = ""
    if not deleted and os.path.lexists(exe):
        aside = exe + QUARANTINE_SUFFIX
    result = ExeQuarantine(pid, exe, deleted, digest, size, dest, aside, False)
    if check:
        result.killed = kill
        return result
    os.makedirs(store_dir, mode=0o700, exist_ok=True)
    if not os.path.exists(dest):
        with open(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400), "wb") as out:
            for c in chunks:
                out.write(c)
    if aside:
        st = os.lstat(exe)
        if stat.S_ISREG(st.st_mode):
            os.rename(exe, aside)
            os.chmod(aside, stat.S_IMODE(st.st_mode) & ~0o555)
        else:
            result.moved_aside = ""
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
            result.killed = True
        except ProcessLookupError:
            pass
    return result
