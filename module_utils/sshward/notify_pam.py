"""The PAM entry of sshward-notify: capture one PAM call into the spool and return.

``pam_exec.so`` runs this inside every login (sshd's session stack), every sudo
session and every failed sudo/su authentication, and the login waits for it. So
it does as little as a Python program can: it keeps the PAM items the notifier
uses and the facts only this moment knows (pam_exec's parent, i.e. the sshd
process that logged ``Accepted ...``, and the time), writes them as one JSON
file into ``SPOOL/incoming/`` (temp file in SPOOL, then ``rename``: a reader
never sees half a file) and exits 0. No config, no network, no auth log, no
child process, no shell.

Delivery starts elsewhere: the systemd path unit ``sshward-notify-flush.path``
starts ``sshward-notify flush`` when ``incoming/`` is not empty (its timer retries
what is left). The deliverer (``notify.py``) turns a capture into an event with
``event_from_pam`` (the one place the event schema lives) and sends it.

Imports: os, sys, time and the C half of the json module (``_json``, with the
``json`` package as fallback). ``import json`` pulls in ``re`` and ``enum``,
10-20 ms of a login on a small host; the output is the same JSON (unit-tested).
Run it with ``python3 -IS``: isolated (no PYTHON* variables, user site or
current directory: pam_exec passes the PAM environment) and without ``site``.
Standard library only, Python 3.9 compatible, importable on its own (no
relative imports) and as ``sshward.notify_pam``.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time: annotations only
    from collections.abc import Callable, Mapping

CAPTURE_VERSION = 1
INCOMING = "incoming"
DEFAULT_SPOOL = "/var/spool/sshward/notify"
#: The PAM items the notifier reads (PAM_RHOST may be a DNS name; every one is hostile).
PAM_KEYS = ("PAM_TYPE", "PAM_SERVICE", "PAM_USER", "PAM_RUSER", "PAM_RHOST", "PAM_TTY")
PAM_VALUE_MAX = 512
#: Beyond this many undelivered captures a login adds nothing more (the disk is not the
#: attacker's to fill); the deliverer moves captures out of incoming/ at every run.
MAX_INCOMING = 10000


def _encode_string_fallback(text: str) -> str:
    import json

    return json.dumps(text)


try:
    from _json import encode_basestring_ascii as _encode_string
except ImportError:  # pragma: no cover - CPython always has it
    _encode_string = _encode_string_fallback


def to_json(value: object) -> str:
    """``json.dumps`` for the capture's shapes (str, int, float, bool, None, flat dicts of them)."""
    if isinstance(value, str):
        return str(_encode_string(value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(to_json(str(k)) + ": " + to_json(v) for k, v in value.items()) + "}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def wanted(pam_type: str, failure: bool) -> bool:
    """Session hooks handle open_session only; the failure hook (auth stack) handles auth only."""
    return pam_type == ("auth" if failure else "open_session")


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value[:PAM_VALUE_MAX]


def capture_record(
    environ: Mapping[bytes, bytes] | Mapping[str, str],
    *,
    failure: bool,
    ppid: int,
    now: float,
) -> dict[str, object] | None:
    """The PAM items (raw, bounded) and the facts of this call, or None when the call is not ours."""
    pam: dict[str, str] = {}
    for raw_key, value in environ.items():
        key = _text(raw_key)
        if key in PAM_KEYS and value:
            pam[key] = _text(value)
    if not wanted(pam.get("PAM_TYPE", ""), failure):
        return None
    return {"version": CAPTURE_VERSION, "failure": failure, "ppid": ppid, "time": now, "pam": pam}


def write_capture(spool_dir: str, record: Mapping[str, object], *, now_ns: int | None = None) -> str:
    """Write ``record`` into ``spool_dir/incoming/`` atomically (0600); return its path.

    The temp file lives in ``spool_dir`` itself, so ``incoming/`` only ever holds
    complete captures (the path unit must not fire on a half-written file).
    """
    incoming = os.path.join(spool_dir, INCOMING)
    try:
        with os.scandir(incoming) as entries:
            count = sum(1 for _ in zip(range(MAX_INCOMING), entries))
    except FileNotFoundError:
        os.makedirs(incoming, mode=0o700, exist_ok=True)
        count = 0
    if count >= MAX_INCOMING:
        raise OSError(f"{incoming} holds {MAX_INCOMING} undelivered captures already")
    stamp = time.time_ns() if now_ns is None else now_ns
    name = f"{stamp:020d}-{os.getpid()}-{os.urandom(4).hex()}.json"
    data = to_json(dict(record)).encode("ascii")
    tmp = os.path.join(spool_dir, ".tmp-pam-" + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.write(fd, data)  # a few hundred bytes: one write
        finally:
            os.close(fd)
        # no fsync: it would put the disk's latency into the login; the rename is atomic
        final = os.path.join(incoming, name)
        os.rename(tmp, final)
    except BaseException:
        try:  # noqa: SIM105 - contextlib would cost start-up time in every login
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return final


def capture(
    environ: Mapping[bytes, bytes] | Mapping[str, str],
    spool_dir: str,
    *,
    failure: bool = False,
    ppid: int | None = None,
    now: float | None = None,
) -> str | None:
    """Spool this PAM call if it is ours; the path of the capture, or None."""
    record = capture_record(
        environ,
        failure=failure,
        ppid=os.getppid() if ppid is None else ppid,
        now=time.time() if now is None else now,
    )
    if record is None:
        return None
    return write_capture(spool_dir, record)


def _log(message: str) -> None:
    try:
        import syslog

        syslog.openlog("sshward-notify", syslog.LOG_PID, getattr(syslog, "LOG_AUTHPRIV", syslog.LOG_AUTH))
        # the message may hold a hostile path or PAM value: one line, printable ASCII
        safe = message.encode("ascii", "backslashreplace").decode("ascii")
        syslog.syslog(syslog.LOG_WARNING, "pam capture: " + "".join(c if c >= " " else "?" for c in safe)[:500])
    except Exception:
        pass


def main(
    argv: list[str] | None = None,
    environ: Mapping[bytes, bytes] | Mapping[str, str] | None = None,
    log: Callable[[str], None] = _log,
) -> int:
    """``sshward-notify-pam [--spool DIR] [--failure]``. Always 0: a notifier never fails a PAM stack."""
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        env = os.environb if environ is None else environ
        failure = False
        spool_dir = DEFAULT_SPOOL
        while args:
            arg = args.pop(0)
            if arg == "--failure":
                failure = True
            elif arg == "--spool" and args and os.path.isabs(args[0]):
                spool_dir = args.pop(0)
            else:
                log(f"unknown argument {arg!r} ignored")
        capture(env, spool_dir, failure=failure)
    except Exception as exc:
        log(f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
