"""pyinfra facts sshward's operations read: a command plus ``process(output)``.

Every command exits 0 and says what it found on standard output (pyinfra fails a host when a
fact's command fails); file contents travel base64-encoded so any byte survives the trip.
Data never goes into a command unquoted: arguments are ``shlex.quote``d and payloads base64.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from pyinfra.api import FactBase

from sshward.effective import Effective, parse_sshd_T
from sshward.guards import Account
from sshward.openssh import SSH_QUERIES, OpenSSHVersion, parse_version, version_from_package

SSHD = "/usr/sbin/sshd"


def _b64(text: str | bytes) -> str:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.strip() or b"")


def _files_script(paths: Iterable[str], dirs: Iterable[str] = ()) -> str:
    """Shell printing `F <path b64> <content b64>` per readable regular file (dirs: their files)."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    qdirs = " ".join(shlex.quote(d) for d in dirs)
    emit = 'printf "F %s %s\\n" "$(printf %s "$f" | base64 -w0)" "$(base64 -w0 < "$f")"'
    parts = [f'for f in {quoted}; do if [ -f "$f" ]; then {emit}; fi; done'] if quoted else []
    if qdirs:
        parts.append(
            f'for d in {qdirs}; do printf "D %s\\n" "$(printf %s "$d" | base64 -w0)"; '
            f'for f in "$d"/*; do if [ -f "$f" ]; then {emit}; fi; done; done'
        )
    return "; ".join([*parts, "echo END"])


def _files_process(output: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for line in output:
        kind, *rest = line.split(" ")
        if kind == "F" and len(rest) == 2:
            files[_unb64(rest[0]).decode("utf-8", "surrogateescape")] = _unb64(rest[1])
    return files


class ConnectionInfo(FactBase[dict[str, str]]):
    """Who pyinfra is connected as, and from where (first field of SSH_CONNECTION).

    Read it with ``_sudo=False``: sudo drops SSH_CONNECTION.
    """

    def command(self) -> str:
        return 'printf "%s\\n%s\\n" "$(id -un)" "${SSH_CONNECTION:-}"'

    def process(self, output: list[str]) -> dict[str, str]:
        user = output[0].strip() if output else ""
        conn = output[1].split() if len(output) > 1 else []
        return {"user": user, "address": conn[0] if conn else "", "port": conn[3] if len(conn) > 3 else ""}


class OpenSSHServerVersion(FactBase[OpenSSHVersion]):
    """The OpenSSH version from the package (``sshd -V`` omits the Debian revision), else from ``sshd -V``."""

    def command(self, sshd: str = SSHD) -> str:
        return (
            "printf 'P %s\\n' \"$(dpkg-query -W -f='${Version}' openssh-server 2>/dev/null)\"; "
            f"printf 'V %s\\n' \"$({shlex.quote(sshd)} -V 2>&1 | head -n1)\""
        )

    def process(self, output: list[str]) -> OpenSSHVersion:
        package = next((line[2:].strip() for line in output if line.startswith("P ")), "")
        banner = next((line[2:].strip() for line in output if line.startswith("V ")), "")
        if package:
            try:
                return version_from_package(package)
            except ValueError:
                pass
        return parse_version(banner)


class SshQueries(FactBase[dict[str, list[str]]]):
    """``ssh -Q`` lists (what this OpenSSH build supports), keyed like ``sshward.openssh.SSH_QUERIES``."""

    def command(self) -> str:
        # OpenSSH 8.4 exits 255 for some queries: each one is printed on its own and errors ignored.
        return "; ".join(f"echo '## {q}'; ssh -Q {q} 2>/dev/null" for q in SSH_QUERIES) + "; echo '## end'"

    def process(self, output: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        current = None
        for line in output:
            if line.startswith("## "):
                current = line[3:].strip()
                continue
            if current and current != "end" and line.strip():
                out.setdefault(current, []).extend(line.split())
        return out

    @staticmethod
    def default() -> dict[str, list[str]]:
        return {}


class SshdConfigFiles(FactBase[dict[str, bytes]]):
    """The main sshd_config and every file in the given include directories (path -> bytes).

    The operation asks again with more directories until every ``Include`` of the tree is covered.
    """

    def command(self, path: str = "/etc/ssh/sshd_config", dirs: tuple[str, ...] = ()) -> str:
        return _files_script([path], dirs)

    def process(self, output: list[str]) -> dict[str, bytes]:
        return _files_process(output)

    @staticmethod
    def default() -> dict[str, bytes]:
        return {}


class FileContents(FactBase[dict[str, bytes]]):
    """Contents of regular files (path -> bytes); a symlink is reported as absent, as sshward's
    modules open user-writable paths with O_NOFOLLOW."""

    def command(self, paths: tuple[str, ...] = ()) -> str:
        quoted = " ".join(shlex.quote(p) for p in paths)
        emit = 'printf "F %s %s\\n" "$(printf %s "$f" | base64 -w0)" "$(base64 -w0 < "$f")"'
        return f'for f in {quoted}; do if [ -f "$f" ] && [ ! -L "$f" ]; then {emit}; fi; done; echo END'

    def process(self, output: list[str]) -> dict[str, bytes]:
        return _files_process(output)

    @staticmethod
    def default() -> dict[str, bytes]:
        return {}


class SshdEffective(FactBase[Effective]):
    """``sshd -T`` (optionally ``-f CONFIG`` and ``-C user=..,host=..,addr=..``) as {keyword: [values]}."""

    def command(self, config: str = "", context: str = "", sshd: str = SSHD) -> str:
        argv = [sshd, "-T"]
        if config:
            argv += ["-f", config]
        if context:
            argv += ["-C", context]
        return f"mkdir -p /run/sshd; {' '.join(shlex.quote(a) for a in argv)} 2>/dev/null; echo '## end'"

    def process(self, output: list[str]) -> Effective:
        return parse_sshd_T("\n".join(line for line in output if not line.startswith("## ")))

    @staticmethod
    def default() -> Effective:
        return {}


class SshdCandidate(FactBase[dict[str, Any]]):
    """Check a candidate main sshd_config without installing it: ``sshd -t -f`` and ``sshd -T -f -C``.

    The candidate is written to a private temporary file (mktemp, 0600, outside /etc/ssh) and removed
    in the same command, so /etc/ssh is not touched. Returns ``{"ok", "error", "effective"}``.
    """

    def command(self, text: str = "", context: str = "", sshd: str = SSHD) -> str:
        sshd_q = shlex.quote(sshd)
        probe = f'{sshd_q} -T -f "$t" -C {shlex.quote(context)}' if context else f'{sshd_q} -T -f "$t"'
        return (
            "mkdir -p /run/sshd; t=$(mktemp); "
            f'printf %s {shlex.quote(_b64(text))} | base64 -d > "$t"; '
            f"if e=$(LC_ALL=C {sshd_q} -t -f \"$t\" 2>&1); then echo '## ok'; "
            f"LC_ALL=C {probe} 2>&1; "
            "else echo '## rejected'; printf '%s\\n' \"$e\"; fi; rm -f \"$t\"; echo '## end'"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        ok = bool(output) and output[0] == "## ok"
        body = [line for line in output[1:] if line != "## end"]
        if ok:
            return {"ok": True, "error": "", "effective": parse_sshd_T("\n".join(body))}
        return {"ok": False, "error": "\n".join(body).strip(), "effective": {}}


class Accounts(FactBase[dict[str, Account]]):
    """Accounts as the lockout guards see them (name, uid, home, groups), for the names given."""

    def command(self, names: tuple[str, ...] = ()) -> str:
        quoted = " ".join(shlex.quote(n) for n in names) or "''"
        return (
            f'for u in {quoted}; do e=$(getent passwd -- "$u") || continue; '
            'printf "A %s\\n%s\\n" "$e" "$(id -Gn -- "$u" 2>/dev/null)"; done; echo END'
        )

    def process(self, output: list[str]) -> dict[str, Account]:
        out: dict[str, Account] = {}
        for i, line in enumerate(output):
            if not line.startswith("A "):
                continue
            fields = line[2:].split(":")
            if len(fields) < 7:
                continue
            groups = output[i + 1].split() if i + 1 < len(output) and not output[i + 1].startswith("A ") else []
            out[fields[0]] = Account(name=fields[0], uid=int(fields[2]), home=fields[5], groups=tuple(groups))
        return out

    @staticmethod
    def default() -> dict[str, Account]:
        return {}


class RsaHostKeyBits(FactBase[int]):
    """Size in bits of the RSA host key (0 when missing or unreadable)."""

    def command(self, path: str = "/etc/ssh/ssh_host_rsa_key.pub") -> str:
        return f"ssh-keygen -lf {shlex.quote(path)} 2>/dev/null | cut -d' ' -f1; echo END"

    def process(self, output: list[str]) -> int:
        first = output[0].strip() if output else ""
        return int(first) if first.isdigit() else 0

    @staticmethod
    def default() -> int:
        return 0


class FirewallHost(FactBase[dict[str, Any]]):
    """What the firewall planner needs to choose a backend: tools, versions, ruleset, ufw/firewalld."""

    TOOLS = (
        "iptables",
        "ip6tables",
        "iptables-save",
        "ip6tables-save",
        "iptables-restore",
        "ip6tables-restore",
        "nft",
        "ufw",
        "systemctl",
    )

    def command(self) -> str:
        tools = " ".join(self.TOOLS)
        return (
            "PATH=/usr/sbin:/sbin:$PATH; "
            f'for t in {tools}; do printf "T %s %s\\n" "$t" "$(command -v "$t" || true)"; done; '
            'printf "B %s\\n" "$(iptables -V 2>/dev/null | base64 -w0)"; '
            'printf "B %s\\n" "$(nft -v 2>/dev/null | base64 -w0)"; '
            'printf "B %s\\n" "$(nft list ruleset 2>/dev/null | base64 -w0)"; '
            'printf "B %s\\n" "$(systemctl is-enabled nftables.service 2>/dev/null | base64 -w0)"; '
            'printf "B %s\\n" "$(ufw status 2>/dev/null | base64 -w0)"; '
            'printf "B %s\\n" "$(systemctl is-active firewalld.service 2>/dev/null | base64 -w0)"; '
            'printf "B %s\\n" "$(systemctl is-enabled sshward-firewall.service 2>/dev/null | base64 -w0)"; '
            "echo END"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        bins: dict[str, str] = {}
        blobs: list[str] = []
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "T":
                name, _, path = rest.partition(" ")
                if path.strip():
                    bins[name] = path.strip()
            elif kind == "B":
                blobs.append(_unb64(rest).decode("utf-8", "replace"))
        keys = (
            "iptables_version",
            "nft_version",
            "nft_ruleset",
            "nftables_enabled",
            "ufw_status",
            "firewalld",
            "unit_enabled",
        )
        out: dict[str, Any] = {"bins": bins}
        out.update({k: (blobs[i] if i < len(blobs) else "") for i, k in enumerate(keys)})
        return out


class FirewallState(FactBase[dict[str, Any]]):
    """Outputs of ``sshward.firewall.state_commands`` (None where a command failed), keyed like
    the plan functions' arguments (``iptables_save``, ``ip6tables_save``, ``nft_json``)."""

    def command(self, commands: Mapping[str, tuple[str, ...]] | None = None) -> str:
        parts = ["PATH=/usr/sbin:/sbin:$PATH"]
        for key, argv in (commands or {}).items():
            cmd = " ".join(shlex.quote(a) for a in argv)
            parts.append(
                f'if o=$(LC_ALL=C {cmd} 2>/dev/null); then printf "S %s %s\\n" {shlex.quote(key)} '
                '"$(printf %s "$o" | base64 -w0)"; else printf "S %s -\\n" ' + shlex.quote(key) + "; fi"
            )
        parts.append("echo END")
        return "; ".join(parts)

    def process(self, output: list[str]) -> dict[str, Any]:
        names = {"ipv4": "iptables_save", "ipv6": "ip6tables_save", "inet": "nft_json"}
        out: dict[str, Any] = {}
        for line in output:
            parts = line.split(" ")
            if parts[0] == "S" and len(parts) == 3:
                key = names.get(parts[1], parts[1])
                out[key] = None if parts[2] == "-" else _unb64(parts[2]).decode("utf-8", "surrogateescape") + "\n"
        return out
