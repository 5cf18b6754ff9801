#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module (run on the controller): the fleet report of a key revocation, hosts not done included."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_revoke_report
short_description: Write the fleet report of an SSH key revocation (markdown and JSON)
description:
  - Run on the controller once, after every host. O(hosts) maps every host of the play to the result of
    sshward_revoke_keys, or to a dict with C(done=false) and a C(reason) for a host that was unreachable or
    failed. A host is never left out; the play passes every inventory host it targeted.
  - Writes C(revoke-report.json) and C(revoke-report.md) into O(path) (0600, atomically), and returns the hosts not
    done so the play can fail after the report is on disk.
version_added: "0.1.0"
author: sshward developers
options:
  path:
    description: Directory for the report files.
    type: path
    required: true
  keys:
    description: The keys revoked, as sshward_key_spec returns them.
    type: list
    elements: dict
    required: true
  hosts:
    description: Every host of the play, mapped to its result.
    type: dict
    required: true
  revoke_check_mode:
    description: The run was in check mode (the report says nothing was changed).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: The report is written in check mode too, as the blast radius the admin asked for.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Fleet report
  sshward_revoke_report:
    path: reports/revoke
    keys: "{{ revoke_keys.keys }}"
    hosts: {web1: {done: true, found: []}, web2: {done: false, reason: unreachable}}
  delegate_to: localhost
  check_mode: false
"""

RETURN = r"""
json_path:
  description: The JSON report.
  returned: success
  type: str
markdown_path:
  description: The markdown report.
  returned: success
  type: str
not_done:
  description: Hosts not done (unreachable or failed).
  returned: success
  type: list
  elements: str
report:
  description: The report as written to the JSON file.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import revoke


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            keys=dict(type="list", elements="dict", required=True, no_log=False),
            hosts=dict(type="dict", required=True),
            revoke_check_mode=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["hosts"]:
        module.fail_json(msg="hosts: empty; the play targeted no host, so there is nothing to report")
    report = revoke.build_fleet_report(p["keys"], p["hosts"], check_mode=p["revoke_check_mode"])
    try:
        json_path, md_path = revoke.write_report_files(p["path"], report)
    except OSError as exc:
        module.fail_json(
            msg=f"path: cannot write the report into {p['path']} ({exc.strerror}); give a writable directory"
        )
    module.exit_json(
        changed=False, json_path=json_path, markdown_path=md_path, not_done=report["not_done"], report=report
    )


if __name__ == "__main__":
    main()
