"""Unit tests of sshward.firewall's ban mode: protection, rendering, reading the bans back, merging."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sshward import firewall as fw

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "firewall"
IPT_VARIANTS = sorted(p.name for p in (FIXTURES / "iptables").iterdir())
BAN = fw.BanPolicy(addresses=["198.51.100.23", "2001:db8:bad::/64", "192.0.2.0/28"], protect_networks=["203.0.113.7"])


def baseline(variant: str, family: str) -> str:
    return (FIXTURES / "iptables" / variant / f"{family}-baseline.save").read_text()


def loaded(variant: str, family: str, policy: fw.BanPolicy = BAN) -> str:
    """The baseline as iptables-save prints it once ``policy`` is loaded (chain declared, jump first)."""
    text = baseline(variant, family)
    rules = fw.plan_iptables(policy, family, "").script.splitlines()
    chain = [ln for ln in rules if ln.startswith("-A SSHWARD-BAN")]
    jump = [ln.replace("-I INPUT 1", "-A INPUT") for ln in rules if ln.startswith("-I INPUT")]
    head, sep, tail = text.partition("*filter\n")
    decls, body = [], []
    for line in tail.split("COMMIT", 1)[0].splitlines():
        (decls if line.startswith(":") else body).append(line)
    filt = "\n".join([*decls, ":SSHWARD-BAN - [0:0]", *jump, *body, *chain, ""])
    return head + sep + filt + "COMMIT" + tail.split("COMMIT", 1)[1]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("203.0.113.7", "protected (admin or trusted) network 203.0.113.7/32"),
        ("203.0.113.0/24", "protected (admin or trusted) network 203.0.113.7/32"),
        ("127.0.0.1", "it is loopback"),
        ("::1", "it is loopback"),
    ],
)
def test_protected_and_loopback_are_never_banned(address, why):
    policy = fw.BanPolicy(addresses=[address, "198.51.100.23"], protect_networks=["203.0.113.7"])
    assert [str(n) for n in policy.addresses] == ["198.51.100.23/32"]
    assert any(why in w for w in policy.warnings)
    assert len(policy.skipped) == 1


def test_bad_address_names_the_argument():
    with pytest.raises(fw.FirewallError, match="^addresses: 'not-an-ip' is not a valid network"):
        fw.BanPolicy(addresses=["not-an-ip"])


@pytest.mark.parametrize(
    ("family", "present", "absent"),
    [("ipv4", "198.51.100.23/32", "2001:db8"), ("ipv6", "2001:db8:bad::/64", "198.51.100")],
)
def test_iptables_ban_splits_families(family, present, absent):
    script = fw.plan_iptables(BAN, family, "").script
    assert f"-A SSHWARD-BAN -s {present} -j DROP" in script
    assert absent not in script


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_iptables_ban_only_new_ssh_connections(family):
    script = fw.plan_iptables(BAN, family, "").script
    assert "-I INPUT 1 -p tcp -m conntrack --ctstate NEW -j SSHWARD-BAN" in script
    assert "-A SSHWARD-BAN -p tcp -m multiport ! --dports 22 -j RETURN" in script
    assert not re.search(r"ACCEPT|nat|DOCKER", script)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_loaded_bans_are_unchanged(variant, family):
    assert fw.plan_iptables(BAN, family, loaded(variant, family)).changed is False


@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_bans_read_back_from_iptables(variant):
    read = fw.banned_from_state(
        "iptables", iptables_save=loaded(variant, "ipv4"), ip6tables_save=loaded(variant, "ipv6")
    )
    assert sorted(read) == sorted(str(n) for n in BAN.addresses)


@pytest.mark.parametrize("variant", IPT_VARIANTS)
def test_ban_removal_is_exact(variant):
    plan = fw.plan_iptables_removal("ban", "ipv4", loaded(variant, "ipv4"))
    assert plan.script.splitlines() == [
        "*filter",
        "-D INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-BAN",
        "-F SSHWARD-BAN",
        "-X SSHWARD-BAN",
        "COMMIT",
    ]


def nft_listing(policy: fw.BanPolicy) -> str:
    """``nft list table inet sshward_ban`` as nft prints the table it loaded (the render without the transaction)."""
    script = fw.render_nftables(policy)
    return script.split("\n", 2)[2]


def test_nft_ban_table():
    script = fw.render_nftables(BAN)
    assert script.startswith("add table inet sshward_ban\ndelete table inet sshward_ban\ntable inet sshward_ban {")
    for rule in ("ip saddr @banned4 drop", "ip6 saddr @banned6 drop", "tcp dport 22 ct state new jump ssh_new"):
        assert rule in script
    assert "elements = { 192.0.2.0/28, 198.51.100.23 }" in script


def test_nft_loaded_bans_are_unchanged_and_read_back():
    listing = nft_listing(BAN)
    assert fw.plan_nftables(BAN, listing).changed is False
    assert sorted(fw.banned_from_state("nftables", nft_json=listing)) == sorted(str(n) for n in BAN.addresses)


def test_nft_ban_coexists_with_restrict_tables():
    assert fw.plan_nftables_removal("ban", nft_listing(BAN)).script == (
        "add table inet sshward_ban\ndelete table inet sshward_ban\n"
    )
    assert fw.NFT_TABLES["ban"] not in fw.NFT_TABLES["restrict"]


def test_merge_adds_to_the_bans_in_place():
    merged = fw.merge_bans(fw.BanPolicy(addresses=["198.51.100.99"]), ["198.51.100.23/32", "2001:db8::5/128"])
    assert [str(n) for n in merged.addresses] == ["198.51.100.23/32", "198.51.100.99/32", "2001:db8::5/128"]


def test_lift_removes_exactly_the_given_ones():
    current = ["198.51.100.23/32", "198.51.100.24/32"]
    merged = fw.merge_bans(fw.BanPolicy(addresses=["198.51.100.23"]), current, remove=True)
    assert [str(n) for n in merged.addresses] == ["198.51.100.24/32"]


def test_lift_of_an_address_not_banned_keeps_the_list():
    merged = fw.merge_bans(fw.BanPolicy(addresses=["192.0.2.1"]), ["198.51.100.23/32"], remove=True)
    assert [str(n) for n in merged.addresses] == ["198.51.100.23/32"]


def test_ban_in_place_that_became_protected_is_dropped():
    merged = fw.merge_bans(fw.BanPolicy(protect_networks=["198.51.100.0/24"]), ["198.51.100.23/32", "192.0.2.1/32"])
    assert ([str(n) for n in merged.addresses], merged.skipped) == (["192.0.2.1/32"], ("198.51.100.23/32",))


# Real listings: tests/fixtures/firewall/nft/<suite>/ban.{json,nft}, captured after loading render_nftables(NFT_BAN).
NFT_BAN = fw.BanPolicy(
    addresses=["198.51.100.23", "192.0.2.0/28", "2001:db8:bad::/64", "2001:db8::5"], protect_networks=["203.0.113.7"]
)
NFT_SUITES = sorted(p.name for p in (FIXTURES / "nft").iterdir())


@pytest.mark.parametrize("name", ["ban.json", "ban.nft"])
@pytest.mark.parametrize("suite", NFT_SUITES)
def test_nft_real_ban_listing_is_unchanged(suite, name):
    listing = (FIXTURES / "nft" / suite / name).read_text()
    assert fw.plan_nftables(NFT_BAN, listing).changed is False


@pytest.mark.parametrize("name", ["ban.json", "ban.nft"])
@pytest.mark.parametrize("suite", NFT_SUITES)
def test_nft_real_ban_listing_reads_back(suite, name):
    listing = (FIXTURES / "nft" / suite / name).read_text()
    assert sorted(fw.banned_from_state("nftables", nft_json=listing)) == sorted(str(n) for n in NFT_BAN.addresses)


@pytest.mark.parametrize("suite", NFT_SUITES)
def test_nft_real_ban_listing_with_one_more_ban_changes(suite):
    listing = (FIXTURES / "nft" / suite / "ban.json").read_text()
    more = fw.merge_bans(fw.BanPolicy(addresses=["203.0.113.99"]), fw.banned_from_state("nftables", nft_json=listing))
    assert fw.plan_nftables(more, listing).changed is True


def test_merge_keeps_large_networks_whole():
    # Networks are passed on as networks, never iterated address by address (a /64 would never end).
    merged = fw.merge_bans(fw.BanPolicy(addresses=["2001:db8:bad::/64"]), ["2001:db8:ff::/48"])
    assert [str(n) for n in merged.addresses] == ["2001:db8:ff::/48", "2001:db8:bad::/64"]
