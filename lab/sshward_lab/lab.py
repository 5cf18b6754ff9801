"""Bring lab targets up and down, provision the admin user, write Ansible and pyinfra inventories."""

from __future__ import annotations

import json
import os
import pprint
import re
import shlex
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import LabError
from .engine import docker
from .images import SUITES, ensure_image

LABEL = "sshward.lab"
ADMIN_USER = "admin"
BOOT_TIMEOUT = 90
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


@dataclass
class Target:
    name: str
    suite: str
    container: str
    address: str = ""


def parse_target(spec: str) -> tuple[str, str]:
    """`bookworm` or `web1=bookworm` -> (name, suite)."""
    name, _, suite = spec.partition("=")
    if not suite:
        suite = name
    if suite not in SUITES:
        raise LabError(f"target {spec!r}: unknown suite {suite!r}; use one of {', '.join(SUITES)} (or NAME=SUITE)")
    if not NAME_RE.match(name):
        raise LabError(f"target {spec!r}: name must be lowercase letters, digits and dashes")
    return name, suite


class Lab:
    def __init__(self, state_dir: Path, lab_name: str = "lab") -> None:
        if not NAME_RE.match(lab_name):
            raise LabError(f"--lab {lab_name!r}: use lowercase letters, digits and dashes")
        self.dir = state_dir.resolve()
        self.name = lab_name
        self.network = f"sshward-{lab_name}"
        self.key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.state_file = self.dir / "state.json"

    # ---- state -------------------------------------------------------------------------------
    def targets(self) -> list[Target]:
        if not self.state_file.exists():
            return []
        return [Target(**t) for t in json.loads(self.state_file.read_text())["targets"]]

    def _save(self, targets: list[Target]) -> None:
        self.state_file.write_text(json.dumps({"lab": self.name, "targets": [asdict(t) for t in targets]}, indent=2))

    def container_name(self, name: str) -> str:
        return f"sshward-{self.name}-{name}"

    # ---- up / down ---------------------------------------------------------------------------
    def up(self, specs: list[str], log=print) -> list[Target]:  # type: ignore[no-untyped-def]
        wanted = [parse_target(s) for s in specs]
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ensure_key()
        self._ensure_network()
        known = {t.name: t for t in self.targets()}
        for name, suite in wanted:
            image = ensure_image(suite, log)
            container = self.container_name(name)
            self._ensure_container(container, name, image, log)
            known[name] = Target(name, suite, container)
        return self._provision_all(known)

    def adopt(self, containers: list[str]) -> list[Target]:
        """Provision containers someone else created (molecule's docker driver) as lab targets."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ensure_key()
        known = {t.name: t for t in self.targets()}
        for container in containers:
            suite = self._suite_of(container)
            known[container] = Target(container, suite, container)
        return self._provision_all(known)

    def _provision_all(self, known: dict[str, Target]) -> list[Target]:
        """Provision every target (idempotent), then record them and write the inventories."""
        targets = list(known.values())
        for target in targets:
            self.provision(target)
        self._save(targets)
        self.write_inventories(targets)
        return targets

    def down(self) -> list[str]:
        """Remove every container and network carrying this lab's label, and the lab's state files."""
        removed = []
        listed = docker("ps", "-aq", "--filter", f"label={LABEL}={self.name}").stdout.split()
        if listed:
            docker("rm", "-f", "-v", *listed)
            removed += listed
        networks = docker("network", "ls", "-q", "--filter", f"label={LABEL}={self.name}").stdout.split()
        if networks:
            docker("network", "rm", *networks)
            removed += networks
        for path in (self.state_file, self.known_hosts, self.dir / "inventory.ini", self.dir / "inventory.py"):
            path.unlink(missing_ok=True)
        return removed

    def _ensure_key(self) -> None:
        if not self.key.exists():
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"sshward-{self.name}-admin",
                    "-f",
                    str(self.key),
                ],
                check=True,
            )

    def _ensure_network(self) -> None:
        if docker("network", "inspect", self.network, check=False).returncode != 0:
            docker("network", "create", "--label", f"{LABEL}={self.name}", self.network)

    def _ensure_container(self, container: str, name: str, image: str, log) -> None:  # type: ignore[no-untyped-def]
        state = docker("inspect", "--format", "{{.State.Running}} {{.Config.Image}}", container, check=False)
        if state.returncode == 0:
            running, current_image = state.stdout.split()
            if current_image == image and running == "true":
                return
            if current_image == image:
                docker("start", container)
                return
            log(f"{container} runs another image; recreating it")
            docker("rm", "-f", "-v", container)
        log(f"starting {container} ({image})")
        docker(
            "run",
            *systemd_run_args(),
            "--name",
            container,
            "--hostname",
            name,
            "--network",
            self.network,
            "--label",
            f"{LABEL}={self.name}",
            image,
        )

    def _suite_of(self, container: str) -> str:
        proc = docker("exec", container, "sh", "-c", ". /etc/os-release; echo $VERSION_CODENAME")
        suite = proc.stdout.strip()
        if suite not in SUITES:
            raise LabError(f"{container}: unsupported Debian release {suite!r}")
        return suite

    # ---- provisioning ------------------------------------------------------------------------
    def provision(self, target: Target) -> None:
        """Admin user with the lab key and passwordless sudo; wait for sshd; record host keys."""
        self._wait_for_boot(target.container)
        pubkey = (self.key.with_suffix(".pub")).read_text().strip()
        script = f"""
set -e
id {ADMIN_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash {ADMIN_USER}
usermod -p '*' {ADMIN_USER}
install -d -m 0700 -o {ADMIN_USER} -g {ADMIN_USER} /home/{ADMIN_USER}/.ssh
printf '%s\\n' {shlex.quote(pubkey)} > /home/{ADMIN_USER}/.ssh/authorized_keys
chown {ADMIN_USER}: /home/{ADMIN_USER}/.ssh/authorized_keys
chmod 0600 /home/{ADMIN_USER}/.ssh/authorized_keys
printf '%s\\n' '{ADMIN_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-sshward-lab
chmod 0440 /etc/sudoers.d/90-sshward-lab
"""
        docker("exec", target.container, "sh", "-c", script)
        target.address = docker(
            "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", target.container
        ).stdout.split()[0]
        self._record_host_keys(target)

    def _wait_for_boot(self, container: str) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            proc = docker("exec", container, "systemctl", "is-active", "ssh", check=False)
            last = proc.stdout.strip()
            if last == "active":
                return
            time.sleep(1)
        raise LabError(
            f"{container}: sshd did not start within {BOOT_TIMEOUT} s (ssh.service is {last or 'unknown'});"
            f" see: docker exec {container} journalctl -b"
        )

    def _record_host_keys(self, target: Target) -> None:
        keys = docker("exec", target.container, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub").stdout.splitlines()
        lines = [line for line in self._known_hosts_lines() if not line.startswith(f"{target.address} ")]
        lines += [f"{target.address} {' '.join(k.split()[:2])}" for k in keys if k.strip()]
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def _known_hosts_lines(self) -> list[str]:
        return self.known_hosts.read_text().splitlines() if self.known_hosts.exists() else []

    # ---- inventories -------------------------------------------------------------------------
    def ssh_args(self) -> str:
        return (
            f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
            "-o IdentitiesOnly=yes -o PasswordAuthentication=no"
        )

    def write_inventories(self, targets: list[Target]) -> None:
        by_suite: dict[str, list[Target]] = {}
        for t in targets:
            by_suite.setdefault(t.suite, []).append(t)
        ini = ["# Written by sshward-lab; reaches the lab targets over real SSH.", "[lab]"]
        ini += [f"{t.name} ansible_host={t.address}" for t in targets]
        for suite, members in sorted(by_suite.items()):
            ini += ["", f"[debian_{suite}]"] + [t.name for t in members]
        ini += [
            "",
            "[lab:vars]",
            f"ansible_user={ADMIN_USER}",
            f"ansible_ssh_private_key_file={self.key}",
            f"ansible_ssh_common_args='{self.ssh_args()}'",
            "ansible_become=true",
            "ansible_python_interpreter=/usr/bin/python3",
        ]
        (self.dir / "inventory.ini").write_text("\n".join(ini) + "\n")
        host_data = {
            "ssh_user": ADMIN_USER,
            "ssh_key": str(self.key),
            "ssh_known_hosts_file": str(self.known_hosts),
            "ssh_strict_host_key_checking": "yes",
            "_sudo": True,
        }
        py = ["# Written by sshward-lab: a pyinfra inventory reaching the lab targets over real SSH.", ""]
        py.append(f"HOST_DATA = {pprint.pformat(host_data)}")
        py.append("")
        py.append("lab = [")
        py += [f"    ({t.address!r}, dict(HOST_DATA, lab_name={t.name!r}, lab_suite={t.suite!r}))," for t in targets]
        py.append("]")
        (self.dir / "inventory.py").write_text("\n".join(py) + "\n")


def systemd_run_args() -> list[str]:
    """docker run flags that let systemd run as PID 1 without --privileged."""
    return [
        "-d",
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/run/lock",
        "--tmpfs",
        "/tmp:exec,mode=1777",
        "-v",
        "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "--cap-add",
        "NET_ADMIN",
        "--stop-signal",
        "SIGRTMIN+3",
    ]


def default_state_dir() -> Path:
    return Path(os.environ.get("SSHWARD_LAB_DIR", ".lab"))
