#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: write sshward's fail2ban jails, sshd filters and actions (rendered by sshward.bans)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_fail2ban
short_description: Configure fail2ban's sshd jails, filters and actions for sshward's brute-force bans
description:
  - Writes C(jail.d/sshward.local), the C(sshward-sshd-*) filters and the C(sshward-notify) and C(sshward-abuse)
    actions under O(config_dir), exactly as the pyinfra deploy C(deploys/bans.py) does (both render them with
    C(sshward.bans)). Four jails watch sshd with their own thresholds (root, invalid users, valid users, and
    fail2ban's own C(sshd) filter in aggressive mode for everything else), plus C(recidive).
  - Every value is checked before anything is written, so no setting can add a line or an action to
    fail2ban's configuration. Files are written atomically; only files whose content differs are touched.
  - It does not install, test or restart fail2ban; the C(ssh_bans) role does that (C(fail2ban-client --test),
    then a restart when this module reports a change).
version_added: "0.1.0"
author: sshward developers
options:
  config_dir:
    description: fail2ban's configuration directory.
    type: path
    default: /etc/fail2ban
  firewall:
    description: The ban actions' firewall (C(iptables-multiport)/C(nftables-multiport) and their C(-allports)).
    type: str
    choices: [iptables, nftables]
    required: true
  log_backend:
    description: fail2ban's backend; C(systemd) reads sshd's journal (C(_SYSTEMD_UNIT=ssh.service) only).
    type: str
    choices: [auto, systemd, polling, pyinotify]
    required: true
  logpath:
    description: The auth log file, for backends other than C(systemd).
    type: path
    default: /var/log/auth.log
  trusted_networks:
    description: Networks never banned (besides 127.0.0.1/8 and ::1).
    type: list
    elements: str
    default: []
  ignoreip_extra:
    description: More addresses or networks never banned.
    type: list
    elements: str
    default: []
  admin_addresses:
    description:
      - The address(es) the admin connects from (the role passes the one Ansible connects from), never banned, so
        a burst of failed logins or scans from the admin's own machine cannot lock the admin out.
    type: list
    elements: str
    default: []
  ports:
    description: The SSH ports the ban actions close.
    type: list
    elements: int
    default: [22]
  bantime:
    description: First ban's length (fail2ban duration such as C(1h)).
    type: str
    default: 1h
  findtime:
    description: Window in which failures are counted.
    type: str
    default: 10m
  bantime_increment:
    description: Ban repeat offenders longer each time.
    type: bool
    default: true
  bantime_factor:
    description: C(bantime.factor).
    type: str
    default: "2"
  bantime_maxtime:
    description: Longest ban when bans grow.
    type: str
    default: 1w
  maxretry:
    description: Failures before a ban in the catch-all C(sshd) jail.
    type: int
    default: 10
  root_maxretry:
    description: Password guesses for root before a ban.
    type: int
    default: 2
  invalid_maxretry:
    description: Attempts on users that do not exist or are not allowed before a ban.
    type: int
    default: 5
  valid_maxretry:
    description: Wrong passwords for existing users before a ban.
    type: int
    default: 8
  recidive_enabled:
    description: Ban repeat offenders on all ports for O(recidive_bantime).
    type: bool
    default: true
  recidive_bantime:
    description: Length of a recidive ban.
    type: str
    default: 1w
  recidive_findtime:
    description: Window in which recidive counts bans.
    type: str
    default: 1d
  recidive_maxretry:
    description: Bans within O(recidive_findtime) before a recidive ban.
    type: int
    default: 5
  notify:
    description: Queue a sshward notification event for every ban and unban.
    type: bool
    default: true
  notify_command:
    description: The notifier the C(sshward-notify) action runs (installed by the ssh_notify role).
    type: path
    default: /usr/local/sbin/sshward-notify
  abuse_reports:
    description: Add the C(sshward-abuse) action (reports to the network's abuse contact) to every jail.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: sshd jails reading the journal, banning with nftables
  sshward_fail2ban:
    firewall: nftables
    log_backend: systemd
    trusted_networks: [192.0.2.0/24]
  notify: Restart fail2ban
"""

RETURN = r"""
files:
  description: The files written (or, in check mode, that would be), relative to O(config_dir).
  returned: always
  type: list
  elements: str
  sample: [jail.d/sshward.local]
ignoreip:
  description: The addresses and networks no jail bans.
  returned: always
  type: list
  elements: str
  sample: [127.0.0.1/8, "::1", 192.0.2.0/24]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward.bans import BanError, config_files, settings

SETTING_KEYS = (
    "firewall", "log_backend", "logpath", "trusted_networks", "ignoreip_extra", "admin_addresses", "ports", "bantime",
    "findtime", "bantime_increment", "bantime_factor", "bantime_maxtime", "maxretry", "root_maxretry",
    "invalid_maxretry", "valid_maxretry", "recidive_enabled", "recidive_bantime", "recidive_findtime",
    "recidive_maxretry", "notify", "notify_command", "abuse_reports",
)  # fmt: skip


def read(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as fh:
        return fh.read()


def write(module, path, text):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=".sshward-", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    module.atomic_move(tmp, path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config_dir=dict(type="path", default="/etc/fail2ban"),
            firewall=dict(type="str", required=True, choices=["iptables", "nftables"]),
            log_backend=dict(type="str", required=True, choices=["auto", "systemd", "polling", "pyinotify"]),
            logpath=dict(type="path", default="/var/log/auth.log"),
            trusted_networks=dict(type="list", elements="str", default=[]),
            ignoreip_extra=dict(type="list", elements="str", default=[]),
            admin_addresses=dict(type="list", elements="str", default=[]),
            ports=dict(type="list", elements="int", default=[22]),
            bantime=dict(type="str", default="1h"),
            findtime=dict(type="str", default="10m"),
            bantime_increment=dict(type="bool", default=True),
            bantime_factor=dict(type="str", default="2"),
            bantime_maxtime=dict(type="str", default="1w"),
            maxretry=dict(type="int", default=10),
            root_maxretry=dict(type="int", default=2),
            invalid_maxretry=dict(type="int", default=5),
            valid_maxretry=dict(type="int", default=8),
            recidive_enabled=dict(type="bool", default=True),
            recidive_bantime=dict(type="str", default="1w"),
            recidive_findtime=dict(type="str", default="1d"),
            recidive_maxretry=dict(type="int", default=5),
            notify=dict(type="bool", default=True),
            notify_command=dict(type="path", default="/usr/local/sbin/sshward-notify"),
            abuse_reports=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    config_dir = module.params["config_dir"]
    try:
        s = settings({k: module.params[k] for k in SETTING_KEYS})
    except BanError as exc:
        module.fail_json(msg=str(exc))
    wanted = config_files(s)
    changed_files, diffs = [], []
    for relative, text in wanted.items():
        path = os.path.join(config_dir, relative)
        try:
            before = read(path)
        except OSError as exc:
            module.fail_json(msg=f"config_dir: cannot read {path}: {exc}; is it a symlink or unreadable?")
        if before == text:
            continue
        changed_files.append(relative)
        diffs.append(dict(before_header=path, after_header=path, before=before or "", after=text))
        if not module.check_mode:
            try:
                write(module, path, text)
            except OSError as exc:
                module.fail_json(msg=f"config_dir: cannot write {path}: {exc}; is fail2ban installed?")
    result = dict(changed=bool(changed_files), files=changed_files, ignoreip=s.ignoreip)
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
