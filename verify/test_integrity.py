"""SSHW-INTEG: the host's files against the baseline kept off it, and against the package manager.

SSHW-INTEG-001 re-hashes, on the host, the paths the baseline recorded (with the same core code,
sshward.integrity, run by `python3 -c`) and lists added, removed and changed files by path.

SSHW-INTEG-002 needs no baseline: `dpkg --verify` / `rpm -Va` compare package files with the
checksums their packages shipped. Policy (sshward.integrity.package_findings): any changed
digest of a file that is not a configuration file is reported (a trojaned binary or library,
in any package: Ebury replaced libkeyutils, not sshd); configuration files (`c`) are not, since
admins and harden.yml edit them on purpose and SSHW-INTEG-001 covers them, except the sshd
binaries, which are reported whatever their package marks them as; missing files are not
reported (images and admins delete documentation; a missing file runs no code), except the
sshd binaries.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import sshward.integrity as integrity

from .helpers import as_root, control
from .policy import baseline_dir, baseline_name

_RUNNER = (
    "import base64,sys;src=base64.b64decode(sys.argv.pop(1));"
    "exec(compile(src,'sshward/integrity.py','exec'),{'__name__':'__main__'})"
)


def hash_on_host(host, paths: list[str]) -> dict:
    source = base64.b64encode(Path(integrity.__file__).read_bytes()).decode()
    with as_root(host):
        result = host.run("python3 -c %s %s " + " ".join(["%s"] * len(paths)), _RUNNER, source, *paths)
    assert result.rc == 0, f"hashing on the host failed: {result.stderr.strip()[-500:]}"
    return json.loads(result.stdout)["files"]


@control("SSHW-INTEG-001", "files recorded in the off-host baseline are unchanged")
def test_baseline(host, variables, request):
    directory = baseline_dir(variables, request.config.getoption("--baseline-dir"))
    if not directory:
        pytest.skip("ssh_hardening_baseline_dir is empty: no baseline is kept")
    name = baseline_name(host, variables)
    path = Path(directory) / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"no baseline for {name} at {path}; harden.yml records one")
    baseline = integrity.load_baseline(path.read_text())
    diff = integrity.compare(baseline["files"], hash_on_host(host, list(baseline["paths"])))
    assert diff.clean, f"{len(integrity.describe(diff))} difference(s) from {path}: " + "; ".join(
        integrity.describe(diff)
    )


@control("SSHW-INTEG-002", "packaged programs match the package manager's checksums (dpkg --verify, rpm -Va)")
def test_package_checksums(host):
    if host.exists("dpkg"):
        command = "dpkg --verify"
    elif host.exists("rpm"):
        command = "rpm -Va"
    else:
        pytest.skip("neither dpkg nor rpm on this host")
    with as_root(host):
        result = host.run(command)
    if not result.stdout.strip() and result.rc not in (0, 1):
        pytest.fail(f"{command} exited {result.rc}: {result.stderr.strip()[-300:]}")
    found = integrity.package_findings(integrity.parse_verify_output(result.stdout))
    listed = "; ".join(f"{f.path} ({f.flags}{', config file' if f.conffile else ''})" for f in found)
    assert found == [], f"{command}: {len(found)} packaged file(s) differ from their package: {listed}"
