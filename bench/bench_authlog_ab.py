"""A/B of sshward's auth-log parser: this checkout against another git revision, interleaved.

    python bench/bench_authlog_ab.py REV [-n 200000] [--rounds 5] [--markdown]

Both parsers read the same generated log, alternating A, B, A, B... so a busy machine slows both
alike; the best round of each is kept. Used to show what a parser change did, where the main
benchmark (bench_authlog.py) moves with the machine's load from one run to the next.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen_authlog import generate  # noqa: E402
from results import write_section  # noqa: E402


def load(package_dir: Path, scratch: Path, name: str) -> ModuleType:
    """``authlog`` of the core package in ``package_dir``, copied to ``scratch/name`` and imported as package
    ``name`` (its relative imports work; the two revisions do not share modules)."""
    shutil.copytree(package_dir, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
    if str(scratch) not in sys.path:
        sys.path.insert(0, str(scratch))
    return importlib.import_module(f"{name}.authlog")


def seconds(module: ModuleType, path: str) -> float:
    parser = module.AuthLogParser(year=2026)
    t0 = time.perf_counter()
    for _event in module.parse_path(path, parser):
        pass
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev", help="git revision of the other parser (e.g. main)")
    ap.add_argument("-n", "--lines", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--markdown", action="store_true", help="write a section of docs/benchmarks.md")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", a.rev, "module_utils/sshward"], capture_output=True, check=True, cwd=HERE.parent
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        other = Path(tmp) / "module_utils" / "sshward"
        parsers = {"this checkout": load(HERE.parent / "module_utils" / "sshward", Path(tmp), "sshward_this"),
                   a.rev: load(other, Path(tmp), "sshward_other")}  # fmt: skip
        log = Path(tmp) / "auth.log"
        with log.open("wb") as f:
            generate(f, a.lines, 1, "rfc3339")
        load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
        best = dict.fromkeys(parsers, float("inf"))
        for _ in range(a.rounds):
            for name, module in parsers.items():
                best[name] = min(best[name], seconds(module, str(log)))
        load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rate = {name: int(a.lines / s) for name, s in best.items()}
    ratio = best[a.rev] / best["this checkout"]
    body = (
        f"`python bench/bench_authlog_ab.py {a.rev} -n {a.lines} --rounds {a.rounds}`: the parser of this checkout "
        f"and the one at `{a.rev}`, alternating on the same {a.lines:,}-line generated log, best of {a.rounds} "
        f"rounds each; load average {load_before} before and {load_after} after (other helpers share this "
        "machine; both sides run under the same load).\n\n"
        "| parser | lines/s |\n| --- | ---: |\n"
        + "".join(f"| {name} | {r:,} |\n" for name, r in rate.items())
        + f"\nThis checkout is {ratio:.2f}x the speed of `{a.rev}`.\n"
    )
    print(body)
    if a.markdown:
        write_section("Auth-log parser: A/B against an earlier revision", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
