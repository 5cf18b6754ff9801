"""The harden deploy's data: role variables as data keys, defaults from the roles, one YAML policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploys import harden

ROOT = Path(__file__).resolve().parents[2]


def test_importable_as_documented():
    from deploys import harden as again

    assert callable(again.harden)


def test_defaults_are_the_roles_defaults():
    for role in harden.ROLES:
        defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
        for key, value in defaults.items():
            assert harden.role_defaults()[key] == value, key


def test_policy_keys_are_the_roles_policy():
    assert "permit_root_login" in harden.policy_keys()
    assert "users" not in harden.policy_keys()


def test_policy_file_overrides_defaults(tmp_path, monkeypatch):
    policy = tmp_path / "policy.yml"
    policy.write_text("ssh_hardening_permit_root_login: prohibit-password\nsshward_trusted_networks: [10.0.0.0/8]\n")
    monkeypatch.setenv("SSHWARD_POLICY", str(policy))
    data = harden.data_defaults()
    assert data["ssh_hardening_permit_root_login"] == "prohibit-password"
    assert data["ssh_hardening_crypto"] == "hardened"
    assert data["ssh_ratelimit_trusted_networks"] == "{{ sshward_trusted_networks }}"  # resolved per host


def test_var_resolves_the_defaults_templating(monkeypatch):
    class Data(dict):
        def get(self, key, default=None):
            return super().get(key, default)

    class Host:
        data = Data(ssh_ratelimit_trusted_networks="{{ sshward_trusted_networks }}", sshward_trusted_networks=["10/8"])

    monkeypatch.setattr(harden, "host", Host)
    assert harden.var("ssh_ratelimit_trusted_networks") == ["10/8"]


def test_installed_package_carries_the_role_files_it_reads():
    """pyproject ships deploys/_roles: every role file the deploys read matches its package-data."""
    import fnmatch
    import tomllib

    from deploys import lockdown, notify

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "deploys" in tool["packages"] and tool["package-dir"]["deploys._roles"] == "roles"
    patterns = tool["package-data"]["deploys._roles"]
    read = [f"{role}/defaults/main.yml" for role in (*harden.ROLES, *lockdown.ROLES, *notify.ROLES)]
    read += ["ssh_hardening/vars/main.yml", "ssh_notify/vars/main.yml", "ssh_notify/templates/sshward-notify.py.j2"]
    for path in read:
        assert (ROOT / "roles" / path).is_file(), path
        assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), path


def test_lockdown_defaults_are_the_roles():
    from deploys import lockdown

    defaults = yaml.safe_load((ROOT / "roles/ssh_lockdown/defaults/main.yml").read_text())
    assert {k: lockdown.DEFAULTS[k] for k in defaults} == defaults


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("no", False), ("true", True), (True, True),
                                                  (False, False), ([], False)])  # fmt: skip
def test_lockdown_flags_read_command_line_strings(monkeypatch, value, expected):
    from deploys import lockdown

    monkeypatch.setattr(lockdown, "var", lambda name: value)
    assert lockdown.flag("ssh_lockdown_confirm") is expected
