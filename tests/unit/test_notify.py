"""sshward.notify: PAM step, spool, deliverer, correlation, rate limit, CLI.

Real receivers only on 127.0.0.1 (aiosmtpd and http.server started here).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiosmtpd")

from sshward import notify
from sshward.authlog import AuthEvent, AuthLogParser
from sshward.notify_channels import Channel, ChannelError, Event
from tests.unit.notify_servers import (
    HttpServer,
    MailSink,
    base_config,
    black_hole,
    http_server,
    mode_of,
    smtp_server,
    wait_for,
    write_config,
)
from tests.unit.pam_capture import pam_exec_capture, sshd_env

SSHD_PID = 4242


def key_blob() -> tuple[str, str]:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + hashlib.sha256(b"sshward test key").digest()
    b64 = base64.b64encode(blob).decode("ascii")
    fp = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return b64, fp


def authorized_keys(tmp_path: Path, comment: str) -> Path:
    b64, _fp = key_blob()
    path = tmp_path / "authorized_keys"
    path.write_text(
        "# first line is a comment\n" + f'from="10.0.0.0/8",no-pty ssh-ed25519 {b64} {comment}\n',
        encoding="utf-8",
    )
    return path


def accepted_lines(keys: Path, user: str = "alice", address: str = "203.0.113.5") -> list[str]:
    """What sshd logs at LogLevel VERBOSE for the key login (auth.log lines)."""
    _b64, fp = key_blob()
    prefix = f"Nov 22 05:21:17 web1 sshd[{SSHD_PID}]: "
    return [
        prefix + f'Connection from {address} port 50022 on 192.0.2.1 port 22 rdomain ""',
        prefix + f"Accepted key ED25519 {fp} found at {keys}:2",
        prefix + f"Accepted publickey for {user} from {address} port 50022 ssh2: ED25519 {fp}",
    ]


def parsed(lines: Sequence[str]) -> list[AuthEvent]:
    return list(AuthLogParser().parse_lines(lines))


def key_login_env(user: str = "alice", address: str = "203.0.113.5", **extra: str) -> dict[str, str]:
    """The PAM environment of a login with the test key (sshd's SSH_AUTH_INFO_0 holds the public key)."""
    return sshd_env(user=user, address=address, auth_info=f"publickey ssh-ed25519 {key_blob()[0]}\n", **extra)


def pam_env(
    user: str = "alice",
    rhost: str = "203.0.113.5",
    pam_type: str = "open_session",
    service: str = "sshd",
    **extra: str,
) -> dict[str, str]:
    env = {
        "PAM_TYPE": pam_type,
        "PAM_USER": user,
        "PAM_RHOST": rhost,
        "PAM_TTY": "ssh",
        "PAM_SERVICE": service,
    }
    env.update(extra)
    return env


class Recorder(Channel):
    """An in-memory channel; ``fail`` makes it raise like a receiver that is down."""

    type = "recorder"

    def __init__(self, name: str = "rec") -> None:
        super().__init__(name, 5.0)
        self.events: list[Event] = []
        self.fail = False

    def _send(self, event: Event) -> None:
        if self.fail:
            raise ChannelError("receiver down")
        self.events.append(event)


@pytest.fixture
def servers() -> Iterator[tuple[MailSink, int, HttpServer]]:
    with smtp_server() as (sink, smtp_port), http_server() as web:
        yield sink, smtp_port, web


def mail_and_hook_config(tmp_path: Path, smtp_port: int, web_port: int, **extra: Any) -> Path:
    channels = [
        {
            "type": "smtp",
            "host": "127.0.0.1",
            "port": smtp_port,
            "tls": "none",
            "from": "sshward@web1.example",
            "to": ["ops@example.org", "sec@example.org"],
        },
        {"type": "webhook", "url": f"http://127.0.0.1:{web_port}/hook", "format": "json"},
    ]
    return write_config(tmp_path / "notify.json", base_config(tmp_path, channels, **extra))


def spool_names(tmp_path: Path) -> list[str]:
    spool = tmp_path / "spool"
    return sorted(p.name for p in spool.glob("*.json")) if spool.exists() else []


def capture_names(tmp_path: Path) -> list[str]:
    incoming = tmp_path / "spool" / "incoming"
    return sorted(p.name for p in incoming.iterdir()) if incoming.exists() else []


def login_and_deliver(tmp_path: Path, cfg: Path, env: dict[str, str], lines: Sequence[str]) -> notify.DeliveryReport:
    pam_exec_capture(tmp_path / "spool", env)
    config = notify.load_config(str(cfg))
    return notify.deliver_pending(config, authlog=lambda around: parsed(lines))


# ----------------------------------------------------------------------------- login end to end


@pytest.fixture
def delivered_login(tmp_path: Path, servers: tuple[MailSink, int, HttpServer]) -> dict[str, Any]:
    sink, smtp_port, web = servers
    cfg = mail_and_hook_config(tmp_path, smtp_port, web.port)
    keys = authorized_keys(tmp_path, "alice@laptop")
    report = login_and_deliver(tmp_path, cfg, key_login_env(), accepted_lines(keys))
    return {"sink": sink, "web": web, "report": report, "keys": keys, "tmp": tmp_path}


def test_login_sends_exactly_one_mail(delivered_login: dict[str, Any]) -> None:
    assert len(delivered_login["sink"].messages) == 1


def test_login_sends_exactly_one_webhook(delivered_login: dict[str, Any]) -> None:
    assert len(delivered_login["web"].sink.requests) == 1


def test_login_mail_goes_to_every_recipient(delivered_login: dict[str, Any]) -> None:
    assert delivered_login["sink"].messages[0]["rcpt"] == ["ops@example.org", "sec@example.org"]


def test_login_mail_subject(delivered_login: dict[str, Any]) -> None:
    assert delivered_login["sink"].parsed()["Subject"] == "[sshward] login alice from 203.0.113.5 on web1.example"


def test_login_removes_the_spool_entry(delivered_login: dict[str, Any]) -> None:
    assert spool_names(delivered_login["tmp"]) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("user", "alice"),
        ("address", "203.0.113.5"),
        ("port", "50022"),
        ("method", "publickey"),
        ("key_type", "ssh-ed25519"),
        ("fingerprint", key_blob()[1]),
        ("key_comment", "alice@laptop"),
        ("tty", "ssh"),
        ("service", "sshd"),
        ("first_from_network", "yes"),
        ("network", "203.0.113.0/24"),
    ],
)
def test_login_webhook_fields(delivered_login: dict[str, Any], name: str, expected: str) -> None:
    assert delivered_login["web"].sink.json()["fields"][name] == expected


def test_login_webhook_key_source(delivered_login: dict[str, Any]) -> None:
    assert delivered_login["web"].sink.json()["fields"]["key_source"] == f"{delivered_login['keys']}:2"


def test_login_webhook_host(delivered_login: dict[str, Any]) -> None:
    assert delivered_login["web"].sink.json()["host"] == "web1.example"


@pytest.mark.parametrize("line", ["port: 50022", "fingerprint: " + key_blob()[1], "key_comment: alice@laptop"])
def test_login_mail_body_lines(delivered_login: dict[str, Any], line: str) -> None:
    body = delivered_login["sink"].parsed().get_content()
    assert line in body.splitlines()


def test_rhost_kept_when_it_is_a_name(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []))
    config = notify.load_config(str(cfg))
    rec = Recorder()
    config.channels = [rec]
    pam_exec_capture(tmp_path / "spool", key_login_env(rhost="attacker.example"))
    keys = authorized_keys(tmp_path, "c")
    notify.deliver_pending(config, authlog=lambda around: parsed(accepted_lines(keys)))
    assert (rec.events[0].fields["rhost"], rec.events[0].fields["address"]) == (
        "attacker.example",
        "203.0.113.5",
    )


# ----------------------------------------------------------------------------- first login from a network


@pytest.mark.parametrize(
    ("second", "expected"),
    [("203.0.113.77", "no"), ("203.0.114.5", "yes"), ("2001:db8::1", "yes")],
)
def test_first_login_from_network(tmp_path: Path, second: str, expected: str) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []))
    config = notify.load_config(str(cfg))
    rec = Recorder()
    config.channels = [rec]
    keys = authorized_keys(tmp_path, "c")
    for address in ("203.0.113.5", second):
        pam_exec_capture(tmp_path / "spool", key_login_env(address=address))
        notify.deliver_pending(config, authlog=lambda around, a=address: parsed(accepted_lines(keys, address=a)))
    assert rec.events[1].fields["first_from_network"] == expected


def test_ipv6_network_prefix_is_configurable(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, [], network_prefix={"ipv6": 48}))
    config = notify.load_config(str(cfg))
    rec = Recorder()
    config.channels = [rec]
    keys = authorized_keys(tmp_path, "c")
    pam_exec_capture(tmp_path / "spool", key_login_env(address="2001:db8:1:2::5"))
    notify.deliver_pending(config, authlog=lambda around: parsed(accepted_lines(keys, address="2001:db8:1:2::5")))
    assert rec.events[0].fields["network"] == "2001:db8:1::/48"


# ------------------------------------------------------------------ receiver outage, retry, no duplicates


def test_outage_keeps_event_and_retry_does_not_duplicate(tmp_path: Path) -> None:
    with smtp_server() as (sink, smtp_port), http_server(running=False) as web:
        cfg = mail_and_hook_config(tmp_path, smtp_port, web.port)
        keys = authorized_keys(tmp_path, "c")
        first = login_and_deliver(tmp_path, cfg, key_login_env(), accepted_lines(keys))
        after_outage = (
            len(sink.messages),
            len(web.sink.requests),
            len(spool_names(tmp_path)),
            sorted(first.failed),
        )
        web.start()
        notify.deliver_pending(notify.load_config(str(cfg)), authlog=lambda around: [])
        after_retry = (len(sink.messages), len(web.sink.requests), len(spool_names(tmp_path)))
    assert (after_outage, after_retry) == ((1, 0, 1, ["webhook"]), (1, 1, 0))


def test_outage_records_per_channel_success_in_spool(tmp_path: Path) -> None:
    with smtp_server() as (_sink, smtp_port), http_server(running=False) as web:
        cfg = mail_and_hook_config(tmp_path, smtp_port, web.port)
        login_and_deliver(tmp_path, cfg, key_login_env(), [])
        entry = json.loads((tmp_path / "spool" / spool_names(tmp_path)[0]).read_text())
    assert (entry["delivered"], entry["attempts"]) == (["smtp"], 1)


def test_smtp_451_keeps_event_spooled(tmp_path: Path) -> None:
    with smtp_server() as (sink, smtp_port), http_server() as web:
        sink.fail = True
        cfg = mail_and_hook_config(tmp_path, smtp_port, web.port)
        report = login_and_deliver(tmp_path, cfg, key_login_env(), [])
        sink.fail = False
        notify.deliver_pending(notify.load_config(str(cfg)), authlog=lambda around: [])
    assert (report.failed["smtp"].startswith("SMTP 451"), len(sink.messages), len(web.sink.requests)) == (
        True,
        1,
        1,
    )


def test_locked_spool_is_left_to_the_holder(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []))
    config = notify.load_config(str(cfg))
    rec = Recorder()
    config.channels = [rec]
    notify.emit(notify.make_event("ban", {"address": "198.51.100.7"}), config=config, spawn=None)
    with notify.Spool(config.spool_dir).lock() as got:
        report = notify.deliver_pending(config, authlog=lambda around: [])
    assert (got, report.locked_out, rec.events, len(spool_names(tmp_path))) == (True, True, [], 1)


# ----------------------------------------------------------------------------- never block a login


def test_hanging_receiver_leaves_the_event_spooled(tmp_path: Path) -> None:
    with black_hole() as port:
        channels = [{"type": "webhook", "url": f"http://127.0.0.1:{port}/hook", "timeout": 2}]
        cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, channels))
        rc = notify.main(["--config", str(cfg), "event", "--kind", "ban", "--field", "address=198.51.100.7"])

        # the detached deliverer gives up after the channel's 2 s timeout and leaves the
        # event in the spool for the next run
        def attempted() -> bool:
            names = spool_names(tmp_path)
            return bool(names) and json.loads((tmp_path / "spool" / names[0]).read_text()).get("attempts", 0) >= 1

        retried = wait_for(attempted, 60)
    assert (rc, retried, len(spool_names(tmp_path))) == (0, True, 1)


def test_detached_deliverer_delivers(tmp_path: Path, servers: tuple[MailSink, int, HttpServer]) -> None:
    sink, smtp_port, web = servers
    cfg = mail_and_hook_config(tmp_path, smtp_port, web.port)
    rc = notify.main(["--config", str(cfg), "event", "--kind", "ban", "--field", "address=198.51.100.7"])
    done = wait_for(lambda: len(sink.messages) == 1 and len(web.sink.requests) == 1 and not spool_names(tmp_path))
    assert (rc, done) == (0, True)


def test_deliverer_runs_isolated_without_a_shell(tmp_path: Path) -> None:
    config = notify.config_from_dict(base_config(tmp_path, []), str(tmp_path / "notify.json"))
    argv = notify.deliverer_argv(config)
    assert (argv[0], argv[1], argv[-4:]) == (
        sys.executable,
        "-I",
        ["--config", str(tmp_path / "notify.json"), "flush", "--quiet"],
    )


# ----------------------------------------------------------------------------- the resident watcher


class ScriptedPolls:
    """``watch``'s clock: runs ``actions[i]`` at the i-th sleep, ends the loop after the last one."""

    def __init__(self, *actions: Any) -> None:
        self.actions = list(actions)
        self.sleeps = 0

    def sleep(self, _seconds: float) -> None:
        if self.sleeps < len(self.actions) and self.actions[self.sleeps] is not None:
            self.actions[self.sleeps]()
        self.sleeps += 1

    def keep_going(self) -> bool:
        return self.sleeps < len(self.actions)


def counting_deliverer(runs: list[notify.DeliveryReport]) -> Any:
    def deliver(config: notify.Config) -> notify.DeliveryReport:
        runs.append(notify.deliver_pending(config, authlog=lambda around: [], sleep=lambda s: None))
        return runs[-1]

    return deliver


def test_pending_work_sees_each_kind_of_new_work(tmp_path: Path) -> None:
    config, _rec = recorder_config(tmp_path)
    spool = config.spool_dir
    nothing = notify.pending_work(spool, set())
    pam_exec_capture(tmp_path / "spool", key_login_env())
    captured = notify.pending_work(spool, set())
    admit(config)
    (drained,) = capture_names(tmp_path)
    delivered = set(notify.Spool(spool).names())
    read_to_its_end = notify.pending_work(spool, delivered)
    with open(tmp_path / "spool" / "incoming" / drained, "ab") as late:
        late.write(b"*** a late pam_exec child")
    grown = notify.pending_work(spool, delivered)
    assert (nothing, captured, read_to_its_end, grown) == (False, True, False, True)
    assert notify.pending_work(spool, set()) is True  # an entry not seen after the last run


def test_watch_delivers_logins_as_they_are_captured(tmp_path: Path) -> None:
    config, rec = recorder_config(tmp_path)
    runs: list[notify.DeliveryReport] = []
    polls = ScriptedPolls(
        None,
        lambda: pam_exec_capture(tmp_path / "spool", key_login_env(user="first")),
        None,
        None,
        lambda: pam_exec_capture(tmp_path / "spool", key_login_env(user="second")),
        None,
        None,
        None,
    )
    notify.watch(config, deliver=counting_deliverer(runs), sleep=polls.sleep, keep_going=polls.keep_going)
    users = [event.fields["user"] for event in rec.events]
    assert (users, len(runs), spool_names(tmp_path)) == (["first", "second"], 2, [])


def test_watch_leaves_refused_entries_to_the_retry_timer(tmp_path: Path) -> None:
    config, rec = recorder_config(tmp_path)
    rec.fail = True
    runs: list[notify.DeliveryReport] = []
    polls = ScriptedPolls(lambda: pam_exec_capture(tmp_path / "spool", key_login_env()), *[None] * 10)
    notify.watch(config, deliver=counting_deliverer(runs), sleep=polls.sleep, keep_going=polls.keep_going)
    assert (len(runs), runs[0].failed, len(spool_names(tmp_path))) == (1, {"rec": "receiver down"}, 1)


def test_watch_goes_on_after_a_failed_run(tmp_path: Path) -> None:
    config, rec = recorder_config(tmp_path)
    logged: list[str] = []
    runs: list[notify.DeliveryReport] = []
    real = counting_deliverer(runs)

    def deliver(config: notify.Config) -> notify.DeliveryReport:
        if not logged:
            raise OSError(28, "No space left on device")
        return real(config)

    polls = ScriptedPolls(lambda: pam_exec_capture(tmp_path / "spool", key_login_env()), *[None] * 6)
    notify.watch(config, deliver=deliver, sleep=polls.sleep, keep_going=polls.keep_going, log=logged.append)
    assert (logged, [e.fields["user"] for e in rec.events]) == (
        ["watch: delivery run failed: [Errno 28] No space left on device"],
        ["alice"],
    )


def test_watch_command_delivers_a_login_to_real_receivers(
    tmp_path: Path, servers: tuple[MailSink, int, HttpServer]
) -> None:
    sink, smtp_port, web = servers
    cfg = mail_and_hook_config(tmp_path, smtp_port, web.port)
    argv = notify.deliverer_argv(notify.load_config(str(cfg)))
    assert argv[-2:] == ["flush", "--quiet"]
    watcher = subprocess.Popen([*argv[:-2], "watch"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pam_exec_capture(tmp_path / "spool", key_login_env(user="bob"))
        arrived = wait_for(
            lambda: len(sink.messages) == 1 and len(web.sink.requests) == 1 and not spool_names(tmp_path)
        )
        still_running = watcher.poll() is None
    finally:
        watcher.terminate()
        _out, err = watcher.communicate(timeout=30)
    assert (arrived, still_running, err) == (True, True, b"")
    assert web.sink.json()["fields"]["user"] == "bob"


def admit(config: notify.Config, now: float | None = None, log: Any = None) -> int:
    clock = time.time if now is None else (lambda: now)
    deliverer = notify._Deliverer(config, lambda around: [], clock, log or (lambda m: None), time.sleep)
    return deliverer.admit_captures()


def recorder_config(tmp_path: Path) -> tuple[notify.Config, Recorder]:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []))
    config = notify.load_config(str(cfg))
    rec = Recorder()
    config.channels = [rec]
    return config, rec


@pytest.mark.parametrize("pam_type", ["close_session", "auth", "account", "password", ""])
def test_session_records_of_other_pam_types_are_ignored(tmp_path: Path, pam_type: str) -> None:
    config, rec = recorder_config(tmp_path)
    pam_exec_capture(tmp_path / "spool", sshd_env(PAM_TYPE=pam_type))
    report = notify.deliver_pending(config, authlog=lambda around: [])
    assert (rec.events, spool_names(tmp_path), report.failed) == ([], [], {})


def test_captured_login_becomes_the_event(tmp_path: Path) -> None:
    config, _rec = recorder_config(tmp_path)
    pam_exec_capture(tmp_path / "spool", key_login_env(PAM_AUTHTOK="never-stored"), when=1_795_000_000)
    admitted = admit(config)
    entry = json.loads((tmp_path / "spool" / spool_names(tmp_path)[0]).read_text())
    assert (admitted, entry["event"]["kind"], entry["event"]["time"], entry["event"]["fields"]) == (
        1,
        "login",
        1_795_000_000,
        {
            "user": "alice",
            "tty": "ssh",
            "service": "sshd",
            "address": "203.0.113.5",
            "port": "50022",
            "method": "publickey",
            "key_type": "ssh-ed25519",
            "fingerprint": key_blob()[1],
        },
    )


def test_drained_capture_is_private_and_read_from_its_offset(tmp_path: Path) -> None:
    config, _rec = recorder_config(tmp_path)
    capture = pam_exec_capture(tmp_path / "spool", key_login_env(user="first"))
    # a pam_exec child that opened the file just before the deliverer moved it still writes into it
    late_writer = os.open(capture, os.O_WRONLY | os.O_APPEND)
    try:
        first = admit(config)
        (drained,) = capture_names(tmp_path)
        late = tmp_path / "late"
        pam_exec_capture(late, key_login_env(user="late"))
        os.write(late_writer, (late / "capture").read_bytes())
    finally:
        os.close(late_writer)
    second = admit(config)
    users = [json.loads((tmp_path / "spool" / n).read_text())["event"]["fields"]["user"] for n in spool_names(tmp_path)]
    spool = tmp_path / "spool"
    assert (first, second, users, capture.exists()) == (1, 1, ["first", "late"], False)
    assert (mode_of(spool / "incoming"), drained.endswith("-0"), capture_names(tmp_path)[0] != drained) == (
        0o700,
        False,
        True,
    )


def test_idle_drained_file_is_deleted_once_read(tmp_path: Path) -> None:
    config, _rec = recorder_config(tmp_path)
    pam_exec_capture(tmp_path / "spool", key_login_env())
    admit(config)
    kept = capture_names(tmp_path)
    admit(config, now=time.time() + notify.CAPTURE_IDLE + 1)
    assert (len(kept), capture_names(tmp_path), len(spool_names(tmp_path))) == (1, [], 1)


def test_readmission_after_a_crash_overwrites_instead_of_duplicating(tmp_path: Path) -> None:
    config, _rec = recorder_config(tmp_path)
    pam_exec_capture(tmp_path / "spool", key_login_env())
    admit(config)
    (drained,) = capture_names(tmp_path)
    stamp = drained.split("-")[0]
    # the crash: entries written, the new offset never saved in the file name
    os.rename(tmp_path / "spool" / "incoming" / drained, tmp_path / "spool" / "incoming" / f"{stamp}-0")
    admit(config)
    assert len(spool_names(tmp_path)) == 1


def test_unreadable_records_still_raise_an_alert(tmp_path: Path) -> None:
    config, rec = recorder_config(tmp_path)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "capture").write_bytes(b"*** Sun Nov 22 12:10:50 2026\nPAM_USER=x\0SSHWARD_CAPTURE=session\0")
    logged: list[str] = []
    notify.deliver_pending(config, authlog=lambda around: [], log=logged.append)
    assert ([(e.kind, e.fields["records"]) for e in rec.events], len(logged)) == ([("capture_unreadable", "1")], 1)


@pytest.mark.parametrize("name", ["00000000000000000001-1-0123abcd.json", "a-directory", "notacapture"])
def test_unexpected_file_in_incoming_is_moved_aside(tmp_path: Path, name: str) -> None:
    config, _rec = recorder_config(tmp_path)
    incoming = tmp_path / "spool" / "incoming"
    incoming.mkdir(parents=True)
    if name == "a-directory":
        (incoming / name).mkdir()
    else:
        (incoming / name).write_bytes(b"{}")
    logged: list[str] = []
    report = notify.deliver_pending(config, authlog=lambda around: [], log=logged.append)
    bad = [p.name for p in (tmp_path / "spool").glob(".*.bad")]
    assert (os.listdir(incoming), bad, report.removed, len(logged)) == ([], [f".{name}.bad"], 0, 1)


# ----------------------------------------------------------------------------- sudo / su


@pytest.mark.parametrize(
    ("service", "kind"), [("sudo", "sudo_failure"), ("su", "su_failure"), ("sshd", "auth_failure")]
)
def test_failure_mode_kinds(service: str, kind: str) -> None:
    event = notify.event_from_pam(pam_env(pam_type="auth", service=service), failure=True, host="h")
    assert event is not None and event.kind == kind


def test_first_sudo_only_once(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []))
    config = notify.load_config(str(cfg))
    rec = Recorder()
    config.channels = [rec]
    for _ in range(2):
        pam_exec_capture(tmp_path / "spool", pam_env(user="root", service="sudo", PAM_RUSER="alice"))
        notify.deliver_pending(config, authlog=lambda around: [])
    assert ([e.kind for e in rec.events], spool_names(tmp_path)) == (["sudo_first"], [])


def test_sudo_all_mode_reports_every_sudo(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, [], sudo="all"))
    config = notify.load_config(str(cfg))
    rec = Recorder()
    config.channels = [rec]
    for _ in range(2):
        pam_exec_capture(tmp_path / "spool", pam_env(user="root", service="sudo", PAM_RUSER="alice"))
        notify.deliver_pending(config, authlog=lambda around: [])
    assert [e.kind for e in rec.events] == ["sudo_first", "sudo"]


# ----------------------------------------------------------------------------- rate limit


def flood(tmp_path: Path, per_minute: int, logins: int, failures: int) -> tuple[notify.Config, Recorder]:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, [], rate_limit_per_minute=per_minute))
    config = notify.load_config(str(cfg))
    rec = Recorder()
    config.channels = [rec]
    for i in range(logins):
        notify.emit(notify.make_event("login", {"user": f"u{i}"}, now=1000.0 + i), config=config, spawn=None)
    for i in range(failures):
        notify.emit(notify.make_event("sudo_failure", {"user": f"s{i}"}, now=2000.0 + i), config=config, spawn=None)
    return config, rec


def test_flood_is_summarised_not_dropped(tmp_path: Path) -> None:
    config, rec = flood(tmp_path, per_minute=5, logins=30, failures=7)
    report = notify.deliver_pending(config, authlog=lambda around: [], now=lambda: 5000.0)
    summary = rec.events[-1]
    assert (
        [e.kind for e in rec.events],
        summary.fields["summary"],
        report.summaries,
        spool_names(tmp_path),
    ) == (["login"] * 4 + ["summary"], "33 more events: 26 login, 7 sudo_failure", {"rec": 1}, [])


def test_rate_limit_defers_within_the_same_minute(tmp_path: Path) -> None:
    config, rec = flood(tmp_path, per_minute=3, logins=3, failures=0)
    notify.deliver_pending(config, authlog=lambda around: [], now=lambda: 5000.0)
    notify.emit(notify.make_event("ban", {"address": "198.51.100.7"}), config=config, spawn=None)
    deferred = notify.deliver_pending(config, authlog=lambda around: [], now=lambda: 5030.0)
    held = len(spool_names(tmp_path))
    notify.deliver_pending(config, authlog=lambda around: [], now=lambda: 5061.0)
    assert (deferred.deferred, held, [e.kind for e in rec.events][-1], spool_names(tmp_path)) == (
        {"rec": 1},
        1,
        "ban",
        [],
    )


def test_rate_limit_below_threshold_sends_singles(tmp_path: Path) -> None:
    config, rec = flood(tmp_path, per_minute=10, logins=10, failures=0)
    notify.deliver_pending(config, authlog=lambda around: [], now=lambda: 5000.0)
    assert [e.kind for e in rec.events] == ["login"] * 10


# ----------------------------------------------------------------------------- auth-log correlation


HOSTILE_USERS = [
    "bob from 6.6.6.6 port 1 ssh2: RSA SHA256:fake",
    "$(touch /tmp/pwned)",
    "a\tb \"quoted\" 'q'",
]


def syslog(message: str, pid: int = SSHD_PID, program: str = "sshd") -> str:
    return f"Nov 22 05:21:17 web1 {program}[{pid}]: {message}"


@pytest.mark.parametrize("user", HOSTILE_USERS)
def test_correlation_takes_the_connection_sshd_logged(user: str) -> None:
    events = parsed([syslog(f"Accepted password for {user} from 192.0.2.9 port 41000 ssh2")])
    details = notify.correlate_login(events, user=user, address="192.0.2.9", port="41000")
    assert details is not None and (details.pid, details.method) == (SSHD_PID, "password")


@pytest.mark.parametrize(
    ("address", "port", "user"),
    [("192.0.2.9", "41001", "alice"), ("192.0.2.99", "41000", "alice"), ("192.0.2.9", "41000", "root")],
)
def test_correlation_needs_address_port_and_user(address: str, port: str, user: str) -> None:
    events = parsed([syslog("Accepted password for alice from 192.0.2.9 port 41000 ssh2")])
    assert notify.correlate_login(events, user=user, address=address, port=port) is None


def test_correlation_ignores_a_user_name_that_holds_a_log_line() -> None:
    lines = [
        syslog("Invalid user x sshd[4242]: Accepted password for alice from 6.6.6.6 port 1 ssh2 from 192.0.2.7 port 2"),
        syslog("Accepted publickey for alice from 192.0.2.9 port 41000 ssh2: ED25519 " + key_blob()[1]),
    ]
    events = parsed(lines)
    assert (
        notify.correlate_login(events, user="alice", address="6.6.6.6", port="1"),
        notify.correlate_login(events, user="alice", address="192.0.2.9", port="41000") is not None,
    ) == (None, True)


def test_key_source_comes_from_the_same_sshd_process(tmp_path: Path) -> None:
    keys = authorized_keys(tmp_path, "c")
    fp = key_blob()[1]
    lines = [
        syslog(f"Accepted key ED25519 {fp} found at /home/mallory/.ssh/authorized_keys:9", pid=999),
        syslog(f"Accepted key ED25519 {fp} found at {keys}:2"),
        syslog(f"Accepted publickey for alice from 192.0.2.9 port 41000 ssh2: ED25519 {fp}"),
    ]
    details = notify.correlate_login(parsed(lines), user="alice", address="192.0.2.9", port="41000")
    assert details is not None and (details.key_file, details.key_line) == (str(keys), 2)


def test_auth_log_file_fallback_reads_sshd_records(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(
        "\n".join(
            [
                syslog("Accepted password for alice from 192.0.2.9 port 41000 ssh2"),
                syslog("pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)"),
                "Nov 22 05:21:18 web1 CRON[77]: pam_unix(cron:session): session opened for user root",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    events = notify.default_authlog_lookup(time.time(), journal=False, files=[str(log)])
    details = notify.correlate_login(events, user="alice", address="192.0.2.9", port="41000")
    assert details is not None and details.pid == SSHD_PID


def test_a_batch_of_logins_reads_the_log_once_and_waits_once(tmp_path: Path) -> None:
    config, rec = recorder_config(tmp_path)
    for port in range(50001, 50011):
        pam_exec_capture(tmp_path / "spool", key_login_env(address="192.0.2.9", port=port))
    lookups: list[float] = []
    slept: list[float] = []
    clock = [1000.0]

    def lookup(around: float) -> list[AuthEvent]:
        lookups.append(around)
        return []  # sshd's records never show up (no journal access, say)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    notify.deliver_pending(config, authlog=lookup, now=lambda: clock[0], sleep=sleep)
    assert (len(rec.events), sum(slept) <= config.authlog_wait, len(lookups) <= 1 + len(slept)) == (10, True, True)


def test_key_comment_not_read_through_symlink(tmp_path: Path) -> None:
    real = authorized_keys(tmp_path, "secret comment")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert (
        notify.read_key_comment(str(real), 2, key_blob()[1]),
        notify.read_key_comment(str(link), 2, key_blob()[1]),
    ) == ("secret comment", None)


def test_key_comment_requires_matching_fingerprint(tmp_path: Path) -> None:
    keys = authorized_keys(tmp_path, "c")
    assert notify.read_key_comment(str(keys), 2, "SHA256:" + "A" * 43) is None


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606, 0o620])
def test_config_refused_when_group_or_world_accessible(tmp_path: Path, mode: int) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []), mode=mode)
    with pytest.raises(notify.ConfigError, match="chmod 0600"):
        notify.load_config(str(cfg))


def test_config_refused_when_not_owned_by_root(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []))
    st = os.stat(cfg)
    fake = os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, 54321, 0, st.st_size, 0, 0, 0))
    with pytest.raises(notify.ConfigError, match="must be owned by root"):
        notify.check_config_permissions(str(cfg), fake)


def test_config_owner_check_is_injectable(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []), mode=0o644)
    config = notify.load_config(str(cfg), permission_check=lambda path, st: None)
    assert config.spool_dir == str(tmp_path / "spool")


def test_config_symlink_refused(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []))
    link = tmp_path / "link.json"
    link.symlink_to(cfg)
    with pytest.raises(notify.ConfigError, match="symbolic link"):
        notify.load_config(str(link))


def test_cli_reports_permission_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []), mode=0o644)
    rc = notify.main(["--config", str(cfg), "test"])
    assert (rc, "chmod 0600" in capsys.readouterr().err) == (2, True)


@pytest.mark.parametrize(
    "bad",
    [
        {"channels": [{"type": "carrier-pigeon"}]},
        {"channels": [{"type": "webhook", "url": "file:///etc/shadow"}]},
        {
            "channels": [
                {
                    "type": "smtp",
                    "host": "h",
                    "from": "a@b",
                    "to": ["x@y"],
                    "tls": "none",
                    "username": "u",
                    "password": "p",
                }
            ]
        },
        {"channels": [{"type": "syslog"}, {"type": "syslog"}]},
        {"spool_dir": "relative/path"},
        {"rate_limit_per_minute": 0},
        {"surprise": 1},
    ],
)
def test_config_validation(tmp_path: Path, bad: dict[str, Any]) -> None:
    data = base_config(tmp_path, [])
    data.update(bad)
    with pytest.raises(notify.ConfigError):
        notify.config_from_dict(data)


# ----------------------------------------------------------------------------- CLI


def test_cli_event_and_flush(tmp_path: Path, servers: tuple[MailSink, int, HttpServer]) -> None:
    sink, smtp_port, web = servers
    cfg = mail_and_hook_config(tmp_path, smtp_port, web.port)
    queued = notify.main(
        [
            "--config",
            str(cfg),
            "event",
            "--kind",
            "ban",
            "--field",
            "address=198.51.100.7",
            "--field",
            "reason=sshd brute force",
            "--no-spawn",
        ]
    )
    flushed = notify.main(["--config", str(cfg), "flush"])
    fields = web.sink.json()["fields"]
    assert (queued, flushed, web.sink.json()["kind"], fields, len(sink.messages)) == (
        0,
        0,
        "ban",
        {"address": "198.51.100.7", "reason": "sshd brute force"},
        1,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["event", "--kind", "Bad Kind"],
        ["event", "--kind", "ban", "--field", "X=1"],
        ["event", "--kind", "ban", "--field", "novalue"],
    ],
)
def test_cli_event_rejects_bad_input(tmp_path: Path, argv: list[str]) -> None:
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, []))
    assert notify.main(["--config", str(cfg), *argv]) == 2


def test_cli_test_prints_one_line_per_channel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with smtp_server() as (_sink, smtp_port), http_server() as web, black_hole() as hole:
        channels = [
            {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "tls": "none",
                "from": "a@b",
                "to": ["c@d"],
            },
            {"type": "webhook", "url": f"http://127.0.0.1:{web.port}/ok"},
            {"type": "webhook", "name": "stuck", "url": f"http://127.0.0.1:{hole}/", "timeout": 1},
        ]
        cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, channels))
        rc = notify.main(["--config", str(cfg), "test"])
    lines = capsys.readouterr().out.splitlines()
    assert (rc, [" ".join(line.split()[:2]) for line in lines], "timed out after 1s" in lines[2]) == (
        1,
        ["smtp ok", "webhook ok", "stuck FAILED:"],
        True,
    )


def test_module_runs_with_python_m(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(Path(notify.__file__).resolve().parent.parent),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "sshward.notify", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, "flush" in proc.stdout) == (0, True)


def test_cli_check_lists_channels_with_secrets_masked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    channels = [{"type": "webhook", "url": "http://127.0.0.1:9/hook/s3cr3t-token-value"}]
    cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, channels))
    rc = notify.main(["--config", str(cfg), "check"])
    out = capsys.readouterr().out
    assert (rc, "webhook: webhook json http://127.0.0.1:9/***" in out, "s3cr3t" in out) == (0, True, False)


def test_cli_check_candidate_file_ignores_mode_but_not_content(tmp_path: Path) -> None:
    good = write_config(tmp_path / "good.json", base_config(tmp_path, []), mode=0o644)
    bad = write_config(tmp_path / "bad.json", {"channels": [{"type": "carrier-pigeon"}]}, mode=0o644)
    strict = notify.main(["--config", str(good), "check"])
    assert (notify.main(["check", str(good)]), notify.main(["check", str(bad)]), strict) == (0, 2, 2)
