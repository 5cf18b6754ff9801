#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: arm, confirm or fire a revert that runs on the host by itself."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_revert
short_description: Arm a change's automatic undo on the host, confirm it, or fire it now
description:
  - Before a risky change (an sshd reload, an SSH address restriction) arm a revert: the files'
    backups and follow-up commands are written on the host and a systemd timer (or, without systemd,
    a detached process) restores them after O(seconds) unless the revert is confirmed first.
  - The undo does not need the controller: if the change cut Ansible off, the host heals itself.
version_added: "0.1.0"
author: sshward developers
options:
  name:
    description: Name of the revert (lowercase letters, digits, dashes); one armed revert per name.
    type: str
    required: true
  state:
    description:
      - V(armed) writes the plan and starts the timer (re-arming replaces it).
      - V(confirmed) cancels the timer and keeps the change.
      - V(fired) restores now, as the timer would.
      - V(query) only reports.
    type: str
    choices: [armed, confirmed, fired, query]
    default: armed
  seconds:
    description: Time until the revert fires; at least 10.
    type: int
    default: 120
  files:
    description: Files to restore, each C({path, backup}) or C({path, absent: true}) for a file to delete.
    type: list
    elements: dict
    default: []
  commands:
    description: Commands (argv lists, no shell) run after the files are restored, e.g. C([systemctl, reload, ssh]).
    type: list
    elements: list
    default: []
  reason:
    description: Why the change may need undoing, kept in the plan for whoever reads it.
    type: str
    default: ""
  state_dir:
    description: Where plans and the runner are kept.
    type: path
    default: /var/lib/sshward/revert
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Arm the undo of the new sshd configuration
  sshward_revert:
    name: sshd-config
    seconds: 120
    files: "{{ sshd_result.backups }}"
    commands: [[systemctl, reload, ssh]]

- name: The fresh connection worked, keep the change
  sshward_revert:
    name: sshd-config
    state: confirmed
"""

RETURN = r"""
plan:
  description: The armed (or cancelled, or fired) plan.
  returned: when there is one
  type: dict
  sample: {name: sshd-config, fires_at: 1795325600, mechanism: systemd timer sshward-revert-sshd-config.timer}
armed:
  description: Whether a revert with this name is armed after the task.
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import revert


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["armed", "confirmed", "fired", "query"], default="armed"),
            seconds=dict(type="int", default=120),
            files=dict(type="list", elements="dict", default=[]),
            commands=dict(type="list", elements="list", default=[]),
            reason=dict(type="str", default=""),
            state_dir=dict(type="path", default="/var/lib/sshward/revert"),
        ),
        required_if=[("state", "armed", ("files", "commands"), True)],
        supports_check_mode=True,
    )
    p = module.params
    try:
        result = revert.apply_state(
            p["state"],
            p["name"],
            seconds=p["seconds"],
            files=p["files"],
            commands=p["commands"],
            reason=p["reason"],
            state_dir=p["state_dir"],
            check_mode=module.check_mode,
        )
    except revert.RevertError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
