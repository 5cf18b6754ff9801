"""The pyinfra operations in pyinfra's own style: facts in, commands out (no host, no SSH).

Each test hands an operation's generator a fixed set of facts (a fake ``host``) and checks the
commands it yields, the ``host.noop`` it logs, or the OperationError it raises. The messages are
compared with what the core and the Ansible module produce for the same input.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import FunctionCommand, OperationError, StringCommand

from deploys import facts
from deploys import operations as ops
from sshward import firewall as fw
from sshward.effective import parse_sshd_T
from sshward.guards import Account, lockout_problems
from sshward.openssh import version_from_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DEBIAN12 = (FIXTURES / "sshd_config" / "debian12_sshd_config").read_bytes()
BOOKWORM = version_from_package("1:9.2p1-2+deb12u6")
POLICY_DEFAULTS = {
    "port": [22], "listen_addresses": [], "permit_root_login": "no", "password_authentication": False,
    "allow_users": [], "allow_groups": [], "deny_users": [], "deny_groups": [], "max_auth_tries": 3,
    "max_sessions": 10, "login_grace_time": 30, "max_startups": "10:30:60", "client_alive_interval": 300,
    "client_alive_count_max": 2, "allow_tcp_forwarding": "no", "allow_agent_forwarding": False,
    "x11_forwarding": False, "permit_tunnel": False, "banner": "", "banner_path": "/etc/issue.net",
    "crypto": "hardened", "revoked_keys_file": "", "extra_settings": {},
}  # fmt: skip
ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@lab"


class FakeHost:
    """Just enough of pyinfra's host for an operation generator: facts by class name, noops recorded."""

    print_prefix = "[fake] "
    current_op_global_arguments: dict[str, Any] = {"_sudo": True}

    def __init__(self, fact_values: dict[str, Any]) -> None:
        self.facts = fact_values
        self.noops: list[str] = []
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def get_fact(self, cls: type, **kwargs: Any) -> Any:
        self.asked.append((cls.__name__, kwargs))
        value = self.facts[cls.__name__]
        return value(**kwargs) if callable(value) else value

    def noop(self, description: str) -> None:
        self.noops.append(description)


def run(monkeypatch: pytest.MonkeyPatch, op: Any, fact_values: dict[str, Any], **kwargs: Any) -> tuple[list, FakeHost]:
    fake = FakeHost(fact_values)
    monkeypatch.setattr(ops, "host", fake)
    commands = [c if not isinstance(c, str) else StringCommand(c) for c in op._inner(**kwargs)]
    return commands, fake


def written(command: Any) -> str:
    """The payload of a write_file_command."""
    match = re.search(r"printf %s (\S+) \| base64 -d", str(command))
    assert match, command
    return base64.b64decode(match.group(1)).decode()


def candidate_effective(text: str) -> dict[str, Any]:
    """What `sshd -T -f candidate` would print for the policy's keywords: the candidate's own lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    out = "\n".join(line for line in lines if not line.lower().startswith(("include", "match", "subsystem")))
    return {"ok": True, "error": "", "effective": parse_sshd_T(out)}


def sshd_facts(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "OpenSSHServerVersion": BOOKWORM,
        "SshQueries": {},
        "SshdConfigFiles": {"/etc/ssh/sshd_config": DEBIAN12},
        "SshdCandidate": lambda text, context, sshd: candidate_effective(text),
        "Accounts": {"admin": Account("admin", 1000, "/home/admin", ("admin", "sudo"))},
        "FileContents": {"/home/admin/.ssh/authorized_keys": (ADMIN_KEY + "\n").encode()},
        "SshdEffective": {},
    }
    values.update(overrides)
    return values


GUARDED = dict(policy=POLICY_DEFAULTS, connecting_user="admin", connecting_address="192.0.2.10")


def test_sshd_config_backs_up_writes_validates_then_checks_effective(monkeypatch):
    commands, _ = run(monkeypatch, ops.sshd_config, sshd_facts(), backup="77.2026-01-01@00:00:00", **GUARDED)
    texts = [str(c) for c in commands]
    assert texts[0] == "cp -p -- /etc/ssh/sshd_config '/etc/ssh/sshd_config.77.2026-01-01@00:00:00~'"
    assert "PasswordAuthentication no" in written(texts[1])
    assert 'mv -f "$t" /etc/ssh/sshd_config' in texts[1]
    assert "-t 2>&1); then cp -p" in texts[2]  # sshd -t after installing, restore on failure
    assert texts[3] == "install -d -m 0700 /run/sshward"
    assert json.loads(written(texts[4])) == {  # the reload is owed until it is probed and confirmed
        "changed_files": ["/etc/ssh/sshd_config"],
        "backups": [{"path": "/etc/ssh/sshd_config", "backup": "/etc/ssh/sshd_config.77.2026-01-01@00:00:00~"}],
    }
    assert isinstance(commands[5], FunctionCommand)
    assert len(commands) == 6


PENDING = "/run/sshward/sshd-reload-pending.json"
OWED = {"changed_files": ["/etc/ssh/sshd_config"], "backups": [{"path": "/etc/ssh/sshd_config", "backup": "/b~"}]}


def test_sshd_config_with_nothing_to_change_still_owes_an_interrupted_reload(monkeypatch):
    first, _ = run(monkeypatch, ops.sshd_config, sshd_facts(), **GUARDED)
    after = written(first[0]).encode()
    contents = {"/home/admin/.ssh/authorized_keys": (ADMIN_KEY + "\n").encode(), PENDING: json.dumps(OWED).encode()}
    commands, fake = run(
        monkeypatch, ops.sshd_config,
        sshd_facts(SshdConfigFiles={"/etc/ssh/sshd_config": after}, FileContents=contents), **GUARDED,
    )  # fmt: skip
    assert [str(c) for c in commands] == [f"test -f {PENDING}"]  # a change, so the reload step runs
    assert fake.noops == []


def test_reload_restores_the_interrupted_runs_backups_and_clears_the_record(monkeypatch):
    commands, _ = run(
        monkeypatch, ops.reload_with_rollback,
        {"FileContents": {"/etc/ssh/sshd_config.1.x~": b"half", PENDING: json.dumps(OWED).encode()}},
        paths=["/etc/ssh/sshd_config"], backup="1.x",
    )  # fmt: skip
    texts = [str(c) for c in commands]
    armed = json.loads(base64.b64decode(texts[2].rsplit(" ", 1)[1]))
    assert armed["files"] == OWED["backups"], "the last state proven to work, not the never-loaded one"
    assert texts[3] == "systemctl reload ssh"
    assert isinstance(commands[4], FunctionCommand)
    assert texts[5] == f"rm -f {PENDING}"


def test_a_damaged_record_still_reloads_without_restoring_anything(monkeypatch):
    commands, _ = run(
        monkeypatch, ops.reload_with_rollback, {"FileContents": {PENDING: b"{not json"}},
        paths=["/etc/ssh/sshd_config"], backup="1.x",
    )  # fmt: skip
    texts = [str(c) for c in commands]
    assert json.loads(base64.b64decode(texts[2].rsplit(" ", 1)[1]))["files"] == []
    assert texts[3] == "systemctl reload ssh"


def test_sshd_config_second_run_is_a_noop(monkeypatch):
    first, _ = run(monkeypatch, ops.sshd_config, sshd_facts(), **GUARDED)
    after = written(first[0]).encode()
    effective = candidate_effective(after.decode())["effective"]
    commands, fake = run(
        monkeypatch, ops.sshd_config,
        sshd_facts(SshdConfigFiles={"/etc/ssh/sshd_config": after}, SshdEffective=effective), **GUARDED,
    )  # fmt: skip
    assert commands == []
    assert fake.noops == ["/etc/ssh/sshd_config: sshd already runs with the requested settings"]


def test_sshd_config_check_only_changes_nothing(monkeypatch):
    commands, fake = run(monkeypatch, ops.sshd_config, sshd_facts(), check_only=True, **GUARDED)
    assert commands == []
    assert fake.noops == ["/etc/ssh/sshd_config: the policy passes sshd -t and the lockout guards"]


def test_sshd_config_refuses_sshd_t_rejection_with_the_module_message(monkeypatch):
    rejected = {"ok": False, "error": "/tmp/x line 3: Bad configuration option: Nope", "effective": {}}
    with pytest.raises(OperationError) as err:
        run(monkeypatch, ops.sshd_config, sshd_facts(SshdCandidate=rejected), **GUARDED)
    assert str(err.value) == (
        "the new configuration is rejected by sshd -t, nothing changed: /tmp/x line 3: Bad configuration option: Nope"
    )


def test_guards_refuse_locking_out_the_connecting_user_with_the_module_message(monkeypatch):
    policy = dict(POLICY_DEFAULTS, allow_users=["deploy"])
    accounts = {
        "admin": Account("admin", 1000, "/home/admin", ("admin",)),
        "deploy": Account("deploy", 1001, "/home/deploy", ("deploy",)),
    }
    facts_in = sshd_facts(Accounts=accounts)
    with pytest.raises(OperationError) as err:
        run(monkeypatch, ops.sshd_config, facts_in, **dict(GUARDED, policy=policy))
    # The same core call the Ansible module makes, and its message format.
    first, _ = run(monkeypatch, ops.sshd_config, sshd_facts(), **GUARDED)
    candidate = candidate_effective(written(first[0]).replace("\n# BEGIN", "\nAllowUsers deploy\n# BEGIN"))
    effective = dict(candidate["effective"], allowusers=["deploy"])
    problems = lockout_problems(
        effective,
        "admin",
        accounts.get,
        sshd_facts()["FileContents"].get,
        require_keys_for=["deploy"],
        host="192.0.2.10",
        addr="192.0.2.10",
    )
    assert str(err.value) == "refusing to change sshd: " + "; ".join(problems) + ". Nothing was changed."
    assert "the connecting user would be locked out: admin is not listed in AllowUsers (deploy)" in str(err.value)


def test_guards_refuse_an_allowed_user_without_a_key(monkeypatch):
    with pytest.raises(OperationError, match="allowed user bob does not exist|allowed user 'bob' does not exist"):
        run(monkeypatch, ops.sshd_config, sshd_facts(), require_keys_for=["bob"], **GUARDED)


def test_guards_count_keys_about_to_be_installed(monkeypatch):
    accounts = {"admin": Account("admin", 1000, "/home/admin", ("admin",))}
    commands, _ = run(
        monkeypatch, ops.sshd_config, sshd_facts(Accounts=accounts), check_only=True,
        require_keys_for=["bob"], planned_keys={"bob": [ADMIN_KEY]}, **GUARDED,
    )  # fmt: skip
    assert commands == []


def test_reload_without_backups_is_a_noop(monkeypatch):
    commands, fake = run(
        monkeypatch, ops.reload_with_rollback, {"FileContents": {}}, paths=["/etc/ssh/sshd_config"], backup="1.x"
    )
    assert commands == []
    assert fake.noops == ["sshd configuration unchanged: nothing to reload"]


def test_reload_arms_the_core_revert_then_reloads_then_probes(monkeypatch):
    backup = "/etc/ssh/sshd_config.1.x~"
    commands, _ = run(
        monkeypatch, ops.reload_with_rollback, {"FileContents": {backup: b"old"}},
        paths=["/etc/ssh/sshd_config"], backup="1.x", rollback_seconds=90,
    )  # fmt: skip
    texts = [str(c) for c in commands]
    assert texts[0] == "install -d -m 0700 /var/lib/sshward/revert"
    assert "def arm(" in written(texts[1])  # the runner is sshward.revert's own source
    assert "runner.arm(" in texts[2]
    args = texts[2].rsplit(" ", 1)[1]
    assert (
        '"files": [{"path": "/etc/ssh/sshd_config", "backup": "/etc/ssh/sshd_config.1.x~"}]'
        in base64.b64decode(args).decode()
    )
    assert texts[3] == "systemctl reload ssh"
    assert isinstance(commands[4], FunctionCommand)


def test_reload_refuses_a_too_short_rollback(monkeypatch):
    with pytest.raises(Exception, match="at least 10 s"):
        run(
            monkeypatch, ops.reload_with_rollback, {"FileContents": {"/etc/ssh/sshd_config.1.x~": b""}},
            paths=["/etc/ssh/sshd_config"], backup="1.x", rollback_seconds=5,
        )  # fmt: skip


def test_moduli_without_small_groups_is_a_noop(monkeypatch):
    big = "20250101000000 2 6 100 3071 2 " + "F" * 768 + "\n"
    commands, fake = run(monkeypatch, ops.moduli, {"FileContents": {"/etc/ssh/moduli": big.encode()}})
    assert commands == [] and fake.noops == ["/etc/ssh/moduli: no group smaller than 3072 bits"]


def test_moduli_uploads_the_filtered_file(monkeypatch):
    small = "20250101000000 2 6 100 2047 2 " + "E" * 512 + "\n"
    big = "20250101000000 2 6 100 3071 2 " + "F" * 768 + "\n"
    uploads = []

    class Files:
        class put:
            @staticmethod
            def _inner(**kwargs: Any) -> Any:
                uploads.append(kwargs)
                yield "upload"

    monkeypatch.setattr(ops, "files", Files)
    commands, _ = run(monkeypatch, ops.moduli, {"FileContents": {"/etc/ssh/moduli": (small + big).encode()}})
    assert [str(c) for c in commands] == ["upload"]
    assert uploads[0]["src"].getvalue() == big and uploads[0]["mode"] == "0644"


def test_host_keys_replace_an_rsa_key_of_the_wrong_size(monkeypatch):
    present = {"/etc/ssh/ssh_host_ed25519_key.pub": b"k", "/etc/ssh/ssh_host_rsa_key.pub": b"k"}
    commands, _ = run(monkeypatch, ops.host_keys, {"RsaHostKeyBits": 3072, "FileContents": present})
    assert [str(c) for c in commands] == [
        "rm -f /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub",
        "ssh-keygen -q -t rsa -b 4096 -N '' -f /etc/ssh/ssh_host_rsa_key",
    ]
    commands, fake = run(monkeypatch, ops.host_keys, {"RsaHostKeyBits": 4096, "FileContents": present})
    assert commands == [] and fake.noops == ["host keys present (RSA 4096 bits)"]


# --------------------------------------------------------------------------------------- rate limit

IPT_BINS = {n: f"/usr/sbin/{n}" for n in ("iptables", "ip6tables", "iptables-save", "ip6tables-save",
                                          "iptables-restore", "ip6tables-restore", "systemctl")}  # fmt: skip
EMPTY_SAVE = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def fw_facts(state: dict[str, Any], files: dict[str, bytes], enabled: str = "disabled") -> dict[str, Any]:
    host_fact = {
        "bins": IPT_BINS, "iptables_version": "iptables v1.8.9 (nf_tables)", "nft_version": "", "nft_ruleset": "",
        "nftables_enabled": "", "ufw_status": "", "firewalld": "inactive", "unit_enabled": enabled,
    }  # fmt: skip
    return {
        "FirewallHost": host_fact,
        "SshdEffective": {"port": ["22"], "listenaddress": ["[::]:22", "0.0.0.0:22"]},
        "FirewallState": state,
        "FileContents": files,
    }


def test_ratelimit_checks_all_scripts_then_loads_saves_and_enables(monkeypatch):
    state = {"iptables_save": EMPTY_SAVE, "ip6tables_save": EMPTY_SAVE}
    commands, _ = run(monkeypatch, ops.ratelimit, fw_facts(state, {}), allowlist=["192.0.2.10"])
    texts = [str(c) for c in commands]
    assert "--test" in texts[0] and texts[0].count("base64 -d |") == 2  # both families checked first
    assert texts[1].endswith("/usr/sbin/iptables-restore --noflush --wait=10") or "iptables-restore" in texts[1]
    assert "ip6tables-restore" in texts[2]
    assert isinstance(commands[3], FunctionCommand)
    assert texts[4] == "install -d -m 0700 /etc/sshward/firewall"
    saved = {t.rsplit(" ", 1)[1]: written(t) for t in texts if "mv -f" in t}
    policy = fw.RateLimitPolicy(ports=(22,), seconds=60, hitcount=4, trusted_seconds=60, trusted_hitcount=10,
                                allowlist=("192.0.2.10",))  # fmt: skip
    assert saved["/etc/sshward/firewall/ratelimit.ipv4.rules"] == fw.render_iptables(policy, "ipv4")
    assert (
        "ExecStart=/usr/sbin/iptables-restore --noflush --wait=10 /etc/sshward/firewall/ratelimit.ipv4.rules"
        in (saved["/etc/systemd/system/sshward-firewall.service"])
    )
    assert texts[-2:] == ["systemctl daemon-reload", "systemctl enable sshward-firewall.service"]


def as_saved(policy: Any, family: str) -> str:
    """What iptables-save prints once the restore script is loaded (chains, rules, the INPUT jump)."""
    out = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    for line in fw.render_iptables(policy, family).splitlines():
        if line.startswith((":", "-A")):
            out.append(line)
        elif line.startswith("-I INPUT 1 "):
            out.append("-A INPUT " + line[len("-I INPUT 1 ") :])
    return "\n".join([*out, "COMMIT", ""])


def test_ratelimit_second_run_is_a_noop(monkeypatch):
    first, _ = run(monkeypatch, ops.ratelimit, fw_facts({"iptables_save": EMPTY_SAVE,
                                                         "ip6tables_save": EMPTY_SAVE}, {}))  # fmt: skip
    files = {str(c).rsplit(" ", 1)[1]: written(c).encode() for c in first if "mv -f" in str(c)}
    policy = fw.RateLimitPolicy(ports=(22,), seconds=60, hitcount=4, trusted_seconds=60, trusted_hitcount=10)
    live = {"iptables_save": as_saved(policy, "ipv4"), "ip6tables_save": as_saved(policy, "ipv6")}
    assert not any(p.changed for p in fw.plan(policy, "iptables", **live))
    commands, fake = run(monkeypatch, ops.ratelimit, fw_facts(live, files, enabled="enabled"))
    assert commands == []
    assert fake.noops == ["ratelimit: the live rules, saved files and boot unit already match the policy"]


def test_ratelimit_refuses_beside_active_ufw(monkeypatch):
    values = fw_facts({"iptables_save": EMPTY_SAVE, "ip6tables_save": EMPTY_SAVE}, {})
    values["FirewallHost"] = dict(values["FirewallHost"], bins=dict(IPT_BINS, ufw="/usr/sbin/ufw"),
                                  ufw_status="Status: active\n")  # fmt: skip
    with pytest.raises(OperationError) as err:
        run(monkeypatch, ops.ratelimit, values)
    assert str(err.value) == fw.conflict_message("Status: active\n", None, setting="backend")


def test_ratelimit_disabled_removes_rules_files_and_unit(monkeypatch):
    unit = b"[Unit]\n"
    state = {"iptables_save": EMPTY_SAVE, "ip6tables_save": EMPTY_SAVE}
    files = {"/etc/sshward/firewall/ratelimit.ipv4.rules": b"x", "/etc/systemd/system/sshward-firewall.service": unit}
    commands, _ = run(monkeypatch, ops.ratelimit, fw_facts(state, files, enabled="enabled"), enabled=False)
    texts = [str(c) for c in commands]
    assert "rm -f -- /etc/sshward/firewall/ratelimit.ipv4.rules" in texts
    assert "systemctl disable sshward-firewall.service" in texts
    assert "rm -f -- /etc/systemd/system/sshward-firewall.service" in texts


# ------------------------------------------------------------------------------------------- facts


def test_fact_processing():
    assert facts.ConnectionInfo().process(["admin", "192.0.2.10 50000 192.0.2.1 22"]) == {
        "user": "admin", "address": "192.0.2.10", "port": "22",
    }  # fmt: skip
    assert facts.ConnectionInfo().process(["root", ""])["address"] == ""
    assert str(facts.OpenSSHServerVersion().process(["P 1:9.2p1-2+deb12u6", "V OpenSSH_9.2p1"])) == str(BOOKWORM)
    assert facts.SshQueries().process(["## kex", "curve25519-sha256", "## cipher", "## end"]) == {
        "kex": ["curve25519-sha256"]
    }
    path = base64.b64encode(b"/etc/ssh/sshd_config").decode()
    body = base64.b64encode(b"Port 22\n").decode()
    assert facts.SshdConfigFiles().process([f"F {path} {body}", "END"]) == {"/etc/ssh/sshd_config": b"Port 22\n"}
    accounts = facts.Accounts().process(["A admin:x:1000:1000::/home/admin:/bin/bash", "admin sudo", "END"])
    assert accounts == {"admin": Account("admin", 1000, "/home/admin", ("admin", "sudo"))}
    assert facts.SshdCandidate().process(["## rejected", "line 1: Bad option", "## end"]) == {
        "ok": False, "error": "line 1: Bad option", "effective": {},
    }  # fmt: skip
    assert facts.FirewallState().process(["S ipv4 " + base64.b64encode(b"*filter").decode(), "S ipv6 -", "END"]) == {
        "iptables_save": "*filter\n", "ip6tables_save": None,
    }  # fmt: skip


def test_fact_commands_quote_their_arguments():
    cmd = facts.Accounts().command(names=("admin", "x; rm -rf /"))
    assert "'x; rm -rf /'" in cmd
    cmd = facts.SshdCandidate().command(text="Port 22\n'; reboot", context="user=a,host=b,addr=c")
    assert "reboot" not in cmd  # the candidate travels base64-encoded
