"""SSHW-KEYS: every user's authorized_keys: safe modes, declared keys present, no unknown keys; revoked keys refused.

The files are the ones sshd reads (its effective AuthorizedKeysFile, tokens expanded) for every
account in the passwd database, root included. Keys are compared by SHA-256 fingerprint, as sshd
logs them (sshward.keys), so a reported key can be found in the auth log.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import pytest

from sshward.keys import AuthorizedKey, iter_authorized_keys, parse_authorized_line, printable
from sshward.revoke import RECORD_SUFFIX, KeySpecError, effective_value, parse_key_line, parse_krl_record

from .helpers import Stat, as_root, control, stat_paths, writable_by_others
from .policy import role_policy


@dataclass
class Account:
    name: str
    uid: int
    home: str


@dataclass
class KeysFile:
    account: Account
    path: str
    stat: Stat
    dirs: list[Stat] = field(default_factory=list)
    keys: list[AuthorizedKey] = field(default_factory=list)


def expand(pattern: str, account: Account) -> str:
    """AuthorizedKeysFile tokens (%h %u %U %%) for an account; relative paths are under the home."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "%" and i + 1 < len(pattern):
            token = pattern[i + 1]
            out.append({"h": account.home, "u": account.name, "U": str(account.uid), "%": "%"}.get(token, "%" + token))
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    path = "".join(out)
    return path if path.startswith("/") else posixpath.join(account.home, path)


def dirs_up_to_home(path: str, home: str) -> list[str]:
    """The directories sshd's StrictModes checks: the file's, up to and including the home."""
    out = []
    current = posixpath.dirname(path)
    while True:
        out.append(current)
        if current in (home.rstrip("/") or "/", "/"):
            return out
        current = posixpath.dirname(current)


@pytest.fixture(scope="module")
def accounts(host) -> list[Account]:
    out = []
    for line in host.run("getent passwd").stdout.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].isdigit():
            out.append(Account(parts[0], int(parts[2]), parts[5] or "/"))
    return out


@pytest.fixture(scope="module")
def keys_files(host, effective, accounts) -> list[KeysFile]:
    patterns = [p for line in effective.get("authorizedkeysfile", []) for p in line.split() if p.lower() != "none"]
    wanted = {expand(p, a): a for a in accounts for p in patterns}
    stats = stat_paths(host, sorted(wanted))
    files = [KeysFile(a, p, stats[p]) for p, a in wanted.items() if p in stats and stats[p].kind.startswith("regular")]
    dir_stats = stat_paths(host, sorted({d for f in files for d in dirs_up_to_home(f.path, f.account.home)}))
    with as_root(host):
        for f in files:
            f.dirs = [dir_stats[d] for d in dirs_up_to_home(f.path, f.account.home) if d in dir_stats]
            content = host.run("cat -- %s", f.path)
            f.keys = [k for k in iter_authorized_keys(content.stdout, f.path) if k.valid]
    return files


@pytest.fixture(scope="module")
def declared(variables) -> dict[str, dict]:
    """{user: {"fingerprints": {fp: key line}, "exclusive": bool}} from ssh_hardening_users."""
    out = {}
    for user in role_policy("ssh_hardening", variables)["users"] or []:
        fps = {}
        for line in user.get("keys", []):
            parsed = parse_authorized_line(str(line))
            if parsed is not None and parsed.key is not None:
                fps[parsed.key.fingerprint] = str(line)
        out[user["name"]] = {"fingerprints": fps, "exclusive": bool(user.get("exclusive", False))}
    return out


def describe(key: AuthorizedKey, user: str) -> str:
    assert key.key is not None
    return f"{user} {key.location} {key.key.fingerprint} {key.key.keytype} {printable(key.key.comment, 60)}".rstrip()


@control("SSHW-KEYS-001", "authorized_keys files and their directories are safe (StrictModes rules)")
def test_authorized_keys_modes(keys_files):
    if not keys_files:
        pytest.skip("no account has an authorized_keys file")
    bad = []
    for f in keys_files:
        if f.stat.uid not in (f.account.uid, 0) or writable_by_others(f.stat.mode):
            bad.append(f"{f.account.name}: {f.stat!r}")
        bad += [
            f"{f.account.name}: directory {d!r}"
            for d in f.dirs
            if d.uid not in (f.account.uid, 0) or writable_by_others(d.mode)
        ]
    assert bad == [], "writable by someone other than the user or root: " + "; ".join(bad)


@control("SSHW-KEYS-002", "the keys ssh_hardening_users declares are installed")
def test_declared_keys_present(keys_files, declared):
    if not declared:
        pytest.skip("ssh_hardening_users declares no users")
    installed: dict[str, set[str]] = {}
    for f in keys_files:
        installed.setdefault(f.account.name, set()).update(k.key.fingerprint for k in f.keys if k.key)
    missing = [
        f"{user} lacks {fp}"
        for user, spec in declared.items()
        for fp in spec["fingerprints"]
        if fp not in installed.get(user, set())
    ]
    assert missing == [], "declared keys not installed: " + "; ".join(missing)


@control("SSHW-KEYS-003", "users declared exclusive have no other key")
def test_exclusive_users(keys_files, declared):
    exclusive = {user for user, spec in declared.items() if spec["exclusive"]}
    if not exclusive:
        pytest.skip("no user in ssh_hardening_users is exclusive")
    extra = [
        describe(k, f.account.name)
        for f in keys_files
        if f.account.name in exclusive
        for k in f.keys
        if k.key and k.key.fingerprint not in declared[f.account.name]["fingerprints"]
    ]
    assert extra == [], "keys besides the declared ones: " + "; ".join(extra)


@control("SSHW-KEYS-004", "no account has an authorized key the policy does not declare")
def test_no_unknown_keys(keys_files, declared):
    if not declared:
        pytest.skip("ssh_hardening_users declares no keys to compare with; set it to have unknown keys flagged")
    unknown = [
        describe(k, f.account.name)
        for f in keys_files
        for k in f.keys
        if k.key and k.key.fingerprint not in declared.get(f.account.name, {"fingerprints": {}})["fingerprints"]
    ]
    assert unknown == [], "unknown keys: " + "; ".join(unknown)


# ssh-keygen -Q exits 1 for a revoked key; the wrapper keeps testinfra from seeing 255 (a lost connection).
_KRL_QUERY = (
    'f=$(mktemp) && printf "%s\\n" "$1" > "$f"; ssh-keygen -Q -f "$2" "$f"; rc=$?; rm -f "$f"; '
    "exit $((rc > 1 ? 2 : rc))"
)


@control("SSHW-KEYS-005", "the keys ssh_hardening_revoked_keys lists are refused (RevokedKeys KRL)")
def test_revoked_keys_refused(host, effective, variables):
    listed = role_policy("ssh_hardening", variables)["revoked_keys"] or []
    if not listed:
        pytest.skip("ssh_hardening_revoked_keys lists no key")
    krl = effective_value(effective, "revokedkeys")
    assert krl, "sshd -T: RevokedKeys is not set, so sshd accepts every key ssh_hardening_revoked_keys lists"
    accepted = []
    with as_root(host):
        record = host.run("cat -- %s", krl + RECORD_SUFFIX)
        recorded = set(parse_krl_record(record.stdout)) if record.rc == 0 else set()
        for spec in listed:
            try:
                key = parse_key_line(str(spec), "ssh_hardening_revoked_keys")
            except KeySpecError as exc:
                accepted.append(str(exc))
                continue
            if key.public_key:
                # The real test: does the KRL sshd reads refuse this key?
                query = host.run("sh -c %s sh %s %s", _KRL_QUERY, key.public_key, krl)
                if query.rc != 1 or "REVOKED" not in query.stdout:
                    said = query.stdout.strip() or query.stderr.strip()
                    accepted.append(f"{key.fingerprint} (ssh-keygen -Q -f {krl}: {said})")
            elif key.fingerprint not in recorded:
                # Only a fingerprint: ssh-keygen -Q needs the key, so sshward's record of the KRL is what can tell.
                accepted.append(f"{key.fingerprint} (not in {krl + RECORD_SUFFIX})")
    assert accepted == [], "revoked keys sshd would still accept: " + "; ".join(accepted)
