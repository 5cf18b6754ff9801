"""Benchmark: ssh_hardening (first run, idempotent re-run) vs one lineinfile task per keyword.

Both run in the same invocation against fresh bookworm lab containers; results go to
docs/benchmarks.md as ratios. Usage: python bench/bench_harden.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "module_utils"))
sys.path.insert(0, str(ROOT / "bench"))

from results import write_section  # noqa: E402

from sshward.openssh import version_from_package  # noqa: E402
from sshward.policy import sshd_settings  # noqa: E402


def lab(state: Path, *args: str) -> str:
    return subprocess.run(
        ["sshward-lab", "--dir", str(state), "--lab", "bench-harden", *args], check=True, capture_output=True, text=True
    ).stdout


def timed_playbook(state: Path, target: str, playbook: str, extra: dict | None = None, *args: str) -> float:
    cmd = ["ansible-playbook", "-i", str(state / "inventory.ini"), "--limit", target, str(ROOT / playbook), *args]
    if extra:
        path = state / f"extra-{target}.json"
        path.write_text(json.dumps(extra))
        cmd += ["-e", f"@{path}"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - start


def baseline_settings(state: Path, target: str) -> dict[str, str]:
    import yaml

    container = f"sshward-bench-harden-{target}"
    pkg = subprocess.run(
        ["docker", "exec", container, "dpkg-query", "-W", "-f=${Version}", "openssh-server"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    defaults = yaml.safe_load((ROOT / "roles/ssh_hardening/defaults/main.yml").read_text())
    policy = {k.removeprefix("ssh_hardening_"): v for k, v in defaults.items()}
    settings = sshd_settings(policy, version_from_package(pkg))
    out = {}
    for key, value in settings.items():
        if value is None or key in ("HostKey",):
            continue
        out[key] = value if isinstance(value, str) else (" ".join(value) if key == "Port" else ",".join(value))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = {"role first run": [], "role re-run": [], "lineinfile first run": [], "lineinfile re-run": []}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        try:
            for i in range(args.runs):
                role, base = f"role{i}", f"base{i}"
                lab(state, "up", f"{role}=bookworm", f"{base}=bookworm")
                settings = baseline_settings(state, base)
                rows["role first run"].append(timed_playbook(state, role, "harden.yml", None, "--tags", "sshd"))
                rows["lineinfile first run"].append(
                    timed_playbook(state, base, "bench/lineinfile_baseline.yml", {"baseline_settings": settings})
                )
                rows["role re-run"].append(timed_playbook(state, role, "harden.yml", None, "--tags", "sshd"))
                rows["lineinfile re-run"].append(
                    timed_playbook(state, base, "bench/lineinfile_baseline.yml", {"baseline_settings": settings})
                )
        finally:
            lab(state, "down")
    med = {k: statistics.median(v) for k, v in rows.items()}
    lines = [
        f"Median of {args.runs} runs, fresh bookworm containers, same invocation; harden.yml limited to the"
        " ssh_hardening role (`--tags sshd`). The role also creates host keys,",
        "filters moduli, runs the lockout guards, arms a revert and probes a fresh SSH connection; the baseline",
        "only edits lines.",
        "",
        "| run | ssh_hardening (s) | lineinfile baseline (s) | ratio role/baseline |",
        "|---|---|---|---|",
        f"| first run | {med['role first run']:.1f} | {med['lineinfile first run']:.1f} | "
        f"{med['role first run'] / med['lineinfile first run']:.2f} |",
        f"| idempotent re-run | {med['role re-run']:.1f} | {med['lineinfile re-run']:.1f} | "
        f"{med['role re-run'] / med['lineinfile re-run']:.2f} |",
    ]
    write_section("harden.yml vs one lineinfile per keyword", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
