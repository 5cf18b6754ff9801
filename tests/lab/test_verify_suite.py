"""The verify/ suite as users run it, against lab containers: hardened, fresh, and broken on purpose.

One lab (two bookworm targets), hardened once: `hard` is hardened (tests that change it put it back),
`fresh` is never hardened. The last tests break `hard` in every way the table below lists, so each
control is shown to fail; nothing runs against it after them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run
from tests.lab.harden_lab import LabHandle

KEYS = ROOT / "tests" / "fixtures" / "keys"

# What an unhardened Debian 12 fails (bookworm's stock sshd_config, 3072-bit RSA and ECDSA host keys,
# the stock moduli). Integrity is skipped (no baseline recorded), Allow/Deny lists are not set by the policy.
FRESH_FAILS = {
    "SSHW-SSHD-001", "SSHW-SSHD-004", "SSHW-SSHD-006", "SSHW-SSHD-011", "SSHW-SSHD-012", "SSHW-SSHD-013",
    "SSHW-SSHD-014", "SSHW-SSHD-015", "SSHW-SSHD-016", "SSHW-SSHD-017", "SSHW-SSHD-018", "SSHW-SSHD-019",
    "SSHW-SSHD-026", "SSHW-SSHD-027", "SSHW-SSHD-028", "SSHW-SSHD-029", "SSHW-SSHD-030", "SSHW-SSHD-035",
    "SSHW-SSHD-036", "SSHW-SSHD-038", "SSHW-SSHD-039", "SSHW-SSHD-040",
    "SSHW-HOSTKEY-001", "SSHW-HOSTKEY-002", "SSHW-MODULI-001",
    # The default policy rate-limits SSH; a fresh host has no rules loaded.
    "SSHW-FW-001", "SSHW-FW-002", "SSHW-FW-003", "SSHW-FW-006", "SSHW-FW-007", "SSHW-FW-008",
    "SSHW-FW-020", "SSHW-FW-021",
    # harden.yml bans brute-forcers with fail2ban; a fresh host has none.
    "SSHW-BAN-001", "SSHW-BAN-002", "SSHW-BAN-003", "SSHW-BAN-004", "SSHW-BAN-005", "SSHW-BAN-006",
    "SSHW-BAN-007", "SSHW-BAN-008", "SSHW-BAN-009", "SSHW-BAN-010", "SSHW-BAN-011", "SSHW-BAN-012",
}  # fmt: skip

# Families whose every control is broken once below. The rate-limit (SSHW-FW), notification
# (SSHW-NOTIFY) and ban (SSHW-BAN) controls need their roles applied: test_verify_breaks_services.py
# breaks each of them.
BREAK_FAMILIES = (
    "SSHW-SSHD-",
    "SSHW-SVC-",
    "SSHW-HOSTKEY-",
    "SSHW-MODULI-",
    "SSHW-FILE-",
    "SSHW-KEYS-",
    "SSHW-MATCH-",
    "SSHW-INTEG-",
)

# (control, what breaks it, text the failure must show). A drop-in read before the hardened main file
# breaks the sshd keywords; policy overrides (BREAK_POLICY) break the ones the default policy leaves unset.
BREAK_TABLE = [
    ("SSHW-SSHD-001", "PasswordAuthentication yes", "PasswordAuthentication"),
    ("SSHW-SSHD-002", "KbdInteractiveAuthentication yes", "KbdInteractiveAuthentication"),
    ("SSHW-SSHD-003", "PubkeyAuthentication no", "PubkeyAuthentication"),
    ("SSHW-SSHD-004", "AuthenticationMethods password", "AuthenticationMethods"),
    ("SSHW-SSHD-005", "PermitEmptyPasswords yes", "PermitEmptyPasswords"),
    ("SSHW-SSHD-006", "PermitRootLogin yes", "PermitRootLogin"),
    ("SSHW-SSHD-007", "policy: ssh_hardening_allow_users [admin]", "AllowUsers"),
    ("SSHW-SSHD-008", "policy: ssh_hardening_allow_groups [sudo]", "AllowGroups"),
    ("SSHW-SSHD-009", "policy: ssh_hardening_deny_users [nobody]", "DenyUsers"),
    ("SSHW-SSHD-010", "policy: ssh_hardening_deny_groups [nogroup]", "DenyGroups"),
    ("SSHW-SSHD-011", "LogLevel INFO", "LogLevel"),
    ("SSHW-SSHD-012", "MaxAuthTries 6", "MaxAuthTries"),
    ("SSHW-SSHD-013", "LoginGraceTime 120", "LoginGraceTime"),
    ("SSHW-SSHD-014", "MaxStartups 10:30:100", "MaxStartups"),
    ("SSHW-SSHD-015", "ClientAliveInterval 0", "ClientAliveInterval"),
    ("SSHW-SSHD-016", "ClientAliveCountMax 3", "ClientAliveCountMax"),
    ("SSHW-SSHD-017", "AllowTcpForwarding yes", "AllowTcpForwarding"),
    ("SSHW-SSHD-018", "AllowAgentForwarding yes", "AllowAgentForwarding"),
    ("SSHW-SSHD-019", "X11Forwarding yes", "X11Forwarding"),
    ("SSHW-SSHD-020", "PermitTunnel yes", "PermitTunnel"),
    ("SSHW-SSHD-021", "PermitUserEnvironment yes", "PermitUserEnvironment"),
    ("SSHW-SSHD-022", "IgnoreRhosts no", "IgnoreRhosts"),
    ("SSHW-SSHD-023", "HostbasedAuthentication yes", "HostbasedAuthentication"),
    ("SSHW-SSHD-024", "UseDNS yes", "UseDNS"),
    ("SSHW-SSHD-025", None, "Protocol"),  # no Protocol keyword since OpenSSH 7.6: cannot apply in the lab
    ("SSHW-SSHD-026", "KexAlgorithms curve25519-sha256", "KexAlgorithms"),
    ("SSHW-SSHD-027", "Ciphers aes128-ctr", "Ciphers"),
    ("SSHW-SSHD-028", "MACs hmac-sha2-256", "MACs"),
    ("SSHW-SSHD-029", "HostKeyAlgorithms ssh-ed25519", "HostKeyAlgorithms"),
    ("SSHW-SSHD-030", "PubkeyAcceptedAlgorithms ssh-ed25519", "PubkeyAcceptedAlgorithms"),
    ("SSHW-SSHD-031", "Port 2222", "Port"),
    ("SSHW-SSHD-032", "Banner /etc/issue.net", "Banner"),
    ("SSHW-SSHD-033", "MaxSessions 20", "MaxSessions"),
    ("SSHW-SSHD-034", "StrictModes no", "StrictModes"),
    ("SSHW-SSHD-035", "Compression yes", "Compression"),
    ("SSHW-SSHD-036", "AllowStreamLocalForwarding yes", "AllowStreamLocalForwarding"),
    ("SSHW-SSHD-037", "GatewayPorts yes", "GatewayPorts"),
    ("SSHW-SSHD-038", "RequiredRSASize 2048", "RequiredRSASize"),
    ("SSHW-SSHD-039", "CASignatureAlgorithms ssh-ed25519", "CASignatureAlgorithms"),
    ("SSHW-SSHD-040", "HostKey /etc/ssh/ssh_host_ecdsa_key", "HostKey"),
    ("SSHW-SSHD-041", "policy: ssh_hardening_revoked_keys_file /etc/ssh/revoked_keys", "RevokedKeys"),
    ("SSHW-SSHD-042", "policy: ssh_hardening_listen_addresses [192.0.2.10]", "ListenAddress"),
    # PerSourcePenalties exist from OpenSSH 9.8; the break host is bookworm (9.2). The control is the same
    # effective-keyword test as every SSHW-SSHD row; test_harden_safety shows the keyword on trixie.
    ("SSHW-SSHD-043", None, "PerSourcePenaltyExemptList"),
    ("SSHW-SVC-001", "shell: systemctl stop ssh", "not running"),
    ("SSHW-SVC-002", "shell: systemctl disable ssh", "enabled"),
    ("SSHW-SVC-003", "shell (second pass): an unknown keyword in a drop-in", "sshd -t"),
    ("SSHW-FILE-001", "shell: chmod 0775 /etc/ssh", "/etc/ssh"),
    ("SSHW-FILE-002", "shell: chmod 0666 /etc/ssh/sshd_config", "/etc/ssh/sshd_config"),
    ("SSHW-FILE-003", "shell: chmod 0666 the drop-in", "/etc/ssh/sshd_config.d/00-break.conf"),
    ("SSHW-FILE-004", "shell: chmod 0640 the RSA private host key", "/etc/ssh/ssh_host_rsa_key"),
    ("SSHW-FILE-005", "shell: chmod 0666 the Ed25519 public host key", "/etc/ssh/ssh_host_ed25519_key.pub"),
    ("SSHW-HOSTKEY-001", "the HostKey /etc/ssh/ssh_host_ecdsa_key line above", "ECDSA"),
    ("SSHW-HOSTKEY-002", "shell: a 3072-bit RSA host key", "3072 bits"),
    ("SSHW-MODULI-001", "shell: a 2048-bit group appended to /etc/ssh/moduli", "2048 bits"),
    ("SSHW-KEYS-001", "shell: chmod 0777 ~admin/.ssh", "/home/admin/.ssh"),
    ("SSHW-KEYS-002", "policy: admin declared with a second key that is not installed", "admin lacks SHA256:"),
    ("SSHW-KEYS-003", "policy: admin exclusive; shell: another key installed", "/home/admin/.ssh/authorized_keys"),
    ("SSHW-KEYS-004", "the undeclared key installed for admin", "/home/admin/.ssh/authorized_keys"),
    ("SSHW-KEYS-005", "policy: ssh_hardening_revoked_keys [a key], no RevokedKeys", "RevokedKeys is not set"),
    ("SSHW-MATCH-001", "policy: ssh_hardening_sftp_only_groups [sftponly]; shell: a member", "forcecommand"),
    ("SSHW-INTEG-001", "shell: a line appended to /etc/ssh/ssh_config", "changed: /etc/ssh/ssh_config"),
    ("SSHW-INTEG-002", "shell: a byte appended to /usr/bin/ssh-keyscan", "/usr/bin/ssh-keyscan"),
]
DROPIN = "/etc/ssh/sshd_config.d/00-break.conf"


def parse_junit(path: Path) -> dict[str, dict[str, str]]:
    """{testcase name: {control, outcome, message}} from pytest's --junitxml."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (element.get("message") or "") + "\n" + (element.text or "")
        out[f"{case.get('classname')}::{case.get('name')}"] = {
            "control": props.get("control", ""),
            "title": props.get("title", ""),
            "cis": props.get("cis", ""),
            "devsec": props.get("devsec", ""),
            "outcome": outcome,
            "message": message,
        }
    return out


class Suite:
    def __init__(self, lab: LabHandle) -> None:
        self.lab = lab
        self.runs = 0

    def run(self, hosts: str, *args: str, policy: dict | None = None, docker: bool = False) -> dict:
        self.runs += 1
        xml = self.lab.dir / f"verify-{self.runs}.xml"
        cmd = ["pytest", "-q", "-p", "no:cacheprovider", "verify", f"--hosts={hosts}", f"--junitxml={xml}",
               f"--baseline-dir={self.lab.dir / 'baselines'}", *args]  # fmt: skip
        if not docker:
            cmd += ["--connection=ansible", f"--ansible-inventory={self.lab.inventory}"]
        if policy is not None:
            policy_file = self.lab.dir / f"policy-{self.runs}.yml"
            policy_file.write_text(yaml.safe_dump(policy))
            cmd.append(f"--policy={policy_file}")
        proc = run(cmd, check=False, timeout=900)
        assert xml.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
        return {"rc": proc.returncode, "stdout": proc.stdout, "cases": parse_junit(xml)}

    def docker_hosts(self, *targets: str) -> tuple[str, dict]:
        """docker:// URLs for targets, and the policy naming their baselines (inventory_hostname)."""
        hosts = ",".join(f"docker://{self.lab.container(t)}" for t in targets)
        return hosts, {"sshward_hosts": {self.lab.container(t): {"inventory_hostname": t} for t in targets}}


def by_control(cases: dict, host_id: str) -> dict[str, str]:
    """{control: outcome} for the host: failed (or error) if any of its checks was, else passed if any
    passed (an IPv6 check skipped beside a passing IPv4 one), else skipped."""
    outcomes: dict[str, set[str]] = {}
    for name, case in cases.items():
        if host_id in name and case["control"]:
            outcomes.setdefault(case["control"], set()).add(case["outcome"])
    order = ("failed", "error", "passed", "skipped")
    return {c: next(o for o in order if o in seen) for c, seen in outcomes.items()}


def messages(cases: dict, host_id: str, control: str) -> str:
    return "\n".join(c["message"] for n, c in cases.items() if host_id in n and c["control"] == control)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    lab = LabHandle(tmp_path_factory.mktemp("verify-suite-lab"), "verifyhelper-suite")
    try:
        lab.lab("up", "hard=bookworm", "fresh=bookworm")
        run(
            ["ansible-playbook", "-i", str(lab.inventory), "--limit", "hard", str(ROOT / "harden.yml"),
             "-e", f"ssh_hardening_baseline_dir={lab.dir / 'baselines'}"],
            env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        )  # fmt: skip
        yield Suite(lab)
    finally:
        lab.lab("down")


def test_hardened_host_passes_with_ids_in_junit_and_report(suite):
    report_dir = suite.lab.dir / "report"
    result = suite.run("ansible://hard", f"--sshward-report={report_dir}")
    assert result["rc"] == 0, result["stdout"][-3000:]
    cases = result["cases"]
    assert all(re.fullmatch(r"SSHW-[A-Z]+-\d{3}", c["control"]) for c in cases.values()), "every test is a control"
    assert all(c["title"] for c in cases.values())
    sshd_001 = next(c for c in cases.values() if c["control"] == "SSHW-SSHD-001")
    assert (sshd_001["devsec"], sshd_001["outcome"]) == ("sshd-27", "passed")
    assert next(c for c in cases.values() if c["control"] == "SSHW-SSHD-012")["cis"] == "5.1.16"
    assert by_control(cases, "hard")["SSHW-INTEG-001"] == "passed", "the baseline harden.yml recorded matches"
    skipped = [c for c in cases.values() if c["outcome"] == "skipped"]
    assert skipped and all(c["message"].strip() for c in skipped), "a skip always says why"
    md = (report_dir / "hard.md").read_text()
    assert "| SSHW-SSHD-001 | password logins are off | passed |" in md
    assert re.search(r"\| SSHW-SSHD-025 \| .* \| skipped \| Protocol does not apply", md)


def test_fresh_host_fails_with_the_expected_controls(suite):
    cases = suite.run("ansible://fresh")["cases"]
    outcomes = by_control(cases, "fresh")
    assert {c for c, o in outcomes.items() if o == "failed"} == FRESH_FAILS
    assert outcomes["SSHW-INTEG-001"] == "skipped", "no baseline was recorded for a host never hardened"
    assert "ECDSA" in messages(cases, "fresh", "SSHW-HOSTKEY-001")


def test_ansible_and_docker_backends_give_identical_results(suite):
    via_ansible = suite.run("ansible://hard,ansible://fresh")["cases"]
    hosts, policy = suite.docker_hosts("hard", "fresh")
    via_docker = suite.run(hosts, policy=policy, docker=True)["cases"]

    def normalised(cases: dict, ids: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, case in cases.items():
            for raw, short in ids.items():
                name = name.replace(raw, short)
            out[name] = case["outcome"]
        return out

    a = normalised(via_ansible, {"ansible://hard": "HARD", "ansible://fresh": "FRESH"})
    d = normalised(via_docker, {f"docker://{suite.lab.container(t)}": t.upper() for t in ("hard", "fresh")})
    assert len(a) > 100
    assert a == d


def test_password_dropin_fails_sshd_001_although_the_main_file_says_no(suite):
    """harden.yml writes its settings above the main file's Include, so a drop-in added later does
    not win on a hardened host: sshd -T proves it (SSHD-001 passes) and the baseline shows the new
    file. Once the drop-ins are read first again (Debian's stock layout, which a package upgrade
    or an image build restores), it wins: SSHD-001 fails while the main file still says "no"."""
    lab = suite.lab
    evil = "/etc/ssh/sshd_config.d/00-evil.conf"
    lab.exec("hard", "sh", "-c", "cp -p /etc/ssh/sshd_config /root/sshd_config.orig")
    lab.exec("hard", "sh", "-c", f"printf 'PasswordAuthentication yes\\n' > {evil}")
    try:
        cases = suite.run("ansible://hard", "--controls=SSHW-SSHD-001,SSHW-INTEG-001")["cases"]
        assert by_control(cases, "hard") == {"SSHW-SSHD-001": "passed", "SSHW-INTEG-001": "failed"}
        assert "added: " + evil in messages(cases, "hard", "SSHW-INTEG-001")

        lab.exec("hard", "sed", "-i", "1i Include /etc/ssh/sshd_config.d/*.conf", "/etc/ssh/sshd_config")
        main = lab.exec("hard", "cat", "/etc/ssh/sshd_config").stdout
        assert "PasswordAuthentication no" in main.splitlines(), "a file-text check of sshd_config would pass"
        cases = suite.run("ansible://hard", "--controls=SSHW-SSHD-001")["cases"]
        assert by_control(cases, "hard") == {"SSHW-SSHD-001": "failed"}
        assert "sshd -T says ['yes']" in messages(cases, "hard", "SSHW-SSHD-001")
    finally:
        lab.exec("hard", "sh", "-c", f"rm -f {evil} && cp -p /root/sshd_config.orig /etc/ssh/sshd_config")


def test_changed_ssh_file_and_trojaned_binary_are_reported_by_id_and_path(suite):
    lab = suite.lab
    lab.exec("hard", "sh", "-c", "cp -p /etc/ssh/ssh_config /root/ssh_config.orig && echo '# x' >> /etc/ssh/ssh_config")
    lab.exec(
        "hard", "sh", "-c", "cp -p /usr/bin/ssh-keyscan /root/keyscan.orig && printf '\\0' >> /usr/bin/ssh-keyscan"
    )
    try:
        cases = suite.run("ansible://hard", "--controls=SSHW-INTEG")["cases"]
        assert by_control(cases, "hard") == {"SSHW-INTEG-001": "failed", "SSHW-INTEG-002": "failed"}
        assert "changed: /etc/ssh/ssh_config (sha256)" in messages(cases, "hard", "SSHW-INTEG-001")
        assert "/usr/bin/ssh-keyscan (??5??????)" in messages(cases, "hard", "SSHW-INTEG-002")
        # The package manager's checksums need no baseline at all:
        no_baseline = suite.run("ansible://hard", "--controls=SSHW-INTEG", "--baseline-dir=/nonexistent")["cases"]
        assert by_control(no_baseline, "hard") == {"SSHW-INTEG-001": "skipped", "SSHW-INTEG-002": "failed"}
    finally:
        lab.exec("hard", "sh", "-c", "cp -p /root/ssh_config.orig /etc/ssh/ssh_config")
        lab.exec("hard", "sh", "-c", "cp -p /root/keyscan.orig /usr/bin/ssh-keyscan")
    assert suite.run("ansible://hard", "--controls=SSHW-INTEG")["rc"] == 0, "restored"


@pytest.fixture(scope="module")
def broken(suite):
    """`hard` with every break of BREAK_TABLE applied; the suite's results (docker://) before and
    after the second pass (sshd -t broken, which makes every sshd -T control error instead of fail)."""
    lab = suite.lab
    lines = [b for _, b, _ in BREAK_TABLE if b and not b.startswith(("policy:", "shell", "the "))]
    lab.exec("hard", "sh", "-c", f"printf '%s\\n' {' '.join(repr(line) for line in lines)} > {DROPIN}")
    # harden.yml put its settings above the Include: read the drop-in first, as Debian's stock file does.
    lab.exec("hard", "sed", "-i", f"1i Include {DROPIN}", "/etc/ssh/sshd_config")
    admin_keys = "/home/admin/.ssh/authorized_keys"
    installed = lab.exec("hard", "head", "-n1", admin_keys).stdout.strip()
    shell = [
        "systemctl stop ssh", "systemctl disable ssh", "chmod 0775 /etc/ssh", "chmod 0666 /etc/ssh/sshd_config",
        f"chmod 0666 {DROPIN}", "chmod 0640 /etc/ssh/ssh_host_rsa_key", "chmod 0666 /etc/ssh/ssh_host_ed25519_key.pub",
        "rm -f /etc/ssh/ssh_host_rsa_key*", "ssh-keygen -q -t rsa -b 3072 -N '' -f /etc/ssh/ssh_host_rsa_key",
        "chmod 0640 /etc/ssh/ssh_host_rsa_key",
        "echo '20240101000000 2 6 100 2047 2 F7' >> /etc/ssh/moduli",
        "chmod 0777 /home/admin/.ssh",
        f"printf '%s\\n' '{(KEYS / 'rsa3072.pub').read_text().strip()}' >> {admin_keys}",
        "groupadd -f sftponly && (id sftpuser || useradd -m -G sftponly sftpuser)",
        "echo '# changed' >> /etc/ssh/ssh_config",
        "printf '\\0' >> /usr/bin/ssh-keyscan",
    ]  # fmt: skip
    for command in shell:
        lab.exec("hard", "sh", "-c", command)
    sshd_t = lab.exec("hard", "sh", "-c", "mkdir -p /run/sshd && sshd -t", check=False)  # stopping ssh removed it
    assert sshd_t.returncode == 0, f"the first pass keeps sshd -t valid: {sshd_t.stderr}"
    policy = {
        "ssh_hardening_allow_users": ["admin"],
        "ssh_hardening_allow_groups": ["sudo"],
        "ssh_hardening_deny_users": ["nobody"],
        "ssh_hardening_deny_groups": ["nogroup"],
        "ssh_hardening_revoked_keys_file": "/etc/ssh/revoked_keys",
        "ssh_hardening_revoked_keys": [(KEYS / "ecdsa256.pub").read_text().strip()],
        "ssh_hardening_listen_addresses": ["192.0.2.10"],
        "ssh_hardening_sftp_only_groups": ["sftponly"],
        "ssh_hardening_users": [
            {"name": "admin", "exclusive": True, "keys": [installed, (KEYS / "ed25519.pub").read_text().strip()]}
        ],
    }
    hosts, names = suite.docker_hosts("hard")
    first = suite.run(hosts, policy={**policy, **names}, docker=True)["cases"]
    lab.exec("hard", "sh", "-c", f"echo 'NoSuchKeyword yes' >> {DROPIN}")
    second = suite.run(hosts, "--controls=SSHW-SVC-003", policy={**policy, **names}, docker=True)["cases"]
    return {"first": first, "second": second, "host": lab.container("hard")}


def test_break_table_covers_every_control(broken):
    controls = {c["control"] for c in broken["first"].values() if c["control"].startswith(BREAK_FAMILIES)}
    assert controls == {c for c, _, _ in BREAK_TABLE}


@pytest.mark.parametrize(("control", "how", "shown"), BREAK_TABLE, ids=[c for c, _, _ in BREAK_TABLE])
def test_each_control_can_fail(broken, control, how, shown):
    if how is None:
        pytest.skip(f"{control} ({shown}) does not apply to the OpenSSH release of the break host")
    cases = broken["second"] if control == "SSHW-SVC-003" else broken["first"]
    outcome = by_control(cases, broken["host"])[control]
    assert outcome == "failed", f"{control} broken by {how!r} did not fail: {outcome}"
    assert shown in messages(cases, broken["host"], control)
