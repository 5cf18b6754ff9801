#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: set sshd keywords so that sshd really runs with them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_sshd_config
short_description: Set sshd_config keywords so the effective value is the one asked for
description:
  - Sets global sshd keywords idempotently, Include and Match aware. sshd keeps the B(first) value it
    reads; a drop-in such as cloud-init's C(50-cloud-init.conf) with C(PasswordAuthentication yes) read
    before the main file's line would win. This module places each value where sshd reads it first,
    comments out accumulating keywords (AllowUsers, ...) in other files, and proves the result with
    C(sshd -T -C user=...,host=...,addr=...).
  - A global keyword is never written inside a Match block.
  - The candidate configuration is validated with C(sshd -t -f) before it is moved into place, and
    checked by the lockout guards; on any refusal nothing on the host changes.
  - Does not reload sshd. The ssh_hardening role reloads it behind an armed revert (sshward_revert)
    and probes a fresh SSH connection.
version_added: "0.1.0"
author: sshward developers
options:
  path:
    description: The main sshd configuration file.
    type: path
    default: /etc/ssh/sshd_config
  settings:
    description:
      - Keywords to set, as C(Keyword: value). A list sets an accumulating keyword (one line each) or a
        comma list (Ciphers, ...). C(null) removes the keyword from the main file.
      - Mutually exclusive with O(policy).
    type: dict
  policy:
    description:
      - The ssh_hardening role's variables without their C(ssh_hardening_) prefix; the settings are computed
        on the host for its OpenSSH version by the same core the verify suite and pyinfra deploy use.
      - Mutually exclusive with O(settings).
    type: dict
  sftp_only_groups:
    description: Groups restricted to SFTP (a managed C(Match Group) block at the end of the main file).
    type: list
    elements: str
    default: []
  connecting_user:
    description: The user Ansible logs in as; the guards refuse a config that would lock this user out.
    type: str
  connecting_address:
    description: The address that user comes from (the first field of C(SSH_CONNECTION)).
    type: str
    default: ""
  require_keys_for:
    description: Users who must keep a public key sshd accepts (the literal entries of AllowUsers are added).
    type: list
    elements: str
    default: []
  planned_keys:
    description: Public keys about to be installed, as C(user: [key lines]); the guards count them
      (and their users) as present. Used for a dry run before the users are created.
    type: dict
    default: {}
  lockout_guards:
    description: Refuse changes that would lock out O(connecting_user) or leave an allowed user without a key.
    type: bool
    default: true
  backup:
    description: Keep a timestamped copy of each file before changing it.
    type: bool
    default: true
  sshd_path:
    description: The sshd binary used for C(-t), C(-T) and C(-V).
    type: path
    default: /usr/sbin/sshd
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - ansible.builtin.files
"""

EXAMPLES = r"""
- name: Key-only logins, effective even if cloud-init's drop-in says otherwise
  sshward_sshd_config:
    settings:
      PasswordAuthentication: "no"
      KbdInteractiveAuthentication: "no"
      AllowUsers: [admin, deploy]
    connecting_user: "{{ ansible_user }}"

- name: The whole hardening policy, computed on the host for its OpenSSH version
  sshward_sshd_config:
    policy: "{{ ssh_hardening_policy }}"
    connecting_user: "{{ ansible_user }}"
    connecting_address: "{{ ansible_env.SSH_CONNECTION.split()[0] }}"
  register: sshd_result
"""

RETURN = r"""
changed_files:
  description: Files that were (or in check mode would be) rewritten.
  returned: always
  type: list
  elements: str
  sample: [/etc/ssh/sshd_config]
backups:
  description: Backup copies, one per changed file, for an armed revert.
  returned: when changed and backup is true
  type: list
  elements: dict
  sample: [{path: /etc/ssh/sshd_config, backup: /etc/ssh/sshd_config.1234.2026-11-22@05:40:00~}]
reload_pending:
  description: >-
    An earlier run installed new files but never finished the reload and probe (its record under
    C(/run/sshward) is still there), so the module reports a change, and its backups, for the caller to
    reload behind an armed revert and then delete the record.
  returned: always
  type: bool
  sample: false
settings:
  description: The keywords sshward asked for (computed from O(policy) when given).
  returned: always
  type: dict
  sample: {PasswordAuthentication: "no"}
effective:
  description: The asked-for keywords as C(sshd -T) reports them after the change.
  returned: always
  type: dict
  sample: {passwordauthentication: ["no"]}
openssh_version:
  description: The host's OpenSSH version as sshd reports it.
  returned: always
  type: str
  sample: OpenSSH_9.2p1 Debian-2+deb12u6
summary:
  description: One line per edit, comment or overridden line, for the play output.
  returned: always
  type: str
  sample: "/etc/ssh/sshd_config:12: inserted PasswordAuthentication no"
"""

import contextlib
import grp
import os
import pwd
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.sshward.effective import mismatches, parse_sshd_T
from ansible.module_utils.sshward.guards import Account, lockout_problems
from ansible.module_utils.sshward.openssh import SSH_QUERIES, option_aliases, parse_version, version_from_package
from ansible.module_utils.sshward.pending_reload import PendingReloadError, restore_first
from ansible.module_utils.sshward.pending_reload import read as read_pending_reload
from ansible.module_utils.sshward.pending_reload import record as record_pending_reload
from ansible.module_utils.sshward.policy import PolicyError, sshd_settings
from ansible.module_utils.sshward.sshd_config import (
    load_tree,
    managed_block,
    plan_settings,
    sftp_only_block,
    to_text,
)

C_LOCALE = {"LC_ALL": "C"}


def lookup_account(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    groups = [g.gr_name for g in grp.getgrall() if name in g.gr_mem]
    with contextlib.suppress(KeyError):
        groups.insert(0, grp.getgrgid(entry.pw_gid).gr_name)
    return Account(name=name, uid=entry.pw_uid, home=entry.pw_dir, groups=tuple(groups))


def read_no_follow(path):
    """Read a user-writable file without following a symlink planted there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(1 << 20)


class SshdConfigModule:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.sshd = self.params["sshd_path"]

    def run_checked(self, argv, what):
        rc, out, err = self.module.run_command(argv, environ_update=C_LOCALE)
        if rc != 0:
            self.module.fail_json(msg=f"{what} failed: {to_native(err or out).strip()}", rc=rc)
        return out

    def version(self):
        if not os.path.exists(self.sshd):
            self.module.fail_json(msg=f"sshd_path: {self.sshd} does not exist; install openssh-server or set sshd_path")
        dpkg = self.module.get_bin_path("dpkg-query")
        if dpkg:
            # sshd -V omits the distribution revision, which decides what was backported.
            rc, out, err = self.module.run_command(
                [dpkg, "-W", "-f=${Version}", "openssh-server"], environ_update=C_LOCALE
            )
            if rc == 0 and out.strip():
                try:
                    version = version_from_package(out.strip())
                    return version, str(version)
                except ValueError:
                    pass
        rc, out, err = self.module.run_command([self.sshd, "-V"], environ_update=C_LOCALE)
        text = (err or out).strip()
        try:
            return parse_version(text), text.splitlines()[0] if text else ""
        except ValueError as exc:
            self.module.fail_json(msg=f"cannot tell the OpenSSH version from '{self.sshd} -V': {exc}")

    def supported(self):
        ssh = self.module.get_bin_path("ssh")
        if not ssh:
            return None
        out = {}
        for query in SSH_QUERIES:
            rc, stdout, _ = self.module.run_command([ssh, "-Q", query], environ_update=C_LOCALE)
            if rc == 0 and stdout.strip():
                out[query] = stdout.split()
        return out or None

    def effective(self, config_path):
        argv = [self.sshd, "-T", "-f", config_path]
        user = self.params["connecting_user"]
        if user:
            addr = self.params["connecting_address"] or "127.0.0.1"
            argv += ["-C", f"user={user},host={addr},addr={addr}"]
        return parse_sshd_T(self.run_checked(argv, f"{self.sshd} -T -f {config_path}"))

    def compute_settings(self, version):
        if self.params["settings"] is not None:
            return dict(self.params["settings"])
        try:
            return sshd_settings(self.params["policy"], version, self.supported())
        except (PolicyError, KeyError) as exc:
            missing = f"policy is missing {exc}" if isinstance(exc, KeyError) else str(exc)
            self.module.fail_json(msg=missing)

    def sftp_block(self):
        try:
            return sftp_only_block(self.params["sftp_only_groups"])
        except ValueError as exc:
            self.module.fail_json(msg=str(exc))

    def main(self):
        p = self.params
        path = p["path"]
        if not os.path.isfile(path):
            self.module.fail_json(msg=f"path: {path} is not a file; point path at the main sshd_config")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd -t/-T refuse to run without it
        version, version_text = self.version()
        settings = self.compute_settings(version)
        try:
            tree = load_tree(path, sshdir=os.path.dirname(path))
            plan = plan_settings(tree, settings, aliases=option_aliases(version))
        except ValueError as exc:
            self.module.fail_json(msg=f"cannot edit {path}: {exc}")
        new_files = dict(plan.files)
        main_text = new_files.get(path, to_text(tree.files[path].render()))
        try:
            main_with_block = managed_block(main_text, "sftp-only", self.sftp_block())
        except ValueError as exc:
            self.module.fail_json(msg=f"{path}: {exc}")
        if main_with_block != to_text(tree.files[path].render()):
            new_files[path] = main_with_block
        for ref in plan.dead + plan.remaining:
            self.module.warn(f"{ref.path}:{ref.lineno}: {ref.reason}: {ref.text.strip()[:200]}")

        try:
            pending = read_pending_reload()
        except PendingReloadError as exc:
            self.module.fail_json(msg=f"{exc}; delete it after checking that sshd runs the files on disk")
        result = dict(
            changed=bool(new_files) or pending is not None,
            changed_files=sorted(new_files),
            settings=settings,
            openssh_version=version_text,
            summary=plan.summary,
            backups=[],
            reload_pending=pending is not None,
        )
        if pending is not None:
            # An earlier run installed files and never proved a reload: the daemon may still serve the
            # old settings, and the backups it kept are the last state known to work.
            result["changed_files"] = sorted(set(pending["changed_files"]) | set(new_files))
            result["backups"] = list(pending["backups"])
            self.module.warn(
                "an earlier run changed the sshd files but did not finish the reload; reloading now: "
                + ", ".join(pending["changed_files"])
            )
        if new_files:
            result["diff"] = [
                dict(before_header=f, after_header=f, before=to_text(tree.files[f].render()), after=new_files[f])
                for f in sorted(new_files)
            ]
            self.validate_candidate(path, new_files.get(path), settings)
        if new_files and not self.module.check_mode:
            backups = self.apply(new_files)
            result["backups"] = restore_first(pending, backups)
            record_pending_reload(result["changed_files"], result["backups"])
        if not self.module.check_mode or not new_files:
            effective = self.effective(path)
            wrong = mismatches(settings, effective)
            if wrong and not self.module.check_mode:
                self.restore(backups if new_files else [])
                outcome = "restored the previous files" if new_files else "no file was changed"
                self.module.fail_json(
                    msg=f"sshd would not run with the requested values, {outcome}: "
                    + "; ".join(f"{k}: wanted {w}, sshd -T says {h}" for k, (w, h) in sorted(wrong.items())),
                    mismatches=wrong,
                )
            result["effective"] = {k.lower(): effective.get(k.lower(), []) for k in settings}
        self.module.exit_json(**result)

    def validate_candidate(self, path, main_text, settings):
        """sshd -t and the lockout guards on the candidate main file, before anything is moved into place."""
        if main_text is None:
            return
        fd, tmp = tempfile.mkstemp(prefix=".sshward-candidate-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(main_text)
            rc, out, err = self.module.run_command([self.sshd, "-t", "-f", tmp], environ_update=C_LOCALE)
            if rc != 0:
                self.module.fail_json(
                    msg=f"the new configuration is rejected by sshd -t, nothing changed: {to_native(err).strip()}"
                )
            if self.params["lockout_guards"] and self.params["connecting_user"]:
                effective = self.effective(tmp)
                allow = [u for v in effective.get("allowusers", []) for u in v.split()]
                problems = lockout_problems(
                    effective,
                    self.params["connecting_user"],
                    lookup_account,
                    read_no_follow,
                    require_keys_for=list(self.params["require_keys_for"]) + allow,
                    host=self.params["connecting_address"],
                    addr=self.params["connecting_address"],
                    planned_keys=self.params["planned_keys"],
                )
                if problems:
                    self.module.fail_json(
                        msg="refusing to change sshd: " + "; ".join(problems) + ". Nothing was changed.",
                        lockout_problems=problems,
                    )
        finally:
            os.unlink(tmp)

    def apply(self, new_files):
        backups = []
        for path, text in sorted(new_files.items()):
            backup = self.module.backup_local(path) if self.params["backup"] else None
            if backup:
                backups.append(dict(path=path, backup=backup))
            fd, tmp = tempfile.mkstemp(prefix=".sshward-", dir=os.path.dirname(path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8", "surrogateescape"))
            self.module.atomic_move(tmp, path, unsafe_writes=self.params["unsafe_writes"])
        rc, out, err = self.module.run_command([self.sshd, "-t"], environ_update=C_LOCALE)
        if rc != 0:
            self.restore(backups)
            self.module.fail_json(msg=f"sshd -t rejected the installed files, restored them: {to_native(err).strip()}")
        file_args = self.module.load_file_common_arguments(self.params, path=self.params["path"])
        self.module.set_fs_attributes_if_different(file_args, False)
        return backups

    def restore(self, backups):
        for entry in backups:
            self.module.atomic_move(self.module.backup_local(entry["backup"]), entry["path"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/ssh/sshd_config"),
            settings=dict(type="dict"),
            policy=dict(type="dict"),
            sftp_only_groups=dict(type="list", elements="str", default=[]),
            connecting_user=dict(type="str"),
            connecting_address=dict(type="str", default=""),
            require_keys_for=dict(type="list", elements="str", default=[]),
            planned_keys=dict(type="dict", default={}),
            lockout_guards=dict(type="bool", default=True),
            backup=dict(type="bool", default=True),
            sshd_path=dict(type="path", default="/usr/sbin/sshd"),
        ),
        mutually_exclusive=[("settings", "policy")],
        required_one_of=[("settings", "policy")],
        add_file_common_args=True,
        supports_check_mode=True,
    )
    SshdConfigModule(module).main()


if __name__ == "__main__":
    main()
