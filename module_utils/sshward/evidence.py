"""Incident evidence: collect into a bundle directory, hash it, write the report.

A bundle is a directory ``<root>/<incident-id>/`` on the host:

    volatile/   sessions, processes, connections, utmp (collected first: they change fastest)
    commands/   output of read-only commands (iptables-save, nft list ruleset, sshd -T, journal)
    logs/       the SSH story: parsed auth-log summary and accepted logins
    keys/       every user's authorized_keys with fingerprints, and copies of the files
    files/      recently modified files under /etc, /home, /root, /tmp, /var/tmp, /dev/shm
    persistence/ copies of cron, systemd units, ld.so.preload, sshd config, PAM (with hashes)
    quarantine/ keys and executables taken out by the lockdown
    report.json, report.md, MANIFEST.sha256 (``sha256sum -c`` format)

Everything collected is attacker-influenced (file names, command lines, user names, key
comments). It is stored as JSON (lossless, escaped); the Markdown report escapes every value
with :func:`md` and nothing is ever passed through a shell.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import stat
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import authlog, keys, netaddr, sessions

MANIFEST = "MANIFEST.sha256"
RECENT_ROOTS = ("/etc", "/home", "/root", "/tmp", "/var/tmp", "/dev/shm")
PERSISTENCE_PATHS = (
    "/etc/crontab",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron",
    "/etc/systemd/system",
    "/run/systemd/transient",
    "/etc/ld.so.preload",
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d",
    "/etc/pam.d",
    "/etc/rc.local",
    "/etc/profile.d",
    "/etc/sudoers",
    "/etc/sudoers.d",
)
AUTH_LOGS = ("/var/log/auth.log", "/var/log/auth.log.1", "/var/log/secure")
MAX_COPY = 1 << 20
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#|<>~])")
_MD_LEADING = re.compile(r"^([-+=]|\d+(?=[.)]))")


class EvidenceError(Exception):
    pass


def md(value: Any, limit: int = 200) -> str:
    """A value made safe for one Markdown table cell or line: printable ASCII only
    (keys.printable), Markdown punctuation backslash-escaped, no line breaks."""
    text = _MD_SPECIAL.sub(r"\\\1", keys.printable(str(value), limit))
    m = _MD_LEADING.match(text)
    if m is None:
        return text
    if m.group(1)[0].isdigit():  # "1." / "1)" would start an ordered list
        end = m.end()
        return text[:end] + "\\" + text[end:]
    return "\\" + text


def iso(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def check_incident_id(incident_id: str) -> str:
    if not ID_RE.match(incident_id):
        raise EvidenceError(
            f"incident_id: {incident_id!r} must be 1-64 letters, digits, dots, dashes or underscores "
            "(it names a directory), e.g. 2026-11-22T0540-web1"
        )
    return incident_id


def bundle_path(root: str, incident_id: str) -> str:
    return os.path.join(root, check_incident_id(incident_id))


def _safe_join(bundle: str, rel: str) -> str:
    path = os.path.normpath(os.path.join(bundle, rel))
    if not path.startswith(os.path.normpath(bundle) + os.sep):
        raise EvidenceError(f"refusing to write outside the bundle: {rel!r}")
    return path


def write_json(bundle: str, rel: str, data: Any) -> str:
    path = _safe_join(bundle, rel)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, default=str, ensure_ascii=True)
    os.replace(tmp, path)
    return path


def write_bytes(bundle: str, rel: str, data: bytes) -> str:
    path = _safe_join(bundle, rel)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def read_json(bundle: str, rel: str, default: Any = None) -> Any:
    try:
        with open(_safe_join(bundle, rel), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return default


def read_nofollow(path: str, limit: int = MAX_COPY) -> bytes:
    """Read a regular file without following a symlink at its last component."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path}: not a regular file")
        return fh.read(limit)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Collectors


def collect_volatile(bundle: str, snap: sessions.Snapshot) -> dict[str, Any]:
    procs = [p.to_dict() for p in snap.processes.values()]
    sess = [s.to_dict() for s in snap.sessions]
    suspicious = [p for p in procs if p["suspicious"]]
    write_json(bundle, "volatile/sessions.json", {"taken_at": snap.taken_at, "sessions": sess})
    write_json(bundle, "volatile/processes.json", {"taken_at": snap.taken_at, "processes": procs})
    write_json(
        bundle,
        "volatile/connections.json",
        {"taken_at": snap.taken_at, "connections": [c.to_dict() for c in snap.connections]},
    )
    write_json(bundle, "volatile/utmp.json", [e.to_dict() for e in snap.utmp])
    write_json(bundle, "volatile/suspicious_processes.json", suspicious)
    return {"sessions": sess, "suspicious_processes": suspicious}


def run_commands(bundle: str, commands: Mapping[str, Sequence[str]], timeout: float = 60) -> dict[str, int]:
    """Run read-only commands (argv lists, never a shell) and keep their output; missing tools are noted."""
    results: dict[str, int] = {}
    for name, argv in commands.items():
        if not re.match(r"^[a-z0-9_.-]+$", name):
            raise EvidenceError(f"commands: {name!r} is not a plain file name")
        try:
            proc = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                env={"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                check=False,
            )
            out, rc = proc.stdout + (b"\n# stderr:\n" + proc.stderr if proc.stderr else b""), proc.returncode
        except (OSError, subprocess.TimeoutExpired) as exc:
            out, rc = f"# not run: {exc}\n".encode(), -1
        write_bytes(bundle, f"commands/{name}.txt", out)
        results[name] = rc
    return results


def login_story(events: Iterable[authlog.AuthEvent]) -> dict[str, Any]:
    summary = authlog.summarize(events)
    return summary.to_dict()


def collect_logs(bundle: str, journal_lines: Sequence[str] | None, paths: Sequence[str] = AUTH_LOGS) -> dict[str, Any]:
    """The SSH story from the journal (``journalctl -o json`` lines) and auth.log files."""
    parser = authlog.AuthLogParser()
    events: list[authlog.AuthEvent] = []
    sources = []
    if journal_lines:
        events.extend(parser.parse_journal(journal_lines))
        sources.append("journal")
    for path in paths:
        try:
            events.extend(authlog.parse_path(path, parser))
            sources.append(path)
        except authlog.AuthLogError:
            continue
    story = login_story(events)
    story["log_sources"] = sources
    story["stats"] = parser.stats.to_dict()
    write_json(bundle, "logs/ssh_story.json", story)
    return story


def user_homes() -> list[tuple[str, int, str]]:
    out = []
    for pw in pwd.getpwall():
        if pw.pw_dir and pw.pw_dir.startswith("/"):
            out.append((pw.pw_name, pw.pw_uid, pw.pw_dir))
    return out


def authorized_keys_files(homes: Iterable[tuple[str, int, str]] | None = None) -> list[tuple[str, str]]:
    """(user, path) of every existing authorized_keys / authorized_keys2 file."""
    out = []
    seen = set()
    for user, _uid, home in homes if homes is not None else user_homes():
        for name in ("authorized_keys", "authorized_keys2"):
            path = os.path.join(home, ".ssh", name)
            if path in seen:
                continue
            seen.add(path)
            if os.path.isfile(path) and not os.path.islink(path):
                out.append((user, path))
    return out


def key_entries(user: str, path: str, data: bytes) -> list[dict[str, Any]]:
    out = []
    for entry in keys.iter_authorized_keys(data, path):
        item: dict[str, Any] = {"user": user, "file": path, "line": entry.lineno, "options": list(entry.options)}
        if entry.key is not None:
            item.update(
                keytype=entry.key.keytype,
                fingerprint=entry.key.fingerprint,
                comment=entry.key.comment,
                bits=entry.key.bits,
            )
        else:
            item["error"] = entry.error
        out.append(item)
    return out


def collect_keys(bundle: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for user, path in authorized_keys_files():
        try:
            data = read_nofollow(path)
        except OSError:
            continue
        write_bytes(bundle, "keys/files" + path, data)
        entries.extend(key_entries(user, path, data))
    write_json(bundle, "keys/authorized_keys.json", entries)
    return entries


def collect_recent(
    bundle: str,
    roots: Sequence[str] = RECENT_ROOTS,
    since: float = 3 * 86400,
    limit: int = 5000,
    skip: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Files changed (mtime or ctime) within ``since`` seconds, newest first; symlinks are listed, never followed."""
    cutoff = time.time() - since
    found: list[dict[str, Any]] = []
    skip_n = tuple(os.path.normpath(s) for s in skip)
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = [d for d in dirnames if not os.path.join(dirpath, d).startswith(skip_n)]
            for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                changed = max(st.st_mtime, st.st_ctime)
                if changed >= cutoff:
                    found.append(
                        {
                            "path": path,
                            "mtime": st.st_mtime,
                            "ctime": st.st_ctime,
                            "size": st.st_size,
                            "mode": oct(st.st_mode),
                            "uid": st.st_uid,
                            "symlink": stat.S_ISLNK(st.st_mode),
                        }
                    )
    found.sort(key=lambda f: -max(f["mtime"], f["ctime"]))
    found = found[:limit]
    write_json(bundle, "files/recent.json", found)
    return found


def collect_persistence(bundle: str, paths: Sequence[str] = PERSISTENCE_PATHS) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for top in paths:
        walk: list[str] = []
        if os.path.isdir(top) and not os.path.islink(top):
            for dirpath, _dirs, files in os.walk(top, followlinks=False):
                walk.extend(os.path.join(dirpath, f) for f in sorted(files))
        elif os.path.lexists(top):
            walk.append(top)
        for path in walk:
            try:
                st = os.lstat(path)
            except OSError:
                continue
            item: dict[str, Any] = {"path": path, "mtime": st.st_mtime, "size": st.st_size, "mode": oct(st.st_mode)}
            if stat.S_ISLNK(st.st_mode):
                item["symlink_to"] = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                try:
                    data = read_nofollow(path)
                    item["sha256"] = hashlib.sha256(data).hexdigest()
                    write_bytes(bundle, "persistence/files" + path, data)
                except OSError as exc:
                    item["error"] = str(exc)
            items.append(item)
    write_json(bundle, "persistence/index.json", items)
    return items


# --------------------------------------------------------------------------------------------
# Intruder analysis


def intruder_keys(
    accepted: Iterable[Mapping[str, Any]],
    intruder_addresses: Iterable[str],
    admin_networks: Sequence[sessions.Network] = (),
) -> list[dict[str, Any]]:
    """Keys used by accepted publickey logins from the intruder addresses, one per fingerprint,
    with where sshd found them. A key also used from an admin address is flagged ``shared_with_admin``."""
    addrs = set(intruder_addresses)
    out: dict[str, dict[str, Any]] = {}
    admin_fps = {
        a.get("fingerprint")
        for a in accepted
        if a.get("address") and netaddr.address_in(str(a["address"]), admin_networks)
    }
    for a in accepted:
        fp = a.get("fingerprint")
        if a.get("method") != "publickey" or not fp or a.get("address") not in addrs:
            continue
        k = out.setdefault(
            fp,
            {"fingerprint": fp, "key_type": a.get("key_type"), "logins": [], "shared_with_admin": fp in admin_fps},
        )
        k["logins"].append(
            {
                "user": a.get("user"),
                "address": a.get("address"),
                "time": a.get("timestamp"),
                "file": a.get("authorized_keys_file"),
                "line": a.get("authorized_keys_line"),
            }
        )
    return list(out.values())


# --------------------------------------------------------------------------------------------
# Manifest


def write_manifest(bundle: str) -> str:
    lines = []
    for dirpath, dirnames, filenames in os.walk(bundle):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, bundle)
            if rel == MANIFEST or "\n" in rel or "\\" in rel:
                continue
            lines.append(f"{sha256_file(path)}  {rel}\n")
    path = os.path.join(bundle, MANIFEST)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as fh:
        fh.writelines(lines)
    return path


def verify_manifest(bundle: str) -> list[str]:
    """Problems found (empty when every file matches and nothing is missing or extra)."""
    problems = []
    listed = set()
    with open(os.path.join(bundle, MANIFEST)) as fh:
        for line in fh:
            digest, _, rel = line.rstrip("\n").partition("  ")
            listed.add(rel)
            try:
                if sha256_file(_safe_join(bundle, rel)) != digest:
                    problems.append(f"{rel}: hash differs")
            except OSError:
                problems.append(f"{rel}: missing")
    for dirpath, _dirs, filenames in os.walk(bundle):
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), bundle)
            if rel != MANIFEST and rel not in listed:
                problems.append(f"{rel}: not in the manifest")
    return problems


# --------------------------------------------------------------------------------------------
# Report


def build_report(
    bundle: str,
    incident_id: str,
    host: str,
    admin_networks: Sequence[str] = (),
    intruder_addresses: Sequence[str] = (),
    containment: Sequence[Mapping[str, Any]] = (),
    mode: str = "lockdown",
) -> dict[str, Any]:
    nets = netaddr.parse_networks(admin_networks, "admin_networks")
    sess = (read_json(bundle, "volatile/sessions.json", {}) or {}).get("sessions", [])
    suspicious = read_json(bundle, "volatile/suspicious_processes.json", []) or []
    story = read_json(bundle, "logs/ssh_story.json", {}) or {}
    key_list = read_json(bundle, "keys/authorized_keys.json", []) or []
    recent = read_json(bundle, "files/recent.json", []) or []
    persistence = read_json(bundle, "persistence/index.json", []) or []
    quarantined = read_json(bundle, "quarantine/keys.json", []) or []
    quarantined_exe = read_json(bundle, "quarantine/executables.json", []) or []

    foreign = [s for s in sess if not netaddr.address_in(s["source_address"], nets)] if nets else []
    addrs = sorted(set(intruder_addresses) | {s["source_address"] for s in foreign})
    accepted = story.get("accepted", [])
    by_fp: dict[str, list[dict[str, Any]]] = {}
    for k in key_list:
        if k.get("fingerprint"):
            by_fp.setdefault(k["fingerprint"], []).append(k)
    ikeys = intruder_keys(accepted, addrs, nets)
    for k in ikeys:
        k["authorized_keys"] = by_fp.get(k["fingerprint"], [])
    for q in quarantined:
        if not any(k["fingerprint"] == q.get("fingerprint") for k in ikeys):
            ikeys.append({"fingerprint": q.get("fingerprint"), "logins": [], "authorized_keys": [q]})
    persistence_recent = [p for p in persistence if recent and any(r["path"] == p["path"] for r in recent[:2000])]

    timeline: list[dict[str, Any]] = []
    for a in accepted:
        timeline.append(
            {
                "time": a.get("timestamp"),
                "what": "login",
                "detail": f"{a.get('user')} from {a.get('address')} by {a.get('method')} {a.get('fingerprint') or ''}",
            }
        )
    for s in sess:
        timeline.append(
            {
                "time": iso(s["start_time"]),
                "what": "session running",
                "detail": f"{s['user']} from {s['source_address']}:{s['source_port']} "
                f"pid {s['pid']} {','.join(s['ttys'])}",
            }
        )
    for p in persistence_recent:
        timeline.append({"time": iso(p["mtime"]), "what": "persistence point modified", "detail": p["path"]})
    for step in containment:
        timeline.append(
            {
                "time": step.get("time", ""),
                "what": f"containment: {step.get('step')}",
                "detail": step.get("summary", ""),
            }
        )
    timeline.sort(key=lambda t: str(t["time"] or ""))

    report = {
        "incident_id": incident_id,
        "host": host,
        "mode": mode,
        "generated_at": iso(time.time()),
        "admin_networks": list(admin_networks),
        "intruder_addresses": addrs,
        "findings": {
            "intruder_sessions": foreign,
            "intruder_keys": ikeys,
            "quarantined_keys": quarantined,
            "suspicious_processes": suspicious,
            "quarantined_executables": quarantined_exe,
            "persistence_recently_modified": persistence_recent,
            "recent_files": len(recent),
        },
        "containment": list(containment),
        "timeline": timeline,
    }
    write_json(bundle, "report.json", report)
    write_bytes(bundle, "report.md", render_markdown(report).encode("ascii"))
    return report


def render_markdown(r: Mapping[str, Any]) -> str:
    f = r["findings"]
    out = [
        f"# SSH incident {md(r['incident_id'])} on {md(r['host'])}",
        "",
        f"Mode: {md(r['mode'])}. Generated {md(r['generated_at'])}. "
        f"Admin networks: {', '.join(md(a) for a in r['admin_networks']) or 'none given'}. "
        f"Intruder addresses: {', '.join(md(a) for a in r['intruder_addresses']) or 'none found'}.",
        "",
        "## Findings",
        "",
        "### Sessions not from an admin address",
        "",
    ]
    if f["intruder_sessions"]:
        out += ["| user | source | tty | pid | started |", "|---|---|---|---|---|"]
        for s in f["intruder_sessions"]:
            out.append(
                f"| {md(s['user'])} | {md(s['source_address'])}:{s['source_port']} | {md(','.join(s['ttys']))} "
                f"| {s['pid']} | {md(iso(s['start_time']))} |"
            )
    else:
        out.append("None.")
    out += ["", "### Keys the intruder used", ""]
    if f["intruder_keys"]:
        out += ["| fingerprint | logins | authorized_keys | comment |", "|---|---|---|---|"]
        for k in f["intruder_keys"]:
            logins = "; ".join(
                f"{md(x.get('user'))} from {md(x.get('address'))} at {md(x.get('time'))}" for x in k["logins"]
            )
            where = "; ".join(f"{md(x.get('file'))}:{x.get('line')}" for x in (k.get("authorized_keys") or k["logins"]))
            comment = "; ".join(
                md(x.get("comment", ""))
                for x in k.get("authorized_keys", [])
                + [q for q in f["quarantined_keys"] if q.get("fingerprint") == k["fingerprint"]]
                if x.get("comment")
            )
            out.append(f"| {md(k['fingerprint'])} | {logins} | {where} | {comment} |")
    else:
        out.append("None found in the logs.")
    out += ["", "### Keys quarantined", ""]
    out += [
        f"- {md(q.get('fingerprint'))} from {md(q.get('file'))}:{q.get('line')} (user {md(q.get('user'))}, "
        f"comment {md(q.get('comment', ''))})"
        for q in f["quarantined_keys"]
    ] or ["None."]
    out += ["", "### Processes running from deleted files or world-writable places", ""]
    out += [
        f"- pid {p['pid']} user {md(p['user'])} exe {md(p['exe'])} ({md(', '.join(p['suspicious']))}) "
        f"cmdline {md(' '.join(p['cmdline']))}"
        for p in f["suspicious_processes"]
    ] or ["None."]
    if f["quarantined_executables"]:
        out += ["", "### Executables quarantined", ""]
        out += [
            f"- {md(q.get('path'))} sha256 {md(q.get('sha256'))} moved to {md(q.get('quarantined_as'))}"
            for q in f["quarantined_executables"]
        ]
    out += ["", "### Persistence points modified recently", ""]
    out += [f"- {md(p['path'])} {md(iso(p['mtime']))}" for p in f["persistence_recently_modified"]] or ["None."]
    out += ["", f"Recently modified files listed: {f['recent_files']} (files/recent.json).", "", "## Containment", ""]
    out += [
        f"{i}. **{md(s.get('step'))}**: {md(s.get('status'))}: {md(s.get('summary', ''), 500)}"
        for i, s in enumerate(r["containment"], 1)
    ] or ["None (read-only triage)."]
    out += ["", "## Timeline", "", "| time | what | detail |", "|---|---|---|"]
    out += [f"| {md(t['time'])} | {md(t['what'])} | {md(t['detail'], 300)} |" for t in r["timeline"]]
    out.append("")
    return "\n".join(out)
