#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: SHA-256, mode and owner of files, for an integrity baseline kept off the host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_file_hashes
short_description: Hash files and directory trees for an off-host integrity baseline
description:
  - Records, for every path in O(paths) and everything below the directories among them, the file
    type, SHA-256 (regular files), symlink target (symlinks are never followed), mode, uid and gid.
  - "Read-only: it never changes the host. Keep what it returns B(off the host) (for example with
    M(ansible.builtin.copy) and C(delegate_to: localhost)): an intruder can rewrite anything stored on it."
  - The returned O(baseline) document carries no timestamp, so writing it is idempotent.
version_added: "0.1.0"
author: sshward developers
options:
  paths:
    description: Absolute paths of files or directories (walked recursively). Paths that do not exist are
      listed in RV(missing), not an error, so one list fits several releases (OpenSSH 10's sshd-session).
    type: list
    elements: path
    required: true
  host:
    description: Name recorded in the baseline document (usually C(inventory_hostname)).
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Hash sshd's configuration and binary
  sshward_file_hashes:
    paths: [/etc/ssh, /usr/sbin/sshd]
    host: "{{ inventory_hostname }}"
  register: hashes

- name: Keep the baseline on the controller
  ansible.builtin.copy:
    dest: "baselines/{{ inventory_hostname }}.json"
    content: "{{ hashes.baseline | to_nice_json(sort_keys=true) }}\n"
    mode: "0640"
  delegate_to: localhost
  become: false
"""

RETURN = r"""
files:
  description: Path -> type, sha256 (files), target (symlinks), mode, uid, gid.
  returned: always
  type: dict
  sample: {"/etc/ssh/sshd_config": {"type": "file", "sha256": "9f86d0...", "mode": "0644", "uid": 0, "gid": 0}}
missing:
  description: Requested paths that do not exist.
  returned: always
  type: list
  elements: str
  sample: [/usr/lib/openssh/sshd-session]
baseline:
  description: The baseline document (format, host, paths, files) to store off the host.
  returned: always
  type: dict
  sample: {"format": 1, "host": "web1", "paths": ["/etc/ssh"], "files": {}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward.integrity import hash_paths, make_baseline


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            host=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    paths = module.params["paths"]
    relative = [p for p in paths if not p.startswith("/")]
    if relative:
        module.fail_json(msg=f"paths: {', '.join(relative)} must be absolute (e.g. /etc/ssh)")
    try:
        files, missing = hash_paths(paths)
    except OSError as exc:
        module.fail_json(msg=f"paths: cannot read {exc.filename or exc}: {exc.strerror or exc}; run with become")
    module.exit_json(
        changed=False,
        files=files,
        missing=missing,
        baseline=make_baseline(module.params["host"], paths, files),
    )


if __name__ == "__main__":
    main()
