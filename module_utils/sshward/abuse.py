"""Abuse reports to the network owner of an attacking address.

For each address to report (fail2ban's ban action, or ``sshward abuse report``):

1. **Eligibility**: the address must parse, must not be in the allowlist, and must
   be globally routable (private, loopback, link-local, shared, reserved,
   multicast and documentation ranges are never reported). ``allow_private``
   lifts the last rule for the test lab only; it logs a warning every time.
2. **Limits**: at most one report per address per ``period_seconds`` and at most
   ``daily_cap`` reports per UTC day (state in ``state_dir``, under ``flock``).
   Dry-run reports count too, so a review shows what would really go out.
3. **Contact**: RDAP ``{rdap_base_url}/ip/{address}``; the first entity (searched
   depth-first, nested entities included) whose ``roles`` holds ``abuse`` and whose
   vCard has an e-mail that passes a strict syntax check. Answers (and misses) are
   cached in ``cache_dir`` for ``cache_ttl_seconds``. RDAP text is hostile: bodies
   are capped in size, the JSON walk in depth and count, only http(s) redirects are
   followed, and nothing from the answer reaches a header except a validated address.
4. **Report**: the exact log excerpt for the address (lines whose *sshd-written*
   address equals it: 1.2.3.4 never selects 1.2.3.45, nor a user name holding it),
   as a readable text part plus an XARF v4 ``connection/login_attack`` JSON part.
   The MIME message is built with :mod:`email`; it is serialised, parsed back and
   refused unless its headers are exactly the ones set (encoded-word injection).
5. **Delivery**: dry-run (the default) writes ``<report_dir>/<id>.eml`` and
   ``<id>.json`` for review; otherwise the mail goes through SMTP settings, either
   the notifier's SMTP channel (``"smtp_channel": "mail"`` in the notifier config)
   or an ``"smtp"`` object of the same shape.

Config (``/etc/sshward/abuse.json``, root-only; every key optional)::

    {"enabled": false, "dry_run": true,
     "rdap_base_url": "https://rdap.org", "rdap_timeout": 10,
     "cache_dir": "/var/cache/sshward/abuse", "cache_ttl_seconds": 604800,
     "state_dir": "/var/lib/sshward/abuse", "report_dir": "/var/lib/sshward/abuse/reports",
     "period_seconds": 604800, "daily_cap": 20,
     "allowlist": ["192.0.2.0/24"], "allow_private": false,
     "reporter": {"org": "Example Ltd", "contact": "abuse-desk@example.org", "from": "sshward@example.org"},
     "smtp_channel": "mail", "notify_config": "/etc/sshward/notify.json",
     "smtp": {"host": "smtp.example.org", "port": 587, "tls": "starttls", ...},
     "logs": {"journal": true, "files": ["/var/log/auth.log"]}, "max_excerpt_lines": 200,
     "override_recipient": null}

Standard library only, Python 3.9 compatible, no shell anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import smtplib
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from typing import Any, Callable

from . import netaddr
from .authlog import AuthLogError, AuthLogParser, excerpt_for, iter_file_lines, open_log
from .notify_channels import ConfigError, SmtpChannel, escape_text, header_text

__all__ = [
    "AbuseConfig",
    "AbuseContact",
    "AbuseError",
    "ReportResult",
    "Reporter",
    "build_message",
    "build_xarf",
    "eligible",
    "find_abuse_contact",
    "load_config",
    "validate_email",
    "validate_xarf",
]

DEFAULT_CONFIG = "/etc/sshward/abuse.json"
XARF_VERSION = "4.0.0"
MAX_RDAP_BYTES = 1 << 20
MAX_RDAP_ENTITIES = 200
MAX_RDAP_DEPTH = 6
MAX_EXCERPT_LINE = 1000
# RFC 5321 sizes; a deliberately narrow character set (no quotes, no comments, no spaces).
_EMAIL_RX = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_UUID_RX = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_HEADERS = frozenset(
    ["subject", "from", "to", "date", "message-id", "mime-version", "content-type", "x-sshward-kind",
     "x-xarf", "auto-submitted"]
)  # fmt: skip


class AbuseError(Exception):
    """A report cannot be made; ``str()`` says why in one line."""


def validate_email(value: object) -> str | None:
    """The address if it is a plain, strict ``local@domain`` of sane size, else None."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    if v.lower().startswith("mailto:"):
        v = v[7:]
    if len(v) > 254 or "@" not in v or len(v.split("@", 1)[0]) > 64:
        return None
    return v if _EMAIL_RX.match(v) else None


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass
class AbuseConfig:
    enabled: bool = False
    dry_run: bool = True
    rdap_base_url: str = "https://rdap.org"
    rdap_timeout: float = 10.0
    cache_dir: str = "/var/cache/sshward/abuse"
    cache_ttl_seconds: int = 7 * 86400
    state_dir: str = "/var/lib/sshward/abuse"
    report_dir: str = "/var/lib/sshward/abuse/reports"
    period_seconds: int = 7 * 86400
    daily_cap: int = 20
    allowlist: list[str] = field(default_factory=list)
    allow_private: bool = False
    reporter_org: str = "sshward"
    reporter_contact: str = ""
    sender: str = ""
    smtp: dict[str, Any] | None = None
    smtp_channel: str | None = None
    notify_config: str = "/etc/sshward/notify.json"
    journal: bool = True
    log_files: list[str] = field(default_factory=lambda: ["/var/log/auth.log", "/var/log/secure"])
    max_excerpt_lines: int = 200
    override_recipient: str | None = None
    hostname: str = ""


def config_from_dict(data: Any, path: str = "<dict>") -> AbuseConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the abuse config must be a JSON object")
    c = AbuseConfig()
    known = {
        "enabled", "dry_run", "rdap_base_url", "rdap_timeout", "cache_dir", "cache_ttl_seconds", "state_dir",
        "report_dir", "period_seconds", "daily_cap", "allowlist", "allow_private", "reporter", "smtp",
        "smtp_channel", "notify_config", "logs", "max_excerpt_lines", "override_recipient", "hostname",
    }  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}")
    for key in ("enabled", "dry_run", "allow_private"):
        if key in data:
            if not isinstance(data[key], bool):
                raise ConfigError(f"{path}: '{key}' must be true or false")
            setattr(c, key, data[key])
    for key in ("rdap_base_url", "cache_dir", "state_dir", "report_dir", "notify_config", "hostname"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise ConfigError(f"{path}: '{key}' must be a non-empty string")
            setattr(c, key, data[key])
    scheme = urllib.parse.urlsplit(c.rdap_base_url).scheme
    if scheme not in ("http", "https"):
        raise ConfigError(f"{path}: 'rdap_base_url' must be an http(s) URL")
    for key, lo, hi in (
        ("rdap_timeout", 1, 120), ("cache_ttl_seconds", 0, 10**8), ("period_seconds", 0, 10**8),
        ("daily_cap", 0, 10**6), ("max_excerpt_lines", 1, 10**5),
    ):  # fmt: skip
        if key in data:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ConfigError(f"{path}: '{key}' must be a number from {lo} to {hi}")
            setattr(c, key, type(getattr(c, key))(v))
    if "allowlist" in data:
        al = data["allowlist"]
        if not isinstance(al, list) or not all(isinstance(a, str) for a in al):
            raise ConfigError(f"{path}: 'allowlist' must be a list of addresses/networks")
        try:
            netaddr.parse_networks(al, "allowlist")
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        c.allowlist = list(al)
    rep = data.get("reporter", {})
    if not isinstance(rep, dict):
        raise ConfigError(f"{path}: 'reporter' must be an object")
    c.reporter_org = str(rep.get("org", c.reporter_org))[:200]
    for key, attr in (("contact", "reporter_contact"), ("from", "sender")):
        if key in rep:
            addr = validate_email(rep[key])
            if addr is None:
                raise ConfigError(f"{path}: reporter.{key} must be a plain e-mail address")
            setattr(c, attr, addr)
    if not c.sender:
        c.sender = c.reporter_contact
    if "override_recipient" in data and data["override_recipient"] is not None:
        addr = validate_email(data["override_recipient"])
        if addr is None:
            raise ConfigError(f"{path}: 'override_recipient' must be a plain e-mail address")
        c.override_recipient = addr
    if "smtp" in data:
        if not isinstance(data["smtp"], dict):
            raise ConfigError(f"{path}: 'smtp' must be an object like a notifier smtp channel")
        c.smtp = dict(data["smtp"])
    if "smtp_channel" in data:
        if not isinstance(data["smtp_channel"], str):
            raise ConfigError(f"{path}: 'smtp_channel' must name a channel of the notifier config")
        c.smtp_channel = data["smtp_channel"]
    logs = data.get("logs", {})
    if not isinstance(logs, dict):
        raise ConfigError(f"{path}: 'logs' must be an object")
    if "journal" in logs:
        c.journal = bool(logs["journal"])
    if "files" in logs:
        files = logs["files"]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ConfigError(f"{path}: 'logs.files' must be a list of paths")
        c.log_files = list(files)
    if c.enabled and not c.dry_run:
        if not c.sender or not c.reporter_contact:
            raise ConfigError(f"{path}: sending reports needs reporter.contact (and reporter.from)")
        if c.smtp is None and c.smtp_channel is None:
            raise ConfigError(f"{path}: sending reports needs 'smtp' or 'smtp_channel'")
    return c


def load_config(path: str = DEFAULT_CONFIG) -> AbuseConfig:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return AbuseConfig()  # off
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from None
    return config_from_dict(data, path)


# --------------------------------------------------------------------------------------------
# Eligibility
# --------------------------------------------------------------------------------------------


def eligible(address: str, cfg: AbuseConfig, warn: Callable[[str], None] = lambda m: None) -> str | None:
    """None when ``address`` may be reported, else the reason it may not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    for n in netaddr.parse_networks(cfg.allowlist, "allowlist"):
        if netaddr.address_in(address, [n]):
            return f"allowlisted ({n})"
    if not ip.is_global or ip.is_multicast:
        if not cfg.allow_private:
            return "not a globally routable address"
        warn(
            f"reporting the non-global address {ip} because allow_private is set:"
            " this setting exists for the test lab only"
        )
    return None


# --------------------------------------------------------------------------------------------
# RDAP
# --------------------------------------------------------------------------------------------


@dataclass
class AbuseContact:
    email: str
    handle: str = ""
    name: str = ""
    source: str = ""  # the RDAP URL answered

    def to_dict(self) -> dict[str, str]:
        return {"email": self.email, "handle": self.handle, "name": self.name, "source": self.source}


class _SchemeCheck(urllib.request.HTTPRedirectHandler):
    """Follow redirects (rdap.org answers with one to the registry) only to http(s)."""

    max_redirections = 4

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise AbuseError(f"RDAP redirect to a non-http URL refused: {escape_text(newurl, 100)}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _http_get_json(url: str, timeout: float) -> Any:
    req = urllib.request.Request(url, headers={"Accept": "application/rdap+json, application/json"})
    opener = urllib.request.build_opener(_SchemeCheck())
    try:
        with opener.open(req, timeout=timeout) as resp:
            body = resp.read(MAX_RDAP_BYTES + 1)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise AbuseError(f"RDAP {escape_text(url, 120)}: HTTP {e.code}") from None
    except (OSError, ValueError) as e:
        raise AbuseError(f"RDAP {escape_text(url, 120)}: {escape_text(e, 200)}") from None
    if len(body) > MAX_RDAP_BYTES:
        raise AbuseError(f"RDAP {escape_text(url, 120)}: answer larger than {MAX_RDAP_BYTES} bytes")
    try:
        return json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        raise AbuseError(f"RDAP {escape_text(url, 120)}: not JSON") from None


def _vcard_props(entity: Mapping[str, Any], name: str) -> list[str]:
    vc = entity.get("vcardArray")
    if not (isinstance(vc, list) and len(vc) == 2 and isinstance(vc[1], list)):
        return []
    out = []
    for prop in vc[1][:100]:
        if isinstance(prop, list) and len(prop) >= 4 and prop[0] == name and isinstance(prop[3], str):
            out.append(prop[3])
    return out


def _walk_entities(obj: Any, depth: int = 0, seen: list[int] | None = None) -> Iterator[Mapping[str, Any]]:
    seen = seen if seen is not None else [0]
    if depth > MAX_RDAP_DEPTH or not isinstance(obj, dict):
        return
    ents = obj.get("entities")
    if not isinstance(ents, list):
        return
    for e in ents:
        if seen[0] >= MAX_RDAP_ENTITIES:
            return
        if isinstance(e, dict):
            seen[0] += 1
            yield e
            yield from _walk_entities(e, depth + 1, seen)


def contact_from_rdap(doc: Any, source: str = "") -> AbuseContact | None:
    """The abuse contact of an RDAP IP-network answer, or None. Hostile input: only a
    validated e-mail address is kept; name and handle are escaped single lines."""
    for ent in _walk_entities(doc):
        roles = ent.get("roles")
        if not (isinstance(roles, list) and "abuse" in roles):
            continue
        for raw in _vcard_props(ent, "email"):
            email = validate_email(raw)
            if email is None:
                continue
            names = _vcard_props(ent, "fn")
            handle = ent.get("handle")
            return AbuseContact(
                email=email,
                handle=escape_text(handle, 80) if isinstance(handle, str) else "",
                name=escape_text(names[0], 120) if names else "",
                source=source,
            )
    return None


class RdapClient:
    def __init__(
        self,
        base_url: str,
        cache_dir: str | None,
        ttl: int,
        timeout: float = 10.0,
        fetch: Callable[[str, float], Any] = _http_get_json,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache_dir = cache_dir
        self.ttl = ttl
        self.timeout = timeout
        self.fetch = fetch
        self.now = now
        self.queries = 0  # network lookups made (tests check the cache with it)

    def _cache_path(self, address: str) -> str | None:
        if not self.cache_dir:
            return None
        key = hashlib.sha256(f"{self.base_url}|{address}".encode()).hexdigest()[:32]
        return os.path.join(self.cache_dir, f"rdap-{key}.json")

    def lookup(self, address: str) -> AbuseContact | None:
        ip = ipaddress.ip_address(address)  # raises ValueError on garbage: never in a URL
        path = self._cache_path(str(ip))
        if path is not None:
            cached = _read_json(path)
            if isinstance(cached, dict) and self.now() - float(cached.get("time", 0)) < self.ttl:
                c = cached.get("contact")
                if c is None:
                    return None
                email = validate_email(c.get("email")) if isinstance(c, dict) else None
                if email is not None:
                    return AbuseContact(
                        email, str(c.get("handle", "")), str(c.get("name", "")), str(c.get("source", ""))
                    )
        url = f"{self.base_url}/ip/{urllib.parse.quote(str(ip), safe=':.')}"
        self.queries += 1
        doc = self.fetch(url, self.timeout)
        contact = contact_from_rdap(doc, url) if doc is not None else None
        if path is not None:
            _atomic_write_json(path, {"time": self.now(), "contact": contact.to_dict() if contact else None})
        return contact


def find_abuse_contact(address: str, cfg: AbuseConfig, **kw: Any) -> AbuseContact | None:
    return RdapClient(cfg.rdap_base_url, cfg.cache_dir, cfg.cache_ttl_seconds, cfg.rdap_timeout, **kw).lookup(address)


# --------------------------------------------------------------------------------------------
# State: per-source period and daily cap
# --------------------------------------------------------------------------------------------


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _atomic_write_json(path: str, data: Any) -> None:
    d = os.path.dirname(path) or "."
    os.makedirs(d, mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
    os.replace(tmp, path)


class RateState:
    """``{"sent": {address: epoch}, "days": {"YYYY-MM-DD": count}}`` under an exclusive flock."""

    def __init__(self, state_dir: str) -> None:
        self.dir = state_dir
        self.path = os.path.join(state_dir, "reports.json")
        self._lock_fd: int | None = None
        self.data: dict[str, Any] = {"sent": {}, "days": {}}

    def __enter__(self) -> RateState:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self._lock_fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        d = _read_json(self.path)
        if isinstance(d, dict) and isinstance(d.get("sent"), dict) and isinstance(d.get("days"), dict):
            self.data = d
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def blocked(self, address: str, now: float, period: int, cap: int) -> str | None:
        last = self.data["sent"].get(address)
        if isinstance(last, (int, float)) and now - last < period:
            return f"already reported {int(now - last)} s ago (one per {period} s)"
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        if int(self.data["days"].get(day, 0)) >= cap:
            return f"daily cap of {cap} reports reached"
        return None

    def record(self, address: str, now: float, period: int) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        days = self.data["days"]
        days[day] = int(days.get(day, 0)) + 1
        for d in sorted(days)[:-7]:
            del days[d]
        sent = self.data["sent"]
        sent[address] = now
        for a, t in list(sent.items()):
            if not isinstance(t, (int, float)) or now - t > max(period, 86400) * 2:
                del sent[a]
        _atomic_write_json(self.path, self.data)


# --------------------------------------------------------------------------------------------
# Excerpts from the host's logs
# --------------------------------------------------------------------------------------------


def readable_line(line: str) -> str:
    """A journal-JSON line rendered as ``TIME HOST PROG[PID]: MESSAGE``; text lines as they are.
    Controls are escaped and the length capped: the excerpt quotes attacker-chosen text."""
    s = line.strip()
    if s.startswith("{"):
        try:
            rec = json.loads(s)
        except ValueError:
            rec = None
        if isinstance(rec, dict):
            usec = rec.get("__REALTIME_TIMESTAMP")
            ts = ""
            if isinstance(usec, str) and usec.isdigit():
                ts = datetime.fromtimestamp(int(usec) / 1e6, timezone.utc).isoformat(timespec="microseconds")
            msg = rec.get("MESSAGE")
            if isinstance(msg, list):
                msg = bytes(b for b in msg if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
            s = f"{ts} {rec.get('_HOSTNAME', '')} {rec.get('_COMM', '')}[{rec.get('_PID', '')}]: {msg}"
    return escape_text(s, MAX_EXCERPT_LINE)


def journal_lines(since: str = "-7d", runner: Callable[[list[str]], bytes] | None = None) -> list[str]:
    argv = ["journalctl", "-q", "-o", "json", "--no-pager", "--since", since,
            "_COMM=sshd", "+", "_COMM=sshd-session", "+", "_COMM=sshd-auth"]  # fmt: skip
    if runner is None:
        try:
            out = subprocess.run(
                argv, capture_output=True, check=False, timeout=120, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
    else:
        out = runner(argv)
    return out.decode("utf-8", "replace").splitlines()


def file_lines(paths: Iterable[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        try:
            f = open_log(p)
        except AuthLogError:
            continue
        with f, contextlib.suppress(AuthLogError):
            out.extend(iter_file_lines(f, p))
    return out


def excerpt(address: str, lines: Iterable[str], limit: int) -> list[str]:
    """The last ``limit`` lines of ``address`` (exact sshd-written address), readable."""
    found = excerpt_for(address, lines, AuthLogParser())
    return [readable_line(x) for x in found[-limit:]]


# --------------------------------------------------------------------------------------------
# XARF and MIME
# --------------------------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_xarf(
    address: str,
    lines: Sequence[str],
    cfg: AbuseConfig,
    *,
    now: float,
    first_seen: float | None = None,
    last_seen: float | None = None,
    source_port: int | None = None,
    destination_port: int = 22,
    attempts: int | None = None,
    report_id: str | None = None,
) -> dict[str, Any]:
    payload = "\n".join(lines) + "\n"
    raw = payload.encode("utf-8")
    doc: dict[str, Any] = {
        "xarf_version": XARF_VERSION,
        "report_id": report_id or str(uuid.uuid4()),
        "timestamp": _iso(last_seen or now),
        "reporter": {"org": cfg.reporter_org[:200], "contact": cfg.reporter_contact, "type": "automated"},
        "source_identifier": address,
        "source_port": source_port if source_port else 1,
        "class": "connection",
        "type": "login_attack",
        "protocol": "tcp",
        "destination_port": destination_port,
        "first_seen": _iso(first_seen or now),
        "last_seen": _iso(last_seen or now),
        "evidence_source": "automated_filter",
        "description": (
            f"SSH brute-force login attempts from {address}"
            + (f": {attempts} failed attempts" if attempts is not None else "")
        )[:1000],
        "evidence": [
            {
                "content_type": "text/plain",
                "description": "sshd log lines of this source address (exact address match)",
                "payload": base64.b64encode(raw).decode("ascii"),
                "hash": "sha256:" + hashlib.sha256(raw).hexdigest(),
                "size": len(raw),
            }
        ],
        "tags": ["service:ssh", "attack:brute_force"],
        "confidence": 0.9,
    }
    return doc


def validate_xarf(doc: Any) -> list[str]:
    """Problems of an XARF v4 ``connection/login_attack`` report (empty list: valid). Checks what
    the v4 core and login_attack schemas require; stdlib only, so the target host can run it."""
    errs: list[str] = []
    if not isinstance(doc, dict):
        return ["report is not an object"]
    for k in ("xarf_version", "report_id", "timestamp", "reporter", "source_identifier", "class", "type",
              "protocol", "first_seen"):  # fmt: skip
        if k not in doc:
            errs.append(f"missing {k}")
    if not re.match(r"^4\.[0-9]+\.[0-9]+$", str(doc.get("xarf_version", ""))):
        errs.append("xarf_version must be 4.x.y")
    if not _UUID_RX.match(str(doc.get("report_id", ""))):
        errs.append("report_id must be a UUID v4")
    for k in ("timestamp", "first_seen", "last_seen"):
        if k in doc:
            try:
                datetime.fromisoformat(str(doc[k]).replace("Z", "+00:00"))
            except ValueError:
                errs.append(f"{k} is not a date-time")
    rep = doc.get("reporter")
    if isinstance(rep, dict):
        if set(rep) - {"org", "contact", "type"} or not {"org", "contact", "type"} <= set(rep):
            errs.append("reporter must have exactly org, contact, type")
        if validate_email(rep.get("contact")) is None:
            errs.append("reporter.contact must be an e-mail address")
        if rep.get("type") not in ("automated", "manual", "unknown"):
            errs.append("reporter.type must be automated, manual or unknown")
        if not isinstance(rep.get("org"), str) or len(rep.get("org", "")) > 200:
            errs.append("reporter.org must be a string of at most 200 characters")
    else:
        errs.append("reporter must be an object")
    if doc.get("class") != "connection" or doc.get("type") != "login_attack":
        errs.append("class/type must be connection/login_attack")
    if doc.get("protocol") not in ("tcp", "udp", "icmp", "sctp"):
        errs.append("protocol must be tcp, udp, icmp or sctp")
    try:
        ipaddress.ip_address(str(doc.get("source_identifier")))
        is_ip = True
    except ValueError:
        is_ip = False
    for k in ("source_port", "destination_port"):
        v = doc.get(k)
        if v is None:
            if k == "source_port" and is_ip:
                errs.append("source_port is required when source_identifier is an IP address")
        elif isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
            errs.append(f"{k} must be an integer 1-65535")
    if len(str(doc.get("description", ""))) > 1000:
        errs.append("description longer than 1000 characters")
    ev = doc.get("evidence", [])
    if not isinstance(ev, list) or len(ev) > 50:
        errs.append("evidence must be a list of at most 50 items")
    else:
        for i, item in enumerate(ev):
            if not isinstance(item, dict) or not {"content_type", "payload"} <= set(item):
                errs.append(f"evidence[{i}] needs content_type and payload")
                continue
            if set(item) - {"content_type", "description", "payload", "hash", "size"}:
                errs.append(f"evidence[{i}] has unknown keys")
            try:
                data = base64.b64decode(str(item["payload"]), validate=True)
            except ValueError:
                errs.append(f"evidence[{i}].payload is not base64")
                continue
            h = item.get("hash")
            if h is not None and (
                not re.match(r"^(md5|sha1|sha256|sha512):[a-fA-F0-9]+$", str(h))
                or (str(h).startswith("sha256:") and str(h)[7:] != hashlib.sha256(data).hexdigest())
            ):
                errs.append(f"evidence[{i}].hash does not match the payload")
            if "size" in item and item["size"] != len(data):
                errs.append(f"evidence[{i}].size does not match the payload")
    tags = doc.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > 20
        or not all(isinstance(t, str) and re.match(r"^[a-z0-9_]+:[a-z0-9_]+$", t) for t in tags)
    ):
        errs.append("tags must be at most 20 namespace:value strings")
    conf = doc.get("confidence", 1.0)
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0 <= conf <= 1:
        errs.append("confidence must be a number from 0 to 1")
    return errs


def render_text(
    address: str, lines: Sequence[str], contact: AbuseContact, cfg: AbuseConfig, xarf: Mapping[str, Any]
) -> str:
    host = escape_text(cfg.hostname or os.uname().nodename, 100)
    out = [
        "Hello,",
        "",
        f"the address {address}, which RDAP lists in your network"
        + (f" ({contact.handle})" if contact.handle else "")
        + f", made SSH brute-force login attempts against our server {host}.",
        f"First seen {xarf['first_seen']}, last seen {xarf['last_seen']}.",
        "",
        "The sshd log lines of that address follow (times as logged by the server):",
        "",
        *(f"  {x}" for x in lines),
        "",
        "A machine-readable XARF v4 report is attached (xarf.json).",
        "Please investigate; the host may be compromised.",
        "",
        f"-- {escape_text(cfg.reporter_org, 200)}" + (f" <{cfg.reporter_contact}>" if cfg.reporter_contact else ""),
        "   (sent automatically by sshward; replies reach a person)",
    ]
    return "\n".join(out) + "\n"


def build_message(
    address: str, lines: Sequence[str], contact: AbuseContact, cfg: AbuseConfig, xarf: Mapping[str, Any], now: float
) -> EmailMessage:
    """multipart/mixed: text/plain report + application/json XARF. Only validated addresses and
    escaped, encoded-word-defused text reach the headers; the result is parsed back and refused
    unless it carries exactly the headers set here, once each."""
    recipient = cfg.override_recipient or contact.email
    if validate_email(recipient) is None or validate_email(cfg.sender or cfg.reporter_contact or "") is None:
        raise AbuseError("sender and recipient must be plain e-mail addresses")
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["Subject"] = header_text(escape_text(f"[abuse] SSH brute force from {address}", 200))
    msg["From"] = cfg.sender or cfg.reporter_contact
    msg["To"] = recipient
    msg["Date"] = formatdate(now, localtime=False)
    msg["Message-ID"] = make_msgid(domain="sshward.invalid")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-XARF"] = "PLAIN"
    msg["X-Sshward-Kind"] = "abuse-report"
    msg.set_content(render_text(address, lines, contact, cfg, xarf))
    msg.add_attachment(
        json.dumps(xarf, indent=2, sort_keys=True).encode("utf-8"),
        maintype="application",
        subtype="json",
        filename="xarf.json",
    )
    parsed = BytesParser(policy=default_policy).parsebytes(msg.as_bytes())
    names = [n.lower() for n in parsed]
    if len(names) != len(set(names)) or set(names) != _HEADERS:
        raise AbuseError("refusing a report whose headers do not round-trip (possible header injection)")
    if [a.addr_spec for a in parsed["To"].addresses] != [recipient]:
        raise AbuseError("refusing a report whose recipient does not round-trip")
    return msg


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


@dataclass
class ReportResult:
    address: str
    status: str  # sent | written | skipped | failed
    reason: str = ""
    recipient: str = ""
    report_id: str = ""
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address, "status": self.status, "reason": self.reason,
            "recipient": self.recipient, "report_id": self.report_id, "files": self.files,
        }  # fmt: skip


def _smtp_channel(cfg: AbuseConfig) -> SmtpChannel:
    if cfg.smtp is not None:
        opts = dict(cfg.smtp)
    else:
        data = _read_json(cfg.notify_config)
        chans = data.get("channels") if isinstance(data, dict) else None
        opts = {}
        for i, ch in enumerate(chans or []):
            if (
                isinstance(ch, dict)
                and ch.get("type") == "smtp"
                and ch.get("name", f"smtp{i}") in (cfg.smtp_channel, "smtp")
            ):
                opts = dict(ch)
                if ch.get("name", "smtp") == cfg.smtp_channel or cfg.smtp_channel == "smtp":
                    break
        if not opts:
            raise AbuseError(f"no smtp channel named {cfg.smtp_channel!r} in {cfg.notify_config}")
    opts.setdefault("from", cfg.sender)
    opts["to"] = [cfg.sender]  # the channel's own recipients are not used; the abuse contact is
    opts.pop("name", None)
    opts.pop("type", None)
    return SmtpChannel("abuse-smtp", opts, 10.0)


def send_smtp(channel: SmtpChannel, msg: EmailMessage, sender: str, recipient: str) -> None:
    channel.deliver(msg, sender, [recipient])


class Reporter:
    """Makes the reports of one run: ``report(address)`` per banned/offending address."""

    def __init__(
        self,
        cfg: AbuseConfig,
        *,
        lines: Sequence[str] | None = None,
        rdap: RdapClient | None = None,
        sender: Callable[[EmailMessage, str], None] | None = None,
        now: Callable[[], float] = time.time,
        warn: Callable[[str], None] = lambda m: None,
    ) -> None:
        self.cfg = cfg
        self._lines = lines
        self.rdap = rdap or RdapClient(cfg.rdap_base_url, cfg.cache_dir, cfg.cache_ttl_seconds, cfg.rdap_timeout)
        self._sender = sender
        self.now = now
        self.warn = warn

    def lines(self) -> Sequence[str]:
        if self._lines is None:
            got: list[str] = []
            if self.cfg.journal:
                got += journal_lines()
            got += file_lines(self.cfg.log_files)
            self._lines = got
        return self._lines

    def _send(self, msg: EmailMessage, recipient: str) -> None:
        if self._sender is not None:
            self._sender(msg, recipient)
            return
        send_smtp(_smtp_channel(self.cfg), msg, self.cfg.sender, recipient)

    def report(self, address: str) -> ReportResult:
        cfg = self.cfg
        if not cfg.enabled:
            return ReportResult(address, "skipped", "abuse reports are disabled")
        why = eligible(address, cfg, self.warn)
        if why:
            return ReportResult(address, "skipped", why)
        address = str(ipaddress.ip_address(address))
        now = self.now()
        with RateState(cfg.state_dir) as state:
            blocked = state.blocked(address, now, cfg.period_seconds, cfg.daily_cap)
            if blocked:
                return ReportResult(address, "skipped", blocked)
            try:
                contact = self.rdap.lookup(address)
            except AbuseError as e:
                return ReportResult(address, "failed", str(e))
            if contact is None:
                return ReportResult(address, "skipped", "no abuse contact in RDAP")
            found = excerpt_for(address, self.lines(), AuthLogParser())
            if not found:
                return ReportResult(address, "skipped", "no log lines of this address to report")
            found = found[-cfg.max_excerpt_lines :]
            parser = AuthLogParser()
            stamps: list[float] = []
            ports: list[int] = []
            failures = 0
            for raw in found:
                ev = (
                    parser.parse_journal_record(json.loads(raw))
                    if raw.lstrip().startswith("{")
                    else parser.parse_text_line(raw)
                )
                if ev is None:
                    continue
                if ev.timestamp is not None:
                    stamps.append(ev.timestamp.timestamp())
                if ev.port:
                    ports.append(ev.port)
                if ev.kind.startswith("failed"):
                    failures += 1
            readable = [readable_line(x) for x in found]
            xarf = build_xarf(
                address, readable, cfg, now=now,
                first_seen=min(stamps) if stamps else None, last_seen=max(stamps) if stamps else None,
                source_port=ports[-1] if ports else None, attempts=failures,
            )  # fmt: skip
            problems = validate_xarf(xarf)
            if problems:
                return ReportResult(address, "failed", "invalid XARF: " + "; ".join(problems))
            try:
                msg = build_message(address, readable, contact, cfg, xarf, now)
            except AbuseError as e:
                return ReportResult(address, "failed", str(e))
            recipient = cfg.override_recipient or contact.email
            rid = xarf["report_id"]
            res = ReportResult(address, "written" if cfg.dry_run else "sent", "", recipient, rid)
            if cfg.dry_run:
                os.makedirs(cfg.report_dir, mode=0o700, exist_ok=True)
                stem = os.path.join(cfg.report_dir, f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}-{rid}")
                for suffix, data in ((".eml", msg.as_bytes()), (".json", json.dumps(xarf, indent=2).encode())):
                    fd = os.open(stem + suffix, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                    res.files.append(stem + suffix)
            else:
                try:
                    self._send(msg, recipient)
                except (OSError, smtplib.SMTPException, ConfigError, AbuseError) as e:
                    return ReportResult(address, "failed", f"SMTP: {escape_text(e, 300)}", recipient, rid)
            state.record(address, now, cfg.period_seconds)
            return res
