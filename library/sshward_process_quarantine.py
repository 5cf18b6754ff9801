#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: quarantine executables running from deleted files or world-writable places."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_process_quarantine
short_description: Quarantine executables that run deleted or from /tmp, /var/tmp, /dev/shm (moved aside, hashed, a-rx)
description:
  - For each process selected (O(pids), or every process whose executable is deleted or lives under C(/tmp),
    C(/var/tmp), C(/dev/shm) or C(/run/user)), the executable is copied from C(/proc/<pid>/exe) into O(store_dir)
    (mode 0400, named by its SHA-256), the original is renamed with a C(.sshward-quarantine) suffix and made
    non-executable, and, with O(kill), the process is killed. A record per executable is appended to
    O(record_file).
  - This module's own process and its ancestors are never touched.
version_added: "0.1.0"
author: sshward developers
options:
  pids:
    description: Processes to quarantine; default, every suspicious process.
    type: list
    elements: int
    default: []
  store_dir:
    description: Where the copies go (with the incident evidence).
    type: path
    required: true
  record_file:
    description: JSON list the records are appended to.
    type: path
    required: true
  kill:
    description: Also SIGKILL the processes.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Quarantine what runs from /tmp, /dev/shm and deleted files, and kill it
  sshward_process_quarantine:
    store_dir: /var/lib/sshward/evidence/2026-11-22T0540/quarantine/executables
    record_file: /var/lib/sshward/evidence/2026-11-22T0540/quarantine/executables.json
    kill: true
"""

RETURN = r"""
quarantined:
  description: One record per process (in check mode, that would be).
  returned: always
  type: list
  elements: dict
  sample: [{pid: 901, path: /dev/shm/.x, sha256: 9f86d0..., quarantined_as: /var/lib/.../9f86d0....bin, killed: true}]
unchecked_pids:
  description:
    - Processes whose executable could not be read (no CAP_SYS_PTRACE on this host, e.g. a container), so
      they were not checked; a warning names them too.
  returned: always
  type: list
  elements: int
  sample: [4711]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import quarantine, sessions


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pids=dict(type="list", elements="int", default=[]),
            store_dir=dict(type="path", required=True),
            record_file=dict(type="path", required=True),
            kill=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    procs = sessions.list_processes()
    protected = set(sessions.ancestors(os.getpid(), procs))
    if p["pids"]:
        missing = [pid for pid in p["pids"] if pid not in procs]
        if missing:
            module.warn(f"pids: {missing} are not running; skipped")
        chosen = [procs[pid] for pid in p["pids"] if pid in procs]
    else:
        chosen = [q for q in procs.values() if q.suspicious]
    unreadable = sorted(q.pid for q in (chosen if p["pids"] else procs.values()) if q.exe_unreadable)
    if unreadable:
        module.warn(
            f"could not read /proc/PID/exe of {len(unreadable)} process(es) ({', '.join(map(str, unreadable[:20]))}):"
            " this host withholds CAP_SYS_PTRACE from root (a container or some VPSes), so they were not checked"
            " for planted executables. Look at them by hand (ls -l /proc/PID/exe where ptrace is allowed)."
        )
    done = []
    for q in chosen:
        if q.pid in protected or not q.exe:
            continue
        try:
            r = quarantine.quarantine_executable(
                q.pid, q.exe, q.exe_deleted, p["store_dir"], p["kill"], module.check_mode
            )
        except OSError as exc:
            module.warn(f"pid {q.pid}: {exc}")
            continue
        d = r.to_dict()
        d["cmdline"] = q.cmdline
        d["user"] = q.user
        done.append(d)
    if done and not module.check_mode:
        quarantine.append_records(p["record_file"], done)
    module.exit_json(changed=bool(done), quarantined=done, unchecked_pids=unreadable)


if __name__ == "__main__":
    main()
