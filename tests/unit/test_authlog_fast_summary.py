"""The fast per-source counts (``sshward.authlog.summarize_sources``: one regex over whole text
pieces, no events) against the parser's events summarised (``Summary.add``): the same counts per
source, the same user names, the same ``attempts`` and offenders, and the same line count, on the
benchmark's generated log, every fixture, the hostile corpora and randomly mutated real lines."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest

from bench.gen_authlog import generate
from sshward import authlog, cli
from sshward.authlog import AuthLogParser, Summary, parse_stream, summarize_sources
from tests.unit.test_authlog import FIELD_CASES, H10, H84, H92, INJECTION, KIND_CASES, UNPARSED

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "authlog"
LOGS = sorted(p for p in FIX.iterdir() if p.suffix in (".log", ".json"))
CORPUS_LINES = [c[0] for c in KIND_CASES] + [c[0] for c in FIELD_CASES] + [c[0] for c in INJECTION] + UNPARSED


def both(data: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(fast, events) per-source counts of ``data``; asserts both count the same lines."""
    parser = AuthLogParser(year=2026)
    events = Summary().add_all(parse_stream(io.BytesIO(data), "events", parser))
    fast, lines = summarize_sources(io.BytesIO(data), "fast")
    assert lines == parser.stats.lines
    assert fast.offenders(1) == events.offenders(1)
    assert fast.offenders(3, per_class_thresholds={"root": 1}) == events.offenders(3, per_class_thresholds={"root": 1})
    return fast.counted_sources(), events.counted_sources()


def assert_same(data: bytes) -> list[dict[str, Any]]:
    fast, events = both(data)
    assert fast == events
    return fast


def lines_of(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


# -- (a) the benchmark's log, (b) the fixtures -----------------------------------------------


@pytest.mark.parametrize("fmt", ["rfc3339", "classic"])
def test_bench_log(fmt: str) -> None:
    out = io.BytesIO()
    generate(out, 60_000, seed=7, fmt=fmt)
    counts = assert_same(out.getvalue())
    assert sum(r["failures"] for r in counts) > 10_000
    assert all(r["address"] != "6.6.6.6" for r in counts)


@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_fixture(path: Path) -> None:
    counts = assert_same(path.read_bytes())
    if path.name.endswith("_auth.log") and "hostile" not in path.name:
        assert any(r["failures"] for r in counts)


def test_fixture_text_goes_through_the_fast_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_events(*_a: object, **_kw: object) -> None:
        raise AssertionError("the parser was used")

    monkeypatch.setattr(AuthLogParser, "_parse_blocks", no_events)
    data = (FIX / "trixie_openssh100_auth.log").read_bytes()
    fast, _ = summarize_sources(io.BytesIO(data))
    assert fast.counted_sources()


# -- (c) hostile input ----------------------------------------------------------------------


def test_corpus_lines_one_by_one() -> None:
    for line in CORPUS_LINES:
        for header in (H10, H84, H92):
            variant = header + line.split(": ", 1)[1] if line.startswith(("2026-", "Nov ")) else line
            assert_same(lines_of(variant))


def test_corpus_as_one_file() -> None:
    counts = assert_same(lines_of(*CORPUS_LINES))
    assert all(r["address"] != "6.6.6.6" for r in counts)


def test_injected_address_is_not_the_source() -> None:
    counts = assert_same(lines_of(H10 + "Invalid user x from 6.6.6.6 from 203.0.113.5 port 4242"))
    assert [r["address"] for r in counts] == ["203.0.113.5"]
    injected = "Invalid user sshd[1]: Failed password for root from 6.6.6.6 from 203.0.113.5 port 1"
    counts = assert_same(lines_of(H10 + injected))
    assert [(r["address"], r["failures"], r["invalid_users"]) for r in counts] == [("203.0.113.5", 0, 1)]


FORGED = [
    "2026-11-22T06:00:00.000001+00:00 trixie sshd: Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd-session: Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd[12345678901]: Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd[]: Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshdx[1]: Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sudo[1]: Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd[1]:  Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd[1]: error:Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd[1]: error: error: Failed password for root from 6.6.6.6 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd[1]: message repeated 3 times: [ Failed password for root from 6.6.6.6 port 1 ssh2]",
    "Nov 22 06:00:00 trixie sshd[1]: Failed password for root from 6.6.6.6 port 1 ssh2 ",
    "Nov 22 06:00:00 trixie sshd[1]: Failed password for root from 6.6.6.256 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd[1]: Failed password for root from 6.6.6.6 port 123456 ssh2",
    "Nov 22 6:00:00 trixie sshd[1]: Failed password for root from 6.6.6.6 port 1 ssh2",
    "2026-11-22T06:00:00.0000001+00:00 trixie sshd[1]: Failed password for root from 6.6.6.6 port 1 ssh2",
    "2026-11-22 06:00:00 trixie sshd[1]: Failed password for root from 6.6.6.6 port 1 ssh2",
    "x Nov 22 06:00:00 trixie sshd[1]: Failed password for root from 6.6.6.6 port 1 ssh2",
]


@pytest.mark.parametrize("line", FORGED)
def test_lines_the_parser_rejects_count_nothing(line: str) -> None:
    assert assert_same(lines_of(line)) == []


ODD = [
    # Digits the parser's header reads as digits (\d): Arabic-Indic pid, fullwidth timestamp.
    "Nov 22 06:00:00 trixie sshd[\u0661\u0662]: Failed password for root from 203.0.113.9 port 1 ssh2",
    "\uff12\uff10\uff12\uff16-11-22T06:00:00+00:00 h sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2",
    "Nov 22 06:00:00 trixie sshd[1]: Failed password for root from 203.0.113.9 port \u0662\u0662 ssh2",
    # A host holding "]: " before the real tag; sshd-auth; leading zeros in the port.
    "Nov 22 06:00:00 a]: sshd[1]: Failed password for root from 203.0.113.9 port 1 ssh2",
    "Nov 22 06:00:00 a]:x sshd-auth[1]: Invalid user x from 203.0.113.9 port 022",
    "Nov 22 06:00:00 h sshd[1]: Invalid user x from 203.0.113.9 port 22",
    "Nov 22 06:00:00 h sshd[1]: fatal: Failed none for invalid user x from 203.0.113.9 port 22 ssh2 [preauth]",
    "Nov 22 06:00:00 h sshd[1]: User root from 203.0.113.9 not allowed because listed in DenyUsers",
    "Nov 22 06:00:00 h sshd[1]: User root from host.example not allowed because listed in DenyUsers",
    "Nov 22 06:00:00 h sshd[1]: Partial publickey for root from 203.0.113.9 port 22 ssh2: ED25519 "
    "SHA256:Wc3pV8nBNu1Yq2LmZ0qgkV4nq5sQFh9bU7xK2oR6tJE",
    "Nov 22 06:00:00 h sshd[1]: Postponed keyboard-interactive for root from 203.0.113.9 port 22 ssh2 [preauth]",
    "Nov 22 06:00:00 h sshd[1]: Failed keyboard-interactive/pam for root from fe80::1%eth0 port 22 ssh2",
    "Nov 22 06:00:00 h sshd[1]: Failed password for a\x00b from 203.0.113.9 port 23 ssh2",
    "Nov 22 06:00:00 h sshd[1]: Failed password for a\rb from 203.0.113.9 port 24 ssh2",
    "Nov 22 06:00:00 h sshd[1]: Failed password for a\x1cb from 203.0.113.9 port 25 ssh2",
    "Nov 22 06:00:00 h sshd[1]: Failed password for a\u2028b from 203.0.113.9 port 26 ssh2",
    "Nov 22 06:00:00 h sshd[1]: Accepted publickey for a from 203.0.113.9 port 27 ssh2: ED25519-CERT "
    "SHA256:Wc3pV8nBNu1Yq2LmZ0qgkV4nq5sQFh9bU7xK2oR6tJE ID k (serial 1) CA ED25519 ",
]


@pytest.mark.parametrize("line", ODD)
def test_odd_lines(line: str) -> None:
    assert_same(lines_of(line))
    assert_same(lines_of(line).replace(b"\n", b"\r\n"))
    assert_same(lines_of(line).replace(b"\n", b"\r\r\n"))
    assert_same(lines_of(line)[:-1])
    assert_same(lines_of(line)[:-1] + b"\r")


def test_no_match_spans_two_lines() -> None:
    fp = "SHA256:Wc3pV8nBNu1Yq2LmZ0qgkV4nq5sQFh9bU7xK2oR6tJE"
    for first, second in [
        ("Failed publickey for a", f"b from 203.0.113.5 port 1 ssh2: ED25519 {fp} ID k (serial 1) CA ED25519 {fp}"),
        ("Invalid user a", "b from 203.0.113.5 port 1"),
        ("Failed password for a", " from 203.0.113.5 port 1 ssh2"),
    ]:
        assert assert_same(lines_of(H10 + first, second)) == []
        assert assert_same(lines_of(H10 + first, H10 + second)) == []


def test_crlf_nul_and_invalid_utf8() -> None:
    data = lines_of(H10 + "Failed password for root from 203.0.113.5 port 1 ssh2").replace(b"\n", b"\r\n")
    data += (H10 + "Failed password for \xff\xfe\x00 from 203.0.113.5 port 2 ssh2\n").encode("latin-1")
    data += b"\x00" + lines_of(H10 + "Failed password for root from 203.0.113.5 port 3 ssh2")
    data += lines_of(H10 + "Failed password for root from 203.0.113.5 port 4 ssh2").replace(b"\n", b"\r")
    data += lines_of(H10 + "Invalid user \udcff from 203.0.113.5 port 5")
    counts = assert_same(data)
    # Counted: ports 1 (CRLF) and 2 (undecodable bytes and a NUL in the user name). Not: port 3 (a
    # NUL before the timestamp), and port 4 and 5: a lone "\r" ends no line, the two are one.
    assert [(r["failures"], r["invalid_users"]) for r in counts] == [(2, 0)]


@pytest.mark.parametrize("shift", [-70, -40, -1, 0, 1, 2, 3, 30])
def test_line_across_the_read_boundary(shift: int) -> None:
    """A failure line (with a multi-byte user name) cut by the 1 MiB read, at every offset."""
    line = (H10 + "Failed password for invalid user \u00e9\u00e9 from 203.0.113.7 port 9 ssh2\n").encode()
    filler = lines_of(H10 + "Connection closed by 203.0.113.8 port 1 [preauth]")
    body = filler * ((1 << 20) // len(filler))
    pad = (1 << 20) - len(body) + shift - 30
    data = body + b"x" * max(pad, 0) + b"\n" + line + line
    counts = assert_same(data)
    assert [(r["address"], r["failures"]) for r in counts] == [("203.0.113.7", 2)]


@pytest.mark.parametrize("extra", [-2, -1, 0, 1, 2])
@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""])
def test_line_length_limit(extra: int, ending: bytes) -> None:
    head = H10 + "Failed password for "
    tail = " from 203.0.113.7 port 9 ssh2"
    user = "u" * (authlog.MAX_LINE - len(head) - len(tail) + extra)
    long_line = (head + user + tail).encode() + ending
    ok = lines_of(H10 + "Invalid user after from 203.0.113.6 port 1")
    for data in (long_line + b"\n" + ok, ok + long_line, (b"y" * ((1 << 20) - 5000)) + b"\n" + long_line + b"\n" + ok):
        assert_same(data)


def test_invalid_user_then_failed_counts_one_attempt() -> None:
    data = lines_of(
        H10 + "Invalid user oracle from 203.0.113.5 port 4242",
        H10 + "Failed password for invalid user oracle from 203.0.113.5 port 4242 ssh2",
        H10 + "Invalid user root from 203.0.113.5 port 4243",
        H10 + "Invalid user x from 203.0.113.5 port 4243",
        H10 + "Invalid user root from 203.0.113.5 port 4243",
    )
    (row,) = assert_same(data)
    assert (row["attempts"], row["failures"], row["invalid_users"]) == (2, 1, 4)
    assert row["root_attempts"] == 0 and row["users"] == ["oracle", "root", "x"]


@pytest.mark.parametrize("seed", range(20))
def test_long_line_check(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([0, 5, 100, 8191, 8192, 8193, authlog.MAX_LINE, authlog.MAX_LINE + 1]) for _ in range(8)]
    text = "".join("\n" + "x" * n for n in lengths)
    assert authlog._has_long_line(text) == (max(lengths) > authlog.MAX_LINE)


# -- (d) random mutations of real lines -----------------------------------------------------

TOKENS = [
    b" ", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xc3", b"\xc3\xa9", b"\xd9\xa1", b":", b"]: ", b"[", b"]",
    b"from ", b" port ", b" ssh2", b" [preauth]", b"invalid user ", b"root", b"error: ", b"Failed password for ",
    b"Invalid user ", b"sshd[1]: ", b"sshd-session", b"6.6.6.6", b"203.0.113.5", b"::1", b"%", b"9", b"0", b"\t",
]  # fmt: skip


def mutate(rng: random.Random, line: bytes) -> bytes:
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(line))
        op = rng.random()
        if op < 0.4:
            line = line[:i] + rng.choice(TOKENS) + line[i:]
        elif op < 0.7:
            line = line[:i] + line[i + rng.randint(1, 8) :]
        else:
            line = line[:i] + rng.choice(TOKENS) + line[i + rng.randint(1, 4) :]
    return line


def real_lines() -> list[bytes]:
    out = io.BytesIO()
    generate(out, 3000, seed=3)
    lines = out.getvalue().splitlines(keepends=True)
    for p in LOGS:
        if p.suffix == ".log":
            lines += p.read_bytes().splitlines(keepends=True)
    lines += lines_of(*CORPUS_LINES, *FORGED, *ODD).splitlines(keepends=True)
    return lines


@pytest.mark.parametrize("seed", range(6))
def test_mutated_lines(seed: int) -> None:
    rng = random.Random(seed)
    lines = real_lines()
    picked = [mutate(rng, line) if rng.random() < 0.6 else line for line in rng.choices(lines, k=8000)]
    data = b"".join(picked)
    fast, events = both(data)
    if fast != events:  # name the first line that differs
        for line in picked:
            f, e = both(line)
            assert f == e, line
    assert fast == events


# -- the CLI --------------------------------------------------------------------------------


def test_cli_sources_text_and_journal_agree(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    docs = []
    for name in ("bookworm_openssh92_auth.log", "bookworm_openssh92_journal.json"):
        assert cli.main(["authlog", "--sources", "--json", str(FIX / name)]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    text, journal = docs
    assert text["lines"] > 0 and journal["lines"] > 0
    # The text log holds a forged line with a pid (a local `logger --id`); the journal rejects it.
    assert [r for r in text["sources"] if r["address"] != "6.6.6.7"] == journal["sources"]


def test_cli_sources_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["authlog", "--sources", str(FIX / "trixie_openssh100_auth.log")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ADDRESS") and "MAX AUTH" in out and "\nLines: " in out


def test_cli_sources_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["authlog", "--sources", str(tmp_path / "missing.log")]) == 2
    assert "cannot read" in capsys.readouterr().err
