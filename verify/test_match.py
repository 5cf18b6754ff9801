"""SSHW-MATCH: the Match contexts the policy defines are in force for the users they are meant for.

`sshd -T -C user=<member>` evaluates the Match blocks for a real member of each SFTP-only group
(sshd resolves the groups itself), so a drop-in or a later Match that undoes the block is caught.
"""

from __future__ import annotations

import pytest

from .helpers import control, sshd_T
from .policy import role_policy

SFTP_ONLY = {
    "forcecommand": ["internal-sftp"],
    "allowtcpforwarding": ["no"],
    "x11forwarding": ["no"],
    "permittunnel": ["no"],
}


def group_member(host, group: str) -> str | None:
    entry = host.run("getent group %s", group)
    if entry.rc != 0:
        return None
    _name, _pw, gid, members = (entry.stdout.strip().split(":") + [""])[:4]
    for member in filter(None, members.split(",")):
        return member
    for line in host.run("getent passwd").stdout.splitlines():
        parts = line.split(":")
        if len(parts) >= 4 and parts[3] == gid:
            return parts[0]
    return None


@control("SSHW-MATCH-001", "members of the SFTP-only groups get internal-sftp and no forwarding")
def test_sftp_only_groups(host, variables):
    groups = role_policy("ssh_hardening", variables)["sftp_only_groups"] or []
    if not groups:
        pytest.skip("ssh_hardening_sftp_only_groups is empty")
    checked, wrong = [], []
    for group in groups:
        member = group_member(host, group)
        if member is None:
            continue
        checked.append(group)
        effective = sshd_T(host, user=member)
        for keyword, value in SFTP_ONLY.items():
            if effective.get(keyword) != value:
                wrong.append(f"{group} (as {member}): {keyword} is {effective.get(keyword)}, want {value[0]}")
    if not checked:
        pytest.skip(f"no SFTP-only group has a member to check with ({', '.join(groups)})")
    assert wrong == [], "; ".join(wrong)
