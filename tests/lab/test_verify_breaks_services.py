"""Every rate-limit (SSHW-FW), notification (SSHW-NOTIFY) and ban (SSHW-BAN) control can fail.

One bookworm target gets the three roles (tests/lab/files/verify_services.yml, policy below: a
syslog channel, so nothing leaves the container). The suite passes; then each control is broken
in the smallest realistic way (a rule deleted, a PAM line gone, a mode widened, a jail stopped,
an ignoreip entry removed at runtime) and only that control runs (``--controls``): it must fail,
showing the break. Each break is undone before the next. Breaks of different families touch
different parts of the host, so one FW, one NOTIFY and one BAN break share a round (one suite
run), which keeps the wall time down. The nftables controls follow after the rate limit is
loaded again with ``ssh_ratelimit_backend: nftables``. The suite reaches the target through
``docker://`` (the same results as ``--connection=ansible``: test_verify_suite.py shows it) and
reads the policy with ``--policy``, the file the playbook ran with.
"""

from __future__ import annotations

import itertools
import json

import pytest
import yaml

from tests.conftest import ROOT, run
from tests.lab.harden_lab import LabHandle
from tests.lab.test_verify_suite import by_control, messages, parse_junit

PLAYBOOK = ROOT / "tests" / "lab" / "files" / "verify_services.yml"
POLICY = {
    "sshward_trusted_networks": ["198.51.100.0/24", "2001:db8:51::/48"],
    "ssh_ratelimit_allowlist": ["203.0.113.7/32"],
    "ssh_notify_channels": [{"type": "syslog"}],
}
FAMILIES = "SSHW-FW,SSHW-NOTIFY,SSHW-BAN"

IPT_SNAPSHOT = "iptables-save > /root/ipt4.save && ip6tables-save > /root/ipt6.save"
IPT_RESTORE = "iptables-restore < /root/ipt4.save && ip6tables-restore < /root/ipt6.save"
NFT_SNAPSHOT = "nft list table inet sshward > /root/sshward.nft"
NFT_RESTORE = "nft delete table inet sshward 2>/dev/null; nft -f /root/sshward.nft"
F2B_SNAPSHOT = "cp -p /etc/fail2ban/jail.d/sshward.local /root/sshward.local"
# A running fail2ban answers `ping` only once its jails are loaded.
F2B_READY = "for i in $(seq 90); do fail2ban-client ping >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1"
# A plain reload does not bring back an action deleted at runtime; restarting the jails does.
F2B_RESTORE = (
    f"cp -p /root/sshward.local /etc/fail2ban/jail.d/sshward.local && fail2ban-client reload --restart --all"
    f" && {F2B_READY}"
)
NOTIFY_SNAPSHOT = "cp -p /etc/pam.d/sshd /etc/pam.d/common-auth /etc/sshward/notify.json /root/"
CONFIG = "/etc/sshward/notify.json"


def _channels(value: list) -> str:
    """A shell command rewriting the notifier's channels (JSON inside single quotes: no quoting needed)."""
    path = json.dumps(CONFIG)
    code = f'import json; c = json.load(open({path})); c["channels"] = {json.dumps(value)}; '
    return f"python3 -c '{code}json.dump(c, open({path}, \"w\"))'"


# (control, break, undo, text the failure shows). iptables backend (auto picks it on bookworm).
FW_IPTABLES = [
    ("SSHW-FW-001", "iptables -E SSHWARD-RL-TRUSTED SSHWARD-RL-RENAMED", IPT_RESTORE, "SSHWARD-RL-TRUSTED"),
    ("SSHW-FW-002", "iptables -I INPUT -p tcp -m conntrack --ctstate NEW -j SSHWARD-RATELIMIT", IPT_RESTORE,
     "SSHWARD-RATELIMIT"),
    ("SSHW-FW-003", "iptables -R SSHWARD-RATELIMIT 1 -p tcp -m multiport ! --dports 22,2222 -j RETURN", IPT_RESTORE,
     "22,2222"),
    ("SSHW-FW-004", "iptables -D SSHWARD-RATELIMIT -s 203.0.113.7/32 -j RETURN", IPT_RESTORE, "203.0.113.7/32"),
    ("SSHW-FW-005", "iptables -D SSHWARD-RATELIMIT -s 198.51.100.0/24 -g SSHWARD-RL-TRUSTED", IPT_RESTORE,
     "198.51.100.0/24"),
    ("SSHW-FW-006", "iptables -D SSHWARD-RATELIMIT -g SSHWARD-RL-OTHER", IPT_RESTORE, "SSHWARD-RL-OTHER"),
    ("SSHW-FW-007", "iptables -R SSHWARD-RL-OTHER 2 -m recent --update --seconds 10 --hitcount 4 "
     "--name sshward_other4 --rsource -j DROP", IPT_RESTORE, "'10'"),
    ("SSHW-FW-008", "iptables -D SSHWARD-RL-OTHER 1", IPT_RESTORE, "--update"),
    ("SSHW-FW-020", "iptables -A SSHWARD-RL-OTHER -j ACCEPT", IPT_RESTORE, "SSHWARD-RL-OTHER"),
    ("SSHW-FW-021", "systemctl disable sshward-firewall", "systemctl enable sshward-firewall", "is_enabled"),
]  # fmt: skip
NOTIFY = [
    ("SSHW-NOTIFY-001", "sed -i '/SSHWARD_CAPTURE/d' /etc/pam.d/sshd", "cp -p /root/sshd /etc/pam.d/sshd", "[]"),
    # the hook moved below pam_env (which reads ~/.pam_environment)
    ("SSHW-NOTIFY-002", "grep SSHWARD_CAPTURE /etc/pam.d/sshd > /root/hook && sed -i '/SSHWARD_CAPTURE/d' "
     "/etc/pam.d/sshd && cat /root/hook >> /etc/pam.d/sshd", "cp -p /root/sshd /etc/pam.d/sshd", "hook < i"),
    ("SSHW-NOTIFY-003", "echo 'UsePAM no' > /etc/ssh/sshd_config.d/00-break.conf",
     "rm -f /etc/ssh/sshd_config.d/00-break.conf", "usepam yes"),
    ("SSHW-NOTIFY-004", "sed -i '/SSHWARD_CAPTURE/d' /etc/pam.d/common-auth",
     "cp -p /root/common-auth /etc/pam.d/common-auth", "len"),
    ("SSHW-NOTIFY-005", f"chmod 0644 {CONFIG}", f"chmod 0600 {CONFIG}", "0o644"),
    ("SSHW-NOTIFY-006", _channels([]), f"cp -p /root/notify.json {CONFIG}", "False"),
    # a wrong owner (the notifier itself puts a widened mode back to 0700 on its next run, a minute later)
    ("SSHW-NOTIFY-007", "chown nobody /var/spool/sshward/notify", "chown root /var/spool/sshward/notify", "nobody"),
    ("SSHW-NOTIFY-008", "systemctl stop sshward-notify-flush.timer", "systemctl start sshward-notify-flush.timer",
     "False"),
    # a receiver that does not answer (nothing listens on the discard port in the container)
    ("SSHW-NOTIFY-009", _channels([{"type": "webhook", "url": "http://127.0.0.1:9/"}]),
     f"cp -p /root/notify.json {CONFIG}", "FAILED"),
    ("SSHW-NOTIFY-010", "systemctl stop sshward-notify-watch", "systemctl start sshward-notify-watch",
     "False"),
]  # fmt: skip
BANS = [
    ("SSHW-BAN-001", "systemctl stop fail2ban", f"systemctl start fail2ban && {F2B_READY}", "is_running"),
    ("SSHW-BAN-002", "systemctl disable fail2ban", "systemctl enable fail2ban", "is_enabled"),
    ("SSHW-BAN-003", "fail2ban-client stop sshward-sshd-root", F2B_RESTORE, "sshward-sshd-root"),
    ("SSHW-BAN-004", "fail2ban-client stop recidive", F2B_RESTORE, "recidive"),
    ("SSHW-BAN-005", "fail2ban-client set sshd delignoreip 198.51.100.0/24", F2B_RESTORE, "198.51.100.0/24"),
    ("SSHW-BAN-006", "fail2ban-client set sshward-sshd-root maxretry 5", F2B_RESTORE, "5 == 2"),
    ("SSHW-BAN-007", "fail2ban-client set sshd delaction sshward-notify", F2B_RESTORE, "sshward-notify"),
    ("SSHW-BAN-008", "fail2ban-client set sshd delaction iptables-multiport", F2B_RESTORE, "sshward-notify"),
    ("SSHW-BAN-009", "fail2ban-client set sshd bantime.increment false", F2B_RESTORE, "False"),
    # the jail file edited back to fail2ban's normal mode, which lacks the pre-auth patterns
    ("SSHW-BAN-010", "sed -i 's/sshd\\[mode=aggressive\\]/sshd[mode=normal]/' /etc/fail2ban/jail.d/sshward.local"
     " && fail2ban-client reload sshd", F2B_RESTORE, "Did not receive identification string"),
    ("SSHW-BAN-011", "fail2ban-client set sshd deljournalmatch _SYSTEMD_UNIT=ssh.service", F2B_RESTORE,
     "_SYSTEMD_UNIT=ssh.service"),
    ("SSHW-BAN-012", "fail2ban-client set sshd usedns yes", F2B_RESTORE, "'yes'"),
]  # fmt: skip
# After the rate limit is loaded again with the nftables backend.
FW_NFTABLES = [
    ("SSHW-FW-011", "nft delete table inet sshward", NFT_RESTORE, "None"),
    ("SSHW-FW-012", "nft add rule inet sshward input tcp dport 22 ct state new jump ssh_new", NFT_RESTORE, "2"),
    ("SSHW-FW-013", "nft flush chain inet sshward input && nft add rule inet sshward input tcp dport 2222 ct state "
     "new jump ssh_new", NFT_RESTORE, "2222"),
    ("SSHW-FW-014", "nft delete element inet sshward allow4 '{ 203.0.113.7 }'", NFT_RESTORE, "203.0.113.7"),
    ("SSHW-FW-015", "nft delete element inet sshward trusted4 '{ 198.51.100.0/24 }'", NFT_RESTORE,
     "198.51.100.0/24"),
    # sets cannot change their timeout in place: the table reloaded with one window shortened
    ("SSHW-FW-017", "nft delete table inet sshward && sed '/set blocked_other4/,/}/s/timeout [0-9a-z]*/timeout 5s/' "
     "/root/sshward.nft | nft -f -", NFT_RESTORE, "5 == 60"),
    ("SSHW-FW-018", "nft delete table inet sshward && sed 's/burst 3 packets/burst 5 packets/' /root/sshward.nft | "
     "nft -f -", NFT_RESTORE, "5"),
    ("SSHW-FW-020", "nft add rule inet sshward other accept", NFT_RESTORE, "before"),
]  # fmt: skip

# One break of each family per round; None pads the shorter families.
ROUNDS = [[case for case in cases if case] for cases in itertools.zip_longest(FW_IPTABLES, NOTIFY, BANS)]


class Target:
    def __init__(self, lab: LabHandle) -> None:
        self.lab = lab
        self.runs = 0
        self.container = lab.container("t")

    def sh(self, command: str) -> str:
        result = self.lab.exec("t", "sh", "-c", command, check=False)
        assert result.returncode == 0, f"{command}: {result.stderr.strip()}"
        return result.stdout

    def playbook(self, policy: dict, *args: str) -> None:
        vars_file = self.lab.dir / "policy.yml"
        vars_file.write_text(yaml.safe_dump(policy))
        run(["ansible-playbook", "-i", str(self.lab.inventory), str(PLAYBOOK), "-e", f"@{vars_file}", *args],
            env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})  # fmt: skip

    def verify(self, controls: str) -> dict[str, str]:
        """{control: outcome} of one suite run over the controls (prefixes); messages in self.cases."""
        self.runs += 1
        xml = self.lab.dir / f"verify-{self.runs}.xml"
        cmd = ["pytest", "-q", "-p", "no:cacheprovider", "verify", f"--hosts=docker://{self.container}",
               f"--policy={self.lab.dir / 'policy.yml'}", f"--controls={controls}", f"--junitxml={xml}"]  # fmt: skip
        proc = run(cmd, check=False, timeout=1200)
        assert xml.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
        self.cases = parse_junit(xml)
        return by_control(self.cases, self.container)

    def shown(self, control: str) -> str:
        return messages(self.cases, self.container, control)

    def cases_of(self, control: str) -> set[str]:
        """The outcomes of the control's checks (one per parameter) in the last run."""
        return {c["outcome"] for c in self.cases.values() if c["control"] == control}

    def passed(self) -> set[str]:
        """Controls of which at least one check passed in the last run."""
        return {c["control"] for c in self.cases.values() if c["outcome"] == "passed"}

    def problems(self) -> list[str]:
        return [f"{name}: {c['outcome']}: {c['message'][:500]}" for name, c in self.cases.items()
                if c["outcome"] in ("failed", "error")]  # fmt: skip


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    lab = LabHandle(tmp_path_factory.mktemp("verifybreaks"), "verifybreaks")
    try:
        lab.lab("up", "t=bookworm")
        yield Target(lab)
    finally:
        lab.lab("down")


def _break_round(target: Target, cases: list[tuple[str, str, str, str]]) -> list[str]:
    """Break, verify only the broken controls, undo; what went wrong (every round runs, so one
    failure does not hide the others)."""
    problems = []
    try:
        for _, how, _, _ in cases:
            target.sh(how)
        outcomes = target.verify(",".join(control for control, _, _, _ in cases))
    except AssertionError as exc:
        problems.append(str(exc))
        outcomes = {}
    finally:
        for _, _, undo, _ in cases:
            try:
                target.sh(undo)
            except AssertionError as exc:
                problems.append(f"undo failed: {exc}")
    for control, how, _, shown in cases:
        if outcomes and outcomes.get(control) != "failed":
            problems.append(f"{control} broken by {how!r}: {outcomes.get(control)}, not failed")
        elif outcomes and shown not in target.shown(control):
            problems.append(f"{control} broken by {how!r} failed without showing {shown!r}: {target.shown(control)}")
    if outcomes and set(outcomes) != {control for control, _, _, _ in cases}:
        problems.append(f"ran {sorted(outcomes)}, not only the broken controls")
    return problems


def test_every_control_of_the_three_families_is_broken_once():
    """The tables cover every control the three families have (a new control needs a break)."""
    ids = set()
    for path in ("test_firewall.py", "test_notify.py", "test_bans.py"):
        for line in (ROOT / "verify" / path).read_text().splitlines():
            if line.startswith("@pytest.mark.control("):
                ids.add(line.split('"')[1])
    assert ids == {c for c, _, _, _ in FW_IPTABLES + NOTIFY + BANS + FW_NFTABLES}


def test_iptables_notify_and_ban_controls_pass_then_each_fails_when_broken(target):
    target.playbook(POLICY)
    target.verify(FAMILIES)
    assert target.problems() == []
    nft_only = {c for c, *_ in FW_NFTABLES} - {"SSHW-FW-020"}
    assert target.passed() == {c for c, *_ in FW_IPTABLES + NOTIFY + BANS}, "the nftables controls skip"
    assert all(target.cases_of(c) == {"skipped"} for c in nft_only)
    target.sh(f"{IPT_SNAPSHOT} && {F2B_SNAPSHOT} && {NOTIFY_SNAPSHOT}")
    problems = [problem for cases in ROUNDS for problem in _break_round(target, cases)]
    assert problems == []


def test_nftables_controls_pass_then_each_fails_when_broken(target):
    policy = {**POLICY, "ssh_ratelimit_backend": "nftables"}
    target.playbook(policy, "--tags", "ratelimit")
    target.verify("SSHW-FW")
    assert target.problems() == []
    assert target.passed() == {c for c, *_ in FW_NFTABLES} | {"SSHW-FW-021"}, "the iptables controls skip"
    target.sh(NFT_SNAPSHOT)
    problems = [problem for case in FW_NFTABLES for problem in _break_round(target, [case])]
    assert problems == []
