#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: drop Diffie-Hellman groups below a size from the moduli file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_moduli
short_description: Remove DH moduli smaller than a given size
description:
  - Keeps only the C(/etc/ssh/moduli) groups of at least O(min_bits) bits (the file's size field is bits
    minus one). Refuses to leave the file without any group, since sshd would then fall back to a fixed
    2048-bit group.
version_added: "0.1.0"
author: sshward developers
options:
  path:
    description: The moduli file.
    type: path
    default: /etc/ssh/moduli
  min_bits:
    description: Smallest modulus to keep.
    type: int
    default: 3072
  backup:
    description: Keep a timestamped copy before changing the file.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - ansible.builtin.files
"""

EXAMPLES = r"""
- name: Only 3072-bit and larger DH groups
  sshward_moduli:
    min_bits: 3072
"""

RETURN = r"""
removed:
  description: Number of groups removed.
  returned: always
  type: int
  sample: 61
kept:
  description: Number of groups kept.
  returned: always
  type: int
  sample: 224
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward.openssh import filter_moduli


def count_groups(text):
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/ssh/moduli"),
            min_bits=dict(type="int", default=3072),
            backup=dict(type="bool", default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    path, min_bits = module.params["path"], module.params["min_bits"]
    if min_bits < 2048 or min_bits > 8192:
        module.fail_json(msg=f"min_bits: {min_bits} is outside 2048-8192; 3072 is the usual choice")
    try:
        with open(path, encoding="ascii") as fh:
            before = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"path: cannot read {path}: {exc}")
    try:
        after = filter_moduli(before, min_bits)
    except ValueError as exc:
        module.fail_json(msg=f"{path}: {exc}; regenerate it with ssh-keygen -M generate / -M screen")
    changed = after != before
    result = dict(changed=changed, removed=count_groups(before) - count_groups(after), kept=count_groups(after))
    if changed:
        result["diff"] = dict(before_header=path, after_header=path, before=before, after=after)
    if changed and not module.check_mode:
        if module.params["backup"]:
            result["backup_file"] = module.backup_local(path)
        fd, tmp = tempfile.mkstemp(prefix=".sshward-", dir=os.path.dirname(path))
        with os.fdopen(fd, "w") as fh:
            fh.write(after)
        module.atomic_move(tmp, path, unsafe_writes=module.params["unsafe_writes"])
    file_args = module.load_file_common_arguments(module.params)
    result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
