"""pyinfra facts and operations of the incident lockdown (roles/ssh_lockdown), on the same core.

The host-side work (sessions, evidence, key quarantine, the report) is ``sshward.lockdown`` run on
the host by ``deploys.hostcore``: facts ask it read-only questions (``check``), operations yield
the same request for real. The address restriction is ``deploys.operations.restrict`` and its
automatic removal ``sshward.firewall.removal_revert_steps`` armed with ``sshward.revert``, as
``sshward_firewall`` and ``sshward_restrict_revert`` do.
"""

from __future__ import annotations

import shlex
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, FunctionCommand, OperationError, operation

from sshward import firewall as fw
from sshward import pending_reload, revert
from sshward.lockdown import intruder_clash, lock_refusal, passwd_locked

from . import facts, hostcore
from .operations import REVERT_DIR, _connector_args, _q, _run, arm_commands, runner_python, write_file_command

RESTRICT_REVERT = "lockdown-restrict"
NO_ADMIN_ADDRESS = (
    "Refusing to start: no admin address is known. This connection carries no SSH_CONNECTION (it is not an SSH "
    "login: local, docker or another connection plugin), so sshward cannot tell which address must keep access. "
    "Run lockdown.yml over SSH from the admin's machine; ssh_lockdown_admin_addresses only adds addresses to that one."
)


def as_network(address: str) -> str:
    """An address as the restrict policy's network (/32, /128), as roles/ssh_lockdown/tasks/restrict.yml does."""
    if "/" in address:
        return address
    return f"{address}/128" if ":" in address else f"{address}/32"


# ------------------------------------------------------------------------------------------- facts


class LockdownQuery(FactBase[dict[str, Any]]):
    """A read-only ``sshward.lockdown`` request run on the host (``check`` is forced on)."""

    def command(self, request: Mapping[str, Any] | None = None) -> str:
        return hostcore.request_command("lockdown", {**(request or {}), "check": True}, status=False)

    def process(self, output: list[str]) -> dict[str, Any]:
        return hostcore.parse_answer(output)


class Fail2banSshd(FactBase[dict[str, Any]]):
    """``fail2ban-client status sshd``: whether the jail runs, and its text (banned addresses)."""

    def command(self) -> str:
        return (
            "PATH=/usr/sbin:/sbin:$PATH; if o=$(fail2ban-client status sshd 2>&1); "
            "then echo RUNNING; printf '%s\\n' \"$o\"; else echo DOWN; fi"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        running = bool(output) and output[0] == "RUNNING"
        return {"running": running, "status": "\n".join(output[1:]) if running else ""}


def _answer(request: Mapping[str, Any]) -> dict[str, Any]:
    answer = host.get_fact(LockdownQuery, request=dict(request))
    if "error" in answer:
        raise OperationError(answer["error"])
    return answer


# -------------------------------------------------------------------------------------- operations


@operation()
def admin_address_known(address: str) -> Iterator[str]:
    """Refuse to start when the admin address cannot be told (roles/ssh_lockdown/tasks/preflight.yml)."""
    if not address:
        raise OperationError(NO_ADMIN_ADDRESS)
    host.noop(f"the admin connects from {address}")
    return
    yield


@operation()
def evidence(
    incident_id: str,
    parts: Sequence[str],
    admin_networks: Sequence[str],
    intruder_addresses: Sequence[str] = (),
    recent_seconds: int = 259200,
    path: str = "/var/lib/sshward/evidence",
) -> Iterator[str]:
    """Collect evidence ``parts`` into ``path/<incident_id>/`` on the host (sshward_evidence, collected)."""
    request = {
        "action": "collect", "path": path, "incident_id": incident_id, "parts": list(parts),
        "admin_networks": list(admin_networks), "intruder_addresses": list(intruder_addresses),
        "recent_seconds": recent_seconds,
    }  # fmt: skip
    clash = intruder_clash(intruder_addresses, admin_networks)
    if clash:
        raise OperationError(clash)
    yield hostcore.request_command("lockdown", request)


@operation()
def kill_sessions(admin_networks: Sequence[str], addresses: Sequence[str] = ()) -> Iterator[str]:
    """Kill every SSH session not from an admin address, with its process tree (sshward_sessions, absent).

    The host chooses again when the command runs (a session may have ended or begun since the fact).
    """
    request = {"action": "kill", "admin_networks": list(admin_networks), "addresses": list(addresses)}
    would = _answer({**request, "action": "sessions"})
    if not would["killed"]:
        host.noop("no session from outside the admin addresses")
        return
    for s in would["killed"]:
        host.log_styled(f"killing {s['user']} from {s['source_address']} (pid {s['pid']})", fg="yellow")
    yield hostcore.request_command("lockdown", request)


def _arm_restrict_revert(
    state: Any, host: Any, seconds: int, state_dir: str, connector_args: Mapping[str, Any]
) -> bool:
    """After the restriction is loaded: its removal, from the live rules, armed on the host."""
    fh = facts.FirewallHost()
    ok, out, _ = _run(host, fh.command(), connector_args)
    bins = fh.process(out.splitlines())["bins"]
    steps: list[list[str]] = []
    scripts: list[tuple[str, str]] = []
    for backend in fw.BACKENDS:
        if (backend == "nftables" and "nft" not in bins) or (backend == "iptables" and "iptables-save" not in bins):
            continue
        commands = fw.state_commands(backend, "restrict")
        ok, out, _ = _run(host, facts.FirewallState().command(commands), connector_args)
        current = facts.FirewallState().process(out.splitlines())
        args = {k: (v or "") if k != "nft_json" else v for k, v in current.items()}
        more, files = fw.removal_revert_steps(fw.plan_removal("restrict", backend, **args), state_dir, RESTRICT_REVERT)
        steps += [[bins.get(argv[0], argv[0]), *argv[1:]] for argv in more]
        scripts += files
    if not steps:
        host.log_styled("no restrict-mode rules are loaded; nothing to arm", fg="red")
        return False
    setup = [write_file_command(path, text, "0600") for path, text in scripts]
    arm = arm_commands(seconds, [], steps, "lockdown address restriction", name=RESTRICT_REVERT)
    ok, _, err = _run(host, " && ".join([arm[0], *setup, *arm[1:]]), connector_args)
    if not ok:
        host.log_styled(f"arming the removal of the restriction failed: {err.strip()}", fg="red")
    return ok


@operation()
def arm_restrict_revert(seconds: int = 900, state_dir: str = REVERT_DIR) -> Iterator[Any]:
    """Arm the automatic removal of the restrict rules (sshward_restrict_revert, armed)."""
    revert.plan_document(RESTRICT_REVERT, seconds, [], [], "")  # refuses a too short delay now
    yield FunctionCommand(_arm_restrict_revert, (seconds, state_dir, _connector_args()), {})


@operation()
def confirm_restrict(state_dir: str = REVERT_DIR) -> Iterator[str]:
    """Keep the address restriction: cancel its armed revert (sshward_restrict_revert, confirmed)."""
    plan = f"{state_dir}/{RESTRICT_REVERT}.json"
    if plan not in host.get_fact(facts.FileContents, paths=(plan,)):
        host.noop(
            "Nothing to confirm: no armed revert on this host (already confirmed, already reverted, or never armed)."
        )
        return
    yield runner_python(f"runner.confirm({RESTRICT_REVERT!r}, {state_dir!r})")


@operation()
def reload_sshd(service: str = "ssh") -> Iterator[str]:
    """Reload sshd (never restart or stop: running sessions keep going), as the role's handler does.

    The reload the sshd_config operation recorded as owed (sshward.pending_reload) is then done: the
    record goes, or every later run would reload again.
    """
    yield _q(["systemctl", "reload", service])
    yield _q(["rm", "-f", pending_reload.PENDING_RELOAD_PATH])


@operation()
def quarantine_keys(
    fingerprints: Sequence[str],
    protect: Sequence[str],
    quarantine_file: str,
) -> Iterator[str]:
    """Move the keys with ``fingerprints`` out of every authorized_keys into the evidence (sshward_key_quarantine)."""
    request = {
        "action": "keys", "fingerprints": sorted(set(fingerprints)), "protect": sorted(set(protect)),
        "quarantine_file": quarantine_file,
    }  # fmt: skip
    if not request["fingerprints"]:
        host.noop("no authorized_keys line holds a key the intruder used")
        return
    would = _answer(request)["removed"]
    if not would:
        host.noop("no authorized_keys line holds a key the intruder used")
        return
    for r in would:
        host.log_styled(f"quarantining {r['fingerprint']} from {r['file']}:{r['line']}", fg="yellow")
    yield hostcore.request_command("lockdown", request)


class PasswdStatus(FactBase[dict[str, str]]):
    """``passwd -S`` per user (empty when the user does not exist)."""

    def command(self, users: tuple[str, ...] = ()) -> str:
        quoted = " ".join(shlex.quote(u) for u in users) or "''"
        status = '"$(LC_ALL=C passwd -S -- "$u" 2>/dev/null)"'
        return f'for u in {quoted}; do printf "%s\\t%s\\n" "$u" {status}; done; echo END'

    def process(self, output: list[str]) -> dict[str, str]:
        return dict(line.split("\t", 1) for line in output if "\t" in line)


@operation()
def lock_accounts(users: Sequence[str], connecting_user: str) -> Iterator[str]:
    """Lock accounts (password locked, expired) as sshward_key_quarantine's lock_accounts does."""
    refused = lock_refusal(users, connecting_user)
    if refused:
        raise OperationError(refused)
    status = host.get_fact(PasswdStatus, users=tuple(users))
    todo = [u for u in users if not passwd_locked(status.get(u, ""))]
    if not todo:
        host.noop("already locked: " + ", ".join(users))
    for user in todo:
        yield _q(["usermod", "-L", "-e", "1", user])


@operation()
def ban(addresses: Sequence[str]) -> Iterator[str]:
    """Ban ``addresses`` in fail2ban's sshd jail when it runs (roles/ssh_lockdown/tasks/ban.yml)."""
    if not addresses:
        host.noop("no intruder address known")
        return
    jail = host.get_fact(Fail2banSshd)
    if not jail["running"]:
        host.noop(
            "fail2ban is not running on this host; the address restriction keeps them out while it stands, "
            "install the ssh_bans role for lasting bans"
        )
        return
    todo = [a for a in addresses if a not in jail["status"]]
    if not todo:
        host.noop("already banned: " + ", ".join(addresses))
    for address in todo:
        yield _q(["fail2ban-client", "set", "sshd", "banip", address])


@operation()
def notify_event(command: str, config: str, fields: Mapping[str, str]) -> Iterator[str]:
    """Queue a ``lockdown`` event through the notifier when it is installed (roles/ssh_lockdown/tasks/notify.yml)."""
    if config not in host.get_fact(facts.FileContents, paths=(config,)):
        host.noop(f"{config} is absent (install the ssh_notify role)")
        return
    argv = [command, "event", "--kind", "lockdown"]
    for key, value in fields.items():
        argv += ["--field", f"{key}={value}"]
    yield _q(argv)


def _fetch(state: Any, host: Any, remote: str, local_dir: str, connector_args: Mapping[str, Any]) -> bool:
    """Download the sealed archive and unpack it beside (``<dir>/<incident id>/``), safely."""
    target = Path(local_dir)
    target.mkdir(parents=True, exist_ok=True)
    local = target / Path(remote).name
    if not host.get_file(remote, str(local), **connector_args):
        return False
    with tarfile.open(local) as archive:
        archive.extractall(target, filter="data")
    return True


@operation()
def seal(
    incident_id: str,
    admin_networks: Sequence[str],
    intruder_addresses: Sequence[str],
    containment: Any,
    host_name: str = "",
    path: str = "/var/lib/sshward/evidence",
    fetch_to: str = "",
) -> Iterator[Any]:
    """report.md/report.json, MANIFEST.sha256 and the archive (sshward_evidence, sealed), then fetch it.

    + containment: the steps (a list, or a callable returning it when the command is made: the
      statuses of the operations run before)
    """
    steps = containment() if callable(containment) else list(containment)
    request = {
        "action": "seal", "path": path, "incident_id": incident_id, "host": host_name or host.name,
        "admin_networks": list(admin_networks), "intruder_addresses": list(intruder_addresses),
        "containment": steps, "mode": "lockdown",
    }  # fmt: skip
    yield hostcore.request_command("lockdown", request)
    if fetch_to:
        remote = f"{path}/{incident_id}.tar.gz"
        yield FunctionCommand(_fetch, (remote, fetch_to, _connector_args()), {})


__all__ = [
    "Fail2banSshd",
    "LockdownQuery",
    "PasswdStatus",
    "admin_address_known",
    "arm_restrict_revert",
    "as_network",
    "ban",
    "confirm_restrict",
    "evidence",
    "kill_sessions",
    "lock_accounts",
    "notify_event",
    "quarantine_keys",
    "reload_sshd",
    "seal",
]
