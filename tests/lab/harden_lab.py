"""Helpers for tests that drive harden.yml against lab targets and log in with real ssh clients."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, run


@dataclass
class LabHandle:
    dir: Path
    name: str

    def lab(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(["sshward-lab", "--dir", str(self.dir), "--lab", self.name, *args])

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.ini"

    def address(self, target: str) -> str:
        for line in self.lab("status").stdout.splitlines():
            name, _suite, address, _container = line.split("\t")
            if name == target:
                return address
        raise KeyError(target)

    def container(self, target: str) -> str:
        return f"sshward-{self.name}-{target}"

    def exec(self, target: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["docker", "exec", self.container(target), *argv], check=check)

    def playbook(
        self, target: str, extra_vars: dict | None = None, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["ansible-playbook", "-i", str(self.inventory), "--limit", target, str(ROOT / "harden.yml"), *args]
        # Integrity baselines go to the lab's directory, not into the source tree.
        extra_vars = {"ssh_hardening_baseline_dir": str(self.dir / "baselines"), **(extra_vars or {})}
        if extra_vars:
            vars_file = self.dir / f"vars-{target}.json"
            vars_file.write_text(json.dumps(extra_vars))
            cmd += ["-e", f"@{vars_file}"]
        return run(cmd, check=check, env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})

    def etc_ssh_digest(self, target: str) -> str:
        """SHA-256 of every file under /etc/ssh: proof that a refusal changed nothing."""
        return self.exec(target, "sh", "-c", "find /etc/ssh -type f | sort | xargs sha256sum").stdout

    def ssh(
        self,
        target: str,
        user: str,
        *command: str,
        port: int = 22,
        key: Path | None = None,
        password: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """A real OpenSSH client login; returns the result instead of failing."""
        opts = [
            "-o", f"UserKnownHostsFile={self.dir / 'known_hosts'}",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "ConnectTimeout=10",
            "-p", str(port),
        ]  # fmt: skip
        env = {}
        if password is None:
            opts += ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", str(key or self.dir / "id_ed25519")]
        else:
            askpass = self.dir / "askpass.sh"
            askpass.write_text("#!/bin/sh\nprintf '%s\\n' \"$SSHWARD_TEST_PASSWORD\"\n")
            askpass.chmod(stat.S_IRWXU)
            opts += [
                "-o", "PubkeyAuthentication=no",
                "-o", "PreferredAuthentications=password,keyboard-interactive",
                "-o", "NumberOfPasswordPrompts=1",
            ]  # fmt: skip
            env = {
                "SSH_ASKPASS": str(askpass),
                "SSH_ASKPASS_REQUIRE": "force",
                "DISPLAY": "none",
                "SSHWARD_TEST_PASSWORD": password,
            }
        return run(
            ["ssh", *opts, f"{user}@{self.address(target)}", *(command or ("true",))],
            check=False,
            env={**os.environ, **env},
            timeout=60,
        )

    def set_password(self, target: str, user: str, password: str) -> None:
        self.exec(target, "sh", "-c", f"id {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}")
        subprocess.run(
            ["docker", "exec", "-i", self.container(target), "chpasswd"],
            input=f"{user}:{password}\n",
            text=True,
            check=True,
            capture_output=True,
        )

    def authorize_lab_key(self, target: str, user: str) -> None:
        pub = (self.dir / "id_ed25519.pub").read_text().strip()
        home = "/root" if user == "root" else f"/home/{user}"
        self.exec(
            target, "sh", "-c",
            f"install -d -m 0700 -o {user} {home}/.ssh && printf '%s\\n' '{pub}' >> {home}/.ssh/authorized_keys"
            f" && chown {user} {home}/.ssh/authorized_keys && chmod 0600 {home}/.ssh/authorized_keys",
        )  # fmt: skip

    def sshd_T(self, target: str, context: str = "user=sshward-test,host=test.invalid,addr=192.0.2.1") -> dict:
        from sshward.effective import parse_sshd_T

        return parse_sshd_T(self.exec(target, "sshd", "-T", "-C", context).stdout)
