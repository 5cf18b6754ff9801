"""The pyinfra lockdown deploy against a lab target with a live intruder (lab ``pyinfralock``).

The target (bookworm) has a user ``deploy`` with a password and the intruder's key; the intruder
container holds an interactive SSH session open on it. pyinfra comes in over real SSH from this
machine (the admin address is the lab network's gateway). A dry run must change nothing; the real
run must restrict new SSH connections to the admin address with the revert armed (and the revert
must remove the restriction by itself), kill the intruder's session, turn passwords off and move
the intruder's key into the evidence, which is fetched to the controller.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from sshward import notify_pam
from tests.conftest import ROOT, run
from tests.lab.harden_lab import LabHandle

LAB = "pyinfralock"
INCIDENT = "pytest-pyinfralock"
#: Long enough for the whole run on a loaded machine; the last test waits for it.
REVERT_SECONDS = 300
INTRUDER_SSH = ["ssh", "-i", "/root/intruder_key", "-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes"]


def pyinfra(lab: LabHandle, *args: str, check: bool = True) -> str:
    env = {"PYTHONPATH": f"{ROOT / 'module_utils'}:{ROOT}"}  # this checkout's core, not an installed one
    proc = run(["pyinfra", *args, str(lab.inv), "deploys/lockdown.py"], env=env, cwd=ROOT, check=check, timeout=900)
    return proc.stdout + proc.stderr


def intruder_session_alive(lab: LabHandle) -> bool:
    return lab.exec("target", "pgrep", "-u", "deploy", "-f", "sleep 7777", check=False).returncode == 0


def state(lab: LabHandle) -> dict[str, str]:
    """What the lockdown may change, for the dry run's before/after."""
    return {
        "etc_ssh": lab.etc_ssh_digest("target"),
        "rules": "\n".join(
            line for line in lab.exec("target", "iptables-save").stdout.splitlines() if "SSHWARD" in line
        ),
        "keys": lab.exec("target", "cat", "/home/deploy/.ssh/authorized_keys").stdout,
        "sshward": lab.exec("target", "sh", "-c", "ls -R /var/lib/sshward 2>/dev/null; true").stdout,
        "passwd": lab.exec("target", "passwd", "-S", "deploy").stdout,
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    handle = LabHandle(tmp_path_factory.mktemp("pyinfralock"), LAB)
    handle.lab("up", "target=bookworm", "intruder=bookworm")
    try:
        target = handle.address("target")
        handle.set_password("target", "deploy", "Winter2024!")
        handle.exec("intruder", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/root/intruder_key")
        pub = handle.exec("intruder", "cat", "/root/intruder_key.pub").stdout.strip()
        handle.exec(
            "target", "sh", "-c",
            "install -d -m 0700 -o deploy /home/deploy/.ssh"
            f" && printf '%s\\n' '{pub}' > /home/deploy/.ssh/authorized_keys"
            " && chown deploy /home/deploy/.ssh/authorized_keys && chmod 0600 /home/deploy/.ssh/authorized_keys",
        )  # fmt: skip
        handle.intruder_fp = handle.exec("intruder", "ssh-keygen", "-lf", "/root/intruder_key.pub").stdout.split()[1]
        # The intruder's interactive session, open through the whole run.
        run(
            [
                "docker",
                "exec",
                "-d",
                handle.container("intruder"),
                *INTRUDER_SSH,
                "-tt",
                f"deploy@{target}",
                "sleep 7777",
            ]
        )
        for _ in range(30):
            if intruder_session_alive(handle):
                break
            time.sleep(1)
        assert intruder_session_alive(handle), "the intruder's session did not open"
        handle.evidence = handle.dir / "evidence"
        data = {
            "_sudo": True,
            "ssh_user": "admin",
            "ssh_key": str(handle.dir / "id_ed25519"),
            "ssh_known_hosts_file": str(handle.dir / "known_hosts"),
            "ssh_strict_host_key_checking": "yes",
            "ssh_lockdown_incident_id": INCIDENT,
            "ssh_lockdown_revert_seconds": REVERT_SECONDS,
            "ssh_lockdown_evidence_dir": str(handle.evidence),
            "ssh_lockdown_lock_accounts": ["deploy"],
        }
        handle.inv = handle.dir / "inventory-lockdown.py"
        handle.inv.write_text(f"hosts = [({target!r}, {data!r})]\n")
        handle.before = state(handle)
        handle.dry = pyinfra(handle, "--dry")
        handle.after_dry = state(handle)
        handle.alive_after_dry = intruder_session_alive(handle)
        handle.output = pyinfra(handle, "-y")
        # Read at once: the armed revert removes the restriction later (the last test waits for that).
        handle.rules = handle.exec("target", "iptables-save").stdout
        handle.timers = handle.exec("target", "systemctl", "list-timers", "--all", "--no-legend").stdout
        handle.plan = handle.exec("target", "cat", "/var/lib/sshward/revert/lockdown-restrict.json", check=False).stdout
        handle.intruder_probe = handle.exec(
            "intruder", *INTRUDER_SSH, "-o", "ConnectTimeout=5", f"deploy@{target}", "true", check=False
        ).returncode
        yield handle
    finally:
        handle.lab("down")


def test_dry_run_says_what_it_would_do(lab):
    assert "Step 1, new SSH connections only from the admin addresses" in lab.dry
    assert "killing deploy from" in lab.dry


@pytest.mark.parametrize("what", ["etc_ssh", "rules", "keys", "sshward", "passwd"])
def test_dry_run_changes_nothing(lab, what):
    assert lab.before[what] == lab.after_dry[what]


def test_dry_run_leaves_the_intruder_connected(lab):
    assert lab.alive_after_dry


def test_intruder_session_killed(lab):
    assert not intruder_session_alive(lab)


def test_ssh_restricted_to_the_admin_address(lab):
    rules = lab.rules
    admin = lab.ssh("target", "admin", "printenv", "SSH_CONNECTION").stdout.split()[0]
    assert f"-A SSHWARD-RESTRICT -s {admin}/32 -j RETURN" in rules


def test_intruder_cannot_open_a_new_connection(lab):
    assert lab.intruder_probe != 0


def test_admin_still_gets_in(lab):
    assert lab.ssh("target", "admin", "true").returncode == 0


def test_revert_armed(lab):
    plan = json.loads(lab.plan)
    assert plan["reason"] == "lockdown address restriction"
    assert plan["fires_at"] - plan["armed_at"] == REVERT_SECONDS
    assert any(
        "SSHWARD-RESTRICT" in " ".join(argv) or argv[0].endswith("iptables-restore") for argv in plan["commands"]
    )
    assert "sshward-revert-lockdown-restrict.timer" in lab.timers


def test_passwords_off(lab):
    effective = lab.sshd_T("target")
    assert effective["passwordauthentication"] == ["no"]
    assert effective["kbdinteractiveauthentication"] == ["no"]


def test_no_reload_left_owed(lab):
    assert lab.exec("target", "test", "-e", "/run/sshward/sshd-reload-pending.json", check=False).returncode == 1


def test_intruder_key_quarantined(lab):
    assert "intruder_key" not in lab.exec("target", "cat", "/home/deploy/.ssh/authorized_keys").stdout
    fp = lab.intruder_fp
    keys = lab.exec("target", "cat", f"/var/lib/sshward/evidence/{INCIDENT}/quarantine/keys.json").stdout
    assert fp in [k["fingerprint"] for k in json.loads(keys)]


def test_account_locked(lab):
    assert lab.exec("target", "passwd", "-S", "deploy").stdout.split()[1] == "L"


def test_evidence_fetched_and_sealed(lab):
    bundle = Path(lab.evidence) / lab.address("target") / INCIDENT
    report = json.loads((bundle / "report.json").read_text())
    steps = {s["step"]: s["status"] for s in report["containment"]}
    assert steps["restrict"] == "restricted"
    assert steps["sessions"] == "killed"
    assert steps["passwords"] == "disabled"
    assert steps["keys"] == "quarantined"
    assert (bundle / "MANIFEST.sha256").is_file()
    check = run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=bundle, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_refuses_without_an_admin_address(lab, tmp_path):
    inventory = tmp_path / "docker.py"
    inventory.write_text(f"hosts = [({'@docker/' + lab.container('target')!r}, {{}})]\n")
    proc = run(
        ["pyinfra", "-y", str(inventory), "deploys/lockdown.py"],
        env={"PYTHONPATH": f"{ROOT / 'module_utils'}:{ROOT}"}, cwd=ROOT, check=False, timeout=600,
    )  # fmt: skip
    assert "Refusing to start: no admin address is known." in proc.stdout + proc.stderr
    assert proc.returncode != 0


# ------------------------------------------------ the harden deploy's notifier step, on the same target

NOTIFY_DATA = {"ssh_notify_channels": [{"type": "webhook", "url": "http://127.0.0.1:9/hook", "name": "lab"}]}


@pytest.fixture(scope="module")
def notified(lab):
    inventory = lab.dir / "inventory-notify.py"
    data = {
        "_sudo": True,
        "ssh_user": "admin",
        "ssh_key": str(lab.dir / "id_ed25519"),
        "ssh_known_hosts_file": str(lab.dir / "known_hosts"),
        "ssh_strict_host_key_checking": "yes",
        **NOTIFY_DATA,
    }
    inventory.write_text(f"hosts = [({lab.address('target')!r}, {data!r})]\n")
    env = {"PYTHONPATH": f"{ROOT / 'module_utils'}:{ROOT}"}
    argv = ["pyinfra", "-y", str(inventory), "deploys/notify.py"]
    first = run(argv, env=env, cwd=ROOT, timeout=600)
    second = run(argv, env=env, cwd=ROOT, timeout=600)
    return first.stdout + first.stderr, second.stdout + second.stderr


def test_notify_hook_before_pam_env(notified, lab):
    lines = [ln.strip() for ln in lab.exec("target", "cat", "/etc/pam.d/sshd").stdout.splitlines()]
    hook = notify_pam.session_line(notify_pam.DEFAULT_SPOOL)
    assert lines.count(hook) == 1
    assert lines[lines.index(hook) + 1].split()[:3] == ["session", "required", "pam_env.so"]


def test_notify_login_is_captured_and_spooled(notified, lab):
    # the deploy's resident watcher delivers; the lab channel (port 9) refuses, so the
    # login waits in the spool, with what sshd itself set in the PAM environment
    login = lab.ssh("target", "admin", "echo SSH_CLIENT=$SSH_CLIENT")
    assert login.returncode == 0, login.stderr
    port = next(x for x in login.stdout.splitlines() if x.startswith("SSH_CLIENT=")).split()[1]
    dump = (
        "import glob, json; print(json.dumps([json.load(open(f))"
        " for f in glob.glob('/var/spool/sshward/notify/*.json')]))"
    )
    deadline = time.monotonic() + 120
    logins: list[dict] = []
    while time.monotonic() < deadline and not logins:
        entries = json.loads(lab.exec("target", "python3", "-c", dump).stdout)
        logins = [e["event"]["fields"] for e in entries if e["event"]["fields"].get("port") == port]
        time.sleep(2)
    assert [(f["user"], f["method"], f["service"]) for f in logins] == [("admin", "publickey", "sshd")]


def test_notify_config_root_only_and_valid(notified, lab):
    assert lab.exec("target", "stat", "-c", "%a %U", "/etc/sshward/notify.json").stdout.split() == ["600", "root"]
    check = lab.exec("target", "/usr/local/sbin/sshward-notify", "check", "/etc/sshward/notify.json", check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_notify_second_run_changes_nothing(notified):
    assert re.search(r"Grand total\s+\d+\s+-\s+-", notified[1]), notified[1][-1500:]


def test_a_login_is_spooled_by_the_hook(notified, lab):
    assert lab.ssh("target", "admin", "true").returncode == 0
    for _ in range(20):
        spooled = lab.exec("target", "sh", "-c", "ls /var/spool/sshward/notify/ 2>/dev/null; true").stdout.split()
        if any(name.endswith(".json") for name in spooled):
            break
        time.sleep(1)
    assert any(name.endswith(".json") for name in spooled)


def test_notify_watcher_runs(notified, lab):
    active = lab.exec("target", "systemctl", "is-active", "sshward-notify-watch.service", check=False)
    assert active.stdout.strip() == "active"


def test_notify_without_channels_removes_hook_config_and_units(notified, lab):
    """After the tests above: the deploy run again with no channel takes everything back."""
    inventory = lab.dir / "inventory-notify-off.py"
    data = {
        "_sudo": True,
        "ssh_user": "admin",
        "ssh_key": str(lab.dir / "id_ed25519"),
        "ssh_known_hosts_file": str(lab.dir / "known_hosts"),
        "ssh_strict_host_key_checking": "yes",
        "ssh_notify_channels": [],
    }
    inventory.write_text(f"hosts = [({lab.address('target')!r}, {data!r})]\n")
    run(["pyinfra", "-y", str(inventory), "deploys/notify.py"], env={"PYTHONPATH": f"{ROOT / 'module_utils'}:{ROOT}"},
        cwd=ROOT, timeout=600)  # fmt: skip
    left = [name for name in lab.exec("target", "ls", "/etc/systemd/system").stdout.split() if "sshward-notify" in name]
    watcher = lab.exec("target", "systemctl", "is-active", "sshward-notify-watch.service", check=False).stdout.strip()
    # not-found: systemd was reloaded after the files went
    load = lab.exec("target", "systemctl", "show", "-p", "LoadState", "--value", "sshward-notify-watch.service").stdout
    config = lab.exec("target", "test", "-e", "/etc/sshward/notify.json", check=False).returncode
    hook = notify_pam.session_line(notify_pam.DEFAULT_SPOOL)
    hooked = hook in [ln.strip() for ln in lab.exec("target", "cat", "/etc/pam.d/sshd").stdout.splitlines()]
    assert (left, watcher, load.strip(), config, hooked) == ([], "inactive", "not-found", 1, False)


def test_restriction_reverts_by_itself(lab):
    """Last: waits for the armed revert (nobody confirmed) to remove the restriction."""
    deadline = json.loads(lab.plan)["fires_at"] + 60
    while time.time() < deadline:
        if "SSHWARD-RESTRICT" not in lab.exec("target", "iptables-save").stdout:
            break
        time.sleep(3)
    assert "SSHWARD-RESTRICT" not in lab.exec("target", "iptables-save").stdout
    fired = lab.exec("target", "test", "-f", "/var/lib/sshward/revert/lockdown-restrict.fired.json", check=False)
    assert fired.returncode == 0
