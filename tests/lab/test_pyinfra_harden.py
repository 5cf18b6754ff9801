"""The pyinfra harden deploy against lab containers, compared with harden.yml.

bullseye and bookworm are reached over real SSH (pyinfra's SSH connector); trixie through pyinfra's
@docker connector, because a hardened OpenSSH 10 offers only post-quantum key exchanges, none of which
paramiko (pyinfra's SSH client) speaks: over SSH the deploy's probe fails and it rolls back (tested).
A second bookworm is hardened by harden.yml for the parity checks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run
from tests.lab.harden_lab import LabHandle

TARGETS = {
    "py-bullseye": "bullseye",
    "py-bookworm": "bookworm",
    "py-trixie": "trixie",
    "ans-bookworm": "bookworm",
    "py-trixie-ssh": "trixie",
}
DOCKER = {"py-trixie"}


def pyinfra_inventory(lab: LabHandle, name: str, path: Path, **data: object) -> Path:
    """A one-host pyinfra inventory: the lab's SSH settings, or the @docker connector."""
    if name in DOCKER:
        path.write_text(f"hosts = [({'@docker/' + lab.container(name)!r}, {data!r})]\n")
        return path
    host_data = {
        "_sudo": True,
        "ssh_user": "admin",
        "ssh_key": str(lab.dir / "id_ed25519"),
        "ssh_known_hosts_file": str(lab.dir / "known_hosts"),
        "ssh_strict_host_key_checking": "yes",
        **data,
    }
    path.write_text(f"hosts = [({lab.address(name)!r}, {host_data!r})]\n")
    return path


def pyinfra(inventory: Path, *args: str, policy: Path | None = None, check: bool = True) -> str:
    """pyinfra's whole output (it logs to stderr)."""
    env = {"SSHWARD_POLICY": str(policy)} if policy else {}
    proc = run(["pyinfra", *args, str(inventory), "deploys/harden.py"], env=env, cwd=ROOT, check=check, timeout=900)
    return proc.stdout + proc.stderr


def changed_ops(output: str) -> int:
    """The Success column of pyinfra's 'Grand total' line (operations that changed something)."""
    match = re.search(r"Grand total\s+\d+\s+(\S+)\s+(\S+)", output)
    assert match, output[-2000:]
    assert match.group(2) == "-", f"errors: {output[-3000:]}"
    return 0 if match.group(1) == "-" else int(match.group(1))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    handle = LabHandle(tmp_path_factory.mktemp("pyinfra-lab"), "pyinfrahelper-pytest")
    handle.lab("up", *(f"{n}={s}" for n, s in TARGETS.items()))
    # The controller's address as the targets see it: @docker runs have no SSH_CONNECTION to allowlist,
    # so the policy names it (for verify's own SSH connections, as the Ansible play's is).
    gateway = handle.ssh("py-trixie", "admin", "printenv", "SSH_CONNECTION").stdout.split()[0]
    handle.policy_docker = handle.dir / "policy-docker.yml"
    handle.policy_docker.write_text(yaml.safe_dump({"ssh_ratelimit_allowlist": [gateway]}))
    handle.inv = {n: pyinfra_inventory(handle, n, handle.dir / f"pyinfra-{n}.py") for n in TARGETS}
    handle.first = {}
    handle.dry_digest = {}
    for name in ("py-bullseye", "py-bookworm", "py-trixie"):
        before = handle.etc_ssh_digest(name)
        dry = pyinfra(handle.inv[name], "--dry", policy=handle.policy_docker if name in DOCKER else None)
        rules = handle.exec(name, "iptables-save").stdout
        handle.dry_digest[name] = (before, handle.etc_ssh_digest(name), dry, rules)
        handle.first[name] = pyinfra(handle.inv[name], "-y", policy=handle.policy_docker if name in DOCKER else None)
    handle.playbook("ans-bookworm")
    yield handle
    handle.lab("down")


@pytest.mark.parametrize("name", ["py-bullseye", "py-bookworm", "py-trixie"])
def test_dry_run_changes_nothing(lab, name):
    before, after, output, rules = lab.dry_digest[name]
    assert "Detected changes" in output and "Set the sshd policy" in output and "Install fail2ban" in output
    assert before == after
    assert "SSHWARD" not in rules


@pytest.mark.parametrize("name", ["py-bullseye", "py-bookworm", "py-trixie"])
def test_first_run_changes_second_run_does_not(lab, name):
    assert changed_ops(lab.first[name]) > 0
    again = pyinfra(lab.inv[name], "-y", policy=lab.policy_docker if name in DOCKER else None)
    assert changed_ops(again) == 0


@pytest.mark.parametrize("name", ["py-bullseye", "py-bookworm", "py-trixie"])
def test_verify_suite_passes(lab, name):
    inventory = lab.dir / f"verify-{name}.ini"
    text = lab.inventory.read_text()
    if name in DOCKER:
        allow = yaml.safe_load(lab.policy_docker.read_text())["ssh_ratelimit_allowlist"]
        listed = "'" + json.dumps(allow) + "'"  # the INI parser strips the inner quotes otherwise
        text = re.sub(rf"^({re.escape(name)} .*)$", rf"\1 ssh_ratelimit_allowlist={listed}", text, flags=re.M)
    inventory.write_text(text)
    result = run(
        ["pytest", "-q", "-p", "no:cacheprovider", "verify", f"--hosts=ansible://{name}", "--connection=ansible",
         f"--ansible-inventory={inventory}"],
        check=False, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]


def test_parity_sshd_T(lab):
    context = "user=admin,host=192.0.2.1,addr=192.0.2.1"
    ansible = lab.exec("ans-bookworm", "sshd", "-T", "-C", context).stdout
    pyinfra_side = lab.exec("py-bookworm", "sshd", "-T", "-C", context).stdout
    assert ansible.splitlines() == pyinfra_side.splitlines()


@pytest.mark.parametrize("tool", ["iptables-save", "ip6tables-save"])
def test_parity_firewall_rules(lab, tool):
    def rules(name: str) -> list[str]:
        out = lab.exec(name, tool).stdout
        lines = [re.sub(r"\[\d+:\d+\]", "[0:0]", line) for line in out.splitlines() if not line.startswith("#")]
        return [line for line in lines if "SSHWARD" in line]

    assert rules("py-bookworm") and rules("ans-bookworm") == rules("py-bookworm")


def test_parity_saved_rules_and_boot_unit(lab):
    cmd = ["sh", "-c", "cat /etc/sshward/firewall/* /etc/systemd/system/sshward-firewall.service"]
    assert lab.exec("ans-bookworm", *cmd).stdout == lab.exec("py-bookworm", *cmd).stdout


def test_parity_fail2ban(lab):
    """Both front ends write the core's fail2ban files, and the running jails agree."""
    files = ["sh", "-c", "cd /etc/fail2ban && cat jail.d/sshward.local filter.d/sshward-*.conf action.d/sshward-*.conf"]
    ansible = lab.exec("ans-bookworm", *files).stdout
    assert "[sshward-sshd-root]" in ansible
    assert ansible == lab.exec("py-bookworm", *files).stdout

    def items(name: str, *query: str) -> list[str]:
        # fail2ban prints lists as a tree in no fixed order ("|- a", "`- b"): compare the items.
        return sorted(
            line.lstrip("|`- ").strip() for line in lab.exec(name, "fail2ban-client", *query).stdout.splitlines()
        )

    for query in (["status"], ["get", "sshd", "actions"], ["get", "sshward-sshd-invalid", "ignoreip"]):
        assert items("ans-bookworm", *query) == items("py-bookworm", *query), query


def test_guards_refuse_with_the_ansible_message(lab):
    policy = lab.dir / "lockout.yml"
    policy.write_text(yaml.safe_dump({"ssh_hardening_allow_users": ["nobody-here"]}))
    digest = lab.etc_ssh_digest("py-bookworm")
    pyinfra_out = pyinfra(lab.inv["py-bookworm"], "-y", policy=policy, check=False)
    ansible_out = lab.playbook("ans-bookworm", {"ssh_hardening_allow_users": ["nobody-here"]}, check=False)
    pattern = re.compile(r"refusing to change sshd: [^\"].*?Nothing was changed\.")  # not the traceback's source
    mine = pattern.search(pyinfra_out)
    theirs = pattern.search(ansible_out.stdout)
    assert mine and theirs, (pyinfra_out[-2000:], ansible_out.stdout[-2000:])
    assert mine.group(0) == theirs.group(0)
    assert "admin is not listed in AllowUsers (nobody-here)" in mine.group(0)
    assert lab.etc_ssh_digest("py-bookworm") == digest


def test_trixie_over_ssh_rolls_back_when_pyinfra_could_not_reconnect(lab, tmp_path):
    """paramiko has no ML-KEM/sntrup KEX: the probe fails, the armed revert restores the config."""
    inventory = pyinfra_inventory(lab, "py-trixie-ssh", tmp_path / "inv.py")
    before = lab.exec("py-trixie-ssh", "sshd", "-T").stdout
    result = pyinfra(inventory, "-y", check=False)
    assert "The change was rolled back" in result
    assert "paramiko" in result
    assert lab.exec("py-trixie-ssh", "sshd", "-T").stdout == before
    assert lab.ssh("py-trixie-ssh", "admin", "true").returncode == 0
