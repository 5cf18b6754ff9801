"""The parser over REAL sshd output captured from the lab's containers.

tests/fixtures/authlog/capture_lab.py made these files: one client made real SSH
connections to a bullseye (OpenSSH 8.4), bookworm (9.2) and trixie (10.0)
target at LogLevel VERBOSE with rsyslog installed; both the journal
(``journalctl -o json``) and /var/log/auth.log were kept. Each test checks one
fact on each of the six captures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sshward.authlog import KIND, AuthEvent, AuthLogParser, Summary, parse_path

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "authlog"
CAPTURES = {
    # suite: (files stem, client address)
    "bullseye": ("bullseye_openssh84", "172.31.243.50"),
    "bookworm": ("bookworm_openssh92", "172.31.243.51"),
    "trixie": ("trixie_openssh100", "172.31.243.52"),
}
FILES = [(suite, kind) for suite in CAPTURES for kind in ("auth.log", "journal.json")]
IDS = [f"{s}-{k}" for s, k in FILES]
# sshd/sudo/su lines the parser deliberately leaves alone: they carry no event of ours
# (the line next to them does) or are daemon housekeeping.
NOISE = (
    "check pass; user unknown", "PAM 1 more", "PAM 2 more", "pam_env(", "pam_limits(", "kex_exchange_identification",
    "User child is on pid", "Starting session:", "Close session:", "Server listening", "Received signal",
    "Received SIGHUP", "srclimit_penalise", "conversation failed", "could not identify password",
)  # fmt: skip


def path_of(suite: str, kind: str) -> Path:
    return FIX / f"{CAPTURES[suite][0]}_{kind}"


_CACHE: dict[tuple[str, str], tuple[list[AuthEvent], AuthLogParser]] = {}


def events(suite: str, kind: str) -> list[AuthEvent]:
    key = (suite, kind)
    if key not in _CACHE:
        p = AuthLogParser(year=2026)
        _CACHE[key] = (list(parse_path(str(path_of(suite, kind)), p)), p)
    return _CACHE[key][0]


def stats(suite: str, kind: str) -> dict[str, int]:
    events(suite, kind)
    return _CACHE[(suite, kind)][1].stats.to_dict()


def find(evs: list[AuthEvent], kind: str, user: str | None = None) -> list[AuthEvent]:
    return [e for e in evs if e.kind == kind and (user is None or e.user == user)]


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_no_unexplained_line(suite: str, kind: str) -> None:
    """Every record from sshd, sudo or su is an event or a known noise line."""
    import json

    p = AuthLogParser(year=2026)
    bad = []
    for line in path_of(suite, kind).read_text().splitlines():
        if kind == "journal.json":
            rec = json.loads(line)
            if rec.get("_COMM") not in ("sshd", "sshd-session", "sshd-auth", "sudo", "su"):
                continue
            text = rec["MESSAGE"]
            ok = p.parse_journal_record(rec) is not None
        else:
            if not any(f" {prog}[" in line or f" {prog}:" in line for prog in ("sshd", "sshd-session", "sudo", "su")):
                continue
            text = line
            ok = p.parse_text_line(line) is not None or " sshd: " in line  # pid-less: the forgery
        if not ok and not any(n in text for n in NOISE):
            bad.append(text)
    assert bad == []


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_accepted_publickey_with_key_file_and_line(suite: str, kind: str) -> None:
    (ev,) = find(events(suite, kind), KIND.ACCEPTED, "alice")
    assert (ev.method, ev.address, ev.key_type, ev.authorized_keys_file, ev.authorized_keys_line) == (
        "publickey", CAPTURES[suite][1], "ED25519", "/home/alice/.ssh/authorized_keys", 2,
    )  # fmt: skip


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_accepted_fingerprint_matches_verbose_key_line(suite: str, kind: str) -> None:
    evs = events(suite, kind)
    (acc,) = find(evs, KIND.ACCEPTED, "alice")
    assert acc.fingerprint is not None
    assert {e.fingerprint for e in find(evs, KIND.ACCEPTED_KEY)} == {acc.fingerprint}


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_accepted_password(suite: str, kind: str) -> None:
    (ev,) = find(events(suite, kind), KIND.ACCEPTED, "bob")
    assert (ev.method, ev.address) == ("password", CAPTURES[suite][1])


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_failed_password_valid_user(suite: str, kind: str) -> None:
    evs = find(events(suite, kind), KIND.FAILED_PASSWORD, "bob")
    assert [(e.address, e.invalid_user) for e in evs] == [(CAPTURES[suite][1], False)] * 2


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_failed_password_root_until_max_auth(suite: str, kind: str) -> None:
    evs = events(suite, kind)
    assert [e.address for e in find(evs, KIND.FAILED_PASSWORD, "root") if e.address != "6.6.6.7"] == [
        CAPTURES[suite][1]
    ] * 3
    (mx,) = find(evs, KIND.MAX_AUTH, "root")
    assert (mx.address, mx.preauth) == (CAPTURES[suite][1], True)


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
@pytest.mark.parametrize("user", ["oracle", "admin"])
def test_invalid_user(suite: str, kind: str, user: str) -> None:
    evs = events(suite, kind)
    inv = find(evs, KIND.INVALID_USER, user)
    assert inv and all(e.address == CAPTURES[suite][1] for e in inv)
    failed = find(evs, KIND.FAILED_PASSWORD, user)
    assert failed and all(e.invalid_user for e in failed)


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_denyusers(suite: str, kind: str) -> None:
    (ev,) = find(events(suite, kind), KIND.NOT_ALLOWED, "dave")
    assert (ev.detail, ev.address) == ("in_denyusers", CAPTURES[suite][1])


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_injected_user_name_keeps_the_real_address(suite: str, kind: str) -> None:
    evs = [e for e in events(suite, kind) if e.user == "x from 6.6.6.6 port 1 ssh2"]
    assert {e.kind for e in evs} >= {KIND.INVALID_USER, KIND.FAILED_PASSWORD, KIND.CONNECTION_CLOSED}
    assert {e.address for e in evs} == {CAPTURES[suite][1]}


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_forged_logger_lines(suite: str, kind: str) -> None:
    """`logger -t sshd` by a local user: never 6.6.6.6 (no pid / _COMM=logger). The
    --id=4242 forgery is caught in the journal; in a text file it is indistinguishable
    from sshd (documented in authlog's module docstring), so the journal is preferred."""
    addrs = {e.address for e in events(suite, kind)}
    assert "6.6.6.6" not in addrs
    assert ("6.6.6.7" in addrs) == (kind == "auth.log")
    assert stats(suite, kind)["untrusted"] >= 1


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_preauth_disconnect_without_trying(suite: str, kind: str) -> None:
    (ev,) = find(events(suite, kind), KIND.CONNECTION_CLOSED, "nobody")
    assert (ev.detail, ev.preauth, ev.address) == ("authenticating user", True, CAPTURES[suite][1])


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
@pytest.mark.parametrize("kind_", [KIND.BAD_BANNER, KIND.NEGOTIATION_FAILED, KIND.CONNECTION_RESET])
def test_scans(suite: str, kind: str, kind_: str) -> None:
    evs = find(events(suite, kind), kind_)
    assert [e.address for e in evs] == [CAPTURES[suite][1]]


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
@pytest.mark.parametrize(("user", "service"), [("alice", "sshd"), ("bob", "sshd"), ("root", "sudo"), ("bob", "su")])
def test_sessions_open_and_close(suite: str, kind: str, user: str, service: str) -> None:
    evs = events(suite, kind)
    opened = [e for e in find(evs, KIND.SESSION_OPENED, user) if e.detail == service]
    closed = [e for e in find(evs, KIND.SESSION_CLOSED, user) if e.detail == service]
    assert len(opened) == len(closed) >= 1


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_sudo_failure_and_command(suite: str, kind: str) -> None:
    evs = events(suite, kind)
    (fail,) = find(evs, KIND.SUDO_AUTH_FAILURE, "alice")
    assert fail.detail == "1 incorrect password attempt (root: /usr/bin/true)"
    (cmd,) = find(evs, KIND.SUDO_COMMAND, "alice")
    assert cmd.detail == "root: /usr/bin/id"


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_program_is_the_real_one(suite: str, kind: str) -> None:
    """OpenSSH 10 logs per-connection events from sshd-session, older releases from sshd."""
    progs = {e.program for e in events(suite, kind) if e.address == CAPTURES[suite][1]}
    assert progs == ({"sshd-session"} if suite == "trixie" else {"sshd"})


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_summary_classes(suite: str, kind: str) -> None:
    s = Summary().add_all(e for e in events(suite, kind) if e.address != "6.6.6.7")
    counts = s.sources[CAPTURES[suite][1]].class_counts()
    assert (counts["root"], counts["valid"]) == (3, 2)
    assert counts["invalid"] >= 6  # oracle x2, admin x2, dave, x-from-6.6.6.6 (+ trixie's burst)


@pytest.mark.parametrize(("suite", "kind"), FILES, ids=IDS)
def test_offenders_per_class_thresholds_and_allowlist(suite: str, kind: str) -> None:
    s = Summary().add_all(e for e in events(suite, kind) if e.address != "6.6.6.7")
    client = CAPTURES[suite][1]
    assert s.offenders(100, per_class_thresholds={"root": 3}) == [client]
    assert s.offenders(100, per_class_thresholds={"valid": 3}) == []
    assert s.offenders(3, ["172.31.243.0/24"]) == []


@pytest.mark.parametrize("suite", list(CAPTURES))
def test_journal_and_file_agree(suite: str) -> None:
    """The journal and auth.log of one capture yield the same sshd events (the file alone
    also holds the undetectable --id forgery)."""

    def key(evs: list[AuthEvent]) -> list[tuple[str, ...]]:
        return sorted(
            tuple(str(x) for x in (e.kind, e.user, e.address, e.port, e.method, e.fingerprint))
            for e in evs
            if e.program.startswith("sshd") and e.address not in ("6.6.6.7",)
        )

    assert key(events(suite, "journal.json")) == key(events(suite, "auth.log"))


def test_parallel_summary_equals_serial(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(FIX.parents[2] / "bench"))
    from gen_authlog import generate

    from sshward.authlog import summarize_path_parallel

    log = tmp_path / "gen.log"
    with log.open("wb") as f:
        generate(f, 20000, 7, "rfc3339")
    serial = Summary().add_all(parse_path(str(log), AuthLogParser(year=2026)))
    par, stats = summarize_path_parallel(str(log), 3, year=2026)
    assert stats.lines == 20000
    assert par.to_dict()["sources"] == serial.to_dict()["sources"]
    assert par.kinds == serial.kinds
    assert par.offenders(5) == serial.offenders(5)
