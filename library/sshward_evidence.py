#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: collect incident evidence into a bundle on the host, then seal it (report, manifest, archive)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sshward_evidence
short_description: Collect SSH incident evidence on the host, most volatile first; seal it with a report and manifest
description:
  - O(state=collected) adds the O(parts) asked for to the bundle C(<path>/<incident_id>/), in the order given
    (give the volatile ones first). Parts are V(volatile) (SSH sessions, processes with exe, cwd and
    cmdline, binaries running deleted or from C(/tmp), C(/dev/shm), C(/var/tmp), TCP connections and listeners
    with their owning processes, utmp), V(commands) (iptables-save, ip6tables-save, nft list ruleset, sshd -T),
    V(logs) (the SSH story from the journal and auth.log), V(keys) (every user's authorized_keys with
    fingerprints), V(files) (recently modified files) and V(persistence) (cron, systemd units, ld.so.preload, sshd
    configuration, PAM, sudoers; copied and hashed).
  - O(state=sealed) writes C(report.json) and C(report.md) (findings and timeline), then C(MANIFEST.sha256)
    (C(sha256sum -c) format) and, with O(archive=true), C(<path>/<incident_id>.tar.gz) for fetching.
  - Collection only reads the host; it writes only inside the bundle. In check mode the parts are collected into
    a temporary directory that is removed, so the facts returned (sessions, intruder keys) are real.
  - Everything collected is treated as hostile; it is stored as JSON and escaped in the Markdown report.
version_added: "0.1.0"
author: sshward developers
options:
  state:
    description: V(collected) adds parts; V(sealed) writes the report, the manifest and the archive.
    type: str
    choices: [collected, sealed]
    default: collected
  path:
    description: Directory holding the bundles.
    type: path
    default: /var/lib/sshward/evidence
  incident_id:
    description: Names the bundle (letters, digits, dots, dashes, underscores).
    type: str
    required: true
  parts:
    description: What to collect, in this order.
    type: list
    elements: str
    choices: [volatile, commands, logs, keys, files, persistence]
    default: [volatile, commands, logs, keys, files, persistence]
  admin_networks:
    description: Admin addresses; sessions and logins from elsewhere are the intruder's.
    type: list
    elements: str
    default: []
  intruder_addresses:
    description: Addresses known to be the intruder's (added to the sources of non-admin sessions).
    type: list
    elements: str
    default: []
  recent_seconds:
    description: V(files) part, how far back a change counts as recent.
    type: int
    default: 259200
  containment:
    description: O(state=sealed), the containment steps as reported by the play (C(step), C(status), C(summary)).
    type: list
    elements: dict
    default: []
  mode:
    description: O(state=sealed), V(triage) or V(lockdown), shown in the report.
    type: str
    default: lockdown
  host:
    description: O(state=sealed), the host name shown in the report.
    type: str
    default: ""
  archive:
    description: O(state=sealed), also write C(<path>/<incident_id>.tar.gz).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: The fast, volatile part first
  sshward_evidence:
    incident_id: 2026-11-22T0540
    parts: [volatile, commands]
    admin_networks: [203.0.113.7/32]
  register: evidence

- name: Seal the bundle
  sshward_evidence:
    state: sealed
    incident_id: 2026-11-22T0540
    host: web1
    admin_networks: [203.0.113.7/32]
"""

RETURN = r"""
bundle:
  description: The bundle directory on the host.
  returned: always
  type: str
  sample: /var/lib/sshward/evidence/2026-11-22T0540
sessions:
  description: With the V(volatile) part, the SSH sessions found.
  returned: when volatile was collected
  type: list
  elements: dict
  sample: [{pid: 812, user: deploy, source_address: 198.51.100.9}]
foreign_sessions:
  description: The sessions whose source is outside O(admin_networks).
  returned: when volatile was collected
  type: list
  elements: dict
  sample: [{pid: 812, user: deploy, source_address: 198.51.100.9}]
suspicious_processes:
  description: Processes running deleted executables or from world-writable places.
  returned: when volatile was collected
  type: list
  elements: dict
  sample: [{pid: 901, exe: /dev/shm/.x, suspicious: [runs from dev/shm]}]
intruder_keys:
  description: With the V(logs) part, keys used by accepted logins from intruder addresses, with file and line.
  returned: when logs were collected
  type: list
  elements: dict
  sample: [{fingerprint: "SHA256:...", logins: [{user: deploy, file: /home/deploy/.ssh/authorized_keys, line: 2}]}]
admin_keys:
  description: With the V(logs) part, fingerprints of keys used by logins from admin addresses (never quarantined).
  returned: when logs were collected
  type: list
  elements: str
  sample: ["SHA256:..."]
report:
  description: O(state=sealed), the report as written to report.json.
  returned: when sealed
  type: dict
archive:
  description: O(state=sealed), the archive to fetch.
  returned: when sealed and archive is true
  type: str
  sample: /var/lib/sshward/evidence/2026-11-22T0540.tar.gz
manifest_sha256:
  description: O(state=sealed), SHA-256 of MANIFEST.sha256.
  returned: when sealed
  type: str
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.sshward import evidence as ev
from ansible.module_utils.sshward import lockdown, netaddr


def journal_lines(module):
    journalctl = module.get_bin_path("journalctl")
    if not journalctl:
        return None
    rc, out, _err = module.run_command(
        [journalctl, *lockdown.JOURNAL_ARGS], environ_update={"LC_ALL": "C"}, errors="surrogate_or_strict"
    )
    return out.splitlines() if rc == 0 else None


def collect(module, bundle, result):
    p = module.params
    result.update(
        lockdown.collect_parts(
            bundle,
            p["parts"],
            p["admin_networks"],
            p["intruder_addresses"],
            p["recent_seconds"],
            skip=[p["path"]],
            which=lambda name: module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"]),
            journal=lambda: journal_lines(module),
        )
    )


def seal(module, bundle, result):
    p = module.params
    try:
        result.update(
            lockdown.seal_bundle(
                bundle,
                p["incident_id"],
                p["host"],
                p["admin_networks"],
                p["intruder_addresses"],
                p["containment"],
                p["mode"],
                archive=p["archive"] and not module.check_mode,
            )
        )
    except ev.EvidenceError as exc:
        module.fail_json(msg=str(exc), **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["collected", "sealed"], default="collected"),
            path=dict(type="path", default="/var/lib/sshward/evidence"),
            incident_id=dict(type="str", required=True),
            parts=dict(
                type="list",
                elements="str",
                choices=["volatile", "commands", "logs", "keys", "files", "persistence"],
                default=["volatile", "commands", "logs", "keys", "files", "persistence"],
            ),
            admin_networks=dict(type="list", elements="str", default=[]),
            intruder_addresses=dict(type="list", elements="str", default=[]),
            recent_seconds=dict(type="int", default=259200),
            containment=dict(type="list", elements="dict", default=[]),
            mode=dict(type="str", default="lockdown"),
            host=dict(type="str", default=""),
            archive=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        netaddr.parse_networks(p["admin_networks"], "admin_networks")
        netaddr.parse_networks(p["intruder_addresses"], "intruder_addresses")
        bundle = ev.bundle_path(p["path"], p["incident_id"])
    except (ValueError, ev.EvidenceError) as exc:
        module.fail_json(msg=str(exc))
    clash = lockdown.intruder_clash(p["intruder_addresses"], p["admin_networks"])
    if clash:
        module.fail_json(msg=clash)
    result = {"bundle": bundle, "changed": not module.check_mode}
    work = bundle
    if module.check_mode:
        work = tempfile.mkdtemp(prefix="sshward-evidence-check-")
        if os.path.isdir(bundle):
            shutil.rmtree(work)
            shutil.copytree(bundle, work)
    else:
        os.makedirs(bundle, mode=0o700, exist_ok=True)
    try:
        if p["state"] == "collected":
            collect(module, work, result)
        else:
            seal(module, work, result)
    except ev.EvidenceError as exc:
        module.fail_json(msg=str(exc))
    finally:
        if work != bundle:
            shutil.rmtree(work, ignore_errors=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
