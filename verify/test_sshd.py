"""SSHW-SSHD: the effective sshd settings (`sshd -T -C ...`) match the hardening policy.

The expected values are computed by sshward.policy.sshd_settings, the function the
role and the pyinfra deploy apply, from the same variables, for the host's OpenSSH version.
"""

from __future__ import annotations

import pytest

from sshward.effective import mismatches
from sshward.openssh import SSH_QUERIES, parse_version, version_from_package
from sshward.policy import sshd_settings

from .helpers import control
from .policy import role_policy

# Stable control IDs: never renumber, only append.
SSHD_CONTROLS = [
    ("SSHW-SSHD-001", "PasswordAuthentication", "password logins are off"),
    ("SSHW-SSHD-002", "KbdInteractiveAuthentication", "keyboard-interactive logins are off"),
    ("SSHW-SSHD-003", "PubkeyAuthentication", "public key logins are on"),
    ("SSHW-SSHD-004", "AuthenticationMethods", "only public keys authenticate"),
    ("SSHW-SSHD-005", "PermitEmptyPasswords", "empty passwords are refused"),
    ("SSHW-SSHD-006", "PermitRootLogin", "root login follows the policy"),
    ("SSHW-SSHD-007", "AllowUsers", "AllowUsers is the policy's list"),
    ("SSHW-SSHD-008", "AllowGroups", "AllowGroups is the policy's list"),
    ("SSHW-SSHD-009", "DenyUsers", "DenyUsers is the policy's list"),
    ("SSHW-SSHD-010", "DenyGroups", "DenyGroups is the policy's list"),
    ("SSHW-SSHD-011", "LogLevel", "LogLevel VERBOSE logs which key logged in"),
    ("SSHW-SSHD-012", "MaxAuthTries", "authentication attempts per connection are limited"),
    ("SSHW-SSHD-013", "LoginGraceTime", "unauthenticated connections time out"),
    ("SSHW-SSHD-014", "MaxStartups", "concurrent unauthenticated connections are limited"),
    ("SSHW-SSHD-015", "ClientAliveInterval", "dead sessions are detected"),
    ("SSHW-SSHD-016", "ClientAliveCountMax", "dead sessions are dropped"),
    ("SSHW-SSHD-017", "AllowTcpForwarding", "TCP forwarding follows the policy"),
    ("SSHW-SSHD-018", "AllowAgentForwarding", "agent forwarding follows the policy"),
    ("SSHW-SSHD-019", "X11Forwarding", "X11 forwarding follows the policy"),
    ("SSHW-SSHD-020", "PermitTunnel", "tun device forwarding follows the policy"),
    ("SSHW-SSHD-021", "PermitUserEnvironment", "users cannot set sshd's environment"),
    ("SSHW-SSHD-022", "IgnoreRhosts", ".rhosts files are ignored"),
    ("SSHW-SSHD-023", "HostbasedAuthentication", "host-based authentication is off"),
    ("SSHW-SSHD-024", "UseDNS", "sshd does not trust reverse DNS"),
    ("SSHW-SSHD-025", "Protocol", "only protocol 2 (OpenSSH before 7.6)"),
    ("SSHW-SSHD-026", "KexAlgorithms", "key exchange algorithms are the hardened set"),
    ("SSHW-SSHD-027", "Ciphers", "ciphers are the hardened set"),
    ("SSHW-SSHD-028", "MACs", "MACs are encrypt-then-MAC only"),
    ("SSHW-SSHD-029", "HostKeyAlgorithms", "host key algorithms exclude DSA, ECDSA and SHA-1"),
    ("SSHW-SSHD-030", "PubkeyAcceptedAlgorithms", "accepted user key algorithms are the hardened set"),
    ("SSHW-SSHD-031", "Port", "sshd listens on the policy's port(s)"),
    ("SSHW-SSHD-032", "Banner", "the login banner follows the policy"),
    ("SSHW-SSHD-033", "MaxSessions", "sessions per connection are limited"),
    ("SSHW-SSHD-034", "StrictModes", "sshd checks file modes before trusting them"),
    ("SSHW-SSHD-035", "Compression", "compression is off"),
    ("SSHW-SSHD-036", "AllowStreamLocalForwarding", "Unix socket forwarding is off"),
    ("SSHW-SSHD-037", "GatewayPorts", "forwarded ports do not bind publicly"),
    ("SSHW-SSHD-038", "RequiredRSASize", "RSA keys under 3072 bits are refused"),
    ("SSHW-SSHD-039", "CASignatureAlgorithms", "CA signature algorithms are the hardened set"),
    ("SSHW-SSHD-040", "HostKey", "only Ed25519 and RSA host keys are offered"),
    ("SSHW-SSHD-041", "RevokedKeys", "revoked keys are refused (KRL)"),
    ("SSHW-SSHD-042", "ListenAddress", "sshd binds the policy's addresses"),
    ("SSHW-SSHD-043", "PerSourcePenaltyExemptList", "the trusted networks are never penalised (OpenSSH 9.8+)"),
]
# References: CIS Debian Linux 12 Benchmark v1.1.0 section 5.1 "Configure SSH Server", and the
# dev-sec/ssh-baseline control (controls/sshd_spec.rb). Left out where neither has a matching item.
REFS = {
    "SSHW-SSHD-001": (None, "sshd-27"),
    "SSHW-SSHD-002": (None, "sshd-29"),
    "SSHW-SSHD-003": (None, "sshd-22"),
    "SSHW-SSHD-005": ("5.1.19", "sshd-28"),
    "SSHW-SSHD-006": ("5.1.20", "sshd-06"),
    "SSHW-SSHD-007": ("5.1.4", None),
    "SSHW-SSHD-008": ("5.1.4", None),
    "SSHW-SSHD-009": ("5.1.4", None),
    "SSHW-SSHD-010": ("5.1.4", None),
    "SSHW-SSHD-011": ("5.1.14", "sshd-13"),
    "SSHW-SSHD-012": ("5.1.16", "sshd-19"),
    "SSHW-SSHD-013": ("5.1.13", "sshd-18"),
    "SSHW-SSHD-014": ("5.1.18", "sshd-21"),
    "SSHW-SSHD-015": ("5.1.7", "sshd-36"),
    "SSHW-SSHD-016": ("5.1.7", "sshd-37"),
    "SSHW-SSHD-017": ("5.1.8", "sshd-39"),
    "SSHW-SSHD-018": ("5.1.8", "sshd-40"),
    "SSHW-SSHD-019": ("5.1.8", "sshd-42"),
    "SSHW-SSHD-020": (None, "sshd-38"),
    "SSHW-SSHD-021": ("5.1.21", "sshd-17"),
    "SSHW-SSHD-022": ("5.1.11", "sshd-23"),
    "SSHW-SSHD-023": ("5.1.10", "sshd-25"),
    "SSHW-SSHD-025": (None, "sshd-10"),
    "SSHW-SSHD-026": ("5.1.12", "sshd-02"),
    "SSHW-SSHD-027": ("5.1.6", "sshd-01"),
    "SSHW-SSHD-028": ("5.1.15", "sshd-03"),
    "SSHW-SSHD-031": (None, "sshd-07"),
    "SSHW-SSHD-032": ("5.1.5", "sshd-46"),
    "SSHW-SSHD-033": ("5.1.17", "sshd-20"),
    "SSHW-SSHD-034": (None, "sshd-11"),
    "SSHW-SSHD-036": ("5.1.8", None),
    "SSHW-SSHD-037": (None, "sshd-41"),
    "SSHW-SSHD-040": (None, "sshd-14"),
    "SSHW-SSHD-042": (None, "sshd-09"),
}
ALIASES = {
    "PubkeyAcceptedAlgorithms": ("PubkeyAcceptedKeyTypes",),
    "KbdInteractiveAuthentication": ("ChallengeResponseAuthentication",),
}
# sshd prints the address it binds with the port; the policy names only the address.
SKIP_COMPARE_WHEN_EMPTY = {"ListenAddress"}


@pytest.fixture(scope="module")
def openssh_version(host):
    pkg = host.run("dpkg-query -W -f='${Version}' openssh-server")
    if pkg.rc == 0 and pkg.stdout.strip():
        return version_from_package(pkg.stdout.strip())
    return parse_version(host.run("ssh -V").stderr)


@pytest.fixture(scope="module")
def expected(host, openssh_version, variables):
    supported = {}
    for query in SSH_QUERIES:
        # `|| true`: an unknown query exits 255, which testinfra takes for a lost connection.
        result = host.run(f"ssh -Q {query} 2>/dev/null || true")
        if result.stdout.strip():
            supported[query] = result.stdout.split()
    policy = role_policy("ssh_hardening", variables)
    policy["trusted_networks"] = variables.get("sshward_trusted_networks") or []
    return sshd_settings(policy, openssh_version, supported)


@pytest.mark.parametrize(
    ("control_id", "keyword", "title"),
    [
        pytest.param(*c, id=f"{c[0]}-{c[1]}", marks=control(c[0], c[2], *REFS.get(c[0], (None, None))))
        for c in SSHD_CONTROLS
    ],
)
def test_sshd_effective_setting(control_id, keyword, title, expected, effective):
    names = [keyword, *ALIASES.get(keyword, ())]
    wanted_key = next((k for k in names if k in expected), None)
    if wanted_key is None:
        pytest.skip(f"{keyword} does not apply to this OpenSSH version or policy")
    if expected[wanted_key] is None:
        pytest.skip(f"{keyword} is not set by the policy (sshd's default applies)")
    diff = mismatches({wanted_key: expected[wanted_key]}, effective)
    assert diff == {}, f"{wanted_key}: sshd -T says {diff[wanted_key][1]}, the policy wants {diff[wanted_key][0]}"
