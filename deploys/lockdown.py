"""pyinfra deploy: contain an SSH intrusion the way lockdown.yml does (roles/ssh_lockdown).

    pyinfra inventory.py deploys/lockdown.py --dry        # what it would do, nothing changes
    pyinfra inventory.py deploys/lockdown.py -y           # contain
    pyinfra inventory.py deploys/lockdown.py -y --data ssh_lockdown_confirm=true   # keep the restriction

Inside your own deploy:

    from deploys import lockdown
    lockdown.lockdown()

Data keys are the ssh_lockdown role variables with the role's defaults. The admin address is the
one pyinfra connects from (``SSH_CONNECTION``, read without sudo); without it (``@docker``,
``@local``) the deploy refuses to start, with the role's message. The order is the role's:
volatile evidence, the address restriction behind an armed revert, foreign sessions killed,
passwords off (lockout guards, sshd reloaded), the log evidence, the intruder's keys quarantined,
fail2ban bans, the notifier's event, the slow evidence, the sealed report fetched to
``ssh_lockdown_evidence_dir/<host>/<incident id>/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy

from deploys import facts
from deploys.harden import policy_file_data, role_defaults, var
from deploys.lockdown_operations import (
    LockdownQuery,
    admin_address_known,
    arm_restrict_revert,
    as_network,
    ban,
    confirm_restrict,
    evidence,
    kill_sessions,
    lock_accounts,
    notify_event,
    quarantine_keys,
    reload_sshd,
    seal,
)
from deploys.operations import restrict, sshd_config
from sshward.netaddr import address_in, parse_networks

ROLES = ("ssh_lockdown",)
DEFAULTS = {**role_defaults(ROLES), **policy_file_data()}
#: One incident id for every host of this run (the role's run_once fact).
INCIDENT = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def flag(name: str) -> bool:
    """A boolean data key; ``--data key=false`` on pyinfra's command line gives the string 'false'."""
    value = var(name)
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def evidence_dir() -> str:
    """``ssh_lockdown_evidence_dir``; the role's default names the playbook's directory: here, the current one."""
    value = str(var("ssh_lockdown_evidence_dir"))
    return value.replace("{{ playbook_dir }}", os.getcwd())


def _changed(op: Any) -> bool:
    """Whether an operation changed something (after it ran) or will (before)."""
    if op is None:
        return False
    return bool(op.did_change()) if op.is_complete() else bool(op.will_change)


def containment_steps(
    restricted: Any,
    killed: Any,
    passwords: Any,
    keys: Any,
    banned: Any,
    notified: Any,
    summary: dict[str, str],
    locked: Any = None,
) -> Callable[[], list[dict[str, str]]]:
    """The report's containment steps (roles/ssh_lockdown's), with each operation's outcome once it ran."""

    def build() -> list[dict[str, str]]:
        now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        rows = [
            ("restrict", restricted, "restricted", "already in place"),
            ("sessions", killed, "killed", "already in place"),
            ("passwords", passwords, "disabled", "already in place"),
            ("keys", keys, "quarantined", "already in place"),
            ("ban", banned, "banned", "already in place"),
            ("notify", notified, "sent", "no notifier"),
        ]
        out = []
        for step, op, done, idle in rows:
            if op is None:
                out.append(
                    {"step": step, "time": now, "status": "skipped", "summary": f"disabled by ssh_lockdown_{step}"}
                )
            else:
                changed = _changed(op) or (step == "keys" and _changed(locked))
                out.append({"step": step, "time": now, "status": done if changed else idle, "summary": summary[step]})
        return out

    return build


@deploy("Lock down SSH (sshward)", data_defaults=DEFAULTS)
def lockdown() -> None:
    connection = host.get_fact(facts.ConnectionInfo, _sudo=False)
    address, user = connection["address"], connection["user"]
    admin_address_known(name="Refuse to start when the admin address cannot be told", address=address)
    if not address:
        return
    if flag("ssh_lockdown_confirm"):
        confirm_restrict(name="Keep the address restriction (cancel its armed revert)")
        return

    incident = str(var("ssh_lockdown_incident_id") or INCIDENT)
    admin = list(dict.fromkeys([address, *(var("ssh_lockdown_admin_addresses") or [])]))
    given = list(var("ssh_lockdown_intruder_addresses") or [])
    store = str(var("ssh_lockdown_host_evidence_path"))
    bundle = f"{store}/{incident}"

    # Evidence first, most volatile first; then the intruders: the given ones plus every session's
    # source outside the admin addresses (read now, before anything is killed).
    evidence(
        name="Evidence first, most volatile first (sessions, processes, connections, firewall rules)",
        incident_id=incident, parts=["volatile", "commands"], admin_networks=admin, intruder_addresses=given,
        path=store,
    )  # fmt: skip
    # The same request kill_sessions asks, so pyinfra answers that one from its fact cache.
    seen = host.get_fact(LockdownQuery, request={"action": "sessions", "admin_networks": admin, "addresses": []})
    networks = parse_networks(admin, "ssh_lockdown_admin_networks")
    foreign = [s["source_address"] for s in seen.get("sessions", []) if not address_in(s["source_address"], networks)]
    intruders = list(dict.fromkeys([*given, *foreign]))

    restricted = None
    if flag("ssh_lockdown_restrict"):
        restricted = restrict(
            name="Step 1, new SSH connections only from the admin addresses",
            admin_networks=[as_network(a) for a in admin],
            connecting_address=address,
            persistent=False,
        )
        arm_restrict_revert(
            name="Arm the automatic removal of the restriction",
            seconds=int(var("ssh_lockdown_revert_seconds")),
            _if=restricted.did_change,
        )

    killed = None
    if flag("ssh_lockdown_kill_sessions"):
        killed = kill_sessions(name="Step 2, kill every SSH session not from an admin address", admin_networks=admin)

    passwords = None
    if flag("ssh_lockdown_disable_passwords"):
        passwords = sshd_config(
            name="Step 3, password and keyboard-interactive logins off (with the lockout guards)",
            settings={"PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no"},
            path=str(var("ssh_lockdown_sshd_config_path")),
            connecting_user=user,
            connecting_address=address,
        )
        reload_sshd(
            name="Reload sshd (never a restart: running sessions keep going)",
            service=str(var("ssh_lockdown_service")),
            _if=passwords.did_change,
        )

    evidence(
        name="The SSH story from the logs (which keys the intruder used)",
        incident_id=incident, parts=["logs"], admin_networks=admin, intruder_addresses=intruders, path=store,
    )  # fmt: skip

    keys = None
    if flag("ssh_lockdown_quarantine_keys") or var("ssh_lockdown_lock_accounts"):
        story = host.get_fact(
            LockdownQuery,
            request={"action": "collect", "path": store, "incident_id": incident, "parts": ["logs"],
                     "admin_networks": admin, "intruder_addresses": intruders},
        )  # fmt: skip
        used = [k["fingerprint"] for k in story.get("intruder_keys", [])]
        keys = quarantine_keys(
            name="Step 4, the intruder's keys quarantined",
            fingerprints=[*(var("ssh_lockdown_intruder_fingerprints") or []), *used],
            protect=story.get("admin_keys", []),
            quarantine_file=f"{bundle}/quarantine/keys.json",
        )
    locked = None
    if var("ssh_lockdown_lock_accounts"):
        locked = lock_accounts(
            name="Step 4, the accounts asked for locked",
            users=list(var("ssh_lockdown_lock_accounts")),
            connecting_user=user,
        )

    banned = None
    if flag("ssh_lockdown_ban"):
        banned = ban(name="Step 5, the intruder's addresses banned (fail2ban sshd jail)", addresses=intruders)
    if flag("ssh_lockdown_quarantine_executables"):
        logger.warning(f"{host.print_prefix}ssh_lockdown_quarantine_executables is not done by the pyinfra deploy yet")

    notified = None
    if flag("ssh_lockdown_notify"):
        notified = notify_event(
            name="Step 7, a lockdown event through the notifier",
            command=str(var("ssh_lockdown_notify_command")),
            config=str(var("ssh_lockdown_notify_config")),
            fields={"incident": incident, "admin": ",".join(admin), "intruders": ",".join(intruders)},
        )

    evidence(
        name="The slow evidence (keys, recently modified files, persistence points)",
        incident_id=incident, parts=["keys", "files", "persistence"], admin_networks=admin,
        recent_seconds=int(var("ssh_lockdown_recent_seconds")), path=store,
    )  # fmt: skip
    summary = {
        "restrict": f"new SSH connections only from {', '.join(admin)}; reverts by itself in "
        f"{var('ssh_lockdown_revert_seconds')} s unless confirmed with ssh_lockdown_confirm=true",
        "sessions": ", ".join(intruders) or "no session from outside the admin addresses",
        "passwords": "PasswordAuthentication no, KbdInteractiveAuthentication no",
        "keys": "keys the intruder used, from the log and ssh_lockdown_intruder_fingerprints"
        + "".join(f"; locked {u}" for u in var("ssh_lockdown_lock_accounts") or []),
        "ban": ", ".join(intruders) or "no intruder address known",
        "notify": f"lockdown event through {var('ssh_lockdown_notify_command')}",
    }
    seal(
        name="Seal the bundle (report, SHA-256 manifest, archive) and fetch it",
        incident_id=incident,
        admin_networks=admin,
        intruder_addresses=intruders,
        containment=containment_steps(restricted, killed, passwords, keys, banned, notified, summary, locked),
        path=store,
        fetch_to=f"{evidence_dir()}/{host.name}",
    )


# Run as a deploy file (`pyinfra INVENTORY deploys/lockdown.py` executes this file without a module name).
if __name__ in ("builtins", "__main__"):
    lockdown()
