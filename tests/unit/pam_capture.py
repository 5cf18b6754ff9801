"""What pam_exec does in a login, for the notifier's unit tests: the real ``env`` writes the capture."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from sshward import notify_pam


def pam_exec_capture(
    spool: Path, env: Mapping[str, str], kind: str = notify_pam.SESSION, when: float | None = None
) -> Path:
    """Append one record to SPOOL/capture as pam_exec's ``log=`` does: a ctime header, then env's output."""
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / notify_pam.CAPTURE_FILE
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o644)
    try:
        os.write(fd, f"*** {time.ctime(when)}\n".encode("ascii"))
        subprocess.run(notify_pam.capture_command(kind), env=dict(env), stdout=fd, stderr=fd, check=True)
    finally:
        os.close(fd)
    return path


def sshd_env(
    user: str = "alice",
    address: str = "203.0.113.5",
    port: int = 50022,
    auth_info: str = "password\n",
    rhost: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment pam_exec gives its program in sshd's session stack (PAM env, then PAM items)."""
    env = {
        "SSH_CONNECTION": f"{address} {port} 192.0.2.1 22",
        "SSH_AUTH_INFO_0": auth_info,
        "PAM_SERVICE": "sshd",
        "PAM_USER": user,
        "PAM_TTY": "ssh",
        "PAM_RHOST": address if rhost is None else rhost,
        "PAM_TYPE": "open_session",
    }
    env.update(extra)
    return env
