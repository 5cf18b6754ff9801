"""SSHW-NOTIFY: login notifications are hooked into PAM, configured privately, retried, and delivered.

Applies to hosts where the ssh_notify role is configured (channels set); skipped elsewhere.
Expected values come from the host's variables as the suite reads them (inventory and ``--policy``,
verify/policy.py), falling back to the role defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sshward import notify_pam

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "roles" / "ssh_notify" / "defaults" / "main.yml"
SCRIPT = "/usr/local/sbin/sshward-notify"
TIMER = "sshward-notify-flush.timer"
WATCHER = "sshward-notify-watch.service"


def _defaults() -> dict[str, Any]:
    try:
        data = yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))
    except OSError:
        return {}
    return data if isinstance(data, dict) else {}


@pytest.fixture(scope="module")
def policy(variables) -> dict[str, Any]:
    """The role's variables for this host (role defaults under the host's own)."""
    return {**_defaults(), **{k: v for k, v in variables.items() if k.startswith("ssh_notify_")}}


@pytest.fixture(scope="module")
def notify(policy):
    channels = policy.get("ssh_notify_channels") or []
    enabled = policy.get("ssh_notify_enabled", True)
    if isinstance(enabled, str):  # the default is a template: true when channels exist
        enabled = bool(channels)
    if not channels or not enabled:
        pytest.skip("ssh_notify is not configured for this host (no ssh_notify_channels)")
    return policy


def _pam_lines(host, path: str) -> list[list[str]]:
    with host.sudo():
        content = host.file(path).content_string
    rows = []
    for line in content.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            rows.append(words)
    return rows


def _is_hook(words: list[str], stack: str, kind: str, spool_dir: str) -> bool:
    """The notifier's pam_exec line: env writing into this spool's capture file (notify_pam's format)."""
    if len(words) < 4 or words[0] != stack or "pam_exec.so" not in words[2:]:
        return False
    return words[words.index("pam_exec.so") + 1 :] == notify_pam.pam_exec_args(spool_dir, kind).split()


def _spool(notify: dict[str, Any]) -> str:
    return str(notify.get("ssh_notify_spool_dir", notify_pam.DEFAULT_SPOOL))


@pytest.mark.control("SSHW-NOTIFY-001", "sshd's PAM session stack runs the notifier (optional pam_exec)")
def test_sshd_session_hook(host, notify):
    if not notify.get("ssh_notify_pam_sshd", True):
        pytest.skip("ssh_notify_pam_sshd is false")
    hooks = [w for w in _pam_lines(host, "/etc/pam.d/sshd") if _is_hook(w, "session", "session", _spool(notify))]
    assert [w[1] for w in hooks] == ["optional"]


@pytest.mark.control("SSHW-NOTIFY-002", "the sshd hook runs before pam_env reads the user's environment")
def test_sshd_hook_before_pam_env(host, notify):
    if not notify.get("ssh_notify_pam_sshd", True):
        pytest.skip("ssh_notify_pam_sshd is false")
    rows = _pam_lines(host, "/etc/pam.d/sshd")
    hook = next(i for i, w in enumerate(rows) if _is_hook(w, "session", "session", _spool(notify)))
    env = [i for i, w in enumerate(rows) if w[0] == "session" and "pam_env.so" in w[2:]]
    assert all(hook < i for i in env)


@pytest.mark.control("SSHW-NOTIFY-003", "sshd uses PAM (the session hook needs UsePAM yes)")
def test_sshd_uses_pam(host, notify):
    with host.sudo():
        result = host.run("mkdir -p /run/sshd && sshd -T")
    assert "usepam yes" in result.stdout.lower().splitlines()


@pytest.mark.control("SSHW-NOTIFY-004", "failed sudo/su authentications reach the notifier (common-auth)")
def test_failure_hook(host, notify):
    if not notify.get("ssh_notify_pam_failures", True):
        pytest.skip("ssh_notify_pam_failures is false")
    hooks = [w for w in _pam_lines(host, "/etc/pam.d/common-auth") if _is_hook(w, "auth", "failure", _spool(notify))]
    assert len(hooks) == 1


@pytest.mark.control("SSHW-NOTIFY-005", "the notifier configuration is a root-only file (0600 root:root)")
def test_config_private(host, notify):
    path = notify.get("ssh_notify_config_path", "/etc/sshward/notify.json")
    with host.sudo():
        config = host.file(path)
        facts = (config.is_file, config.is_symlink, config.user, config.group, oct(config.mode))
    assert facts == (True, False, "root", "root", "0o600")


@pytest.mark.control("SSHW-NOTIFY-006", "the notifier configuration is valid and names every channel")
def test_config_valid(host, notify):
    path = notify.get("ssh_notify_config_path", "/etc/sshward/notify.json")
    with host.sudo():
        result = host.run(f"{SCRIPT} --config {path} check")
    assert (result.rc, f"{len(notify['ssh_notify_channels'])} channel(s) configured" in result.stdout) == (0, True)


@pytest.mark.control("SSHW-NOTIFY-007", "the spool of undelivered events is root-only (0700)")
def test_spool_private(host, notify):
    path = notify.get("ssh_notify_spool_dir", "/var/spool/sshward/notify")
    with host.sudo():
        spool = host.file(path)
        facts = (spool.is_directory, spool.user, oct(spool.mode))
    assert facts == (True, "root", "0o700")


@pytest.mark.control("SSHW-NOTIFY-008", "the flush timer that retries spooled events is active")
def test_flush_timer(host, notify):
    timer = host.service(TIMER)
    assert (timer.is_enabled, timer.is_running) == (True, True)


@pytest.mark.control("SSHW-NOTIFY-010", "the resident deliverer that sends each login as it is captured is running")
def test_watcher_running(host, notify):
    unit = host.service(WATCHER)
    assert (unit.is_enabled, unit.is_running) == (True, True)


@pytest.mark.control("SSHW-NOTIFY-009", "a test event is delivered through every channel")
def test_test_event_delivered(host, notify):
    path = notify.get("ssh_notify_config_path", "/etc/sshward/notify.json")
    with host.sudo():
        result = host.run(f"{SCRIPT} --config {path} test")
    assert result.rc == 0, result.stdout + result.stderr
