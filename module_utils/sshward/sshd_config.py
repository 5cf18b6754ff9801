"""Lossless model of sshd_config: parse, resolve Include/Match, plan edits, render.

Behaviour follows OpenSSH's servconf.c / misc.c (portable 8.4 .. 10.x):

* sshd splits the file on ``\\n`` only.  Leading `` \\t\\r`` and trailing
  `` \\t\\r\\n\\f`` are whitespace.  The keyword ends at the first whitespace
  or at a single ``=`` (``Keyword=value``, ``Keyword = value``).  A keyword
  starting with ``#`` makes the whole line a comment.
* Arguments are split by ``argv_split(..., terminate_on_comment=1)``
  (OpenSSH >= 8.7): separators are space and tab, ``"`` and ``'`` quote,
  ``\\`` escapes a quote, a backslash or (outside quotes) a space, and a
  ``#`` that *starts* an argument ends the line.  A ``#`` inside an argument
  (``Banner /etc/issue#1``) is part of it.  OpenSSH < 8.7 (Debian 11) has no
  trailing-comment support at all: ``PasswordAuthentication no # x`` is
  "garbage at end of line" there.  We parse the modern way, flag such lines
  (:attr:`Line.trailing_comment`) and never write them.
* sshd keeps the FIRST value it reads for most keywords; the keywords in
  :data:`ACCUMULATING` add up over every line instead.
* ``Include`` arguments that are not absolute are relative to ``/etc/ssh``;
  each is expanded with glob(3) (sorted, C locale byte order); a pattern
  matching nothing is skipped.  An included file inherits the Match context
  of its Include line; a ``Match`` inside an included file lasts until the end
  of that file only (servconf.c restores ``activep`` after the Include).

Text is handled as ``str``; bytes input is decoded as UTF-8 with
``surrogateescape`` so arbitrary bytes round-trip (see :func:`to_bytes`).
A NUL byte raises :class:`ValueError`: sshd reads lines with C strings and
would silently truncate (and join) lines there.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable, Union

SSHDIR = "/etc/ssh"
MAX_INCLUDE_DEPTH = 16  # SERVCONF_MAX_DEPTH in servconf.c
NEUTRALISE_PREFIX = "# sshward: "

# sshd_config(5) keywords, OpenSSH 7.x .. 10.x, including deprecated and
# Debian-specific ones (GSSAPIKeyExchange ...).  Lower-case -> canonical.
_KEYWORDS = """
AcceptEnv AddressFamily AllowAgentForwarding AllowGroups AllowStreamLocalForwarding
AllowTcpForwarding AllowUsers AuthenticationMethods AuthorizedKeysCommand
AuthorizedKeysCommandUser AuthorizedKeysFile AuthorizedPrincipalsCommand
AuthorizedPrincipalsCommandUser AuthorizedPrincipalsFile Banner CASignatureAlgorithms
ChallengeResponseAuthentication ChannelTimeout ChrootDirectory Ciphers ClientAliveCountMax
ClientAliveInterval Compression DebianBanner DenyGroups DenyUsers DisableForwarding
DSAAuthentication ExposeAuthInfo FingerprintHash ForceCommand GatewayPorts
GSSAPIAuthentication GSSAPICleanupCredentials GSSAPIKexAlgorithms GSSAPIKeyExchange
GSSAPIStoreCredentialsOnRekey GSSAPIStrictAcceptorCheck GSSAPIEnablek5users
HostbasedAcceptedAlgorithms HostbasedAcceptedKeyTypes HostbasedAuthentication
HostbasedUsesNameFromPacketOnly HostCertificate HostKey HostKeyAgent HostKeyAlgorithms
IgnoreRhosts IgnoreUserKnownHosts Include IPQoS KbdInteractiveAuthentication
KerberosAuthentication KerberosGetAFSToken KerberosOrLocalPasswd KerberosTicketCleanup
KeyRegenerationInterval KexAlgorithms ListenAddress LoginGraceTime LogLevel LogVerbose
MACs Match MaxAuthTries MaxSessions MaxStartups ModuliFile PAMServiceName PasswordAuthentication
PerSourceMaxStartups PerSourceNetBlockSize PerSourcePenalties PerSourcePenaltyExemptList
PermitEmptyPasswords PermitListen PermitOpen PermitRootLogin PermitTTY PermitTunnel
PermitUserEnvironment PermitUserRC PidFile Port PrintLastLog PrintMotd Protocol
PubkeyAcceptedAlgorithms PubkeyAcceptedKeyTypes PubkeyAuthentication PubkeyAuthOptions
RDomain RefuseConnection RekeyLimit RequiredRSASize RevokedKeys RhostsRSAAuthentication
RSAAuthentication SecurityKeyProvider ServerKeyBits SetEnv SKeyAuthentication
SshdAuthPath SshdSessionPath StreamLocalBindMask StreamLocalBindUnlink StrictModes
Subsystem SyslogFacility TCPKeepAlive TrustedUserCAKeys UnusedConnectionTimeout
UseBlacklist UseDNS UseLogin UsePAM UsePrivilegeSeparation UseRoaming VersionAddendum
X11DisplayOffset X11Forwarding X11UseLocalhost XAuthLocation
"""
CANONICAL: dict[str, str] = {k.lower(): k for k in _KEYWORDS.split()}

# Keywords whose every (active) line adds to the value instead of "first wins".
# Subsystem is first-wins *per subsystem name* (older sshd: fatal on a
# duplicate name); we treat it as accumulating: the set of lines is the value.
ACCUMULATING = frozenset(
    {
        "acceptenv",
        "allowgroups",
        "allowusers",
        "denygroups",
        "denyusers",
        "hostcertificate",
        "hostkey",
        "listenaddress",
        "port",
        "subsystem",
    }
)

# Keywords that take exactly one value per line: a list value becomes one line each.
ONE_VALUE_PER_LINE = frozenset({"hostcertificate", "hostkey", "listenaddress", "port", "subsystem"})

# Keywords whose argument is one comma-separated list: a list value is joined with ",".
COMMA_LIST = frozenset(
    {
        "casignaturealgorithms",
        "ciphers",
        "gssapikexalgorithms",
        "hostbasedacceptedalgorithms",
        "hostbasedacceptedkeytypes",
        "hostkeyalgorithms",
        "kexalgorithms",
        "macs",
        "pubkeyacceptedalgorithms",
        "pubkeyacceptedkeytypes",
    }
)

# Spellings that set the same option (OpenSSH >= 8.7 semantics).  On 8.4
# ChallengeResponseAuthentication and KbdInteractiveAuthentication are two
# options: pass ``aliases=openssh.option_aliases(version)`` to plan_settings.
DEFAULT_ALIASES: dict[str, str] = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "skeyauthentication": "kbdinteractiveauthentication",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms",
    "dsaauthentication": "pubkeyauthentication",
}

_WS = " \t\r\n"

SettingValue = Union[str, Sequence[str], None]
Text = Union[str, bytes]


def canonical(keyword: str) -> str:
    """Canonical spelling of a keyword; unknown keywords are returned unchanged."""
    return CANONICAL.get(keyword.lower(), keyword)


def to_text(data: Text) -> str:
    """Decode file content losslessly (UTF-8, undecodable bytes as surrogates)."""
    if isinstance(data, bytes):
        return data.decode("utf-8", "surrogateescape")
    return data


def to_bytes(text: str) -> bytes:
    """Inverse of :func:`to_text`."""
    return text.encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------- tokenizer


def split_args(text: str) -> tuple[list[str], bool]:
    """Split an argument string as OpenSSH's argv_split(terminate_on_comment=1).

    Returns ``(args, trailing_comment)``.  Raises ValueError on an unclosed quote
    (sshd: "invalid quotes").
    """
    args: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
            continue
        if c == "#":
            return args, True
        quote = ""
        buf: list[str] = []
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " ")):
                buf.append(text[i + 1])
                i += 2
                continue
            if not quote and c in " \t":
                break
            if not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                buf.append(c)
            i += 1
        if quote:
            raise ValueError("invalid quotes")
        args.append("".join(buf))
    return args, False


def quote_arg(arg: str) -> str:
    """Render one argument so that :func:`split_args` gives it back."""
    if any(c in arg for c in "\n\0"):
        raise ValueError(f"argument contains a newline or NUL byte: {arg!r}")
    if arg and not any(c in arg for c in " \t\"'\\\r") and not arg.startswith("#"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


_KW_RE = re.compile(r"[^ \t\r\n=]*")


@dataclass
class Line:
    """One physical line, kept verbatim in :attr:`raw` (terminator included)."""

    raw: str
    keyword: str | None = None  # as written; None for blank/comment lines
    args: list[str] = field(default_factory=list)
    trailing_comment: bool = False
    error: str | None = None  # e.g. unclosed quote: sshd -t would reject the file

    @property
    def key(self) -> str | None:
        return None if self.keyword is None else self.keyword.lower()

    @property
    def body(self) -> str:
        """The line without its terminator."""
        return self.raw[:-1] if self.raw.endswith("\n") else self.raw

    @property
    def eol(self) -> str:
        return "\n" if self.raw.endswith("\n") else ""

    @property
    def indent(self) -> str:
        body = self.body
        return body[: len(body) - len(body.lstrip(" \t\r"))]


def parse_line(raw: str) -> Line:
    """Tokenize one line as servconf.c does."""
    line = Line(raw)
    body = line.body.lstrip(" \t\r").rstrip(_WS + "\f")
    if not body:
        return line
    m = _KW_RE.match(body)
    keyword = m.group(0) if m else ""
    rest = body[len(keyword) :]
    # strdelim: skip whitespace, then at most one '=', then whitespace.
    rest = rest.lstrip(_WS)
    if rest.startswith("="):
        rest = rest[1:].lstrip(_WS)
    if not keyword or keyword.startswith("#"):
        return line
    line.keyword = keyword
    try:
        line.args, line.trailing_comment = split_args(rest)
    except ValueError as exc:
        line.error = str(exc)
        line.args = rest.split()
    return line


@dataclass
class ConfigFile:
    path: str
    lines: list[Line]

    def render(self) -> str:
        return "".join(line.raw for line in self.lines)

    @property
    def newline(self) -> str:
        crlf = sum(1 for line in self.lines if line.raw.endswith("\r\n"))
        return "\r\n" if crlf * 2 > len(self.lines) else "\n"


def parse(text: Text, path: str = "<string>") -> ConfigFile:
    """Parse config text into lines; ``parse(x).render() == x`` for any str without NUL."""
    text = to_text(text)
    nul = text.find("\0")
    if nul >= 0:
        lineno = text.count("\n", 0, nul) + 1
        raise ValueError(f"{path} line {lineno}: NUL byte in sshd_config; sshd would truncate the line there")
    raws = text.split("\n")
    lines = [parse_line(r + "\n") for r in raws[:-1]]
    if raws[-1]:
        lines.append(parse_line(raws[-1]))
    return ConfigFile(path, lines)


def render(cfg: ConfigFile) -> str:
    return cfg.render()


# --------------------------------------------------------------------------- read order


@dataclass(frozen=True)
class MatchContext:
    """The Match line a directive falls under."""

    path: str
    lineno: int
    args: tuple[str, ...]

    @property
    def is_all(self) -> bool:
        return len(self.args) == 1 and self.args[0].lower() == "all"


@dataclass(frozen=True)
class Directive:
    """One directive in sshd's read order."""

    path: str
    lineno: int  # 1-based
    keyword: str  # canonical spelling
    args: tuple[str, ...]
    match: MatchContext | None
    include_chain: tuple[tuple[str, int], ...] = ()  # (path, lineno) of the Include lines leading here

    @property
    def key(self) -> str:
        return self.keyword.lower()

    @property
    def is_global(self) -> bool:
        """Applies to every connection (no Match, or under ``Match all``)."""
        return self.match is None or self.match.is_all


Reader = Callable[[str], Text]
Lister = Callable[[str], Iterable[str]]


def os_read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def os_listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


class MemoryFS:
    """A dict-backed file system for tests and for planning on the controller."""

    def __init__(self, files: Mapping[str, Text]) -> None:
        self.files: dict[str, Text] = dict(files)

    def read(self, path: str) -> Text:
        if path not in self.files:
            raise FileNotFoundError(path)
        return self.files[path]

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        names = set()
        for p in self.files:
            if p.startswith(prefix):
                names.add(p[len(prefix) :].split("/", 1)[0])
        return sorted(names)


_MAGIC = re.compile(r"[*?\[]")


def _glob(pattern: str, listdir: Lister) -> list[str]:
    """glob(3) without flags on top of ``listdir``: sorted, hidden files need an explicit dot."""
    if not _MAGIC.search(pattern):
        parent, name = posixpath.split(pattern)
        return [pattern] if name in set(listdir(parent or "/")) else []
    parts = pattern.split("/")
    paths = ["/" if pattern.startswith("/") else ""]
    for i, part in enumerate(parts):
        if part == "" and i == 0:
            continue
        nxt: list[str] = []
        for base in paths:
            if _MAGIC.search(part):
                for name in listdir(base or "."):
                    if name.startswith(".") and not part.startswith("."):
                        continue
                    if fnmatch.fnmatchcase(name, part):
                        nxt.append(posixpath.join(base, name) if base else name)
            else:
                nxt.append(posixpath.join(base, part) if base else part)
        paths = nxt
    # Keep only paths that exist (the last component of a non-magic tail).
    existing = []
    for p in paths:
        parent, name = posixpath.split(p)
        if name in set(listdir(parent or "/")):
            existing.append(p)
    return sorted(existing, key=to_bytes)


def resolve_include(arg: str, listdir: Lister, sshdir: str = SSHDIR) -> list[str]:
    """Files an ``Include`` argument expands to, in the order sshd reads them."""
    path = arg if arg.startswith(("/", "~")) else f"{sshdir}/{arg}"
    return _glob(path, listdir)


@dataclass
class ConfigTree:
    """The main file, every included file, and the directives in read order."""

    main: str
    files: dict[str, ConfigFile]
    order: list[Directive]

    def first(self, keyword: str, aliases: Mapping[str, str] | None = None) -> Directive | None:
        """The first directive for ``keyword`` (or an alias) that applies globally."""
        for d in self.global_directives(keyword, aliases):
            return d
        return None

    def global_directives(self, keyword: str, aliases: Mapping[str, str] | None = None) -> list[Directive]:
        opt = _option(keyword, aliases)
        return [d for d in self.order if d.is_global and _option(d.keyword, aliases) == opt]

    def effective(self, keyword: str, aliases: Mapping[str, str] | None = None) -> list[tuple[str, ...]]:
        """Global value as sshd computes it: the first line, or every line for ACCUMULATING keywords."""
        found = self.global_directives(keyword, aliases)
        if _option(keyword, aliases) in ACCUMULATING:
            return [d.args for d in found]
        return [found[0].args] if found else []

    def effective_all(self, aliases: Mapping[str, str] | None = None) -> dict[str, list[tuple[str, ...]]]:
        """:meth:`effective` for every keyword that appears in global context."""
        out: dict[str, list[tuple[str, ...]]] = {}
        for d in self.order:
            if d.key in ("include", "match") or not d.is_global:
                continue
            name = canonical(_option(d.keyword, aliases))
            if name not in out:
                out[name] = self.effective(d.keyword, aliases)
        return out


def _option(keyword: str, aliases: Mapping[str, str] | None) -> str:
    key = keyword.lower()
    table = DEFAULT_ALIASES if aliases is None else aliases
    return table.get(key, key)


def load_tree(
    main_path: str,
    read: Reader = os_read,
    listdir: Lister = os_listdir,
    sshdir: str = SSHDIR,
) -> ConfigTree:
    """Parse ``main_path`` and everything it includes; compute sshd's read order."""
    files: dict[str, ConfigFile] = {}
    order: list[Directive] = []

    def load(path: str) -> ConfigFile:
        if path not in files:
            files[path] = parse(read(path), path)
        return files[path]

    def walk(
        path: str,
        context: MatchContext | None,
        chain: tuple[tuple[str, int], ...],
        depth: int,
    ) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            raise ValueError(f"{path}: Include nested more than {MAX_INCLUDE_DEPTH} deep (recursion?)")
        cfg = load(path)
        current = context
        for idx, line in enumerate(cfg.lines):
            if line.keyword is None:
                continue
            lineno = idx + 1
            key = line.key
            if key == "match":
                current = MatchContext(path, lineno, tuple(line.args))
                order.append(Directive(path, lineno, "Match", tuple(line.args), current, chain))
                continue
            order.append(Directive(path, lineno, canonical(line.keyword), tuple(line.args), current, chain))
            if key == "include":
                for arg in line.args:
                    for inc in resolve_include(arg, listdir, sshdir):
                        walk(inc, current, (*chain, (path, lineno)), depth + 1)

    walk(main_path, None, (), 0)
    return ConfigTree(main_path, files, order)


def read_order(main_path: str, read: Reader = os_read, listdir: Lister = os_listdir) -> list[Directive]:
    """All directives in the order sshd reads them: (file, line, keyword, args, match context)."""
    return load_tree(main_path, read, listdir).order


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class LineRef:
    path: str
    lineno: int
    text: str
    reason: str = ""


@dataclass
class Plan:
    """Edits computed by :func:`plan_settings`."""

    files: dict[str, str]  # path -> new content (only files that change)
    changes: list[LineRef]  # human-readable edits, in the original files' line numbers
    neutralised: list[LineRef]  # lines commented out in files we do not manage
    dead: list[LineRef]  # lines in other files that sshd now reads too late to matter
    remaining: list[LineRef]  # lines in other files that still apply (for removals)

    @property
    def changed(self) -> bool:
        return bool(self.files)

    def files_bytes(self) -> dict[str, bytes]:
        return {p: to_bytes(t) for p, t in self.files.items()}

    @property
    def summary(self) -> str:
        out = [f"{c.path}:{c.lineno}: {c.reason} {_printable(c.text)}" for c in self.changes]
        out += [f"{c.path}:{c.lineno}: commented out ({c.reason}): {_printable(c.text)}" for c in self.neutralised]
        out += [f"{c.path}:{c.lineno}: overridden, now ignored by sshd: {_printable(c.text)}" for c in self.dead]
        out += [
            f"{c.path}:{c.lineno}: still applies (not a managed file): {_printable(c.text)}" for c in self.remaining
        ]
        return "\n".join(out) if out else "no changes"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "\\x%02x" % (ord(c) & 0xFF) for c in text.rstrip("\r\n"))


def desired_lines(keyword: str, value: SettingValue) -> list[list[str]]:
    """Turn a setting value into the argument lists of the lines to write.

    ``str``: the argument text, tokenized like sshd (``"sftp /usr/lib/sftp-server"``);
    list: comma-joined for COMMA_LIST keywords, one line per item for
    ONE_VALUE_PER_LINE keywords, otherwise the arguments of a single line.
    """
    if value is None:
        return []
    key = keyword.lower()
    if isinstance(value, str):
        items = [value]
    else:
        items = list(value)
        if not items:
            return []
        if key in COMMA_LIST:
            items = [",".join(items)]
        elif key not in ONE_VALUE_PER_LINE:
            return [[_check_arg(keyword, v) for v in items]]
    out = []
    for item in items:
        if any(c in item for c in "\n\r\0"):
            raise ValueError(f"{canonical(keyword)}: value contains a newline, CR or NUL byte")
        args, comment = split_args(item)
        if comment:
            raise ValueError(f"{keyword}: value {item!r} contains '#' starting a word (a comment to sshd)")
        if not args:
            raise ValueError(f"{canonical(keyword)}: empty value; use None to remove the keyword")
        out.append(args)
    return out


def _check_arg(keyword: str, arg: str) -> str:
    if any(c in arg for c in "\n\r\0"):
        raise ValueError(f"{canonical(keyword)}: value contains a newline, CR or NUL byte")
    if arg == "":
        raise ValueError(f"{canonical(keyword)}: empty argument")
    return arg


def format_line(keyword: str, args: Sequence[str]) -> str:
    return " ".join([canonical(keyword), *(quote_arg(a) for a in args)])


class _Edits:
    """Pending edits of one file, applied in one pass."""

    def __init__(self, cfg: ConfigFile) -> None:
        self.cfg = cfg
        self.replace: dict[int, list[str]] = {}  # index -> new raw lines ([] = delete)
        self.insert: dict[int, list[str]] = {}  # index -> raw lines inserted before it

    def render(self) -> str:
        out: list[str] = []
        nl = self.cfg.newline
        lines = self.cfg.lines
        for idx in range(len(lines) + 1):
            for text in self.insert.get(idx, []):
                if out and not out[-1].endswith("\n"):
                    out[-1] += nl
                out.append(text + nl)
            if idx < len(lines):
                out.extend(self.replace.get(idx, [lines[idx].raw]))
        return "".join(out)


def plan_settings(
    tree: ConfigTree,
    settings: Mapping[str, SettingValue],
    aliases: Mapping[str, str] | None = None,
    managed: Iterable[str] | None = None,
) -> Plan:
    """Compute the edits that make sshd read exactly ``settings`` first (global context).

    * first-wins keyword: edit the first line sshd reads in place when it is in
      a managed file; otherwise insert into the main file before the first
      global ``Include``/``Match`` (after a ``#Keyword`` hint comment if one is
      there); later duplicates in managed files are removed; lines in other
      files that are now overridden are reported in ``Plan.dead``.
    * ACCUMULATING keyword: the managed lines are replaced by ours (in place of
      the first one), lines in other files are commented out with
      ``# sshward: `` because read order cannot override them.
    * ``None`` (or an empty list): remove the keyword's global lines from the
      managed files; lines elsewhere that still apply go to ``Plan.remaining``.

    Match blocks are never written to.
    """
    managed_set = {tree.main} if managed is None else set(managed) | {tree.main}
    edits: dict[str, _Edits] = {}
    changes: list[LineRef] = []
    neutralised: list[LineRef] = []
    dead: list[LineRef] = []
    remaining: list[LineRef] = []
    main = tree.files[tree.main]

    def ed(path: str) -> _Edits:
        if path not in edits:
            edits[path] = _Edits(tree.files[path])
        return edits[path]

    def raw(d: Directive) -> Line:
        return tree.files[d.path].lines[d.lineno - 1]

    def new_raw(d: Directive, *texts: str) -> list[str]:
        """Replacement raw lines for ``d``: its indentation, the file's newline, its own terminator last."""
        line = raw(d)
        nl = tree.files[d.path].newline
        out = [line.indent + t + nl for t in texts[:-1]]
        term = line.raw[len(line.raw.rstrip("\r\n")) :] if line.eol else ""
        return [*out, line.indent + texts[-1] + term]

    # First line of main that ends the "read before everything else" region.
    boundary = len(main.lines)
    for idx, line in enumerate(main.lines):
        if line.key in ("include", "match"):
            boundary = idx
            break

    def anchor(opt: str) -> int:
        """Insert position in main: after a '#Keyword' hint above the boundary, else at the boundary."""
        for idx in range(boundary - 1, -1, -1):
            body = main.lines[idx].body.lstrip(" \t\r")
            if body.startswith("#"):
                hint = parse_line(body.lstrip("#").lstrip(" \t") + "\n")
                if hint.keyword and _option(hint.keyword, aliases) == opt and hint.args:
                    return idx + 1
        return boundary

    seen: dict[str, str] = {}
    for keyword, value in settings.items():
        opt = _option(keyword, aliases)
        if opt in seen:
            raise ValueError(f"settings {seen[opt]!r} and {keyword!r} set the same sshd option")
        seen[opt] = keyword
        if opt in ("include", "match"):
            raise ValueError(f"{canonical(keyword)} cannot be managed with plan_settings")
        want = desired_lines(keyword, value)
        found = tree.global_directives(keyword, aliases)
        in_managed = [d for d in found if d.path in managed_set]
        others = [d for d in found if d not in in_managed]
        texts = [format_line(keyword, a) for a in want]

        if not want:
            for d in in_managed:
                ed(d.path).replace[d.lineno - 1] = []
                changes.append(LineRef(d.path, d.lineno, raw(d).body, "removed"))
            for d in others:
                remaining.append(LineRef(d.path, d.lineno, raw(d).body))
            continue

        if opt in ACCUMULATING:
            current = [list(d.args) for d in found]
            if current == want and not others:
                continue
            if in_managed and [list(d.args) for d in in_managed] == want:
                pass  # managed lines already right; only the others must go
            elif in_managed:
                first = in_managed[0]
                ed(first.path).replace[first.lineno - 1] = new_raw(first, *texts)
                changes.append(LineRef(first.path, first.lineno, raw(first).body, "replaced"))
                for d in in_managed[1:]:
                    ed(d.path).replace[d.lineno - 1] = []
                    changes.append(LineRef(d.path, d.lineno, raw(d).body, "removed"))
            else:
                ed(tree.main).insert.setdefault(anchor(opt), []).extend(texts)
                changes.append(LineRef(tree.main, anchor(opt) + 1, "\n".join(texts), "inserted"))
            for d in others:
                line = raw(d)
                ed(d.path).replace[d.lineno - 1] = [
                    line.indent + NEUTRALISE_PREFIX + line.body[len(line.indent) :] + line.eol
                ]
                neutralised.append(
                    LineRef(
                        d.path,
                        d.lineno,
                        line.body,
                        f"{canonical(keyword)} accumulates; read order cannot override it",
                    )
                )
            continue

        # First-wins keyword.
        if len(want) != 1:
            raise ValueError(f"{canonical(keyword)} takes one line; got {len(want)} values")
        first_d = found[0] if found else None
        if first_d is not None and first_d in in_managed:
            first = first_d
            if list(first.args) != want[0]:
                ed(first.path).replace[first.lineno - 1] = new_raw(first, texts[0])
                changes.append(LineRef(first.path, first.lineno, raw(first).body, "replaced"))
            later = in_managed[1:]
        else:
            pos = anchor(opt)
            ed(tree.main).insert.setdefault(pos, []).append(texts[0])
            changes.append(LineRef(tree.main, pos + 1, texts[0], "inserted"))
            later = in_managed
        for d in later:
            ed(d.path).replace[d.lineno - 1] = []
            changes.append(LineRef(d.path, d.lineno, raw(d).body, "removed duplicate"))
        for d in others:
            dead.append(LineRef(d.path, d.lineno, raw(d).body))

    files: dict[str, str] = {}
    for path, e in edits.items():
        new = e.render()
        if new != tree.files[path].render():
            files[path] = new
    return Plan(files, changes, neutralised, dead, remaining)


def apply_plan(tree: ConfigTree, plan: Plan, read: Reader, listdir: Lister = os_listdir) -> ConfigTree:
    """Reload the tree with the plan's new contents overlaid on ``read`` (for checks and idempotence)."""

    def overlay(path: str) -> Text:
        return plan.files[path] if path in plan.files else read(path)

    return load_tree(tree.main, overlay, listdir)


# ------------------------------------------------------------------ managed trailing blocks


def managed_block(text: str, name: str, lines: Sequence[str]) -> str:
    """Put ``lines`` between ``# BEGIN sshward NAME`` / ``# END sshward NAME`` at the end of ``text``.

    Used for the Match blocks sshward owns (SFTP-only groups): a Match block runs to
    the end of the file, so ours goes last, after every global keyword. An empty
    ``lines`` removes the block. Anything else in the file is left as it is.
    """
    begin, end = f"# BEGIN sshward {name}", f"# END sshward {name}"
    newline = "\r\n" if "\r\n" in text else "\n"
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if stripped == begin:
            inside = True
            continue
        if inside:
            if stripped == end:
                inside = False
            continue
        out.append(line)
    if inside:
        raise ValueError(f"{begin!r} has no matching {end!r}; fix the file by hand")
    body = "".join(out)
    if lines:
        if body and not body.endswith(("\n", "\r")):
            body += newline
        body += newline.join([begin, *lines, end]) + newline
    return body


def sftp_only_block(groups: Sequence[str]) -> list[str]:
    """The managed Match block limiting ``groups`` to SFTP; ValueError names a bad group."""
    for group in groups:
        if not group or any(c.isspace() or c in ",\"'" for c in group):
            raise ValueError(f"sftp_only_groups: {group!r} is not a plain group name")
    if not groups:
        return []
    return [
        f"Match Group {','.join(groups)}",
        "    ForceCommand internal-sftp",
        "    AllowTcpForwarding no",
        "    X11Forwarding no",
        "    PermitTunnel no",
    ]
