"""Unit tests of sshward.integrity: hashing, baselines, comparing, dpkg/rpm verify output."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sshward import integrity as ig


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "etc-ssh"
    (root / "sshd_config.d").mkdir(parents=True)
    (root / "sshd_config").write_text("PasswordAuthentication no\n")
    (root / "sshd_config.d" / "50-cloud-init.conf").write_text("PasswordAuthentication yes\n")
    (root / "link").symlink_to("sshd_config")
    os.chmod(root / "sshd_config", 0o644)
    return root


def test_hash_paths_records_files_dirs_and_symlinks(tree: Path) -> None:
    files, missing = ig.hash_paths([str(tree), str(tree.parent / "absent")])
    assert missing == [str(tree.parent / "absent")]
    main = files[str(tree / "sshd_config")]
    assert main["type"] == "file"
    assert main["sha256"] == hashlib.sha256(b"PasswordAuthentication no\n").hexdigest()
    assert main["mode"] == "0644"
    assert files[str(tree / "link")] == {**files[str(tree / "link")], "type": "symlink", "target": "sshd_config"}
    assert files[str(tree / "sshd_config.d")]["type"] == "dir"
    assert str(tree / "sshd_config.d" / "50-cloud-init.conf") in files


def test_hash_paths_does_not_follow_symlinked_directories(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    (tree / "escape").symlink_to(outside)
    files, _ = ig.hash_paths([str(tree)])
    assert files[str(tree / "escape")]["type"] == "symlink"
    assert not any(p.endswith("secret") for p in files)


def test_relative_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="absolute"):
        ig.hash_paths(["etc/ssh"])


def test_compare_lists_added_removed_and_changed(tree: Path) -> None:
    before, _ = ig.hash_paths([str(tree)])
    (tree / "sshd_config.d" / "00-evil.conf").write_text("PasswordAuthentication yes\n")
    (tree / "sshd_config.d" / "50-cloud-init.conf").unlink()
    (tree / "sshd_config").write_text("PasswordAuthentication yes\n")
    os.chmod(tree / "sshd_config.d", 0o777)
    after, _ = ig.hash_paths([str(tree)])
    diff = ig.compare(before, after)
    assert diff.added == [str(tree / "sshd_config.d" / "00-evil.conf")]
    assert diff.removed == [str(tree / "sshd_config.d" / "50-cloud-init.conf")]
    assert diff.changed == {str(tree / "sshd_config"): ["sha256"], str(tree / "sshd_config.d"): ["mode"]}
    assert not diff.clean
    assert ig.describe(diff) == [
        f"added: {tree}/sshd_config.d/00-evil.conf",
        f"removed: {tree}/sshd_config.d/50-cloud-init.conf",
        f"changed: {tree}/sshd_config (sha256)",
        f"changed: {tree}/sshd_config.d (mode)",
    ]


def test_unchanged_tree_compares_clean(tree: Path) -> None:
    before, _ = ig.hash_paths([str(tree)])
    after, _ = ig.hash_paths([str(tree)])
    assert ig.compare(before, after).clean


def test_baseline_document_is_deterministic_and_round_trips(tree: Path) -> None:
    files, _ = ig.hash_paths([str(tree)])
    one = json.dumps(ig.make_baseline("web1", [str(tree)], files), sort_keys=True)
    two = json.dumps(ig.make_baseline("web1", [str(tree)], dict(reversed(list(files.items())))), sort_keys=True)
    assert one == two, "same state, same bytes: the controller copy is changed only by a real change"
    assert ig.load_baseline(one)["files"] == files


@pytest.mark.parametrize(
    ("text", "message"),
    [("not json", "not JSON"), ('{"format": 99}', "format"), ('{"format": 1, "files": []}', "lacks")],
)
def test_load_baseline_rejects_bad_documents(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ig.load_baseline(text)


DPKG_VERIFY = """\
??5??????   /usr/bin/ssh-keyscan
??5?????? c /etc/ssh/sshd_config
missing     /var/lib/apt/lists/partial
??5??????   /usr/sbin/sshd
missing   c /etc/pam.d/other
"""
RPM_VA = """\
S.5....T.  c /etc/ssh/sshd_config
.M.......    /usr/bin/sudo
S.5....T.    /usr/lib64/libkeyutils.so.1.9
missing     /usr/share/doc/openssh/README
"""


def test_parse_dpkg_verify() -> None:
    findings = ig.parse_verify_output(DPKG_VERIFY)
    assert [(f.path, f.conffile, f.missing, f.digest_changed) for f in findings] == [
        ("/usr/bin/ssh-keyscan", False, False, True),
        ("/etc/ssh/sshd_config", True, False, True),
        ("/var/lib/apt/lists/partial", False, True, False),
        ("/usr/sbin/sshd", False, False, True),
        ("/etc/pam.d/other", True, True, False),
    ]


def test_parse_rpm_va() -> None:
    findings = ig.parse_verify_output(RPM_VA + "garbage line\n")
    assert [(f.path, f.flags, f.conffile) for f in findings] == [
        ("/etc/ssh/sshd_config", "S.5....T.", True),
        ("/usr/bin/sudo", ".M.......", False),
        ("/usr/lib64/libkeyutils.so.1.9", "S.5....T.", False),
        ("/usr/share/doc/openssh/README", "missing", False),
    ]


def test_package_findings_policy() -> None:
    dpkg = [f.path for f in ig.package_findings(ig.parse_verify_output(DPKG_VERIFY))]
    assert dpkg == ["/usr/bin/ssh-keyscan", "/usr/sbin/sshd"], "config files and missing files are not reported"
    rpm = [f.path for f in ig.package_findings(ig.parse_verify_output(RPM_VA))]
    assert rpm == ["/usr/lib64/libkeyutils.so.1.9"], "a trojaned library of any package is reported"


def test_sshd_binaries_are_reported_even_as_config_files_or_missing() -> None:
    findings = ig.parse_verify_output("??5?????? c /usr/sbin/sshd\nmissing     /usr/lib/openssh/sshd-session\n")
    assert [f.path for f in ig.package_findings(findings)] == ["/usr/sbin/sshd", "/usr/lib/openssh/sshd-session"]


def test_runs_as_python_c_like_the_verify_suite(tree: Path) -> None:
    """verify/ ships the module's source to the host as `python3 -c`: same code, same hashes."""
    source = base64.b64encode(Path(ig.__file__).read_bytes()).decode()
    runner = (
        "import base64,sys;src=base64.b64decode(sys.argv.pop(1));"
        "exec(compile(src,'sshward/integrity.py','exec'),{'__name__':'__main__'})"
    )
    out = subprocess.run([sys.executable, "-c", runner, source, str(tree)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["files"] == ig.hash_paths([str(tree)])[0]


def test_default_paths_match_the_role(project_root: Path) -> None:
    import yaml

    role_vars = yaml.safe_load((project_root / "roles/ssh_hardening/vars/main.yml").read_text())
    assert tuple(role_vars["_ssh_hardening_baseline_paths"]) == ig.DEFAULT_PATHS
