#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: move keys (by fingerprint) out of every authorized_keys file into a quarantine file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_key_quarantine
short_description: Move SSH keys, chosen by fingerprint, out of every user's authorized_keys into a quarantine file
description:
  - Every C(~/.ssh/authorized_keys) and C(authorized_keys2) of every account (or of O(users)) is read without
    following symlinks; lines whose key has one of O(fingerprints) (C(SHA256:...) as sshd logs them) are removed,
    the file rewritten atomically with its owner and mode, and each removed line recorded, with its file, line,
    user, fingerprint and comment, in O(quarantine_file) (a JSON list, kept with the incident evidence).
  - A fingerprint in O(protect_fingerprints) (the admin's own key) is refused before anything changes.
  - With O(lock_accounts), the listed accounts are locked and expired (C(usermod -L -e 1)), which also stops key
    logins; O(connecting_user) and root are refused.
version_added: "0.1.0"
author: sshward developers
options:
  fingerprints:
    description: Fingerprints of the keys to quarantine.
    type: list
    elements: str
    required: true
  users:
    description: Only these users' files (default, every account's).
    type: list
    elements: str
    default: []
  quarantine_file:
    description: JSON file the removed lines are appended to.
    type: path
    required: true
  protect_fingerprints:
    description: Keys that must never be removed (the key this admin connection uses).
    type: list
    elements: str
    default: []
  lock_accounts:
    description: Accounts to lock and expire.
    type: list
    elements: str
    default: []
  connecting_user:
    description: The user Ansible logs in as; never locked.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Quarantine the intruder's key
  sshward_key_quarantine:
    fingerprints: ["SHA256:Wc3pV8nBNu1Yq2LmZ0qgkV4nq5sQFh9bU7xK2oR6tJE"]
    quarantine_file: /var/lib/sshward/evidence/2026-11-22T0540/quarantine/keys.json
"""

RETURN = r"""
removed:
  description: The lines removed (in check mode, that would be).
  returned: always
  type: list
  elements: dict
  sample: [{user: deploy, file: /home/deploy/.ssh/authorized_keys, line: 2, fingerprint: "SHA256:...", comment: x@evil}]
locked:
  description: Accounts locked (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [deploy]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import evidence, lockdown, quarantine


def main():
    module = AnsibleModule(
        argument_spec=dict(
            fingerprints=dict(type="list", elements="str", required=True),
            users=dict(type="list", elements="str", default=[]),
            quarantine_file=dict(type="path", required=True),
            protect_fingerprints=dict(type="list", elements="str", default=[]),
            lock_accounts=dict(type="list", elements="str", default=[]),
            connecting_user=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    bad = [f for f in p["fingerprints"] if not f.startswith("SHA256:")]
    if bad:
        module.fail_json(msg=f"fingerprints: {bad} are not SHA256:... fingerprints as sshd logs them")
    refused = lockdown.lock_refusal(p["lock_accounts"], p["connecting_user"])
    if refused:
        module.fail_json(msg=refused)
    homes = [h for h in evidence.user_homes() if not p["users"] or h[0] in p["users"]]
    try:
        removed = quarantine.quarantine_keys(
            evidence.authorized_keys_files(homes),
            p["fingerprints"],
            p["quarantine_file"],
            p["protect_fingerprints"],
            check=module.check_mode,
        )
    except (OSError, quarantine.QuarantineError) as exc:
        module.fail_json(msg=str(exc))
    locked = []
    usermod = module.get_bin_path("usermod", required=bool(p["lock_accounts"]))
    for user in p["lock_accounts"]:
        rc, out, _ = module.run_command(["passwd", "-S", user], environ_update={"LC_ALL": "C"})
        already = rc == 0 and lockdown.passwd_locked(out)
        if already:
            continue
        locked.append(user)
        if not module.check_mode:
            module.run_command([usermod, "-L", "-e", "1", user], check_rc=True)
    module.exit_json(changed=bool(removed or locked), removed=[r.to_dict() for r in removed], locked=locked)


if __name__ == "__main__":
    main()
