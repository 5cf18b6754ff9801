"""authorized_keys parsing, validation and fingerprints as sshd logs them.

Line format (sshd(8) AUTHORIZED_KEYS FILE FORMAT): ``[options] keytype base64 [comment]``.
Options are comma-separated; a double-quoted value may contain commas and
spaces, ``\\"`` escapes a quote inside it.  Like sshd (auth2-pubkeyfile.c), we
first try to read a key at the start of the line and only otherwise skip an
options field.

Everything in these files may be attacker-written (a compromised account can
edit its own authorized_keys): comments can hold any bytes, so use
:func:`printable` before logging them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

# Plain key types and the curve/size they imply.
KEY_TYPES = {
    "ssh-rsa": "rsa",
    "ssh-dss": "dsa",
    "ssh-ed25519": "ed25519",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa",
    "sk-ssh-ed25519@openssh.com": "sk-ed25519",
}
CERT_SUFFIX = "-cert-v01@openssh.com"
_CERT_TYPES = {
    "ssh-rsa-cert-v01@openssh.com": "ssh-rsa",
    "ssh-dss-cert-v01@openssh.com": "ssh-dss",
    "ssh-ed25519-cert-v01@openssh.com": "ssh-ed25519",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": "ecdsa-sha2-nistp521",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com": "sk-ssh-ed25519@openssh.com",
}
ALL_TYPES = frozenset(KEY_TYPES) | frozenset(_CERT_TYPES)
_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
MAX_LINE = 16 * 1024  # sshd reads authorized_keys lines of up to SSH_MAX_PUBKEY_BYTES (16 KiB)
_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


class InvalidKeyError(ValueError):
    """An invalid public key."""


@dataclass(frozen=True)
class PublicKey:
    keytype: str  # as written (= as embedded in the blob)
    blob: bytes
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        """As sshd logs it (for a certificate: of the certified key, like ssh-keygen -l)."""
        return fingerprint_sha256(plain_blob(self.blob))

    @property
    def fingerprint_md5(self) -> str:
        return fingerprint_md5(plain_blob(self.blob))

    @property
    def bits(self) -> int:
        return key_bits(self.blob)

    @property
    def family(self) -> str:
        """rsa, dsa, ed25519, ecdsa, sk-ecdsa, sk-ed25519 (certificates: of the certified key)."""
        return KEY_TYPES[_CERT_TYPES.get(self.keytype, self.keytype)]

    @property
    def is_certificate(self) -> bool:
        return self.keytype in _CERT_TYPES


@dataclass(frozen=True)
class AuthorizedKey:
    """One line of an authorized_keys file."""

    path: str
    lineno: int
    options: tuple[str, ...] = ()
    key: PublicKey | None = None
    error: str = ""  # set when the line is not a usable key
    raw: str = field(default="", repr=False)

    @property
    def valid(self) -> bool:
        return self.key is not None and not self.error

    @property
    def location(self) -> str:
        return f"{self.path}:{self.lineno}"


def printable(text: str, limit: int = 200) -> str:
    """Escape everything but printable ASCII (like sshd's strnvis) and cap the length."""
    out = []
    for ch in text[:limit]:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif 0xDC80 <= o <= 0xDCFF:  # undecodable byte (surrogateescape)
            out.append(f"\\x{o - 0xDC00:02x}")
        elif o < 0x100:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out) + ("..." if len(text) > limit else "")


def fingerprint_sha256(blob: bytes) -> str:
    """``SHA256:`` + unpadded base64 of sha256(blob), exactly as sshd logs it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def fingerprint_md5(blob: bytes) -> str:
    """Legacy ``MD5:aa:bb:...`` form (ssh-keygen -E md5)."""
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return "MD5:" + ":".join(digest[i : i + 2] for i in range(0, 32, 2))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self) -> bytes:
        if self.pos + 4 > len(self.data):
            raise InvalidKeyError("truncated key blob")
        (n,) = struct.unpack(">I", self.data[self.pos : self.pos + 4])
        self.pos += 4
        if n > len(self.data) - self.pos:
            raise InvalidKeyError("truncated key blob")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def mpint_bits(self) -> int:
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise InvalidKeyError("negative mpint in key blob")
        return int.from_bytes(raw, "big").bit_length()


def _parse_blob(blob: bytes) -> tuple[str, int, bytes]:
    """Validate a key blob; return (embedded type, bits, plain key blob).

    For a certificate the plain blob is the certified key's own blob: sshd and
    ssh-keygen fingerprint certificates by it (sshkey_fingerprint, force_plain).
    """
    r = _Reader(blob)
    try:
        ktype = r.string().decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidKeyError("key type in blob is not ASCII") from exc
    if ktype not in ALL_TYPES:
        raise InvalidKeyError(f"unknown key type in blob: {printable(ktype, 60)}")
    base = _CERT_TYPES.get(ktype, ktype)
    if ktype in _CERT_TYPES:
        r.string()  # nonce
    start = r.pos
    family = KEY_TYPES[base]
    if family == "rsa":
        r.mpint_bits()  # e
        bits = r.mpint_bits()  # n
    elif family == "dsa":
        bits = r.mpint_bits()  # p
        r.string()
        r.string()
        r.string()
    elif family in ("ecdsa", "sk-ecdsa"):
        curve = r.string().decode("ascii", "replace")
        if base.split("@")[0].rsplit("-", 1)[-1] != curve:
            raise InvalidKeyError("ECDSA curve does not match the key type")
        bits = _CURVE_BITS.get(curve, 0)
        if not bits:
            raise InvalidKeyError("unknown ECDSA curve")
        r.string()  # Q
        if family == "sk-ecdsa":
            r.string()  # application
    else:  # ed25519, sk-ed25519
        if len(r.string()) != 32:
            raise InvalidKeyError("Ed25519 public key is not 32 bytes")
        bits = 256
        if family == "sk-ed25519":
            r.string()  # application
    end = r.pos
    if ktype in _CERT_TYPES:
        name = base.encode("ascii")
        plain = struct.pack(">I", len(name)) + name + blob[start:end]
    else:
        if end != len(blob):
            raise InvalidKeyError("trailing data after the key")
        plain = blob
    return ktype, bits, plain


def plain_blob(blob: bytes) -> bytes:
    """The blob fingerprints are computed over (the certified key for certificates)."""
    return _parse_blob(blob)[2]


def key_bits(blob: bytes) -> int:
    """Key size in bits: RSA modulus / DSA p length, 256 for Ed25519, the curve for ECDSA."""
    return _parse_blob(blob)[1]


def parse_public_key(text: str) -> PublicKey:
    """Parse ``keytype base64 [comment]``; InvalidKeyError (a ValueError) when invalid."""
    parts = text.strip(" \t\r\n").split(None, 2)
    if len(parts) < 2:
        raise InvalidKeyError("expected 'keytype base64 [comment]'")
    ktype, b64 = parts[0], parts[1]
    if ktype not in ALL_TYPES:
        raise InvalidKeyError(f"unknown key type {printable(ktype, 60)}")
    if not set(b64) <= _B64:
        raise InvalidKeyError("key data is not base64")
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidKeyError("key data is not valid base64") from exc
    embedded = _parse_blob(blob)[0]
    if embedded != ktype:
        raise InvalidKeyError(f"key type {ktype} does not match the type inside the key ({embedded})")
    return PublicKey(ktype, blob, parts[2].rstrip("\r\n") if len(parts) > 2 else "")


def split_options(text: str) -> tuple[tuple[str, ...], str]:
    """Split a leading options field off ``text``: ((opt, ...), rest).

    The field ends at the first space/tab outside double quotes; options are
    separated by commas outside quotes.  ValueError on an unterminated quote.
    """
    opts: list[str] = []
    cur: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and quoted and i + 1 < len(text) and text[i + 1] == '"':
            cur.append('\\"')
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif not quoted and c in " \t":
            break
        elif not quoted and c == ",":
            opts.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    if quoted:
        raise InvalidKeyError("unterminated quote in key options")
    opts.append("".join(cur))
    if any(not o for o in opts):
        raise InvalidKeyError("empty key option")
    return tuple(opts), text[i:].lstrip(" \t")


def parse_authorized_line(line: str, path: str = "", lineno: int = 0) -> AuthorizedKey | None:
    """Parse one authorized_keys line; None for blank and comment lines.

    Never raises for bad input: problems are returned in ``AuthorizedKey.error``.
    """
    raw = line
    if "\0" in line:
        return AuthorizedKey(path, lineno, error="NUL byte in line", raw=raw)
    if len(line) > MAX_LINE:
        return AuthorizedKey(path, lineno, error=f"line longer than {MAX_LINE} bytes", raw=raw)
    body = line.strip(" \t\r\n")
    if not body or body.startswith("#"):
        return None
    try:
        return AuthorizedKey(path, lineno, (), parse_public_key(body), raw=raw)
    except InvalidKeyError as first_error:
        try:
            opts, rest = split_options(body)
            if not rest:
                raise first_error from None
            return AuthorizedKey(path, lineno, opts, parse_public_key(rest), raw=raw)
        except InvalidKeyError as exc:
            return AuthorizedKey(path, lineno, error=str(exc), raw=raw)


def iter_authorized_keys(text: str | bytes, path: str = "authorized_keys") -> Iterator[AuthorizedKey]:
    """Every key line of an authorized_keys file with its file:line (invalid lines too, with ``error``)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    for idx, line in enumerate(text.split("\n"), start=1):
        entry = parse_authorized_line(line, path, idx)
        if entry is not None:
            yield entry


def list_authorized_keys(text: str | bytes, path: str = "authorized_keys") -> list[AuthorizedKey]:
    return list(iter_authorized_keys(text, path))


def report(entries: list[AuthorizedKey]) -> list[str]:
    """One safe, printable line per entry: ``file:line type bits fingerprint comment``."""
    out = []
    for e in entries:
        if e.key is None or e.error:
            out.append(f"{printable(e.location)} INVALID {printable(e.error)}")
        else:
            out.append(
                f"{printable(e.location)} {e.key.keytype} {e.key.bits} {e.key.fingerprint} {printable(e.key.comment)}"
            )
    return out


def is_valid_public_key(line: str | bytes) -> bool:
    """True when ``line`` is ONE usable authorized_keys entry (options allowed).

    For the lockout guard: the blob must decode, its embedded type must match the
    declared one, and the line must not smuggle a second line.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return False
    if "\n" in line.rstrip("\n") or "\r" in line.rstrip("\r\n"):
        return False
    entry = parse_authorized_line(line)
    return entry is not None and entry.valid
