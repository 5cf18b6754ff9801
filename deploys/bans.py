"""pyinfra deploy: brute-force bans with fail2ban, as the ssh_bans role does (harden.py runs it last).

    from deploys import bans
    bans.bans()          # on its own, or as harden.py does: bans.apply(address) inside its deploy

Data keys are the ssh_bans role variables (``ssh_bans_*``, ``sshward_trusted_networks``) with the
role's defaults. The jails, sshd filters and actions are rendered by the core (``sshward.bans``), the
same code the ``sshward_fail2ban`` module runs, so both front ends write the same files. Abuse reports
(``ssh_bans_abuse_reports``) are installed by the role only: this deploy refuses them with a message.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import yaml
from pyinfra import host
from pyinfra.api import OperationError, deploy, operation
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server

from deploys import facts
from deploys.harden import ROLES_DIR
from deploys.operations import write_file_command
from sshward import bans as core
from sshward import firewall as fw

CONFIG_DIR = "/etc/fail2ban"
# "{{ other }}" and "{{ other | default(literal) }}": the only templating the role's defaults use.
_TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*(?:\|\s*default\((.*)\)\s*)?\}\}")


@cache
def role_defaults() -> dict[str, Any]:
    """The defaults the role itself sees: its own and sshward_common's (harden.py adds all its roles')."""
    out: dict[str, Any] = {}
    for role in ("sshward_common", "ssh_bans"):
        out.update(yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {})
    return out


def var(name: str, depth: int = 0) -> Any:
    """A role variable from host data, resolving ``{{ other }}`` and ``{{ other | default(x) }}``."""
    value = host.data.get(name)
    if isinstance(value, str) and depth < 5:
        match = _TEMPLATE.fullmatch(value.strip())
        if match:
            other = var(match.group(1), depth + 1)
            if other is None and match.group(2) is not None:
                return ast.literal_eval(match.group(2))
            return other
    return value


def settings_params(log_backend: str, logpath: str, firewall: str, connecting_address: str = "") -> dict[str, Any]:
    """The role's ``sshward_fail2ban`` arguments (roles/ssh_bans/tasks/jails.yml), from host data."""
    keys = (
        "trusted_networks", "ignoreip_extra", "ports", "bantime", "findtime", "bantime_increment", "bantime_factor",
        "bantime_maxtime", "maxretry", "root_maxretry", "invalid_maxretry", "valid_maxretry", "recidive_enabled",
        "recidive_bantime", "recidive_findtime", "recidive_maxretry", "notify", "notify_command", "abuse_reports",
    )  # fmt: skip
    params = {key: var(f"ssh_bans_{key}") for key in keys}
    params.update(log_backend=log_backend, logpath=logpath, firewall=firewall)
    ignore_admin = var("ssh_bans_ignore_connecting_address") and connecting_address
    params["admin_addresses"] = [connecting_address] if ignore_admin else []
    return params


def firewall_backend(requested: str) -> str:
    """The ban actions' firewall: the setting, else sshward's detection (as sshward_authlog reports it)."""
    if requested not in (None, "", "auto"):
        return str(requested)
    fh = host.get_fact(facts.FirewallHost)
    bins = fh["bins"]
    try:
        return fw.detect_backend(
            fh["iptables_version"] or None, "nft" in bins, fh["nft_ruleset"] or None,
            fh["nftables_enabled"].strip() == "enabled",
        )  # fmt: skip
    except fw.FirewallError:
        return "iptables"


@operation()
def fail2ban_config(params: Mapping[str, Any], config_dir: str = CONFIG_DIR) -> Iterator[Any]:
    """Write sshward's jails, filters and actions (``sshward.bans.config_files``); only files that differ."""
    try:
        wanted = core.config_files(core.settings(params))
    except core.BanError as exc:
        raise OperationError(str(exc)) from exc
    paths = {f"{config_dir}/{relative}": text for relative, text in wanted.items()}
    current = host.get_fact(facts.FileContents, paths=tuple(paths))
    stale = [p for p, text in paths.items() if current.get(p) != text.encode("utf-8")]
    if not stale:
        host.noop("fail2ban's sshward jails, filters and actions are up to date")
        return
    for path in stale:
        yield write_file_command(path, paths[path], "0644")


@deploy("Brute-force bans (sshward)", data_defaults=role_defaults())
def bans() -> None:
    # Who we are, outside sudo (which drops SSH_CONNECTION); empty when not over SSH (@docker, @local).
    apply(host.get_fact(facts.ConnectionInfo, _sudo=False)["address"])


def apply(connecting_address: str = "") -> None:
    """The operations, within the calling deploy (harden.py's, whose data defaults include ssh_bans').

    ``connecting_address``: the address this run comes from, never banned (``ssh_bans_ignore_connecting_address``).
    """
    if not var("ssh_bans_enabled"):
        return
    if var("ssh_bans_abuse_reports"):
        raise OperationError(
            "ssh_bans_abuse_reports: abuse reports are installed by the ssh_bans role (harden.yml) only; "
            "set it to false for the pyinfra deploy"
        )
    existing = [p for p in core.AUTH_LOGS if host.get_fact(File, path=p)]
    try:
        log_backend, logpath = core.log_source(str(var("ssh_bans_backend")), existing)
        firewall = firewall_backend(var("ssh_bans_firewall_backend"))
        params = settings_params(log_backend, logpath, firewall, connecting_address)
        packages = core.packages(core.settings(params))
    except (core.BanError, fw.FirewallError) as exc:
        raise OperationError(str(exc)) from exc

    apt.packages(name="Install fail2ban", packages=packages, update=True, cache_time=3600)
    config = fail2ban_config(name="Configure fail2ban's sshd jails, filters and actions", params=params)
    files.file(
        name="Make sure the log file fail2ban reads exists",
        path="/var/log/fail2ban.log",
        user="root",
        group="adm",
        mode="0640",
        touch=False,
    )
    server.shell(
        name="Test the whole fail2ban configuration before restarting",
        commands=["fail2ban-client --test"],
        _if=config.did_change,
    )
    server.service(name="Enable and start fail2ban", service="fail2ban", running=True, enabled=True)
    # A restart, not a reload: fail2ban 1.1 loses a running jail's actions on a reload that changes them.
    server.service(
        name="Restart fail2ban with the new configuration",
        service="fail2ban",
        restarted=True,
        _if=config.did_change,
    )
