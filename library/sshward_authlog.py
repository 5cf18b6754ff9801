#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module sshward_authlog: SSH auth-log facts and a one-shot ban of current offenders."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_authlog
short_description: SSH authentication facts from the journal or auth.log, and a one-shot ban of offenders
description:
  - Reads the host's sshd records (the journal through C(journalctl -o json), trusting only journald's own
    fields, or C(/var/log/auth.log) / C(/var/log/secure) including rotated and gzip files) with sshward's
    injection-proof parser and returns failures per source address and per user class (root, invalid, valid),
    accepted logins with their keys, and the current offenders.
  - With O(action=ban), bans every offender now, except the allowlist. B(The ban method) is
    fail2ban (C(fail2ban-client set JAIL banip ...)) when the fail2ban server runs and has the jail; the ban then
    lives in the same firewall action, expiry, bantime increment and notification as every other ban, and the
    admin lifts it with the usual C(fail2ban-client unban). Without fail2ban it is a managed block of
    C(sshd) lines, one per address, in C(/etc/hosts.deny), which Debian's sshd honours through libwrap and which needs
    no firewall backend (the rate-limit role owns the firewall); the module refuses that method when the
    sshd binary is not linked with libwrap. hosts.deny entries do not expire; remove them with O(action=unban).
  - An address inside O(allowlist), 127.0.0.0/8 or ::1 is never banned; an invalid allowlist entry fails the
    module rather than banning anyone. Addresses are exact (1.2.3.4 and 1.2.3.45 are different sources).
version_added: "0.1.0"
author: sshward developers
options:
  action:
    description: C(facts) only reads; C(ban) bans the offenders (or O(addresses)); C(unban) removes O(addresses).
    type: str
    choices: [facts, ban, unban]
    default: facts
  source:
    description:
      - Where to read. C(auto) reads the log files when one of O(paths) exists (rsyslog installed), else the
        journal (Debian 12+ default). Reading both would count every event twice.
    type: str
    choices: [auto, journal, files]
    default: auto
  paths:
    description: Log files for O(source=files). Rotated siblings (C(.1), C(.2.gz), ...) are read too when O(rotated).
    type: list
    elements: path
    default: [/var/log/auth.log, /var/log/secure]
  rotated:
    description: Also read rotated files next to each path.
    type: bool
    default: false
  window:
    description: Only events newer than this count (C(30m), C(12h), C(7d); C(0) for everything).
    type: str
    default: 1d
  threshold:
    description: An address with at least this many failed attempts (root + invalid + valid) is an offender.
    type: int
    default: 5
  per_class_thresholds:
    description: Lower thresholds per user class, as DenyHosts has them; keys C(root), C(invalid), C(valid).
    type: dict
    default: {}
  allowlist:
    description: Addresses and networks never banned (the project's C(sshward_trusted_networks)).
    type: list
    elements: str
    default: []
  addresses:
    description: With O(action=ban), ban these instead of the computed offenders; required with O(action=unban).
    type: list
    elements: str
    default: []
  ban_method:
    description: C(auto) uses fail2ban when it runs with O(jail), else hosts.deny. See the description.
    type: str
    choices: [auto, fail2ban, hosts_deny]
    default: auto
  jail:
    description: The fail2ban jail that receives the bans.
    type: str
    default: sshd
  hosts_deny_path:
    description: The hosts.deny file for O(ban_method=hosts_deny).
    type: path
    default: /etc/hosts.deny
  max_listed:
    description: At most this many sources and accepted logins are returned (worst and newest first).
    type: int
    default: 100
extends_documentation_fragment: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - The allowlist check is made again here even though fail2ban has its own C(ignoreip).
"""

EXAMPLES = r"""
- name: Read SSH authentication facts
  sshward_authlog:
  register: authlog

- name: Show the current offenders
  ansible.builtin.debug:
    var: authlog.authlog.offenders

- name: Ban every source with 10 or more failures in the last day, never our networks
  sshward_authlog:
    action: ban
    threshold: 10
    per_class_thresholds: {root: 3, invalid: 5}
    allowlist: "{{ sshward_trusted_networks }}"

- name: Lift a hosts.deny ban
  sshward_authlog:
    action: unban
    addresses: [203.0.113.5]
    ban_method: hosts_deny
"""

RETURN = r"""
authlog:
  description: The facts.
  returned: always
  type: dict
  contains:
    source:
      description: C(journal) or C(files).
      type: str
      sample: journal
    stats:
      description: Parser counters (lines, events, unparsed, untrusted, ...).
      type: dict
      sample: {"lines": 1200, "events": 800, "untrusted": 1}
    failures_per_source:
      description: Attempts per source address, worst first, by class.
      type: list
      elements: dict
      sample: [{"address": "203.0.113.5", "total": 12, "root": 3, "invalid": 9, "valid": 0, "users": ["oracle"]}]
    failures_per_user_class:
      description: Attempts of all sources per class.
      type: dict
      sample: {"root": 3, "invalid": 9, "valid": 0}
    accepted_logins:
      description: Accepted logins, newest last, with method, key and (LogLevel VERBOSE) authorized_keys file and line.
      type: list
      elements: dict
      sample: [{"user": "alice", "address": "192.0.2.10", "method": "publickey", "fingerprint": "SHA256:..."}]
    offenders:
      description: Addresses at or over a threshold and outside the allowlist, worst first.
      type: list
      elements: str
      sample: ["203.0.113.5"]
    fail2ban:
      description: Whether the fail2ban server answers, its jails and their banned addresses.
      type: dict
      sample: {"running": true, "jails": ["sshd"], "banned": {"sshd": ["203.0.113.5"]}}
    firewall_backend:
      description: C(iptables) or C(nftables) as sshward's firewall code would choose it on this host (null if neither).
      type: str
      sample: iptables
banned:
  description: Addresses banned (or, in check mode, that would be) by this run.
  returned: when action is ban
  type: list
  elements: str
  sample: ["203.0.113.5"]
method:
  description: The ban method used.
  returned: when action is ban or unban
  type: str
  sample: fail2ban
"""

import contextlib
import glob
import ipaddress
import os
import re
import tempfile
from datetime import datetime, timedelta, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward.authlog import (
    KIND,
    AuthLogError,
    AuthLogParser,
    Summary,
    iter_file_lines,
    open_log,
)
from ansible.module_utils.sshward.firewall import detect_backend

ALWAYS_ALLOWED = ["127.0.0.0/8", "::1/128"]
BEGIN = "# BEGIN sshward bans (sshward_authlog; remove with action=unban)"
END = "# END sshward bans"
_WINDOW = re.compile(r"^(\d+)\s*([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window(text):
    m = _WINDOW.match(str(text).strip())
    if not m:
        return None
    return int(m.group(1)) * _UNITS[m.group(2)]


def read_events(module, source, paths, rotated, window_s):
    parser = AuthLogParser()
    lines_events = []
    if source == "auto":
        source = "files" if any(os.path.exists(p) for p in paths) else "journal"
    if source == "journal":
        journalctl = module.get_bin_path("journalctl", required=True)
        argv = [journalctl, "-q", "-o", "json", "--no-pager"]
        if window_s:
            argv += ["--since", f"-{window_s}s"]
        argv += ["_COMM=sshd", "+", "_COMM=sshd-session", "+", "_COMM=sshd-auth"]
        rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0:
            module.fail_json(msg=f"journalctl failed (rc {rc}): {err.strip()}; set source=files to read log files")
        lines_events = list(parser.parse_journal(out.splitlines()))
    else:
        files = []
        for p in paths:
            if rotated:
                files += sorted(glob.glob(glob.escape(p) + ".[0-9]*"), key=_rot_key, reverse=True)
            if os.path.exists(p):
                files.append(p)
        for p in files:
            try:
                f = open_log(p)
            except AuthLogError as e:
                module.fail_json(msg=f"paths: {e}")
            with f:
                try:
                    lines_events += list(parser.parse_lines(iter_file_lines(f, p, parser.stats)))
                except AuthLogError as e:
                    module.fail_json(msg=f"paths: {e}")
    if window_s:
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=window_s)
        lines_events = [e for e in lines_events if e.timestamp is None or e.timestamp >= cutoff]
    return source, parser, lines_events


def _rot_key(path):
    m = re.search(r"\.(\d+)(?:\.gz)?$", path)
    return int(m.group(1)) if m else 0


def fail2ban_state(module):
    client = module.get_bin_path("fail2ban-client")
    state = {"running": False, "jails": [], "banned": {}}
    if not client:
        return client, state
    rc, out, _err = module.run_command([client, "ping"], environ_update={"LC_ALL": "C"})
    if rc != 0 or "pong" not in out:
        return client, state
    state["running"] = True
    rc, out, _err = module.run_command([client, "status"], environ_update={"LC_ALL": "C"})
    m = re.search(r"Jail list:\s*(.*)$", out, re.M)
    jails = [j.strip() for j in m.group(1).split(",") if j.strip()] if m else []
    state["jails"] = jails
    for j in jails:
        rc, out, _err = module.run_command([client, "get", j, "banned"], environ_update={"LC_ALL": "C"})
        state["banned"][j] = _parse_banned(out) if rc == 0 else []
    return client, state


def _parse_banned(out):
    # fail2ban >= 0.11 prints a Python list: ['1.2.3.4', '5.6.7.8']
    found = re.findall(r"'([0-9A-Fa-f:.]+)'", out)
    good = []
    for a in found:
        with contextlib.suppress(ValueError):
            good.append(str(ipaddress.ip_address(a)))
    return good


def firewall_backend(module):
    ipt = module.get_bin_path("iptables")
    nft = module.get_bin_path("nft")
    version = None
    if ipt:
        rc, out, _err = module.run_command([ipt, "-V"], environ_update={"LC_ALL": "C"})
        version = out if rc == 0 else None
    ruleset = None
    enabled = False
    if nft:
        rc, out, _err = module.run_command([nft, "list", "ruleset"], environ_update={"LC_ALL": "C"})
        ruleset = out if rc == 0 else None
        systemctl = module.get_bin_path("systemctl")
        if systemctl:
            rc, _out, _err = module.run_command([systemctl, "is-enabled", "nftables"], environ_update={"LC_ALL": "C"})
            enabled = rc == 0
    if not ipt and not nft:
        return None
    try:
        return detect_backend(version, bool(nft), ruleset, enabled)
    except ValueError:
        return None


def facts(summary, parser, source, offenders, max_listed):
    sources = []
    totals = {"root": 0, "invalid": 0, "valid": 0}
    for s in summary.sources.values():
        c = s.class_counts()
        for k in totals:
            totals[k] += c[k]
        total = sum(c.values())
        if total:
            sources.append(
                {
                    "address": s.address,
                    "total": total,
                    "root": c["root"],
                    "invalid": c["invalid"],
                    "valid": c["valid"],
                    "accepted": s.accepted,
                    "users": sorted(s.users)[:20],
                    "first_seen": s.first_seen.isoformat() if s.first_seen else None,
                    "last_seen": s.last_seen.isoformat() if s.last_seen else None,
                }
            )
    sources.sort(key=lambda d: (-d["total"], d["address"]))
    accepted = []
    for e in summary.accepted_logins()[-max_listed:]:
        accepted.append(
            {
                "user": e.user,
                "address": e.address,
                "port": e.port,
                "method": e.method,
                "key_type": e.key_type,
                "fingerprint": e.fingerprint,
                "authorized_keys_file": e.authorized_keys_file,
                "authorized_keys_line": e.authorized_keys_line,
                "timestamp": e.timestamp.isoformat() if e.timestamp else None,
            }
        )
    return {
        "source": source,
        "stats": parser.stats.to_dict(),
        "failures_per_source": sources[:max_listed],
        "failures_per_user_class": totals,
        "accepted_logins": accepted,
        "offenders": offenders,
        "kinds": dict(sorted(summary.kinds.items())),
    }


def libwrap_linked(module):
    ldd = module.get_bin_path("ldd")
    for binary in ("/usr/lib/openssh/sshd-session", "/usr/sbin/sshd"):
        if os.path.exists(binary) and ldd:
            rc, out, _err = module.run_command([ldd, binary], environ_update={"LC_ALL": "C"})
            return rc == 0 and "libwrap" in out
    return False


def read_hosts_deny(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return ""
    with os.fdopen(fd, "r", encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def managed_block(text):
    """(lines before, banned addresses in our block, lines after)."""
    lines = text.splitlines()
    if BEGIN in lines and END in lines[lines.index(BEGIN) :]:
        b = lines.index(BEGIN)
        e = b + lines[b:].index(END)
        addrs = []
        for line in lines[b + 1 : e]:
            m = re.match(r"^sshd: \[?([0-9A-Fa-f:.]+)\]?$", line.strip())
            if m:
                addrs.append(m.group(1))
        return lines[:b], addrs, lines[e + 1 :]
    return lines, [], []


def render_hosts_deny(before, addrs, after):
    out = list(before)
    if addrs:
        out.append(BEGIN)
        for a in addrs:
            out.append(f"sshd: [{a}]" if ":" in a else f"sshd: {a}")
        out.append(END)
    out += after
    return "\n".join(out) + ("\n" if out else "")


def write_hosts_deny(module, path, content):
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".hosts.deny.")
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(content)
    os.chmod(tmp, 0o644)
    module.atomic_move(tmp, path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", default="facts", choices=["facts", "ban", "unban"]),
            source=dict(type="str", default="auto", choices=["auto", "journal", "files"]),
            paths=dict(type="list", elements="path", default=["/var/log/auth.log", "/var/log/secure"]),
            rotated=dict(type="bool", default=False),
            window=dict(type="str", default="1d"),
            threshold=dict(type="int", default=5),
            per_class_thresholds=dict(type="dict", default={}),
            allowlist=dict(type="list", elements="str", default=[]),
            addresses=dict(type="list", elements="str", default=[]),
            ban_method=dict(type="str", default="auto", choices=["auto", "fail2ban", "hosts_deny"]),
            jail=dict(type="str", default="sshd"),
            hosts_deny_path=dict(type="path", default="/etc/hosts.deny"),
            max_listed=dict(type="int", default=100),
        ),
        required_if=[("action", "unban", ["addresses"])],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    p = module.params
    window_s = parse_window(p["window"])
    if window_s is None:
        module.fail_json(msg="window: {!r} is not a duration like 30m, 12h, 7d or 0".format(p["window"]))
    if p["threshold"] < 1:
        module.fail_json(msg="threshold must be at least 1")
    pct = {}
    for k, v in p["per_class_thresholds"].items():
        if k not in ("root", "invalid", "valid"):
            module.fail_json(msg=f"per_class_thresholds: unknown class {k!r}; use root, invalid or valid")
        try:
            pct[k] = int(v)
        except (TypeError, ValueError):
            module.fail_json(msg=f"per_class_thresholds.{k} must be an integer")
        if pct[k] < 1:
            module.fail_json(msg=f"per_class_thresholds.{k} must be at least 1")
    allow = list(p["allowlist"]) + ALWAYS_ALLOWED
    nets = []
    for a in allow:
        try:
            nets.append(ipaddress.ip_network(a.strip(), strict=False))
        except ValueError:
            module.fail_json(msg=f"allowlist: {a!r} is not an address or network; nothing was banned")
    if not p["allowlist"] and p["action"] == "ban":
        module.warn("allowlist is empty: set it to the admins' networks (sshward_trusted_networks)")

    source, parser, events = read_events(module, p["source"], p["paths"], p["rotated"], window_s)
    # The parser, not the fast counts (authlog.summarize_sources): the window needs each event's time,
    # and the facts hold first/last seen, accepted logins with keys, kinds and parse statistics.
    summary = Summary().add_all(e for e in events if e.kind != KIND.CONNECTION)
    offenders = summary.offenders(p["threshold"], [str(n) for n in nets], pct)
    result = {"changed": False}
    client, f2b = fail2ban_state(module)
    info = facts(summary, parser, source, offenders, p["max_listed"])
    info["fail2ban"] = f2b
    info["firewall_backend"] = firewall_backend(module)
    result["authlog"] = info
    if p["action"] == "facts":
        module.exit_json(**result)

    targets = []
    for a in p["addresses"] or (offenders if p["action"] == "ban" else []):
        try:
            ip = ipaddress.ip_address(a.strip())
        except ValueError:
            module.fail_json(msg=f"addresses: {a!r} is not an IP address")
        if p["action"] == "ban" and any(ip.version == n.version and ip in n for n in nets):
            module.warn(f"not banning {ip}: it is in the allowlist")
            continue
        if str(ip) not in targets:
            targets.append(str(ip))

    method = p["ban_method"]
    if method == "auto":
        method = "fail2ban" if f2b["running"] and p["jail"] in f2b["jails"] else "hosts_deny"
    result["method"] = method
    if method == "fail2ban":
        if not f2b["running"]:
            module.fail_json(
                msg="ban_method=fail2ban but the fail2ban server does not answer; start it or use hosts_deny"
            )
        if p["jail"] not in f2b["jails"]:
            module.fail_json(
                msg="jail: fail2ban has no jail {!r} (it has {})".format(p["jail"], ", ".join(f2b["jails"]) or "none")
            )
        current = f2b["banned"].get(p["jail"], [])
        if p["action"] == "ban":
            todo = [a for a in targets if a not in current]
            after = current + todo
        else:
            todo = [a for a in targets if a in current]
            after = [a for a in current if a not in todo]
        result["diff"] = {
            "before": "\n".join(current) + "\n",
            "after": "\n".join(after) + "\n",
            "before_header": "fail2ban jail {}".format(p["jail"]),
            "after_header": "fail2ban jail {}".format(p["jail"]),
        }
        if todo and not module.check_mode:
            verb = "banip" if p["action"] == "ban" else "unbanip"
            rc, out, err = module.run_command([client, "set", p["jail"], verb] + todo, environ_update={"LC_ALL": "C"})
            if rc != 0:
                module.fail_json(
                    msg="fail2ban-client set {} {} failed: {}".format(p["jail"], verb, (err or out).strip()), **result
                )
    else:
        if p["action"] == "ban" and not libwrap_linked(module):
            module.fail_json(
                msg="ban_method=hosts_deny but sshd is not linked with libwrap, so it would ignore "
                "hosts.deny; install fail2ban (the ssh_bans role) and use ban_method=fail2ban"
            )
        path = p["hosts_deny_path"]
        text = read_hosts_deny(path)
        before_lines, current, after_lines = managed_block(text)
        if p["action"] == "ban":
            todo = [a for a in targets if a not in current]
            addrs = current + todo
        else:
            todo = [a for a in targets if a in current]
            addrs = [a for a in current if a not in todo]
        new = render_hosts_deny(before_lines, addrs, after_lines) if (todo or text) else text
        result["diff"] = {"before": text, "after": new, "before_header": path, "after_header": path}
        if todo and not module.check_mode:
            write_hosts_deny(module, path, new)
            file_args = module.load_file_common_arguments(p, path=path)
            module.set_fs_attributes_if_different(file_args, True)
    result["changed"] = bool(todo)
    result["banned" if p["action"] == "ban" else "unbanned"] = todo
    module.exit_json(**result)


if __name__ == "__main__":
    main()
