"""OpenSSH version detection and what each version accepts.

``sshd -V`` (and, for old sshd without ``-V``, the usage text it prints),
``ssh -V`` and the SSH banner all carry a string like
``OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024``.  Debian
back-ports features into its stable releases, so facts are computed from the
upstream version AND the Debian revision (compared like dpkg does).

The hardened algorithm lists reproduce ssh-audit's built-in policies EXACTLY
(they compare ordered lists): :data:`SSH_AUDIT_POLICY` records which policy
each version targets, :data:`POLICY_LISTS` the lists that policy demands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Union

_VERSION_RE = re.compile(
    r"^[ \t]*(?:SSH-2\.0-)?OpenSSH_(\d{1,4})\.(\d{1,4})(?:p(\d{1,4}))?"
    r"(?:[ \t]+([A-Za-z][A-Za-z0-9.]{0,31})-([0-9A-Za-z.+~:-]{1,64}))?"
    r"[ \t]*(?:,[ \t]*([^\r\n]{0,200}))?",
    re.MULTILINE,
)


def _order(c: str) -> int:
    if c in "0123456789":
        return 0
    if ("a" <= c <= "z") or ("A" <= c <= "Z"):
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def dpkg_revision_cmp(a: str, b: str) -> int:
    """Compare two Debian version/revision strings like dpkg's verrevcmp (sign of result)."""
    i = j = 0
    digits = "0123456789"
    while i < len(a) or j < len(b):
        while (i < len(a) and a[i] not in digits) or (j < len(b) and b[j] not in digits):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first_diff = 0
        while i < len(a) and a[i] in digits and j < len(b) and b[j] in digits:
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i] in digits:
            return 1
        if j < len(b) and b[j] in digits:
            return -1
        if first_diff:
            return first_diff
    return 0


@dataclass(frozen=True)
class OpenSSHVersion:
    """A parsed OpenSSH version; compares by upstream version, then vendor revision."""

    major: int
    minor: int
    patch: int = 0  # portable release: the N of "pN"
    vendor: str = ""  # "Debian", "Ubuntu", ... ("" for upstream builds)
    vendor_revision: str = ""  # "2+deb12u3"
    ssl: str = field(default="", compare=False)  # "OpenSSL 3.0.15 3 Sep 2024"

    @property
    def upstream(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __str__(self) -> str:
        s = f"OpenSSH_{self.major}.{self.minor}" + (f"p{self.patch}" if self.patch else "")
        return s + (f" {self.vendor}-{self.vendor_revision}" if self.vendor else "")

    def _cmp(self, other: OpenSSHVersion) -> int:
        if self.upstream != other.upstream:
            return -1 if self.upstream < other.upstream else 1
        return dpkg_revision_cmp(self.vendor_revision, other.vendor_revision)

    def __lt__(self, other: OpenSSHVersion) -> bool:
        return self._cmp(other) < 0

    def __le__(self, other: OpenSSHVersion) -> bool:
        return self._cmp(other) <= 0

    def __gt__(self, other: OpenSSHVersion) -> bool:
        return self._cmp(other) > 0

    def __ge__(self, other: OpenSSHVersion) -> bool:
        return self._cmp(other) >= 0

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        return self.upstream >= (major, minor, patch)

    def _backport(self, table: Mapping[tuple[int, int, int], str]) -> bool:
        """True when this Debian build carries a backport listed as {upstream: first revision}."""
        rev = table.get(self.upstream)
        return self.vendor == "Debian" and rev is not None and dpkg_revision_cmp(self.vendor_revision, rev) >= 0

    # ---- facts -----------------------------------------------------------------
    @property
    def accepts_protocol(self) -> bool:
        """``Protocol`` is a real option before 7.6 (later: deprecated, ignored with a warning)."""
        return self.upstream < (7, 6, 0)

    @property
    def kbd_interactive_keyword(self) -> str:
        """The keyword that controls keyboard-interactive auth (the old name is an alias from 8.7)."""
        return "KbdInteractiveAuthentication" if self.at_least(8, 7) else "ChallengeResponseAuthentication"

    @property
    def pubkey_algorithms_keyword(self) -> str:
        return "PubkeyAcceptedAlgorithms" if self.at_least(8, 5) else "PubkeyAcceptedKeyTypes"

    @property
    def hostbased_algorithms_keyword(self) -> str:
        return "HostbasedAcceptedAlgorithms" if self.at_least(8, 5) else "HostbasedAcceptedKeyTypes"

    @property
    def has_per_source_penalties(self) -> bool:
        return self.at_least(9, 8)

    @property
    def has_mlkem(self) -> bool:
        """mlkem768x25519-sha256 (9.9; default KEX from 10.0)."""
        return self.at_least(9, 9)

    @property
    def has_sntrup761_plain_name(self) -> bool:
        """``sntrup761x25519-sha512`` without @openssh.com: 9.9, Debian 9.2p1-2+deb12u4."""
        return self.at_least(9, 9) or self._backport({(9, 2, 1): "2+deb12u4"})

    @property
    def has_sntrup761(self) -> bool:
        return self.at_least(8, 5)

    @property
    def has_kex_strict(self) -> bool:
        """Terrapin countermeasure (kex-strict-s-v00@openssh.com): 9.6, Debian DSA-5586-1 backports."""
        return self.at_least(9, 6) or self._backport({(9, 2, 1): "2+deb12u2", (8, 4, 1): "5+deb11u3"})

    @property
    def advertises_ext_info_s(self) -> bool:
        return self.at_least(9, 6)

    @property
    def has_sshd_session(self) -> bool:
        """sshd-session binary: upstream 9.8.  Debian stable first ships it in trixie (10.0)."""
        return self.at_least(9, 8)

    @property
    def has_sshd_auth(self) -> bool:
        """sshd-auth binary (authentication split out of sshd-session): 10.0."""
        return self.at_least(10, 0)

    @property
    def has_required_rsa_size(self) -> bool:
        return self.at_least(9, 1)

    @property
    def has_ca_signature_algorithms(self) -> bool:
        return self.at_least(7, 9)

    @property
    def has_security_keys(self) -> bool:
        """sk-ssh-ed25519@openssh.com and sk-ecdsa key types: 8.2."""
        return self.at_least(8, 2)


def parse_version(text: str | bytes) -> OpenSSHVersion:
    """Parse ``sshd -V`` / ``ssh -V`` output (or a banner); ValueError when none is found.

    Only a line that *starts* with ``OpenSSH_`` (optionally ``SSH-2.0-``) counts,
    so a hostile string later in the output cannot pose as the version.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    m = _VERSION_RE.search(text[:4096])
    if not m:
        raise ValueError(f"no OpenSSH version found in {text[:200]!r}")
    major, minor, patch, vendor, revision, ssl = m.groups()
    return OpenSSHVersion(
        int(major),
        int(minor),
        int(patch or 0),
        vendor or "",
        revision or "",
        (ssl or "").strip(),
    )


def option_aliases(version: OpenSSHVersion) -> dict[str, str]:
    """Keyword spellings that set the same option in ``version`` (for sshd_config.plan_settings)."""
    out = {"dsaauthentication": "pubkeyauthentication"}
    if version.at_least(8, 7):
        out["challengeresponseauthentication"] = "kbdinteractiveauthentication"
        out["skeyauthentication"] = "kbdinteractiveauthentication"
    else:
        out["skeyauthentication"] = "challengeresponseauthentication"
    if version.at_least(8, 5):
        out["pubkeyacceptedkeytypes"] = "pubkeyacceptedalgorithms"
        out["hostbasedacceptedkeytypes"] = "hostbasedacceptedalgorithms"
    return out


# ------------------------------------------------------------------ ssh-audit policies

PSEUDO_KEX = ("ext-info-s", "kex-strict-s-v00@openssh.com")  # appended by sshd itself, never configured

_CIPHERS_GCM_FIRST = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
_CIPHERS_256_FIRST = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-gcm@openssh.com",
    "aes128-ctr",
]
_MACS_256_FIRST = [
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "umac-128-etm@openssh.com",
]
_MACS_512_FIRST = [
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
]
_CLASSIC_KEX = [
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
]
_PQ_KEX = ["mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"]
_HOSTKEYS_RSA_FIRST = ["rsa-sha2-512", "rsa-sha2-256", "ssh-ed25519"]
_HOSTKEYS_ED_FIRST = ["ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"]


@dataclass(frozen=True)
class PolicyLists:
    """What an ssh-audit server policy requires (lists are exact and ordered)."""

    kex: tuple[str, ...]  # as the server advertises them (pseudo-algorithms included)
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]
    host_keys: tuple[str, ...]  # server host key algorithms (certificates are optional)
    host_keys_any_order: bool = False  # allow_hostkey_subset_and_reordering
    rsa_host_key_bits: int = 4096  # policies demand EXACTLY this size (allow_larger_keys is false)
    gex_modulus_bits: int | None = 3072  # smallest DH GEX modulus the server may offer

    @property
    def kex_config(self) -> list[str]:
        """KexAlgorithms to configure: the policy list without what sshd appends itself."""
        return [k for k in self.kex if k not in PSEUDO_KEX]


POLICY_LISTS: dict[str, PolicyLists] = {
    "Hardened Debian 13 (version 1)": PolicyLists(
        (*_PQ_KEX, *PSEUDO_KEX),
        tuple(_CIPHERS_256_FIRST),
        tuple(_MACS_512_FIRST),
        tuple(_HOSTKEYS_ED_FIRST),
        host_keys_any_order=True,
        gex_modulus_bits=None,
    ),
    "Hardened Debian 12 (version 3)": PolicyLists(
        ("sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", *_CLASSIC_KEX, PSEUDO_KEX[1]),
        tuple(_CIPHERS_256_FIRST),
        tuple(_MACS_256_FIRST),
        tuple(_HOSTKEYS_ED_FIRST),
    ),
    "Hardened Debian 12 (version 2)": PolicyLists(
        ("sntrup761x25519-sha512@openssh.com", *_CLASSIC_KEX, PSEUDO_KEX[1]),
        tuple(_CIPHERS_256_FIRST),
        tuple(_MACS_256_FIRST),
        tuple(_HOSTKEYS_ED_FIRST),
    ),
    "Hardened Ubuntu Server 20.04 LTS (version 5)": PolicyLists(
        (*_CLASSIC_KEX, PSEUDO_KEX[1]),
        tuple(_CIPHERS_GCM_FIRST),
        tuple(_MACS_256_FIRST),
        tuple(_HOSTKEYS_RSA_FIRST),
    ),
}

# Upstream "Hardened OpenSSH Server vX.Y" policies: minor version -> policy revision.
_UPSTREAM_POLICY_REVISION: dict[tuple[int, int], int] = {}
for _v in [(7, 7), (7, 8), (7, 9), (8, 0), (8, 1), (8, 2), (8, 3), (8, 4), (8, 5), (8, 6), (8, 7)]:
    _UPSTREAM_POLICY_REVISION[_v] = 4
for _v in [(8, 8), (8, 9), (9, 0), (9, 1), (9, 2), (9, 3)]:
    _UPSTREAM_POLICY_REVISION[_v] = 3
_UPSTREAM_POLICY_REVISION[(9, 4)] = 2
for _v in [(9, 5), (9, 6), (9, 7), (9, 8), (9, 9), (10, 0), (10, 1), (10, 2), (10, 3), (10, 4)]:
    _UPSTREAM_POLICY_REVISION[_v] = 1


def _upstream_lists(major: int, minor: int) -> PolicyLists:
    v = (major, minor)
    if v >= (10, 0):
        kex = list(_PQ_KEX)
    elif v >= (9, 9):
        kex = ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com", "mlkem768x25519-sha256"]
        kex += _CLASSIC_KEX
    elif v >= (8, 8):
        kex = ["sntrup761x25519-sha512@openssh.com", *_CLASSIC_KEX]
    else:
        kex = list(_CLASSIC_KEX)
    if v >= (9, 6):
        kex += PSEUDO_KEX
    new = v >= (10, 0)
    return PolicyLists(
        tuple(kex),
        tuple(_CIPHERS_256_FIRST if new else _CIPHERS_GCM_FIRST),
        tuple(_MACS_512_FIRST if new else _MACS_256_FIRST),
        tuple(_HOSTKEYS_RSA_FIRST),
        gex_modulus_bits=None if new else 3072,
    )


for (_maj, _min), _rev in _UPSTREAM_POLICY_REVISION.items():
    POLICY_LISTS[f"Hardened OpenSSH Server v{_maj}.{_min} (version {_rev})"] = _upstream_lists(_maj, _min)


# Which built-in ssh-audit policy each version must pass, first matching row wins:
# (vendor, upstream major.minor, lowest vendor revision or "", policy name).
SSH_AUDIT_POLICY: tuple[tuple[str, tuple[int, int], str, str], ...] = (
    ("Debian", (10, 0), "", "Hardened Debian 13 (version 1)"),  # trixie
    # bookworm from deb12u4 (sntrup761x25519-sha512 back-ported, #1088873)
    ("Debian", (9, 2), "2+deb12u4", "Hardened Debian 12 (version 3)"),
    # bookworm deb12u2/u3: Terrapin fix only -> the previous revision of the Debian 12 policy
    ("Debian", (9, 2), "2+deb12u2", "Hardened Debian 12 (version 2)"),
    # bullseye with the Terrapin fix (deb11u3) advertises kex-strict-s, which the
    # v8.4 policy does not list; the Ubuntu 20.04 policy is the v8.4 lists + kex-strict.
    ("Debian", (8, 4), "5+deb11u3", "Hardened Ubuntu Server 20.04 LTS (version 5)"),
)


def ssh_audit_policy(version: OpenSSHVersion) -> str | None:
    """Name of the built-in ssh-audit policy a hardened ``version`` server must pass (None if none)."""
    for vendor, upstream, revision, name in SSH_AUDIT_POLICY:
        if version.vendor != vendor or (version.major, version.minor) != upstream:
            continue
        if not revision or dpkg_revision_cmp(version.vendor_revision, revision) >= 0:
            return name
    rev = _UPSTREAM_POLICY_REVISION.get((version.major, version.minor))
    if rev is None:
        return None
    return f"Hardened OpenSSH Server v{version.major}.{version.minor} (version {rev})"


def policy_lists(version: OpenSSHVersion) -> PolicyLists:
    """The lists the targeted policy requires, or generic hardened lists for other versions."""
    name = ssh_audit_policy(version)
    if name is not None:
        return POLICY_LISTS[name]
    if version.upstream > (10, 4, 99):
        return _upstream_lists(10, 4)
    return _upstream_lists(version.major, version.minor)


_HOSTKEY_ALGS = [
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed25519",
    "rsa-sha2-512",
    "rsa-sha2-256",
]
_PUBKEY_ALGS = [
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed25519",
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-256",
]
_CA_SIG_ALGS = ["sk-ssh-ed25519@openssh.com", "ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"]

# `ssh -Q <query>` names that list what each keyword may contain, best first.
_QUERIES = {
    "KexAlgorithms": ("kex",),
    "Ciphers": ("cipher",),
    "MACs": ("mac",),
    # `ssh -Q key` lists key types (ssh-rsa), not the signature algorithms (rsa-sha2-512) these
    # keywords take, so it is the last resort.
    "HostKeyAlgorithms": ("hostkeyalgorithms", "sig", "key"),
    "PubkeyAcceptedAlgorithms": ("pubkeyacceptedalgorithms", "sig", "key"),
    "PubkeyAcceptedKeyTypes": ("pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms", "sig", "key"),
    "CASignatureAlgorithms": ("casignaturealgorithms", "sig", "key"),
}

# What every front end asks `ssh -Q` for, to learn what the host's build supports.
SSH_QUERIES = ("kex", "cipher", "mac", "key", "sig", "HostKeyAlgorithms", "PubkeyAcceptedAlgorithms")

Supported = Mapping[str, Union[str, Iterable[str]]]


def _supported_set(supported: Supported, keyword: str) -> set[str] | None:
    lowered = {k.lower(): v for k, v in supported.items()}
    for q in _QUERIES[keyword]:
        if q in lowered:
            val = lowered[q]
            items = val.split() if isinstance(val, str) else list(val)
            return {i.strip() for i in items if i.strip()}
    return None


def hardened_crypto(version: OpenSSHVersion, supported: Supported | None = None) -> dict[str, list[str]]:
    """Hardened algorithm settings for ``version``, in a deterministic order.

    KexAlgorithms, Ciphers and MACs equal the lists of ``ssh_audit_policy(version)``
    (pseudo-algorithms that sshd appends itself removed).  ``supported`` maps
    ``ssh -Q`` query names (kex, cipher, mac, key, HostKeyAlgorithms, ...) to
    what the host offers; lists are then intersected with it, keeping our order.
    The public-key keyword is ``PubkeyAcceptedKeyTypes`` before 8.5.
    """
    lists = policy_lists(version)
    sk = version.has_security_keys

    def keep(algs: Iterable[str]) -> list[str]:
        return [a for a in algs if sk or not a.startswith("sk-")]

    out: dict[str, list[str]] = {
        "KexAlgorithms": lists.kex_config,
        "Ciphers": list(lists.ciphers),
        "MACs": list(lists.macs),
        "HostKeyAlgorithms": keep(_HOSTKEY_ALGS),
        version.pubkey_algorithms_keyword: keep(_PUBKEY_ALGS),
    }
    if version.has_ca_signature_algorithms:
        out["CASignatureAlgorithms"] = keep(_CA_SIG_ALGS)
    if supported is not None:
        for keyword in list(out):
            have = _supported_set(supported, keyword)
            if have is None:
                continue
            out[keyword] = [a for a in out[keyword] if a in have]
            if not out[keyword]:
                raise ValueError(f"{keyword}: the host supports none of the hardened algorithms")
    return out


@dataclass(frozen=True)
class HostKeySpec:
    type: str  # ssh-keygen -t
    path: str
    bits: int


def hardened_host_keys(version: OpenSSHVersion) -> list[HostKeySpec]:
    """HostKey lines in the order the policy expects the server's host key algorithms.

    sshd advertises host key algorithms in HostKey order (RSA gives rsa-sha2-512,
    rsa-sha2-256), filtered by HostKeyAlgorithms, so this order is what the
    exact-match policies see.  RSA must be exactly 4096 bits for the policies.
    """
    lists = policy_lists(version)
    ed = HostKeySpec("ed25519", "/etc/ssh/ssh_host_ed25519_key", 256)
    rsa = HostKeySpec("rsa", "/etc/ssh/ssh_host_rsa_key", lists.rsa_host_key_bits)
    return [ed, rsa] if lists.host_keys[0] == "ssh-ed25519" else [rsa, ed]


# Kept after the post-quantum ones by crypto "compatible": clients without ML-KEM or sntrup761
# (paramiko, hence pyinfra and Ansible's paramiko connection; PuTTY before 0.81; older OpenSSH)
# still agree on a curve25519 exchange, while every capable client picks the hybrid one first.
_COMPAT_KEX = ["curve25519-sha256", "curve25519-sha256@libssh.org"]


def hardened_settings(
    version: OpenSSHVersion, supported: Supported | None = None, compatible: bool = False
) -> dict[str, list[str]]:
    """hardened_crypto + HostKey order + RequiredRSASize (9.1+): ready for plan_settings.

    ``compatible`` appends the curve25519 exchanges where the release's hardened list is
    post-quantum only (OpenSSH 10), at the price of not matching ssh-audit's policy exactly.
    """
    out = hardened_crypto(version, supported)
    if compatible:
        have = _supported_set(supported, "KexAlgorithms") if supported is not None else None
        out["KexAlgorithms"] += [
            k for k in _COMPAT_KEX if k not in out["KexAlgorithms"] and (have is None or k in have)
        ]
    out["HostKey"] = [k.path for k in hardened_host_keys(version)]
    if version.has_required_rsa_size:
        out["RequiredRSASize"] = ["3072"]
    return out


# ------------------------------------------------------------------ moduli


def filter_moduli(text: str, min_bits: int = 3072) -> str:
    """Keep the /etc/ssh/moduli entries whose modulus has at least ``min_bits`` bits.

    Field 5 ("size") is the modulus size MINUS ONE (dh.c adds 1 and checks it
    against BN_num_bits), so the 3072-bit groups read ``3071``: for the default
    3072 this is ``awk '$5 >= 3071'``.  Comment and blank lines are kept;
    malformed lines are dropped (sshd skips them too).  ValueError if no group
    survives: sshd would then fall back to a fixed 2048-bit group.
    """
    out: list[str] = []
    kept = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            out.append(line)
            continue
        fields = stripped.split()
        if len(fields) != 7 or not fields[4].isdigit():
            continue
        if int(fields[4]) + 1 >= min_bits:
            out.append(line)
            kept += 1
    if not kept:
        raise ValueError(f"no DH group of at least {min_bits} bits in moduli; refusing to empty the file")
    return "".join(out)


def version_from_package(package_version: str, vendor: str = "Debian") -> OpenSSHVersion:
    """dpkg's ``1:9.2p1-2+deb12u10`` -> the version sshd's banner carries (``OpenSSH_9.2p1 Debian-2+deb12u10``).

    ``sshd -V`` prints only ``OpenSSH_9.2``; the Debian revision tells which fixes were
    backported (kex-strict, the plain sntrup761 name), and ssh-audit's policies depend on it.
    """
    text = package_version.strip()
    if ":" in text:
        text = text.split(":", 1)[1]
    upstream, _, revision = text.partition("-")
    return parse_version(f"OpenSSH_{upstream} {vendor}-{revision}" if revision else f"OpenSSH_{upstream}")
