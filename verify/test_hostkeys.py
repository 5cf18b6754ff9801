"""SSHW-HOSTKEY, SSHW-MODULI: the host keys sshd offers and the Diffie-Hellman groups it may pick."""

from __future__ import annotations

import re

import pytest

from .helpers import as_root, control
from .policy import role_policy

ALLOWED_TYPES = {"ED25519", "RSA"}
_KEYGEN_RE = re.compile(r"^(\d+) \S+ .*\((\S+)\)$")


@pytest.fixture(scope="module")
def hardening(variables):
    return role_policy("ssh_hardening", variables)


@pytest.fixture(scope="module")
def offered_keys(host, effective):
    """[(path, type, bits)] of the host keys sshd loads (HostKey entries whose file exists)."""
    out = []
    with as_root(host):
        for path in effective.get("hostkey", []):
            # The public half: ssh-keygen refuses a private key with loose modes (SSHW-FILE-004 reports those).
            result = host.run("ssh-keygen -l -f %s.pub 2>/dev/null || ssh-keygen -l -f %s", path, path)
            match = _KEYGEN_RE.match(result.stdout.strip())
            if result.rc == 0 and match:
                out.append((path, match.group(2), int(match.group(1))))
    return out


def needs_hardened_crypto(hardening) -> None:
    if hardening["crypto"] != "hardened":
        pytest.skip(f"ssh_hardening_crypto is {hardening['crypto']!r}: the distribution's choice applies")


@control("SSHW-HOSTKEY-001", "only Ed25519 and RSA host keys are offered (no DSA, no ECDSA)")
def test_host_key_types(hardening, offered_keys):
    needs_hardened_crypto(hardening)
    assert offered_keys, "sshd loads no host key"
    bad = [f"{path} ({kind})" for path, kind, _ in offered_keys if kind not in ALLOWED_TYPES]
    assert bad == [], "host keys of a type sshward does not offer: " + ", ".join(bad)


@control("SSHW-HOSTKEY-002", "the RSA host key has the policy's size")
def test_rsa_host_key_size(hardening, offered_keys):
    needs_hardened_crypto(hardening)
    rsa = [(path, bits) for path, kind, bits in offered_keys if kind == "RSA"]
    if not rsa:
        pytest.skip("sshd offers no RSA host key")
    want = int(hardening["rsa_host_key_bits"])
    bad = [f"{path} has {bits} bits" for path, bits in rsa if bits != want]
    assert bad == [], f"ssh_hardening_rsa_host_key_bits is {want}: " + ", ".join(bad)


@control("SSHW-MODULI-001", "no Diffie-Hellman group in /etc/ssh/moduli is under the policy's size", devsec="sshd-48")
def test_moduli(host, hardening):
    needs_hardened_crypto(hardening)
    moduli = host.file("/etc/ssh/moduli")
    assert moduli.exists, "/etc/ssh/moduli is missing: sshd falls back to a fixed 2048-bit group"
    minimum = int(hardening["moduli_min_bits"])
    small = {}
    for line in moduli.content_string.splitlines():
        fields = line.split()
        if len(fields) == 7 and not line.startswith("#") and fields[4].isdigit() and int(fields[4]) + 1 < minimum:
            small[int(fields[4]) + 1] = small.get(int(fields[4]) + 1, 0) + 1
    found = ", ".join(f"{n} of {bits} bits" for bits, n in sorted(small.items()))
    assert not small, f"groups under {minimum} bits: {found}"
