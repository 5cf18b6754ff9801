"""Unit tests of sshward.abuse: RDAP (hostile answers, cache), eligibility, limits, XARF, MIME.

Addresses are from the documentation ranges, which abuse.py never reports by itself: the
reporter tests set allow_private (as the lab does); no traffic leaves the test."""
# ruff: noqa: E501  (log lines and RDAP documents are data)

from __future__ import annotations

import base64
import json
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from sshward.abuse import (
    AbuseConfig,
    AbuseContact,
    AbuseError,
    RdapClient,
    Reporter,
    build_message,
    build_xarf,
    config_from_dict,
    contact_from_rdap,
    eligible,
    validate_email,
    validate_xarf,
)
from sshward.notify_channels import ConfigError

ATT = "203.0.113.5"
LINES = [
    "2026-11-22T05:45:15.566818+00:00 web1 sshd[398]: Invalid user oracle from 203.0.113.5 port 47100",
    "2026-11-22T05:45:17.354100+00:00 web1 sshd[398]: Failed password for invalid user oracle from 203.0.113.5 port 47100 ssh2",
    "2026-11-22T05:45:18.000000+00:00 web1 sshd[399]: Failed password for invalid user x from 203.0.113.5 port 1 ssh2 from 203.0.113.45 port 5 ssh2",
    "2026-11-22T05:45:19.000000+00:00 web1 sshd[400]: Failed password for root from 203.0.113.45 port 5 ssh2",
    "2026-11-22T05:45:20.000000+00:00 web1 sshd[401]: Failed password for invalid user 203.0.113.5 from 198.51.100.9 port 5 ssh2",
]  # fmt: skip


def vcard(*props: list[Any]) -> list[Any]:
    return ["vcard", [["version", {}, "text", "4.0"], *props]]


def rdap_doc(email: str = "abuse@isp.example") -> dict[str, Any]:
    return {
        "objectClassName": "ip network",
        "entities": [
            {"handle": "EVIL", "roles": ["abuse"], "vcardArray": vcard(["email", {}, "text", "a@b.example\r\nBcc: v@x.example"])},
            {"handle": "REG", "roles": ["registrant"], "vcardArray": vcard(["email", {}, "text", "reg@isp.example"]),
             "entities": [{"handle": "ABU\nSE", "roles": ["abuse"],
                           "vcardArray": vcard(["fn", {}, "text", "=?utf-8?q?=0D=0ABcc:_x@y?="], ["email", {}, "text", email])}]},
        ],
    }  # fmt: skip


def cfg(tmp_path: Path, **kw: Any) -> AbuseConfig:
    base: dict[str, Any] = {
        "enabled": True,
        "dry_run": False,
        "rdap_base_url": "http://rdap.test",
        "cache_dir": str(tmp_path / "cache"),
        "state_dir": str(tmp_path / "state"),
        "report_dir": str(tmp_path / "reports"),
        "reporter": {"org": "Example", "contact": "desk@example.org", "from": "sshward@example.org"},
        "smtp": {"host": "127.0.0.1", "port": 2525, "tls": "none"},
        "logs": {"journal": False, "files": []},
    }
    base.update(kw)
    return config_from_dict(base)


class FakeRdap:
    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float) -> Any:
        self.urls.append(url)
        return self.doc


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("abuse@isp.example", True),
        ("mailto:abuse@isp.example", True),
        ("a@b.example\r\nBcc: v@x.example", False),
        ("Abuse <abuse@isp.example>", False),
        ("abuse@isp.example, other@x.example", False),
        ('"x"@isp.example', False),
        ("abuse@localhost", False),
        (None, False),
    ],
)
def test_validate_email(value: object, ok: bool) -> None:
    assert (validate_email(value) is not None) is ok


def test_rdap_skips_hostile_entity_and_finds_nested_abuse() -> None:
    c = contact_from_rdap(rdap_doc())
    assert c is not None
    assert (c.email, c.handle) == ("abuse@isp.example", "ABU\\nSE")


def test_rdap_no_abuse_role() -> None:
    doc = {"entities": [{"roles": ["registrant"], "vcardArray": vcard(["email", {}, "text", "r@isp.example"])}]}
    assert contact_from_rdap(doc) is None


@pytest.mark.parametrize("doc", [None, [], "x", {"entities": "x"}, {"entities": [1, None, {"roles": "abuse"}]}])
def test_rdap_garbage(doc: Any) -> None:
    assert contact_from_rdap(doc) is None


def test_rdap_depth_is_bounded() -> None:
    doc: dict[str, Any] = {"roles": ["abuse"], "vcardArray": vcard(["email", {}, "text", "deep@isp.example"])}
    for _ in range(50):
        doc = {"roles": ["registrant"], "entities": [doc]}
    assert contact_from_rdap(doc) is None


def test_rdap_cache(tmp_path: Path) -> None:
    fake = FakeRdap(rdap_doc())
    client = RdapClient("http://rdap.test/", str(tmp_path), 3600, fetch=fake)
    assert client.lookup(ATT) == client.lookup(ATT)
    assert fake.urls == [f"http://rdap.test/ip/{ATT}"]
    client2 = RdapClient("http://rdap.test/", str(tmp_path), 3600, fetch=fake, now=lambda: 10**12)
    client2.lookup(ATT)
    assert len(fake.urls) == 2  # expired


def test_rdap_refuses_non_address() -> None:
    with pytest.raises(ValueError):
        RdapClient("http://rdap.test", None, 0, fetch=FakeRdap({})).lookup("1.2.3.4/../../x")


@pytest.mark.parametrize(
    ("addr", "why"),
    [
        ("10.1.2.3", "not a globally routable address"),
        ("127.0.0.1", "not a globally routable address"),
        ("192.0.2.7", "allowlisted (192.0.2.0/24)"),
        ("fe80::1", "not a globally routable address"),
        ("8.8.8.8", None),
        ("nonsense", "not an IP address"),
    ],
)
def test_eligible(tmp_path: Path, addr: str, why: str | None) -> None:
    assert eligible(addr, cfg(tmp_path, allowlist=["192.0.2.0/24"])) == why


def test_allow_private_warns(tmp_path: Path) -> None:
    warnings: list[str] = []
    assert eligible("172.31.243.66", cfg(tmp_path, allow_private=True), warnings.append) is None
    assert "test lab only" in warnings[0]


def test_config_needs_smtp_and_contact_to_send() -> None:
    with pytest.raises(ConfigError):
        config_from_dict({"enabled": True, "dry_run": False})


def test_config_off_by_default() -> None:
    c = config_from_dict({})
    assert (c.enabled, c.dry_run) == (False, True)


def test_xarf_valid_and_exact_payload(tmp_path: Path) -> None:
    doc = build_xarf(ATT, LINES[:2], cfg(tmp_path), now=1.8e9, source_port=47100, attempts=1)
    assert validate_xarf(doc) == []
    assert base64.b64decode(doc["evidence"][0]["payload"]).decode().splitlines() == LINES[:2]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d.pop("first_seen"), "missing first_seen"),
        (lambda d: d.update(source_port=None), "source_port is required"),
        (lambda d: d.update(xarf_version="3"), "xarf_version"),
        (lambda d: d["reporter"].update(extra=1), "reporter must have exactly"),
        (lambda d: d["evidence"][0].update(hash="sha256:00"), "hash does not match"),
        (lambda d: d.update(tags=["Bad Tag"]), "tags"),
    ],
)
def test_xarf_invalid(tmp_path: Path, mutate: Any, problem: str) -> None:
    doc = build_xarf(ATT, LINES[:2], cfg(tmp_path), now=1.8e9, source_port=47100)
    mutate(doc)
    assert any(problem in e for e in validate_xarf(doc))


def test_message_round_trip_and_no_injection(tmp_path: Path) -> None:
    c = cfg(tmp_path, hostname="web1=?utf-8?q?=0D=0ABcc:_x@y?=")
    contact = AbuseContact("abuse@isp.example", "H\\r\\nBcc: x", "=?utf-8?q?=0D=0ABcc:_x@y?=")
    xarf = build_xarf(ATT, LINES[:2], c, now=1.8e9, source_port=1)
    msg = build_message(ATT, LINES[:2], contact, c, xarf, 1.8e9)
    parsed = message_from_bytes(msg.as_bytes(), policy=default_policy)
    assert parsed["Bcc"] is None
    assert [a.addr_spec for a in parsed["To"].addresses] == ["abuse@isp.example"]
    (att,) = list(parsed.iter_attachments())
    assert json.loads(att.get_content()) == xarf


def test_message_refuses_bad_recipient(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    xarf = build_xarf(ATT, LINES[:1], c, now=1.8e9, source_port=1)
    with pytest.raises(AbuseError):
        build_message(ATT, LINES[:1], AbuseContact("a@b.example\r\nBcc: c@d.example"), c, xarf, 1.8e9)


def reporter(tmp_path: Path, sent: list[Any], now: float = 1.8e9, **kw: Any) -> Reporter:
    kw.setdefault("allow_private", True)
    c = cfg(tmp_path, **kw)
    rdap = RdapClient(c.rdap_base_url, c.cache_dir, 3600, fetch=FakeRdap(rdap_doc()))
    return Reporter(c, lines=LINES, rdap=rdap, sender=lambda m, r: sent.append((m, r)), now=lambda: now)


def test_report_exact_excerpt(tmp_path: Path) -> None:
    sent: list[Any] = []
    res = reporter(tmp_path, sent).report(ATT)
    assert (res.status, res.recipient) == ("sent", "abuse@isp.example")
    ((msg, rcpt),) = sent
    xarf = json.loads(next(iter(msg.iter_attachments())).get_content())
    excerpt = base64.b64decode(xarf["evidence"][0]["payload"]).decode().splitlines()
    # 1.2.3.4 must not pick up 1.2.3.45, nor a user name holding the address
    assert excerpt == LINES[:2]


def test_report_once_per_period_and_daily_cap(tmp_path: Path) -> None:
    sent: list[Any] = []
    assert reporter(tmp_path, sent).report(ATT).status == "sent"
    assert "already reported" in reporter(tmp_path, sent, now=1.8e9 + 60).report(ATT).reason
    r = reporter(tmp_path, sent, now=1.8e9 + 120, daily_cap=1).report("203.0.113.45")
    assert "daily cap" in r.reason
    assert len(sent) == 1


def test_dry_run_writes_and_sends_nothing(tmp_path: Path) -> None:
    sent: list[Any] = []
    res = reporter(tmp_path, sent, dry_run=True).report(ATT)
    assert res.status == "written" and sent == []
    eml, js = res.files
    assert Path(eml).read_bytes().startswith(b"Subject:") and validate_xarf(json.loads(Path(js).read_text())) == []


@pytest.mark.parametrize(
    ("kw", "reason"), [({"enabled": False}, "disabled"), ({"allowlist": ["203.0.113.0/24"]}, "allowlisted")]
)
def test_not_reported(tmp_path: Path, kw: dict[str, Any], reason: str) -> None:
    sent: list[Any] = []
    res = reporter(tmp_path, sent, **kw).report(ATT)
    assert res.status == "skipped" and reason in res.reason and sent == []


def test_private_address_never_reported_by_default(tmp_path: Path) -> None:
    sent: list[Any] = []
    assert reporter(tmp_path, sent, allow_private=False).report("10.0.0.5").reason == "not a globally routable address"
