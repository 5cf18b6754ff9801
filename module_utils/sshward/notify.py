"""sshward-notify: login, sudo, ban and lockdown notifications that never delay a login.

Flow:

* The PAM step runs no sshward code: ``pam_exec.so ... log=SPOOL/capture
  /usr/bin/env -0 SSHWARD_CAPTURE=session`` appends the PAM environment (sshd's
  ``SSH_CONNECTION`` and ``SSH_AUTH_INFO_0``, the PAM items) to one file and the
  login goes on (``notify_pam`` holds the format and its parser). The resident
  ``sshward-notify watch`` (systemd service ``sshward-notify-watch``) notices the
  file within a second and delivers.
* The deliverer (``deliver_pending``: run by ``watch``, by ``flush`` from the
  retry timer, and by the process ``emit`` detaches) takes an
  ``flock`` on the spool, moves the capture file into ``incoming/`` and turns its
  records into events (``event_from_pam``: the event schema lives here only),
  enriches new events (the authorized_keys file:line and key comment from the
  auth log; "first login from this network"; "first sudo"), sends
  every event through every configured channel with a per-channel deadline,
  records per-channel success in the spool entry, removes an entry only when
  all channels have it, and merges a flood into one summary per channel.
* ``emit(event)`` / ``sshward-notify event`` queue generic events (ban,
  unban, lockdown, test, ...); ``sshward-notify test`` sends a test event
  synchronously through every channel and reports one line per channel.
* ``sshward-notify check [FILE]`` validates the config (or a candidate FILE,
  content only: Ansible's ``validate=``) and lists the channels, secrets masked.

Config (/etc/sshward/notify.json, root:root 0600; every key optional but ``channels``)::

    {
      "hostname": "web1.example.org",          # default: socket.gethostname()
      "spool_dir": "/var/spool/sshward/notify", "state_dir": "/var/lib/sshward/notify",
      "timeout": 10,                           # default per-channel deadline, seconds
      "rate_limit_per_minute": 20,             # per channel; beyond it: one summary message
      "network_prefix": {"ipv4": 24, "ipv6": 64},
      "sudo": "first",                         # first | all | none
      "max_spool_events": 10000, "max_age_days": 7,
      "authlog": {"journal": true, "files": ["/var/log/auth.log", "/var/log/secure"], "wait": 3},
      "channels": [
        {"type": "smtp", "name": "mail", "host": "smtp.example.org", "port": 587, "tls": "starttls",
         "username": "alerts", "password": "...", "from": "sshward@example.org",
         "to": ["ops@example.org"], "ca_file": "/etc/ssl/certs/ca.pem", "timeout": 10},
        {"type": "sendmail", "path": "/usr/sbin/sendmail", "from": "root", "to": ["root"]},
        {"type": "webhook", "format": "ntfy", "url": "https://ntfy.example.org/ssh-alerts",
         "headers": {"Authorization": "Bearer ..."}},
        {"type": "syslog", "facility": "authpriv", "ident": "sshward-notify"}
      ]
    }

Channel names default to the type and must be unique; ``webhook.format`` is
json | slack | ntfy; ``smtp.tls`` is starttls | tls | none (a password over
``none`` needs ``"allow_plaintext_auth": true``).

Standard library only, Python 3.9 compatible, no shell anywhere.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import fcntl
import ipaddress
import json
import os
import re
import secrets
import socket
import stat
import subprocess
import sys
import syslog
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from . import keys
from .authlog import KIND, SSHD_PROGRAMS, AuthEvent, AuthLogParser
from .notify_channels import (
    DEFAULT_TIMEOUT,
    KIND_RE,
    Channel,
    ChannelError,
    ConfigError,
    Event,
    build_channel,
    clean_fields,
    escape_text,
    summary_event,
)
from .notify_pam import (
    CAPTURE_FILE,
    FAILURE,
    INCOMING,
    PAM_VALUE_MAX,
    connection_endpoints,
    iter_auth_methods,
    scan_capture,
)

__all__ = [
    "DEFAULT_CONFIG",
    "AuthLogLookup",
    "ChannelError",
    "Config",
    "ConfigError",
    "DeliveryReport",
    "Event",
    "LoginDetails",
    "Spool",
    "check_config_permissions",
    "correlate_login",
    "default_authlog_lookup",
    "deliver_pending",
    "emit",
    "event_from_pam",
    "load_config",
    "main",
    "make_event",
    "read_key_comment",
    "send_test",
    "spawn_deliverer",
    "watch",
]

DEFAULT_CONFIG = "/etc/sshward/notify.json"
DEFAULT_SPOOL = "/var/spool/sshward/notify"
DEFAULT_STATE = "/var/lib/sshward/notify"
MAX_CONFIG_BYTES = 1 << 20
SPOOL_ENTRY_VERSION = 1
SAFE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

LogFunc = Callable[[str], None]
PermissionCheck = Callable[[str, os.stat_result], None]
#: sshd's auth-log records around a UNIX time (a login's capture time), oldest first.
AuthLogLookup = Callable[[float], Sequence[AuthEvent]]
Spawner = Callable[["Config"], None]


def _syslog_log(message: str) -> None:
    """Diagnostics of the notifier itself (never contains secrets: callers scrub)."""
    try:
        syslog.openlog("sshward-notify", syslog.LOG_PID, getattr(syslog, "LOG_AUTHPRIV", syslog.LOG_AUTH))
        syslog.syslog(syslog.LOG_WARNING, escape_text(message, 900))
    except Exception:
        pass


# --------------------------------------------------------------------------- config


@dataclass
class Config:
    """Parsed /etc/sshward/notify.json. Every path is configurable (tests use tmp dirs)."""

    path: str = DEFAULT_CONFIG
    spool_dir: str = DEFAULT_SPOOL
    state_dir: str = DEFAULT_STATE
    channels: list[Channel] = field(default_factory=list)
    hostname: str = ""
    timeout: float = DEFAULT_TIMEOUT
    rate_limit_per_minute: int = 20
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64
    sudo: str = "first"
    max_spool_events: int = 10000
    max_age_seconds: float = 7 * 86400.0
    authlog_journal: bool = True
    authlog_files: list[str] = field(default_factory=lambda: ["/var/log/auth.log", "/var/log/secure"])
    authlog_wait: float = 3.0

    @property
    def host(self) -> str:
        return self.hostname or socket.gethostname()


def check_config_permissions(path: str, st: os.stat_result) -> None:
    """Refuse a config that others could read or change (it holds SMTP passwords and tokens).

    It must be a regular file owned by root (or, for an unprivileged process,
    by the effective user, who gains nothing from it) with no group/other bits.
    """
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{path} is not a regular file")
    allowed = {0, os.geteuid()}
    if st.st_uid not in allowed:
        raise ConfigError(f"{path} must be owned by root (it is owned by uid {st.st_uid}): chown root:root {path}")
    if st.st_mode & 0o077:
        raise ConfigError(
            f"{path} is readable or writable by group/others (mode {stat.S_IMODE(st.st_mode):04o});"
            f" it holds secrets: chmod 0600 {path}"
        )


def _read_config_file(path: str, permission_check: PermissionCheck) -> Any:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symbolic link; refusing to follow it") from None
        raise ConfigError(f"cannot open {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        permission_check(path, os.fstat(handle.fileno()))
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        # no excerpt of the file: it holds secrets
        raise ConfigError(f"{path} is not valid UTF-8 JSON ({type(exc).__name__})") from None


def _num(data: Mapping[str, Any], key: str, default: float, lo: float, hi: float, integer: bool = False) -> Any:
    value = data.get(key, default)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and lo <= value <= hi
    if integer:
        ok = ok and isinstance(value, int)
    if not ok:
        raise ConfigError(
            "{!r} must be a{} number between {:g} and {:g}".format(key, "n integer" if integer else "", lo, hi)
        )
    return value


_TOP_KEYS = {
    "spool_dir",
    "state_dir",
    "hostname",
    "timeout",
    "rate_limit_per_minute",
    "network_prefix",
    "sudo",
    "max_spool_events",
    "max_age_days",
    "authlog",
    "channels",
}


def config_from_dict(data: Any, path: str = "<dict>") -> Config:
    """Validate a config document (schema: the module docstring)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError("{}: unknown key(s) {}".format(path, ", ".join(escape_text(k, 40) for k in unknown)))
    cfg = Config(path=path)
    for key in ("spool_dir", "state_dir"):
        value = data.get(key, getattr(cfg, key))
        if not isinstance(value, str) or not os.path.isabs(value):
            raise ConfigError(f"{path}: {key!r} must be an absolute path")
        setattr(cfg, key, value)
    hostname = data.get("hostname", "")
    if not isinstance(hostname, str):
        raise ConfigError(f"{path}: 'hostname' must be a string")
    cfg.hostname = hostname
    cfg.timeout = float(_num(data, "timeout", DEFAULT_TIMEOUT, 0.1, 600))
    cfg.rate_limit_per_minute = int(_num(data, "rate_limit_per_minute", 20, 2, 100000, integer=True))
    prefix = data.get("network_prefix", {})
    if not isinstance(prefix, dict) or set(prefix) - {"ipv4", "ipv6"}:
        raise ConfigError(f"{path}: 'network_prefix' must be an object with 'ipv4' and/or 'ipv6'")
    cfg.ipv4_prefix = int(_num(prefix, "ipv4", 24, 0, 32, integer=True))
    cfg.ipv6_prefix = int(_num(prefix, "ipv6", 64, 0, 128, integer=True))
    sudo_mode = data.get("sudo", "first")
    if sudo_mode not in ("first", "all", "none"):
        raise ConfigError(f"{path}: 'sudo' must be first, all or none")
    cfg.sudo = str(sudo_mode)
    cfg.max_spool_events = int(_num(data, "max_spool_events", 10000, 1, 10_000_000, integer=True))
    cfg.max_age_seconds = float(_num(data, "max_age_days", 7, 0.001, 3650)) * 86400.0
    authlog = data.get("authlog", {})
    if not isinstance(authlog, dict) or set(authlog) - {"journal", "files", "wait"}:
        raise ConfigError(f"{path}: 'authlog' must be an object with journal, files, wait")
    journal = authlog.get("journal", True)
    if not isinstance(journal, bool):
        raise ConfigError(f"{path}: authlog.journal must be true or false")
    cfg.authlog_journal = journal
    files = authlog.get("files", cfg.authlog_files)
    if not isinstance(files, list) or not all(isinstance(f, str) and os.path.isabs(f) for f in files):
        raise ConfigError(f"{path}: authlog.files must be a list of absolute paths")
    cfg.authlog_files = list(files)
    cfg.authlog_wait = float(_num(authlog, "wait", 3.0, 0, 60))
    channels = data.get("channels", [])
    if not isinstance(channels, list):
        raise ConfigError(f"{path}: 'channels' must be a list")
    built = [build_channel(c, i, cfg.timeout) for i, c in enumerate(channels)]
    names = [c.name for c in built]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError("{}: channel names must be unique (set 'name'): {}".format(path, ", ".join(dupes)))
    cfg.channels = built
    return cfg


def load_config(path: str = DEFAULT_CONFIG, *, permission_check: PermissionCheck = check_config_permissions) -> Config:
    """Read and validate the config; ``permission_check`` is injectable for tests."""
    return config_from_dict(_read_config_file(path, permission_check), path)


# --------------------------------------------------------------------------- files


def _ensure_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(errno.ENOTDIR, "not a directory", path)
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)


def atomic_write_json(path: str, data: Any) -> None:
    """Write JSON to a 0600 temp file in the same directory, fsync, rename over ``path``."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_json(path: str, default: Any) -> Any:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return default
    try:
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return default
            return json.loads(handle.read(16 << 20).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return default


class Spool:
    """A directory of JSON entries, one per event, named so that sorting is chronological."""

    LOCK = ".lock"

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def ensure(self) -> None:
        _ensure_dir(self.directory)

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.directory) if n.endswith(".json") and not n.startswith("."))
        except FileNotFoundError:
            return []

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def add(self, event: Event, name: str | None = None) -> str:
        self.ensure()
        name = name or f"{time.time_ns():020d}-{secrets.token_hex(6)}.json"
        entry = {
            "version": SPOOL_ENTRY_VERSION,
            "event": event.to_json(),
            "delivered": [],
            "attempts": 0,
            "prepared": False,
        }
        path = self.path(name)
        atomic_write_json(path, entry)
        return path

    def read(self, name: str) -> dict[str, Any] | None:
        data = _read_json(self.path(name), None)
        if not isinstance(data, dict) or not isinstance(data.get("event"), dict):
            return None
        if not isinstance(data.get("delivered"), list):
            data["delivered"] = []
        return data

    def write(self, name: str, entry: Mapping[str, Any]) -> None:
        atomic_write_json(self.path(name), dict(entry))

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(name))

    def quarantine(self, name: str) -> None:
        with contextlib.suppress(OSError):
            os.replace(self.path(name), self.path("." + name + ".bad"))

    @contextlib.contextmanager
    def lock(self) -> Iterator[bool]:
        """``flock`` the spool's lock file without waiting; yields False when another deliverer holds it."""
        self.ensure()
        fd = os.open(self.path(self.LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    yield False
                    return
                raise
            yield True
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- events


def make_event(
    kind: str, fields: Mapping[str, object] | None = None, *, host: str = "", now: float | None = None
) -> Event:
    """Validate and build an event (``kind`` like ``ban``; field names like ``address``)."""
    if not isinstance(kind, str) or not KIND_RE.match(kind):
        raise ValueError(f"event kind must match {KIND_RE.pattern}")
    stamp = time.time() if now is None else now
    return Event(
        kind=kind,
        fields=clean_fields(fields or {}),
        host=host or socket.gethostname(),
        time=stamp,
        id=f"{int(stamp)}-{secrets.token_hex(8)}",
    )


def _pam_value(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    if value is None or value == "":
        return None
    return value[:PAM_VALUE_MAX]


def _login_fields(env: Mapping[str, str], fields: dict[str, object]) -> None:
    """Address, port, auth method and key of an sshd session, from the variables sshd itself set."""
    endpoints = connection_endpoints(env)
    if endpoints is not None:
        fields["address"], fields["port"] = endpoints
        if fields.get("rhost") == endpoints[0]:
            del fields["rhost"]
    methods = list(iter_auth_methods(env.get("SSH_AUTH_INFO_0", "")))
    if methods:
        fields["method"] = ",".join(method for method, _detail in methods)[:PAM_VALUE_MAX]
    for method, detail in methods:
        key_type, _sep, blob = detail.partition(" ")
        fingerprint = key_fingerprint(blob) if method == "publickey" and blob else None
        if fingerprint:
            fields["key_type"] = key_type[:64]
            fields["fingerprint"] = fingerprint
            break


def event_from_pam(
    env: Mapping[str, str],
    *,
    failure: bool = False,
    host: str = "",
    now: float | None = None,
) -> Event | None:
    """Turn pam_exec's environment into an event, or None when this PAM call is not ours.

    Session mode handles only ``PAM_TYPE=open_session``; ``failure`` mode (from
    the auth stack, after the real auth module failed) handles ``PAM_TYPE=auth``.
    Values are kept raw here and escaped on output.
    """
    pam_type = env.get("PAM_TYPE", "")
    if failure:
        if pam_type != "auth":
            return None
    elif pam_type != "open_session":
        return None
    service = _pam_value(env, "PAM_SERVICE") or "unknown"
    fields: dict[str, object] = {
        "user": _pam_value(env, "PAM_USER"),
        "ruser": _pam_value(env, "PAM_RUSER"),
        "rhost": _pam_value(env, "PAM_RHOST"),
        "tty": _pam_value(env, "PAM_TTY"),
        "service": service,
    }
    if failure:
        if service in ("sudo", "sudo-i"):
            kind = "sudo_failure"
        elif service in ("su", "su-l"):
            kind = "su_failure"
        else:
            kind = "auth_failure"
    elif service in ("sudo", "sudo-i"):
        kind = "sudo"
    elif service in ("su", "su-l"):
        kind = "su"
    else:
        kind = "login"
        _login_fields(env, fields)
    return make_event(kind, fields, host=host, now=now)


# --------------------------------------------------------------------------- auth-log correlation


@dataclass
class LoginDetails:
    """What sshd logged for one accepted connection (sshward.authlog's trusted records only)."""

    pid: int | None
    method: str | None
    key_type: str | None = None
    fingerprint: str | None = None
    key_file: str | None = None
    key_line: int | None = None


def correlate_login(events: Sequence[AuthEvent], *, user: str | None, address: str, port: str) -> LoginDetails | None:
    """sshd's ``Accepted ...`` record for this connection (address and port), and its ``found at`` record.

    The events come from the auth-log parser, which takes the address from the
    end of the line and, in the journal, trusts only journald's own fields: a
    user's ``logger -t sshd`` line or a user name holding ``from 6.6.6.6`` cannot
    stand in for sshd. The user must equal PAM_USER.
    """
    accepted = None
    for event in events:
        if (
            event.kind == KIND.ACCEPTED
            and event.address == address
            and str(event.port) == port
            and (user is None or event.user == user)
        ):
            accepted = event  # the last one: a port is reused only after the earlier session
    if accepted is None:
        return None
    details = LoginDetails(
        pid=accepted.pid, method=accepted.method, key_type=accepted.key_type, fingerprint=accepted.fingerprint
    )
    if accepted.fingerprint and accepted.pid is not None:
        for event in events:
            if (
                event.kind == KIND.ACCEPTED_KEY
                and event.pid == accepted.pid
                and event.fingerprint == accepted.fingerprint
                and event.authorized_keys_file
            ):
                details.key_file, details.key_line = event.authorized_keys_file, event.authorized_keys_line
    return details


#: How far around the capture's time the journal is read for sshd's records of that login.
AUTHLOG_WINDOW = 120


def _journal_events(around: float) -> list[AuthEvent]:
    since, until = int(around) - AUTHLOG_WINDOW, int(around) + AUTHLOG_WINDOW
    argv = ["journalctl", "-o", "json", "--no-pager", f"--since=@{since}", f"--until=@{until}"]
    for index, program in enumerate(sorted(SSHD_PROGRAMS)):  # journalctl ORs matches joined by "+"
        argv += [f"_COMM={program}"] if index == 0 else ["+", f"_COMM={program}"]
    try:
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=20,
            check=False,
            env={"PATH": SAFE_PATH, "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return []
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    return list(AuthLogParser().parse_journal(lines))


def _file_events(files: Sequence[str], tail_bytes: int = 1 << 20) -> list[AuthEvent]:
    for path in files:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - tail_bytes))
            data = handle.read(tail_bytes).decode("utf-8", "replace")
        events = list(AuthLogParser().parse_lines(data.splitlines()))
        if events:
            return events
    return []


def default_authlog_lookup(
    around: float, *, journal: bool = True, files: Sequence[str] = ("/var/log/auth.log", "/var/log/secure")
) -> list[AuthEvent]:
    """sshd's records near the time ``around``: from the journal, else from the tail of auth.log."""
    events = _journal_events(around) if journal else []
    return events or _file_events(files)


def key_fingerprint(blob_b64: str) -> str | None:
    """The SHA256 fingerprint of a base64 key blob (as sshd logs it), None when it is not base64."""
    try:
        blob = base64.b64decode(blob_b64, validate=True)
    except ValueError:
        return None
    return keys.fingerprint_sha256(blob)


_KEY_RE = re.compile(r"((?:ssh|ecdsa|sk)-[A-Za-z0-9@.-]+)[ \t]+([A-Za-z0-9+/]+={0,3})(?=[ \t]|$)")


def read_key_comment(path: str, line_no: int, fingerprint: str, max_bytes: int = 1 << 20) -> str | None:
    """The comment of the key at ``path:line_no`` whose blob has ``fingerprint``.

    The file belongs to the user: opened without following a final symlink,
    without blocking on a FIFO, size-bounded, and only a line whose key blob
    really has the logged fingerprint is trusted.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        lines = handle.read(max_bytes).decode("utf-8", "replace").splitlines()
    if not 1 <= line_no <= len(lines):
        return None
    line = lines[line_no - 1]
    for match in _KEY_RE.finditer(line):
        if key_fingerprint(match.group(2)) == fingerprint:
            return line[match.end() :].strip()
    return None


# --------------------------------------------------------------------------- state


def network_of(address: str, v4_prefix: int, v6_prefix: int) -> str | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = v4_prefix if ip.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class State:
    """Small JSON maps under state_dir; only the (locked) deliverer writes them."""

    MAX_NETWORKS_PER_USER = 1024
    MAX_USERS = 10000

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _load(self, name: str) -> dict[str, Any]:
        data = _read_json(os.path.join(self.directory, name), {})
        return data if isinstance(data, dict) else {}

    def _save(self, name: str, data: Mapping[str, Any]) -> None:
        _ensure_dir(self.directory)
        atomic_write_json(os.path.join(self.directory, name), dict(data))

    def first_from_network(self, user: str, network: str, now: float) -> bool:
        data = self._load("networks.json")
        nets = data.get(user)
        if not isinstance(nets, dict):
            nets = {}
        first = network not in nets
        if first:
            nets[network] = now
            if len(nets) > self.MAX_NETWORKS_PER_USER:
                for old in sorted(nets, key=lambda k: nets[k])[: len(nets) - self.MAX_NETWORKS_PER_USER]:
                    del nets[old]
            data[user] = nets
            if len(data) <= self.MAX_USERS or user in data:
                self._save("networks.json", data)
        return first

    def first_sudo(self, user: str, now: float) -> bool:
        data = self._load("sudo_users.json")
        if user in data:
            return False
        if len(data) < self.MAX_USERS:
            data[user] = now
            self._save("sudo_users.json", data)
        return True

    def recent_sends(self, channel: str, now: float) -> list[float]:
        data = self._load("ratelimit.json")
        stamps = data.get(channel, [])
        if not isinstance(stamps, list):
            return []
        return [float(t) for t in stamps if isinstance(t, (int, float)) and now - 60.0 < t <= now + 5]

    def record_sends(self, sends: Mapping[str, list[float]], now: float) -> None:
        data = self._load("ratelimit.json")
        for channel, stamps in sends.items():
            old = data.get(channel, [])
            if not isinstance(old, list):
                old = []
            data[channel] = [t for t in [*old, *stamps] if isinstance(t, (int, float)) and now - 60.0 < t]
        self._save("ratelimit.json", data)


# --------------------------------------------------------------------------- delivery


@dataclass
class DeliveryReport:
    locked_out: bool = False
    sent: dict[str, int] = field(default_factory=dict)
    summaries: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, int] = field(default_factory=dict)
    removed: int = 0
    dropped: int = 0
    remaining: int = 0


#: A drained capture file: ``<time_ns>-<bytes already admitted>``.
_DRAINED_RE = re.compile(r"^([0-9]{20})-([0-9]{1,12})$")
#: A drained capture file nobody wrote to for this long has no pam_exec child left writing.
CAPTURE_IDLE = 60.0
#: Read at most this much of a capture file per run (the rest waits for the next run).
CAPTURE_READ_MAX = 16 << 20


class _Deliverer:
    def __init__(
        self,
        config: Config,
        authlog: AuthLogLookup,
        now: Callable[[], float],
        log: LogFunc,
        sleep: Callable[[float], None],
    ) -> None:
        self.config = config
        self.spool = Spool(config.spool_dir)
        self.state = State(config.state_dir)
        self.authlog = authlog
        self.now = now
        self.log = log
        self.sleep = sleep
        self.report = DeliveryReport()
        self._authlog_cache: tuple[float, list[AuthEvent]] | None = None
        self._authlog_deadline: float | None = None

    def admit_captures(self) -> int:
        """Turn the records of the PAM capture file into spool entries; how many records were admitted.

        The capture file moves into ``incoming/`` first (the path unit fires while it
        exists; pam_exec creates a new one at the next login). A pam_exec child that
        opened it just before may still append to the moved file, so a drained file
        is read from the offset kept in its name (``STAMP-OFFSET``) and deleted only
        once it has been idle for CAPTURE_IDLE seconds with nothing left to read.
        Spool entries are named after the record's place in the file, so a crash
        before the offset is saved re-admits the same entries, not duplicates.
        """
        spool_dir = self.config.spool_dir
        incoming = os.path.join(spool_dir, INCOMING)
        _ensure_dir(incoming)
        capture = os.path.join(spool_dir, CAPTURE_FILE)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(os.lstat(capture).st_mode):
                os.rename(capture, os.path.join(incoming, f"{time.time_ns():020d}-0"))
        admitted = 0
        for name in sorted(os.listdir(incoming)):
            source = os.path.join(incoming, name)
            match = _DRAINED_RE.match(name)
            if not match:
                self.log(f"unexpected file {escape_text(name, 80)} in {INCOMING}/ moved aside")
                with contextlib.suppress(OSError):
                    os.replace(source, self.spool.path("." + name + ".bad"))
                continue
            admitted += self._admit_file(source, match.group(1), int(match.group(2)))
        return admitted

    def _admit_file(self, source: str, stamp: str, offset: int) -> int:
        try:
            fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return 0
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            handle.seek(offset)
            data = handle.read(CAPTURE_READ_MAX)
        idle = self.now() - st.st_mtime >= CAPTURE_IDLE and offset + len(data) >= st.st_size
        scan = scan_capture(data, final=idle)
        if scan.garbled:
            # a torn or forged-looking record still means a login or a failure happened: say so
            self.log(f"{scan.garbled} unreadable PAM capture record(s) in {escape_text(source, 200)} skipped")
            unreadable = make_event(
                "capture_unreadable",
                {"records": str(scan.garbled), "detail": "PAM records could not be read; see the auth log"},
                host=self.config.host,
                now=st.st_mtime,
            )
            self.spool.add(unreadable, f"{stamp}-{offset + scan.consumed:012d}-unreadable.json")
        for record in scan.records:
            event = event_from_pam(
                record.env, failure=record.kind == FAILURE, host=self.config.host, now=record.time or st.st_mtime
            )
            if event is not None:
                # Named by the login's time (the spool sorts chronologically) and the record's place
                # in this file, so re-admitting after a crash rewrites the same entry.
                # OSError (disk full) propagates: the offset is not saved, the next run retries.
                when = f"{int(record.time * 1e9):020d}" if record.time else stamp
                self.spool.add(event, f"{when}-{stamp}-{offset + record.end:012d}.json")
        consumed = offset + scan.consumed
        if idle and consumed >= st.st_size:
            os.unlink(source)
        elif consumed != offset:
            os.rename(source, os.path.join(os.path.dirname(source), f"{stamp}-{consumed}"))
        return len(scan.records)

    # -- enrichment, once per entry, in the detached deliverer only
    def _sshd_records(self, around: float, *, fresh: bool = False) -> list[AuthEvent]:
        """sshd's auth-log records near ``around``: read once for a whole batch of logins."""
        cached = self._authlog_cache
        if fresh or cached is None or abs(cached[0] - around) > AUTHLOG_WINDOW / 2:
            try:
                cached = (around, list(self.authlog(around)))
            except Exception as exc:
                self.log(f"auth-log lookup failed: {escape_text(exc, 200)}")
                cached = (around, [])
            self._authlog_cache = cached
        return cached[1]

    def _enrich_login(self, event: Event) -> None:
        user = event.fields.get("user")
        address, port = event.fields.get("address"), event.fields.get("port")
        if address and port:
            details = correlate_login(self._sshd_records(event.time), user=user, address=address, port=port)
            if details is None and self._authlog_deadline is None:
                # journald may lag a little behind the login; one wait per run, not per login
                self._authlog_deadline = self.now() + self.config.authlog_wait
            while details is None and self.now() < (self._authlog_deadline or 0.0):
                self.sleep(0.5)
                records = self._sshd_records(event.time, fresh=True)
                details = correlate_login(records, user=user, address=address, port=port)
            if details is not None:
                if details.pid is not None:
                    event.fields["sshd_pid"] = str(details.pid)
                for name in ("method", "key_type", "fingerprint"):
                    if not event.fields.get(name) and getattr(details, name):
                        event.fields[name] = getattr(details, name)
                fingerprint = event.fields.get("fingerprint")
                if fingerprint and details.key_file and details.key_line and details.fingerprint == fingerprint:
                    event.fields["key_source"] = f"{details.key_file}:{details.key_line}"
                    comment = read_key_comment(details.key_file, details.key_line, fingerprint)
                    if comment:
                        event.fields["key_comment"] = comment[:512]
        address = event.fields.get("address") or event.fields.get("rhost") or ""
        network = network_of(address, self.config.ipv4_prefix, self.config.ipv6_prefix)
        if user and network:
            event.fields["network"] = network
            first = self.state.first_from_network(user, network, event.time)
            event.fields["first_from_network"] = "yes" if first else "no"

    def _prepare(self, name: str, entry: dict[str, Any]) -> Event | None:
        event = Event.from_json(entry["event"])
        if entry.get("prepared"):
            return event
        if event.kind == "login":
            self._enrich_login(event)
        elif event.kind == "sudo":
            user = event.fields.get("ruser") or event.fields.get("user") or ""
            if self.config.sudo == "none":
                return None
            if self.state.first_sudo(user, event.time):
                event.kind = "sudo_first"
            elif self.config.sudo == "first":
                return None
        entry["event"] = event.to_json()
        entry["prepared"] = True
        self.spool.write(name, entry)
        return event

    def run_batch(self, names: Sequence[str]) -> None:
        now = self.now()
        live: list[tuple[str, dict[str, Any], Event]] = []
        for name in names:
            entry = self.spool.read(name)
            if entry is None:
                if os.path.exists(self.spool.path(name)):
                    self.log(f"unreadable spool entry {escape_text(name, 80)} moved aside")
                    self.spool.quarantine(name)
                continue
            try:
                event = self._prepare(name, entry)
            except (ValueError, TypeError) as exc:
                self.log(f"invalid spool entry {escape_text(name, 80)} moved aside: {escape_text(exc, 200)}")
                self.spool.quarantine(name)
                continue
            if event is None:
                self.spool.remove(name)
                self.report.dropped += 1
                continue
            if now - event.time > self.config.max_age_seconds:
                self.log(f"dropping undeliverable event {escape_text(name, 80)} older than the spool's max age")
                self.spool.remove(name)
                self.report.dropped += 1
                continue
            live.append((name, entry, event))

        sends: dict[str, list[float]] = {}
        for channel in self.config.channels:
            sends[channel.name] = self._deliver_channel(channel, live, now)
        self.state.record_sends(sends, now)

        wanted = {c.name for c in self.config.channels}
        for name, entry, _event in live:
            if wanted <= set(entry["delivered"]):
                self.spool.remove(name)
                self.report.removed += 1
            else:
                entry["attempts"] = int(entry.get("attempts", 0)) + 1
                self.spool.write(name, entry)

    def _mark(self, channel: Channel, items: Sequence[tuple[str, dict[str, Any], Event]]) -> None:
        for name, entry, _event in items:
            if channel.name not in entry["delivered"]:
                entry["delivered"].append(channel.name)
            self.spool.write(name, entry)  # persisted at once: a crash must not cause a re-send

    def _deliver_channel(
        self, channel: Channel, live: Sequence[tuple[str, dict[str, Any], Event]], now: float
    ) -> list[float]:
        pending = [item for item in live if channel.name not in item[1]["delivered"]]
        stamps: list[float] = []
        if not pending:
            return stamps
        budget = self.config.rate_limit_per_minute - len(self.state.recent_sends(channel.name, now))
        if budget <= 0:
            self.report.deferred[channel.name] = len(pending)
            return stamps
        if len(pending) <= budget:
            singles, merged = list(pending), []
        else:
            singles, merged = list(pending[: budget - 1]), list(pending[budget - 1 :])
        try:
            for item in singles:
                channel.send(item[2])
                self._mark(channel, [item])
                stamps.append(now)
                self.report.sent[channel.name] = self.report.sent.get(channel.name, 0) + 1
            if merged:
                channel.send(summary_event([item[2] for item in merged], self.config.host, now))
                self._mark(channel, merged)
                stamps.append(now)
                self.report.summaries[channel.name] = self.report.summaries.get(channel.name, 0) + 1
        except ChannelError as exc:
            # the receiver is down or slow: stop using it in this run, retry on the next one
            self.report.failed[channel.name] = str(exc)
            self.log(f"channel {channel.name} failed, events stay spooled: {exc}")
        return stamps


def _has_captures(spool_dir: str) -> bool:
    return os.path.lexists(os.path.join(spool_dir, CAPTURE_FILE))


def deliver_pending(
    config: Config,
    *,
    authlog: AuthLogLookup | None = None,
    now: Callable[[], float] = time.time,
    log: LogFunc = _syslog_log,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Deliver every spooled event (the body of ``flush`` and of the detached deliverer).

    Returns at once with ``locked_out=True`` if another deliverer holds the lock:
    that one picks up new entries before it lets go.
    """
    if authlog is None:
        journal, files = config.authlog_journal, list(config.authlog_files)

        def authlog_default(around: float) -> Sequence[AuthEvent]:
            return default_authlog_lookup(around, journal=journal, files=files)

        authlog = authlog_default
    spool = Spool(config.spool_dir)
    deliverer = _Deliverer(config, authlog, now, log, sleep)
    seen: set[str] = set()
    for _round in range(3):
        with spool.lock() as acquired:
            if not acquired:
                deliverer.report.locked_out = True
                break
            while True:
                deliverer.admit_captures()
                names = [n for n in spool.names() if n not in seen]
                if not names:
                    break
                seen.update(names)
                deliverer.run_batch(names)
        # an entry spooled between our last scan and the unlock would wait for the timer: look again
        if not [n for n in spool.names() if n not in seen] and not _has_captures(config.spool_dir):
            break
    deliverer.report.remaining = len(spool.names())
    return deliverer.report


# --------------------------------------------------------------------------- the resident deliverer


#: How often the watcher looks for new work (one lstat and two small listdirs: nothing).
WATCH_POLL = 1.0
#: How long it lets a burst of logins gather, and a login finish, before delivering.
WATCH_SETTLE = 1.0


def pending_work(spool_dir: str, delivered: Collection[str]) -> bool:
    """True when a login was captured, a drained capture grew, or a spool entry is new.

    ``delivered`` are the spool entries that were there after the last delivery run:
    those wait for the retry timer, not for the next poll.
    """
    if _has_captures(spool_dir):
        return True
    incoming = os.path.join(spool_dir, INCOMING)
    try:
        drained = os.listdir(incoming)
    except FileNotFoundError:
        drained = []
    for name in drained:
        match = _DRAINED_RE.match(name)
        if match is None:
            return True  # admission moves it aside and says so
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(os.path.join(incoming, name)).st_size > int(match.group(2)):
                return True
    return any(name not in delivered for name in Spool(spool_dir).names())


def watch(
    config: Config,
    *,
    poll: float = WATCH_POLL,
    settle: float = WATCH_SETTLE,
    deliver: Callable[[Config], DeliveryReport] = deliver_pending,
    sleep: Callable[[float], None] = time.sleep,
    log: LogFunc = _syslog_log,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Deliver new logins and events as they are spooled, in this one long-running process.

    A systemd path unit would start a service for every login: systemd sets up a cgroup
    and namespaces for it while the same login waits on logind and systemd for its
    session scope. A resident loop costs a login nothing; the retry timer keeps
    retrying what a channel refused.
    """
    delivered: set[str] = set(Spool(config.spool_dir).names())
    while keep_going():
        try:
            if pending_work(config.spool_dir, delivered):
                sleep(settle)
                report = deliver(config)
                if report.locked_out:
                    # the timer's run holds the spool and takes what is new before it lets go
                    sleep(poll)
                delivered = set(Spool(config.spool_dir).names())
        except Exception as exc:  # a bad run must not end the watch; the next poll retries
            log(f"watch: delivery run failed: {escape_text(exc, 300)}")
            sleep(poll * 10)
        sleep(poll)


# --------------------------------------------------------------------------- spawning


def _package_location() -> tuple[str, str]:
    package_dir = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(package_dir), os.path.basename(package_dir)


# Run isolated (-I: no PYTHONPATH, no user site, no current directory on sys.path) and
# import this very copy of the package by its absolute location.
_DELIVERER_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); import importlib; "
    "sys.exit(importlib.import_module(sys.argv[2] + '.notify').main(sys.argv[3:]))"
)


def deliverer_argv(config: Config) -> list[str]:
    """The detached deliverer's command line (a list: no shell)."""
    path_entry, package = _package_location()
    python = sys.executable or "/usr/bin/python3"
    return [
        python,
        "-I",
        "-c",
        _DELIVERER_CODE,
        path_entry,
        package,
        "--config",
        os.path.abspath(config.path),
        "flush",
        "--quiet",
    ]


def spawn_deliverer(config: Config) -> None:
    """Double-fork a detached ``flush`` (new session, stdio on /dev/null, other fds closed, clean env).

    Returns as soon as the intermediate child has exited (microseconds): the
    caller (pam_exec) never waits for delivery.
    """
    argv = deliverer_argv(config)
    python = argv[0]
    env = {"PATH": SAFE_PATH, "LC_ALL": "C"}
    pid = os.fork()
    if pid == 0:  # first child
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            # grandchild: not a child of pam_exec, no controlling terminal
            os.chdir("/")
            os.umask(0o077)
            devnull = os.open(os.devnull, os.O_RDWR)
            for target in (0, 1, 2):
                os.dup2(devnull, target)
            os.closerange(3, 65536)
            os.execve(python, argv, env)
        finally:
            os._exit(127)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


# --------------------------------------------------------------------------- front doors


def _spool_event(config: Config, event: Event) -> str:
    spool = Spool(config.spool_dir)
    if len(spool.names()) >= config.max_spool_events:
        raise OSError(errno.ENOSPC, f"spool {config.spool_dir} holds {config.max_spool_events} events already")
    return spool.add(event)


def emit(
    event: Event,
    *,
    config: Config | None = None,
    config_path: str = DEFAULT_CONFIG,
    permission_check: PermissionCheck = check_config_permissions,
    spawn: Spawner | None = spawn_deliverer,
) -> str:
    """Queue ``event`` (from make_event) and start a detached deliverer; returns the spool path.

    Other roles call this for ``ban``, ``unban`` and ``lockdown`` events. Pass
    ``spawn=None`` to only queue (the timer's ``flush`` delivers).
    """
    if config is None:
        config = load_config(config_path, permission_check=permission_check)
    if not event.host:
        event.host = config.host
    path = _spool_event(config, event)
    if spawn is not None:
        spawn(config)
    return path


def send_test(config: Config, out: Callable[[str], None] = print) -> int:
    """Send a ``test`` event synchronously through every channel; one line each; 1 if any failed."""
    event = make_event("test", {"summary": "sshward-notify test message"}, host=config.host)
    if not config.channels:
        out(f"no channels configured in {config.path}")
        return 1
    status = 0
    for channel in config.channels:
        try:
            channel.send(event)
        except ChannelError as exc:
            out(f"{channel.name} FAILED: {exc}  [{channel.describe()}]")
            status = 1
        else:
            out(f"{channel.name} ok  [{channel.describe()}]")
    return status


def _parse_field(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("--field takes NAME=VALUE")
    return name, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sshward-notify", description="sshward login and incident notifier")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    event = sub.add_parser("event", help="queue a generic event (ban, unban, lockdown, test, ...)")
    event.add_argument("--kind", required=True)
    event.add_argument("--field", action="append", default=[], type=_parse_field, metavar="NAME=VALUE")
    event.add_argument("--no-spawn", action="store_true", help="only queue; the flush timer delivers")
    flush = sub.add_parser("flush", help="deliver the spool (systemd timer, and the detached deliverer)")
    flush.add_argument("--quiet", action="store_true")
    watch_cmd = sub.add_parser("watch", help="stay running and deliver each login as it is captured (systemd service)")
    test = sub.add_parser("test", help="send a test event through every channel now")
    check = sub.add_parser("check", help="validate the config (ownership, mode, schema); list the channels")
    check.add_argument(
        "file",
        nargs="?",
        help="a candidate config to validate instead of --config (Ansible's validate=); its"
        " ownership and mode are not checked, only its content",
    )
    for sp in (event, flush, watch_cmd, test, check):
        sp.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    permission_check: PermissionCheck = check_config_permissions,
    spawn: Spawner = spawn_deliverer,
) -> int:
    """CLI: ``sshward-notify [--config PATH] {event,flush,watch,test,check [FILE]}``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "check" and args.file:
            config = load_config(args.file, permission_check=lambda _path, _st: None)
        else:
            config = load_config(args.config, permission_check=permission_check)
        if args.command == "check":
            for channel in config.channels:
                print(f"{channel.name}: {channel.describe()}")
            print(f"{len(config.channels)} channel(s) configured")
            return 0
        if args.command == "event":
            path = emit(
                make_event(args.kind, dict(args.field), host=config.host),
                config=config,
                spawn=None if args.no_spawn else spawn,
            )
            print(f"queued {os.path.basename(path)}")
            return 0
        if args.command == "flush":
            report = deliver_pending(config)
            if not args.quiet:
                for name, error in sorted(report.failed.items()):
                    print(f"{name} FAILED: {error}", file=sys.stderr)
            return 1 if report.failed else 0
        if args.command == "test":
            return send_test(config)
        if args.command == "watch":
            watch(config)
            return 0
    except (ConfigError, ValueError, OSError) as exc:
        print(f"sshward-notify: {escape_text(exc, 500)}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
