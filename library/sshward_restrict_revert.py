#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: arm (or confirm) the automatic removal of sshward's restrict-mode firewall rules."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_restrict_revert
short_description: Arm the automatic removal of the SSH address restriction unless the admin confirms it
description:
  - After C(sshward_firewall) loaded restrict mode, O(state=armed) reads the live ruleset, computes with the
    firewall core the scripts that remove restrict mode (and nothing else), writes them under O(state_dir) and
    arms an sshward revert (systemd timer, or a detached process) that runs them after O(seconds).
  - O(state=confirmed) cancels the timer, the restriction stays. O(state=fired) removes it now. O(state=query)
    reports.
  - The removal runs on the host by itself; the controller does not have to reach it again.
version_added: "0.1.0"
author: sshward developers
options:
  state:
    description: V(armed), V(confirmed), V(fired) or V(query).
    type: str
    choices: [armed, confirmed, fired, query]
    default: armed
  backend:
    description: The backend restrict mode was loaded with (the C(backend) C(sshward_firewall) returned).
    type: str
    choices: [iptables, nftables]
  seconds:
    description: Time until the restriction is removed unless confirmed.
    type: int
    default: 900
  name:
    description: Name of the armed revert.
    type: str
    default: lockdown-restrict
  state_dir:
    description: Where plans, scripts and the runner live.
    type: path
    default: /var/lib/sshward/revert
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: The restriction undoes itself in 15 minutes unless confirmed
  sshward_restrict_revert:
    backend: "{{ restrict.backend }}"
    seconds: 900

- name: Keep the restriction
  sshward_restrict_revert:
    state: confirmed
"""

RETURN = r"""
plan:
  description: The armed (or cancelled, or fired) revert plan.
  returned: when there is one
  type: dict
  sample:
    name: lockdown-restrict
    fires_at: 1795325600
    commands: [[iptables-restore, --noflush, --wait=10, /var/lib/sshward/revert/lockdown-restrict.ipv4.rules]]
armed:
  description: Whether the revert is armed after the task.
  returned: always
  type: bool
  sample: true
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import firewall, revert


def removal_commands(module, backend, state_dir, name):
    wanted = firewall.state_commands(backend, "restrict")
    outputs = {}
    for key, argv in wanted.items():
        path = module.get_bin_path(argv[0], opt_dirs=["/usr/sbin", "/sbin"])
        rc, out, _ = module.run_command([path or argv[0], *argv[1:]], environ_update={"LC_ALL": "C"})
        outputs[key] = out if rc == 0 else (None if backend == "nftables" else "")
    if backend == "iptables":
        plans = firewall.plan_removal(
            "restrict", backend, iptables_save=outputs["ipv4"] or "", ip6tables_save=outputs["ipv6"] or ""
        )
    else:
        plans = firewall.plan_removal("restrict", backend, nft_json=outputs["inet"])
    return firewall.removal_revert_steps(plans, state_dir, name)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["armed", "confirmed", "fired", "query"], default="armed"),
            backend=dict(type="str", choices=["iptables", "nftables"]),
            seconds=dict(type="int", default=900),
            name=dict(type="str", default="lockdown-restrict"),
            state_dir=dict(type="path", default="/var/lib/sshward/revert"),
        ),
        required_if=[("state", "armed", ("backend",))],
        supports_check_mode=True,
    )
    p = module.params
    commands, scripts = [], []
    if p["state"] == "armed":
        commands, scripts = removal_commands(module, p["backend"], p["state_dir"], p["name"])
        if not commands:
            module.fail_json(
                msg="no restrict-mode rules are loaded; load them with sshward_firewall mode=restrict first"
            )

    def write_scripts():
        os.makedirs(p["state_dir"], mode=0o700, exist_ok=True)
        for path, text in scripts:
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600), "w") as fh:
                fh.write(text)

    try:
        result = revert.apply_state(
            p["state"],
            p["name"],
            seconds=p["seconds"],
            commands=commands,
            reason="lockdown address restriction",
            state_dir=p["state_dir"],
            check_mode=module.check_mode,
            prepare=write_scripts,
        )
    except revert.RevertError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
