"""The sshward_revoke_keys module on a fake host in a temporary directory: sshd -T is a script, the accounts
are homes under tmp_path, ssh-keygen is the real one. Check mode, quarantine, KRL, idempotence."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sshward
from sshward import effective, evidence, quarantine, revoke

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "keys"
ED25519 = (FIXTURES / "ed25519.pub").read_text().strip()
RSA = (FIXTURES / "rsa3072.pub").read_text().strip()
ED25519_FP = revoke.parse_key_line(ED25519, "t").fingerprint
RSA_FP = revoke.parse_key_line(RSA, "t").fingerprint

for name, module in (("", sshward), (".evidence", evidence), (".quarantine", quarantine), (".revoke", revoke)):
    sys.modules.setdefault("ansible.module_utils.sshward" + name, module)
sys.modules.setdefault("ansible.module_utils.sshward.effective", effective)
_spec = importlib.util.spec_from_file_location(
    "sshward_revoke_keys_module", ROOT / "library" / "sshward_revoke_keys.py"
)
assert _spec and _spec.loader
mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mod)

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")


class Failed(Exception):
    pass


class FakeModule:
    """The parts of AnsibleModule the module uses, running real commands."""

    def __init__(self, params: dict[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self._diff = True
        self.result: dict[str, Any] = {}

    def run_command(self, argv: list[str], environ_update: dict[str, str] | None = None) -> tuple[int, str, str]:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def get_bin_path(self, name: str, required: bool = False) -> str:
        path = shutil.which(name)
        assert path
        return path

    def atomic_move(self, src: str, dest: str) -> None:
        shutil.move(src, dest)

    def fail_json(self, msg: str, **kw: Any) -> None:
        raise Failed(msg)

    def exit_json(self, **kw: Any) -> None:
        self.result = kw


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """alice has the stolen key in ~/.ssh/authorized_keys, bob in a central AuthorizedKeysFile."""
    homes = {u: tmp_path / "home" / u for u in ("alice", "bob")}
    for h in homes.values():
        (h / ".ssh").mkdir(parents=True)
    (homes["alice"] / ".ssh/authorized_keys").write_text(f"# alice\nno-pty {ED25519}\n{RSA} alice@laptop\n")
    central = tmp_path / "etc/authorized_keys"
    central.mkdir(parents=True)
    (central / "bob").write_text(f"{ED25519}\n")
    sshd = tmp_path / "sshd"
    sshd.write_text(
        f"#!/bin/sh\nprintf 'port 22\\nauthorizedkeysfile .ssh/authorized_keys {central}/%%u\\nrevokedkeys none\\n'\n"
    )
    sshd.chmod(0o755)
    monkeypatch.setattr(
        evidence, "user_homes", lambda: [("alice", 1000, str(homes["alice"])), ("bob", 1001, str(homes["bob"]))]
    )
    monkeypatch.setattr(mod, "PRIVSEP_DIR", str(tmp_path / "run-sshd"))  # never this machine's /run/sshd
    return {"alice": homes["alice"] / ".ssh/authorized_keys", "bob": central / "bob", "sshd": sshd, "tmp": tmp_path}


def params(host: dict[str, Path], **kw: Any) -> dict[str, Any]:
    base = {
        "keys": [ED25519],
        "quarantine": True,
        "quarantine_file": str(host["tmp"] / "q/quarantine.json"),
        "krl": True,
        "krl_path": str(host["tmp"] / "krl"),
        "declared_keys": [],
        "recent_seconds": 604800,
        "protect_fingerprints": [],
        "host": "web1",
        "sshd_path": str(host["sshd"]),
    }
    return {**base, **kw}


def run(p: dict[str, Any], check_mode: bool = False) -> dict[str, Any]:
    fake = FakeModule(p, check_mode)
    mod.Revoker(fake).main()
    return fake.result


def test_check_mode_reports_the_blast_radius_and_changes_nothing(host: dict[str, Path]) -> None:
    before = {u: host[u].read_text() for u in ("alice", "bob")}
    result = run(params(host), check_mode=True)
    assert result["changed"]
    assert sorted((f["user"], f["file"], f["line"]) for f in result["found"]) == [
        ("alice", str(host["alice"]), 2),
        ("bob", str(host["bob"]), 1),
    ]
    assert result["krl"]["added"] == [ED25519_FP]
    diffs = {d["before_header"]: d for d in result["diff"]}
    assert ED25519.split()[1] not in diffs[str(host["alice"])]["after"]
    assert "hash: " + ED25519_FP in diffs[str(host["tmp"] / "krl.spec")]["after"]
    assert {u: host[u].read_text() for u in ("alice", "bob")} == before
    assert not (host["tmp"] / "krl").exists()
    assert not (host["tmp"] / "q").exists()


def test_revoke_quarantines_and_builds_a_krl_that_refuses_the_key(host: dict[str, Path]) -> None:
    result = run(params(host))
    assert result["changed"]
    assert host["alice"].read_text() == f"# alice\n{RSA} alice@laptop\n"
    assert host["bob"].read_text() == ""
    records = json.loads((host["tmp"] / "q/quarantine.json").read_text())
    assert sorted(r["user"] for r in records) == ["alice", "bob"]
    assert all(r["host"] == "web1" and r["time"] for r in records)
    assert result["krl"]["created"] and not result["revoked_keys_configured"]
    pub = host["tmp"] / "k.pub"
    pub.write_text(ED25519 + "\n")
    q = subprocess.run(["ssh-keygen", "-Q", "-f", str(host["tmp"] / "krl"), str(pub)], capture_output=True, text=True)
    assert q.returncode != 0 and "REVOKED" in q.stdout
    assert revoke.parse_krl_record((host["tmp"] / "krl.spec").read_text()) == [ED25519_FP]


def test_second_run_changes_nothing_and_remembers_where_the_key_was(host: dict[str, Path]) -> None:
    run(params(host))
    again = run(params(host))
    assert not again["changed"]
    assert again["found"] == [] and again["krl"]["added"] == []
    assert sorted(r["file"] for r in again["quarantined_earlier"]) == sorted([str(host["alice"]), str(host["bob"])])


def test_a_replaced_krl_is_rebuilt_from_the_record(host: dict[str, Path]) -> None:
    run(params(host))
    subprocess.run(["ssh-keygen", "-k", "-f", str(host["tmp"] / "krl")], check=True, capture_output=True)  # empty KRL
    result = run(params(host))
    assert result["changed"] and result["krl"]["rebuilt"]


def test_recent_undeclared_keys_are_reported_not_removed(host: dict[str, Path]) -> None:
    result = run(params(host, keys=[ED25519_FP]))
    assert [f["fingerprint"] for f in result["recent_undeclared"]] == [RSA_FP]
    assert RSA in host["alice"].read_text()
    declared = run(params(host, keys=[ED25519_FP], declared_keys=[RSA]))
    assert declared["recent_undeclared"] == []


def test_protected_key_is_refused_before_anything_changes(host: dict[str, Path]) -> None:
    before = host["alice"].read_text()
    with pytest.raises(Failed, match=r"^keys: .* is the key this admin connection uses"):
        run(params(host, protect_fingerprints=[ED25519_FP]))
    assert host["alice"].read_text() == before


def test_malformed_key_names_the_argument(host: dict[str, Path]) -> None:
    with pytest.raises(Failed, match=r"^keys\[0\]: SHA256:x is not a SHA256 fingerprint"):
        run(params(host, keys=["SHA256:x"]))


def test_not_a_krl_fails_naming_krl_path(host: dict[str, Path]) -> None:
    (host["tmp"] / "krl").write_text("this is not a KRL\n")
    with pytest.raises(Failed, match=r"^krl_path: ssh-keygen could not update the KRL"):
        run(params(host))


def test_no_keys_without_quarantine_only_creates_the_krl(host: dict[str, Path]) -> None:
    """The hardening role's call: RevokedKeys must never name a missing file."""
    krl = host["tmp"] / "krl"
    first = run(params(host, keys=[], quarantine=False))
    assert first["changed"] and krl.exists() and first["found"] == []
    assert not run(params(host, keys=[], quarantine=False))["changed"]
    assert host["alice"].read_text().count(ED25519.split()[1]) == 1  # nothing quarantined


def test_no_keys_with_quarantine_is_refused(host: dict[str, Path]) -> None:
    with pytest.raises(Failed, match=r"^keys: no key to revoke"):
        run(params(host, keys=[]))
