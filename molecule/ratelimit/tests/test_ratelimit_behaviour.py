"""Behaviour of the SSH rate limit, seen from the scenario's client containers.

Runs in molecule's verify stage (testinfra verifier, ``--hosts targets``), for each target:
real TCP connections from the trusted and the outside client to the target's sshd, an open
SSH session through the flood, check mode, removal and bad input through the module itself.

Timing: a dropped SYN is retransmitted and every retransmit refreshes the block (iptables
``recent --update``, nft ``update @blocked``), so a test waits the FULL window with no attempt
before expecting the port to open again. Nothing else is timed.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from typing import Any

import pytest
import testinfra

PROBE = (
    "python3 -c 'import socket,sys\n"
    "for _ in range(int(sys.argv[3])):\n"
    "    try:\n"
    "        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5).close(); print(1)\n"
    "    except OSError:\n"
    "        print(0)\n"
    "' {addr} {port} {count}"
)


@pytest.fixture(scope="module")
def lab(host: Any) -> dict[str, Any]:
    v = host.ansible.get_variables()
    inventory = host.backend.ansible_inventory

    def one(group: str) -> Any:
        return testinfra.get_hosts([group], connection="ansible", ansible_inventory=inventory)[0]

    v6 = [a for a in host.interface("eth0").addresses if a.startswith("fd")]
    return {
        "vars": v,
        "addr4": v["ansible_host"],
        "addr6": v6[0] if v6 else None,
        "trusted": one("clients_trusted"),
        "outside": one("clients_outside"),
        "seconds": int(v["ssh_ratelimit_seconds"]),
        "hitcount": int(v["ssh_ratelimit_hitcount"]),
        "trusted_seconds": int(v["ssh_ratelimit_trusted_seconds"]),
        "trusted_hitcount": int(v["ssh_ratelimit_trusted_hitcount"]),
    }


def probe(client: Any, addr: str, count: int, port: int = 22) -> list[int]:
    out = client.check_output(PROBE.format(addr=addr, port=port, count=count))
    return [int(x) for x in out.split()]


def quiet(lab: dict[str, Any]) -> None:
    """Wait out the longest window with no attempt, so each test starts from clean meters."""
    time.sleep(max(lab["seconds"], lab["trusted_seconds"]) + 1)


def policy_args(v: dict[str, Any], **changes: Any) -> dict[str, Any]:
    args = {
        "backend": v.get("ssh_ratelimit_backend", "auto"),
        "seconds": v["ssh_ratelimit_seconds"],
        "hitcount": v["ssh_ratelimit_hitcount"],
        "trusted_networks": v.get("sshward_trusted_networks", []),
        "trusted_seconds": v["ssh_ratelimit_trusted_seconds"],
        "trusted_hitcount": v["ssh_ratelimit_trusted_hitcount"],
        "allowlist": v.get("ssh_ratelimit_allowlist", []),
    }
    args.update(changes)
    return args


def module(host: Any, args: dict[str, Any], check: bool = False) -> dict[str, Any]:
    return host.ansible("sshward_firewall", json.dumps(args), check=check, become=True)


def ruleset(host: Any) -> str:
    """Every table of both families (and nft's view), counters and comments removed."""
    with host.sudo():
        text = host.check_output(
            "iptables-save; ip6tables-save; if command -v nft >/dev/null; then nft -s list ruleset; fi"
        )
    lines = [re.sub(r"\[\d+:\d+\]", "[0:0]", ln) for ln in text.splitlines() if not ln.startswith("#")]
    return "\n".join(lines)


def sshward_files(host: Any) -> str:
    with host.sudo():
        return host.run(
            "find /etc/sshward /etc/systemd/system -name '*sshward-firewall*' -o -path '/etc/sshward*' "
            "| sort | xargs -r sha256sum 2>/dev/null; systemctl is-enabled sshward-firewall.service"
        ).stdout


# ------------------------------------------------------------------ rate limit from the clients


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_outside_client_is_limited_then_recovers(host: Any, lab: dict[str, Any], family: str) -> None:
    addr = lab["addr4"] if family == "ipv4" else lab["addr6"]
    if addr is None:
        pytest.skip("the scenario network has no IPv6")
    quiet(lab)
    hits = lab["hitcount"]
    assert probe(lab["outside"], addr, hits + 1) == [1] * (hits - 1) + [0, 0]
    time.sleep(lab["seconds"] + 1)  # the whole window, silent
    assert probe(lab["outside"], addr, 1) == [1]


def test_trusted_client_gets_its_larger_allowance(host: Any, lab: dict[str, Any]) -> None:
    quiet(lab)
    hits = lab["trusted_hitcount"]
    assert hits > lab["hitcount"], "the scenario must give the trusted networks a larger hit count"
    assert probe(lab["trusted"], lab["addr4"], hits + 1) == [1] * (hits - 1) + [0, 0]
    time.sleep(lab["trusted_seconds"] + 1)
    assert probe(lab["trusted"], lab["addr4"], 1) == [1]


def test_open_session_survives_the_block(host: Any, lab: dict[str, Any]) -> None:
    client, addr = lab["outside"], lab["addr4"]
    client.check_output("rm -f /tmp/rl_key /tmp/rl_key.pub && ssh-keygen -q -t ed25519 -N '' -f /tmp/rl_key")
    pub = client.check_output("cat /tmp/rl_key.pub").strip()
    with host.sudo():
        host.check_output(f"echo '{pub}' >> /home/admin/.ssh/authorized_keys")
    ssh = (
        "ssh -i /tmp/rl_key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
        "-o UserKnownHostsFile=/tmp/rl_known -o ControlPath=/tmp/rl_cm -o ConnectTimeout=5"
    )
    quiet(lab)
    try:
        client.check_output(f"{ssh} -o ControlMaster=yes -o ControlPersist=yes -fN admin@{addr}")
        dropped = probe(client, addr, lab["hitcount"] + 1)
        assert dropped[-1] == 0, "new connections from the client should be dropped by now"
        assert client.check_output(f"{ssh} admin@{addr} echo alive").strip() == "alive"
    finally:
        client.run(f"{ssh} -O exit admin@{addr}")
        with host.sudo():
            host.run(
                f"grep -vF '{pub.split()[1]}' /home/admin/.ssh/authorized_keys > /tmp/ak; "
                "cat /tmp/ak > /home/admin/.ssh/authorized_keys; rm -f /tmp/ak"
            )
        time.sleep(lab["seconds"] + 1)


# ------------------------------------------------------------------ the module on the target


def test_check_mode_changes_nothing(host: Any, lab: dict[str, Any]) -> None:
    before, files = ruleset(host), sshward_files(host)
    result = module(host, policy_args(lab["vars"], hitcount=lab["hitcount"] + 1), check=True)
    assert result["changed"] and result["scripts"], "check mode should report the scripts it would load"
    assert (ruleset(host), sshward_files(host)) == (before, files)


def test_absent_removes_exactly_what_was_added(host: Any, lab: dict[str, Any]) -> None:
    v = lab["vars"]
    try:
        module(host, {"state": "absent"})
        baseline = ruleset(host)
        assert "DOCKER_OUTPUT" in baseline, "docker's DNS rules should be in the container's nat table"
        module(host, policy_args(v))
        loaded = ruleset(host)
        assert "DOCKER_OUTPUT" in loaded
        module(host, {"state": "absent"})
        assert ruleset(host) == baseline
        assert "sshward" not in sshward_files(host)
    finally:
        module(host, policy_args(v))


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"trusted_networks": ["10.0.0.0/33"]}, "trusted_networks"),
        ({"hitcount": 0}, "hitcount"),
        ({"backend": "pf"}, "backend"),
        ({"ports": [2222]}, "ports"),
    ],
    ids=["invalid-cidr", "hitcount-0", "unknown-backend", "port-sshd-does-not-use"],
)
def test_bad_input_fails_and_loads_nothing(
    host: Any, lab: dict[str, Any], changes: dict[str, Any], argument: str
) -> None:
    before, files = ruleset(host), sshward_files(host)
    # testinfra drops the "failed" key of a failed module's result: a failure is a result
    # without the module's return values, whose msg names the argument.
    result = host.backend.run_ansible(
        "sshward_firewall", json.dumps(policy_args(lab["vars"], **changes)), check=False, become=True
    )
    assert "scripts" not in result
    assert re.match(rf"(value of )?{argument}\b", result.get("msg", "")), result.get("msg")
    assert (ruleset(host), sshward_files(host)) == (before, files)


# ------------------------------------------------------------------ persistence (last: it restarts the target)


def sshward_rules(host: Any) -> list[str]:
    """Only sshward's own rules and chains, in load order, counters removed."""
    return [ln for ln in ruleset(host).splitlines() if "SSHWARD" in ln.upper() or "sshward" in ln]


def test_rules_come_back_after_a_restart(host: Any, lab: dict[str, Any]) -> None:
    before = sshward_rules(host)
    assert before, "the rate limit should be loaded before the restart"
    # A container restart gives it a new network namespace: every rule is gone until
    # sshward-firewall.service loads the saved scripts at boot.
    subprocess.run(["docker", "restart", host.backend.host], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 90
    after: list[str] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # sshd still booting
            after = sshward_rules(host)
            if after:
                break
        time.sleep(2)
    assert after == before
