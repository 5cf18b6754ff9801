"""Armed reverts: a change that undoes itself unless confirmed in time.

Used before an sshd reload (the probe confirms) and by lockdown's address restriction
(the admin confirms). The undo must run on the host even if the controller never
reaches it again, so `arm` writes a self-contained plan and starts a systemd timer
(or, without systemd, a detached sleeper). Files are restored from backups byte for
byte; follow-up commands are argv lists, never shell strings.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

STATE_DIR = "/var/lib/sshward/revert"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class RevertError(Exception):
    pass


def _paths(name: str, state_dir: str) -> tuple[str, str]:
    if not NAME_RE.match(name):
        raise RevertError(f"name: {name!r} must be lowercase letters, digits and dashes")
    return os.path.join(state_dir, f"{name}.json"), f"sshward-revert-{name}"


def plan_document(
    name: str, seconds: int, files: list[dict[str, str]], commands: list[list[str]], reason: str
) -> dict[str, Any]:
    if seconds < 10:
        raise RevertError("seconds: an armed revert needs at least 10 s, or it fires before the probe finishes")
    for entry in files:
        if not os.path.isabs(entry.get("path", "")) or not os.path.isabs(entry.get("backup", "")):
            raise RevertError("files: each entry needs absolute 'path' and 'backup'")
    for cmd in commands:
        if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
            raise RevertError("commands: each command is a non-empty list of strings (argv), not a shell line")
    return {
        "name": name,
        "armed_at": int(time.time()),
        "fires_at": int(time.time()) + seconds,
        "files": files,
        "commands": commands,
        "reason": reason,
    }


def arm(
    name: str,
    seconds: int,
    files: list[dict[str, str]],
    commands: list[list[str]],
    reason: str = "",
    state_dir: str = STATE_DIR,
    python: str = sys.executable or "/usr/bin/python3",
) -> dict[str, Any]:
    """Write the plan and start the timer. Re-arming the same name replaces the previous timer."""
    doc = plan_document(name, seconds, files, commands, reason)
    plan_path, unit = _paths(name, state_dir)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    tmp = plan_path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, plan_path)
    _stop_timer(unit)
    runner = [python, install_runner(state_dir), "fire", plan_path]
    if os.path.isdir("/run/systemd/system") and shutil.which("systemd-run"):
        proc = subprocess.run(
            [
                "systemd-run",
                f"--unit={unit}",
                f"--on-active={seconds}",
                "--timer-property=AccuracySec=1s",
                "--description=sshward armed revert",
                *runner,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RevertError(f"systemd-run could not arm the revert: {proc.stderr.strip()}")
        doc["mechanism"] = f"systemd timer {unit}.timer"
    else:
        pid = _spawn_sleeper(runner, seconds)
        doc["mechanism"] = f"detached process {pid}"
        doc["pid"] = pid
    with open(plan_path, "w") as fh:
        json.dump(doc, fh)
    return doc


def install_runner(state_dir: str = STATE_DIR) -> str:
    """Copy this module's own source next to the plans: under Ansible it lives in a zip that is gone
    by the time the timer fires. It imports nothing from sshward, so it runs on its own."""
    path = os.path.join(state_dir, "runner.py")
    source = inspect.getsource(sys.modules[__name__])
    tmp = path + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o700), "w") as fh:
        fh.write(source)
    os.replace(tmp, path)
    return path


def _spawn_sleeper(runner: list[str], seconds: int) -> int:
    proc = subprocess.Popen(
        [runner[0], runner[1], "sleep-fire", str(seconds), runner[3]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc.pid


def _stop_timer(unit: str) -> None:
    if shutil.which("systemctl"):
        for suffix in (".timer", ".service"):
            subprocess.run(["systemctl", "stop", unit + suffix], capture_output=True, check=False)
        subprocess.run(["systemctl", "reset-failed", unit + ".service"], capture_output=True, check=False)


def status(name: str, state_dir: str = STATE_DIR) -> dict[str, Any] | None:
    plan_path, _ = _paths(name, state_dir)
    try:
        with open(plan_path) as fh:
            doc: dict[str, Any] = json.load(fh)
    except FileNotFoundError:
        return None
    return doc


def confirm(name: str, state_dir: str = STATE_DIR) -> dict[str, Any] | None:
    """Cancel the armed revert (the change stays). Returns the plan that was cancelled, or None."""
    doc = status(name, state_dir)
    plan_path, unit = _paths(name, state_dir)
    _stop_timer(unit)
    if doc and doc.get("pid"):
        with contextlib.suppress(OSError):
            os.kill(int(doc["pid"]), 15)
    if doc is not None:
        os.unlink(plan_path)
    return doc


STATES = ("armed", "confirmed", "fired", "query")


def plan_path(name: str, state_dir: str = STATE_DIR) -> str:
    return _paths(name, state_dir)[0]


def apply_state(
    state: str,
    name: str,
    *,
    seconds: int = 0,
    files: list[dict[str, str]] | None = None,
    commands: list[list[str]] | None = None,
    reason: str = "",
    state_dir: str = STATE_DIR,
    check_mode: bool = False,
    prepare: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """One request to a named revert, as the Ansible modules expose it: arm, confirm, fire or query.

    Returns ``changed``, ``armed`` (after the request) and ``plan`` (the armed, cancelled or fired
    plan, when there is one). ``prepare`` runs just before a real arm (not in check mode): the caller
    writes there what the commands need (scripts...). A fired revert with failed steps raises.
    """
    if state not in STATES:
        raise RevertError(f"state: {state!r} is not one of {', '.join(STATES)}")
    current = status(name, state_dir)
    if state == "query":
        return {"changed": False, "armed": current is not None, "plan": current}
    if state == "armed":
        doc = plan_document(name, seconds, list(files or []), list(commands or []), reason)
        if check_mode:
            return {"changed": True, "armed": True, "plan": doc}
        if prepare is not None:
            prepare()
        doc = arm(name, seconds, list(files or []), list(commands or []), reason, state_dir)
        return {"changed": True, "armed": True, "plan": doc}
    if current is None:
        return {"changed": False, "armed": False, "plan": None}
    if check_mode:
        return {"changed": True, "armed": False, "plan": current}
    if state == "confirmed":
        return {"changed": True, "armed": False, "plan": confirm(name, state_dir)}
    if fire(plan_path(name, state_dir)) != 0:
        raise RevertError(f"the revert {name} ran but some steps failed; see {state_dir}")
    return {"changed": True, "armed": False, "plan": current}


def fire(plan_path: str) -> int:
    """Restore every file from its backup, then run the follow-up commands. Idempotent."""
    try:
        with open(plan_path) as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        return 0  # confirmed in the meantime
    failures = 0
    for entry in doc["files"]:
        try:
            if entry.get("absent"):
                if os.path.lexists(entry["path"]):
                    os.unlink(entry["path"])
                continue
            tmp = entry["path"] + ".sshward-revert"
            shutil.copy2(entry["backup"], tmp)
            os.replace(tmp, entry["path"])
        except OSError:
            failures += 1
    for cmd in doc["commands"]:
        if subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False).returncode != 0:
            failures += 1
    doc["fired_at"] = int(time.time())
    fired_path = plan_path[: -len(".json")] + ".fired.json"
    with open(fired_path, "w") as fh:
        json.dump(doc, fh)
    os.unlink(plan_path)
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "fire":
        return fire(argv[1])
    if len(argv) == 3 and argv[0] == "sleep-fire":
        time.sleep(int(argv[1]))
        return fire(argv[2])
    print("usage: revert.py fire PLAN | sleep-fire SECONDS PLAN", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
