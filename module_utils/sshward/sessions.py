"""Live state from /proc and utmp: processes, TCP sockets with their owners, SSH sessions.

Everything is read directly (``/proc/<pid>/{stat,status,cmdline,exe,cwd,fd,cgroup}``,
``/proc/net/tcp{,6}``, ``/run/utmp``) rather than through ``ps``/``ss``/``w`` output, so
that a hostile command line, user name or file name is data and never parsed as columns.
Processes vanish while we read them: every reader tolerates that.

An SSH session is the per-connection sshd process (a child of the listener; ``sshd`` up to
OpenSSH 9.x, ``sshd-session`` from 10.0) with its process tree, the TCP connection it holds
and the utmp entries of its ttys. Killing a session stops the whole tree first (so nothing
forks away), then kills it; processes that daemonized out of the tree are still found through
the session's logind scope (``session-N.scope``) when the host has one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Union

from .authlog import AuthLogParser

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

SSHD_COMMS = frozenset({"sshd", "sshd-session", "sshd-auth"})
SUSPICIOUS_DIRS = ("/tmp/", "/dev/shm/", "/var/tmp/", "/run/user/")
UTMP_PATHS = ("/run/utmp", "/var/run/utmp")
# struct utmp (glibc, x86_64 and other 64-bit ABIs with 32-bit time fields): 384 bytes.
_UTMP = struct.Struct("<h2xi32s4s32s256shhiii16s20s")
USER_PROCESS = 7
_TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}
_SOCKET_RE = re.compile(r"^socket:\[(\d+)\]$")
_PRIV_RE = re.compile(r"^sshd(?:-session)?: (\S{1,64}) \[(priv|net|preauth)\]")
_USER_TTY_RE = re.compile(r"^sshd(?:-session)?: (\S{1,64})@(\S{1,32})$")
_SCOPE_RE = re.compile(r"/session-[A-Za-z0-9]+\.scope$")


@dataclass
class Process:
    pid: int
    ppid: int
    uid: int
    comm: str
    state: str = ""
    cmdline: list[str] = field(default_factory=list)
    exe: str = ""
    exe_deleted: bool = False
    #: /proc/PID/exe of another user's process needs CAP_SYS_PTRACE, which docker and some
    #: VPS containers withhold even from root: then nobody can tell where it runs from
    exe_unreadable: bool = False
    cwd: str = ""
    tty: str = ""
    start_time: float = 0.0
    sid: int = 0
    cgroup: str = ""
    sockets: list[int] = field(default_factory=list)

    @property
    def user(self) -> str:
        return user_name(self.uid)

    @property
    def suspicious(self) -> list[str]:
        """Why this process's executable looks planted (deleted, or run from a world-writable place)."""
        why = []
        if self.exe_deleted:
            why.append("executable deleted")
        if self.exe and self.exe.startswith(SUSPICIOUS_DIRS):
            why.append("runs from " + self.exe.split("/")[1] + "/" + self.exe.split("/")[2])
        return why

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["user"] = self.user
        d["suspicious"] = self.suspicious
        return d


@dataclass
class Connection:
    proto: str
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    state: str
    inode: int
    uid: int
    pids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UtmpEntry:
    type: int
    pid: int
    line: str
    user: str
    host: str
    time: float
    address: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Session:
    pid: int  # the per-connection sshd process
    user: str
    source_address: str
    source_port: int
    local_port: int
    start_time: float
    authenticated: bool
    ttys: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)  # the whole tree, pid first
    scope: str = ""
    utmp: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_user_cache: dict[int, str] = {}


def user_name(uid: int) -> str:
    if uid not in _user_cache:
        try:
            _user_cache[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _user_cache[uid] = str(uid)
    return _user_cache[uid]


def _read(path: str, limit: int = 1 << 20) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(limit)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def boot_time(proc: str = "/proc") -> float:
    for line in _text(_read(f"{proc}/stat")).splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def tty_name(tty_nr: int) -> str:
    """``pts/3``, ``tty1``... from the tty_nr field of /proc/<pid>/stat ('' for none)."""
    if tty_nr == 0:
        return ""
    major = (tty_nr >> 8) & 0xFFF
    minor = (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4 and minor < 64:
        return f"tty{minor}"
    return f"{major}:{minor}"


def parse_stat(text: str) -> tuple[str, str, int, int, int, int]:
    """comm, state, ppid, sid, tty_nr, starttime (ticks) from /proc/<pid>/stat.
    The comm is the text between the first '(' and the LAST ')': it may itself contain ')'."""
    head, _, rest = text.rpartition(")")
    comm = head.split("(", 1)[1] if "(" in head else ""
    f = rest.split()
    return comm, f[0], int(f[1]), int(f[3]), int(f[4]), int(f[19])


def read_process(pid: int, proc: str = "/proc", btime: float | None = None, ticks: int | None = None) -> Process | None:
    base = f"{proc}/{pid}"
    try:
        comm, state, ppid, sid, tty_nr, start = parse_stat(_text(_read(f"{base}/stat")))
        uid = 0
        for line in _text(_read(f"{base}/status")).splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                break
        cmdline = [_text(a) for a in _read(f"{base}/cmdline").split(b"\0")]
    except (OSError, ValueError, IndexError):
        return None
    while cmdline and cmdline[-1] == "":
        cmdline.pop()
    p = Process(pid=pid, ppid=ppid, uid=uid, comm=comm, state=state, cmdline=cmdline, sid=sid, tty=tty_name(tty_nr))
    bt = boot_time(proc) if btime is None else btime
    hz = ticks or os.sysconf("SC_CLK_TCK")
    p.start_time = round(bt + start / hz, 2)
    try:
        exe = os.readlink(f"{base}/exe")
        if exe.endswith(" (deleted)"):
            p.exe_deleted = True
            exe = exe[: -len(" (deleted)")]
        p.exe = exe
    except PermissionError:
        p.exe_unreadable = True
    except OSError:
        pass  # kernel threads have none; a process that just exited
    with contextlib.suppress(OSError):
        p.cwd = os.readlink(f"{base}/cwd")
    try:
        for line in _text(_read(f"{base}/cgroup")).splitlines():
            if line.startswith("0::") or ":name=systemd:" in line:
                p.cgroup = line.split(":", 2)[2]
                break
    except OSError:
        pass
    try:
        for fd in os.listdir(f"{base}/fd"):
            try:
                m = _SOCKET_RE.match(os.readlink(f"{base}/fd/{fd}"))
            except OSError:
                continue
            if m:
                p.sockets.append(int(m.group(1)))
    except OSError:
        pass
    return p


def list_processes(proc: str = "/proc") -> dict[int, Process]:
    btime = boot_time(proc)
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, Process] = {}
    for name in os.listdir(proc):
        if name.isdigit():
            p = read_process(int(name), proc, btime, ticks)
            if p is not None:
                out[p.pid] = p
    return out


def _hex_address(text: str) -> tuple[str, int]:
    """``0100007F:0016`` (IPv4) or 32 hex digits (IPv6), as /proc/net/tcp{,6} print them:
    each 32-bit word in host byte order."""
    addr_hex, port_hex = text.split(":")
    raw = bytes.fromhex(addr_hex)
    words = b"".join(struct.pack("=I", struct.unpack(">I", raw[i : i + 4])[0]) for i in range(0, len(raw), 4))
    if len(raw) == 4:
        address = socket.inet_ntop(socket.AF_INET, words)
    else:
        ip6 = ipaddress.IPv6Address(words)
        address = str(ip6.ipv4_mapped) if ip6.ipv4_mapped else str(ip6)
    return address, int(port_hex, 16)


def parse_proc_net_tcp(text: str, proto: str = "tcp") -> list[Connection]:
    out = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        try:
            la, lp = _hex_address(f[1])
            ra, rp = _hex_address(f[2])
            out.append(Connection(proto, la, lp, ra, rp, _TCP_STATES.get(f[3], f[3]), int(f[9]), int(f[7])))
        except (ValueError, struct.error):
            continue
    return out


def list_connections(processes: dict[int, Process] | None = None, proc: str = "/proc") -> list[Connection]:
    conns: list[Connection] = []
    for proto in ("tcp", "tcp6"):
        try:
            conns.extend(parse_proc_net_tcp(_text(_read(f"{proc}/net/{proto}", 64 << 20)), proto))
        except OSError:
            continue
    owners: dict[int, list[int]] = {}
    for p in (processes if processes is not None else list_processes(proc)).values():
        for inode in p.sockets:
            owners.setdefault(inode, []).append(p.pid)
    for c in conns:
        c.pids = sorted(owners.get(c.inode, []))
    return conns


def _cstr(raw: bytes) -> str:
    return _text(raw.split(b"\0", 1)[0])


def parse_utmp(data: bytes) -> list[UtmpEntry]:
    out = []
    for off in range(0, len(data) - _UTMP.size + 1, _UTMP.size):
        typ, pid, line, _id, user, host, _t, _e, _sess, sec, usec, addr, _unused = _UTMP.unpack_from(data, off)
        if addr[4:] == b"\0" * 12:
            address = socket.inet_ntop(socket.AF_INET, addr[:4]) if addr[:4] != b"\0" * 4 else ""
        else:
            address = socket.inet_ntop(socket.AF_INET6, addr)
        out.append(UtmpEntry(typ, pid, _cstr(line), _cstr(user), _cstr(host), sec + usec / 1e6, address))
    return out


def read_utmp(paths: Sequence[str] = UTMP_PATHS) -> list[UtmpEntry]:
    for path in paths:
        try:
            return [e for e in parse_utmp(_read(path, 16 << 20)) if e.type == USER_PROCESS]
        except OSError:
            continue
    return []


def children_map(processes: dict[int, Process]) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for p in processes.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    return kids


def descendants(pid: int, processes: dict[int, Process]) -> list[int]:
    kids = children_map(processes)
    out, todo = [], [pid]
    while todo:
        cur = todo.pop(0)
        if cur in out:
            continue
        out.append(cur)
        todo.extend(sorted(kids.get(cur, [])))
    return out


def ancestors(pid: int, processes: dict[int, Process]) -> list[int]:
    out = []
    while pid in processes and pid not in out and pid > 0:
        out.append(pid)
        pid = processes[pid].ppid
    return out


def _is_sshd(p: Process) -> bool:
    return p.comm in SSHD_COMMS


Peers = Mapping[int, "tuple[str, int | None]"]


def connection_processes(processes: dict[int, Process]) -> list[Process]:
    """Per-connection sshd processes: an sshd whose parent is the listener (an sshd with a non-sshd parent)."""
    out = []
    for p in sorted(processes.values(), key=lambda q: q.pid):
        parent = processes.get(p.ppid)
        if not _is_sshd(p) or parent is None or not _is_sshd(parent):
            continue
        grand = processes.get(parent.ppid)
        if grand is not None and _is_sshd(grand):
            continue  # deeper in a session tree
        out.append(p)
    return out


def find_sessions(
    processes: dict[int, Process],
    connections: Iterable[Connection],
    utmp: Iterable[UtmpEntry] = (),
    peers: Peers | None = None,
) -> list[Session]:
    """The SSH sessions: per-connection sshd processes whose parent is a listener sshd.

    The TCP peer comes from the process's socket fds. sshd makes its session processes
    non-dumpable, so without CAP_SYS_PTRACE (containers) /proc/<pid>/fd is unreadable: then
    ``peers`` (pid -> address, port, from sshd's own "Accepted ... from A port P" log line) or
    the utmp entry of the pid name the peer, and the live ESTABLISHED socket must confirm it.
    """
    conns = [c for c in connections if c.state == "ESTABLISHED"]
    by_inode = {c.inode: c for c in conns}
    utmp = list(utmp)
    utmp_by_pid: dict[int, list[UtmpEntry]] = {}
    for e in utmp:
        utmp_by_pid.setdefault(e.pid, []).append(e)
    peers = dict(peers or {})
    for e in utmp:
        if e.address and e.pid not in peers:
            peers[e.pid] = (e.address, None)
    claimed: set[int] = set()
    sessions = []
    for p in connection_processes(processes):
        conn = next((by_inode[i] for i in p.sockets if i in by_inode), None)
        if conn is None and p.pid in peers:
            addr, port = peers[p.pid]
            matches = [
                c
                for c in conns
                if c.inode not in claimed and c.remote_address == addr and (port is None or c.remote_port == port)
            ]
            if len(matches) == 1 or (matches and port is not None):
                conn = matches[0]
        if conn is None:
            continue
        claimed.add(conn.inode)
        tree = descendants(p.pid, processes)
        user, ttys, authenticated = "", [], False
        for pid in tree:
            q = processes[pid]
            line = " ".join(q.cmdline)
            m = _USER_TTY_RE.match(line)
            if m:
                user = user or m.group(1)
                if m.group(2) != "notty":
                    ttys.append(m.group(2))
                authenticated = True
            m2 = _PRIV_RE.match(line)
            if m2 and m2.group(1) != "unknown":
                user = user or m2.group(1)
                authenticated = authenticated or m2.group(2) == "priv"
            if not _is_sshd(q):
                authenticated = True
                if q.tty and q.tty not in ttys:
                    ttys.append(q.tty)
        if not user:
            nonroot = [processes[x].uid for x in tree if processes[x].uid != 0]
            user = user_name(nonroot[0]) if nonroot else ""
        entries = [e.to_dict() for pid in tree for e in utmp_by_pid.get(pid, [])]
        scopes = {processes[x].cgroup for x in tree if _SCOPE_RE.search(processes[x].cgroup)}
        sessions.append(
            Session(
                pid=p.pid,
                user=user,
                source_address=conn.remote_address,
                source_port=conn.remote_port,
                local_port=conn.local_port,
                start_time=p.start_time,
                authenticated=authenticated,
                ttys=ttys,
                pids=tree,
                scope=sorted(scopes)[0] if len(scopes) == 1 else "",
                utmp=entries,
                commands=[
                    {
                        "pid": x,
                        "user": processes[x].user,
                        "cmdline": processes[x].cmdline,
                        "exe": processes[x].exe,
                        "start_time": processes[x].start_time,
                    }
                    for x in tree
                ],
            )
        )
    return sessions


@dataclass
class Snapshot:
    taken_at: float
    processes: dict[int, Process]
    connections: list[Connection]
    utmp: list[UtmpEntry]
    sessions: list[Session]


def journal_peers(pids: Sequence[int]) -> dict[int, tuple[str, int | None]]:
    """pid -> (address, port) from sshd's own journal records of those pids (trusted fields only)."""
    if not pids:
        return {}
    argv = ["journalctl", "-o", "json", "--no-pager", *[f"_PID={p}" for p in pids]]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=30, check=False, env={"LC_ALL": "C", "PATH": _PATH})
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out: dict[int, tuple[str, int | None]] = {}
    wanted = set(pids)
    for ev in AuthLogParser().parse_journal(proc.stdout.decode("utf-8", "surrogateescape").splitlines()):
        if ev.pid in wanted and ev.address and ev.port and ev.kind in ("accepted", "connection"):
            out[ev.pid] = (ev.address, ev.port)
    return out


_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PeerLookup = Callable[[Sequence[int]], "dict[int, tuple[str, int | None]]"]


def snapshot(
    proc: str = "/proc", utmp_paths: Sequence[str] = UTMP_PATHS, peer_lookup: PeerLookup | None = journal_peers
) -> Snapshot:
    now = time.time()
    procs = list_processes(proc)
    conns = list_connections(procs, proc)
    ut = read_utmp(utmp_paths)
    owned = {i for p in procs.values() for i in p.sockets}
    blind = [p.pid for p in connection_processes(procs) if not owned.intersection(p.sockets)]
    peers = peer_lookup(blind) if peer_lookup and blind else {}
    return Snapshot(now, procs, conns, ut, find_sessions(procs, conns, ut, peers))


def session_targets(session: Session, processes: dict[int, Process], protected: Iterable[int]) -> list[int]:
    """Every pid to kill for a session: its tree and anything else in its logind scope,
    never a protected pid (ourselves and our ancestors) nor a listener sshd."""
    keep = set(protected)
    pids = descendants(session.pid, processes)
    if session.scope:
        pids += [p.pid for p in processes.values() if p.cgroup == session.scope and p.pid not in pids]
    out = []
    for pid in pids:
        p = processes.get(pid)
        if pid in keep or p is None:
            continue
        parent = processes.get(p.ppid)
        if _is_sshd(p) and (parent is None or not _is_sshd(parent)) and pid != session.pid:
            continue  # a listener: never
        out.append(pid)
    return out


def kill_session(session: Session, protected: Iterable[int], proc: str = "/proc", rounds: int = 5) -> list[int]:
    """Stop the whole tree (nothing can fork away), then SIGKILL it; repeat until nothing new appears."""
    protected = list(protected)
    killed: list[int] = []
    for _ in range(rounds):
        procs = list_processes(proc)
        if session.pid not in procs and not (session.scope and any(p.cgroup == session.scope for p in procs.values())):
            break
        targets = [p for p in session_targets(session, procs, protected) if procs[p].state not in ("Z", "X")]
        if not targets:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in targets:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    continue
        killed.extend(p for p in targets if p not in killed)
        time.sleep(0.05)
    return killed


def gone(pids: Iterable[int], proc: str = "/proc", timeout: float = 3.0) -> list[int]:
    """The pids still alive (zombies count as gone) after waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        still = []
        for pid in alive:
            try:
                st = _text(_read(f"{proc}/{pid}/stat"))
            except OSError:
                continue
            if parse_stat(st)[1] not in ("Z", "X"):
                still.append(pid)
        alive = still
        if alive:
            time.sleep(0.05)
    return alive
