"""Unit tests of sshward.keys against ssh-keygen 9.2p1 output (tests/fixtures/keys/expected.txt)."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from sshward import keys as k

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keys"
# name, bits, SHA256 fingerprint, MD5 fingerprint, as printed by `ssh-keygen -l [-E md5] -f`
EXPECTED = [tuple(line.split()) for line in (FIXTURES / "expected.txt").read_text().splitlines() if line]
ED25519 = (FIXTURES / "ed25519.pub").read_text().strip()
RSA3072 = (FIXTURES / "rsa3072.pub").read_text().strip()


def load(name: str) -> k.PublicKey:
    return k.parse_public_key((FIXTURES / name).read_text())


@pytest.mark.parametrize(("name", "bits", "sha256", "md5"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_sha256_fingerprint_matches_ssh_keygen(name: str, bits: str, sha256: str, md5: str) -> None:
    assert load(name).fingerprint == sha256


@pytest.mark.parametrize(("name", "bits", "sha256", "md5"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_md5_fingerprint_matches_ssh_keygen(name: str, bits: str, sha256: str, md5: str) -> None:
    assert load(name).fingerprint_md5 == md5


@pytest.mark.parametrize(("name", "bits", "sha256", "md5"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_bits_match_ssh_keygen(name: str, bits: str, sha256: str, md5: str) -> None:
    assert load(name).bits == int(bits)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("ed25519.pub", "ed25519"),
        ("rsa4096.pub", "rsa"),
        ("ecdsa384.pub", "ecdsa"),
        ("dsa.pub", "dsa"),
        ("ecdsa256-cert.pub", "ecdsa"),
    ],
)
def test_family(name: str, family: str) -> None:
    assert load(name).family == family


def test_certificate_is_flagged() -> None:
    assert load("ecdsa256-cert.pub").is_certificate


def test_comment_is_kept() -> None:
    assert load("rsa3072.pub").comment == "bob rsa3072"


@pytest.mark.parametrize(
    ("line", "options"),
    [
        (ED25519, ()),
        ("no-pty " + ED25519, ("no-pty",)),
        (
            'command="echo a, b",from="10.0.0.1,10.0.0.2" ' + ED25519,
            ('command="echo a, b"', 'from="10.0.0.1,10.0.0.2"'),
        ),
        ('command="say \\"hi there\\"",no-pty ' + ED25519, ('command="say \\"hi there\\""', "no-pty")),
        ("restrict,pty\t" + ED25519, ("restrict", "pty")),
    ],
)
def test_options(line: str, options: tuple[str, ...]) -> None:
    entry = k.parse_authorized_line(line)
    assert entry is not None
    assert (entry.options, entry.valid) == (options, True)


@pytest.mark.parametrize("line", ["", "   ", "# ssh-ed25519 AAAA", "\t# comment"])
def test_blank_and_comment_lines_are_skipped(line: str) -> None:
    assert k.parse_authorized_line(line) is None


def _swap_type(line: str, new_type: str) -> str:
    return new_type + " " + line.split()[1]


def _blob_with_type(line: str, embedded: str) -> str:
    blob = base64.b64decode(line.split()[1])
    (n,) = struct.unpack(">I", blob[:4])
    new = struct.pack(">I", len(embedded)) + embedded.encode() + blob[4 + n :]
    return line.split()[0] + " " + base64.b64encode(new).decode()


@pytest.mark.parametrize(
    "line",
    [
        _swap_type(ED25519, "ssh-rsa"),  # declared type differs from the blob's
        _blob_with_type(ED25519, "ssh-rsa"),
        "ssh-ed25519 AAAA!!!!",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",  # truncated
        "ssh-ed25519",
        "ssh-foo AAAAB3NzaC1yc2E=",
        ED25519.split()[0] + " " + ED25519.split()[1][:-4],
        'command="unterminated ' + ED25519,
        ED25519 + "\nssh-ed25519 AAAA",  # a smuggled second line
        ED25519.replace(" ", "\x00", 1),
        "x" * 20000 + " " + ED25519,
    ],
)
def test_invalid_keys_are_rejected(line: str) -> None:
    assert not k.is_valid_public_key(line)


@pytest.mark.parametrize("line", [ED25519, RSA3072, "restrict " + ED25519, ED25519 + "\n", ED25519.encode()])
def test_valid_keys_are_accepted(line: str | bytes) -> None:
    assert k.is_valid_public_key(line)


def test_trailing_data_in_blob_is_rejected() -> None:
    blob = base64.b64decode(ED25519.split()[1]) + b"\x00\x00\x00\x01x"
    assert not k.is_valid_public_key("ssh-ed25519 " + base64.b64encode(blob).decode())


def test_list_reports_file_and_line() -> None:
    text = "# keys\n" + ED25519 + "\n\ngarbage here\n" + RSA3072 + "\n"
    entries = k.list_authorized_keys(text, "/home/a/.ssh/authorized_keys")
    assert [(e.location, e.valid) for e in entries] == [
        ("/home/a/.ssh/authorized_keys:2", True),
        ("/home/a/.ssh/authorized_keys:4", False),
        ("/home/a/.ssh/authorized_keys:5", True),
    ]


def test_hostile_comment_bytes_do_not_crash_and_are_escaped() -> None:
    data = ED25519.split(" ", 2)[0].encode() + b" " + ED25519.split()[1].encode() + b" \x1b[2J\xff\xfe evil\r\n"
    (entry,) = k.list_authorized_keys(data)
    line = k.report([entry])[0]
    assert ("\x1b" in line, "\\x1b" in line, "\\xff" in line) == (False, True, True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a\nb", "a\\x0ab"), ("tab\t", "tab\\x09"), ("é", "\\xe9"), ("\\", "\\\\"), ("x" * 5, "xxx...")],
)
def test_printable(text: str, expected: str) -> None:
    limit = 3 if text == "x" * 5 else 200
    assert k.printable(text, limit) == expected


def test_fingerprint_of_known_blob() -> None:
    # sha256 of the empty string, base64 without padding
    assert k.fingerprint_sha256(b"") == "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
