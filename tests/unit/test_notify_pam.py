"""sshward.notify_pam: the PAM line (no interpreter in a login) and the parser of what it writes.

The records are written by the real coreutils ``env``, as pam_exec runs it (tests/unit/pam_capture.py).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from sshward import notify_pam
from sshward.notify_pam import scan_capture
from tests.unit.pam_capture import pam_exec_capture, sshd_env

HOSTILE = [
    "$(touch /tmp/pwned)",
    "alice from 6.6.6.6 port 22 ssh2",
    'quote" back\\slash',
    "line\nbreak\r\nBcc: x@y",
    "bell\x07 del\x7f",
    "bidi \u202e override \u2028 sep",
    "snow \u2603 astral \U0001f600",
    "x\n*** Mon Jan  1 00:00:00 2024 PAM_USER=root",
    "SSHWARD_CAPTURE=failure",
    "=",
]


def test_session_line_runs_env_into_the_spool() -> None:
    assert notify_pam.session_line("/var/spool/sshward/notify") == (
        "session optional pam_exec.so quiet type=open_session log=/var/spool/sshward/notify/capture"
        " /usr/bin/env -0 SSHWARD_CAPTURE=session"
    )


def test_failure_hook_runs_in_the_auth_stack() -> None:
    assert notify_pam.pam_exec_args("/srv/spool/", "failure") == (
        "quiet type=auth log=/srv/spool/capture /usr/bin/env -0 SSHWARD_CAPTURE=failure"
    )


@pytest.mark.parametrize("bad", ["spool", "/a b", "/a]b", "/a[b", "/x/../y", "/tab\there", "", "/x\n"])
def test_spool_dir_that_would_break_the_pam_line_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="spool directory .* absolute path"):
        notify_pam.session_line(bad)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="capture kind must be one of session, failure"):
        notify_pam.capture_command("login")


@pytest.mark.parametrize(
    ("line", "ours"),
    [
        (notify_pam.session_line("/var/spool/sshward/notify"), True),
        ("session optional pam_exec.so quiet type=open_session /usr/local/sbin/sshward-notify-pam", True),
        ("session optional pam_exec.so quiet type=open_session /usr/local/sbin/sshward-notify pam", True),
        ("session optional pam_exec.so quiet /usr/local/bin/other-hook", False),
        ("session optional pam_exec.so /usr/bin/env -0 SSHWARD_CAPTURE=failure", False),
        ("# session optional pam_exec.so /usr/local/sbin/sshward-notify-pam", False),
    ],
)
def test_session_line_pattern_finds_this_and_earlier_hooks(line: str, ours: bool) -> None:
    assert bool(notify_pam.SESSION_LINE_RE.match(line)) is ours


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_come_back_exactly_and_delimit_nothing(tmp_path: Path, value: str) -> None:
    env = sshd_env(user=value, rhost=value, PAM_TTY=value)
    pam_exec_capture(tmp_path, env)
    pam_exec_capture(tmp_path, sshd_env(user="bob"))
    data = (tmp_path / "capture").read_bytes()
    scan = scan_capture(data)
    assert [(r.kind, r.env["PAM_USER"], r.env["PAM_RHOST"], r.env["PAM_TTY"]) for r in scan.records] == [
        ("session", value, value, value),
        ("session", "bob", "203.0.113.5", "ssh"),
    ]
    assert (scan.consumed, scan.garbled) == (len(data), 0)


@pytest.mark.parametrize("field", ["PAM_USER", "PAM_RHOST", "PAM_TTY", "PAM_RUSER"])
def test_a_value_holding_a_header_line_forges_no_record(tmp_path: Path, field: str) -> None:
    # the record is dropped as torn (the deliverer alerts on garbled records), nothing is forged
    fake = "x\n*** Mon Jan  1 00:00:00 2024\nPAM_USER=root\nPAM_SERVICE=sshd"
    pam_exec_capture(tmp_path, sshd_env(**{field: fake}))
    pam_exec_capture(tmp_path, sshd_env(user="bob"))
    scan = scan_capture((tmp_path / "capture").read_bytes())
    assert ([r.env["PAM_USER"] for r in scan.records], scan.garbled >= 1) == (["bob"], True)


def test_only_the_variables_the_notifier_reads_are_kept(tmp_path: Path) -> None:
    pam_exec_capture(tmp_path, sshd_env(PAM_AUTHTOK="never-kept", LANG="C", MOTD_SHOWN="pam"))
    (record,) = scan_capture((tmp_path / "capture").read_bytes()).records
    assert sorted(record.env) == sorted(notify_pam.KEPT_KEYS - {"PAM_RUSER"})


def test_values_are_bounded(tmp_path: Path) -> None:
    long_key = "publickey ssh-rsa " + "A" * 20000
    pam_exec_capture(tmp_path, sshd_env(user="u" * 5000, auth_info=long_key))
    (record,) = scan_capture((tmp_path / "capture").read_bytes()).records
    assert (len(record.env["PAM_USER"]), len(record.env["SSH_AUTH_INFO_0"])) == (
        notify_pam.PAM_VALUE_MAX,
        notify_pam.AUTH_INFO_MAX,
    )


def test_header_time_is_the_records_time(tmp_path: Path) -> None:
    when = 1_795_000_000.0
    pam_exec_capture(tmp_path, sshd_env(), when=when)
    (record,) = scan_capture((tmp_path / "capture").read_bytes()).records
    assert record.time == when


def test_a_record_still_being_written_is_left_for_later(tmp_path: Path) -> None:
    pam_exec_capture(tmp_path, sshd_env(user="first"))
    complete = (tmp_path / "capture").read_bytes()
    partial = complete + b"*** Sun Nov 22 12:10:50 2026\nSSH_CONNECTION=203.0.113.9 1 192.0.2.1 22\0PAM_US"
    scan = scan_capture(partial)
    final = scan_capture(partial, final=True)
    assert ([r.env["PAM_USER"] for r in scan.records], scan.consumed, scan.garbled) == (["first"], len(complete), 0)
    assert (len(final.records), final.consumed, final.garbled) == (1, len(partial), 1)


def test_interleaved_writes_drop_the_mixed_record_not_the_other(tmp_path: Path) -> None:
    # a record over env's 4 KiB buffer reaches the file in two writes; another login's record
    # landing between them must not be mixed with it: the torn record is dropped, the other kept
    pam_exec_capture(tmp_path / "a", sshd_env(user="big", auth_info="publickey ssh-rsa " + "A" * 6000))
    pam_exec_capture(tmp_path / "b", sshd_env(user="small"))
    big, small = (tmp_path / "a" / "capture").read_bytes(), (tmp_path / "b" / "capture").read_bytes()
    torn = data = big[:4096] + small + big[4096:]
    scan = scan_capture(data)
    assert ([r.env["PAM_USER"] for r in scan.records], scan.garbled, scan.consumed) == (["small"], 2, len(torn))


def test_loader_complaints_before_the_output_are_skipped(tmp_path: Path) -> None:
    pam_exec_capture(tmp_path, sshd_env(user="alice", LD_PRELOAD="/nonexistent/x.so"))
    data = (tmp_path / "capture").read_bytes()
    (record,) = scan_capture(data).records
    assert (b"LD_PRELOAD cannot be preloaded" in data, record.env["SSH_CONNECTION"], record.env["PAM_USER"]) == (
        True,
        "203.0.113.5 50022 192.0.2.1 22",
        "alice",
    )


def test_a_runaway_record_is_skipped(tmp_path: Path) -> None:
    junk = b"".join(b"X%d=%s\0" % (i, b"v" * 1000) for i in range(80))
    pam_exec_capture(tmp_path, sshd_env(user="after"))
    scan = scan_capture(junk + (tmp_path / "capture").read_bytes())
    assert ([r.env["PAM_USER"] for r in scan.records], scan.garbled >= 1) == (["after"], True)


def test_pam_environment_cannot_override_pam_exec_items() -> None:
    # pam_exec appends its PAM items after the PAM environment (see the lab capture in the module
    # docstring): a PAM environment variable of the same name comes first, pam_exec's value wins
    data = (
        b"*** Sun Nov 22 12:10:50 2026\nPAM_USER=forged\0"
        b"PAM_SERVICE=sshd\0PAM_USER=real\0PAM_TYPE=open_session\0SSHWARD_CAPTURE=session\0"
    )
    (record,) = scan_capture(data).records
    assert record.env["PAM_USER"] == "real"


def test_parse_ctime_matches_time_ctime() -> None:
    now = int(time.time())
    assert notify_pam.parse_ctime(time.ctime(now).encode()) == now
    assert notify_pam.parse_ctime(b"Sun Foo 22 12:10:50 2026") is None


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        ("203.0.113.5 50022 192.0.2.1 22", ("203.0.113.5", "50022")),
        ("2001:db8::5 4242 2001:db8::1 22", ("2001:db8::5", "4242")),
        ("6.6.6.6 1 x", None),
        ("attacker.example 22 192.0.2.1 22", None),
        ("203.0.113.5 0 192.0.2.1 22", None),
        ("203.0.113.5 99999 192.0.2.1 22", None),
        ("", None),
    ],
)
def test_connection_endpoints_are_validated(connection: str, expected: tuple[str, str] | None) -> None:
    assert notify_pam.connection_endpoints({"SSH_CONNECTION": connection}) == expected


def test_auth_methods_one_per_line() -> None:
    info = "publickey ssh-ed25519 AAAAC3Nz\nkeyboard-interactive/pam\n\n"
    assert list(notify_pam.iter_auth_methods(info)) == [
        ("publickey", "ssh-ed25519 AAAAC3Nz"),
        ("keyboard-interactive/pam", ""),
    ]


def test_the_module_needs_no_interpreter_in_the_login() -> None:
    line = notify_pam.session_line(notify_pam.DEFAULT_SPOOL)
    assert re.search(r"python|sshward-notify|/bin/sh", line) is None
