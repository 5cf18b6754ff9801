"""SSHW-FW: the SSH rate limit is loaded as the policy says, read from the live ruleset.

The expected policy is the role's variables (``ssh_ratelimit_*`` and ``sshward_trusted_networks``)
as the suite reads them for every family (verify/policy.py): the inventory's when testinfra reaches
the host through Ansible, overlaid by ``--policy FILE``, over the role defaults. Every check reads
``iptables-save`` / ``ip6tables-save`` or ``nft -j list``, never the saved files. With
``ssh_ratelimit_enabled: false`` the controls are skipped (the rate limit does not apply), never passed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cache
from typing import Any

import pytest

from .helpers import as_root
from .policy import ratelimit_policy

FAMILIES = ["ipv4", "ipv6"]
CLASSES = ["trusted", "other"]
IPT_CHAINS = {"entry": "SSHWARD-RATELIMIT", "trusted": "SSHWARD-RL-TRUSTED", "other": "SSHWARD-RL-OTHER"}
JUMP = "-p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT"
NFT_TABLE = "sshward"


def _flag(value: Any) -> bool:
    """A boolean variable as Ansible reads it (INI inventories and -e give strings)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


class Expected:
    """The policy the host should enforce, and its live rate-limit state."""

    def __init__(self, host: Any, variables: dict[str, Any]) -> None:
        v = ratelimit_policy(variables)
        self.host = host
        self.enabled = _flag(v["enabled"])
        if not self.enabled:
            return  # the controls skip: nothing to ask the host
        self.persistent = _flag(v["persistent"])
        self.backend_setting = v["backend"]
        self.seconds = {"trusted": int(v["trusted_seconds"]), "other": int(v["seconds"])}
        self.hitcount = {"trusted": int(v["trusted_hitcount"]), "other": int(v["hitcount"])}
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in v["trusted_networks"] or []]
        allow = list(v["allowlist"] or [])
        if _flag(v["allow_connecting_address"]):
            # The role allowlists the address it connected from and records it on the host.
            recorded = host.file("/etc/sshward/firewall/ratelimit.admin-addresses")
            allow += recorded.content_string.split() if recorded.exists else []
        self.allowlist = sorted({ipaddress.ip_network(n, strict=False) for n in allow}, key=str)
        ports = v["ports"] or []
        self.ports = sorted(int(p) for p in ports) if ports else self._sshd_ports(host)

    @staticmethod
    def _sshd_ports(host: Any) -> list[int]:
        with as_root(host):
            out = host.check_output("mkdir -p /run/sshd && sshd -T")
        ports = {int(line.split()[1]) for line in out.splitlines() if re.fullmatch(r"port \d+", line.strip())}
        return sorted(ports)

    def nets(self, which: str, family: str) -> list[str]:
        version = 4 if family == "ipv4" else 6
        return [str(n) for n in getattr(self, which) if n.version == version]


@cache
def _save(host: Any, family: str) -> str:
    tool = "iptables-save" if family == "ipv4" else "ip6tables-save"
    with as_root(host):
        return host.check_output(tool)


def _rules(host: Any, family: str, chain: str) -> list[str]:
    """Rules of ``chain`` in the filter table, as ``iptables-save`` prints them (without ``-A CHAIN``)."""
    out, table = [], None
    for line in _save(host, family).splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif table == "filter" and line.startswith(f"-A {chain} "):
            out.append(line[len(f"-A {chain} ") :])
    return out


def _chains(host: Any, family: str) -> set[str]:
    out, table = set(), None
    for line in _save(host, family).splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif table == "filter" and line.startswith(":"):
            out.add(line[1:].split()[0])
    return out


@cache
def _nft(host: Any) -> dict[str, Any] | None:
    with as_root(host):
        result = host.run(f"nft -j list table inet {NFT_TABLE}")
    return json.loads(result.stdout) if result.rc == 0 else None


@pytest.fixture(scope="module")
def expected(host: Any, variables: dict[str, Any]) -> Expected:
    exp = Expected(host, variables)
    if not exp.enabled:
        pytest.skip("rate limiting is disabled in the policy (ssh_ratelimit_enabled: false)")
    return exp


@pytest.fixture(scope="module")
def backend(host: Any, expected: Expected) -> str:
    """The backend the rules are loaded with (the setting, or for auto the one holding them)."""
    if expected.backend_setting in ("iptables", "nftables"):
        return str(expected.backend_setting)
    if host.exists("nft") and _nft(host) is not None:
        return "nftables"
    return "iptables"


def _need(backend: str, wanted: str) -> None:
    if backend != wanted:
        pytest.skip(f"the rate limit uses {backend}, this control checks {wanted}")


def _nft_rules(host: Any, chain: str) -> list[dict[str, Any]]:
    data = _nft(host) or {"nftables": []}
    return [o["rule"] for o in data["nftables"] if "rule" in o and o["rule"]["chain"] == chain]


def _nft_set(host: Any, name: str) -> dict[str, Any] | None:
    data = _nft(host) or {"nftables": []}
    sets = [o["set"] for o in data["nftables"] if "set" in o and o["set"]["name"] == name]
    return sets[0] if sets else None


def _nft_elements(host: Any, name: str) -> list[str]:
    s = _nft_set(host, name) or {}
    out = []
    for e in s.get("elem", []):
        if isinstance(e, dict) and "prefix" in e:
            out.append(f"{e['prefix']['addr']}/{e['prefix']['len']}")
        else:
            out.append(str(ipaddress.ip_network(e)))
    return sorted(out)


# ------------------------------------------------------------------ iptables


@pytest.mark.control("SSHW-FW-001", "sshward's rate-limit chains exist (iptables)")
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("chain", sorted(IPT_CHAINS.values()))
def test_ipt_chain_present(host: Any, expected: Expected, backend: str, family: str, chain: str) -> None:
    _need(backend, "iptables")
    assert chain in _chains(host, family)


@pytest.mark.control("SSHW-FW-002", "INPUT jumps to the rate limit exactly once, for new TCP connections (iptables)")
@pytest.mark.parametrize("family", FAMILIES)
def test_ipt_jump_once(host: Any, expected: Expected, backend: str, family: str) -> None:
    _need(backend, "iptables")
    jumps = [r for r in _rules(host, family, "INPUT") if r.endswith("-j SSHWARD-RATELIMIT")]
    assert jumps == [JUMP]


@pytest.mark.control("SSHW-FW-003", "the rate limit sees only the SSH ports (iptables)")
@pytest.mark.parametrize("family", FAMILIES)
def test_ipt_ports(host: Any, expected: Expected, backend: str, family: str) -> None:
    _need(backend, "iptables")
    first = _rules(host, family, IPT_CHAINS["entry"])[:1]
    assert first == [f"-p tcp -m multiport ! --dports {','.join(str(p) for p in expected.ports)} -j RETURN"]


@pytest.mark.control("SSHW-FW-004", "allowlisted sources skip the rate limit (iptables)")
@pytest.mark.parametrize("family", FAMILIES)
def test_ipt_allowlist(host: Any, expected: Expected, backend: str, family: str) -> None:
    _need(backend, "iptables")
    live = [r.split()[1] for r in _rules(host, family, IPT_CHAINS["entry"]) if r.endswith(" -j RETURN") and "-s" in r]
    assert live == expected.nets("allowlist", family)


@pytest.mark.control("SSHW-FW-005", "trusted networks go to their own limit (iptables)")
@pytest.mark.parametrize("family", FAMILIES)
def test_ipt_trusted_networks(host: Any, expected: Expected, backend: str, family: str) -> None:
    _need(backend, "iptables")
    live = [r.split()[1] for r in _rules(host, family, IPT_CHAINS["entry"]) if r.endswith("-g SSHWARD-RL-TRUSTED")]
    assert live == expected.nets("trusted", family)


@pytest.mark.control("SSHW-FW-006", "everyone else goes to the general limit (iptables)")
@pytest.mark.parametrize("family", FAMILIES)
def test_ipt_others_limited(host: Any, expected: Expected, backend: str, family: str) -> None:
    _need(backend, "iptables")
    assert _rules(host, family, IPT_CHAINS["entry"])[-1:] == ["-g SSHWARD-RL-OTHER"]


@pytest.mark.control("SSHW-FW-007", "each class drops the hitcount-th new connection in its window (iptables)")
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("cls", CLASSES)
def test_ipt_window(host: Any, expected: Expected, backend: str, family: str, cls: str) -> None:
    _need(backend, "iptables")
    updates = [r for r in _rules(host, family, IPT_CHAINS[cls]) if "--update" in r]
    found = [(m.group(1), m.group(2)) for r in updates if (m := re.search(r"--seconds (\d+) --hitcount (\d+)", r))]
    assert found == [(str(expected.seconds[cls]), str(expected.hitcount[cls]))]


@pytest.mark.control("SSHW-FW-008", "each class records every new connection before testing it (iptables)")
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("cls", CLASSES)
def test_ipt_recent_set_first(host: Any, expected: Expected, backend: str, family: str, cls: str) -> None:
    _need(backend, "iptables")
    rules = _rules(host, family, IPT_CHAINS[cls])
    assert [r.split()[2:4] for r in rules] == [["--set", "--name"], ["--update", "--seconds"]]


# ------------------------------------------------------------------ nftables


@pytest.mark.control("SSHW-FW-011", "table inet sshward exists (nftables)")
def test_nft_table_present(host: Any, expected: Expected, backend: str) -> None:
    _need(backend, "nftables")
    assert _nft(host) is not None


@pytest.mark.control("SSHW-FW-012", "the input hook sends new SSH connections to the rate limit once (nftables)")
def test_nft_hook(host: Any, expected: Expected, backend: str) -> None:
    _need(backend, "nftables")
    data = _nft(host) or {"nftables": []}
    hooked = [o["chain"]["name"] for o in data["nftables"] if "chain" in o and o["chain"].get("hook") == "input"]
    jumps = [r for r in _nft_rules(host, "input") if {"jump": {"target": "ssh_new"}} in r["expr"]]
    assert (hooked, len(jumps)) == (["input"], 1)


@pytest.mark.control("SSHW-FW-013", "the rate limit sees only the SSH ports (nftables)")
def test_nft_ports(host: Any, expected: Expected, backend: str) -> None:
    _need(backend, "nftables")
    ports: list[int] = []
    for rule in _nft_rules(host, "input"):
        for e in rule["expr"]:
            m = e.get("match", {})
            if m.get("left", {}).get("payload", {}).get("field") == "dport":
                right = m["right"]
                ports += right["set"] if isinstance(right, dict) else [right]
    assert sorted(ports) == expected.ports


@pytest.mark.control("SSHW-FW-014", "allowlisted sources skip the rate limit (nftables)")
@pytest.mark.parametrize("family", FAMILIES)
def test_nft_allowlist(host: Any, expected: Expected, backend: str, family: str) -> None:
    _need(backend, "nftables")
    name = f"allow{'4' if family == 'ipv4' else '6'}"
    assert _nft_elements(host, name) == sorted(expected.nets("allowlist", family))


@pytest.mark.control("SSHW-FW-015", "trusted networks go to their own limit (nftables)")
@pytest.mark.parametrize("family", FAMILIES)
def test_nft_trusted_networks(host: Any, expected: Expected, backend: str, family: str) -> None:
    _need(backend, "nftables")
    name = f"trusted{'4' if family == 'ipv4' else '6'}"
    assert _nft_elements(host, name) == sorted(expected.nets("trusted", family))


@pytest.mark.control("SSHW-FW-017", "each class blocks a source for its window (nftables)")
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("cls", CLASSES)
def test_nft_window(host: Any, expected: Expected, backend: str, family: str, cls: str) -> None:
    _need(backend, "nftables")
    if cls == "trusted" and not expected.trusted:
        pytest.skip("no trusted networks in the policy")
    s = _nft_set(host, f"blocked_{cls}{'4' if family == 'ipv4' else '6'}") or {}
    assert s.get("timeout") == expected.seconds[cls]


@pytest.mark.control("SSHW-FW-018", "each class allows hitcount - 1 new connections per window (nftables)")
@pytest.mark.parametrize("cls", CLASSES)
def test_nft_burst(host: Any, expected: Expected, backend: str, cls: str) -> None:
    _need(backend, "nftables")
    if cls == "trusted" and not expected.trusted:
        pytest.skip("no trusted networks in the policy")
    bursts = []
    for rule in _nft_rules(host, cls):
        for e in rule["expr"]:
            for stmt in e.get("set", {}).get("stmt", []):
                if "limit" in stmt:
                    bursts.append(stmt["limit"].get("burst"))
    assert bursts == [expected.hitcount[cls] - 1] * 2


# ------------------------------------------------------------------ both


@pytest.mark.control("SSHW-FW-020", "the live rules are exactly the ones the policy renders")
@pytest.mark.parametrize("family", FAMILIES)
def test_live_matches_policy(host: Any, expected: Expected, backend: str, family: str) -> None:
    from sshward import firewall

    policy = firewall.RateLimitPolicy(
        ports=expected.ports,
        trusted_networks=[str(n) for n in expected.trusted],
        trusted_seconds=expected.seconds["trusted"],
        trusted_hitcount=expected.hitcount["trusted"],
        seconds=expected.seconds["other"],
        hitcount=expected.hitcount["other"],
        allowlist=[str(n) for n in expected.allowlist],
    )
    if backend == "nftables":
        if family == "ipv6":
            pytest.skip("nftables: one inet table serves both families (checked with ipv4)")
        with as_root(host):
            version = host.check_output("nft -v")
        argv = firewall.state_commands("nftables", "ratelimit", version)["inet"]
        with as_root(host):
            listing = host.run(" ".join(argv)).stdout
        plans = firewall.plan(policy, "nftables", nft_json=listing)
    else:
        key = "iptables_save" if family == "ipv4" else "ip6tables_save"
        plans = [p for p in firewall.plan(policy, "iptables", **{key: _save(host, family)}) if p.family == family]
    assert [p.before for p in plans] == [p.after for p in plans]


@pytest.mark.control("SSHW-FW-021", "the rate limit is loaded again at boot (sshward-firewall.service enabled)")
def test_boot_unit_enabled(host: Any, expected: Expected, backend: str) -> None:
    if not expected.persistent:
        pytest.skip("persistence is off in the policy (ssh_ratelimit_persistent: false)")
    assert host.service("sshward-firewall").is_enabled
