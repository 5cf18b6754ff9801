"""The harden deploy's notifier step: the role's layout (vars, template, PAM line), facts in, commands out."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyinfra.api import OperationError, StringCommand

from deploys import notify

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
LINE = "session optional pam_exec.so quiet type=open_session /usr/local/sbin/sshward-notify pam"


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
    monkeypatch.setattr(notify, "host", fake)
    return [str(StringCommand(c)) for c in notify.pam_session_hook._inner(**kwargs)], fake


def written(command: str) -> str:
    match = re.search(r"printf %s (\S+) \| base64 -d", command)
    assert match, command
    return base64.b64decode(match.group(1)).decode()


def test_the_pam_line_is_the_self_contained_door():
    assert notify.role_vars()["_ssh_notify_session_line"] == LINE


@pytest.mark.parametrize("line", [LINE, LINE.replace("sshward-notify pam", "sshward-notify-pam")])
def test_the_roles_regexp_matches_both_hook_lines(line):
    assert re.match(notify.role_vars()["_ssh_notify_session_regexp"], line)


def test_hook_goes_before_the_first_session_pam_env_line(monkeypatch):
    commands, _ = run(monkeypatch, {"/etc/pam.d/sshd": DEBIAN_PAM_SSHD.encode()})
    lines = written(commands[0]).splitlines()
    assert lines[lines.index(LINE) + 1] == "session    required     pam_env.so # [1]"
    assert lines.count(LINE) == 1


def test_hook_in_place_is_a_noop(monkeypatch):
    hooked = notify.with_hook(DEBIAN_PAM_SSHD, LINE, notify.role_vars()["_ssh_notify_session_regexp"], True)
    commands, fake = run(monkeypatch, {"/etc/pam.d/sshd": hooked.encode()})
    assert commands == [] and fake.noops == ["/etc/pam.d/sshd: the notifier hook is in place"]


def test_hook_removed_when_disabled(monkeypatch):
    hooked = notify.with_hook(DEBIAN_PAM_SSHD, LINE, notify.role_vars()["_ssh_notify_session_regexp"], True)
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
