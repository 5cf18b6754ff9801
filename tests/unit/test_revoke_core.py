"""Unit tests of sshward.revoke: key specs, AuthorizedKeysFile tokens, scanning, the KRL record, the fleet report.

The KRL tests run the real ssh-keygen (as the module does on a host).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sshward import revoke
from sshward.effective import parse_sshd_T

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keys"
EXPECTED = {line.split()[0]: line.split()[2] for line in (FIXTURES / "expected.txt").read_text().splitlines() if line}
ED25519 = (FIXTURES / "ed25519.pub").read_text().strip()
RSA = (FIXTURES / "rsa3072.pub").read_text().strip()
ED25519_FP = EXPECTED["ed25519.pub"]
RSA_FP = EXPECTED["rsa3072.pub"]
SSH_KEYGEN = shutil.which("ssh-keygen")


def test_fingerprint_spec_is_kept_as_is() -> None:
    key = revoke.parse_key_line(f"{ED25519_FP} stolen laptop", "keys[0]")
    assert (key.fingerprint, key.public_key, key.comment) == (ED25519_FP, "", "stolen laptop")


def test_public_key_spec_gives_the_fingerprint_sshd_logs() -> None:
    key = revoke.parse_key_line(ED25519, "keys[0]")
    assert key.fingerprint == ED25519_FP
    assert key.public_key == " ".join(ED25519.split()[:2])


def test_authorized_keys_line_with_options_is_a_spec() -> None:
    key = revoke.parse_key_line(f'from="10.0.0.0/8",no-pty {RSA}', "keys[1]")
    assert key.fingerprint == RSA_FP


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("SHA256:tooshort", r"^keys\[0\]: SHA256:tooshort is not a SHA256 fingerprint as sshd logs it"),
        ("SHA256:" + "A" * 42 + "!", r"^keys\[0\]: .* is not a SHA256 fingerprint"),
        ("MD5:aa:bb", r"^keys\[0\]: MD5 fingerprints cannot be revoked in a KRL"),
        ("ssh-ed25519 AAAAnotakey x", r"^keys\[0\]: .* is neither a SHA256 fingerprint nor a public key line"),
        ("", r"^keys\[0\]: .* is neither"),
    ],
)
def test_malformed_spec_names_the_argument(spec: str, message: str) -> None:
    with pytest.raises(revoke.KeySpecError, match=message):
        revoke.collect_keys([spec])


def test_empty_list_names_the_argument() -> None:
    with pytest.raises(revoke.KeySpecError, match=r"^ssh_revoke_keys: no key to revoke: the list is empty") as exc:
        revoke.collect_keys(
            [], argument_names=("ssh_revoke_keys", "ssh_revoke_keys_file", "ssh_revoke_lockdown_report")
        )
    assert exc.value.argument == "ssh_revoke_keys"


def test_key_file_error_names_the_file_and_line() -> None:
    text = f"# stolen keys\n{ED25519}\n\nSHA256:nope\n"
    with pytest.raises(revoke.KeySpecError, match=r"^keys_file \(stolen\.txt:4\): SHA256:nope"):
        revoke.collect_keys(files=[("stolen.txt", text)])


def test_keys_are_merged_by_fingerprint_keeping_the_public_key() -> None:
    merged = revoke.collect_keys([ED25519_FP, RSA_FP], files=[("f", ED25519 + "\n")])
    assert [k.fingerprint for k in merged] == [ED25519_FP, RSA_FP]
    assert merged[0].public_key and merged[0].source == "keys[0]"
    assert merged[1].public_key == ""


def test_lockdown_report_gives_intruder_and_quarantined_keys() -> None:
    report = {
        "findings": {
            "intruder_keys": [{"fingerprint": RSA_FP, "logins": []}],
            "quarantined_keys": [{"fingerprint": ED25519_FP, "raw": "no-pty " + ED25519, "file": "/x", "line": 2}],
        }
    }
    found = revoke.collect_keys(reports=[("web1/report.json", report)])
    assert {k.fingerprint: bool(k.public_key) for k in found} == {ED25519_FP: True, RSA_FP: False}


@pytest.mark.parametrize("report", [{}, [], {"findings": "x"}, {"findings": {"intruder_keys": []}}])
def test_not_a_lockdown_report(report: object) -> None:
    with pytest.raises(revoke.KeySpecError, match=r"^lockdown_report: r\.json"):
        revoke.collect_keys(reports=[("r.json", report)])


def test_protected_key_clash() -> None:
    assert revoke.clashes_with(revoke.collect_keys([ED25519]), [ED25519_FP, "SHA256:other"]) == [ED25519_FP]


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        (".ssh/authorized_keys", "/home/bob/.ssh/authorized_keys"),
        ("%h/.ssh/keys_%u", "/home/bob/.ssh/keys_bob"),
        ("/etc/ssh/authorized_keys/%u", "/etc/ssh/authorized_keys/bob"),
        ("/etc/ssh/keys/%U", "/etc/ssh/keys/1001"),
        ("/etc/ssh/100%%_%u", "/etc/ssh/100%_bob"),
    ],
)
def test_authorized_keys_file_tokens(pattern: str, path: str) -> None:
    assert revoke.expand_tokens(pattern, "bob", 1001, "/home/bob") == path


def test_unknown_token_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown token %x"):
        revoke.expand_tokens("/etc/%x", "bob", 1, "/home/bob")


def test_files_from_sshd_T() -> None:
    eff = parse_sshd_T("port 22\nauthorizedkeysfile .ssh/authorized_keys /etc/ssh/authorized_keys/%u\n")
    files = revoke.authorized_keys_files(eff, [("alice", 1000, "/home/alice"), ("bob", 1001, "/home/bob")])
    assert files == [
        ("alice", "/home/alice/.ssh/authorized_keys"),
        ("alice", "/etc/ssh/authorized_keys/alice"),
        ("bob", "/home/bob/.ssh/authorized_keys"),
        ("bob", "/etc/ssh/authorized_keys/bob"),
    ]


def test_authorized_keys_file_none() -> None:
    assert revoke.authorized_keys_files(parse_sshd_T("authorizedkeysfile none\n"), [("a", 1, "/h")]) == []


def test_effective_value_none_is_empty() -> None:
    eff = parse_sshd_T("revokedkeys none\nauthorizedkeyscommand /usr/bin/keys %u\n")
    assert revoke.effective_value(eff, "revokedkeys") == ""
    assert revoke.effective_value(eff, "authorizedkeyscommand") == "/usr/bin/keys %u"


def test_scan_file_finds_matches_and_recent_undeclared() -> None:
    data = f"# keys\nno-pty {ED25519}\n{RSA} planted\n".encode()
    matches, undeclared = revoke.scan_file("alice", "/f", data, 1000.0, [ED25519_FP], [], recent_since=900.0)
    assert [(m.line, m.options) for m in matches] == [(2, ["no-pty"])]
    assert [(u.line, u.fingerprint) for u in undeclared] == [(3, RSA_FP)]


def test_scan_file_declared_or_old_is_not_reported() -> None:
    data = f"{RSA}\n".encode()
    assert revoke.scan_file("a", "/f", data, 1000.0, [], [RSA_FP], recent_since=900.0)[1] == []
    assert revoke.scan_file("a", "/f", data, 800.0, [], [], recent_since=900.0)[1] == []
    assert revoke.scan_file("a", "/f", data, 1000.0, [], [], recent_since=None)[1] == []


def test_scan_host_skips_missing_and_reports_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "keys"
    real.write_text(ED25519 + "\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    files = [("a", str(real)), ("b", str(link)), ("c", str(tmp_path / "missing"))]
    matches, _undeclared, unreadable = revoke.scan_host(files, [ED25519_FP], [], None)
    assert [m.user for m in matches] == ["a"]
    assert len(unreadable) == 1 and unreadable[0].startswith(str(link))


def test_declared_fingerprints_skip_bad_lines() -> None:
    assert revoke.declared_fingerprints([ED25519, "junk", RSA_FP]) == [ED25519_FP, RSA_FP]


def test_krl_record_only_grows_and_is_idempotent() -> None:
    keys = revoke.collect_keys([ED25519])
    first, added = revoke.plan_krl_record("", keys)
    assert [k.fingerprint for k in added] == [ED25519_FP]
    assert revoke.parse_krl_record(first) == [ED25519_FP]
    assert revoke.plan_krl_record(first, keys) == (first, [])
    second, added = revoke.plan_krl_record(first, revoke.collect_keys([RSA_FP, ED25519_FP]))
    assert [k.fingerprint for k in added] == [RSA_FP]
    assert revoke.parse_krl_record(second) == [ED25519_FP, RSA_FP]


def test_krl_record_comment_cannot_inject_a_line() -> None:
    key = revoke.RevokedKey(ED25519_FP, "", "x\nhash: SHA256:" + "B" * 43 + " # y")
    text = "".join(line + "\n" for line in revoke.krl_record_lines([key]))
    assert revoke.parse_krl_record(text) == [ED25519_FP]
    assert text.count("\n") == 1


def test_parse_krl_test() -> None:
    out = "/tmp/k0.pub (a): REVOKED\n/tmp/k1.pub (b: c): ok\n"
    assert revoke.parse_krl_test(out) == {"/tmp/k0.pub": True, "/tmp/k1.pub": False}


@pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed")
def test_krl_from_the_record_refuses_keys_known_by_fingerprint_only(tmp_path: Path) -> None:
    assert SSH_KEYGEN
    spec = tmp_path / "spec"
    spec.write_text(revoke.plan_krl_record("", revoke.collect_keys([ED25519_FP]))[0])
    krl = tmp_path / "krl"
    subprocess.run(revoke.krl_argv(SSH_KEYGEN, str(krl), str(spec), update=False), check=True, capture_output=True)
    for name in ("ed25519.pub", "rsa3072.pub"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    out = subprocess.run(
        [SSH_KEYGEN, "-Q", "-f", str(krl), str(tmp_path / "ed25519.pub"), str(tmp_path / "rsa3072.pub")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert revoke.parse_krl_test(out.stdout) == {
        str(tmp_path / "ed25519.pub"): True,
        str(tmp_path / "rsa3072.pub"): False,
    }


def _host(done: bool, **kw: object) -> dict[str, object]:
    return {"done": done, **kw}


def test_fleet_report_lists_hosts_not_done() -> None:
    found = {"user": "alice", "file": "/home/alice/.ssh/authorized_keys", "line": 2, "fingerprint": ED25519_FP}
    report = revoke.build_fleet_report(
        [{"fingerprint": ED25519_FP, "comment": "c", "source": "keys[0]"}],
        {"web2": _host(False, reason="unreachable: no route"), "web1": _host(True, found=[found])},
        generated_at=0.0,
    )
    assert report["complete"] is False
    assert report["not_done"] == ["web2"]
    assert [h["status"] for h in report["hosts"]] == ["done", "NOT DONE"]
    md = revoke.render_fleet_markdown(report)
    assert "**INCOMPLETE: 1 host(s) NOT DONE: web2.**" in md
    assert "| web2 | **NOT DONE** |" in md
    assert "/home/alice/.ssh/authorized\\_keys:2" in md


def test_fleet_report_complete_and_check_mode() -> None:
    report = revoke.build_fleet_report([], {"web1": _host(True)}, check_mode=True)
    assert report["complete"] and report["hosts"][0]["status"] == "checked"
    assert "CHECK MODE" in revoke.render_fleet_markdown(report)


def test_fleet_report_lists_earlier_places_once() -> None:
    place = {"user": "bob", "file": "/etc/ssh/authorized_keys/bob", "line": 2, "fingerprint": ED25519_FP}
    report = revoke.build_fleet_report(
        [],
        {
            "b": _host(
                True, quarantined_earlier=[{**place, "time": "2026-11-22T09:00:00Z"}, {**place, "time": "later"}]
            ),
            "a": _host(True, found=[place], quarantined_earlier=[place]),
        },
    )
    places = revoke.where_found(report)
    assert [(p["host"], p["when"]) for p in places] == [
        ("a", "this run"),
        ("b", "earlier run, quarantined 2026-11-22T09:00:00Z"),
    ]


def test_fleet_report_markdown_is_injection_proof() -> None:
    hostile = {"user": "x|y", "file": "/f\n# owned", "line": 1, "fingerprint": ED25519_FP, "comment": "`$(id)`|*"}
    md = revoke.render_fleet_markdown(revoke.build_fleet_report([], {"h": _host(True, recent_undeclared=[hostile])}))
    row = next(line for line in md.splitlines() if "x\\|y" in line)
    assert "\\`$(id)\\`\\|\\*" in row  # backticks, pipes and stars escaped: no code span, no extra cell
    assert not any(line.startswith("# owned") for line in md.splitlines())


def test_write_report_files(tmp_path: Path) -> None:
    report = revoke.build_fleet_report([], {"h": _host(False)})
    json_path, md_path = revoke.write_report_files(str(tmp_path / "r"), report)
    assert json.loads(Path(json_path).read_text())["not_done"] == ["h"]
    assert "NOT DONE" in Path(md_path).read_text()
    assert stat.S_IMODE(os.stat(json_path).st_mode) == 0o600


def test_fleet_report_names_an_authorized_keys_command() -> None:
    report = revoke.build_fleet_report(
        [], {"h": _host(True, authorized_keys_command="/usr/bin/sss_ssh_authorizedkeys %u")}
    )
    assert "AuthorizedKeysCommand /usr/bin/sss\\_ssh\\_authorizedkeys %u is set" in revoke.render_fleet_markdown(report)
