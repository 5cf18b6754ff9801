"""The PAM capture of sshward-notify: what ``pam_exec`` writes in a login, and how it is read back.

A login must not wait for the notifier, not even for a Python interpreter to
start (10-15 ms). So the PAM step runs no sshward code at all::

    session optional pam_exec.so quiet type=open_session log=SPOOL/capture /usr/bin/env -0 SSHWARD_CAPTURE=session

``pam_exec`` opens ``SPOOL/capture`` (``O_APPEND``), writes a ``*** <ctime>``
header line into it and runs coreutils' ``env``, which prints the environment
pam_exec built: the PAM environment (sshd puts ``SSH_CONNECTION`` and
``SSH_AUTH_INFO_0``, i.e. address, port, auth method and the public key, there),
then the PAM items pam_exec adds (``PAM_USER``, ``PAM_RHOST``, ``PAM_TTY``,
``PAM_SERVICE``, ``PAM_TYPE``, ``PAM_RUSER``), then our marker, which glibc's
``putenv`` appends last. Every variable ends in a NUL byte, so no value can
forge a record boundary: a value cannot hold NUL. About 2 ms, no interpreter,
no shell, nothing parsed inside the login. The failure hook in the auth stack
writes ``SSHWARD_CAPTURE=failure``.

Delivery starts elsewhere: the path unit ``sshward-notify-flush.path`` starts
``sshward-notify flush`` while ``SPOOL/capture`` exists. The deliverer moves the
file into ``SPOOL/incoming/`` (a pam_exec child that opened it just before may
still append: drained files are read from an offset kept in their name and only
deleted once idle) and turns every complete record into an event
(``notify.event_from_pam``).

This module is the one place that knows the format: the PAM line (role,
pyinfra deploy and verify use it) and the parser. Every byte in the file is
hostile (user names, PAM_RHOST, the PAM environment); the parser bounds sizes
and never trusts a value to delimit anything. Standard library only, Python 3.9
compatible.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

CAPTURE_FILE = "capture"
INCOMING = "incoming"
DEFAULT_SPOOL = "/var/spool/sshward/notify"
#: coreutils env: in every Debian/RHEL base system, at this path (merged /usr or not).
ENV_PROGRAM = "/usr/bin/env"
MARKER = "SSHWARD_CAPTURE"
SESSION = "session"
FAILURE = "failure"
KINDS = (SESSION, FAILURE)
#: The PAM items pam_exec exports (PAM_RHOST may be a DNS name; every one is hostile).
PAM_KEYS = ("PAM_TYPE", "PAM_SERVICE", "PAM_USER", "PAM_RUSER", "PAM_RHOST", "PAM_TTY")
#: The PAM environment variables sshd sets that the notifier reads.
SSHD_KEYS = ("SSH_CONNECTION", "SSH_AUTH_INFO_0")
KEPT_KEYS = frozenset(PAM_KEYS + SSHD_KEYS)
PAM_VALUE_MAX = 512
#: SSH_AUTH_INFO_0 holds whole public keys or certificates (one line per auth method).
AUTH_INFO_MAX = 16384
#: A record bigger than this is not something pam_exec and env produce: it is dropped.
RECORD_MAX = 65536

_SPOOL_DIR_RE = re.compile(r"/[A-Za-z0-9._/-]*")
_CTIME_RE = re.compile(rb"[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d\d):(\d\d):(\d\d) (\d{4})")
_MONTH_NAMES = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
#: pam_exec's header line, ``*** `` and ctime(); group 1 is the ctime text.
_HEADER_LINE_RE = re.compile(rb"\*\*\* ([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})\n")
_VARIABLE_RE = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*=")
_MARKER_BYTES = MARKER.encode("ascii")


def check_spool_dir(path: str) -> str:
    """``path`` if it can stand in a PAM line (absolute, no whitespace or PAM brackets), else ValueError."""
    if not isinstance(path, str) or not _SPOOL_DIR_RE.fullmatch(path) or "/../" in path + "/" or len(path) > 200:
        raise ValueError(
            f"spool directory {path!r} must be an absolute path of letters, digits and . _ - / "
            "(it is written into a PAM line, where whitespace and brackets split or end arguments)"
        )
    return path.rstrip("/") or "/"


def capture_path(spool_dir: str) -> str:
    return check_spool_dir(spool_dir).rstrip("/") + "/" + CAPTURE_FILE


def capture_command(kind: str) -> list[str]:
    """What pam_exec runs: ``env`` prints its environment, NUL-terminated, our marker last."""
    if kind not in KINDS:
        raise ValueError(f"capture kind must be one of {', '.join(KINDS)}")
    return [ENV_PROGRAM, "-0", f"{MARKER}={kind}"]


def pam_exec_args(spool_dir: str, kind: str) -> str:
    """``pam_exec.so``'s arguments: ``quiet type=T log=SPOOL/capture /usr/bin/env -0 SSHWARD_CAPTURE=kind``."""
    pam_type = "open_session" if kind == SESSION else "auth"
    return f"quiet type={pam_type} log={capture_path(spool_dir)} " + " ".join(capture_command(kind))


def session_line(spool_dir: str) -> str:
    """The line for a session stack (sshd, sudo): open_session only."""
    return "session optional pam_exec.so " + pam_exec_args(spool_dir, SESSION)


#: Matches the session hook of this and of earlier versions (a Python entry point), so an
#: upgrade replaces the line instead of adding a second one.
SESSION_LINE_RE = re.compile(
    r"^\s*session\s+\S+\s+pam_exec\.so\s.*(?:sshward-notify(?:-pam|\s+pam)|\s" + MARKER + "=" + SESSION + r")\s*$"
)


@dataclass
class CaptureRecord:
    """One PAM call as env printed it: the variables the notifier reads, last value winning."""

    kind: str
    env: dict[str, str] = field(default_factory=dict)
    #: pam_exec's header time (local time, whole seconds), None if no header preceded it.
    time: float | None = None
    #: where the record ends in the scanned bytes (names the record's spool entry)
    end: int = 0


@dataclass
class CaptureScan:
    records: list[CaptureRecord]
    #: bytes fully read: complete records (and dropped garbage) end here; the rest is still being written
    consumed: int
    #: records that cannot be trusted (interleaved writes, oversized, malformed): dropped, counted
    garbled: int = 0


def parse_ctime(text: bytes) -> float | None:
    """pam_exec's ``ctime()`` header (``Sun Nov 22 12:10:50 2026``, local time) as a UNIX time."""
    match = _CTIME_RE.fullmatch(text)
    if not match:
        return None
    month = _MONTHS.get(match.group(1))
    if month is None:
        return None
    day, hour, minute, second, year = (int(g) for g in match.group(2, 3, 4, 5, 6))
    try:
        return time.mktime((year, month, day, hour, minute, second, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


def _text(value: bytes, limit: int) -> str:
    return value[:limit].decode("utf-8", "replace")


def _skip_loader_lines(element: bytes) -> bytes:
    """Drop the lines the dynamic loader may print between pam_exec's header and env's output."""
    while not _VARIABLE_RE.match(element):
        newline = element.find(b"\n")
        if newline < 0:
            break
        element = element[newline + 1 :]
    return element


def scan_capture(data: bytes, *, final: bool = False) -> CaptureScan:
    """The complete records in ``data`` (the capture file from some offset).

    A record is pam_exec's ``*** ctime`` header line (the record's time), the
    variables env printed, and our marker last. A header anywhere but before
    a record's first variable means two writes interleaved (possible only for
    a record over the 4 KiB env writes at once): the record it cut is dropped
    as garbled rather than mixing two logins, and a new record starts at the
    header. A record without the PAM items pam_exec always exports is garbled
    too. With ``final`` the bytes after the last record are garbage as well
    (the file is idle: nobody will finish them). Garbled records are counted
    so the deliverer can still raise an alert for them.
    """
    records: list[CaptureRecord] = []
    garbled = 0
    pos = consumed = 0
    record_time: float | None = None
    current: dict[str, str] = {}
    started = bad = False
    record_start = 0
    while True:
        end = data.find(b"\0", pos)
        if end < 0:
            break
        element = data[pos:end]
        pos = end + 1
        headers = list(_HEADER_LINE_RE.finditer(element))
        if headers:
            if started or headers[0].start() > 0:
                garbled += 1  # the record before this header was cut short
            current, bad = {}, False
            started = True
            record_time = parse_ctime(headers[-1].group(1))
            element = _skip_loader_lines(element[headers[-1].end() :])
        started = True
        name, _sep, value = element.partition(b"=")
        if not _VARIABLE_RE.match(element):
            bad = True
        elif name == _MARKER_BYTES:
            kind = value.decode("ascii", "replace")
            if bad or kind not in KINDS or not {"PAM_TYPE", "PAM_SERVICE"} <= current.keys():
                garbled += 1
            else:
                records.append(CaptureRecord(kind=kind, env=current, time=record_time, end=pos))
            current, started, bad, record_start, record_time = {}, False, False, pos, None
            consumed = pos
            continue
        else:
            key = name.decode("ascii")
            if key in KEPT_KEYS:
                current[key] = _text(value, AUTH_INFO_MAX if key == "SSH_AUTH_INFO_0" else PAM_VALUE_MAX)
        if pos - record_start > RECORD_MAX:
            # no marker in sight: skip ahead so the file is never read from here again
            garbled += 1
            current, started, bad, record_start, record_time = {}, False, False, pos, None
            consumed = pos
    if final and consumed < len(data):
        garbled += 1
        consumed = len(data)
    return CaptureScan(records=records, consumed=consumed, garbled=garbled)


def iter_auth_methods(auth_info: str) -> Iterator[tuple[str, str]]:
    """``(method, detail)`` per line of sshd's SSH_AUTH_INFO_0 (``publickey ssh-ed25519 AAAA...``, ``password``)."""
    for line in auth_info.splitlines():
        method, _sep, detail = line.strip().partition(" ")
        if method:
            yield method, detail.strip()


def connection_endpoints(env: Mapping[str, str]) -> tuple[str, str] | None:
    """The client's address and port from sshd's SSH_CONNECTION (``addr port local_addr local_port``)."""
    parts = env.get("SSH_CONNECTION", "").split(" ")
    if len(parts) != 4 or not parts[1].isdigit() or not 0 < int(parts[1]) < 65536:
        return None
    try:
        address = ipaddress.ip_address(parts[0])
    except ValueError:
        return None
    return str(address), str(int(parts[1]))
