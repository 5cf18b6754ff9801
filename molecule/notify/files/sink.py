#!/usr/bin/python3
"""Lab receivers for the notify scenario, standard library only (runs on the lab image's python3).

    sink.py smtp PORT DIR    SMTP server: stores every message as DIR/NNNN.eml (+ NNNN.json envelope)
    sink.py http PORT DIR    HTTP recorder: stores every request as DIR/NNNN.json
    sink.py hang PORT        accepts connections and never answers (a receiver that hangs)

Each stored file is written to a temp name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_counter = itertools.count(1)
_lock = threading.Lock()


def store(directory: str, suffix: str, data: bytes) -> str:
    with _lock:
        name = f"{time.time_ns()}-{next(_counter):05d}"
    tmp = os.path.join(directory, f".{name}{suffix}")
    with open(tmp, "wb") as handle:
        handle.write(data)
    final = os.path.join(directory, name + suffix)
    os.replace(tmp, final)
    return name


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    directory = "."

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 sink.lab ESMTP lab sink")
        sender, rcpts = "", []
        while True:
            raw = self.rfile.readline(4096)
            if not raw:
                return
            command = raw.decode("utf-8", "replace").strip()
            verb = command[:4].upper()
            if verb == "EHLO":
                self.reply("250-sink.lab")
                self.reply("250-8BITMIME")
                self.reply("250 SMTPUTF8")
            elif verb == "HELO":
                self.reply("250 sink.lab")
            elif verb == "MAIL":
                sender, rcpts = command.split(":", 1)[1].strip(), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(command.split(":", 1)[1].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    line = self.rfile.readline(1 << 20)
                    if not line or line in (b".\r\n", b".\n"):
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)
                name = store(self.directory, ".eml", b"".join(lines))
                envelope = {"from": sender, "rcpt": rcpts, "peer": self.client_address[0]}
                store_named(self.directory, name, envelope)
                self.reply("250 OK stored")
            elif verb == "RSET":
                sender, rcpts = "", []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


def store_named(directory: str, name: str, data: object) -> None:
    tmp = os.path.join(directory, f".{name}.env")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, os.path.join(directory, name + ".env.json"))


class HttpHandler(BaseHTTPRequestHandler):
    directory = "."

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_b64": base64.b64encode(body).decode("ascii"),
            "peer": self.client_address[0],
        }
        store(self.directory, ".json", json.dumps(record).encode("utf-8"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


class ThreadingTcp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def hang(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(128)
    held = []
    while True:
        conn, _ = server.accept()
        held.append(conn)  # never read, never answer, never close


def main(argv: list[str]) -> int:
    mode, port = argv[0], int(argv[1])
    if mode == "hang":
        hang(port)
        return 0
    directory = argv[2]
    os.makedirs(directory, exist_ok=True)
    if mode == "smtp":
        SmtpHandler.directory = directory
        ThreadingTcp(("0.0.0.0", port), SmtpHandler).serve_forever()
    elif mode == "http":
        HttpHandler.directory = directory
        ThreadingHTTPServer.allow_reuse_address = True
        ThreadingHTTPServer(("0.0.0.0", port), HttpHandler).serve_forever()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
