"""sshward.sessions: reading a process from /proc (a fake tree: the parsing, not the kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sshward import sessions


def fake_process(proc: Path, pid: int, exe: str) -> None:
    base = proc / str(pid)
    base.mkdir(parents=True)
    # comm may hold ")" and spaces: the parser takes the text up to the last ")"
    fields = ["S", "1", str(pid), str(pid), "34816"] + ["0"] * 14 + ["12345"]
    (base / "stat").write_text(f"{pid} (evil) x) " + " ".join(fields) + "\n")
    (base / "status").write_text("Name:\tevil\nUid:\t1001\t1001\t1001\t1001\n")
    (base / "cmdline").write_bytes(b"/dev/shm/.x\0--quiet\0")
    (base / "exe").symlink_to(exe)
    (proc / "stat").write_text("cpu 1 2 3\nbtime 1795000000\n")


def test_a_planted_executable_is_suspicious(tmp_path: Path) -> None:
    fake_process(tmp_path, 901, "/dev/shm/.x (deleted)")
    p = sessions.read_process(901, str(tmp_path))
    assert p is not None
    assert (p.comm, p.uid, p.exe, p.exe_deleted, p.exe_unreadable, p.suspicious) == (
        "evil) x",
        1001,
        "/dev/shm/.x",
        True,
        False,
        ["executable deleted", "runs from dev/shm"],
    )


def test_an_executable_withheld_by_the_kernel_is_flagged_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another user's /proc/PID/exe without CAP_SYS_PTRACE (docker's default, some VPSes): EACCES
    fake_process(tmp_path, 902, "/dev/shm/.x")
    real_readlink = os.readlink

    def readlink(path: str) -> str:
        if path.endswith("/902/exe"):
            raise PermissionError(13, "Permission denied", path)
        return real_readlink(path)

    monkeypatch.setattr(sessions.os, "readlink", readlink)
    p = sessions.read_process(902, str(tmp_path))
    assert p is not None and (p.exe, p.exe_unreadable, p.suspicious) == ("", True, [])


@pytest.fixture
def quarantine_module():
    pytest.importorskip("ansible.module_utils.basic")
    import ansible.module_utils as amu

    root = Path(__file__).resolve().parents[2]
    if str(root / "module_utils") not in amu.__path__:
        amu.__path__.append(str(root / "module_utils"))
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sshward_process_quarantine_mod", root / "library" / "sshward_process_quarantine.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quarantine_module_warns_about_processes_it_could_not_check(
    quarantine_module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from ansible.module_utils.testing import patch_module_args

    hidden = sessions.Process(pid=4711, ppid=1, uid=1001, comm="x", exe_unreadable=True)
    plain = sessions.Process(pid=4712, ppid=1, uid=0, comm="cron", exe="/usr/sbin/cron")
    monkeypatch.setattr(quarantine_module.sessions, "list_processes", lambda: {4711: hidden, 4712: plain})
    args = {"store_dir": str(tmp_path / "store"), "record_file": str(tmp_path / "records.json")}
    with patch_module_args(args), pytest.raises(SystemExit):
        quarantine_module.main()
    result = json.loads(capsys.readouterr().out)
    warnings = json.dumps(result.get("warnings"))  # ansible-core 2.19 wraps each warning in an event dict
    assert (result["changed"], result["unchecked_pids"], "CAP_SYS_PTRACE" in warnings) == (
        False,
        [4711],
        True,
    )
