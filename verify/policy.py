"""The policy a host is verified against: the roles' defaults, overlaid with the host's variables.

Variables come from the Ansible inventory (``--connection=ansible``), from a YAML policy file
(``--policy FILE``, for ``ssh://`` or ``docker://`` hosts), or both; the file wins. One source of
truth: the same variable names as the roles, and the same defaults. A policy file may hold
per-host overlays under ``sshward_hosts: {<host as testinfra names it>: {variables}}``, e.g. the
``inventory_hostname`` a ``docker://`` container's baseline was recorded under.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROLES = Path(__file__).resolve().parent.parent / "roles"


@cache
def role_defaults(role: str) -> dict[str, Any]:
    path = ROLES / role / "defaults" / "main.yml"
    return yaml.safe_load(path.read_text()) or {} if path.exists() else {}


def host_variables(host: Any, policy_file: str | None) -> dict[str, Any]:
    variables: dict[str, Any] = {}
    if host.backend.NAME == "ansible":
        variables.update(host.ansible.get_variables())
    if policy_file:
        doc = yaml.safe_load(Path(policy_file).read_text()) or {}
        per_host = doc.pop("sshward_hosts", None) or {}
        variables.update(doc)
        variables.update(per_host.get(host.backend.get_hostname()) or {})
    return variables


def role_policy(role: str, variables: dict[str, Any], prefix: str | None = None) -> dict[str, Any]:
    """The role's variables (defaults overlaid by the host's), keyed without the role prefix."""
    prefix = prefix or f"{role}_"
    merged = {**role_defaults(role), **{k: v for k, v in variables.items() if k.startswith(prefix)}}
    return {k[len(prefix) :]: v for k, v in merged.items()}


_BARE_REFERENCE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def resolve(value: Any, variables: dict[str, Any], depth: int = 0) -> Any:
    """A default that is a bare ``{{ other_var }}`` reference, resolved against ``variables`` (the
    only templating the role defaults the suite reads use, e.g. ``"{{ sshward_trusted_networks }}"``)."""
    if isinstance(value, str) and depth < 5:
        m = _BARE_REFERENCE.fullmatch(value.strip())
        if m:
            return resolve(variables.get(m.group(1)), variables, depth + 1)
    return value


def ratelimit_policy(variables: dict[str, Any]) -> dict[str, Any]:
    """The ssh_ratelimit role's variables for a host, keyed without the prefix: the role's and
    sshward_common's defaults, overlaid with the host's variables, references resolved."""
    merged = {**role_defaults("sshward_common"), **role_defaults("ssh_ratelimit"), **variables}
    policy = role_policy("ssh_ratelimit", merged)
    return {k: resolve(v, merged) for k, v in policy.items()}


def baseline_name(host: Any, variables: dict[str, Any]) -> str:
    """The name harden.yml recorded the host's baseline under: its inventory_hostname.

    Set ``inventory_hostname`` in the ``--policy`` file when the host is reached another way
    (``docker://container``) than by its inventory name."""
    return str(variables.get("inventory_hostname") or host.backend.get_hostname())


def baseline_dir(variables: dict[str, Any], option: str | None) -> str:
    """``--baseline-dir``, else ``ssh_hardening_baseline_dir`` (``{{ playbook_dir }}`` is this checkout,
    where harden.yml is), else the role default; "" means baselines are disabled."""
    if option is not None:
        return option
    value = str(role_policy("ssh_hardening", variables)["baseline_dir"])
    return value.replace("{{ playbook_dir }}", str(ROLES.parent))
