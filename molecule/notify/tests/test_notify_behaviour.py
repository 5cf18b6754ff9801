"""Behaviour of the login notifier against real receivers (molecule scenario `notify` only).

Runs for each target of the scenario (group notify_targets) and drives the other lab
containers (client, SMTP sink, HTTP recorder) over SSH through the same inventory.
A login is identified by its source port (the client reads it from $SSH_CLIENT), so the
other events of the run (sudo from Ansible, test events) never disturb a count.
No timing assertions: waits only poll until something arrives or a generous deadline.
"""

from __future__ import annotations

import base64
import json
import time
from email import message_from_string
from email.policy import default as default_policy
from typing import Any

import pytest
import testinfra

CLIENT = "sshward-mol-notify-client"
SMTP = "sshward-mol-notify-smtp"
WEB = "sshward-mol-notify-web"
CLIENT_ADDRESS = "172.31.242.20"
KEYS = "/home/admin/notify-keys"
SCRIPT = "/usr/local/sbin/sshward-notify"
MAIL_HEADERS = {
    "subject",
    "from",
    "to",
    "date",
    "message-id",
    "x-sshward-kind",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}
DUMP_MAIL = (
    "import glob, json; print(json.dumps([[open(f, encoding='utf-8', errors='replace').read(),"
    " json.load(open(f[:-4] + '.env.json'))] for f in sorted(glob.glob('/srv/sink/smtp/*.eml'))]))"
)
#: the mail of each mail channel, told apart by the envelope recipient
MAIL_RECIPIENT = {"smtp": "<ops@lab.invalid>", "sendmail": "<sendmail-ops@lab.invalid>"}
#: the request path of each webhook channel (molecule.yml)
HOOK_PATH = {"json": "/hook/", "slack": "/slack/", "ntfy": "/ntfy/"}
SECRETS = ("lab-token-0123456789", "lab-secret-header-value", "lab-slack-secret")
DUMP_HTTP = (
    "import glob, json; print(json.dumps([json.load(open(f)) for f in sorted(glob.glob('/srv/sink/http/*.json'))]))"
)


@pytest.fixture(scope="module")
def target(host):
    variables = host.ansible.get_variables()
    if "notify_targets" not in variables.get("group_names", []):
        pytest.skip("not a notify scenario target")
    return {"host": host, "name": variables["inventory_hostname"], "address": variables["ansible_host"]}


@pytest.fixture(scope="module")
def lab(host):
    inventory = host.backend.ansible_inventory

    def get(name: str) -> Any:
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)

    return {"client": get(CLIENT), "smtp": get(SMTP), "web": get(WEB)}


# ----------------------------------------------------------------------------- helpers


def ssh(lab, user: str, address: str, command: str, *, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    """A real ssh login from the client container with the user's key: (ssh's exit status, stdout).

    The status travels in stdout: testinfra's backends raise on a command exiting 255.
    """
    result = lab["client"].run(
        "ssh -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20"
        " -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s" + " %s" * len(extra) + " %s %s;"
        " echo ssh-exit=$?",
        f"{KEYS}/{user}",
        f"{KEYS}/known_hosts",
        *extra,
        address,
        command,
    )
    lines = result.stdout.splitlines()
    status = int(lines[-1].split("=", 1)[1]) if lines and lines[-1].startswith("ssh-exit=") else -1
    return status, result.stdout


def login_port(lab, user: str, address: str, command: str = "") -> str:
    status, out = ssh(lab, user, address, command + "echo SSH_CLIENT=$SSH_CLIENT", extra=("-l", user))
    assert status == 0, out
    line = next(x for x in out.splitlines() if x.startswith("SSH_CLIENT="))
    return line.split("=", 1)[1].split()[1]


def mail_fields(raw: str) -> tuple[Any, dict[str, str]]:
    msg = message_from_string(raw, policy=default_policy)
    body = msg.get_content() if not msg.is_multipart() else ""
    fields = {}
    for line in body.splitlines():
        name, sep, value = line.partition(": ")
        if sep and name.isidentifier():
            fields.setdefault(name, value)
    return msg, fields


def mails(lab, channel: str = "smtp") -> list[tuple[Any, dict[str, str], dict[str, Any]]]:
    out = lab["smtp"].check_output("python3 -c %s", DUMP_MAIL)
    found = [(*mail_fields(raw), envelope) for raw, envelope in json.loads(out)]
    return [m for m in found if MAIL_RECIPIENT[channel] in m[2]["rcpt"]]


def requests(lab, fmt: str) -> list[dict[str, Any]]:
    """The HTTP recorder's requests of one webhook format, body decoded."""
    records = json.loads(lab["web"].check_output("python3 -c %s", DUMP_HTTP))
    mine = [r for r in records if r["path"].startswith(HOOK_PATH[fmt])]
    for record in mine:
        record["body"] = base64.b64decode(record["body_b64"]).decode("utf-8")
        record["header"] = {k.lower(): v for k, v in record["headers"]}
    return mine


def hooks(lab) -> list[dict[str, Any]]:
    records = requests(lab, "json")
    for record in records:
        record["json"] = json.loads(record["body"])
    return records


def matching(lab, target, kind: str, **want: str) -> tuple[list[Any], list[Any]]:
    def ok(host: str, fields: dict[str, str], kind_seen: str) -> bool:
        return host == target["name"] and kind_seen == kind and all(fields.get(k) == v for k, v in want.items())

    found_mail = [m for m in mails(lab) if ok(m[1].get("host", ""), m[1], m[1].get("kind", ""))]
    found_hook = [h for h in hooks(lab) if ok(h["json"]["host"], h["json"]["fields"], h["json"]["kind"])]
    return found_mail, found_hook


def wait_for_one_each(lab, target, kind: str, *, flush: bool = False, **want: str) -> tuple[list[Any], list[Any]]:
    """Poll until a mail and a webhook call for the event arrived, then let any duplicate show up too."""
    deadline = time.monotonic() + 150
    found: tuple[list[Any], list[Any]] = ([], [])
    while time.monotonic() < deadline:
        if flush:
            with target["host"].sudo():
                target["host"].run(f"{SCRIPT} flush --quiet")
        found = matching(lab, target, kind, **want)
        if found[0] and found[1]:
            time.sleep(5)  # a second delivery (a duplicate) would come from the same deliverer run
            return matching(lab, target, kind, **want)
        time.sleep(2)
    return found


def set_receivers(lab, state: str) -> None:
    """up: the real receivers; down: nothing listens; hang: accept and never answer."""
    for name, mode, port in (("smtp", "smtp", 25), ("web", "http", 80)):
        box = lab[name]
        with box.sudo():
            box.run("systemctl stop sink-hang.service; systemctl reset-failed sink-hang.service")
            if state == "up":
                box.check_output(f"systemctl start sink@{mode}.service")
            else:
                box.check_output(f"systemctl stop sink@{mode}.service")
            if state == "hang":
                box.check_output(f"systemd-run --unit=sink-hang /usr/bin/python3 -I /opt/sink/sink.py hang {port}")


# ----------------------------------------------------------------------------- tests


def test_key_login_sends_one_mail_and_one_webhook(target, lab):
    expected_fp = lab["client"].check_output("ssh-keygen -lf %s", f"{KEYS}/alice.pub").split()[1]
    port = login_port(lab, "alice", target["address"])
    found_mail, found_hook = wait_for_one_each(lab, target, "login", user="alice", port=port)
    assert (len(found_mail), len(found_hook)) == (1, 1)
    hook_fields = found_hook[0]["json"]["fields"]
    assert (hook_fields["address"], hook_fields["fingerprint"], hook_fields["method"]) == (
        CLIENT_ADDRESS,
        expected_fp,
        "publickey",
    )
    mail_f = found_mail[0][1]
    assert (mail_f["address"], mail_f["fingerprint"], mail_f["key_source"]) == (
        CLIENT_ADDRESS,
        expected_fp,
        "/home/alice/.ssh/authorized_keys:1",
    )


def test_mail_goes_to_every_recipient(target, lab):
    envelopes = [m[2] for m in mails(lab) if m[1].get("host") == target["name"]]
    assert envelopes and all(sorted(e["rcpt"]) == ["<oncall@lab.invalid>", "<ops@lab.invalid>"] for e in envelopes)


def test_sudo_failure_is_reported(target, lab):
    status, _out = ssh(lab, "alice", target["address"], "echo wrong-password | sudo -S -k true", extra=("-l", "alice"))
    assert status != 0
    found_mail, found_hook = wait_for_one_each(lab, target, "sudo_failure", service="sudo")
    assert (bool(found_mail), bool(found_hook), found_hook[0]["json"]["fields"].get("user")) == (
        True,
        True,
        "alice",
    )


@pytest.mark.parametrize("state", ["down", "hang"])
def test_login_completes_with_receivers_unusable_and_events_arrive_later(target, lab, state):
    set_receivers(lab, state)
    try:
        port = login_port(lab, "alice", target["address"])  # asserts the login completed
        with target["host"].sudo():
            # the capture file (not yet admitted), incoming/ (admitted from) or the spool itself
            # (admitted, a channel failed): the login is kept somewhere
            spooled = target["host"].check_output("find /var/spool/sshward/notify -type f -size +0")
        assert matching(lab, target, "login", port=port) == ([], [])
        assert spooled.strip(), "nothing spooled"
    finally:
        set_receivers(lab, "up")
    found_mail, found_hook = wait_for_one_each(lab, target, "login", flush=True, user="alice", port=port)
    assert (len(found_mail), len(found_hook)) == (1, 1)


def watcher_pid(target) -> str:
    return target["host"].check_output("systemctl show -p MainPID --value sshward-notify-watch.service")


def test_a_login_is_delivered_by_the_resident_watcher(target, lab):
    # no unit is started for a login: the same watcher process delivers it (the retry timer,
    # which would deliver it too within a minute, is stopped meanwhile)
    host = target["host"]
    before = watcher_pid(target)
    with host.sudo():
        host.check_output("systemctl stop sshward-notify-flush.timer")
    try:
        port = login_port(lab, "alice", target["address"])
        found_mail, found_hook = wait_for_one_each(lab, target, "login", user="alice", port=port)
    finally:
        with host.sudo():
            host.check_output("systemctl start sshward-notify-flush.timer")
    assert (len(found_mail), len(found_hook), watcher_pid(target)) == (1, 1, before)
    assert before != "0"


def test_upgrade_removed_the_path_unit(target):
    host = target["host"]
    unit_file = host.file("/etc/systemd/system/sshward-notify-flush.path")
    state = host.run("systemctl is-active sshward-notify-flush.path").stdout.strip()
    assert (unit_file.exists, state) == (False, "inactive")


def test_simultaneous_logins_each_arrive_once(target, lab):
    # pam_exec of every login appends to the one capture file at the same moment
    count = 8
    one_login = (
        f"ssh -i {KEYS}/alice -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new"
        f" -o UserKnownHostsFile={KEYS}/known_hosts -l alice {target['address']} 'echo SSH_CLIENT=$SSH_CLIENT'"
    )
    out = lab["client"].check_output(" & ".join([one_login] * count) + " & wait")
    ports = sorted({line.split("=", 1)[1].split()[1] for line in out.splitlines() if line.startswith("SSH_CLIENT=")})
    assert len(ports) == count, out
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        seen = [h["json"]["fields"].get("port") for h in hooks(lab) if h["json"]["host"] == target["name"]]
        if all(seen.count(port) >= 1 for port in ports):
            break
        time.sleep(2)
    time.sleep(5)  # a duplicate would come from the same deliverer run
    seen = [h["json"]["fields"].get("port") for h in hooks(lab) if h["json"]["host"] == target["name"]]
    assert [seen.count(port) for port in ports] == [1] * count


def test_hostile_input_executes_nothing_and_stays_data(target, lab):
    box = target["host"]
    with box.sudo():
        box.run("rm -f /tmp/pwned")
    # user names "$(touch /tmp/pwned)" and "alice from 6.6.6.6 port 22 ssh2" (from an ssh config:
    # the client refuses them on its command line; it cannot send a newline at all)
    for alias in ("pwned", "fakefrom"):
        hostile = ("-F", f"{KEYS}/hostile_config", "-o", f"HostName={target['address']}")
        status, _out = ssh(lab, "alice", alias, "true", extra=hostile)
        assert status == 255
    # and a fake sshd "Accepted" line for this very session, written by the user into the
    # journal with the session's sshd PID as its syslog PID: the notifier trusts only _PID
    spoof = (
        "logger -t sshd --id=$(ps -o ppid= -p $PPID | tr -d ' ')"
        " 'Accepted publickey for mallory from 6.6.6.6 port 1 ssh2: ED25519 SHA256:fake'; "
    )
    port = login_port(lab, "mallory", target["address"], spoof)
    with box.sudo():
        queued = box.run(
            "%s event --kind ban --field %s --field %s",
            SCRIPT,
            "address=$(touch /tmp/pwned)",
            "reason=x\r\nBcc: evil@attacker.invalid\r\n\r\nforged body",
        )
    assert queued.rc == 0, queued.stderr
    found_mail, found_hook = wait_for_one_each(lab, target, "login", user="mallory", port=port)
    assert (len(found_mail), len(found_hook)) == (1, 1)
    comment = found_hook[0]["json"]["fields"]["key_comment"]
    assert (comment.startswith("evil $(touch /tmp/pwned) `touch /tmp/pwned`"), "\\r\\nX: y" in comment) == (
        True,
        True,
    )
    assert found_hook[0]["json"]["fields"]["address"] == CLIENT_ADDRESS
    ban_mail, ban_hook = wait_for_one_each(lab, target, "ban", address="$(touch /tmp/pwned)")
    assert (len(ban_mail), len(ban_hook), ban_hook[0]["json"]["fields"]["reason"]) == (
        1,
        1,
        "x\r\nBcc: evil@attacker.invalid\r\n\r\nforged body",
    )
    with box.sudo():
        assert not box.file("/tmp/pwned").exists
    assert not lab["client"].file("/tmp/pwned").exists


def test_no_mail_header_was_split(target, lab):
    stored = [m for m in mails(lab) if m[1].get("host") == target["name"]]
    assert stored and all({name.lower() for name in msg} == MAIL_HEADERS for msg, _f, _e in stored)
    assert all(len(msg.keys()) == len(MAIL_HEADERS) for msg, _f, _e in stored)


def test_no_login_event_claims_the_fake_address(target, lab):
    logins = [h["json"] for h in hooks(lab) if h["json"]["kind"] == "login" and h["json"]["host"] == target["name"]]
    ours = [e for e in logins if e["fields"].get("user") in ("alice", "mallory")]
    assert ours and all(e["fields"].get("address") == CLIENT_ADDRESS for e in ours)
    assert not [e for e in logins if "6.6.6.6" in json.dumps(e)]


def test_every_webhook_body_is_json_with_the_documented_shape(target, lab):
    records = hooks(lab)
    assert records and all(set(r["json"]) >= {"source", "kind", "host", "time", "fields", "title"} for r in records)


# su reads the password from its terminal and flushes what was typed ahead (TCSAFLUSH), so
# the client waits for the prompt and then types the wrong password until ssh ends.
SU_ATTEMPT = r"""
import os, subprocess, sys, time
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
seen, deadline = b"", time.monotonic() + 120
while b"assword" not in seen and time.monotonic() < deadline:
    chunk = os.read(proc.stdout.fileno(), 1024)
    if not chunk:
        break
    seen += chunk
while proc.poll() is None and time.monotonic() < deadline:
    time.sleep(1)
    try:
        proc.stdin.write(b"wrong-password\n")
        proc.stdin.flush()
    except BrokenPipeError:
        break
if proc.poll() is None:
    proc.kill()
print(f"ssh-exit={proc.wait()}")
"""


def test_su_failure_is_reported(target, lab):
    result = lab["client"].run(
        "python3 -c %s ssh -tt -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=20"
        " -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=%s -l alice %s %s",
        SU_ATTEMPT,
        f"{KEYS}/alice",
        f"{KEYS}/known_hosts",
        target["address"],
        "su -c true root",
    )
    assert "ssh-exit=1" in result.stdout, result.stdout
    found_mail, found_hook = wait_for_one_each(lab, target, "su_failure", service="su", ruser="alice")
    assert (len(found_mail), len(found_hook), found_hook[0]["json"]["fields"].get("user")) == (1, 1, "root")


@pytest.fixture(scope="module")
def channel_login(target, lab):
    """One alice login (its source port), waited for until the SMTP and JSON webhook channels have it."""
    port = login_port(lab, "alice", target["address"])
    wait_for_one_each(lab, target, "login", user="alice", port=port)
    return port


def poll(fetch, deadline: float = 120):
    end = time.monotonic() + deadline
    while True:
        found = fetch()
        if found or time.monotonic() > end:
            return found
        time.sleep(2)


def body_of(target, port: str):
    """True for a text body of this target's login with this source port."""
    return lambda body: f"host: {target['name']}\n" in body and f"port: {port}\n" in body


def test_sendmail_channel_delivers_through_the_local_mta(target, lab, channel_login):
    def fetch():
        return [
            m for m in mails(lab, "sendmail") if m[1].get("port") == channel_login and m[1]["host"] == target["name"]
        ]

    found = poll(fetch)
    assert [(m[0]["From"], m[0]["To"], m[1]["user"], m[1]["address"]) for m in found] == [
        ("sendmail-channel@lab.invalid", "sendmail-ops@lab.invalid", "alice", CLIENT_ADDRESS)
    ]


def test_sendmail_mail_headers_not_split(target, lab, channel_login):
    stored = [m for m in mails(lab, "sendmail") if m[1].get("host") == target["name"]]
    assert stored and all({name.lower() for name in msg} <= MAIL_HEADERS for msg, _f, _e in stored)


def test_slack_request_shape(target, lab, channel_login):
    mine = body_of(target, channel_login)
    found = poll(lambda: [r for r in requests(lab, "slack") if mine(json.loads(r["body"]).get("text", ""))])
    assert len(found) == 1
    request, body = found[0], json.loads(found[0]["body"])
    assert (request["method"], request["header"]["content-type"], list(body)) == ("POST", "application/json", ["text"])
    assert body["text"].startswith(f"[sshward] login alice from {CLIENT_ADDRESS} on {target['name']}\n")


def test_slack_text_escapes_markup(target, lab):
    # mallory's key comment holds "<b>x</b>": Slack would read <...> as a link or a mention
    def fetch():
        texts = [json.loads(r["body"])["text"] for r in requests(lab, "slack")]
        return [t for t in texts if f"host: {target['name']}\n" in t and "key_comment: " in t and "user: mallory" in t]

    texts = poll(fetch)
    assert texts and all("<" not in t and "&lt;b&gt;x&lt;/b&gt;" in t for t in texts)


def test_ntfy_request_shape(target, lab, channel_login):
    mine = body_of(target, channel_login)
    found = poll(lambda: [r for r in requests(lab, "ntfy") if mine(r["body"])])
    assert len(found) == 1
    header = found[0]["header"]
    assert (found[0]["method"], header["content-type"], header["tags"], header["title"]) == (
        "POST",
        "text/plain; charset=utf-8",
        "key",
        f"[sshward] login alice from {CLIENT_ADDRESS} on {target['name']}",
    )


def test_ntfy_failure_has_high_priority(target, lab):
    found = poll(
        lambda: [r for r in requests(lab, "ntfy") if "kind: su_failure\n" in r["body"] and target["name"] in r["body"]]
    )
    assert found and all(r["header"].get("priority") == "high" for r in found)


def test_no_secret_in_the_bodies(target, lab):
    bodies = [r["body"] for fmt in HOOK_PATH for r in requests(lab, fmt)]
    assert bodies and not [s for s in SECRETS if any(s in b for b in bodies)]


CHANNELS = ("mail", "hook", "syslog", "sendmail", "slack", "ntfy")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("up", dict.fromkeys(CHANNELS, "ok")),
        ("down", {**dict.fromkeys(CHANNELS, "FAILED:"), "syslog": "ok"}),
    ],
)
def test_test_command_reports_each_channel(target, lab, state, expected):
    set_receivers(lab, state)
    try:
        with target["host"].sudo():
            result = target["host"].run(f"{SCRIPT} test")
    finally:
        set_receivers(lab, "up")
    reported = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.strip()}
    assert (reported, result.rc) == (expected, 0 if state == "up" else 1)
    assert not [s for s in SECRETS if s in result.stdout + result.stderr]
