"""File integrity: SHA-256 baselines kept off the host, and the package manager's own checksums.

The old advice after a break-in is "keep an off-site list of your files and their hashes": an
intruder who owns the host can rewrite anything stored on it, including the list. So the host only
*computes* (:func:`hash_paths`, run by the ``sshward_file_hashes`` module or the verify suite), and
the baseline document (:func:`make_baseline`) lives on the controller; :func:`compare` tells what
was added, removed or changed since.

Package-owned files have a second, baseline-free reference: ``dpkg --verify`` / ``rpm -Va`` compare
them with the checksums the package shipped (:func:`parse_verify_output`, :func:`package_findings`),
which tells a trojaned ``/usr/sbin/sshd`` even on a host nobody recorded.

Standard library only, importable on Python 3.9 (target hosts) and executable on its own: the verify
suite runs this file's source with ``python3 -c`` on the host (see :func:`main`), so the hashing is the
same code on every path. Therefore: no relative imports and no dataclasses here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

BASELINE_FORMAT = 1

# What harden.yml records by default: SSH config and host keys, PAM, sudoers, and the binaries an
# intruder replaces to keep a way in (sshd and its OpenSSH 10 helpers, the client, sudo, login).
DEFAULT_PATHS = (
    "/etc/ssh",
    "/etc/pam.d",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/usr/sbin/sshd",
    "/usr/lib/openssh/sshd-session",
    "/usr/lib/openssh/sshd-auth",
    "/usr/bin/ssh",
    "/usr/bin/sudo",
    "/usr/bin/login",
)

# Package files whose modification is reported even when the package marks them as configuration.
SSHD_BINARIES = frozenset(
    {
        "/usr/sbin/sshd",
        "/usr/lib/openssh/sshd-session",
        "/usr/lib/openssh/sshd-auth",
        "/usr/lib/openssh/sftp-server",
    }
)

_CHUNK = 1 << 16

Entry = dict[str, Any]


class Diff(NamedTuple):
    added: list[str]
    removed: list[str]
    changed: dict[str, list[str]]  # path -> the fields that differ (sha256, mode, uid, gid, type, target)

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.changed)


class VerifyFinding(NamedTuple):
    """One line of ``dpkg --verify`` / ``rpm -Va`` output."""

    path: str
    flags: str  # 9 check columns (5 = digest), or "missing"
    conffile: bool

    @property
    def missing(self) -> bool:
        return self.flags == "missing"

    @property
    def digest_changed(self) -> bool:
        return not self.missing and len(self.flags) >= 3 and self.flags[2] == "5"


# ------------------------------------------------------------------ hashing


def sha256_file(path: str) -> str:
    """SHA-256 of a regular file, opened without following a symlink swapped in meanwhile."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is no longer a regular file")
        digest = hashlib.sha256()
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def file_entry(path: str) -> Entry | None:
    """What the baseline records about one path (None if it does not exist).

    Regular files: type, sha256, mode, uid, gid. Symlinks: their target (never followed).
    Directories: mode and owner (a new world-writable drop-in directory is a change too).
    Anything else (sockets, devices): type and mode only.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    entry: Entry = {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid, "gid": st.st_gid}
    if stat.S_ISREG(st.st_mode):
        entry["type"] = "file"
        entry["sha256"] = sha256_file(path)
    elif stat.S_ISLNK(st.st_mode):
        entry["type"] = "symlink"
        entry["target"] = os.readlink(path)
    elif stat.S_ISDIR(st.st_mode):
        entry["type"] = "dir"
    else:
        entry["type"] = "other"
    return entry


def hash_paths(paths: Iterable[str]) -> tuple[dict[str, Entry], list[str]]:
    """({path: entry} for every path and everything below the directories, [paths that do not exist]).

    Directories are walked without following symlinks and without crossing into other trees through
    them; unreadable entries raise (a baseline that silently skips files would hide them).
    """
    entries: dict[str, Entry] = {}
    missing: list[str] = []
    for raw in paths:
        path = os.path.normpath(raw)
        if not os.path.isabs(path):
            raise ValueError(f"{raw!r} is not an absolute path")
        entry = file_entry(path)
        if entry is None:
            missing.append(path)
            continue
        entries[path] = entry
        if entry["type"] != "dir":
            continue
        for root, dirs, files in os.walk(path, followlinks=False):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                child = os.path.join(root, name)
                child_entry = file_entry(child)
                if child_entry is not None:
                    entries[child] = child_entry
    return dict(sorted(entries.items())), sorted(set(missing))


# ------------------------------------------------------------------ baselines


def make_baseline(host: str, paths: Sequence[str], entries: Mapping[str, Entry]) -> dict[str, Any]:
    """The baseline document. Deliberately no timestamp: the same state gives the same bytes, so
    writing it is idempotent and a change of the file on the controller means a change on the host."""
    return {
        "format": BASELINE_FORMAT,
        "host": host,
        "paths": list(paths),
        "files": {p: dict(entries[p]) for p in sorted(entries)},
    }


def load_baseline(text: str) -> dict[str, Any]:
    """Parse and check a baseline document; ValueError says what is wrong with it."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"baseline is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise ValueError(f"baseline format is not {BASELINE_FORMAT}")
    if not isinstance(doc.get("files"), dict) or not isinstance(doc.get("paths"), list):
        raise ValueError("baseline lacks 'files' (a mapping) or 'paths' (a list)")
    return doc


def compare(baseline: Mapping[str, Entry], current: Mapping[str, Entry]) -> Diff:
    """Files added, removed and changed (with the fields that changed) since the baseline."""
    added = sorted(set(current) - set(baseline))
    removed = sorted(set(baseline) - set(current))
    changed: dict[str, list[str]] = {}
    for path in sorted(set(baseline) & set(current)):
        before, after = baseline[path], current[path]
        fields = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if fields:
            changed[path] = fields
    return Diff(added, removed, changed)


def describe(diff: Diff) -> list[str]:
    """One line per finding, path first: what a failure message and triage.yml print."""
    lines = [f"added: {p}" for p in diff.added]
    lines += [f"removed: {p}" for p in diff.removed]
    lines += [f"changed: {p} ({', '.join(fields)})" for p, fields in diff.changed.items()]
    return lines


# ------------------------------------------------------------------ package manager checksums

# dpkg --verify (format rpm) and rpm -Va: 9 check columns or "missing", an attribute marker
# (c = configuration file; rpm also d, g, l, r), the path.
_VERIFY_RE = re.compile(r"^(?P<flags>missing|[.?A-Za-z0-9]{9})\s+(?:(?P<attr>[cdglr])\s+)?(?P<path>/.*)$")


def parse_verify_output(text: str) -> list[VerifyFinding]:
    """Lines of ``dpkg --verify`` or ``rpm -Va`` output -> findings; other lines are ignored."""
    out = []
    for line in text.splitlines():
        match = _VERIFY_RE.match(line.rstrip("\n"))
        if match:
            out.append(VerifyFinding(match["path"], match["flags"], match["attr"] == "c"))
    return out


def package_findings(findings: Iterable[VerifyFinding], always: Iterable[str] = SSHD_BINARIES) -> list[VerifyFinding]:
    """The findings that mean "a packaged program is not what the package shipped".

    Reported: a changed digest of any file that is not a configuration file, and any change or
    removal of the ``always`` paths (the sshd binaries) whatever the package marks them as.
    Not reported: configuration files (admins and harden.yml edit them on purpose; the off-host
    baseline covers them) and other missing files (images and admins delete docs and caches; a
    missing file runs no code).
    """
    keep = frozenset(always)
    return [f for f in findings if f.path in keep or (f.digest_changed and not f.conffile)]


# ------------------------------------------------------------------ command line (runs on the host)


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 integrity.py PATH...``: print ``{"files": ..., "missing": ...}`` as JSON."""
    args = list(sys.argv[1:] if argv is None else argv)
    entries, missing = hash_paths(args or DEFAULT_PATHS)
    json.dump({"files": entries, "missing": missing}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
