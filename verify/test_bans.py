"""SSHW-BAN: brute-force bans (ssh_bans role): fail2ban runs the sshd jails with the right
allowlist, thresholds and actions. Every check asks the running fail2ban server
(``fail2ban-client get ...``), not the files that configure it."""

from __future__ import annotations

import ipaddress

import pytest

from .policy import role_policy


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip(), strict=False)


CLASS_JAILS = [
    ("sshd", "maxretry"),
    ("sshward-sshd-root", "root_maxretry"),
    ("sshward-sshd-invalid", "invalid_maxretry"),
    ("sshward-sshd-valid", "valid_maxretry"),
]
JAILS = [j for j, _ in CLASS_JAILS]


@pytest.fixture(scope="module")
def bans(variables):
    policy = role_policy("ssh_bans", variables)
    trusted = variables.get("sshward_trusted_networks", [])
    explicit = policy.get("trusted_networks")
    if isinstance(explicit, list):
        trusted = explicit
    policy["allowlist"] = ["127.0.0.1/8", "::1", *trusted, *policy.get("ignoreip_extra", [])]
    return policy


@pytest.fixture(scope="module")
def f2b(host, bans):
    if not bans.get("enabled", True):
        pytest.skip("brute-force bans are disabled in the policy (ssh_bans_enabled: false)")
    # harden.yml applies ssh_bans: a host without fail2ban fails (not skips) every SSHW-BAN control,
    # in the test itself, so the report shows a failed control rather than a broken fixture.
    installed = host.exists("fail2ban-client")

    def get(*args: str) -> str:
        if not installed:
            pytest.fail("fail2ban is not installed: apply harden.yml (role ssh_bans) or set ssh_bans_enabled: false")
        with host.sudo():
            return host.check_output("fail2ban-client " + " ".join(args))

    return get


@pytest.mark.control("SSHW-BAN-001", "fail2ban is running and enabled")
def test_fail2ban_running(host, f2b):
    assert host.service("fail2ban").is_running


@pytest.mark.control("SSHW-BAN-002", "fail2ban starts at boot")
def test_fail2ban_enabled(host, f2b):
    assert host.service("fail2ban").is_enabled


@pytest.mark.control("SSHW-BAN-003", "the sshd jails are active")
@pytest.mark.parametrize("jail", JAILS)
def test_jail_active(f2b, jail):
    assert jail in [j.strip() for j in f2b("status").split("Jail list:")[1].split(",")]


@pytest.mark.control("SSHW-BAN-004", "the recidive jail is active when enabled")
def test_recidive_active(f2b, bans):
    if not bans.get("recidive_enabled", True):
        pytest.skip("ssh_bans_recidive_enabled is false")
    assert "recidive" in f2b("status")


@pytest.mark.control("SSHW-BAN-005", "trusted networks are never banned (ignoreip)")
@pytest.mark.parametrize("jail", JAILS)
def test_ignoreip(f2b, bans, jail):
    # fail2ban lists networks normalised ("127.0.0.1/8" comes back as 127.0.0.0/8, hosts as bare addresses)
    got = set()
    for line in f2b("get", jail, "ignoreip").splitlines():
        item = line.lstrip("|-` ").strip()
        try:
            got.add(_net(item))
        except ValueError:
            continue
    missing = [net for net in bans["allowlist"] if _net(net) not in got]
    assert missing == [], f"{jail} does not ignore {missing}"


@pytest.mark.control("SSHW-BAN-006", "each user class has its own threshold (DenyHosts-style)")
@pytest.mark.parametrize(("jail", "key"), CLASS_JAILS)
def test_maxretry(f2b, bans, jail, key):
    assert int(f2b("get", jail, "maxretry").strip()) == int(bans[key])


@pytest.mark.control("SSHW-BAN-007", "every ban emits a sshward notification event")
@pytest.mark.parametrize("jail", JAILS)
def test_notify_action(f2b, bans, jail):
    if not bans.get("notify", True):
        pytest.skip("ssh_bans_notify is false")
    assert "sshward-notify" in f2b("get", jail, "actions")


@pytest.mark.control("SSHW-BAN-008", "the ban action matches the host's firewall backend")
@pytest.mark.parametrize("jail", JAILS)
def test_banaction_backend(host, f2b, jail):
    actions = f2b("get", jail, "actions")
    with host.sudo():
        nft_native = host.run("systemctl is-enabled nftables").rc == 0
    want = "nftables" if nft_native else ("iptables", "nftables")
    assert any(a.strip().startswith(want) for a in actions.replace(",", "\n").splitlines()), actions


@pytest.mark.control("SSHW-BAN-009", "ban times grow for repeat offenders (bantime.increment)")
def test_bantime_increment(f2b, bans):
    if not bans.get("bantime_increment", True):
        pytest.skip("ssh_bans_bantime_increment is false")
    assert f2b("get", "sshd", "bantime.increment").strip() == "True"


@pytest.mark.control("SSHW-BAN-010", "the sshd jail runs fail2ban's filter in aggressive mode")
def test_aggressive(f2b):
    # aggressive = ddos + extra: the missing-identification (ddos) and failed-negotiation (extra) patterns,
    # present in fail2ban 0.11 (bullseye) to 1.1 (trixie); normal mode has neither.
    failregex = f2b("get", "sshd", "failregex")
    assert "Did not receive identification string" in failregex and "Unable to negotiate with" in failregex


@pytest.mark.control("SSHW-BAN-011", "the jails read where sshd logs (journal or auth.log)")
def test_backend_source(host, f2b):
    if host.file("/var/log/auth.log").exists:
        assert "/var/log/auth.log" in f2b("get", "sshd", "logpath")
    else:
        assert "_SYSTEMD_UNIT=ssh.service" in f2b("get", "sshd", "journalmatch")


@pytest.mark.control("SSHW-BAN-012", "reverse DNS is never trusted (usedns = no)")
def test_usedns(f2b):
    assert f2b("get", "sshd", "usedns").strip() == "no"
