"""sshward.notify_pam: the minimal PAM entry (capture only, cheap imports, hostile input, never fails)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sshward import notify, notify_pam

PACKAGE_DIR = Path(notify_pam.__file__).resolve().parent
HOSTILE = [
    "$(touch /tmp/pwned)",
    "alice from 6.6.6.6 port 22 ssh2",
    'quote" back\\slash',
    "line\nbreak\r\nBcc: x@y",
    "nul\x00 bell\x07 del\x7f",
    "bidi \u202e override \u2028 sep",
    "snow \u2603 astral \U0001f600",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_to_json_matches_the_json_module(text: str) -> None:
    record = {"pam": {"PAM_USER": text}, "ppid": 7, "time": 1.5, "failure": True, "none": None}
    assert (notify_pam.to_json(record), json.loads(notify_pam.to_json(record))) == (json.dumps(record), record)


def env(**items: str) -> dict[str, str]:
    base = {"PAM_TYPE": "open_session", "PAM_SERVICE": "sshd", "PAM_USER": "alice", "PAM_RHOST": "203.0.113.5"}
    base.update(items)
    return base


def captures(spool: Path) -> list[Path]:
    incoming = spool / "incoming"
    return sorted(incoming.iterdir()) if incoming.exists() else []


@pytest.mark.parametrize(("pam_type", "failure"), [("close_session", False), ("auth", False), ("open_session", True)])
def test_other_pam_calls_write_nothing(tmp_path: Path, pam_type: str, failure: bool) -> None:
    path = notify_pam.capture(env(PAM_TYPE=pam_type), str(tmp_path), failure=failure, ppid=1)
    assert (path, captures(tmp_path)) == (None, [])


def test_failure_capture_is_marked(tmp_path: Path) -> None:
    notify_pam.capture(env(PAM_TYPE="auth", PAM_SERVICE="su", PAM_RUSER="alice"), str(tmp_path), failure=True, ppid=9)
    event = notify.event_from_capture(json.loads(captures(tmp_path)[0].read_text()), host="h")
    assert event is not None and (event.kind, event.fields["ruser"]) == ("su_failure", "alice")


def test_hostile_bytes_stay_data(tmp_path: Path) -> None:
    environ = {
        b"PAM_TYPE": b"open_session",
        b"PAM_SERVICE": b"sshd",
        b"PAM_USER": b"$(touch /tmp/pwned)\n\xff\xfe",
        b"PAM_RHOST": b"x" * 5000,
        b"LD_PRELOAD": b"/tmp/evil.so",
    }
    notify_pam.capture(environ, str(tmp_path), ppid=1)
    record = json.loads(captures(tmp_path)[0].read_bytes().decode("ascii"))
    assert (record["pam"]["PAM_USER"], len(record["pam"]["PAM_RHOST"]), "LD_PRELOAD" in json.dumps(record)) == (
        "$(touch /tmp/pwned)\n\ufffd\ufffd",
        notify_pam.PAM_VALUE_MAX,
        False,
    )


def test_incoming_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify_pam, "MAX_INCOMING", 2)
    logged: list[str] = []
    results = [notify_pam.main(["--spool", str(tmp_path)], env(), log=logged.append) for _ in range(3)]
    assert (results, len(captures(tmp_path)), len(logged)) == ([0, 0, 0], 2, 1)


def test_main_never_fails(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    logged: list[str] = []
    rc = notify_pam.main(["--spool", str(blocked), "--bogus"], env(), log=logged.append)
    assert (rc, len(logged)) == (0, 2)


def test_entry_imports_nothing_heavy(tmp_path: Path) -> None:
    """What pam_exec runs: python3 -IS, the module imported by its own directory."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); before = set(sys.modules); import notify_pam;"
        " sys.exit(notify_pam.main(sys.argv[2:]) or print(' '.join(sorted(set(sys.modules) - before))))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(PACKAGE_DIR), "--spool", str(tmp_path)],
        env={"PAM_TYPE": "open_session", "PAM_SERVICE": "sshd", "PAM_USER": "alice", "PYTHONPATH": "/nonexistent"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    imported = set(proc.stdout.split())
    heavy = {"json", "re", "enum", "typing", "socket", "subprocess", "email", "ssl", "sshward", "contextlib"}
    assert (proc.returncode, imported & heavy, len(captures(tmp_path))) == (0, set(), 1)


def test_capture_names_sort_by_time(tmp_path: Path) -> None:
    first = notify_pam.write_capture(str(tmp_path), {"version": 1}, now_ns=5)
    second = notify_pam.write_capture(str(tmp_path), {"version": 1}, now_ns=40)
    assert [p.name for p in captures(tmp_path)] == [os.path.basename(first), os.path.basename(second)]
