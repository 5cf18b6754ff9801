"""sshward.notify channels: hostile fields, header safety, TLS, secrets redaction."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiosmtpd")

from aiosmtpd.controller import Controller

from sshward import notify, notify_channels
from sshward.notify_channels import (
    ChannelError,
    ConfigError,
    Event,
    SmtpChannel,
    SyslogChannel,
    WebhookChannel,
    build_channel,
    build_mail,
    escape_text,
    render_subject,
    syslog_line,
)
from tests.unit.notify_servers import (
    MailSink,
    base_config,
    black_hole,
    free_port,
    http_server,
    smtp_server,
    write_config,
)
from tests.unit.pam_capture import pam_exec_capture, sshd_env

MAIL_HEADERS = {
    "subject", "from", "to", "date", "message-id", "x-sshward-kind",
    "content-type", "content-transfer-encoding", "mime-version",
}  # fmt: skip

HOSTILE = [
    "evil\r\nBcc: crlf@attacker.example",
    "evil\nSubject: pwned\n\nbody",
    "evil\rX-Injected: cr",
    "$(touch {pwned})",
    "`touch {pwned}`",
    '"; touch {pwned}; echo "',
    "\u2028Bcc: u2028@attacker.example",
    "\x85Bcc: nel@attacker.example",
    "=?utf-8?q?=0D=0ABcc:_encoded@attacker.example?=",
    "\u00fcn\u00efc\u00f6d\u00e9 \U0001f600 \u202eevil",
    "x" * 5000,
    "<!channel> <https://evil.example|click> &amp;",
    "\x00\x1b[31mred\x7f",
]


def fake_sendmail(tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "sendmail.out"
    script = tmp_path / "sendmail"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"data = sys.stdin.buffer.read()\n"
        f"open({str(out)!r}, 'wb').write(json.dumps(sys.argv[1:]).encode() + b'\\n' + data)\n",
        encoding="utf-8",
    )
    script.chmod(0o700)
    return script, out


@pytest.fixture(params=HOSTILE, ids=[escape_text(h, 30) for h in HOSTILE])
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Deliver one login event whose user, rhost, tty and key comment are hostile, through every channel."""
    pwned = tmp_path / "pwned"
    value = str(request.param).replace("{pwned}", str(pwned))
    sendmail, sendmail_out = fake_sendmail(tmp_path)
    lines: list[tuple[int, str]] = []
    with smtp_server() as (sink, smtp_port), http_server() as web:
        hook = f"http://127.0.0.1:{web.port}"
        channels: list[dict[str, Any]] = [
            {"type": "smtp", "host": "127.0.0.1", "port": smtp_port, "tls": "none",
             "from": "sshward@web1.example", "to": ["ops@example.org"]},
            {"type": "sendmail", "path": str(sendmail), "from": "root@web1.example",
             "to": ["ops@example.org"]},
        ]  # fmt: skip
        channels += [{"type": "webhook", "name": f, "url": f"{hook}/{f}", "format": f}
                     for f in ("json", "slack", "ntfy")]  # fmt: skip
        cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, channels))
        config = notify.load_config(str(cfg))
        config.channels.append(SyslogChannel("syslog", {}, 5.0, syslog_func=lambda p, m: lines.append((p, m))))
        # a PAM item is a C string, it cannot hold NUL: the login carries the value without them
        in_pam = value.replace("\x00", "")
        pam_exec_capture(tmp_path / "spool", sshd_env(user=in_pam, rhost=in_pam, PAM_TTY=in_pam))
        notify.emit(notify.make_event("ban", {"address": value, "reason": value}), config=config, spawn=None)
        report = notify.deliver_pending(config, authlog=lambda around: [])
        yield {
            "value": in_pam,
            "pwned": pwned,
            "sink": sink,
            "requests": {name: [r for r in web.sink.requests if r["path"] == "/" + name]
                         for name in ("json", "slack", "ntfy")},
            "sendmail_out": sendmail_out,
            "syslog": lines,
            "report": report,
            "spool_left": list((tmp_path / "spool").glob("*.json")),
        }  # fmt: skip


def test_hostile_everything_delivered(hostile: dict[str, Any]) -> None:
    assert (hostile["report"].failed, hostile["spool_left"]) == ({}, [])


def test_hostile_nothing_executed(hostile: dict[str, Any]) -> None:
    assert not hostile["pwned"].exists()


def test_hostile_smtp_header_set(hostile: dict[str, Any]) -> None:
    sink: MailSink = hostile["sink"]
    header_sets = [{k.lower() for k in sink.parsed(i)} for i in range(len(sink.messages))]
    assert header_sets == [MAIL_HEADERS, MAIL_HEADERS]


def test_hostile_smtp_recipients(hostile: dict[str, Any]) -> None:
    assert [m["rcpt"] for m in hostile["sink"].messages] == [["ops@example.org"], ["ops@example.org"]]


def test_hostile_smtp_subject_is_one_line(hostile: dict[str, Any]) -> None:
    subjects = [str(hostile["sink"].parsed(i)["Subject"]) for i in range(2)]
    assert [("\n" in s or "\r" in s) for s in subjects] == [False, False]


def test_hostile_smtp_body_lines_are_escaped(hostile: dict[str, Any]) -> None:
    body = hostile["sink"].parsed(0).get_content()
    user_lines = [line for line in body.splitlines() if line.startswith("user: ")]
    assert user_lines == ["user: " + escape_text(hostile["value"][: notify.PAM_VALUE_MAX])]


def test_hostile_sendmail_argv_and_headers(hostile: dict[str, Any]) -> None:
    argv_line, _, data = hostile["sendmail_out"].read_bytes().partition(b"\n")
    msg = message_from_bytes(data, policy=default_policy)
    assert (json.loads(argv_line), {k.lower() for k in msg}) == (["-t", "-oi"], MAIL_HEADERS)


def test_hostile_json_webhook_round_trips(hostile: dict[str, Any]) -> None:
    users = [json.loads(r["body"])["fields"].get("user") for r in hostile["requests"]["json"]]
    assert users == [hostile["value"][: notify.PAM_VALUE_MAX], None]


def test_hostile_slack_webhook_is_json_text_without_mentions(hostile: dict[str, Any]) -> None:
    texts = [json.loads(r["body"])["text"] for r in hostile["requests"]["slack"]]
    assert (len(texts), any("<!" in t or "<http" in t for t in texts)) == (2, False)


def test_hostile_ntfy_headers(hostile: dict[str, Any]) -> None:
    request = hostile["requests"]["ntfy"][0]
    names = {k.lower() for k, _v in request["headers"]}
    values_ok = all(v.isascii() and "\r" not in v and "\n" not in v for _k, v in request["headers"])
    assert (names, values_ok) == (
        {
            "accept-encoding",
            "content-length",
            "content-type",
            "host",
            "user-agent",
            "title",
            "tags",
            "connection",
        },
        True,
    )


def test_hostile_syslog_is_one_printable_line(hostile: dict[str, Any]) -> None:
    messages = [m for _p, m in hostile["syslog"]]
    assert [all(ch.isprintable() for ch in m) for m in messages] == [True, True]


# ----------------------------------------------------------------------------- rendering units


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("back\\slash", "back\\\\slash"),
        ("\u2028", "\\u2028"),
        ("\u202e", "\\u202e"),
        ("\x00", "\\x00"),
        ("caf\u00e9", "caf\u00e9"),
    ],
)
def test_escape_text(raw: str, escaped: str) -> None:
    assert escape_text(raw) == escaped


def test_subject_is_bounded() -> None:
    event = Event(kind="login", fields={"user": "u" * 5000}, host="h", time=0.0)
    assert len(render_subject(event)) <= 180


def test_mail_subject_folds_without_raw_concatenation() -> None:
    event = Event(kind="login", fields={"user": "\u00fc" * 60 + "\r\nBcc: x@y"}, host="h", time=0.0)
    raw = build_mail(event, "a@b", ["c@d"]).as_bytes()
    parsed = message_from_bytes(raw, policy=default_policy)
    names = [k.lower() for k in parsed]
    assert (names.count("bcc"), str(parsed["Subject"]) == render_subject(event)) == (0, True)


def test_syslog_line_quotes_values() -> None:
    line = syslog_line(Event(kind="ban", fields={"address": 'x" evil="1'}, host="h", time=0.0))
    assert 'address="x\\" evil=\\"1"' in line


# ----------------------------------------------------------------------------- secrets

PASSWORD = "S3cr3t-Smtp-Passw0rd"
URL_PASSWORD = "Url-Pa55word-XYZ"
PATH_TOKEN = "T0KEN-in-the-path-123456"
QUERY_TOKEN = "Query-Token-987654"
BEARER = "Bearer-Header-Secret-4242"
SECRETS = [PASSWORD, URL_PASSWORD, PATH_TOKEN, QUERY_TOKEN, BEARER]


def secret_channels(smtp_port: int, web_port: int) -> list[dict[str, Any]]:
    return [
        {"type": "smtp", "host": "127.0.0.1", "port": smtp_port, "tls": "none", "allow_plaintext_auth": True,
         "username": "mailer", "password": PASSWORD, "from": "a@b.example", "to": ["c@d.example"]},
        {"type": "webhook", "format": "ntfy",
         "url": f"http://hookuser:{URL_PASSWORD}@127.0.0.1:{web_port}/services/{PATH_TOKEN}?token={QUERY_TOKEN}",
         "headers": {"Authorization": f"Bearer {BEARER}"}},
    ]  # fmt: skip


@pytest.mark.parametrize("secret", SECRETS)
def test_test_command_never_prints_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str], secret: str) -> None:
    with http_server() as web:
        web.sink.status = 401
        cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, secret_channels(free_port(), web.port)))
        rc = notify.main(["--config", str(cfg), "test"])
    captured = capsys.readouterr()
    assert (rc, secret in captured.out + captured.err) == (1, False)


def test_test_command_reports_failures_per_channel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with http_server() as web:
        web.sink.status = 401
        cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, secret_channels(free_port(), web.port)))
        notify.main(["--config", str(cfg), "test"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit("  [", 1)[0] for line in lines] == [
        "smtp FAILED: ConnectionRefusedError: [Errno 111] Connection refused",
        "webhook FAILED: HTTP 401",
    ]


@pytest.mark.parametrize("secret", SECRETS)
def test_descriptions_are_redacted(secret: str) -> None:
    channels = [build_channel(c, i) for i, c in enumerate(secret_channels(25, 8080))]
    assert any(secret in c.describe() for c in channels) is False


def test_description_keeps_what_helps(tmp_path: Path) -> None:
    channels = [build_channel(c, i) for i, c in enumerate(secret_channels(25, 8080))]
    assert [c.describe() for c in channels] == [
        "smtp mailer:***@127.0.0.1:25, tls=none, to 1 recipient",
        "webhook ntfy http://127.0.0.1:8080/***, headers: Authorization: ***",
    ]


@pytest.mark.parametrize("secret", SECRETS)
def test_delivery_log_never_holds_secrets(tmp_path: Path, secret: str) -> None:
    with http_server() as web:
        web.sink.status = 500
        cfg = write_config(tmp_path / "notify.json", base_config(tmp_path, secret_channels(free_port(), web.port)))
        config = notify.load_config(str(cfg))
        notify.emit(notify.make_event("lockdown", {"reason": "test"}), config=config, spawn=None)
        logged: list[str] = []
        report = notify.deliver_pending(config, authlog=lambda around: [], log=logged.append)
    assert (sorted(report.failed), any(secret in m for m in logged + list(report.failed.values()))) == (
        ["smtp", "webhook"], False)  # fmt: skip


def test_exception_text_is_scrubbed() -> None:
    class Leaky(SmtpChannel):
        def _send(self, event: Event) -> None:
            raise RuntimeError(f"server said: bad password {self.password}")

    channel = Leaky("smtp", secret_channels(25, 80)[0], 5.0)
    with pytest.raises(ChannelError) as info:
        channel.send(Event(kind="test"))
    assert PASSWORD not in str(info.value) and "***" in str(info.value)


def test_header_with_crlf_refused_without_echoing_it() -> None:
    opts = {
        "type": "webhook",
        "url": "http://127.0.0.1/x",
        "headers": {"Authorization": f"{BEARER}\r\nX-Evil: 1"},
    }
    with pytest.raises(ConfigError) as info:
        build_channel(opts, 0)
    assert (BEARER in str(info.value), "Authorization" in str(info.value)) == (False, True)


def test_url_credentials_become_basic_auth_not_part_of_the_url(tmp_path: Path) -> None:
    with http_server() as web:
        url = f"http://hookuser:{URL_PASSWORD}@127.0.0.1:{web.port}/hook"
        WebhookChannel("w", {"url": url}, 5.0).send(Event(kind="test", host="h"))
    request = web.sink.requests[0]
    auth = dict(request["headers"])["Authorization"]
    assert (request["path"], auth) == (
        "/hook",
        "Basic " + base64.b64encode(f"hookuser:{URL_PASSWORD}".encode()).decode(),
    )


def test_redirects_are_not_followed(tmp_path: Path) -> None:
    with http_server() as web:
        web.sink.status = 307
        with pytest.raises(ChannelError, match="HTTP 307"):
            WebhookChannel("w", {"url": f"http://127.0.0.1:{web.port}/x"}, 5.0).send(Event(kind="test"))


# ----------------------------------------------------------------------------- timeouts and TLS


def test_hanging_webhook_times_out() -> None:
    with black_hole() as port, pytest.raises(ChannelError, match="timed out after 1s"):
        WebhookChannel("w", {"url": f"http://127.0.0.1:{port}/", "timeout": 1}, 10.0).send(Event(kind="test"))


def test_hanging_smtp_times_out() -> None:
    # Either the channel's own deadline or smtplib's socket timeout fires first, depending on load.
    with black_hole() as port, pytest.raises(ChannelError, match="timed out"):
        SmtpChannel(
            "m",
            {"host": "127.0.0.1", "port": port, "tls": "none", "from": "a@b", "to": ["c@d"], "timeout": 1},
            10.0,
        ).send(Event(kind="test"))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_smtp(certificate: tuple[Path, Path]) -> Iterator[tuple[MailSink, int, int]]:
    """Two aiosmtpd servers: implicit TLS and STARTTLS, same self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    sink = MailSink()
    tls_port, starttls_port = free_port(), free_port()
    implicit = Controller(sink, hostname="127.0.0.1", port=tls_port, ssl_context=context)
    starttls = Controller(sink, hostname="127.0.0.1", port=starttls_port, tls_context=context, require_starttls=True)
    implicit.start()
    starttls.start()
    try:
        yield sink, tls_port, starttls_port
    finally:
        implicit.stop()
        starttls.stop()


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_smtp_tls_with_ca_file(tls_smtp: tuple[MailSink, int, int], certificate: tuple[Path, Path], mode: str) -> None:
    sink, tls_port, starttls_port = tls_smtp
    opts = {"host": "127.0.0.1", "port": tls_port if mode == "tls" else starttls_port, "tls": mode,
            "from": "a@b.example", "to": ["c@d.example"], "ca_file": str(certificate[0])}  # fmt: skip
    SmtpChannel("m", opts, 10.0).send(Event(kind="test", host="h"))
    assert len(sink.messages) == 1


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_smtp_tls_verifies_the_certificate(tls_smtp: tuple[MailSink, int, int], mode: str) -> None:
    sink, tls_port, starttls_port = tls_smtp
    opts = {"host": "127.0.0.1", "port": tls_port if mode == "tls" else starttls_port, "tls": mode,
            "from": "a@b.example", "to": ["c@d.example"]}  # fmt: skip
    with pytest.raises(ChannelError, match="CERTIFICATE_VERIFY_FAILED"):
        SmtpChannel("m", opts, 10.0).send(Event(kind="test", host="h"))
    assert sink.messages == []


ENCODED_WORD_ATTACKS = [
    "=?utf-8?q?=0D=0ABcc:_encoded@attacker.example?=",
    "=?utf-8?b?DQpCY2M6IGI2NEBhdHRhY2tlci5leGFtcGxl?=",
    "=?iso-8859-1?q?=0ATo:_latin@attacker.example?=",
]


@pytest.mark.parametrize("attack", ENCODED_WORD_ATTACKS)
def test_encoded_words_cannot_add_headers(attack: str) -> None:
    event = Event(kind="login", fields={"user": attack}, host="h", time=0.0)
    parsed = message_from_bytes(build_mail(event, "a@b", ["c@d"]).as_bytes(), policy=default_policy)
    assert {k.lower() for k in parsed} == MAIL_HEADERS


@pytest.mark.parametrize("attack", ENCODED_WORD_ATTACKS)
def test_mail_round_trip_guard_refuses_injection(monkeypatch: pytest.MonkeyPatch, attack: str) -> None:
    # without the encoded-word defusing, the email package itself would split the header:
    # the round-trip guard must then refuse the mail rather than send it
    monkeypatch.setattr(notify_channels, "header_text", lambda escaped: escaped)
    event = Event(kind="login", fields={"user": attack}, host="h", time=0.0)
    with pytest.raises(ChannelError, match="round-trip"):
        build_mail(event, "a@b", ["c@d"])
