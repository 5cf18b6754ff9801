#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module (run on the controller): check and normalise the keys to revoke before any host is touched."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_key_spec
short_description: Check the SSH keys to revoke (fingerprints, public key lines, files, lockdown reports)
description:
  - Run on the controller (C(delegate_to=localhost)) before any host is touched. Each key is a C(SHA256:...)
    fingerprint as sshd logs it or a public key line; files hold one per line (C(#) comments allowed); a lockdown
    C(report.json) (or a directory searched for them) gives the keys the intruder logged in with and the keys
    quarantined.
  - A malformed key, an unreadable file or an empty list fails with a message naming the argument.
  - A key whose public half is in O(protect_public_key_files) (the key Ansible logs in with) fails too, as revoking
    it would lock the play out halfway through the fleet.
  - Reads only; never changes anything.
version_added: "0.1.0"
author: sshward developers
options:
  keys:
    description: Fingerprints (C(SHA256:...)) or public key lines.
    type: list
    elements: str
    default: []
  keys_file:
    description: Files of fingerprints or public key lines, one per line.
    type: list
    elements: path
    default: []
  lockdown_report:
    description: lockdown's C(report.json) files, or directories searched for them.
    type: list
    elements: path
    default: []
  argument_names:
    description: The names errors use for O(keys), O(keys_file) and O(lockdown_report) (the playbook's variables).
    type: dict
    default: {}
  protect_public_key_files:
    description: Public keys that must never be revoked (missing files are skipped).
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the keys on the controller
  sshward_key_spec:
    keys: ["SHA256:Wc3pV8nBNu1Yq2LmZ0qgkV4nq5sQFh9bU7xK2oR6tJE"]
    lockdown_report: [evidence/web1]
    protect_public_key_files: ["{{ ansible_ssh_private_key_file }}.pub"]
  delegate_to: localhost
  run_once: true
  register: revoke_keys
"""

RETURN = r"""
keys:
  description: One entry per key (fingerprint, public key when known, comment, where it came from).
  returned: success
  type: list
  elements: dict
  sample: [{fingerprint: "SHA256:...", public_key: "ssh-ed25519 AAAA...", comment: x@evil, source: "keys[0]"}]
specs:
  description: The keys as the host module takes them (the public key line when known, else the fingerprint).
  returned: success
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import revoke


def read_text(module, argument, path):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            return fh.read(1 << 22)
    except OSError as exc:
        module.fail_json(msg=f"{argument}: cannot read {path} ({exc.strerror}); give an existing file")


def report_files(module, argument, path):
    if not os.path.isdir(path):
        return [path]
    found = sorted(
        os.path.join(d, name) for d, _dirs, names in os.walk(path) for name in names if name == "report.json"
    )
    if not found:
        module.fail_json(msg=f"{argument}: no report.json under {path}; give lockdown's evidence directory or file")
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            keys=dict(type="list", elements="str", default=[], no_log=False),
            keys_file=dict(type="list", elements="path", default=[], no_log=False),
            lockdown_report=dict(type="list", elements="path", default=[]),
            protect_public_key_files=dict(type="list", elements="path", default=[]),
            argument_names=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    names = {k: str(p["argument_names"].get(k, k)) for k in ("keys", "keys_file", "lockdown_report")}
    files = [(path, read_text(module, names["keys_file"], path)) for path in p["keys_file"]]
    reports = []
    for given in p["lockdown_report"]:
        for path in report_files(module, names["lockdown_report"], given):
            try:
                reports.append((path, json.loads(read_text(module, names["lockdown_report"], path))))
            except ValueError as exc:
                module.fail_json(
                    msg=f"{names['lockdown_report']}: {path} is not JSON ({exc}); give lockdown's report.json"
                )
    try:
        wanted = revoke.collect_keys(
            [str(k) for k in p["keys"]],
            files,
            reports,
            argument_names=(names["keys"], names["keys_file"], names["lockdown_report"]),
        )
    except revoke.KeySpecError as exc:
        module.fail_json(msg=str(exc), argument=exc.argument)
    protected = []
    for path in p["protect_public_key_files"]:
        if os.path.isfile(path):
            try:
                protected += [k.fingerprint for k in revoke.parse_key_text(read_text(module, "", path), "", path)]
            except revoke.KeySpecError:
                continue
    clash = revoke.clashes_with(wanted, protected)
    if clash:
        module.fail_json(
            msg=f"{names['keys']}: {', '.join(clash)} is the key Ansible logs in with; revoking it would lock this "
            "play out of every host after the first. Log in with another key (ansible_ssh_private_key_file), run again",
            argument="keys",
        )
    module.exit_json(
        changed=False,
        keys=[k.to_dict() for k in wanted],
        specs=[k.public_key or k.fingerprint for k in wanted],
        protected=protected,
    )


if __name__ == "__main__":
    main()
