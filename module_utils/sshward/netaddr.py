"""Addresses and networks as the admin writes them (variables, policy files, allowlists): parsed once.

Every list of networks sshward takes (trusted networks, admin networks, allowlists, ban lists)
goes through here, so the same input is accepted or refused with the same message everywhere.
Standard library only, Python 3.9 compatible.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_network(value: Any, name: str) -> Network:
    """``value`` (an address or CIDR; host bits allowed) as a network, or ValueError naming ``name``."""
    text = str(value).strip()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        example = "2001:db8::/32" if ":" in text else "10.0.0.0/8"
        raise ValueError(f"{name}: {str(value)!r} is not a valid network (e.g. {example})") from None


def parse_networks(values: Iterable[Any], name: str) -> list[Network]:
    return [parse_network(value, name) for value in values or ()]


def has_host_bits(value: Any) -> bool:
    """True when ``value`` parses only with host bits masked off (``10.0.0.1/8``)."""
    try:
        ipaddress.ip_network(str(value).strip(), strict=True)
    except ValueError:
        return True
    return False


def address_in(address: str, networks: Sequence[Network]) -> bool:
    """Whether ``address`` (an IPv4-mapped IPv6 address counts as IPv4; a %zone is ignored) is in any network."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)
