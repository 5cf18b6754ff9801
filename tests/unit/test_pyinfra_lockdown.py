"""The pyinfra lockdown in pyinfra's own style: facts in, commands out (no host, no SSH).

Each operation gets a fixed set of facts through a fake ``host``; the tests read the requests it
would send to ``sshward.lockdown`` on the host (decoded from the command), its ``host.noop`` or its
refusal, and compare refusals with the role's and the core's messages.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyinfra.api import FunctionCommand, OperationError, StringCommand

from deploys import hostcore
from deploys import lockdown_operations as lops
from sshward import lockdown as core
from sshward import netaddr, sessions

ROOT = Path(__file__).resolve().parents[2]


class FakeHost:
    print_prefix = "[fake] "
    name = "web1"
    current_op_global_arguments: dict[str, Any] = {"_sudo": True}

    def __init__(self, fact_values: dict[str, Any]) -> None:
        self.facts = fact_values
        self.noops: list[str] = []
        self.logged: list[str] = []

    def get_fact(self, cls: type, **kwargs: Any) -> Any:
        value = self.facts[cls.__name__]
        return value(**kwargs) if callable(value) else value

    def noop(self, description: str) -> None:
        self.noops.append(description)

    def log_styled(self, text: str, **_: Any) -> None:
        self.logged.append(text)


def run(monkeypatch: pytest.MonkeyPatch, op: Any, fact_values: dict[str, Any], **kwargs: Any) -> tuple[list, FakeHost]:
    fake = FakeHost(fact_values)
    monkeypatch.setattr(lops, "host", fake)
    commands = [c if not isinstance(c, str) else StringCommand(c) for c in op._inner(**kwargs)]
    return commands, fake


def request_of(command: Any) -> dict[str, Any]:
    """The JSON request a hostcore command carries to sshward.lockdown."""
    match = re.search(r'"\$d/core\.zip" (\S+);', str(command))
    assert match, str(command)[:300]
    return json.loads(base64.b64decode(match.group(1)))


SESSION = {"pid": 4242, "user": "deploy", "source_address": "172.31.9.13", "source_port": 50000, "pids": [4242]}


def test_kill_sessions_sends_the_kill_request(monkeypatch):
    asked = []

    def query(request):
        asked.append(request)
        return {"killed": [SESSION], "kept": [], "sessions": [SESSION], "survivors": []}

    commands, fake = run(monkeypatch, lops.kill_sessions, {"LockdownQuery": query}, admin_networks=["192.0.2.10"])
    assert asked == [{"action": "sessions", "admin_networks": ["192.0.2.10"], "addresses": []}]
    assert [request_of(c) for c in commands] == [{"action": "kill", "admin_networks": ["192.0.2.10"], "addresses": []}]
    assert fake.logged == ["killing deploy from 172.31.9.13 (pid 4242)"]


def test_kill_sessions_without_foreign_sessions_is_a_noop(monkeypatch):
    answer = {"killed": [], "kept": [], "sessions": [], "survivors": []}
    commands, fake = run(monkeypatch, lops.kill_sessions, {"LockdownQuery": answer}, admin_networks=["192.0.2.10"])
    assert commands == [] and fake.noops == ["no session from outside the admin addresses"]


def test_a_refusal_from_the_host_is_an_operation_error(monkeypatch):
    answer = {"error": "admin_networks: empty; refusing to kill sessions without knowing whose to keep"}
    with pytest.raises(OperationError, match="admin_networks: empty"):
        run(monkeypatch, lops.kill_sessions, {"LockdownQuery": answer}, admin_networks=[])


def test_quarantine_keys_sends_fingerprints_and_protects_the_admin_key(monkeypatch):
    removed = [{"fingerprint": "SHA256:evil", "file": "/home/deploy/.ssh/authorized_keys", "line": 1}]
    commands, fake = run(
        monkeypatch, lops.quarantine_keys, {"LockdownQuery": {"removed": removed}},
        fingerprints=["SHA256:evil", "SHA256:evil"], protect=["SHA256:admin"], quarantine_file="/b/q/keys.json",
    )  # fmt: skip
    assert [request_of(c) for c in commands] == [
        {"action": "keys", "fingerprints": ["SHA256:evil"], "protect": ["SHA256:admin"],
         "quarantine_file": "/b/q/keys.json"}
    ]  # fmt: skip
    assert fake.logged == ["quarantining SHA256:evil from /home/deploy/.ssh/authorized_keys:1"]


@pytest.mark.parametrize("fingerprints, removed", [([], []), (["SHA256:gone"], [])])
def test_quarantine_keys_noop(monkeypatch, fingerprints, removed):
    commands, fake = run(
        monkeypatch, lops.quarantine_keys, {"LockdownQuery": {"removed": removed}},
        fingerprints=fingerprints, protect=[], quarantine_file="/b/q/keys.json",
    )  # fmt: skip
    assert commands == [] and fake.noops == ["no authorized_keys line holds a key the intruder used"]


def test_refusal_without_admin_address_is_the_roles_message(monkeypatch):
    preflight = yaml.safe_load((ROOT / "roles/ssh_lockdown/tasks/preflight.yml").read_text())
    role_message = next(t for t in preflight if "assert" in str(t))["ansible.builtin.assert"]["fail_msg"].strip()
    with pytest.raises(OperationError) as err:
        run(monkeypatch, lops.admin_address_known, {}, address="")
    assert str(err.value) == role_message


def test_admin_address_known_is_a_noop(monkeypatch):
    commands, fake = run(monkeypatch, lops.admin_address_known, {}, address="192.0.2.10")
    assert commands == [] and fake.noops == ["the admin connects from 192.0.2.10"]


def test_evidence_refuses_an_intruder_address_inside_the_admin_networks(monkeypatch):
    with pytest.raises(OperationError) as err:
        run(
            monkeypatch, lops.evidence, {}, incident_id="i1", parts=["volatile"],
            admin_networks=["192.0.2.0/24"], intruder_addresses=["192.0.2.10"],
        )  # fmt: skip
    assert str(err.value) == core.intruder_clash(["192.0.2.10"], ["192.0.2.0/24"])
    assert str(err.value).startswith("intruder_addresses: 192.0.2.10 is inside admin_networks (192.0.2.0/24)")


def test_evidence_sends_the_parts(monkeypatch):
    commands, _ = run(
        monkeypatch, lops.evidence, {}, incident_id="i1", parts=["volatile", "commands"],
        admin_networks=["192.0.2.10"], path="/var/lib/sshward/evidence",
    )  # fmt: skip
    assert request_of(commands[0]) == {
        "action": "collect", "path": "/var/lib/sshward/evidence", "incident_id": "i1",
        "parts": ["volatile", "commands"], "admin_networks": ["192.0.2.10"], "intruder_addresses": [],
        "recent_seconds": 259200,
    }  # fmt: skip


def test_arm_restrict_revert_refuses_a_too_short_delay(monkeypatch):
    with pytest.raises(Exception, match="at least 10 s"):
        run(monkeypatch, lops.arm_restrict_revert, {}, seconds=5)


def test_arm_restrict_revert_arms_after_loading(monkeypatch):
    commands, _ = run(monkeypatch, lops.arm_restrict_revert, {}, seconds=900)
    assert len(commands) == 1 and isinstance(commands[0], FunctionCommand)


def test_confirm_without_armed_revert_is_a_noop(monkeypatch):
    commands, fake = run(monkeypatch, lops.confirm_restrict, {"FileContents": {}})
    assert commands == []
    assert fake.noops[0].startswith("Nothing to confirm: no armed revert on this host")


def test_confirm_cancels_the_armed_revert(monkeypatch):
    plan = "/var/lib/sshward/revert/lockdown-restrict.json"
    commands, _ = run(monkeypatch, lops.confirm_restrict, {"FileContents": {plan: b"{}"}})
    argv = shlex.split(str(commands[0]))
    assert argv[:4] == ["python3", "-I", "-B", "-c"]
    assert argv[4].endswith("runner.confirm('lockdown-restrict', '/var/lib/sshward/revert')")


def test_reload_sshd_settles_the_owed_reload(monkeypatch):
    commands, _ = run(monkeypatch, lops.reload_sshd, {})
    assert [str(c) for c in commands] == ["systemctl reload ssh", "rm -f /run/sshward/sshd-reload-pending.json"]


def test_ban_only_what_fail2ban_has_not_banned(monkeypatch):
    jail = {"running": True, "status": "   `- Banned IP list:\t198.51.100.1\n"}
    commands, _ = run(monkeypatch, lops.ban, {"Fail2banSshd": jail}, addresses=["198.51.100.1", "198.51.100.2"])
    assert [str(c) for c in commands] == ["fail2ban-client set sshd banip 198.51.100.2"]


def test_ban_without_fail2ban_is_a_noop(monkeypatch):
    commands, fake = run(monkeypatch, lops.ban, {"Fail2banSshd": {"running": False, "status": ""}}, addresses=["x"])
    assert commands == [] and fake.noops[0].startswith("fail2ban is not running on this host")


def test_notify_event_only_when_configured(monkeypatch):
    kwargs = dict(command="/usr/local/bin/sshward-notify", config="/etc/sshward/notify.json", fields={"incident": "i"})
    commands, fake = run(monkeypatch, lops.notify_event, {"FileContents": {}}, **kwargs)
    assert commands == [] and fake.noops == ["/etc/sshward/notify.json is absent (install the ssh_notify role)"]
    commands, _ = run(monkeypatch, lops.notify_event, {"FileContents": {"/etc/sshward/notify.json": b"{}"}}, **kwargs)
    assert str(commands[0]) == "/usr/local/bin/sshward-notify event --kind lockdown --field incident=i"


@pytest.mark.parametrize(("address", "network"), [("192.0.2.1", "192.0.2.1/32"), ("2001:db8::1", "2001:db8::1/128"),
                                                  ("10.0.0.0/8", "10.0.0.0/8")])  # fmt: skip
def test_as_network(address, network):
    assert lops.as_network(address) == network


# ----------------------------------------------------------------------------------- host side


def test_hostcore_ships_only_what_the_module_imports():
    needed = {"lockdown", "evidence", "quarantine", "sessions", "authlog", "keys", "netaddr"}
    assert hostcore._needs("lockdown") == needed


def test_hostcore_command_runs_the_core_and_answers_json(tmp_path):
    """The command as the host runs it (here: this machine's python3, a read-only refusal)."""
    command = hostcore.request_command("lockdown", {"action": "keys", "fingerprints": ["MD5:aa"], "check": True})
    proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert hostcore.parse_answer(proc.stdout.splitlines()) == {
        "error": "fingerprints: ['MD5:aa'] are not SHA256:... fingerprints as sshd logs them"
    }
    assert list(tmp_path.iterdir()) == []


def test_a_fact_gets_the_refusal_with_exit_0(tmp_path):
    """pyinfra fails a host on a fact command's non-zero exit: the fact reads the refusal instead."""
    command = lops.LockdownQuery().command(request={"action": "kill", "admin_networks": []})
    proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 0
    assert lops.LockdownQuery().process(proc.stdout.splitlines()) == {
        "error": "admin_networks: empty; refusing to kill sessions without knowing whose to keep"
    }


def test_parse_answer_without_json():
    assert hostcore.parse_answer(["Traceback", "boom"])["error"].startswith("no answer from the host")


def _session(pid: int, address: str) -> sessions.Session:
    return sessions.Session(pid, "u", address, 1, 22, 0.0, True)


def test_select_sessions_keeps_admin_and_own_connection():
    admin = netaddr.parse_networks(["192.0.2.0/24"], "admin_networks")
    listed = [_session(1, "192.0.2.5"), _session(2, "198.51.100.9"), _session(3, "198.51.100.7")]
    kill, kept = core.select_sessions(listed, admin, protected=[2])
    assert [s.pid for s in kill] == [3]
    assert [(k["pid"], k["why"]) for k in kept] == [(1, "admin address"), (2, "this connection")]


def test_select_sessions_only_the_selected_addresses():
    admin = netaddr.parse_networks(["192.0.2.0/24"], "admin_networks")
    only = netaddr.parse_networks(["198.51.100.7"], "admin_networks")
    kill, kept = core.select_sessions([_session(2, "198.51.100.9"), _session(3, "198.51.100.7")], admin, [], only)
    assert [s.pid for s in kill] == [3] and kept[0]["why"] == "not selected"


def test_run_request_refuses_unknown_actions():
    assert core.run_request({"action": "reboot"}) == (
        2, {"error": "action: 'reboot' is not one of sessions, kill, collect, keys, seal"},
    )  # fmt: skip


@pytest.mark.parametrize("users", [["root"], ["admin"], ["bob", "root"]])
def test_lock_accounts_refuses_root_and_the_connecting_user_like_the_module(monkeypatch, users):
    with pytest.raises(OperationError) as err:
        run(monkeypatch, lops.lock_accounts, {}, users=users, connecting_user="admin")
    assert str(err.value) == core.lock_refusal(users, "admin")
    assert str(err.value).startswith("lock_accounts: refusing to lock")


def test_lock_accounts_only_those_not_locked(monkeypatch):
    status = {"bob": "bob L 2026-01-01 0 99999 7 -1", "eve": "eve P 2026-01-01 0 99999 7 -1"}
    commands, _ = run(monkeypatch, lops.lock_accounts, {"PasswdStatus": status}, users=["bob", "eve"],
                      connecting_user="admin")  # fmt: skip
    assert [str(c) for c in commands] == ["usermod -L -e 1 eve"]


def test_passwd_status_fact():
    assert lops.PasswdStatus().process(["bob\tbob L 2026-01-01", "\t", "END"]) == {"bob": "bob L 2026-01-01", "": ""}
    assert "'x; reboot'" in lops.PasswdStatus().command(users=("x; reboot",))
