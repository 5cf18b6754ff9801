"""Tests of ``sshward authlog`` (sshward.cli)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sshward import cli

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "authlog"
BULLSEYE = str(FIX / "synthetic_bullseye_openssh84_auth.log")
MODULE_UTILS = Path(__file__).resolve().parents[2] / "module_utils"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    rc, out, _ = run(["authlog", "--json", *argv], capsys)
    assert rc == 0
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_authlog_is_registered() -> None:
    assert "authlog" in cli.SUBCOMMANDS


def test_register_twice_is_refused() -> None:
    with pytest.raises(ValueError):
        cli.register("authlog", "again", lambda p: None)(lambda a: 0)


def test_human_output_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["authlog", BULLSEYE], capsys)[0] == 0


@pytest.mark.parametrize("needle", ["invalid_user", "Sources", "Users", "203.0.113.5", "Accepted logins"])
def test_human_output_contains(capsys: pytest.CaptureFixture[str], needle: str) -> None:
    assert needle in run(["authlog", BULLSEYE], capsys)[1]


def test_summary_only_omits_events(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(["authlog", "--summary-only", BULLSEYE], capsys)[1]
    assert "failed_password" not in out.split("\nSources\n")[0]


def test_json_is_one_document_with_events(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json([BULLSEYE], capsys)
    assert len(doc["events"]) == doc["stats"]["events"]


@pytest.mark.parametrize("key", ["sources", "users", "accepted", "stats", "kinds"])
def test_json_has_summary_keys(capsys: pytest.CaptureFixture[str], key: str) -> None:
    assert key in run_json([BULLSEYE], capsys)


def test_json_summary_only_has_no_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert "events" not in run_json(["--summary-only", BULLSEYE], capsys)


def test_json_worst_source_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json([BULLSEYE], capsys)["sources"][0]["address"] == "203.0.113.5"


def test_gz_and_plain_give_same_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gz = tmp_path / "auth.log.2.gz"
    gz.write_bytes(gzip.compress(Path(BULLSEYE).read_bytes()))
    assert run_json([str(gz)], capsys)["events"] == run_json([BULLSEYE], capsys)["events"]


def test_several_files_add_up(capsys: pytest.CaptureFixture[str]) -> None:
    doc = run_json([BULLSEYE, str(FIX / "synthetic_trixie_openssh100_journal.json")], capsys)
    assert {e["host"] for e in doc["events"]} == {"bullseye", "trixie"}


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = Path(BULLSEYE).read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))  # type: ignore[arg-type]
    assert run_json(["-"], capsys)["stats"]["events"] == run_json([BULLSEYE], capsys)["stats"]["events"]


def test_stdin_gzip(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = gzip.compress(Path(BULLSEYE).read_bytes())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))  # type: ignore[arg-type]
    assert run_json(["-"], capsys)["stats"]["events"] > 0


def _unreadable(tmp_path: Path, kind: str) -> str:
    if kind == "missing":
        return str(tmp_path / "nope.log")
    if kind == "directory":
        return str(tmp_path)
    if kind == "notgz":
        p = tmp_path / "auth.log.2.gz"
        p.write_text("plain\n")
        return str(p)
    p = tmp_path / "secret.log"
    p.write_text("x\n")
    p.chmod(0)
    return str(p)


UNREADABLE = [
    ("missing", "No such file or directory"),
    ("directory", "is a directory"),
    ("notgz", "not a gzip file"),
    ("perm", "Permission denied"),
]


@pytest.mark.parametrize(("kind", "reason"), UNREADABLE)
def test_unreadable_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, reason: str) -> None:
    if kind == "perm" and os.geteuid() == 0:
        pytest.skip("root reads mode 0 files")
    assert run(["authlog", BULLSEYE, _unreadable(tmp_path, kind)], capsys)[0] == 2


@pytest.mark.parametrize(("kind", "reason"), UNREADABLE)
def test_unreadable_one_line_naming_file_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, reason: str
) -> None:
    if kind == "perm" and os.geteuid() == 0:
        pytest.skip("root reads mode 0 files")
    path = _unreadable(tmp_path, kind)
    err = run(["authlog", path], capsys)[2]
    assert err.count("\n") == 1 and path in err and reason in err


def test_unreadable_prints_nothing_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["authlog", BULLSEYE, str(tmp_path / "nope")], capsys)[1] == ""


def test_corrupt_gzip_mid_stream_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gz = tmp_path / "auth.log.3.gz"
    gz.write_bytes(gzip.compress(Path(BULLSEYE).read_bytes() * 50)[:300])
    rc, _, err = run(["authlog", "--json", str(gz)], capsys)
    assert rc == 2 and str(gz) in err


def test_no_input_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["authlog"], capsys)[0] == 2


def test_journal_runs_journalctl_without_shell(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}
    data = (FIX / "synthetic_trixie_openssh100_journal.json").read_bytes()

    class FakePopen:
        def __init__(self, argv: Any, **kw: Any) -> None:
            seen["argv"] = argv
            seen["shell"] = kw.get("shell")
            self.stdout = io.BytesIO(data)
            self.stderr = io.BytesIO(b"")

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(cli.subprocess, "Popen", FakePopen)
    doc = run_json(["--journal"], capsys)
    assert isinstance(seen["argv"], list) and seen["shell"] is False and doc["stats"]["events"] == 11


def test_journal_filters_on_trusted_comm() -> None:
    assert "_COMM=sshd-session" in cli.JOURNALCTL and not any("SYSLOG_IDENTIFIER" in a for a in cli.JOURNALCTL)


def test_journal_failure_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class FakePopen:
        def __init__(self, argv: Any, **kw: Any) -> None:
            self.stdout = io.BytesIO(b"")
            self.stderr = io.BytesIO(b"Failed to open journal: Permission denied\n")

        def wait(self) -> int:
            return 1

    monkeypatch.setattr(cli.subprocess, "Popen", FakePopen)
    rc, _, err = run(["authlog", "--journal"], capsys)
    assert (rc, err) == (
        2,
        "sshward authlog: cannot read the journal: Failed to open journal: Permission denied\n",
    )


def test_journalctl_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def boom(*a: Any, **kw: Any) -> None:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(cli.subprocess, "Popen", boom)
    rc, _, err = run(["authlog", "--journal"], capsys)
    assert rc == 2 and "journalctl" in err


def test_terminal_escapes_are_neutralised(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(["authlog", str(FIX / "hostile_auth.log")], capsys)[1]
    assert "\x1b" not in out and "\x00" not in out


def test_python_dash_m(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(MODULE_UTILS))
    proc = subprocess.run(
        [sys.executable, "-m", "sshward", "authlog", "--json", "--summary-only", BULLSEYE],
        capture_output=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["stats"]["events"] > 0


def test_permission_denied_simulated(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Root reads mode-0 files, so simulate EACCES where the core opens the file."""
    from sshward import authlog

    def denied(path: str, mode: str = "r") -> Any:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(authlog, "open", denied, raising=False)
    rc, _, err = run(["authlog", "/var/log/auth.log"], capsys)
    assert (rc, err) == (2, "sshward authlog: cannot read /var/log/auth.log: Permission denied\n")
