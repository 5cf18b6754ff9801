"""auth.log / secure / journald lines -> typed events; injection-proof and fast.

Sources
-------
* Text files as rsyslog writes them (``/var/log/auth.log``, ``/var/log/secure``,
  rotated ``auth.log.1`` and gzip-compressed ``auth.log.2.gz``), with either the
  classic ``Mon DD HH:MM:SS host prog[pid]: msg`` header or the RFC 3339
  ``2026-11-22T05:16:51.593293+00:00 host prog[pid]: msg`` header.
* The journal as ``journalctl -o json`` prints it: one JSON object per line.

Trust
-----
In a **text file** any local user can forge a line: ``logger -t sshd --id=1
"Failed password for root from 6.6.6.6 port 1 ssh2"`` ends up in auth.log
looking exactly like sshd's own output. Nothing in the file tells them apart.
The only check made here is that an sshd-family line carries a ``[pid]``
(sshd always opens syslog with ``LOG_PID``, a plain ``logger -t sshd`` does
not); lines failing it are counted as ``untrusted``. Use the journal when the
origin matters.

In the **journal** only journald's trusted fields (underscore-prefixed, which a
client cannot set) decide the origin: ``_COMM`` must be one of the programs we
parse (``sshd``, ``sshd-session``, ``sshd-auth``, ``sudo``, ``su``); when
``_EXE`` is present it must be a system binary with the same base name; and an
sshd-family record from a non-root ``_UID`` must come from the ``ssh.service``
unit (a user running their own copy of sshd gets neither). ``SYSLOG_IDENTIFIER``
is ignored: ``logger -t sshd`` sets it and gets ``_COMM=logger``.

Injection
---------
User names are chosen by the remote client and may contain spaces and text
such as ``from 6.6.6.6 port 1``. Every pattern is anchored at the END of the
message, where sshd writes ``from ADDR port PORT ...`` after the user name,
and the user name is the greedy middle: the last well-formed tail wins, and an
attacker cannot write after it. Addresses are validated with :mod:`ipaddress`.
Where a message ends in client-chosen text (``Received disconnect ...: MSG``,
``banner exchange``) the address is taken from the START, before that text.
Certificate key IDs are client-chosen and follow the address; in that one
case the user name is matched without ``:`` (sshd strips everything after a
``:`` from the user name, it is the BSD auth style), so a forged tail inside
the key ID cannot be reached. Lines matching no pattern are counted as
``unparsed`` and never guessed at.
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import itertools
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import IO, Any

from . import netaddr

__all__ = [
    "KIND",
    "SSHD_PROGRAMS",
    "AuthEvent",
    "AuthLogError",
    "AuthLogParser",
    "ParseStats",
    "SourceSummary",
    "Summary",
    "UserSummary",
    "excerpt_for",
    "iter_file_lines",
    "open_log",
    "parse_journal",
    "parse_lines",
    "parse_path",
    "summarize",
    "summarize_sources",
]

SSHD_PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth"})
SUDO_PROGRAMS = frozenset({"sudo"})
SU_PROGRAMS = frozenset({"su"})
PROGRAMS = SSHD_PROGRAMS | SUDO_PROGRAMS | SU_PROGRAMS

#: Lines longer than this (characters) are skipped and counted as oversized.
#: rsyslog's default maximum message size is 8 KiB; sshd's own buffer is 1 KiB.
MAX_LINE = 16384

_SYSTEM_DIRS = frozenset(
    {
        "/usr/sbin",
        "/sbin",
        "/usr/bin",
        "/bin",
        "/usr/lib/openssh",
        "/usr/libexec",
        "/usr/libexec/openssh",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/local/libexec",
    }
)
_SSH_UNITS = frozenset({"ssh.service", "sshd.service"})


class KIND:
    """Event kinds (plain strings, stable: they appear in JSON output)."""

    FAILED_PASSWORD = "failed_password"
    FAILED_PUBLICKEY = "failed_publickey"
    FAILED_NONE = "failed_none"
    FAILED_KBDINT = "failed_keyboard_interactive"
    FAILED_OTHER = "failed_other"  # hostbased, gssapi-with-mic, ...
    ACCEPTED = "accepted"  # method says which
    ACCEPTED_KEY = "accepted_key"  # LogLevel VERBOSE: key found at file:line
    POSTPONED = "postponed"
    PARTIAL = "partial"
    INVALID_USER = "invalid_user"
    NOT_ALLOWED = "user_not_allowed"  # detail: reason code, see _NOT_ALLOWED
    MAX_AUTH = "max_auth_exceeded"
    CONNECTION = "connection"  # LogLevel VERBOSE: Connection from A port P on ...
    CONNECTION_CLOSED = "connection_closed"
    CONNECTION_RESET = "connection_reset"
    DISCONNECTED = "disconnected"
    DISCONNECTING = "disconnecting"  # detail: sshd's reason
    RECEIVED_DISCONNECT = "received_disconnect"  # detail: "code: client message"
    NO_IDENT = "no_identification"
    BAD_BANNER = "bad_banner"
    NEGOTIATION_FAILED = "negotiation_failed"
    AUTH_TIMEOUT = "auth_timeout"
    CONNECTION_DROPPED = "connection_dropped"  # 9.8+ PerSourcePenalties / MaxStartups
    SESSION_OPENED = "session_opened"  # detail: PAM service (sshd, sudo, su, ...)
    SESSION_CLOSED = "session_closed"
    PAM_AUTH_FAILURE = "pam_auth_failure"  # detail: PAM service
    SUDO_COMMAND = "sudo_command"  # user: invoking user; detail: "runas: command"
    SUDO_AUTH_FAILURE = "sudo_auth_failure"  # detail: "3 incorrect password attempts"
    SUDO_NOT_IN_SUDOERS = "sudo_not_in_sudoers"
    SUDO_DENIED = "sudo_denied"  # other sudo refusals
    SU_FAILURE = "su_failure"  # user: invoking user; detail: target user
    SU_SUCCESS = "su_success"


FAILED_KINDS = frozenset(
    {KIND.FAILED_PASSWORD, KIND.FAILED_PUBLICKEY, KIND.FAILED_NONE, KIND.FAILED_KBDINT, KIND.FAILED_OTHER}
)
ALL_KINDS = frozenset(v for k, v in vars(KIND).items() if k.isupper())

# dataclass(slots=True) exists from 3.10 only; the core must import on 3.9.
_DC_OPTS: dict[str, Any] = {"slots": True} if sys.version_info >= (3, 10) else {}


@dataclass(**_DC_OPTS)
class AuthEvent:
    """One recognised log record.

    ``address`` is always the address sshd itself wrote, validated with
    :mod:`ipaddress` (or ``None``). ``user`` is attacker-controlled text for
    sshd events: treat it as data. ``invalid_user`` is sshd's own verdict
    ("invalid user" in the message). ``raw`` is the line as read.
    """

    kind: str
    timestamp: datetime | None
    host: str | None
    program: str
    pid: int | None
    user: str | None = None
    address: str | None = None
    port: int | None = None
    method: str | None = None
    key_type: str | None = None
    fingerprint: str | None = None
    authorized_keys_file: str | None = None
    authorized_keys_line: int | None = None
    invalid_user: bool = False
    preauth: bool = False
    detail: str | None = None
    raw: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        ts = self.timestamp
        d["timestamp"] = ts.isoformat() if ts is not None else None
        return d


@dataclass
class ParseStats:
    lines: int = 0
    events: int = 0
    unparsed: int = 0  # from a program we parse, but no pattern matched (or bad address)
    other: int = 0  # other programs (cron, systemd-logind, ...): not ours
    untrusted: int = 0  # journal records failing the trusted-field check; pid-less sshd lines
    oversized: int = 0
    malformed: int = 0  # no recognisable syslog header / not a JSON object

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def add(self, other: ParseStats) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)


class AuthLogError(Exception):
    """An input cannot be read. ``str()`` is one line naming the input and the reason."""


# --------------------------------------------------------------------------------------------
# Patterns: ONE table (``_ALTS``); every compiled message pattern is built from its rows.
# Each row is an alternative, followed by an optional " [preauth]": one C-level match recognises
# the kind and every field; ``lastgroup`` names the alternative and ``m.group(*indices)`` fetches
# its fields in one call. Each alternative is anchored at the end of the message (the trailing
# ``$`` is shared); client-chosen text that follows sshd's address is matched lazily so
# " [preauth]" is never swallowed. ADDR is a cheap character-class pre-check; ipaddress
# validates it after.
#
# Optional parts are written ``(?:X|)`` rather than ``(?:X)?``: the same choice, tried in the same
# order (X first), but sre runs ``?`` on a group as a general REPEAT, set up anew at every attempt
# and making the branches inside it save every mark; as a plain branch a line costs a third less.
# For the same reason a user name followed by fixed text is captured WITH the space after it
# (``(?P<user>.* )from ``, the builders drop that space): sre steps back over a greedy ``.*`` from
# space to space when a literal follows it, but tries the rest of the pattern at every character
# when the group's end comes first. Which text is the user is unchanged: still the greedy middle.
#
# Text lines from sshd, the bulk of any auth.log, are decided in one match by the sshd line regex
# of their message's first word (``_sshd_line_rx``): the syslog header and the rows starting with
# that word. Every other line goes through ``_HEAD_RX`` (timestamp, host, program, pid), which also
# decides what a line is when it is not an event (another program's, a pid-less forgery), and
# then through a message regex from the end of the header (``match(line, pos)``, no copy): for
# sshd the rows of the message's first word (``_sshd_message_rx``), for other programs every row
# (``_all_rows_rx``). Journal records get the header's facts from journald's trusted fields and go
# through the same message regexes.
#
# Words: every sshd alternative starts with a fixed word (its ``starts``, declared in the table
# beside the pattern). An sshd message whose first four characters (after "error: " or "fatal: ")
# begin none of them cannot match, so it is counted as unparsed without running a regex; one that
# does is only tried against the rows declaring that word. The words only ever skip rows that
# cannot match: what matches, and which row wins, is still decided by the anchored patterns alone.
# --------------------------------------------------------------------------------------------

_ADDR = r"(?P<addr>[0-9A-Fa-f:.]+(?:%[\w.-]+|))"
_TAIL = _ADDR + r" port (?P<port>\d{1,5})"
_FP = r"(?P<fp>SHA256:[A-Za-z0-9+/]{43}|MD5(?::[0-9a-f]{2}){16})"
_KTYPE = r"(?P<ktype>[A-Za-z0-9-]+(?:@openssh\.com|))"
_AUTH_HEAD = (
    r"(?P<res>Failed|Accepted|Postponed|Partial) (?P<method>[A-Za-z0-9-]+(?:/[A-Za-z0-9-]+|))"
    r" for (?:(?P<inv>invalid user )|)"
)
_WHO = r"(?P<who>invalid user|authenticating user|user)"
_SSHD = "sshd"
_ALL = "all"
_SUDO = "sudo"
_SU = "su"

# (name, family, pattern, fields, starts). Order: most frequent first (alternatives are tried in
# turn). ``starts``: the fixed words the message begins with (they pick the rows tried); empty for
# patterns that begin with client- or user-chosen text (sudo), which are never skipped.
_ALTS: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...]]] = [
    # Non-certificate form: nothing client-chosen after the address, so the user is `.*`.
    (
        "auth",
        _SSHD,
        _AUTH_HEAD + r"(?P<user>.* )from " + _TAIL + r" ssh2(?:: " + _KTYPE + " " + _FP + r"|)",
        ("res", "method", "inv", "user", "addr", "port", "ktype", "fp"),
        ("Fail", "Acce", "Post", "Part"),
    ),
    ("invalid", _SSHD, r"Invalid user (?P<user>.* )from " + _TAIL, ("user", "addr", "port"), ("Inva",)),
    (
        "closed",
        _SSHD,
        r"(?P<what>Connection closed by|Connection reset by|Disconnected from)(?: "
        + _WHO
        + r" (?P<user>.* )| )"
        + _TAIL,
        ("what", "who", "user", "addr", "port"),
        ("Conn", "Disc"),
    ),
    (
        "received",
        _SSHD,
        r"Received disconnect from " + _TAIL + r":(?P<code>\d+): (?P<msg>.*?)",
        ("addr", "port", "code", "msg"),
        ("Rece",),
    ),
    (
        "pam_auth",
        _ALL,
        r"pam_unix\((?P<svc>[\w.-]+):auth\): authentication failure; logname=\S* uid=\d+ euid=\d+"
        r" tty=\S* ruser=\S* rhost=(?P<rhost>\S*)(?: (?: user=(?P<user>.*)|)|)",
        ("svc", "rhost", "user"),
        ("pam_",),
    ),
    (
        "pam_session",
        _ALL,
        r"pam_unix\((?P<svc>[\w.-]+):session\): session (?P<oc>opened|closed) for user "
        r"(?P<user>[^\s(]+)(?:\(uid=\d+\)|)(?: by [^\s(]*(?:\(uid=\d+\)|)|)",
        ("svc", "oc", "user"),
        ("pam_",),
    ),
    (
        "maxauth",
        _SSHD,
        r"maximum authentication attempts exceeded for (?:(?P<inv>invalid user )|)(?P<user>.* )from " + _TAIL + " ssh2",
        ("inv", "user", "addr", "port"),
        ("maxi",),
    ),
    # The reason may repeat client-chosen user names (after a ":"); user names cannot hold ":".
    (
        "disconnecting",
        _SSHD,
        r"Disconnecting(?: " + _WHO + r" (?P<user>[^:]* )| )" + _TAIL + r": (?P<reason>.*?)",
        ("who", "user", "addr", "port", "reason"),
        ("Disc",),
    ),
    ("noident", _SSHD, r"Did not receive identification string from " + _TAIL, ("addr", "port"), ("Did ",)),
    (
        "banner",
        _SSHD,
        r"banner exchange: Connection from " + _TAIL + r": (?P<reason>.*?)",
        ("addr", "port", "reason"),
        ("bann",),
    ),
    (
        "negotiate",
        _SSHD,
        r"Unable to negotiate with " + _TAIL + r": no matching (?P<what>.+?) found\. Their offer: .*?",
        ("addr", "port", "what"),
        ("Unab",),
    ),
    (
        "accepted_key",
        _SSHD,
        r"Accepted key " + _KTYPE + " " + _FP + r" found at (?P<file>.+):(?P<line>\d{1,10})",
        ("ktype", "fp", "file", "line"),
        ("Acce",),
    ),
    # Certificate form: the key ID is client-chosen and follows the address; sshd cuts user
    # names at ":" so the user cannot reach past "ssh2: TYPE SHA256:".
    (
        "auth_cert",
        _SSHD,
        _AUTH_HEAD
        + r"(?P<user>[^:]* )from "
        + _TAIL
        + r" ssh2: "
        + _KTYPE
        + " "
        + _FP
        + r" ID (?P<certid>.*) \(serial (?P<serial>\d+)\) CA (?P<catype>\S+) (?P<cafp>\S+)",
        ("res", "method", "inv", "user", "addr", "port", "ktype", "fp", "certid", "serial", "catype", "cafp"),
        ("Fail", "Acce", "Post", "Part"),
    ),
    (
        "conn_from",
        _SSHD,
        r"Connection from " + _TAIL + r" on \S+ port \d+(?: rdomain .*?|)",
        ("addr", "port"),
        ("Conn",),
    ),
    (
        "not_allowed_host",
        _SSHD,
        r"User (?P<user>.* )from (?P<rhost>\S+) not allowed because (?P<reason>not listed in AllowUsers"
        r"|listed in DenyUsers|not in any group|a group is listed in DenyGroups"
        r"|none of user's groups are listed in AllowGroups)",
        ("user", "rhost", "reason"),
        ("User",),
    ),
    (
        "not_allowed",
        _SSHD,
        r"User (?P<user>\S+) not allowed because (?P<reason>account is locked"
        r"|shell .+ does not exist|shell .+ is not executable)",
        ("user", "reason"),
        ("User",),
    ),
    ("timeout", _SSHD, r"Timeout before authentication for " + _TAIL, ("addr", "port"), ("Time",)),
    (
        "drop",
        _SSHD,
        r"drop connection #\d+ from \[" + _ADDR + r"\]:(?P<port>\d{1,5}) on \[[^\]]*\]:\d+ (?P<reason>.*?)",
        ("addr", "port", "reason"),
        ("drop",),
    ),
    (
        "su",
        _SU,
        r"(?:(?P<failed>FAILED SU |FAILED RUNUSER )|)\(to (?P<to>\S+)\) (?P<user>\S*) on \S+",
        ("failed", "to", "user"),
        ("FAIL", "(to "),
    ),
    (
        "sudo",
        _SUDO,
        r"\s*(?P<user>\S+) : (?:(?!TTY=|PWD=)(?P<what>[^;]*?) ; |)(?:TTY=\S+ ; |)PWD=.*? ; USER=(?P<runas>\S+) ;"
        r".*? COMMAND=(?P<cmd>.*)",
        ("user", "what", "runas", "cmd"),
        (),
    ),
]

_GROUP_NAME = re.compile(r"\(\?P<(\w+)>")


def _alternation(alts: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...]]], guard_words: bool = False) -> str:
    """Rows of ``_ALTS`` as one end-anchored alternation, each field renamed ``NAME__FIELD``.
    ``guard_words``: each row is tried only on a message starting with one of its words (the
    parser gets the same from choosing the rows by word; the fast summary has one regex)."""
    parts = []
    for name, _family, pat, _fields, starts in alts:
        # " [preauth]" goes inside each alternative, so that the alternative is the last group
        # closed and Match.lastgroup names it.
        renamed = _GROUP_NAME.sub(f"(?P<{name}__\\1>", pat + r"(?:(?P<pre> \[preauth\])|)")
        if guard_words:
            renamed = "(?=" + "|".join(map(re.escape, starts)) + ")" + renamed
        parts.append(f"(?P<A_{name}>{renamed})")
    return r"(?:error: |fatal: |)(?:" + "|".join(parts) + ")$"


_TS = (
    r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6}|)(?:Z|[+-]\d\d:\d\d)"
    r"|[A-Z][a-z][a-z] [ 0-9]\d \d\d:\d\d:\d\d)"
)
# The syslog header; the tag is any program's (the line is then classified by it). Numbers that
# become ints have a bounded length (pids, authorized_keys lines): int() refuses over 4300 digits.
_HEAD_RX = re.compile(_TS + r" (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d{1,10})\]|): ")
# The sshd line regexes, the hot path for text: the same header, narrowed to an sshd-family program
# with a pid, followed by the alternatives whose message starts with one fixed word (the rows of
# ``_ALTS`` declaring that word among their ``starts``, in table order). One match decides header,
# kind and fields. Which word a line's message starts with is read at its first "]: " (then past
# "error: "/"fatal: "); that is only a guess of where the message begins, the anchored header of
# the chosen regex decides. A line none matches goes through ``_HEAD_RX`` (``_other_line``).
# Digits in the header as [0-9]: sre tests ``\d`` through the Unicode tables. Where this header
# matches, the ``\d`` one matches the same way (every digit run in it ends at a fixed non-digit);
# a line with other digits there falls through to ``_HEAD_RX``, which decides it as before.
_SSHD_HEAD = (
    _TS.replace(r"\d", "[0-9]")
    + r" (?P<host>\S+) (?P<prog>"
    + "|".join(sorted(map(re.escape, SSHD_PROGRAMS)))
    + r")\[(?P<pid>[0-9]{1,10})\]: "
)
# The words of sshd's programs: the first four characters of every message an sshd (or
# any-program) alternative can match. Other alternatives never yield an event for sshd.
_SSHD_STARTS = frozenset(s for _n, family, _p, _f, starts in _ALTS if family in (_SSHD, _ALL) for s in starts)


_NOT_ALLOWED = {
    "not listed in AllowUsers": "not_in_allowusers",
    "listed in DenyUsers": "in_denyusers",
    "not in any group": "no_group",
    "a group is listed in DenyGroups": "in_denygroups",
    "none of user's groups are listed in AllowGroups": "not_in_allowgroups",
    "account is locked": "account_locked",
}
_FAILED_BY_METHOD = {
    "password": KIND.FAILED_PASSWORD,
    "publickey": KIND.FAILED_PUBLICKEY,
    "none": KIND.FAILED_NONE,
    "keyboard-interactive": KIND.FAILED_KBDINT,
}
_AUTH_KIND = {"Accepted": KIND.ACCEPTED, "Postponed": KIND.POSTPONED, "Partial": KIND.PARTIAL}
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_CLOSED_KIND = {
    "Connection closed by": KIND.CONNECTION_CLOSED,
    "Connection reset by": KIND.CONNECTION_RESET,
    "Disconnected from": KIND.DISCONNECTED,
}
_ADDR_CACHE: dict[str, bool] = {}


def _valid_addr(a: str) -> bool:
    ok = _ADDR_CACHE.get(a)
    if ok is None:
        try:
            ipaddress.ip_address(a)
            ok = True
        except ValueError:
            ok = False
        if len(_ADDR_CACHE) > 200_000:
            _ADDR_CACHE.clear()
        _ADDR_CACHE[a] = ok
    return ok


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# --------------------------------------------------------------------------------------------
# Building events: one function per alternative of ``_ALTS``. ``v`` holds the alternative's
# fields in the order the table declares them (anything after them, " [preauth]" and the header
# fields of the sshd line regex, is not read here); the address sshd wrote is validated before an
# event is made, a bad one makes the line unparsed (None).
# --------------------------------------------------------------------------------------------

_Fields = tuple[Any, ...]
_Builder = Callable[
    ["AuthLogParser", _Fields, "datetime | None", "str | None", str, "int | None", bool, str], "AuthEvent | None"
]


def _authentication(cert: bool) -> _Builder:
    """The builder of ``auth`` (no certificate) or ``auth_cert``: one body, no call in between."""

    def build(
        p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool,
        raw: str,
    ) -> AuthEvent | None:  # fmt: skip
        addr = v[4]
        if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
            return None
        res, method, fp = v[0], v[1], v[7]
        if res == "Failed":
            # A method with a submethod ("keyboard-interactive/pam") is never a key as a whole.
            kind = _FAILED_BY_METHOD.get(method) or _FAILED_BY_METHOD.get(method.split("/", 1)[0], KIND.FAILED_OTHER)
        else:
            kind = _AUTH_KIND[res]
        akf = akl = None
        if kind == KIND.ACCEPTED and fp is not None:
            pend = p._pending_keys.pop((host, pid), None)
            if pend is not None and pend[0] == fp:
                akf, akl = pend[1], pend[2]
        return AuthEvent(
            kind, ts, host, prog, pid, v[3][:-1], addr, int(v[5]), method, v[6], fp, akf, akl, v[2] is not None,
            pre, f"cert ID {v[8]} (serial {v[9]}) CA {v[10]} {v[11]}" if cert else None, raw,
        )  # fmt: skip

    return build


def _b_invalid(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    addr = v[1]
    if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
        return None
    return AuthEvent(
        KIND.INVALID_USER, ts, host, prog, pid, v[0][:-1], addr, int(v[2]), None, None, None, None, None, True, pre,
        None, raw,
    )  # fmt: skip


def _b_maxauth(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    addr = v[2]
    if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
        return None
    return AuthEvent(
        KIND.MAX_AUTH, ts, host, prog, pid, v[1][:-1], addr, int(v[3]), None, None, None, None, None,
        v[0] is not None, pre, None, raw,
    )  # fmt: skip


def _address_only(kind: str) -> _Builder:
    def build(
        p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool,
        raw: str,
    ) -> AuthEvent | None:  # fmt: skip
        addr = v[0]
        if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
            return None
        return AuthEvent(
            kind, ts, host, prog, pid, None, addr, int(v[1]), None, None, None, None, None, False, pre, None, raw
        )

    return build


def _with_detail(kind: str) -> _Builder:
    def build(
        p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool,
        raw: str,
    ) -> AuthEvent | None:  # fmt: skip
        addr = v[0]
        if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
            return None
        return AuthEvent(
            kind, ts, host, prog, pid, None, addr, int(v[1]), None, None, None, None, None, False, pre, v[2], raw
        )

    return build


def _b_closed(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    addr = v[3]
    if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
        return None
    who, user = v[1], v[2]
    return AuthEvent(
        _CLOSED_KIND[v[0]], ts, host, prog, pid, user and user[:-1], addr, int(v[4]), None, None, None, None, None,
        who == "invalid user", pre, who, raw,
    )  # fmt: skip


def _b_disconnecting(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    addr = v[2]
    if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
        return None
    user = v[1]
    return AuthEvent(
        KIND.DISCONNECTING, ts, host, prog, pid, user and user[:-1], addr, int(v[3]), None, None, None, None, None,
        v[0] == "invalid user", pre, v[4], raw,
    )  # fmt: skip


def _b_received(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    addr = v[0]
    if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
        return None
    return AuthEvent(
        KIND.RECEIVED_DISCONNECT, ts, host, prog, pid, None, addr, int(v[1]), None, None, None, None, None, False,
        pre, f"{v[2]}: {v[3]}", raw,
    )  # fmt: skip


def _b_pam_auth(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    rhost = v[1]
    addr = rhost if rhost and _valid_addr(rhost) else None
    return AuthEvent(
        KIND.PAM_AUTH_FAILURE, ts, host, prog, pid, v[2], addr, None, None, None, None, None, None, False, pre, v[0],
        raw,
    )  # fmt: skip


def _b_pam_session(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    kind = KIND.SESSION_OPENED if v[1] == "opened" else KIND.SESSION_CLOSED
    return AuthEvent(kind, ts, host, prog, pid, v[2], None, None, None, None, None, None, None, False, pre, v[0], raw)


def _b_accepted_key(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    ktype, fp, f = v[0], v[1], v[2]
    n = int(v[3])
    if len(p._pending_keys) > 10000:
        p._pending_keys.clear()
    p._pending_keys[(host, pid)] = (fp, f, n)
    return AuthEvent(
        KIND.ACCEPTED_KEY, ts, host, prog, pid, None, None, None, "publickey", ktype, fp, f, n, False, pre, None, raw
    )


def _not_allowed_event(
    user: str, addr: str | None, reason: str, ts: datetime | None, host: str | None, prog: str, pid: int | None,
    pre: bool, raw: str,
) -> AuthEvent:  # fmt: skip
    code = _NOT_ALLOWED.get(reason)
    if code is None:
        code = "shell_missing" if reason.endswith("does not exist") else "shell_not_executable"
    return AuthEvent(
        KIND.NOT_ALLOWED, ts, host, prog, pid, user, addr, None, None, None, None, None, None, False, pre, code, raw
    )


def _b_not_allowed_host(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    rhost = v[1]
    # With UseDNS yes sshd writes a host name here; keep the event, without an address.
    addr = rhost if _valid_addr(rhost) else None
    return _not_allowed_event(v[0][:-1], addr, v[2], ts, host, prog, pid, pre, raw)


def _b_not_allowed(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    return _not_allowed_event(v[0], None, v[1], ts, host, prog, pid, pre, raw)


def _b_su(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    kind = KIND.SU_FAILURE if v[0] else KIND.SU_SUCCESS
    return AuthEvent(
        kind, ts, host, prog, pid, v[2] or None, None, None, None, None, None, None, None, False, pre, v[1], raw
    )


def _b_sudo(
    p: AuthLogParser, v: _Fields, ts: datetime | None, host: str | None, prog: str, pid: int | None, pre: bool, raw: str
) -> AuthEvent | None:
    user, what, runas, cmd = v[0], v[1], v[2], v[3]
    if what is None:
        kind, detail = KIND.SUDO_COMMAND, f"{runas}: {cmd}"
    else:
        if "incorrect password attempt" in what:
            kind = KIND.SUDO_AUTH_FAILURE
        elif what == "user NOT in sudoers":
            kind = KIND.SUDO_NOT_IN_SUDOERS
        else:
            kind = KIND.SUDO_DENIED
        detail = f"{what} ({runas}: {cmd})"
    return AuthEvent(kind, ts, host, prog, pid, user, None, None, None, None, None, None, None, False, pre, detail, raw)


_BUILDERS: dict[str, _Builder] = {
    "auth": _authentication(cert=False),
    "auth_cert": _authentication(cert=True),
    "invalid": _b_invalid,
    "maxauth": _b_maxauth,
    "closed": _b_closed,
    "disconnecting": _b_disconnecting,
    "received": _b_received,
    "noident": _address_only(KIND.NO_IDENT),
    "timeout": _address_only(KIND.AUTH_TIMEOUT),
    "conn_from": _address_only(KIND.CONNECTION),
    "banner": _with_detail(KIND.BAD_BANNER),
    "negotiate": _with_detail(KIND.NEGOTIATION_FAILED),
    "drop": _with_detail(KIND.CONNECTION_DROPPED),
    "pam_auth": _b_pam_auth,
    "pam_session": _b_pam_session,
    "accepted_key": _b_accepted_key,
    "not_allowed_host": _b_not_allowed_host,
    "not_allowed": _b_not_allowed,
    "su": _b_su,
    "sudo": _b_sudo,
}


def _indices(rx: re.Pattern[str], name: str, fields: tuple[str, ...], header: tuple[str, ...] = ()) -> tuple[int, ...]:
    return tuple(rx.groupindex[f"{name}__{f}"] for f in (*fields, "pre")) + tuple(rx.groupindex[h] for h in header)


_Row = tuple[str, str, str, tuple[str, ...], tuple[str, ...]]
# (match, {alternative group: (indices of the fields, " [preauth]" and, for a line regex, ts, host,
# prog, pid; builder; family)})
_Rx = tuple[Callable[..., "re.Match[str] | None"], dict[str, tuple[tuple[int, ...], _Builder, str]]]
# Every regex is compiled on first use, once per set of rows: compiling costs milliseconds, and a
# short run (a module reading the last minutes of a journal, the notifier at a login) needs few.
_COMPILED: dict[tuple[bool, tuple[str, ...]], _Rx] = {}
# {start word: the sshd and any-program rows declaring it, in table order}
_WORD_ROWS = {word: [alt for alt in _ALTS if alt[1] in (_SSHD, _ALL) and word in alt[4]] for word in _SSHD_STARTS}
# {start word: its sshd line regex (header and message) / sshd message regex (for the journal and
# ``_other_line``)}, filled on first use.
_SSHD_LINE_RX: dict[str, _Rx] = {}
_SSHD_MSG_RX: dict[str, _Rx] = {}


def _rows_rx(rows: list[_Row], line: bool = False) -> _Rx:
    """The regex of ``rows`` (an sshd line regex with ``line``, else a message regex)."""
    key = (line, tuple(row[0] for row in rows))
    rx = _COMPILED.get(key)
    if rx is None:
        header = ("ts", "host", "prog", "pid") if line else ()
        pattern = re.compile((_SSHD_HEAD if line else "") + _alternation(rows))
        idx = {
            f"A_{name}": (_indices(pattern, name, fields, header), _BUILDERS[name], family)
            for name, family, _pat, fields, _starts in rows
        }
        rx = _COMPILED[key] = (pattern.match, idx)
    return rx


def _all_rows_rx() -> _Rx:
    """The message regex of every row, for messages of other programs than sshd's."""
    return _rows_rx(_ALTS)


def _sshd_line_rx(word: str) -> _Rx:
    """The sshd line regex of a word in ``_WORD_ROWS``."""
    rx = _SSHD_LINE_RX.get(word)
    if rx is None:
        rx = _SSHD_LINE_RX[word] = _rows_rx(_WORD_ROWS[word], line=True)
    return rx


def _sshd_message_rx(msg: str, pos: int = 0) -> _Rx | None:
    """The message regex of the rows an sshd message starting at ``pos`` may match, chosen by its
    first word (after "error: " or "fatal: "); None when no row starts with that word."""
    if msg.startswith("error: ", pos) or msg.startswith("fatal: ", pos):
        pos += 7
    word = msg[pos : pos + 4]
    rx = _SSHD_MSG_RX.get(word)
    if rx is None:
        rows = _WORD_ROWS.get(word)
        if rows is None:
            return None
        rx = _SSHD_MSG_RX[word] = _rows_rx(rows)
    return rx


def _match_message(text: str, pos: int, program: str) -> tuple[re.Match[str], tuple[int, ...], _Builder] | None:
    """The row the message of ``program`` at ``pos`` matches, with its groups and builder: an sshd
    message among the rows of its first word, another program's among every row of that program."""
    if program in SSHD_PROGRAMS:
        rx = _sshd_message_rx(text, pos)
        m = rx[0](text, pos) if rx is not None else None
        if m is None:
            return None
        gi, build, _family = rx[1][m.lastgroup]  # type: ignore[index]
        return m, gi, build
    rx = _all_rows_rx()
    m = rx[0](text, pos)
    if m is None:
        return None
    gi, build, family = rx[1][m.lastgroup]  # type: ignore[index]
    if family != _ALL and family != program:
        return None
    return m, gi, build


class AuthLogParser:
    """Stateful parser: timestamp caches, statistics, and the VERBOSE
    ``Accepted key ... found at FILE:LINE`` record waiting (per host and pid)
    for the ``Accepted publickey`` event it belongs to.

    ``year``: the year for classic syslog timestamps, which carry none. Default:
    the current year, or the previous one when the date would lie more than two
    days in the future (a log from December read in January). ``tz``: the zone
    of classic timestamps (default: this machine's local zone). Every timestamp
    produced is timezone-aware.
    """

    def __init__(self, *, year: int | None = None, tz: tzinfo | None = None, now: datetime | None = None) -> None:
        self.stats = ParseStats()
        self._year = year
        self._tz = tz
        self._now = now
        self._ts_cache: dict[str, datetime | None] = {}
        self._zones: dict[tuple[tzinfo, str | None], tzinfo] = {}
        self._pids: dict[str, int] = {}
        self._pending_keys: dict[tuple[str | None, int | None], tuple[str, str, int]] = {}

    # -- timestamps ------------------------------------------------------------------------
    def _timestamp(self, t: str) -> datetime | None:
        if t[0] != "2" and t[0] != "1":  # classic "Mon DD HH:MM:SS": repeats, cache it
            cache = self._ts_cache
            if t in cache:
                return cache[t]
            ts = self._parse_classic(t)
            if len(cache) > 4096:
                cache.clear()
            cache[t] = ts
            return ts
        try:
            d = datetime.fromisoformat(t if t[-1] != "Z" else t[:-1] + "+00:00")
        except ValueError:
            return None
        return d if d.tzinfo is timezone.utc else self._aware(d)

    def _aware(self, d: datetime) -> datetime:
        """A parsed RFC 3339 time that is not UTC: localized when it has no zone, else with one
        tzinfo object per offset (see ``_one_zone_object``)."""
        return self._localize(d) if d.tzinfo is None else self._one_zone_object(d)

    def _one_zone_object(self, d: datetime) -> datetime:
        """``d`` with the first tzinfo object seen for its offset and name. Each parse makes a new
        timezone object (except UTC); datetimes that share one compare without utcoffset() calls,
        and a summary compares every event's timestamp."""
        tz = d.tzinfo
        assert tz is not None
        key = (tz, tz.tzname(d))
        zone = self._zones.setdefault(key, tz)
        return d if zone is tz else d.replace(tzinfo=zone)

    def _parse_classic(self, t: str) -> datetime | None:
        mon = _MONTHS.get(t[:3])
        if mon is None:
            return None
        try:
            day, hh, mm, ss = int(t[4:6]), int(t[7:9]), int(t[10:12]), int(t[13:15])
            year = self._year
            if year is None:
                now = self._now or datetime.now(timezone.utc)
                d = self._localize(datetime(now.year, mon, day, hh, mm, ss))
                if d - now > timedelta(days=2):
                    d = self._localize(datetime(now.year - 1, mon, day, hh, mm, ss))
                return d
            return self._localize(datetime(year, mon, day, hh, mm, ss))
        except ValueError:
            return None

    def _localize(self, d: datetime) -> datetime:
        if self._tz is not None:
            return d.replace(tzinfo=self._tz)
        return self._one_zone_object(d.astimezone())

    # -- text lines ------------------------------------------------------------------------
    def parse_text_line(self, line: str) -> AuthEvent | None:
        """Parse one syslog text line (no trailing newline needed); update :attr:`stats`."""
        for ev in self.parse_lines((line,)):
            return ev
        return None

    def parse_lines(self, lines: Iterable[str]) -> Iterator[AuthEvent]:
        """Parse syslog text lines; yields events, unmatched lines are only counted."""
        return self._parse_blocks((lines,))

    def _parse_blocks(self, blocks: Iterable[Iterable[str]]) -> Iterator[AuthEvent]:
        st = self.stats
        line_rx = _SSHD_LINE_RX
        word_rows = _WORD_ROWS
        timestamp = self._timestamp
        fromisoformat = datetime.fromisoformat
        utc = timezone.utc
        other_line = self._other_line
        pids = self._pids
        n = events = 0
        try:
            for lines in blocks:
                for line in lines:
                    n += 1
                    if line[-1:] == "\n":
                        line = line[:-1]
                    if line[-1:] == "\r":
                        line = line[:-1]
                    if len(line) > MAX_LINE:
                        st.oversized += 1
                        continue
                    m = None
                    at = line.find("]: ") + 3
                    if at > 2:
                        word = line[at : at + 4]
                        if word == "erro" or word == "fata":
                            word = line[at + 7 : at + 11]
                        rx = line_rx.get(word)
                        if rx is None and word in word_rows:
                            rx = _sshd_line_rx(word)
                        if rx is not None:
                            m = rx[0](line)
                    if m is not None:
                        gi, build, _family = rx[1][m.lastgroup]  # type: ignore[index]
                        v = m.group(*gi)
                        t = v[-4]
                        if (t[0] == "2" or t[0] == "1") and t[-1] != "Z":
                            # _timestamp's RFC 3339 case, inlined: calling it costs as much as the parse.
                            ts: datetime | None
                            try:
                                parsed = fromisoformat(t)
                            except ValueError:
                                ts = None
                            else:
                                ts = parsed if parsed.tzinfo is utc else self._aware(parsed)
                        else:
                            ts = timestamp(t)
                        pid_s = v[-1]
                        pid = pids.get(pid_s)
                        if pid is None:
                            if len(pids) > 65536:
                                pids.clear()
                            pid = pids[pid_s] = int(pid_s)
                        ev = build(self, v, ts, v[-3], v[-2], pid, v[-5] is not None, line)
                        if ev is None:
                            st.unparsed += 1
                            continue
                    else:
                        ev = other_line(line, at)
                        if ev is None:
                            continue
                    events += 1
                    yield ev
        finally:
            st.lines += n
            st.events += events

    def _other_line(self, line: str, at: int) -> AuthEvent | None:
        """A line no sshd line regex matched: another program's (su, sudo, pam_unix lines of them),
        an sshd line whose message starts elsewhere than after its first "]: " (``at``), or not an
        event at all (only counted)."""
        st = self.stats
        h = _HEAD_RX.match(line)
        if h is None:
            self._classify(line)
            return None
        ts_s, host, prog, pid_s = h.group(1, 2, 3, 4)
        if prog not in PROGRAMS:
            st.other += 1
            return None
        pos = h.end()
        if prog in SSHD_PROGRAMS:
            if pid_s is None:
                st.untrusted += 1  # sshd always logs with LOG_PID: this is `logger -t sshd`
                return None
            if pos == at and ts_s.isascii() and pid_s.isascii():
                # The line regex of this message's word has seen this very header (with ASCII digits
                # its [0-9] matches as \d does) and no row matched the message; or no row has that word.
                st.unparsed += 1
                return None
        matched = _match_message(line, pos, prog)
        if matched is None:
            st.unparsed += 1
            return None
        m, gi, build = matched
        v = m.group(*gi)
        ev = build(self, v, self._timestamp(ts_s), host, prog, int(pid_s) if pid_s else None, v[-1] is not None, line)
        if ev is None:
            st.unparsed += 1
        return ev

    def _classify(self, line: str) -> None:
        """Account for a line whose header ``_HEAD_RX`` did not recognise: not ours, malformed,
        untrusted (pid-less sshd) or unparsed."""
        st = self.stats
        if line[:1].isdigit():
            sp = line.find(" ")
            if sp < 0:
                st.malformed += 1
                return
            start = sp + 1
        else:
            if len(line) < 16 or line[15] != " " or line[3] != " ":
                st.malformed += 1
                return
            start = 16
        sp = line.find(" ", start)
        colon = line.find(": ", sp + 1)
        if sp < 0 or colon < 0:
            st.malformed += 1
            return
        tag = line[sp + 1 : colon]
        br = tag.find("[")
        prog = tag[:br] if br >= 0 else tag
        if prog not in PROGRAMS:
            st.other += 1
        elif br < 0 and prog in SSHD_PROGRAMS:
            st.untrusted += 1
        else:
            st.unparsed += 1

    # -- journal ---------------------------------------------------------------------------
    def parse_journal_record(self, rec: dict[str, Any], raw: str = "") -> AuthEvent | None:
        """Parse one ``journalctl -o json`` record (already decoded); update :attr:`stats`."""
        st = self.stats
        comm = rec.get("_COMM")
        if not isinstance(comm, str) or comm not in PROGRAMS:
            if rec.get("SYSLOG_IDENTIFIER") in PROGRAMS:
                st.untrusted += 1  # e.g. logger -t sshd: _COMM=logger
            else:
                st.other += 1
            return None
        if not _journal_trusted(rec, comm):
            st.untrusted += 1
            return None
        msg = rec.get("MESSAGE")
        if isinstance(msg, list) and all(isinstance(b, int) and 0 <= b < 256 for b in msg):
            msg = bytes(msg).decode("utf-8", "replace")
        if not isinstance(msg, str) or len(msg) > MAX_LINE:
            st.unparsed += 1
            return None
        matched = _match_message(msg, 0, comm)
        if matched is None:
            st.unparsed += 1
            return None
        m, gi, build = matched
        v = m.group(*gi)
        pid_s = rec.get("_PID")
        # isdecimal, not isdigit: "1²" passes isdigit and makes int() raise.
        pid = int(pid_s) if isinstance(pid_s, str) and pid_s.isdecimal() and len(pid_s) <= 10 else None
        host = rec.get("_HOSTNAME")
        ts = _realtime(rec.get("__REALTIME_TIMESTAMP"))
        ev = build(self, v, ts, host if isinstance(host, str) else None, comm, pid, v[-1] is not None, raw or msg)
        if ev is None:
            st.unparsed += 1
        else:
            st.events += 1
        return ev

    def parse_journal(self, lines: Iterable[str]) -> Iterator[AuthEvent]:
        """Parse ``journalctl -o json`` output, one JSON object per line."""
        st = self.stats
        for line in lines:
            st.lines += 1
            if len(line) > 4 * MAX_LINE:
                st.oversized += 1
                continue
            s = line.strip()
            if not s:
                st.lines -= 1
                continue
            try:
                rec = json.loads(s)
            except ValueError:
                st.malformed += 1
                continue
            if not isinstance(rec, dict):
                st.malformed += 1
                continue
            ev = self.parse_journal_record(rec, s)
            if ev is not None:
                yield ev


def _realtime(usec: object) -> datetime | None:
    """journald's __REALTIME_TIMESTAMP (microseconds since the epoch) as a UTC time; None when it
    is not one (a copied journal file is hostile input: "1²", or a year past 9999)."""
    if not isinstance(usec, str) or not usec.isdecimal() or len(usec) > 18:
        return None
    try:
        return _EPOCH + timedelta(microseconds=int(usec))
    except OverflowError:
        return None


def _journal_trusted(rec: dict[str, Any], comm: str) -> bool:
    exe = rec.get("_EXE")
    if exe is not None:
        if not isinstance(exe, str):
            return False
        d, _, base = exe.rpartition("/")
        if d not in _SYSTEM_DIRS or base[:15] != comm:
            return False
    if comm in SSHD_PROGRAMS:
        uid = rec.get("_UID")
        if uid is not None and uid != "0":
            unit = rec.get("_SYSTEMD_UNIT")
            if not (isinstance(unit, str) and (unit in _SSH_UNITS or unit.startswith(("ssh@", "sshd@")))):
                return False
    return True


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def open_log(path: str) -> IO[bytes]:
    """Open a log file for reading as bytes, gunzipping when it is gzip (by content; a
    ``.gz`` name that is not gzip is an error). Raises :class:`AuthLogError`."""
    try:
        f: IO[bytes] = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except IsADirectoryError:
        raise AuthLogError(f"{path}: is a directory") from None
    except OSError as e:
        raise AuthLogError(f"{path}: {_describe(e)}") from None
    try:
        magic = f.read(2)
        f.seek(0)
    except OSError as e:
        f.close()
        if isinstance(e, IsADirectoryError):
            raise AuthLogError(f"{path}: is a directory") from None
        raise AuthLogError(f"{path}: {_describe(e)}") from None
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if path.endswith(".gz"):
        f.close()
        raise AuthLogError(f"{path}: not a gzip file although named .gz")
    return f


def iter_file_lines(f: IO[bytes], name: str = "<input>", stats: ParseStats | None = None) -> Iterator[str]:
    """Yield decoded lines (without newline) from a binary stream: invalid UTF-8
    is replaced, NULs are kept, lines over :data:`MAX_LINE` are dropped (counted
    in ``stats.oversized`` and ``stats.lines``). Read errors become :class:`AuthLogError`."""
    for block in _iter_blocks(f, name, stats):
        yield from block


def _iter_blocks(f: IO[bytes], name: str, stats: ParseStats | None) -> Iterator[list[str]]:
    """The lines of :func:`iter_file_lines`, one list per 1 MiB read: the parsers loop over
    each list, rather than resuming a generator for every line."""
    return _blocks_of(_iter_text(f, name, stats))


def _blocks_of(pieces: Iterable[str]) -> Iterator[list[str]]:
    for piece in pieces:
        lines = piece.split("\n")
        if not lines[-1]:
            lines.pop()  # a piece of whole lines ends with "\n"; only the input's last line may not
        yield lines


def _iter_text(f: IO[bytes], name: str, stats: ParseStats | None) -> Iterator[str]:
    """The decoded text of a binary stream (invalid UTF-8 replaced, NULs kept) in pieces of whole
    lines, one per 1 MiB read: every piece ends with "\n" except the input's last line when it has
    none. A line growing past :data:`MAX_LINE` (and a "\r") is dropped as it is read, to bound
    memory, and counted in ``stats.oversized`` and ``stats.lines``; shorter ones are kept whole,
    the parsers decide on their length. Read errors become :class:`AuthLogError`."""
    import codecs

    dec = codecs.getincrementaldecoder("utf-8")("replace")
    carry = ""
    skipping = False
    while True:
        try:
            block = f.read(1 << 20)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise AuthLogError(f"{name}: {_describe(e)}") from None
        text = dec.decode(block, final=not block)
        if text:
            cut = text.rfind("\n") + 1
            if cut:
                piece = carry + text[:cut] if carry else text[:cut]
                carry = text[cut:]
                if skipping:
                    piece = piece[piece.index("\n") + 1 :]
                    skipping = False
                    if stats is not None:
                        stats.oversized += 1
                        stats.lines += 1
                if piece:
                    yield piece
            else:
                carry += text
            # A line of MAX_LINE characters and its "\r" is still kept: the parsers strip the "\r"
            # before they measure, wherever the 1 MiB reads happen to cut the file.
            if len(carry) > MAX_LINE + 1:
                carry = ""
                skipping = True
        if not block:
            if skipping:
                if stats is not None:
                    stats.oversized += 1
                    stats.lines += 1
            elif carry:
                yield carry
            return


def _looks_like_journal(first: str) -> bool:
    return first.lstrip().startswith("{")


def parse_path(path: str, parser: AuthLogParser | None = None) -> Iterator[AuthEvent]:
    """Events of one file: syslog text or ``journalctl -o json`` output (detected from
    the first line), plain or gzip. Raises :class:`AuthLogError` on unreadable input."""
    p = parser or AuthLogParser()
    f = open_log(path)
    with f:
        yield from parse_stream(f, path, p)


def parse_stream(f: IO[bytes], name: str, parser: AuthLogParser) -> Iterator[AuthEvent]:
    blocks = _iter_blocks(f, name, parser.stats)
    # Leading blank lines are counted and skipped; the first other line decides the format.
    first: str | None = None
    rest: list[str] = []
    for block in blocks:
        for i, first in enumerate(block):
            if first.strip():
                rest = block[i:]
                break
            parser.stats.lines += 1
        else:
            continue
        break
    else:
        if first is None:
            return
        rest = [first]  # only blank lines: the last one is parsed as well, as it always was
    remaining = itertools.chain((rest,), blocks)
    if _looks_like_journal(first):
        yield from parser.parse_journal(itertools.chain.from_iterable(remaining))
    else:
        yield from parser._parse_blocks(remaining)


def parse_lines(lines: Iterable[str], **kw: Any) -> Iterator[AuthEvent]:
    """Convenience: parse syslog text lines with a fresh :class:`AuthLogParser`."""
    return AuthLogParser(**kw).parse_lines(lines)


def parse_journal(lines: Iterable[str], **kw: Any) -> Iterator[AuthEvent]:
    """Convenience: parse ``journalctl -o json`` lines with a fresh :class:`AuthLogParser`."""
    return AuthLogParser(**kw).parse_journal(lines)


# --------------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------------


def _min_ts(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def _max_ts(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


@dataclass
class SourceSummary:
    """What one remote address did. Failure classes count failed authentication
    attempts (one per ``Failed ...`` line): ``root_attempts`` for user root,
    ``invalid_user_failures`` for users sshd called invalid, ``valid_user_failures``
    for the rest. ``invalid_users`` counts connections that named a non-existent or
    not-allowed user (``Invalid user`` / ``not allowed because``), whether or not a
    password was then tried."""

    address: str
    failures: int = 0
    root_attempts: int = 0
    invalid_user_failures: int = 0
    valid_user_failures: int = 0
    invalid_users: int = 0
    accepted: int = 0
    max_auth_exceeded: int = 0
    preauth_disconnects: int = 0
    scans: int = 0  # no identification string, bad banner, negotiation failures
    users: set[str] = field(default_factory=set)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    _invalid_conns: dict[tuple[str | None, int | None], bool] = field(default_factory=dict, repr=False)
    _failed_conns: set[tuple[str | None, int | None]] = field(default_factory=set, repr=False)

    def class_counts(self) -> dict[str, int]:
        """Attempts per class for :meth:`Summary.offenders`: ``root``, ``invalid``, ``valid``.
        A connection that named an invalid user but never got to a ``Failed`` line
        still counts once."""
        root = self.root_attempts
        invalid = self.invalid_user_failures
        for conn, is_root in self._invalid_conns.items():
            if conn not in self._failed_conns:
                if is_root:
                    root += 1
                else:
                    invalid += 1
        return {"root": root, "invalid": invalid, "valid": self.valid_user_failures}

    def attempts(self) -> int:
        return sum(self.class_counts().values())

    def counts(self) -> dict[str, Any]:
        """The fields a fast summary fills (:data:`FAST_SOURCE_FIELDS`), with ``attempts``."""
        d: dict[str, Any] = {"address": self.address, "attempts": self.attempts()}
        for name in FAST_SOURCE_FIELDS:
            d[name] = getattr(self, name)
        d["users"] = sorted(self.users)
        return d

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "attempts": self.attempts(),
            "failures": self.failures,
            "root_attempts": self.root_attempts,
            "invalid_user_failures": self.invalid_user_failures,
            "valid_user_failures": self.valid_user_failures,
            "invalid_users": self.invalid_users,
            "accepted": self.accepted,
            "max_auth_exceeded": self.max_auth_exceeded,
            "preauth_disconnects": self.preauth_disconnects,
            "scans": self.scans,
            "users": sorted(self.users),
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
        }


@dataclass
class UserSummary:
    user: str
    failures: int = 0
    invalid: bool = False  # sshd called this user invalid at least once
    accepted: int = 0
    sudo_failures: int = 0
    sources: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "failures": self.failures,
            "invalid": self.invalid,
            "accepted": self.accepted,
            "sudo_failures": self.sudo_failures,
            "sources": sorted(self.sources),
            "methods": sorted(self.methods),
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
        }


# What a kind counts for in a Summary, as one small int looked up once per event. The roles below
# _R_MAX_AUTH are the kinds that name a user worth summarising (failures, invalid or refused users,
# accepted logins, sudo/su failures); kinds without a role still mark a source as seen.
_R_FAILED = 1
_R_INVALID_USER = 2
_R_NOT_ALLOWED = 3
_R_ACCEPTED = 4
_R_SUDO_FAILURE = 5
_R_MAX_AUTH = 6
_R_PREAUTH_CLOSE = 7
_R_SCAN = 8
_ROLE: dict[str, int] = {
    **dict.fromkeys(FAILED_KINDS, _R_FAILED),
    KIND.INVALID_USER: _R_INVALID_USER,
    KIND.NOT_ALLOWED: _R_NOT_ALLOWED,
    KIND.ACCEPTED: _R_ACCEPTED,
    **dict.fromkeys((KIND.SUDO_AUTH_FAILURE, KIND.SUDO_NOT_IN_SUDOERS, KIND.SU_FAILURE), _R_SUDO_FAILURE),
    KIND.MAX_AUTH: _R_MAX_AUTH,
    **dict.fromkeys((KIND.CONNECTION_CLOSED, KIND.CONNECTION_RESET, KIND.DISCONNECTED), _R_PREAUTH_CLOSE),
    **dict.fromkeys((KIND.NO_IDENT, KIND.BAD_BANNER, KIND.NEGOTIATION_FAILED), _R_SCAN),
}


class Summary:
    """Aggregates events: per source address, per user, accepted logins with keys."""

    def __init__(self) -> None:
        self.sources: dict[str, SourceSummary] = {}
        self.users: dict[str, UserSummary] = {}
        self.accepted: list[AuthEvent] = []
        self.kinds: dict[str, int] = {}

    def add(self, ev: AuthEvent) -> None:
        kind = ev.kind
        kinds = self.kinds
        kinds[kind] = kinds.get(kind, 0) + 1
        role = _ROLE.get(kind, 0)
        ts = ev.timestamp
        addr = ev.address
        user = ev.user
        if role == _R_ACCEPTED:
            self.accepted.append(ev)
        if addr is not None and ev.program in SSHD_PROGRAMS:
            s = self.sources.get(addr)
            if s is None:
                s = self.sources[addr] = SourceSummary(addr)
            # Ties keep the earlier record's timestamp (the same instant in another zone).
            if ts is not None:
                seen = s.first_seen
                if seen is None or ts < seen:
                    s.first_seen = ts
                seen = s.last_seen
                if seen is None or ts > seen:
                    s.last_seen = ts
            if role:
                # _fast_count repeats these two rules (unit tests hold the two to equal counts): one
                # method for both cost this loop 8 % (a call per failure, measured).
                if role == _R_FAILED:
                    s.failures += 1
                    s._failed_conns.add((ev.host, ev.port))
                    if user == "root":
                        s.root_attempts += 1
                    elif ev.invalid_user:
                        s.invalid_user_failures += 1
                    else:
                        s.valid_user_failures += 1
                elif role in (_R_INVALID_USER, _R_NOT_ALLOWED):
                    s.invalid_users += 1
                    s._invalid_conns[(ev.host, ev.port)] = user == "root"
                elif role == _R_ACCEPTED:
                    s.accepted += 1
                elif role == _R_MAX_AUTH:
                    s.max_auth_exceeded += 1
                elif role == _R_PREAUTH_CLOSE:
                    if ev.preauth:
                        s.preauth_disconnects += 1
                elif role == _R_SCAN:
                    s.scans += 1
                if user is not None and role < _R_MAX_AUTH:
                    s.users.add(user)
        if user is not None and 0 < role < _R_MAX_AUTH:
            u = self.users.get(user)
            if u is None:
                u = self.users[user] = UserSummary(user)
            if ts is not None:
                seen = u.first_seen
                if seen is None or ts < seen:
                    u.first_seen = ts
                seen = u.last_seen
                if seen is None or ts > seen:
                    u.last_seen = ts
            if addr is not None:
                u.sources.add(addr)
            if role == _R_FAILED:
                u.failures += 1
                if ev.invalid_user:
                    u.invalid = True
            elif role == _R_INVALID_USER:
                u.invalid = True
            elif role == _R_ACCEPTED:
                u.accepted += 1
            elif role == _R_SUDO_FAILURE:
                u.sudo_failures += 1
            if role in (_R_FAILED, _R_ACCEPTED) and ev.method:
                u.methods.add(ev.method)

    def add_all(self, events: Iterable[AuthEvent]) -> Summary:
        for ev in events:
            self.add(ev)
        return self

    def merge(self, other: Summary) -> Summary:
        """Add ``other`` (a summary of LATER lines) into this one; used by the chunked mode."""
        for k, v in other.kinds.items():
            self.kinds[k] = self.kinds.get(k, 0) + v
        self.accepted.extend(other.accepted)
        for addr, o in other.sources.items():
            s = self.sources.get(addr)
            if s is None:
                self.sources[addr] = o
                continue
            for f in ("failures", "root_attempts", "invalid_user_failures", "valid_user_failures", "invalid_users",
                      "accepted", "max_auth_exceeded", "preauth_disconnects", "scans"):  # fmt: skip
                setattr(s, f, getattr(s, f) + getattr(o, f))
            s.users |= o.users
            s.first_seen = _min_ts(s.first_seen, o.first_seen)
            s.last_seen = _max_ts(s.last_seen, o.last_seen)
            s._invalid_conns.update(o._invalid_conns)
            s._failed_conns |= o._failed_conns
        for name, ou in other.users.items():
            u = self.users.get(name)
            if u is None:
                self.users[name] = ou
                continue
            u.failures += ou.failures
            u.accepted += ou.accepted
            u.sudo_failures += ou.sudo_failures
            u.invalid = u.invalid or ou.invalid
            u.sources |= ou.sources
            u.methods |= ou.methods
            u.first_seen = _min_ts(u.first_seen, ou.first_seen)
            u.last_seen = _max_ts(u.last_seen, ou.last_seen)
        return self

    def accepted_logins(self) -> list[AuthEvent]:
        """Accepted logins in log order; publickey ones carry key type, fingerprint and,
        at LogLevel VERBOSE, the authorized_keys file and line."""
        return list(self.accepted)

    def offenders(
        self,
        threshold: int,
        allowlist_cidrs: Iterable[str] = (),
        per_class_thresholds: dict[str, int] | None = None,
    ) -> list[str]:
        """Addresses to ban, worst first: total attempts (root + invalid + valid, see
        :meth:`SourceSummary.class_counts`) >= ``threshold``, or any class count >=
        its ``per_class_thresholds`` entry (keys ``invalid``, ``valid``, ``root``).
        An address inside any ``allowlist_cidrs`` network (single addresses allowed)
        is never returned. Addresses are matched exactly as sshd wrote them, so
        1.2.3.4 and 1.2.3.45 are different sources. A bad allowlist entry raises
        ValueError rather than banning anyone."""
        nets = netaddr.parse_networks(allowlist_cidrs, "allowlist")
        pct = dict(per_class_thresholds or {})
        unknown = set(pct) - {"invalid", "valid", "root"}
        if unknown:
            raise ValueError(f"unknown per_class_thresholds keys: {sorted(unknown)}")
        if threshold < 1 or any(v < 1 for v in pct.values()):
            raise ValueError("thresholds must be >= 1")
        scored: list[tuple[int, str]] = []
        for addr, s in self.sources.items():
            counts = s.class_counts()
            total = sum(counts.values())
            hit = total >= threshold or any(counts[k] >= v for k, v in pct.items())
            if not hit:
                continue
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
            if any(ip.version == n.version and ip in n for n in nets):
                continue
            scored.append((total, addr))
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [a for _, a in scored]

    def counted_sources(self) -> list[dict[str, Any]]:
        """:meth:`SourceSummary.counts` of every source with a count, worst first: the same list
        from a fast summary (:func:`summarize_sources`) as from the parser's events."""
        rows = [s.counts() for s in self.sources.values()]
        rows = [r for r in rows if any(r[k] for k in FAST_SOURCE_FIELDS) or r["attempts"]]
        rows.sort(key=lambda r: (-r["attempts"], r["address"]))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": [s.to_dict() for s in sorted(self.sources.values(), key=lambda s: (-s.attempts(), s.address))],
            "users": [u.to_dict() for u in sorted(self.users.values(), key=lambda u: (-u.failures, u.user))],
            "accepted": [e.to_dict() for e in self.accepted],
            "kinds": dict(sorted(self.kinds.items())),
        }


def summarize(events: Iterable[AuthEvent]) -> Summary:
    return Summary().add_all(events)


# --------------------------------------------------------------------------------------------
# Fast per-source counts of text files
#
# The counts a ban decides on (failures per source, by user class, and the invalid-user
# connections) come from a handful of rows. For a text file they are found by ONE regex run with
# finditer over whole decoded pieces (1 MiB, cut at a newline): the sshd header and the rows
# below, built from ``_ALTS`` by ``_alternation``, no line split and no event object. Each match
# is a whole line, the same line, row and fields the parser would decide on:
# * the header is ``_HEAD_RX``'s narrowed to sshd's programs with a pid (what the parser turns into
#   events; pid-less lines are forgeries, other programs never make a source), digits as ``\d``;
# * each row is guarded by its words (``guard_words``), as the parser picks rows by word; and the
#   regex holds, in table order, every counted row and every row before one that shares a word
#   with it: the first row to match a message is then the parser's (a later row cannot shadow it);
# * the pieces are one text over many lines, so no match may cross a newline: a leading "\n"
#   starts every match at a line start, ``$`` (MULTILINE) ends it at the line end, negated
#   classes ``[^...]`` get "\n" added, and a row holding ``\s`` (which matches "\n") is refused;
# * "\r\n" becomes "\n" first: the parser strips one "\r" before matching; then a piece holding a
#   line longer than ``MAX_LINE`` (rare, found cheaply by ``_has_long_line``) loses those lines, as
#   the parser skips them.
# Addresses are validated as the parser does, once per distinct string. The journal needs its
# trusted fields per record: ``summarize_sources`` gives it to the parser.
# --------------------------------------------------------------------------------------------

#: The rows a fast summary counts.
_FAST_COUNTED = ("auth", "auth_cert", "invalid", "not_allowed_host", "not_allowed", "maxauth")
#: The fields of :class:`SourceSummary` a fast summary fills (with ``class_counts``,
#: ``attempts`` and :meth:`Summary.offenders`); the others keep their defaults.
FAST_SOURCE_FIELDS = (
    "failures",
    "root_attempts",
    "invalid_user_failures",
    "valid_user_failures",
    "invalid_users",
    "accepted",
    "max_auth_exceeded",
    "users",
)


def _fast_rows() -> list[_Row]:
    """The rows of the fast regex: the counted ones and, in table order, every sshd row before a
    counted row that shares a word with it."""
    rows = []
    sshd_rows = [alt for alt in _ALTS if alt[1] in (_SSHD, _ALL)]
    for i, row in enumerate(sshd_rows):
        words = set(row[4])
        if row[0] in _FAST_COUNTED or any(
            later[0] in _FAST_COUNTED and words & set(later[4]) for later in sshd_rows[i + 1 :]
        ):
            if "\\s" in row[2]:
                raise ValueError(f"row {row[0]}: \\s matches a newline, the fast summary cannot use it")
            rows.append(row)
    return rows


_FAST_HEAD = "\n" + _TS + r" (?P<host>\S+) (?:" + "|".join(sorted(map(re.escape, SSHD_PROGRAMS))) + r")\[\d{1,10}\]: "
# The fields the counting reads, per counted row with an address (host first).
_FAST_FIELDS = {
    "A_auth": ("auth", ("res", "inv", "user", "addr", "port")),
    "A_auth_cert": ("auth_cert", ("res", "inv", "user", "addr", "port")),
    "A_invalid": ("invalid", ("user", "addr", "port")),
    "A_not_allowed_host": ("not_allowed_host", ("user", "rhost")),
    "A_maxauth": ("maxauth", ("addr",)),
}
_FAST_RX: list[tuple[re.Pattern[str], dict[str, tuple[int, ...]]]] = []
# A line longer than MAX_LINE (the text searched starts with "\n").
_LONG_LINE_RX = re.compile(f"\n[^\n]{{{MAX_LINE + 1}}}")


def _has_long_line(text: str) -> bool:
    """Whether a line of ``text`` (which starts with "\n") is longer than MAX_LINE. A run of
    MAX_LINE + 1 characters without a newline holds a whole window of ``step`` characters at a
    multiple of ``step``, so a text with a newline in each such window has none: one ``find`` per
    8 KiB instead of a regex over every character."""
    step = (MAX_LINE + 1) // 2
    find = text.find
    for i in range(0, len(text) - step + 1, step):
        if find("\n", i, i + step) < 0:
            return _LONG_LINE_RX.search(text) is not None
    return False


def _fast_rx() -> tuple[re.Pattern[str], dict[str, tuple[int, ...]]]:
    """The fast regex (compiled on first use) and, per counted row, the group numbers of the
    fields the counting reads."""
    if not _FAST_RX:
        rows = _fast_rows()
        # One look at the message's word before the rows: most sshd lines start with none of theirs.
        words = sorted({word for row in rows for word in row[4]})
        any_word = "(?=(?:error: |fatal: |)(?:" + "|".join(map(re.escape, words)) + "))"
        rx = re.compile((_FAST_HEAD + any_word + _alternation(rows, guard_words=True)).replace("[^", "[^\n"), re.M)
        gi = rx.groupindex
        idx = {alt: (gi["host"], *(gi[f"{name}__{f}"] for f in fields)) for alt, (name, fields) in _FAST_FIELDS.items()}
        _FAST_RX.append((rx, idx))
    return _FAST_RX[0]


def _fast_source(sources: dict[str, SourceSummary], addr: str) -> SourceSummary | None:
    if not (_ADDR_CACHE.get(addr) or _valid_addr(addr)):
        return None  # the parser makes no event (or one without an address) of this line
    s = sources[addr] = SourceSummary(addr)
    return s


def _fast_count(pieces: Iterable[str], summary: Summary) -> int:
    """Add the counts of text ``pieces`` (from ``_iter_text``) to ``summary``; return their lines."""
    rx, idx = _fast_rx()
    finditer = rx.finditer
    auth, auth_cert, invalid = idx["A_auth"], idx["A_auth_cert"], idx["A_invalid"]
    not_allowed_host, maxauth = idx["A_not_allowed_host"], idx["A_maxauth"]
    sources = summary.sources
    lines = 0
    for piece in pieces:
        if piece[-1] == "\n":
            lines += piece.count("\n")
        else:
            lines += piece.count("\n") + 1
            if piece[-1] == "\r":  # the input's last line, without a newline
                piece = piece[:-1]
        if "\r" in piece:
            piece = piece.replace("\r\n", "\n")
        text = "\n" + piece
        if _has_long_line(text):  # rare: drop the lines the parser skips as oversized
            text = "\n".join(line for line in text.split("\n") if len(line) <= MAX_LINE)
        for m in finditer(text):
            row = m.lastgroup
            if row == "A_auth" or row == "A_auth_cert":
                host, res, inv, user, addr, port = m.group(*(auth if row == "A_auth" else auth_cert))
                if res != "Failed" and res != "Accepted":
                    continue  # Postponed, Partial: no count
                s = sources.get(addr) or _fast_source(sources, addr)
                if s is None:
                    continue
                user = user[:-1]
                s.users.add(user)
                if res == "Accepted":
                    s.accepted += 1
                    continue
                # Summary.add's rules, inline for the same reason as there
                s.failures += 1
                s._failed_conns.add((host, int(port)))
                if user == "root":
                    s.root_attempts += 1
                elif inv is not None:
                    s.invalid_user_failures += 1
                else:
                    s.valid_user_failures += 1
            elif row == "A_invalid" or row == "A_not_allowed_host":
                conn_port: int | None = None
                if row == "A_invalid":
                    host, user, addr, port = m.group(*invalid)
                    conn_port = int(port)
                else:
                    host, user, addr = m.group(*not_allowed_host)
                s = sources.get(addr) or _fast_source(sources, addr)
                if s is None:
                    continue
                user = user[:-1]
                s.users.add(user)
                s.invalid_users += 1
                s._invalid_conns[(host, conn_port)] = user == "root"
            elif row == "A_maxauth":
                host, addr = m.group(*maxauth)
                s = sources.get(addr) or _fast_source(sources, addr)
                if s is not None:
                    s.max_auth_exceeded += 1
    return lines


def summarize_sources(f: IO[bytes], name: str = "<input>", summary: Summary | None = None) -> tuple[Summary, int]:
    """Per-source counts of one log stream (see :data:`FAST_SOURCE_FIELDS`) added to ``summary``
    (a new one by default), and the stream's line count. Syslog text goes through the fast regex
    (no events); ``journalctl -o json`` output through the parser, for its trusted fields, with
    every field of the summary filled. Raises :class:`AuthLogError` on unreadable input."""
    summary = summary if summary is not None else Summary()
    stats = ParseStats()
    pieces = _iter_text(f, name, stats)
    head: list[str] = []
    for piece in pieces:
        head.append(piece)
        if piece.strip():
            break
    remaining = itertools.chain(head, pieces)
    if head and _looks_like_journal("".join(head)):
        parser = AuthLogParser()
        summary.add_all(parser.parse_journal(itertools.chain.from_iterable(_blocks_of(remaining))))
        return summary, parser.stats.lines
    lines = _fast_count(remaining, summary)
    return summary, lines + stats.lines


def _summarize_chunk(job: tuple[str, int, int, bool, dict[str, Any]]) -> tuple[Summary, ParseStats]:
    path, start, end, fast, kw = job
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    if fast:
        s, lines = summarize_sources(io.BytesIO(data), path)
        return s, ParseStats(lines=lines)
    p = AuthLogParser(**kw)
    s = Summary().add_all(p._parse_blocks(_iter_blocks(io.BytesIO(data), path, p.stats)))
    return s, p.stats


def summarize_path_parallel(path: str, workers: int = 2, fast: bool = False, **kw: Any) -> tuple[Summary, ParseStats]:
    """Summary of one plain (not gzip) log file, parsed in ``workers`` processes over
    newline-aligned byte ranges (the benchmark uses it; the CLI reads serially, as it reads stdin
    and gzip files too). ``fast``: the counts of :func:`summarize_sources` only (text ranges
    through the fast regex; the stats hold only ``lines``). Else every field, from events: the same result as the serial
    parse except that a VERBOSE ``Accepted key`` line and its ``Accepted publickey`` line split
    across two ranges lose the file:line link."""
    import multiprocessing

    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as f:
        for i in range(1, workers):
            f.seek(max(bounds[-1], size * i // workers))
            f.readline()
            bounds.append(min(f.tell(), size))
    bounds.append(size)
    jobs = [(path, a, b, fast, kw) for a, b in zip(bounds, bounds[1:]) if b > a]
    if len(jobs) <= 1:
        return _summarize_chunk((path, 0, size, fast, kw))
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        parts = pool.map(_summarize_chunk, jobs)
    summary, stats = parts[0]
    for s, st in parts[1:]:
        summary.merge(s)
        stats.add(st)
    return summary, stats


def excerpt_for(address: str, lines: Iterable[str], parser: AuthLogParser | None = None) -> list[str]:
    """The log lines (as given, without trailing newline) whose sshd-written address is
    exactly ``address``: a user name containing the address does not select a line,
    and 1.2.3.4 does not select 1.2.3.45. Accepts syslog text and journal-JSON lines."""
    target = ipaddress.ip_address(address.split("%", 1)[0])
    needle = str(target) if target.version == 4 else None
    p = parser or AuthLogParser()
    out: list[str] = []
    for line in lines:
        if needle is not None:
            if needle not in line:
                continue
        elif ":" not in line:
            continue
        stripped = line.rstrip("\r\n")
        ev: AuthEvent | None = None
        if stripped.lstrip().startswith("{"):
            ev = next(iter(p.parse_journal([stripped])), None)
        else:
            ev = p.parse_text_line(stripped)
        if ev is None or ev.address is None:
            continue
        try:
            same = ipaddress.ip_address(ev.address.split("%", 1)[0]) == target
        except ValueError:
            same = False
        if same:
            out.append(stripped)
    return out


def read_text(data: bytes | str) -> list[str]:
    """Helper for tests and callers holding a whole log in memory."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    return list(iter_file_lines(io.BytesIO(data)))
