"""Unit tests of sshward.openssh (versions, facts, hardened crypto vs ssh-audit policies)."""

from __future__ import annotations

import pytest

from sshward import openssh as o

BOOKWORM = "OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024"
TRIXIE = "OpenSSH_10.0p2 Debian-7"
BULLSEYE = "OpenSSH_8.4p1 Debian-5+deb11u3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BOOKWORM, o.OpenSSHVersion(9, 2, 1, "Debian", "2+deb12u3")),
        (TRIXIE, o.OpenSSHVersion(10, 0, 2, "Debian", "7")),
        (BULLSEYE, o.OpenSSHVersion(8, 4, 1, "Debian", "5+deb11u3")),
        ("OpenSSH_9.6, LibreSSL 3.8.2", o.OpenSSHVersion(9, 6, 0)),
        (
            "unknown option -- V\n" + BULLSEYE + ", OpenSSL 1.1.1w  11 Sep 2023\nusage: sshd [-46DdeiqTt]",
            o.OpenSSHVersion(8, 4, 1, "Debian", "5+deb11u3"),
        ),
        ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6", o.OpenSSHVersion(9, 2, 1, "Debian", "2+deb12u6")),
    ],
)
def test_parse_version(text: str, expected: o.OpenSSHVersion) -> None:
    assert o.parse_version(text) == expected


def test_parse_version_keeps_ssl() -> None:
    assert o.parse_version(BOOKWORM).ssl == "OpenSSL 3.0.15 3 Sep 2024"


@pytest.mark.parametrize("text", ["", "OpenSSH", "user from OpenSSH_9.9p1 injected", "Dropbear v2022.83"])
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        o.parse_version(text)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        (BULLSEYE, BOOKWORM),
        (BOOKWORM, TRIXIE),
        ("OpenSSH_9.2p1 Debian-2+deb12u3", "OpenSSH_9.2p1 Debian-2+deb12u10"),
        ("OpenSSH_9.2p1 Debian-2", "OpenSSH_9.2p1 Debian-2+deb12u1"),
        ("OpenSSH_9.9p1", "OpenSSH_9.9p2"),
        ("OpenSSH_9.10p1", "OpenSSH_10.0p1"),
    ],
)
def test_versions_compare(lower: str, higher: str) -> None:
    assert o.parse_version(lower) < o.parse_version(higher)


@pytest.mark.parametrize(
    ("a", "b", "sign"),
    [("1.0", "1.0", 0), ("1.0~rc1", "1.0", -1), ("2+deb12u4", "2+deb12u10", -1), ("5+deb11u3", "5", 1)],
)
def test_dpkg_revision_cmp(a: str, b: str, sign: int) -> None:
    r = o.dpkg_revision_cmp(a, b)
    assert (r > 0) - (r < 0) == sign


V = o.parse_version


@pytest.mark.parametrize(
    ("version", "fact", "expected"),
    [
        ("OpenSSH_7.4p1", "accepts_protocol", True),
        ("OpenSSH_7.6p1", "accepts_protocol", False),
        (BULLSEYE, "kbd_interactive_keyword", "ChallengeResponseAuthentication"),
        (BOOKWORM, "kbd_interactive_keyword", "KbdInteractiveAuthentication"),
        (BULLSEYE, "pubkey_algorithms_keyword", "PubkeyAcceptedKeyTypes"),
        (BOOKWORM, "pubkey_algorithms_keyword", "PubkeyAcceptedAlgorithms"),
        (BOOKWORM, "has_per_source_penalties", False),
        (TRIXIE, "has_per_source_penalties", True),
        ("OpenSSH_9.8p1", "has_mlkem", False),
        ("OpenSSH_9.9p1", "has_mlkem", True),
        (BOOKWORM, "has_sshd_session", False),
        ("OpenSSH_9.8p1", "has_sshd_session", True),
        (TRIXIE, "has_sshd_session", True),
        (TRIXIE, "has_sshd_auth", True),
        (BOOKWORM, "has_sntrup761_plain_name", False),
        ("OpenSSH_9.2p1 Debian-2+deb12u4", "has_sntrup761_plain_name", True),
        ("OpenSSH_9.2p1 Debian-2+deb12u1", "has_kex_strict", False),
        (BOOKWORM, "has_kex_strict", True),
        ("OpenSSH_8.4p1 Debian-5+deb11u2", "has_kex_strict", False),
        (BULLSEYE, "has_kex_strict", True),
        ("OpenSSH_9.2p1", "has_kex_strict", False),
    ],
)
def test_version_facts(version: str, fact: str, expected: object) -> None:
    assert getattr(V(version), fact) == expected


@pytest.mark.parametrize(
    ("version", "policy"),
    [
        ("OpenSSH_9.2p1 Debian-2+deb12u6", "Hardened Debian 12 (version 3)"),
        ("OpenSSH_9.2p1 Debian-2+deb12u4", "Hardened Debian 12 (version 3)"),
        (BOOKWORM, "Hardened Debian 12 (version 2)"),
        ("OpenSSH_9.2p1 Debian-2+deb12u1", "Hardened OpenSSH Server v9.2 (version 3)"),
        (TRIXIE, "Hardened Debian 13 (version 1)"),
        (BULLSEYE, "Hardened Ubuntu Server 20.04 LTS (version 5)"),
        ("OpenSSH_8.4p1 Debian-5+deb11u1", "Hardened OpenSSH Server v8.4 (version 4)"),
        ("OpenSSH_9.9p1", "Hardened OpenSSH Server v9.9 (version 1)"),
        ("OpenSSH_7.4p1", None),
    ],
)
def test_policy_per_version(version: str, policy: str | None) -> None:
    assert o.ssh_audit_policy(V(version)) == policy


# ------------------------------------------------------------ against the installed ssh-audit


def _builtin() -> dict[str, dict[str, object]]:
    mod = pytest.importorskip("ssh_audit.builtin_policies", reason="ssh-audit is not installed")
    policies: dict[str, dict[str, object]] = mod.BUILTIN_POLICIES
    return policies


@pytest.mark.parametrize("name", sorted(o.POLICY_LISTS))
@pytest.mark.parametrize(
    ("field", "attr"), [("kex", "kex"), ("ciphers", "ciphers"), ("macs", "macs"), ("host_keys", "host_keys")]
)
def test_policy_lists_equal_ssh_audit(name: str, field: str, attr: str) -> None:
    policy = _builtin()[name]
    assert list(getattr(o.POLICY_LISTS[name], attr)) == policy[field]


@pytest.mark.parametrize("name", sorted(o.POLICY_LISTS))
def test_policy_rsa_size_equals_ssh_audit(name: str) -> None:
    sizes = _builtin()[name]["hostkey_sizes"]
    assert isinstance(sizes, dict)
    assert sizes["rsa-sha2-512"]["hostkey_size"] == o.POLICY_LISTS[name].rsa_host_key_bits


@pytest.mark.parametrize("name", sorted(o.POLICY_LISTS))
def test_policy_host_key_reordering_flag_equals_ssh_audit(name: str) -> None:
    flag = bool(_builtin()[name].get("allow_hostkey_subset_and_reordering", False))
    assert flag == o.POLICY_LISTS[name].host_keys_any_order


@pytest.mark.parametrize(
    "version",
    [BOOKWORM, "OpenSSH_9.2p1 Debian-2+deb12u6", TRIXIE, BULLSEYE, "OpenSSH_8.4p1 Debian-5", "OpenSSH_9.9p1"],
)
@pytest.mark.parametrize(("keyword", "field"), [("KexAlgorithms", "kex"), ("Ciphers", "ciphers"), ("MACs", "macs")])
def test_hardened_crypto_matches_target_policy(version: str, keyword: str, field: str) -> None:
    v = V(version)
    name = o.ssh_audit_policy(v)
    assert name is not None
    expected = [a for a in _builtin()[name][field] if a not in o.PSEUDO_KEX]  # type: ignore[attr-defined]
    assert o.hardened_crypto(v)[keyword] == expected


@pytest.mark.parametrize("version", [BOOKWORM, TRIXIE, BULLSEYE])
def test_server_kex_list_equals_policy(version: str) -> None:
    """What sshd advertises = configured KexAlgorithms + the pseudo-algorithms it appends."""
    v = V(version)
    advertised = o.hardened_crypto(v)["KexAlgorithms"]
    advertised += [
        a
        for a, on in (
            ("ext-info-s", v.advertises_ext_info_s),
            ("kex-strict-s-v00@openssh.com", v.has_kex_strict),
        )
        if on
    ]
    assert advertised == _builtin()[o.ssh_audit_policy(v) or ""]["kex"]


@pytest.mark.parametrize("version", [BOOKWORM, TRIXIE, BULLSEYE])
def test_host_key_order_matches_policy(version: str) -> None:
    v = V(version)
    algs = []
    for spec in o.hardened_host_keys(v):
        algs += ["rsa-sha2-512", "rsa-sha2-256"] if spec.type == "rsa" else ["ssh-ed25519"]
    assert algs == _builtin()[o.ssh_audit_policy(v) or ""]["host_keys"]


@pytest.mark.parametrize(
    ("version", "keyword"),
    [(BULLSEYE, "PubkeyAcceptedKeyTypes"), (BOOKWORM, "PubkeyAcceptedAlgorithms"), ("OpenSSH_7.8p1", "MACs")],
)
def test_hardened_crypto_keywords(version: str, keyword: str) -> None:
    assert keyword in o.hardened_crypto(V(version))


def test_no_ca_signature_algorithms_before_7_9() -> None:
    assert "CASignatureAlgorithms" not in o.hardened_crypto(V("OpenSSH_7.8p1"))


@pytest.mark.parametrize("version", [BOOKWORM, TRIXIE, BULLSEYE])
@pytest.mark.parametrize("bad", ["sha1", "ecdsa", "ssh-dss", "ssh-rsa,", "cbc", "md5", "nistp"])
def test_hardened_crypto_has_no_weak_algorithms(version: str, bad: str) -> None:
    joined = ",".join(",".join(v) for v in o.hardened_crypto(V(version)).values()) + ","
    assert bad not in joined


def test_supported_intersection_keeps_order() -> None:
    supported = {"kex": ["curve25519-sha256", "diffie-hellman-group16-sha512", "sntrup761x25519-sha512@openssh.com"]}
    assert o.hardened_crypto(V(BOOKWORM), supported)["KexAlgorithms"] == [
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "diffie-hellman-group16-sha512",
    ]


def test_supported_accepts_ssh_q_text() -> None:
    got = o.hardened_crypto(V(TRIXIE), {"MAC": "hmac-sha2-256-etm@openssh.com\numac-128-etm@openssh.com\n"})
    assert got["MACs"] == ["hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"]


def test_supported_without_any_hardened_algorithm_is_an_error() -> None:
    with pytest.raises(ValueError, match="Ciphers"):
        o.hardened_crypto(V(BOOKWORM), {"cipher": ["3des-cbc"]})


def test_hardened_settings_rsa_size_from_9_1() -> None:
    assert (
        "RequiredRSASize" in o.hardened_settings(V(BOOKWORM)),
        "RequiredRSASize" in o.hardened_settings(V(BULLSEYE)),
    ) == (True, False)


MODULI = """#    $OpenBSD: moduli,v 1.33 2023/03/15 02:31:42 dtucker Exp $
# Time Type Tests Tries Size Generator Modulus
20230315024140 2 6 100 2047 2 DEADBEEF
20230315024140 2 6 100 3071 5 CAFEBABE
20230315024140 2 6 100 3070 5 BADBAD
20230315024140 2 6 100 4095 2 F00D
garbage line
"""


def test_filter_moduli_keeps_3071_and_up() -> None:
    sizes = [ln.split()[4] for ln in o.filter_moduli(MODULI).splitlines() if not ln.startswith("#")]
    assert sizes == ["3071", "4095"]


def test_filter_moduli_keeps_comments() -> None:
    assert o.filter_moduli(MODULI).startswith("#    $OpenBSD")


def test_filter_moduli_refuses_to_empty_the_file() -> None:
    with pytest.raises(ValueError):
        o.filter_moduli("20230315024140 2 6 100 2047 2 DEADBEEF\n")


def test_filter_moduli_against_system_file() -> None:
    try:
        with open("/etc/ssh/moduli") as fh:
            text = fh.read()
    except OSError:
        pytest.skip("no /etc/ssh/moduli on this host")
    sizes = {int(ln.split()[4]) for ln in o.filter_moduli(text).splitlines() if ln and not ln.startswith("#")}
    assert min(sizes) == 3071


@pytest.mark.parametrize(
    ("version", "alias", "target"),
    [
        (BOOKWORM, "challengeresponseauthentication", "kbdinteractiveauthentication"),
        (BULLSEYE, "challengeresponseauthentication", None),
        (BULLSEYE, "pubkeyacceptedkeytypes", None),
        (BOOKWORM, "pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms"),
    ],
)
def test_option_aliases(version: str, alias: str, target: str | None) -> None:
    assert o.option_aliases(V(version)).get(alias) == target
