"""fail2ban configuration of sshward's brute-force bans: jails, sshd filters and actions, as text.

One renderer for both front ends: the ``sshward_fail2ban`` module (the ``ssh_bans`` role) and the
pyinfra deploy (``deploys/bans.py``) write exactly the files :func:`config_files` returns, so a host
banned by either is configured byte for byte the same. Pure functions; nothing here runs a command.

Settings are role variables and may come from an inventory someone else edits: every value that
lands in a fail2ban file is checked (:class:`BanError` names the setting and the fix), so no value
can add a line, a section or an action to the configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import netaddr

HEADER = "# Managed by sshward (ssh_bans role / deploys/bans.py): local changes are overwritten.\n"
JAIL_FILE = "jail.d/sshward.local"
FIREWALLS = ("iptables", "nftables")
LOG_BACKENDS = ("auto", "systemd", "polling", "pyinotify")
AUTH_LOGS = ("/var/log/auth.log", "/var/log/secure")
ALWAYS_IGNORED = ("127.0.0.1/8", "::1")
JOURNAL_MATCH = "_SYSTEMD_UNIT=ssh.service"

# fail2ban's duration syntax: a number of seconds, or numbers with units (1h, 10m, 1w 2d).
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?\s*(?:[a-z]+)?\s*)+$", re.IGNORECASE)
_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")


class BanError(ValueError):
    """A setting fail2ban cannot be given safely; the message names the setting and the fix."""


# --------------------------------------------------------------------------------------- filters

_COMMON_FILTER = """\
# sshward: shared definitions of the sshward-sshd-* filters.
#
# Every pattern is anchored at BOTH ends of sshd's message. User names are chosen by the remote
# client and may hold text like "from 6.6.6.6 port 1 ssh2": the address counted is always the
# LAST "from <HOST> port N" before sshd's own fixed ending, which a client cannot write after.
# Only password and keyboard-interactive failures count ("none" is the client's probe; a
# publickey miss is the agent offering its keys in turn).

[INCLUDES]
before = common.conf

[DEFAULT]
_daemon = sshd(?:-session|-auth)?
__pref = (?:error: |fatal: )?
__pwmethod = (?:password|keyboard-interactive(?:/\\S+)?)
__tail = (?: \\[preauth\\])?
# sshd always logs with its pid; `logger -t sshd` by a local user does not: require the [pid].
__daemon_combs_re = (?:%(_daemon)s%(__pid_re)s:)

[Definition]
prefregex = ^<F-MLFID>%(__prefix_line)s</F-MLFID>%(__pref)s<F-CONTENT>.+</F-CONTENT>$
journalmatch = _SYSTEMD_UNIT=ssh.service
datepattern = {^LN-BEG}
maxlines = 1
"""

_NOT_ALLOWED = (
    "not allowed because (?:not listed in AllowUsers|listed in DenyUsers|not in any group|"
    "a group is listed in DenyGroups|none of user's groups are listed in AllowGroups)%(__tail)s$"
)

_ROOT_FILTER = f"""\
# sshward: password guesses for root, and root refused by AllowUsers/DenyUsers/groups.
[INCLUDES]
before = sshward-sshd-common.conf

[Definition]
failregex = ^Failed %(__pwmethod)s for root from <HOST> port \\d+ ssh2%(__tail)s$
            ^User root from <HOST> {_NOT_ALLOWED}
ignoreregex =
"""

_INVALID_FILTER = f"""\
# sshward: users that do not exist (one count per "Invalid user" connection and per password
# tried) and existing users refused by AllowUsers/DenyUsers/groups (sshd calls those invalid too);
# root is counted by sshward-sshd-root instead.
[INCLUDES]
before = sshward-sshd-common.conf

[Definition]
failregex = ^Invalid user .* from <HOST> port \\d+%(__tail)s$
            ^Failed %(__pwmethod)s for invalid user .* from <HOST> port \\d+ ssh2%(__tail)s$
            ^User (?!root from )\\S+ from <HOST> {_NOT_ALLOWED}
ignoreregex =
"""

_VALID_FILTER = """\
# sshward: wrong passwords for users that exist (not root: see sshward-sshd-root).
# An existing user name holds no spaces, so the user is \\S+ and cannot carry a forged tail.
[INCLUDES]
before = sshward-sshd-common.conf

[Definition]
failregex = ^Failed %(__pwmethod)s for (?!invalid user |root from )\\S+ from <HOST> port \\d+ ssh2%(__tail)s$
ignoreregex =
"""

FILTERS: dict[str, str] = {
    "sshward-sshd-common": _COMMON_FILTER,
    "sshward-sshd-root": _ROOT_FILTER,
    "sshward-sshd-invalid": _INVALID_FILTER,
    "sshward-sshd-valid": _VALID_FILTER,
}

# The lines the class jails count; the catch-all sshd jail ignores them, so a class threshold is
# never overtaken by the catch-all.
_CLASS_LINES = (
    r"^(?:error: )?(?:Failed (?:password|keyboard-interactive\S*) for |Invalid user |"
    r"User \S+ from \S+ not allowed because )"
)

# --------------------------------------------------------------------------------------- actions

NOTIFY_ACTION = """\
# Queue a sshward notification for every ban and unban. The notifier (sshward-notify) is
# installed by the ssh_notify role; without it this action does nothing.
# fail2ban substitutes <ip> (an address it parsed), <name> (the jail), <failures> and
# <bantime> (numbers): no log text reaches this command line.
[Definition]
actionstart =
actionstop =
actioncheck =
actionban = if [ -x <notify> ]; then <notify> event --kind ban --field address=<ip> --field jail=<name> \
--field failures=<failures> --field bantime=<bantime>; fi
actionunban = if [ -x <notify> ]; then <notify> event --kind unban --field address=<ip> --field jail=<name>; fi

[Init]
notify = /usr/local/sbin/sshward-notify
"""

ABUSE_REPORTER = "/usr/local/sbin/sshward-abuse-report"

ABUSE_ACTION = f"""\
# Report a banned address to its network's abuse contact (sshward abuse; off unless the
# config says enabled). Detached, so a slow RDAP server or mail relay never delays a ban.
[Definition]
actionstart =
actionstop =
actioncheck =
actionban = if [ -x <report> ]; then setsid -f <report> --address <ip> --jail <name> </dev/null >/dev/null 2>&1; fi
actionunban =

[Init]
report = {ABUSE_REPORTER}
"""

ACTIONS: dict[str, str] = {"sshward-notify": NOTIFY_ACTION, "sshward-abuse": ABUSE_ACTION}

# ----------------------------------------------------------------------------------------- jails


@dataclass(frozen=True)
class BanSettings:
    """The ssh_bans role variables (without their prefix) that shape fail2ban's configuration."""

    firewall: str = "iptables"
    log_backend: str = "systemd"
    logpath: str = "/var/log/auth.log"
    trusted_networks: tuple[str, ...] = ()
    ignoreip_extra: tuple[str, ...] = ()
    admin_addresses: tuple[str, ...] = ()
    ports: tuple[int, ...] = (22,)
    bantime: str = "1h"
    findtime: str = "10m"
    bantime_increment: bool = True
    bantime_factor: str = "2"
    bantime_maxtime: str = "1w"
    maxretry: int = 10
    root_maxretry: int = 2
    invalid_maxretry: int = 5
    valid_maxretry: int = 8
    recidive_enabled: bool = True
    recidive_bantime: str = "1w"
    recidive_findtime: str = "1d"
    recidive_maxretry: int = 5
    notify: bool = True
    notify_command: str = "/usr/local/sbin/sshward-notify"
    abuse_reports: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def ignoreip(self) -> list[str]:
        return [*ALWAYS_IGNORED, *self.trusted_networks, *self.ignoreip_extra, *self.admin_addresses]


def _text(value: Any) -> str:
    return str(value).strip()


def _duration(name: str, value: Any) -> str:
    text = _text(value)
    if not _DURATION.fullmatch(text):
        raise BanError(f"{name}: {text!r} is not a fail2ban duration; use seconds or units such as 600, 10m, 1h, 1w")
    return text


def _count(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BanError(f"{name}: {value!r} is not a whole number; give a number of failures >= 1") from None
    if number < 1:
        raise BanError(f"{name}: {number} would ban on no failure at all; give a number >= 1")
    return number


def _networks(name: str, values: Iterable[Any]) -> tuple[str, ...]:
    texts = tuple(_text(value) for value in values or ())
    try:
        netaddr.parse_networks(texts, name)
    except ValueError as exc:
        raise BanError(str(exc)) from None
    return texts


def _path(name: str, value: Any) -> str:
    text = _text(value)
    if not _PATH.fullmatch(text):
        raise BanError(f"{name}: {text!r} must be an absolute path of letters, digits and ._/+- only")
    return text


def _choice(name: str, value: Any, choices: Iterable[str]) -> str:
    text = _text(value)
    if text not in choices:
        raise BanError(f"{name}: {text!r} is not one of {', '.join(choices)}")
    return text


def settings(params: Mapping[str, Any]) -> BanSettings:
    """Checked :class:`BanSettings` from role variables without their prefix (missing keys keep the defaults)."""
    d = BanSettings()
    get = params.get
    ports = []
    for value in get("ports") or d.ports:
        port = _count("ports", value)
        if port > 65535:
            raise BanError(f"ports: {port} is not a TCP port; give ports between 1 and 65535")
        ports.append(port)
    return BanSettings(
        firewall=_choice("firewall", get("firewall", d.firewall), FIREWALLS),
        log_backend=_choice("log_backend", get("log_backend", d.log_backend), LOG_BACKENDS),
        logpath=_path("logpath", get("logpath") or d.logpath),
        trusted_networks=_networks("trusted_networks", get("trusted_networks") or ()),
        ignoreip_extra=_networks("ignoreip_extra", get("ignoreip_extra") or ()),
        admin_addresses=_networks("admin_addresses", get("admin_addresses") or ()),
        ports=tuple(ports),
        bantime=_duration("bantime", get("bantime", d.bantime)),
        findtime=_duration("findtime", get("findtime", d.findtime)),
        bantime_increment=bool(get("bantime_increment", d.bantime_increment)),
        bantime_factor=_duration("bantime_factor", get("bantime_factor", d.bantime_factor)),
        bantime_maxtime=_duration("bantime_maxtime", get("bantime_maxtime", d.bantime_maxtime)),
        maxretry=_count("maxretry", get("maxretry", d.maxretry)),
        root_maxretry=_count("root_maxretry", get("root_maxretry", d.root_maxretry)),
        invalid_maxretry=_count("invalid_maxretry", get("invalid_maxretry", d.invalid_maxretry)),
        valid_maxretry=_count("valid_maxretry", get("valid_maxretry", d.valid_maxretry)),
        recidive_enabled=bool(get("recidive_enabled", d.recidive_enabled)),
        recidive_bantime=_duration("recidive_bantime", get("recidive_bantime", d.recidive_bantime)),
        recidive_findtime=_duration("recidive_findtime", get("recidive_findtime", d.recidive_findtime)),
        recidive_maxretry=_count("recidive_maxretry", get("recidive_maxretry", d.recidive_maxretry)),
        notify=bool(get("notify", d.notify)),
        notify_command=_path("notify_command", get("notify_command") or d.notify_command),
        abuse_reports=bool(get("abuse_reports", d.abuse_reports)),
    )


def log_source(requested: str, existing_logs: Iterable[str]) -> tuple[str, str]:
    """(fail2ban backend, log path) for where sshd logs: a file rsyslog writes, else the journal.

    ``existing_logs``: which of :data:`AUTH_LOGS` exist on the host (Debian 12+ has none unless
    rsyslog is installed). ``requested`` other than ``auto`` wins.
    """
    found = [p for p in AUTH_LOGS if p in set(existing_logs)]
    requested = _choice("backend", requested, LOG_BACKENDS)
    backend = requested if requested != "auto" else ("auto" if found else "systemd")
    return backend, (found[0] if found else AUTH_LOGS[0])


def packages(s: BanSettings) -> list[str]:
    """The Debian packages fail2ban needs for these settings."""
    return (
        ["fail2ban"]
        + (["python3-systemd"] if s.log_backend == "systemd" else [])
        + (["nftables"] if s.firewall == "nftables" else [])
    )


def _source(s: BanSettings) -> str:
    # Set in EVERY sshd jail: Debian's jail.d/defaults-debian.conf sets backend and journalmatch in
    # [sshd] itself, which would beat [DEFAULT]. Only journald's _SYSTEMD_UNIT decides (Debian's
    # "+ _COMM=sshd" would also accept a local user's own program named sshd).
    where = f"journalmatch = {JOURNAL_MATCH}" if s.log_backend == "systemd" else f"logpath = {s.logpath}"
    return f"backend = {s.log_backend}\n{where}\n"


def render_jails(s: BanSettings) -> str:
    """jail.d/sshward.local: the four sshd jails and recidive."""
    actions = ["%(action_)s"]
    if s.notify:
        actions.append(f'sshward-notify[notify="{s.notify_command}"]')
    if s.abuse_reports:
        actions.append("sshward-abuse")
    action = "\n         ".join(actions)
    source = _source(s)
    bool_text = {True: "true", False: "false"}
    return f"""\
{HEADER}# fail2ban jails of sshward's brute-force bans. jail.d/*.local is read after jail.conf and
# jail.d/*.conf (Debian's defaults-debian.conf), so these settings win.
#
# Four jails watch sshd, each with its own threshold, as DenyHosts distinguishes them:
#   sshward-sshd-root     password guesses for root, root refused by Allow/Deny*   maxretry {s.root_maxretry}
#   sshward-sshd-invalid  users that do not exist / are not allowed               maxretry {s.invalid_maxretry}
#   sshward-sshd-valid    wrong passwords for existing users                      maxretry {s.valid_maxretry}
#   sshd                  fail2ban's own filter in aggressive mode for everything else
#                         (pre-auth disconnects, scans, bad banners, failed key exchange,
#                         max auth tries), ignoring the lines the class jails count, so a
#                         class threshold is never overtaken by the catch-all  maxretry {s.maxretry}
# plus recidive for repeat offenders across jails.

[DEFAULT]
ignoreip = {" ".join(s.ignoreip)}
# Never trust reverse DNS: the attacker controls it.
usedns = no
bantime = {s.bantime}
findtime = {s.findtime}
bantime.increment = {bool_text[s.bantime_increment]}
bantime.factor = {s.bantime_factor}
bantime.maxtime = {s.bantime_maxtime}
bantime.overalljails = true
banaction = {s.firewall}-multiport
banaction_allports = {s.firewall}-allports
port = {",".join(str(p) for p in s.ports)}
action = {action}

[sshd]
enabled = true
{source}mode = aggressive
filter = sshd[mode=aggressive]
maxretry = {s.maxretry}
ignoreregex = {_CLASS_LINES}

[sshward-sshd-root]
enabled = true
{source}filter = sshward-sshd-root
maxretry = {s.root_maxretry}

[sshward-sshd-invalid]
enabled = true
{source}filter = sshward-sshd-invalid
maxretry = {s.invalid_maxretry}

[sshward-sshd-valid]
enabled = true
{source}filter = sshward-sshd-valid
maxretry = {s.valid_maxretry}

[recidive]
enabled = {bool_text[s.recidive_enabled]}
backend = auto
logpath = /var/log/fail2ban.log
banaction = %(banaction_allports)s
bantime = {s.recidive_bantime}
findtime = {s.recidive_findtime}
maxretry = {s.recidive_maxretry}
"""


def config_files(s: BanSettings) -> dict[str, str]:
    """Every file sshward puts under /etc/fail2ban, keyed by its path relative to that directory."""
    out = {f"filter.d/{name}.conf": HEADER + text for name, text in FILTERS.items()}
    out.update({f"action.d/{name}.conf": HEADER + text for name, text in ACTIONS.items()})
    out[JAIL_FILE] = render_jails(s)
    return out
