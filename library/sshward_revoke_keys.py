#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: find compromised SSH keys wherever sshd reads them, quarantine them and revoke them in a KRL."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_revoke_keys
short_description: Find, quarantine and revoke (KRL) compromised SSH keys on a host
description:
  - Reads C(AuthorizedKeysFile) from C(sshd -T) and expands its tokens (C(%h), C(%u), C(%U), C(%%)) for every
    account, so keys in a non-default place are found too; C(AuthorizedKeysCommand), when set, is returned so the
    report can say that keys may also come from there.
  - Every line holding one of O(keys) is moved into O(quarantine_file) (with the host, user, file, line and time);
    the file is rewritten atomically with its owner and mode, every other byte kept.
  - The keys are added (C(ssh-keygen -k -u)) to the KRL at O(krl_path), so sshd refuses them even when a line comes
    back. The KRL is built in a temporary file, each key with a known public key is tested in it with
    C(ssh-keygen -Q), and only then moved into place. A plain-text record of the revoked fingerprints sits next to it
    (O(krl_path) + C(.spec)) and tells an unchanged run from a changed one.
  - This module does not point sshd at the KRL; RV(revoked_keys_configured) says whether C(sshd -T) already does
    (the sshward_sshd_config module sets C(RevokedKeys) and the play reloads sshd).
  - Keys in an authorized_keys file changed within O(recent_seconds) that O(declared_keys) does not list are
    reported (possible intruder persistence), never removed.
  - In check mode nothing changes, and the result is the blast radius.
version_added: "0.1.0"
author: sshward developers
options:
  keys:
    description:
      - The keys to revoke, each a C(SHA256:...) fingerprint as sshd logs it or a public key line (authorized_keys
        options allowed). The playbook checks them on the controller first; this module checks them again.
      - May be empty with O(quarantine=false); the KRL is then only created (empty) when missing, so that
        C(RevokedKeys) can name it (sshd refuses every public key while that file is missing).
    type: list
    elements: str
    required: true
  quarantine:
    description: Move the matching authorized_keys lines into O(quarantine_file).
    type: bool
    default: true
  quarantine_file:
    description: JSON file the removed lines are appended to (created 0600).
    type: path
    default: /var/lib/sshward/revoked/quarantine.json
  krl:
    description: Add the keys to the KRL.
    type: bool
    default: true
  krl_path:
    description:
      - The KRL. Empty uses the file C(sshd -T) names in C(RevokedKeys) (a KRL the admin keeps is extended, never
        replaced), else C(/etc/ssh/sshward_revoked_keys).
    type: path
    default: ""
  declared_keys:
    description: Keys the inventory declares (public key lines or fingerprints); never reported as undeclared.
    type: list
    elements: str
    default: []
  recent_seconds:
    description: An authorized_keys file changed within this many seconds has its undeclared keys reported; 0 turns
      the check off.
    type: int
    default: 604800
  protect_fingerprints:
    description: Keys that must never be revoked (the key this admin connection uses); asking for one fails.
    type: list
    elements: str
    default: []
  host:
    description: The host's name, written into each quarantine record.
    type: str
    default: ""
  sshd_path:
    description: The sshd binary used for C(-T).
    type: path
    default: /usr/sbin/sshd
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Revoke a stolen key everywhere sshd reads keys from
  sshward_revoke_keys:
    keys:
      - "SHA256:Wc3pV8nBNu1Yq2LmZ0qgkV4nq5sQFh9bU7xK2oR6tJE"
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRpcnR5IGxpdHRsZSBzZWNyZXQgZGlydHkgbGl0dGxl x@evil
    declared_keys: "{{ ssh_hardening_users | map(attribute='keys') | flatten }}"
    host: "{{ inventory_hostname }}"
  register: revoked
"""

RETURN = r"""
found:
  description: Lines holding a revoked key when the module started (the blast radius on this host).
  returned: always
  type: list
  elements: dict
  sample: [{user: deploy, file: /home/deploy/.ssh/authorized_keys, line: 2, fingerprint: "SHA256:...", comment: x@evil}]
removed:
  description: The lines moved into the quarantine file (in check mode, that would be).
  returned: always
  type: list
  elements: dict
quarantined_earlier:
  description: Records of O(quarantine_file) for these keys from earlier runs (where the keys were).
  returned: always
  type: list
  elements: dict
recent_undeclared:
  description: Keys no inventory variable declares, in authorized_keys files changed within O(recent_seconds).
  returned: always
  type: list
  elements: dict
unreadable:
  description: authorized_keys paths that exist but could not be read safely (not a regular file, symlink, ...).
  returned: always
  type: list
  elements: str
krl:
  description:
    - The KRL (C(path)), its record (C(record)), and the fingerprints added to it (C(added); in check mode, that would
      be); C(created) when there was no KRL, C(rebuilt) when the KRL no longer refused a key its record lists.
  returned: when O(krl) is true
  type: dict
revoked_keys_configured:
  description: Whether C(sshd -T) already names RV(krl.path) in C(RevokedKeys).
  returned: always
  type: bool
authorized_keys_file:
  description: C(AuthorizedKeysFile) patterns from C(sshd -T).
  returned: always
  type: list
  elements: str
authorized_keys_command:
  description: C(AuthorizedKeysCommand) from C(sshd -T), empty when unset; keys it returns are only stopped by the KRL.
  returned: always
  type: str
"""

import json
import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import evidence, quarantine, revoke
from ansible.module_utils.sshward.effective import parse_sshd_T

PRIVSEP_DIR = "/run/sshd"


class Revoker:
    def __init__(self, module):
        self.module = module
        self.p = module.params

    def fail(self, msg, **kw):
        self.module.fail_json(msg=msg, **kw)

    def run(self, argv, what):
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if rc != 0:
            self.fail(f"{what} failed (rc {rc}): {(err or out).strip()}")
        return out

    def effective(self):
        os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)  # sshd -T refuses to run without it
        return parse_sshd_T(self.run([self.p["sshd_path"], "-T"], f"{self.p['sshd_path']} -T"))

    def revoked_keys(self):
        if not self.p["keys"] and not self.p["quarantine"]:
            return []  # only make sure the KRL exists (the hardening role, before RevokedKeys names it)
        try:
            wanted = revoke.collect_keys(self.p["keys"], argument_names=("keys", "keys", "keys"))
        except revoke.KeySpecError as exc:
            self.fail(str(exc))
        clash = revoke.clashes_with(wanted, self.p["protect_fingerprints"])
        if clash:
            self.fail(
                f"keys: {', '.join(clash)} is the key this admin connection uses (protect_fingerprints); revoking it "
                "would lock you out. Log in with another key first, or take it off the list"
            )
        return wanted

    def earlier(self, fingerprints):
        try:
            with open(self.p["quarantine_file"]) as fh:
                records = json.load(fh)
        except (OSError, ValueError):
            return []
        return [r for r in records if isinstance(r, dict) and r.get("fingerprint") in fingerprints]

    def file_diffs(self, files, fingerprints):
        diffs = []
        for user, path in files:
            try:
                data, _st = revoke.read_regular_nofollow(path)
            except OSError:
                continue
            new, removed = quarantine.plan_key_removal(user, path, data, fingerprints)
            if removed:
                before = data.decode("utf-8", "surrogateescape")
                diffs.append(
                    dict(
                        before_header=path,
                        after_header=path,
                        before=before,
                        after=new.decode("utf-8", "surrogateescape"),
                    )
                )
        return diffs

    def krl(self, wanted, krl_path):
        record_path = krl_path + revoke.RECORD_SUFFIX
        try:
            with open(record_path) as fh:
                current = fh.read()
        except FileNotFoundError:
            current = ""
        new_record, added = revoke.plan_krl_record(current, wanted)
        exists = os.path.isfile(krl_path)
        stale = exists and not added and not self.krl_refuses(krl_path, wanted)
        result = dict(
            path=krl_path, record=record_path, added=[k.fingerprint for k in added], created=not exists, rebuilt=stale
        )
        diff = dict(before_header=record_path, after_header=record_path, before=current, after=new_record)
        if not (added or not exists or stale) or self.module.check_mode:
            return result, diff, bool(added or not exists or stale)
        ssh_keygen = self.module.get_bin_path("ssh-keygen", required=True)
        directory = os.path.dirname(krl_path) or "/"
        workdir = tempfile.mkdtemp(prefix=".sshward-krl-", dir=directory)
        try:
            spec = os.path.join(workdir, "spec")
            with open(spec, "w") as fh:
                fh.write(new_record)
            candidate = os.path.join(workdir, "krl")
            if exists:
                shutil.copyfile(krl_path, candidate)
            rc, out, err = self.module.run_command(
                revoke.krl_argv(ssh_keygen, candidate, spec, update=exists), environ_update={"LC_ALL": "C"}
            )
            if rc != 0:
                self.fail(
                    f"krl_path: ssh-keygen could not {'update' if exists else 'create'} the KRL {krl_path} "
                    f"({(err or out).strip()}); if that file is not a KRL (RevokedKeys also takes a plain list of "
                    "keys), set krl_path to a new file"
                )
            if not self.krl_refuses(candidate, wanted):
                self.fail(
                    f"krl_path: the new KRL for {krl_path} does not refuse every key (ssh-keygen -Q); left unchanged"
                )
            os.chmod(candidate, 0o644)
            self.module.atomic_move(candidate, krl_path)
            tmp_record = os.path.join(workdir, "record")
            with open(tmp_record, "w") as fh:
                fh.write(new_record)
            os.chmod(tmp_record, 0o644)
            self.module.atomic_move(tmp_record, record_path)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return result, diff, True

    def krl_refuses(self, krl_path, wanted):
        """ssh-keygen -Q on every key whose public key we have (fingerprint-only keys cannot be tested so)."""
        with_key = [k for k in wanted if k.public_key]
        if not with_key:
            return True
        ssh_keygen = self.module.get_bin_path("ssh-keygen", required=True)
        workdir = tempfile.mkdtemp(prefix=".sshward-krlq-")
        try:
            names = []
            for i, k in enumerate(with_key):
                name = os.path.join(workdir, f"k{i}.pub")
                with open(name, "w") as fh:
                    fh.write(k.public_key + "\n")
                names.append(name)
            _rc, out, _err = self.module.run_command(
                [ssh_keygen, "-Q", "-f", krl_path, *names], environ_update={"LC_ALL": "C"}
            )
            verdicts = revoke.parse_krl_test(out)
            return all(verdicts.get(n) for n in names)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def main(self):
        p = self.p
        wanted = self.revoked_keys()
        fingerprints = [k.fingerprint for k in wanted]
        eff = self.effective()
        try:
            files = revoke.authorized_keys_files(eff, [(u, uid, h) for u, uid, h in evidence.user_homes()])
        except ValueError as exc:
            self.fail(f"sshd -T: {exc}")
        recent_since = time.time() - p["recent_seconds"] if p["recent_seconds"] > 0 else None
        declared = revoke.declared_fingerprints(p["declared_keys"])
        found, undeclared, unreadable = revoke.scan_host(files, fingerprints, declared, recent_since)
        diffs = self.file_diffs(files, fingerprints) if self.module._diff else []
        removed = []
        if p["quarantine"] and found:
            try:
                removed = quarantine.quarantine_keys(
                    files,
                    fingerprints,
                    p["quarantine_file"],
                    p["protect_fingerprints"],
                    check=self.module.check_mode,
                    annotate=dict(host=p["host"], time=evidence.iso(time.time())),
                )
            except (OSError, quarantine.QuarantineError) as exc:
                self.fail(f"quarantine_file: {exc}")
        krl_path = p["krl_path"] or revoke.effective_value(eff, "revokedkeys") or revoke.DEFAULT_KRL
        krl_result, krl_changed = {}, False
        if p["krl"]:
            krl_result, krl_diff, krl_changed = self.krl(wanted, krl_path)
            if krl_changed:
                diffs.append(krl_diff)
        self.module.exit_json(
            changed=bool(removed or krl_changed),
            keys=[k.to_dict() for k in wanted],
            found=[f.to_dict() for f in found],
            removed=[r.to_dict() for r in removed],
            quarantined_earlier=self.earlier(set(fingerprints)),
            recent_undeclared=[f.to_dict() for f in undeclared],
            unreadable=unreadable,
            krl=krl_result,
            revoked_keys_configured=revoke.effective_value(eff, "revokedkeys") == krl_path,
            authorized_keys_file=revoke.authorized_keys_patterns(eff),
            authorized_keys_command=revoke.effective_value(eff, "authorizedkeyscommand"),
            diff=diffs,
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            keys=dict(type="list", elements="str", required=True, no_log=False),
            quarantine=dict(type="bool", default=True),
            quarantine_file=dict(type="path", default="/var/lib/sshward/revoked/quarantine.json"),
            krl=dict(type="bool", default=True),
            krl_path=dict(type="path", default=""),
            declared_keys=dict(type="list", elements="str", default=[], no_log=False),
            recent_seconds=dict(type="int", default=604800),
            protect_fingerprints=dict(type="list", elements="str", default=[]),
            host=dict(type="str", default=""),
            sshd_path=dict(type="path", default="/usr/sbin/sshd"),
        ),
        supports_check_mode=True,
    )
    if not (module.params["quarantine"] or module.params["krl"]):
        module.fail_json(msg="quarantine, krl: both are false, so there is nothing to do; set at least one to true")
    if module.params["recent_seconds"] < 0:
        module.fail_json(msg="recent_seconds: must be 0 (off) or more")
    Revoker(module).main()


if __name__ == "__main__":
    main()
