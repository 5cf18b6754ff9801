"""pyinfra deploy: harden SSH the way harden.yml does (ssh_hardening, ssh_ratelimit, ssh_notify).

    pyinfra inventory.py deploys/harden.py                        # defaults from the roles
    SSHWARD_POLICY=policy.yml pyinfra inventory.py deploys/harden.py   # one YAML policy for both front ends

Inside your own deploy:

    from deploys import harden
    harden.harden()

Data keys are the role variables (``ssh_hardening_*``, ``ssh_ratelimit_*``, ``ssh_notify_*``,
``sshward_trusted_networks``);
their defaults are read from roles/*/defaults/main.yml, so inventory data, group data, a
``SSHWARD_POLICY`` YAML file, harden.yml's ``-e @policy.yml`` and ``pytest verify --policy`` all speak
the same language. Run with sudo rights (``_sudo=True`` in the inventory data, as the lab writes it).
"""

from __future__ import annotations

import os
import re
from functools import cache
from io import StringIO
from pathlib import Path
from typing import Any

import yaml
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server

from deploys import facts
from deploys.operations import (
    assert_debian,
    backup_suffix,
    host_keys,
    moduli,
    ratelimit,
    reload_with_rollback,
    sshd_config,
)

ROOT = Path(__file__).resolve().parent.parent
#: The role files the deploys read: the checkout's roles/, or the copy an installed package carries.
ROLES_DIR = ROOT / "roles" if (ROOT / "roles").is_dir() else Path(__file__).resolve().parent / "_roles"
ROLES = ("sshward_common", "ssh_hardening", "ssh_ratelimit", "ssh_notify")
_TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@cache
def role_defaults(roles: tuple[str, ...] = ROLES) -> dict[str, Any]:
    """Every role variable with its default, from the roles' defaults/main.yml (as verify/ reads them)."""
    out: dict[str, Any] = {}
    for role in roles:
        path = ROLES_DIR / role / "defaults" / "main.yml"
        out.update(yaml.safe_load(path.read_text()) or {})
    return out


@cache
def policy_keys() -> tuple[str, ...]:
    """The keys of the policy the role hands to the core (roles/ssh_hardening/vars/main.yml)."""
    data = yaml.safe_load((ROLES_DIR / "ssh_hardening" / "vars" / "main.yml").read_text())
    return tuple(data["_ssh_hardening_policy"])


def policy_file_data(path: str | None = None) -> dict[str, Any]:
    """Variables from a YAML policy file (``SSHWARD_POLICY``), the same file harden.yml takes with -e @file."""
    path = path or os.environ.get("SSHWARD_POLICY")
    if not path:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of role variables")
    return data


def data_defaults() -> dict[str, Any]:
    return {**role_defaults(), **policy_file_data()}


DEFAULTS = data_defaults()


def var(name: str, depth: int = 0) -> Any:
    """A role variable from host data, resolving the one templating the defaults use: ``{{ other }}``."""
    value = host.data.get(name)
    if isinstance(value, str) and depth < 5:
        match = _TEMPLATE.fullmatch(value.strip())
        if match:
            return var(match.group(1), depth + 1)
    return value


def hardening_policy() -> dict[str, Any]:
    """ssh_hardening variables without their prefix, the shape sshward.policy.sshd_settings takes."""
    policy = {key: var(f"ssh_hardening_{key}") for key in policy_keys()}
    policy["trusted_networks"] = var("sshward_trusted_networks") or []  # the project-wide list, not a role var
    if isinstance(policy["port"], (str, int)):
        policy["port"] = [policy["port"]]
    return policy


def _home(name: str, users: dict[str, Any]) -> str:
    return (users.get(name) or {}).get("home") or f"/home/{name}"


@deploy("Harden SSH (sshward)", data_defaults=DEFAULTS)
def harden() -> None:
    policy = hardening_policy()
    managed = list(var("ssh_hardening_users") or [])
    names = [u["name"] for u in managed]
    planned_keys = {u["name"]: list(u.get("keys") or []) for u in managed}
    config_path = var("ssh_hardening_config_path")
    # Who we are and where from, outside sudo (which drops SSH_CONNECTION).
    connection = host.get_fact(facts.ConnectionInfo, _sudo=False)
    address = connection["address"]
    # Not over SSH (@docker, @local): nobody logs in through sshd for this run, so there is no
    # connecting user to keep allowed; the allowed users' keys are still required.
    user = connection["user"] if address else ""
    guard_args = dict(
        policy=policy,
        path=config_path,
        sftp_only_groups=list(var("ssh_hardening_sftp_only_groups") or []),
        connecting_user=user,
        connecting_address=address,
        require_keys_for=names,
        planned_keys=planned_keys,
    )

    assert_debian(name="Refuse to run on a release sshward does not know")
    sshd_config(
        name="Refuse now, before anything changes, a policy that would lock anyone out", check_only=True, **guard_args
    )

    # Managed users and their authorized keys (users.yml).
    existing = host.get_fact(server.Users)
    for u in managed:
        server.user(
            name=f"Create managed user {u['name']}",
            user=u["name"],
            shell=u.get("shell", "/bin/bash"),
            groups=u.get("groups"),
            append=True,
            create_home=True,
            password=None if u["name"] in existing else u.get("password", "*"),
        )
        home = _home(u["name"], existing)
        files.directory(name=f"~{u['name']}/.ssh", path=f"{home}/.ssh", user=u["name"], mode="0700")
        keys_path = f"{home}/.ssh/authorized_keys"
        if u.get("exclusive"):
            files.put(
                name=f"Authorized keys of {u['name']}, exclusive",
                src=StringIO("\n".join(u.get("keys") or []) + "\n"),
                dest=keys_path,
                user=u["name"],
                mode="0600",
            )
        else:
            for key in u.get("keys") or []:
                files.line(name=f"Authorized key for {u['name']}", path=keys_path, line=key, present=True)
            files.file(path=keys_path, user=u["name"], mode="0600", touch=False)

    # Host keys, DH moduli and banner (crypto.yml).
    hardened = policy["crypto"] == "hardened"
    host_keys(
        name="Host keys sshward offers (Ed25519, RSA)",
        rsa_bits=int(var("ssh_hardening_rsa_host_key_bits")),
        replace_rsa=hardened,
    )
    if hardened:
        moduli(name="Remove small DH moduli", min_bits=int(var("ssh_hardening_moduli_min_bits")))
    if policy.get("banner"):
        files.put(
            name="Install the login banner",
            src=StringIO(f"{policy['banner']}\n"),
            dest=policy["banner_path"],
            user="root",
            group="root",
            mode="0644",
        )

    # The sshd configuration, guarded and validated, then reloaded behind an armed revert.
    suffix = backup_suffix()
    changed = sshd_config(name="Set the sshd policy so that sshd -T reports it", backup=suffix, **guard_args)
    previous_port = int(host.data.get("ssh_port") or connection["port"] or 22)
    ports = [int(p) for p in policy["port"]]
    reload_with_rollback(
        name="Reload sshd with a revert armed, then prove a fresh SSH connection works",
        paths=_config_paths(config_path),
        backup=suffix,
        service=var("ssh_hardening_service"),
        rollback_seconds=int(var("ssh_hardening_rollback_seconds")),
        probe_timeout=int(var("ssh_hardening_probe_timeout")),
        port=None if previous_port in ports else ports[0],
        _if=changed.did_change,
    )

    # Rate limiting (ssh_ratelimit).
    enabled = bool(var("ssh_ratelimit_enabled"))
    backend = var("ssh_ratelimit_backend")
    if enabled and backend == "nftables":
        apt.packages(name="Install nftables", packages=["nftables"], update=True, cache_time=3600)
    admin = [address] if var("ssh_ratelimit_allow_connecting_address") and address else []
    # The same record the Ansible module keeps beside its saved rules (the verify suite reads it).
    admins_path = "/etc/sshward/firewall/ratelimit.admin-addresses"
    if enabled and admin:
        files.directory(
            name="sshward's firewall state directory",
            path="/etc/sshward/firewall",
            user="root",
            group="root",
            mode="0700",
        )
        files.put(
            name="Record the admin address added to the allowlist",
            src=StringIO("".join(a + "\n" for a in sorted(set(admin)))),
            dest=admins_path,
            user="root",
            group="root",
            mode="0600",
        )
    else:
        files.file(name="No admin address to record", path=admins_path, present=False)
    ratelimit(
        name="Rate-limit new SSH connections",
        enabled=enabled,
        backend=backend,
        ports=[int(p) for p in var("ssh_ratelimit_ports") or []],
        seconds=int(var("ssh_ratelimit_seconds")),
        hitcount=int(var("ssh_ratelimit_hitcount")),
        trusted_networks=list(var("ssh_ratelimit_trusted_networks") or []),
        trusted_seconds=int(var("ssh_ratelimit_trusted_seconds")),
        trusted_hitcount=int(var("ssh_ratelimit_trusted_hitcount")),
        allowlist=list(var("ssh_ratelimit_allowlist") or []) + admin,  # as the module's admin_addresses
        persistent=bool(var("ssh_ratelimit_persistent")),
        connecting_address=address,
    )

    # Login notifications (ssh_notify): a step of its own, so it can follow the role's changes.
    # Imported here because deploys.notify builds on this module's role helpers.
    from deploys.notify import notify_steps

    notify_steps()


def _config_paths(config_path: str) -> list[str]:
    """Every file of the sshd config tree (the candidates for a changed file and its backup)."""
    sshdir = config_path.rsplit("/", 1)[0] or "/"
    found = host.get_fact(facts.SshdConfigFiles, path=config_path, dirs=(f"{sshdir}/sshd_config.d",))
    return sorted(found) or [config_path]


# Run as a deploy file (`pyinfra INVENTORY deploys/harden.py` executes this file without a module name).
if __name__ in ("builtins", "__main__"):
    harden()
