"""The policy the verify suite checks hosts against: the shared loader (inventory and --policy) feeds
every family, the rate-limit controls included."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from verify.policy import host_variables, ratelimit_policy, resolve
from verify.test_firewall import Expected

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent.parent


class Backend:
    NAME = "docker"

    def get_hostname(self) -> str:
        return "web1-container"


class File:
    def __init__(self, content: str | None) -> None:
        self.exists = content is not None
        self.content_string = content or ""


class Host:
    """What Expected reads from a host: its backend and the recorded admin addresses."""

    backend = Backend()

    def __init__(self, admin_addresses: str | None = None) -> None:
        self.admin_addresses = admin_addresses

    def file(self, path: str) -> File:
        assert path == "/etc/sshward/firewall/ratelimit.admin-addresses", path
        return File(self.admin_addresses)


def test_role_defaults_and_references_resolve() -> None:
    policy = ratelimit_policy({"sshward_trusted_networks": ["10.0.0.0/8"]})
    assert (policy["seconds"], policy["hitcount"], policy["trusted_networks"]) == (60, 4, ["10.0.0.0/8"])
    assert ratelimit_policy({})["trusted_networks"] == [], "sshward_common's default"
    assert resolve("{{ a }}", {"a": "{{ b }}", "b": 7}) == 7
    assert resolve("{{ a | default([]) }}", {"a": 1}) == "{{ a | default([]) }}", "only bare references"


def test_policy_file_reaches_the_rate_limit_controls(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yml"
    policy_file.write_text(
        yaml.safe_dump(
            {
                "sshward_trusted_networks": ["198.51.100.0/24", "2001:db8::/32"],
                "ssh_ratelimit_seconds": 30,
                "ssh_ratelimit_hitcount": 6,
                "ssh_ratelimit_ports": [2222, 22],
                "ssh_ratelimit_allowlist": ["203.0.113.7"],
                "sshward_hosts": {"web1-container": {"ssh_ratelimit_trusted_hitcount": 20}},
            }
        )
    )
    expected = Expected(Host("192.0.2.5\n"), host_variables(Host(), str(policy_file)))
    assert expected.seconds == {"trusted": 60, "other": 30}
    assert expected.hitcount == {"trusted": 20, "other": 6}, "the per-host overlay wins"
    assert expected.ports == [22, 2222]
    assert expected.nets("trusted", "ipv4") == ["198.51.100.0/24"]
    assert expected.nets("trusted", "ipv6") == ["2001:db8::/32"]
    assert expected.nets("allowlist", "ipv4") == ["192.0.2.5/32", "203.0.113.7/32"]


@pytest.mark.parametrize(("value", "enabled"), [(False, False), ("false", False), ("True", True), (True, True)])
def test_enabled_flag_as_inventories_spell_it(value: object, enabled: bool) -> None:
    variables = {"ssh_ratelimit_enabled": value, "ssh_ratelimit_ports": [22]}
    assert Expected(Host(), variables).enabled is enabled


def test_firewall_controls_honour_policy_option(pytester: pytest.Pytester) -> None:
    """The whole file, run as users run it: a policy turning the rate limit off skips every
    control with that reason. (The host does not exist: nothing may be asked of it first.)"""
    policy = pytester.path / "policy.yml"
    policy.write_text("ssh_ratelimit_enabled: false\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", str(ROOT / "verify" / "test_firewall.py"), f"--rootdir={ROOT}",
        "--hosts=docker://sshward-unit-no-such-container", f"--policy={policy}", "-rs",
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert (outcomes.get("skipped", 0) > 20, outcomes.get("passed", 0), outcomes.get("failed", 0)) == (True, 0, 0)
    result.stdout.fnmatch_lines(["*rate limiting is disabled in the policy (ssh_ratelimit_enabled: false)*"])
