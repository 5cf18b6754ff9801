"""Fleet-wide revocation of compromised SSH keys: which keys, where they are, the KRL, the report.

A key to revoke is given as a ``SHA256:`` fingerprint as sshd logs it, as a public key line (an
authorized_keys line, options allowed), as a file of such lines, or as lockdown's report.json.
Every spec is checked on the controller before any host is touched; errors name the argument.

On a host, the places sshd reads keys from come from ``sshd -T`` (``AuthorizedKeysFile`` with
its ``%h``/``%u``/``%U``/``%%`` tokens), not from a guess at ``~/.ssh/authorized_keys``. The keys
also go into an OpenSSH key revocation list (KRL, ``ssh-keygen -k``) named by ``RevokedKeys``,
so sshd refuses them even when a line is written back or sits in a file nobody knew of. The KRL
holds ``hash: SHA256:...`` entries (OpenSSH 7.9 and later), so a key known only by the
fingerprint in a log is revoked as surely as one whose public key we have. A plain-text record
of what sshward put in the KRL (itself a valid ``ssh-keygen -k`` spec) sits next to it: a KRL
is binary and ``ssh-keygen -Q`` only tests whole public keys, so the record is what tells an
unchanged run from a changed one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from . import keys
from .evidence import iso
from .evidence import md as _md

FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
DEFAULT_KRL = "/etc/ssh/sshward_revoked_keys"
RECORD_SUFFIX = ".spec"
RECORD_HEADER = "# Keys revoked by sshward (revoke-key.yml); the KRL next to it is built from it (ssh-keygen -k).\n"
_TOKEN_RE = re.compile(r"%(.)")


class KeySpecError(ValueError):
    """A key spec that cannot be used; the message names the argument and the fix."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


@dataclass(frozen=True)
class RevokedKey:
    fingerprint: str
    public_key: str = ""  # "keytype base64", empty when only the fingerprint is known
    comment: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Key specs (controller side, before any host is touched)


def is_fingerprint(text: str) -> bool:
    return bool(FINGERPRINT_RE.match(text))


def parse_key_line(line: str, argument: str, where: str = "") -> RevokedKey:
    """One spec: a SHA256 fingerprint or a public key line (authorized_keys options allowed)."""
    text = line.strip(" \t\r\n")
    label = f"{argument}{where}"
    if text.startswith(("SHA256:", "sha256:")):
        fp = text.split(None, 1)[0]
        if not is_fingerprint(fp):
            raise KeySpecError(
                label,
                f"{keys.printable(fp, 80)} is not a SHA256 fingerprint as sshd logs it "
                "(SHA256: followed by 43 base64 characters, e.g. from `ssh-keygen -lf key.pub`)",
            )
        rest = text[len(fp) :].strip()
        return RevokedKey(fp, "", rest, where.strip(" ()") or argument)
    if text.upper().startswith("MD5:"):
        raise KeySpecError(label, "MD5 fingerprints cannot be revoked in a KRL; give the SHA256 one or the public key")
    entry = keys.parse_authorized_line(text)
    if entry is None or entry.key is None or entry.error:
        reason = entry.error if entry is not None and entry.error else "empty"
        raise KeySpecError(
            label,
            f"{keys.printable(text, 60)!r} is neither a SHA256 fingerprint nor a public key line ({reason})",
        )
    blob = base64.b64encode(entry.key.blob).decode("ascii")
    source = where.strip(" ()") or argument
    return RevokedKey(entry.key.fingerprint, f"{entry.key.keytype} {blob}", entry.key.comment, source)


def parse_key_text(text: str, argument: str, source: str) -> list[RevokedKey]:
    """Every spec in a file's text (blank lines and # comments skipped)."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        out.append(parse_key_line(line, argument, f" ({source}:{lineno})"))
    return out


def keys_from_lockdown_report(report: Any, argument: str, source: str = "report.json") -> list[RevokedKey]:
    """The keys a lockdown report names: the keys the intruder logged in with and the keys quarantined."""
    if not isinstance(report, Mapping) or not isinstance(report.get("findings"), Mapping):
        raise KeySpecError(argument, f"{source} is not a lockdown report.json (no 'findings')")
    findings = report["findings"]
    out: list[RevokedKey] = []
    for item in list(findings.get("quarantined_keys") or []) + list(findings.get("intruder_keys") or []):
        if not isinstance(item, Mapping):
            continue
        raw = item.get("raw")
        if isinstance(raw, str) and raw.strip():
            try:
                out.append(parse_key_line(raw, argument, f" ({source})"))
                continue
            except KeySpecError:
                pass
        fp = item.get("fingerprint")
        if isinstance(fp, str):
            out.append(parse_key_line(fp, argument, f" ({source})"))
    if not out:
        raise KeySpecError(argument, f"{source} names no key (no intruder key, nothing quarantined)")
    return out


def merge_keys(found: Iterable[RevokedKey]) -> list[RevokedKey]:
    """One entry per fingerprint, keeping the public key when any source had it; input order."""
    merged: dict[str, RevokedKey] = {}
    for k in found:
        have = merged.get(k.fingerprint)
        if have is None or (not have.public_key and k.public_key):
            source = k.source if have is None else have.source
            merged[k.fingerprint] = RevokedKey(k.fingerprint, k.public_key, k.comment, source)
    return list(merged.values())


def collect_keys(
    specs: Sequence[str] = (),
    files: Sequence[tuple[str, str]] = (),
    reports: Sequence[tuple[str, Any]] = (),
    argument_names: tuple[str, str, str] = ("keys", "keys_file", "lockdown_report"),
) -> list[RevokedKey]:
    """All keys from the three inputs; KeySpecError when one is malformed or when none is given."""
    spec_arg, file_arg, report_arg = argument_names
    found: list[RevokedKey] = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, str):
            raise KeySpecError(f"{spec_arg}[{i}]", "must be a string (a SHA256 fingerprint or a public key line)")
        found.append(parse_key_line(spec, f"{spec_arg}[{i}]"))
    for name, text in files:
        found.extend(parse_key_text(text, file_arg, name))
    for name, data in reports:
        found.extend(keys_from_lockdown_report(data, report_arg, name))
    if not found:
        raise KeySpecError(
            spec_arg,
            f"no key to revoke: the list is empty. Give {spec_arg} (SHA256 fingerprints or public key lines), "
            f"{file_arg} (a file of them) or {report_arg} (lockdown's report.json)",
        )
    return merge_keys(found)


def clashes_with(revoked: Iterable[RevokedKey], protected: Iterable[str]) -> list[str]:
    prot = set(protected)
    return sorted({k.fingerprint for k in revoked} & prot)


# --------------------------------------------------------------------------------------------
# Where sshd reads keys from


def expand_tokens(pattern: str, user: str, uid: int, home: str) -> str:
    """AuthorizedKeysFile tokens (sshd_config(5) TOKENS): %% %h %U %u; a relative path is under the home."""

    def sub(m: re.Match[str]) -> str:
        token = m.group(1)
        if token == "%":
            return "%"
        if token == "h":
            return home
        if token == "u":
            return user
        if token == "U":
            return str(uid)
        raise ValueError(f"AuthorizedKeysFile {pattern!r}: unknown token %{token}")

    path = _TOKEN_RE.sub(sub, pattern)
    if not path.startswith("/"):
        path = os.path.join(home, path)
    return os.path.normpath(path)


def authorized_keys_patterns(effective: Mapping[str, Sequence[str]]) -> list[str]:
    """AuthorizedKeysFile from sshd -T (``none`` means no file at all)."""
    patterns: list[str] = []
    for line in effective.get("authorizedkeysfile", []):
        patterns.extend(p for p in line.split() if p.lower() != "none")
    return patterns


def authorized_keys_files(
    effective: Mapping[str, Sequence[str]], accounts: Iterable[tuple[str, int, str]]
) -> list[tuple[str, str]]:
    """(user, path) for every account and every AuthorizedKeysFile pattern (paths may not exist)."""
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    patterns = authorized_keys_patterns(effective)
    for user, uid, home in accounts:
        for pattern in patterns:
            item = (user, expand_tokens(pattern, user, uid, home))
            if item not in seen:
                seen.add(item)
                out.append(item)
    return out


def effective_value(effective: Mapping[str, Sequence[str]], keyword: str) -> str:
    """A single-valued keyword from sshd -T; empty when unset or ``none``."""
    values = effective.get(keyword, [])
    value = values[0].strip() if values else ""
    return "" if value.lower() == "none" else value


# --------------------------------------------------------------------------------------------
# What is on the host


@dataclass
class Finding:
    user: str
    file: str
    line: int
    fingerprint: str
    keytype: str
    comment: str
    options: list[str] = field(default_factory=list)
    file_mtime: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["comment"] = keys.printable(self.comment)
        out["file_mtime"] = iso(self.file_mtime)
        return out


def scan_file(
    user: str,
    path: str,
    data: bytes,
    mtime: float,
    revoke: Iterable[str],
    declared: Iterable[str],
    recent_since: float | None,
) -> tuple[list[Finding], list[Finding]]:
    """(entries holding a revoked key, recent entries nobody declared) of one authorized_keys file.

    sshd does not date a line, so "recent" is the file's mtime: every undeclared key of a file
    changed since ``recent_since`` is listed (it may be the one the intruder added).
    """
    wanted = set(revoke)
    known = set(declared)
    matches: list[Finding] = []
    undeclared: list[Finding] = []
    recent = recent_since is not None and mtime >= recent_since
    for entry in keys.iter_authorized_keys(data, path):
        if entry.key is None or entry.error:
            continue
        key = entry.key
        item = Finding(user, path, entry.lineno, key.fingerprint, key.keytype, key.comment, list(entry.options), mtime)
        if entry.key.fingerprint in wanted:
            matches.append(item)
        elif recent and entry.key.fingerprint not in known:
            undeclared.append(item)
    return matches, undeclared


def read_regular_nofollow(path: str, limit: int = keys.MAX_LINE * 4096) -> tuple[bytes, os.stat_result]:
    """Read a file without following a symlink planted in its place; OSError when not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path}: not a regular file")
        return fh.read(limit), st


def scan_host(
    files: Iterable[tuple[str, str]],
    revoke: Iterable[str],
    declared: Iterable[str],
    recent_since: float | None,
) -> tuple[list[Finding], list[Finding], list[str]]:
    """(matches, recent undeclared, files sshd would read but we could not) over every (user, path)."""
    revoke = list(revoke)
    declared = list(declared)
    matches: list[Finding] = []
    undeclared: list[Finding] = []
    unreadable: list[str] = []
    for user, path in files:
        try:
            data, st = read_regular_nofollow(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if os.path.lexists(path):
                unreadable.append(f"{path}: {exc.strerror or exc}")
            continue
        m, u = scan_file(user, path, data, st.st_mtime, revoke, declared, recent_since)
        matches.extend(m)
        undeclared.extend(u)
    return matches, undeclared, unreadable


def declared_fingerprints(specs: Iterable[str]) -> list[str]:
    """Fingerprints of the declared keys (public key lines or fingerprints); bad lines are skipped."""
    out = []
    for spec in specs:
        try:
            out.append(parse_key_line(spec, "declared_keys").fingerprint)
        except KeySpecError:
            continue
    return out


# --------------------------------------------------------------------------------------------
# The KRL


def krl_record_lines(revoked: Iterable[RevokedKey]) -> list[str]:
    """``ssh-keygen -k`` spec lines, one ``hash:`` per key, its comment kept printable."""
    out = []
    for k in revoked:
        comment = keys.printable(k.comment, 100).replace("#", "")
        out.append(f"hash: {k.fingerprint}" + (f" # {comment}" if comment else ""))
    return out


def parse_krl_record(text: str) -> list[str]:
    """Fingerprints listed as ``hash:`` lines in a KRL spec (the record next to the KRL)."""
    out = []
    for line in text.splitlines():
        body = line.split("#", 1)[0].strip()
        if body.lower().startswith("hash:"):
            fp = body[5:].strip()
            if is_fingerprint(fp):
                out.append(fp)
    return out


def plan_krl_record(current: str, revoked: Sequence[RevokedKey]) -> tuple[str, list[RevokedKey]]:
    """(the record's new text, the keys it gains). The record only grows: unrevoking is a separate act."""
    have = set(parse_krl_record(current))
    added = [k for k in revoked if k.fingerprint not in have]
    if not added:
        return current, []
    header = "" if current.strip() else RECORD_HEADER
    text = current if not current or current.endswith("\n") else current + "\n"
    return header + text + "".join(line + "\n" for line in krl_record_lines(added)), added


def krl_argv(ssh_keygen: str, krl: str, spec: str, update: bool) -> list[str]:
    """Build (``-k``) or extend (``-k -u``) a KRL from a spec file."""
    return [ssh_keygen, "-k", *(["-u"] if update else []), "-f", krl, spec]


def krl_test_argv(ssh_keygen: str, krl: str, pubkey_file: str) -> list[str]:
    return [ssh_keygen, "-Q", "-f", krl, pubkey_file]


def parse_krl_test(stdout: str) -> dict[str, bool]:
    """``ssh-keygen -Q`` output -> {file name: revoked}. Lines end in ``: REVOKED`` or ``: ok``."""
    out = {}
    for line in stdout.splitlines():
        head, sep, verdict = line.rpartition(": ")
        if not sep:
            continue
        name = head.split(" (", 1)[0]
        out[name] = verdict.strip() == "REVOKED"
    return out


# --------------------------------------------------------------------------------------------
# The fleet report (controller side)


NOT_DONE = "NOT DONE"


def build_fleet_report(
    revoked: Sequence[Mapping[str, Any]],
    hosts: Mapping[str, Mapping[str, Any]],
    check_mode: bool = False,
    generated_at: float | None = None,
) -> dict[str, Any]:
    """The fleet report: per host what was found and done, and every host not done with why.

    ``hosts`` maps an inventory name to the module's result (``done`` true) or to
    ``{"done": false, "reason": ...}``; a host missing from it never reaches this function:
    the caller passes every host of the play.
    """
    rows = []
    for name in sorted(hosts):
        r = hosts[name]
        done = bool(r.get("done"))
        rows.append(
            {
                "host": name,
                "status": ("checked" if check_mode else "done") if done else NOT_DONE,
                "reason": "" if done else str(r.get("reason") or "no result from this host"),
                "found": list(r.get("found") or []),
                "removed": list(r.get("removed") or []),
                "quarantined_earlier": list(r.get("quarantined_earlier") or []),
                "recent_undeclared": list(r.get("recent_undeclared") or []),
                "unreadable": list(r.get("unreadable") or []),
                "krl": dict(r.get("krl") or {}),
                "authorized_keys_file": list(r.get("authorized_keys_file") or []),
                "authorized_keys_command": str(r.get("authorized_keys_command") or ""),
            }
        )
    not_done = [r["host"] for r in rows if r["status"] == NOT_DONE]
    return {
        "kind": "sshward-revoke-key",
        "generated_at": iso(generated_at if generated_at is not None else time.time()),
        "check_mode": check_mode,
        "complete": not not_done,
        "keys": [dict(k) for k in revoked],
        "not_done": not_done,
        "hosts": rows,
        "places": where_found({"hosts": rows}),
    }


def where_found(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every place a key was found: in this run, and in earlier runs (from the quarantine records)."""
    out: list[dict[str, Any]] = []
    for h in report["hosts"]:
        seen = {(f.get("file"), f.get("line"), f.get("fingerprint")) for f in h["found"]}
        out += [{**f, "host": h["host"], "when": "this run"} for f in h["found"]]
        for q in h["quarantined_earlier"]:
            place = (q.get("file"), q.get("line"), q.get("fingerprint"))
            if place not in seen:  # a line put back and quarantined again is one place
                seen.add(place)
                out.append({**q, "host": h["host"], "when": f"earlier run, quarantined {q.get('time', '')}".strip()})
    return out


def render_fleet_markdown(report: Mapping[str, Any]) -> str:
    out = [
        "# SSH key revocation" + (" (CHECK MODE: nothing was changed)" if report["check_mode"] else ""),
        "",
        f"Generated {_md(report['generated_at'])}. "
        + (
            "Every host is done."
            if report["complete"]
            else f"**INCOMPLETE: {len(report['not_done'])} host(s) NOT DONE: "
            f"{', '.join(_md(h) for h in report['not_done'])}.** Run revoke-key.yml again when they are reachable."
        ),
        "",
        "## Keys",
        "",
    ]
    out += [
        f"- {_md(k.get('fingerprint'))} {_md(k.get('comment', ''))} (from {_md(k.get('source', ''))})"
        for k in report["keys"]
    ]
    out += ["", "## Hosts", "", "| host | status | found | removed | KRL | note |", "|---|---|---|---|---|---|"]
    for h in report["hosts"]:
        krl = h["krl"]
        added = len(krl.get("added") or [])
        krl_text = f"{_md(krl.get('path', ''))}: {f'+{added}' if added else 'already listed'}" if krl else ""
        note = h["reason"] if h["status"] == NOT_DONE else ""
        if h["authorized_keys_command"]:
            note += f"AuthorizedKeysCommand {h['authorized_keys_command']} is set: check what it returns"
        out.append(
            f"| {_md(h['host'])} | {'**NOT DONE**' if h['status'] == NOT_DONE else _md(h['status'])} "
            f"| {len(h['found'])} | {len(h['removed'])} | {krl_text} | {_md(note, 300)} |"
        )
    out += ["", "## Where the keys were found", ""]
    places = where_found(report)
    if places:
        out += ["| host | user | file:line | fingerprint | comment | found |", "|---|---|---|---|---|---|"]
        out += [
            f"| {_md(p['host'])} | {_md(p.get('user'))} | {_md(p.get('file'))}:{p.get('line')} "
            f"| {_md(p.get('fingerprint'))} | {_md(p.get('comment', ''))} | {_md(p['when'])} |"
            for p in places
        ]
    else:
        out.append("In no authorized_keys file of the hosts done.")
    out += ["", "## Recently changed files with keys no inventory variable declares", ""]
    recent = [(h["host"], f) for h in report["hosts"] for f in h["recent_undeclared"]]
    if recent:
        out += ["| host | user | file:line | fingerprint | comment | file changed |", "|---|---|---|---|---|---|"]
        out += [
            f"| {_md(host)} | {_md(f.get('user'))} | {_md(f.get('file'))}:{f.get('line')} "
            f"| {_md(f.get('fingerprint'))} | {_md(f.get('comment', ''))} | {_md(f.get('file_mtime', ''))} |"
            for host, f in recent
        ]
        out += ["", "Possible intruder persistence: check each one, then revoke it or declare it."]
    else:
        out.append("None.")
    unreadable = [(h["host"], u) for h in report["hosts"] for u in h["unreadable"]]
    if unreadable:
        out += ["", "## Files sshd reads that could not be checked", ""]
        out += [f"- {_md(host)}: {_md(u, 300)}" for host, u in unreadable]
    out.append("")
    return "\n".join(out)


def write_report_files(directory: str, report: Mapping[str, Any], stem: str = "revoke-report") -> tuple[str, str]:
    """report JSON and markdown, written atomically (0600) into ``directory``."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    paths = []
    for suffix, text in (
        (".json", json.dumps(report, indent=1, sort_keys=True, ensure_ascii=True) + "\n"),
        (".md", render_fleet_markdown(report)),
    ):
        path = os.path.join(directory, stem + suffix)
        tmp = path + ".tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        paths.append(path)
    return paths[0], paths[1]
