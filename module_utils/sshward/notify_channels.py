"""Notification events, their safe rendering, and the delivery channels.

Every field of an event is treated as hostile (user names, PAM_RHOST and key
comments are influenced by the remote side): text is escaped before it reaches
a mail header, a syslog line or an HTTP header, mail is built with
``email.message.EmailMessage``, JSON with ``json.dumps``, and no channel ever
uses a shell. Secrets (passwords, webhook URLs and header values) are scrubbed
from every error message a channel raises.

Standard library only, Python 3.9 compatible.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import syslog
import threading
import time
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

# smtplib, ssl, email and urllib.request are imported where a message is sent, not here:
# the PAM step imports this module to validate the config and spool an event, and those
# imports were most of its start-up time (it runs inside every login).
if TYPE_CHECKING:
    import smtplib
    import ssl
    import urllib.request
    from email.message import EmailMessage

__all__ = [
    "Channel",
    "ChannelError",
    "ConfigError",
    "Event",
    "SendmailChannel",
    "SmtpChannel",
    "SyslogChannel",
    "WebhookChannel",
    "build_channel",
    "escape_text",
    "render_subject",
    "render_text",
    "run_with_timeout",
    "scrub",
    "summary_event",
]

FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_FIELD_LEN = 1024
MAX_FIELDS = 64
DEFAULT_TIMEOUT = 10.0
SUBJECT_MAX = 180


class ConfigError(ValueError):
    """The notifier configuration is unusable; the message names the key and the fix."""


class ChannelError(Exception):
    """A channel failed to deliver; the message is already scrubbed of secrets."""


# --------------------------------------------------------------------------- text


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if ch == "\\":
        return "\\\\"
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _needs_escape(ch: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cf: bidi overrides, zero-width chars;
    # Zl/Zp: U+2028/U+2029 line and paragraph separators; Cs: lone surrogates.
    return ch == "\\" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")


def escape_text(value: object, limit: int = MAX_FIELD_LEN) -> str:
    """Return ``value`` as one printable line: controls and format chars escaped.

    Backslashes are doubled so the escaping is unambiguous; the result never
    contains CR, LF or any other line break, and is at most about ``limit``
    characters long (a truncation is marked with ``...``).
    """
    text = value if isinstance(value, str) else str(value)
    out = "".join(_escape_char(ch) if _needs_escape(ch) else ch for ch in text)
    if len(out) > limit:
        out = out[: max(0, limit - 3)] + "..."
    return out


def header_text(escaped: str) -> str:
    """Defuse RFC 2047 encoded-word openers in already escaped header text.

    The email package decodes encoded words while it refolds a header, so
    ``=?utf-8?q?=0D=0ABcc:_x@y?=`` would come out as a raw CRLF and a new
    ``Bcc:`` header (seen on CPython 3.11.7). ``=?`` is written ``=\\x3f``
    instead, consistent with the rest of the escaping.
    """
    return escaped.replace("=?", "=\\x3f")


def ascii_header_value(value: object, limit: int = 200) -> str:
    """An HTTP header value from raw text: escaped, encoded words defused, printable ASCII."""
    return ascii_only(header_text(escape_text(value, limit)))


def ascii_only(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Replace every secret (longest first) in ``text`` with ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------- events


@dataclass
class Event:
    """One notification. ``fields`` maps lower-case names to strings."""

    kind: str
    fields: dict[str, str] = field(default_factory=dict)
    host: str = ""
    time: float = 0.0
    id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fields": dict(self.fields),
            "host": self.host,
            "time": self.time,
            "id": self.id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        kind = data.get("kind")
        fields = data.get("fields", {})
        if not isinstance(kind, str) or not KIND_RE.match(kind):
            raise ValueError(f"event kind must match {KIND_RE.pattern}")
        if not isinstance(fields, dict):
            raise ValueError("event fields must be an object")
        return cls(
            kind=kind,
            fields=clean_fields(fields),
            host=str(data.get("host", "")),
            time=float(data.get("time", 0.0)),
            id=str(data.get("id", "")),
        )

    @property
    def iso_time(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time))


def clean_fields(fields: Mapping[str, object]) -> dict[str, str]:
    """Validate field names, stringify and bound values. Values stay raw (escaped on output)."""
    if len(fields) > MAX_FIELDS:
        raise ValueError(f"at most {MAX_FIELDS} fields per event")
    out: dict[str, str] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
            raise ValueError(f"field name {escape_text(name, 40)!r} must match {FIELD_NAME_RE.pattern}")
        if value is None:
            continue
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise ValueError(f"field {name}: value must be a string or a number")
        out[name] = text[:MAX_FIELD_LEN]
    return out


# Order in which well-known fields are shown; others follow alphabetically.
_FIELD_ORDER = (
    "user",
    "ruser",
    "address",
    "port",
    "rhost",
    "method",
    "key_type",
    "fingerprint",
    "key_comment",
    "key_source",
    "tty",
    "service",
    "first_from_network",
    "network",
    "reason",
    "count",
    "summary",
)


def _ordered_fields(fields: Mapping[str, str]) -> list[tuple[str, str]]:
    known = [(k, fields[k]) for k in _FIELD_ORDER if k in fields]
    rest = sorted((k, v) for k, v in fields.items() if k not in _FIELD_ORDER)
    return known + rest


_KIND_TITLES = {
    "login": "login",
    "sudo": "sudo",
    "sudo_first": "first sudo",
    "sudo_failure": "FAILED sudo",
    "su_failure": "FAILED su",
    "ban": "ban",
    "unban": "unban",
    "lockdown": "LOCKDOWN",
    "test": "test",
    "summary": "summary",
}


def render_subject(event: Event) -> str:
    """A one-line title: ``[sshward] login alice from 203.0.113.5 on web1``."""
    f = event.fields
    parts = ["[sshward]", _KIND_TITLES.get(event.kind, event.kind)]
    if event.kind == "summary":
        parts.append(f.get("summary", ""))
    else:
        if "user" in f:
            parts.append(f["user"])
        if "address" in f:
            parts.append("from " + f["address"])
        elif "rhost" in f:
            parts.append("from " + f["rhost"])
    if event.host:
        parts.append("on " + event.host)
    return escape_text(" ".join(p for p in parts if p), SUBJECT_MAX)


def render_text(event: Event) -> str:
    """Plain-text body: one ``name: value`` line per field, every value escaped."""
    lines = [render_subject(event), ""]
    lines.append(f"kind: {escape_text(event.kind)}")
    lines.append(f"host: {escape_text(event.host)}")
    lines.append(f"time: {event.iso_time}")
    lines.extend(f"{name}: {escape_text(value)}" for name, value in _ordered_fields(event.fields))
    if event.id:
        lines.append(f"id: {escape_text(event.id)}")
    return "\n".join(lines) + "\n"


def render_json(event: Event) -> dict[str, Any]:
    return {
        "source": "sshward",
        "kind": event.kind,
        "host": event.host,
        "time": event.iso_time,
        "id": event.id,
        "fields": dict(event.fields),
        "title": render_subject(event),
    }


def summary_event(events: Sequence[Event], host: str, now: float, listed: int = 20) -> Event:
    """Merge ``events`` into one ``summary`` event: "37 more events: 30 login, 7 sudo_failure"."""
    counts = Counter(e.kind for e in events)
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    fields: dict[str, str] = {
        "count": str(len(events)),
        "summary": f"{len(events)} more events: {by_kind}",
    }
    for i, ev in enumerate(events[:listed]):
        line = "{} {} {}".format(
            ev.iso_time, ev.kind, " ".join("{}={}".format(*kv) for kv in _ordered_fields(ev.fields))
        )
        fields[f"event_{i:02d}"] = line[:300]
    if len(events) > listed:
        fields["event_more"] = f"{len(events) - listed} not listed"
    digest = hashlib.sha256(",".join(e.id for e in events).encode("utf-8", "replace")).hexdigest()[:16]
    return Event(kind="summary", fields=fields, host=host, time=now, id="summary-" + digest)


# --------------------------------------------------------------------------- timeouts


def run_with_timeout(func: Callable[[], None], timeout: float) -> None:
    """Run ``func`` with an overall deadline (socket timeouts alone do not bound a trickling peer).

    On timeout the worker thread is abandoned (daemon) and ChannelError is raised.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            func()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=target, name="sshward-notify-channel", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ChannelError(f"timed out after {timeout:g}s")
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------- channels


def _str_opt(opts: Mapping[str, Any], key: str, ctx: str, default: str | None = None) -> str:
    value = opts.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{ctx}: {key!r} must be a non-empty string")
    return value


def _recipients(opts: Mapping[str, Any], ctx: str) -> list[str]:
    to = opts.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and a for a in to):
        raise ConfigError(f"{ctx}: 'to' must be a list of one or more addresses")
    for addr in [*to, opts.get("from", "")]:
        if isinstance(addr, str) and re.search(r"[\x00-\x1f\x7f,;<>\s]", addr):
            raise ConfigError(
                f"{ctx}: address {escape_text(addr, 80)!r} must be a bare address (no spaces, commas or controls)"
            )
    return list(to)


def _timeout(opts: Mapping[str, Any], default: float, ctx: str) -> float:
    value = opts.get("timeout", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600:
        raise ConfigError(f"{ctx}: 'timeout' must be a number of seconds in (0, 600]")
    return float(value)


class Channel:
    """Base class. ``send`` delivers one event or raises; ``describe`` is safe to print."""

    type = "base"

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout

    def describe(self) -> str:
        return self.type

    def secrets(self) -> list[str]:
        return []

    def _send(self, event: Event) -> None:
        raise NotImplementedError

    def send(self, event: Event) -> None:
        """Deliver with an overall deadline; any failure becomes a scrubbed ChannelError."""
        try:
            run_with_timeout(lambda: self._send(event), self.timeout)
        except ChannelError as exc:
            raise ChannelError(scrub(str(exc), self.secrets())) from None
        except Exception as exc:
            raise ChannelError(scrub(self._explain(exc), self.secrets())) from None

    def _explain(self, exc: Exception) -> str:
        if isinstance(exc, (socket.timeout, TimeoutError, subprocess.TimeoutExpired)):
            return f"timed out after {self.timeout:g}s"
        url_errors = sys.modules.get("urllib.error")
        if url_errors is not None and isinstance(exc, url_errors.HTTPError):
            return f"HTTP {exc.code}"
        if url_errors is not None and isinstance(exc, url_errors.URLError):
            reason = exc.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                return f"timed out after {self.timeout:g}s"
            return f"{escape_text(reason, 200)}"
        smtp = sys.modules.get("smtplib")
        if smtp is not None and isinstance(exc, smtp.SMTPResponseException):
            return f"SMTP {exc.smtp_code} {escape_text(exc.smtp_error, 200)}"
        return f"{type(exc).__name__}: {escape_text(exc, 200)}"


_MAIL_HEADERS = frozenset(
    ["subject", "from", "to", "date", "message-id", "x-sshward-kind", "mime-version", "content-type",
     "content-transfer-encoding"]
)  # fmt: skip


def build_mail(event: Event, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The MIME message. Header values are escaped single lines; EmailMessage folds them.

    As a last line of defence the serialised message is parsed back and refused
    unless it has exactly the headers set here.
    """
    from email import message_from_bytes
    from email.message import EmailMessage
    from email.policy import SMTP as SMTP_POLICY
    from email.policy import default as default_policy
    from email.utils import formatdate, make_msgid

    msg = EmailMessage(policy=SMTP_POLICY)
    msg["Subject"] = header_text(render_subject(event))
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(event.time or None, localtime=False)
    msg["Message-ID"] = make_msgid(domain="sshward.invalid")
    msg["X-Sshward-Kind"] = escape_text(event.kind, 40)
    msg.set_content(render_text(event))
    parsed = message_from_bytes(msg.as_bytes(), policy=default_policy)
    names = [name.lower() for name in parsed]
    if len(names) != len(_MAIL_HEADERS) or set(names) != _MAIL_HEADERS:
        raise ChannelError("refusing a mail whose headers do not round-trip (possible header injection)")
    return msg


class SmtpChannel(Channel):
    type = "smtp"

    def __init__(self, name: str, opts: Mapping[str, Any], default_timeout: float) -> None:
        ctx = f"channel {name}"
        super().__init__(name, _timeout(opts, default_timeout, ctx))
        self.host = _str_opt(opts, "host", ctx)
        port = opts.get("port")
        self.tls = opts.get("tls", "starttls")
        if self.tls not in ("starttls", "tls", "none"):
            raise ConfigError(f"{ctx}: 'tls' must be starttls, tls or none")
        if port is None:
            port = {"starttls": 587, "tls": 465, "none": 25}[self.tls]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{ctx}: 'port' must be an integer 1-65535")
        self.port = port
        self.username = opts.get("username")
        self.password = opts.get("password")
        if (self.username is None) != (self.password is None):
            raise ConfigError(f"{ctx}: set both 'username' and 'password', or neither")
        if self.username is not None and not (isinstance(self.username, str) and isinstance(self.password, str)):
            raise ConfigError(f"{ctx}: 'username' and 'password' must be strings")
        if self.username is not None and self.tls == "none" and not opts.get("allow_plaintext_auth", False):
            raise ConfigError(
                f"{ctx}: refusing to send a password without TLS; set 'tls' to starttls or tls "
                "(or 'allow_plaintext_auth': true for a loopback relay)"
            )
        self.sender = _str_opt(opts, "from", ctx)
        self.recipients = _recipients(opts, ctx)
        ca_file = opts.get("ca_file")
        if ca_file is not None and not isinstance(ca_file, str):
            raise ConfigError(f"{ctx}: 'ca_file' must be a path")
        self.ca_file = ca_file

    def describe(self) -> str:
        auth = f"{self.username}:***@" if self.username else ""
        plural = "" if len(self.recipients) == 1 else "s"
        return f"smtp {auth}{self.host}:{self.port}, tls={self.tls}, to {len(self.recipients)} recipient{plural}"

    def secrets(self) -> list[str]:
        return [self.password] if isinstance(self.password, str) else []

    def _context(self) -> ssl.SSLContext:
        import ssl

        return ssl.create_default_context(cafile=self.ca_file)

    def _send(self, event: Event) -> None:
        self.deliver(build_mail(event, self.sender, self.recipients), self.sender, self.recipients)

    def deliver(self, msg: EmailMessage, sender: str, recipients: list[str]) -> None:
        """Send a finished message with this channel's server, TLS mode and login (abuse reports too)."""
        import smtplib

        client: smtplib.SMTP
        if self.tls == "tls":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with client:
            client.ehlo()
            if self.tls == "starttls":
                client.starttls(context=self._context())
                client.ehlo()
            if isinstance(self.username, str) and isinstance(self.password, str):
                client.login(self.username, self.password)
            client.send_message(msg, sender, recipients)


class SendmailChannel(Channel):
    type = "sendmail"

    def __init__(self, name: str, opts: Mapping[str, Any], default_timeout: float) -> None:
        ctx = f"channel {name}"
        super().__init__(name, _timeout(opts, default_timeout, ctx))
        self.path = _str_opt(opts, "path", ctx, "/usr/sbin/sendmail")
        if not self.path.startswith("/"):
            raise ConfigError(f"{ctx}: 'path' must be absolute")
        self.sender = _str_opt(opts, "from", ctx, "root")
        self.recipients = _recipients(opts, ctx)

    def describe(self) -> str:
        plural = "" if len(self.recipients) == 1 else "s"
        return f"sendmail {self.path}, to {len(self.recipients)} recipient{plural}"

    def _send(self, event: Event) -> None:
        data = build_mail(event, self.sender, self.recipients).as_bytes()
        proc = subprocess.run(
            [self.path, "-t", "-oi"],
            input=data,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=self.timeout,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
            close_fds=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ChannelError(
                f"sendmail exited {proc.returncode}: " + escape_text(proc.stderr.decode("utf-8", "replace"), 200)
            )


def _no_redirect_handler() -> urllib.request.BaseHandler:
    """A handler that never follows redirects: they would carry the Authorization header elsewhere."""
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return _NoRedirect()


_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")

_NTFY_TAGS = {
    "login": "key",
    "sudo": "zap",
    "sudo_first": "zap",
    "sudo_failure": "warning",
    "su_failure": "warning",
    "ban": "no_entry",
    "unban": "white_check_mark",
    "lockdown": "rotating_light",
    "test": "test_tube",
    "summary": "bar_chart",
}


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn control characters: keep <!channel>, <url|label> out of user data.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class WebhookChannel(Channel):
    type = "webhook"

    def __init__(self, name: str, opts: Mapping[str, Any], default_timeout: float) -> None:
        ctx = f"channel {name}"
        super().__init__(name, _timeout(opts, default_timeout, ctx))
        self.url = _str_opt(opts, "url", ctx)
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{ctx}: 'url' must be an http:// or https:// URL")
        if re.search(r"[\x00-\x20\x7f]", self.url):
            raise ConfigError(f"{ctx}: 'url' must not contain spaces or control characters")
        self._parts = parts
        self.format = opts.get("format", "json")
        if self.format not in ("json", "slack", "ntfy"):
            raise ConfigError(f"{ctx}: 'format' must be json, slack or ntfy")
        headers = opts.get("headers", {})
        if not isinstance(headers, dict):
            raise ConfigError(f"{ctx}: 'headers' must be an object")
        self.headers: dict[str, str] = {}
        for key, value in headers.items():
            if not isinstance(key, str) or not _HEADER_NAME_RE.match(key):
                raise ConfigError(f"{ctx}: header name {escape_text(key, 64)!r} is not a valid token")
            if not isinstance(value, str) or re.search(r"[\x00-\x1f\x7f]", value):
                # the value is likely a secret: name the header only
                raise ConfigError(f"{ctx}: header {key} must be a string without control characters (no CR/LF)")
            self.headers[key] = value
        ca_file = opts.get("ca_file")
        if ca_file is not None and not isinstance(ca_file, str):
            raise ConfigError(f"{ctx}: 'ca_file' must be a path")
        self.ca_file = ca_file

    def describe(self) -> str:
        host = self._parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{self._parts.port}" if self._parts.port else ""
        path = "/***" if self._parts.path not in ("", "/") or self._parts.query else "/"
        hdrs = (", headers: " + ", ".join(f"{k}: ***" for k in sorted(self.headers))) if self.headers else ""
        return f"webhook {self.format} {self._parts.scheme}://{host}{port}{path}{hdrs}"

    def secrets(self) -> list[str]:
        out = [
            self.url,
            self._parts.path,
            self._parts.query,
            self._parts.password or "",
            self._parts.username or "",
        ]
        out.extend(self.headers.values())
        out.extend(seg for seg in self._parts.path.split("/") if len(seg) >= 8)
        return [s for s in out if s and s != "/"]

    def build_request(self, event: Event) -> urllib.request.Request:
        import urllib.request

        headers = {"User-Agent": "sshward-notify"}
        if self.format == "json":
            body = json.dumps(render_json(event)).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif self.format == "slack":
            body = json.dumps({"text": _slack_escape(render_text(event))}).encode("utf-8")
            headers["Content-Type"] = "application/json"
        else:
            body = render_text(event).encode("utf-8")
            headers["Content-Type"] = "text/plain; charset=utf-8"
            headers["Title"] = ascii_only(header_text(render_subject(event)))
            headers["Tags"] = ascii_header_value(_NTFY_TAGS.get(event.kind, "sshward"), 64)
            if event.kind in ("lockdown", "sudo_failure", "su_failure"):
                headers["Priority"] = "high"
        headers.update(self.headers)
        url = self.url
        if self._parts.username or self._parts.password:
            # urllib does not turn URL userinfo into Basic auth: do it explicitly.
            import base64

            cred = "{}:{}".format(
                urllib.parse.unquote(self._parts.username or ""),
                urllib.parse.unquote(self._parts.password or ""),
            )
            headers.setdefault("Authorization", "Basic " + base64.b64encode(cred.encode()).decode("ascii"))
            netloc = self._parts.hostname or ""
            if ":" in netloc:
                netloc = f"[{netloc}]"
            if self._parts.port:
                netloc += f":{self._parts.port}"
            url = urllib.parse.urlunsplit(self._parts._replace(netloc=netloc))
        for value in headers.values():
            if "\r" in value or "\n" in value:  # defence in depth; escape_text already guarantees it
                raise ChannelError("refusing a header value with a line break")
        return urllib.request.Request(url, data=body, headers=headers, method="POST")

    def _send(self, event: Event) -> None:
        import ssl
        import urllib.request

        request = self.build_request(event)
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({}), _no_redirect_handler()]
        if self._parts.scheme == "https":
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=self.ca_file)))
        opener = urllib.request.build_opener(*handlers)
        with opener.open(request, timeout=self.timeout) as response:
            response.read(65536)
            status = getattr(response, "status", 200)
            if not 200 <= status < 300:
                raise ChannelError(f"HTTP {status}")


_FACILITIES = {
    "auth": syslog.LOG_AUTH,
    "authpriv": getattr(syslog, "LOG_AUTHPRIV", syslog.LOG_AUTH),
    "daemon": syslog.LOG_DAEMON,
    "user": syslog.LOG_USER,
    "local0": syslog.LOG_LOCAL0,
    "local1": syslog.LOG_LOCAL1,
    "local2": syslog.LOG_LOCAL2,
    "local3": syslog.LOG_LOCAL3,
    "local4": syslog.LOG_LOCAL4,
    "local5": syslog.LOG_LOCAL5,
    "local6": syslog.LOG_LOCAL6,
    "local7": syslog.LOG_LOCAL7,
}


def syslog_line(event: Event) -> str:
    """``sshward kind=login host=web1 user="alice" ...``: one line, values quoted and escaped."""

    def q(value: str) -> str:
        return '"{}"'.format(escape_text(value, 300).replace('"', '\\"'))

    parts = [f"kind={escape_text(event.kind, 40)}", f"host={q(event.host)}", f"time={event.iso_time}"]
    parts.extend(f"{name}={q(value)}" for name, value in _ordered_fields(event.fields))
    return " ".join(parts)


class SyslogChannel(Channel):
    type = "syslog"

    def __init__(
        self,
        name: str,
        opts: Mapping[str, Any],
        default_timeout: float,
        syslog_func: Callable[[int, str], None] | None = None,
    ) -> None:
        ctx = f"channel {name}"
        super().__init__(name, _timeout(opts, default_timeout, ctx))
        facility = opts.get("facility", "authpriv")
        if facility not in _FACILITIES:
            raise ConfigError("{}: 'facility' must be one of {}".format(ctx, ", ".join(sorted(_FACILITIES))))
        self.facility_name = str(facility)
        self.facility = _FACILITIES[self.facility_name]
        ident = opts.get("ident", "sshward-notify")
        if not isinstance(ident, str) or not re.match(r"^[A-Za-z0-9_.-]{1,32}$", ident):
            raise ConfigError(f"{ctx}: 'ident' must be 1-32 letters, digits, '_', '.' or '-'")
        self.ident = ident
        self._syslog = syslog_func

    def describe(self) -> str:
        return f"syslog {self.facility_name}.warning"

    def _send(self, event: Event) -> None:
        line = syslog_line(event)
        if self._syslog is not None:
            self._syslog(self.facility | syslog.LOG_WARNING, line)
            return
        syslog.openlog(self.ident, syslog.LOG_PID, self.facility)
        syslog.syslog(self.facility | syslog.LOG_WARNING, line)


_CHANNEL_TYPES: dict[str, Callable[[str, Mapping[str, Any], float], Channel]] = {
    "smtp": SmtpChannel,
    "sendmail": SendmailChannel,
    "webhook": WebhookChannel,
    "syslog": SyslogChannel,
}


def build_channel(opts: Mapping[str, Any], index: int, default_timeout: float = DEFAULT_TIMEOUT) -> Channel:
    """Build one channel from its JSON object (``type`` selects the class)."""
    if not isinstance(opts, dict):
        raise ConfigError(f"channels[{index}] must be an object")
    kind = opts.get("type")
    if kind not in _CHANNEL_TYPES:
        raise ConfigError(f"channels[{index}]: 'type' must be one of {', '.join(sorted(_CHANNEL_TYPES))}")
    name = opts.get("name", kind)
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]{1,40}$", name):
        raise ConfigError(f"channels[{index}]: 'name' must be 1-40 letters, digits, '_', '.' or '-'")
    known = {
        "smtp": {
            "host",
            "port",
            "tls",
            "username",
            "password",
            "from",
            "to",
            "ca_file",
            "allow_plaintext_auth",
        },
        "sendmail": {"path", "from", "to"},
        "webhook": {"url", "format", "headers", "ca_file"},
        "syslog": {"facility", "ident"},
    }[str(kind)] | {"type", "name", "timeout"}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise ConfigError("channel {}: unknown key(s) {}".format(name, ", ".join(escape_text(k, 40) for k in unknown)))
    return _CHANNEL_TYPES[str(kind)](name, opts, default_timeout)
