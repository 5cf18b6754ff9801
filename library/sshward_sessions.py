#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: list SSH sessions from utmp and the sshd process tree; kill those not from admin addresses."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_sessions
short_description: List live SSH sessions, or kill every session not from an admin address with its process tree
description:
  - Reads C(/proc) and utmp directly (no C(ps), C(ss) or C(w) output is parsed). A session is the per-connection
    sshd process (C(sshd) up to OpenSSH 9, C(sshd-session) from 10) with its process tree, its TCP peer, user,
    ttys and start time.
  - With O(state=absent), every session whose source is outside O(admin_networks) (or, with O(addresses), every
    session from those addresses) is stopped (C(SIGSTOP) on the whole tree, so nothing forks away) and then
    killed (C(SIGKILL)); processes that left the tree but stayed in the session's logind scope go too.
  - Never touched, whatever the options, the sshd listener, this module's own process and its ancestors (the
    Ansible connection), and sessions from O(admin_networks).
version_added: "0.1.0"
author: sshward developers
options:
  state:
    description: V(present) only lists; V(absent) kills the sessions selected as described.
    type: str
    choices: [present, absent]
    default: present
  admin_networks:
    description: Addresses or networks whose sessions are kept. Required with O(state=absent).
    type: list
    elements: str
    default: []
  addresses:
    description: With O(state=absent), kill only sessions from these addresses (still never an admin's).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Who is logged in over SSH
  sshward_sessions:
  register: ssh_sessions

- name: Kill every SSH session not from the admin's address
  sshward_sessions:
    state: absent
    admin_networks: [203.0.113.7/32]
"""

RETURN = r"""
sessions:
  description: The sessions found before any kill, with user, source, ttys, pids and the commands of the tree.
  returned: always
  type: list
  elements: dict
  sample: [{pid: 812, user: deploy, source_address: 198.51.100.9, source_port: 50122, ttys: [pts/1]}]
killed:
  description: The sessions killed (in check mode, that would be), each with the pids signalled.
  returned: always
  type: list
  elements: dict
  sample: [{pid: 812, user: deploy, source_address: 198.51.100.9, pids: [812, 830, 831]}]
kept:
  description: Sessions left running and why (admin address, not selected, our own connection).
  returned: always
  type: list
  elements: dict
  sample: [{pid: 790, source_address: 203.0.113.7, why: admin address}]
survivors:
  description: Pids still alive after the kill (should be empty).
  returned: always
  type: list
  elements: int
  sample: []
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import lockdown, netaddr
from ansible.module_utils.sshward import sessions as core


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            admin_networks=dict(type="list", elements="str", default=[]),
            addresses=dict(type="list", elements="str", default=[]),
        ),
        required_if=[("state", "absent", ("admin_networks",))],
        supports_check_mode=True,
    )
    p = module.params
    try:
        admin = netaddr.parse_networks(p["admin_networks"], "admin_networks")
        only = netaddr.parse_networks(p["addresses"], "addresses")
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    snap = core.snapshot()
    listed = [s.to_dict() for s in snap.sessions]
    protected = core.ancestors(os.getpid(), snap.processes)
    if p["state"] == "present":
        module.exit_json(changed=False, sessions=listed, killed=[], kept=[], survivors=[])
    if not admin:
        module.fail_json(msg="admin_networks: empty; refusing to kill sessions without knowing whose to keep")
    kill, kept = lockdown.select_sessions(snap.sessions, admin, protected, only)
    for k in kept:
        if k["why"] == "this connection":
            module.warn(f"this Ansible connection comes from {k['source_address']}, outside admin_networks; kept")
    killed, survivors = lockdown.kill_sessions(snap, kill, protected, check=module.check_mode)
    if survivors:
        module.fail_json(msg=f"processes {survivors} survived SIGKILL", sessions=listed, killed=killed, kept=kept)
    module.exit_json(changed=bool(killed), sessions=listed, killed=killed, kept=kept, survivors=survivors)


if __name__ == "__main__":
    main()
