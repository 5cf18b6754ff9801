"""Find or start a Docker engine, and run docker commands without a shell."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from . import LabError

DOCKERD_LOG = Path("/var/log/sshward-dockerd.log")
START_TIMEOUT = 60


def docker(*args: str, check: bool = True, input_bytes: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run one docker CLI command; raise LabError with docker's own message on failure."""
    try:
        proc = subprocess.run(
            ["docker", *args],
            input=input_bytes.decode() if input_bytes is not None else None,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError("the docker client is not installed: apt-get install docker.io") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"docker {' '.join(args[:2])} failed: {detail[-1] if detail else proc.returncode}")
    return proc


def engine_running() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def _is_debian() -> bool:
    return Path("/etc/debian_version").exists()


def _install_docker() -> None:
    if os.geteuid() != 0:
        raise LabError("Docker is not installed: run as root, or install it first (apt-get install docker.io)")
    if not _is_debian() or shutil.which("apt-get") is None:
        raise LabError("Docker is not installed and this is not Debian: install a Docker engine, then retry")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "docker.io"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            raise LabError(f"installing docker.io failed ({' '.join(cmd)}): {' '.join(tail)}")


def _systemd_is_init() -> bool:
    return Path("/run/systemd/system").is_dir()


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
# Each container's systemd holds several inotify instances; the kernel default (128) runs out at
# about 20 lab containers, and systemd then fails to boot ("Too many open files").
MIN_INOTIFY_INSTANCES = 1024


def ensure_inotify_room() -> str | None:
    try:
        current = int(INOTIFY_INSTANCES.read_text())
    except (OSError, ValueError):
        return None
    if current >= MIN_INOTIFY_INSTANCES or os.geteuid() != 0:
        return None
    INOTIFY_INSTANCES.write_text(f"{MIN_INOTIFY_INSTANCES}\n")
    return f"raised fs.inotify.max_user_instances from {current} to {MIN_INOTIFY_INSTANCES} for systemd containers"


def ensure_engine() -> str:
    """Make `docker info` succeed. Returns what was done, for the log."""
    raised = ensure_inotify_room()
    if engine_running():
        return raised or "docker engine already running"
    if shutil.which("dockerd") is None:
        _install_docker()
    if os.geteuid() != 0:
        raise LabError("the Docker engine is not running and only root can start it: sudo dockerd, or ask an admin")
    if _systemd_is_init():
        subprocess.run(["systemctl", "start", "docker"], capture_output=True, check=False)
    if not _wait_for_engine(5):
        # No init system here (a container or CI runner): run the daemon detached, logging to a file.
        with DOCKERD_LOG.open("ab") as log:
            subprocess.Popen(
                ["dockerd"],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if not _wait_for_engine(START_TIMEOUT):
            raise LabError(f"the Docker engine did not start within {START_TIMEOUT} s: see {DOCKERD_LOG}")
    return "docker engine started"


def _wait_for_engine(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if engine_running():
            return True
        time.sleep(0.5)
    return False
