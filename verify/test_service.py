"""SSHW-SVC: the SSH service itself is up and its configuration is valid."""

from __future__ import annotations

from .helpers import as_root, control


@control("SSHW-SVC-001", "sshd is running")
def test_sshd_running(host):
    assert host.service("ssh").is_running, "the ssh service is not running"


@control("SSHW-SVC-002", "sshd starts at boot")
def test_sshd_enabled(host):
    assert host.service("ssh").is_enabled or host.service("ssh.socket").is_enabled, (
        "neither ssh nor ssh.socket is enabled"
    )


@control("SSHW-SVC-003", "the sshd configuration passes sshd -t")
def test_sshd_config_valid(host):
    with as_root(host):
        result = host.run("mkdir -p /run/sshd && sshd -t")
    assert result.rc == 0, f"sshd -t: {result.stderr.strip()}"
