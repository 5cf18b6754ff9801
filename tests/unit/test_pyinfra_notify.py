"""The harden deploy's notifier step: the role's layout (vars, template, PAM line), facts in, commands out."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from pyinfra.api import OperationError, StringCommand

from deploys import notify
from sshward import notify_pam

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_PAM_SSHD = """@include common-auth
account    required     pam_nologin.so
session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close
session    required     pam_loginuid.so
session    optional     pam_keyinit.so force revoke
@include common-session
session    optional     pam_motd.so  motd=/run/motd.dynamic
session    optional     pam_mail.so standard noenv # [1]
session    required     pam_limits.so
session    required     pam_env.so # [1]
session    required     pam_env.so user_readenv=1 envfile=/etc/default/locale
@include common-password
"""
SPOOL = "/var/spool/sshward/notify"
LINE = notify_pam.session_line(SPOOL)
REGEXP = notify_pam.SESSION_LINE_RE.pattern


class FakeHost:
    print_prefix = "[fake] "

    def __init__(self, fact_values: dict[str, Any]) -> None:
        self.facts = fact_values
        self.noops: list[str] = []

    def get_fact(self, cls: type, **kwargs: Any) -> Any:
        return self.facts[cls.__name__]

    def noop(self, description: str) -> None:
        self.noops.append(description)


def run(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes], **kwargs: Any) -> tuple[list[str], FakeHost]:
    fake = FakeHost({"FileContents": files})
    fake.data = {"ssh_notify_spool_dir": SPOOL}  # type: ignore[attr-defined]
    monkeypatch.setattr(notify, "host", fake)
    monkeypatch.setattr("deploys.harden.host", fake)
    return [str(StringCommand(c)) for c in notify.pam_session_hook._inner(**kwargs)], fake


def written(command: str) -> str:
    match = re.search(r"printf %s (\S+) \| base64 -d", command)
    assert match, command
    return base64.b64decode(match.group(1)).decode()


def render_role_var(name: str, **values: str) -> str:
    """A templated value of roles/ssh_notify/vars/main.yml, rendered like Ansible (nested vars first)."""
    raw = dict(notify.role_vars())
    text = raw[name]
    while "{{" in text:
        text = jinja2.Template(text, undefined=jinja2.StrictUndefined).render(**raw, **values)
    return text


def test_the_roles_pam_lines_are_the_cores():
    assert (
        render_role_var("_ssh_notify_session_line", ssh_notify_spool_dir=SPOOL),
        render_role_var("_ssh_notify_failure_args", ssh_notify_spool_dir=SPOOL),
        notify.role_vars()["_ssh_notify_session_regexp"],
    ) == (LINE, notify_pam.pam_exec_args(SPOOL, "failure"), REGEXP)


@pytest.mark.parametrize(
    "line",
    [
        LINE,
        "session optional pam_exec.so quiet type=open_session /usr/local/sbin/sshward-notify pam",
        "session optional pam_exec.so quiet type=open_session /usr/local/sbin/sshward-notify-pam",
    ],
)
def test_the_roles_regexp_matches_this_and_earlier_hook_lines(line):
    assert re.match(notify.role_vars()["_ssh_notify_session_regexp"], line)


def test_notifier_units_are_the_roles_templates():
    units = notify.notifier_units(SPOOL, "/etc/sshward/notify.json", "5min")
    assert sorted(units) == [
        "sshward-notify-flush.service",
        "sshward-notify-flush.timer",
        "sshward-notify-watch.service",
    ]
    assert (
        "ExecStart=/usr/local/sbin/sshward-notify --config /etc/sshward/notify.json watch"
        in units["sshward-notify-watch.service"]
    )
    assert (
        "ExecStart=/usr/local/sbin/sshward-notify --config /etc/sshward/notify.json flush"
        in units["sshward-notify-flush.service"]
    )
    assert "OnUnitActiveSec=5min" in units["sshward-notify-flush.timer"]


def test_hook_goes_before_the_first_session_pam_env_line(monkeypatch):
    commands, _ = run(monkeypatch, {"/etc/pam.d/sshd": DEBIAN_PAM_SSHD.encode()})
    lines = written(commands[0]).splitlines()
    assert lines[lines.index(LINE) + 1] == "session    required     pam_env.so # [1]"
    assert lines.count(LINE) == 1


def test_hook_in_place_is_a_noop(monkeypatch):
    hooked = notify.with_hook(DEBIAN_PAM_SSHD, LINE, REGEXP, True)
    commands, fake = run(monkeypatch, {"/etc/pam.d/sshd": hooked.encode()})
    assert commands == [] and fake.noops == ["/etc/pam.d/sshd: the notifier hook is in place"]


def test_hook_removed_when_disabled(monkeypatch):
    hooked = notify.with_hook(DEBIAN_PAM_SSHD, LINE, REGEXP, True)
    commands, _ = run(monkeypatch, {"/etc/pam.d/sshd": hooked.encode()}, present=False)
    assert written(commands[0]) == DEBIAN_PAM_SSHD


def test_missing_pam_file_refused_when_hooking(monkeypatch):
    with pytest.raises(OperationError, match="/etc/pam.d/sshd is missing"):
        run(monkeypatch, {})


def test_entry_point_is_the_roles_template():
    text = notify.entry_point("/usr/bin/python3", "/usr/local/lib/sshward")
    assert text.startswith("#!/usr/bin/python3 -I\n")
    assert 'sys.path.insert(0, "/usr/local/lib/sshward")' in text
    assert "from sshward.notify import main" in text


def test_config_has_the_roles_keys(monkeypatch):
    class Data(dict):
        def get(self, key, default=None):
            return super().get(key, default)

    defaults = yaml.safe_load((ROOT / "roles/ssh_notify/defaults/main.yml").read_text())
    data = Data(defaults, ssh_notify_channels=[{"type": "webhook", "url": "http://192.0.2.1/h", "x": None}])

    class Host:
        pass

    Host.data = data
    monkeypatch.setattr("deploys.harden.host", Host)
    role_config = yaml.safe_load((ROOT / "roles/ssh_notify/vars/main.yml").read_text())["_ssh_notify_config"]
    config = notify.config()
    assert set(config) == set(role_config)
    assert config["channels"] == [{"type": "webhook", "url": "http://192.0.2.1/h"}]


def test_the_installed_core_files_are_all_the_notifier_imports(tmp_path):
    # role and deploy copy only _ssh_notify_core_files: a core import missing from it breaks every host
    package = tmp_path / "sshward"
    package.mkdir()
    for name in notify.role_vars()["_ssh_notify_core_files"]:
        (package / name).write_bytes((notify.CORE / name).read_bytes())
    code = "import sys; sys.path.insert(0, sys.argv[1]); import sshward.notify"
    # -S: no site, so the editable install of this checkout cannot answer the import instead
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
