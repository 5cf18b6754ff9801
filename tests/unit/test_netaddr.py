"""sshward.netaddr: the one parser of the networks admins list (trusted, admin, allowlists, bans)."""

from __future__ import annotations

import ipaddress

import pytest

from sshward import netaddr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.0/33", "trusted: '10.0.0.0/33' is not a valid network (e.g. 10.0.0.0/8)"),
        ("2001:db8::/129", "trusted: '2001:db8::/129' is not a valid network (e.g. 2001:db8::/32)"),
        ("bastion.example.com", "trusted: 'bastion.example.com' is not a valid network (e.g. 10.0.0.0/8)"),
        ("", "trusted: '' is not a valid network (e.g. 10.0.0.0/8)"),
    ],
)
def test_refusal_names_the_argument_and_shows_an_example(value: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        netaddr.parse_networks(["192.0.2.0/24", value], "trusted")
    assert str(caught.value) == message


def test_addresses_and_host_bits_are_accepted() -> None:
    nets = netaddr.parse_networks([" 203.0.113.7 ", "10.1.2.3/8", "2001:db8::1"], "x")
    assert [str(n) for n in nets] == ["203.0.113.7/32", "10.0.0.0/8", "2001:db8::1/128"]
    assert (netaddr.has_host_bits("10.1.2.3/8"), netaddr.has_host_bits("10.0.0.0/8")) == (True, False)


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("192.0.2.9", True),
        ("::ffff:192.0.2.9", True),  # how a dual-stack socket reports an IPv4 client
        ("fe80::1%eth0", True),
        ("192.0.3.1", False),
        ("not-an-address", False),
    ],
)
def test_address_in(address: str, inside: bool) -> None:
    networks = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("fe80::/64")]
    assert netaddr.address_in(address, networks) is inside
