"""Login time with and without the sshward-notify PAM hook, receivers up, down and hanging.

Runs against the containers of the molecule scenario `notify` (bring them up first with
`molecule converge -s notify`; the bench leaves them as it found them):

* **Logins**: real `ssh alice@target true` key logins from the client container to each
  target, timed inside the client (docker exec overhead is not counted). For each receiver
  state (up; down: nothing listens; hang: they accept and never answer) it runs rounds of
  N logins with the hook line in /etc/pam.d/sshd, then N with it commented out, so load
  changes on the shared machine hit both alike. "no hook" pools the hook-less logins of
  every round of that target.
* **The PAM step alone**, inside each target (root, a PAM environment, output to /dev/null):
  `env -0 SSHWARD_CAPTURE=session` (what pam_exec runs), `python3 -IS -c pass` (the floor
  of any Python entry point, which the previous version paid), and `sshward-notify check`
  (importing the full notifier and reading its config: what the first version paid).

Writes the section "Login notifications (sshward-notify PAM hook)" of docs/benchmarks.md
through bench/results.py, keeping the other sections.

    python bench/bench_notify_login.py [--logins 30] [--targets bookworm,trixie] [--no-write]

Not a test: numbers depend on the machine; what matters is "hook" against "no hook".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section

TITLE = "Login notifications (sshward-notify PAM hook)"
PREFIX = "sshward-mol-notify"
ADDRESSES = {"bookworm": "172.31.242.12", "trixie": "172.31.242.13"}
HOOK_RE = r"session .*pam_exec\.so .*SSHWARD_CAPTURE=session"
KEY = "/home/admin/notify-keys/alice"
KNOWN = "/home/admin/notify-keys/known_hosts"
STATES = ("up", "down", "hang")

# Runs inside the client: N timed logins, "seconds exit-status" per line.
LOGIN_TIMER = r"""
import subprocess, sys, time
address, count, key, known, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
argv = ["ssh", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ControlPath=none",
        "-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + known, "alice@" + address, "true"]
for _ in range(count):
    time.sleep(pause)  # not timed: lets the previous login's delivery finish, as between real logins
    start = time.monotonic()
    rc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    print(f"{time.monotonic() - start:.4f} {rc}", flush=True)
"""

# Runs inside a target as root: each command N times, interleaved; JSON {name: [seconds]}.
STEP_TIMER = r"""
import json, subprocess, sys, time
count = int(sys.argv[1])
env = {"PAM_TYPE": "open_session", "PAM_SERVICE": "sudo", "PAM_USER": "root", "PAM_RUSER": "admin",
       "PAM_TTY": "/dev/pts/9", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
commands = {
    "env -0 SSHWARD_CAPTURE=session (the capture)": ["/usr/bin/env", "-0", "SSHWARD_CAPTURE=session"],
    "python3 -IS -c pass (any Python entry)": ["/usr/bin/python3", "-IS", "-c", "pass"],
    "sshward-notify check (full notifier)": ["/usr/local/sbin/sshward-notify", "check"],
}
out = {name: [] for name in commands}
for _ in range(count):
    for name, argv in commands.items():
        start = time.monotonic()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out[name].append(time.monotonic() - start)
print(json.dumps(out))
"""


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def set_hook(target: str, on: bool) -> None:
    # comment the role's hook line out or back in; the bench always restores it
    expr = rf"s|^#\({HOOK_RE}\)$|\1|" if on else rf"s|^\({HOOK_RE}\)$|#\1|"
    docker("exec", target, "sed", "-i", expr, "/etc/pam.d/sshd")
    hooked = docker("exec", target, "grep", "-cE", f"^{HOOK_RE}", "/etc/pam.d/sshd", check=False).strip()
    if hooked != ("1" if on else "0"):
        raise SystemExit(f"{target}: could not turn the hook {'on' if on else 'off'} (found {hooked} lines)")


def set_receivers(state: str) -> None:
    for box, mode, port in ((f"{PREFIX}-smtp", "smtp", "25"), (f"{PREFIX}-web", "http", "80")):
        docker("exec", box, "systemctl", "stop", "sink-hang.service", check=False)
        docker("exec", box, "systemctl", "reset-failed", "sink-hang.service", check=False)
        docker("exec", box, "systemctl", "start" if state == "up" else "stop", f"sink@{mode}.service")
        if state == "hang":
            sink = ["/usr/bin/python3", "-I", "/opt/sink/sink.py", "hang", port]
            docker("exec", box, "systemd-run", "--unit=sink-hang", *sink)


def timed_logins(address: str, count: int, pause: float) -> list[float]:
    out = docker(
        "exec", "-u", "admin", f"{PREFIX}-client", "python3", "-c", LOGIN_TIMER, address, str(count), KEY, KNOWN,
        str(pause),
    )  # fmt: skip
    times = []
    for line in out.splitlines():
        seconds, rc = line.split()
        if rc != "0":
            raise SystemExit(f"a login to {address} failed (ssh exit {rc})")
        times.append(float(seconds))
    return times


def measure_logins(suite: str, logins: int, rounds: int, pause: float) -> dict[str, list[float]]:
    target = f"{PREFIX}-{suite}"
    result: dict[str, list[float]] = {}
    per_round = max(1, logins // rounds)
    try:
        for state in STATES:
            print(f"  {suite}: receivers {state}", file=sys.stderr, flush=True)
            set_receivers(state)
            hooked, bare = result.setdefault(f"{state} hook", []), result.setdefault(f"{state} none", [])
            for _ in range(rounds):
                set_hook(target, True)
                hooked += timed_logins(ADDRESSES[suite], per_round, pause)
                set_hook(target, False)
                bare += timed_logins(ADDRESSES[suite], per_round, pause)
    finally:
        set_hook(target, True)
        set_receivers("up")
    return result


def measure_step(suite: str, count: int) -> dict[str, list[float]]:
    out = docker("exec", f"{PREFIX}-{suite}", "python3", "-c", STEP_TIMER, str(count))
    data: dict[str, list[float]] = json.loads(out)
    return data


def median_difference_ci(hooked: list[float], bare: list[float], draws: int = 4000) -> tuple[float, float]:
    """95 % bootstrap interval of median(hooked) - median(bare), in ms (seeded: the same data gives the same text)."""
    rng = random.Random(20261122)
    diffs = sorted(
        statistics.median(rng.choices(hooked, k=len(hooked))) - statistics.median(rng.choices(bare, k=len(bare)))
        for _ in range(draws)
    )
    return diffs[int(draws * 0.025)] * 1000, diffs[int(draws * 0.975)] * 1000


def quantile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index] * 1000


def body(
    logins: dict[str, dict[str, list[float]]], steps: dict[str, dict[str, list[float]]], n: int, load: str, pause: float
) -> str:
    cpus = os.cpu_count() or "?"
    paced = f" --pause {pause:g}" if pause else ""
    lines = [
        f"`python bench/bench_notify_login.py --logins {n}{paced}` against the molecule `notify` containers,"
        f" {cpus} CPUs, load average {load} at the end of the run.",
        "",
        "**Login time**: real `ssh alice@target true` key logins from the client container, timed in the"
        " client. Per receiver state, rounds of logins with the hook, then without it (the hook line"
        " commented out), so both see the same load; each row compares the two. Receivers *down*:"
        " nothing listens; *hang*: they accept and never answer (channel timeout 3 s). Milliseconds.",
        "",
        "| target | receivers | logins each | no hook: median / p95 | hook: median / p95 | median difference"
        " | its 95 % interval |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for suite, data in logins.items():
        for state in STATES:
            hooked, bare = data[f"{state} hook"], data[f"{state} none"]
            diff = (statistics.median(hooked) - statistics.median(bare)) * 1000
            low, high = median_difference_ci(hooked, bare)
            lines.append(
                f"| {suite} | {state} | {len(hooked)}"
                f" | {quantile_ms(bare, 0.5):.0f} / {quantile_ms(bare, 0.95):.0f}"
                f" | {quantile_ms(hooked, 0.5):.0f} / {quantile_ms(hooked, 0.95):.0f} | {diff:+.0f}"
                f" | {low:+.0f} to {high:+.0f} |"
            )
    lines += [
        "",
        "**The PAM step alone**, run as pam_exec runs it (root, a PAM environment, fork + exec included),"
        " inside each target, interleaved. Milliseconds.",
        "",
        "| target | command | runs | median | p95 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for suite, data in steps.items():
        for name, values in data.items():
            lines.append(
                f"| {suite} | `{name}` | {len(values)} | {quantile_ms(values, 0.5):.1f}"
                f" | {quantile_ms(values, 0.95):.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=30, help="logins per cell (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="hook/no-hook alternations per state")
    parser.add_argument("--steps", type=int, default=40, help="runs of each PAM-step command")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between logins, not timed (0: back to back)")
    parser.add_argument("--targets", default="bookworm,trixie")
    parser.add_argument("--no-write", action="store_true", help="print the section only")
    parser.add_argument("--notes", default="", help="text appended to the section (what the numbers show)")
    parser.add_argument("--from-json", type=Path, help="render a saved run (bench/results-notify-login.json)")
    args = parser.parse_args(argv)
    raw = Path(__file__).resolve().parent / "results-notify-login.json"
    if args.from_json:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        logins, steps, load = saved["logins"], saved["steps"], saved.get("load", "?")
    else:
        suites = args.targets.split(",")
        steps, logins = {}, {}
        for suite in suites:
            print(f"PAM step alone on {suite} ...", file=sys.stderr, flush=True)
            steps[suite] = measure_step(suite, args.steps)
        for suite in suites:
            print(f"logins on {suite} ...", file=sys.stderr, flush=True)
            logins[suite] = measure_logins(suite, args.logins, args.rounds, args.pause)
        load = Path("/proc/loadavg").read_text().split()[0]
        saved = {"logins": logins, "steps": steps, "load": load, "logins_per_cell": args.logins, "pause": args.pause}
        raw.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
    text = body(logins, steps, int(saved.get("logins_per_cell", args.logins)), load, float(saved.get("pause", 0.0)))
    if args.notes:
        text += "\n" + args.notes.strip() + "\n"
    print(text)
    if not args.no_write:
        write_section(TITLE, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
