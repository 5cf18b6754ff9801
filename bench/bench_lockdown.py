"""Benchmark: time from starting lockdown.yml to the intruder's SSH session being killed.

Measured as a ratio to a one-task ``ansible.builtin.ping`` playbook against the same lab host
in the same run. The intruder is a second lab container holding an SSH session open with its
own key (installed in a real user's authorized_keys); the session counts as killed when the
intruder's ssh client exits. Ansible runs here, so this controller's address is the admin
address. Usage: python bench/bench_lockdown.py [--runs N] [--restrict]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from results import write_section  # noqa: E402

LAB = "lockdownhelper-bench"
PING = """---
- name: Ping
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def lab(state: Path, *args: str) -> str:
    return subprocess.run(
        ["sshward-lab", "--dir", str(state), "--lab", LAB, *args], check=True, capture_output=True, text=True
    ).stdout


def dexec(container: str, *argv: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["docker", "exec", "-i", container, *argv], input=stdin, check=True, capture_output=True, text=True
    ).stdout


def address(state: Path, name: str) -> str:
    for line in lab(state, "status").splitlines():
        fields = line.split("\t")
        if fields[0] == name:
            return fields[2]
    raise KeyError(name)


def setup(state: Path) -> tuple[str, str]:
    target, intruder = f"sshward-{LAB}-target", f"sshward-{LAB}-intruder"
    dexec(target, "sh", "-c", "id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash deploy")
    dexec(target, "install", "-d", "-o", "deploy", "-g", "deploy", "-m", "0700", "/home/deploy/.ssh")
    dexec(intruder, "sh", "-c", "test -f /root/k || ssh-keygen -q -t ed25519 -N '' -f /root/k")
    return target, intruder


def one_run(state: Path, target: str, intruder: str, target_ip: str, restrict: bool) -> tuple[float, float]:
    pub = dexec(intruder, "cat", "/root/k.pub")
    dexec(
        target,
        "sh",
        "-c",
        "cat > /home/deploy/.ssh/authorized_keys && chown deploy: /home/deploy/.ssh/authorized_keys",
        stdin=pub,
    )
    if restrict:  # a previous run's restriction would keep the intruder out: undo it
        subprocess.run(
            [
                "ansible-playbook",
                "-i",
                str(state / "inventory.ini"),
                "--limit",
                "target",
                str(ROOT / "bench/lockdown_unrestrict.yml"),
            ],
            check=False,
            capture_output=True,
            cwd=ROOT,
        )
    session = subprocess.Popen(
        [
            "docker",
            "exec",
            intruder,
            "ssh",
            "-tt",
            "-i",
            "/root/k",
            "-o",
            "StrictHostKeyChecking=no",
            f"deploy@{target_ip}",
            "sleep 3600",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while (
        "sleep 3600"
        not in subprocess.run(
            ["docker", "exec", target, "pgrep", "-a", "-u", "deploy"], capture_output=True, text=True
        ).stdout
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("the intruder session did not start")
        time.sleep(0.2)
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=state, delete=False) as fh:
        fh.write(PING)
    inv = ["-i", str(state / "inventory.ini"), "--limit", "target"]
    start = time.perf_counter()
    subprocess.run(["ansible-playbook", *inv, fh.name], check=True, capture_output=True, cwd=ROOT)
    ping = time.perf_counter() - start

    start = time.perf_counter()
    play = subprocess.Popen(
        [
            "ansible-playbook",
            *inv,
            str(ROOT / "lockdown.yml"),
            "-e",
            f"ssh_lockdown_restrict={str(restrict).lower()}",
            "-e",
            f"ssh_lockdown_evidence_dir={state}/evidence",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    session.wait(timeout=600)
    killed = time.perf_counter() - start
    out, _ = play.communicate(timeout=600)
    if play.returncode != 0:
        raise RuntimeError(out.decode(errors="replace")[-3000:])
    return ping, killed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--restrict", action="store_true", help="include step 1 (needs sshward_firewall on main)")
    ap.add_argument("--keep", action="store_true", help="leave the lab up")
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp(prefix="sshward-bench-lockdown-"))
    try:
        lab(state, "up", "target=bookworm", "intruder=bookworm")
        target, intruder = setup(state)
        target_ip = address(state, "target")
        pings, kills = [], []
        for _ in range(args.runs):
            ping, killed = one_run(state, target, intruder, target_ip, args.restrict)
            pings.append(ping)
            kills.append(killed)
    finally:
        if not args.keep:
            lab(state, "down")
    ping_m, kill_m = statistics.median(pings), statistics.median(kills)
    body = f"""
Time from starting `lockdown.yml` to the intruder's SSH session being killed (its ssh client exits),
against a one-task `ansible.builtin.ping` playbook on the same bookworm lab host in the same run
(median of {args.runs}; step 1, the address restriction, {"included" if args.restrict else "left out"}).
The volatile evidence (sessions, processes, connections, firewall rules) is taken before the kill; the
slow evidence (keys, file timelines, persistence, hashing) comes after it.

| measure | seconds | ratio to ping |
|---|---|---|
| ping playbook | {ping_m:.2f} | 1.00 |
| lockdown.yml start to intruder session killed | {kill_m:.2f} | {kill_m / ping_m:.2f} |

Runs (ping, killed): {", ".join(f"({p:.2f}, {k:.2f})" for p, k in zip(pings, kills, strict=True))}.
Reproduce: `python bench/bench_lockdown.py --runs {args.runs}{" --restrict" if args.restrict else ""}`.
"""
    write_section("lockdown: time to kill the intruder's session", body)
    print(body)


if __name__ == "__main__":
    main()
