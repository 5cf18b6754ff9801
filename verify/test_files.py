"""SSHW-FILE: ownership and modes of /etc/ssh, sshd_config, its drop-ins and the host keys.

sshd trusts these files; anyone who can write one can let themselves in. The thresholds are
sshward's: sshd_config may be world-readable (0644, Debian's default) but never writable by
group/others or executable; private host keys are 0600 root.
"""

from __future__ import annotations

import pytest

from .helpers import Stat, as_root, control, stat_paths, writable_by_others

SSH_DIR = "/etc/ssh"
MAIN = "/etc/ssh/sshd_config"
DROPIN_DIR = "/etc/ssh/sshd_config.d"


def problems_root_owned(stats: list[Stat], forbidden: int) -> list[str]:
    return [f"{s!r}" for s in stats if s.uid != 0 or s.gid != 0 or s.mode & forbidden]


@pytest.fixture(scope="module")
def host_keys(host, effective):
    """{private key path: Stat} and {public key path: Stat} of the keys sshd is configured with."""
    private = list(effective.get("hostkey", []))
    stats = stat_paths(host, private + [p + ".pub" for p in private])
    return {p: stats[p] for p in private if p in stats}, {
        p + ".pub": stats[p + ".pub"] for p in private if p + ".pub" in stats
    }


@control("SSHW-FILE-001", "/etc/ssh is root:root and not writable by group or others", devsec="sshd-04")
def test_ssh_dir(host):
    stats = stat_paths(host, [SSH_DIR])
    assert SSH_DIR in stats, f"{SSH_DIR} does not exist"
    assert problems_root_owned([stats[SSH_DIR]], 0o022) == [], f"unsafe: {stats[SSH_DIR]!r}"


@control("SSHW-FILE-002", "sshd_config is root:root, 0644 or stricter", cis="5.1.1", devsec="sshd-05")
def test_sshd_config_mode(host):
    stats = stat_paths(host, [MAIN])
    assert MAIN in stats, f"{MAIN} does not exist"
    assert problems_root_owned([stats[MAIN]], 0o133) == [], f"unsafe (want root:root, at most 0644): {stats[MAIN]!r}"


@control("SSHW-FILE-003", "the sshd_config.d drop-ins are root-owned and not writable by group or others", cis="5.1.1")
def test_dropins(host):
    with as_root(host):
        listing = host.run("find %s -mindepth 1 -maxdepth 1", DROPIN_DIR)
    if listing.rc != 0:
        pytest.skip(f"{DROPIN_DIR} does not exist on this host")
    paths = [DROPIN_DIR, *sorted(listing.stdout.split("\n"))]
    stats = stat_paths(host, [p for p in paths if p])
    bad = [repr(s) for s in stats.values() if s.uid != 0 or writable_by_others(s.mode)]
    assert bad == [], "drop-ins sshd reads first, writable by someone else than root: " + "; ".join(bad)


@control("SSHW-FILE-004", "private host keys are owned by root, mode 0600 or stricter", cis="5.1.2")
def test_private_host_keys(host_keys):
    private, _ = host_keys
    if not private:
        pytest.skip("no host key file found")
    bad = [repr(s) for s in private.values() if s.uid != 0 or s.mode & 0o177]
    assert bad == [], "private host keys readable or writable by others than root: " + "; ".join(bad)


@control("SSHW-FILE-005", "public host keys are owned by root and not writable by group or others", cis="5.1.3")
def test_public_host_keys(host_keys):
    _, public = host_keys
    if not public:
        pytest.skip("no public host key file found")
    bad = [repr(s) for s in public.values() if s.uid != 0 or s.mode & 0o133]
    assert bad == [], "public host keys writable by others than root: " + "; ".join(bad)
