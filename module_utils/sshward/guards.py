"""Lockout guards: would this sshd configuration still let the admin in?

Pure functions over the candidate config's `sshd -T -C user=..,host=..,addr=..` output
and the host's accounts and authorized_keys, so the Ansible module and the pyinfra
deploy refuse with the same messages. Each problem names what to change.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import netaddr
from .effective import Effective
from .keys import AuthorizedKey, list_authorized_keys


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    home: str
    groups: Sequence[str] = field(default_factory=tuple)


AccountLookup = Callable[[str], Optional[Account]]
FileReader = Callable[[str], Optional[bytes]]

# Which pubkey algorithm names accept which key types (certificates by their plain type).
_RSA_ALGS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def _one(effective: Effective, keyword: str, default: str) -> str:
    values = effective.get(keyword, [])
    return values[0] if values else default


def _list(effective: Effective, keyword: str) -> list[str]:
    out: list[str] = []
    for value in effective.get(keyword, []):
        out.extend(value.split())
    return out


def _match_pattern_list(name: str, patterns: Sequence[str]) -> bool:
    """sshd's match_pattern_list for names: `!pat` negates and wins, `*` and `?` wildcards."""
    matched = False
    for pat in patterns:
        negated = pat.startswith("!")
        if fnmatch.fnmatchcase(name, pat[1:] if negated else pat):
            if negated:
                return False
            matched = True
    return matched


def _host_matches(pattern: str, host: str, addr: str) -> bool:
    if "/" in pattern:
        try:
            return netaddr.address_in(addr, [netaddr.parse_network(pattern, "pattern")])
        except ValueError:
            return False
    return fnmatch.fnmatchcase(addr, pattern) or fnmatch.fnmatchcase(host, pattern)


def _user_entry_matches(entry: str, user: str, host: str, addr: str) -> bool:
    name, _, where = entry.partition("@")
    return fnmatch.fnmatchcase(user, name) and (not where or _host_matches(where, host, addr))


def access_refusal(effective: Effective, account: Account, host: str, addr: str) -> str | None:
    """Why sshd would refuse `account` from host/addr by Deny*/Allow* (same order as auth.c), or None."""
    deny_users, allow_users = _list(effective, "denyusers"), _list(effective, "allowusers")
    deny_groups, allow_groups = _list(effective, "denygroups"), _list(effective, "allowgroups")
    if any(_user_entry_matches(e, account.name, host, addr) for e in deny_users):
        return f"{account.name} is listed in DenyUsers"
    if allow_users and not any(_user_entry_matches(e, account.name, host, addr) for e in allow_users):
        return f"{account.name} is not listed in AllowUsers ({' '.join(allow_users)})"
    if deny_groups and any(_match_pattern_list(g, deny_groups) for g in account.groups):
        return f"a group of {account.name} is listed in DenyGroups"
    if allow_groups and not any(_match_pattern_list(g, allow_groups) for g in account.groups):
        return f"none of {account.name}'s groups ({', '.join(account.groups) or 'none'}) is in AllowGroups"
    return None


def authorized_keys_paths(effective: Effective, account: Account) -> list[str]:
    """AuthorizedKeysFile with %h %u %U %% expanded; relative paths are relative to the home directory."""
    paths = []
    for pattern in _list(effective, "authorizedkeysfile") or [".ssh/authorized_keys", ".ssh/authorized_keys2"]:
        if pattern.lower() == "none":
            continue
        out, i = [], 0
        while i < len(pattern):
            if pattern[i] == "%" and i + 1 < len(pattern):
                token = pattern[i + 1]
                out.append({"h": account.home, "u": account.name, "U": str(account.uid), "%": "%"}.get(token, ""))
                i += 2
            else:
                out.append(pattern[i])
                i += 1
        path = "".join(out)
        paths.append(path if path.startswith("/") else f"{account.home.rstrip('/')}/{path}")
    return paths


def usable_keys(
    effective: Effective, account: Account, read: FileReader, planned: Sequence[str] = ()
) -> tuple[list[AuthorizedKey], list[str]]:
    """Keys of `account` that sshd would accept under `effective` (plus `planned` key lines the
    caller is about to install), and the files looked at."""
    accepted = _list(effective, "pubkeyacceptedalgorithms") or _list(effective, "pubkeyacceptedkeytypes")
    accepted_names = {a for v in accepted for a in v.split(",")}
    min_rsa = int(_one(effective, "requiredrsasize", "1024"))
    usable, looked = [], []
    sources = [(path, read(path)) for path in authorized_keys_paths(effective, account)]
    looked = [path for path, _ in sources]
    if planned:
        sources.append(("(keys about to be installed)", "\n".join(planned).encode()))
    for path, data in sources:
        if data is None:
            continue
        for entry in list_authorized_keys(data, path):
            if entry.key is None or not entry.valid:
                continue
            if any(opt.lower() == "cert-authority" for opt in entry.options):
                continue  # authorises certificates signed by this key, not the key itself
            keytype = entry.key.keytype
            plain = keytype.replace("-cert-v01@openssh.com", "")
            names = _RSA_ALGS if plain == "ssh-rsa" else (plain,)
            if accepted_names and not any(n in accepted_names for n in names):
                continue
            if plain == "ssh-rsa" and entry.key.bits < min_rsa:
                continue
            usable.append(entry)
    return usable, looked


def lockout_problems(
    effective: Effective,
    connecting_user: str,
    lookup: AccountLookup,
    read: FileReader,
    require_keys_for: Sequence[str] = (),
    host: str = "",
    addr: str = "",
    planned_keys: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Everything in the candidate config (as `effective`) that would lock the admin out; empty when safe."""
    problems: list[str] = []
    planned = planned_keys or {}

    def find(name: str) -> Account | None:
        account = lookup(name)
        if account is None and name in planned:
            return Account(name=name, uid=-1, home=f"/home/{name}")  # created by the same run
        return account

    keys_only = _one(effective, "passwordauthentication", "yes") == "no" or _one(
        effective, "authenticationmethods", "any"
    ).startswith("publickey")
    me = find(connecting_user)
    if me is None:
        problems.append(f"the connecting user {connecting_user!r} does not exist on the host")
    else:
        refusal = access_refusal(effective, me, host, addr)
        if refusal:
            problems.append(
                f"the connecting user would be locked out: {refusal}; add {connecting_user} to the allowed users"
            )
        if me.uid == 0 and _one(effective, "permitrootlogin", "prohibit-password") == "no":
            problems.append(
                "root login would be disabled while root is the way in: connect as a sudo user with a key "
                "first, or keep permit_root_login prohibit-password"
            )
        if keys_only:
            usable, looked = usable_keys(effective, me, read, planned.get(connecting_user, ()))
            if not usable:
                problems.append(
                    f"the connecting user {connecting_user} has no public key sshd would accept in "
                    f"{', '.join(looked)}; add one before turning password login off"
                )
    for name in require_keys_for:
        if name == connecting_user or any(c in name for c in "*?!@"):
            continue
        account = find(name)
        if account is None:
            problems.append(f"allowed user {name!r} does not exist on the host; create it or remove it from the list")
            continue
        if keys_only:
            usable, looked = usable_keys(effective, account, read, planned.get(name, ()))
            if not usable:
                problems.append(
                    f"allowed user {name} has no valid public key sshd would accept in {', '.join(looked)}; "
                    "add one (ssh_hardening_users) or remove the user from ssh_hardening_allow_users"
                )
    return problems
