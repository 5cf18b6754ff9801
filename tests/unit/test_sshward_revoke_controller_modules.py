"""sshward_key_spec and sshward_revoke_report as the playbook runs them: on the controller, through ansible
(local connection, this machine's python), touching only tmp_path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "keys"
ED25519 = (FIXTURES / "ed25519.pub").read_text().strip()
RSA = (FIXTURES / "rsa3072.pub").read_text().strip()
EXPECTED = {line.split()[0]: line.split()[2] for line in (FIXTURES / "expected.txt").read_text().splitlines() if line}


def run_module(name: str, args: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_LIBRARY": str(ROOT / "library"),
        "ANSIBLE_MODULE_UTILS": str(ROOT / "module_utils"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
    }
    proc = subprocess.run(
        [
            "ansible",
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            name,
            "-a",
            json.dumps(args),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result


def lockdown_report(directory: Path) -> Path:
    path = directory / "web1" / "20261122T054000Z" / "report.json"
    path.parent.mkdir(parents=True)
    report = {
        "findings": {
            "intruder_keys": [{"fingerprint": EXPECTED["rsa3072.pub"], "logins": []}],
            "quarantined_keys": [{"fingerprint": EXPECTED["ed25519.pub"], "raw": ED25519, "file": "/x", "line": 1}],
        }
    }
    path.write_text(json.dumps(report))
    return path


def test_key_spec_reads_lockdown_evidence_and_files(tmp_path: Path) -> None:
    lockdown_report(tmp_path / "evidence")
    keys_file = tmp_path / "stolen.txt"
    keys_file.write_text(f"# from the log\n{EXPECTED['ecdsa256.pub']}\n")
    result = run_module(
        "sshward_key_spec",
        {"lockdown_report": [str(tmp_path / "evidence")], "keys_file": [str(keys_file)]},
        tmp_path,
    )
    assert not result.get("failed"), result.get("msg")
    assert sorted(k["fingerprint"] for k in result["keys"]) == sorted(
        EXPECTED[n] for n in ("rsa3072.pub", "ed25519.pub", "ecdsa256.pub")
    )
    assert " ".join(ED25519.split()[:2]) in result["specs"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"keys": ["SHA256:short"]}, r"^ssh_revoke_keys\[0\]: SHA256:short is not a SHA256 fingerprint"),
        ({"keys": []}, r"^ssh_revoke_keys: no key to revoke"),
        ({"keys_file": ["/nonexistent/keys"]}, r"^ssh_revoke_keys_file: cannot read /nonexistent/keys"),
        ({"lockdown_report": ["."]}, r"^ssh_revoke_lockdown_report: no report\.json under"),
    ],
)
def test_key_spec_errors_name_the_playbook_variable(args: dict[str, Any], message: str, tmp_path: Path) -> None:
    names = {
        "keys": "ssh_revoke_keys",
        "keys_file": "ssh_revoke_keys_file",
        "lockdown_report": "ssh_revoke_lockdown_report",
    }
    result = run_module("sshward_key_spec", {**args, "argument_names": names}, tmp_path)
    assert result.get("failed")
    assert re.match(message, result["msg"]), result["msg"]


def test_key_spec_refuses_the_key_ansible_logs_in_with(tmp_path: Path) -> None:
    login = tmp_path / "id_ed25519.pub"
    login.write_text(ED25519 + "\n")
    result = run_module(
        "sshward_key_spec", {"keys": [EXPECTED["ed25519.pub"]], "protect_public_key_files": [str(login)]}, tmp_path
    )
    assert result.get("failed") and "is the key Ansible logs in with" in result["msg"]


def test_revoke_report_lists_unreachable_hosts(tmp_path: Path) -> None:
    result = run_module(
        "sshward_revoke_report",
        {
            "path": str(tmp_path / "report"),
            "keys": [{"fingerprint": EXPECTED["ed25519.pub"], "comment": "stolen", "source": "keys[0]"}],
            "hosts": {"web1": {"done": True, "found": []}, "web2": {"done": False, "reason": "unreachable: timeout"}},
        },
        tmp_path,
    )
    assert not result.get("failed"), result.get("msg")
    assert result["not_done"] == ["web2"]
    text = (tmp_path / "report" / "revoke-report.md").read_text()
    assert "| web2 | **NOT DONE** |" in text and "unreachable: timeout" in text
