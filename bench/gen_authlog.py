"""Deterministic generator of a realistic auth.log for benchmarks.

    python bench/gen_authlog.py [-n 1000000] [--format rfc3339|classic] [--seed 1] [-o FILE]

The mix is what an internet-facing Debian host logs: mostly brute force
(invalid users, root password guesses, pre-auth disconnects), scanners, a few
real logins with sessions and sudo, cron noise, and some hostile lines
(injection user names, forged pid-less ``sshd:`` records, non-UTF-8 bytes).
The same arguments always produce the same bytes.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

USERS = [
    "admin",
    "test",
    "user",
    "ubuntu",
    "oracle",
    "postgres",
    "git",
    "guest",
    "ftpuser",
    "pi",
    "deploy",
    "",
]
VALID = ["alice", "bob", "carol"]
FP = "SHA256:Wc3pV8nBNu1Yq2LmZ0qgkV4nq5sQFh9bU7xK2oR6tJE"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class Gen:
    def __init__(self, seed: int, fmt: str, host: str = "web1") -> None:
        self.r = random.Random(seed)
        self.fmt = fmt
        self.host = host
        self.t = datetime(2026, 11, 1, 0, 0, 0, tzinfo=UTC)
        self.pid = 10000
        self.attackers = [self._ip() for _ in range(2000)]
        self.admins = [f"192.0.2.{i}" for i in range(10, 14)]

    def _ip(self) -> str:
        r = self.r
        return f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def _ts(self) -> str:
        self.t += timedelta(microseconds=self.r.randint(1000, 400000))
        t = self.t
        if self.fmt == "classic":
            return f"{MONTHS[t.month - 1]} {t.day:2d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        return t.isoformat(timespec="microseconds")

    def line(self, tag: str, msg: str) -> bytes:
        return f"{self._ts()} {self.host} {tag}: {msg}\n".encode("utf-8", "surrogateescape")

    def burst(self) -> list[bytes]:
        r = self.r
        self.pid += r.randint(1, 7)
        sshd = f"sshd[{self.pid}]"
        a = r.choice(self.attackers)
        port = r.randint(1024, 65535)
        ap = f"{a} port {port}"
        x = r.random()
        pam_fail = "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost="
        m: list[tuple[str, str]] = []
        if x < 0.40:
            u = r.choice(USERS)
            m.append((sshd, f"Invalid user {u} from {ap}"))
            if r.random() < 0.7:
                m.append((sshd, "pam_unix(sshd:auth): check pass; user unknown"))
                m.append((sshd, f"{pam_fail}{a} "))
                m.append((sshd, f"Failed password for invalid user {u} from {ap} ssh2"))
            m.append((sshd, f"Received disconnect from {a} port {port}:11: Bye Bye [preauth]"))
            m.append((sshd, f"Disconnected from invalid user {u} {ap} [preauth]"))
        elif x < 0.65:
            n = r.randint(1, 6)
            m.append((sshd, f"{pam_fail}{a}  user=root"))
            m.extend((sshd, f"Failed password for root from {ap} ssh2") for _ in range(n))
            if n == 6:
                m.append(
                    (
                        sshd,
                        f"error: maximum authentication attempts exceeded for root from {ap} ssh2 [preauth]",
                    )
                )
                m.append(
                    (
                        sshd,
                        f"Disconnecting authenticating user root {ap}: Too many authentication failures [preauth]",
                    )
                )
            else:
                m.append((sshd, f"Connection closed by authenticating user root {ap} [preauth]"))
        elif x < 0.80:
            m.append((sshd, f"Connection closed by {ap} [preauth]"))
        elif x < 0.86:
            m.append((sshd, f"Did not receive identification string from {ap}"))
        elif x < 0.89:
            m.append((sshd, 'error: kex_exchange_identification: client sent invalid protocol identifier "GET /"'))
            m.append((sshd, f"banner exchange: Connection from {ap}: invalid format"))
        elif x < 0.91:
            m.append(
                (
                    sshd,
                    f"Unable to negotiate with {ap}: no matching host key type found. "
                    "Their offer: ssh-rsa,ssh-dss [preauth]",
                )
            )
        elif x < 0.93:
            u = r.choice(VALID)
            adm = r.choice(self.admins)
            child = f"sshd[{self.pid + 1}]"
            m.append((sshd, f"Accepted publickey for {u} from {adm} port {port} ssh2: ED25519 {FP}"))
            m.append((sshd, f"pam_unix(sshd:session): session opened for user {u}(uid=1000) by (uid=0)"))
            m.append(("systemd-logind[400]", f"New session {self.pid} of user {u}."))
            if r.random() < 0.5:
                m.append(("sudo", f"   {u} : TTY=pts/0 ; PWD=/home/{u} ; USER=root ; COMMAND=/usr/bin/apt update"))
                m.append(("sudo", f"pam_unix(sudo:session): session opened for user root(uid=0) by {u}(uid=1000)"))
                m.append(("sudo", "pam_unix(sudo:session): session closed for user root"))
            m.append((child, f"Received disconnect from {adm} port {port}:11: disconnected by user"))
            m.append((child, f"Disconnected from user {u} {adm} port {port}"))
            m.append((sshd, f"pam_unix(sshd:session): session closed for user {u}"))
        elif x < 0.97:
            cron = f"CRON[{self.pid}]"
            m.append((cron, "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"))
            m.append((cron, "pam_unix(cron:session): session closed for user root"))
        elif x < 0.985:
            m.append((sshd, f"User root from {a} not allowed because not listed in AllowUsers"))
            m.append((sshd, f"Failed password for invalid user root from {ap} ssh2"))
        else:  # hostile
            y = r.randrange(4)
            if y == 0:
                m.append((sshd, f"Invalid user x from 6.6.6.6 port 1 from {ap}"))
            elif y == 1:
                m.append(("sshd", "Failed password for root from 6.6.6.6 port 1 ssh2"))
            elif y == 2:
                m.append((sshd, f"Invalid user \udcff\udcfe from {ap}"))
            else:
                m.append((sshd, f"Invalid user sshd[1]: Failed password for root from 6.6.6.6 from {ap}"))
        return [self.line(tag, msg) for tag, msg in m]


def generate(out: BinaryIO, n: int, seed: int = 1, fmt: str = "rfc3339") -> int:
    g = Gen(seed, fmt)
    written = 0
    while written < n:
        for b in g.burst():
            if written >= n:
                break
            out.write(b)
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("-n", "--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=["rfc3339", "classic"], default="rfc3339")
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args(argv)
    if a.output == "-":
        generate(sys.stdout.buffer, a.lines, a.seed, a.format)
    else:
        with open(a.output, "wb") as f:
            generate(f, a.lines, a.seed, a.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
