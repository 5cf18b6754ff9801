"""A minimal SMTP sink for the lab: stores every message as /var/spool/smtp-sink/N.eml
with the envelope in N.env. Standard library only (a line-based SMTP dialogue)."""

import os
import socketserver

SPOOL = "/var/spool/smtp-sink"


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write((text + "\r\n").encode())

    def handle(self):
        self.reply("220 sink ESMTP")
        sender, rcpts = "", []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            up = cmd.upper()
            if up.startswith(("EHLO", "HELO")):
                self.reply("250 sink")
            elif up.startswith("MAIL FROM:"):
                sender, rcpts = cmd[10:].strip(), []
                self.reply("250 ok")
            elif up.startswith("RCPT TO:"):
                rcpts.append(cmd[8:].strip())
                self.reply("250 ok")
            elif up == "DATA":
                self.reply("354 go on")
                data = []
                while True:
                    chunk = self.rfile.readline()
                    if not chunk or chunk in (b".\r\n", b".\n"):
                        break
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                os.makedirs(SPOOL, exist_ok=True)
                n = len([f for f in os.listdir(SPOOL) if f.endswith(".eml")]) + 1
                with open(os.path.join(SPOOL, f"{n}.eml"), "wb") as f:
                    f.write(b"".join(data))
                with open(os.path.join(SPOOL, f"{n}.env"), "w") as f:
                    f.write(sender + "\n" + "\n".join(rcpts) + "\n")
                self.reply("250 queued")
            elif up == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", 2525), Handler).serve_forever()
