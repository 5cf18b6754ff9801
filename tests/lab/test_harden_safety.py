"""The lockout guards, drop-in and Match handling, check mode, and the rollback after a failed probe."""

from __future__ import annotations

import ipaddress
import json

import pytest

from tests.conftest import ROOT, run
from tests.lab.harden_lab import LabHandle

KEY_SETTINGS = ("passwordauthentication", "kbdinteractiveauthentication", "permitrootlogin", "x11forwarding")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    handle = LabHandle(tmp_path_factory.mktemp("safety-lab"), "pytest-safety")
    try:
        handle.lab("up", "guards=bookworm", "dropin=bookworm", "rollback=trixie")
        yield handle
    finally:
        handle.lab("down")


def test_check_mode_shows_the_diff_and_changes_nothing(lab):
    before = lab.etc_ssh_digest("dropin")
    result = lab.playbook("dropin", None, "--check", "--diff")
    assert "+PasswordAuthentication no" in result.stdout
    assert lab.etc_ssh_digest("dropin") == before


def test_cloud_init_dropin_and_trailing_match_block(lab):
    lab.exec("dropin", "sh", "-c", "printf 'PasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf")
    lab.exec("dropin", "sh", "-c", "printf 'Match User nobody\\n    X11Forwarding yes\\n' >> /etc/ssh/sshd_config")
    assert lab.sshd_T("dropin")["passwordauthentication"] == ["yes"], "the drop-in wins before hardening"
    lab.playbook("dropin")
    assert lab.sshd_T("dropin")["passwordauthentication"] == ["no"]
    lines = lab.exec("dropin", "cat", "/etc/ssh/sshd_config").stdout.splitlines()
    match_at = lines.index("Match User nobody")
    assert all(not line.startswith("PasswordAuthentication") for line in lines[match_at:])
    assert lab.sshd_T("dropin", "user=nobody,host=x,addr=192.0.2.1")["x11forwarding"] == ["yes"]


@pytest.mark.parametrize(
    ("case", "extra_vars", "message"),
    [
        ("allowed user without a key", {"ssh_hardening_allow_users": ["admin", "bob"]}, "allowed user bob has no"),
        ("connecting user not allowed", {"ssh_hardening_allow_users": ["carol"]}, "would be locked out"),
        ("config rejected by sshd -t", {"ssh_hardening_extra_settings": {"Ciphers": "no-such-cipher"}},
         "rejected by sshd -t"),
    ],
)  # fmt: skip
def test_lockout_guard_refuses_and_changes_nothing(lab, case, extra_vars, message):
    lab.exec("guards", "sh", "-c", "id bob >/dev/null 2>&1 || useradd -m bob")
    lab.set_password("guards", "carol", "unused-password")
    lab.authorize_lab_key("guards", "carol")
    before = lab.etc_ssh_digest("guards")
    result = lab.playbook("guards", extra_vars, check=False)
    assert result.returncode != 0, case
    assert message in result.stdout, result.stdout[-2000:]
    assert lab.etc_ssh_digest("guards") == before


def test_root_as_the_only_way_in_is_refused(lab):
    lab.authorize_lab_key("guards", "root")
    before = lab.etc_ssh_digest("guards")
    result = lab.playbook("guards", {"ansible_user": "root", "ansible_become": False}, check=False)
    assert result.returncode != 0
    assert "root login would be disabled while root is the way in" in result.stdout
    assert lab.etc_ssh_digest("guards") == before


def test_unreachable_new_port_is_rolled_back_and_admin_still_gets_in(lab):
    lab.exec("rollback", "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "2222", "-j", "DROP")
    result = lab.playbook(
        "rollback",
        {"ssh_hardening_port": [2222], "ssh_hardening_probe_timeout": 10, "ssh_hardening_rollback_seconds": 20},
        check=False,
    )
    assert result.returncode != 0
    assert "The change was rolled back" in result.stdout
    assert lab.sshd_T("rollback")["port"] == ["22"]
    assert lab.ssh("rollback", "admin", "true").returncode == 0


def test_a_run_that_died_before_the_reload_is_finished_by_the_next_run(lab):
    """Files written, daemon never reloaded: the next run must reload although no file differs."""
    banner = "sshward pending-reload probe"

    def banner_shown() -> bool:
        return banner in lab.ssh("dropin", "admin", "true").stderr

    lab.exec("dropin", "sh", "-c", f"printf '%s\\n' '{banner}' > /etc/issue.net")
    # What harden.yml's sshd step does before the run is cut off: the files change, no reload follows.
    run(
        ["ansible", "-i", str(lab.inventory), "dropin", "-b", "-m", "sshward_sshd_config",
         "-a", json.dumps({"path": "/etc/ssh/sshd_config", "settings": {"Banner": "/etc/issue.net"}})],
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
    )  # fmt: skip
    assert lab.sshd_T("dropin")["banner"] == ["/etc/issue.net"]
    assert not banner_shown(), "the running daemon still serves the old settings"

    result = lab.playbook("dropin", {"ssh_hardening_banner": banner})
    assert "did not finish the reload" in result.stdout + result.stderr
    assert banner_shown()
    assert lab.exec("dropin", "test", "-e", "/run/sshward/sshd-reload-pending.json", check=False).returncode == 1
    again = lab.playbook("dropin", {"ssh_hardening_banner": banner})
    assert "changed=0" in again.stdout


def test_openssh_10_compatible_crypto_and_trusted_networks_spared_from_penalties(lab):
    """crypto=compatible lets a client without post-quantum KEX (paramiko) in; sshward_trusted_networks
    are exempt from PerSourcePenalties, so the admin's scanner does not lock the admin out."""
    import paramiko

    address = lab.address("rollback")
    trusted = str(ipaddress.ip_network(f"{address}/16", strict=False))  # the lab network, controller included

    def paramiko_negotiates() -> bool:
        transport = paramiko.Transport((address, 22))
        try:
            transport.start_client(timeout=15)
            return True
        except paramiko.SSHException:
            return False
        finally:
            transport.close()

    lab.playbook("rollback")
    assert not paramiko_negotiates(), "OpenSSH 10's hardened KEX is post-quantum only"
    lab.playbook("rollback", {"ssh_hardening_crypto": "compatible", "sshward_trusted_networks": [trusted]})
    effective = lab.sshd_T("rollback")
    assert effective["persourcepenaltyexemptlist"] == [trusted]
    assert effective["kexalgorithms"][0].split(",")[-2:] == ["curve25519-sha256", "curve25519-sha256@libssh.org"]
    assert paramiko_negotiates()
    # ssh-audit opens many unauthenticated connections: without the exemption sshd would refuse
    # this address for a while ("Not allowed at this time").
    run(["ssh-audit", "-n", address], check=False)
    assert lab.ssh("rollback", "admin", "true").returncode == 0
