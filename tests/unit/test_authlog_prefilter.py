"""sshward.authlog's one pattern table and its substring prefilter: it only ever skips lines that
could not have matched, so events and statistics are the same with and without it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from sshward import authlog
from sshward.authlog import KIND, AuthLogParser, parse_path

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "authlog"
LOGS = sorted(p for p in FIX.iterdir() if p.suffix in (".log", ".json"))


class Everything(frozenset):
    """A prefilter key set that lets every message through to the regex."""

    def __contains__(self, item: object) -> bool:
        return True


def parse(path: Path) -> tuple[list[tuple], dict[str, int]]:
    p = AuthLogParser(year=2026)
    events = [dataclasses.astuple(e) for e in parse_path(str(path), p)]
    return events, p.stats.to_dict()


@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_prefilter_changes_no_event_and_no_count(path, monkeypatch):
    filtered = parse(path)
    monkeypatch.setattr(authlog, "_SSHD_STARTS", Everything())
    assert parse(path) == filtered


def test_one_table_one_regex():
    names = [alt[0] for alt in authlog._ALTS]
    assert sorted(authlog._IDX) == sorted(f"A_{n}" for n in names)
    assert not hasattr(authlog, "_LINE_RX") and not hasattr(authlog, "_MSG_IDX")


@pytest.mark.parametrize("alt", authlog._ALTS, ids=[a[0] for a in authlog._ALTS])
def test_every_sshd_alternative_declares_the_words_it_starts_with(alt):
    name, family, pattern, _fields, starts = alt
    if family == "sudo":
        assert starts == ()  # starts with the invoking user's name: never prefiltered
        return
    assert starts and all(len(s) == 4 for s in starts)
    # The pattern's own leading literal text begins with one of the declared words.
    literal = re.sub(r"\(\?P<\w+>", "", pattern).lstrip("(")
    assert any(literal.startswith(s) for s in starts), literal[:40]


@pytest.mark.parametrize(
    "message",
    [
        "kex_exchange_identification: Failed password for root from 6.6.6.6 port 1 ssh2",
        "Starting session: shell on pts/0 for root from 6.6.6.6 port 1 id 0",
        "error: kex_exchange_identification: Invalid user x from 6.6.6.6 port 1",
        "  Failed password for root from 6.6.6.6 port 1 ssh2",
    ],
)
def test_a_message_that_starts_with_other_words_is_unparsed(message):
    p = AuthLogParser(year=2026)
    assert p.parse_text_line(f"2026-11-22T05:16:51+00:00 web1 sshd[42]: {message}") is None
    assert (p.stats.unparsed, p.stats.events) == (1, 0)


def test_error_prefix_still_reaches_the_patterns():
    p = AuthLogParser(year=2026)
    ev = p.parse_text_line(
        "2026-11-22T05:16:51+00:00 web1 sshd[42]: error: maximum authentication attempts exceeded for root"
        " from 203.0.113.5 port 4242 ssh2 [preauth]"
    )
    assert ev is not None and (ev.kind, ev.address) == (KIND.MAX_AUTH, "203.0.113.5")


@pytest.mark.parametrize(
    ("line", "counter"),
    [
        # sshd always logs its pid: a pid-less pam_unix "sshd" line is a forgery like any other.
        ("Nov 22 05:16:41 web1 sshd: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)",
         "untrusted"),
        ("Nov 22 05:16:41 web1 CRON[7]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
         "other"),
        ("Nov 22 05:16:41 web1 systemd-logind[400]: New session 3 of user alice.", "other"),
        ("not a syslog line at all", "malformed"),
    ],
)  # fmt: skip
def test_header_decides_what_a_non_event_is(line, counter):
    p = AuthLogParser(year=2026)
    assert p.parse_text_line(line) is None
    assert getattr(p.stats, counter) == 1
