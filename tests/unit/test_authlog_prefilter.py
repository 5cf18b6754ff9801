"""sshward.authlog's one pattern table and the words its sshd rows start with. The words pick the
rows an sshd message is tried against (one compiled line regex per word) and let the parser skip
messages no row can match; both only ever skip rows that could not have matched, so events and
statistics are the same as trying every row."""

from __future__ import annotations

import dataclasses
from pathlib import Path

try:  # Python 3.11+
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # Python 3.9, 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

import pytest

from sshward import authlog
from sshward.authlog import KIND, AuthLogParser, parse_path

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "authlog"
LOGS = sorted(p for p in FIX.iterdir() if p.suffix in (".log", ".json"))


class EveryRow(dict):
    """A word table that sends every message, whatever its first word, to every sshd row."""

    def __contains__(self, word: object) -> bool:
        return True

    def __getitem__(self, word: str) -> list:
        return [alt for alt in authlog._ALTS if alt[1] in ("sshd", "all")]

    def get(self, word: str, default: object = None) -> list:
        return self[word]


def parse(path: Path) -> tuple[list[tuple], dict[str, int]]:
    p = AuthLogParser(year=2026)
    events = [dataclasses.astuple(e) for e in parse_path(str(path), p)]
    return events, p.stats.to_dict()


@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_words_change_no_event_and_no_count(path, monkeypatch):
    by_word = parse(path)
    monkeypatch.setattr(authlog, "_WORD_ROWS", EveryRow())
    monkeypatch.setattr(authlog, "_SSHD_LINE_RX", {})
    monkeypatch.setattr(authlog, "_SSHD_MSG_RX", {})
    assert parse(path) == by_word


def test_every_row_is_in_the_message_regex():
    names = [alt[0] for alt in authlog._ALTS]
    assert sorted(authlog._all_rows_rx()[1]) == sorted(f"A_{n}" for n in names)


@pytest.mark.parametrize("word", sorted(authlog._SSHD_STARTS))
def test_a_word_s_line_regex_holds_the_rows_declaring_it_in_table_order(word):
    _match, idx = authlog._sshd_line_rx(word)
    rows = [f"A_{n}" for n, family, _p, _f, starts in authlog._ALTS if family in ("sshd", "all") and word in starts]
    assert list(idx) == rows


def leading_words(items: list, n: int = 4) -> set[str]:
    """Every text of up to ``n`` characters a parsed pattern can start with; fails on anything
    but fixed text (literals, groups, alternations of them, optional parts) before ``n``."""
    if n == 0 or not items:
        return {""}
    (op, av), rest = items[0], list(items[1:])
    c = sre_constants
    if op is c.LITERAL:
        return {chr(av) + w for w in leading_words(rest, n - 1)}
    if op is c.IN and all(o is c.LITERAL for o, _ in av):
        return {chr(ch) + w for _, ch in av for w in leading_words(rest, n - 1)}
    if op is c.SUBPATTERN:
        return leading_words(list(av[-1]) + rest, n)
    if op is c.BRANCH:
        return set().union(*(leading_words(list(b) + rest, n) for b in av[1]))
    if op in (c.MAX_REPEAT, c.MIN_REPEAT) and (av[0], av[1]) == (0, 1):
        return leading_words(rest, n) | leading_words(list(av[2]) + rest, n)
    raise AssertionError(f"the pattern does not start with a fixed word: {op} {av}")


def test_leading_words_sees_through_groups_and_optional_parts():
    assert leading_words(list(sre_parse.parse(r"(?:(?P<a>AB )|)(?:CD|EF)x"))) == {"AB C", "AB E", "CDx", "EFx"}
    with pytest.raises(AssertionError):
        leading_words(list(sre_parse.parse(r"A\s+B")))


SSHD_ROWS = [alt for alt in authlog._ALTS if alt[1] in ("sshd", "all")]


@pytest.mark.parametrize("alt", SSHD_ROWS, ids=[a[0] for a in SSHD_ROWS])
def test_every_sshd_row_starts_with_exactly_the_words_it_declares(alt):
    _name, _family, pattern, _fields, starts = alt
    assert leading_words(list(sre_parse.parse(pattern))) == set(starts)


def test_sudo_rows_declare_no_words():
    assert [alt[4] for alt in authlog._ALTS if alt[1] == "sudo"] == [()]  # starts with the invoking user's name


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
