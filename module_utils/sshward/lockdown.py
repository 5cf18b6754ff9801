"""The incident lockdown's host-side steps, shared by the Ansible modules and the pyinfra deploy.

``sshward_sessions``, ``sshward_evidence`` and ``sshward_key_quarantine`` call these functions
inside Ansible; the pyinfra deploy ships this package to the host (a zip in a private temporary
directory, see ``deploys.hostcore``) and runs :func:`main` with one JSON request, reading one
JSON answer. The decisions (which session is foreign, which key the intruder used, which
address clashes with an admin's) are made here, once.

Requests (``python3 -I -B -m``-style, argv[1] is base64 of a JSON object with ``action``):

    sessions   {admin_networks}                      read-only: sessions, which would be killed
    kill       {admin_networks, addresses}           kill foreign sessions (their process trees)
    collect    {path, incident_id, parts, ...}       write evidence parts into the bundle
    keys       {fingerprints, protect, quarantine_file, check}
    seal       {path, incident_id, host, mode, ...}  report, manifest, archive
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import evidence as ev
from . import netaddr, quarantine
from . import sessions as sess

#: Read-only commands whose output goes into the bundle's commands/ part.
EVIDENCE_COMMANDS: dict[str, list[str]] = {
    "iptables-save": ["iptables-save"],
    "ip6tables-save": ["ip6tables-save"],
    "nft-ruleset": ["nft", "list", "ruleset"],
    "sshd-effective": ["sshd", "-T"],
    "fail2ban-sshd": ["fail2ban-client", "status", "sshd"],
    "last": ["last", "-F", "-w", "-i"],
}
JOURNAL_ARGS = ["-o", "json", "--no-pager", "_COMM=sshd", "_COMM=sshd-session", "_COMM=sudo", "_COMM=su"]
PARTS = ("volatile", "commands", "logs", "keys", "files", "persistence")
_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

Which = Callable[[str], "str | None"]
Journal = Callable[[], "list[str] | None"]


class LockdownError(Exception):
    """A refusal; the message names the argument and the fix."""


# --------------------------------------------------------------------------------------------
# Sessions


def select_sessions(
    sessions: Iterable[sess.Session],
    admin: Sequence[sess.Network],
    protected: Iterable[int],
    only: Sequence[sess.Network] = (),
) -> tuple[list[sess.Session], list[dict[str, Any]]]:
    """(to kill, kept): sessions from an admin address, our own connection's, and (with ``only``)
    those from other addresses are kept, each with the reason."""
    keep = set(protected)
    kill: list[sess.Session] = []
    kept: list[dict[str, Any]] = []
    for s in sessions:
        why = ""
        if netaddr.address_in(s.source_address, admin):
            why = "admin address"
        elif s.pid in keep:
            why = "this connection"
        elif only and not netaddr.address_in(s.source_address, only):
            why = "not selected"
        if why:
            kept.append({"pid": s.pid, "source_address": s.source_address, "user": s.user, "why": why})
        else:
            kill.append(s)
    return kill, kept


def kill_sessions(
    snap: sess.Snapshot, kill: Iterable[sess.Session], protected: Sequence[int], check: bool = False
) -> tuple[list[dict[str, Any]], list[int]]:
    """Kill each session's process tree (stopped first); (killed, survivors)."""
    killed, pids = [], []
    for s in kill:
        targets = sess.session_targets(s, snap.processes, protected)
        if not check:
            targets = sess.kill_session(s, protected)
            pids.extend(targets)
        killed.append(
            {
                "pid": s.pid,
                "user": s.user,
                "source_address": s.source_address,
                "source_port": s.source_port,
                "ttys": s.ttys,
                "pids": targets,
            }
        )
    return killed, ([] if check else sess.gone(pids))


# --------------------------------------------------------------------------------------------
# Accounts


def lock_refusal(users: Iterable[str], connecting_user: str) -> str | None:
    """The refusal when asked to lock root or the account the run uses, else None."""
    refused = [u for u in users if u in ("root", connecting_user)]
    if not refused:
        return None
    return f"lock_accounts: refusing to lock {refused} (root or the account this play uses)"


def passwd_locked(passwd_status: str) -> bool:
    """Whether ``passwd -S USER`` output says the password is locked (second field ``L``)."""
    fields = passwd_status.split()
    return len(fields) > 1 and fields[1] == "L"


# --------------------------------------------------------------------------------------------
# Evidence


def intruder_clash(intruder_addresses: Iterable[str], admin_networks: Sequence[str]) -> str | None:
    """The refusal when an intruder address is an admin address, else None."""
    admin = netaddr.parse_networks(admin_networks, "admin_networks")
    clash = [a for a in intruder_addresses if netaddr.address_in(a, admin)]
    if not clash:
        return None
    return (
        f"intruder_addresses: {', '.join(clash)} is inside admin_networks ({', '.join(admin_networks)}): "
        "the admin address would be the intruder's. Restricting SSH to it and banning it would cut the admin off; "
        "fix one of the two lists"
    )


def host_which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":" + _PATH)


def host_journal() -> list[str] | None:
    journalctl = host_which("journalctl")
    if not journalctl:
        return None
    try:
        proc = subprocess.run(
            [journalctl, *JOURNAL_ARGS],
            capture_output=True,
            check=False,
            timeout=120,
            env={"LC_ALL": "C", "PATH": _PATH},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.decode("utf-8", "surrogateescape").splitlines() if proc.returncode == 0 else None


def collect_parts(
    bundle: str,
    parts: Sequence[str],
    admin_networks: Sequence[str],
    intruder_addresses: Sequence[str],
    recent_seconds: int,
    skip: Sequence[str] = (),
    which: Which = host_which,
    journal: Journal = host_journal,
) -> dict[str, Any]:
    """Collect evidence ``parts`` into ``bundle``; the facts later steps use come back in the result."""
    admin = netaddr.parse_networks(admin_networks, "admin_networks")
    intruders = list(intruder_addresses)
    result: dict[str, Any] = {}
    for part in parts:
        if part == "volatile":
            data = ev.collect_volatile(bundle, sess.snapshot())
            result["sessions"] = data["sessions"]
            result["foreign_sessions"] = [
                s for s in data["sessions"] if admin and not netaddr.address_in(s["source_address"], admin)
            ]
            result["suspicious_processes"] = data["suspicious_processes"]
            intruders += [s["source_address"] for s in result["foreign_sessions"]]
        elif part == "commands":
            cmds = {}
            for name, argv in EVIDENCE_COMMANDS.items():
                path = which(argv[0])
                if path:
                    cmds[name] = [path, *argv[1:]]
            result["commands"] = ev.run_commands(bundle, cmds)
        elif part == "logs":
            story = ev.collect_logs(bundle, journal())
            accepted = story.get("accepted", [])
            result["intruder_keys"] = ev.intruder_keys(accepted, sorted(set(intruders)), admin)
            result["admin_keys"] = sorted(
                {
                    a["fingerprint"]
                    for a in accepted
                    if a.get("fingerprint") and a.get("address") and netaddr.address_in(a["address"], admin)
                }
            )
            result["accepted_logins"] = len(accepted)
        elif part == "keys":
            result["authorized_keys"] = len(ev.collect_keys(bundle))
        elif part == "files":
            result["recent_files"] = len(ev.collect_recent(bundle, since=recent_seconds, skip=list(skip)))
        elif part == "persistence":
            result["persistence_points"] = len(ev.collect_persistence(bundle))
    return result


def seal_bundle(
    bundle: str,
    incident_id: str,
    host: str,
    admin_networks: Sequence[str],
    intruder_addresses: Sequence[str],
    containment: Sequence[Mapping[str, Any]],
    mode: str = "lockdown",
    archive: bool = True,
) -> dict[str, Any]:
    """report.json/report.md, MANIFEST.sha256 (verified) and, with ``archive``, ``<bundle>.tar.gz``."""
    report = ev.build_report(
        bundle, incident_id, host or os.uname().nodename, admin_networks, intruder_addresses, containment, mode
    )
    manifest = ev.write_manifest(bundle)
    result: dict[str, Any] = {"report": report, "manifest_sha256": ev.sha256_file(manifest)}
    problems = ev.verify_manifest(bundle)
    if problems:
        raise ev.EvidenceError("the manifest does not verify: " + "; ".join(problems[:5]))
    if archive:
        path = bundle + ".tar.gz"
        tmp = path + ".tmp"
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(bundle, arcname=incident_id)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        result["archive"] = path
    return result


# --------------------------------------------------------------------------------------------
# The pyinfra deploy's entry point on the host


def _sessions(req: Mapping[str, Any], check: bool) -> tuple[int, dict[str, Any]]:
    admin = netaddr.parse_networks(req.get("admin_networks") or [], "admin_networks")
    if not admin:
        raise LockdownError("admin_networks: empty; refusing to kill sessions without knowing whose to keep")
    only = netaddr.parse_networks(req.get("addresses") or [], "addresses")
    snap = sess.snapshot()
    protected = sess.ancestors(os.getpid(), snap.processes)
    kill, kept = select_sessions(snap.sessions, admin, protected, only)
    killed, survivors = kill_sessions(snap, kill, protected, check=check)
    answer = {"sessions": [s.to_dict() for s in snap.sessions], "killed": killed, "kept": kept, "survivors": survivors}
    return (1 if survivors else 0), answer


def _collect(req: Mapping[str, Any], check: bool) -> dict[str, Any]:
    admin = list(req.get("admin_networks") or [])
    intruders = list(req.get("intruder_addresses") or [])
    netaddr.parse_networks(admin, "admin_networks")
    netaddr.parse_networks(intruders, "intruder_addresses")
    clash = intruder_clash(intruders, admin)
    if clash:
        raise LockdownError(clash)
    bundle = ev.bundle_path(req["path"], req["incident_id"])
    work = tempfile.mkdtemp(prefix="sshward-evidence-check-") if check else bundle
    if not check:
        os.makedirs(bundle, mode=0o700, exist_ok=True)
    try:
        result = collect_parts(
            work, req.get("parts") or PARTS, admin, intruders, int(req.get("recent_seconds", 259200)), [req["path"]]
        )
    finally:
        if work != bundle:
            shutil.rmtree(work, ignore_errors=True)
    result["bundle"] = bundle
    return result


def _keys(req: Mapping[str, Any], check: bool) -> dict[str, Any]:
    fingerprints = list(req.get("fingerprints") or [])
    bad = [f for f in fingerprints if not str(f).startswith("SHA256:")]
    if bad:
        raise LockdownError(f"fingerprints: {bad} are not SHA256:... fingerprints as sshd logs them")
    removed = quarantine.quarantine_keys(
        ev.authorized_keys_files(ev.user_homes()),
        fingerprints,
        req.get("quarantine_file"),
        req.get("protect") or [],
        check=check,
    )
    return {"removed": [r.to_dict() for r in removed]}


def _seal(req: Mapping[str, Any]) -> dict[str, Any]:
    bundle = ev.bundle_path(req["path"], req["incident_id"])
    os.makedirs(bundle, mode=0o700, exist_ok=True)
    return seal_bundle(
        bundle,
        req["incident_id"],
        req.get("host", ""),
        req.get("admin_networks") or [],
        req.get("intruder_addresses") or [],
        req.get("containment") or [],
        req.get("mode", "lockdown"),
    )


def run_request(req: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """Run one request; (exit code, answer). Refusals come back as ``{"error": message}`` with 2."""
    action, check = req.get("action"), bool(req.get("check"))
    try:
        if action in ("sessions", "kill"):
            return _sessions(req, check=check or action == "sessions")
        if action == "collect":
            return 0, _collect(req, check)
        if action == "keys":
            return 0, _keys(req, check)
        if action == "seal":
            return 0, _seal(req)
    except (LockdownError, ev.EvidenceError, quarantine.QuarantineError, ValueError, OSError) as exc:
        return 2, {"error": str(exc)}
    return 2, {"error": f"action: {action!r} is not one of sessions, kill, collect, keys, seal"}


def main(argv: Sequence[str]) -> int:
    try:
        req = json.loads(base64.b64decode(argv[0]))
    except (IndexError, ValueError) as exc:
        print(json.dumps({"error": f"request: {exc}"}))
        return 2
    rc, answer = run_request(req)
    print(json.dumps(answer, sort_keys=True, default=str))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
