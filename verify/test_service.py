"""SSHW-SVC: the SSH service itself is up and its configuration is valid."""

from __future__ import annotations

import pytest


@pytest.mark.control("SSHW-SVC-001", "sshd is running")
def test_sshd_running(host):
    assert host.service("ssh").is_running


@pytest.mark.control("SSHW-SVC-002", "sshd starts at boot")
def test_sshd_enabled(host):
    assert host.service("ssh").is_enabled or host.service("ssh.socket").is_enabled


@pytest.mark.control("SSHW-SVC-003", "the sshd configuration passes sshd -t")
def test_sshd_config_valid(host):
    with host.sudo():
        result = host.run("mkdir -p /run/sshd && sshd -t")
    assert result.rc == 0, result.stderr
