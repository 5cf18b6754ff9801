"""Unit tests of sshward.authlog: one fact per test, parametrized over lines."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sshward.authlog import (
    KIND,
    AuthEvent,
    AuthLogError,
    AuthLogParser,
    Summary,
    excerpt_for,
    iter_file_lines,
    open_log,
    parse_path,
    summarize,
)

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "authlog"
FP_A = "SHA256:Wc3pV8nBNu1Yq2LmZ0qgkV4nq5sQFh9bU7xK2oR6tJE"
FP_M = "SHA256:kq1oZ8xV3bN5mC7rT9yU2wE4sD6fG0hJ1lP3aS5dF7g"
H84 = "Nov 22 05:16:41 bullseye sshd[2102]: "
H92 = "2026-11-22T05:16:51.593293+00:00 bookworm sshd[3101]: "
H10 = "2026-11-22T05:16:51.593293+00:00 trixie sshd-session[4101]: "
UTC = UTC


def one(line: str, **kw: object) -> AuthEvent | None:
    p = AuthLogParser(year=2026, tz=UTC, **kw)  # type: ignore[arg-type]
    return p.parse_text_line(line)


def journal_events(path: Path) -> list[AuthEvent]:
    return list(parse_path(str(path), AuthLogParser(year=2026, tz=UTC)))


# -- kinds ------------------------------------------------------------------------------------

KIND_CASES = [
    (H84 + "Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2", KIND.FAILED_PASSWORD),
    (H84 + "Failed password for root from 203.0.113.5 port 51240 ssh2", KIND.FAILED_PASSWORD),
    (H84 + f"Failed publickey for bob from 192.0.2.11 port 50210 ssh2: RSA {FP_M}", KIND.FAILED_PUBLICKEY),
    (H84 + "Failed none for invalid user  from 203.0.113.5 port 51236 ssh2", KIND.FAILED_NONE),
    (
        H84 + "Failed keyboard-interactive/pam for invalid user test from 203.0.113.5 port 1 ssh2",
        KIND.FAILED_KBDINT,
    ),
    (H84 + "Failed hostbased for bob from 203.0.113.5 port 1 ssh2", KIND.FAILED_OTHER),
    (H84 + f"Accepted publickey for alice from 192.0.2.10 port 50100 ssh2: ED25519 {FP_A}", KIND.ACCEPTED),
    (H84 + "Accepted password for carol from 192.0.2.12 port 50300 ssh2", KIND.ACCEPTED),
    (H84 + "Accepted keyboard-interactive/pam for bob from 192.0.2.11 port 50210 ssh2", KIND.ACCEPTED),
    (H92 + f"Accepted key ED25519 {FP_A} found at /home/alice/.ssh/authorized_keys:3", KIND.ACCEPTED_KEY),
    (H92 + "Postponed publickey for alice from 192.0.2.10 port 50100 ssh2 [preauth]", KIND.POSTPONED),
    (H84 + "Invalid user admin from 203.0.113.5 port 51234", KIND.INVALID_USER),
    (H84 + "User root from 203.0.113.9 not allowed because not listed in AllowUsers", KIND.NOT_ALLOWED),
    (H84 + "User dave from 203.0.113.9 not allowed because listed in DenyUsers", KIND.NOT_ALLOWED),
    (
        H84 + "User bob from 203.0.113.9 not allowed because none of user's groups are listed in AllowGroups",
        KIND.NOT_ALLOWED,
    ),
    (H84 + "User eve from 203.0.113.9 not allowed because a group is listed in DenyGroups", KIND.NOT_ALLOWED),
    (H84 + "User games not allowed because shell /bin/nosuchshell does not exist", KIND.NOT_ALLOWED),
    (H84 + "User dave not allowed because account is locked", KIND.NOT_ALLOWED),
    (
        H84 + "error: maximum authentication attempts exceeded for root from 203.0.113.5 port 1 ssh2 [preauth]",
        KIND.MAX_AUTH,
    ),
    (H84 + "Connection closed by 198.51.100.7 port 40122 [preauth]", KIND.CONNECTION_CLOSED),
    (
        H84 + "Connection closed by invalid user admin 203.0.113.5 port 51234 [preauth]",
        KIND.CONNECTION_CLOSED,
    ),
    (
        H84 + "Connection closed by authenticating user root 203.0.113.5 port 1 [preauth]",
        KIND.CONNECTION_CLOSED,
    ),
    (
        H92 + "Connection reset by authenticating user root 203.0.113.5 port 51302 [preauth]",
        KIND.CONNECTION_RESET,
    ),
    (H84 + "Disconnected from invalid user admin 203.0.113.5 port 51234 [preauth]", KIND.DISCONNECTED),
    (H84 + "Disconnected from user alice 192.0.2.10 port 50100", KIND.DISCONNECTED),
    (
        H84 + "Disconnecting authenticating user root 203.0.113.5 port 1: Too many authentication failures [preauth]",
        KIND.DISCONNECTING,
    ),
    (H84 + "Received disconnect from 203.0.113.5 port 51250:11: Bye Bye [preauth]", KIND.RECEIVED_DISCONNECT),
    (H84 + "Did not receive identification string from 198.51.100.20 port 33000", KIND.NO_IDENT),
    (H84 + "banner exchange: Connection from 198.51.100.20 port 33002: invalid format", KIND.BAD_BANNER),
    (
        H84 + "Unable to negotiate with 198.51.100.21 port 41000: no matching key exchange method found. "
        "Their offer: diffie-hellman-group1-sha1 [preauth]",
        KIND.NEGOTIATION_FAILED,
    ),
    (H10 + "Timeout before authentication for 198.51.100.21 port 33020", KIND.AUTH_TIMEOUT),
    (
        "2026-11-22T05:16:55.000008+00:00 trixie sshd[712]: drop connection #0 from [203.0.113.5]:51404 "
        "on [172.18.0.3]:22 penalty: failed authentication",
        KIND.CONNECTION_DROPPED,
    ),
    (H92 + 'Connection from 203.0.113.5 port 51300 on 172.18.0.2 port 22 rdomain ""', KIND.CONNECTION),
    (H84 + "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)", KIND.SESSION_OPENED),
    (H84 + "pam_unix(sshd:session): session opened for user alice by (uid=0)", KIND.SESSION_OPENED),
    (H84 + "pam_unix(sshd:session): session closed for user alice", KIND.SESSION_CLOSED),
    (
        H84 + "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
        "rhost=203.0.113.5  user=root",
        KIND.PAM_AUTH_FAILURE,
    ),
    (
        "Nov 22 05:18:30 bullseye sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls",
        KIND.SUDO_COMMAND,
    ),
    (
        "Nov 22 05:20:20 bullseye sudo:    carol : 3 incorrect password attempts ; TTY=pts/1 ; "
        "PWD=/home/carol ; USER=root ; COMMAND=/bin/bash",
        KIND.SUDO_AUTH_FAILURE,
    ),
    (
        "Nov 22 05:20:30 bullseye sudo:  mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/home/mallory ; "
        "USER=root ; COMMAND=/bin/cat /etc/shadow",
        KIND.SUDO_NOT_IN_SUDOERS,
    ),
    (
        "Nov 22 05:20:10 bullseye sudo: pam_unix(sudo:auth): authentication failure; logname=carol uid=1002 "
        "euid=0 tty=/dev/pts/1 ruser=carol rhost=  user=carol",
        KIND.PAM_AUTH_FAILURE,
    ),
    ("Nov 22 05:20:42 bullseye su[2200]: FAILED SU (to root) carol on pts/1", KIND.SU_FAILURE),
    ("Nov 22 05:20:42 bullseye su[2201]: (to root) carol on pts/1", KIND.SU_SUCCESS),
    (
        "Nov 22 05:20:40 bullseye su[2200]: pam_unix(su:auth): authentication failure; logname=carol uid=1002 "
        "euid=0 tty=/dev/pts/1 ruser=carol rhost=  user=root",
        KIND.PAM_AUTH_FAILURE,
    ),
    (H10 + "Failed password for root from 203.0.113.5 port 51402 ssh2", KIND.FAILED_PASSWORD),
    (
        "2026-11-22T05:16:51.593293+00:00 trixie sshd-auth[4102]: Invalid user a from 203.0.113.5 port 1",
        KIND.INVALID_USER,
    ),
]


@pytest.mark.parametrize(("line", "kind"), KIND_CASES, ids=[c[1] + f"-{i}" for i, c in enumerate(KIND_CASES)])
def test_kind(line: str, kind: str) -> None:
    ev = one(line)
    assert ev is not None and ev.kind == kind


# -- fields -----------------------------------------------------------------------------------

FIELD_CASES = [
    (H84 + "Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2", "user", "admin"),
    (H84 + "Failed password for invalid user admin from 203.0.113.5 port 51234 ssh2", "invalid_user", True),
    (H84 + "Failed password for root from 203.0.113.5 port 51240 ssh2", "invalid_user", False),
    (H84 + "Failed password for root from 203.0.113.5 port 51240 ssh2", "port", 51240),
    (H84 + "Failed password for root from 203.0.113.5 port 51240 ssh2", "method", "password"),
    (H84 + "Failed password for root from 203.0.113.5 port 51240 ssh2", "pid", 2102),
    (H84 + "Failed password for root from 203.0.113.5 port 51240 ssh2", "host", "bullseye"),
    (H84 + "Failed password for root from 203.0.113.5 port 51240 ssh2", "program", "sshd"),
    (H10 + "Failed password for root from 203.0.113.5 port 51240 ssh2", "program", "sshd-session"),
    (H84 + "Failed none for invalid user  from 203.0.113.5 port 51236 ssh2", "user", ""),
    (H84 + "Connection closed by invalid user  203.0.113.5 port 51236 [preauth]", "user", ""),
    (H84 + "Connection closed by 198.51.100.7 port 40122 [preauth]", "user", None),
    (H84 + "Connection closed by 198.51.100.7 port 40122 [preauth]", "preauth", True),
    (H84 + "Disconnected from user alice 192.0.2.10 port 50100", "preauth", False),
    (H84 + "Disconnected from user alice 192.0.2.10 port 50100", "user", "alice"),
    (
        H84 + f"Accepted publickey for alice from 192.0.2.10 port 1 ssh2: ED25519 {FP_A}",
        "key_type",
        "ED25519",
    ),
    (H84 + f"Accepted publickey for alice from 192.0.2.10 port 1 ssh2: ED25519 {FP_A}", "fingerprint", FP_A),
    (
        H84 + "Accepted keyboard-interactive/pam for bob from 192.0.2.11 port 1 ssh2",
        "method",
        "keyboard-interactive/pam",
    ),
    (
        H92 + f"Accepted key ED25519 {FP_A} found at /home/alice/.ssh/authorized_keys:3",
        "authorized_keys_line",
        3,
    ),
    (
        H92 + f"Accepted key ED25519 {FP_A} found at /home/alice/.ssh/authorized_keys:3",
        "authorized_keys_file",
        "/home/alice/.ssh/authorized_keys",
    ),
    (
        H84 + "User root from 203.0.113.9 not allowed because not listed in AllowUsers",
        "detail",
        "not_in_allowusers",
    ),
    (
        H84 + "User root from 203.0.113.9 not allowed because not listed in AllowUsers",
        "address",
        "203.0.113.9",
    ),
    (H84 + "User dave from 203.0.113.9 not allowed because listed in DenyUsers", "detail", "in_denyusers"),
    (
        H84 + "User bob from 203.0.113.9 not allowed because none of user's groups are listed in AllowGroups",
        "detail",
        "not_in_allowgroups",
    ),
    (
        H84 + "User eve from 203.0.113.9 not allowed because a group is listed in DenyGroups",
        "detail",
        "in_denygroups",
    ),
    (H84 + "User games not allowed because shell /bin/nosuchshell does not exist", "detail", "shell_missing"),
    (H84 + "User dave not allowed because account is locked", "detail", "account_locked"),
    (H84 + "User root from gw.example.net not allowed because not listed in AllowUsers", "address", None),
    (H84 + "Received disconnect from 203.0.113.5 port 51250:11: Bye Bye [preauth]", "detail", "11: Bye Bye"),
    (H92 + "Invalid user ubuntu from 2001:db8::77 port 40000", "address", "2001:db8::77"),
    (
        H84 + "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5 ",
        "address",
        "203.0.113.5",
    ),
    (
        "Nov 22 05:18:30 bullseye sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls -la",
        "detail",
        "root: /bin/ls -la",
    ),
    (
        "Nov 22 05:18:30 bullseye sudo:    alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls",
        "pid",
        None,
    ),
    ("Nov 22 05:20:42 bullseye su[2200]: FAILED SU (to root) carol on pts/1", "user", "carol"),
    ("Nov 22 05:20:42 bullseye su[2200]: FAILED SU (to root) carol on pts/1", "detail", "root"),
]


@pytest.mark.parametrize(("line", "attr", "expected"), FIELD_CASES)
def test_field(line: str, attr: str, expected: object) -> None:
    ev = one(line)
    assert ev is not None
    assert getattr(ev, attr) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (H84 + "Invalid user a from 1.2.3.4 port 1", datetime(2026, 11, 22, 5, 16, 41, tzinfo=UTC)),
        (H92 + "Invalid user a from 1.2.3.4 port 1", datetime(2026, 11, 22, 5, 16, 51, 593293, tzinfo=UTC)),
        (
            "Nov  2 05:16:41 h sshd[1]: Invalid user a from 1.2.3.4 port 1",
            datetime(2026, 11, 2, 5, 16, 41, tzinfo=UTC),
        ),
    ],
)
def test_timestamp(line: str, expected: datetime) -> None:
    ev = one(line)
    assert ev is not None and ev.timestamp == expected


def test_classic_timestamp_year_rolls_back_in_january() -> None:
    p = AuthLogParser(tz=UTC, now=datetime(2027, 1, 3, tzinfo=UTC))
    ev = p.parse_text_line("Dec 31 23:59:59 h sshd[1]: Invalid user a from 1.2.3.4 port 1")
    assert ev is not None and ev.timestamp is not None and ev.timestamp.year == 2026


# -- injection --------------------------------------------------------------------------------

INJECTION = [
    (H10 + "Invalid user x from 6.6.6.6 from 203.0.113.5 port 4242", "x from 6.6.6.6", "203.0.113.5"),
    (
        H10 + "Failed password for invalid user x from 6.6.6.6 port 1 ssh2 from 203.0.113.5 port 4242 ssh2",
        "x from 6.6.6.6 port 1 ssh2",
        "203.0.113.5",
    ),
    (
        H10 + "Failed password for root from 6.6.6.6 port 1 ssh2 from 203.0.113.5 port 4242 ssh2",
        "root from 6.6.6.6 port 1 ssh2",
        "203.0.113.5",
    ),
    (
        H10 + "Invalid user sshd[1]: Failed password for root from 6.6.6.6 from 203.0.113.5 port 4243",
        "sshd[1]: Failed password for root from 6.6.6.6",
        "203.0.113.5",
    ),
    (
        H10 + "Connection closed by invalid user x 6.6.6.6 port 1 203.0.113.5 port 4242 [preauth]",
        "x 6.6.6.6 port 1",
        "203.0.113.5",
    ),
    (
        H10 + "Disconnected from invalid user y 6.6.6.6 port 1 [preauth] 203.0.113.5 port 4244 [preauth]",
        "y 6.6.6.6 port 1 [preauth]",
        "203.0.113.5",
    ),
    (
        H10 + "error: maximum authentication attempts exceeded for invalid user z from 6.6.6.6 port 1 ssh2 "
        "from 203.0.113.5 port 9 ssh2 [preauth]",
        "z from 6.6.6.6 port 1 ssh2",
        "203.0.113.5",
    ),
    (
        H10 + "Received disconnect from 203.0.113.5 port 4244:11: from 6.6.6.6 port 1 [preauth]",
        None,
        "203.0.113.5",
    ),
    (H10 + "Invalid user 1.2.3.4 from 1.2.3.45 port 5555", "1.2.3.4", "1.2.3.45"),
    (
        H10 + f"Failed publickey for alice from 203.0.113.6 port 4300 ssh2: ED25519-CERT {FP_A} ID z from 6.6.6.6 "
        f"port 1 ssh2: ED25519-CERT {FP_A} ID q (serial 0) CA ED25519 {FP_A}",
        "alice",
        "203.0.113.6",
    ),
    (
        H10 + "Disconnecting authenticating user root 203.0.113.5 port 1: Change of username or service not allowed: "
        "(root,ssh-connection) -> (x 6.6.6.6 port 9: a,ssh-connection) [preauth]",
        "root",
        "203.0.113.5",
    ),
]


@pytest.mark.parametrize(("line", "user", "address"), INJECTION)
def test_injection_address_is_the_one_sshd_wrote(line: str, user: str | None, address: str) -> None:
    ev = one(line)
    assert ev is not None and ev.address == address


@pytest.mark.parametrize(("line", "user", "address"), INJECTION)
def test_injection_user_is_the_greedy_middle(line: str, user: str | None, address: str) -> None:
    ev = one(line)
    assert ev is not None and ev.user == user


UNPARSED = [
    H10 + "Invalid user x from 999.1.1.1 port 22",
    H10 + "Invalid user x from 6.6.6.6",
    H10 + "Failed password for root from 6.6.6.6 port 1 ssh2 trailing",
    H10 + "Server listening on 0.0.0.0 port 22.",
    H10 + "error: kex_exchange_identification: Connection closed by remote host",
    H10 + "PAM service(sshd) ignoring max retries; 6 > 3",
    "2026-11-22T06:00:00.000001+00:00 trixie sshd-session[abc]: Invalid user x from 203.0.113.10 port 1",
]


@pytest.mark.parametrize("line", UNPARSED)
def test_unmatched_lines_are_counted_not_guessed(line: str) -> None:
    p = AuthLogParser()
    assert p.parse_text_line(line) is None
    assert p.stats.unparsed == 1


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-22T06:00:00.000001+00:00 trixie sshd: Failed password for root from 6.6.6.6 port 1 ssh2",
        "Nov 22 06:00:00 trixie sshd-session: Failed password for root from 6.6.6.6 port 1 ssh2",
    ],
)
def test_pidless_sshd_line_is_untrusted(line: str) -> None:
    p = AuthLogParser()
    assert p.parse_text_line(line) is None
    assert p.stats.untrusted == 1


@pytest.mark.parametrize(
    "line",
    [
        "Nov 22 05:24:00 bullseye CRON[2600]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
        "Nov 22 05:18:00 bullseye systemd-logind[401]: New session 5 of user alice.",
        "Nov 22 05:18:00 bullseye sshdx[1]: Failed password for root from 6.6.6.6 port 1 ssh2",
    ],
)
def test_other_programs_are_skipped(line: str) -> None:
    p = AuthLogParser()
    assert p.parse_text_line(line) is None
    assert p.stats.other == 1


@pytest.mark.parametrize("line", ["", "\x00\x00\x00", "Nov 22", "garbage without header", "2026-11-22T06:00:00"])
def test_malformed_lines(line: str) -> None:
    p = AuthLogParser()
    assert p.parse_text_line(line) is None
    assert p.stats.malformed == 1


def test_accepted_key_is_correlated_by_pid() -> None:
    p = AuthLogParser()
    lines = [
        H92 + f"Accepted key ED25519 {FP_A} found at /home/alice/.ssh/authorized_keys:3",
        H92 + f"Accepted publickey for alice from 192.0.2.10 port 50100 ssh2: ED25519 {FP_A}",
    ]
    ev = list(p.parse_lines(lines))[-1]
    assert (ev.authorized_keys_file, ev.authorized_keys_line) == ("/home/alice/.ssh/authorized_keys", 3)


def test_accepted_key_of_another_pid_is_not_used() -> None:
    p = AuthLogParser()
    lines = [
        H92 + f"Accepted key ED25519 {FP_A} found at /home/alice/.ssh/authorized_keys:3",
        H92.replace("[3101]", "[3999]") + f"Accepted publickey for alice from 192.0.2.10 port 1 ssh2: ED25519 {FP_A}",
    ]
    ev = list(p.parse_lines(lines))[-1]
    assert ev.authorized_keys_file is None


def test_accepted_key_with_other_fingerprint_is_not_used() -> None:
    p = AuthLogParser()
    lines = [
        H92 + f"Accepted key ED25519 {FP_M} found at /home/alice/.ssh/authorized_keys:3",
        H92 + f"Accepted publickey for alice from 192.0.2.10 port 1 ssh2: ED25519 {FP_A}",
    ]
    ev = list(p.parse_lines(lines))[-1]
    assert ev.authorized_keys_file is None


# -- files ------------------------------------------------------------------------------------

FIXTURE_COUNTS = [
    ("synthetic_bullseye_openssh84_auth.log", KIND.FAILED_PASSWORD, 8),
    ("synthetic_bullseye_openssh84_auth.log", KIND.INVALID_USER, 2),
    ("synthetic_bullseye_openssh84_auth.log", KIND.ACCEPTED, 3),
    ("synthetic_bullseye_openssh84_auth.log", KIND.NOT_ALLOWED, 6),
    ("synthetic_bullseye_openssh84_auth.log", KIND.SUDO_COMMAND, 1),
    ("synthetic_bullseye_openssh84_auth.log", KIND.SU_FAILURE, 1),
    ("synthetic_bookworm_openssh92_auth.log", KIND.ACCEPTED_KEY, 2),
    ("synthetic_bookworm_openssh92_auth.log", KIND.FAILED_PASSWORD, 4),
    ("synthetic_bookworm_openssh92_auth.log", KIND.CONNECTION, 5),
    ("synthetic_trixie_openssh100_auth.log", KIND.FAILED_PASSWORD, 4),
    ("synthetic_trixie_openssh100_auth.log", KIND.CONNECTION_DROPPED, 1),
    ("synthetic_bookworm_openssh92_journal.json", KIND.FAILED_PASSWORD, 3),
    ("synthetic_bookworm_openssh92_journal.json", KIND.SUDO_COMMAND, 1),
    ("synthetic_trixie_openssh100_journal.json", KIND.FAILED_PASSWORD, 3),
    ("synthetic_trixie_openssh100_journal.json", KIND.ACCEPTED, 1),
    ("hostile_journal.json", KIND.FAILED_PASSWORD, 0),
    ("hostile_journal.json", KIND.INVALID_USER, 2),
]


@pytest.mark.parametrize(("name", "kind", "count"), FIXTURE_COUNTS)
def test_fixture_event_counts(name: str, kind: str, count: int) -> None:
    evs = journal_events(FIX / name)
    assert sum(1 for e in evs if e.kind == kind) == count


@pytest.mark.parametrize(
    "name",
    [
        "synthetic_bullseye_openssh84_auth.log",
        "synthetic_bookworm_openssh92_auth.log",
        "synthetic_trixie_openssh100_auth.log",
    ],
)
def test_fixture_every_sshd_line_is_understood(name: str) -> None:
    """Every sshd line of the realistic fixtures parses, except the known noise lines."""
    noise = ("check pass; user unknown", "PAM ", "kex_exchange_identification")
    p = AuthLogParser()
    bad = [
        line
        for line in (FIX / name).read_text().splitlines()
        if " sshd" in line and p.parse_text_line(line) is None and not any(n in line for n in noise)
    ]
    assert bad == []


def test_bookworm_journal_accepted_key_file() -> None:
    evs = journal_events(FIX / "synthetic_bookworm_openssh92_journal.json")
    acc = [e for e in evs if e.kind == KIND.ACCEPTED]
    assert acc[0].authorized_keys_line == 3


def test_journal_timestamp_is_realtime_utc() -> None:
    evs = journal_events(FIX / "synthetic_trixie_openssh100_journal.json")
    assert evs[0].timestamp == datetime(2026, 11, 22, 5, 16, 41, 100001, tzinfo=UTC)


def test_journal_program_is_comm() -> None:
    evs = journal_events(FIX / "synthetic_trixie_openssh100_journal.json")
    assert evs[0].program == "sshd-session"


def test_hostile_journal_forgeries_are_untrusted() -> None:
    p = AuthLogParser()
    list(parse_path(str(FIX / "hostile_journal.json"), p))
    assert p.stats.untrusted == 4


def test_hostile_journal_yields_no_6_6_6_6() -> None:
    assert all(
        e.address is None or not e.address.startswith("6.6.6.") for e in journal_events(FIX / "hostile_journal.json")
    )


def test_journal_byte_array_message_is_decoded() -> None:
    evs = journal_events(FIX / "hostile_journal.json")
    assert any(e.address == "203.0.113.77" and "\ufffd" in (e.user or "") for e in evs)


def _jrec(**fields: object) -> str:
    base: dict[str, object] = {
        "__REALTIME_TIMESTAMP": "1795324601100001",
        "_HOSTNAME": "h",
        "_PID": "7",
        "SYSLOG_IDENTIFIER": "sshd",
        "MESSAGE": "Failed password for root from 203.0.113.5 port 1 ssh2",
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    ("fields", "trusted"),
    [
        ({"_COMM": "sshd"}, True),
        ({"_COMM": "sshd-session", "_UID": "0", "_EXE": "/usr/lib/openssh/sshd-session"}, True),
        ({"_COMM": "sshd", "_UID": "0", "_EXE": "/usr/sbin/sshd", "_SYSTEMD_UNIT": "ssh.service"}, True),
        ({"_COMM": "logger", "_UID": "1000", "_EXE": "/usr/bin/logger"}, False),
        ({"_COMM": None}, False),
        ({"_COMM": "sshd", "_EXE": "/home/mallory/sshd"}, False),
        (
            {"_COMM": "sshd", "_EXE": "/usr/sbin/sshd", "_UID": "1000", "_SYSTEMD_UNIT": "session-4.scope"},
            False,
        ),
        ({"_COMM": "sshd", "_EXE": "/usr/sbin/sshd", "_UID": "1000", "_SYSTEMD_UNIT": "ssh.service"}, True),
        ({"_COMM": ["sshd", "sshd"]}, False),
    ],
)
def test_journal_trust(fields: dict[str, object], trusted: bool) -> None:
    p = AuthLogParser()
    evs = list(p.parse_journal([_jrec(**fields)]))
    assert (len(evs) == 1) is trusted


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *((f, v) for f in ("_PID", "__REALTIME_TIMESTAMP") for v in ("1\u00b2", "\u2460", "12\u1369")),  # isdigit only
        ("__REALTIME_TIMESTAMP", "9" * 18),  # past year 9999
        ("__REALTIME_TIMESTAMP", "9" * 40),
    ],
)
def test_journal_number_fields_that_are_not_numbers_are_dropped(field: str, value: str) -> None:
    (ev,) = AuthLogParser().parse_journal([_jrec(_COMM="sshd", **{field: value})])
    assert (ev.pid if field == "_PID" else ev.timestamp) is None


@pytest.mark.parametrize(
    "line",
    [
        f"2026-11-22T05:16:51+00:00 web1 sshd[{'9' * 5000}]: Invalid user x from 203.0.113.5 port 22",
        f"{H92}Accepted key ED25519 {FP_A} found at /home/a/.ssh/authorized_keys:{'9' * 5000}",
        f"2026-11-22T05:16:51+00:00 web1 su[{'9' * 5000}]: (to root) bob on pts/0",
    ],
    ids=["sshd-pid", "authorized-keys-line", "su-pid"],
)
def test_a_number_too_long_for_int_is_no_event(line: str) -> None:
    p = AuthLogParser(year=2026)
    assert p.parse_text_line(line) is None
    assert p.stats.unparsed == 1


def test_journal_pid_too_long_for_int_is_dropped() -> None:
    (ev,) = AuthLogParser().parse_journal([_jrec(_COMM="sshd", _PID="9" * 5000)])
    assert ev.pid is None


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    gz = tmp_path / "auth.log.2.gz"
    gz.write_bytes(gzip.compress((FIX / "synthetic_bullseye_openssh84_auth.log").read_bytes()))
    plain = journal_events(FIX / "synthetic_bullseye_openssh84_auth.log")
    assert [e.raw for e in journal_events(gz)] == [e.raw for e in plain]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("missing", "No such file or directory"),
        ("dir", "is a directory"),
        ("notgz", "not a gzip file"),
    ],
)
def test_unreadable_input_raises_one_line(tmp_path: Path, setup: str, reason: str) -> None:
    path = tmp_path / "auth.log"
    if setup == "dir":
        path.mkdir()
    elif setup == "notgz":
        path = tmp_path / "auth.log.2.gz"
        path.write_text("plain text\n")
    with pytest.raises(AuthLogError, match=reason):
        open_log(str(path))


def test_truncated_gzip_raises_autherror(tmp_path: Path) -> None:
    gz = tmp_path / "auth.log.2.gz"
    gz.write_bytes(gzip.compress(b"x" * 100000)[:50])
    with pytest.raises(AuthLogError):
        list(parse_path(str(gz)))


def test_hostile_file_survives() -> None:
    p = AuthLogParser()
    evs = list(parse_path(str(FIX / "hostile_auth.log"), p))
    assert len(evs) == 14


def test_hostile_file_overlong_line_is_skipped() -> None:
    p = AuthLogParser()
    list(parse_path(str(FIX / "hostile_auth.log"), p))
    assert p.stats.oversized == 1


def test_hostile_file_keeps_the_line_after_an_overlong_one() -> None:
    evs = list(parse_path(str(FIX / "hostile_auth.log")))
    assert any(e.user == "after-long" for e in evs)


def test_hostile_file_never_yields_6_6_6_6() -> None:
    evs = list(parse_path(str(FIX / "hostile_auth.log")))
    assert [e for e in evs if e.address == "6.6.6.6"] == []


def test_overlong_line_across_read_blocks() -> None:
    data = b"a" * (3 << 20) + b"\n" + (H10 + "Invalid user a from 203.0.113.5 port 1\n").encode()
    stats = AuthLogParser().stats
    lines = list(iter_file_lines(io.BytesIO(data), "x", stats))
    assert lines == [H10 + "Invalid user a from 203.0.113.5 port 1"] and stats.oversized == 1


def test_overlong_last_line_without_newline() -> None:
    lines = list(iter_file_lines(io.BytesIO(b"ok\n" + b"a" * (2 << 20))))
    assert lines == ["ok"]


# -- aggregation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bullseye() -> Summary:
    return summarize(journal_events(FIX / "synthetic_bullseye_openssh84_auth.log"))


@pytest.mark.parametrize(
    ("address", "attr", "expected"),
    [
        ("203.0.113.5", "failures", 9),
        ("203.0.113.5", "root_attempts", 6),
        ("203.0.113.5", "invalid_user_failures", 3),
        ("203.0.113.5", "invalid_users", 2),
        ("203.0.113.5", "max_auth_exceeded", 1),
        ("203.0.113.9", "root_attempts", 1),
        ("192.0.2.11", "valid_user_failures", 1),
        ("192.0.2.11", "accepted", 1),
        ("192.0.2.10", "accepted", 1),
        ("198.51.100.20", "scans", 2),
    ],
)
def test_source_summary(bullseye: Summary, address: str, attr: str, expected: int) -> None:
    assert getattr(bullseye.sources[address], attr) == expected


def test_source_first_and_last_seen(bullseye: Summary) -> None:
    s = bullseye.sources["203.0.113.5"]
    assert (s.first_seen, s.last_seen) == (
        datetime(2026, 11, 22, 5, 16, 41, tzinfo=UTC),
        datetime(2026, 11, 22, 5, 17, 21, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("user", "attr", "expected"),
    [
        ("root", "failures", 7),
        ("admin", "invalid", True),
        ("alice", "accepted", 1),
        ("carol", "sudo_failures", 2),
        ("mallory", "sudo_failures", 1),
    ],
)
def test_user_summary(bullseye: Summary, user: str, attr: str, expected: object) -> None:
    assert getattr(bullseye.users[user], attr) == expected


def test_accepted_logins_with_keys(bullseye: Summary) -> None:
    keyed = [(e.user, e.fingerprint) for e in bullseye.accepted_logins() if e.fingerprint]
    assert keyed == [("alice", FP_A)]


def _summary(lines: list[str]) -> Summary:
    return summarize(AuthLogParser().parse_lines(lines))


ROOT6 = [H84 + f"Failed password for root from 1.2.3.4 port {i} ssh2" for i in range(6)]
NEAR = [H84 + f"Failed password for invalid user x from 1.2.3.45 port {i} ssh2" for i in range(2)]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"threshold": 5}, ["1.2.3.4"]),
        ({"threshold": 2}, ["1.2.3.4", "1.2.3.45"]),
        ({"threshold": 5, "allowlist_cidrs": ["1.2.3.0/24"]}, []),
        ({"threshold": 5, "allowlist_cidrs": ["1.2.3.4"]}, []),
        ({"threshold": 2, "allowlist_cidrs": ["1.2.3.4/32"]}, ["1.2.3.45"]),
        ({"threshold": 100, "per_class_thresholds": {"invalid": 2}}, ["1.2.3.45"]),
        ({"threshold": 100, "per_class_thresholds": {"root": 6}}, ["1.2.3.4"]),
        ({"threshold": 100, "per_class_thresholds": {"root": 7, "valid": 1}}, []),
        ({"threshold": 5, "allowlist_cidrs": ["2001:db8::/32"]}, ["1.2.3.4"]),
    ],
)
def test_offenders(kwargs: dict[str, object], expected: list[str]) -> None:
    s = _summary(ROOT6 + NEAR)
    assert s.offenders(**kwargs) == expected  # type: ignore[arg-type]


def test_offenders_counts_invalid_user_connection_without_failure() -> None:
    s = _summary([H84 + f"Invalid user u{i} from 203.0.113.5 port {i}" for i in range(3)])
    assert s.offenders(100, per_class_thresholds={"invalid": 3}) == ["203.0.113.5"]


def test_offenders_does_not_double_count_invalid_then_failed() -> None:
    lines = [
        H84 + "Invalid user u from 203.0.113.5 port 7",
        H84 + "Failed password for invalid user u from 203.0.113.5 port 7 ssh2",
    ]
    assert _summary(lines).sources["203.0.113.5"].attempts() == 1


@pytest.mark.parametrize("bad", [["not-a-net"], ["1.2.3.4/99"]])
def test_offenders_rejects_bad_allowlist(bad: list[str]) -> None:
    with pytest.raises(ValueError):
        _summary(ROOT6).offenders(1, bad)


def test_offenders_rejects_unknown_class() -> None:
    with pytest.raises(ValueError):
        _summary(ROOT6).offenders(1, per_class_thresholds={"bogus": 1})


# -- excerpt ----------------------------------------------------------------------------------

EXCERPT_LINES = [
    H84 + "Failed password for root from 1.2.3.4 port 1 ssh2",
    H84 + "Failed password for root from 1.2.3.45 port 2 ssh2",
    H84 + "Invalid user 1.2.3.4 from 1.2.3.45 port 3",
    H84 + "Invalid user x from 1.2.3.4 from 203.0.113.5 port 4",
    H84 + "Connection closed by authenticating user root 1.2.3.4 port 5 [preauth]",
    "Nov 22 05:16:41 bullseye CRON[1]: 1.2.3.4",
]


def test_excerpt_exact_address() -> None:
    assert excerpt_for("1.2.3.4", EXCERPT_LINES) == [EXCERPT_LINES[0], EXCERPT_LINES[4]]


def test_excerpt_other_address() -> None:
    assert excerpt_for("1.2.3.45", EXCERPT_LINES) == [EXCERPT_LINES[1], EXCERPT_LINES[2]]


def test_excerpt_journal_lines() -> None:
    lines = (FIX / "synthetic_trixie_openssh100_journal.json").read_text().splitlines()
    assert len(excerpt_for("203.0.113.9", lines)) == 2


def test_excerpt_ipv6_case_insensitive() -> None:
    lines = (FIX / "synthetic_bookworm_openssh92_auth.log").read_text().splitlines()
    assert len(excerpt_for("2001:DB8::77", lines)) == 4


def test_event_to_dict_is_json() -> None:
    ev = one(H92 + "Invalid user a from 1.2.3.4 port 1")
    assert ev is not None
    assert json.loads(json.dumps(ev.to_dict()))["timestamp"] == "2026-11-22T05:16:51.593293+00:00"
