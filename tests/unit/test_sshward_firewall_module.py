"""Unit tests of the sshward_firewall module's pure parts (no host, no Ansible run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import sshward
from sshward import firewall as fw

ROOT = Path(__file__).resolve().parents[2]

# The module imports the core as Ansible ships it: ansible.module_utils.sshward.
sys.modules.setdefault("ansible.module_utils.sshward", sshward)
sys.modules.setdefault("ansible.module_utils.sshward.firewall", fw)
_spec = importlib.util.spec_from_file_location("sshward_firewall_module", ROOT / "library" / "sshward_firewall.py")
assert _spec and _spec.loader
mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mod)

BASE = {
    "mode": "ratelimit",
    "ports": [22],
    "trusted_networks": [],
    "trusted_seconds": 60,
    "trusted_hitcount": 10,
    "seconds": 60,
    "hitcount": 4,
    "allowlist": [],
    "admin_networks": [],
    "allow_loopback": True,
}

SSHD_T_DEFAULT = "port 22\nlistenaddress [::]:22\nlistenaddress 0.0.0.0:22\npasswordauthentication no\n"


@pytest.mark.parametrize(
    ("text", "ports"),
    [
        (SSHD_T_DEFAULT, [22]),
        ("port 22\nport 2222\nlistenaddress 0.0.0.0:22\n", [22, 2222]),
        ("port 22\nlistenaddress 192.0.2.1:2200\nlistenaddress [2001:db8::1]:2201\n", [22, 2200, 2201]),
        ("gatewayports no\nx11displayoffset 10\n", []),
        ("", []),
    ],
)
def test_sshd_ports(text: str, ports: list[int]) -> None:
    assert mod.sshd_ports(text) == ports


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trusted_networks": ["10.0.0.0/33"]}, "trusted_networks: '10.0.0.0/33' is not a valid network"),
        ({"allowlist": ["bastion"]}, "allowlist: 'bastion' is not a valid network"),
        ({"hitcount": 0}, "hitcount: 0 is out of range"),
        ({"trusted_hitcount": 1}, "trusted_hitcount: 1 is out of range"),
        ({"seconds": 0}, "seconds: 0 is out of range"),
        ({"ports": [0]}, "ports: 0 is out of range"),
        ({"ports": list(range(1000, 1016))}, "ports: 16 ports given"),
        ({"admin_networks": ["192.0.2.1"]}, "admin_networks: only used with mode=restrict"),
        ({"mode": "restrict"}, "admin_networks: at least one address is required"),
    ],
)
def test_build_policy_names_the_argument(changes: dict[str, object], message: str) -> None:
    with pytest.raises(fw.FirewallError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        mod.build_policy({**BASE, **changes})


def test_build_policy_ratelimit() -> None:
    policy = mod.build_policy({**BASE, "trusted_networks": ["172.31.241.16/28"], "allowlist": ["172.31.241.1"]})
    assert isinstance(policy, fw.RateLimitPolicy)
    assert (policy.ports, policy.hitcount, policy.trusted_hitcount) == ((22,), 4, 10)
    assert [str(n) for n in policy.trusted_networks] == ["172.31.241.16/28"]


def test_build_policy_restrict_ignores_ratelimit_settings() -> None:
    policy = mod.build_policy({**BASE, "mode": "restrict", "admin_networks": ["203.0.113.7"]})
    assert isinstance(policy, fw.RestrictPolicy)
    assert [str(n) for n in policy.admin_networks] == ["203.0.113.7/32"]


def test_host_bits_warn() -> None:
    policy = mod.build_policy({**BASE, "trusted_networks": ["10.1.2.3/8"]})
    assert policy.warnings == ("trusted_networks: '10.1.2.3/8' has host bits set; using 10.0.0.0/8",)


def test_check_ports_accepts_listening() -> None:
    mod.check_ports((22,), [22, 2222])


def test_check_ports_refuses_and_names_ports() -> None:
    with pytest.raises(fw.FirewallError, match=r"^ports: sshd does not listen on 2200 \(sshd -T lists 22\)"):
        mod.check_ports((22, 2200), [22])


@pytest.mark.parametrize(
    ("address", "cls"),
    [("172.31.241.1", "allowlist"), ("172.31.241.20", "trusted"), ("172.31.241.40", "other"), ("nonsense", None)],
)
def test_limited_class_ratelimit(address: str, cls: str | None) -> None:
    policy = mod.build_policy({**BASE, "trusted_networks": ["172.31.241.16/28"], "allowlist": ["172.31.241.1"]})
    assert mod.limited_class(policy, address) == cls


@pytest.mark.parametrize(("address", "cls"), [("203.0.113.7", "admin"), ("198.51.100.1", "dropped")])
def test_limited_class_restrict(address: str, cls: str) -> None:
    policy = mod.build_policy({**BASE, "mode": "restrict", "admin_networks": ["203.0.113.7"]})
    assert mod.limited_class(policy, address) == cls


@pytest.mark.parametrize(
    ("mode", "backend", "family", "name"),
    [
        ("ratelimit", "iptables", "ipv4", "ratelimit.ipv4.rules"),
        ("ratelimit", "iptables", "ipv6", "ratelimit.ipv6.rules"),
        ("restrict", "nftables", "inet", "restrict.nft"),
    ],
)
def test_saved_name(mode: str, backend: str, family: str, name: str) -> None:
    assert mod.saved_name(mode, backend, family) == name


BINS = {
    "iptables": "/usr/sbin/iptables",
    "ip6tables": "/usr/sbin/ip6tables",
    "iptables-restore": "/usr/sbin/iptables-restore",
    "ip6tables-restore": "/usr/sbin/ip6tables-restore",
    "nft": "/usr/sbin/nft",
}


def unit_for(*entries: tuple[str, str, str]) -> str:
    return mod.render_unit([(m, b, f, f"/etc/sshward/firewall/{mod.saved_name(m, b, f)}", BINS) for m, b, f in entries])


def test_unit_iptables_drops_the_old_jump_before_loading() -> None:
    unit = unit_for(("ratelimit", "iptables", "ipv4"), ("ratelimit", "iptables", "ipv6"))
    lines = unit.splitlines()
    assert lines.index(
        "ExecStartPre=-/usr/sbin/iptables -w 10 -D INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT"
    ) < lines.index(
        "ExecStart=/usr/sbin/iptables-restore --noflush --wait=10 /etc/sshward/firewall/ratelimit.ipv4.rules"
    )


def test_unit_jump_matches_the_core() -> None:
    assert f"-D INPUT {fw.IPT_JUMP_MATCH} -j SSHWARD-RATELIMIT" in unit_for(("ratelimit", "iptables", "ipv4"))


def test_unit_loads_restrict_after_ratelimit() -> None:
    unit = unit_for(("ratelimit", "nftables", "inet"), ("restrict", "nftables", "inet"))
    starts = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert starts == [
        "ExecStart=/usr/sbin/nft -f /etc/sshward/firewall/ratelimit.nft",
        "ExecStart=/usr/sbin/nft -f /etc/sshward/firewall/restrict.nft",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Type=oneshot",
        "DefaultDependencies=no",
        "Before=network-pre.target ssh.service shutdown.target",
        "After=systemd-modules-load.service local-fs.target netfilter-persistent.service nftables.service",
        "WantedBy=sysinit.target",
    ],
)
def test_unit_ordering(line: str) -> None:
    assert line in unit_for(("ratelimit", "iptables", "ipv4")).splitlines()


def test_saved_script_is_the_core_render() -> None:
    policy = mod.build_policy({**BASE, "trusted_networks": ["10.0.0.0/8"]})
    assert fw.plan(policy, "iptables")[0].script == fw.render_iptables(policy, "ipv4")


def test_build_policy_ban_protects_the_admin_and_the_connection() -> None:
    params = dict(
        BASE,
        mode="ban",
        addresses=["172.31.244.13", "172.31.244.12", "172.31.244.1", "10.9.9.9"],
        protect_networks=["10.0.0.0/8"],
        admin_addresses=["172.31.244.12"],
        connecting_address="172.31.244.1",
    )
    policy = mod.build_policy(params)
    assert [str(n) for n in policy.addresses] == ["172.31.244.13/32"]
    assert sorted(policy.skipped) == ["10.9.9.9/32", "172.31.244.1/32", "172.31.244.12/32"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mode": "ratelimit", "addresses": ["192.0.2.1"]}, "^addresses, protect_networks: only used with mode=ban"),
        ({"mode": "restrict", "admin_networks": ["192.0.2.1"], "protect_networks": ["192.0.2.0/24"]}, None),
        ({"mode": "ban", "admin_networks": ["192.0.2.1"]}, "^admin_networks: only used with mode=restrict"),
    ],
)
def test_build_policy_ban_arguments(changes: dict[str, object], message: str | None) -> None:
    if message is None:
        assert mod.build_policy(dict(BASE, **changes)).mode == "restrict"
        return
    with pytest.raises(fw.FirewallError, match=message):
        mod.build_policy(dict(BASE, **changes))


def test_unit_loads_the_ban_chain() -> None:
    bins = {n: f"/usr/sbin/{n}" for n in fw.UNIT_BINARIES}
    unit = fw.render_unit([("ban", "iptables", "ipv4", "/etc/sshward/firewall/ban.ipv4.rules", bins)])
    assert "-D INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-BAN" in unit
    assert fw.saved_name("ban", "nftables", "inet") == "ban.nft"
