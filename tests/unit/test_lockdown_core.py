"""Core of lockdown and triage: sessions (/proc, utmp), evidence (manifest, report), quarantine."""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path

import pytest

from sshward import evidence, netaddr, quarantine, sessions

ED25519 = (Path(__file__).parents[1] / "fixtures/keys/ed25519.pub").read_text().strip()


def proc(
    pid: int, ppid: int, comm: str, cmdline: str, uid: int = 0, sockets: list[int] | None = None
) -> sessions.Process:
    return sessions.Process(pid=pid, ppid=ppid, uid=uid, comm=comm, cmdline=cmdline.split(), sockets=sockets or [])


def tree() -> dict[int, sessions.Process]:
    procs = [
        proc(1, 0, "systemd", "/sbin/init"),
        proc(33, 1, "sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", sockets=[100]),
        proc(300, 33, "sshd", "sshd: admin [priv]", sockets=[201]),
        proc(305, 300, "sshd", "sshd: admin@pts/1", uid=1000),
        proc(306, 305, "bash", "-bash", uid=1000),
        proc(500, 33, "sshd", "sshd: deploy [priv]"),
        proc(510, 500, "sshd", "sshd: deploy@notty", uid=1001),
        proc(511, 510, "sleep", "sleep 3600", uid=1001),
    ]
    return {p.pid: p for p in procs}


def conns() -> list[sessions.Connection]:
    return [
        sessions.Connection("tcp", "0.0.0.0", 22, "0.0.0.0", 0, "LISTEN", 100, 0),
        sessions.Connection("tcp", "10.0.0.5", 22, "203.0.113.7", 50000, "ESTABLISHED", 201, 0),
        sessions.Connection("tcp", "10.0.0.5", 22, "198.51.100.9", 41000, "ESTABLISHED", 202, 0),
    ]


def test_sessions_from_sockets_and_from_log_peers() -> None:
    found = sessions.find_sessions(tree(), conns(), peers={500: ("198.51.100.9", 41000)})
    assert [(s.pid, s.user, s.source_address, s.source_port) for s in found] == [
        (300, "admin", "203.0.113.7", 50000),
        (500, "deploy", "198.51.100.9", 41000),
    ]


def test_session_without_a_live_connection_is_not_reported() -> None:
    found = sessions.find_sessions(tree(), conns(), peers={500: ("198.51.100.9", 9999)})
    assert [s.pid for s in found] == [300]


def test_kill_targets_are_the_tree_never_the_listener_nor_protected() -> None:
    procs = tree()
    s = sessions.find_sessions(procs, conns(), peers={500: ("198.51.100.9", 41000)})[1]
    assert sessions.session_targets(s, procs, protected=[511]) == [500, 510]


@pytest.mark.parametrize(
    ("hex_addr", "expected"),
    [("0100007F:0016", ("127.0.0.1", 22)), ("0000000000000000FFFF00000100007F:01BB", ("127.0.0.1", 443))],
)
def test_proc_net_tcp_addresses(hex_addr: str, expected: tuple[str, int]) -> None:
    if struct.pack("=I", 1) != struct.pack("<I", 1):
        pytest.skip("fixture written for little-endian hosts")
    assert sessions._hex_address(hex_addr) == expected


def test_parse_stat_comm_with_parenthesis() -> None:
    stat = "42 (evil) (x) S 1 42 42 34817 42 4194304 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0"
    assert sessions.parse_stat(stat) == ("evil) (x", "S", 1, 42, 34817, 12345)


def test_utmp_round_trip() -> None:
    addr = socket.inet_aton("198.51.100.9") + b"\0" * 12
    raw = sessions._UTMP.pack(7, 500, b"pts/0", b"ts/0", b"deploy", b"198.51.100.9", 0, 0, 0, 1700000000, 5, addr, b"")
    (entry,) = sessions.parse_utmp(raw)
    assert (entry.pid, entry.line, entry.user, entry.address) == (500, "pts/0", "deploy", "198.51.100.9")


def test_live_snapshot_reads_this_host() -> None:
    snap = sessions.snapshot(peer_lookup=None)
    assert os.getpid() in snap.processes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a|b", "a\\|b"),
        ("x\n# heading", "x\\\\x0a\\# heading"),
        ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
        ("- item", "\\- item"),
        ("1. item", "1\\. item"),
        ("`$(id)`", "\\`$(id)\\`"),
    ],
)
def test_markdown_escaping(value: str, expected: str) -> None:
    assert evidence.md(value) == expected


@pytest.mark.parametrize("bad", ["../x", "", "a/b", "x" * 65, "-rf"])
def test_incident_id_is_a_plain_name(bad: str) -> None:
    with pytest.raises(evidence.EvidenceError):
        evidence.check_incident_id(bad)


def test_manifest_verifies_and_detects_tampering(tmp_path: Path) -> None:
    evidence.write_json(str(tmp_path), "volatile/sessions.json", {"sessions": []})
    evidence.write_bytes(str(tmp_path), "commands/x.txt", b"data")
    evidence.write_manifest(str(tmp_path))
    assert evidence.verify_manifest(str(tmp_path)) == []
    (tmp_path / "commands/x.txt").write_bytes(b"DATA")
    (tmp_path / "extra").write_text("x")
    assert sorted(evidence.verify_manifest(str(tmp_path))) == [
        "commands/x.txt: hash differs",
        "extra: not in the manifest",
    ]


def test_intruder_keys_from_accepted_logins() -> None:
    accepted = [
        {
            "method": "publickey",
            "fingerprint": "SHA256:a",
            "address": "198.51.100.9",
            "user": "deploy",
            "authorized_keys_file": "/home/deploy/.ssh/authorized_keys",
            "authorized_keys_line": 3,
        },
        {"method": "publickey", "fingerprint": "SHA256:b", "address": "203.0.113.7", "user": "admin"},
        {"method": "password", "fingerprint": None, "address": "198.51.100.9", "user": "deploy"},
    ]
    keys = evidence.intruder_keys(accepted, ["198.51.100.9"], netaddr.parse_networks(["203.0.113.7"], "admin_networks"))
    assert [(k["fingerprint"], k["logins"][0]["line"], k["shared_with_admin"]) for k in keys] == [
        ("SHA256:a", 3, False)
    ]


def test_report_is_escaped_and_lists_sessions(tmp_path: Path) -> None:
    b = str(tmp_path)
    hostile = {
        "pid": 9,
        "user": "x|<b>",
        "source_address": "198.51.100.9",
        "source_port": 1,
        "ttys": ["pts/0"],
        "start_time": 1700000000,
    }
    evidence.write_json(b, "volatile/sessions.json", {"sessions": [hostile]})
    report = evidence.build_report(b, "inc-1", "web1", ["203.0.113.7"], [], [{"step": "sessions", "status": "killed"}])
    assert report["intruder_addresses"] == ["198.51.100.9"]
    text = (tmp_path / "report.md").read_text()
    assert "x\\|\\<b\\>" in text
    assert json.loads((tmp_path / "report.json").read_text())["findings"]["intruder_sessions"][0]["user"] == "x|<b>"


def test_key_quarantine_removes_only_that_key(tmp_path: Path) -> None:
    ak = tmp_path / "authorized_keys"
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRpcnR5IGxpdHRsZSBzZWNyZXQgZGlydHkgbGl0dGxl ci@build"
    ak.write_text(f"# keys\r\n{other}\n{ED25519}\n")
    os.chmod(ak, 0o640)
    fp = quarantine.keys.parse_public_key(ED25519).fingerprint
    qfile = tmp_path / "q/keys.json"
    removed = quarantine.quarantine_keys([("deploy", str(ak))], [fp], str(qfile))
    assert [(r.line, r.fingerprint) for r in removed] == [(3, fp)]
    assert ak.read_bytes() == f"# keys\r\n{other}\n".encode()
    assert oct(ak.stat().st_mode & 0o777) == "0o640"
    assert json.loads(qfile.read_text())[0]["raw"] == ED25519
    assert quarantine.quarantine_keys([("deploy", str(ak))], [fp], str(qfile)) == []


def test_key_quarantine_check_mode_and_admin_key_guard(tmp_path: Path) -> None:
    ak = tmp_path / "authorized_keys"
    ak.write_text(ED25519 + "\n")
    fp = quarantine.keys.parse_public_key(ED25519).fingerprint
    assert len(quarantine.quarantine_keys([("u", str(ak))], [fp], None, check=True)) == 1
    assert ak.read_text() == ED25519 + "\n"
    with pytest.raises(quarantine.QuarantineError, match="lock you out"):
        quarantine.quarantine_keys([("u", str(ak))], [fp], None, protect=[fp])


def test_key_quarantine_never_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_text(ED25519 + "\n")
    link = tmp_path / "authorized_keys"
    link.symlink_to(real)
    fp = quarantine.keys.parse_public_key(ED25519).fingerprint
    assert quarantine.quarantine_keys([("u", str(link))], [fp], None) == []
    assert real.read_text() == ED25519 + "\n"
