"""sshward.bans: the fail2ban files both front ends write (the ssh_bans role's module, deploys/bans.py)."""

from __future__ import annotations

import configparser
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

from sshward import bans

ROOT = Path(__file__).resolve().parents[2]
ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles" / "ssh_bans" / "defaults" / "main.yml").read_text())


def role_settings(**overrides):
    """The module's arguments as roles/ssh_bans/tasks/jails.yml passes them with the role defaults."""
    params = {k[len("ssh_bans_") :]: v for k, v in ROLE_DEFAULTS.items() if not str(v).startswith("{{")}
    params.update({"log_backend": "systemd", "logpath": "/var/log/auth.log", "firewall": "iptables", **overrides})
    return bans.settings(params)


def jails(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_every_file_is_under_a_fail2ban_directory_and_says_who_manages_it():
    files = bans.config_files(role_settings())
    assert set(files) == {
        "jail.d/sshward.local",
        "filter.d/sshward-sshd-common.conf", "filter.d/sshward-sshd-root.conf",
        "filter.d/sshward-sshd-invalid.conf", "filter.d/sshward-sshd-valid.conf",
        "action.d/sshward-notify.conf", "action.d/sshward-abuse.conf",
    }  # fmt: skip
    assert all(text.startswith(bans.HEADER) for text in files.values())


def test_role_defaults_give_the_documented_jails():
    parsed = jails(bans.render_jails(role_settings()))
    assert parsed.sections() == ["sshd", "sshward-sshd-root", "sshward-sshd-invalid", "sshward-sshd-valid", "recidive"]
    assert [parsed.get(j, "maxretry") for j in ("sshd", "sshward-sshd-root", "sshward-sshd-invalid",
                                                "sshward-sshd-valid")] == ["10", "2", "5", "8"]  # fmt: skip
    assert parsed.get("DEFAULT", "ignoreip") == "127.0.0.1/8 ::1"
    assert parsed.get("DEFAULT", "usedns") == "no"
    assert parsed.get("sshd", "filter") == "sshd[mode=aggressive]"
    assert parsed.get("recidive", "enabled") == "true"


@pytest.mark.parametrize(("firewall", "multiport"), [("iptables", "iptables-multiport"),
                                                     ("nftables", "nftables-multiport")])  # fmt: skip
def test_ban_actions_follow_the_firewall(firewall, multiport):
    parsed = jails(bans.render_jails(role_settings(firewall=firewall)))
    assert parsed.get("DEFAULT", "banaction") == multiport
    assert parsed.get("DEFAULT", "banaction_allports") == f"{firewall}-allports"


def test_journal_or_file_in_every_sshd_jail():
    journal = jails(bans.render_jails(role_settings()))
    files = jails(bans.render_jails(role_settings(log_backend="auto", logpath="/var/log/secure")))
    for jail in ("sshd", "sshward-sshd-root", "sshward-sshd-invalid", "sshward-sshd-valid"):
        assert (journal.get(jail, "backend"), journal.get(jail, "journalmatch")) == ("systemd", bans.JOURNAL_MATCH)
        assert not journal.has_option(jail, "logpath") or journal.get(jail, "logpath") == ""
        assert (files.get(jail, "backend"), files.get(jail, "logpath")) == ("auto", "/var/log/secure")


def test_trusted_networks_are_ignored_and_notify_and_abuse_actions_follow_the_switches():
    s = role_settings(trusted_networks=["192.0.2.0/24", "2001:db8::/32"], ignoreip_extra=["198.51.100.7"],
                      admin_addresses=["203.0.113.9"], abuse_reports=True)  # fmt: skip
    parsed = jails(bans.render_jails(s))
    assert parsed.get("DEFAULT", "ignoreip") == ("127.0.0.1/8 ::1 192.0.2.0/24 2001:db8::/32 198.51.100.7 203.0.113.9")
    action = parsed.get("DEFAULT", "action")
    assert 'sshward-notify[notify="/usr/local/sbin/sshward-notify"]' in action and "sshward-abuse" in action
    quiet = jails(bans.render_jails(role_settings(notify=False)))
    assert quiet.get("DEFAULT", "action") == "%(action_)s"


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("bantime", "1h\naction = evil", "bantime"),
        ("findtime", "10m; rm -rf /", "findtime"),
        ("trusted_networks", ["192.0.2.0/24\n[sshd]"], "trusted_networks"),
        ("trusted_networks", ["not-a-network"], "trusted_networks"),
        ("ignoreip_extra", ["10.0.0.0/8 ::/0"], "ignoreip_extra"),
        ("admin_addresses", ["203.0.113.9\nbantime = 1"], "admin_addresses"),
        ("notify_command", "/usr/local/sbin/notify; touch /tmp/x", "notify_command"),
        ("notify_command", 'x"]\naction = y', "notify_command"),
        ("logpath", "/var/log/auth.log\nenabled = false", "logpath"),
        ("maxretry", 0, "maxretry"),
        ("root_maxretry", "two", "root_maxretry"),
        ("ports", [70000], "ports"),
        ("firewall", "ufw", "firewall"),
        ("log_backend", "gamin", "log_backend"),
    ],
)
def test_hostile_or_wrong_settings_are_refused_naming_the_setting(key, value, named):
    with pytest.raises(bans.BanError, match=rf"^{named}: "):
        role_settings(**{key: value})


@pytest.mark.parametrize(
    ("requested", "existing", "expected"),
    [
        ("auto", [], ("systemd", "/var/log/auth.log")),
        ("auto", ["/var/log/auth.log"], ("auto", "/var/log/auth.log")),
        ("auto", ["/var/log/secure"], ("auto", "/var/log/secure")),
        ("polling", [], ("polling", "/var/log/auth.log")),
        ("systemd", ["/var/log/auth.log"], ("systemd", "/var/log/auth.log")),
    ],
)
def test_log_source(requested, existing, expected):
    assert bans.log_source(requested, existing) == expected


def test_packages():
    assert bans.packages(role_settings()) == ["fail2ban", "python3-systemd"]
    assert bans.packages(role_settings(log_backend="auto", firewall="nftables")) == ["fail2ban", "nftables"]


def test_class_filters_keep_their_anchors():
    for name in ("sshward-sshd-root", "sshward-sshd-invalid", "sshward-sshd-valid"):
        failregex = jails(bans.FILTERS[name]).get("Definition", "failregex")
        assert all(line.startswith("^") and line.endswith("$") for line in failregex.splitlines() if line.strip())
    assert "__daemon_combs_re = (?:%(_daemon)s%(__pid_re)s:)" in bans.FILTERS["sshward-sshd-common"]


@pytest.fixture(scope="module")
def module():
    pytest.importorskip("ansible.module_utils.basic")
    import ansible.module_utils as amu

    if str(ROOT / "module_utils") not in amu.__path__:
        amu.__path__.append(str(ROOT / "module_utils"))
    spec = importlib.util.spec_from_file_location("sshward_fail2ban_mod", ROOT / "library" / "sshward_fail2ban.py")
    m = importlib.util.module_from_spec(spec)
    sys.modules["sshward_fail2ban_mod"] = m
    spec.loader.exec_module(m)
    return m


def run_module(module, monkeypatch, capsys, args):
    monkeypatch.setattr(sys, "argv", ["sshward_fail2ban", json.dumps({"ANSIBLE_MODULE_ARGS": args})])
    import ansible.module_utils.basic as basic

    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", None)
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_module_writes_what_the_core_renders_then_changes_nothing(module, tmp_path, monkeypatch, capsys):
    args = {"config_dir": str(tmp_path), "firewall": "nftables", "log_backend": "systemd",
            "trusted_networks": ["192.0.2.0/24"]}  # fmt: skip
    check = run_module(module, monkeypatch, capsys, {**args, "_ansible_check_mode": True})
    assert check["changed"] and not list(tmp_path.iterdir())
    first = run_module(module, monkeypatch, capsys, args)
    assert first["changed"] and "jail.d/sshward.local" in first["files"]
    wanted = bans.config_files(bans.settings({"firewall": "nftables", "log_backend": "systemd",
                                              "trusted_networks": ["192.0.2.0/24"]}))  # fmt: skip
    for relative, text in wanted.items():
        assert (tmp_path / relative).read_text() == text
    again = run_module(module, monkeypatch, capsys, args)
    assert again["changed"] is False and again["files"] == []


def test_module_refuses_hostile_values_before_writing(module, tmp_path, monkeypatch, capsys):
    result = run_module(module, monkeypatch, capsys, {"config_dir": str(tmp_path), "firewall": "iptables",
                                                      "log_backend": "systemd", "bantime": "1h\n[evil]"})  # fmt: skip
    assert result["failed"] and result["msg"].startswith("bantime: ")
    assert not list(tmp_path.iterdir())


def test_role_and_pyinfra_deploy_pass_the_module_every_setting(module, monkeypatch):
    from deploys import bans as deploy

    class Host:
        data = dict(deploy.role_defaults())

    monkeypatch.setattr(deploy, "host", Host)
    task = yaml.safe_load((ROOT / "roles" / "ssh_bans" / "tasks" / "jails.yml").read_text())[0]["sshward_fail2ban"]
    assert set(task) == set(module.SETTING_KEYS)
    assert set(deploy.settings_params("systemd", "/var/log/auth.log", "iptables")) == set(module.SETTING_KEYS)


@pytest.mark.parametrize(("data", "expected"), [({}, "auto"), ({"ssh_ratelimit_backend": "nftables"}, "nftables")])
def test_pyinfra_var_resolves_the_role_defaults_templating(monkeypatch, data, expected):
    from deploys import bans as deploy

    class Data(dict):
        def get(self, key, default=None):
            return super().get(key, default)

    class Host:
        pass

    Host.data = Data(ssh_bans_firewall_backend="{{ ssh_ratelimit_backend | default('auto') }}", **data)
    monkeypatch.setattr(deploy, "host", Host)
    assert deploy.var("ssh_bans_firewall_backend") == expected
