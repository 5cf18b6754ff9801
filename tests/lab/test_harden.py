"""harden.yml against real sshd on bullseye, bookworm and trixie, checked with real ssh clients.

Each behaviour is first shown on the unhardened host (so the check can fail), then after hardening.
"""

from __future__ import annotations

import pytest

from sshward.openssh import ssh_audit_policy, version_from_package
from tests.conftest import run
from tests.lab.harden_lab import LabHandle

SUITES = ["bullseye", "bookworm", "trixie"]
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """One target per release: sanity-checked before hardening, then hardened once."""
    lab = LabHandle(tmp_path_factory.mktemp("harden-lab"), "pytest-harden")
    try:
        lab.lab("up", *SUITES)
        before = {}
        for suite in SUITES:
            lab.set_password(suite, "carol", PASSWORD)
            lab.authorize_lab_key(suite, "root")
            before[suite] = {
                "password": lab.ssh(suite, "carol", password=PASSWORD).returncode,
                "root": lab.ssh(suite, "root").returncode,
            }
        for suite in SUITES:
            lab.playbook(suite)
        yield lab, before
    finally:
        lab.lab("down")


@pytest.mark.parametrize("suite", SUITES)
def test_password_login_worked_before_and_fails_after(hardened, suite):
    lab, before = hardened
    assert before[suite]["password"] == 0, "the unhardened host should accept carol's password"
    assert lab.ssh(suite, "carol", password=PASSWORD).returncode == 255


@pytest.mark.parametrize("suite", SUITES)
def test_root_key_login_worked_before_and_fails_after(hardened, suite):
    lab, before = hardened
    assert before[suite]["root"] == 0, "Debian's default prohibit-password accepts root's key"
    assert lab.ssh(suite, "root").returncode == 255


@pytest.mark.parametrize("suite", SUITES)
def test_allowed_user_key_login_succeeds(hardened, suite):
    lab, _ = hardened
    result = lab.ssh(suite, "admin", "id", "-un")
    assert (result.returncode, result.stdout.strip()) == (0, "admin")


@pytest.mark.parametrize("suite", SUITES)
def test_second_run_changes_nothing(hardened, suite):
    lab, _ = hardened
    assert "changed=0" in lab.playbook(suite).stdout


@pytest.mark.parametrize("suite", SUITES)
def test_verify_suite_passes_on_hardened_host(hardened, suite):
    lab, _ = hardened
    result = run(
        ["pytest", "-q", "-p", "no:cacheprovider", "verify", "--controls=SSHW-SSHD,SSHW-SVC",
         f"--hosts=ansible://{suite}", "--connection=ansible", f"--ansible-inventory={lab.inventory}"],
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]


# Last: ssh-audit's many unauthenticated connections trip OpenSSH 9.8+'s PerSourcePenalties,
# which then refuses the controller for a while ("Connection reset by peer" at key exchange).
@pytest.mark.parametrize("suite", SUITES)
def test_ssh_audit_policy_for_the_release_passes(hardened, suite):
    lab, _ = hardened
    version = version_from_package(lab.exec(suite, "dpkg-query", "-W", "-f=${Version}", "openssh-server").stdout)
    policy = ssh_audit_policy(version)
    assert policy, f"no ssh-audit policy known for {version}"
    result = run(["ssh-audit", "-n", "-P", policy, lab.address(suite)], check=False)
    assert result.returncode == 0, result.stdout[-3000:]
