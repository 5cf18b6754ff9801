"""A tiny RDAP server for the lab (runs in its own container). Answers /ip/ADDR:

* 172.31.243.66 (the attacker): a network with a hostile registrant (an e-mail with a header
  injection attempt and a name with CR/LF) before the real abuse entity, nested as RIRs do.
* any other address: 404.
Every request is appended to /var/log/rdap-requests.log so the tests can count lookups.
"""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = {
    "172.31.243.66": {
        "rdapConformance": ["rdap_level_0"],
        "objectClassName": "ip network",
        "handle": "LAB-ATTACKER-NET",
        "startAddress": "172.31.243.64",
        "endAddress": "172.31.243.127",
        "entities": [
            {
                "objectClassName": "entity",
                "handle": "EVIL-1",
                "roles": ["registrant", "abuse"],
                "vcardArray": [
                    "vcard",
                    [
                        ["version", {}, "text", "4.0"],
                        ["fn", {}, "text", "Evil\r\nBcc: victim@example.org"],
                        ["email", {}, "text", "x@example.org\r\nBcc: victim@example.org"],
                    ],
                ],
            },
            {
                "objectClassName": "entity",
                "handle": "LAB-ISP",
                "roles": ["registrant"],
                "entities": [
                    {
                        "objectClassName": "entity",
                        "handle": "LAB-ABUSE",
                        "roles": ["abuse"],
                        "vcardArray": [
                            "vcard",
                            [
                                ["version", {}, "text", "4.0"],
                                ["fn", {}, "text", "Lab ISP abuse desk =?utf-8?q?=0D=0ABcc:_x@y?="],
                                ["email", {}, "text", "abuse@attacker-isp.example"],
                            ],
                        ],
                    }
                ],
            },
        ],
    }
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        with open("/var/log/rdap-requests.log", "a") as f:
            f.write(self.path + "\n")
        addr = self.path.rsplit("/", 1)[-1]
        doc = ANSWERS.get(addr) if self.path.startswith("/ip/") else None
        if doc is None:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/rdap+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
