"""pyinfra step of the harden deploy: the login notifier's hook (roles/ssh_notify), kept small.

The role's own layout is reused, not restated: the core files come from
``roles/ssh_notify/vars/main.yml``, the PAM line from the core (``sshward.notify_pam``, which the
role's vars equal, unit-tested), the entry point and the units are the role's templates,
the configuration is the role's ``_ssh_notify_config`` shape checked by the core's
``sshward.notify.config_from_dict`` before it is written (0600). Installed: the core's notifier
modules under ``ssh_notify_install_dir/sshward``, the entry point, spool and state directories,
the config, the resident watcher (delivers each capture pam_exec writes; the path unit of
earlier versions is removed) and the retry service and timer, and the sshd session hook. Not yet: the sudo hooks and the
pam-auth-update failure profile (the role does those). With no channel, an earlier hook, config
and units are removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from io import StringIO
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pyinfra import host
from pyinfra.api import OperationError, deploy, operation
from pyinfra.facts.files import File
from pyinfra.operations import files, server, systemd

from deploys import facts
from deploys.harden import ROLES_DIR, role_defaults, var
from deploys.operations import write_file_command
from sshward import notify as core_notify
from sshward import notify_pam

ROLE = ROLES_DIR / "ssh_notify"
#: The core package as installed (the checkout's module_utils/sshward, or site-packages).
CORE = Path(core_notify.__file__).resolve().parent
ROLES = ("ssh_notify",)
PAM_SSHD = "/etc/pam.d/sshd"
#: The role inserts the hook before the first session pam_env line (see roles/ssh_notify/tasks/pam.yml).
BEFORE = re.compile(r"^\s*session\s+\S+\s+pam_env\.so")


@cache
def role_vars() -> dict[str, Any]:
    """The role's internal values (as written: the templated ones are computed by the core here)."""
    data: dict[str, Any] = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    return data


def config() -> dict[str, Any]:
    """``_ssh_notify_config`` of roles/ssh_notify/vars/main.yml, from the data keys."""
    channels = [{k: v for k, v in c.items() if v is not None} for c in var("ssh_notify_channels") or []]
    return {
        "hostname": var("ssh_notify_hostname"),
        "spool_dir": var("ssh_notify_spool_dir"),
        "state_dir": var("ssh_notify_state_dir"),
        "timeout": var("ssh_notify_timeout"),
        "rate_limit_per_minute": var("ssh_notify_rate_limit_per_minute"),
        "network_prefix": {
            "ipv4": var("ssh_notify_network_prefix_ipv4"),
            "ipv6": var("ssh_notify_network_prefix_ipv6"),
        },
        "sudo": var("ssh_notify_sudo"),
        "max_spool_events": var("ssh_notify_max_spool_events"),
        "max_age_days": var("ssh_notify_max_age_days"),
        "authlog": {
            "journal": var("ssh_notify_authlog_journal"),
            "files": var("ssh_notify_authlog_files"),
            "wait": var("ssh_notify_authlog_wait"),
        },
        "channels": channels,
    }


def render_template(name: str, **values: Any) -> str:
    """One of the role's templates, rendered as Ansible renders it."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["to_json"] = json.dumps
    template = env.from_string((ROLE / "templates" / name).read_text())
    return template.render(ansible_managed="Managed by sshward (pyinfra)", **values)


def entry_point(python: str, install_dir: str) -> str:
    """The role's sshward-notify.py.j2."""
    return render_template("sshward-notify.py.j2", ssh_notify_python=python, ssh_notify_install_dir=install_dir)


def notifier_units(spool_dir: str, config_path: str, flush_interval: str) -> dict[str, str]:
    """The role's watcher service and retry service and timer, by unit file name."""
    rv = role_vars()
    values = {
        "_ssh_notify_unit": rv["_ssh_notify_unit"],
        "_ssh_notify_watch_unit": rv["_ssh_notify_watch_unit"],
        "_ssh_notify_script": rv["_ssh_notify_script"],
        "ssh_notify_spool_dir": spool_dir,
        "ssh_notify_config_path": config_path,
        "ssh_notify_flush_interval": flush_interval,
    }
    names = [
        f"{rv['_ssh_notify_watch_unit']}.service",
        f"{rv['_ssh_notify_unit']}.service",
        f"{rv['_ssh_notify_unit']}.timer",
    ]
    return {name: render_template(f"{name}.j2", **values) for name in names}


def remove_notifier_units() -> None:
    """roles/ssh_notify/tasks/absent.yml: a watcher left running without its config would restart forever."""
    rv = role_vars()
    removed = [
        remove_legacy_path_unit(),
        remove_unit(f"{rv['_ssh_notify_watch_unit']}.service", stop=True),
        remove_unit(f"{rv['_ssh_notify_unit']}.timer", stop=True),
        remove_unit(f"{rv['_ssh_notify_unit']}.service", stop=False),
    ]
    if any(removed):
        systemd.daemon_reload(name="Reload systemd (the notifier's units are gone)")


def remove_legacy_path_unit() -> bool:
    """roles/ssh_notify/tasks/legacy_path_unit.yml: the path unit started a service at every login."""
    # a failed unit stays in systemctl --failed after its file is gone
    return remove_unit(role_vars()["_ssh_notify_legacy_path_unit"], stop=True, forget_failure=True)


def remove_unit(name: str, *, stop: bool, forget_failure: bool = False) -> bool:
    """Stop and disable a unit of ours (``stop``), then remove its file; False when it is not installed."""
    path = f"/etc/systemd/system/{name}"
    if host.get_fact(File, path=path) is None:
        return False
    if stop:
        systemd.service(name=f"Stop and disable {name}", service=name, running=False, enabled=False)
    if forget_failure:
        server.shell(name=f"Forget a failure of {name}", commands=[f"systemctl reset-failed {name} || true"])
    files.file(name=f"Remove {name}", path=path, present=False)
    return True


def with_hook(text: str, line: str, regexp: str, present: bool) -> str:
    """The PAM stack with the hook line present (before the first session pam_env line) or absent."""
    pattern = re.compile(regexp)
    lines = text.splitlines()
    kept = [ln for ln in lines if not pattern.match(ln)]
    if present:
        at = next((i for i, ln in enumerate(kept) if BEFORE.match(ln)), len(kept))
        kept.insert(at, line)
        if [ln for ln in lines if pattern.match(ln)] == [line] and lines.index(line) == at:
            return text  # already where the role puts it
    return "\n".join(kept) + ("\n" if text.endswith("\n") or not text else "")


@operation()
def pam_session_hook(present: bool = True, path: str = PAM_SSHD) -> Iterator[str]:
    """The notifier's pam_exec line in the sshd session stack (roles/ssh_notify/tasks/pam.yml)."""
    current = host.get_fact(facts.FileContents, paths=(path,)).get(path)
    if current is None:
        if present:
            raise OperationError(f"{path} is missing: cannot hook the notifier into sshd's PAM session stack")
        host.noop(f"{path} is missing")
        return
    text = current.decode("utf-8", "surrogateescape")
    line = notify_pam.session_line(str(var("ssh_notify_spool_dir")))
    after = with_hook(text, line, notify_pam.SESSION_LINE_RE.pattern, present)
    if after == text:
        host.noop(f"{path}: the notifier hook is {'in place' if present else 'absent'}")
        return
    yield write_file_command(path, after, "0644")


def notify_steps() -> None:
    """The operations, for a deploy whose data holds the ssh_notify variables (the harden deploy's does)."""
    rv = role_vars()
    enabled = var("ssh_notify_enabled")
    if isinstance(enabled, str):  # the role's default is a template: enabled when channels are set
        enabled = bool(var("ssh_notify_channels"))
    config_path = str(var("ssh_notify_config_path"))
    if not enabled:
        pam_session_hook(name="No notifier hook in sshd's PAM session stack", present=False)
        remove_notifier_units()
        files.file(name="No notifier configuration", path=config_path, present=False)
        return
    data = config()
    try:
        core_notify.config_from_dict(data, "ssh_notify_channels")
        notify_pam.check_spool_dir(str(var("ssh_notify_spool_dir")))
    except (ValueError, TypeError) as exc:
        raise OperationError(f"ssh_notify: {exc}") from exc
    install_dir = str(var("ssh_notify_install_dir"))
    files.directory(name="The notifier's core directory", path=f"{install_dir}/sshward", mode="0755")
    code = [
        files.put(
            name=f"Notifier module {name} (the sshward core)",
            src=str(CORE / name),
            dest=f"{install_dir}/sshward/{name}",
            user="root",
            group="root",
            mode="0644",
        )
        for name in rv["_ssh_notify_core_files"]
    ]
    entry = files.put(
        name="The sshward-notify entry point",
        src=StringIO(entry_point(str(var("ssh_notify_python")), install_dir)),
        dest=rv["_ssh_notify_script"],
        user="root", group="root", mode="0755",
    )  # fmt: skip
    for directory in (var("ssh_notify_spool_dir"), var("ssh_notify_state_dir")):
        files.directory(name=f"Notifier directory {directory} (root only)", path=str(directory), mode="0700")
    files.directory(name="The configuration directory", path=config_path.rsplit("/", 1)[0], mode="0755")
    configuration = files.put(
        name="The notifier configuration (secrets, root only)",
        src=StringIO(json.dumps(data, indent=4, sort_keys=True) + "\n"),
        dest=config_path,
        user="root", group="root", mode="0600",
    )  # fmt: skip
    remove_legacy_path_unit()
    units = notifier_units(str(var("ssh_notify_spool_dir")), config_path, str(var("ssh_notify_flush_interval")))
    written = [
        files.put(
            name=f"The {name} unit",
            src=StringIO(text),
            dest=f"/etc/systemd/system/{name}",
            user="root",
            group="root",
            mode="0644",
        )
        for name, text in units.items()
    ]
    reload = any(op.will_change for op in written)
    # The watcher loaded the code and the config when it started (the role's restart handler).
    restart = reload or any(op.will_change for op in [*code, entry, configuration])
    watch_unit = f"{rv['_ssh_notify_watch_unit']}.service"
    systemd.service(
        name=f"Start {watch_unit}, restarted when its code, config or unit changed",
        service=watch_unit, running=True, enabled=True, restarted=restart, daemon_reload=reload,
    )  # fmt: skip
    timer = f"{rv['_ssh_notify_unit']}.timer"
    systemd.service(name=f"Enable and start {timer}", service=timer, running=True, enabled=True)
    # The hook last: a capture written before the watcher runs would wait for the timer.
    pam_session_hook(name="Hook the notifier into sshd's PAM session stack", present=True)


@deploy("Login notifications (sshward ssh_notify)", data_defaults=role_defaults(ROLES))
def notify_hook() -> None:
    notify_steps()


# Run on its own (`pyinfra INVENTORY deploys/notify.py`); the harden deploy calls it as its last step.
if __name__ in ("builtins", "__main__"):
    notify_hook()
