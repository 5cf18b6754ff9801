"""Real receivers on 127.0.0.1 for the notifier tests: SMTP (aiosmtpd), HTTP, and a black hole."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailSink:
    """aiosmtpd handler: records every accepted message; ``fail`` answers 451 instead."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.fail = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail:
            return "451 4.3.0 receiver down for the test"
        self.messages.append(
            {"from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos), "data": bytes(envelope.content)}
        )
        return "250 OK"

    def parsed(self, index: int = 0) -> EmailMessage:
        msg = message_from_bytes(self.messages[index]["data"], policy=default_policy)
        assert isinstance(msg, EmailMessage)
        return msg


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[MailSink, int]]:
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


class HookSink:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200

    def json(self, index: int = 0) -> Any:
        return json.loads(self.requests[index]["body"].decode("utf-8"))


def _handler_for(sink: HookSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if sink.status < 300:
                sink.requests.append({"path": self.path, "headers": list(self.headers.items()), "body": body})
            self.send_response(sink.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class HttpServer:
    """http.server in a thread; ``stop``/``start`` on the same port simulate a receiver outage."""

    def __init__(self) -> None:
        self.sink = HookSink()
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self.sink))
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextlib.contextmanager
def http_server(running: bool = True) -> Iterator[HttpServer]:
    server = HttpServer()
    if running:
        server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """Accepts TCP connections (kernel backlog) but never reads or answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def write_config(path: Path, data: dict[str, Any], mode: int = 0o600) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    os.chmod(path, mode)
    return path


def base_config(tmp_path: Path, channels: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "spool_dir": str(tmp_path / "spool"),
        "state_dir": str(tmp_path / "state"),
        "hostname": "web1.example",
        "timeout": 3,
        "authlog": {"journal": False, "files": [], "wait": 0},
        "channels": channels,
    }
    data.update(extra)
    return data


def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
