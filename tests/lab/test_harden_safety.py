"""The lockout guards, drop-in and Match handling, check mode, and the rollback after a failed probe."""

from __future__ import annotations

import pytest

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
