"""The effective sshd configuration as `sshd -T` prints it, and comparing it with what was asked.

Every check in sshward reads this, never the config file text: a drop-in read first
wins over an edited main file, and only `sshd -T` tells which one did.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Union

from .sshd_config import ACCUMULATING

Effective = dict[str, list[str]]
Wanted = Union[str, Sequence[str], None]

# Keywords sshd -T prints as seconds although the config may say "1m".
TIME_KEYWORDS = frozenset({"logingracetime", "clientaliveinterval", "rekeylimit_time", "unusedconnectiontimeout"})
_TIME_RE = re.compile(r"(\d+)([smhdwSMHDW]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CASE_INSENSITIVE = frozenset({"loglevel", "syslogfacility"})


def parse_sshd_T(text: str) -> Effective:
    """`sshd -T` output -> {lowercase keyword: [value, ...]} (one entry per output line)."""
    out: Effective = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        keyword, _, value = line.partition(" ")
        out.setdefault(keyword.lower(), []).append(value.strip())
    return out


def seconds(value: str) -> int:
    """sshd time format (`90`, `1m30s`, `2h`) -> seconds; ValueError names the bad value."""
    value = value.strip()
    pos, total = 0, 0
    for match in _TIME_RE.finditer(value):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2).lower()]
        pos = match.end()
    if pos != len(value) or not value:
        raise ValueError(f"{value!r} is not an sshd time value (e.g. 30, 1m, 1h30m)")
    return total


def normalise(keyword: str, values: Sequence[str]) -> list[str]:
    """Values as sshd -T would print them, so requested and effective compare as equal."""
    key = keyword.lower()
    out = []
    for v in values:
        v = " ".join(str(v).split())
        if key in TIME_KEYWORDS:
            v = str(seconds(v))
        elif v.lower() in ("yes", "no") or key in _CASE_INSENSITIVE:
            v = v.lower()
        out.append(v)
    return out


def wanted_values(keyword: str, value: Wanted) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = [str(v) for v in value]
    # A list for a single-line keyword is one comma list (Ciphers a,b); for an accumulating one, one line each.
    if keyword.lower() in ACCUMULATING:
        return items
    return [",".join(items)]


def mismatches(wanted: Mapping[str, Wanted], effective: Effective) -> dict[str, tuple[list[str], list[str]]]:
    """{keyword: (wanted, effective)} for every requested keyword sshd does not run with.

    A keyword asked to be removed (None) is not compared: sshd then runs with its
    built-in default, which is whatever this OpenSSH version says.
    """
    out = {}
    for keyword, value in wanted.items():
        if value is None:
            continue
        want = normalise(keyword, wanted_values(keyword, value))
        have = normalise(keyword, effective.get(keyword.lower(), []))
        if keyword.lower() in ACCUMULATING:
            same = sorted(want) == sorted(have) if keyword.lower() != "hostkey" else want == have
        else:
            same = want == have
        if not same:
            out[keyword] = (want, have)
    return out
