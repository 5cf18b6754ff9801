"""``sshward`` command line: a registry of subcommands.

Each subcommand registers a name, a help line, a function adding its arguments
to its sub-parser and a function running it (returning the exit code). Add one
with :func:`register` from any module imported by :func:`_load_builtin`.

Exit codes: 0 success, 1 usage error (argparse uses 2 for that, kept as is),
2 unreadable input (one line on stderr naming the input and the reason).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Callable

from . import __version__
from .authlog import AuthEvent, AuthLogError, AuthLogParser, Summary, open_log, parse_stream, summarize_sources


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def register(
    name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Decorator registering ``run(args) -> int`` as subcommand ``name``."""

    def deco(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        if name in SUBCOMMANDS:
            raise ValueError(f"subcommand {name!r} registered twice")
        SUBCOMMANDS[name] = Subcommand(name, help, configure, run)
        return run

    return deco


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sshward", description="SSH hardening and incident response")
    parser.add_argument("--version", action="version", version=f"sshward {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in sorted(SUBCOMMANDS):
        sc = SUBCOMMANDS[name]
        p = sub.add_parser(name, help=sc.help, description=sc.help)
        sc.configure(p)
        p.set_defaults(_run=sc.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args._run
    try:
        return run(args)
    except BrokenPipeError:
        # `sshward authlog ... | head`: not an error worth a traceback
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


# --------------------------------------------------------------------------------------------
# sshward authlog
# --------------------------------------------------------------------------------------------

JOURNALCTL = [
    "journalctl",
    "--no-pager",
    "-q",
    "-o",
    "json",
    "_COMM=sshd",
    "+",
    "_COMM=sshd-session",
    "+",
    "_COMM=sshd-auth",
    "+",
    "_COMM=sudo",
    "+",
    "_COMM=su",
]


def _authlog_configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="auth.log / secure files (rotated and .gz too), journalctl -o json output, or - for stdin",
    )
    p.add_argument("--journal", action="store_true", help="read the local journal (journalctl -o json)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--summary-only", action="store_true", help="print only the summaries, not every event")
    p.add_argument(
        "--sources",
        action="store_true",
        help="print only the counts per source address (failures by user class, invalid users, accepted, "
        "max auth exceeded); text logs are counted without building events, several times faster",
    )
    p.add_argument("--year", type=int, default=None, help="year of classic syslog timestamps (default: guess)")


def _safe(s: object) -> str:
    """Printable for a terminal: log text is attacker-controlled (escape sequences)."""
    t = "" if s is None else str(s)
    if t.isprintable():
        return t
    return "".join(c if c.isprintable() else _escape(c) for c in t)


def _escape(c: str) -> str:
    o = ord(c)
    return f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def _err(msg: str) -> None:
    sys.stderr.write("sshward authlog: " + _safe(msg) + "\n")


def _journal_lines(proc: subprocess.Popen[bytes]) -> Iterator[bytes]:
    assert proc.stdout is not None
    yield from proc.stdout


def _format_event(ev: AuthEvent) -> str:
    ts = ev.timestamp.isoformat(timespec="seconds") if ev.timestamp else "-"
    pid = f"[{ev.pid}]" if ev.pid is not None else ""
    fields = [ts, _safe(ev.host or "-"), f"{_safe(ev.program)}{pid}", ev.kind]
    if ev.user is not None:
        fields.append("user=" + json.dumps(ev.user, ensure_ascii=True))
    if ev.address is not None:
        fields.append(f"from={ev.address}" + (f":{ev.port}" if ev.port is not None else ""))
    if ev.method:
        fields.append("method=" + _safe(ev.method))
    if ev.key_type:
        fields.append(f"key={_safe(ev.key_type)} {_safe(ev.fingerprint)}")
    if ev.authorized_keys_file:
        fields.append(f"authorized_keys={_safe(ev.authorized_keys_file)}:{ev.authorized_keys_line}")
    if ev.invalid_user:
        fields.append("invalid")
    if ev.preauth:
        fields.append("preauth")
    if ev.detail:
        fields.append("detail=" + json.dumps(ev.detail, ensure_ascii=True))
    return " ".join(fields)


def _print_tables(out: IO[str], summary: Summary, stats: dict[str, int]) -> None:
    d = summary.to_dict()
    out.write("\nSources\n")
    hdr = ("ADDRESS", "ATTEMPTS", "FAILED", "ROOT", "INVALID", "VALID", "ACCEPTED", "FIRST SEEN", "LAST SEEN")
    rows = [
        (
            s["address"],
            s["attempts"],
            s["failures"],
            s["root_attempts"],
            s["invalid_users"],
            s["valid_user_failures"],
            s["accepted"],
            s["first_seen"] or "-",
            s["last_seen"] or "-",
        )
        for s in d["sources"]
    ]
    _table(out, hdr, rows)
    out.write("\nUsers\n")
    uh = ("USER", "FAILED", "INVALID", "ACCEPTED", "SUDO/SU FAILED", "SOURCES")
    urows = [
        (
            json.dumps(u["user"], ensure_ascii=True),
            u["failures"],
            "yes" if u["invalid"] else "no",
            u["accepted"],
            u["sudo_failures"],
            len(u["sources"]),
        )
        for u in d["users"]
    ]
    _table(out, uh, urows)
    if summary.accepted:
        out.write("\nAccepted logins\n")
        for ev in summary.accepted:
            out.write("  " + _format_event(ev) + "\n")
    out.write("\nLines: " + ", ".join(f"{k}={v}" for k, v in stats.items()) + "\n")


def _table(out: IO[str], hdr: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    cells = [tuple(_safe(c) for c in r) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(hdr)]
    out.write("  ".join(h.ljust(w) for h, w in zip(hdr, widths)).rstrip() + "\n")
    for r in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


@register("authlog", "parse sshd/sudo/su records from auth logs or the journal", _authlog_configure)
def run_authlog(args: argparse.Namespace) -> int:
    files: list[str] = args.files
    if not files and not args.journal:
        _err("no input: give FILE..., - for stdin, or --journal")
        return 2
    # Open every file first, so an unreadable one fails before any output.
    opened: list[tuple[str, IO[bytes]]] = []
    try:
        for name in files:
            if name == "-":
                opened.append(("<stdin>", _stdin_stream()))
            else:
                opened.append((name, open_log(name)))
    except AuthLogError as e:
        for _, f in opened:
            f.close()
        _err(f"cannot read {e}")
        return 2

    if args.sources:
        return _print_sources(opened, args)
    parser = AuthLogParser(year=args.year)
    summary = Summary()
    events: list[dict[str, Any]] = []
    out = sys.stdout
    stream_human = not args.json and not args.summary_only

    def consume(evs: Iterator[AuthEvent]) -> None:
        for ev in evs:
            summary.add(ev)
            if args.summary_only:
                continue
            if args.json:
                events.append(ev.to_dict())
            elif stream_human:
                out.write(_format_event(ev) + "\n")

    try:
        for name, f in opened:
            with f:
                consume(parse_stream(f, name, parser))
        if args.journal:
            rc = _consume_journal(parser, consume)
            if rc:
                return rc
    except AuthLogError as e:
        _err(f"cannot read {e}")
        return 2

    stats = parser.stats.to_dict()
    if args.json:
        doc: dict[str, Any] = {"stats": stats}
        doc.update(summary.to_dict())
        if not args.summary_only:
            doc["events"] = events
        json.dump(doc, out, indent=1, sort_keys=False)
        out.write("\n")
    else:
        _print_tables(out, summary, stats)
    return 0


def _print_sources(opened: list[tuple[str, IO[bytes]]], args: argparse.Namespace) -> int:
    """``--sources``: text files through the fast counts, journal input through the parser; the
    same numbers either way (``Summary.counted_sources``)."""
    summary = Summary()
    lines = 0
    try:
        for name, f in opened:
            with f:
                lines += summarize_sources(f, name, summary)[1]
        if args.journal:
            parser = AuthLogParser(year=args.year)
            rc = _consume_journal(parser, summary.add_all)
            if rc:
                return rc
            lines += parser.stats.lines
    except AuthLogError as e:
        _err(f"cannot read {e}")
        return 2
    rows = summary.counted_sources()
    out = sys.stdout
    if args.json:
        json.dump({"lines": lines, "sources": rows}, out, indent=1)
        out.write("\n")
        return 0
    hdr = ("ADDRESS", "ATTEMPTS", "FAILED", "ROOT", "INVALID", "VALID", "INVALID USERS", "ACCEPTED", "MAX AUTH")
    fields = (
        "address", "attempts", "failures", "root_attempts", "invalid_user_failures", "valid_user_failures",
        "invalid_users", "accepted", "max_auth_exceeded",
    )  # fmt: skip
    _table(out, hdr, [tuple(r[k] for k in fields) for r in rows])
    out.write(f"\nLines: {lines}\n")
    return 0


def _stdin_stream() -> IO[bytes]:
    import gzip

    buf = sys.stdin.buffer
    peek = getattr(buf, "peek", None)
    if peek is not None and peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buf, mode="rb")  # type: ignore[return-value]
    return buf


def _consume_journal(parser: AuthLogParser, consume: Callable[[Iterator[AuthEvent]], object]) -> int:
    import io

    try:
        proc = subprocess.Popen(JOURNALCTL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, shell=False)
    except OSError as e:
        _err(f"cannot read the journal: cannot run journalctl: {e.strerror or e}")
        return 2
    assert proc.stdout is not None and proc.stderr is not None
    text = io.TextIOWrapper(proc.stdout, encoding="utf-8", errors="replace")
    consume(parser.parse_journal(text))
    err = proc.stderr.read().decode("utf-8", "replace").strip()
    rc = proc.wait()
    if rc != 0:
        reason = err.splitlines()[-1] if err else f"journalctl exited with status {rc}"
        _err(f"cannot read the journal: {reason}")
        return 2
    return 0


# --------------------------------------------------------------------------------------------
# sshward abuse report
# --------------------------------------------------------------------------------------------


def _abuse_configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="abuse_command", metavar="ACTION")
    sub.required = True
    r = sub.add_parser("report", help="report addresses to their network's abuse contact (RDAP)")
    r.add_argument("--config", default="/etc/sshward/abuse.json", help="config file (default %(default)s)")
    r.add_argument("--address", action="append", default=[], required=True, help="address to report (repeatable)")
    r.add_argument("--jail", default="", help="the fail2ban jail that banned it (informational)")
    r.add_argument("--log", action="append", default=[], metavar="FILE", help="read these logs instead of the config's")
    r.add_argument("--dry-run", action="store_true", help="write the reports for review, send nothing")
    r.add_argument("--json", action="store_true", help="print the results as JSON")


@register("abuse", "abuse reports to attackers' network owners (XARF v4 by mail)", _abuse_configure)
def run_abuse(args: argparse.Namespace) -> int:
    import syslog

    from . import abuse

    def warn(msg: str) -> None:
        sys.stderr.write("sshward abuse: warning: " + _safe(msg) + "\n")
        with contextlib.suppress(OSError):
            syslog.openlog("sshward-abuse", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
            syslog.syslog(syslog.LOG_WARNING, _safe(msg))

    try:
        cfg = abuse.load_config(args.config)
    except ValueError as e:
        sys.stderr.write("sshward abuse: " + _safe(e) + "\n")
        return 2
    if args.dry_run:
        cfg.dry_run = True
    lines = abuse.file_lines(args.log) if args.log else None
    rep = abuse.Reporter(cfg, lines=lines, warn=warn)
    results = [rep.report(a) for a in args.address]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            extra = f" to {r.recipient}" if r.recipient else ""
            print(_safe(f"{r.address}: {r.status}{extra}{': ' + r.reason if r.reason else ''}"))
    return 1 if any(r.status == "failed" for r in results) else 0
