"""One policy, many front ends: role variables -> the sshd keywords sshward sets.

The Ansible role, the pyinfra deploy and the verify suite all call `sshd_settings`
with the same variables (named like the role's, without the `ssh_hardening_` prefix),
so what is applied and what is checked cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

from .firewall import FirewallError, check_networks
from .openssh import OpenSSHVersion, Supported, hardened_settings

SettingValue = Union[str, list[str], None]
ROOT_LOGIN_CHOICES = ("no", "prohibit-password", "forced-commands-only", "yes")
FORWARDING_CHOICES = ("no", "yes", "local", "remote", "all")
PREFIX = "ssh_hardening_"


class PolicyError(ValueError):
    """A policy value that cannot be applied; the message names the variable and the fix."""


def _yes_no(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).lower()
    if text in ("yes", "no"):
        return text
    raise PolicyError(f"expected a boolean, got {value!r}")


def _users(value: Any, name: str) -> list[str] | None:
    if not value:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) and v and not any(c.isspace() for c in v) for v in value):
        raise PolicyError(f"{PREFIX}{name}: give a list of names without spaces, e.g. ['alice', 'bob@10.0.0.0/8']")
    return list(value)


def _positive(policy: Mapping[str, Any], key: str) -> str:
    value = policy[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(f"{PREFIX}{key}: must be a whole number of 0 or more, got {value!r}")
    return str(value)


def sshd_settings(
    policy: Mapping[str, Any], version: OpenSSHVersion, supported: Supported | None = None
) -> dict[str, SettingValue]:
    """Global sshd keywords for `policy` on a host running `version` (with `ssh -Q` lists in `supported`)."""
    p = policy
    root = str(p["permit_root_login"])
    if root not in ROOT_LOGIN_CHOICES:
        raise PolicyError(f"{PREFIX}permit_root_login: {root!r} is not one of {', '.join(ROOT_LOGIN_CHOICES)}")
    ports = p["port"] if isinstance(p["port"], list) else [p["port"]]
    for port in ports:
        if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
            raise PolicyError(f"{PREFIX}port: {port!r} is not a TCP port (1-65535)")
    passwords = _yes_no(p["password_authentication"])
    out: dict[str, SettingValue] = {
        "Port": [str(int(x)) for x in ports],
        "ListenAddress": list(p["listen_addresses"]) or None,
        "PasswordAuthentication": passwords,
        version.kbd_interactive_keyword: "no",
        "PubkeyAuthentication": "yes",
        "AuthenticationMethods": "publickey" if passwords == "no" else "any",
        "PermitEmptyPasswords": "no",
        "PermitRootLogin": root,
        "AllowUsers": _users(p["allow_users"], "allow_users"),
        "AllowGroups": _users(p["allow_groups"], "allow_groups"),
        "DenyUsers": _users(p["deny_users"], "deny_users"),
        "DenyGroups": _users(p["deny_groups"], "deny_groups"),
        "LogLevel": "VERBOSE",
        "MaxAuthTries": _positive(p, "max_auth_tries"),
        "MaxSessions": _positive(p, "max_sessions"),
        "LoginGraceTime": _positive(p, "login_grace_time"),
        "MaxStartups": str(p["max_startups"]),
        "ClientAliveInterval": _positive(p, "client_alive_interval"),
        "ClientAliveCountMax": _positive(p, "client_alive_count_max"),
        "AllowTcpForwarding": str(p["allow_tcp_forwarding"])
        if not isinstance(p["allow_tcp_forwarding"], bool)
        else _yes_no(p["allow_tcp_forwarding"]),
        "AllowAgentForwarding": _yes_no(p["allow_agent_forwarding"]),
        "AllowStreamLocalForwarding": "no",
        "GatewayPorts": "no",
        "X11Forwarding": _yes_no(p["x11_forwarding"]),
        "PermitTunnel": _yes_no(p["permit_tunnel"]),
        "PermitUserEnvironment": "no",
        "IgnoreRhosts": "yes",
        "HostbasedAuthentication": "no",
        "UseDNS": "no",
        "StrictModes": "yes",
        "Compression": "no",
        "Banner": p["banner_path"] if p.get("banner") else "none",
    }
    if out["AllowTcpForwarding"] not in FORWARDING_CHOICES:
        raise PolicyError(f"{PREFIX}allow_tcp_forwarding: use one of {', '.join(FORWARDING_CHOICES)}")
    if version.accepts_protocol:
        out["Protocol"] = "2"
    if p.get("revoked_keys_file"):
        out["RevokedKeys"] = str(p["revoked_keys_file"])
    if p["crypto"] in ("hardened", "compatible"):
        try:
            out.update(hardened_settings(version, supported, compatible=p["crypto"] == "compatible"))
        except ValueError as exc:
            raise PolicyError(f"{PREFIX}crypto: {exc}; set it to 'distribution' to keep the host's defaults") from exc
    elif p["crypto"] != "distribution":
        raise PolicyError(f"{PREFIX}crypto: {p['crypto']!r} is not one of hardened, compatible, distribution")
    try:
        exempt = [str(n) for n in check_networks("sshward_trusted_networks", p.get("trusted_networks") or [], [])]
    except FirewallError as exc:
        raise PolicyError(str(exc)) from None
    if exempt and version.has_per_source_penalties:
        # The admin's own networks are never refused for a scan or a burst of failed logins.
        out["PerSourcePenaltyExemptList"] = ",".join(exempt)
    extra = p.get("extra_settings") or {}
    for keyword, value in extra.items():
        out[keyword] = value if value is None or isinstance(value, list) else str(value)
    return out
